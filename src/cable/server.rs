//! [`Cable`]: the server — accepts connections, knows its channels, and
//! broadcasts, disconnects and pings from anywhere.

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, PoisonError, Weak,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, oneshot};

use super::{
    channel::{Channel, ChannelFactory, DynChannel},
    connection::{ConnectRequest, Identifiers},
    error::CableError,
    outbox::{Outbox, OutboxReader},
    parked::{self, Parked},
    protocol::{self, DisconnectReason, Protocol, PROTOCOL_EXT_JSON, PROTOCOL_JSON},
    remote::{self, Listener},
    session::{self, Event},
};
use crate::{
    broker::{Broker, Position, Publication},
    context::Context,
    response::Response,
    ws::{handshake, shared::SocketShared, socket::Receiver, Launch, Prepared, WsOptions},
};

/// Default interval between two pings (the clients call a connection stale
/// after two missed ones).
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, DEFAULT_PING_INTERVAL};
///
/// assert_eq!(DEFAULT_PING_INTERVAL.as_secs(), 3); // as Rails' beat
/// // Behind a proxy that drops idle sockets after 2 s, ping more often:
/// let cable = Cable::builder().ping_interval(DEFAULT_PING_INTERVAL / 3).build();
/// # drop(cable);
/// ```
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(3);
/// Default broadcasts waiting per connection before it is disconnected as
/// `too_slow`.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, DEFAULT_QUEUE};
///
/// assert_eq!(DEFAULT_QUEUE, 1024);
/// // A ticker broadcasting 100 quotes a second may let clients fall further behind:
/// let cable = Cable::builder().queue(4 * DEFAULT_QUEUE).build();
/// # drop(cable);
/// ```
pub const DEFAULT_QUEUE: usize = 1024;
/// Default bytes waiting per connection before it is disconnected as
/// `too_slow`.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, DEFAULT_BUFFER};
///
/// assert_eq!(DEFAULT_BUFFER, 1024 * 1024);
/// let cable = Cable::builder().buffer(DEFAULT_BUFFER / 4).build(); // small messages only
/// # drop(cable);
/// ```
pub const DEFAULT_BUFFER: usize = 1024 * 1024;
/// Default time an extended-protocol session that lost its socket may be
/// restored in.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, DEFAULT_SESSION_TTL};
///
/// assert_eq!(DEFAULT_SESSION_TTL.as_secs(), 300);
/// let cable = Cable::builder().session_ttl(DEFAULT_SESSION_TTL * 2).build(); // flaky mobile networks
/// # drop(cable);
/// ```
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(300);
/// Default subscriptions one connection may hold.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, DEFAULT_MAX_SUBSCRIPTIONS};
///
/// assert_eq!(DEFAULT_MAX_SUBSCRIPTIONS, 256);
/// let cable = Cable::builder().max_subscriptions(DEFAULT_MAX_SUBSCRIPTIONS * 4).build();
/// # drop(cable);
/// ```
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 256;
/// Default sessions kept for restoring at once.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, DEFAULT_MAX_PARKED_SESSIONS};
///
/// assert_eq!(DEFAULT_MAX_PARKED_SESSIONS, 10_000);
/// let cable = Cable::builder().max_parked_sessions(DEFAULT_MAX_PARKED_SESSIONS * 5).build();
/// # drop(cable);
/// ```
pub const DEFAULT_MAX_PARKED_SESSIONS: usize = 10_000;

/// Why `connect` refused a connection.
///
/// # Example
///
/// ```
/// use rill::cable::{Cable, Identifiers, Rejection};
///
/// let cable = Cable::builder()
///     .connect(|req| async move {
///         match req.query("token") {
///             Some(token) if token.len() == 32 => Ok(Identifiers::new().with("token", token)),
///             Some(_) => Err(Rejection::Unauthorized), // Rails' reject_unauthorized_connection
///             None => Err(Rejection::InvalidRequest),
///         }
///     })
///     .build();
/// # drop(cable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Rails' `reject_unauthorized_connection`: the client gets
    /// `{"type":"disconnect","reason":"unauthorized","reconnect":false}`.
    Unauthorized,
    /// The request cannot be served (`invalid_request`, no reconnect).
    InvalidRequest,
}

