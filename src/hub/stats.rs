//! [`HubStats`]: what a hub is doing, for `GET <path>/stats` and metrics.

use crate::broker::BrokerStats;

/// The most channels listed one by one in [`HubStats::channels`]: the
/// busiest, so the answer stays small however many channels exist.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rill::broker::PublishError> {
/// use rill::hub::{Hub, PER_CHANNEL_LIMIT};
///
/// assert_eq!(PER_CHANNEL_LIMIT, 1000);
/// let hub = Hub::new();
/// // However many channels exist, a stats answer lists at most this many.
/// assert!(hub.stats(true).channels.len() <= PER_CHANNEL_LIMIT);
/// # Ok(()) }
/// ```
pub const PER_CHANNEL_LIMIT: usize = 1000;

/// A snapshot of a hub's activity.
///
/// ```
/// use rill::{hub::Hub, sse::Event};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hub = Hub::new();
/// hub.publish("news", Event::data("hi")).await.unwrap();
/// let stats = hub.stats(true);
/// assert_eq!(stats.published, 1);
/// assert_eq!(
///     stats.to_json(),
///     r#"{"channel_count":0,"channels":{},"connections":0,"delivered":0,"dropped":0,"published":1,"resets":0,"slow_disconnects":0}"#
/// );
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Subscriber connections open now.
    pub connections: usize,
    /// Channels with subscribers in this process.
    pub channel_count: usize,
    /// Subscribers per channel, by name: the [`PER_CHANNEL_LIMIT`] busiest
    /// channels (empty unless asked for).
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
    /// Resets sent to subscribers that could not be continued.
    pub resets: u64,
    /// How many processes these figures count, when they were summed over
    /// a shared backend ([`Hub::cluster_stats`](super::Hub::cluster_stats));
    /// `None` for this process's own.
    pub nodes: Option<usize>,
}

impl HubStats {
    pub(super) fn new(connections: usize, broker: BrokerStats) -> Self {
        let mut channels = broker.channels;
        if channels.len() > PER_CHANNEL_LIMIT {
            channels.select_nth_unstable_by(PER_CHANNEL_LIMIT - 1, |a, b| b.1.cmp(&a.1));
            channels.truncate(PER_CHANNEL_LIMIT);
            channels.sort();
        }
        HubStats {
            connections,
            channel_count: broker.channels_with_subscribers,
            channels,
            published: broker.published,
            delivered: broker.delivered,
            dropped: broker.dropped,
            slow_disconnects: broker.slow_disconnects,
            resets: broker.resets,
            nodes: None,
        }
    }

    /// The report a process shares: these figures and its name.
    pub(super) fn to_report(&self, node: &str) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("node".to_owned(), serde_json::Value::from(node));
        }
        value.to_string()
    }

    /// A report back: the process's name and its figures.
    pub(super) fn from_report(json: &str) -> Option<(String, HubStats)> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        let count = |name: &str| value.get(name).and_then(serde_json::Value::as_u64);
        let channels = value
            .get("channels")?
            .as_object()?
            .iter()
            .filter_map(|(name, n)| Some((name.clone(), usize::try_from(n.as_u64()?).ok()?)))
            .collect();
        let stats = HubStats {
            connections: usize::try_from(count("connections")?).ok()?,
            channel_count: usize::try_from(count("channel_count")?).ok()?,
            channels,
            published: count("published")?,
            delivered: count("delivered")?,
            dropped: count("dropped")?,
            slow_disconnects: count("slow_disconnects")?,
            resets: count("resets")?,
            nodes: None,
        };
        Some((value.get("node")?.as_str()?.to_owned(), stats))
    }

    /// The stats as compact JSON, keys in alphabetical order (what
    /// [`Serialize`](serde::Serialize) writes too).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::new();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let _client = get(&app, "/hub?channel=lobby").await;
    /// let json = hub.stats(true).to_json(); // e.g. for a metrics scraper
    /// assert!(json.contains(r#""channels":{"lobby":1}"#));
    /// assert!(json.contains(r#""connections":1"#));
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_json(&self) -> String {
        // Strings, numbers and a map of them always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Serialized as [`HubStats::to_json`] writes it: `channels` as an object
/// channel → subscribers, so `Response::json(&hub.stats(true))` answers
/// what `GET <path>/stats` does.
impl serde::Serialize for HubStats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Channels<'a>(&'a [(String, usize)]);
        impl serde::Serialize for Channels<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, n) in self.0 {
                    map.serialize_entry(name, n)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(8))?;
        map.serialize_entry("channel_count", &self.channel_count)?;
        map.serialize_entry("channels", &Channels(&self.channels))?;
        map.serialize_entry("connections", &self.connections)?;
        map.serialize_entry("delivered", &self.delivered)?;
        map.serialize_entry("dropped", &self.dropped)?;
        if let Some(nodes) = self.nodes {
            map.serialize_entry("nodes", &nodes)?;
        }
        map.serialize_entry("published", &self.published)?;
        map.serialize_entry("resets", &self.resets)?;
        map.serialize_entry("slow_disconnects", &self.slow_disconnects)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HubStats {
        HubStats {
            connections: 2,
            channel_count: 1,
            channels: vec![("a".into(), 1), ("b".into(), 3)],
            published: 5,
            delivered: 7,
            dropped: 0,
            slow_disconnects: 1,
            resets: 0,
            nodes: None,
        }
    }

    #[test]
    fn json_is_one_shape_with_nodes_only_when_summed() {
        let mut stats = sample();
        assert_eq!(
            stats.to_json(),
            r#"{"channel_count":1,"channels":{"a":1,"b":3},"connections":2,"delivered":7,"dropped":0,"published":5,"resets":0,"slow_disconnects":1}"#
        );
        stats.nodes = Some(3);
        assert!(stats
            .to_json()
            .contains(r#""dropped":0,"nodes":3,"published":5"#));
    }

    #[test]
    fn a_report_comes_back_as_it_went() {
        let report = sample().to_report("n1");
        assert_eq!(
            HubStats::from_report(&report),
            Some(("n1".to_owned(), sample()))
        );
        assert_eq!(HubStats::from_report("{}"), None);
        assert_eq!(HubStats::from_report("not json"), None);
    }
}
