//! [`Store`]: items addressed `stream/group/item`, written under their
//! group's lock, every change published on the group's broker channel.
//!
//! # Revisions
//!
//! A group's changes are published on one broker channel
//! (`state:<stream>/<group>`), while the group's lock is held: the broker's
//! position of a change — its epoch and offset — *is* the group's
//! [`Revision`]. Changes of a group are placed in the order they were
//! made; a snapshot read under the lock carries the revision of the last
//! change it includes, and a subscriber that joins the channel after that
//! revision gets every later change exactly once, in order (the broker's
//! catch-up). Custom events ([`Store::send`]) ride the same channel and take
//! a revision too, so a resuming client gets the events it missed as well.

use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};
use tokio::sync::mpsc;

use super::{
    error::StateError,
    limits::Limits,
    ops::{self, UpdateOp},
    triggers::{Change, ChangeKind, Triggers},
};
use crate::broker::{Broker, Epoch, KeyedItems, Position, Publication, MAX_CHANNEL_NAME};

/// Where a group stands: the broker epoch of its channel and the offset of
/// its last change (0 before the first). Written `<epoch>.<rev>` (the SSE
/// id of a state stream).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{Revision, Store};
/// use serde_json::json;
///
/// let store = Store::new();
/// let first = store.set("todos", "ann", "t1", json!("milk")).await?.rev;
/// let second = store.set("todos", "ann", "t2", json!("eggs")).await?.rev;
/// assert_eq!((first.rev, second.rev), (1, 2));
/// assert_eq!(second.epoch, first.epoch);
/// // The SSE id a client sends back as Last-Event-ID:
/// assert_eq!(Revision::parse(&second.to_string()), Some(second));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revision {
    /// The epoch ("" before the first change).
    pub epoch: String,
    /// The revision within the epoch.
    pub rev: u64,
}

impl Revision {
    pub(crate) fn from_position(position: Option<&Position>) -> Revision {
        match position {
            Some(p) => Revision {
                epoch: p.epoch().as_str().to_owned(),
                rev: p.offset(),
            },
            None => Revision::default(),
        }
    }

    /// `Ok` unless an update asked for another revision (`if_rev`) than
    /// this one, the group's.
    pub(crate) fn check(&self, if_rev: Option<&Revision>) -> Result<(), StateError> {
        match if_rev {
            Some(expected) if expected != self => Err(StateError::RevisionMismatch {
                expected: expected.to_string(),
                actual: self.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The broker position, if this revision names one.
    pub(crate) fn position(&self) -> Option<Position> {
        let epoch = Epoch::parse(&self.epoch)?;
        Some(Position::new(epoch, self.rev))
    }

    /// Reads `<epoch>.<rev>` (and `.0`, a group never written).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Revision;
    ///
    /// let rev = Revision::parse("k2x9.42").unwrap();
    /// assert_eq!((rev.epoch.as_str(), rev.rev), ("k2x9", 42));
    /// assert_eq!(Revision::parse(".0"), Some(Revision::default()));
    /// assert_eq!(Revision::parse("not a revision"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Revision> {
        if text == ".0" {
            return Some(Revision::default());
        }
        let (epoch, rev) = text.rsplit_once('.')?;
        let rev = rev.parse().ok()?;
        Epoch::parse(epoch)?;
        Some(Revision {
            epoch: epoch.to_owned(),
            rev,
        })
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.rev)
    }
}

/// What a write did.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::Store;
/// use serde_json::json;
///
/// let store = Store::new();
/// store.set("todos", "ann", "t1", json!({"done": false})).await?;
/// let write = store.set("todos", "ann", "t1", json!({"done": false})).await?;
/// assert!(!write.changed); // the same value: nothing published
/// assert_eq!(write.old, write.new);
/// assert_eq!(write.rev.rev, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The value before (`None`: absent).
    pub old: Option<Value>,
    /// The value after (`None`: absent).
    pub new: Option<Value>,
    /// The group's revision after the write (unchanged if nothing changed).
    pub rev: Revision,
    /// Whether the value changed (a write that changes nothing publishes
    /// nothing).
    pub changed: bool,
}

impl Write {
    /// `{"old","new","rev","changed"}`, as the HTTP API answers.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let write = store.set("todos", "ann", "t1", json!("milk")).await?;
    /// let body = write.to_json();
    /// assert_eq!(body["old"], json!(null));
    /// assert_eq!(body["new"], json!("milk"));
    /// assert_eq!(body["changed"], json!(true));
    /// assert_eq!(body["rev"], json!(write.rev.to_string()));
    /// # Ok(()) }
    /// ```
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "old": self.old,
            "new": self.new,
            "rev": self.rev.to_string(),
            "changed": self.changed,
        })
    }
}

