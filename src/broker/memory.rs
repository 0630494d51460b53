//! [`MemoryBackend`]: the embedded default backend — positions, history and
//! presence in this process.
//!
//! Each channel has a log (its epoch, its last offset, its retained
//! messages) behind its own lock; logs are found through sharded maps whose
//! locks are held only for the lookup. A publication takes its channel's log
//! lock, gets the next offset, is appended, and is handed to the broker's
//! inbox *under that lock*, so two publishers of one channel deliver in
//! offset order while publishers of different channels never wait for each
//! other.
//!
//! Every log gets a fresh epoch when it is created: at every start of the
//! process, and when a channel with no history and no subscriber was
//! forgotten and is used again. Offsets never restart within an epoch.

use std::{
    collections::{HashMap, VecDeque},
    hash::BuildHasher,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};
use tokio::time::Instant;

use super::{
    backend::{Backend, BoxFuture, History, Inbox, Since},
    error::{BackendError, PublishError},
    message::{Epoch, Message, Position, Publication},
    presence::Member,
    registry::lock,
    shards::{Shards, SHARDS},
    MAX_CHANNEL_NAME,
};

/// Every this many publications on a channel, one shard of logs is swept
/// for expired history and forgotten channels.
const SWEEP_EVERY: u64 = 256;

/// How much history each channel keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryLimits {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    pub(crate) age: Duration,
}

/// Positions, history and presence in this process. Built by the broker
/// unless another backend is given.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::broker::{Broker, Publication};
///
/// // `Broker::new()` (and every hub) runs on a `MemoryBackend` unless given
/// // another: its stats count the channel logs it keeps.
/// let broker = Broker::new();
/// broker.publish("news", Publication::new("hi")).await?;
/// assert_eq!(broker.stats(false).channels_with_history, Some(1));
/// # Ok(())
/// # }
/// ```
pub struct MemoryBackend {
    logs: Shards<Arc<LogCell>>,
    presence: Shards<HashMap<Arc<str>, Member>>,
    limits: HistoryLimits,
    max_channels: usize,
    log_count: AtomicUsize,
    epoch_seed: u64,
    incarnations: AtomicU64,
    sweep_cursor: AtomicUsize,
    inbox: OnceLock<Inbox>,
}

/// One channel's log and how many local subscribers listen to it.
struct LogCell {
    listeners: AtomicUsize,
    log: Mutex<Log>,
}

struct Log {
    /// Set when the log was forgotten: a publisher holding this cell looks
    /// the channel up again.
    removed: bool,
    epoch: Epoch,
    /// The last offset given.
    top: u64,
    entries: VecDeque<Arc<Message>>,
    bytes: usize,
}

impl MemoryBackend {
    pub(crate) fn new(limits: HistoryLimits, max_channels: usize) -> Self {
        MemoryBackend {
            logs: Shards::default(),
            presence: Shards::default(),
            limits,
            max_channels,
            log_count: AtomicUsize::new(0),
            epoch_seed: epoch_seed(),
            incarnations: AtomicU64::new(0),
            sweep_cursor: AtomicUsize::new(0),
            inbox: OnceLock::new(),
        }
    }

    /// A fresh epoch: distinct for every log of this backend, and random
    /// across processes.
    fn next_epoch(&self) -> Epoch {
        let n = self.incarnations.fetch_add(1, Ordering::Relaxed);
        // 48 bits (at most 10 base-36 digits): a bijection of the counter,
        // offset by the seed, so epochs never repeat within the process.
        Epoch::from_number(
            self.epoch_seed
                .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                & 0xFFFF_FFFF_FFFF,
        )
    }

    /// The log cell of `channel`, created if `create` (within the cap).
    fn log_cell(&self, channel: &str, create: bool) -> Result<Option<Arc<LogCell>>, PublishError> {
        let mut shard = self.logs.lock(channel);
        if let Some(cell) = shard.get(channel) {
            return Ok(Some(cell.clone()));
        }
        if !create {
            return Ok(None);
        }
        if self.log_count.load(Ordering::Acquire) >= self.max_channels {
            return Err(PublishError::TooManyChannels {
                max: self.max_channels,
            });
        }
        self.log_count.fetch_add(1, Ordering::AcqRel);
        let cell = Arc::new(LogCell {
            listeners: AtomicUsize::new(0),
            log: Mutex::new(Log {
                removed: false,
                epoch: self.next_epoch(),
                top: 0,
                entries: VecDeque::new(),
                bytes: 0,
            }),
        });
        shard.insert(channel.into(), cell.clone());
        Ok(Some(cell))
    }

    fn publish_now(
        &self,
        channel: &str,
        publication: Publication,
    ) -> Result<Position, PublishError> {
        if channel.is_empty() || channel.len() > MAX_CHANNEL_NAME {
            return Err(PublishError::InvalidChannel);
        }
        let now = Instant::now();
        let (position, message, sweep) = loop {
            let Some(cell) = self.log_cell(channel, true)? else {
                unreachable!("log_cell() creates when asked")
            };
            let mut log = lock(&cell.log);
            if log.removed {
                continue;
            }
            log.top += 1;
            let position = Position::new(log.epoch.clone(), log.top);
            let message = Arc::new(Message::new(channel.into(), position.clone(), publication));
            log.bytes += message.weight();
            log.entries.push_back(message.clone());
            log.evict(&self.limits, now);
            // Under the log lock: messages of one channel reach the inbox in
            // offset order.
            if let Some(inbox) = self.inbox.get() {
                inbox.deliver(message.clone());
            }
            // Counted per channel (under its lock): a shared counter would
            // make publishers on different channels share a cache line.
            break (position, message, log.top % SWEEP_EVERY == 0);
        };
        drop(message);
        if sweep {
            self.sweep_one_shard(now);
        }
        Ok(position)
    }

