//! [`LiveTracker`]: counts open live responses and closes them all on shutdown.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
    time::Duration,
};
use tokio::{sync::Notify, task::AbortHandle};

use crate::pipe::Shared;

/// Keeps count of the live responses of one app and tells them all when the
/// server shuts down.
///
/// A [`Router`](crate::Router) owns one, and the [`Server`](crate::Server)
/// uses it for graceful shutdown. When you use [`rill::live`](crate::live)
/// from a bare hyper service, pass a tracker in
/// [`LiveOptions::tracker`](crate::LiveOptions::tracker) to get the same.
///
/// Cloning is cheap; clones share the same count.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{LiveOptions, LiveTracker};
///
/// let tracker = LiveTracker::new();
/// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |mut stream| async move {
///     stream.write("hi").await?;
///     Ok(())
/// });
/// assert_eq!(tracker.active(), 1);
/// drop(response); // the client "went away"
/// tracker.wait_writers().await;
/// assert_eq!(tracker.active(), 0);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct LiveTracker {
    inner: Arc<TrackerInner>,
}

#[derive(Default)]
struct TrackerInner {
    streams: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
    writers: AtomicUsize,
    writers_idle: Notify,
    /// Set by `announce_shutdown` (and `close_all`): streams opened from
    /// now on are told at once.
    shutting_down: AtomicBool,
    /// Set by `close_all`: streams opened from now on are closed at once.
    closing: AtomicBool,
}

struct Entry {
    stream: Weak<dyn ShutDown>,
    abort: Option<AbortHandle>,
}

/// Something a shutdown must close: a live response's pipe, a WebSocket.
pub(crate) trait ShutDown: Send + Sync {
    /// Closes it because the server is shutting down.
    fn shut_down(&self);

    /// Tells it the server is shutting down, leaving it open for the grace
    /// period. What cannot say goodbye (a WebSocket, whose close frame is
    /// its goodbye) closes at once.
    fn announce_shutdown(&self) {
        self.shut_down();
    }
}

impl ShutDown for Shared {
    fn shut_down(&self) {
        Shared::shut_down(self);
    }

    fn announce_shutdown(&self) {
        Shared::announce_shutdown(self);
    }
}

/// How long a graceful shutdown leaves live streams open after telling
/// them, so that their writers can send their last events, unless every
/// writer has returned sooner.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{LiveTracker, DEFAULT_SHUTDOWN_GRACE};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs(1));
/// // twice the default goodbye window, everything done within 10 s
/// let tracker = LiveTracker::new();
/// let aborted = tracker.shutdown_with_grace(DEFAULT_SHUTDOWN_GRACE * 2, Duration::from_secs(10)).await;
/// assert_eq!(aborted, 0); // nothing was open
/// # }
/// ```
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

