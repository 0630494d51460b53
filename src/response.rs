//! [`Response`] and [`IntoResponse`]: what actions return.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::body::Body;

/// An HTTP response on its way out: an `http::Response<Body>` that also knows
/// whether it is live, and holds a handle on its writer task when it has one.
///
/// # Example
///
/// ```
/// use rill::Response;
/// use http::StatusCode;
///
/// let page = Response::html("<h1>hi</h1>");
/// assert_eq!(page.status(), StatusCode::OK);
/// assert!(!page.is_live());
///
/// let missing = Response::text("no such room\n").with_status(StatusCode::NOT_FOUND);
/// assert_eq!(missing.status(), 404);
/// ```
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Body>,
}

impl Response {
    pub(crate) fn from_parts(status: StatusCode, body: Body) -> Self {
        let mut inner = http::Response::new(body);
        *inner.status_mut() = status;
        Response { inner }
    }

    /// A value the framework keeps with the response (the live writer's
    /// handle).
    pub(crate) fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.extensions().get::<T>()
    }

    pub(crate) fn insert_extension<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.inner.extensions_mut().insert(value);
    }

    /// A response with this status and body, no headers.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::StatusCode, Response};
    ///
    /// let teapot = Response::new(StatusCode::IM_A_TEAPOT, "short and stout\n");
    /// assert_eq!(teapot.status(), 418);
    /// assert!(teapot.headers().is_empty()); // no Content-Type unless you set one
    /// ```
    pub fn new(status: StatusCode, body: impl Into<Body>) -> Self {
        Response::from_parts(status, body.into())
    }

    /// `200 OK`, `text/plain; charset=utf-8`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::header, Response};
    ///
    /// let name = "Ana";
    /// let response = Response::text(format!("hello, {name}\n"));
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    /// ```
    pub fn text(body: impl Into<String>) -> Self {
        Response::with_type(body.into(), "text/plain; charset=utf-8")
    }

    /// `200 OK`, `text/html; charset=utf-8`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::header, Response};
    ///
    /// let response = Response::html("<!doctype html><h1>Rooms</h1>");
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    /// ```
    pub fn html(body: impl Into<String>) -> Self {
        Response::with_type(body.into(), "text/html; charset=utf-8")
    }

    /// `200 OK`, `application/json`, with an already-serialized body.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::header, Response};
    ///
    /// let cached = r#"{"rooms":["lobby","rust"]}"#; // serialized once, served many times
    /// let response = Response::json_string(cached);
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, cached);
    /// # Ok(())
    /// # }
    /// ```
    pub fn json_string(body: impl Into<String>) -> Self {
        Response::with_type(body.into(), "application/json")
    }

    /// An empty response with this status.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::StatusCode, Response};
    ///
    /// let response = Response::status_only(StatusCode::NO_CONTENT);
    /// assert_eq!(response.status(), StatusCode::NO_CONTENT);
    /// assert!(!response.is_streaming());
    /// ```
    pub fn status_only(status: StatusCode) -> Self {
        Response::from_parts(status, Body::empty())
    }

    /// A `200 OK` response whose body is pulled from a stream of chunks — the
    /// pull-based counterpart of [`live`](crate::live).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use std::convert::Infallible;
    ///
    /// // Lines another task produces, taken as the client reads them.
    /// let (lines, rx) = futures_channel::mpsc::unbounded::<Result<String, Infallible>>();
    /// for n in 1..=3 {
    ///     lines.unbounded_send(Ok(format!("{n}\n"))).unwrap();
    /// }
    /// drop(lines); // the stream, and so the body, ends
    /// let response = rill::Response::stream("text/plain", rx);
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "1\n2\n3\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream<S, D, E>(content_type: &'static str, stream: S) -> Self
    where
        S: futures_core::Stream<Item = Result<D, E>> + Send + 'static,
        D: Into<Bytes>,
        E: Into<crate::BoxError>,
    {
        let mut response = Response::from_parts(StatusCode::OK, Body::from_stream(stream));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    fn with_type(body: String, content_type: &'static str) -> Self {
        let mut response = Response::from_parts(StatusCode::OK, Body::from(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    /// Replaces the status.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::StatusCode, Response};
    ///
    /// let response = Response::json(&serde_json::json!({"id": 7})).with_status(StatusCode::CREATED);
    /// assert_eq!(response.status(), StatusCode::CREATED);
    /// ```
    pub fn with_status(mut self, status: StatusCode) -> Self {
        *self.inner.status_mut() = status;
        self
    }

    /// Sets a header, replacing any previous value.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::{header, HeaderValue, StatusCode}, Response};
    ///
    /// let response = Response::status_only(StatusCode::SEE_OTHER)
    ///     .with_header(header::LOCATION, HeaderValue::from_static("/rooms/7"));
    /// assert_eq!(response.headers()[header::LOCATION], "/rooms/7");
    /// ```
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers_mut().insert(name, value);
        self
    }

    /// The status.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::StatusCode, Response};
    ///
    /// let response = Response::text("gone\n").with_status(StatusCode::GONE);
    /// assert_eq!(response.status(), StatusCode::GONE);
    /// assert!(response.status().is_client_error());
    /// ```
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The headers.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::header, Response};
    ///
    /// let response = Response::text("ok\n");
    /// assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "text/plain; charset=utf-8");
    /// assert!(response.headers().get(header::CACHE_CONTROL).is_none());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The headers, to change.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::{header, HeaderValue}, Response};
    ///
    /// let mut response = Response::text("data\n");
    /// let headers = response.headers_mut();
    /// headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    /// headers.append(header::VARY, HeaderValue::from_static("Accept"));
    /// headers.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    /// assert_eq!(response.headers().get_all(header::VARY).iter().count(), 2);
    /// ```
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.inner.headers_mut()
    }

    /// The body.
    ///
    /// # Example
    ///
    /// ```
    /// use http_body::Body as _; // `size_hint`
    /// use rill::Response;
    ///
    /// let response = Response::text("hello");
    /// assert_eq!(response.body().size_hint().exact(), Some(5)); // known up front
    /// assert!(!response.body().is_streaming());
    /// ```
    pub fn body(&self) -> &Body {
        self.inner.body()
    }

    /// Whether the body is live: fed through a pipe by a writer task or a
    /// broker (see [`Body::is_live`]).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let live = rill::live(|mut stream| async move {
    ///     stream.write("tick\n").await?;
    ///     Ok(())
    /// });
    /// assert!(live.is_live());
    /// assert!(!rill::Response::text("tick\n").is_live());
    /// # }
    /// ```
    pub fn is_live(&self) -> bool {
        self.inner.body().is_live()
    }

    /// Whether the body is produced over time (live or pulled from a stream).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::convert::Infallible;
    ///
    /// let (_tx, rx) = futures_channel::mpsc::unbounded::<Result<String, Infallible>>();
    /// let pulled = rill::Response::stream("text/plain", rx);
    /// assert!(pulled.is_streaming() && !pulled.is_live());
    ///
    /// let live = rill::live(|mut stream| async move { stream.write("x").await?; Ok(()) });
    /// assert!(live.is_streaming());
    /// assert!(!rill::Response::text("x").is_streaming());
    /// # }
    /// ```
    pub fn is_streaming(&self) -> bool {
        self.inner.body().is_streaming()
    }

    /// The plain `http::Response`, for hyper, axum or any `http`-based stack.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::{header, HeaderValue, StatusCode}, Response};
    ///
    /// let response = Response::text("ok\n").with_status(StatusCode::ACCEPTED);
    /// let mut plain: rill::http::Response<rill::Body> = response.into_http();
    /// plain.headers_mut().insert(header::SERVER, HeaderValue::from_static("rill"));
    /// assert_eq!(plain.status(), StatusCode::ACCEPTED);
    /// assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    /// ```
    pub fn into_http(self) -> http::Response<Body> {
        self.inner
    }
}

