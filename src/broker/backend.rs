//! [`Backend`]: where a broker's messages get their positions, are kept for
//! replay, and travel between processes. [`MemoryBackend`] is the embedded
//! default; a distributed backend (Redis) implements the same trait.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
};

use super::{
    error::{BackendError, PublishError},
    keyed::KeyedItems,
    message::{Message, Position, Publication},
    presence::Member,
    registry::Registry,
};

/// A boxed future that can cross threads.
///
/// # Example
///
/// ```
/// use rill::broker::{BackendError, BoxFuture, Position};
///
/// // What a backend returns: already resolved for an in-process store,
/// // a real future for a network round trip.
/// fn no_position() -> BoxFuture<Result<Option<Position>, BackendError>> {
///     Box::pin(async { Ok(None) })
/// }
/// ```
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a subscriber resumes a channel from.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use rill::broker::{Delivery, Message, Metadata, Offer, Sink};
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
/// #     fn position(&self, _: &str, _: &rill::broker::Position) {}
/// #     fn close(&self) {}
/// #     fn metadata(&self) -> &Metadata { &self.metadata }
/// # }
/// use rill::broker::{Broker, Position, Publication, Since, SubscribeOptions};
///
/// let broker = Broker::new();
/// let seen = broker.publish("news", Publication::new("a")).await?;
/// broker.publish("news", Publication::new("b")).await?;
/// // A client's `Last-Event-ID`: `0` for everything, else a position.
/// let last_event_id = seen.to_string();
/// let since = match last_event_id.as_str() {
///     "0" => Since::Start,
///     id => Since::After(id.parse::<Position>()?),
/// };
/// let recorder = Arc::new(Recorder::default());
/// broker.subscribe(recorder.clone(), SubscribeOptions::default()).join("news", Some(since))?;
/// assert_eq!(recorder.data(), ["b"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Everything the history still holds (a client that asks for the whole
    /// history, `Last-Event-ID: 0`).
    Start,
    /// Everything after this position.
    After(Position),
}

/// What a history read found.
///
/// # Example
///
/// ```
/// use rill::broker::History;
///
/// /// What a Redis backend would answer when the stream was trimmed past
/// /// the client's position.
/// fn after_trim(kept: Vec<std::sync::Arc<rill::broker::Message>>, trimmed: bool) -> History {
///     if trimmed { History::Reset(kept) } else { History::Continuous(kept) }
/// }
/// assert!(matches!(after_trim(Vec::new(), true), History::Reset(m) if m.is_empty()));
/// ```
#[derive(Debug, Clone)]
pub enum History {
    /// Every message after the position asked for, in order: the subscriber
    /// continues exactly.
    Continuous(Vec<Arc<Message>>),
    /// The position asked for belongs to another epoch, is older than what
    /// the history holds, or lies ahead of it: continuity is lost. Here is
    /// what the history holds, in order.
    Reset(Vec<Arc<Message>>),
}

