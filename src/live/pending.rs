//! [`Pending`]: what a writer produced while the body was busy, in order,
//! waiting for the body to take it all at once.

use bytes::{Bytes, BytesMut};
use std::{collections::VecDeque, task::Waker};

/// Chunks shorter than this are copied into the open part; longer ones are
/// kept as they are, uncopied. hyper passes at most 64 buffers to one
/// `writev`, so kept chunks of at least `BATCH_LIMIT / 64` still fill a
/// whole batch per system call; shorter ones would cost more calls than the
/// copy saves (measured with 1 KiB chunks: same CPU, 12× the `writev`s).
pub(crate) const COPY_BELOW: usize = super::stream::BATCH_LIMIT / 64;

/// Bytes written while the body had not taken the previous message, oldest
/// first: whole chunks as they were written, then the open part that small
/// writes and encoded SSE frames are appended to.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    parts: VecDeque<Bytes>,
    open: BytesMut,
    len: usize,
    /// Chunks and frames appended since the last take.
    writes: usize,
    /// The body's waker, left when it found nothing pending: how a feeder
    /// that bypasses the channel (a hub) wakes it.
    body: Option<Waker>,
    /// A writer waits for this batch to be taken (and must be notified).
    writer_waiting: bool,
}

impl Pending {
    /// Bytes waiting in all parts.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Chunks and frames waiting (how a hub bounds a subscriber's queue).
    pub(crate) fn writes(&self) -> usize {
        self.writes
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a chunk: copied into the open part when short, kept whole
    /// (no copy) otherwise.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.writes += 1;
        if chunk.len() < COPY_BELOW {
            self.open.extend_from_slice(&chunk);
        } else {
            self.close_open_part();
            self.parts.push_back(chunk);
        }
    }

    /// Appends what `encode` writes to the open part.
    pub(crate) fn encode(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        let before = self.open.len();
        encode(&mut self.open);
        self.len += self.open.len() - before;
        self.writes += 1;
    }

    /// Leaves the body's waker, to be woken by the next
    /// [`take_waker`](Self::take_waker).
    pub(crate) fn park(&mut self, waker: &Waker) {
        match &mut self.body {
            Some(parked) if parked.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    /// The body's parked waker, if it is waiting for this batch.
    pub(crate) fn take_waker(&mut self) -> Option<Waker> {
        self.body.take()
    }

    /// Records that a writer waits for the batch to be taken.
    pub(crate) fn writer_waits(&mut self) {
        self.writer_waiting = true;
    }

    /// Hands everything to `each`, oldest part first, leaving the batch
    /// empty (and its buffers' capacity in place). Returns whether a writer
    /// was waiting for this.
    pub(crate) fn take(&mut self, mut each: impl FnMut(Bytes)) -> bool {
        self.parts.drain(..).for_each(&mut each);
        if !self.open.is_empty() {
            each(self.open.split().freeze());
        }
        self.len = 0;
        self.writes = 0;
        std::mem::take(&mut self.writer_waiting)
    }

    /// Ends the open part, so what follows it goes after it. The rest of its
    /// allocation stays open for later writes.
    fn close_open_part(&mut self) {
        if !self.open.is_empty() {
            self.parts.push_back(self.open.split().freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_copied_and_kept_chunks() {
        let mut pending = Pending::default();
        let big = Bytes::from(vec![b'b'; COPY_BELOW]);
        pending.push(Bytes::from_static(b"a1"));
        pending.encode(|buf| buf.extend_from_slice(b"a2"));
        pending.push(big.clone());
        pending.push(Bytes::from_static(b"c"));
        assert_eq!(pending.len(), 5 + COPY_BELOW);
        assert_eq!(pending.writes(), 4);
        let mut parts = Vec::new();
        assert!(!pending.take(|part| parts.push(part)));
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "a1a2");
        // The long chunk is the very allocation that was written.
        assert_eq!(parts[1].as_ptr(), big.as_ptr());
        assert_eq!(parts[2], "c");
        assert!(pending.is_empty());
        pending.writer_waits();
        assert!(pending.take(|_| panic!("nothing is left")));
        assert!(!pending.take(|_| {}), "the wait was reported once");
    }
}
