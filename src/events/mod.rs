//! Named-event streams over WebSocket: events with a name and JSON data,
//! fire-and-forget in both directions, ordered per connection; broker
//! channels reachable over the same socket; and the JavaScript client that
//! speaks it (`GET /rill.js`).
//!
//! * [`EventStream`] — the server's side: [`send`](EventStream::send) to
//!   every client, [`on`](EventStream::on) / [`once`](EventStream::once) /
//!   [`off`](EventStream::off) for what clients send, served by
//!   [`accept`](EventStream::accept).
//! * [`Connection`] — one client: its own [`send`](Connection::send), its
//!   id, its end.
//! * [`Data`] — what a client sent with an event.
//! * `connection` — the pipe a connection's lines travel through.
//! * `sink` — a connection as the broker's subscriber.
//! * `session` — a connection's task: handlers, subscriptions.
//! * `wire` — the wire format.
//! * [`client_module`] — the JavaScript client, served in one line.
//!
//! # The wire format
//!
//! Text messages of JSON objects, one per line (a message may carry many;
//! every line ends with `\n` from the server). The server sends:
//!
//! | line | meaning |
//! |---|---|
//! | `{"event":"tick","data":{…}}` | a named event; `data` left out when there is none |
//! | `{"channel":"c","id":"<epoch>-<offset>","event":"e","data":"…"}` | a hub channel's message, with the id SSE clients get too (`event` only when named) |
//! | `{"channel":"c","subscribed":true}` | the channel is joined: what is published from now on arrives |
//! | `{"channel":"c","position":"<epoch>-<offset>"}` | where a channel joined without `since` stands (before `subscribed`) |
//! | `{"channel":"c","reset":true}` | continuity lost: history follows, then live messages |
//! | `{"channel":"c","gap":n}` / `{"gap":n}` | `n` messages dropped for a slow client |
//! | `{"channel":"c","presence":{…}}` | joins and leaves, when asked for |
//! | `{"channel":"c","error":"…"}` / `{"error":"…"}` | a refused subscription, a line not understood |
//!
//! The client sends `{"event":"name","data":…}`,
//! `{"subscribe":"c","since":"<id>"|"0","presence":true}` (`since` and
//! `presence` optional) and `{"unsubscribe":"c"}`.
//!
//! See [`docs/websocket.md`](crate::guides::websocket).

mod connection;
mod error;
mod handlers;
mod session;
mod sink;
mod wire;

pub use connection::Connection;
pub use error::EventError;
pub use handlers::{Data, HandlerId};
pub use wire::MAX_EVENT_NAME;

use http::{header, HeaderValue};
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
};

use crate::{
    broker::{Broker, SlowConsumer},
    context::Context,
    error::BoxError,
    hub::Hub,
    pipe,
    response::Response,
    state::{Access, Store},
    ws::{handshake, shared::SocketShared, socket::Receiver, Launch, Prepared, WsOptions},
};
use connection::{ConnShared, PipeOutbox, QueueLimits, BROADCAST_CHANNEL};
use handlers::{HandlerFuture, Handlers};

/// Default events queued per connection before the slow-consumer policy
/// applies.
///
/// # Example
///
/// ```
/// use rill::events::{EventStream, DEFAULT_QUEUE};
///
/// assert_eq!(DEFAULT_QUEUE, 1024);
/// // A live-cursor app sends many small events: let clients fall further behind.
/// let stream = EventStream::builder().queue(8 * DEFAULT_QUEUE).build();
/// # drop(stream);
/// ```
pub const DEFAULT_QUEUE: usize = 1024;
/// Default bytes queued per connection before the slow-consumer policy
/// applies.
///
/// # Example
///
/// ```
/// use rill::events::{EventStream, DEFAULT_BUFFER};
///
/// assert_eq!(DEFAULT_BUFFER, 1024 * 1024);
/// let stream = EventStream::builder().buffer(DEFAULT_BUFFER / 8).build(); // small events only
/// # drop(stream);
/// ```
pub const DEFAULT_BUFFER: usize = 1024 * 1024;

