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
    pub fn new(status: StatusCode, body: impl Into<Body>) -> Self {
        Response::from_parts(status, body.into())
    }

    /// `200 OK`, `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Self {
        Response::with_type(body.into(), "text/plain; charset=utf-8")
    }

    /// `200 OK`, `text/html; charset=utf-8`.
    pub fn html(body: impl Into<String>) -> Self {
        Response::with_type(body.into(), "text/html; charset=utf-8")
    }

    /// `200 OK`, `application/json`, with an already-serialized body.
    pub fn json_string(body: impl Into<String>) -> Self {
        Response::with_type(body.into(), "application/json")
    }

    /// An empty response with this status.
    pub fn status_only(status: StatusCode) -> Self {
        Response::from_parts(status, Body::empty())
    }

    /// A `200 OK` response whose body is pulled from a stream of chunks — the
    /// pull-based counterpart of [`live`](crate::live).
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
    pub fn with_status(mut self, status: StatusCode) -> Self {
        *self.inner.status_mut() = status;
        self
    }

    /// Sets a header, replacing any previous value.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers_mut().insert(name, value);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.inner.headers_mut()
    }

    /// The body.
    pub fn body(&self) -> &Body {
        self.inner.body()
    }

    /// Whether the body is live: fed through a pipe by a writer task or a
    /// broker (see [`Body::is_live`]).
    pub fn is_live(&self) -> bool {
        self.inner.body().is_live()
    }

    /// Whether the body is produced over time (live or pulled from a stream).
    pub fn is_streaming(&self) -> bool {
        self.inner.body().is_streaming()
    }

    /// The plain `http::Response`, for hyper, axum or any `http`-based stack.
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
