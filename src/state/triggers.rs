//! [`Change`] — what a write or a custom event did — and the triggers that
//! run after changes: one task runs them, one change at a time, in the
//! order the changes were made (so per group in revision order); a trigger
//! may write to the store, its own group included.

use serde_json::Value;
use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, RwLock},
};
use tokio::sync::mpsc;

use super::store::Revision;
use crate::error::BoxError;

/// What kind of change.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{ChangeKind, Store, WatchEvent};
/// use serde_json::json;
///
/// let store = Store::new();
/// let mut watcher = store.watch("todos", "ann", None, None)?;
/// # watcher.next().await; // the sync
/// store.set("todos", "ann", "t1", json!("milk")).await?;
/// let Some(WatchEvent::Change(delta)) = watcher.next().await else { panic!() };
/// assert_eq!(delta.kind(), ChangeKind::Create);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// An item appeared.
    Create,
    /// An item's value changed.
    Update,
    /// An item was deleted.
    Delete,
    /// A custom event ([`Store::send`](super::Store::send)), not stored.
    Event,
}

impl ChangeKind {
    /// `"create"`, `"update"`, `"delete"` or `"event"`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::ChangeKind;
    ///
    /// // The SSE event name of a change (`event: update`).
    /// assert_eq!(ChangeKind::Update.as_str(), "update");
    /// assert_eq!(ChangeKind::Event.as_str(), "event");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Event => "event",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<ChangeKind> {
        Some(match text {
            "create" => ChangeKind::Create,
            "update" => ChangeKind::Update,
            "delete" => ChangeKind::Delete,
            "event" => ChangeKind::Event,
            _ => return None,
        })
    }
}

/// A change of a group, as triggers see it.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
/// use rill::state::{ChangeFilter, ChangeKind, Store};
/// use serde_json::json;
///
/// let store = Store::new();
/// let (seen, mut changes) = tokio::sync::mpsc::unbounded_channel();
/// store.on_change(ChangeFilter::stream("todos"), move |change| {
///     let _ = seen.send(change);
///     async { Ok(()) }
/// });
/// store.set("todos", "ann", "t1", json!("milk")).await?;
/// let change = changes.recv().await.unwrap();
/// assert_eq!((change.kind, change.item.as_deref()), (ChangeKind::Create, Some("t1")));
/// assert_eq!((change.old, change.new), (None, Some(json!("milk"))));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Create, update, delete or a custom event.
    pub kind: ChangeKind,
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// The item (`None` for an event sent to the whole group).
    pub item: Option<String>,
    /// The value before (writes).
    pub old: Option<Value>,
    /// The value after (writes).
    pub new: Option<Value>,
    /// The custom event's type (events).
    pub event_type: Option<String>,
    /// The custom event's data (events).
    pub data: Option<Value>,
    /// The group's revision with this change.
    pub rev: Revision,
    /// Milliseconds since the Unix epoch, strictly increasing per group.
    pub timestamp: u64,
}

