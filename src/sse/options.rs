//! [`SseOptions`]: defaults applied to every frame, auto ids, heartbeats.

use std::time::Duration;

use super::Event;

/// The default heartbeat interval: a comment after 15 s without a write.
///
/// # Example
///
/// ```
/// use rill::sse::{SseOptions, DEFAULT_HEARTBEAT};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_HEARTBEAT, Duration::from_secs(15));
/// // A proxy that drops idle connections after 10 s needs a shorter one:
/// let options = SseOptions::new().heartbeat(DEFAULT_HEARTBEAT / 2);
/// ```
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// How an SSE response is set up.
///
/// # Example
///
/// ```
/// use rill::sse::SseOptions;
/// use std::time::Duration;
///
/// let options = SseOptions::new()
///     .retry(Duration::from_millis(5000)) // `retry: 5000` on every frame
///     .auto_id()                          // ids 1, 2, 3, … (resuming after Last-Event-ID)
///     .heartbeat(Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct SseOptions {
    pub(crate) defaults: Event,
    pub(crate) auto_id: bool,
    pub(crate) heartbeat: Duration,
    pub(crate) buffer_limit: usize,
    pub(crate) tracker: Option<crate::live::LiveTracker>,
}

impl Default for SseOptions {
    fn default() -> Self {
        SseOptions {
            defaults: Event::new(),
            auto_id: false,
            heartbeat: DEFAULT_HEARTBEAT,
            buffer_limit: crate::live::DEFAULT_BUFFER_LIMIT,
            tracker: None,
        }
    }
}

impl SseOptions {
    /// No defaults, no auto ids, a heartbeat every 15 s of silence.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
    ///     sse.write("hello").await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "data: hello\n\n"); // no id, no retry, no event name
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the stream with `tracker`: a graceful shutdown closes it
    /// (its writer sees `closed()` resolve) and waits for its writer. rill's
    /// router registers every stream with the app's tracker by itself; this
    /// is for [`sse::response`](super::response) under another server
    /// (axum), whose shutdown would otherwise never reach the stream.
    ///
    /// ```
    /// use rill::{sse::SseOptions, LiveTracker};
    ///
    /// let tracker = LiveTracker::new();
    /// let options = SseOptions::new().tracker(tracker.clone());
    /// // … and when the server stops: `tracker.shutdown(deadline).await`.
    /// ```
    pub fn tracker(mut self, tracker: crate::live::LiveTracker) -> Self {
        self.tracker = Some(tracker);
        self
    }

    /// Writes `retry: <ms>` on every frame that does not set its own.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// // Ask browsers to wait 3 s before reconnecting after a drop.
    /// let options = SseOptions::new().retry(Duration::from_secs(3));
    /// let response = sse::response(options, None, |mut sse| async move {
    ///     sse.write("hello").await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "retry: 3000\ndata: hello\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry(mut self, interval: Duration) -> Self {
        self.defaults = self.defaults.retry(interval);
        self
    }

    /// Writes `event: <name>` on every frame that does not set its own.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// use rill::sse::Event;
    ///
    /// let options = SseOptions::new().event("price");
    /// let response = sse::response(options, None, |mut sse| async move {
    ///     sse.write("42.10").await?;                           // uses the default
    ///     sse.send(Event::data("closed").event("status")).await?; // its own
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "event: price\ndata: 42.10\n\nevent: status\ndata: closed\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.defaults = self.defaults.event(name);
        self
    }

    /// Writes `id: <id>` on every frame that does not set its own (and is not
    /// numbered by [`auto_id`](Self::auto_id)).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// // Every frame carries the version of the document it was computed from.
    /// let options = SseOptions::new().id("v7");
    /// let response = sse::response(options, None, |mut sse| async move {
    ///     sse.write("snapshot").await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "id: v7\ndata: snapshot\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.defaults = self.defaults.id(id);
        self
    }

    /// Numbers frames `id: 1`, `2`, `3`, … — or, when the client reconnects
    /// with a numeric `Last-Event-ID: K`, `K+1`, `K+2`, … An event with its
    /// own numeric id moves the counter past it.
    ///
    /// A numeric id is written as rill writes them: decimal digits, no sign,
    /// no leading zero, at most 2^63 - 1. Any other `Last-Event-ID` (`+7`,
    /// `0007`, `18446744073709551615`) starts over at 1.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// // The browser reconnects and sends `Last-Event-ID: 41`.
    /// let resume = Some("41".to_owned());
    /// let response = sse::response(SseOptions::new().auto_id(), resume, |mut sse| async move {
    ///     sse.write("a").await?;
    ///     sse.write("b").await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "id: 42\ndata: a\n\nid: 43\ndata: b\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn auto_id(mut self) -> Self {
        self.auto_id = true;
        self
    }

    /// Sends a `: keep-alive` comment after this long without a write; every
    /// write restarts the timer, so busy streams send none. `Duration::ZERO`
    /// disables heartbeats.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// let options = SseOptions::new().heartbeat(Duration::from_secs(5));
    /// let response = sse::response(options, None, |mut sse| async move {
    ///     tokio::time::sleep(Duration::from_secs(7)).await; // a quiet stream
    ///     sse.write("late news").await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, ": keep-alive\ndata: late news\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// The most bytes of encoded events queued and not yet taken by the
    /// client (default 256 KiB); see
    /// [`LiveOptions::buffer_limit`](crate::LiveOptions::buffer_limit).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::sse::{self, SseOptions};
    /// use std::time::Duration;
    ///
    /// // Big snapshots: let up to 1 MiB wait for a slow client before the
    /// // writer has to wait too.
    /// let options = SseOptions::new().buffer_limit(1024 * 1024);
    /// let response = sse::response(options, None, |mut sse| async move {
    ///     sse.write("x".repeat(300 * 1024)).await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body.len(), "data: ".len() + 300 * 1024 + 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes.max(1);
        self
    }
}
