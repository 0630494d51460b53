//! [`IiiEndpoint`]: a store over the WebSocket protocol of the iii engine's
//! stream module, so that its unmodified browser client
//! (`@motiadev/stream-client-browser`) follows rill's groups and items.
//!
//! Client → server: `{"type":"join"|"leave","data":{"subscriptionId",
//! "streamName","groupId","id"?}}`. Server → client, per subscription:
//! `{"type":"stream","timestamp","streamName","groupId","id"?,"event":
//! {"type":"sync"|"create"|"update"|"delete","data"}}`; custom events as
//! `"event":{"type":"event","event":{"type","data"}}`; a refused join as
//! `"event":{"type":"unauthorized"}`.
//!
//! What the client needs and rill guarantees: the `sync` comes before any
//! change of its subscription; timestamps strictly increase per group (the
//! client drops a message whose timestamp is not newer); a group's sync is
//! an array of values, so an object value carries its item's `id` (added
//! when missing). After lost continuity the client gets a fresh `sync` —
//! it replaces its state with it.

use serde_json::{json, Map, Value};
use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};
use tokio::{sync::mpsc, task::AbortHandle};

use super::{
    store::Store,
    watch::{WatchEvent, Watcher},
};
use crate::{
    context::Context,
    response::Response,
    ws::{WsMessage, WsOptions, WsSender},
};

/// What `authenticate` found out about a connection (any JSON: a user id,
/// permissions): handed to the join and leave hooks.
///
/// # Example
///
/// ```
/// use rill::state::{AuthContext, IiiEndpoint, Store};
/// use serde_json::json;
///
/// let iii = IiiEndpoint::new(Store::new())
///     .authenticate(|ctx: &rill::Context| {
///         let auth: Option<AuthContext> = ctx.header("x-user").map(|u| json!({"user": u, "admin": false}));
///         async move { auth }
///     })
///     .on_join(|auth: AuthContext, _join| async move { auth["admin"] == true });
/// # drop(iii);
/// ```
pub type AuthContext = Value;

/// A join or leave, as the hooks see it.
///
/// # Example
///
/// ```
/// use rill::state::{IiiEndpoint, JoinRequest, Store};
///
/// // Items of `chat` are readable by their group's members only.
/// fn member(user: &str, join: &JoinRequest) -> bool {
///     join.stream == "chat" && join.group.split('+').any(|member| member == user)
/// }
/// let join = JoinRequest {
///     subscription_id: "s1".into(), stream: "chat".into(), group: "ann+bob".into(), item: None,
/// };
/// assert!(member("bob", &join) && !member("eve", &join));
/// let iii = IiiEndpoint::new(Store::new())
///     .on_join(|auth, join| async move { auth["user"].as_str().is_some_and(|u| member(u, &join)) });
/// # drop(iii);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The client's id for the subscription.
    pub subscription_id: String,
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// The item, for an item subscription.
    pub item: Option<String>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Authenticate = Arc<dyn Fn(&Context) -> BoxFuture<Option<AuthContext>> + Send + Sync>;
type JoinHook = Arc<dyn Fn(AuthContext, JoinRequest) -> BoxFuture<bool> + Send + Sync>;
type LeaveHook = Arc<dyn Fn(AuthContext, JoinRequest) -> BoxFuture<()> + Send + Sync>;

/// The iii-compatible WebSocket endpoint of a store.
///
/// ```
/// use rill::state::{IiiEndpoint, Store};
/// use rill::{Context, Router};
///
/// let store = Store::new();
/// let iii = IiiEndpoint::new(store)
///     .authenticate(|ctx: &Context| {
///         let user = ctx.query("user").map(str::to_owned);
///         async move { user.map(|u| serde_json::json!({"user": u})) } // None: 401, fails closed
///     })
///     .on_join(|auth, join| async move { auth["user"] == join.group.as_str() });
/// let router = Router::new().get("/iii", move |ctx: Context| {
///     let iii = iii.clone();
///     async move { iii.accept(ctx).await }
/// });
/// ```
#[derive(Clone)]
pub struct IiiEndpoint {
    store: Store,
    authenticate: Option<Authenticate>,
    on_join: Vec<(Option<String>, JoinHook)>,
    on_leave: Vec<(Option<String>, LeaveHook)>,
    options: WsOptions,
}

