//! [`Watcher`]: one subscriber of a group (or of one item) — a snapshot,
//! then every later change once, in order; after a lost continuity, a
//! reset and a fresh snapshot. Every transport (SSE, WebSocket, the
//! iii-compatible endpoint) reads a watcher and only encodes.
//!
//! # Why the snapshot is never overtaken
//!
//! The snapshot is read under the group's lock, with the revision of the
//! last change it includes; the watcher then joins the group's broker
//! channel *after that revision*. The broker's catch-up offers every change
//! after it — those made between the snapshot and the join from its
//! history, later ones live — each once, in order (see
//! `broker/registry.rs`). A change is published under the same lock as it
//! is applied, so no change can be in the snapshot and after its revision,
//! or in neither.
//!
//! # Slow watchers
//!
//! A watcher's queue is bounded. When it overflows, the queued changes are
//! dropped and the watcher starts over with a reset and a fresh snapshot —
//! the latest value of every item, in one message: a slow subscriber is
//! conflated, never holding anyone up.

use serde_json::Value;
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};
use tokio::sync::Notify;

use super::{
    error::StateError,
    store::{Group, Revision, Snapshot, Store},
    triggers::{item_prefix, ChangeKind},
};
use crate::broker::{
    BrokerSubscription, Delivery, Encoding, Message, Metadata, Offer, Position, Since, Sink,
    SlowConsumer, SubscribeOptions,
};

/// Default changes a watcher may fall behind before it is reset.
///
/// # Example
///
/// ```
/// use rill::state::{Store, DEFAULT_WATCH_QUEUE};
///
/// // A dashboard that may lag behind during bursts: let it queue more first.
/// let store = Store::new();
/// let watcher = store.watch("metrics", "cpu", None, None)?.queue(4 * DEFAULT_WATCH_QUEUE);
/// # drop(watcher);
/// # Ok::<(), rill::state::StateError>(())
/// ```
pub const DEFAULT_WATCH_QUEUE: usize = 4096;

/// What a watcher yields.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{Store, WatchEvent};
/// use serde_json::json;
///
/// fn describe(event: WatchEvent) -> String {
///     match event {
///         WatchEvent::Sync(snapshot) => format!("sync of {} items", snapshot.items.len()),
///         WatchEvent::Change(delta) => format!("{} at {}", delta.kind().as_str(), delta.rev().rev),
///         WatchEvent::Reset => "reset: a sync follows".to_owned(),
///     }
/// }
/// let store = Store::new();
/// let mut watcher = store.watch("todos", "ann", None, None)?;
/// assert_eq!(describe(watcher.next().await.unwrap()), "sync of 0 items");
/// store.set("todos", "ann", "t1", json!("milk")).await?;
/// assert_eq!(describe(watcher.next().await.unwrap()), "create at 1");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The state — the group's items, or the one item (absent: empty) —
    /// first, and after a reset.
    Sync(Snapshot),
    /// A change after the last sync or change, in order.
    Change(Delta),
    /// Continuity is lost (another epoch, a history that no longer reaches
    /// back, or a watcher too slow): a [`Sync`](WatchEvent::Sync) follows.
    Reset,
}

/// A change as watchers get it: shared by every watcher of the group.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{ChangeKind, Store, WatchEvent};
/// use serde_json::json;
///
/// let store = Store::new();
/// let mut watcher = store.watch("todos", "ann", Some("t1"), None)?;
/// # watcher.next().await; // the sync
/// store.set("todos", "ann", "t1", json!("milk")).await?;
/// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
/// assert_eq!((delta.kind(), delta.rev().rev), (ChangeKind::Create, 1));
/// assert_eq!(delta.value()["data"], "milk");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Delta {
    message: Arc<Message>,
}

impl Delta {
    /// Create, update, delete or event.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{ChangeKind, Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// let mut watcher = store.watch("todos", "ann", None, None)?;
    /// # watcher.next().await; // the sync
    /// store.delete("todos", "ann", "t1").await?;
    /// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
    /// assert_eq!(delta.kind(), ChangeKind::Delete);
    /// # Ok(()) }
    /// ```
    pub fn kind(&self) -> ChangeKind {
        self.message
            .event_name()
            .and_then(ChangeKind::parse)
            .unwrap_or(ChangeKind::Event)
    }

