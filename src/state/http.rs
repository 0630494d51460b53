//! [`StateApi`]: a store over HTTP in one line — reads, writes, update
//! operations, custom events, and Server-Sent Events that follow a group or
//! an item and resume by themselves (`id: <epoch>.<rev>`).
//!
//! | route | does |
//! |---|---|
//! | `GET {base}/:stream` | the stream's group ids |
//! | `GET {base}/:stream/:group` | `{"rev","items":[{"id","value"}]}`; with `Accept: text/event-stream`, the group as SSE |
//! | `GET {base}/:stream/:group/:item` | the value (404 when absent); as SSE with that `Accept` |
//! | `PUT {base}/:stream/:group/:item` | set (the body is the value) |
//! | `PATCH {base}/:stream/:group/:item` | `{"ops":[…],"if_rev"?}`: all or nothing (422 naming the failing op, 409 for another revision) |
//! | `DELETE {base}/:stream/:group/:item` | delete |
//! | `POST {base}/:stream/:group/events` | `{"type","data","item"?}`: a custom event |
//!
//! Writes answer `{"old","new","rev","changed"}`. Every route asks the
//! [`authorize`](StateApi::authorize) hook first (403 when it says no).

use http::{header, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

use super::{
    error::StateError,
    store::{Revision, Store},
    watch::{WatchEvent, Watcher},
    UpdateOp,
};
use crate::{
    context::Context,
    response::Response,
    router::Router,
    sse::{self, Event, SseOptions},
};

/// What a request would read or write, for the authorize hook.
///
/// # Example
///
/// ```
/// use rill::state::{Access, StateApi, Store};
///
/// // Everyone reads the `board` stream; only admins write to it.
/// fn allowed(is_admin: bool, access: &Access<'_>) -> bool {
///     access.stream == "board" && (!access.write || is_admin)
/// }
/// let read = Access { stream: "board", group: Some("main"), item: None, write: false };
/// assert!(allowed(false, &read));
/// assert!(!allowed(false, &Access { write: true, ..read }));
/// let api = StateApi::new(Store::new())
///     .authorize(|ctx, access| allowed(ctx.header("x-role") == Some("admin"), access));
/// # drop(api);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The group, unless the whole stream is listed.
    pub group: Option<&'a str>,
    /// The item, when one.
    pub item: Option<&'a str>,
    /// A write (set, update, delete, event) rather than a read or a watch.
    pub write: bool,
}