/// A group's items as one snapshot, with the revision of the last change it
/// includes and the timestamp it takes in the group's sequence.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::Store;
/// use serde_json::json;
///
/// let store = Store::new();
/// store.set("todos", "ann", "t2", json!("eggs")).await?;
/// store.set("todos", "ann", "t1", json!("milk")).await?;
/// let snapshot = store.snapshot("todos", "ann", None).await?;
/// assert_eq!(snapshot.items.keys().collect::<Vec<_>>(), ["t1", "t2"]);
/// assert_eq!(snapshot.rev.rev, 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Item id → value, in id order.
    pub items: BTreeMap<String, Value>,
    /// The revision of the last change included.
    pub rev: Revision,
    /// Milliseconds since the Unix epoch, above every timestamp of the
    /// group's changes before it and below those after.
    pub timestamp: u64,
}

impl Group {
    /// The change of `item` from `old` to `new` (not both absent), before
    /// it has a revision.
    pub(crate) fn item_change(
        &self,
        item: &str,
        old: &Option<Value>,
        new: &Option<Value>,
        timestamp: u64,
    ) -> Change {
        let kind = match (old, new) {
            (None, _) => ChangeKind::Create,
            (Some(_), Some(_)) => ChangeKind::Update,
            (Some(_), None) => ChangeKind::Delete,
        };
        Change {
            kind,
            stream: self.stream.to_string(),
            group: self.name.to_string(),
            item: Some(item.to_owned()),
            old: old.clone(),
            new: new.clone(),
            event_type: None,
            data: None,
            rev: Revision::default(),
            timestamp,
        }
    }
}

/// A group's stream and name.
type GroupKey = (Arc<str>, Arc<str>);

/// One group: its items and where its channel stands, under an async lock
/// held across the publication of a change.
pub(crate) struct Group {
    pub(crate) channel: Arc<str>,
    pub(crate) stream: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) state: tokio::sync::Mutex<GroupState>,
}

#[derive(Default)]
pub(crate) struct GroupState {
    pub(crate) items: BTreeMap<String, Value>,
    pub(crate) position: Option<Position>,
    /// The last timestamp given out (changes and snapshots).
    last_timestamp: u64,
}

impl GroupState {
    /// The next timestamp of the group: now in milliseconds, or one past
    /// the last one if the clock has not moved (strictly increasing).
    pub(crate) fn next_timestamp(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_timestamp = now.max(self.last_timestamp + 1);
        self.last_timestamp
    }
}

/// Keyed state: items `stream/group/item` holding JSON values, written with
/// [`set`](Self::set), [`update`](Self::update) and
/// [`delete`](Self::delete), watched by subscribers that get a snapshot,
/// then every change once, in order. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{Store, UpdateOp};
/// use serde_json::json;
///
/// let store = Store::new();
/// store.set("todos", "ann", "t1", json!({"title": "milk", "done": false})).await?;
/// let write = store.update("todos", "ann", "t1", &[
///     UpdateOp::Set { path: vec!["done".into()], value: json!(true) },
/// ], None).await?;
/// assert_eq!(write.new, Some(json!({"title": "milk", "done": true})));
/// assert_eq!(write.rev.rev, 2);
/// assert_eq!(store.list("todos", "ann").await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) broker: Broker,
    /// The broker's items kept for every process (a shared backend): then
    /// items live there (`shared.rs`), not in the groups below.
    pub(crate) keyed: Option<Arc<dyn KeyedItems>>,
    pub(crate) limits: Limits,
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    /// Stream → its groups that hold items.
    streams: Mutex<BTreeMap<String, BTreeSet<String>>>,
    pub(crate) triggers: Triggers,
    changes: mpsc::UnboundedSender<Change>,
}

