//! A WebSocket client for the benchmarks: the handshake, masked frames out,
//! unmasked frames in (parsed in place), and the check of the contract's
//! event lines — `{"event":"e","data":"<seq> <unix_nanos> xxx…"}`, one or
//! more per text message, `\n`-separated.

use crate::client::{connect, read_head};
use crate::sse::parse_u64;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A text frame's opcode.
pub const TEXT: u8 = 0x1;
/// A binary frame's opcode.
pub const BINARY: u8 = 0x2;
/// A close frame's opcode.
pub const CLOSE: u8 = 0x8;
/// A ping frame's opcode.
pub const PING: u8 = 0x9;
/// A pong frame's opcode.
pub const PONG: u8 = 0xA;

/// An open WebSocket.
#[derive(Debug)]
pub struct WsConn {
    /// The connection.
    pub stream: TcpStream,
    /// Bytes read and not yet parsed.
    pub buf: Vec<u8>,
    /// Where the unparsed bytes start in `buf`.
    pub start: usize,
}

/// Opens a WebSocket to `path` (HTTP/1.1 upgrade; `101` expected).
pub async fn ws_connect(addr: SocketAddr, path: &str, timeout: Duration) -> Result<WsConn, String> {
    ws_connect_with(addr, path, None, timeout).await
}

/// [`ws_connect`], offering subprotocol `protocol` when given.
pub async fn ws_connect_with(
    addr: SocketAddr,
    path: &str,
    protocol: Option<&str>,
    timeout: Duration,
) -> Result<WsConn, String> {
    let work = async {
        let mut stream = connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let offer = protocol.map_or(String::new(), |p| {
            format!("sec-websocket-protocol: {p}\r\n")
        });
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n{offer}\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let (head, buf) = read_head(&mut stream).await?;
        if head.status != 101 {
            return Err(format!("handshake: status {}", head.status));
        }
        Ok(WsConn {
            stream,
            buf,
            start: 0,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("handshake of {path} timed out"))?
}

/// One frame parsed from a buffer: its opcode, and where its payload is.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    /// The opcode.
    pub opcode: u8,
    /// The FIN bit.
    pub fin: bool,
    /// The payload's range in the buffer.
    pub payload: (usize, usize),
    /// Where the next frame starts.
    pub end: usize,
}

/// The whole unmasked frame at `buf[at..]`, if it is all there.
pub fn parse_frame(buf: &[u8], at: usize) -> Result<Option<FrameAt>, String> {
    let b = &buf[at..];
    if b.len() < 2 {
        return Ok(None);
    }
    if b[1] & 0x80 != 0 {
        return Err("the server masked a frame".into());
    }
    let (len, header) = match b[1] & 0x7f {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([b[2], b[3]]) as usize, 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(n) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if b.len() < header + len {
        return Ok(None);
    }
    Ok(Some(FrameAt {
        opcode: b[0] & 0x0f,
        fin: b[0] & 0x80 != 0,
        payload: (at + header, at + header + len),
        end: at + header + len,
    }))
}

/// One masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    // A zero mask: masking is the identity, and still a valid client frame.
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

impl WsConn {
    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<(), String> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        client_frame(opcode, payload, &mut frame);
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads more bytes (compacting the buffer first); false at EOF.
    pub async fn fill(&mut self) -> Result<bool, String> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        // Into the spare capacity, unzeroed: the reader must cost as little
        // as it can, whichever server it measures.
        match self.stream.read_buf(&mut self.buf).await {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// The next frame in the buffer, if whole; consumes it.
    pub fn next_frame(&mut self) -> Result<Option<FrameAt>, String> {
        match parse_frame(&self.buf, self.start)? {
            Some(frame) => {
                self.start = frame.end;
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }
}

/// What a subscriber does with the text messages it reads: checks them
/// and records the latency of each event in them (see [`read_events`]).
pub trait TextCheck {
    /// Checks one text message's payload.
    fn text(&mut self, payload: &[u8]) -> Result<(), String>;
    /// Events checked so far.
    fn events(&self) -> usize;
    /// The wall clock (Unix ns) when the bytes about to be checked were read.
    fn read_at(&mut self, now_nanos: u64);
}

/// Reads frames into `check` until it holds `events` events (or the
/// deadline passes); returns when the last bytes arrived. One wall-clock
/// reading per `read()`; pings and pongs are skipped, a close is an error.
pub async fn read_events(
    conn: &mut WsConn,
    check: &mut impl TextCheck,
    events: usize,
    deadline: Instant,
) -> Result<Instant, String> {
    let mut last = Instant::now();
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame.opcode {
                TEXT => check.text(&conn.buf[frame.payload.0..frame.payload.1])?,
                CLOSE => {
                    return Err(format!(
                        "closed by the server after {} events",
                        check.events()
                    ))
                }
                _ => {}
            }
        }
        if check.events() >= events {
            return Ok(last);
        }
        match tokio::time::timeout_at(deadline.into(), conn.fill()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(format!("EOF after {} events", check.events())),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "timed out after {} of {events} events",
                    check.events()
                ))
            }
        }
        check.read_at(crate::scenarios::unix_nanos());
        last = Instant::now();
    }
}

