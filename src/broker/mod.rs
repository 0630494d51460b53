//! The broker: one fan-out core for every transport.
//!
//! A publication is published once on a channel; the [`Backend`] gives it a
//! [`Position`] (an [`Epoch`] and an offset) and keeps it for replay; the
//! broker offers the resulting [`Message`] to every local subscriber of the
//! channel whose metadata matches its [`Filter`]. Subscribers are [`Sink`]s
//! — an SSE stream (the [hub](crate::hub)), a WebSocket connection (the
//! [named-event streams](crate::events)), an ActionCable subscription
//! (the [cable](crate::cable)) — that answer each offer without waiting:
//! queued, full (the [`SlowConsumer`] policy applies), or gone. A message
//! is encoded at most once per transport, and that encoding is shared by
//! every subscriber of the transport.
//!
//! * `message` — [`Publication`], [`Message`], [`Position`], [`Epoch`].
//! * `filter` — [`Filter`] and [`Metadata`].
//! * `sink` — [`Sink`], [`Offer`], [`Delivery`].
//! * `backend` — [`Backend`], [`Inbox`], [`History`], [`Since`].
//! * `memory` — [`MemoryBackend`], the embedded default.
//! * `registry` — local subscribers per channel, fan-out, catching up (its
//!   module doc states the lock order and the exactly-once argument).
//! * `handoff` — the queue between a channel's deliveries and its fan-out
//!   task (its rules are checked by the loom models in `loom_tests.rs`).
//! * `presence` — [`Member`], joins and leaves gathered per tick.
//! * `shards` — maps by channel name over many locks.
//! * `slab` — O(1) join and leave.
//! * `counter` — counters that threads bump without sharing a cache line.
//! * `error` — [`PublishError`], [`SubscribeError`], [`BackendError`].
//!
//! See [`docs/hub.md`](crate::guides::hub) for ids, epochs, resets and presence as clients see
//! them, and [`docs/architecture.md`](crate::guides::architecture) for the path of a published event.

mod backend;
mod counter;
mod error;
mod filter;
mod handoff;
mod keyed;
#[cfg(all(test, loom))]
mod loom_tests;
mod memory;
mod message;
mod presence;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod shards;
mod sink;
mod slab;

#[cfg(feature = "redis")]
pub use self::redis::{RedisBackend, RedisConfig};
pub use backend::{Backend, BoxFuture, History, Inbox, Since};
pub use error::{BackendError, PublishError, SubscribeError};
pub use filter::{Filter, Metadata};
pub use keyed::{
    Commit, Committed, ItemSelection, ItemWrite, ItemsRead, KeyedItems, PositionCheck,
};
pub use memory::MemoryBackend;
pub use message::{Epoch, Message, MessageKind, Position, PositionError, Publication};
pub use presence::Member;
pub(crate) use sink::offer_each;
pub use sink::{Delivery, Offer, Sink};

pub(crate) use message::{Encoding, KeyedEncoding};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use registry::{detached, lock, Joined, Registry, Subscriber};

/// The longest channel name, in bytes.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::broker::{Broker, Publication, PublishError, MAX_CHANNEL_NAME};
///
/// let broker = Broker::new();
/// let too_long = "x".repeat(MAX_CHANNEL_NAME + 1);
/// let refused = broker.publish(&too_long, Publication::new("hi")).await;
/// assert!(matches!(refused, Err(PublishError::InvalidChannel)));
/// # Ok(())
/// # }
/// ```
pub const MAX_CHANNEL_NAME: usize = 256;

