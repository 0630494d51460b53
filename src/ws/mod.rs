//! WebSockets: the upgrade (HTTP/1.1 `101`, and HTTP/2 extended `CONNECT`
//! on rill's server), a socket driven by its own task with back-pressure,
//! keep-alive pings and proper close codes, and shutdown through the app's
//! tracker.
//!
//! * [`Context::websocket`](crate::Context::websocket) — from an action.
//! * [`upgrade`] — from a bare hyper service or an axum handler.
//! * [`WsOptions`] — subprotocols, origins, message size, keep-alive.
//! * [`WebSocket`], [`WsSender`], [`WsMessage`] — the handler's end.
//! * `handshake` — RFC 6455 / RFC 8441 checks and the accepting response.
//! * `driver` — the task that drives the socket.
//! * `codec` — the frame codec, made only while there is something to parse
//!   or send.
//!
//! See [`docs/websocket.md`](crate::guides::websocket).

mod codec;
pub(crate) mod driver;
mod error;
pub(crate) mod handshake;
pub(crate) mod message;
pub(crate) mod shared;
pub(crate) mod socket;

#[cfg(all(test, loom))]
mod loom_tests;

pub use error::{UpgradeError, WsError};
pub use message::WsMessage;
pub use socket::{WebSocket, WsSender};

use hyper_util::rt::TokioIo;
use std::{future::Future, sync::Arc, time::Duration};

use crate::{context::Context, error::BoxError, live::LiveTracker, response::Response};
use driver::{Driver, Keepalive, Outbox, RawOutbox};
use shared::SocketShared;
use socket::Receiver;

/// The largest message a peer may send, by default: 1 MiB.
///
/// # Example
///
/// ```
/// use rill::ws::{WsOptions, DEFAULT_MAX_MESSAGE};
///
/// assert_eq!(DEFAULT_MAX_MESSAGE, 1024 * 1024);
/// // A chat never needs more than 16 KiB per message:
/// let options = WsOptions::new().max_message(DEFAULT_MAX_MESSAGE / 64);
/// ```
pub const DEFAULT_MAX_MESSAGE: usize = 1024 * 1024;
/// How long a peer may stay silent before it is pinged, by default.
///
/// # Example
///
/// ```
/// use rill::ws::{WsOptions, DEFAULT_PING_INTERVAL};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_PING_INTERVAL, Duration::from_secs(20));
/// // Behind a load balancer that drops connections idle for 15 s:
/// let options = WsOptions::new().ping_interval(Duration::from_secs(10));
/// ```
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// How long a pinged peer has to answer, by default.
///
/// # Example
///
/// ```
/// use rill::ws::{WsOptions, DEFAULT_PING_TIMEOUT};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_PING_TIMEOUT, Duration::from_secs(20));
/// let options = WsOptions::new().ping_timeout(DEFAULT_PING_TIMEOUT / 2);
/// ```
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Messages a handler may send ahead of the peer, by default.
///
/// # Example
///
/// ```
/// use rill::ws::{WsOptions, DEFAULT_QUEUE};
///
/// assert_eq!(DEFAULT_QUEUE, 64);
/// let options = WsOptions::new().queue(DEFAULT_QUEUE * 4); // bursty game state
/// ```
pub const DEFAULT_QUEUE: usize = 64;

type OriginCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How a WebSocket endpoint accepts and runs sockets.
///
/// ```
/// use rill::ws::WsOptions;
/// use std::time::Duration;
///
/// let options = WsOptions::new()
///     .protocols(["chat.v2", "chat.v1"])         // the first one the client offers wins
///     .allowed_origins(["https://example.com"])  // browsers elsewhere get 403
///     .max_message(64 * 1024)                    // larger: closed with 1009
///     .ping_interval(Duration::from_secs(15));
/// ```
#[derive(Clone)]
pub struct WsOptions {
    pub(crate) protocols: Vec<String>,
    pub(crate) require_protocol: bool,
    pub(crate) origin: Option<OriginCheck>,
    pub(crate) max_message: usize,
    pub(crate) keepalive: Keepalive,
    pub(crate) queue: usize,
    pub(crate) tracker: Option<LiveTracker>,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            protocols: Vec::new(),
            require_protocol: false,
            origin: None,
            max_message: DEFAULT_MAX_MESSAGE,
            keepalive: Keepalive {
                interval: DEFAULT_PING_INTERVAL,
                timeout: DEFAULT_PING_TIMEOUT,
            },
            queue: DEFAULT_QUEUE,
            tracker: None,
        }
    }
}

