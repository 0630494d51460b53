//! Live responses: a spawned writer pushes chunks through a bounded channel
//! that the response body pulls.
//!
//! The pieces: [`LiveStream`] (the writer's end), the writer task and its
//! [`WriterHandle`], the body ([`crate::Body`]) that pulls the channel, and
//! [`LiveTracker`], which counts open responses and closes them on shutdown.

mod pending;
pub(crate) mod shared;
mod stream;
mod task;
mod tracker;

pub use stream::LiveStream;
pub use task::{WriterHandle, WriterResult};
pub use tracker::LiveTracker;

pub(crate) use pending::COPY_BELOW;
pub(crate) use shared::Shared;
pub(crate) use tracker::ActiveGuard;

use bytes::Bytes;
use futures_channel::mpsc;
use http::{header, HeaderValue, StatusCode};
use std::{borrow::Cow, future::Future, sync::Arc};

use crate::{body::Body, charset::Charset, error::BoxError, response::Response};

/// The default capacity of the channel between writer and body, in chunks.
pub const DEFAULT_CAPACITY: usize = 8;

/// How a live response is set up: channel capacity, charset, content type,
/// status, tracker.
///
/// # Example
///
/// ```
/// use rill::{Charset, LiveOptions};
///
/// let options = LiveOptions::new()
///     .capacity(32)
///     .content_type("text/csv")
///     .charset(Charset::for_label("windows-1252").unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub(crate) capacity: usize,
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
            capacity: DEFAULT_CAPACITY,
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
    /// The defaults: capacity 8, UTF-8, `text/plain`, `200 OK`, no tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many chunks may wait between writer and body before `write`
    /// waits (at least 1).
    pub fn capacity(mut self, chunks: usize) -> Self {
        self.capacity = chunks.max(1);
        self
    }

    /// The charset text chunks are encoded in, also named in `Content-Type`.
    pub fn charset(mut self, charset: Charset) -> Self {
        self.charset = charset;
        self
    }

    /// The media type, without parameters: `Content-Type` becomes
    /// `<media type>; charset=<charset>`.
    pub fn content_type(mut self, media_type: impl Into<Cow<'static, str>>) -> Self {
        self.content_type = media_type.into();
        self
    }

    /// The response status (default `200 OK`).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Registers the response with `tracker` (counted, closed on shutdown).
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
/// # Panics
///
/// When called outside a tokio runtime.
pub fn live_with<F, Fut>(options: LiveOptions, writer: F) -> Response
where
    F: FnOnce(LiveStream) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(options.capacity);
    let shared = Arc::new(Shared::default());
    let active = options
        .tracker
        .as_ref()
        .map(|tracker| Arc::new(tracker.register(&shared, None)));
    let keep_open = tx.clone();
    let stream = LiveStream::new(tx, shared.clone(), options.charset);
    let writer_guard = options.tracker.as_ref().map(LiveTracker::writer_started);
    let task = task::WriterTask::new(
        writer(stream),
        shared.clone(),
        keep_open,
        writer_guard,
        active.clone(),
    );
    let join = tokio::spawn(task);
    if let (Some(tracker), Some(active)) = (&options.tracker, &active) {
        tracker.set_abort(active.id, join.abort_handle());
    }

    let handle = WriterHandle::new(shared.clone());
    let body = Body::live(rx, shared, active, options.heartbeat.clone());
    let mut response = Response::from_parts(options.status, body).with_writer(handle);
    set_live_headers(response.headers_mut(), options.content_type_value());
    response
}

/// A live response fed by someone other than a writer task (a hub): the
/// caller appends encoded frames to the shared pending batch (and wakes the
/// body it parked there); the sender carries at most a first message, and
/// closing it — after setting `CLOSED` — ends the body.
pub(crate) struct Feed {
    pub(crate) tx: mpsc::Sender<Bytes>,
    pub(crate) shared: Arc<Shared>,
}

/// Builds a writer-less live response. `closer` is how the tracker ends it
/// on shutdown (the feeder must close its sender); `on_drop` runs when hyper
/// drops the body.
pub(crate) fn feed_response(
    options: &LiveOptions,
    closer: tracker::Closer,
    on_drop: Box<dyn FnOnce() + Send>,
) -> (Feed, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(options.capacity);
    let shared = Arc::new(Shared::default());
    let active = options
        .tracker
        .as_ref()
        .map(|tracker| Arc::new(tracker.register(&shared, Some(closer))));
    let body = Body::live(rx, shared.clone(), active, options.heartbeat.clone())
        .on_drop(on_drop)
        .fed_through_batch();
    let mut response = Response::from_parts(options.status, body);
    set_live_headers(response.headers_mut(), options.content_type_value());
    (Feed { tx, shared }, response)
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
