//! The hub's state behind its one lock: per-channel history and
//! subscribers, the id sequence, and the counters.
//!
//! Everything that orders events — assigning an id, appending to history,
//! handing the frame to every subscriber, and taking a new subscriber's
//! replay snapshot while registering it — happens under that lock, so a
//! subscriber sees every event exactly once, in id order.

use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};
use tokio::time::Instant;

use super::{filter::Filter, Metadata, SlowConsumer};
use crate::{
    live::{
        shared::{CLOSED, DISCONNECTED},
        Shared,
    },
    sse::{encode_comment, Event, FrameError},
};

/// How often (in publishes) every channel is swept for expired history and
/// forgotten when empty.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub(crate) struct State {
    /// The last id handed out. Ids are hub-wide, so they are monotonic per
    /// channel and a subscriber to several channels has one position.
    seq: u64,
    channels: HashMap<String, Channel>,
    subscribers: HashMap<u64, Subscriber, BuildHasherDefault<IdHasher>>,
    pub(crate) counters: Counters,
}

/// Hashes subscriber ids, which the hub hands out itself from a counter: no
/// client picks them, so one multiplication (a bijection, so no two ids
/// collide) does instead of SipHash on every delivery.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) published: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) slow_disconnects: u64,
}

#[derive(Default)]
struct Channel {
    history: VecDeque<Entry>,
    /// The highest id that left this channel's history: a client resuming
    /// from an older id has missed something.
    evicted_up_to: u64,
    subscribers: Vec<u64>,
}

struct Entry {
    seq: u64,
    at: Instant,
    frame: Bytes,
    filter: Option<Arc<Filter>>,
}

pub(crate) struct Subscriber {
    pub(crate) tx: mpsc::Sender<Bytes>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) metadata: Arc<Metadata>,
    pub(crate) channels: Arc<[String]>,
    /// Events dropped since the last gap marker (drop policy).
    pending_gap: u64,
}

impl Subscriber {
    pub(crate) fn new(
        tx: mpsc::Sender<Bytes>,
        shared: Arc<Shared>,
        metadata: Arc<Metadata>,
        channels: Arc<[String]>,
    ) -> Self {
        Subscriber {
            tx,
            shared,
            metadata,
            channels,
            pending_gap: 0,
        }
    }

    /// Ends the subscription: the body drains what is queued, then ends
    /// cleanly (and `EventSource` reconnects with its Last-Event-ID).
    fn close(mut self) {
        self.shared.set(CLOSED);
        self.tx.close_channel();
    }
}

/// History bounds and the slow-consumer policy.
pub(crate) struct Limits {
    pub(crate) history: usize,
    /// Frames that may wait for one subscriber.
    pub(crate) queue: usize,
    pub(crate) max_age: std::time::Duration,
    pub(crate) slow: SlowConsumer,
}

impl State {
    /// Publishes `event` on `channel`: assigns the next id, keeps it in
    /// history, and hands one shared frame to every matching subscriber
    /// without waiting on any of them.
    pub(crate) fn publish(
        &mut self,
        limits: &Limits,
        channel: &str,
        event: Event,
        filter: Option<Arc<Filter>>,
        now: Instant,
    ) -> Result<u64, FrameError> {
        let seq = self.seq + 1;
        let frame = event.id(seq.to_string()).encode()?;
        self.seq = seq;
        self.counters.published += 1;

        if !self.channels.contains_key(channel) {
            self.channels.insert(channel.to_owned(), Channel::default());
        }
        let State {
            channels,
            subscribers,
            counters,
            ..
        } = self;
        let Some(ch) = channels.get_mut(channel) else {
            unreachable!("the channel was inserted above")
        };
        ch.history.push_back(Entry {
            seq,
            at: now,
            frame: frame.clone(),
            filter: filter.clone(),
        });
        ch.evict(limits, now);

        let mut gone = Vec::new();
        for &id in &ch.subscribers {
            let Some(sub) = subscribers.get_mut(&id) else {
                continue;
            };
            if filter.as_ref().is_some_and(|f| !f.matches(&sub.metadata)) {
                continue;
            }
            match deliver(sub, &frame, limits, counters) {
                Delivery::Sent | Delivery::Dropped => {}
                Delivery::Gone => gone.push(id),
                Delivery::TooSlow => {
                    counters.slow_disconnects += 1;
                    gone.push(id);
                }
            }
        }
        for id in gone {
            if let Some(sub) = self.remove(id) {
                sub.close();
            }
        }
        if seq % SWEEP_EVERY == 0 {
            self.sweep(limits, now);
        }
        Ok(seq)
    }