impl WsOptions {
    /// The defaults: no subprotocol, any origin, 1 MiB messages, a ping
    /// after 20 s of silence and 20 s to answer it, 64 queued messages.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), http::Error> {
    /// use rill::ws::{self, WsOptions};
    ///
    /// // A request that is no WebSocket handshake is refused with 426.
    /// let mut request = http::Request::get("/ws").header("host", "example.com").body(())?;
    /// let response = ws::upgrade(&mut request, WsOptions::new(), |_socket| async { Ok(()) });
    /// assert_eq!(response.status(), 426);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        WsOptions::default()
    }

    /// The subprotocols the endpoint speaks: the first one the client
    /// offers (in its order) that is in this list is chosen and echoed in
    /// `Sec-WebSocket-Protocol` — without it, browsers and Node's `ws`
    /// abort a handshake that offered protocols.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # fn handshake() -> http::Request<()> {
    /// #     http::Request::get("/ws")
    /// #         .header("host", "example.com")
    /// #         .header("upgrade", "websocket")
    /// #         .header("connection", "upgrade")
    /// #         .header("sec-websocket-version", "13")
    /// #         .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #         .body(())
    /// #         .expect("a valid request")
    /// # }
    /// use rill::ws::{self, WsOptions};
    ///
    /// let options = WsOptions::new().protocols(["graphql-transport-ws"]).require_protocol(true);
    /// let mut request = handshake(); // offers `Sec-WebSocket-Protocol: mqtt`
    /// request.headers_mut().insert("sec-websocket-protocol", http::HeaderValue::from_static("mqtt"));
    /// let response = ws::upgrade(&mut request, options, |_socket| async { Ok(()) });
    /// assert_eq!(response.status(), 400); // none of ours offered
    /// # }
    /// ```
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Refuses (`400`) a client that offers none of the
    /// [`protocols`](Self::protocols).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # fn handshake() -> http::Request<()> {
    /// #     http::Request::get("/ws")
    /// #         .header("host", "example.com")
    /// #         .header("upgrade", "websocket")
    /// #         .header("connection", "upgrade")
    /// #         .header("sec-websocket-version", "13")
    /// #         .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #         .body(())
    /// #         .expect("a valid request")
    /// # }
    /// use rill::ws::{self, WsOptions};
    ///
    /// // ActionCable clients must speak one of these; refuse the others.
    /// let options = WsOptions::new()
    ///     .protocols(["actioncable-v1-json", "actioncable-unsupported"])
    ///     .require_protocol(true);
    /// let mut request = handshake();
    /// request.headers_mut().insert("sec-websocket-protocol", http::HeaderValue::from_static("chat"));
    /// let response = ws::upgrade(&mut request, options, |_socket| async { Ok(()) });
    /// assert_eq!(response.status(), 400);
    /// # }
    /// ```
    pub fn require_protocol(mut self, required: bool) -> Self {
        self.require_protocol = required;
        self
    }

    /// Accepts browsers only from these origins (`403` otherwise). A request
    /// without `Origin` (not from a browser) is accepted.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # fn handshake() -> http::Request<()> {
    /// #     http::Request::get("/ws")
    /// #         .header("host", "example.com")
    /// #         .header("upgrade", "websocket")
    /// #         .header("connection", "upgrade")
    /// #         .header("sec-websocket-version", "13")
    /// #         .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #         .body(())
    /// #         .expect("a valid request")
    /// # }
    /// use rill::ws::{self, WsOptions};
    ///
    /// // Cross-site WebSocket hijacking: browsers on other sites get 403.
    /// let options = WsOptions::new().allowed_origins(["https://app.example.com"]);
    /// let mut request = handshake();
    /// request.headers_mut().insert("origin", http::HeaderValue::from_static("https://evil.example"));
    /// let response = ws::upgrade(&mut request, options, |_socket| async { Ok(()) });
    /// assert_eq!(response.status(), 403);
    /// # }
    /// ```
    pub fn allowed_origins<S: Into<String>>(self, origins: impl IntoIterator<Item = S>) -> Self {
        let origins: Vec<String> = origins.into_iter().map(Into::into).collect();
        self.origin_check(move |origin| origins.iter().any(|o| o == origin))
    }

    /// Accepts browsers whose `Origin` passes `check` (`403` otherwise).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # fn handshake() -> http::Request<()> {
    /// #     http::Request::get("/ws")
    /// #         .header("host", "example.com")
    /// #         .header("upgrade", "websocket")
    /// #         .header("connection", "upgrade")
    /// #         .header("sec-websocket-version", "13")
    /// #         .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #         .body(())
    /// #         .expect("a valid request")
    /// # }
    /// use rill::ws::{self, WsOptions};
    ///
    /// // Any subdomain of example.com, over TLS.
    /// let options = WsOptions::new()
    ///     .origin_check(|origin| origin.starts_with("https://") && origin.ends_with(".example.com"));
    /// let mut request = handshake();
    /// request.headers_mut().insert("origin", http::HeaderValue::from_static("http://app.example.com"));
    /// let response = ws::upgrade(&mut request, options, |_socket| async { Ok(()) });
    /// assert_eq!(response.status(), 403); // not TLS
    /// # }
    /// ```
    pub fn origin_check(mut self, check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.origin = Some(Arc::new(check));
        self
    }

    /// The largest message the peer may send (default 1 MiB); a larger one
    /// closes the socket with `1009 Message Too Big`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{ws::WsOptions, Context, Response};
    ///
    /// // Cursor positions are tiny: close with 1009 anyone sending 4 KiB.
    /// async fn cursors(ctx: Context) -> Response {
    ///     ctx.websocket_with(WsOptions::new().max_message(4 * 1024), |_ctx, mut socket| async move {
    ///         while let Some(message) = socket.recv().await {
    ///             socket.send(message?).await?;
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// How long the peer may stay silent before it is pinged (default 20 s).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsOptions;
    /// use std::time::Duration;
    ///
    /// // Mobile networks drop idle NAT entries quickly: ping after 10 s of
    /// // silence, and count the peer gone 5 s later.
    /// let options = WsOptions::new()
    ///     .ping_interval(Duration::from_secs(10))
    ///     .ping_timeout(Duration::from_secs(5));
    /// ```
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.keepalive.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long a pinged peer has to answer before it counts as gone
    /// (default 20 s): the handler's `disconnected()` resolves.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{ws::WsOptions, Context, Response};
    /// use std::time::Duration;
    ///
    /// async fn presence(ctx: Context) -> Response {
    ///     let options = WsOptions::new().ping_timeout(Duration::from_secs(5));
    ///     ctx.websocket_with(options, |_ctx, socket| async move {
    ///         socket.disconnected().await; // no pong within 5 s, or the TCP link died
    ///         // mark the user offline here
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many messages a handler may send ahead of the peer before `send`
    /// waits (default 64, at least 1).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{ws::WsOptions, Context, Response};
    ///
    /// // A replay that sends a burst: let 1024 messages wait for the peer
    /// // before `send` waits.
    /// async fn replay(ctx: Context) -> Response {
    ///     ctx.websocket_with(WsOptions::new().queue(1024), |_ctx, socket| async move {
    ///         for n in 0..10_000 {
    ///             socket.send(n.to_string()).await?;
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn queue(mut self, messages: usize) -> Self {
        self.queue = messages.max(1);
        self
    }

    /// Registers the sockets with `tracker`: a server shutdown closes them
    /// with `1001 Going Away` and waits for their handlers.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{ws::WsOptions, LiveTracker};
    /// use std::time::Duration;
    ///
    /// // Under axum: let a graceful shutdown close the sockets with 1001.
    /// let tracker = LiveTracker::new();
    /// let options = WsOptions::new().tracker(tracker.clone());
    /// # let _ = options;
    /// // … on shutdown: `tracker.shutdown(Duration::from_secs(10)).await`.
    /// ```
    pub fn tracker(mut self, tracker: LiveTracker) -> Self {
        self.tracker = Some(tracker);
        self
    }
}