impl IiiEndpoint {
    /// The endpoint of `store`: every connection accepted, every join
    /// allowed, until hooks say otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{IiiEndpoint, Store};
    /// use rill::{Context, Router};
    ///
    /// let iii = IiiEndpoint::new(Store::new()); // open to all: add hooks before serving it
    /// let router = Router::new().get("/streams", move |ctx: Context| {
    ///     let iii = iii.clone();
    ///     async move { iii.accept(ctx).await }
    /// });
    /// # drop(router);
    /// ```
    pub fn new(store: Store) -> Self {
        IiiEndpoint {
            store,
            authenticate: None,
            on_join: Vec::new(),
            on_leave: Vec::new(),
            options: WsOptions::new().max_message(64 * 1024),
        }
    }

    /// Runs `hook` before the upgrade: its context goes to the join and
    /// leave hooks; `None` — or a panic — refuses the connection with
    /// `401` (fails closed).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::http::{Request, StatusCode};
    /// use rill::state::{IiiEndpoint, Store};
    /// use rill::{Context, Router};
    ///
    /// let iii = IiiEndpoint::new(Store::new()).authenticate(|ctx: &Context| {
    ///     let user = ctx.query("token").filter(|t| *t == "s3cret").map(|_| serde_json::json!("ann"));
    ///     async move { user }
    /// });
    /// let app = Router::new()
    ///     .get("/streams", move |ctx: Context| { let iii = iii.clone(); async move { iii.accept(ctx).await } })
    ///     .into_service();
    /// let request = Request::get("/streams?token=guess").header("host", "localhost").body(String::new())?;
    /// assert_eq!(app.handle(request).await.status(), StatusCode::UNAUTHORIZED);
    /// # Ok(()) }
    /// ```
    pub fn authenticate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<AuthContext>> + Send + 'static,
    {
        self.authenticate = Some(Arc::new(move |ctx| Box::pin(hook(ctx))));
        self
    }

    /// Asks `hook` before every join: `false` answers the subscription with
    /// `{"type":"unauthorized"}`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{IiiEndpoint, Store};
    ///
    /// // `authenticate` put the user's name in the context; users join their own group.
    /// let iii = IiiEndpoint::new(Store::new())
    ///     .authenticate(|ctx: &rill::Context| {
    ///         let user = ctx.header("x-user").map(|u| serde_json::json!({"user": u}));
    ///         async move { user }
    ///     })
    ///     .on_join(|auth, join| async move { auth["user"] == join.group.as_str() });
    /// # drop(iii);
    /// ```
    pub fn on_join<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(AuthContext, JoinRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.on_join
            .push((None, Arc::new(move |auth, join| Box::pin(hook(auth, join)))));
        self
    }

    /// [`on_join`](Self::on_join) for the joins of stream `stream` only.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{IiiEndpoint, Store};
    ///
    /// // Anyone may follow the public scoreboard; only admins the audit log.
    /// let iii = IiiEndpoint::new(Store::new())
    ///     .on_join_stream("audit", |auth, _join| async move { auth["admin"] == true });
    /// # drop(iii);
    /// ```
    pub fn on_join_stream<F, Fut>(mut self, stream: &str, hook: F) -> Self
    where
        F: Fn(AuthContext, JoinRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.on_join.push((
            Some(stream.to_owned()),
            Arc::new(move |auth, join| Box::pin(hook(auth, join))),
        ));
        self
    }