impl Change {
    /// The change as it travels on the broker: `{"id":…,"type":…,…,"ts":…}`
    /// with `id` first (item subscribers recognise theirs by its prefix);
    /// `data` is the new value (the old one for a delete, the event's data
    /// for an event).
    pub(crate) fn wire_json(&self) -> String {
        let mut out = String::from("{");
        if let Some(item) = &self.item {
            out.push_str(&item_prefix(item)[1..]);
        }
        out.push_str(r#""type":""#);
        out.push_str(self.kind.as_str());
        out.push('"');
        if let Some(event_type) = &self.event_type {
            out.push_str(r#","event":"#);
            out.push_str(&Value::String(event_type.clone()).to_string());
        }
        let data = match self.kind {
            ChangeKind::Create | ChangeKind::Update => self.new.as_ref(),
            ChangeKind::Delete => self.old.as_ref(),
            ChangeKind::Event => self.data.as_ref(),
        };
        out.push_str(r#","data":"#);
        out.push_str(&data.unwrap_or(&Value::Null).to_string());
        out.push_str(r#","ts":"#);
        out.push_str(&self.timestamp.to_string());
        out.push('}');
        out
    }
}

/// How a change on the wire starts when it concerns `item`:
/// `{"id":"<item>",`.
pub(crate) fn item_prefix(item: &str) -> String {
    format!("{{\"id\":{},", Value::String(item.to_owned()))
}

/// Which changes a trigger sees.
///
/// # Example
///
/// ```
/// use rill::state::ChangeFilter;
///
/// let filter = ChangeFilter::stream("todos").group("ann").item("t1");
/// assert_eq!(filter.stream, "todos");
/// assert_eq!((filter.group.as_deref(), filter.item.as_deref()), (Some("ann"), Some("t1")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// The stream.
    pub stream: String,
    /// Only this group, when given.
    pub group: Option<String>,
    /// Only this item, when given.
    pub item: Option<String>,
}

impl ChangeFilter {
    /// Every change of `stream`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::ChangeFilter;
    ///
    /// let every_todo = ChangeFilter::stream("todos");
    /// assert_eq!((every_todo.group, every_todo.item), (None, None));
    /// ```
    pub fn stream(stream: impl Into<String>) -> Self {
        ChangeFilter {
            stream: stream.into(),
            ..ChangeFilter::default()
        }
    }

    /// Only group `group`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::ChangeFilter;
    ///
    /// let anns_todos = ChangeFilter::stream("todos").group("ann");
    /// assert_eq!(anns_todos.group.as_deref(), Some("ann"));
    /// ```
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Only item `item`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::state::ChangeFilter;
    ///
    /// let one_todo = ChangeFilter::stream("todos").group("ann").item("t1");
    /// assert_eq!(one_todo.item.as_deref(), Some("t1"));
    /// ```
    pub fn item(mut self, item: impl Into<String>) -> Self {
        self.item = Some(item.into());
        self
    }

    fn matches(&self, change: &Change) -> bool {
        self.stream == change.stream
            && self.group.as_ref().is_none_or(|g| *g == change.group)
            && self
                .item
                .as_ref()
                .is_none_or(|i| Some(i) == change.item.as_ref())
    }
}

type TriggerFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type TriggerFn = Arc<dyn Fn(Change) -> TriggerFuture + Send + Sync>;

/// The store's triggers and the task that runs them.
#[derive(Clone, Default)]
pub(crate) struct Triggers {
    list: Arc<RwLock<Vec<(ChangeFilter, TriggerFn)>>>,
    /// Taken by the task when it starts (at the first trigger).
    receiver: Arc<Mutex<Option<mpsc::UnboundedReceiver<Change>>>>,
}

impl Triggers {
    pub(crate) fn start(&self, receiver: mpsc::UnboundedReceiver<Change>) {
        *self.receiver.lock().unwrap_or_else(PoisonError::into_inner) = Some(receiver);
    }

    /// Whether any trigger is registered (changes are only queued then).
    pub(crate) fn any(&self) -> bool {
        !self
            .list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    pub(crate) fn add<F, Fut>(&self, filter: ChangeFilter, trigger: F)
    where
        F: Fn(Change) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let trigger: TriggerFn = Arc::new(move |change| Box::pin(trigger(change)));
        self.list
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((filter, trigger));
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(receiver) = receiver {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(run(self.list.clone(), receiver));
                }
                Err(_) => {
                    tracing::error!("state triggers need a tokio runtime: add them inside one");
                }
            }
        }
    }
}

/// Runs the triggers of each change, in order.
async fn run(
    list: Arc<RwLock<Vec<(ChangeFilter, TriggerFn)>>>,
    mut receiver: mpsc::UnboundedReceiver<Change>,
) {
    while let Some(change) = receiver.recv().await {
        let matching: Vec<TriggerFn> = list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(filter, _)| filter.matches(&change))
            .map(|(_, trigger)| trigger.clone())
            .collect();
        for trigger in matching {
            match crate::panic::catch_unwind(trigger(change.clone())).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "state trigger failed"),
                Err(payload) => tracing::error!(
                    panic = %crate::panic::message(payload.as_ref()),
                    "state trigger panicked"
                ),
            }
        }
    }
}