impl Rejection {
    pub(crate) fn reason(self) -> DisconnectReason {
        match self {
            Rejection::Unauthorized => DisconnectReason::Unauthorized,
            Rejection::InvalidRequest => DisconnectReason::InvalidRequest,
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type ConnectHook =
    Box<dyn Fn(ConnectRequest) -> BoxFuture<Result<Identifiers, Rejection>> + Send + Sync>;
type DisconnectHook = Box<dyn Fn(Identifiers) -> BoxFuture<()> + Send + Sync>;

/// An ActionCable server: the endpoint `@rails/actioncable` and
/// `@anycable/web` connect to. Cheap to clone; clones share channels,
/// connections and sessions.
///
/// ```
/// use rill::cable::{Cable, Channel, ChannelResult, Identifiers, Rejection, Subscription};
/// use rill::{Context, Router};
///
/// #[derive(Default)]
/// struct NotificationsChannel;
///
/// impl Channel for NotificationsChannel {
///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
///         let user = sub.identifiers().get("user").unwrap_or_default().to_owned();
///         sub.stream_for(&[&user]);            // "notifications:<user>"
///         Ok(())
///     }
/// }
///
/// let cable = Cable::builder()
///     .connect(|req| async move {
///         match req.cookie("user") {
///             Some(user) => Ok(Identifiers::new().with("user", user)),
///             None => Err(Rejection::Unauthorized),
///         }
///     })
///     .channel("NotificationsChannel", NotificationsChannel::default)
///     .build();
///
/// let c = cable.clone();
/// let router = Router::new().get("/cable", move |ctx: Context| {
///     let cable = c.clone();
///     async move { cable.accept(ctx) }
/// });
///
/// // from anywhere: a controller, a task, another thread
/// cable.broadcast("notifications:alice", &serde_json::json!({"title": "Hi"})).unwrap();
/// ```
#[derive(Clone)]
pub struct Cable {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) broker: Broker,
    channels: HashMap<String, ChannelFactory>,
    connect: Option<ConnectHook>,
    disconnect: Option<DisconnectHook>,
    pub(crate) reject_unknown: bool,
    options: WsOptions,
    pub(crate) queue: usize,
    pub(crate) buffer: usize,
    ping_interval: Duration,
    pub(crate) session_ttl: Duration,
    pub(crate) restore_wait: Duration,
    pub(crate) max_subscriptions: usize,
    max_parked: usize,
    connections: Mutex<HashMap<u64, Live>>,
    sessions: Mutex<HashMap<String, Parked>>,
    next_id: AtomicU64,
    ticking: AtomicBool,
    /// Tells this cable's remote disconnects from others' on the broker.
    origin: String,
    /// Listens for other cables' remote disconnects (from the first
    /// connection on).
    listener: Mutex<Option<Listener>>,
}

/// A connection as the server reaches it: to ping it, to disconnect it,
/// to take its session over.
struct Live {
    identifiers: Arc<Identifiers>,
    out: Arc<Outbox>,
    /// Its session id and its session's events (extended protocol).
    session: Option<(String, mpsc::Sender<Event>)>,
}

/// How long a restoring connection waits for the connection that still
/// holds its session to hand it over.
const TAKE_OVER_WAIT: Duration = Duration::from_secs(2);

/// Configures a [`Cable`].
///
/// ```
/// use rill::cable::Cable;
/// use rill::broker::Broker;
/// use std::time::Duration;
///
/// let cable = Cable::builder()
///     .broker(Broker::builder().history(100).build()) // shared with other transports
///     .reject_unknown_channels(true)                  // so clients stop retrying
///     .queue(512)                                     // broadcasts waiting before `too_slow`
///     .session_ttl(Duration::from_secs(120))          // extended protocol's restore window
///     .build();
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct CableBuilder {
    broker: Option<Broker>,
    channels: HashMap<String, ChannelFactory>,
    connect: Option<ConnectHook>,
    disconnect: Option<DisconnectHook>,
    reject_unknown: bool,
    options: WsOptions,
    queue: usize,
    buffer: usize,
    ping_interval: Duration,
    session_ttl: Duration,
    restore_wait: Duration,
    max_subscriptions: usize,
    max_parked: usize,
}

impl Default for CableBuilder {
    fn default() -> Self {
        CableBuilder {
            broker: None,
            channels: HashMap::new(),
            connect: None,
            disconnect: None,
            reject_unknown: false,
            options: WsOptions::default(),
            queue: DEFAULT_QUEUE,
            buffer: DEFAULT_BUFFER,
            ping_interval: DEFAULT_PING_INTERVAL,
            session_ttl: DEFAULT_SESSION_TTL,
            restore_wait: Duration::from_secs(5),
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_parked: DEFAULT_MAX_PARKED_SESSIONS,
        }
    }
}

impl CableBuilder {
    /// Broadcasts through `broker` (shared with SSE and WebSocket
    /// transports, or spanning processes) instead of one of the cable's own.
    /// Its history is what extended-protocol clients resume from.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::broker::Broker;
    /// use rill::cable::Cable;
    ///
    /// // One broker for the cable and, say, an SSE hub: a broadcast reaches both.
    /// let broker = Broker::builder().history(1_000).build();
    /// let cable = Cable::builder().broker(broker.clone()).build();
    /// cable.publish("chat_lobby", &serde_json::json!({"message": "hi"})).await?;
    /// assert_eq!(broker.stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Runs `hook` for every new connection, with the request it was opened
    /// with: the identifiers it returns are the connection's; a
    /// [`Rejection`] refuses it. Commands the client sends meanwhile wait
    /// and run after the welcome, in order. Without a hook every connection
    /// is accepted, with no identifiers.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Identifiers, Rejection};
    ///
    /// // Rails' `identified_by :current_user`, from a signed-in cookie.
    /// let cable = Cable::builder()
    ///     .connect(|req| async move {
    ///         match req.cookie("user_id") {
    ///             Some(id) => Ok(Identifiers::new().with("current_user", id)),
    ///             None => Err(Rejection::Unauthorized),
    ///         }
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Identifiers, Rejection>> + Send + 'static,
    {
        self.connect = Some(Box::new(move |req| Box::pin(hook(req))));
        self
    }

    /// Runs `hook` when a connection is over, after `unsubscribed` of every
    /// subscription.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    /// use rill::state::Store;
    ///
    /// // Mark the user offline when their last subscription is gone.
    /// let presence = Store::new();
    /// let cable = Cable::builder()
    ///     .disconnect(move |ids| {
    ///         let presence = presence.clone();
    ///         async move {
    ///             if let Some(user) = ids.get("current_user") {
    ///                 let _ = presence.delete("presence", "online", user).await;
    ///             }
    ///         }
    ///     })
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn disconnect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Identifiers) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.disconnect = Some(Box::new(move |ids| Box::pin(hook(ids))));
        self
    }

