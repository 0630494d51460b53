//! [`RedisBackend`]: the broker's backend on Redis, for many processes
//! (the `redis` feature).
//!
//! * **Publish once, atomically.** One Lua script per publication gives it
//!   the channel's next offset, appends it to the channel's history (a Redis
//!   stream), refreshes the expiries and `PUBLISH`es it, so every process
//!   sees the same positions. A channel's epoch lives in Redis with its
//!   offset: a flushed or restarted Redis starts a new epoch, and resuming
//!   clients get an explicit reset instead of reused ids.
//! * **Deliver in Redis's order.** Every process — the publisher's too —
//!   gets publications through pub/sub, on a connection of its own that
//!   subscribes only to channels with local subscribers. The broker checks
//!   each one against the last offset it delivered: a gap puts the
//!   channel's subscribers into catching up from the history.
//! * **Never lose silently.** The pub/sub connection is rill's own: when it
//!   drops — or stays silent and a `PING` goes unanswered; a Redis killed
//!   with `kill -9` is noticed that way — rill reconnects, resubscribes,
//!   and then has every subscriber catch up from the history — exactly
//!   once, or with a reset when the history no longer reaches back. While
//!   Redis is unreachable, [`publish`](crate::broker::Broker::publish) fails
//!   fast with [`BackendError::Unavailable`]: nothing is delivered with an
//!   id Redis does not know.
//! * **Keyed items** (the state store's) live in a hash per channel,
//!   changed by a compare-and-set script that publishes the change in the
//!   same step (`items.rs`): every process reads and writes the same items.
//! * **Presence** is a hash of members and a sorted set of their expiry
//!   times per channel (Redis 7.0 has no per-field expiry); each process
//!   refreshes its own members, and a dead process's members expire.
//!
//! Key layout and guarantees: [`docs/redis.md`](crate::guides::redis).

mod codec;
mod items;
mod listener;
mod publisher;
mod scripts;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use redis::{aio::ConnectionManager, AsyncCommands};
use tokio::sync::mpsc;

use super::{
    backend::{Backend, BoxFuture, History, Inbox, Since},
    error::{BackendError, PublishError},
    keyed::KeyedItems,
    message::{Epoch, Message, Position, Publication},
    presence::Member,
    registry::lock,
};
use listener::Command;

/// How a [`RedisBackend`] connects and what it keeps.
///
/// ```
/// use rill::broker::RedisConfig;
/// use std::time::Duration;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .prefix("myapp:")
///     .history(500)
///     .history_age(Duration::from_secs(600));
/// assert_eq!(config.url(), "redis://127.0.0.1:6379");
/// ```
#[derive(Debug, Clone)]
pub struct RedisConfig {
    url: String,
    prefix: String,
    history: usize,
    history_age: Duration,
    meta_ttl: Duration,
    presence_ttl: Duration,
    timeout: Duration,
    probe: Duration,
}

