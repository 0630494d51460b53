//! [`Batch`]: bytes handed to the pipe while the body was busy, in order,
//! waiting for the body to take them all at once.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Chunks shorter than this are copied into the open part; longer ones are
/// kept as they are, uncopied. hyper passes at most 64 buffers to one
/// `writev`, so kept chunks of at least `DEFAULT_BUFFER_LIMIT / 64` still
/// fill a whole batch per system call; shorter ones would cost more calls
/// than the copy saves (measured with 1 KiB chunks: same CPU, 12× the
/// `writev`s).
pub(crate) const COPY_BELOW: usize = super::DEFAULT_BUFFER_LIMIT / 64;

/// Bytes queued while the body had not taken what came before, oldest
/// first: whole chunks as they were written, then the open part that small
/// writes and encoded frames are appended to.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    parts: VecDeque<Bytes>,
    open: BytesMut,
    len: usize,
    /// Chunks and frames appended since the last take.
    writes: usize,
}

impl Batch {
    /// Bytes waiting in all parts.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Chunks and frames waiting.
    pub(crate) fn writes(&self) -> usize {
        self.writes
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a chunk: copied into the open part when short, kept whole
    /// (no copy) otherwise. Empty chunks are skipped.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if chunk.len() < COPY_BELOW {
            self.len += chunk.len();
            self.writes += 1;
            self.open.extend_from_slice(&chunk);
        } else {
            self.push_shared(chunk);
        }
    }

    /// Appends a frame shared with others: copied when short (without
    /// touching its reference count, which other threads may be touching
    /// too), shared when long.
    pub(crate) fn push_ref(&mut self, frame: &Bytes) {
        if frame.is_empty() {
            return;
        }
        if frame.len() < COPY_BELOW {
            self.len += frame.len();
            self.writes += 1;
            self.open.extend_from_slice(frame);
        } else {
            self.push_shared(frame.clone());
        }
    }

    /// Makes room for `bytes` more copied bytes at once.
    pub(crate) fn reserve_bytes(&mut self, bytes: usize) {
        self.open.reserve(bytes);
    }

    /// Makes room for `parts` more kept parts at once.
    pub(crate) fn reserve_parts(&mut self, parts: usize) {
        self.parts.reserve(parts);
    }

    /// Appends a chunk without copying it, whatever its length: a frame
    /// shared with other readers (a history entry) stays one allocation.
    pub(crate) fn push_shared(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.close_open_part();
        self.len += chunk.len();
        self.writes += 1;
        self.parts.push_back(chunk);
    }

    /// Appends what `encode` writes to the open part; returns how many bytes
    /// that was, so that [`undo_encode`](Self::undo_encode) can take it back.
    pub(crate) fn encode(&mut self, encode: impl FnOnce(&mut BytesMut)) -> usize {
        let before = self.open.len();
        encode(&mut self.open);
        let added = self.open.len() - before;
        if added > 0 {
            self.len += added;
            self.writes += 1;
        }
        added
    }

    /// Takes back the last [`encode`](Self::encode) of `added` bytes.
    pub(crate) fn undo_encode(&mut self, added: usize) {
        if added == 0 {
            return;
        }
        let keep = self.open.len() - added;
        self.open.truncate(keep);
        self.len -= added;
        self.writes -= 1;
    }

    /// Hands everything to `each`, oldest part first, leaving the batch
    /// empty (and its open buffer's spare capacity in place).
    pub(crate) fn take(&mut self, mut each: impl FnMut(Bytes)) {
        self.parts.drain(..).for_each(&mut each);
        if !self.open.is_empty() {
            each(self.open.split().freeze());
        }
        self.len = 0;
        self.writes = 0;
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
        let mut batch = Batch::default();
        let big = Bytes::from(vec![b'b'; COPY_BELOW]);
        let shared = Bytes::from_static(b"s");
        batch.push(Bytes::from_static(b"a1"));
        batch.encode(|buf| buf.extend_from_slice(b"a2"));
        batch.push(big.clone());
        batch.push(Bytes::from_static(b"c"));
        batch.push_shared(shared.clone());
        assert_eq!(batch.len(), 6 + COPY_BELOW);
        assert_eq!(batch.writes(), 5);
        let mut parts = Vec::new();
        batch.take(|part| parts.push(part));
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "a1a2");
        // The long chunk and the shared one are the very allocations given.
        assert_eq!(parts[1].as_ptr(), big.as_ptr());
        assert_eq!(parts[2], "c");
        assert_eq!(parts[3].as_ptr(), shared.as_ptr());
        assert!(batch.is_empty());
    }

    #[test]
    fn an_encode_can_be_taken_back() {
        let mut batch = Batch::default();
        batch.push(Bytes::from_static(b"keep"));
        let added = batch.encode(|buf| buf.extend_from_slice(b"drop"));
        assert_eq!(added, 4);
        batch.undo_encode(added);
        assert_eq!((batch.len(), batch.writes()), (4, 1));
        let mut parts = Vec::new();
        batch.take(|part| parts.push(part));
        assert_eq!(parts, vec![Bytes::from_static(b"keep")]);
    }
}