/// Default messages kept per channel.
///
/// # Example
///
/// ```
/// use rill::broker::{Broker, DEFAULT_HISTORY};
///
/// assert_eq!(DEFAULT_HISTORY, 1000);
/// // A chat that replays the last 10,000 messages to a reconnecting client:
/// let broker = Broker::builder().history(DEFAULT_HISTORY * 10).build();
/// ```
pub const DEFAULT_HISTORY: usize = 1000;
/// Default bytes of history kept per channel.
///
/// # Example
///
/// ```
/// use rill::broker::{Broker, DEFAULT_HISTORY_BYTES};
///
/// assert_eq!(DEFAULT_HISTORY_BYTES, 1024 * 1024);
/// // Large documents: keep up to 16 MiB per channel.
/// let broker = Broker::builder().history_bytes(16 * DEFAULT_HISTORY_BYTES).build();
/// ```
pub const DEFAULT_HISTORY_BYTES: usize = 1024 * 1024;
/// Default age after which messages leave the history.
///
/// # Example
///
/// ```
/// use rill::broker::{Broker, DEFAULT_HISTORY_AGE};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_HISTORY_AGE, Duration::from_secs(10 * 60));
/// // Clients of a mobile app come back after a subway ride: keep an hour.
/// let broker = Broker::builder().history_age(DEFAULT_HISTORY_AGE * 6).build();
/// ```
pub const DEFAULT_HISTORY_AGE: Duration = Duration::from_secs(600);
/// Default cap on channels (with history or subscribers).
///
/// # Example
///
/// ```
/// use rill::broker::{Broker, DEFAULT_MAX_CHANNELS};
///
/// assert_eq!(DEFAULT_MAX_CHANNELS, 100_000);
/// let broker = Broker::builder().max_channels(DEFAULT_MAX_CHANNELS / 10).build();
/// ```
pub const DEFAULT_MAX_CHANNELS: usize = 100_000;
/// Default interval between two presence messages of a channel.
///
/// # Example
///
/// ```
/// use rill::broker::{Broker, DEFAULT_PRESENCE_INTERVAL};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_PRESENCE_INTERVAL, Duration::from_millis(250));
/// let broker = Broker::builder().presence_events(DEFAULT_PRESENCE_INTERVAL).build();
/// ```
pub const DEFAULT_PRESENCE_INTERVAL: Duration = Duration::from_millis(250);

/// What happens to a subscriber whose queue is full (it reads slower than
/// messages are published). Applies to that subscriber alone: the publisher
/// and the other subscribers never wait.
///
/// # Example
///
/// ```
/// use rill::broker::{SlowConsumer, SubscribeOptions};
///
/// assert_eq!(SlowConsumer::default(), SlowConsumer::Disconnect);
/// // A ticker where only the latest price matters: drop, don't disconnect.
/// let options = SubscribeOptions { slow_consumer: SlowConsumer::DropWithGap, ..Default::default() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// End its stream (cleanly, after what is queued). A client that
    /// reconnects with its last position gets what it missed from history:
    /// nothing is lost while the history reaches back far enough.
    #[default]
    Disconnect,
    /// Drop the messages that do not fit, and tell the subscriber how many
    /// before the next one that does.
    DropWithGap,
}

/// Configures a [`Broker`].
///
/// ```
/// use rill::broker::Broker;
/// use std::time::Duration;
///
/// let broker = Broker::builder()
///     .history(500)                           // messages kept per channel
///     .history_bytes(256 * 1024)              // and at most these bytes
///     .history_age(Duration::from_secs(300))  // and for at most 5 minutes
///     .max_channels(10_000)
///     .build();
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct BrokerBuilder {
    history: usize,
    history_bytes: usize,
    history_age: Duration,
    max_channels: usize,
    presence_events: bool,
    presence_interval: Duration,
    backend: Option<Arc<dyn Backend>>,
}

impl Default for BrokerBuilder {
    fn default() -> Self {
        BrokerBuilder {
            history: DEFAULT_HISTORY,
            history_bytes: DEFAULT_HISTORY_BYTES,
            history_age: DEFAULT_HISTORY_AGE,
            max_channels: DEFAULT_MAX_CHANNELS,
            presence_events: false,
            presence_interval: DEFAULT_PRESENCE_INTERVAL,
            backend: None,
        }
    }
}