impl RedisConfig {
    /// Connects to `url` (`redis://host:port/db`), with the defaults: key
    /// prefix `rill:`, history of 1,000 messages per channel for up to an
    /// hour, a channel's epoch kept 7 days after its last publication,
    /// presence members expiring 60 s after their process stopped
    /// refreshing them, commands failing after 1 s without an answer, the
    /// pub/sub connection probed after 1 s of silence (a Redis that died
    /// does not always close it: the probe is what notices).
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1:6379/0");
    /// assert_eq!(config.url(), "redis://127.0.0.1:6379/0");
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "rill:".to_owned(),
            history: 1_000,
            history_age: Duration::from_secs(3_600),
            meta_ttl: Duration::from_secs(7 * 24 * 3_600),
            presence_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            probe: Duration::from_secs(1),
        }
    }

    /// The Redis URL.
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// let url = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    /// assert!(RedisConfig::new(url).url().starts_with("redis://"));
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Prefixes every key and pub/sub channel (lucky-sse's `redis_prefix`):
    /// apps sharing a Redis keep apart.
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// // Staging and production on one Redis, apart.
    /// let staging = RedisConfig::new("redis://127.0.0.1:6379").prefix("staging:");
    /// # let _ = staging;
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Messages kept per channel for resuming clients (0: none — every
    /// resume is a reset). A resume reaches back exactly this many; the
    /// stream holding them is trimmed approximately (`MAXLEN ~`, whole
    /// stream nodes), so Redis may keep up to about a hundred more per
    /// channel, never returned.
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// // A ticker whose clients only ever want the latest 100 prices back.
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").history(100);
    /// # let _ = config;
    /// ```
    pub fn history(mut self, messages: usize) -> Self {
        self.history = messages;
        self
    }

    /// How long a channel's history is kept after its last publication.
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").history_age(Duration::from_secs(600));
    /// # let _ = config;
    /// ```
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age;
        self
    }

    /// How long a channel's epoch and offset are kept after its last
    /// publication; a channel published to after that starts a new epoch.
    /// Kept at least as long as the history.
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// // Ids stay continuous across a month of quiet.
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").meta_ttl(Duration::from_secs(30 * 86_400));
    /// # let _ = config;
    /// ```
    pub fn meta_ttl(mut self, ttl: Duration) -> Self {
        self.meta_ttl = ttl;
        self
    }

    /// How long a member stays present once its process stops refreshing it
    /// (a process refreshes its members every third of this).
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// // Leaves of a crashed process show within 15 s.
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").presence_ttl(Duration::from_secs(15));
    /// # let _ = config;
    /// ```
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl;
        self
    }

    /// How long a command may wait for Redis before it fails (a publish
    /// then fails with [`BackendError::Unavailable`]).
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// // A publish fails after 200 ms rather than hold the request up.
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").timeout(Duration::from_millis(200));
    /// # let _ = config;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the pub/sub connection may stay silent before rill pings it
    /// (and reconnects when the ping goes unanswered).
    ///
    /// ```
    /// use rill::broker::RedisConfig;
    /// use std::time::Duration;
    ///
    /// // Behind a load balancer that cuts idle connections after 10 s.
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").probe(Duration::from_secs(4));
    /// # let _ = config;
    /// ```
    pub fn probe(mut self, interval: Duration) -> Self {
        self.probe = interval;
        self
    }

    fn pubsub_channel(&self, channel: &str) -> String {
        format!("{}{{{channel}}}:msgs", self.prefix)
    }

    fn key(&self, channel: &str, suffix: &str) -> String {
        format!("{}{{{channel}}}:{suffix}", self.prefix)
    }
}

/// The broker's [`Backend`](super::Backend) on Redis: positions, history and
/// presence shared by every process connected to the same Redis (and
/// prefix). What it guarantees: [`docs/redis.md`](crate::guides::redis).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::{broker::{RedisBackend, RedisConfig}, hub::Hub};
/// use std::sync::Arc;
///
/// let redis = RedisBackend::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let hub = Hub::builder().backend(Arc::new(redis)).build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    commands: ConnectionManager,
    /// The ordered, pipelined publisher (`publisher.rs`).
    publisher: mpsc::UnboundedSender<publisher::Job>,
    listener: mpsc::UnboundedSender<Command>,
    /// Set by the listener while its connection is up and subscribed.
    listening: Arc<AtomicBool>,
    /// Channels listened to, and whether their SUBSCRIBE is confirmed.
    subscribed: Subscribed,
    inbox: OnceLock<Inbox>,
    history: redis::Script,
    items_read: redis::Script,
    commit: redis::Script,
    presence: redis::Script,
    sweep: redis::Script,
    /// This process's members, refreshed in Redis until removed.
    members: Mutex<HashMap<MemberKey, String>>,
}

/// The channels this process listens to, each with whether its SUBSCRIBE
/// is confirmed on the current pub/sub connection (shared with the
/// listener, which confirms them).
#[derive(Clone, Default)]
pub(super) struct Subscribed(Arc<Mutex<HashMap<String, Confirmation>>>);