    /// Serves channel `class` (the `channel` of clients' identifiers, as
    /// `"ChatChannel"`) with a value made by `make` for each subscription.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Cable, Channel, ChannelResult, Subscription};
    ///
    /// #[derive(Default)]
    /// struct AppearanceChannel;
    ///
    /// impl Channel for AppearanceChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         sub.stream_from("appearances");
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let cable = Cable::builder()
    ///     .channel("AppearanceChannel", AppearanceChannel::default) // a new value per subscription
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn channel<C, F>(mut self, class: &str, make: F) -> Self
    where
        C: Channel,
        F: Fn() -> C + Send + Sync + 'static,
    {
        let factory: ChannelFactory = Arc::new(move || Box::new(make()) as Box<dyn DynChannel>);
        self.channels.insert(class.to_owned(), factory);
        self
    }

    /// Answers a subscription to a channel the server does not have with
    /// `reject_subscription` (off by default: Rails answers nothing, and
    /// its client then retries every 500 ms).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// // A client subscribing to "AdminChannel" here gets `reject_subscription`
    /// // and stops retrying.
    /// let cable = Cable::builder().reject_unknown_channels(true).build();
    /// # drop(cable);
    /// ```
    pub fn reject_unknown_channels(mut self, reject: bool) -> Self {
        self.reject_unknown = reject;
        self
    }