impl BrokerBuilder {
    /// How many messages each channel keeps for replay (default 1000; 0
    /// keeps none). Applies to the in-memory backend.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, Since, SubscribeOptions};
    ///
    /// let broker = Broker::builder().history(2).build();
    /// for data in ["a", "b", "c"] {
    ///     broker.publish("news", Publication::new(data)).await?;
    /// }
    /// let recorder = Arc::new(Recorder::default());
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("news", Some(Since::Start))?; // replays what is kept
    /// assert_eq!(recorder.data(), ["b", "c"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn history(mut self, messages: usize) -> Self {
        self.history = messages;
        self
    }

    /// How many bytes of messages each channel keeps (default 1 MiB): a
    /// message larger than this is delivered live but not kept.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, Since, SubscribeOptions};
    ///
    /// let broker = Broker::builder().history_bytes(64 * 1024).build();
    /// broker.publish("files", Publication::new("x".repeat(100 * 1024))).await?; // live only
    /// broker.publish("files", Publication::new("small")).await?;
    /// let recorder = Arc::new(Recorder::default());
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("files", Some(Since::Start))?;
    /// assert_eq!(recorder.data(), ["small"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.history_bytes = bytes;
        self
    }

    /// How long a message stays in history (default 10 minutes).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, Since, SubscribeOptions};
    /// use std::time::Duration;
    ///
    /// let broker = Broker::builder().history_age(Duration::from_secs(60)).build();
    /// broker.publish("news", Publication::new("stale")).await?;
    /// tokio::time::advance(Duration::from_secs(61)).await;
    /// broker.publish("news", Publication::new("fresh")).await?;
    /// let recorder = Arc::new(Recorder::default());
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("news", Some(Since::Start))?;
    /// assert_eq!(recorder.data(), ["fresh"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age;
        self
    }

    /// The most channels that may exist at once — with history, or with
    /// subscribers (default 100,000). Past it, publishing on a new channel
    /// fails with [`PublishError::TooManyChannels`] and joining one with
    /// [`SubscribeError::TooManyChannels`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::broker::{Broker, Publication, PublishError};
    ///
    /// let broker = Broker::builder().max_channels(1).build();
    /// broker.publish("a", Publication::new("hi")).await?;
    /// let refused = broker.publish("b", Publication::new("hi")).await;
    /// assert!(matches!(refused, Err(PublishError::TooManyChannels { max: 1 })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_channels(mut self, channels: usize) -> Self {
        self.max_channels = channels;
        self
    }

    /// Sends joins and leaves as presence messages to the subscribers that
    /// ask for them, at most one per channel per `interval` (default
    /// 250 ms): a join and a leave within one interval cancel out.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, SubscribeOptions};
    /// use std::time::Duration;
    ///
    /// let broker = Broker::builder().presence_events(Duration::from_millis(10)).build();
    /// let sink = Arc::new(Recorder::default());
    /// let watcher = broker.subscribe(sink.clone(), SubscribeOptions { presence: true, ..Default::default() });
    /// watcher.join("doc-7", None)?;
    /// let editor = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
    /// editor.join("doc-7", None)?;
    /// tokio::time::sleep(Duration::from_millis(50)).await;
    /// assert!(!sink.data().is_empty()); // the joins, as presence messages
    /// # Ok(())
    /// # }
    /// ```
    pub fn presence_events(mut self, interval: Duration) -> Self {
        self.presence_events = true;
        self.presence_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Uses `backend` for positions, history, delivery between processes and
    /// presence, instead of the in-memory default (history limits then are
    /// the backend's).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Backend, Broker};
    /// use std::sync::Arc;
    ///
    /// /// The broker of every process, on one shared store.
    /// fn shared_broker(backend: Arc<dyn Backend>) -> Broker {
    ///     Broker::builder().backend(backend).build()
    /// }
    /// ```
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Builds the broker.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Broker;
    ///
    /// let broker = Broker::builder().history(100).build();
    /// assert_eq!(broker.stats(false).published, 0);
    /// ```
    pub fn build(self) -> Broker {
        let memory = self.backend.is_none().then(|| {
            Arc::new(MemoryBackend::new(
                memory::HistoryLimits {
                    messages: self.history,
                    bytes: self.history_bytes,
                    age: self.history_age,
                },
                self.max_channels,
            ))
        });
        let backend: Arc<dyn Backend> = match (self.backend, &memory) {
            (Some(backend), _) => backend,
            (None, Some(memory)) => memory.clone(),
            (None, None) => unreachable!("a memory backend is made when none is given"),
        };
        let node = Epoch::from_number(rand_u64() & 0xFF_FFFF_FFFF);
        let registry = Arc::new(Registry::new(
            backend.clone(),
            self.max_channels,
            node.as_str().into(),
            self.presence_events,
            self.presence_interval,
        ));
        backend.attach(Inbox::new(&registry));
        Broker {
            inner: Arc::new(BrokerInner { registry, memory }),
        }
    }
}