    /// The group's revision with this change.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let mut watcher = store.watch("todos", "ann", None, None)?;
    /// # watcher.next().await; // the sync
    /// let write = store.set("todos", "ann", "t1", json!("milk")).await?;
    /// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
    /// assert_eq!(delta.rev(), write.rev); // what a client resumes from
    /// # Ok(()) }
    /// ```
    pub fn rev(&self) -> Revision {
        Revision::from_position(Some(self.message.position()))
    }

    /// The change as one SSE frame — `event: <kind>`, `id: <epoch>.<rev>`,
    /// `data: <json>` — encoded once and shared by every watcher.
    pub(crate) fn sse_frame(&self) -> &bytes::Bytes {
        self.message.encoded(Encoding::StateSse, encode_sse_frame)
    }

    /// The change as JSON text: `{"id":…,"type":…,"data":…,"ts":…}` (`id`
    /// absent for an event to the whole group, `event` for an event's
    /// type; `data` the new value, the old one for a delete).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let mut watcher = store.watch("todos", "ann", None, None)?;
    /// # watcher.next().await; // the sync
    /// store.set("todos", "ann", "t1", json!({"done": true})).await?;
    /// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
    /// // Ready to forward as is, e.g. as a WebSocket text message:
    /// assert!(delta.json().starts_with(r#"{"id":"t1","type":"create","data":{"done":true},"ts":"#));
    /// # Ok(()) }
    /// ```
    pub fn json(&self) -> &str {
        self.message.data()
    }

    /// The change, parsed.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let mut watcher = store.watch("todos", "ann", None, None)?;
    /// # watcher.next().await; // the sync
    /// store.set("todos", "ann", "t1", json!({"done": true})).await?;
    /// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
    /// let change = delta.value();
    /// assert_eq!((change["id"].as_str(), change["type"].as_str()), (Some("t1"), Some("create")));
    /// assert_eq!(change["data"], json!({"done": true}));
    /// # Ok(()) }
    /// ```
    pub fn value(&self) -> Value {
        serde_json::from_str(self.message.data()).unwrap_or(Value::Null)
    }
}

/// A change's SSE frame (see [`Delta::sse_frame`]): its JSON is one line,
/// its kind and revision need no escaping.
fn encode_sse_frame(message: &Message) -> bytes::Bytes {
    use std::fmt::Write as _;
    let kind = message
        .event_name()
        .and_then(ChangeKind::parse)
        .unwrap_or(ChangeKind::Event);
    let position = message.position();
    let mut id = String::with_capacity(24);
    let _ = write!(
        id,
        "{}",
        RevDisplay(position.epoch().as_str(), position.offset())
    );
    crate::sse::Event::data(message.data())
        .event(kind.as_str())
        .id(id)
        .encode()
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "could not encode a state change");
            bytes::Bytes::new()
        })
}

/// `<epoch>.<rev>`, written from a position's parts.
struct RevDisplay<'a>(&'a str, u64);

impl std::fmt::Display for RevDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[derive(Debug, Default)]
struct Queue {
    messages: VecDeque<Arc<Message>>,
    /// Continuity lost: the watcher starts over.
    reset: bool,
}

/// A watcher as the broker sees it: changes queued for the watcher's task.
struct WatchSink {
    queue: Mutex<Queue>,
    ready: Notify,
    /// `{"id":"<item>",` for an item watcher.
    prefix: Option<String>,
    max: usize,
    metadata: Metadata,
}

impl WatchSink {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wants(&self, message: &Message) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|prefix| message.data().starts_with(prefix))
    }

    /// Queues `message`; whether the watcher may be waiting for it (the
    /// queue was empty, or it must start over now): only then is it woken.
    /// A watcher waits only after it found the queue empty, so a wake on
    /// every change it has not reached yet would be wasted.
    fn push(&self, queue: &mut Queue, message: &Arc<Message>) -> bool {
        if queue.reset || !self.wants(message) {
            return false;
        }
        if queue.messages.len() >= self.max {
            queue.messages.clear();
            queue.reset = true;
            return true;
        }
        queue.messages.push_back(message.clone());
        queue.messages.len() == 1
    }

    fn lose_continuity(&self) {
        let mut queue = self.queue();
        queue.messages.clear();
        queue.reset = true;
        drop(queue);
        self.ready.notify_one();
    }
}

impl Sink for WatchSink {
    fn offer(&self, message: &Arc<Message>, _delivery: Delivery) -> Offer {
        let wake = self.push(&mut self.queue(), message);
        if wake {
            self.ready.notify_one();
        }
        Offer::Queued
    }