    /// How sockets are accepted: origins, the largest message, keep-alive.
    /// The subprotocols are the cable's own (`actioncable-v1-json`,
    /// `actioncable-v1-ext-json`) and replace any given here.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    /// use rill::ws::WsOptions;
    ///
    /// // Rails' `allowed_request_origins`, and no message over 64 KiB.
    /// let cable = Cable::builder()
    ///     .ws_options(
    ///         WsOptions::new()
    ///             .allowed_origins(["https://app.example.com"])
    ///             .max_message(64 * 1024),
    ///     )
    ///     .build();
    /// # drop(cable);
    /// ```
    pub fn ws_options(mut self, options: WsOptions) -> Self {
        self.options = options;
        self
    }

    /// How many broadcasts may wait for one connection (default 1024)
    /// before it is disconnected with reason `too_slow`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// // A slow client is cut off (`too_slow`) once 256 broadcasts wait for it.
    /// let cable = Cable::builder().queue(256).build();
    /// # drop(cable);
    /// ```
    pub fn queue(mut self, messages: usize) -> Self {
        self.queue = messages.max(1);
        self
    }

    /// How many bytes may wait for one connection (default 1 MiB) before it
    /// is disconnected with reason `too_slow`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// // At most 4 MiB waiting per connection (large document broadcasts).
    /// let cable = Cable::builder().buffer(4 * 1024 * 1024).build();
    /// # drop(cable);
    /// ```
    pub fn buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes.max(1);
        self
    }

    /// How often every connection is pinged (default 3 s; the clients call
    /// a connection stale after 6 s without a message).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    /// use std::time::Duration;
    ///
    /// let cable = Cable::builder().ping_interval(Duration::from_secs(1)).build();
    /// # drop(cable);
    /// ```
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long an extended-protocol session that lost its socket may be
    /// restored (default 300 s; zero turns restoring off). Its
    /// subscriptions' `unsubscribed` and the connection's `disconnect` run
    /// when it expires — unless another process sharing the broker's
    /// backend restored it meanwhile (then they run where it ends there;
    /// see `docs/cable.md`, sessions across processes).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    /// use std::time::Duration;
    ///
    /// // Restoring off: every reconnect subscribes afresh, as with Rails.
    /// let cable = Cable::builder().session_ttl(Duration::ZERO).build();
    /// # drop(cable);
    /// ```
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// How many subscriptions one connection may hold (default 256); one
    /// more is answered with `reject_subscription`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// // A dashboard with a subscription per widget.
    /// let cable = Cable::builder().max_subscriptions(1024).build();
    /// # drop(cable);
    /// ```
    pub fn max_subscriptions(mut self, subscriptions: usize) -> Self {
        self.max_subscriptions = subscriptions;
        self
    }

    /// How many lost sessions are kept for restoring at once (default
    /// 10,000); past it, a lost session ends at once (`unsubscribed`,
    /// `disconnect`) and its client starts afresh.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::builder().max_parked_sessions(50_000).build();
    /// assert_eq!(cable.parked_session_count(), 0);
    /// ```
    pub fn max_parked_sessions(mut self, sessions: usize) -> Self {
        self.max_parked = sessions;
        self
    }

    /// Builds the cable.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::builder().build();
    /// assert_eq!(cable.connection_count(), 0);
    /// ```
    pub fn build(self) -> Cable {
        let broker = self.broker.unwrap_or_default();
        let options = self
            .options
            .protocols([PROTOCOL_JSON, PROTOCOL_EXT_JSON])
            .require_protocol(false);
        Cable {
            inner: Arc::new(Inner {
                broker,
                channels: self.channels,
                connect: self.connect,
                disconnect: self.disconnect,
                reject_unknown: self.reject_unknown,
                options,
                queue: self.queue,
                buffer: self.buffer,
                ping_interval: self.ping_interval,
                session_ttl: self.session_ttl,
                restore_wait: self.restore_wait,
                max_subscriptions: self.max_subscriptions,
                max_parked: self.max_parked,
                connections: Mutex::default(),
                sessions: Mutex::default(),
                next_id: AtomicU64::new(0),
                ticking: AtomicBool::new(false),
                origin: remote::new_origin(),
                listener: Mutex::default(),
            }),
        }
    }
}

