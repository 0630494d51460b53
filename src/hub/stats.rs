//! [`HubStats`]: what a hub is doing, for `GET <path>/stats` and metrics.

/// A snapshot of a hub's activity.
///
/// ```
/// use rill::{hub::Hub, sse::Event};
///
/// let hub = Hub::new();
/// hub.publish("news", Event::data("hi")).unwrap();
/// let stats = hub.stats();
/// assert_eq!(stats.published, 1);
/// assert_eq!(
///     stats.to_json(),
///     r#"{"channels":{"news":0},"connections":0,"delivered":0,"dropped":0,"published":1,"slow_disconnects":0}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Subscriber connections open now.
    pub connections: usize,
    /// Every known channel with its subscriber count, by name.
    pub channels: Vec<(String, usize)>,
    /// Events published since the hub was built.
    pub published: u64,
    /// Frames handed to subscriber connections (one event to three
    /// subscribers counts three).
    pub delivered: u64,
    /// Frames a subscriber's full queue could not take.
    pub dropped: u64,
    /// Subscribers disconnected for being too slow.
    pub slow_disconnects: u64,
}

impl HubStats {
    /// The stats as compact JSON, keys in alphabetical order.
    pub fn to_json(&self) -> String {
        let channels: serde_json::Map<String, serde_json::Value> = self
            .channels
            .iter()
            .map(|(name, n)| (name.clone(), serde_json::Value::from(*n)))
            .collect();
        serde_json::json!({
            "connections": self.connections,
            "channels": channels,
            "published": self.published,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "slow_disconnects": self.slow_disconnects,
        })
        .to_string()
    }
}