impl std::fmt::Debug for WsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsOptions")
            .field("protocols", &self.protocols)
            .field("require_protocol", &self.require_protocol)
            .field("origin_check", &self.origin.is_some())
            .field("max_message", &self.max_message)
            .field("keepalive", &self.keepalive)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Keeps the server's connection counted busy while a socket lives on it
/// (the connection's idle deadlines do not apply to a WebSocket, which has
/// its own keep-alive). rill's server puts one in every request's
/// extensions.
#[derive(Clone)]
pub(crate) struct ConnectionHold {
    pub(crate) _open: Arc<dyn Send + Sync>,
}

/// Upgrades `request` to a WebSocket run by `handler`, from a bare hyper
/// service or an axum handler: answers the handshake (or refuses it with
/// the status of its [`UpgradeError`]) and spawns the socket once hyper
/// hands the connection over. The server must serve with upgrades
/// (`http1::Builder::serve_connection(..).with_upgrades()`; axum does).
///
/// ```
/// use std::convert::Infallible;
///
/// async fn service(
///     mut request: http::Request<hyper::body::Incoming>,
/// ) -> Result<http::Response<rill::Body>, Infallible> {
///     let response = rill::ws::upgrade(&mut request, rill::ws::WsOptions::new(), |mut socket| async move {
///         while let Some(message) = socket.recv().await {
///             socket.send(message?).await?;
///         }
///         Ok(())
///     });
///     Ok(response.into_http())
/// }
/// ```
///
/// # Panics
///
/// When called outside a tokio runtime.
pub fn upgrade<B, F, Fut>(
    request: &mut http::Request<B>,
    options: WsOptions,
    handler: F,
) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let (method, version) = (request.method().clone(), request.version());
    let headers = request.headers().clone();
    match Prepared::new(
        &method,
        version,
        &headers,
        request.extensions_mut(),
        &options,
    ) {
        Ok(prepared) => prepared.spawn(options, handler),
        Err(error) => handshake::refusal(&error),
    }
}