impl std::fmt::Debug for CableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CableBuilder")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for Cable {
    fn default() -> Self {
        Cable::builder().build()
    }
}

impl Cable {
    /// Configures a cable.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::builder().reject_unknown_channels(true).build();
    /// # drop(cable);
    /// ```
    pub fn builder() -> CableBuilder {
        CableBuilder::default()
    }

    /// The broker every broadcast rides.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::default();
    /// cable.publish("chat_lobby", &"hello").await?;
    /// assert_eq!(cable.broker().stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// Answers `ctx` with a cable connection: `101 Switching Protocols`
    /// with the first subprotocol the client offers that the cable speaks
    /// (`actioncable-v1-json` or `actioncable-v1-ext-json`), or the refusal
    /// of a request that is no acceptable WebSocket handshake. The
    /// connection runs in a task of its own; a server shutdown sends every
    /// client `server_restart` (reconnect) and closes it.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::cable::Cable;
    /// use rill::http::Request;
    /// use rill::{Context, Router};
    ///
    /// let cable = Cable::default();
    /// let app = Router::new()
    ///     .get("/cable", move |ctx: Context| { let cable = cable.clone(); async move { cable.accept(ctx) } })
    ///     .into_service();
    /// // A plain GET is no WebSocket handshake: refused.
    /// let request = Request::get("/cable").header("host", "localhost").body(String::new())?;
    /// assert!(app.handle(request).await.status().is_client_error());
    /// # Ok(()) }
    /// ```
    pub fn accept(&self, mut ctx: Context) -> Response {
        let mut options = self.inner.options.clone();
        let prepared = match Prepared::from_context(&mut ctx, &mut options) {
            Ok(prepared) => prepared,
            Err(error) => return handshake::refusal(&error),
        };
        self.start_ticker();
        self.listen_for_remote_disconnects();
        let protocol = prepared
            .protocol()
            .and_then(|p| Protocol::from_name(&p))
            .unwrap_or(Protocol::Json);
        let socket = Arc::new(SocketShared::new(options.queue));
        let out = Arc::new(Outbox::new(self.inner.queue, self.inner.buffer));
        let request = ConnectRequest::new(
            ctx.uri().clone(),
            ctx.headers().clone(),
            ctx.query_pairs().to_vec(),
        );
        let task = session::run(
            self.clone(),
            request,
            protocol,
            out.clone(),
            socket.clone(),
            Receiver::new(socket.clone()),
        );
        prepared.launch(
            &options,
            Launch {
                shared: socket,
                outbox: OutboxReader::new(out),
            },
            task,
        )
    }

    /// Broadcasts `data` (any `Serialize`) to every subscription streaming
    /// `stream`, in every process the broker spans. Never waits: the
    /// fan-out follows in a task; broadcasts to one stream arrive in the
    /// order they were made.
    ///
    /// # Errors
    ///
    /// [`CableError::InvalidJson`] when `data` cannot be serialized;
    /// [`CableError::Publish`] when the broker refused it.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::cable::Cable;
    /// use serde_json::json;
    ///
    /// let cable = Cable::default();
    /// // ActionCable.server.broadcast("chat_lobby", { message: "hi" })
    /// cable.broadcast("chat_lobby", &json!({"message": "hi", "sent_by": "ann"}))?;
    /// # Ok(()) }
    /// ```
    pub fn broadcast<T: Serialize + ?Sized>(
        &self,
        stream: &str,
        data: &T,
    ) -> Result<(), CableError> {
        let json = to_json(data)?;
        self.publish_detached(stream, json)
    }

