//! [`Json`]: a request body read as `T` with typed rejections, and JSON
//! responses ([`Response::json`](crate::Response::json)).

use http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::{
    context::Context,
    response::{IntoResponse, Response},
};

/// A request body read as JSON into `T`.
///
/// ```
/// use rill::{Context, Json, JsonRejection, Response, Router};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct NewTodo { title: String }
///
/// async fn create(ctx: Context) -> Result<Response, JsonRejection> {
///     let Json(todo) = Json::<NewTodo>::from_context(&ctx)?;   // 415 / 400 / 422
///     Ok(Response::json(&serde_json::json!({"title": todo.title})))
/// }
///
/// let router = Router::new().post("/todos", create);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

/// Why a body is not the JSON expected — each answers with its own status.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{http::{Request, StatusCode}, Context, Json, JsonRejection};
///
/// #[derive(serde::Deserialize)]
/// # #[allow(dead_code)]
/// struct Login { user: String }
///
/// let request = Request::post("/login").header("content-type", "application/json")
///     .body(String::from(r#"{"name": "ana"}"#)).unwrap();
/// let ctx = Context::from_request(request).await.unwrap();
/// let rejection = Json::<Login>::from_context(&ctx).err().unwrap();
/// assert!(matches!(&rejection, JsonRejection::Data(why) if why.contains("missing field `user`")));
/// let response = rill::Response::from(rejection); // what `?` returns from an action
/// assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonRejection {
    /// `Content-Type` is not `application/json` (or `…+json`): `415`.
    #[error("expected Content-Type: application/json")]
    NotJsonContentType,
    /// The body is not JSON: `400`.
    #[error("the body is not JSON: {0}")]
    Syntax(String),
    /// The body is JSON but not the shape expected (a missing field, a
    /// wrong type): `422`.
    #[error("the body does not fit: {0}")]
    Data(String),
}

impl JsonRejection {
    /// The status it answers with.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::StatusCode, JsonRejection};
    ///
    /// assert_eq!(JsonRejection::NotJsonContentType.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    /// assert_eq!(JsonRejection::Syntax("EOF".into()).status(), StatusCode::BAD_REQUEST);
    /// assert_eq!(JsonRejection::Data("missing field".into()).status(), StatusCode::UNPROCESSABLE_ENTITY);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            JsonRejection::NotJsonContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::Syntax(_) => StatusCode::BAD_REQUEST,
            JsonRejection::Data(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        Response::json(&serde_json::json!({"error": self.to_string()})).with_status(self.status())
    }
}

impl<T: DeserializeOwned> Json<T> {
    /// Reads `ctx`'s body (already read, within the body limit).
    ///
    /// # Errors
    ///
    /// [`JsonRejection`]: a wrong content type, a body that is not JSON, or
    /// JSON of another shape.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Json};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Move { x: i32, y: i32 }
    ///
    /// let request = Request::post("/moves").header("content-type", "application/json")
    ///     .body(String::from(r#"{"x": 3, "y": -1}"#)).unwrap();
    /// let ctx = Context::from_request(request).await.unwrap();
    /// let Json(m) = Json::<Move>::from_context(&ctx).unwrap();
    /// assert_eq!((m.x, m.y), (3, -1));
    ///
    /// let csv = Request::post("/moves").header("content-type", "text/csv").body(String::from("3,-1")).unwrap();
    /// let ctx = Context::from_request(csv).await.unwrap();
    /// let refused = Json::<Move>::from_context(&ctx).unwrap_err();
    /// assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    /// # }
    /// ```
    pub fn from_context(ctx: &Context) -> Result<Json<T>, JsonRejection> {
        let json_type = ctx.header(header::CONTENT_TYPE.as_str()).is_some_and(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        });
        if !json_type {
            return Err(JsonRejection::NotJsonContentType);
        }
        serde_json::from_slice(ctx.body()).map(Json).map_err(|e| {
            if e.is_data() {
                JsonRejection::Data(e.to_string())
            } else {
                JsonRejection::Syntax(e.to_string())
            }
        })
    }
}

impl Response {
    /// `200 OK` with `value` as JSON (`application/json`); `500` with a
    /// logged error if it cannot be serialized (a map with non-string
    /// keys, a failing `Serialize`).
    ///
    /// ```
    /// let response = rill::Response::json(&serde_json::json!({"ok": true}));
    /// assert_eq!(response.status(), rill::http::StatusCode::OK);
    /// ```
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_string(value) {
            Ok(text) => Response::json_string(text),
            Err(error) => {
                tracing::error!(%error, "a JSON response could not be serialized");
                Response::status_only(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl From<JsonRejection> for Response {
    /// The rejection's answer, so that `?` works in an action returning
    /// `Result<Response, Response>`.
    fn from(rejection: JsonRejection) -> Response {
        rejection.into_response()
    }
}

impl From<serde_json::Error> for Response {
    /// A value that cannot be written as JSON is the server's fault:
    /// `500`, the cause logged, not shown.
    ///
    /// ```
    /// use rill::{sse::Event, Response};
    ///
    /// fn event_of(value: &serde_json::Value) -> Result<Event, Response> {
    ///     Ok(Event::json(value)?.event("update"))
    /// }
    /// assert!(event_of(&serde_json::json!({"n": 1})).is_ok());
    /// ```
    fn from(error: serde_json::Error) -> Response {
        tracing::error!(%error, "JSON could not be written");
        Response::status_only(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl<R: IntoResponse, E: IntoResponse> IntoResponse for Result<R, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        }
    }
}
