//! [`PipeFeed`]: a broker's end of the pipe. It never waits: the broker
//! looks at what is queued and decides (queue, drop, or cut the subscriber
//! off) under the pipe's lock.

use std::sync::Arc;

use super::{Shared, State, CLOSED, DISCONNECTED};

/// Feeds a pipe from outside any task: appends to its batch and wakes its
/// body.
#[derive(Debug, Clone)]
pub(crate) struct PipeFeed {
    shared: Arc<Shared>,
}

/// Why a feed could not be written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedClosed {
    /// The stream was closed (by the broker, or by a shutdown).
    Closed,
    /// The client went away.
    Disconnected,
}

impl PipeFeed {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        PipeFeed { shared }
    }

    /// The state both ends share.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs `f` on the pipe's state under its lock, then wakes the body if
    /// `f` left bytes for it (invariant 3). Fails without running `f` once
    /// the stream is closed or the client gone.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R, FeedClosed> {
        let (result, reader) = {
            let mut state = self.shared.lock();
            let flags = self.shared.flags();
            if flags & CLOSED != 0 {
                return Err(FeedClosed::Closed);
            }
            if flags & DISCONNECTED != 0 {
                return Err(FeedClosed::Disconnected);
            }
            let result = f(&mut state);
            let reader = if state.batch.is_empty() {
                None
            } else {
                state.reader.take()
            };
            (result, reader)
        };
        if let Some(waker) = reader {
            waker.wake();
        }
        Ok(result)
    }

    /// Whether the stream can take no more (closed, or the client gone).
    #[cfg(loom)]
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.flags() & (CLOSED | DISCONNECTED) != 0
    }

    /// Closes the stream: its body ends cleanly once it has taken what is
    /// queued.
    pub(crate) fn close(&self) {
        self.shared.set(CLOSED);
    }
}
