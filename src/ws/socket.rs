//! [`WebSocket`]: a handler's end of a WebSocket — messages in, messages
//! out, the socket's state — and [`WsSender`], a cloneable sending end.
//!
//! The socket itself is driven by its own task (`driver.rs`): it reads
//! frames while the handler has room for them (a handler that does not read
//! stops the reading, and TCP slows the peer), answers pings, pings an idle
//! peer, writes what the handler sends (several queued messages leave in
//! one write), and closes with the right code.

use bytes::Bytes;
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc, Mutex, PoisonError,
    },
    task::Waker,
};
use tokio::sync::{mpsc, Notify};

use super::error::WsError;
use crate::live::ShutDown;

/// The socket was closed (by either side, or a shutdown).
pub(crate) const CLOSED: u8 = 1 << 0;
/// The peer went away without a close handshake.
pub(crate) const DISCONNECTED: u8 = 1 << 1;
/// The server is shutting down: the driver closes with `1001`.
pub(crate) const SHUTDOWN: u8 = 1 << 2;

/// One WebSocket message: text (UTF-8, checked) or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    text: bool,
    payload: Bytes,
}

impl WsMessage {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        WsMessage {
            text: true,
            payload: Bytes::from(text.into()),
        }
    }

    /// A text message of bytes that are UTF-8 (shared, not copied: one
    /// payload for many sockets). `None` when they are not UTF-8.
    pub fn text_bytes(payload: Bytes) -> Option<Self> {
        std::str::from_utf8(&payload).ok()?;
        Some(WsMessage {
            text: true,
            payload,
        })
    }

    /// A message as the frame codec gave it (text already checked as UTF-8).
    pub(crate) fn from_codec(text: bool, payload: Bytes) -> Self {
        WsMessage { text, payload }
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        WsMessage {
            text: false,
            payload: payload.into(),
        }
    }

    /// Whether it is a text message.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        // Text payloads are checked when made (or by the frame codec).
        self.text
            .then(|| std::str::from_utf8(&self.payload).ok())
            .flatten()
    }

    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The payload.
    pub fn into_bytes(self) -> Bytes {
        self.payload
    }

    pub(crate) fn into_frame(self) -> tokio_websockets::Message {
        let payload = tokio_websockets::Payload::from(self.payload);
        if self.text {
            tokio_websockets::Message::text(payload)
        } else {
            tokio_websockets::Message::binary(payload)
        }
    }
}

impl From<&str> for WsMessage {
    fn from(text: &str) -> Self {
        WsMessage::text(text)
    }
}

impl From<String> for WsMessage {
    fn from(text: String) -> Self {
        WsMessage::text(text)
    }
}

impl From<Bytes> for WsMessage {
    fn from(payload: Bytes) -> Self {
        WsMessage::binary(payload)
    }
}

/// What a handler asks of the driver.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Message(WsMessage),
    Close { code: u16, reason: String },
}

/// What the handler and the driver share.
#[derive(Debug, Default)]
pub(crate) struct SocketShared {
    flags: AtomicU8,
    /// Woken on every flag change (for `disconnected()` and `closed()`).
    changed: Notify,
    /// The driver's waker, to wake it for a shutdown.
    driver: Mutex<Option<Waker>>,
}

impl SocketShared {
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, bits: u8) {
        let prev = self.flags.fetch_or(bits, Ordering::AcqRel);
        if prev & bits != bits {
            self.changed.notify_waiters();
            let driver = self
                .driver
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(driver) = driver {
                driver.wake();
            }
        }
    }

    /// Parks the driver's waker (it checks the flags after).
    pub(crate) fn park_driver(&self, waker: &Waker) {
        let mut slot = self.driver.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some(parked) if parked.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// The error a send gets now, if any.
    pub(crate) fn send_error(&self) -> Option<WsError> {
        let f = self.flags();
        if f & DISCONNECTED != 0 {
            Some(WsError::Disconnected)
        } else if f & (CLOSED | SHUTDOWN) != 0 {
            Some(WsError::Closed)
        } else {
            None
        }
    }

    pub(crate) async fn wait_for(&self, bits: u8) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.flags() & bits != 0 {
                return;
            }
            notified.await;
        }
    }
}

impl ShutDown for SocketShared {
    fn shut_down(&self) {
        self.set(SHUTDOWN);
    }
}