/// The JavaScript client, an ES module (`connect`, `on`, `once`, `off`,
/// `send`, `subscribe`, `close`, `state`): serve it with
/// [`client_module`].
///
/// # Example
///
/// ```
/// use rill::events::CLIENT_JS;
///
/// // Bundle it yourself instead of serving `/rill.js`:
/// std::fs::write(std::env::temp_dir().join("rill.js"), CLIENT_JS)?;
/// assert!(CLIENT_JS.contains("export"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const CLIENT_JS: &str = include_str!("client/rill.js");
/// TypeScript declarations of [`CLIENT_JS`]: serve them with
/// [`client_types`].
///
/// # Example
///
/// ```
/// use rill::events::CLIENT_DTS;
///
/// // For a TypeScript front-end: `import { connect } from "./rill.js"` gets types.
/// std::fs::write(std::env::temp_dir().join("rill.d.ts"), CLIENT_DTS)?;
/// assert!(CLIENT_DTS.contains("connect"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const CLIENT_DTS: &str = include_str!("client/rill.d.ts");

type Hook = Box<dyn Fn(Connection) -> HandlerFuture + Send + Sync>;
type AuthorizeWatch = Box<dyn Fn(&Context, &Access<'_>) -> bool + Send + Sync>;

/// A named-event stream: the server's side of the protocol the JavaScript
/// client speaks. Cheap to clone; clones share handlers and connections.
///
/// ```
/// use rill::{events::EventStream, Context, Router};
///
/// let stream = EventStream::new();
/// // what clients send, by name; handlers run in order per connection
/// stream.on("echo", |conn, data| async move {
///     conn.send("echo", &data)?;
///     Ok(())
/// });
///
/// let s = stream.clone();
/// let router = Router::new()
///     .get("/ws", move |ctx: Context| {
///         let stream = s.clone();
///         async move { stream.accept(ctx) }
///     })
///     .get("/rill.js", rill::events::client_module);
///
/// // to every connected client (none connected: nothing happens)
/// stream.send("tick", &serde_json::json!({"price": 42.5})).unwrap();
/// ```
#[derive(Clone)]
pub struct EventStream {
    inner: Arc<Inner>,
}

struct Inner {
    handlers: Handlers,
    broker: Broker,
    hub: Option<Hub>,
    state: Option<Store>,
    authorize_watch: Option<AuthorizeWatch>,
    options: WsOptions,
    limits: QueueLimits,
    on_connect: Vec<Hook>,
    on_disconnect: Vec<Hook>,
    next_id: AtomicU64,
    connections: AtomicUsize,
}

/// Configures an [`EventStream`].
///
/// ```
/// use rill::{events::EventStream, hub::{Hub, SlowConsumer}, ws::WsOptions};
///
/// let hub = Hub::new();
/// let stream = EventStream::builder()
///     .hub(hub.clone())                       // clients may subscribe to its channels
///     .ws_options(WsOptions::new().allowed_origins(["https://example.com"]))
///     .queue(1024)                            // events waiting per connection
///     .slow_consumer(SlowConsumer::Disconnect)
///     .on_connect(|conn| async move { conn.send("welcome", &conn.id())?; Ok(()) })
///     .build();
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct EventStreamBuilder {
    broker: Option<Broker>,
    hub: Option<Hub>,
    state: Option<Store>,
    authorize_watch: Option<AuthorizeWatch>,
    options: WsOptions,
    limits: QueueLimits,
    on_connect: Vec<Hook>,
    on_disconnect: Vec<Hook>,
}

impl Default for EventStreamBuilder {
    fn default() -> Self {
        EventStreamBuilder {
            broker: None,
            hub: None,
            state: None,
            authorize_watch: None,
            options: WsOptions::default(),
            limits: QueueLimits {
                lines: DEFAULT_QUEUE,
                bytes: DEFAULT_BUFFER,
                slow: SlowConsumer::Disconnect,
            },
            on_connect: Vec::new(),
            on_disconnect: Vec::new(),
        }
    }
}

impl EventStreamBuilder {
    /// Lets clients subscribe to `hub`'s channels over the stream
    /// (`subscribe(channel, cb)` in the client), under the hub's rules: its
    /// [`authorize_subscribe`](crate::hub::HubBuilder::authorize_subscribe)
    /// and [`identify`](crate::hub::HubBuilder::identify) hooks, its queue,
    /// slow-consumer policy and channel cap. A message published once
    /// reaches SSE and WebSocket subscribers with the same id.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::hub::Hub;
    ///
    /// // `subscribe("prices", cb)` in the browser, next to named events.
    /// let hub = Hub::new();
    /// let stream = EventStream::builder().hub(hub.clone()).build();
    /// assert!(stream.hub().is_some());
    /// ```
    pub fn hub(mut self, hub: Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Lets clients watch `store`'s groups and items over the stream
    /// (`watch(stream, group, cb)` in the client): a snapshot, then every
    /// change once, in order, resumed after a reconnect from the last
    /// revision. Every watch is allowed unless
    /// [`authorize_watch`](Self::authorize_watch) says otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::state::Store;
    ///
    /// // `watch("todos", "ann", cb)` in the browser: a snapshot, then each change.
    /// let store = Store::new();
    /// let stream = EventStream::builder().state(store.clone()).build();
    /// # drop(stream);
    /// ```
    pub fn state(mut self, store: Store) -> Self {
        self.state = Some(store);
        self
    }

    /// Asks `hook` before every watch (`write` is `false`): a refusal is
    /// answered `{"state":…,"error":"forbidden"}`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::state::Store;
    ///
    /// let stream = EventStream::builder()
    ///     .state(Store::new())
    ///     // users watch their own group only; `?user=` was checked by a proxy
    ///     .authorize_watch(|ctx, access| access.group.is_some() && ctx.query("user") == access.group)
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn authorize_watch(
        mut self,
        hook: impl Fn(&Context, &Access<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorize_watch = Some(Box::new(hook));
        self
    }

    /// Broadcasts through `broker` (for instance one shared with other
    /// processes) instead of a broker of the stream's own.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::broker::Broker;
    /// use rill::events::EventStream;
    ///
    /// let broker = Broker::new(); // e.g. one with a backend spanning processes
    /// let stream = EventStream::builder().broker(broker.clone()).build();
    /// stream.send("deploy", &"v2")?;
    /// # tokio::task::yield_now().await;
    /// assert_eq!(broker.stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    /// How sockets are accepted and kept: origins, subprotocols, the
    /// largest message a client may send, keep-alive.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::ws::WsOptions;
    /// use std::time::Duration;
    ///
    /// let stream = EventStream::builder()
    ///     .ws_options(
    ///         WsOptions::new()
    ///             .allowed_origins(["https://app.example.com"])
    ///             .max_message(16 * 1024)
    ///             .ping_interval(Duration::from_secs(20)),
    ///     )
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn ws_options(mut self, options: WsOptions) -> Self {
        self.options = options;
        self
    }

    /// How many events may wait for one connection (default 1024) before
    /// the slow-consumer policy applies.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// // At most 256 events wait for a client before the slow-consumer policy.
    /// let stream = EventStream::builder().queue(256).build();
    /// # drop(stream);
    /// ```
    pub fn queue(mut self, events: usize) -> Self {
        self.limits.lines = events.max(1);
        self
    }

    /// How many bytes may wait for one connection (default 1 MiB) before
    /// the slow-consumer policy applies.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// // Large documents: up to 8 MiB may wait for one client.
    /// let stream = EventStream::builder().buffer(8 * 1024 * 1024).build();
    /// # drop(stream);
    /// ```
    pub fn buffer(mut self, bytes: usize) -> Self {
        self.limits.bytes = bytes.max(1);
        self
    }

    /// What happens to a connection whose queue is full: closed with `1013
    /// Try Again Later` (the default; the client reconnects and resumes its
    /// channels), or its events dropped with a `{"gap":n}` notice.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::hub::SlowConsumer;
    ///
    /// // A ticker: a slow client skips prices (and is told `{"gap":n}`) instead of reconnecting.
    /// let stream = EventStream::builder().slow_consumer(SlowConsumer::DropWithGap).build();
    /// # drop(stream);
    /// ```
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.limits.slow = policy;
        self
    }

    /// Runs `hook` for every new connection, before its first event is
    /// read.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::builder()
    ///     .on_connect(|conn| async move {
    ///         conn.send("welcome", &serde_json::json!({"id": conn.id()}))?;
    ///         Ok(())
    ///     })
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.on_connect
            .push(Box::new(move |conn| Box::pin(hook(conn))));
        self
    }

    /// Runs `hook` when a connection is over (after its last handler).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::builder()
    ///     .on_disconnect(|conn| async move {
    ///         // socket.io's "disconnect": tell the others
    ///         conn.broadcast("user_left", &conn.id())?;
    ///         Ok(())
    ///     })
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn on_disconnect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.on_disconnect
            .push(Box::new(move |conn| Box::pin(hook(conn))));
        self
    }

    /// Builds the stream.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::builder().queue(512).build();
    /// assert_eq!(stream.connection_count(), 0);
    /// ```
    pub fn build(self) -> EventStream {
        let broker = self
            .broker
            .unwrap_or_else(|| Broker::builder().history(0).build());
        EventStream {
            inner: Arc::new(Inner {
                handlers: Handlers::default(),
                broker,
                hub: self.hub,
                state: self.state,
                authorize_watch: self.authorize_watch,
                options: self.options,
                limits: self.limits,
                on_connect: self.on_connect,
                on_disconnect: self.on_disconnect,
                next_id: AtomicU64::new(0),
                connections: AtomicUsize::new(0),
            }),
        }
    }
}

