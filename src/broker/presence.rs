//! Presence as data: who is on a channel ([`Member`]), and the changes
//! gathered between two presence ticks ([`PresenceDiff`]).

use std::{collections::HashMap, sync::Arc};

use super::filter::Metadata;

/// One subscriber present on a channel.
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
/// // "Who is editing this document?"
/// let members = broker.presence("doc-7").await?;
/// let names: Vec<&str> = members
///     .iter()
///     .filter_map(|member| member.metadata.iter().find(|(name, _)| name == "name"))
///     .map(|(_, value)| value.as_str())
///     .collect();
/// assert_eq!(names, ["ada"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Unique among the broker's subscribers (and, with a distributed
    /// backend, across processes).
    pub id: Arc<str>,
    /// The subscriber's metadata, as the server set it.
    pub metadata: Arc<Metadata>,
}

/// The joins and leaves of one channel since the last tick. A join and a
/// leave of the same member within one tick cancel out: a subscriber that
/// comes and goes between two ticks costs no delivery at all.
#[derive(Debug, Default)]
pub(crate) struct PresenceDiff {
    changes: HashMap<Arc<str>, Change>,
}

#[derive(Debug)]
enum Change {
    Joined(Member),
    Left,
}

impl PresenceDiff {
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub(crate) fn joined(&mut self, member: Member) {
        self.changes
            .insert(member.id.clone(), Change::Joined(member));
    }

    pub(crate) fn left(&mut self, id: &Arc<str>) {
        // A member that joined in this tick never was seen: forget both.
        if let Some(Change::Joined(_)) = self.changes.remove(id) {
            return;
        }
        self.changes.insert(id.clone(), Change::Left);
    }

    /// The diff as JSON — `{"channel":…,"joined":[{"id":…,"metadata":{…}}],
    /// "left":[…]}`, members by id — leaving the diff empty.
    pub(crate) fn take_json(&mut self, channel: &str) -> String {
        let mut joined = Vec::new();
        let mut left = Vec::new();
        for (id, change) in self.changes.drain() {
            match change {
                Change::Joined(member) => joined.push(member),
                Change::Left => left.push(id),
            }
        }
        joined.sort_by(|a, b| a.id.cmp(&b.id));
        left.sort();
        let joined: Vec<serde_json::Value> = joined.iter().map(member_json).collect();
        let left: Vec<&str> = left.iter().map(|id| &**id).collect();
        serde_json::json!({ "channel": channel, "joined": joined, "left": left }).to_string()
    }
}

/// Everyone on a channel as JSON — `{"channel":…,"members":[{"id":…,
/// "metadata":{…}}]}` — the first presence message a subscriber gets.
pub(crate) fn snapshot_json(channel: &str, members: &[Member]) -> String {
    let members: Vec<serde_json::Value> = members.iter().map(member_json).collect();
    serde_json::json!({ "channel": channel, "members": members }).to_string()
}

fn member_json(member: &Member) -> serde_json::Value {
    let metadata: serde_json::Map<String, serde_json::Value> = member
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    serde_json::json!({ "id": &*member.id, "metadata": metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member {
            id: id.into(),
            metadata: Arc::new(vec![("user".into(), id.into())]),
        }
    }

    #[test]
    fn a_join_and_leave_in_one_tick_cancel_out() {
        let mut diff = PresenceDiff::default();
        diff.joined(member("a"));
        diff.left(&Arc::from("a"));
        assert!(diff.is_empty());
        diff.left(&Arc::from("b"));
        diff.joined(member("c"));
        assert_eq!(
            diff.take_json("room"),
            r#"{"channel":"room","joined":[{"id":"c","metadata":{"user":"c"}}],"left":["b"]}"#
        );
        assert!(diff.is_empty());
    }
}