/// A cloneable sending end of a [`WebSocket`]: send from other tasks while
/// the handler reads.
#[derive(Debug, Clone)]
pub struct WsSender {
    tx: mpsc::Sender<Outgoing>,
    shared: Arc<SocketShared>,
}

impl WsSender {
    pub(crate) fn new(tx: mpsc::Sender<Outgoing>, shared: Arc<SocketShared>) -> Self {
        WsSender { tx, shared }
    }

    /// Sends one message. Waits while the socket's outgoing queue is full —
    /// the peer reads slower than the handler sends (back-pressure).
    ///
    /// # Errors
    ///
    /// [`WsError::Closed`] or [`WsError::Disconnected`] once the socket can
    /// take no more.
    pub async fn send(&self, message: impl Into<WsMessage>) -> Result<(), WsError> {
        if let Some(error) = self.shared.send_error() {
            return Err(error);
        }
        self.tx
            .send(Outgoing::Message(message.into()))
            .await
            .map_err(|_| self.gone())
    }

    /// Sends one message if the outgoing queue has room now; `Ok(false)`
    /// when it is full (nothing was queued).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn try_send(&self, message: impl Into<WsMessage>) -> Result<bool, WsError> {
        if let Some(error) = self.shared.send_error() {
            return Err(error);
        }
        match self.tx.try_send(Outgoing::Message(message.into())) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.gone()),
        }
    }

    /// Closes the socket with `code` (1000 is a normal close) and `reason`
    /// (at most 123 bytes are sent), after what was sent before.
    pub async fn close(&self, code: u16, reason: &str) {
        let mut reason = reason.to_owned();
        while reason.len() > 123 {
            reason.pop();
        }
        let _ = self.tx.send(Outgoing::Close { code, reason }).await;
    }

    /// Whether the socket can take no more.
    pub fn is_closed(&self) -> bool {
        self.shared.send_error().is_some()
    }

    /// Resolves when the peer is gone or the socket closed, even while this
    /// side is idle.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.wait_for(CLOSED | DISCONNECTED).await }
    }

    /// Resolves when the peer goes away without a close handshake (or stops
    /// answering pings).
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.wait_for(DISCONNECTED).await }
    }

    fn gone(&self) -> WsError {
        self.shared.send_error().unwrap_or(WsError::Closed)
    }
}

/// A handler's end of a WebSocket.
///
/// ```
/// use rill::{Context, Response};
///
/// async fn echo(ctx: Context) -> Response {
///     ctx.websocket(|_ctx, mut socket| async move {
///         while let Some(message) = socket.recv().await {
///             socket.send(message?).await?;
///         }
///         Ok(())
///     })
/// }
/// ```
#[derive(Debug)]
pub struct WebSocket {
    incoming: mpsc::Receiver<Result<WsMessage, WsError>>,
    sender: WsSender,
    protocol: Option<String>,
}

impl WebSocket {
    pub(crate) fn new(
        incoming: mpsc::Receiver<Result<WsMessage, WsError>>,
        sender: WsSender,
        protocol: Option<String>,
    ) -> Self {
        WebSocket {
            incoming,
            sender,
            protocol,
        }
    }

    /// The next message from the peer; `None` once the socket is closed
    /// (after a close handshake, a shutdown, or a departed peer). A protocol
    /// violation or an oversized message comes as one `Err`, after which the
    /// socket is closed (with `1007` or `1009`).
    pub async fn recv(&mut self) -> Option<Result<WsMessage, WsError>> {
        self.incoming.recv().await
    }

    /// Sends one message; see [`WsSender::send`].
    ///
    /// # Errors
    ///
    /// [`WsError::Closed`] or [`WsError::Disconnected`].
    pub async fn send(&self, message: impl Into<WsMessage>) -> Result<(), WsError> {
        self.sender.send(message).await
    }

    /// A cloneable sending end, for other tasks.
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }

    /// Closes the socket with `code` and `reason`, after what was sent.
    pub async fn close(&self, code: u16, reason: &str) {
        self.sender.close(code, reason).await;
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Resolves when the peer goes away without a close handshake.
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        self.sender.disconnected()
    }

    /// Resolves when the socket can take no more (closed or peer gone).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.sender.closed()
    }
}
