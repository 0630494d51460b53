//! [`WebSocket`]: a handler's end of a WebSocket — messages in, messages
//! out, the socket's state — and [`WsSender`], a cloneable sending end.
//!
//! The socket itself is driven by its own task (`driver.rs`): it reads
//! frames while the handler has room for them (a handler that does not read
//! stops the reading, and TCP slows the peer), answers pings, pings an idle
//! peer, writes what the handler sends (several queued messages leave in
//! one write), and closes with the right code. The queues between the two
//! are in `shared.rs`.

use std::{future::Future, sync::Arc};

use super::{
    error::WsError,
    message::{Outgoing, WsMessage},
    shared::{SocketShared, CLOSED, DISCONNECTED},
};

/// A cloneable sending end of a [`WebSocket`]: send from other tasks while
/// the handler reads.
///
/// # Example
///
/// ```
/// use rill::{Context, Response};
/// use std::time::Duration;
///
/// async fn clock(ctx: Context) -> Response {
///     ctx.websocket(|_ctx, mut socket| async move {
///         let sender = socket.sender();
///         tokio::spawn(async move {
///             // Another task pushes ticks while the handler reads.
///             while sender.send("tick").await.is_ok() {
///                 tokio::time::sleep(Duration::from_secs(1)).await;
///             }
///         });
///         while let Some(message) = socket.recv().await {
///             let _ = message?;
///         }
///         Ok(())
///     })
/// }
/// ```
#[derive(Debug)]
pub struct WsSender {
    shared: Arc<SocketShared>,
}

impl Clone for WsSender {
    fn clone(&self) -> Self {
        self.shared.sender_added();
        WsSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for WsSender {
    fn drop(&mut self) {
        // The last sending end gone means the handler is done: the driver
        // closes the socket with 1000 after what was sent.
        self.shared.sender_dropped();
    }
}

impl WsSender {
    /// The handler's sending end (the shared state counts it already).
    pub(crate) fn new(shared: Arc<SocketShared>) -> Self {
        WsSender { shared }
    }

    /// Sends one message. Waits while the socket's outgoing queue is full —
    /// the peer reads slower than the handler sends (back-pressure).
    ///
    /// # Errors
    ///
    /// [`WsError::Closed`] or [`WsError::Disconnected`] once the socket can
    /// take no more.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn notices(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let sender = socket.sender();
    ///         // E.g. handed to a job that reports progress:
    ///         for percent in [10, 50, 100] {
    ///             sender.send(format!("{percent}%")).await?; // waits if the peer is slow
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub async fn send(&self, message: impl Into<WsMessage>) -> Result<(), WsError> {
        self.shared
            .push_outgoing(Outgoing::Message(message.into()))
            .await
    }

    /// Sends one message if the outgoing queue has room now; `Ok(false)`
    /// when it is full (nothing was queued).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn prices(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let sender = socket.sender();
    ///         for price in ["101.5", "101.7", "101.6"] {
    ///             // A slow client misses a price rather than delaying the feed.
    ///             if !sender.try_send(price)? {
    ///                 tracing::debug!("queue full, price skipped");
    ///             }
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn try_send(&self, message: impl Into<WsMessage>) -> Result<bool, WsError> {
        self.shared
            .push_outgoing_now(Outgoing::Message(message.into()))
    }

    /// Closes the socket with `code` (1000 is a normal close) and `reason`
    /// (at most 123 bytes are sent), after what was sent before.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn session(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let sender = socket.sender();
    ///         // The session expired: 4001 is an application close code.
    ///         sender.close(4001, "session expired").await;
    ///         assert!(sender.is_closed());
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub async fn close(&self, code: u16, reason: &str) {
        let mut reason = reason.to_owned();
        while reason.len() > 123 {
            reason.pop();
        }
        let _ = self
            .shared
            .push_outgoing_now(Outgoing::Close { code, reason });
    }

    /// Whether the socket can take no more.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn feed(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let sender = socket.sender();
    ///         while !sender.is_closed() {
    ///             // … produce the next item, only while someone can receive it
    ///             sender.send("item").await?;
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.send_error().is_some()
    }

    /// Resolves when the peer is gone or the socket closed, even while this
    /// side is idle.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn watch(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let sender = socket.sender();
    ///         let done = sender.closed();
    ///         tokio::spawn(async move {
    ///             done.await;
    ///             tracing::info!("socket gone: release the subscription");
    ///         });
    ///         socket.send("watching").await?;
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.wait_for(CLOSED | DISCONNECTED).await }
    }

    /// Resolves when the peer goes away without a close handshake (or stops
    /// answering pings).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn editor(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let sender = socket.sender();
    ///         // Without a close handshake: the tab crashed or the network dropped.
    ///         sender.disconnected().await;
    ///         tracing::info!("editor lost; unlock the document");
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.wait_for(DISCONNECTED).await }
    }
}