impl LiveTracker {
    /// A new tracker with no streams.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::LiveTracker;
    ///
    /// let tracker = LiveTracker::new();
    /// assert_eq!(tracker.active(), 0);
    /// assert_eq!(tracker.running_writers(), 0);
    /// assert!(!tracker.is_shutting_down());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many live responses are open: their writer is still running or
    /// their body has not been dropped yet.
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
    /// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |mut stream| async move {
    ///     stream.write("hello\n").await?;
    ///     Ok(())
    /// });
    /// assert_eq!(tracker.active(), 1);
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "hello\n");
    /// tracker.wait_writers().await;
    /// assert_eq!(tracker.active(), 0); // writer returned, body read to its end
    /// # Ok(())
    /// # }
    /// ```
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// How many writer tasks are still running.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{LiveOptions, LiveTracker};
    ///
    /// let tracker = LiveTracker::new();
    /// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |stream| async move {
    ///     stream.closed().await;
    ///     Ok(())
    /// });
    /// assert_eq!(tracker.running_writers(), 1);
    /// tracker.close_all();
    /// tracker.wait_writers().await;
    /// assert_eq!(tracker.running_writers(), 0);
    /// assert_eq!(tracker.active(), 1); // its body is still held
    /// drop(response);
    /// assert_eq!(tracker.active(), 0);
    /// # }
    /// ```
    pub fn running_writers(&self) -> usize {
        self.inner.writers.load(Ordering::Acquire)
    }

    /// Whether [`announce_shutdown`](Self::announce_shutdown) or
    /// [`close_all`](Self::close_all) was called.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::LiveTracker;
    ///
    /// let tracker = LiveTracker::new();
    /// assert!(!tracker.is_shutting_down());
    /// tracker.announce_shutdown();
    /// assert!(tracker.is_shutting_down());
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Tells every open live stream, and every one opened from now on, that
    /// the server is shutting down, without closing them yet:
    /// [`LiveStream::closed`](crate::LiveStream::closed) resolves and
    /// [`is_shutting_down`](crate::LiveStream::is_shutting_down) is true,
    /// while writes still succeed — the grace window in which a writer says
    /// goodbye. [`close_all`](Self::close_all) ends it. WebSockets close at
    /// once (1001, their own goodbye).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use http_body_util::BodyExt;
    /// use rill::{sse::{self, Event, SseOptions}, LiveTracker};
    ///
    /// let tracker = LiveTracker::new();
    /// let response = sse::response(SseOptions::new().tracker(tracker.clone()), None, |mut sse| async move {
    ///     sse.closed().await; // resolves at the announcement
    ///     sse.send(Event::data("server going away").event("bye")).await?;
    ///     Ok(())
    /// });
    /// tracker.announce_shutdown();
    /// let body = response.into_http().into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, "event: bye\ndata: server going away\n\n");
    /// # }
    /// ```
    pub fn announce_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        for stream in self.open_streams() {
            stream.announce_shutdown();
        }
    }

    fn open_streams(&self) -> Vec<Arc<dyn ShutDown>> {
        self.lock()
            .values()
            .filter_map(|e| e.stream.upgrade())
            .collect()
    }

    /// Closes every open live stream, and every one opened from now on: their
    /// writes return [`LiveError::StreamClosed`](crate::LiveError::StreamClosed)
    /// and [`LiveStream::closed`](crate::LiveStream::closed) resolves. Bodies
    /// end cleanly after what was already written.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{LiveError, LiveOptions, LiveTracker, WriterError};
    ///
    /// let tracker = LiveTracker::new();
    /// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |mut stream| async move {
    ///     stream.write("hello\n").await?;
    ///     stream.closed().await;
    ///     stream.write("too late\n").await?; // fails: the stream is closed
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// let mut body = response.into_http().into_body();
    /// assert_eq!(body.frame().await.unwrap()?.into_data().unwrap(), "hello\n");
    /// tracker.close_all();
    /// assert!(body.frame().await.is_none()); // the body ends cleanly
    /// assert!(matches!(writer.await, Err(WriterError::Live(LiveError::StreamClosed))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn close_all(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.closing.store(true, Ordering::Release);
        // Outside the lock: closing wakes the stream's body and writer.
        for stream in self.open_streams() {
            stream.shut_down();
        }
    }

    /// Waits until no writer task is running.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{LiveOptions, LiveTracker};
    /// use std::time::Duration;
    ///
    /// let tracker = LiveTracker::new();
    /// let _response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |mut stream| async move {
    ///     tokio::time::sleep(Duration::from_millis(20)).await;
    ///     stream.write("done\n").await?;
    ///     Ok(())
    /// });
    /// tracker.wait_writers().await;
    /// assert_eq!(tracker.running_writers(), 0);
    /// # }
    /// ```
    pub async fn wait_writers(&self) {
        loop {
            let notified = self.inner.writers_idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running_writers() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Aborts every writer task still running. Their responses end (cleanly if
    /// the stream was already closed, as after [`close_all`](Self::close_all)).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{LiveOptions, LiveTracker, WriterError};
    ///
    /// let tracker = LiveTracker::new();
    /// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |_stream| async move {
    ///     std::future::pending::<()>().await; // never looks at its stream
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// tracker.abort_writers();
    /// assert!(matches!(writer.await, Err(WriterError::Cancelled)));
    /// tracker.wait_writers().await; // returns: the aborted writer no longer runs
    /// # }
    /// ```
    pub fn abort_writers(&self) {
        for entry in self.lock().values() {
            if let Some(abort) = &entry.abort {
                abort.abort();
            }
        }
    }

    /// Graceful shutdown of the live streams alone, as
    /// [`Server`](crate::Server) does it: tells them
    /// ([`announce_shutdown`](Self::announce_shutdown)), leaves them
    /// [`DEFAULT_SHUTDOWN_GRACE`] to say goodbye unless every writer returns
    /// sooner, closes them all, waits for their writers until `deadline`
    /// (counted from the start), then aborts the rest. Returns how many
    /// writers had to be aborted.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{LiveOptions, LiveTracker};
    /// use std::time::Duration;
    ///
    /// let tracker = LiveTracker::new();
    /// let _response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |stream| async move {
    ///     stream.closed().await; // the writer stops when told
    ///     Ok(())
    /// });
    /// assert_eq!(tracker.shutdown(Duration::from_secs(5)).await, 0);
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        self.shutdown_with_grace(DEFAULT_SHUTDOWN_GRACE, deadline)
            .await
    }

    /// [`shutdown`](Self::shutdown) with a grace period of your own
    /// (`Duration::ZERO`: close at once, no goodbye).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{LiveOptions, LiveTracker};
    /// use std::time::Duration;
    ///
    /// let tracker = LiveTracker::new();
    /// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |mut stream| async move {
    ///     stream.closed().await;
    ///     stream.write("bye\n").await?; // fails: no grace, the stream is already closed
    ///     Ok(())
    /// });
    /// assert_eq!(tracker.shutdown_with_grace(Duration::ZERO, Duration::from_secs(5)).await, 0);
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert!(body.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown_with_grace(&self, grace: Duration, deadline: Duration) -> usize {
        let start = tokio::time::Instant::now();
        let grace = grace.min(deadline);
        if !grace.is_zero() {
            self.announce_shutdown();
            let _ = tokio::time::timeout(grace, self.wait_writers()).await;
        }
        self.close_all();
        let left = deadline.saturating_sub(start.elapsed());
        if tokio::time::timeout(left, self.wait_writers())
            .await
            .is_ok()
        {
            return 0;
        }
        let stuck = self.running_writers();
        self.abort_writers();
        stuck
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert/remove/iteration).
        self.inner
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new stream; the returned guard unregisters it on drop.
    pub(crate) fn register<S: ShutDown + 'static>(&self, shared: &Arc<S>) -> ActiveGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let stream: Arc<dyn ShutDown> = shared.clone();
        self.lock().insert(
            id,
            Entry {
                stream: Arc::downgrade(&stream),
                abort: None,
            },
        );
        // Registered after a shutdown step took its snapshot, or during it.
        if self.inner.closing.load(Ordering::Acquire) {
            shared.shut_down();
        } else if self.is_shutting_down() {
            shared.announce_shutdown();
        }
        ActiveGuard {
            tracker: self.clone(),
            id,
        }
    }

    pub(crate) fn writer_started(&self) -> WriterGuard {
        self.inner.writers.fetch_add(1, Ordering::AcqRel);
        WriterGuard {
            tracker: self.clone(),
        }
    }

    pub(crate) fn set_abort(&self, id: u64, abort: AbortHandle) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.abort = Some(abort);
        }
    }
}

impl std::fmt::Debug for LiveTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTracker")
            .field("active", &self.active())
            .field("running_writers", &self.running_writers())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

/// Held by a live response's body and task; the stream counts as open until
/// both are gone.
pub(crate) struct ActiveGuard {
    tracker: LiveTracker,
    pub(crate) id: u64,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.tracker.lock().remove(&self.id);
    }
}

/// Held by a running writer task.
pub(crate) struct WriterGuard {
    tracker: LiveTracker,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if self.tracker.inner.writers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.inner.writers_idle.notify_waiters();
        }
    }
}
