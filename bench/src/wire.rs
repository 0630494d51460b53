//! HTTP/1.1 response framing for the load generator: the head, then a body
//! that is either `Content-Length` bytes, chunked, or everything until EOF.
//!
//! The decoder hands out slices of the caller's read buffer, so reading a
//! body costs no allocation and no copy.

use memchr::memmem;

/// Largest response head accepted before giving up on a peer.
const MAX_HEAD: usize = 64 * 1024;

/// The parts of a response head the load generator looks at.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub body: BodyKind,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy)]
pub enum BodyKind {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: N`.
    Length(u64),
    /// Neither: the body ends when the connection does.
    Eof,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err("response head too long".into());
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut body = BodyKind::Eof;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            body = BodyKind::Chunked;
        } else if name.eq_ignore_ascii_case("content-length") && !matches!(body, BodyKind::Chunked)
        {
            let n = value
                .parse()
                .map_err(|_| format!("bad content-length {value:?}"))?;
            body = BodyKind::Length(n);
        }
    }
    Ok(Some((Head { status, body }, end + 4)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

/// Decodes one response body incrementally.
#[derive(Debug)]
pub struct BodyDecoder {
    kind: BodyKind,
    state: Chunk,
    /// Bytes left in the current chunk, or in the whole body for `Length`.
    remaining: u64,
    /// Chunk-size digits seen on the current size line (guards against junk).
    digits: u32,
}

impl BodyDecoder {
    /// A decoder for a body delimited as `kind`.
    pub fn new(kind: BodyKind) -> Self {
        let remaining = match kind {
            BodyKind::Length(n) => n,
            _ => 0,
        };
        BodyDecoder {
            kind,
            state: Chunk::Size,
            remaining,
            digits: 0,
        }
    }

    /// Whether the whole body has been seen.
    pub fn is_done(&self) -> bool {
        match self.kind {
            BodyKind::Chunked => self.state == Chunk::Done,
            BodyKind::Length(_) => self.remaining == 0,
            BodyKind::Eof => false,
        }
    }

    /// Whether EOF is a proper end of this body.
    pub fn ends_at_eof(&self) -> bool {
        matches!(self.kind, BodyKind::Eof) || self.is_done()
    }

    /// Feeds received bytes; `out` gets each run of body bytes. Returns how
    /// many input bytes belonged to the body (the rest follows it).
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
        bad: impl Fn(String) -> E,
    ) -> Result<usize, E> {
        match self.kind {
            BodyKind::Eof => {
                out(input)?;
                Ok(input.len())
            }
            BodyKind::Length(_) => {
                let take = input
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                if take > 0 {
                    out(&input[..take])?;
                }
                self.remaining -= take as u64;
                Ok(take)
            }
            BodyKind::Chunked => self.feed_chunked(input, out, bad),
        }
    }

    fn feed_chunked<E>(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
        bad: impl Fn(String) -> E,
    ) -> Result<usize, E> {
        let mut i = 0;
        while i < input.len() && self.state != Chunk::Done {
            if self.state == Chunk::Data {
                let take =
                    (input.len() - i).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                out(&input[i..i + take])?;
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = Chunk::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Chunk::Size, b'\r') if self.digits > 0 => Chunk::SizeLf,
                (Chunk::Size, b';' | b' ' | b'\t') if self.digits > 0 => Chunk::Extension,
                (Chunk::Size, _) => {
                    let digit = (b as char)
                        .to_digit(16)
                        .ok_or_else(|| bad(format!("bad chunk size byte {b:#x}")))?;
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(bad("chunk size too long".into()));
                    }
                    self.remaining = self.remaining * 16 + u64::from(digit);
                    Chunk::Size
                }
                (Chunk::Extension, b'\r') => Chunk::SizeLf,
                (Chunk::Extension, _) => Chunk::Extension,
                (Chunk::SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.remaining == 0 {
                        Chunk::TrailerStart
                    } else {
                        Chunk::Data
                    }
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => Chunk::Size,
                (Chunk::TrailerStart, b'\r') => Chunk::TrailerLf,
                (Chunk::TrailerStart | Chunk::TrailerLine, b'\n') => Chunk::TrailerStart,
                (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
                (Chunk::TrailerLf, b'\n') => Chunk::Done,
                (state, b) => {
                    return Err(bad(format!(
                        "bad chunked framing: byte {b:#x} in {state:?}"
                    )))
                }
            };
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(kind: BodyKind, wire: &[u8], step: usize) -> (Vec<u8>, bool) {
        let mut d = BodyDecoder::new(kind);
        let mut body = Vec::new();
        for piece in wire.chunks(step) {
            d.feed(
                piece,
                |b| -> Result<(), String> {
                    body.extend_from_slice(b);
                    Ok(())
                },
                |e| e,
            )
            .unwrap();
        }
        (body, d.is_done())
    }

    /// Chunked bodies decode the same whatever the read boundaries.
    #[test]
    fn chunked_any_split() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nx-t: 1\r\n\r\n";
        for step in 1..wire.len() {
            let (body, done) = decode(BodyKind::Chunked, wire, step);
            assert_eq!(body, b"hello world!");
            assert!(done);
        }
    }

    /// Content-Length stops at the declared length.
    #[test]
    fn length_body() {
        let (body, done) = decode(BodyKind::Length(3), b"abcdef", 2);
        assert_eq!(body, b"abc");
        assert!(done);
    }

    /// The head parser finds status and framing.
    #[test]
    fn head() {
        let buf = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n";
        let (head, len) = parse_head(buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert!(matches!(head.body, BodyKind::Chunked));
        assert_eq!(&buf[len..], b"5\r\n");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
    }
}
