//! The broadcast hub: named channels that fan one event out to many SSE
//! subscribers, with metadata filters, replay from a bounded history, and a
//! per-subscriber slow-consumer policy.
//!
//! * [`Hub`] — publish from anywhere (sync or async), subscribe from actions.
//! * [`Subscription`] — which channels a request subscribes to, with metadata.
//! * [`Filter`] — deliver only to subscribers whose metadata matches.
//! * [`HubStats`] — connections, subscribers per channel, counters.
//! * `Hub::mount` — the lucky-sse one-liner: `GET /hub`, `GET /hub/stats`,
//!   `POST /hub/broadcast`.
//!
//! See `docs/hub.md`.

mod filter;
mod http;
mod state;
mod stats;
mod subscription;

pub use filter::{Filter, Metadata};
pub use stats::HubStats;
pub use subscription::Subscription;

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};
use tokio::time::Instant;

use crate::{
    context::Context,
    sse::{Event, FrameError},
};
use state::{Limits, State};

/// What happens to a subscriber whose queue is full (it reads slower than
/// events are published). Applies to that subscriber alone: the publisher
/// and the other subscribers never wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// End its stream (cleanly, after what is queued). `EventSource`
    /// reconnects with its `Last-Event-ID` and gets what it missed from
    /// history: nothing is lost while the history reaches back far enough.
    #[default]
    Disconnect,
    /// Drop the events that do not fit, and send `event: gap` (data: how many
    /// were dropped) before the next one that does.
    DropWithGap,
}

/// A join or leave of one subscriber on one channel.
///
/// Hooks run outside the hub's lock, so they may publish through
/// [`hub`](Self::hub) — to announce who is here, say.
#[derive(Debug)]
pub struct Presence<'a> {
    /// The hub, to publish from the hook.
    pub hub: &'a Hub,
    /// The channel joined or left.
    pub channel: &'a str,
    /// The subscriber's id, unique within this hub.
    pub subscriber: u64,
    /// The subscriber's metadata.
    pub metadata: &'a [(String, String)],
}

type PresenceHook = Arc<dyn Fn(&Presence<'_>) + Send + Sync>;
type Authorize = Arc<dyn Fn(&Context, &str) -> bool + Send + Sync>;

/// A fan-out hub of named channels. Cheap to clone; clones share everything.
///
/// # Example
///
/// ```
/// use rill::{hub::Hub, sse::Event, Context, Response, Router};
///
/// let hub = Hub::builder().history(1000).build();
///
/// // subscribe from an action...
/// let h = hub.clone();
/// let router = Router::new().get("/rooms/:room/events", move |ctx: Context| {
///     let hub = h.clone();
///     async move {
///         let room = ctx.param("room").unwrap_or("lobby").to_owned();
///         ctx.subscribe(&hub, room)
///     }
/// });
///
/// // ...and publish from anywhere, even synchronous code
/// let id = hub.publish("lobby", Event::data("hello")).unwrap();
/// assert_eq!(id, 1);
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    state: Mutex<State>,
    limits: Limits,
    queue: usize,
    heartbeat: Duration,
    retry: Option<Duration>,
    on_join: Vec<PresenceHook>,
    on_leave: Vec<PresenceHook>,
    authorize_subscribe: Option<Authorize>,
    authorize_broadcast: Option<Authorize>,
    http_broadcast: bool,
    next_subscriber: AtomicU64,
    connections: AtomicUsize,
}

/// Configures a [`Hub`].
///
/// ```
/// use rill::hub::{Hub, SlowConsumer};
/// use std::time::Duration;
///
/// let hub = Hub::builder()
///     .history(1000)                          // events kept per channel
///     .history_age(Duration::from_secs(600))  // and for at most 10 minutes
///     .queue(256)                             // frames queued per subscriber
///     .slow_consumer(SlowConsumer::Disconnect)
///     .on_join(|p| println!("{} joined {}", p.subscriber, p.channel))
///     .authorize_subscribe(|ctx, channel| channel != "admin" || ctx.header("x-admin").is_some())
///     .http_broadcast(true)
///     .build();
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct HubBuilder {
    history: usize,
    max_age: Duration,
    queue: usize,
    slow: SlowConsumer,
    heartbeat: Duration,
    retry: Option<Duration>,
    on_join: Vec<PresenceHook>,
    on_leave: Vec<PresenceHook>,
    authorize_subscribe: Option<Authorize>,
    authorize_broadcast: Option<Authorize>,
    http_broadcast: bool,
}

/// Default events kept per channel.
pub const DEFAULT_HISTORY: usize = 1000;
/// Default age after which events leave the history.
pub const DEFAULT_HISTORY_AGE: Duration = Duration::from_secs(600);
/// Default frames queued per subscriber before the slow-consumer policy
/// applies.
pub const DEFAULT_QUEUE: usize = 256;

impl Default for HubBuilder {
    fn default() -> Self {
        HubBuilder {
            history: DEFAULT_HISTORY,
            max_age: DEFAULT_HISTORY_AGE,
            queue: DEFAULT_QUEUE,
            slow: SlowConsumer::default(),
            heartbeat: crate::sse::DEFAULT_HEARTBEAT,
            retry: None,
            on_join: Vec::new(),
            on_leave: Vec::new(),
            authorize_subscribe: None,
            authorize_broadcast: None,
            http_broadcast: false,
        }
    }
}