    /// Broadcasts JSON text `json` as it is: an object stays an object, a
    /// string a string (`"\"{}\""` arrives as the string `"{}"`).
    ///
    /// # Errors
    ///
    /// [`CableError::InvalidJson`] when `json` is not one JSON value;
    /// [`CableError::Publish`] when the broker refused it.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::cable::{Cable, CableError};
    ///
    /// let cable = Cable::default();
    /// assert!(cable.broadcast_json("chat_lobby", r#"{"message":"hi"}"#).is_ok());
    /// let error = cable.broadcast_json("chat_lobby", "{not json").unwrap_err();
    /// assert!(matches!(error, CableError::InvalidJson { .. }));
    /// # }
    /// ```
    pub fn broadcast_json(&self, stream: &str, json: &str) -> Result<(), CableError> {
        let json = checked_json(json)?.to_owned();
        self.publish_detached(stream, json)
    }

    /// [`broadcast`](Self::broadcast), resolving once the broker placed the
    /// message and offered it to this process's subscriptions: its
    /// position in the stream.
    ///
    /// # Errors
    ///
    /// As for [`broadcast`](Self::broadcast).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::default();
    /// let first = cable.publish("orders", &serde_json::json!({"id": 1})).await?;
    /// let second = cable.publish("orders", &serde_json::json!({"id": 2})).await?;
    /// assert_eq!((first.offset(), second.offset()), (1, 2));
    /// # Ok(()) }
    /// ```
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        stream: &str,
        data: &T,
    ) -> Result<Position, CableError> {
        let json = to_json(data)?;
        Ok(self
            .inner
            .broker
            .publish(stream, Publication::new(json))
            .await?)
    }

    fn publish_detached(&self, stream: &str, json: String) -> Result<(), CableError> {
        self.inner
            .broker
            .publish_detached(stream, Publication::new(json))?;
        Ok(())
    }

    /// Disconnects every connection whose identifiers include all of
    /// `matching` (Rails' `remote_connections.where(…).disconnect`): its
    /// client gets `{"type":"disconnect","reason":"remote","reconnect":…}`
    /// and the socket closes. Sessions of such connections waiting to be
    /// restored end too.
    ///
    /// It reaches the connections of this process at once, and returns how
    /// many; then it tells every other cable on the same broker backend
    /// (the processes sharing a Redis and key prefix, or other cables on
    /// this broker) through the broker, and each disconnects its own as the
    /// message arrives. A backend that cannot be reached (Redis down) is
    /// logged: the other processes are not told.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::default();
    /// // A user signed out everywhere: close their sockets, no reconnect
    /// // (Rails' `remote_connections.where(current_user: user).disconnect`).
    /// let reached = cable.disconnect(&[("current_user", "42")], false);
    /// assert_eq!(reached, 0); // nobody connected here in this example
    /// ```
    pub fn disconnect(&self, matching: &[(&str, &str)], reconnect: bool) -> usize {
        let reached = self.disconnect_here(matching, reconnect);
        if let Err(error) =
            remote::publish(&self.inner.broker, &self.inner.origin, matching, reconnect)
        {
            tracing::warn!(%error, "remote cable disconnect not sent to other processes");
        }
        reached
    }

    /// [`disconnect`](Cable::disconnect) on this process only: how many
    /// connections it reached.
    fn disconnect_here(&self, matching: &[(&str, &str)], reconnect: bool) -> usize {
        let frame = Bytes::from(protocol::disconnect(DisconnectReason::Remote, reconnect));
        let mut reached = 0;
        for live in lock(&self.inner.connections).values() {
            if live.identifiers.matches(matching) {
                live.out.end(Some(frame.clone()), 1000, "remote");
                reached += 1;
            }
        }
        let ended: Vec<Parked> = {
            let mut sessions = lock(&self.inner.sessions);
            let sids: Vec<String> = sessions
                .iter()
                .filter(|(_, p)| p.identifiers.matches(matching))
                .map(|(sid, _)| sid.clone())
                .collect();
            sids.iter().filter_map(|sid| sessions.remove(sid)).collect()
        };
        for parked in ended {
            self.expire(parked);
        }
        reached
    }

    /// Connections open now (welcomed and not yet closed).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::default();
    /// assert_eq!(cable.connection_count(), 0); // e.g. for a metrics endpoint
    /// ```
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.connections).len()
    }

    /// Sessions waiting to be restored now (extended protocol).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    ///
    /// let cable = Cable::default();
    /// assert_eq!(cable.parked_session_count(), 0);
    /// ```
    pub fn parked_session_count(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    /// The channel class `class`'s factory.
    pub(crate) fn channel_factory(&self, class: &str) -> Option<ChannelFactory> {
        self.inner.channels.get(class).cloned()
    }

    /// Runs the connect hook.
    pub(crate) async fn run_connect(
        &self,
        request: ConnectRequest,
    ) -> Result<Identifiers, Rejection> {
        match &self.inner.connect {
            Some(hook) => match crate::panic::catch_unwind(hook(request)).await {
                Ok(result) => result,
                Err(payload) => {
                    tracing::error!(
                        panic = %crate::panic::message(payload.as_ref()),
                        "cable connect hook panicked"
                    );
                    Err(Rejection::InvalidRequest)
                }
            },
            None => Ok(Identifiers::new()),
        }
    }

    /// Runs the disconnect hook.
    pub(crate) async fn run_disconnect(&self, identifiers: Identifiers) {
        if let Some(hook) = &self.inner.disconnect {
            if let Err(payload) = crate::panic::catch_unwind(hook(identifiers)).await {
                tracing::error!(
                    panic = %crate::panic::message(payload.as_ref()),
                    "cable disconnect hook panicked"
                );
            }
        }
    }

    /// Registers a welcomed connection: pinged and reachable until the
    /// guard is dropped.
    pub(crate) fn register(
        &self,
        identifiers: Arc<Identifiers>,
        out: Arc<Outbox>,
        session: Option<(String, mpsc::Sender<Event>)>,
    ) -> Registered {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let live = Live {
            identifiers,
            out,
            session,
        };
        lock(&self.inner.connections).insert(id, live);
        Registered {
            inner: Arc::downgrade(&self.inner),
            id,
        }
    }

    /// Keeps a session that lost its socket, to be restored by `sid` —
    /// and, on a shared backend, stashes its record there first, so that a
    /// client back on another process finds it; gives it back when the
    /// cable keeps as many as it may.
    pub(crate) async fn park(&self, sid: String, mut parked: Parked) -> Result<(), Parked> {
        if self.parked_session_count() >= self.inner.max_parked {
            return Err(parked);
        }
        // Past the ticker's period: the owner's expiry must still find a
        // record no other process took (see `parked`).
        let ttl = self.inner.session_ttl + self.inner.ping_interval + parked::STASH_MARGIN;
        parked::stash(self, &sid, &mut parked, ttl).await;
        let mut sessions = lock(&self.inner.sessions);
        if sessions.len() >= self.inner.max_parked {
            return Err(parked);
        }
        sessions.insert(sid, parked);
        Ok(())
    }

    /// The session `sid` for a connection restoring it: parked here,
    /// handed over by the connection that still holds it (its client saw
    /// the old socket die before the server did), or parked by another
    /// process sharing the backend. `None` when there is no such session
    /// (any more), or another process continues it.
    pub(crate) async fn restore(&self, sid: &str) -> Option<Parked> {
        if sid.is_empty() {
            return None;
        }
        let kept = lock(&self.inner.sessions).remove(sid);
        if let Some(parked) = kept {
            if parked.expires <= Instant::now() {
                // Over: not to be restored here, nor from its record.
                self.expire(parked);
                return None;
            }
            return self.claimed(parked).await;
        }
        let holder = lock(&self.inner.connections)
            .values()
            .filter_map(|live| live.session.as_ref())
            .find(|(held, _)| held == sid)
            .map(|(_, events)| events.clone());
        let Some(holder) = holder else {
            return parked::take_from_elsewhere(self, sid).await;
        };
        let (reply, handed) = oneshot::channel();
        let asked = tokio::time::timeout(TAKE_OVER_WAIT, holder.send(Event::TakeOver(reply)));
        if !matches!(asked.await, Ok(Ok(()))) {
            return None;
        }
        match tokio::time::timeout(TAKE_OVER_WAIT, handed).await {
            Ok(Ok(parked)) => Some(parked),
            // The holder ended meanwhile: it may have parked the session.
            _ => self.claimed(self.unpark(sid)?).await,
        }
    }

    /// `parked`, unless another process restored it meanwhile (then it
    /// lives on there, and ends here without its callbacks).
    async fn claimed(&self, parked: Parked) -> Option<Parked> {
        let ours = parked::claim(self, parked.stashed.as_deref()).await;
        ours.then_some(parked)
    }

    /// Takes the session `sid` back, if it is still kept.
    pub(crate) fn unpark(&self, sid: &str) -> Option<Parked> {
        let parked = lock(&self.inner.sessions).remove(sid)?;
        if parked.expires <= Instant::now() {
            self.expire(parked);
            return None;
        }
        Some(parked)
    }

    /// Ends a session that was not restored in time: `unsubscribed` of its
    /// subscriptions, then `disconnect` — unless another process restored
    /// it.
    fn expire(&self, parked: Parked) {
        let cable = self.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { parked::end(&cable, parked).await });
        }
    }

    /// Starts listening for other cables' remote disconnects, unless it
    /// listens already (a refusal — too many channels — is logged and tried
    /// again at the next connection).
    fn listen_for_remote_disconnects(&self) {
        let mut listener = lock(&self.inner.listener);
        if listener.is_none() {
            let cable = Arc::downgrade(&self.inner);
            let apply: remote::Apply = Box::new(move |matching, reconnect| {
                let inner = cable.upgrade()?;
                Some(Cable { inner }.disconnect_here(matching, reconnect))
            });
            match Listener::start(&self.inner.broker, &self.inner.origin, apply) {
                Ok(started) => *listener = Some(started),
                Err(error) => tracing::warn!(%error, "not listening for remote cable disconnects"),
            }
        }
    }

    /// Starts the task that pings every connection and ends sessions not
    /// restored in time (once per cable; it stops when the cable is
    /// dropped).
    fn start_ticker(&self) {
        if self.inner.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let interval = self.inner.ping_interval;
        tokio::spawn(tick(inner, interval));
    }
}

