//! [`Codec`]: the frame codec of one socket, made only while there is
//! something to parse or to send.
//!
//! tokio-websockets gives every stream an 8 KiB read buffer as soon as it is
//! made. Most sockets are idle most of the time, and an idle socket needs no
//! buffer: so the socket starts *idle* — the connection alone — and the
//! codec is made when bytes arrive (those read while idle are handed to it
//! first) or something must be sent. It is dropped again, and its buffer
//! with it, once it holds nothing: every byte read belongs to a message it
//! has delivered, no fragmented message is half-read, and everything queued
//! was written. A codec remade at such a point is in the very state the old
//! one was in.
//!
//! Knowing that point takes counting: [`Tracked`] passes every byte read to
//! a [`FrameTracker`], which follows the frame headers and counts complete
//! messages (a control frame, or the last frame of a data message) the way
//! the codec returns them.

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_websockets::{Error, Limits, Message, WebSocketStream};

/// Bytes read per attempt while idle (on the stack; only as many as
/// arrived are kept).
const IDLE_READ: usize = 512;

/// Follows the frames of a byte stream from the client: where each ends,
/// and how many complete messages have gone by.
#[derive(Debug, Default, Clone)]
pub(crate) struct FrameTracker {
    /// Header bytes of the frame being read (at most 14).
    header: [u8; 14],
    header_len: u8,
    /// Payload bytes still to come; `None` while reading a header.
    payload_left: Option<u64>,
    /// A data message whose last frame has not come yet.
    in_fragmented: bool,
    /// Complete messages seen.
    messages: u64,
}

impl FrameTracker {
    /// Accounts for `bytes`, in stream order.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.payload_left {
                Some(left) => {
                    let take = (bytes.len() as u64).min(left);
                    bytes = &bytes[take as usize..];
                    let left = left - take;
                    self.payload_left = Some(left);
                    if left == 0 {
                        self.frame_done();
                    }
                }
                None => {
                    let at = self.header_len as usize;
                    self.header[at] = bytes[0];
                    self.header_len += 1;
                    bytes = &bytes[1..];
                    if let Some(payload) = self.header_complete() {
                        self.payload_left = Some(payload);
                        if payload == 0 {
                            self.frame_done();
                        }
                    }
                }
            }
        }
    }

    /// The payload length once the header is whole.
    fn header_complete(&self) -> Option<u64> {
        let h = &self.header[..self.header_len as usize];
        if h.len() < 2 {
            return None;
        }
        let masked = h[1] & 0x80 != 0;
        let mask_len = if masked { 4 } else { 0 };
        let (extended, len) = match h[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if h.len() < 2 + extended + mask_len {
            return None;
        }
        Some(len.unwrap_or_else(|| {
            h[2..2 + extended]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        }))
    }

    fn frame_done(&mut self) {
        let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0f);
        if opcode >= 0x8 {
            // Control frames are messages of their own, even between the
            // fragments of a data message.
            self.messages += 1;
        } else if fin {
            self.messages += 1;
            self.in_fragmented = false;
        } else {
            self.in_fragmented = true;
        }
        self.header_len = 0;
        self.payload_left = None;
    }

    /// Whether the bytes so far end at a message boundary.
    fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left.is_none() && !self.in_fragmented
    }
}

