//! [`Gather`]: the chunks a reader took in one poll, as one `Bytes` — the
//! plain [`Body`](crate::Body)'s frames and a named-event connection's
//! WebSocket messages.

use bytes::{Bytes, BytesMut};

use super::Collect;

/// The smallest buffer several chunks are joined into when no size was
/// announced, so that a few more do not make it grow again.
const MIN_JOINED: usize = 8 * 1024;

/// A single chunk passed through as it is; several copied, in order, into
/// one buffer (of the size announced by [`Collect::reserve`] when it was).
#[derive(Default)]
pub(crate) struct Gather {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    expected: usize,
}

impl Collect for Gather {
    type Data = Bytes;

    fn reserve(&mut self, bytes: usize) {
        self.expected += bytes;
    }

    fn push(&mut self, chunk: Bytes) {
        if let Some(joined) = &mut self.joined {
            joined.extend_from_slice(&chunk);
        } else if let Some(first) = self.first.take() {
            let size = (first.len() + chunk.len()).max(self.expected);
            let size = if self.expected > 0 {
                size
            } else {
                size.max(MIN_JOINED)
            };
            let mut joined = BytesMut::with_capacity(size);
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&chunk);
            self.joined = Some(joined);
        } else {
            self.first = Some(chunk);
        }
    }

    fn finish(self) -> Option<Bytes> {
        match self.joined {
            Some(joined) => Some(joined.freeze()),
            None => self.first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chunk_passes_through_and_several_are_joined_in_order() {
        let one = Bytes::from_static(b"alone");
        let mut g = Gather::default();
        g.push(one.clone());
        let out = g.finish().expect("data");
        assert_eq!(out.as_ptr(), one.as_ptr(), "not copied");

        let mut g = Gather::default();
        g.reserve(6);
        for part in ["ab", "cd", "ef"] {
            g.push(Bytes::from_static(part.as_bytes()));
        }
        assert_eq!(g.finish().expect("data"), "abcdef");
        assert!(Gather::default().finish().is_none());
    }
}
