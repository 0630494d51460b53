//! The task that drives one WebSocket: frames in and out, pings, closing.
//!
//! One poll does, in order: start a `1001` close if the server shuts down;
//! move what the handler sent into the codec's queue (as many messages as
//! are waiting: they leave together, in one vectored write) and flush; read
//! the next message if the handler has room for it (a reserved slot in its
//! bounded queue — so a handler that does not read stops the reading, and
//! TCP slows the peer); ping a peer that has been silent for the ping
//! interval, and give up on one that stays silent for the ping timeout.
//! The codec answers pings and close frames itself.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, Sleep},
};
use tokio_websockets::{CloseCode, Limits, Message};

use super::{
    codec::Codec,
    error::WsError,
    message::{Outgoing, WsMessage},
    shared::{Room, SocketShared, CLOSED, DISCONNECTED, SHUTDOWN},
};

/// How long a close handshake this side started may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the driver takes what the handler sends: a raw socket's queue of
/// messages, or a named-event stream's pipe (`crate::events`).
pub(crate) trait Outbox: Send + Unpin + 'static {
    /// The next thing to send; `None` once the handler's side is done.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>>;

    /// A last message for the peer when the server shuts down, sent before
    /// the `1001` close (an ActionCable `server_restart` notice). None by
    /// default.
    fn farewell(&mut self) -> Option<WsMessage> {
        None
    }
}

/// A raw socket's outbox: the queue its senders fill (the driver's waker is
/// parked in the shared state at the start of every poll).
pub(crate) struct RawOutbox(pub(crate) Arc<SocketShared>);

impl Outbox for RawOutbox {
    fn poll_next(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        self.0.poll_outgoing()
    }
}

/// The socket's timers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keepalive {
    /// Ping a peer silent this long.
    pub(crate) interval: Duration,
    /// Give up on a peer silent this long after a ping.
    pub(crate) timeout: Duration,
}

/// Where the socket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// A ping went out; the peer has said nothing since.
    AwaitingPong,
    /// This side sent a close frame; waiting for the peer's.
    Closing,
}