impl std::fmt::Debug for EventStreamBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStreamBuilder")
            .field("hub", &self.hub.is_some())
            .field("options", &self.options)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for EventStream {
    fn default() -> Self {
        EventStream::new()
    }
}

impl EventStream {
    /// A stream with the defaults (see [`EventStreamBuilder`]).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// assert!(stream.hub().is_none());
    /// assert!(!stream.has_handler("chat"));
    /// ```
    pub fn new() -> Self {
        EventStreamBuilder::default().build()
    }

    /// Configures a stream.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::builder().queue(4096).build();
    /// # drop(stream);
    /// ```
    pub fn builder() -> EventStreamBuilder {
        EventStreamBuilder::default()
    }

    /// Sends event `name` with `data` (any `Serialize`; `()` for none) to
    /// every connected client, after whatever was sent to each before.
    /// Never waits; with no client connected it does nothing. A client
    /// whose queue is full meets the slow-consumer policy; the others are
    /// not held up.
    ///
    /// # Errors
    ///
    /// [`EventError::Encode`] when `data` is not JSON-serializable;
    /// [`EventError::Closed`] when the broadcast could not be published
    /// (a broker of another process that is unreachable).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::{EventError, EventStream};
    /// use std::collections::HashMap;
    ///
    /// let stream = EventStream::new();
    /// // io.emit("score", {home: 2, away: 1})
    /// stream.send("score", &serde_json::json!({"home": 2, "away": 1}))?;
    /// // A map with non-string keys is no JSON object:
    /// let bad = HashMap::from([((1, 2), "x")]);
    /// assert!(matches!(stream.send("score", &bad), Err(EventError::Encode { .. })));
    /// # Ok::<(), EventError>(())
    /// ```
    pub fn send<T: serde::Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<(), EventError> {
        connection::broadcast(&self.inner.broker, name, data)
    }