    fn offer_many(&self, messages: &[&Arc<Message>], _delivery: Delivery) -> (usize, Offer) {
        let mut wake = false;
        {
            let mut queue = self.queue();
            for message in messages {
                wake |= self.push(&mut queue, message);
            }
        }
        if wake {
            self.ready.notify_one();
        }
        (messages.len(), Offer::Queued)
    }

    fn reset(&self, _channel: &str) -> Offer {
        self.lose_continuity();
        Offer::Queued
    }

    fn gap(&self, _channel: &str, _dropped: u64) -> Offer {
        self.lose_continuity();
        Offer::Queued
    }

    fn position(&self, _channel: &str, _position: &Position) {}

    fn close(&self) {
        self.lose_continuity();
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// One subscriber of a group or item: [`next`](Self::next) yields a sync,
/// then changes, in order. Dropping it unsubscribes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{Store, WatchEvent};
/// use serde_json::json;
///
/// let store = Store::new();
/// store.set("todos", "ann", "t1", json!({"title": "milk"})).await?;
/// let mut watcher = store.watch("todos", "ann", None, None)?;
/// let Some(WatchEvent::Sync(snapshot)) = watcher.next().await else { panic!() };
/// assert_eq!(snapshot.items["t1"], json!({"title": "milk"}));
/// store.delete("todos", "ann", "t1").await?;
/// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
/// assert_eq!(delta.rev(), snapshot.rev.next());
/// # Ok(()) }
/// ```
pub struct Watcher {
    store: Store,
    group: Arc<Group>,
    item: Option<String>,
    sink: Arc<WatchSink>,
    membership: Option<BrokerSubscription>,
    pending: VecDeque<WatchEvent>,
    since: Option<Revision>,
    started: bool,
    max: usize,
}

impl Store {
    /// Watches `stream/group` (only `item`, when given): from a fresh
    /// snapshot, or — with `since` — from that revision on (the changes
    /// after it; a reset and a snapshot when they cannot be had).
    ///
    /// # Errors
    ///
    /// [`StateError::Limit`] for a bad name.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let seen = store.set("todos", "ann", "t1", json!("milk")).await?.rev;
    /// store.set("todos", "ann", "t2", json!("eggs")).await?; // missed by the client
    /// // The client comes back with the revision it had (its Last-Event-ID):
    /// let mut watcher = store.watch("todos", "ann", None, Some(seen))?;
    /// let Some(WatchEvent::Change(missed)) = watcher.next().await else { panic!() };
    /// assert_eq!(missed.value()["id"], "t2");
    /// # Ok(()) }
    /// ```
    pub fn watch(
        &self,
        stream: &str,
        group: &str,
        item: Option<&str>,
        since: Option<Revision>,
    ) -> Result<Watcher, StateError> {
        if let Some(item) = item {
            self.inner.limits.check_name(item)?;
        }
        let group = self.group(stream, group)?;
        let item = item.map(str::to_owned);
        Ok(Watcher {
            store: self.clone(),
            sink: new_sink(item.as_deref(), DEFAULT_WATCH_QUEUE),
            group,
            item,
            membership: None,
            pending: VecDeque::new(),
            since,
            started: false,
            max: DEFAULT_WATCH_QUEUE,
        })
    }
}

fn new_sink(item: Option<&str>, max: usize) -> Arc<WatchSink> {
    Arc::new(WatchSink {
        queue: Mutex::default(),
        ready: Notify::new(),
        prefix: item.map(item_prefix),
        max,
        metadata: Vec::new(),
    })
}

impl Watcher {
    /// How many changes it may fall behind before it is reset (default
    /// 4096).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let mut watcher = store.watch("prices", "fx", None, None)?.queue(2);
    /// # watcher.next().await; // the sync
    /// for n in 0..5 {
    ///     store.set("prices", "fx", "eurusd", json!(n)).await?;
    /// }
    /// // Three changes behind: conflated into a reset and the latest state.
    /// assert!(matches!(watcher.next().await, Some(WatchEvent::Reset)));
    /// let Some(WatchEvent::Sync(snapshot)) = watcher.next().await else { panic!() };
    /// assert_eq!(snapshot.items["eurusd"], json!(4));
    /// # Ok(()) }
    /// ```
    pub fn queue(mut self, changes: usize) -> Self {
        self.max = changes.max(1);
        self.sink = new_sink(self.item.as_deref(), self.max);
        self
    }

    /// The stream watched.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Store;
    ///
    /// let watcher = Store::new().watch("todos", "ann", None, None)?;
    /// assert_eq!(watcher.stream(), "todos");
    /// # Ok::<(), rill::state::StateError>(())
    /// ```
    pub fn stream(&self) -> &str {
        &self.group.stream
    }

    /// The group watched.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Store;
    ///
    /// let watcher = Store::new().watch("todos", "ann", None, None)?;
    /// assert_eq!(watcher.group(), "ann");
    /// # Ok::<(), rill::state::StateError>(())
    /// ```
    pub fn group(&self) -> &str {
        &self.group.name
    }

    /// The item watched, if only one.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Store;
    ///
    /// let store = Store::new();
    /// assert_eq!(store.watch("todos", "ann", Some("t1"), None)?.item(), Some("t1"));
    /// assert_eq!(store.watch("todos", "ann", None, None)?.item(), None);
    /// # Ok::<(), rill::state::StateError>(())
    /// ```
    pub fn item(&self) -> Option<&str> {
        self.item.as_deref()
    }

    /// The next sync, change or reset. `None` only if the broker refused
    /// the subscription (too many channels).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// let mut watcher = store.watch("todos", "ann", None, None)?;
    /// let Some(WatchEvent::Sync(snapshot)) = watcher.next().await else { panic!() };
    /// assert_eq!(snapshot.items.len(), 1); // the state first, then changes
    /// # Ok(()) }
    /// ```
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if !self.started {
                self.started = true;
                let since = self.since.take().and_then(|r| r.position());
                let ok = match since {
                    Some(position) => self.join(Some(Since::After(position))),
                    None => self.resync(false).await,
                };
                if !ok {
                    return None;
                }
                continue;
            }
            let taken = {
                let mut queue = self.sink.queue();
                if queue.reset {
                    None
                } else {
                    Some(queue.messages.pop_front())
                }
            };
            match taken {
                None => {
                    if !self.resync(true).await {
                        return None;
                    }
                }
                Some(Some(message)) => return Some(WatchEvent::Change(Delta { message })),
                Some(None) => self.sink.ready.notified().await,
            }
        }
    }