/// The connection, with the bytes read while idle put back in front and
/// every byte read accounted for.
#[derive(Debug)]
pub(crate) struct Tracked<IO> {
    io: IO,
    prefix: Option<Bytes>,
    tracker: FrameTracker,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(prefix) = this.prefix.as_mut() {
            let n = prefix.len().min(buf.remaining());
            let part = prefix.split_to(n);
            if prefix.is_empty() {
                this.prefix = None;
            }
            this.tracker.feed(&part);
            buf.put_slice(&part);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.tracker.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

enum State<IO> {
    Idle(Tracked<IO>),
    /// Boxed: an idle socket holds only the small variant.
    Active(Box<WebSocketStream<Tracked<IO>>>),
    /// Only while switching.
    Switching,
}

/// The socket's codec, made on demand (see the module doc).
pub(crate) struct Codec<IO> {
    state: State<IO>,
    limits: Limits,
    /// Messages the codec has returned.
    delivered: u64,
    /// Nothing was queued since the last flush that completed.
    flushed: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Codec<IO> {
    /// An idle codec over `io`.
    pub(crate) fn new(io: IO, limits: Limits) -> Self {
        Codec {
            state: State::Idle(Tracked {
                io,
                prefix: None,
                tracker: FrameTracker::default(),
            }),
            limits,
            delivered: 0,
            flushed: true,
        }
    }

    /// The codec, made now if the socket was idle.
    fn active(&mut self) -> &mut WebSocketStream<Tracked<IO>> {
        if let State::Idle(_) = self.state {
            if let State::Idle(io) = std::mem::replace(&mut self.state, State::Switching) {
                let ws = tokio_websockets::ServerBuilder::new()
                    .limits(self.limits)
                    .serve(io);
                self.state = State::Active(Box::new(ws));
            }
        }
        match &mut self.state {
            State::Active(ws) => ws,
            // Reached only if a previous switch panicked half-way; the
            // socket cannot be used any more.
            _ => unreachable!("codec left between states"),
        }
    }

    /// Whether the codec is made (for tests and the memory figures).
    #[cfg(test)]
    pub(crate) fn is_active(&self) -> bool {
        matches!(self.state, State::Active(_))
    }

    /// Drops the codec if it holds nothing (see the module doc).
    pub(crate) fn idle_if_empty(&mut self) {
        let State::Active(ws) = &self.state else {
            return;
        };
        let io = ws.get_ref();
        let empty = self.flushed
            && io.prefix.is_none()
            && io.tracker.at_boundary()
            && io.tracker.messages == self.delivered;
        if !empty {
            return;
        }
        if let State::Active(ws) = std::mem::replace(&mut self.state, State::Switching) {
            self.state = State::Idle(ws.into_inner());
        }
    }

    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.state {
            State::Active(ws) => Pin::new(&mut **ws).poll_ready(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    pub(crate) fn start_send(&mut self, message: Message) -> Result<(), Error> {
        self.flushed = false;
        Pin::new(self.active()).start_send(message)
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.state {
            State::Active(ws) => {
                let polled = Pin::new(&mut **ws).poll_flush(cx);
                if let Poll::Ready(Ok(())) = polled {
                    self.flushed = true;
                }
                polled
            }
            _ => Poll::Ready(Ok(())),
        }
    }

    /// The next message; while idle, first waits for bytes without a
    /// buffer of its own.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        if let State::Idle(io) = &mut self.state {
            let mut space = [0u8; IDLE_READ];
            let mut buf = ReadBuf::new(&mut space);
            match Pin::new(&mut io.io).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Some(Err(Error::Io(error)))),
                // The peer closed the connection between messages.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(None),
                Poll::Ready(Ok(())) => io.prefix = Some(Bytes::copy_from_slice(buf.filled())),
            }
        }
        let polled = Pin::new(self.active()).poll_next(cx);
        if let Poll::Ready(Some(Ok(_))) = polled {
            self.delivered += 1;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [1, 2, 3, 4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// Idle until a frame arrives, active while it is parsed, idle again
    /// once it was delivered and the answer written.
    #[tokio::test]
    async fn the_codec_exists_only_while_it_holds_something() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let mut codec = Codec::new(server, Limits::default());
        assert!(!codec.is_active());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(codec.poll_next(&mut cx).is_pending());
        assert!(!codec.is_active());

        // Half a frame: the codec is made and keeps it.
        let hello = frame(true, 0x1, b"hello");
        client.write_all(&hello[..3]).await.unwrap();
        assert!(codec.poll_next(&mut cx).is_pending());
        codec.idle_if_empty();
        assert!(codec.is_active());
        client.write_all(&hello[3..]).await.unwrap();
        let Poll::Ready(Some(Ok(message))) = codec.poll_next(&mut cx) else {
            panic!("no message");
        };
        assert_eq!(message.as_text(), Some("hello"));
        // An answer queued and not yet written keeps it too.
        codec.start_send(Message::text("back")).unwrap();
        codec.idle_if_empty();
        assert!(codec.is_active());
        assert!(codec.poll_flush(&mut cx).is_ready());
        assert!(codec.poll_next(&mut cx).is_pending());
        codec.idle_if_empty();
        assert!(!codec.is_active());
        let mut answer = [0u8; 6];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"\x81\x04back");
    }

    #[test]
    fn the_tracker_counts_messages_as_the_codec_returns_them() {
        let mut stream = Vec::new();
        stream.extend(frame(true, 0x1, b"hello"));
        stream.extend(frame(false, 0x1, &[b'a'; 300]));
        stream.extend(frame(true, 0x9, b"ping"));
        stream.extend(frame(false, 0x0, &[b'b'; 70_000]));
        stream.extend(frame(true, 0x0, b""));
        stream.extend(frame(true, 0x2, b""));
        // Fed in every split, one byte at a time included.
        for step in [1, 3, 7, 100, stream.len()] {
            let mut tracker = FrameTracker::default();
            let mut boundaries = Vec::new();
            for chunk in stream.chunks(step) {
                tracker.feed(chunk);
                boundaries.push((tracker.messages, tracker.at_boundary()));
            }
            assert_eq!(tracker.messages, 4, "step {step}");
            assert!(tracker.at_boundary());
        }
        // Half a frame, or a fragmented message, is no boundary.
        let mut tracker = FrameTracker::default();
        tracker.feed(&stream[..4]);
        assert!(!tracker.at_boundary());
        let mut tracker = FrameTracker::default();
        let first = frame(true, 0x1, b"hello").len();
        let second = frame(false, 0x1, &[b'a'; 300]).len();
        tracker.feed(&stream[..first + second]);
        assert_eq!(tracker.messages, 1);
        assert!(!tracker.at_boundary());
    }
}