    /// Runs `handler` for every event `name` a client sends, after the
    /// handlers added before it. A connection's events are handled one at a
    /// time, in the order they arrived; different connections in parallel.
    /// An error a handler returns is logged, a panic caught: the connection
    /// goes on.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Chat { room: String, text: String }
    ///
    /// let stream = EventStream::new();
    /// // socket.on("chat", …): relay to everyone
    /// stream.on("chat", |conn, data| async move {
    ///     let chat: Chat = data.parse()?; // a malformed event is logged; the connection goes on
    ///     conn.broadcast("chat", &serde_json::json!({"room": chat.room, "text": chat.text, "from": conn.id()}))?;
    ///     Ok(())
    /// });
    /// assert!(stream.has_handler("chat"));
    /// ```
    pub fn on<F, Fut>(&self, name: &str, handler: F) -> HandlerId
    where
        F: Fn(Connection, Data) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.inner.handlers.add(name, false, handler)
    }

    /// Runs `handler` for the next event `name` (from any client), once.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// // The first client to answer wins the quiz round.
    /// stream.once("answer", |conn, _data| async move {
    ///     conn.broadcast("winner", &conn.id())?;
    ///     Ok(())
    /// });
    /// assert!(stream.has_handler("answer"));
    /// ```
    pub fn once<F, Fut>(&self, name: &str, handler: F) -> HandlerId
    where
        F: Fn(Connection, Data) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.inner.handlers.add(name, true, handler)
    }

    /// Removes every handler of `name`; how many there were.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// stream.on("vote", |_conn, _data| async { Ok(()) });
    /// stream.on("vote", |_conn, _data| async { Ok(()) });
    /// assert_eq!(stream.off("vote"), 2); // the poll is closed
    /// assert!(!stream.has_handler("vote"));
    /// ```
    pub fn off(&self, name: &str) -> usize {
        self.inner.handlers.remove_all(name)
    }

    /// Removes one handler; whether it was there.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// let audit = stream.on("vote", |_conn, _data| async { Ok(()) });
    /// stream.on("vote", |_conn, _data| async { Ok(()) });
    /// assert!(stream.off_handler(audit));
    /// assert!(!stream.off_handler(audit)); // gone already
    /// assert!(stream.has_handler("vote")); // the other one stays
    /// ```
    pub fn off_handler(&self, id: HandlerId) -> bool {
        self.inner.handlers.remove(id)
    }

    /// Whether any handler listens for `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// assert!(!stream.has_handler("typing"));
    /// stream.on("typing", |conn, _data| async move { conn.broadcast("typing", &conn.id())?; Ok(()) });
    /// assert!(stream.has_handler("typing"));
    /// ```
    pub fn has_handler(&self, name: &str) -> bool {
        self.inner.handlers.has(name)
    }

    /// Clients connected now.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// assert_eq!(stream.connection_count(), 0);
    /// // e.g. "3 people are viewing this page"
    /// stream.send("viewers", &stream.connection_count())?;
    /// # Ok::<(), rill::events::EventError>(())
    /// ```
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// The hub whose channels clients may subscribe to, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::hub::Hub;
    ///
    /// let stream = EventStream::builder().hub(Hub::new()).build();
    /// let hub = stream.hub().expect("built with a hub");
    /// # drop(hub);
    /// assert!(EventStream::new().hub().is_none());
    /// ```
    pub fn hub(&self) -> Option<&Hub> {
        self.inner.hub.as_ref()
    }

    /// Answers `ctx` with a connection to this stream: `101 Switching
    /// Protocols` (`200` over HTTP/2), or the refusal of a request that is
    /// no acceptable WebSocket handshake (`426`, `400`, `403`). The
    /// connection runs in a task of its own; a server shutdown closes it
    /// with `1001`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::events::EventStream;
    /// use rill::http::{Request, StatusCode};
    /// use rill::{Context, Router};
    ///
    /// let stream = EventStream::new();
    /// let app = Router::new()
    ///     .get("/ws", move |ctx: Context| { let stream = stream.clone(); async move { stream.accept(ctx) } })
    ///     .into_service();
    /// // A plain GET is no WebSocket handshake:
    /// let request = Request::get("/ws").header("host", "localhost").body(String::new())?;
    /// assert_eq!(app.handle(request).await.status(), StatusCode::UPGRADE_REQUIRED);
    /// # Ok(()) }
    /// ```
    pub fn accept(&self, mut ctx: Context) -> Response {
        let mut options = self.inner.options.clone();
        let prepared = match Prepared::from_context(&mut ctx, &mut options) {
            Ok(prepared) => prepared,
            Err(error) => return handshake::refusal(&error),
        };
        let socket = Arc::new(SocketShared::new(options.queue));
        let (feed, reader) = pipe::feed(self.inner.limits.bytes);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let shared = Arc::new(ConnShared::new(
            id,
            feed,
            self.inner.broker.clone(),
            socket.clone(),
            self.inner.limits,
        ));
        let incoming = Receiver::new(socket.clone());
        let task = session::run(self.clone(), ctx, Connection::new(shared.clone()), incoming);
        prepared.launch(
            &options,
            Launch {
                shared: socket,
                outbox: PipeOutbox::new(reader, shared),
            },
            task,
        )
    }

    /// Runs the handlers of event `name` for `conn`, one after the other.
    async fn dispatch(&self, conn: &Connection, name: &str, data: Data) {
        let entries = self.inner.handlers.for_event(name);
        if entries.is_empty() {
            tracing::debug!(event = name, "no handler for a client's event");
        }
        for entry in entries {
            if let Some(run) = entry.start(conn.clone(), data.clone()) {
                run_hook(name, run).await;
            }
        }
    }
}

