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
    message::{Message, Position, Publication},
    presence::Member,
    registry::Registry,
};

/// A boxed future that can cross threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a subscriber resumes a channel from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Everything the history still holds (a client that asks for the whole
    /// history, `Last-Event-ID: 0`).
    Start,
    /// Everything after this position.
    After(Position),
}

/// What a history read found.
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
}

/// A broker's inbox: where its backend delivers messages and reports lost
/// contact. Holds the broker weakly: a backend outliving its broker
/// delivers nowhere.
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
    pub fn deliver(&self, message: Arc<Message>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.deliver(message);
        }
    }

    /// Says that messages may have been missed — on `channel`, or on every
    /// channel with `None` — so local subscribers catch up from history.
    pub fn resync(&self, channel: Option<&str>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.resync(channel);
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
