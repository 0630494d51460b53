//! The pipe between whoever produces a live response's bytes and the body
//! that hands them to hyper: both halves and their shared state, in one
//! place (as hyper's `body/incoming.rs` keeps its channel's two ends).
//!
//! * [`PipeWriter`] — a writer task's end ([`LiveStream`](crate::LiveStream)
//!   wraps it): writes wait for room, and fail once the stream is closed or
//!   the client gone.
//! * [`PipeFeed`] — a broker's end: frames are offered without ever waiting;
//!   the broker applies its slow-consumer policy when there is no room.
//! * [`PipeReader`] — the body's end: takes everything ready as one frame.
//!
//! # The memory bound
//!
//! A pipe holds at most `limit` bytes written and not yet taken by the body
//! ([`DEFAULT_BUFFER_LIMIT`] unless the response says otherwise). A write
//! that would pass it waits until the body has taken what is queued; a
//! single chunk larger than the limit is sent alone, once nothing else is
//! queued. So the bytes held are at most `max(limit, largest chunk)`.
//!
//! # How bytes travel
//!
//! A write to an idle pipe (nothing queued) goes through a bounded
//! `futures_channel::mpsc` channel, whose send wakes the body. While that
//! message is not taken, further writes are appended to the *batch*, which
//! the body takes whole, together with the message, on its next poll: under
//! load one wake and one frame carry many writes. A feed has no channel: it
//! appends to the batch and wakes the body's parked waker.
//!
//! # Invariants
//!
//! Every rule below is relied on by the code of this module and checked by
//! the loom models in `loom_tests.rs` (`bash scripts/loom.sh`).
//!
//! 1. **One lock.** The batch, the count of queued bytes (`in_channel`:
//!    the length of the message in the channel) and both parked wakers are
//!    touched only while holding `Shared::state`. The writer sends into (and
//!    closes) the channel only under it. The body may take the channel's
//!    message before taking the lock, but acknowledges it (clears
//!    `in_channel`) only under it, and reads the flags under it.
//! 2. **Order.** The writer uses the channel only when nothing is queued
//!    (`in_channel` is `None` and the batch is empty), so the channel holds
//!    at most one message, and that message is older than everything in the
//!    batch; until the body acknowledges it, writes go to the batch. The body
//!    takes the message (or, if it was sent after the body's look at the
//!    channel, looks again under the lock), then the batch — swapped for an
//!    empty one under the lock, emptied into the frame after it, so the
//!    writer is held up by a swap, not by the frame being built: bytes
//!    leave in the order they were written.
//! 3. **No lost wake-up.** A write into an idle pipe either sends on the
//!    channel (which wakes the body's waker, registered by its last empty
//!    poll of the channel) or, for a feed, wakes the body's waker parked in
//!    `State::reader` by its last poll that found nothing. A write into a
//!    busy pipe needs no wake: the body was woken by whatever made the pipe
//!    busy and has not taken it yet.
//! 4. **Flags, then the lock.** Whoever sets a flag (`CLOSED`,
//!    `DISCONNECTED`, `FAILED`, `SHUTDOWN`) sets it first, then takes the lock
//!    and wakes both parked wakers. Whoever parks a waker checks the flags
//!    under the lock, after parking. So a flag change is never missed by a
//!    writer waiting for room nor by a body waiting for data.
//! 5. **Room.** The body wakes a writer parked for room after every poll
//!    that took bytes; a writer parks only after checking for room under the
//!    lock.
//!
//! # How a stream ends
//!
//! * The writer closes it (`close`, or its task returns): `CLOSED`, then the
//!   channel closes; the body ends cleanly once it has taken everything.
//! * The writer fails or panics: `FAILED`, then its task drops the last
//!   sender; the body ends with an error, after what was written.
//! * The writer task is dropped (aborted) without closing: the channel ends
//!   with neither flag; the body ends with an error (cancelled).
//! * The server begins a graceful shutdown: `SHUTDOWN` alone — nothing
//!   ends, `closed()` resolves, writes still succeed (the grace window in
//!   which a writer says goodbye). Then, once the writers have returned or
//!   the grace has passed, `CLOSED | SHUTDOWN`.
//! * A feed is closed by its broker, or the server shuts down: `CLOSED`
//!   (with `SHUTDOWN`); a feed's body ends cleanly once it has taken
//!   everything; a writer sees `StreamClosed` and returns.
//! * The client leaves: hyper drops the body, which sets `DISCONNECTED`;
//!   the next write fails and `disconnected()` resolves.

mod batch;
mod feed;
mod gather;
mod reader;
mod writer;

#[cfg(all(test, loom))]
mod loom_tests;

pub(crate) use batch::{Batch, COPY_BELOW};
pub(crate) use feed::PipeFeed;
pub(crate) use gather::Gather;
pub(crate) use reader::{Collect, End, PipeReader, Read};
pub(crate) use writer::PipeWriter;

use crate::sync::{AtomicU8, Mutex, MutexGuard, Ordering};
use bytes::Bytes;
use std::{sync::Arc, task::Waker};

use crate::error::LiveError;

