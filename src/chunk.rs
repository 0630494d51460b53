//! What a live writer can write: text (encoded in the response charset) or
//! bytes (passed through unchanged).

use bytes::Bytes;
use std::borrow::Cow;

/// One piece of a live response body, before encoding.
///
/// You rarely name this type: [`LiveStream::write`](crate::LiveStream::write)
/// takes anything that converts into it — `&str`, `String` (text, encoded in
/// the response charset) or `Bytes`, `Vec<u8>`, `&'static [u8]` (written
/// through unchanged).
///
/// # Example
///
/// ```
/// use rill::Chunk;
///
/// assert!(matches!(Chunk::from("héllo"), Chunk::Text(_)));
/// assert!(matches!(Chunk::from(&b"\x00\x01"[..]), Chunk::Binary(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Text, encoded with the response charset when written.
    Text(Cow<'a, str>),
    /// Bytes, written as they are.
    Binary(Bytes),
}

impl Chunk<'_> {
    /// Whether the chunk carries nothing (such a write is skipped: an empty
    /// chunk would end an HTTP/1.1 chunked body early).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::Chunk;
    ///
    /// assert!(Chunk::from("").is_empty()); // skipped: it would end a chunked body
    /// assert!(!Chunk::from(vec![0u8]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        match self {
            Chunk::Text(t) => t.is_empty(),
            Chunk::Binary(b) => b.is_empty(),
        }
    }
}

impl<'a> From<&'a str> for Chunk<'a> {
    fn from(s: &'a str) -> Self {
        Chunk::Text(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for Chunk<'a> {
    fn from(s: &'a String) -> Self {
        Chunk::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Chunk<'_> {
    fn from(s: String) -> Self {
        Chunk::Text(Cow::Owned(s))
    }
}

impl<'a> From<Cow<'a, str>> for Chunk<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Chunk::Text(s)
    }
}

impl From<Bytes> for Chunk<'_> {
    fn from(b: Bytes) -> Self {
        Chunk::Binary(b)
    }
}

impl From<Vec<u8>> for Chunk<'_> {
    fn from(b: Vec<u8>) -> Self {
        Chunk::Binary(Bytes::from(b))
    }
}

impl From<&'static [u8]> for Chunk<'_> {
    fn from(b: &'static [u8]) -> Self {
        Chunk::Binary(Bytes::from_static(b))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Chunk<'_> {
    fn from(b: &'static [u8; N]) -> Self {
        Chunk::Binary(Bytes::from_static(b))
    }
}