/// One listened channel's SUBSCRIBE: confirmed yet, and whether a read went
/// ahead without waiting for it (then the channel's subscribers catch up
/// once it is confirmed: what was published in between is in the history).
struct Confirmation {
    confirmed: tokio::sync::watch::Sender<bool>,
    read_ahead: Arc<AtomicBool>,
}

impl Subscribed {
    fn add(&self, channel: &str) {
        lock(&self.0)
            .entry(channel.to_owned())
            .or_insert_with(|| Confirmation {
                confirmed: tokio::sync::watch::channel(false).0,
                read_ahead: Arc::default(),
            });
    }

    fn remove(&self, channel: &str) {
        lock(&self.0).remove(channel);
    }

    fn channels(&self) -> Vec<String> {
        lock(&self.0).keys().cloned().collect()
    }

    fn watch(
        &self,
        channel: &str,
    ) -> Option<(tokio::sync::watch::Receiver<bool>, Arc<AtomicBool>)> {
        lock(&self.0)
            .get(channel)
            .map(|c| (c.confirmed.subscribe(), c.read_ahead.clone()))
    }

    /// Marks `channel` (or every channel) confirmed or not. For a channel
    /// confirmed after a read went ahead of it, whether to catch its
    /// subscribers up now.
    pub(super) fn set(&self, channel: Option<&str>, confirmed: bool) -> bool {
        let map = lock(&self.0);
        match channel {
            Some(channel) => match map.get(channel) {
                Some(c) => {
                    c.confirmed.send_replace(confirmed);
                    confirmed && c.read_ahead.swap(false, Ordering::AcqRel)
                }
                None => false,
            },
            None => {
                for c in map.values() {
                    c.confirmed.send_replace(confirmed);
                    c.read_ahead.store(false, Ordering::Release);
                }
                false
            }
        }
    }
}

/// A member of a channel: (channel, member id).
type MemberKey = (Arc<str>, Arc<str>);

impl RedisBackend {
    /// Connects to Redis: the command connection (reconnected by itself) and
    /// rill's pub/sub connection (reconnected and resubscribed by rill).
    ///
    /// # Errors
    ///
    /// [`BackendError::Unavailable`] when the URL is invalid or Redis does
    /// not answer within the [timeout](RedisConfig::timeout).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::broker::{BackendError, RedisBackend, RedisConfig};
    /// use std::time::Duration;
    ///
    /// // Nothing listens on port 1: the error says so, at once.
    /// let config = RedisConfig::new("redis://127.0.0.1:1").timeout(Duration::from_millis(200));
    /// let refused = RedisBackend::connect(config).await;
    /// assert!(matches!(refused, Err(BackendError::Unavailable(_))));
    /// # }
    /// ```
    pub async fn connect(config: RedisConfig) -> Result<RedisBackend, BackendError> {
        let client = redis::Client::open(config.url.as_str()).map_err(unavailable)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let commands = tokio::time::timeout(
            config.timeout,
            ConnectionManager::new_with_config(client.clone(), manager_config),
        )
        .await
        .map_err(|_| BackendError::Unavailable("Redis did not answer in time".into()))?
        .map_err(unavailable)?;
        let (listener, receiver) = mpsc::unbounded_channel();
        let (publisher, jobs) = mpsc::unbounded_channel();
        tokio::spawn(publisher::run(
            config.clone(),
            commands.clone(),
            scripts::publish(),
            jobs,
        ));
        let listening = Arc::new(AtomicBool::new(false));
        let subscribed = Subscribed::default();
        let inner = Arc::new(Inner {
            config: config.clone(),
            commands,
            publisher,
            listener,
            listening: listening.clone(),
            subscribed: subscribed.clone(),
            inbox: OnceLock::new(),
            history: scripts::history(),
            items_read: scripts::items_read(),
            commit: scripts::commit(),
            presence: scripts::presence(),
            sweep: scripts::sweep(),
            members: Mutex::new(HashMap::new()),
        });
        tokio::spawn(listener::run(
            client, config, receiver, listening, subscribed,
        ));
        tokio::spawn(refresh_members(Arc::downgrade(&inner)));
        Ok(RedisBackend { inner })
    }

