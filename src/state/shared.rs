//! A [`Store`] on a shared backend (Redis): the items live in the backend,
//! read with the group's revision at one instant and written by
//! compare-and-set commits that publish the change in the same step (see
//! [`KeyedItems`]), so every process sees the same items, revisions and
//! changes.
//!
//! # Writes
//!
//! A write reads the item, the group's revision and its next timestamp,
//! computes the new value in Rust (update operations included: Redis never
//! decodes a value), and commits it on the condition that the item still
//! holds the text it read — and, for an update at a revision, that the
//! group is still there. A refused commit means another process wrote
//! first: the write reads again and recomputes, up to [`MAX_ATTEMPTS`]
//! times. Within a process, writes to a group still take its lock, so they
//! only ever conflict with other processes' writes. Triggers run on the
//! process that made the change.

use serde_json::Value;
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use super::{
    error::StateError,
    store::{Group, Revision, Snapshot, Store, Write},
    triggers::Change,
};
use crate::broker::{
    Commit, Committed, ItemSelection, ItemWrite, ItemsRead, KeyedItems, PositionCheck, Publication,
};

/// How many times a write is computed before it gives up with
/// [`StateError::Contended`].
pub(crate) const MAX_ATTEMPTS: u32 = 64;

impl Store {
    /// The items kept for every process, when the store's broker has them.
    pub(super) fn keyed(&self) -> Option<&Arc<dyn KeyedItems>> {
        self.inner.keyed.as_ref()
    }

    pub(super) async fn shared_read(
        &self,
        keyed: &dyn KeyedItems,
        group: &Group,
        selected: ItemSelection<'_>,
        take_timestamp: bool,
    ) -> Result<ItemsRead, StateError> {
        keyed
            .read(&group.channel, selected, take_timestamp)
            .await
            .map_err(StateError::Read)
    }

    pub(super) async fn shared_get(
        &self,
        keyed: &dyn KeyedItems,
        group: &Group,
        item: &str,
    ) -> Result<Option<Value>, StateError> {
        let read = self
            .shared_read(keyed, group, ItemSelection::One(item), false)
            .await?;
        Ok(values(group, read.items).remove(item))
    }

    pub(super) async fn shared_snapshot(
        &self,
        keyed: &dyn KeyedItems,
        group: &Group,
        item: Option<&str>,
    ) -> Result<Snapshot, StateError> {
        let selected = item.map_or(ItemSelection::All, ItemSelection::One);
        let read = self.shared_read(keyed, group, selected, true).await?;
        Ok(Snapshot {
            rev: Revision::from_position(read.position.as_ref()),
            timestamp: read.timestamp,
            items: values(group, read.items),
        })
    }

    pub(super) async fn shared_groups(
        &self,
        keyed: &dyn KeyedItems,
        stream: &str,
    ) -> Result<Vec<String>, StateError> {
        keyed
            .index(&index_name(stream))
            .await
            .map_err(StateError::Read)
    }

    /// The write of every kind on a shared backend (see the module docs).
    pub(super) async fn shared_write(
        &self,
        keyed: &dyn KeyedItems,
        group: &Group,
        item: &str,
        if_rev: Option<&Revision>,
        make: impl Fn(Option<&Value>) -> Result<Option<Value>, StateError>,
    ) -> Result<Write, StateError> {
        let _writing = group.state.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let read = self
                .shared_read(keyed, group, ItemSelection::One(item), false)
                .await?;
            let current = Revision::from_position(read.position.as_ref());
            current.check(if_rev)?;
            let old_text = read.items.into_iter().next().map(|(_, text)| text);
            let old = old_text
                .as_deref()
                .and_then(|text| parse(group, item, text));
            let new = make(old.as_ref())?;
            if new == old {
                return Ok(Write {
                    old,
                    new,
                    rev: current,
                    changed: false,
                });
            }
            let change = group.item_change(item, &old, &new, read.timestamp);
            let commit = Commit {
                write: Some(ItemWrite {
                    item: item.to_owned(),
                    expected: old_text,
                    value: new.as_ref().map(Value::to_string),
                }),
                position: match if_rev {
                    Some(_) => PositionCheck::Exactly(read.position),
                    None => PositionCheck::Any,
                },
                timestamp: read.timestamp,
                publication: Publication::new(change.wire_json()).event(change.kind.as_str()),
                index: Some((index_name(&group.stream), group.name.to_string())),
            };
            if let Some(rev) = self.shared_commit(keyed, group, commit, change).await? {
                return Ok(Write {
                    old,
                    new,
                    rev,
                    changed: true,
                });
            }
            back_off(attempt).await;
        }
        Err(StateError::Contended {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// A custom event on a shared backend: placed after every change and
    /// snapshot before it (its timestamp is the group's next).
    pub(super) async fn shared_send(
        &self,
        keyed: &dyn KeyedItems,
        group: &Group,
        make: impl Fn(u64) -> Change,
    ) -> Result<Revision, StateError> {
        let _writing = group.state.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let read = self
                .shared_read(keyed, group, ItemSelection::Nothing, false)
                .await?;
            let change = make(read.timestamp);
            let commit = Commit {
                write: None,
                position: PositionCheck::Any,
                timestamp: read.timestamp,
                publication: Publication::new(change.wire_json()).event(change.kind.as_str()),
                index: None,
            };
            if let Some(rev) = self.shared_commit(keyed, group, commit, change).await? {
                return Ok(rev);
            }
            back_off(attempt).await;
        }
        Err(StateError::Contended {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Commits; on success hands the change to the triggers and returns its
    /// revision, on a conflict `None`.
    async fn shared_commit(
        &self,
        keyed: &dyn KeyedItems,
        group: &Group,
        commit: Commit,
        mut change: Change,
    ) -> Result<Option<Revision>, StateError> {
        match self
            .inner
            .broker
            .commit(keyed, &group.channel, commit)
            .await?
        {
            Committed::Placed(position) => {
                let rev = Revision::from_position(Some(&position));
                change.rev = rev.clone();
                self.hand_to_triggers(change);
                Ok(Some(rev))
            }
            Committed::Conflict => Ok(None),
        }
    }
}

/// The index of a stream's groups that hold items.
fn index_name(stream: &str) -> String {
    format!("state:{stream}")
}

/// Items' JSON texts as values; one that is not JSON (written by something
/// else than rill) is left out, with a warning.
fn values(group: &Group, items: Vec<(String, String)>) -> BTreeMap<String, Value> {
    items
        .into_iter()
        .filter_map(|(id, text)| {
            let value = parse(group, &id, &text)?;
            Some((id, value))
        })
        .collect()
}

fn parse(group: &Group, item: &str, text: &str) -> Option<Value> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(
                stream = %group.stream,
                group = %group.name,
                item,
                %error,
                "a stored item is not JSON: treated as absent"
            );
            None
        }
    }
}

/// A pause before computing a write again: growing with the attempts, with
/// jitter, so that writers on several processes stop colliding.
async fn back_off(attempt: u32) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 500);
    let micros = 100 * u64::from(attempt.min(20)) + u64::from(jitter);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}
