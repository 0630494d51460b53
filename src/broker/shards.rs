//! [`Shards`]: a map by channel name split over many locks, so that work on
//! one channel never waits for a lock held for another (unless they share a
//! shard, and then only for a lookup).

use std::{
    collections::{hash_map::RandomState, HashMap},
    hash::BuildHasher,
    sync::{Arc, Mutex, MutexGuard},
};

use super::registry::lock;

/// How many locks a map is split over.
pub(crate) const SHARDS: usize = 64;

/// One shard: values by channel name.
pub(crate) type Shard<V> = HashMap<Arc<str>, V>;

/// Values by channel name, over [`SHARDS`] locks.
pub(crate) struct Shards<V> {
    maps: Box<[Mutex<Shard<V>>]>,
    hasher: RandomState,
}

impl<V> Default for Shards<V> {
    fn default() -> Self {
        Shards {
            maps: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl<V> Shards<V> {
    /// The shard that holds `channel`, locked.
    pub(crate) fn lock(&self, channel: &str) -> MutexGuard<'_, Shard<V>> {
        lock(&self.maps[self.index(channel)])
    }

    /// The `i`-th shard, locked (to walk them one at a time).
    pub(crate) fn lock_nth(&self, i: usize) -> MutexGuard<'_, Shard<V>> {
        lock(&self.maps[i % SHARDS])
    }

    fn index(&self, channel: &str) -> usize {
        (self.hasher.hash_one(channel) % SHARDS as u64) as usize
    }
}