/// Configures a [`Store`].
///
/// # Example
///
/// ```
/// use rill::broker::Broker;
/// use rill::state::{Limits, Store};
///
/// let store = Store::builder()
///     .broker(Broker::builder().history(10_000).build())
///     .limits(Limits { max_value_bytes: 64 * 1024, ..Limits::default() })
///     .build();
/// assert_eq!(store.limits().max_value_bytes, 64 * 1024);
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct StoreBuilder {
    broker: Option<Broker>,
    limits: Limits,
}

impl StoreBuilder {
    /// Publishes changes through `broker` (its history is what resuming
    /// subscribers get back; by default a broker of the store's own that
    /// keeps 1,000 changes per group).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::broker::Broker;
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// // Keep the last 10,000 changes of each group for resuming clients.
    /// let broker = Broker::builder().history(10_000).build();
    /// let store = Store::builder().broker(broker.clone()).build();
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// assert_eq!(broker.stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Limits on values and names.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::state::{LimitError, Limits, StateError, Store};
    /// use serde_json::json;
    ///
    /// let store = Store::builder()
    ///     .limits(Limits { max_value_bytes: 16, ..Limits::default() })
    ///     .build();
    /// let error = store.set("notes", "ann", "n1", json!("far more than sixteen bytes")).await;
    /// assert!(matches!(error, Err(StateError::Limit(LimitError::TooLarge { max: 16 }))));
    /// # }
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Builds the store. Triggers run in a task of the runtime it is built
    /// on (or the first one a write happens on).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{Limits, Store};
    ///
    /// let store = Store::builder().limits(Limits::default()).build();
    /// assert_eq!(store.limits(), &Limits::default());
    /// ```
    pub fn build(self) -> Store {
        let (changes, receiver) = mpsc::unbounded_channel();
        let triggers = Triggers::default();
        let broker = self.broker.unwrap_or_default();
        let store = Store {
            inner: Arc::new(Inner {
                keyed: broker.keyed(),
                broker,
                limits: self.limits,
                groups: Mutex::default(),
                streams: Mutex::default(),
                triggers: triggers.clone(),
                changes,
            }),
        };
        triggers.start(receiver);
        store
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// A store with the defaults.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    ///
    /// let store = Store::new();
    /// assert_eq!(store.get("todos", "ann", "t1").await?, None);
    /// assert!(store.list_groups("todos").await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn new() -> Store {
        Store::builder().build()
    }

    /// Configures a store.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::{Limits, Store};
    ///
    /// let store = Store::builder()
    ///     .limits(Limits { max_depth: 8, ..Limits::default() })
    ///     .build();
    /// assert_eq!(store.limits().max_depth, 8);
    /// ```
    pub fn builder() -> StoreBuilder {
        StoreBuilder {
            broker: None,
            limits: Limits::default(),
        }
    }