type Authorize = Arc<dyn Fn(&Context, &Access<'_>) -> bool + Send + Sync>;

/// A store's HTTP API (see the module doc for the routes).
///
/// ```
/// use rill::state::{StateApi, Store};
///
/// let store = Store::new();
/// let router = StateApi::new(store.clone())
///     .authorize(|ctx, access| {
///         // users read and write their own group only
///         access.group.is_some() && ctx.header("x-user") == access.group
///     })
///     .mount(rill::Router::new(), "/state");
/// ```
#[derive(Clone)]
pub struct StateApi {
    store: Store,
    authorize: Option<Authorize>,
    retry: Option<std::time::Duration>,
}

impl StateApi {
    /// The API of `store`, open to every request until
    /// [`authorize`](Self::authorize) says otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::http::{Request, StatusCode};
    /// use rill::state::{StateApi, Store};
    ///
    /// let store = Store::new();
    /// let app = StateApi::new(store.clone()).mount(rill::Router::new(), "/state").into_service();
    /// let put = Request::put("/state/todos/ann/t1").header("host", "localhost")
    ///     .body(r#"{"title":"milk"}"#.to_owned())?;
    /// assert_eq!(app.handle(put).await.status(), StatusCode::OK);
    /// assert_eq!(store.get("todos", "ann", "t1").await?, Some(serde_json::json!({"title": "milk"})));
    /// # Ok(()) }
    /// ```
    pub fn new(store: Store) -> Self {
        StateApi {
            store,
            authorize: None,
            retry: None,
        }
    }

    /// Tells SSE clients to reconnect after `interval` (`retry:`) instead of
    /// their default (3 s in browsers).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{StateApi, Store};
    /// use std::time::Duration;
    ///
    /// // Watchers (EventSource clients) come back one second after a drop.
    /// let router = StateApi::new(Store::new())
    ///     .retry(Duration::from_secs(1))
    ///     .mount(rill::Router::new(), "/state");
    /// # drop(router);
    /// ```
    pub fn retry(mut self, interval: std::time::Duration) -> Self {
        self.retry = Some(interval);
        self
    }

    /// Asks `hook` before every request: `false` answers `403`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::http::{Request, StatusCode};
    /// use rill::state::{StateApi, Store};
    ///
    /// let app = StateApi::new(Store::new())
    ///     .authorize(|ctx, access| ctx.header("x-user") == access.group) // own group only
    ///     .mount(rill::Router::new(), "/state")
    ///     .into_service();
    /// let get = |user: &str| Request::get("/state/todos/ann").header("host", "localhost")
    ///     .header("x-user", user).body(String::new());
    /// assert_eq!(app.handle(get("ann")?).await.status(), StatusCode::OK);
    /// assert_eq!(app.handle(get("bob")?).await.status(), StatusCode::FORBIDDEN);
    /// # Ok(()) }
    /// ```
    pub fn authorize(
        mut self,
        hook: impl Fn(&Context, &Access<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorize = Some(Arc::new(hook));
        self
    }

    /// Adds the routes under `base` (`"/state"`) to `router`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::http::{Request, StatusCode};
    /// use rill::state::{StateApi, Store};
    ///
    /// let store = Store::new();
    /// # store.set("todos", "ann", "t1", serde_json::json!({"n": 1})).await?;
    /// let app = StateApi::new(store).mount(rill::Router::new(), "/api/state").into_service();
    /// // A failing operation answers 422 (and changes nothing).
    /// let patch = Request::patch("/api/state/todos/ann/t1").header("host", "localhost")
    ///     .body(r#"{"ops":[{"op":"append","path":["n"],"value":2}]}"#.to_owned())?;
    /// assert_eq!(app.handle(patch).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    /// # Ok(()) }
    /// ```
    pub fn mount<S: Clone + Send + Sync + 'static>(
        self,
        router: Router<S>,
        base: &str,
    ) -> Router<S> {
        let base = base.trim_end_matches('/');
        let api = Arc::new(self);
        // One handler per route: the API's method of that name.
        macro_rules! to {
            ($method:ident) => {{
                let api = api.clone();
                move |ctx: Context| {
                    let api = api.clone();
                    async move { api.$method(ctx).await }
                }
            }};
        }
        let item = format!("{base}/:stream/:group/:item");
        router
            .get(&format!("{base}/:stream"), to!(groups))
            .get(&format!("{base}/:stream/:group"), to!(read_group))
            .get(&item, to!(read_item))
            .put(&item, to!(set))
            .route(http::Method::PATCH, &item, to!(patch))
            .delete(&item, to!(delete))
            .post(&format!("{base}/:stream/:group/events"), to!(event))
    }

    async fn read_group(&self, ctx: Context) -> Response {
        self.read(ctx, false).await
    }

    async fn read_item(&self, ctx: Context) -> Response {
        self.read(ctx, true).await
    }

    fn sse_options(&self) -> SseOptions {
        match self.retry {
            Some(interval) => SseOptions::new().retry(interval),
            None => SseOptions::new(),
        }
    }

    fn allowed(&self, ctx: &Context, access: Access<'_>) -> bool {
        self.authorize
            .as_ref()
            .is_none_or(|hook| hook(ctx, &access))
    }

    async fn groups(&self, ctx: Context) -> Response {
        let stream = ctx.param("stream").unwrap_or_default();
        let access = Access {
            stream,
            group: None,
            item: None,
            write: false,
        };
        if !self.allowed(&ctx, access) {
            return forbidden();
        }
        match self.store.list_groups(stream).await {
            Ok(groups) => json_response(StatusCode::OK, &json!(groups)),
            Err(error) => error_response(&error),
        }
    }

    async fn read(&self, ctx: Context, one: bool) -> Response {
        let stream = ctx.param("stream").unwrap_or_default().to_owned();
        let group = ctx.param("group").unwrap_or_default().to_owned();
        let item = one.then(|| ctx.param("item").unwrap_or_default().to_owned());
        let access = Access {
            stream: &stream,
            group: Some(&group),
            item: item.as_deref(),
            write: false,
        };
        if !self.allowed(&ctx, access) {
            return forbidden();
        }
        if wants_events(&ctx) {
            let since = sse::last_event_id(ctx.headers(), ctx.query("lastEventId"))
                .and_then(|id| Revision::parse(&id));
            let retry = self.retry;
            return match self.store.watch(&stream, &group, item.as_deref(), since) {
                Ok(watcher) => ctx.sse_with(self.sse_options(), move |_ctx, writer| {
                    follow(watcher, writer, retry)
                }),
                Err(error) => error_response(&error),
            };
        }
        match self.store.snapshot(&stream, &group, item.as_deref()).await {
            Ok(snapshot) if one => match snapshot.items.into_values().next() {
                Some(value) => json_response(StatusCode::OK, &value),
                None => json_response(StatusCode::NOT_FOUND, &json!({"error": "no such item"})),
            },
            Ok(snapshot) => {
                let items: Vec<Value> = snapshot
                    .items
                    .into_iter()
                    .map(|(id, value)| json!({"id": id, "value": value}))
                    .collect();
                json_response(
                    StatusCode::OK,
                    &json!({"rev": snapshot.rev.to_string(), "items": items}),
                )
            }
            Err(error) => error_response(&error),
        }
    }

    /// The path's names, once the hook allowed a write there (`None`:
    /// forbidden).
    fn writing<'c>(&self, ctx: &'c Context) -> Option<(&'c str, &'c str, &'c str)> {
        let stream = ctx.param("stream").unwrap_or_default();
        let group = ctx.param("group").unwrap_or_default();
        let item = ctx.param("item").unwrap_or_default();
        let access = Access {
            stream,
            group: Some(group),
            item: Some(item),
            write: true,
        };
        self.allowed(ctx, access).then_some((stream, group, item))
    }

    async fn set(&self, ctx: Context) -> Response {
        let Some((stream, group, item)) = self.writing(&ctx) else {
            return forbidden();
        };
        let value: Value = match serde_json::from_slice(ctx.body()) {
            Ok(value) => value,
            Err(error) => return bad_request(&format!("the body is not JSON: {error}")),
        };
        written(self.store.set(stream, group, item, value).await)
    }

    async fn delete(&self, ctx: Context) -> Response {
        let Some((stream, group, item)) = self.writing(&ctx) else {
            return forbidden();
        };
        written(self.store.delete(stream, group, item).await)
    }

    async fn patch(&self, ctx: Context) -> Response {
        let Some((stream, group, item)) = self.writing(&ctx) else {
            return forbidden();
        };
        #[derive(serde::Deserialize)]
        struct Patch {
            ops: Vec<UpdateOp>,
            #[serde(default)]
            if_rev: Option<String>,
        }
        let patch: Patch = match serde_json::from_slice(ctx.body()) {
            Ok(patch) => patch,
            Err(error) => {
                return bad_request(&format!("expected {{\"ops\":[…],\"if_rev\"?}}: {error}"))
            }
        };
        let if_rev = match patch.if_rev.as_deref().map(Revision::parse) {
            Some(None) => return bad_request("if_rev is not a revision (<epoch>.<rev>)"),
            Some(Some(rev)) => Some(rev),
            None => None,
        };
        written(
            self.store
                .update(stream, group, item, &patch.ops, if_rev.as_ref())
                .await,
        )
    }

    async fn event(&self, ctx: Context) -> Response {
        let stream = ctx.param("stream").unwrap_or_default();
        let group = ctx.param("group").unwrap_or_default();
        let body: Value = serde_json::from_slice(ctx.body()).unwrap_or(Value::Null);
        let (Some(event_type), Some(data)) =
            (body.get("type").and_then(Value::as_str), body.get("data"))
        else {
            return bad_request("expected {\"type\": T, \"data\": D, \"item\"?: I}");
        };
        let item = body.get("item").and_then(Value::as_str);
        let access = Access {
            stream,
            group: Some(group),
            item,
            write: true,
        };
        if !self.allowed(&ctx, access) {
            return forbidden();
        }
        match self
            .store
            .send(stream, group, item, event_type, data.clone())
            .await
        {
            Ok(rev) => json_response(StatusCode::OK, &json!({"rev": rev.to_string()})),
            Err(error) => error_response(&error),
        }
    }
}

