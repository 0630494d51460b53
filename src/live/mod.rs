//! Live responses: a spawned writer pushes chunks through the pipe that the
//! response body pulls.
//!
//! The pieces: [`LiveStream`] (the writer's end), the writer task and its
//! [`WriterHandle`], and [`LiveTracker`], which counts open responses and
//! closes them on shutdown. The pipe itself (and its invariants) is
//! `crate::pipe`; the body that pulls it is [`crate::Body`].

mod stream;
mod task;
mod tracker;

pub use crate::pipe::DEFAULT_BUFFER_LIMIT;
pub use stream::LiveStream;
pub use task::{WriterHandle, WriterResult};
pub(crate) use tracker::ShutDown;
pub use tracker::{LiveTracker, DEFAULT_SHUTDOWN_GRACE};

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use std::{borrow::Cow, future::Future, sync::Arc};

use crate::{
    body::Body,
    charset::Charset,
    error::BoxError,
    pipe::{self, PipeFeed},
    response::Response,
};

/// How a live response is set up: buffer limit, charset, content type,
/// status, tracker.
///
/// # Example
///
/// ```
/// use rill::{Charset, LiveOptions};
///
/// let options = LiveOptions::new()
///     .buffer_limit(64 * 1024)
///     .content_type("text/csv")
///     .charset(Charset::for_label("windows-1252").unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub(crate) buffer_limit: usize,
    pub(crate) charset: Charset,
    pub(crate) content_type: Cow<'static, str>,
    pub(crate) status: StatusCode,
    pub(crate) tracker: Option<LiveTracker>,
    /// A complete `Content-Type` that replaces `<content_type>; charset=…`
    /// (SSE: `text/event-stream`, always UTF-8).
    pub(crate) exact_content_type: Option<HeaderValue>,
    /// Bytes the body sends after this long without data (SSE heartbeats).
    pub(crate) heartbeat: Option<(std::time::Duration, Bytes)>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            charset: Charset::UTF_8,
            content_type: Cow::Borrowed("text/plain"),
            status: StatusCode::OK,
            tracker: None,
            exact_content_type: None,
            heartbeat: None,
        }
    }
}

impl LiveOptions {
    /// The defaults: a 256 KiB buffer limit, UTF-8, `text/plain`, `200 OK`,
    /// no tracker.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::LiveOptions;
    ///
    /// let response = rill::live_with(LiveOptions::new(), |_stream| async { Ok(()) });
    /// assert_eq!(response.status(), rill::http::StatusCode::OK);
    /// assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The most bytes written and not yet taken by the body (default
    /// 256 KiB, at least 1): the memory a slow client can hold up. A write
    /// that would pass it waits until the client has read what is queued; a
    /// single chunk larger than the limit is sent alone, once nothing else
    /// is queued.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::LiveOptions;
    ///
    /// // at most 16 bytes queued: each write waits for the client to catch up
    /// let options = LiveOptions::new().buffer_limit(16);
    /// let response = rill::live_with(options, |mut stream| async move {
    ///     for _ in 0..100 {
    ///         stream.write("0123456789\n").await?;
    ///     }
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body.len(), 1100);
    /// # Ok(())
    /// # }
    /// ```
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes.max(1);
        self
    }

    /// The charset text chunks are encoded in, also named in `Content-Type`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{Charset, LiveOptions};
    ///
    /// let options = LiveOptions::new().charset(Charset::for_label("latin1")?);
    /// let response = rill::live_with(options, |mut stream| async move {
    ///     stream.write("café\n").await?;
    ///     Ok(())
    /// });
    /// assert_eq!(response.headers()["content-type"], "text/plain; charset=windows-1252");
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(&body[..], b"caf\xe9\n"); // one byte for the é
    /// # Ok(())
    /// # }
    /// ```
    pub fn charset(mut self, charset: Charset) -> Self {
        self.charset = charset;
        self
    }

    /// The media type, without parameters: `Content-Type` becomes
    /// `<media type>; charset=<charset>`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::LiveOptions;
    ///
    /// let options = LiveOptions::new().content_type("text/csv");
    /// let response = rill::live_with(options, |mut stream| async move {
    ///     stream.write("id,name\n1,ada\n").await?;
    ///     Ok(())
    /// });
    /// assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    /// # }
    /// ```
    pub fn content_type(mut self, media_type: impl Into<Cow<'static, str>>) -> Self {
        self.content_type = media_type.into();
        self
    }

    /// The response status (default `200 OK`).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::StatusCode, LiveOptions};
    ///
    /// // a job accepted, its progress streamed as it runs
    /// let options = LiveOptions::new().status(StatusCode::ACCEPTED);
    /// let response = rill::live_with(options, |mut stream| async move {
    ///     stream.write("queued\n").await?;
    ///     Ok(())
    /// });
    /// assert_eq!(response.status(), StatusCode::ACCEPTED);
    /// # }
    /// ```
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Registers the response with `tracker` (counted, closed on shutdown).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{LiveOptions, LiveTracker};
    ///
    /// let tracker = LiveTracker::new();
    /// let options = LiveOptions::new().tracker(tracker.clone());
    /// let response = rill::live_with(options, |mut stream| async move {
    ///     stream.write("hi\n").await?;
    ///     Ok(())
    /// });
    /// assert_eq!(tracker.active(), 1);
    /// response.into_http().into_body().collect().await?; // the client reads it all
    /// tracker.wait_writers().await;
    /// assert_eq!(tracker.active(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn tracker(mut self, tracker: LiveTracker) -> Self {
        self.tracker = Some(tracker);
        self
    }

    pub(crate) fn content_type_value(&self) -> HeaderValue {
        if let Some(exact) = &self.exact_content_type {
            return exact.clone();
        }
        // Lowercase, as most servers write it (`charset=utf-8`); the name is
        // case-insensitive for clients.
        let value = format!(
            "{}; charset={}",
            self.content_type,
            self.charset.name().to_ascii_lowercase()
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| {
            // Content types are set by the application, never by a client; a
            // malformed one falls back rather than failing the response.
            tracing::warn!(content_type = %self.content_type, "invalid content type for live response");
            HeaderValue::from_static("application/octet-stream")
        })
    }
}