impl HubBuilder {
    /// How many events each channel keeps for replay (default 1000; 0 keeps
    /// none).
    pub fn history(mut self, events: usize) -> Self {
        self.history = events;
        self
    }

    /// How long an event stays in history (default 10 minutes).
    pub fn history_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How many frames may wait for one subscriber (default 256).
    pub fn queue(mut self, frames: usize) -> Self {
        self.queue = frames.max(1);
        self
    }

    /// What happens to a subscriber whose queue is full.
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow = policy;
        self
    }

    /// The heartbeat interval of subscriber streams (default 15 s; zero
    /// disables).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Sends `retry: <ms>` first on every subscription, telling
    /// `EventSource` how soon to reconnect.
    pub fn retry(mut self, interval: Duration) -> Self {
        self.retry = Some(interval);
        self
    }

    /// Called once per channel when a subscriber joins it (after it is
    /// registered, outside the hub's lock: the hook may publish).
    pub fn on_join(mut self, hook: impl Fn(&Presence<'_>) + Send + Sync + 'static) -> Self {
        self.on_join.push(Arc::new(hook));
        self
    }

    /// Called once per channel when a subscriber's connection ends.
    pub fn on_leave(mut self, hook: impl Fn(&Presence<'_>) + Send + Sync + 'static) -> Self {
        self.on_leave.push(Arc::new(hook));
        self
    }

    /// Decides who may subscribe to which channel; a refused request gets
    /// `403 Forbidden` and no stream. Without it, everyone may.
    pub fn authorize_subscribe(
        mut self,
        decide: impl Fn(&Context, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorize_subscribe = Some(Arc::new(decide));
        self
    }

    /// Decides who may publish to which channel through
    /// `POST <path>/broadcast`; a refused request gets `403 Forbidden`.
    /// Without it, everyone may (once [`http_broadcast`](Self::http_broadcast)
    /// is on).
    pub fn authorize_broadcast(
        mut self,
        decide: impl Fn(&Context, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorize_broadcast = Some(Arc::new(decide));
        self
    }

    /// Mounts `POST <path>/broadcast` with [`Hub::mount`]. Off by default:
    /// publishing over HTTP is a decision, not an accident.
    pub fn http_broadcast(mut self, enabled: bool) -> Self {
        self.http_broadcast = enabled;
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                state: Mutex::new(State::default()),
                limits: Limits {
                    history: self.history,
                    queue: self.queue,
                    max_age: self.max_age,
                    slow: self.slow,
                },
                queue: self.queue,
                heartbeat: self.heartbeat,
                retry: self.retry,
                on_join: self.on_join,
                on_leave: self.on_leave,
                authorize_subscribe: self.authorize_subscribe,
                authorize_broadcast: self.authorize_broadcast,
                http_broadcast: self.http_broadcast,
                next_subscriber: AtomicU64::new(1),
                connections: AtomicUsize::new(0),
            }),
        }
    }
}

impl std::fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBuilder")
            .field("history", &self.history)
            .field("max_age", &self.max_age)
            .field("queue", &self.queue)
            .field("slow", &self.slow)
            .field("http_broadcast", &self.http_broadcast)
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub with the defaults (see [`HubBuilder`]).
    pub fn new() -> Hub {
        HubBuilder::default().build()
    }

    /// Configures a hub.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// Publishes `event` on `channel` to every subscriber, and keeps it in
    /// the channel's history. Returns at once with the id the hub gave the
    /// event (any id set on the event is replaced); never waits on a
    /// subscriber, so it works from synchronous code too.
    ///
    /// # Errors
    ///
    /// [`FrameError`] when the event's name has a line break; nothing is
    /// published.
    pub fn publish(&self, channel: &str, event: Event) -> Result<u64, FrameError> {
        self.publish_inner(channel, event, None)
    }

    /// Publishes to the subscribers of `channel` whose metadata matches
    /// `filter`; replay honours the filter too.
    ///
    /// # Errors
    ///
    /// As for [`publish`](Self::publish).
    pub fn publish_filtered(
        &self,
        channel: &str,
        event: Event,
        filter: Filter,
    ) -> Result<u64, FrameError> {
        let filter = (!filter.is_empty()).then(|| Arc::new(filter));
        self.publish_inner(channel, event, filter)
    }

    fn publish_inner(
        &self,
        channel: &str,
        event: Event,
        filter: Option<Arc<Filter>>,
    ) -> Result<u64, FrameError> {
        let now = Instant::now();
        self.lock()
            .publish(&self.inner.limits, channel, event, filter, now)
    }

    /// How many subscribers `channel` has right now.
    pub fn subscribers(&self, channel: &str) -> usize {
        self.lock().subscribers(channel)
    }

    /// Connections, subscribers per channel, and counters, all exact.
    pub fn stats(&self) -> HubStats {
        let state = self.lock();
        let mut channels = state.channel_counts();
        channels.sort();
        let c = state.counters;
        HubStats {
            connections: self.inner.connections.load(Ordering::Acquire),
            channels,
            published: c.published,
            delivered: c.delivered,
            dropped: c.dropped,
            slow_disconnects: c.slow_disconnects,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent between
        // statements that can panic, so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn presence(
        &self,
        hooks: &[PresenceHook],
        id: u64,
        channels: &[String],
        metadata: &[(String, String)],
    ) {
        for channel in channels {
            let presence = Presence {
                hub: self,
                channel,
                subscriber: id,
                metadata,
            };
            for hook in hooks {
                hook(&presence);
            }
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field(
                "connections",
                &self.inner.connections.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}