/// How many bytes a live response may queue between its writer and its body
/// by default.
pub const DEFAULT_BUFFER_LIMIT: usize = 256 * 1024;

/// The stream was closed: no more writes (close, writer finished, broker
/// close, shutdown). The body ends cleanly once it has taken everything.
pub(crate) const CLOSED: u8 = 1 << 0;
/// The client is gone: the body was dropped before it ended.
pub(crate) const DISCONNECTED: u8 = 1 << 1;
/// The writer failed or panicked: the body ends with an error.
pub(crate) const FAILED: u8 = 1 << 2;
/// The server is shutting down: set alone when the shutdown is announced
/// (writes still succeed during its grace), with `CLOSED` when it closes.
pub(crate) const SHUTDOWN: u8 = 1 << 3;
/// The body reached its end (cleanly or not); dropping it is no disconnect.
pub(crate) const BODY_DONE: u8 = 1 << 4;

/// A pipe for a writer task: the writer's end and the body's end.
pub(crate) fn channel(limit: usize) -> (PipeWriter, PipeReader) {
    // The writer never has more than one message in the channel (invariant
    // 2); a buffer of one keeps that message from parking the sender
    // (futures' mpsc parks a sender past its buffer, which costs a queue
    // node and a wake per message).
    let (tx, rx) = futures_channel::mpsc::channel::<Bytes>(1);
    let shared = Arc::new(Shared::new(limit));
    (
        PipeWriter::new(tx, shared.clone()),
        PipeReader::new(Some(rx), shared),
    )
}

/// A pipe for a broker: the feed and the body's end.
pub(crate) fn feed(limit: usize) -> (PipeFeed, PipeReader) {
    let shared = Arc::new(Shared::new(limit));
    (PipeFeed::new(shared.clone()), PipeReader::new(None, shared))
}

/// What both ends share.
#[derive(Debug)]
pub(crate) struct Shared {
    flags: AtomicU8,
    /// Woken on every flag change, for the futures that wait for one
    /// (`disconnected()`, `closed()`).
    watchers: tokio::sync::Notify,
    state: Mutex<State>,
    /// The most bytes queued before a write waits.
    limit: usize,
}

/// Everything behind the pipe's one lock (invariant 1).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) batch: Batch,
    /// The length of the message in the channel that the body has not
    /// taken; `None` when the channel is empty.
    in_channel: Option<usize>,
    /// The body's waker, parked by a poll that found nothing.
    reader: Option<Waker>,
    /// A writer's waker, parked while it waits for room.
    writer: Option<Waker>,
}

impl State {
    /// Bytes written and not yet taken by the body.
    pub(crate) fn queued(&self) -> usize {
        self.batch.len() + self.in_channel.unwrap_or(0)
    }
}

impl Shared {
    fn new(limit: usize) -> Self {
        Shared {
            flags: AtomicU8::new(0),
            watchers: tokio::sync::Notify::new(),
            state: Mutex::new(State::default()),
            limit: limit.max(1),
        }
    }

    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Acquire)
    }

    pub(crate) fn has(&self, bits: u8) -> bool {
        self.flags() & bits == bits
    }

    /// Sets `bits` and wakes whoever waits on the pipe (invariant 4);
    /// returns the flags as they were before.
    pub(crate) fn set(&self, bits: u8) -> u8 {
        let prev = self.flags.fetch_or(bits, Ordering::AcqRel);
        if prev & bits != bits {
            self.flags_changed();
        }
        prev
    }

    /// Sets `bits` unless any of `unless` is already set; whether it did.
    pub(crate) fn set_unless(&self, bits: u8, unless: u8) -> bool {
        let updated = self
            .flags
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                (f & unless == 0).then_some(f | bits)
            })
            .is_ok();
        if updated {
            self.flags_changed();
        }
        updated
    }

    /// Announces a server shutdown: `closed()` resolves and
    /// `is_shutting_down()` is true, but writes still succeed.
    pub(crate) fn announce_shutdown(&self) {
        self.set(SHUTDOWN);
    }

    /// Closes the stream for a server shutdown: writes fail with
    /// `StreamClosed`, a feed's body ends after what is queued.
    pub(crate) fn shut_down(&self) {
        self.set(CLOSED | SHUTDOWN);
    }

    fn flags_changed(&self) {
        let (reader, writer) = {
            let mut state = self.lock();
            (state.reader.take(), state.writer.take())
        };
        for waker in [reader, writer].into_iter().flatten() {
            waker.wake();
        }
        self.watchers.notify_waiters();
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
            let notified = self.watchers.notified();
            tokio::pin!(notified);
            // Register before checking, so a change between the check and
            // the await is not lost.
            notified.as_mut().enable();
            if self.flags() & bits != 0 {
                return;
            }
            notified.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Critical sections are appends, takes and waker swaps, none of which
        // can panic half-way: a poisoned lock still holds a whole state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Parks `waker` in `slot` unless the same task is parked there already.
fn park(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(parked) if parked.will_wake(waker) => {}
        slot => *slot = Some(waker.clone()),
    }
}
