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
    shutting_down: AtomicBool,
}

struct Entry {
    stream: Weak<dyn ShutDown>,
    abort: Option<AbortHandle>,
}

/// Something a shutdown must close: a live response's pipe, a WebSocket.
pub(crate) trait ShutDown: Send + Sync {
    /// Closes it because the server is shutting down.
    fn shut_down(&self);
}

impl ShutDown for Shared {
    fn shut_down(&self) {
        Shared::shut_down(self);
    }
}

impl LiveTracker {
    /// A new tracker with no streams.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many live responses are open: their writer is still running or
    /// their body has not been dropped yet.
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// How many writer tasks are still running.
    pub fn running_writers(&self) -> usize {
        self.inner.writers.load(Ordering::Acquire)
    }

    /// Whether [`close_all`](Self::close_all) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Closes every open live stream, and every one opened from now on: their
    /// writes return [`LiveError::StreamClosed`](crate::LiveError::StreamClosed)
    /// and [`LiveStream::closed`](crate::LiveStream::closed) resolves. Bodies
    /// end cleanly after what was already written.
    pub fn close_all(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let streams: Vec<Arc<dyn ShutDown>> = self
            .lock()
            .values()
            .filter_map(|e| e.stream.upgrade())
            .collect();
        // Outside the lock: closing wakes the stream's body and writer.
        for shared in streams {
            shared.shut_down();
        }
    }

    /// Waits until no writer task is running.
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
    pub fn abort_writers(&self) {
        for entry in self.lock().values() {
            if let Some(abort) = &entry.abort {
                abort.abort();
            }
        }
    }

    /// Graceful shutdown of the live streams alone: closes them all, waits up
    /// to `deadline` for their writers to return, then aborts the rest.
    /// Returns how many writers had to be aborted.
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        self.close_all();
        if tokio::time::timeout(deadline, self.wait_writers())
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
        if self.is_shutting_down() {
            // Registered after close_all took its snapshot, or during it.
            shared.shut_down();
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