/// Storage of history and delivery between processes, behind a broker.
///
/// The contract:
///
/// * [`publish`](Self::publish) assigns the next position of the channel
///   (offsets 1, 2, 3, … within an epoch), keeps the message for
///   [`history`](Self::history), and hands it to the [`Inbox`] of every
///   broker [listening](Self::listen) to the channel — this process's
///   included — in position order per channel.
/// * When the backend may have missed messages (its connection to other
///   processes dropped, say), it calls [`Inbox::resync`]: local subscribers
///   then catch up from [`history`](Self::history).
/// * Presence is kept per channel, by member id.
///
/// Methods return boxed futures so the trait stays object-safe; an
/// in-process backend returns ready ones.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::broker::{
///     Backend, BackendError, BoxFuture, Broker, Epoch, History, Inbox, Member, Message, Position,
///     Publication, PublishError, Since,
/// };
/// use std::{collections::HashMap, sync::{Arc, Mutex, OnceLock}};
///
/// /// Delivers within this process and keeps no history: the skeleton of a
/// /// Redis backend.
/// #[derive(Default)]
/// struct NoHistory { inbox: OnceLock<Inbox>, tops: Mutex<HashMap<String, u64>> }
///
/// impl Backend for NoHistory {
///     fn attach(&self, inbox: Inbox) {
///         let _ = self.inbox.set(inbox);
///     }
///     fn publish(&self, channel: &str, publication: Publication) -> BoxFuture<Result<Position, PublishError>> {
///         let mut tops = self.tops.lock().expect("not poisoned");
///         let top = tops.entry(channel.to_owned()).or_insert(0);
///         *top += 1;
///         let position = Position::new(Epoch::from_number(1), *top);
///         if let Some(inbox) = self.inbox.get() {
///             inbox.deliver(Arc::new(Message::new(channel.into(), position.clone(), publication)));
///         }
///         Box::pin(async move { Ok(position) })
///     }
/// #     fn send_ephemeral(&self, message: Arc<Message>) {
/// #         if let Some(inbox) = self.inbox.get() { inbox.deliver(message) }
/// #     }
/// #     fn position(&self, _: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
/// #         Box::pin(async { Ok(None) })
/// #     }
/// #     fn history(&self, _: &str, _: &Since) -> BoxFuture<Result<History, BackendError>> {
/// #         Box::pin(async { Ok(History::Continuous(Vec::new())) })
/// #     }
/// #     fn listen(&self, _: &str) {}
/// #     fn unlisten(&self, _: &str) {}
/// #     fn presence_add(&self, _: &str, _: Member) {}
/// #     fn presence_refresh(&self, _: &str, _: &str) {}
/// #     fn presence_remove(&self, _: &str, _: &str) {}
/// #     fn presence(&self, _: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
/// #         Box::pin(async { Ok(Vec::new()) })
/// #     }
/// # }
///
/// let broker = Broker::builder().backend(Arc::new(NoHistory::default())).build();
/// let position = broker.publish("news", Publication::new("hi")).await?;
/// assert_eq!(position.to_string(), "1-1");
/// # Ok(())
/// # }
/// ```
pub trait Backend: Send + Sync + 'static {
    /// Connects the backend to its broker's inbox; called once, when the
    /// broker is built.
    fn attach(&self, inbox: Inbox);

    /// Publishes on `channel`: assigns the position, keeps the message, and
    /// delivers it (see the trait's contract). Resolves to the position.
    fn publish(
        &self,
        channel: &str,
        publication: Publication,
    ) -> BoxFuture<Result<Position, PublishError>>;

    /// Delivers a message that is not kept and has no place in the
    /// channel's order (a presence change) to every listening broker.
    fn send_ephemeral(&self, message: Arc<Message>);

    /// The last position of `channel` now (`None` if the backend has none:
    /// nothing was ever published there, and it keeps no epoch for it).
    fn position(&self, channel: &str) -> BoxFuture<Result<Option<Position>, BackendError>>;

    /// The messages of `channel` after `since`.
    fn history(&self, channel: &str, since: &Since) -> BoxFuture<Result<History, BackendError>>;

    /// This broker has local subscribers on `channel` (from its first one).
    fn listen(&self, channel: &str);

    /// This broker has no local subscriber left on `channel`.
    fn unlisten(&self, channel: &str);

    /// Adds (or replaces) a member of `channel`'s presence.
    fn presence_add(&self, channel: &str, member: Member);

    /// Keeps a member alive in backends that expire members (called
    /// periodically for every local member); the in-memory backend keeps
    /// members until they are removed.
    fn presence_refresh(&self, channel: &str, member_id: &str);

    /// Removes a member of `channel`'s presence.
    fn presence_remove(&self, channel: &str, member_id: &str);

    /// The members of `channel` now.
    fn presence(&self, channel: &str) -> BoxFuture<Result<Vec<Member>, BackendError>>;

    /// Whether other processes share this backend. Then a subscriber that
    /// joins without a position starts at the channel's position read when
    /// it joins and catches up from there (publications can reach the
    /// backend before this process's subscription to the channel is in
    /// place), and a hub reports its figures with
    /// [`report_stats`](Self::report_stats) and sums everyone's for its
    /// stats. The default: no, the backend is this process's own.
    fn shared(&self) -> bool {
        false
    }

    /// Records this process's figures (a JSON object) under `node`, for
    /// [`stats_reports`](Self::stats_reports) on every process; kept a few
    /// seconds unless reported again. The default keeps nothing.
    fn report_stats(&self, node: &str, json: String) {
        let _ = (node, json);
    }

    /// The figures every process reported recently, its own included. The
    /// default: none.
    fn stats_reports(&self) -> BoxFuture<Result<Vec<String>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Keeps `value` under `key` for `ttl`, for any process sharing this
    /// backend to [`unstash`](Self::unstash) — an ActionCable session
    /// parked for its client to restore on another process. Resolves once
    /// it is kept. The default keeps nothing: a backend of one process has
    /// no one to hand it to.
    fn stash(
        &self,
        key: &str,
        value: String,
        ttl: std::time::Duration,
    ) -> BoxFuture<Result<(), BackendError>> {
        let _ = (key, value, ttl);
        Box::pin(async { Ok(()) })
    }

    /// Takes what was [stashed](Self::stash) under `key`: reads and removes
    /// it in one step, so one process at most gets it. The default: nothing.
    fn unstash(&self, key: &str) -> BoxFuture<Result<Option<String>, BackendError>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// The items this backend keeps under channels for every process (the
    /// keyed state store's, on a shared backend). The default: none — the
    /// store keeps its items in its process.
    fn keyed(&self) -> Option<Arc<dyn KeyedItems>> {
        None
    }
}

