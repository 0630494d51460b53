//! Remote disconnects across processes: a `Cable::disconnect` reaches
//! the connections and parked sessions of every cable on the same broker
//! backend, as Rails' `remote_connections` does through its pub/sub
//! adapter.
//!
//! The cable that is asked disconnects its own connections at once, then
//! publishes an [`Order`] on [`CHANNEL`]. Every cable that has accepted a
//! connection listens on that channel with a [`Listener`] and applies the
//! orders of the others (a cable skips its own by its `origin`, a random id
//! of its own). On a shared backend (Redis) the broker's exact resume
//! covers the channel too: an order published while a process's pub/sub
//! connection was down is read from history when it comes back.
//!
//! Lock order when an order is applied: broker channel → the cable's
//! connections → a connection's outbox (as for a broadcast, the broker's
//! fan-out calls [`Sink::offer`]).

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::broker::{
    Broker, BrokerSubscription, Delivery, Message, MessageKind, Metadata, Offer, Position,
    Publication, PublishError, Sink, SubscribeError, SubscribeOptions,
};

/// The broker channel remote disconnects travel on.
pub(crate) const CHANNEL: &str = "cable:remote-disconnect";

/// One remote disconnect, as published on [`CHANNEL`].
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Order {
    /// The origin of the cable that gave it (it applied it already).
    origin: String,
    /// The identifiers a connection must all have, as `(name, value)`.
    matching: Vec<(String, String)>,
    /// What the disconnect message tells the client.
    reconnect: bool,
}

/// Publishes a remote disconnect for the other cables on `broker`.
///
/// # Errors
///
/// What [`Broker::publish_detached`] refuses at once (no runtime, say).
pub(crate) fn publish(
    broker: &Broker,
    origin: &str,
    matching: &[(&str, &str)],
    reconnect: bool,
) -> Result<(), PublishError> {
    let order = Order {
        origin: origin.to_owned(),
        matching: matching
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        reconnect,
    };
    // A struct of strings and a bool: serializing it cannot fail.
    let json = serde_json::to_string(&order).unwrap_or_default();
    broker.publish_detached(CHANNEL, Publication::new(json))
}

/// Applies an order to the cable that listens: its local disconnect,
/// reached through a weak reference — `None` once the cable is gone.
pub(crate) type Apply = Box<dyn Fn(&[(&str, &str)], bool) -> Option<usize> + Send + Sync>;

/// A cable's membership in [`CHANNEL`]: dropping it stops listening.
pub(crate) struct Listener {
    _subscription: BrokerSubscription,
}

impl Listener {
    /// Starts listening on `broker` for the orders of cables other than
    /// `origin`, handing each to `apply`. `apply` must hold its cable
    /// weakly: the cable (which keeps the listener) is dropped as usual.
    ///
    /// # Errors
    ///
    /// What the broker refuses the join for (too many channels, say).
    pub(crate) fn start(
        broker: &Broker,
        origin: &str,
        apply: Apply,
    ) -> Result<Listener, SubscribeError> {
        let sink = Arc::new(OrderSink {
            apply,
            origin: origin.to_owned(),
            metadata: Metadata::default(),
        });
        let subscription = broker.subscribe(sink, SubscribeOptions::default());
        subscription.join(CHANNEL, None)?;
        Ok(Listener {
            _subscription: subscription,
        })
    }
}

/// Applies the orders of other cables to its cable.
struct OrderSink {
    apply: Apply,
    origin: String,
    metadata: Metadata,
}

impl Sink for OrderSink {
    fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
        if message.kind() != MessageKind::Publication {
            return Offer::Queued;
        }
        match serde_json::from_str::<Order>(message.data()) {
            Ok(order) if order.origin == self.origin => {}
            Ok(order) => {
                let matching: Vec<(&str, &str)> = order
                    .matching
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let Some(reached) = (self.apply)(&matching, order.reconnect) else {
                    return Offer::Gone;
                };
                tracing::debug!(reached, origin = order.origin, "remote cable disconnect");
            }
            Err(error) => {
                tracing::warn!(%error, channel = CHANNEL, "not a remote disconnect; ignored");
            }
        }
        Offer::Queued
    }

    fn reset(&self, _channel: &str) -> Offer {
        // Orders lost to a reset (a flushed Redis) are gone for everyone;
        // the ones after it arrive as usual.
        tracing::warn!(
            channel = CHANNEL,
            "remote disconnects may have been lost (reset)"
        );
        Offer::Queued
    }

    fn gap(&self, _channel: &str, dropped: u64) -> Offer {
        tracing::warn!(dropped, channel = CHANNEL, "remote disconnects dropped");
        Offer::Queued
    }

    fn position(&self, _channel: &str, _position: &Position) {}

    fn close(&self) {}

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// A cable's origin: 64 random bits in hex, or (no OS randomness) the
/// process id and the time, which still tells processes apart.
pub(crate) fn new_origin() -> String {
    match getrandom::u64() {
        Ok(bits) => format!("{bits:016x}"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{}-{nanos}", std::process::id())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_reads_back_as_written() {
        let order = Order {
            origin: "ab".into(),
            matching: vec![("user".into(), "4\"2".into())],
            reconnect: true,
        };
        let json = serde_json::to_string(&order).unwrap();
        assert_eq!(
            json,
            r#"{"origin":"ab","matching":[["user","4\"2"]],"reconnect":true}"#
        );
        assert_eq!(serde_json::from_str::<Order>(&json).unwrap(), order);
    }

    #[test]
    fn origins_differ() {
        assert_ne!(new_origin(), new_origin());
    }
}