pub(crate) struct Driver<IO, O> {
    ws: Codec<IO>,
    outgoing: O,
    shared: Arc<SocketShared>,
    keepalive: Keepalive,
    timer: Pin<Box<Sleep>>,
    phase: Phase,
    /// Nothing more will be read (the stream ended or failed).
    reading_done: bool,
    /// The handler dropped its end: what arrives is read and dropped.
    handler_gone: bool,
    /// The last read attempt found the handler's queue full: the peer's
    /// pongs are not being read, so its silence proves nothing.
    read_blocked: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin, O: Outbox> Driver<IO, O> {
    pub(crate) fn new(
        io: IO,
        limits: Limits,
        outgoing: O,
        shared: Arc<SocketShared>,
        keepalive: Keepalive,
    ) -> Self {
        Driver {
            ws: Codec::new(io, limits),
            outgoing,
            shared,
            timer: Box::pin(tokio::time::sleep(keepalive.interval)),
            keepalive,
            phase: Phase::Open,
            reading_done: false,
            handler_gone: false,
            read_blocked: false,
        }
    }

    /// Queues a close frame (once).
    fn start_close(&mut self, code: u16, reason: &str) {
        if self.phase == Phase::Closing {
            return;
        }
        self.phase = Phase::Closing;
        let code = CloseCode::try_from(code).unwrap_or(CloseCode::NORMAL_CLOSURE);
        let _ = self.ws.start_send(Message::close(Some(code), reason));
        self.timer.as_mut().reset(Instant::now() + CLOSE_TIMEOUT);
        self.shared.set(CLOSED);
    }

    /// Moves what the handler sent into the codec, as long as it takes it.
    fn poll_outgoing(&mut self, cx: &mut Context<'_>) -> Result<bool, WsError> {
        let mut progress = false;
        while self.phase != Phase::Closing {
            match self.ws.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(WsError::from_protocol(e)),
                Poll::Pending => break,
            }
            match self.outgoing.poll_next(cx) {
                Poll::Ready(Some(Outgoing::Message(message))) => {
                    self.ws
                        .start_send(message.into_frame())
                        .map_err(WsError::from_protocol)?;
                    progress = true;
                }
                Poll::Ready(Some(Outgoing::Close { code, reason })) => {
                    self.start_close(code, &reason);
                    progress = true;
                }
                // Every sender is gone: the handler is done.
                Poll::Ready(None) => {
                    self.start_close(1000, "");
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        Ok(progress)
    }

    /// Reads the next message when the handler has room for it.
    fn poll_incoming(&mut self, cx: &mut Context<'_>) -> bool {
        if self.reading_done {
            return false;
        }
        // Once closing, what arrives is not for the handler: read on (the
        // codec flushes its close frame while it is read), drop the data.
        let deliver = !self.handler_gone && self.phase != Phase::Closing;
        if deliver {
            match self.shared.room_for_incoming() {
                Room::Yes => self.read_blocked = false,
                Room::ReceiverGone => self.handler_gone = true,
                Room::Full => {
                    self.read_blocked = true;
                    return false;
                }
            }
        }
        match self.ws.poll_next(cx) {
            Poll::Ready(Some(Ok(message))) => {
                if self.phase == Phase::AwaitingPong {
                    self.phase = Phase::Open;
                }
                if self.phase == Phase::Open {
                    self.timer
                        .as_mut()
                        .reset(Instant::now() + self.keepalive.interval);
                }
                if message.is_close() {
                    // The codec answers it; nothing more may be sent.
                    self.phase = Phase::Closing;
                    self.shared.set(CLOSED);
                    return true;
                }
                let text = message.is_text();
                if (text || message.is_binary()) && deliver {
                    let payload: bytes::Bytes = message.into_payload().into();
                    self.shared
                        .push_incoming(Ok(WsMessage::from_codec(text, payload)));
                }
                true
            }
            Poll::Ready(Some(Err(error))) => {
                let error = WsError::from_protocol(error);
                if deliver && !error.is_end_of_stream() {
                    self.shared.push_incoming(Err(error.clone()));
                }
                if error == WsError::Disconnected {
                    self.shared.set(DISCONNECTED);
                    self.reading_done = true;
                } else {
                    // A protocol violation. For one found in a frame the
                    // codec queued the close frame with its code (1002,
                    // 1007, 1009) and refuses ours; for a message whose
                    // fragments add up past the limit, ours is the one.
                    // Reading on flushes it, then ends.
                    let code = match error {
                        WsError::TooBig { .. } => 1009,
                        _ => 1002,
                    };
                    self.start_close(code, "");
                }
                true
            }
            Poll::Ready(None) => {
                // The end of the stream without a close handshake is a
                // peer that went away.
                let flag = if self.phase == Phase::Closing {
                    CLOSED
                } else {
                    DISCONNECTED
                };
                self.shared.set(flag);
                self.reading_done = true;
                true
            }
            Poll::Pending => false,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin, O: Outbox> Future for Driver<IO, O> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.shared.park_driver(cx.waker());
        loop {
            if this.shared.flags() & SHUTDOWN != 0 && this.phase != Phase::Closing {
                if let Some(message) = this.outgoing.farewell() {
                    let _ = this.ws.start_send(message.into_frame());
                }
                this.start_close(1001, "server shutting down");
            }
            let sent = match this.poll_outgoing(cx) {
                Ok(progress) => progress,
                Err(error) => {
                    this.end(error);
                    return Poll::Ready(());
                }
            };
            if let Poll::Ready(Err(error)) = this.ws.poll_flush(cx) {
                this.end(WsError::from_protocol(error));
                return Poll::Ready(());
            }
            let read = this.poll_incoming(cx);
            if this.reading_done {
                return Poll::Ready(());
            }
            if this.timer.as_mut().poll(cx).is_ready() {
                match this.phase {
                    Phase::Open => {
                        let _ = this.ws.start_send(Message::ping(bytes::Bytes::new()));
                        this.phase = Phase::AwaitingPong;
                        this.timer
                            .as_mut()
                            .reset(Instant::now() + this.keepalive.timeout);
                    }
                    // The handler is not reading, so neither are we: the
                    // pong may be waiting unread. Wait on.
                    Phase::AwaitingPong if this.read_blocked => {
                        this.timer
                            .as_mut()
                            .reset(Instant::now() + this.keepalive.timeout);
                    }
                    // Silent after a ping, or no answer to our close: gone.
                    Phase::AwaitingPong | Phase::Closing => {
                        this.end(WsError::Disconnected);
                        return Poll::Ready(());
                    }
                }
                continue;
            }
            if !sent && !read {
                // Nothing more to do now: an empty codec is dropped until
                // there is something to read or send.
                if this.phase != Phase::Closing {
                    this.ws.idle_if_empty();
                }
                return Poll::Pending;
            }
        }
    }
}

impl<IO, O> Drop for Driver<IO, O> {
    fn drop(&mut self) {
        // However the driver ended (or was dropped): sends fail from now on,
        // and the handler's `recv` returns `None` after what is queued.
        if self.shared.flags() & (CLOSED | DISCONNECTED) == 0 {
            self.shared.set(CLOSED);
        }
        self.shared.close_incoming();
    }
}

impl<IO, O> Driver<IO, O> {
    fn end(&mut self, error: WsError) {
        let flag = if error == WsError::Disconnected {
            DISCONNECTED
        } else {
            CLOSED
        };
        self.shared.set(flag);
    }
}
