//! Keyed items on Redis ([`KeyedItems`] for [`RedisBackend`]) and the
//! stash (parked sessions): a channel's items in a hash beside its meta and
//! log, read with the position in one script and changed by a
//! compare-and-set script that also publishes (`scripts::commit`), so an
//! item and the revision announcing it can never part.

use std::{collections::BTreeMap, time::Duration};

use super::{codec, fresh_epoch, position, publisher::seconds, Inner, RedisBackend};
use crate::broker::{
    backend::BoxFuture,
    error::{BackendError, PublishError},
    keyed::{Commit, Committed, ItemSelection, ItemsRead, KeyedItems, PositionCheck},
};

impl KeyedItems for RedisBackend {
    fn read(
        &self,
        channel: &str,
        selected: ItemSelection<'_>,
        take_timestamp: bool,
    ) -> BoxFuture<Result<ItemsRead, BackendError>> {
        let inner = self.inner.clone();
        let channel = channel.to_owned();
        let (mode, item) = match selected {
            ItemSelection::All => ("all", String::new()),
            ItemSelection::One(item) => ("one", item.to_owned()),
            ItemSelection::Nothing => ("none", String::new()),
        };
        Box::pin(async move {
            let config = &inner.config;
            let mut connection = inner.commands.clone();
            type Answer = (Option<String>, Option<String>, String, Vec<String>);
            let (epoch, offset, timestamp, flat): Answer = inner
                .timed(
                    inner
                        .items_read
                        .key(config.key(&channel, "meta"))
                        .key(config.key(&channel, "items"))
                        .arg(mode)
                        .arg(if take_timestamp { "1" } else { "0" })
                        .arg(item)
                        .invoke_async(&mut connection),
                )
                .await?;
            let mut items = BTreeMap::new();
            let mut pairs = flat.into_iter();
            while let (Some(id), Some(json)) = (pairs.next(), pairs.next()) {
                items.insert(id, json);
            }
            Ok(ItemsRead {
                items: items.into_iter().collect(),
                position: match (epoch, offset) {
                    (Some(epoch), Some(offset)) => position(&epoch, &offset),
                    _ => None,
                },
                timestamp: timestamp.parse().map_err(|_| {
                    BackendError::Unavailable(
                        format!("Redis answered a bad timestamp {timestamp:?}").into(),
                    )
                })?,
            })
        })
    }

    fn commit(&self, channel: &str, commit: Commit) -> BoxFuture<Result<Committed, PublishError>> {
        let inner = self.inner.clone();
        let channel = channel.to_owned();
        Box::pin(async move {
            let config = &inner.config;
            let meta_ttl = config.meta_ttl.max(config.history_age);
            let required = match &commit.position {
                PositionCheck::Any => String::new(),
                PositionCheck::Exactly(None) => "-".to_owned(),
                PositionCheck::Exactly(Some(at)) => format!("{} {}", at.epoch(), at.offset()),
            };
            let (item, expected, value) = match &commit.write {
                Some(write) => (
                    write.item.as_str(),
                    write.expected.as_deref(),
                    write.value.as_deref(),
                ),
                None => ("", None, None),
            };
            let (index, member) = match &commit.index {
                Some((index, member)) => (config.key(index, "index"), member.as_str()),
                None => (config.key("", "index"), ""),
            };
            let flag = |present: bool| if present { "1" } else { "0" };
            let mut invocation = inner.commit.prepare_invoke();
            invocation
                .key(config.key(&channel, "meta"))
                .key(config.key(&channel, "log"))
                .key(config.key(&channel, "items"))
                .key(index)
                .arg(config.pubsub_channel(&channel))
                .arg(codec::encode(&commit.publication))
                .arg(fresh_epoch().as_str())
                .arg(config.history)
                .arg(seconds(config.history_age))
                .arg(seconds(meta_ttl))
                .arg(required)
                .arg(item)
                .arg(flag(expected.is_some()))
                .arg(expected.unwrap_or_default())
                .arg(flag(value.is_some()))
                .arg(value.unwrap_or_default())
                .arg(commit.timestamp)
                .arg(member);
            let mut connection = inner.commands.clone();
            let answer: Option<(String, String)> = inner
                .timed(invocation.invoke_async(&mut connection))
                .await
                .map_err(PublishError::Backend)?;
            match answer {
                None => Ok(Committed::Conflict),
                Some((epoch, offset)) => match position(&epoch, &offset) {
                    Some(at) => Ok(Committed::Placed(at)),
                    None => Err(PublishError::Backend(BackendError::Unavailable(
                        format!("Redis answered an invalid position {epoch} {offset}").into(),
                    ))),
                },
            }
        })
    }

    fn index(&self, index: &str) -> BoxFuture<Result<Vec<String>, BackendError>> {
        let inner = self.inner.clone();
        let key = inner.config.key(index, "index");
        Box::pin(async move {
            let mut connection = inner.commands.clone();
            let mut members: Vec<String> = inner
                .timed(redis::cmd("SMEMBERS").arg(key).query_async(&mut connection))
                .await?;
            members.sort();
            Ok(members)
        })
    }
}

impl Inner {
    fn stash_key(&self, key: &str) -> String {
        format!("{}stash:{key}", self.config.prefix)
    }
}

impl RedisBackend {
    /// `SET key value PX ttl` under the stash prefix.
    pub(super) fn stash_value(
        &self,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<Result<(), BackendError>> {
        let inner = self.inner.clone();
        let key = inner.stash_key(key);
        let millis = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        Box::pin(async move {
            let mut connection = inner.commands.clone();
            inner
                .timed(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PX")
                        .arg(millis)
                        .query_async::<()>(&mut connection),
                )
                .await
        })
    }

    /// `GETDEL` under the stash prefix: one taker at most.
    pub(super) fn unstash_value(
        &self,
        key: &str,
    ) -> BoxFuture<Result<Option<String>, BackendError>> {
        let inner = self.inner.clone();
        let key = inner.stash_key(key);
        Box::pin(async move {
            let mut connection = inner.commands.clone();
            inner
                .timed(redis::cmd("GETDEL").arg(key).query_async(&mut connection))
                .await
        })
    }
}