    /// Runs `hook` when a subscription ends (a leave, or the socket's end).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{IiiEndpoint, Store};
    ///
    /// let store = Store::new();
    /// let presence = store.clone();
    /// // Mark a user away when their subscription to a room ends.
    /// let iii = IiiEndpoint::new(store).on_leave(move |auth, join| {
    ///     let presence = presence.clone();
    ///     async move {
    ///         if let Some(user) = auth["user"].as_str() {
    ///             let _ = presence.set("presence", &join.group, user, serde_json::json!("away")).await;
    ///         }
    ///     }
    /// });
    /// # drop(iii);
    /// ```
    pub fn on_leave<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(AuthContext, JoinRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_leave
            .push((None, Arc::new(move |auth, join| Box::pin(hook(auth, join)))));
        self
    }

    /// How sockets are accepted (origins, the largest message).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{IiiEndpoint, Store};
    /// use rill::ws::WsOptions;
    ///
    /// let iii = IiiEndpoint::new(Store::new()).ws_options(
    ///     WsOptions::new()
    ///         .allowed_origins(["https://app.example.com"])
    ///         .max_message(16 * 1024),
    /// );
    /// # drop(iii);
    /// ```
    pub fn ws_options(mut self, options: WsOptions) -> Self {
        self.options = options;
        self
    }

    /// Answers `ctx` with a connection (`401` when `authenticate` refuses).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rill::state::{IiiEndpoint, Store};
    /// use rill::{Context, Router, Server};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), rill::ServeError> {
    /// let iii = IiiEndpoint::new(Store::new());
    /// let router = Router::new().get("/streams", move |ctx: Context| {
    ///     let iii = iii.clone();
    ///     async move { iii.accept(ctx).await } // the Motia client connects to ws://…/streams
    /// });
    /// Server::bind("127.0.0.1:3000").await?.serve(router).await
    /// # }
    /// ```
    pub async fn accept(&self, ctx: Context) -> Response {
        let auth = match &self.authenticate {
            Some(hook) => match crate::panic::catch_unwind(hook(&ctx)).await {
                Ok(Some(auth)) => auth,
                Ok(None) => return unauthorized(),
                Err(payload) => {
                    tracing::error!(
                        panic = %crate::panic::message(payload.as_ref()),
                        "iii authenticate hook panicked; refused"
                    );
                    return unauthorized();
                }
            },
            None => Value::Null,
        };
        let endpoint = self.clone();
        ctx.websocket_with(self.options.clone(), move |_ctx, mut socket| async move {
            let sender = socket.sender();
            // Subscription id → its join; (stream, group) → the group's one
            // pipeline, which serves every subscription of that group.
            let mut subscriptions: HashMap<String, JoinRequest> = HashMap::new();
            let mut pipelines: HashMap<(String, String), Pipeline> = HashMap::new();
            while let Some(message) = socket.recv().await {
                let message = message?;
                let Some(text) = message.as_text() else {
                    continue;
                };
                let Some((kind, join)) = parse(text) else {
                    tracing::debug!("iii message not understood; ignored");
                    continue;
                };
                // A join for an id in use replaces it; a leave ends it.
                if let Some(old) = subscriptions.remove(&join.subscription_id) {
                    let key = (old.stream.clone(), old.group.clone());
                    if let Some(pipeline) = pipelines.get(&key) {
                        if !pipeline.send(Command::Leave(old.subscription_id.clone())) {
                            pipelines.remove(&key);
                        }
                    }
                    endpoint.left(&auth, old).await;
                }
                if kind != "join" {
                    continue;
                }
                if !endpoint.may_join(&auth, &join).await {
                    let refusal = frame(&join, now_ms(), json!({"type": "unauthorized"}));
                    sender.send(WsMessage::text(refusal)).await?;
                    continue;
                }
                let key = (join.stream.clone(), join.group.clone());
                let alive = pipelines
                    .get(&key)
                    .is_some_and(|p| p.send(Command::Join(join.clone())));
                if !alive {
                    let watcher = match endpoint.store.watch(&join.stream, &join.group, None, None)
                    {
                        Ok(watcher) => watcher,
                        Err(error) => {
                            tracing::debug!(%error, "iii join refused");
                            continue;
                        }
                    };
                    let pipeline = Pipeline::start(watcher, sender.clone());
                    pipeline.send(Command::Join(join.clone()));
                    pipelines.insert(key, pipeline);
                }
                subscriptions.insert(join.subscription_id.clone(), join);
            }
            drop(pipelines);
            for (_, join) in subscriptions.drain() {
                endpoint.left(&auth, join).await;
            }
            Ok(())
        })
    }