    /// Moves up to `max` changes queued already into `out`, under one lock,
    /// without waiting (none when a sync or a reset is due:
    /// [`next`](Self::next) gives those).
    pub(crate) fn drain_changes(&mut self, out: &mut Vec<Delta>, max: usize) {
        if !self.started || !self.pending.is_empty() {
            return;
        }
        let mut queue = self.sink.queue();
        if queue.reset {
            return;
        }
        let take = queue.messages.len().min(max);
        out.extend(
            queue
                .messages
                .drain(..take)
                .map(|message| Delta { message }),
        );
    }

    /// Starts over: a fresh snapshot, then the changes after it (with a
    /// reset before, when `reset`).
    async fn resync(&mut self, reset: bool) -> bool {
        drop(self.membership.take());
        self.sink = new_sink(self.item.as_deref(), self.max);
        let snapshot = match self
            .store
            .snapshot(&self.group.stream, &self.group.name, self.item.as_deref())
            .await
        {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%error, "state snapshot failed");
                return false;
            }
        };
        let since = match snapshot.rev.position() {
            Some(position) => Since::After(position),
            // Nothing published yet: whatever comes is after the snapshot.
            None => Since::Start,
        };
        if !self.join(Some(since)) {
            return false;
        }
        if reset {
            self.pending.push_back(WatchEvent::Reset);
        }
        self.pending.push_back(WatchEvent::Sync(snapshot));
        true
    }

    fn join(&mut self, since: Option<Since>) -> bool {
        let membership = self.store.inner.broker.subscribe(
            self.sink.clone(),
            SubscribeOptions {
                slow_consumer: SlowConsumer::Disconnect,
                presence: false,
            },
        );
        match membership.join(&self.group.channel, since) {
            Ok(()) => {
                self.membership = Some(membership);
                true
            }
            Err(error) => {
                tracing::warn!(%error, "state watcher could not join its group");
                false
            }
        }
    }
}

impl Revision {
    /// The revision after this one, in the same epoch.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Revision;
    ///
    /// let rev = Revision::parse("k2x9.41").unwrap();
    /// assert_eq!(rev.next().to_string(), "k2x9.42");
    /// ```
    pub fn next(&self) -> Revision {
        Revision {
            epoch: self.epoch.clone(),
            rev: self.rev + 1,
        }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("stream", &self.group.stream)
            .field("group", &self.group.name)
            .field("item", &self.item)
            .finish_non_exhaustive()
    }
}
