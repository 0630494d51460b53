//! [`SseOptions`]: defaults applied to every frame, auto ids, heartbeats.

use std::time::Duration;

use super::Event;

/// The default heartbeat interval: a comment after 15 s without a write.
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
    pub fn retry(mut self, interval: Duration) -> Self {
        self.defaults = self.defaults.retry(interval);
        self
    }

    /// Writes `event: <name>` on every frame that does not set its own.
    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.defaults = self.defaults.event(name);
        self
    }

    /// Writes `id: <id>` on every frame that does not set its own (and is not
    /// numbered by [`auto_id`](Self::auto_id)).
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
    pub fn auto_id(mut self) -> Self {
        self.auto_id = true;
        self
    }

    /// Sends a `: keep-alive` comment after this long without a write; every
    /// write restarts the timer, so busy streams send none. `Duration::ZERO`
    /// disables heartbeats.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// The most bytes of encoded events queued and not yet taken by the
    /// client (default 256 KiB); see
    /// [`LiveOptions::buffer_limit`](crate::LiveOptions::buffer_limit).
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes.max(1);
        self
    }
}