    /// Whether rill's pub/sub connection is up and subscribed now (for a
    /// health check: `false` while it reconnects).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), rill::broker::BackendError> {
    /// use rill::broker::{RedisBackend, RedisConfig};
    ///
    /// let redis = RedisBackend::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
    /// let healthy = redis.is_listening();
    /// # let _ = healthy; Ok(()) }
    /// ```
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.inner.config.url)
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

fn unavailable(error: redis::RedisError) -> BackendError {
    BackendError::Unavailable(Box::new(error))
}

impl Inner {
    /// Runs a command future under the configured timeout.
    async fn timed<T>(
        &self,
        future: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.config.timeout, future).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(BackendError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
    }

    /// Waits (up to the timeout) until `channel`'s SUBSCRIBE is confirmed,
    /// when it is listened to: a position or history read after that misses
    /// nothing that pub/sub does not bring.
    async fn subscribed(&self, channel: &str) {
        let Some((mut confirmed, read_ahead)) = self.subscribed.watch(channel) else {
            return;
        };
        let waited =
            tokio::time::timeout(self.config.timeout, confirmed.wait_for(|yes| *yes)).await;
        if !matches!(waited, Ok(Ok(_))) {
            // Read without the confirmation (a slow Redis): the listener
            // has the channel's subscribers catch up once it comes.
            read_ahead.store(true, Ordering::Release);
        }
    }
}

impl Backend for RedisBackend {
    fn attach(&self, inbox: Inbox) {
        let _ = self.inner.inbox.set(inbox.clone());
        let _ = self.inner.listener.send(Command::Attach(inbox));
    }

    fn publish(
        &self,
        channel: &str,
        publication: Publication,
    ) -> BoxFuture<Result<Position, PublishError>> {
        // Queued now, before the future is polled: publications reach
        // Redis in the order of these calls (see `publisher`).
        let (reply, placed) = tokio::sync::oneshot::channel();
        let job = publisher::Job {
            channel: channel.to_owned(),
            body: codec::encode(&publication),
            epoch: fresh_epoch().as_str().to_owned(),
            reply,
        };
        let queued = self.inner.publisher.send(job).is_ok();
        Box::pin(async move {
            if !queued {
                return Err(PublishError::Backend(BackendError::Detached));
            }
            match placed.await {
                Ok(result) => result.map_err(PublishError::Backend),
                Err(_) => Err(PublishError::Backend(BackendError::Detached)),
            }
        })
    }