/// The handler's receiving end; dropped, it tells the driver to drop what
/// arrives.
#[derive(Debug)]
pub(crate) struct Receiver {
    shared: Arc<SocketShared>,
}

impl Receiver {
    pub(crate) fn new(shared: Arc<SocketShared>) -> Self {
        Receiver { shared }
    }

    /// The next message; `None` once the driver is done.
    pub(crate) async fn recv(&mut self) -> Option<Result<WsMessage, WsError>> {
        std::future::poll_fn(|cx| self.shared.poll_recv(cx)).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.receiver_dropped();
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
    incoming: Receiver,
    sender: WsSender,
    protocol: Option<String>,
}

impl WebSocket {
    pub(crate) fn new(incoming: Receiver, sender: WsSender, protocol: Option<String>) -> Self {
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn commands(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, mut socket| async move {
    ///         while let Some(message) = socket.recv().await {
    ///             let message = message?; // a protocol error ends the handler
    ///             match message.as_text() {
    ///                 Some("ping") => socket.send("pong").await?,
    ///                 _ => socket.close(1003, "text commands only").await,
    ///             }
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub async fn recv(&mut self) -> Option<Result<WsMessage, WsError>> {
        self.incoming.recv().await
    }

    /// Sends one message; see [`WsSender::send`].
    ///
    /// # Errors
    ///
    /// [`WsError::Closed`] or [`WsError::Disconnected`].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{ws::WsMessage, Context, Response};
    ///
    /// async fn hello(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         socket.send("welcome").await?;                    // text
    ///         socket.send(WsMessage::binary(vec![1, 2])).await?; // binary
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub async fn send(&self, message: impl Into<WsMessage>) -> Result<(), WsError> {
        self.sender.send(message).await
    }

    /// A cloneable sending end, for other tasks.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn relay(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, mut socket| async move {
    ///         let sender = socket.sender(); // moved into a task; the handler keeps reading
    ///         tokio::spawn(async move { sender.send("from another task").await });
    ///         while let Some(message) = socket.recv().await {
    ///             socket.send(message?).await?;
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }

    /// Closes the socket with `code` and `reason`, after what was sent.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn once(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         socket.send("your report is ready").await?;
    ///         socket.close(1000, "done").await; // after the message above
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub async fn close(&self, code: u16, reason: &str) {
        self.sender.close(code, reason).await;
    }

    /// The subprotocol agreed in the handshake, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{ws::WsOptions, Context, Response};
    ///
    /// async fn api(ctx: Context) -> Response {
    ///     let options = WsOptions::new().protocols(["chat.v2", "chat.v1"]);
    ///     ctx.websocket_with(options, |_ctx, socket| async move {
    ///         match socket.protocol() {
    ///             Some("chat.v2") => socket.send(r#"{"v":2,"hello":true}"#).await?,
    ///             _ => socket.send("hello").await?, // v1, or no subprotocol
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Resolves when the peer goes away without a close handshake.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn heartbeat_only(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         // Nothing to send: wait until the peer vanishes (pings detect it).
    ///         socket.disconnected().await;
    ///         tracing::info!("client lost");
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        self.sender.disconnected()
    }

    /// Resolves when the socket can take no more (closed or peer gone).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{Context, Response};
    /// use std::time::Duration;
    ///
    /// async fn ticker(ctx: Context) -> Response {
    ///     ctx.websocket(|_ctx, socket| async move {
    ///         let mut every = tokio::time::interval(Duration::from_secs(1));
    ///         loop {
    ///             tokio::select! {
    ///                 _ = every.tick() => socket.send("tick").await?,
    ///                 _ = socket.closed() => return Ok(()), // closed, shut down, or gone
    ///             }
    ///         }
    ///     })
    /// }
    /// ```
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.sender.closed()
    }
}