impl From<Response> for http::Response<Body> {
    fn from(response: Response) -> Self {
        response.into_http()
    }
}

impl From<http::Response<Body>> for Response {
    fn from(inner: http::Response<Body>) -> Self {
        Response { inner }
    }
}

/// Anything an action can return.
///
/// Implemented for [`Response`], `http::Response<Body>`, `&'static str` and
/// `String` (as `text/plain`), [`StatusCode`] (empty body), and
/// `(StatusCode, impl IntoResponse)`.
///
/// # Example
///
/// ```
/// use rill::{http::StatusCode, IntoResponse, Response};
///
/// // An error type of the app that actions return with `?`.
/// enum AppError { NotFound, Forbidden }
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         match self {
///             AppError::NotFound => (StatusCode::NOT_FOUND, "no such room\n").into_response(),
///             AppError::Forbidden => StatusCode::FORBIDDEN.into_response(),
///         }
///     }
/// }
///
/// let answer: Result<String, AppError> = Err(AppError::NotFound);
/// assert_eq!(answer.into_response().status(), StatusCode::NOT_FOUND);
/// ```
pub trait IntoResponse {
    /// Makes the response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for http::Response<Body> {
    fn into_response(self) -> Response {
        Response::from(self)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::status_only(self)
    }
}

impl<R: IntoResponse> IntoResponse for (StatusCode, R) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}