impl std::fmt::Debug for BrokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerBuilder")
            .field("history", &self.history)
            .field("history_bytes", &self.history_bytes)
            .field("history_age", &self.history_age)
            .field("max_channels", &self.max_channels)
            .field("presence_events", &self.presence_events)
            .finish_non_exhaustive()
    }
}

/// A fan-out core: channels, their history, their subscribers. Cheap to
/// clone; clones share everything.
///
/// ```
/// use rill::broker::{Broker, Publication};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::broker::PublishError> {
/// let broker = Broker::new();
/// let first = broker.publish("news", Publication::new("hello")).await?;
/// let second = broker.publish("news", Publication::new("again")).await?;
/// assert_eq!(second.epoch(), first.epoch());
/// assert_eq!(second.offset(), first.offset() + 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

struct BrokerInner {
    registry: Arc<Registry>,
    /// The in-memory backend, when it is the one (for its stats).
    memory: Option<Arc<MemoryBackend>>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new()
    }
}

impl Broker {
    /// The backend this broker runs on.
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.registry.backend
    }

    /// A broker with the defaults and the in-memory backend.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::broker::{Broker, Publication};
    ///
    /// let broker = Broker::new();
    /// let position = broker.publish("news", Publication::new("hello")).await?;
    /// assert_eq!(position.offset(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Broker {
        BrokerBuilder::default().build()
    }

    /// Configures a broker.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Broker;
    /// use std::time::Duration;
    ///
    /// let broker = Broker::builder()
    ///     .history(100)
    ///     .presence_events(Duration::from_millis(500))
    ///     .build();
    /// assert_eq!(broker.subscriber_count("news"), 0);
    /// ```
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Publishes on `channel`; resolves to the message's position once the
    /// backend has placed it (at once for the in-memory backend), after it
    /// was offered to every local subscriber.
    ///
    /// # Errors
    ///
    /// [`PublishError`]: an invalid channel name, too many channels, or the
    /// backend failed. Nothing was published then.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let recorder = Arc::new(Recorder::default());
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("news", None)?;
    /// let position = broker.publish("news", Publication::new("hello").event("note")).await?;
    /// assert_eq!(position.offset(), 1);
    /// assert_eq!(recorder.data(), ["hello"]); // offered before `publish` resolved
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish(
        &self,
        channel: &str,
        publication: Publication,
    ) -> Result<Position, PublishError> {
        let registry = &self.inner.registry;
        let position = registry.backend.publish(channel, publication).await?;
        registry.counters.published.add(1);
        Ok(position)
    }

    /// Publishes without waiting for the position, for synchronous code.
    /// With the in-memory backend the message is placed (its position
    /// taken) before it returns; on a runtime, the offer to local
    /// subscribers follows in a task, one per channel for everything
    /// published meanwhile — so a loop of detached publishes reaches each
    /// subscriber in a few large batches. Another backend continues the publication
    /// in a task (a failure then is logged).
    ///
    /// # Errors
    ///
    /// What can be known at once: an invalid channel name, too many channels
    /// (in-memory), or no tokio runtime to finish in.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::broker::{Broker, Publication};
    ///
    /// let broker = Broker::new();
    /// // From synchronous code, inside a runtime:
    /// broker.publish_detached("news", Publication::new("hello"))?;
    /// assert_eq!(broker.stats(false).published, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish_detached(
        &self,
        channel: &str,
        publication: Publication,
    ) -> Result<(), PublishError> {
        let registry = self.inner.registry.clone();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // A backend may do its work when asked or when polled: both count.
        let (publishing, polled) = detached(|| {
            let mut publishing = registry.backend.publish(channel, publication);
            let polled = publishing.as_mut().poll(&mut cx);
            (publishing, polled)
        });
        if let std::task::Poll::Ready(result) = polled {
            result?;
            registry.counters.published.add(1);
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| PublishError::Backend(BackendError::Unavailable(Box::new(e))))?;
        let channel = channel.to_owned();
        runtime.spawn(async move {
            match publishing.await {
                Ok(_) => {
                    registry.counters.published.add(1);
                }
                Err(error) => tracing::warn!(%channel, %error, "detached publish failed"),
            }
        });
        Ok(())
    }

    /// Offers at once what detached publishes left for a fan-out task on
    /// `channel`: a transport calls it before a message of its own to the
    /// same subscriber, so that what was published before is offered first.
    pub(crate) fn flush(&self, channel: &str) {
        self.inner.registry.flush(channel);
    }

    /// The items its backend keeps for every process, if it does (see
    /// [`Backend::keyed`]).
    pub(crate) fn keyed(&self) -> Option<Arc<dyn KeyedItems>> {
        self.inner.registry.backend.keyed()
    }

    /// A [`Commit`] through `keyed` (this broker's), counted as a
    /// publication when it is placed.
    pub(crate) async fn commit(
        &self,
        keyed: &dyn KeyedItems,
        channel: &str,
        commit: Commit,
    ) -> Result<Committed, PublishError> {
        let outcome = keyed.commit(channel, commit).await?;
        if let Committed::Placed(_) = outcome {
            self.inner.registry.counters.published.add(1);
        }
        Ok(outcome)
    }

    /// The messages of `channel` after `since` that its history holds.
    pub(crate) fn history(
        &self,
        channel: &str,
        since: &Since,
    ) -> BoxFuture<Result<History, BackendError>> {
        self.inner.registry.backend.history(channel, since)
    }

    /// A subscription of `sink`: empty until it [joins](BrokerSubscription::join)
    /// channels.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let recorder = Arc::new(Recorder::default()); // your transport's `Sink`
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("news", None)?;
    /// broker.publish("news", Publication::new("hello")).await?;
    /// assert_eq!(recorder.data(), ["hello"]);
    /// drop(subscription); // leaves every channel
    /// assert_eq!(broker.subscriber_count("news"), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self, sink: Arc<dyn Sink>, options: SubscribeOptions) -> BrokerSubscription {
        let subscriber =
            self.inner
                .registry
                .subscriber(sink, options.slow_consumer, options.presence);
        BrokerSubscription {
            registry: self.inner.registry.clone(),
            subscriber,
            joined: Mutex::default(),
        }
    }

    /// Local subscribers of `channel` now.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let subscription = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
    /// subscription.join("lobby", None)?;
    /// assert_eq!(broker.subscriber_count("lobby"), 1);
    /// subscription.leave("lobby");
    /// assert_eq!(broker.subscriber_count("lobby"), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.inner.registry.subscriber_count(channel)
    }

    /// Who is on `channel` (every process, with a distributed backend).
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the backend cannot tell.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let ada = Recorder::with(vec![("name".into(), "ada".into())]);
    /// let subscription = broker.subscribe(Arc::new(ada), SubscribeOptions::default());
    /// subscription.join("doc-7", None)?;
    /// let members = broker.presence("doc-7").await?;
    /// assert_eq!(members.len(), 1);
    /// assert_eq!(&*members[0].id, subscription.member_id());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn presence(&self, channel: &str) -> Result<Vec<Member>, BackendError> {
        self.inner.registry.backend.presence(channel).await
    }

    /// A snapshot of the broker's activity. Walks the channels one shard at a
    /// time (no lock is held across the walk); with `per_channel` off it only
    /// counts them.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let subscription = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
    /// subscription.join("news", None)?;
    /// broker.publish("news", Publication::new("hello")).await?;
    /// let stats = broker.stats(true);
    /// assert_eq!((stats.published, stats.delivered), (1, 1));
    /// assert_eq!(stats.channels, [("news".to_owned(), 1)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self, per_channel: bool) -> BrokerStats {
        let registry = &self.inner.registry;
        let c = &registry.counters;
        let mut channels = if per_channel {
            registry
                .channel_counts()
                .into_iter()
                .map(|(name, n)| (name.to_string(), n))
                .collect()
        } else {
            Vec::new()
        };
        channels.sort();
        BrokerStats {
            channels_with_subscribers: registry.channel_count(),
            channels_with_history: self.inner.memory.as_ref().map(|m| m.log_count()),
            channels,
            published: c.published.get(),
            delivered: c.delivered.get(),
            dropped: c.dropped.get(),
            slow_disconnects: c.slow_disconnects.get(),
            resets: c.resets.get(),
        }
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