/// Checks a subscriber's event lines: seq 1, 2, 3 … in order, and the
/// latency of each from the nanoseconds in its data.
#[derive(Debug)]
pub struct LineCheck {
    /// The seq expected next.
    pub next: u64,
    /// Latency of each event, in ns.
    pub latencies: Vec<u64>,
    /// Messages (frames) received.
    pub messages: u64,
    /// The wall clock when the bytes being checked were read.
    pub now_nanos: u64,
}

impl LineCheck {
    /// A check expecting `events` events.
    pub fn new(events: usize) -> Self {
        LineCheck {
            next: 1,
            latencies: Vec::with_capacity(events),
            messages: 0,
            now_nanos: 0,
        }
    }

    /// Checks every line of one text message's payload.
    pub fn message(&mut self, payload: &[u8]) -> Result<(), String> {
        self.messages += 1;
        let mut start = 0;
        // memchr, not a byte-by-byte split: the reader must not be what is
        // measured.
        let ends = memchr::memchr_iter(b'\n', payload).chain(std::iter::once(payload.len()));
        for end in ends {
            let line = &payload[start..end];
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            let (seq, nanos) = seq_and_nanos(line)?;
            if seq != self.next {
                return Err(format!("got seq {seq}, expected {}", self.next));
            }
            self.next += 1;
            self.latencies.push(self.now_nanos.saturating_sub(nanos));
        }
        Ok(())
    }
}

impl TextCheck for LineCheck {
    fn text(&mut self, payload: &[u8]) -> Result<(), String> {
        self.message(payload)
    }

    fn events(&self) -> usize {
        self.latencies.len()
    }

    fn read_at(&mut self, now_nanos: u64) {
        self.now_nanos = now_nanos;
    }
}

/// `<seq>` and `<nanos>` from `…"data":"<seq> <nanos>…`.
fn seq_and_nanos(line: &[u8]) -> Result<(u64, u64), String> {
    const KEY: &[u8] = b"\"data\":\"";
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    let at = FINDER
        .find(line)
        .ok_or_else(|| format!("no data in {:?}", String::from_utf8_lossy(line)))?;
    let rest = &line[at + KEY.len()..];
    let space = memchr::memchr(b' ', rest).ok_or("no space in data")?;
    let seq = parse_u64(&rest[..space]).ok_or("bad seq")?;
    let rest = &rest[space + 1..];
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let nanos = parse_u64(&rest[..end]).ok_or("bad nanos")?;
    Ok((seq, nanos))
}

/// The contract's event line: `{"event":"e","data":"<seq> <nanos> x…"}`.
pub fn event_line(data: &str) -> String {
    format!("{{\"event\":\"e\",\"data\":\"{data}\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_in_order() {
        let mut check = LineCheck::new(3);
        check.now_nanos = 1000;
        let payload = format!("{}\n{}\n", event_line("1 900xxxx"), event_line("2 950xxxx"));
        check.message(payload.as_bytes()).unwrap();
        check.message(event_line("3 999").as_bytes()).unwrap();
        assert_eq!(check.latencies, vec![100, 50, 1]);
        assert!(check.message(event_line("5 1").as_bytes()).is_err());
    }

    #[test]
    fn frames_parse_when_whole() {
        let mut buf = vec![0x81, 3, b'a', b'b', b'c', 0x82, 126, 0, 200];
        assert_eq!(parse_frame(&buf, 0).unwrap().unwrap().payload, (2, 5));
        assert!(parse_frame(&buf, 5).unwrap().is_none());
        buf.extend(std::iter::repeat_n(0u8, 200));
        let f = parse_frame(&buf, 5).unwrap().unwrap();
        assert_eq!((f.opcode, f.payload, f.end), (BINARY, (9, 209), 209));
    }
}