/// Pings every `interval`: one frame, shared by every connection.
async fn tick(inner: Weak<Inner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let ping = Bytes::from(protocol::ping(unix_seconds(SystemTime::now())));
        for live in lock(&inner.connections).values() {
            live.out.push(ping.clone(), false);
        }
        let now = Instant::now();
        let expired: Vec<Parked> = {
            let mut sessions = lock(&inner.sessions);
            let sids: Vec<String> = sessions
                .iter()
                .filter(|(_, p)| p.expires <= now)
                .map(|(sid, _)| sid.clone())
                .collect();
            sids.iter().filter_map(|sid| sessions.remove(sid)).collect()
        };
        let cable = Cable { inner };
        for parked in expired {
            cable.expire(parked);
        }
    }
}

/// Unregisters a connection when dropped.
pub(crate) struct Registered {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.connections).remove(&self.id);
        }
    }
}

impl std::fmt::Debug for Cable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cable")
            .field("channels", &self.inner.channels.keys().collect::<Vec<_>>())
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Answers with a connection to `cable`: see [`Cable::accept`].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::Cable;
    /// use rill::{Context, Router};
    ///
    /// let cable = Cable::default();
    /// let router = Router::new().get("/cable", move |ctx: Context| {
    ///     let cable = cable.clone();
    ///     async move { ctx.action_cable(&cable) }
    /// });
    /// # drop(router);
    /// ```
    pub fn action_cable(self, cable: &Cable) -> Response {
        cable.accept(self)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since the Unix epoch (0 for a clock set before it).
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn to_json<T: Serialize + ?Sized>(data: &T) -> Result<String, CableError> {
    serde_json::to_string(data).map_err(|e| CableError::InvalidJson {
        reason: e.to_string(),
    })
}

/// `json` without surrounding whitespace, once checked to be one JSON
/// value.
pub(crate) fn checked_json(json: &str) -> Result<&str, CableError> {
    let raw: &RawValue = serde_json::from_str(json).map_err(|e| CableError::InvalidJson {
        reason: e.to_string(),
    })?;
    Ok(raw.get())
}