/// A broker's inbox: where its backend delivers messages and reports lost
/// contact. Holds the broker weakly: a backend outliving its broker
/// delivers nowhere.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use rill::broker::{
/// #     Backend, BackendError, BoxFuture, Broker, Epoch, History, Inbox, Member, Message, Position,
/// #     Publication, PublishError, Since,
/// # };
/// # use std::{collections::HashMap, sync::{Arc, Mutex, OnceLock}};
/// #
/// # /// Delivers within this process and keeps no history: the skeleton of a
/// # /// Redis backend.
/// # #[derive(Default)]
/// # struct NoHistory { inbox: OnceLock<Inbox>, tops: Mutex<HashMap<String, u64>> }
/// #
/// # impl Backend for NoHistory {
/// #     fn attach(&self, inbox: Inbox) {
/// #         let _ = self.inbox.set(inbox);
/// #     }
/// #     fn publish(&self, channel: &str, publication: Publication) -> BoxFuture<Result<Position, PublishError>> {
/// #         let mut tops = self.tops.lock().expect("not poisoned");
/// #         let top = tops.entry(channel.to_owned()).or_insert(0);
/// #         *top += 1;
/// #         let position = Position::new(Epoch::from_number(1), *top);
/// #         if let Some(inbox) = self.inbox.get() {
/// #             inbox.deliver(Arc::new(Message::new(channel.into(), position.clone(), publication)));
/// #         }
/// #         Box::pin(async move { Ok(position) })
/// #     }
/// #     fn send_ephemeral(&self, message: Arc<Message>) {
/// #         if let Some(inbox) = self.inbox.get() { inbox.deliver(message) }
/// #     }
/// #     fn position(&self, _: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
/// #         Box::pin(async { Ok(None) })
/// #     }
/// #     fn history(&self, _: &str, _: &Since) -> BoxFuture<Result<History, BackendError>> {
/// #         Box::pin(async { Ok(History::Continuous(Vec::new())) })
/// #     }
/// #     fn listen(&self, _: &str) {}
/// #     fn unlisten(&self, _: &str) {}
/// #     fn presence_add(&self, _: &str, _: Member) {}
/// #     fn presence_refresh(&self, _: &str, _: &str) {}
/// #     fn presence_remove(&self, _: &str, _: &str) {}
/// #     fn presence(&self, _: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
/// #         Box::pin(async { Ok(Vec::new()) })
/// #     }
/// # }
///
/// // The broker hands its inbox to the backend once, when it is built:
/// let backend = Arc::new(NoHistory::default());
/// let broker = Broker::builder().backend(backend.clone()).build();
/// assert!(backend.inbox.get().is_some());
/// # drop(broker);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Inbox {
    registry: Weak<Registry>,
}

impl Inbox {
    pub(crate) fn new(registry: &Arc<Registry>) -> Self {
        Inbox {
            registry: Arc::downgrade(registry),
        }
    }