    async fn may_join(&self, auth: &AuthContext, join: &JoinRequest) -> bool {
        for (stream, hook) in &self.on_join {
            if stream.as_ref().is_some_and(|s| *s != join.stream) {
                continue;
            }
            match crate::panic::catch_unwind(hook(auth.clone(), join.clone())).await {
                Ok(true) => {}
                Ok(false) | Err(_) => return false,
            }
        }
        true
    }

    async fn left(&self, auth: &AuthContext, join: JoinRequest) {
        for (stream, hook) in &self.on_leave {
            if stream.as_ref().is_some_and(|s| *s != join.stream) {
                continue;
            }
            let _ = crate::panic::catch_unwind(hook(auth.clone(), join.clone())).await;
        }
    }
}

impl std::fmt::Debug for IiiEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IiiEndpoint")
            .field("store", &self.store)
            .field("authenticate", &self.authenticate.is_some())
            .finish_non_exhaustive()
    }
}

/// A change to a group pipeline's subscriptions.
enum Command {
    Join(JoinRequest),
    Leave(String),
}

/// The one task that serves every subscription of one group on one
/// connection, from one watcher of the whole group: its frames leave in
/// the group's order, whichever subscription they are for. (The Motia
/// client lets any frame naming an item move its group's last timestamp,
/// so an item's change sent ahead of its group's sync would make the client
/// drop that sync.) A subscription that joins later gets its sync from the
/// pipeline's own copy of the group, at the point the pipeline has reached.
struct Pipeline {
    commands: mpsc::UnboundedSender<Command>,
    task: AbortHandle,
}