    fn send_ephemeral(&self, message: Arc<Message>) {
        let inner = self.inner.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut connection = inner.commands.clone();
            let payload = codec::ephemeral(&message);
            let target = inner.config.pubsub_channel(message.channel());
            if let Err(error) = inner
                .timed(connection.publish::<_, _, ()>(target, payload))
                .await
            {
                tracing::warn!(%error, channel = message.channel(), "presence change not sent");
            }
        });
    }

    fn position(&self, channel: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
        let inner = self.inner.clone();
        let meta = inner.config.key(channel, "meta");
        let channel = channel.to_owned();
        Box::pin(async move {
            inner.subscribed(&channel).await;
            let mut connection = inner.commands.clone();
            let (epoch, offset): (Option<String>, Option<String>) = inner
                .timed(
                    redis::cmd("HMGET")
                        .arg(meta)
                        .arg("e")
                        .arg("s")
                        .query_async(&mut connection),
                )
                .await?;
            Ok(match (epoch, offset) {
                (Some(epoch), Some(offset)) => position(&epoch, &offset),
                _ => None,
            })
        })
    }

    fn history(&self, channel: &str, since: &Since) -> BoxFuture<Result<History, BackendError>> {
        let inner = self.inner.clone();
        let channel: Arc<str> = channel.into();
        let since = since.clone();
        Box::pin(async move {
            let config = &inner.config;
            let first = match &since {
                Since::Start => 0,
                Since::After(position) => position.offset().saturating_add(1),
            };
            inner.subscribed(&channel).await;
            let mut connection = inner.commands.clone();
            type Entries = Vec<(String, HashMap<String, Vec<u8>>)>;
            let (epoch, top, entries): (Option<String>, Option<String>, Entries) = inner
                .timed(
                    inner
                        .history
                        .key(config.key(&channel, "meta"))
                        .key(config.key(&channel, "log"))
                        .arg(first)
                        .arg(config.history)
                        .invoke_async(&mut connection),
                )
                .await?;
            let mut messages = Vec::with_capacity(entries.len());
            let current = match (epoch, top) {
                (Some(epoch), Some(top)) => position(&epoch, &top),
                _ => None,
            };
            if let Some(current) = &current {
                for (id, fields) in entries {
                    let offset = id.split('-').next().and_then(|o| o.parse::<u64>().ok());
                    let message = offset.and_then(|offset| {
                        let position = Position::new(current.epoch().clone(), offset);
                        codec::message(&channel, position, fields.get("d")?)
                    });
                    match message {
                        Some(message) => messages.push(Arc::new(message)),
                        _ => tracing::warn!(%channel, %id, "unreadable history entry skipped"),
                    }
                }
            }
            Ok(continuity(&since, current.as_ref(), messages))
        })
    }

    fn listen(&self, channel: &str) {
        self.inner.subscribed.add(channel);
        let _ = self
            .inner
            .listener
            .send(Command::Listen(channel.to_owned()));
    }

    fn unlisten(&self, channel: &str) {
        self.inner.subscribed.remove(channel);
        let _ = self
            .inner
            .listener
            .send(Command::Unlisten(channel.to_owned()));
    }

    fn presence_add(&self, channel: &str, member: Member) {
        let json = member_json(&member);
        lock(&self.inner.members).insert((channel.into(), member.id.clone()), json.clone());
        let inner = self.inner.clone();
        let (channel, id) = (channel.to_owned(), member.id.clone());
        spawn(async move {
            let expiry = now_ms() + inner.config.presence_ttl.as_millis() as u64;
            let mut pipe = redis::pipe();
            pipe.hset(inner.config.key(&channel, "pres"), &*id, json)
                .zadd(inner.config.key(&channel, "pexp"), &*id, expiry);
            let mut connection = inner.commands.clone();
            if let Err(error) = inner.timed(pipe.query_async::<()>(&mut connection)).await {
                tracing::warn!(%error, %channel, "presence not recorded; retried at the next refresh");
            }
        });
    }

    fn presence_refresh(&self, channel: &str, member_id: &str) {
        let inner = self.inner.clone();
        let (channel, id) = (channel.to_owned(), member_id.to_owned());
        spawn(async move {
            let expiry = now_ms() + inner.config.presence_ttl.as_millis() as u64;
            let mut connection = inner.commands.clone();
            let _ = inner
                .timed(connection.zadd::<_, _, _, ()>(
                    inner.config.key(&channel, "pexp"),
                    id,
                    expiry,
                ))
                .await;
        });
    }

    fn presence_remove(&self, channel: &str, member_id: &str) {
        let channel_key: Arc<str> = channel.into();
        lock(&self.inner.members).remove(&(channel_key, member_id.into()));
        let inner = self.inner.clone();
        let (channel, id) = (channel.to_owned(), member_id.to_owned());
        spawn(async move {
            let mut pipe = redis::pipe();
            pipe.hdel(inner.config.key(&channel, "pres"), &id)
                .zrem(inner.config.key(&channel, "pexp"), &id);
            let mut connection = inner.commands.clone();
            if let Err(error) = inner.timed(pipe.query_async::<()>(&mut connection)).await {
                tracing::warn!(%error, %channel, "presence removal failed; the member expires");
            }
        });
    }

    fn shared(&self) -> bool {
        true
    }

    fn stash(
        &self,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<Result<(), BackendError>> {
        self.stash_value(key, value, ttl)
    }

    fn unstash(&self, key: &str) -> BoxFuture<Result<Option<String>, BackendError>> {
        self.unstash_value(key)
    }

    fn keyed(&self) -> Option<Arc<dyn KeyedItems>> {
        Some(Arc::new(self.clone()))
    }

    fn report_stats(&self, node: &str, json: String) {
        let inner = self.inner.clone();
        let (stats, expiry) = self.stats_keys();
        let node = node.to_owned();
        spawn(async move {
            let until = now_ms() + REPORT_TTL.as_millis() as u64;
            let mut pipe = redis::pipe();
            pipe.hset(&stats, &node, json).zadd(&expiry, &node, until);
            // Reports of processes gone for good are dropped, not kept forever.
            pipe.cmd("ZRANGEBYSCORE")
                .arg(&expiry)
                .arg("-inf")
                .arg(now_ms());
            let mut connection = inner.commands.clone();
            let gone: Result<((), (), Vec<String>), _> =
                inner.timed(pipe.query_async(&mut connection)).await;
            if let Ok((_, _, gone)) = gone {
                if !gone.is_empty() {
                    let mut pipe = redis::pipe();
                    pipe.hdel(&stats, &gone).zrem(&expiry, &gone);
                    let _ = inner.timed(pipe.query_async::<()>(&mut connection)).await;
                }
            }
        });
    }

    fn stats_reports(&self) -> BoxFuture<Result<Vec<String>, BackendError>> {
        let inner = self.inner.clone();
        let (stats, expiry) = self.stats_keys();
        Box::pin(async move {
            let mut connection = inner.commands.clone();
            inner
                .timed(
                    inner
                        .presence
                        .key(stats)
                        .key(expiry)
                        .arg(now_ms())
                        .invoke_async(&mut connection),
                )
                .await
        })
    }

    fn presence(&self, channel: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
        let inner = self.inner.clone();
        let channel = channel.to_owned();
        Box::pin(async move {
            let mut connection = inner.commands.clone();
            let stored: Vec<String> = inner
                .timed(
                    inner
                        .presence
                        .key(inner.config.key(&channel, "pres"))
                        .key(inner.config.key(&channel, "pexp"))
                        .arg(now_ms())
                        .invoke_async(&mut connection),
                )
                .await?;
            let mut members: Vec<Member> = stored
                .iter()
                .filter_map(|json| member_from_json(json))
                .collect();
            members.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(members)
        })
    }
}