impl Inner {
    /// Counts a connection until the guard is dropped.
    fn count_connection(&self) -> ConnectionCount<'_> {
        self.connections.fetch_add(1, Ordering::AcqRel);
        ConnectionCount(&self.connections)
    }
}

struct ConnectionCount<'a>(&'a AtomicUsize);

impl Drop for ConnectionCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs a handler or hook, logging how it failed: an error or a panic
/// ends neither the connection nor the stream.
async fn run_hook(what: &str, run: HandlerFuture) {
    match crate::panic::catch_unwind(run).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => match error.downcast::<EventError>() {
            Ok(event) if event.is_end_of_stream() => {}
            Ok(event) => tracing::debug!(handler = what, error = %event, "event handler failed"),
            Err(other) => tracing::warn!(handler = what, error = %other, "event handler failed"),
        },
        Err(payload) => tracing::error!(
            handler = what,
            panic = %crate::panic::message(payload.as_ref()),
            "event handler panicked"
        ),
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("connections", &self.connection_count())
            .field("hub", &self.inner.hub.is_some())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Answers with a connection to `stream`: see [`EventStream::accept`].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use rill::{Context, Router};
    ///
    /// let stream = EventStream::new();
    /// let router = Router::new().get("/ws", move |ctx: Context| {
    ///     let stream = stream.clone();
    ///     async move { ctx.event_stream(&stream) }
    /// });
    /// # drop(router);
    /// ```
    pub fn event_stream(self, stream: &EventStream) -> Response {
        stream.accept(self)
    }
}

/// `GET /rill.js`: the JavaScript client ([`CLIENT_JS`]), an ES module.
///
/// ```
/// let router = rill::Router::new()
///     .get("/rill.js", rill::events::client_module)
///     .get("/rill.d.ts", rill::events::client_types);
/// ```
pub async fn client_module(_ctx: Context) -> Response {
    asset(CLIENT_JS, "text/javascript; charset=utf-8")
}

/// `GET /rill.d.ts`: the client's TypeScript declarations ([`CLIENT_DTS`]).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::http::{header, Request};
///
/// let app = rill::Router::new().get("/rill.d.ts", rill::events::client_types).into_service();
/// let request = Request::get("/rill.d.ts").header("host", "localhost").body(String::new())?;
/// let response = app.handle(request).await;
/// assert_eq!(response.headers()[header::CONTENT_TYPE], "application/typescript; charset=utf-8");
/// # Ok(()) }
/// ```
pub async fn client_types(_ctx: Context) -> Response {
    asset(CLIENT_DTS, "application/typescript; charset=utf-8")
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    Response::new(http::StatusCode::OK, text)
        .with_header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
        .with_header(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        )
}