/// A handshake accepted, with the connection's upgrade in hand.
pub(crate) struct Prepared {
    accepted: handshake::Accepted,
    on_upgrade: hyper::upgrade::OnUpgrade,
    hold: Option<ConnectionHold>,
}

impl Prepared {
    /// Checks the handshake and takes the connection's upgrade (and the
    /// server's hold on it) out of the request's extensions.
    fn new(
        method: &http::Method,
        version: http::Version,
        headers: &http::HeaderMap,
        extensions: &mut http::Extensions,
        options: &WsOptions,
    ) -> Result<Prepared, UpgradeError> {
        let accepted = handshake::accept(method, version, headers, extensions, options)?;
        let on_upgrade = extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(UpgradeError::NotUpgradable)?;
        let hold = extensions.remove::<ConnectionHold>();
        Ok(Prepared {
            accepted,
            on_upgrade,
            hold,
        })
    }

    /// [`new`](Self::new) for an action's request; the options get the
    /// app's tracker unless they name another.
    pub(crate) fn from_context(
        ctx: &mut Context,
        options: &mut WsOptions,
    ) -> Result<Prepared, UpgradeError> {
        if options.tracker.is_none() {
            options.tracker = Some(ctx.tracker().clone());
        }
        let parts = ctx.parts_mut();
        let (method, version, headers) =
            (parts.method.clone(), parts.version, parts.headers.clone());
        Prepared::new(&method, version, &headers, &mut parts.extensions, options)
    }

    /// The subprotocol agreed on, if any.
    pub(crate) fn protocol(&self) -> Option<String> {
        self.accepted
            .protocol
            .as_ref()
            .and_then(|p| p.to_str().ok())
            .map(str::to_owned)
    }

    /// Spawns a raw socket's task running `handler`, and returns the
    /// accepting response.
    fn spawn<F, Fut>(self, options: WsOptions, handler: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let shared = Arc::new(SocketShared::new(options.queue));
        let socket = WebSocket::new(
            Receiver::new(shared.clone()),
            WsSender::new(shared.clone()),
            self.protocol(),
        );
        let outbox = RawOutbox(shared.clone());
        self.launch(
            &options,
            Launch { shared, outbox },
            run_handler(handler(socket)),
        )
    }