    /// The broker changes are published on.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// // Each group's changes ride the broker channel `state:<stream>/<group>`.
    /// assert_eq!(store.broker().stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// The store's limits.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::Store;
    ///
    /// let store = Store::new();
    /// assert_eq!(store.limits().max_name_bytes, 256);
    /// assert!(store.limits().check_name("todos").is_ok());
    /// ```
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The group `stream/group`, made on first use.
    pub(crate) fn group(&self, stream: &str, group: &str) -> Result<Arc<Group>, StateError> {
        let limits = &self.inner.limits;
        limits.check_name(stream)?;
        limits.check_name(group)?;
        let channel = format!("state:{stream}/{group}");
        if channel.len() > MAX_CHANNEL_NAME {
            return Err(StateError::NamesTooLong);
        }
        let mut groups = lock(&self.inner.groups);
        let key = (Arc::<str>::from(stream), Arc::<str>::from(group));
        Ok(groups
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Group {
                    channel: channel.into(),
                    stream: key.0,
                    name: key.1,
                    state: tokio::sync::Mutex::default(),
                })
            })
            .clone())
    }

    /// Item `stream/group/item`'s value.
    ///
    /// # Errors
    ///
    /// [`StateError::Limit`] for a bad name.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{StateError, Store};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t1", json!({"title": "milk"})).await?;
    /// assert_eq!(store.get("todos", "ann", "t1").await?, Some(json!({"title": "milk"})));
    /// assert_eq!(store.get("todos", "ann", "t2").await?, None);
    /// assert!(matches!(store.get("todos", "ann", "a/b").await, Err(StateError::Limit(_))));
    /// # Ok(()) }
    /// ```
    pub async fn get(
        &self,
        stream: &str,
        group: &str,
        item: &str,
    ) -> Result<Option<Value>, StateError> {
        self.inner.limits.check_name(item)?;
        let group = self.group(stream, group)?;
        if let Some(keyed) = self.keyed() {
            return self.shared_get(&**keyed, &group, item).await;
        }
        let state = group.state.lock().await;
        Ok(state.items.get(item).cloned())
    }

    /// The items of `stream/group`, in id order.
    ///
    /// # Errors
    ///
    /// [`StateError::Limit`] for a bad name.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t2", json!("eggs")).await?;
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// let items = store.list("todos", "ann").await?;
    /// assert_eq!(items, [("t1".to_owned(), json!("milk")), ("t2".to_owned(), json!("eggs"))]);
    /// # Ok(()) }
    /// ```
    pub async fn list(
        &self,
        stream: &str,
        group: &str,
    ) -> Result<Vec<(String, Value)>, StateError> {
        Ok(self
            .snapshot(stream, group, None)
            .await?
            .items
            .into_iter()
            .collect())
    }

    /// The groups of `stream` that hold items, in order.
    ///
    /// # Errors
    ///
    /// [`StateError::Limit`] for a bad name.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "bob", "t1", json!("tea")).await?;
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// assert_eq!(store.list_groups("todos").await?, ["ann", "bob"]);
    /// store.delete("todos", "bob", "t1").await?; // bob's group is empty now
    /// assert_eq!(store.list_groups("todos").await?, ["ann"]);
    /// # Ok(()) }
    /// ```
    pub async fn list_groups(&self, stream: &str) -> Result<Vec<String>, StateError> {
        self.inner.limits.check_name(stream)?;
        if let Some(keyed) = self.keyed() {
            return self.shared_groups(&**keyed, stream).await;
        }
        Ok(lock(&self.inner.streams)
            .get(stream)
            .map(|groups| groups.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// A snapshot of `stream/group` (only `item`, when given), with the
    /// revision of its last change. It takes a timestamp of the group's
    /// sequence.
    ///
    /// # Errors
    ///
    /// [`StateError::Limit`] for a bad name.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// store.set("todos", "ann", "t2", json!("eggs")).await?;
    /// let one = store.snapshot("todos", "ann", Some("t2")).await?;
    /// assert_eq!(one.items.len(), 1);
    /// assert_eq!(one.rev.rev, 2); // the group's revision, even for one item
    /// # Ok(()) }
    /// ```
    pub async fn snapshot(
        &self,
        stream: &str,
        group: &str,
        item: Option<&str>,
    ) -> Result<Snapshot, StateError> {
        if let Some(item) = item {
            self.inner.limits.check_name(item)?;
        }
        let group = self.group(stream, group)?;
        if let Some(keyed) = self.keyed() {
            return self.shared_snapshot(&**keyed, &group, item).await;
        }
        let mut state = group.state.lock().await;
        let items = match item {
            Some(item) => state
                .items
                .get(item)
                .map(|v| BTreeMap::from([(item.to_owned(), v.clone())]))
                .unwrap_or_default(),
            None => state.items.clone(),
        };
        Ok(Snapshot {
            items,
            rev: Revision::from_position(state.position.as_ref()),
            timestamp: state.next_timestamp(),
        })
    }

    /// Sets item `stream/group/item` to `value`.
    ///
    /// # Errors
    ///
    /// [`StateError::Limit`] for a bad name or a value past the limits;
    /// [`StateError::Publish`] when the broker refused the change (nothing
    /// changed then).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let write = store.set("todos", "ann", "t1", json!({"title": "milk"})).await?;
    /// assert_eq!((write.old, write.changed), (None, true));
    /// let write = store.set("todos", "ann", "t1", json!({"title": "oat milk"})).await?;
    /// assert_eq!(write.old, Some(json!({"title": "milk"})));
    /// assert_eq!(write.rev.rev, 2);
    /// # Ok(()) }
    /// ```
    pub async fn set(
        &self,
        stream: &str,
        group: &str,
        item: &str,
        value: Value,
    ) -> Result<Write, StateError> {
        self.inner.limits.check_value(&value)?;
        self.write(stream, group, item, None, |_| Ok(Some(value.clone())))
            .await
    }

    /// Deletes item `stream/group/item` (a write that changes nothing when
    /// it is absent).
    ///
    /// # Errors
    ///
    /// As for [`set`](Self::set).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::Store;
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// let write = store.delete("todos", "ann", "t1").await?;
    /// assert_eq!((write.old, write.new, write.rev.rev), (Some(json!("milk")), None, 2));
    /// assert!(!store.delete("todos", "ann", "t1").await?.changed); // gone already
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, stream: &str, group: &str, item: &str) -> Result<Write, StateError> {
        self.write(stream, group, item, None, |_| Ok(None)).await
    }

    /// Applies `ops` to item `stream/group/item`, all or nothing; with
    /// `if_rev`, only if the group is at that revision.
    ///
    /// # Errors
    ///
    /// [`StateError::Op`] naming the failing operation (nothing changed);
    /// [`StateError::RevisionMismatch`]; as for [`set`](Self::set).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{StateError, Store, UpdateOp};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let rev = store.set("votes", "poll1", "yes", json!(0)).await?.rev;
    /// let bump = [UpdateOp::Increment { path: vec![], by: 1.into() }];
    /// let write = store.update("votes", "poll1", "yes", &bump, Some(&rev)).await?;
    /// assert_eq!((write.new, write.rev.rev), (Some(json!(1)), 2));
    /// // Another write came first: the stale revision is refused.
    /// let stale = store.update("votes", "poll1", "yes", &bump, Some(&rev)).await;
    /// assert!(matches!(stale, Err(StateError::RevisionMismatch { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        stream: &str,
        group: &str,
        item: &str,
        ops: &[UpdateOp],
        if_rev: Option<&Revision>,
    ) -> Result<Write, StateError> {
        let limits = self.inner.limits;
        self.write(stream, group, item, if_rev, |old| {
            Ok(Some(ops::apply(old, ops, &limits)?))
        })
        .await
    }

    /// Sends a custom event `event_type` with `data` to the subscribers of
    /// `stream/group` (and of `item`, when given): not stored, but placed in
    /// the group's sequence, so resuming subscribers get it too.
    ///
    /// # Errors
    ///
    /// As for [`set`](Self::set).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{Store, WatchEvent};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// let mut watcher = store.watch("chat", "room1", None, None)?;
    /// # watcher.next().await; // the sync
    /// let rev = store.send("chat", "room1", None, "typing", json!({"user": "ann"})).await?;
    /// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
    /// assert_eq!(delta.rev(), rev);
    /// assert_eq!(delta.value()["event"], "typing");
    /// assert!(store.list("chat", "room1").await?.is_empty()); // not stored
    /// # Ok(()) }
    /// ```
    pub async fn send(
        &self,
        stream: &str,
        group: &str,
        item: Option<&str>,
        event_type: &str,
        data: Value,
    ) -> Result<Revision, StateError> {
        if let Some(item) = item {
            self.inner.limits.check_name(item)?;
        }
        self.inner.limits.check_name(event_type)?;
        self.inner.limits.check_value(&data)?;
        let group = self.group(stream, group)?;
        let change = |timestamp| Change {
            kind: ChangeKind::Event,
            stream: group.stream.to_string(),
            group: group.name.to_string(),
            item: item.map(str::to_owned),
            old: None,
            new: None,
            event_type: Some(event_type.to_owned()),
            data: Some(data.clone()),
            rev: Revision::default(),
            timestamp,
        };
        if let Some(keyed) = self.keyed() {
            return self.shared_send(&**keyed, &group, change).await;
        }
        let mut state = group.state.lock().await;
        let timestamp = state.next_timestamp();
        let rev = self.publish(&group, &mut state, change(timestamp)).await?;
        Ok(rev)
    }

    /// The write of every kind: `make` turns the old value into the new one
    /// (`None`: absent) under the group's lock (more than once on a shared
    /// backend, when another process wrote first).
    async fn write(
        &self,
        stream: &str,
        group: &str,
        item: &str,
        if_rev: Option<&Revision>,
        make: impl Fn(Option<&Value>) -> Result<Option<Value>, StateError>,
    ) -> Result<Write, StateError> {
        self.inner.limits.check_name(item)?;
        let group = self.group(stream, group)?;
        if let Some(keyed) = self.keyed() {
            return self
                .shared_write(&**keyed, &group, item, if_rev, make)
                .await;
        }
        let mut state = group.state.lock().await;
        let current = Revision::from_position(state.position.as_ref());
        current.check(if_rev)?;
        let old = state.items.get(item).cloned();
        let new = make(old.as_ref())?;
        if new == old {
            return Ok(Write {
                old,
                new,
                rev: current,
                changed: false,
            });
        }
        let timestamp = state.next_timestamp();
        let change = group.item_change(item, &old, &new, timestamp);
        let rev = self.publish(&group, &mut state, change).await?;
        match &new {
            Some(value) => {
                state.items.insert(item.to_owned(), value.clone());
            }
            None => {
                state.items.remove(item);
            }
        }
        self.index_group(&group, !state.items.is_empty());
        Ok(Write {
            old,
            new,
            rev,
            changed: true,
        })
    }

    /// Publishes `change` on the group's channel (the lock held: revisions
    /// follow the order of changes), then hands it to the triggers.
    async fn publish(
        &self,
        group: &Group,
        state: &mut GroupState,
        mut change: Change,
    ) -> Result<Revision, StateError> {
        let publication = Publication::new(change.wire_json()).event(change.kind.as_str());
        let position = self
            .inner
            .broker
            .publish(&group.channel, publication)
            .await?;
        let rev = Revision::from_position(Some(&position));
        state.position = Some(position);
        change.rev = rev.clone();
        self.hand_to_triggers(change);
        Ok(rev)
    }

    /// Queues a made change for the triggers (in the order changes are
    /// made), when there are any.
    pub(super) fn hand_to_triggers(&self, change: Change) {
        if self.inner.triggers.any() {
            let _ = self.inner.changes.send(change);
        }
    }

    fn index_group(&self, group: &Group, holds_items: bool) {
        let mut streams = lock(&self.inner.streams);
        if holds_items {
            streams
                .entry(group.stream.to_string())
                .or_default()
                .insert(group.name.to_string());
        } else if let Some(groups) = streams.get_mut(&*group.stream) {
            groups.remove(&*group.name);
            if groups.is_empty() {
                streams.remove(&*group.stream);
            }
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("groups", &lock(&self.inner.groups).len())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}