/// How a subscription behaves.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Default)]
/// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
/// # impl Recorder {
/// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
/// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
/// # }
/// # impl Sink for Recorder {
/// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
/// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
/// #         Offer::Queued
/// #     }
/// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
/// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
/// #     fn position(&self, _: &str, _: &Position) {}
/// #     fn close(&self) {}
/// #     fn metadata(&self) -> &Metadata { &self.metadata }
/// # }
/// use rill::broker::{Broker, SlowConsumer, SubscribeOptions};
///
/// let broker = Broker::new();
/// let options = SubscribeOptions { slow_consumer: SlowConsumer::DropWithGap, presence: true };
/// let subscription = broker.subscribe(Arc::new(Recorder::default()), options);
/// subscription.join("prices", None)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// What happens when its queue is full.
    pub slow_consumer: SlowConsumer,
    /// Whether it receives presence messages (joins and leaves).
    pub presence: bool,
}

/// One subscriber's membership in channels: join and leave while it runs
/// (ActionCable's `stream_from` / `stop_stream_from`). Dropping it leaves
/// every channel.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Default)]
/// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
/// # impl Recorder {
/// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
/// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
/// # }
/// # impl Sink for Recorder {
/// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
/// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
/// #         Offer::Queued
/// #     }
/// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
/// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
/// #     fn position(&self, _: &str, _: &Position) {}
/// #     fn close(&self) {}
/// #     fn metadata(&self) -> &Metadata { &self.metadata }
/// # }
/// use rill::broker::{Broker, Publication, SubscribeOptions};
///
/// let broker = Broker::new();
/// let recorder = Arc::new(Recorder::default());
/// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
/// subscription.join("room:1", None)?;   // `stream_from "room:1"`
/// broker.publish("room:1", Publication::new("hi")).await?;
/// subscription.leave("room:1");         // `stop_stream_from "room:1"`
/// broker.publish("room:1", Publication::new("missed")).await?;
/// assert_eq!(recorder.data(), ["hi"]);
/// # Ok(())
/// # }
/// ```
pub struct BrokerSubscription {
    registry: Arc<Registry>,
    subscriber: Arc<Subscriber>,
    joined: Mutex<HashMap<Arc<str>, Joined>>,
}

