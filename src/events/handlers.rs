//! What the server does with the events clients send: handlers by event
//! name ([`on`](super::EventStream::on), [`once`](super::EventStream::once),
//! [`off`](super::EventStream::off)), and [`Data`], an event's payload.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, PoisonError, RwLock,
    },
};

use super::{connection::Connection, error::EventError};
use crate::error::BoxError;

/// The data of an event a client sent: any JSON value, or none.
///
/// ```
/// # fn demo(data: rill::events::Data) -> Result<(), rill::events::EventError> {
/// #[derive(serde::Deserialize)]
/// struct Order { symbol: String, qty: u32 }
///
/// let order: Order = data.parse()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data(Option<Value>);

impl Data {
    /// Data from a JSON value (`None` or `null`: no data).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::Data;
    /// use serde_json::json;
    ///
    /// assert_eq!(Data::new(Some(json!("hi"))).as_str(), Some("hi"));
    /// assert!(Data::new(Some(json!(null))).is_absent()); // `null` is no data
    /// ```
    pub fn new(value: Option<Value>) -> Self {
        Data(value.filter(|v| !v.is_null()))
    }

    /// Whether the client sent no data (or `null`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::Data;
    ///
    /// // socket.emit("refresh") with no payload
    /// let data = Data::new(None);
    /// assert!(data.is_absent());
    /// assert_eq!(data.parse::<Option<u32>>(), Ok(None));
    /// ```
    pub fn is_absent(&self) -> bool {
        self.0.is_none()
    }

    /// The JSON value, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::Data;
    /// use serde_json::json;
    ///
    /// let data = Data::new(Some(json!({"room": "lobby", "text": "hi"})));
    /// let room = data.value().and_then(|v| v["room"].as_str());
    /// assert_eq!(room, Some("lobby"));
    /// ```
    pub fn value(&self) -> Option<&Value> {
        self.0.as_ref()
    }

    /// The JSON value, if any, by value.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::Data;
    /// use serde_json::json;
    ///
    /// let data = Data::new(Some(json!([1, 2, 3])));
    /// let Some(serde_json::Value::Array(items)) = data.into_value() else { panic!() };
    /// assert_eq!(items.len(), 3);
    /// ```
    pub fn into_value(self) -> Option<Value> {
        self.0
    }

    /// The data when it is a JSON string.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::Data;
    /// use serde_json::json;
    ///
    /// // socket.emit("nick", "ann")
    /// assert_eq!(Data::new(Some(json!("ann"))).as_str(), Some("ann"));
    /// assert_eq!(Data::new(Some(json!(42))).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_ref().and_then(Value::as_str)
    }

    /// The data as a `T` (absent data reads as `null`: fine for an
    /// `Option<T>` or `()`).
    ///
    /// # Errors
    ///
    /// [`EventError::Decode`] when it does not fit `T`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::Data;
    /// use serde_json::json;
    ///
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Order { symbol: String, qty: u32 }
    ///
    /// let data = Data::new(Some(json!({"symbol": "ACME", "qty": 10})));
    /// assert_eq!(data.parse::<Order>()?, Order { symbol: "ACME".into(), qty: 10 });
    /// # Ok::<(), rill::events::EventError>(())
    /// ```
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, EventError> {
        let value = self.0.clone().unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|error| EventError::Decode {
            reason: error.to_string(),
        })
    }
}

/// Data serializes as the JSON it holds (`null` when absent), so it can be
/// sent on as it came: `conn.send("echo", &data)`.
impl serde::Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(value) => value.serialize(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

/// Identifies one handler, to remove it alone with
/// [`EventStream::off_handler`](super::EventStream::off_handler).
///
/// # Example
///
/// ```
/// use rill::events::EventStream;
///
/// let stream = EventStream::new();
/// let logger = stream.on("chat", |conn, data| async move {
///     tracing::debug!(id = conn.id(), ?data, "chat");
///     Ok(())
/// });
/// stream.off_handler(logger); // quiet again; other "chat" handlers stay
/// assert!(!stream.has_handler("chat"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

/// A handler's future.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type HandlerFn = dyn Fn(Connection, Data) -> HandlerFuture + Send + Sync;

pub(crate) struct Entry {
    id: HandlerId,
    /// For `once`: set by the one dispatch that runs it.
    once: Option<AtomicBool>,
    run: Box<HandlerFn>,
}

impl Entry {
    /// The handler's future, unless it is a `once` handler that already
    /// ran (or is running) elsewhere.
    pub(crate) fn start(&self, conn: Connection, data: Data) -> Option<HandlerFuture> {
        if let Some(done) = &self.once {
            if done.swap(true, Ordering::AcqRel) {
                return None;
            }
        }
        Some((self.run)(conn, data))
    }
}

/// The handlers of a stream, by event name, in the order they were added.
#[derive(Default)]
pub(crate) struct Handlers {
    by_name: RwLock<HashMap<String, Vec<Arc<Entry>>>>,
    next_id: AtomicU64,
}

impl Handlers {
    pub(crate) fn add<F, Fut>(&self, name: &str, once: bool, handler: F) -> HandlerId
    where
        F: Fn(Connection, Data) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let id = HandlerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let entry = Arc::new(Entry {
            id,
            once: once.then(|| AtomicBool::new(false)),
            run: Box::new(move |conn, data| Box::pin(handler(conn, data))),
        });
        self.write().entry(name.to_owned()).or_default().push(entry);
        id
    }

    /// Removes every handler of `name`; how many there were.
    pub(crate) fn remove_all(&self, name: &str) -> usize {
        self.write().remove(name).map_or(0, |entries| entries.len())
    }

    /// Removes one handler; whether it was there.
    pub(crate) fn remove(&self, id: HandlerId) -> bool {
        let mut map = self.write();
        let mut found = false;
        map.retain(|_, entries| {
            let before = entries.len();
            entries.retain(|e| e.id != id);
            found |= entries.len() != before;
            !entries.is_empty()
        });
        found
    }

    /// The handlers of `name` now (a `once` handler is taken out here by
    /// the first dispatch that sees it).
    pub(crate) fn for_event(&self, name: &str) -> Vec<Arc<Entry>> {
        let entries: Vec<Arc<Entry>> = {
            let map = self.by_name.read().unwrap_or_else(PoisonError::into_inner);
            match map.get(name) {
                Some(entries) => entries.clone(),
                None => return Vec::new(),
            }
        };
        if entries.iter().any(|e| e.once.is_some()) {
            let mut map = self.write();
            if let Some(current) = map.get_mut(name) {
                current.retain(|e| e.once.is_none());
                if current.is_empty() {
                    map.remove(name);
                }
            }
        }
        entries
    }

    /// Whether any handler is registered for `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<Arc<Entry>>>> {
        self.by_name.write().unwrap_or_else(PoisonError::into_inner)
    }
}
