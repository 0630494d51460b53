//! The state one live response shares between its writer, its body and its
//! task: a few flags and a notifier that wakes whoever waits on them.

use std::sync::{
    atomic::{AtomicU8, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
use tokio::sync::Notify;

use super::pending::Pending;
use crate::error::LiveError;

/// The stream was closed: no more writes (close, disconnect, writer finished,
/// shutdown). The body ends cleanly once it drains.
pub(crate) const CLOSED: u8 = 1 << 0;
/// The client is gone: the body was dropped before it ended.
pub(crate) const DISCONNECTED: u8 = 1 << 1;
/// The writer failed or panicked: the body ends with an error.
pub(crate) const FAILED: u8 = 1 << 2;
/// The server is shutting down (always set together with `CLOSED`).
pub(crate) const SHUTDOWN: u8 = 1 << 3;
/// The body reached its end (cleanly or not); dropping it is no disconnect.
pub(crate) const BODY_DONE: u8 = 1 << 4;
/// The writer's `LiveStream` was dropped (its task ended or was aborted):
/// the channel may end without `CLOSED` or `FAILED`, so the body must look.
pub(crate) const WRITER_GONE: u8 = 1 << 5;

#[derive(Debug, Default)]
pub(crate) struct Shared {
    flags: AtomicU8,
    /// Woken on every flag change, so `disconnected()`/`closed()` futures and
    /// writes blocked on back-pressure see it at once; also when the body
    /// takes the pending batch.
    changed: Notify,
    /// Bytes written while the channel was full, in order after everything in
    /// the channel; the body takes them all at once when the channel is
    /// drained. This is how one chunk carries many events under load while
    /// the channel stays bounded.
    pending: Mutex<Pending>,
    /// Messages sent into the channel and not yet taken by the body. The
    /// writer reads it under the pending lock; the body decrements it before
    /// it takes that lock, so a writer that sees 0 knows the body will look
    /// at the channel again (and wakes it by sending).
    in_flight: AtomicUsize,
    /// How the writer task ended, for its `WriterHandle`s.
    outcome: super::task::Outcome,
}

impl Shared {
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Acquire)
    }

    pub(crate) fn has(&self, bits: u8) -> bool {
        self.flags() & bits == bits
    }

    /// Sets `bits`; returns the flags as they were before.
    pub(crate) fn set(&self, bits: u8) -> u8 {
        let prev = self.flags.fetch_or(bits, Ordering::AcqRel);
        if prev & bits != bits {
            self.changed.notify_waiters();
        }
        prev
    }

    /// Sets `bits` unless any of `unless` is already set. Returns whether it did.
    pub(crate) fn set_unless(&self, bits: u8, unless: u8) -> bool {
        let updated = self
            .flags
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                (f & unless == 0).then_some(f | bits)
            })
            .is_ok();
        if updated {
            self.changed.notify_waiters();
        }
        updated
    }

    /// The error a write gets now, if any. Closing wins over disconnection:
    /// after `disconnect()` (which sets both) writes report `StreamClosed`.
    pub(crate) fn write_error(&self) -> Option<LiveError> {
        let f = self.flags();
        if f & CLOSED != 0 {
            Some(LiveError::StreamClosed)
        } else if f & DISCONNECTED != 0 {
            Some(LiveError::ClientDisconnected)
        } else {
            None
        }
    }

    /// The error for a send whose receiver is gone.
    pub(crate) fn gone_error(&self) -> LiveError {
        self.write_error().unwrap_or(LiveError::ClientDisconnected)
    }

    /// Waits until any of `bits` is set.
    pub(crate) async fn wait_for(&self, bits: u8) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so a change between the check and the
            // await is not lost.
            notified.as_mut().enable();
            if self.flags() & bits != 0 {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn notifier(&self) -> &Notify {
        &self.changed
    }

    /// Messages in the channel that the body has not taken.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Counts a message about to be sent into the channel.
    pub(crate) fn sending(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts a message that could not be sent after all.
    pub(crate) fn not_sent(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts a message the body took out of the channel.
    pub(crate) fn received(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn outcome(&self) -> &super::task::Outcome {
        &self.outcome
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        // Critical sections are single appends/splits: never inconsistent.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