    /// Delivers `message` to this broker's subscribers of its channel. Per
    /// channel, messages must arrive in position order; a message whose
    /// offset does not follow the last one delivered makes the broker catch
    /// its subscribers up from history.
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
    /// # use rill::broker::{Backend, BackendError, BoxFuture, Broker, Epoch, History, Inbox, Member, Publication, PublishError, Since, SubscribeOptions};
    /// # use std::{collections::HashMap, sync::OnceLock};
    /// #
    /// # /// Delivers within this process and keeps no history: the skeleton of a
    /// # /// Redis backend.
    /// # #[derive(Default)]
    /// # struct NoHistory { inbox: OnceLock<Inbox>, tops: Mutex<HashMap<String, u64>> }
    /// #
    /// # impl Backend for NoHistory {
    /// #     fn attach(&self, inbox: Inbox) {
    /// #         let _ = self.inbox.set(inbox);
    /// #     }
    /// #     fn publish(&self, channel: &str, publication: Publication) -> BoxFuture<Result<Position, PublishError>> {
    /// #         let mut tops = self.tops.lock().expect("not poisoned");
    /// #         let top = tops.entry(channel.to_owned()).or_insert(0);
    /// #         *top += 1;
    /// #         let position = Position::new(Epoch::from_number(1), *top);
    /// #         if let Some(inbox) = self.inbox.get() {
    /// #             inbox.deliver(Arc::new(Message::new(channel.into(), position.clone(), publication)));
    /// #         }
    /// #         Box::pin(async move { Ok(position) })
    /// #     }
    /// #     fn send_ephemeral(&self, message: Arc<Message>) {
    /// #         if let Some(inbox) = self.inbox.get() { inbox.deliver(message) }
    /// #     }
    /// #     fn position(&self, _: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
    /// #         Box::pin(async { Ok(None) })
    /// #     }
    /// #     fn history(&self, _: &str, _: &Since) -> BoxFuture<Result<History, BackendError>> {
    /// #         Box::pin(async { Ok(History::Continuous(Vec::new())) })
    /// #     }
    /// #     fn listen(&self, _: &str) {}
    /// #     fn unlisten(&self, _: &str) {}
    /// #     fn presence_add(&self, _: &str, _: Member) {}
    /// #     fn presence_refresh(&self, _: &str, _: &str) {}
    /// #     fn presence_remove(&self, _: &str, _: &str) {}
    /// #     fn presence(&self, _: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
    /// #         Box::pin(async { Ok(Vec::new()) })
    /// #     }
    /// # }
    ///
    /// let backend = Arc::new(NoHistory::default());
    /// let broker = Broker::builder().backend(backend.clone()).build();
    /// let recorder = Arc::new(Recorder::default());
    /// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    /// subscription.join("news", None)?;
    /// // A message from another process, as a Redis subscriber receives it:
    /// let position = Position::new(Epoch::from_number(1), 1);
    /// let message = Message::new("news".into(), position, Publication::new("from elsewhere"));
    /// if let Some(inbox) = backend.inbox.get() {
    ///     inbox.deliver(Arc::new(message));
    /// }
    /// assert_eq!(recorder.data(), ["from elsewhere"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn deliver(&self, message: Arc<Message>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.deliver(message);
        }
    }

    /// Says that messages may have been missed — on `channel`, or on every
    /// channel with `None` — so local subscribers catch up from history.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Inbox;
    ///
    /// /// Called by a backend when its connection to Redis came back: messages
    /// /// may have been published meanwhile, so every channel catches up.
    /// fn on_reconnected(inbox: &Inbox) {
    ///     inbox.resync(None);
    /// }
    /// ```
    pub fn resync(&self, channel: Option<&str>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.resync(channel);
        }
    }

    /// [`resync`](Self::resync) before returning: every live subscriber is
    /// catching up (buffering) when it returns. For a backend's own task
    /// that holds no lock the broker could need (not from inside
    /// [`Backend::publish`], which may run under the broker's locks).
    #[cfg(feature = "redis")]
    pub(crate) fn resync_now(&self, channel: Option<&str>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.resync_now(channel);
        }
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("attached", &(self.registry.strong_count() > 0))
            .finish()
    }
}