    /// Spawns the socket's task — which waits for hyper to hand the
    /// connection over, then drives the socket beside `task` — and returns
    /// the accepting response.
    pub(crate) fn launch<O: Outbox>(
        self,
        options: &WsOptions,
        launch: Launch<O>,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Response {
        let Prepared {
            accepted,
            on_upgrade,
            hold,
        } = self;
        let response = handshake::response(&accepted);
        let Launch { shared, outbox } = launch;
        // Counted as live (closed with 1001 at shutdown) and as a running
        // writer (the shutdown waits for it) while the task runs.
        let guards = options
            .tracker
            .as_ref()
            .map(|tracker| (tracker.register(&shared), tracker.writer_started()));
        let limits = tokio_websockets::Limits::default().max_payload_len(Some(options.max_message));
        let keepalive = options.keepalive;
        tokio::spawn(async move {
            let _hold = hold;
            let _guards = guards;
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    tracing::debug!(%error, "WebSocket upgrade failed");
                    return;
                }
            };
            let driver = Driver::new(TokioIo::new(upgraded), limits, outbox, shared, keepalive);
            tokio::join!(driver, task);
        });
        response
    }
}

/// What a socket's task is made of besides the connection: the state the
/// driver and the handler share (with the queue of what it reads), and
/// where the driver takes what to send.
pub(crate) struct Launch<O> {
    pub(crate) shared: Arc<SocketShared>,
    pub(crate) outbox: O,
}

/// Runs a handler, logging how it ended: a closed socket or a departed peer
/// is a normal end.
async fn run_handler(handler: impl Future<Output = Result<(), BoxError>>) {
    match crate::panic::catch_unwind(handler).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => match error.downcast::<WsError>() {
            Ok(ws) if ws.is_end_of_stream() => {}
            Ok(ws) => tracing::debug!(error = %ws, "WebSocket handler stopped"),
            Err(other) => tracing::error!(error = %other, "WebSocket handler failed"),
        },
        Err(payload) => tracing::error!(
            panic = %crate::panic::message(payload.as_ref()),
            "WebSocket handler panicked"
        ),
    }
}

impl Context {
    /// Answers with a WebSocket run by `handler` (with the default
    /// [`WsOptions`]): `101 Switching Protocols` on HTTP/1.1, `200` on an
    /// HTTP/2 extended `CONNECT`; a request that is no WebSocket handshake
    /// gets `426 Upgrade Required`. The handler runs in a task of its own
    /// once the connection is handed over; the socket closes with `1000`
    /// when it returns, `1001` when the server shuts down.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), http::Error> {
    /// use rill::{Context, Router};
    ///
    /// let app = Router::new()
    ///     .get("/echo", |ctx: Context| async move {
    ///         ctx.websocket(|_ctx, mut socket| async move {
    ///             while let Some(message) = socket.recv().await {
    ///                 socket.send(message?).await?;
    ///             }
    ///             Ok(())
    ///         })
    ///     })
    ///     .into_service();
    /// // A plain GET (no `Upgrade: websocket`) is told to upgrade:
    /// let request = http::Request::get("/echo").header("host", "example.com").body(String::new())?;
    /// assert_eq!(app.handle(request).await.status(), 426);
    /// # Ok(())
    /// # }
    /// ```
    pub fn websocket<F, Fut>(self, handler: F) -> Response
    where
        F: FnOnce(Context, WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.websocket_with(WsOptions::default(), handler)
    }

    /// [`websocket`](Self::websocket) with options. The app's tracker is
    /// used unless the options name another.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), http::Error> {
    /// use rill::{ws::WsOptions, Context, Router};
    ///
    /// let app = Router::new()
    ///     .get("/live", |ctx: Context| async move {
    ///         let options = WsOptions::new().allowed_origins(["https://app.example.com"]);
    ///         ctx.websocket_with(options, |_ctx, socket| async move {
    ///             socket.send("welcome").await?;
    ///             Ok(())
    ///         })
    ///     })
    ///     .into_service();
    /// let request = http::Request::get("/live")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "upgrade")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("origin", "https://evil.example")
    ///     .body(String::new())?;
    /// assert_eq!(app.handle(request).await.status(), 403);
    /// # Ok(())
    /// # }
    /// ```
    pub fn websocket_with<F, Fut>(mut self, mut options: WsOptions, handler: F) -> Response
    where
        F: FnOnce(Context, WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        match Prepared::from_context(&mut self, &mut options) {
            Ok(prepared) => prepared.spawn(options, move |socket| handler(self, socket)),
            Err(error) => handshake::refusal(&error),
        }
    }
}
