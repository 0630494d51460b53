//! [`PipeWriter`]: a writer task's end of the pipe.

use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use std::task::{Context, Poll};

use std::sync::Arc;

use super::{park, Shared, CLOSED, DISCONNECTED};
use crate::error::LiveError;

/// Frames encoded for the channel go through a scratch buffer allocated in
/// blocks of this size, so a writer allocates once per block rather than
/// once per frame.
const SCRATCH_BLOCK: usize = 16 * 1024;

/// The writer's end: hands bytes over in order, waits for room, fails once
/// the stream is closed or the client gone.
#[derive(Debug)]
pub(crate) struct PipeWriter {
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
}

impl PipeWriter {
    pub(super) fn new(tx: mpsc::Sender<Bytes>, shared: Arc<Shared>) -> Self {
        PipeWriter { tx, shared }
    }

    /// The state both ends share (flags, for the writer's queries).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A sender that keeps the channel open while it lives (the writer task
    /// holds one until the writer's outcome is recorded, so the body never
    /// sees the end before it knows whether the end is clean).
    pub(crate) fn keep_open(&self) -> mpsc::Sender<Bytes> {
        self.tx.clone()
    }

    /// Hands `bytes` over, waiting while the pipe has no room for them.
    /// Cancel-safe: dropped before it completes, nothing of `bytes` was
    /// handed over.
    pub(crate) async fn send(&mut self, bytes: Bytes) -> Result<(), LiveError> {
        if bytes.is_empty() {
            return self.shared.write_error().map_or(Ok(()), Err);
        }
        let mut bytes = Some(bytes);
        std::future::poll_fn(|cx| self.poll_send(cx, &mut bytes)).await
    }

    /// Hands `bytes` over if there is room now, without waiting: `Ok(None)`
    /// when done, `Ok(Some(bytes))` when the pipe is full (then
    /// [`send`](Self::send) waits). The common path of a write: no future,
    /// no waker.
    pub(crate) fn try_send(&mut self, bytes: Bytes) -> Result<Option<Bytes>, LiveError> {
        let mut slot = Some(bytes);
        match self.push(None, &mut slot) {
            Poll::Ready(result) => result.map(|()| None),
            Poll::Pending => Ok(slot),
        }
    }

    /// One attempt to hand over what `slot` holds; parks the writer when
    /// there is no room (invariant 5).
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut Option<Bytes>,
    ) -> Poll<Result<(), LiveError>> {
        self.push(Some(cx), slot)
    }

    /// The room check and the hand-over, in one critical section; with a
    /// context, parks the writer in that same section when there is no room
    /// (so the body, which wakes it after taking, cannot miss it).
    fn push(
        &mut self,
        cx: Option<&mut Context<'_>>,
        slot: &mut Option<Bytes>,
    ) -> Poll<Result<(), LiveError>> {
        let mut state = self.shared.lock();
        if let Some(e) = self.shared.write_error() {
            return Poll::Ready(Err(e));
        }
        let Some(bytes) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        let queued = state.queued();
        if queued == 0 {
            // Idle: through the channel, whose send wakes the body
            // (invariants 2 and 3).
            let len = bytes.len();
            return match self.tx.try_send(bytes) {
                Ok(()) => {
                    state.in_channel = Some(len);
                    Poll::Ready(Ok(()))
                }
                Err(e) if e.is_disconnected() => Poll::Ready(Err(self.shared.gone_error())),
                Err(e) => {
                    // The channel is empty of our messages, so it has room;
                    // should it not, the batch keeps the order anyway, and
                    // the body takes it on its next poll.
                    debug_assert!(false, "an idle pipe's channel is full");
                    state.batch.push(e.into_inner());
                    Poll::Ready(Ok(()))
                }
            };
        }
        if queued + bytes.len() <= self.shared.limit {
            state.batch.push(bytes);
            return Poll::Ready(Ok(()));
        }
        *slot = Some(bytes);
        if let Some(cx) = cx {
            park(&mut state.writer, cx.waker());
        }
        Poll::Pending
    }

    /// Hands over one frame that `encode` appends to a buffer: straight into
    /// the batch when the pipe is busy (no intermediate buffer), else
    /// through `scratch` and the channel. `encode` may run more than once
    /// (after a wait) and must append the same bytes each time.
    pub(crate) async fn send_encoded(
        &mut self,
        scratch: &mut BytesMut,
        encode: impl Fn(&mut BytesMut),
    ) -> Result<(), LiveError> {
        std::future::poll_fn(|cx| self.poll_send_encoded(cx, scratch, &encode)).await
    }

    fn poll_send_encoded(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut BytesMut,
        encode: &impl Fn(&mut BytesMut),
    ) -> Poll<Result<(), LiveError>> {
        let mut state = self.shared.lock();
        if let Some(e) = self.shared.write_error() {
            return Poll::Ready(Err(e));
        }
        let queued = state.queued();
        if queued == 0 {
            drop(state);
            if scratch.capacity() - scratch.len() < 512 {
                scratch.reserve(SCRATCH_BLOCK);
            }
            encode(scratch);
            let mut frame = Some(scratch.split().freeze());
            // An idle pipe has room for anything: this never waits.
            return self.poll_send(cx, &mut frame);
        }
        let added = state.batch.encode(encode);
        if queued + added <= self.shared.limit {
            return Poll::Ready(Ok(()));
        }
        state.batch.undo_encode(added);
        park(&mut state.writer, cx.waker());
        Poll::Pending
    }

    /// Whether the client has gone away.
    pub(crate) fn is_disconnected(&self) -> bool {
        self.shared.has(DISCONNECTED)
    }

    /// Closes the stream: the body ends cleanly once it has taken what was
    /// written.
    pub(crate) fn close(&mut self) {
        self.shared.set(CLOSED);
        self.close_channel();
    }

    /// Marks the client as gone and closes the stream.
    pub(crate) fn disconnect(&mut self) {
        self.shared.set(DISCONNECTED | CLOSED);
        self.close_channel();
    }

    /// Closes the channel under the lock (invariant 1): a body that sees it
    /// closed took the lock after this, so it sees the flag set before.
    fn close_channel(&mut self) {
        let _state = self.shared.lock();
        self.tx.close_channel();
    }
}
