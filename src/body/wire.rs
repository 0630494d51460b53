//! The body as rill's own server sends it: frames whose data is the list of
//! chunks as they were written ([`Parts`]), handed to the socket in one
//! vectored write instead of being copied together first.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use std::{
    collections::VecDeque,
    io::IoSlice,
    pin::Pin,
    task::{Context, Poll},
};

use super::{live::Wire, Body, Kind};
use crate::error::BodyError;

/// The data of one frame: chunks in order, not joined.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    /// The chunk being read; empty only when all are.
    front: Bytes,
    rest: VecDeque<Bytes>,
    remaining: usize,
}

impl Parts {
    /// Appends a chunk (empty ones are skipped).
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.remaining += chunk.len();
        if self.front.is_empty() {
            self.front = chunk;
        } else {
            self.rest.push_back(chunk);
        }
    }
}

impl Parts {
    /// The length of the last chunk (0 when there is none).
    pub(crate) fn last_len(&self) -> usize {
        self.rest.back().unwrap_or(&self.front).len()
    }

    /// Takes the last chunk back out.
    pub(crate) fn pop_last(&mut self) -> Option<Bytes> {
        let last = match self.rest.pop_back() {
            Some(last) => last,
            None => std::mem::take(&mut self.front),
        };
        self.remaining -= last.len();
        (!last.is_empty()).then_some(last)
    }
}

impl From<Bytes> for Parts {
    fn from(chunk: Bytes) -> Self {
        let mut parts = Parts::default();
        parts.push(chunk);
        parts
    }
}

impl Buf for Parts {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        &self.front
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(
            cnt <= self.remaining,
            "advance past the end of a frame ({cnt} > {})",
            self.remaining
        );
        self.remaining -= cnt;
        while cnt > 0 {
            let step = cnt.min(self.front.len());
            self.front.advance(step);
            cnt -= step;
            if self.front.is_empty() {
                match self.rest.pop_front() {
                    Some(next) => self.front = next,
                    None => break,
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let parts = std::iter::once(&self.front)
            .chain(&self.rest)
            .filter(|part| !part.is_empty());
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
            n += 1;
        }
        n
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        if len <= self.front.len() {
            // Within one chunk: share it rather than copy.
            self.remaining -= len;
            let head = self.front.split_to(len);
            if self.front.is_empty() {
                self.front = self.rest.pop_front().unwrap_or_default();
            }
            return head;
        }
        assert!(
            len <= self.remaining,
            "copy past the end of a frame ({len} > {})",
            self.remaining
        );
        let mut joined = BytesMut::with_capacity(len);
        joined.put((&mut *self).take(len));
        joined.freeze()
    }
}

/// A [`Body`] whose frames carry [`Parts`]: what rill's server gives hyper.
/// The plain `http_body::Body` of `Body` (with `Bytes` data, for other
/// stacks) joins the same chunks by copying them.
pub(crate) struct WireBody(pub(crate) Body);

impl http_body::Body for WireBody {
    type Data = Parts;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Parts>, BodyError>>> {
        match &mut self.0.kind {
            Kind::Live(live) => live.poll_frame::<Wire>(cx),
            _ => Pin::new(&mut self.0)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map(|f| f.map_data(Parts::from)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(chunks: &[&'static str]) -> Parts {
        let mut parts = Parts::default();
        for chunk in chunks {
            parts.push(Bytes::from_static(chunk.as_bytes()));
        }
        parts
    }

    #[test]
    fn vectored_chunks_then_partial_advance() {
        let mut p = parts(&["ab", "", "cde", "f"]);
        assert_eq!(p.remaining(), 6);
        let mut slots = [IoSlice::new(&[]); 2];
        assert_eq!(p.chunks_vectored(&mut slots), 2);
        assert_eq!((&*slots[0], &*slots[1]), (&b"ab"[..], &b"cde"[..]));
        p.advance(3);
        assert_eq!(p.chunk(), b"de");
        assert_eq!(p.remaining(), 3);
        p.advance(3);
        assert_eq!(p.remaining(), 0);
        assert!(p.chunk().is_empty());
    }

    #[test]
    fn copy_to_bytes_shares_within_a_chunk_and_joins_across() {
        let mut p = parts(&["abc", "def"]);
        assert_eq!(p.copy_to_bytes(3), "abc");
        assert_eq!(p.chunk(), b"def");
        let mut p = parts(&["abc", "def"]);
        assert_eq!(p.copy_to_bytes(5), "abcde");
        assert_eq!(p.remaining(), 1);
        assert_eq!(p.chunk(), b"f");
    }

    #[test]
    #[should_panic(expected = "advance past the end")]
    fn advance_past_the_end_panics() {
        parts(&["ab"]).advance(3);
    }
}