/// Starts a live response with the default options: spawns `writer` on tokio
/// and returns the response at once. See [`live_with`].
///
/// This does not need a router: the result converts into a plain
/// `http::Response<rill::Body>` for any hyper service or axum handler.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
///
/// // a bare hyper service function
/// async fn service(
///     _req: http::Request<hyper::body::Incoming>,
/// ) -> Result<http::Response<rill::Body>, Infallible> {
///     Ok(rill::live(|mut stream| async move {
///         for n in 1..=3 {
///             stream.write(format!("{n}\n")).await?;
///         }
///         Ok(())
///     })
///     .into_http())
/// }
/// ```
///
/// # Panics
///
/// When called outside a tokio runtime.
pub fn live<F, Fut>(writer: F) -> Response
where
    F: FnOnce(LiveStream) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    live_with(LiveOptions::default(), writer)
}

/// Starts a live response: spawns `writer` on tokio with a [`LiveStream`] and
/// returns the response at once, with `Content-Type`, `Cache-Control:
/// no-cache` and `X-Accel-Buffering: no` set.
///
/// When the writer returns `Ok(())` — or stops with
/// [`LiveError::ClientDisconnected`](crate::LiveError::ClientDisconnected) /
/// [`StreamClosed`](crate::LiveError::StreamClosed) — the stream closes and
/// the body ends cleanly once drained. Any other error, or a panic, is logged
/// and aborts the response, so the client never takes a broken response for
/// a complete one.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::BodyExt;
/// use rill::{http::StatusCode, LiveOptions};
///
/// let options = LiveOptions::new().content_type("text/csv").status(StatusCode::CREATED);
/// let response = rill::live_with(options, |mut stream| async move {
///     stream.write("id,name\n").await?;
///     stream.write("1,ada\n").await?;
///     Ok(())
/// });
/// assert_eq!(response.status(), StatusCode::CREATED);
/// let body = response.into_http().into_body().collect().await?.to_bytes();
/// assert_eq!(body, "id,name\n1,ada\n");
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// When called outside a tokio runtime.
pub fn live_with<F, Fut>(options: LiveOptions, writer: F) -> Response
where
    F: FnOnce(LiveStream) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let (pipe_writer, reader) = pipe::channel(options.buffer_limit);
    let shared = pipe_writer.shared().clone();
    let active = options
        .tracker
        .as_ref()
        .map(|tracker| Arc::new(tracker.register(&shared)));
    let keep_open = pipe_writer.keep_open();
    let stream = LiveStream::new(pipe_writer, options.charset);
    let writer_guard = options.tracker.as_ref().map(LiveTracker::writer_started);
    let outcome = Arc::new(task::Outcome::default());
    let task = task::WriterTask::new(
        writer(stream),
        shared,
        outcome.clone(),
        keep_open,
        writer_guard,
        active.clone(),
    );
    // The writer logs inside the request's span (a TraceLayer's
    // `request{method=GET uri=/prices}`), as the action did.
    let join = tokio::spawn(tracing::Instrument::in_current_span(task));
    if let (Some(tracker), Some(active)) = (&options.tracker, &active) {
        tracker.set_abort(active.id, join.abort_handle());
    }
    let guard = active.map(|a| a as Arc<dyn Send + Sync>);
    let body = Body::live(reader, guard, options.heartbeat.clone());
    let mut response = Response::from_parts(options.status, body);
    response.set_writer(WriterHandle::new(outcome));
    set_live_headers(response.headers_mut(), options.content_type_value());
    response
}

/// A live response fed by a broker rather than a writer task: the feed
/// offers frames to the pipe's batch, and closes it to end the body. The
/// response is registered with the options' tracker (a shutdown closes the
/// feed); `on_drop` runs when hyper drops the body.
pub(crate) fn feed_response(
    options: &LiveOptions,
    on_drop: Box<dyn FnOnce() + Send>,
) -> (PipeFeed, Response) {
    let (feed, reader) = pipe::feed(options.buffer_limit);
    let guard = options
        .tracker
        .as_ref()
        .map(|tracker| Arc::new(tracker.register(feed.shared())) as Arc<dyn Send + Sync>);
    let body = Body::live(reader, guard, options.heartbeat.clone()).on_drop(on_drop);
    let mut response = Response::from_parts(options.status, body);
    set_live_headers(response.headers_mut(), options.content_type_value());
    (feed, response)
}

/// The headers of every live response (SSE included), set in this one place.
pub(crate) fn set_live_headers(headers: &mut http::HeaderMap, content_type: HeaderValue) {
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// The response a live action gives to a `HEAD` request: the same headers,
/// no body, and no writer started.
pub(crate) fn head_response(options: &LiveOptions) -> Response {
    let mut response = Response::from_parts(options.status, Body::empty());
    set_live_headers(response.headers_mut(), options.content_type_value());
    response
}