impl Pipeline {
    fn start(watcher: Watcher, sender: WsSender) -> Pipeline {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_pipeline(watcher, receiver, sender)).abort_handle();
        Pipeline { commands, task }
    }

    /// Whether the pipeline took the command (it ends once nobody is left).
    fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_pipeline(
    mut watcher: Watcher,
    mut commands: mpsc::UnboundedReceiver<Command>,
    sender: WsSender,
) {
    // A fresh watcher's first event is its snapshot.
    let Some(WatchEvent::Sync(snapshot)) = watcher.next().await else {
        return;
    };
    let mut items = snapshot.items;
    let mut last_ts = snapshot.timestamp;
    let mut joined: Vec<JoinRequest> = Vec::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Join(join)) => {
                    let text = sync_frame(&join, &items, last_ts);
                    joined.retain(|j| j.subscription_id != join.subscription_id);
                    joined.push(join);
                    if sender.send(WsMessage::text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Command::Leave(id)) => {
                    joined.retain(|j| j.subscription_id != id);
                    if joined.is_empty() {
                        return;
                    }
                }
                None => return,
            },
            event = watcher.next() => {
                let Some(event) = event else { return };
                let frames: Vec<String> = match &event {
                    // The fresh snapshot after it says it all.
                    WatchEvent::Reset => Vec::new(),
                    WatchEvent::Sync(snapshot) => {
                        items = snapshot.items.clone();
                        last_ts = snapshot.timestamp;
                        joined.iter().map(|join| sync_frame(join, &items, last_ts)).collect()
                    }
                    WatchEvent::Change(delta) => {
                        let change = delta.value();
                        last_ts = change["ts"].as_u64().unwrap_or(last_ts);
                        let item = change["id"].as_str();
                        match (change["type"].as_str(), item) {
                            (Some("create" | "update"), Some(item)) => {
                                items.insert(item.to_owned(), change["data"].clone());
                            }
                            (Some("delete"), Some(item)) => {
                                items.remove(item);
                            }
                            _ => {}
                        }
                        // One frame, whoever wants it: the client hands a
                        // frame naming an item to that item's subscriptions
                        // and to its group's.
                        let wanted = joined
                            .iter()
                            .any(|join| join.item.is_none() || join.item.as_deref() == item);
                        match (wanted, joined.first()) {
                            (true, Some(join)) => change_frame(join, &change).into_iter().collect(),
                            _ => Vec::new(),
                        }
                    }
                };
                for text in frames {
                    if sender.send(WsMessage::text(text)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A subscription's `sync`: the group's values (each object with its
/// `id`), or the one item's value (`null` when absent).
fn sync_frame(
    join: &JoinRequest,
    items: &std::collections::BTreeMap<String, Value>,
    ts: u64,
) -> String {
    let data = match &join.item {
        Some(item) => items
            .get(item)
            .map(|v| with_id(v.clone(), item))
            .unwrap_or(Value::Null),
        None => Value::Array(items.iter().map(|(id, v)| with_id(v.clone(), id)).collect()),
    };
    frame(join, ts, json!({"type": "sync", "data": data}))
}

/// A change (`{"id","type","data","ts","event"?}`) of `join`'s group, as
/// one frame: with the item's `id` when it concerns one.
fn change_frame(join: &JoinRequest, change: &Value) -> Option<String> {
    let ts = change["ts"].as_u64().unwrap_or_else(now_ms);
    let item = change["id"].as_str();
    let data = change.get("data").cloned().unwrap_or(Value::Null);
    let event = match change["type"].as_str()? {
        "event" => json!({"type": "event", "event": {"type": change["event"], "data": data}}),
        kind => {
            let data = match item {
                Some(item) => with_id(data, item),
                None => data,
            };
            json!({"type": kind, "data": data})
        }
    };
    let group = JoinRequest {
        item: item.map(str::to_owned),
        ..join.clone()
    };
    Some(frame(&group, ts, event))
}

/// `{"type":"stream","timestamp",…,"event":…}` for `join`.
fn frame(join: &JoinRequest, timestamp: u64, event: Value) -> String {
    let mut out = Map::new();
    out.insert("type".into(), json!("stream"));
    out.insert("timestamp".into(), json!(timestamp));
    out.insert("streamName".into(), json!(join.stream));
    out.insert("groupId".into(), json!(join.group));
    if let Some(item) = &join.item {
        out.insert("id".into(), json!(item));
    }
    out.insert("event".into(), event);
    Value::Object(out).to_string()
}

/// An object value with its item's `id` (kept when it has one).
fn with_id(value: Value, id: &str) -> Value {
    match value {
        Value::Object(mut map) => {
            map.entry("id").or_insert_with(|| json!(id));
            Value::Object(map)
        }
        other => other,
    }
}

/// A client's `join` or `leave`.
fn parse(text: &str) -> Option<(String, JoinRequest)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let kind = value["type"].as_str()?;
    if kind != "join" && kind != "leave" {
        return None;
    }
    let data = &value["data"];
    let text = |name: &str| data[name].as_str().map(str::to_owned);
    Some((
        kind.to_owned(),
        JoinRequest {
            subscription_id: text("subscriptionId")?,
            stream: text("streamName")?,
            group: text("groupId")?,
            item: text("id"),
        },
    ))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn unauthorized() -> Response {
    Response::new(http::StatusCode::UNAUTHORIZED, "unauthorized\n")
}