impl std::fmt::Debug for StateApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateApi")
            .field("store", &self.store)
            .field("authorize", &self.authorize.is_some())
            .finish()
    }
}

/// Writes a watcher's events as SSE until the client leaves: `sync`
/// (`{"items":{…},"ts"}`), `create` / `update` / `delete` / `event` (the
/// change's JSON), each with `id: <epoch>.<rev>`; `reset` before a fresh
/// `sync`. With [`StateApi::retry`], syncs and resets carry `retry:`.
async fn follow(
    mut watcher: Watcher,
    mut writer: sse::SseWriter,
    retry: Option<std::time::Duration>,
) -> Result<(), crate::error::BoxError> {
    // Made once: a future per event would cost more than the event.
    let gone = writer.disconnected();
    tokio::pin!(gone);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            () = &mut gone => return Ok(()),
            event = watcher.next() => {
                let Some(event) = event else { return Ok(()) };
                let WatchEvent::Change(delta) = event else {
                    // A sync may be large: its frame goes as it is, so that
                    // the writer's buffer does not keep its memory. It
                    // carries `retry:` (the client keeps it; changes, shared
                    // by every watcher, do not repeat it).
                    let mut frame = sse_event(&event);
                    if let Some(retry) = retry {
                        frame = frame.retry(retry);
                    }
                    writer.send_frame_bytes(frame.encode()?).await?;
                    continue;
                };
                // With the changes queued meanwhile: one lock of the queue,
                // one of the stream, each change's frame encoded once for
                // every watcher (a client gone makes the write fail).
                batch.push(delta);
                watcher.drain_changes(&mut batch, DRAIN);
                writer
                    .send_frames(|buf| {
                        for delta in &batch {
                            buf.extend_from_slice(delta.sse_frame());
                        }
                    })
                    .await?;
                batch.clear();
            }
        }
    }
}