    /// Registers a subscriber and returns what it must receive first: a
    /// `reset` event per channel whose history no longer reaches back to
    /// `resume`, then every retained event after `resume`, in id order.
    /// Taken under the same lock as publishing, so nothing falls between the
    /// replay and the live events, and nothing is sent twice.
    pub(crate) fn subscribe(
        &mut self,
        limits: &Limits,
        id: u64,
        subscriber: Subscriber,
        resume: Option<u64>,
        now: Instant,
    ) -> BytesMut {
        let mut first = BytesMut::new();
        let mut replay: Vec<(u64, Bytes)> = Vec::new();
        for name in subscriber.channels.iter() {
            if !self.channels.contains_key(name) {
                self.channels.insert(name.clone(), Channel::default());
            }
            let Some(ch) = self.channels.get_mut(name) else {
                unreachable!("the channel was inserted above")
            };
            ch.evict(limits, now);
            if let Some(k) = resume {
                // An id from the future means the hub restarted and ids
                // began again: the client's position is meaningless.
                let from_future = k > self.seq;
                if from_future || k < ch.evicted_up_to {
                    // A constant event name: only data varies, and data
                    // always encodes.
                    let reset = Event::data(name.as_str()).event("reset");
                    if let Err(error) = reset.encode_into(None, &mut first) {
                        tracing::warn!(%error, "could not encode a reset event");
                    }
                }
                let after = if from_future { 0 } else { k };
                replay.extend(
                    ch.history
                        .iter()
                        .filter(|e| e.seq > after)
                        .filter(|e| {
                            e.filter
                                .as_ref()
                                .is_none_or(|f| f.matches(&subscriber.metadata))
                        })
                        .map(|e| (e.seq, e.frame.clone())),
                );
            }
            ch.subscribers.push(id);
        }
        replay.sort_by_key(|(seq, _)| *seq);
        replay.dedup_by_key(|(seq, _)| *seq);
        for (_, frame) in replay {
            first.extend_from_slice(&frame);
        }
        self.subscribers.insert(id, subscriber);
        first
    }

    /// Unregisters a subscriber from every channel it joined.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Subscriber> {
        let sub = self.subscribers.remove(&id)?;
        for name in sub.channels.iter() {
            if let Some(ch) = self.channels.get_mut(name) {
                ch.subscribers.retain(|&s| s != id);
            }
        }
        Some(sub)
    }

    /// Ends a subscription from the server side (shutdown).
    pub(crate) fn close(&mut self, id: u64) {
        if let Some(sub) = self.remove(id) {
            sub.close();
        }
    }

    /// Subscribers of `channel` right now.
    pub(crate) fn subscribers(&self, channel: &str) -> usize {
        self.channels
            .get(channel)
            .map_or(0, |c| c.subscribers.len())
    }

    /// Every known channel with its subscriber count.
    pub(crate) fn channel_counts(&self) -> Vec<(String, usize)> {
        self.channels
            .iter()
            .map(|(name, ch)| (name.clone(), ch.subscribers.len()))
            .collect()
    }

    /// Drops expired history everywhere and forgets channels with neither
    /// history nor subscribers, so arbitrary channel names cannot pile up.
    fn sweep(&mut self, limits: &Limits, now: Instant) {
        for ch in self.channels.values_mut() {
            ch.evict(limits, now);
        }
        self.channels
            .retain(|_, ch| !ch.history.is_empty() || !ch.subscribers.is_empty());
    }
}

impl Channel {
    fn evict(&mut self, limits: &Limits, now: Instant) {
        while let Some(front) = self.history.front() {
            let too_many = self.history.len() > limits.history;
            let too_old = now.saturating_duration_since(front.at) > limits.max_age;
            if !(too_many || too_old) {
                break;
            }
            self.evicted_up_to = front.seq;
            self.history.pop_front();
        }
    }
}

enum Delivery {
    Sent,
    Dropped,
    Gone,
    TooSlow,
}

/// Hands `frame` to one subscriber without waiting.
fn deliver(
    sub: &mut Subscriber,
    frame: &Bytes,
    limits: &Limits,
    counters: &mut Counters,
) -> Delivery {
    // The body sets DISCONNECTED when hyper drops it: the client is gone.
    if sub.shared.flags() & (CLOSED | DISCONNECTED) != 0 {
        return Delivery::Gone;
    }
    if sub.pending_gap > 0 {
        if queue_frame(&sub.shared, gap_frame(sub.pending_gap), limits.queue) {
            sub.pending_gap = 0;
        } else {
            sub.pending_gap += 1;
            counters.dropped += 1;
            return Delivery::Dropped;
        }
    }
    if queue_frame(&sub.shared, frame.clone(), limits.queue) {
        counters.delivered += 1;
        return Delivery::Sent;
    }
    counters.dropped += 1;
    match limits.slow {
        SlowConsumer::Disconnect => Delivery::TooSlow,
        SlowConsumer::DropWithGap => {
            sub.pending_gap += 1;
            Delivery::Dropped
        }
    }
}

/// Queues one frame for a subscriber unless `queue` frames already wait:
/// appended to its pending batch, which its body takes whole on its next
/// poll, and the body woken if it was waiting. No channel message and no
/// allocation for a frame under 4 KiB (it is copied); at most one wake
/// however many events pile up before the body runs. Returns whether the
/// frame was queued.
pub(crate) fn queue_frame(shared: &Shared, frame: Bytes, queue: usize) -> bool {
    let waker = {
        let mut pending = shared.pending();
        if pending.writes() + shared.in_flight() >= queue {
            return false;
        }
        pending.push(frame);
        pending.take_waker()
    };
    if let Some(body) = waker {
        body.wake();
    }
    true
}

/// `event: gap` with the number of events dropped; no id, so the client's
/// Last-Event-ID stays on the last event it really received.
fn gap_frame(dropped: u64) -> Bytes {
    let mut buf = BytesMut::new();
    match Event::data(dropped.to_string())
        .event("gap")
        .encode_into(None, &mut buf)
    {
        Ok(()) => buf.freeze(),
        // A constant event name and a number cannot be invalid.
        Err(_) => {
            encode_comment("gap", &mut buf);
            buf.freeze()
        }
    }
}