impl BrokerSubscription {
    /// Joins `channel`. Without `since`, live messages only; with it, first
    /// everything after that position still in history (or a reset when
    /// continuity is lost), then live messages — each exactly once, in
    /// order. Joining a channel already joined does nothing.
    ///
    /// # Errors
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Publication, Since, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let first = broker.publish("news", Publication::new("seen")).await?;
    /// broker.publish("news", Publication::new("missed")).await?;
    /// // A client resuming after the last position it saw:
    /// let recorder = Arc::new(Recorder::default());
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("news", Some(Since::After(first)))?;
    /// assert_eq!(recorder.data(), ["missed"]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`SubscribeError`]: an invalid channel name, or too many channels.
    pub fn join(&self, channel: &str, since: Option<Since>) -> Result<(), SubscribeError> {
        let mut joined = lock(&self.joined);
        if joined.contains_key(channel) {
            return Ok(());
        }
        let place = self.registry.join(&self.subscriber, channel, since)?;
        joined.insert(channel.into(), place);
        Ok(())
    }

    /// Leaves `channel` (O(1)); whether it had joined it.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let subscription = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
    /// subscription.join("news", None)?;
    /// assert!(subscription.leave("news"));
    /// assert!(!subscription.leave("news")); // already left
    /// # Ok(())
    /// # }
    /// ```
    pub fn leave(&self, channel: &str) -> bool {
        let place = lock(&self.joined).remove(channel);
        match place {
            Some(place) => {
                self.registry.leave(&self.subscriber, &place);
                true
            }
            None => false,
        }
    }

