//! [`Sink`]: how a transport's subscriber receives messages from a broker.

use std::sync::Arc;

use super::{
    filter::Metadata,
    message::{Message, Position},
};

/// What became of an offer.
///
/// # Example
///
/// ```
/// use rill::broker::Offer;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// /// How a sink with a bounded queue answers an offer.
/// fn offer_into(queued: &AtomicUsize, capacity: usize, closed: bool) -> Offer {
///     if closed {
///         return Offer::Gone; // the broker forgets this subscriber
///     }
///     if queued.fetch_add(1, Ordering::AcqRel) >= capacity {
///         queued.fetch_sub(1, Ordering::AcqRel);
///         return Offer::Full; // the slow-consumer policy applies
///     }
///     Offer::Queued
/// }
/// let queued = AtomicUsize::new(0);
/// assert_eq!(offer_into(&queued, 1, false), Offer::Queued);
/// assert_eq!(offer_into(&queued, 1, false), Offer::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued for the subscriber.
    Queued,
    /// The subscriber's queue is full: the broker applies its
    /// [`SlowConsumer`](super::SlowConsumer) policy.
    Full,
    /// The subscriber is gone (its connection closed, or it was closed): the
    /// broker forgets it.
    Gone,
}

/// Why a message is offered.
///
/// # Example
///
/// ```
/// use rill::broker::{Delivery, Offer};
///
/// /// Replayed history is bounded by the history itself: take it whatever
/// /// the queue holds; bound live messages only.
/// fn answer(delivery: Delivery, queue_len: usize, capacity: usize) -> Offer {
///     match delivery {
///         Delivery::Replay => Offer::Queued,
///         Delivery::Live if queue_len < capacity => Offer::Queued,
///         Delivery::Live => Offer::Full,
///     }
/// }
/// assert_eq!(answer(Delivery::Replay, 10, 4), Offer::Queued);
/// assert_eq!(answer(Delivery::Live, 10, 4), Offer::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// As it is published: subject to the subscriber's queue bound.
    Live,
    /// From history, while the subscriber catches up: bounded by the
    /// history itself, so a sink should take it whatever its queue holds
    /// (and share the message's bytes rather than copy them).
    Replay,
}

/// A subscriber as a transport implements it: an SSE stream, a WebSocket,
/// an ActionCable connection. Every method is called under the broker's
/// lock of the message's channel and must not wait or call back into the
/// broker: queue, or say why not.
///
/// Messages of one channel are offered in position order; messages of
/// different channels in any order.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::broker::{Broker, Delivery, Message, Metadata, Offer, Position, Publication, Sink, SubscribeOptions};
/// use std::sync::{Arc, Mutex};
///
/// /// A transport that prints lines (a log tail, a TCP fan-out, …).
/// #[derive(Default)]
/// struct Lines { out: Mutex<Vec<String>>, metadata: Metadata }
///
/// impl Sink for Lines {
///     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
///         let line = format!("{} {}", message.position(), message.data());
///         self.out.lock().expect("not poisoned").push(line);
///         Offer::Queued
///     }
///     fn reset(&self, _channel: &str) -> Offer { Offer::Queued }
///     fn gap(&self, _channel: &str, _dropped: u64) -> Offer { Offer::Queued }
///     fn position(&self, _channel: &str, _position: &Position) {}
///     fn close(&self) {}
///     fn metadata(&self) -> &Metadata { &self.metadata }
/// }
///
/// let broker = Broker::new();
/// let lines = Arc::new(Lines::default());
/// let subscription = broker.subscribe(lines.clone(), SubscribeOptions::default());
/// subscription.join("news", None)?;
/// let position = broker.publish("news", Publication::new("hello")).await?;
/// assert_eq!(*lines.out.lock().expect("not poisoned"), [format!("{position} hello")]);
/// # Ok(())
/// # }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Offers one message (a publication or a presence change).
    fn offer(&self, message: &Arc<Message>, delivery: Delivery) -> Offer;

    /// Offers several messages of one channel, in order, as many calls of
    /// [`offer`](Self::offer) would. The fan-out hands a subscriber
    /// everything it is owed at once this way, so a sink can queue them
    /// under one lock and wake its writer once. Returns how many were
    /// queued before the first that was not, with that one's answer
    /// (`Queued` when all were); nothing after it may be queued.
    fn offer_many(&self, messages: &[&Arc<Message>], delivery: Delivery) -> (usize, Offer) {
        offer_each(self, messages, delivery)
    }

    /// Tells the subscriber that `channel` lost continuity: the position it
    /// resumed from belongs to another epoch, or is older than the history.
    /// What follows is the channel's retained history, then live messages.
    fn reset(&self, channel: &str) -> Offer;

    /// Tells the subscriber that `dropped` messages of `channel` did not fit
    /// its queue (the [`DropWithGap`](super::SlowConsumer::DropWithGap)
    /// policy), before the next one that does.
    fn gap(&self, channel: &str, dropped: u64) -> Offer;

    /// Tells the subscriber where it stands on `channel` without a message:
    /// where it started when it joined without a position (or after a reset
    /// with nothing retained). A transport that lets clients resume keeps it
    /// with the positions of the messages it delivered.
    fn position(&self, channel: &str, position: &Position);

    /// `channel`, joined with a position, has caught up: everything its
    /// history held after that position (or after a [`reset`](Self::reset))
    /// was offered, and live messages follow. Called after those offers,
    /// under the same lock. Nothing to do by default.
    fn caught_up(&self, channel: &str) {
        let _ = channel;
    }

    /// Ends the subscriber's stream from the broker's side (the
    /// [`Disconnect`](super::SlowConsumer::Disconnect) policy): it should end
    /// cleanly after what is queued.
    fn close(&self);

    /// The subscriber's metadata, which publication filters match against.
    /// It comes from the server (the action, or an authorization hook),
    /// never from what the client asks for.
    fn metadata(&self) -> &Metadata;
}

/// [`Sink::offer_many`] as calls of [`Sink::offer`], one message at a time:
/// the default, and what a sink falls back to when its messages cannot
/// share one lock.
pub(crate) fn offer_each<S: Sink + ?Sized>(
    sink: &S,
    messages: &[&Arc<Message>],
    delivery: Delivery,
) -> (usize, Offer) {
    for (queued, message) in messages.iter().enumerate() {
        match sink.offer(message, delivery) {
            Offer::Queued => {}
            refused => return (queued, refused),
        }
    }
    (messages.len(), Offer::Queued)
}