/// Changes written at most in one go.
const DRAIN: usize = 256;

/// One watcher event as an SSE event.
pub(crate) fn sse_event(event: &WatchEvent) -> Event {
    match event {
        WatchEvent::Sync(snapshot) => {
            Event::data(json!({"items": snapshot.items, "ts": snapshot.timestamp}).to_string())
                .event("sync")
                .id(snapshot.rev.to_string())
        }
        WatchEvent::Change(delta) => Event::data(delta.json())
            .event(delta.kind().as_str())
            .id(delta.rev().to_string()),
        WatchEvent::Reset => Event::data("{}").event("reset"),
    }
}

fn wants_events(ctx: &Context) -> bool {
    ctx.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

fn written(result: Result<super::Write, StateError>) -> Response {
    match result {
        Ok(write) => json_response(StatusCode::OK, &write.to_json()),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &StateError) -> Response {
    let status = match error {
        StateError::Op(_) => StatusCode::UNPROCESSABLE_ENTITY,
        StateError::RevisionMismatch { .. } | StateError::Contended { .. } => StatusCode::CONFLICT,
        StateError::Limit(_) | StateError::NamesTooLong | StateError::Type { .. } => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = json!({"error": error.to_string()});
    if let StateError::Op(op) = error {
        body["op"] = json!({"index": op.index, "op": op.op, "reason": op.failure.to_string()});
    }
    json_response(status, &body)
}

fn forbidden() -> Response {
    json_response(StatusCode::FORBIDDEN, &json!({"error": "forbidden"}))
}

fn bad_request(why: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": why}))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::json_string(body.to_string()).with_status(status)
}