    /// The channels joined, in no particular order.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let subscription = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
    /// subscription.join("a", None)?;
    /// subscription.join("b", None)?;
    /// let mut channels = subscription.channels();
    /// channels.sort();
    /// assert_eq!(channels, ["a", "b"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn channels(&self) -> Vec<String> {
        lock(&self.joined).keys().map(|c| c.to_string()).collect()
    }

    /// This subscriber's id among the members of its channels' presence.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let subscription = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
    /// subscription.join("doc-7", None)?;
    /// let members = broker.presence("doc-7").await?;
    /// assert_eq!(&*members[0].id, subscription.member_id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn member_id(&self) -> &str {
        &self.subscriber.member_id
    }
}

impl Drop for BrokerSubscription {
    fn drop(&mut self) {
        let joined = std::mem::take(&mut *lock(&self.joined));
        for place in joined.values() {
            self.registry.leave(&self.subscriber, place);
        }
    }
}

impl std::fmt::Debug for BrokerSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSubscription")
            .field("member_id", &self.member_id())
            .field("channels", &self.channels())
            .finish()
    }
}

/// A snapshot of a broker's activity.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::broker::{Broker, Publication};
///
/// let broker = Broker::new();
/// broker.publish("news", Publication::new("hello")).await?;
/// let stats = broker.stats(false);
/// assert_eq!(stats.published, 1);
/// assert_eq!(stats.channels_with_subscribers, 0);
/// assert_eq!(stats.channels_with_history, Some(1)); // the in-memory backend
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Channels with local subscribers.
    pub channels_with_subscribers: usize,
    /// Channels with a log (history or subscribers), for the in-memory
    /// backend.
    pub channels_with_history: Option<usize>,
    /// Subscribers per channel, by name (empty unless asked for).
    pub channels: Vec<(String, usize)>,
    /// Publications since the broker was built (by this process).
    pub published: u64,
    /// Messages handed to subscribers (one to three subscribers counts
    /// three).
    pub delivered: u64,
    /// Messages a subscriber's full queue could not take.
    pub dropped: u64,
    /// Subscribers disconnected for being too slow.
    pub slow_disconnects: u64,
    /// Resets sent to subscribers whose position was lost.
    pub resets: u64,
}

/// A random-enough number for node ids (not for secrets).
fn rand_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new()
        .hash_one((std::time::SystemTime::now(), std::process::id()))
}