    /// Drops expired history in one shard, and forgets its logs that hold
    /// nothing and have no listener.
    fn sweep_one_shard(&self, now: Instant) {
        let index = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let cells: Vec<(Arc<str>, Arc<LogCell>)> = self
            .logs
            .lock_nth(index)
            .iter()
            .map(|(name, cell)| (name.clone(), cell.clone()))
            .collect();
        for (name, cell) in cells {
            let empty = {
                let mut log = lock(&cell.log);
                log.evict(&self.limits, now);
                let forget = log.entries.is_empty() && cell.listeners.load(Ordering::Acquire) == 0;
                if forget {
                    log.removed = true;
                }
                forget
            };
            if empty {
                let mut shard = self.logs.lock_nth(index);
                if shard.get(&name).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                    shard.remove(&name);
                    self.log_count.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    fn history_now(&self, channel: &str, since: &Since) -> History {
        let cell = match self.log_cell(channel, false) {
            Ok(Some(cell)) => cell,
            // No log: nothing was published, or it all expired and was
            // forgotten. A position from before is of an epoch gone.
            _ => {
                return match since {
                    Since::Start => History::Continuous(Vec::new()),
                    Since::After(_) => History::Reset(Vec::new()),
                }
            }
        };
        let mut log = lock(&cell.log);
        log.evict(&self.limits, Instant::now());
        let first = log
            .entries
            .front()
            .map_or(log.top + 1, |m| m.position().offset());
        let all = || log.entries.iter().cloned().collect::<Vec<_>>();
        match since {
            Since::Start if first == 1 => History::Continuous(all()),
            Since::Start => History::Reset(all()),
            Since::After(position)
                if position.epoch() != &log.epoch
                    || position.offset() > log.top
                    || position.offset() + 1 < first =>
            {
                History::Reset(all())
            }
            Since::After(position) => History::Continuous(
                log.entries
                    .iter()
                    .filter(|m| m.position().offset() > position.offset())
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// How many channel logs exist now.
    pub(crate) fn log_count(&self) -> usize {
        self.log_count.load(Ordering::Acquire)
    }
}

impl Log {
    /// Drops the oldest messages past the count, the bytes or the age.
    fn evict(&mut self, limits: &HistoryLimits, now: Instant) {
        while let Some(front) = self.entries.front() {
            let too_many = self.entries.len() > limits.messages;
            let too_big = self.bytes > limits.bytes;
            let too_old = now.saturating_duration_since(front.received) > limits.age;
            if !(too_many || too_big || too_old) {
                break;
            }
            self.bytes -= front.weight();
            self.entries.pop_front();
        }
    }
}

impl Backend for MemoryBackend {
    fn attach(&self, inbox: Inbox) {
        if self.inbox.set(inbox).is_err() {
            tracing::warn!("a memory backend was attached to a second broker; ignored");
        }
    }

    fn publish(
        &self,
        channel: &str,
        publication: Publication,
    ) -> BoxFuture<Result<Position, PublishError>> {
        let result = self.publish_now(channel, publication);
        Box::pin(std::future::ready(result))
    }

    fn send_ephemeral(&self, message: Arc<Message>) {
        if let Some(inbox) = self.inbox.get() {
            inbox.deliver(message);
        }
    }

    fn position(&self, channel: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
        let position = match self.log_cell(channel, false) {
            Ok(Some(cell)) => {
                let log = lock(&cell.log);
                Some(Position::new(log.epoch.clone(), log.top))
            }
            _ => None,
        };
        Box::pin(std::future::ready(Ok(position)))
    }

    fn history(&self, channel: &str, since: &Since) -> BoxFuture<Result<History, BackendError>> {
        let history = self.history_now(channel, since);
        Box::pin(std::future::ready(Ok(history)))
    }

    fn listen(&self, channel: &str) {
        // A listened channel keeps its log (and epoch) while its history
        // expires, so its live subscribers never see a needless reset.
        if let Ok(Some(cell)) = self.log_cell(channel, true) {
            cell.listeners.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn unlisten(&self, channel: &str) {
        if let Ok(Some(cell)) = self.log_cell(channel, false) {
            let _ = cell
                .listeners
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    fn presence_add(&self, channel: &str, member: Member) {
        self.presence
            .lock(channel)
            .entry(channel.into())
            .or_default()
            .insert(member.id.clone(), member);
    }

    fn presence_refresh(&self, _channel: &str, _member_id: &str) {}

    fn presence_remove(&self, channel: &str, member_id: &str) {
        let mut shard = self.presence.lock(channel);
        if let Some(members) = shard.get_mut(channel) {
            members.remove(member_id);
            if members.is_empty() {
                shard.remove(channel);
            }
        }
    }

    fn presence(&self, channel: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
        let mut members: Vec<Member> = self
            .presence
            .lock(channel)
            .get(channel)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Box::pin(std::future::ready(Ok(members)))
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("channels", &self.log_count())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A seed for epochs that differs between processes and starts: the clock,
/// the process id and an address, mixed.
fn epoch_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()))
}