impl RedisBackend {
    fn stats_keys(&self) -> (String, String) {
        let prefix = &self.inner.config.prefix;
        (format!("{prefix}nodes:stats"), format!("{prefix}nodes:exp"))
    }
}

/// How long a process's stats report counts without a newer one.
const REPORT_TTL: Duration = Duration::from_secs(5);

/// Whether a history read continues from `since`: the same epoch, and the
/// first message right after the position (or nothing newer exists).
fn continuity(since: &Since, current: Option<&Position>, messages: Vec<Arc<Message>>) -> History {
    let Since::After(from) = since else {
        return History::Continuous(messages);
    };
    let Some(current) = current else {
        // Redis holds nothing for the channel: its data is gone.
        return History::Reset(messages);
    };
    if current.epoch() != from.epoch() || from.offset() > current.offset() {
        return History::Reset(messages);
    }
    let contiguous = match messages.first() {
        Some(first) => first.position().offset() == from.offset() + 1,
        None => from.offset() == current.offset(),
    };
    if contiguous {
        History::Continuous(messages)
    } else {
        History::Reset(messages)
    }
}

/// An epoch for a channel that starts one — offered with every publish, used
/// only by the one that finds no epoch: a random seed drawn once per process
/// plus a counter, so no epoch a client may still hold comes back, without a
/// system call per publish.
fn fresh_epoch() -> Epoch {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        getrandom::u64().unwrap_or_else(|_| {
            // No OS randomness: the clock still tells processes apart.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Epoch::from_number(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

fn position(epoch: &str, offset: &str) -> Option<Position> {
    Some(Position::new(Epoch::parse(epoch)?, offset.parse().ok()?))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(future);
    }
}

fn member_json(member: &Member) -> String {
    serde_json::json!({ "id": &*member.id, "metadata": &*member.metadata }).to_string()
}

fn member_from_json(json: &str) -> Option<Member> {
    #[derive(serde::Deserialize)]
    struct Stored {
        id: String,
        metadata: Vec<(String, String)>,
    }
    let stored: Stored = serde_json::from_str(json).ok()?;
    Some(Member {
        id: stored.id.into(),
        metadata: Arc::new(stored.metadata),
    })
}

/// Keeps this process's members alive in Redis, every third of their TTL,
/// and sweeps the expired members of the channels it listens to (reporting
/// each leave once), until the backend is dropped.
async fn refresh_members(inner: std::sync::Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(inner) => (inner.config.presence_ttl / 3).max(Duration::from_millis(100)),
        None => return,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let members: Vec<(MemberKey, String)> = lock(&inner.members)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let expiry = now_ms() + inner.config.presence_ttl.as_millis() as u64;
        let mut pipe = redis::pipe();
        for ((channel, id), json) in &members {
            // HSET too: a Redis that lost its data gets the member back.
            pipe.hset(inner.config.key(channel, "pres"), &**id, json)
                .ignore()
                .zadd(inner.config.key(channel, "pexp"), &**id, expiry)
                .ignore();
        }
        let mut connection = inner.commands.clone();
        if !members.is_empty() {
            if let Err(error) = inner.timed(pipe.query_async::<()>(&mut connection)).await {
                tracing::warn!(%error, "presence refresh failed");
            }
        }
        for channel in inner.subscribed.channels() {
            sweep(&inner, &channel).await;
        }
    }
}

/// Removes `channel`'s expired members and reports them as left.
async fn sweep(inner: &Inner, channel: &str) {
    let mut connection = inner.commands.clone();
    let gone: Result<Vec<String>, _> = inner
        .timed(
            inner
                .sweep
                .key(inner.config.key(channel, "pres"))
                .key(inner.config.key(channel, "pexp"))
                .arg(now_ms())
                .invoke_async(&mut connection),
        )
        .await;
    let Ok(mut gone) = gone else { return };
    if gone.is_empty() {
        return;
    }
    gone.sort();
    tracing::info!(
        channel,
        members = gone.len(),
        "presence expired (their process stopped)"
    );
    let json = serde_json::json!({ "channel": channel, "joined": [], "left": gone }).to_string();
    let publication = Publication::new(json).event("presence");
    let payload = format!("p {}", codec::encode(&publication));
    let _ = inner
        .timed(connection.publish::<_, _, ()>(inner.config.pubsub_channel(channel), payload))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: &str, offset: u64) -> Position {
        Position::new(Epoch::parse(epoch).unwrap(), offset)
    }

    fn messages(epoch: &str, offsets: &[u64]) -> Vec<Arc<Message>> {
        offsets
            .iter()
            .map(|&o| {
                Arc::new(Message::new(
                    "c".into(),
                    at(epoch, o),
                    Publication::new("x"),
                ))
            })
            .collect()
    }

    #[test]
    fn continuity_is_judged_from_epoch_and_offsets() {
        let after = |o| Since::After(at("e1", o));
        let cont = |h: History| matches!(h, History::Continuous(_));
        assert!(cont(continuity(
            &after(3),
            Some(&at("e1", 5)),
            messages("e1", &[4, 5])
        )));
        assert!(cont(continuity(
            &after(5),
            Some(&at("e1", 5)),
            messages("e1", &[])
        )));
        // Trimmed past the position.
        assert!(!cont(continuity(
            &after(1),
            Some(&at("e1", 5)),
            messages("e1", &[4, 5])
        )));
        // Another epoch: a flushed or restarted Redis.
        assert!(!cont(continuity(
            &after(3),
            Some(&at("e2", 5)),
            messages("e2", &[4, 5])
        )));
        // Ahead of what Redis has.
        assert!(!cont(continuity(
            &after(9),
            Some(&at("e1", 5)),
            messages("e1", &[])
        )));
        // Nothing at all in Redis.
        assert!(!cont(continuity(&after(3), None, Vec::new())));
        assert!(cont(continuity(
            &Since::Start,
            Some(&at("e1", 5)),
            messages("e1", &[1])
        )));
    }
}
