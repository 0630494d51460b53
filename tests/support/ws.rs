//! A small WebSocket client that sees the wire: handshakes by hand, sends
//! any frame (bad ones too), reads frames as the server wrote them. Every
//! wait is bounded by `WAIT`.

use std::net::SocketAddr;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use super::WAIT;

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("a UTF-8 text frame")
    }

    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

pub struct WsClient<S> {
    io: S,
    buf: Vec<u8>,
}

/// The handshake's request head for `path` (plus `extra` header lines).
pub fn handshake_request(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

impl WsClient<TcpStream> {
    /// Opens a socket to `path`; `Err(head)` with the response head when
    /// the server refuses (anything but `101`).
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        extra: &[(&str, &str)],
    ) -> Result<(WsClient<TcpStream>, String), String> {
        let mut io = TcpStream::connect(addr).await.expect("connect");
        io.write_all(handshake_request(addr, path, extra).as_bytes())
            .await
            .expect("write handshake");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, io.read(&mut chunk))
                .await
                .expect("handshake answer in time")
                .expect("read handshake answer");
            assert!(n > 0, "closed during the handshake: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let rest = buf[head_end..].to_vec();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(head);
        }
        Ok((WsClient { io, buf: rest }, head))
    }

    /// Shuts the TCP connection without a close frame.
    pub fn vanish(self) {
        drop(self.io);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsClient<S> {
    /// A client over an established stream (an HTTP/2 upgrade).
    pub fn over(io: S) -> Self {
        WsClient {
            io,
            buf: Vec::new(),
        }
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(if fin { 0x80 } else { 0 } | opcode);
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.io.write_all(&frame).await.expect("send a frame");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(true, TEXT, text.as_bytes()).await;
    }

    pub async fn send_close(&mut self, code: u16) {
        self.send_frame(true, CLOSE, &code.to_be_bytes()).await;
    }

    /// Tries to send; false once the connection is gone.
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        let mut frame = vec![0x80 | TEXT];
        let len = text.len();
        assert!(len < 126);
        frame.push(0x80 | len as u8);
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text.as_bytes());
        self.io.write_all(&frame).await.is_ok()
    }

    /// The next frame; `None` when the server closed the TCP connection.
    /// Panics when none comes within `WAIT`.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            // On the heap: a test future awaits many of these, nested.
            let mut chunk = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout(WAIT, self.io.read(&mut chunk))
                .await
                .expect("a frame in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next data frame's text, answering nothing (pings are skipped).
    pub async fn recv_text(&mut self) -> Option<String> {
        loop {
            let frame = self.recv().await?;
            match frame.opcode {
                TEXT => return Some(frame.text().to_owned()),
                PING | PONG => continue,
                CLOSE => return None,
                other => panic!("unexpected opcode {other}: {frame:?}"),
            }
        }
    }

    /// Reads until the server's close frame; its code.
    pub async fn recv_close(&mut self) -> Option<u16> {
        loop {
            let frame = self.recv().await?;
            if frame.opcode == CLOSE {
                return Some(frame.close_code().unwrap_or(1005));
            }
        }
    }
}

/// One whole frame at the start of `buf`, and its length.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    assert_eq!(buf[1] & 0x80, 0, "the server masked a frame");
    let (len, mut at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if buf.len() < at + len {
        return None;
    }
    let payload = buf[at..at + len].to_vec();
    at += len;
    Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at,
    ))
}
