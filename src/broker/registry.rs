//! [`Registry`]: a broker's local subscribers, channel by channel, and the
//! fan-out of every message its backend delivers.
//!
//! # Locks and order
//!
//! * Channels live in [`SHARDS`] shard maps; a shard's lock is held only to
//!   find, add or remove a channel, never while delivering.
//! * Each channel has its own lock, held while a message of that channel is
//!   offered to its subscribers, while a subscriber joins or leaves it, and
//!   while a catching-up subscriber switches to live delivery. Publishing to
//!   one channel never waits for another channel's fan-out.
//! * Lock order: backend (its channel log) → registry channel → sink (the
//!   subscriber's pipe). The shard lock is never held with a channel lock
//!   (a leaving subscriber marks the channel removed under the channel lock,
//!   releases it, then takes the shard lock to drop the entry).
//! * Per channel, messages reach the registry in position order (the
//!   backend's contract) and are offered under the channel lock, so every
//!   subscriber sees them in that order.
//!
//! # Joining with a position (exactly once, or a reset)
//!
//! A subscriber resuming from a position is registered *catching up*: live
//! messages of its channel are buffered for it from that moment. Then the
//! history after its position is read from the backend; under the channel
//! lock, the history is offered, then the buffered messages not already in
//! it (by offset), and the subscriber switches to live. Nothing published
//! after the registration can be missed (it is buffered), nothing before it
//! (it is in the history), and nothing is offered twice (offsets). If the
//! history says continuity is lost (another epoch, or older than what is
//! kept), the subscriber gets a reset first, then what the history holds.
//!
//! A backend that detects a gap (a message whose offset does not follow the
//! last one delivered) or lost contact puts every live subscriber of the
//! channel back into catching up, from its own last position. The channel's
//! last delivered position is moved by deliveries only: a catch-up's
//! history may run ahead of what pub/sub has delivered so far, and if it
//! moved that position, the delivery of those messages would be dropped as
//! already seen — lost to the subscribers that were live meanwhile. Before
//! the first delivery, the newest position a history showed is kept aside
//! so that the first delivery is still checked for a gap or a new epoch.
//!
//! On a backend other processes share, a subscriber joining "from now" is
//! registered catching up too, starts at the channel's position read then,
//! and catches up from it (`start_then_catch_up`). A catch-up that offered
//! nothing (from the start of an empty channel, or a reset with nothing
//! retained) reports the channel's position read then only in-process: on
//! a shared backend that read can see a publication pub/sub has yet to
//! deliver, which would then be dropped as seen. These rules are checked
//! in every order of the events that race — placements, pub/sub
//! deliveries, the subscription's confirmation, a cut and restored pub/sub
//! connection, the answers to position and history reads, a second joiner
//! whose catch-up reads past what the first was delivered, a join from the
//! start of an empty channel — by the model
//! test `tests/shared_backend_model.rs`.
//!
//! # Arrivals, and fan-outs that take many at once
//!
//! What the backend delivers is first appended to the channel's *arrivals*
//! (a queue under a lock of its own, so a publisher never waits for a
//! fan-out in progress), numbered in order. Whoever then holds the channel
//! lock takes every arrival waiting and offers them, subscriber by
//! subscriber: all the messages one subscriber is owed go to its sink in
//! one [`Sink::offer_many`] (one lock of its queue, one wake of its
//! writer), which is what makes a burst to many subscribers cheap.
//!
//! * A delivery fans out at once, under the channel lock — so
//!   [`Broker::publish`](super::Broker::publish) has offered its message to
//!   every local subscriber when it returns — except inside
//!   [`Broker::publish_detached`](super::Broker::publish_detached) on a
//!   runtime: that only appends, and the channel's fan-out task (one at a
//!   time, `scheduled`) offers whatever accumulated. A loop of detached
//!   publishes costs the publisher one append each; each subscriber gets
//!   the burst in a few runs.
//! * The task takes at most [`FAN_OUT_RUN`] arrivals as one run and works
//!   in slices of [`FAN_OUT_SLICE`] subscribers, yielding between them
//!   (releasing the channel lock), so the writers it woke start sending
//!   while it goes on, and a subscriber that keeps up drains a run before
//!   it gets the next. A run offered to only some subscribers
//!   waits in `unfinished`; every fan-out finishes it before it takes new
//!   arrivals. A task that finds nothing left clears `scheduled` under the
//!   arrivals lock, so an arrival is never left without a task (the
//!   hand-off's rules are in `handoff.rs`, checked by loom models).
//! * Arrivals are taken whole, under the channel lock, and a run is
//!   finished before the next is taken: per channel, order holds.
//! * Lock order: channel lock → arrivals lock. A joiner gets the number of
//!   the next arrival under both: it is offered nothing that arrived before
//!   it joined. Whatever reads or moves a subscriber's position (finishing a
//!   catch-up, reporting a start, a resync) first fans out what waits, so
//!   positions and arrivals never disagree; a live subscriber is still
//!   offered nothing at or before its position.
//! * A transport that sends a subscriber messages of its own calls
//!   [`Registry::flush`] first: what was published before is offered
//!   before them (one atomic load when no fan-out task is pending).

use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, PoisonError, Weak,
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use super::{
    backend::{Backend, BoxFuture, History, Since},
    counter::Counter,
    error::{BackendError, SubscribeError},
    handoff::Handoff,
    message::{advance, Epoch, Message, MessageKind, Position, Publication},
    presence::{snapshot_json, Member, PresenceDiff},
    shards::{Shards, SHARDS},
    sink::{Delivery, Offer, Sink},
    slab::Slab,
    SlowConsumer, MAX_CHANNEL_NAME,
};

/// Counters of a broker's activity, all exact.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: Counter,
    pub(crate) delivered: Counter,
    pub(crate) dropped: Counter,
    pub(crate) slow_disconnects: Counter,
    pub(crate) resets: Counter,
}

/// Locks a mutex whose critical sections leave it consistent between
/// statements that can panic: a poisoned lock is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A broker's local subscribers.
pub(crate) struct Registry {
    shards: Shards<Arc<ChannelCell>>,
    channels: AtomicUsize,
    max_channels: usize,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) counters: Counters,
    /// This broker's prefix for member ids.
    node: Arc<str>,
    next_subscription: AtomicU64,
    presence: PresenceTicks,
    /// Channels whose arrivals wait for a fan-out task.
    deferred: AtomicUsize,
}

/// Presence changes waiting for the next tick.
struct PresenceTicks {
    /// Whether joins and leaves are sent as presence messages.
    enabled: bool,
    interval: Duration,
    dirty: Mutex<Vec<Arc<ChannelCell>>>,
    ticking: AtomicBool,
}

/// One channel's subscribers.
pub(crate) struct ChannelCell {
    name: Arc<str>,
    /// Subscribers now, readable without the lock (stats).
    count: AtomicUsize,
    state: Mutex<ChannelState>,
    /// Delivered, not yet offered (see the module doc). Taken after
    /// `state`, never before it.
    arrivals: Mutex<Arrivals>,
}

/// A channel's deliveries waiting for a fan-out.
#[derive(Default)]
struct Arrivals {
    /// The queue, and whether a fan-out task is on its way (its rules are
    /// in `handoff.rs`).
    handoff: Handoff<Arrival>,
    /// The number the next arrival gets.
    next: u64,
    /// The position of the last publication the backend delivered (gap
    /// detection, and dropping a delivery made twice). Moved by deliveries
    /// only, never by a catch-up's history: what one subscriber read from
    /// history says nothing about what the live ones were offered, and a
    /// delivery dropped as already seen because of it would be lost to
    /// them.
    last: Option<Position>,
    /// Before the first delivery, the newest position a catch-up's history
    /// showed: the first delivery must follow it (or come before it), in
    /// its epoch, else it is a gap.
    read: Option<Position>,
}

/// One delivered message, numbered.
struct Arrival {
    message: Arc<Message>,
    number: u64,
    /// Something is missing before it: the subscribers catch up.
    gap: bool,
}

#[derive(Default)]
struct ChannelState {
    /// Set when the last subscriber left and the cell was taken out of its
    /// shard: a joiner holding this cell looks the channel up again.
    removed: bool,
    subscribers: Slab<Entry>,
    presence: PresenceDiff,
    /// Whether this cell waits in the presence tick's list.
    dirty: bool,
    /// A run of arrivals a fan-out task offered to only part of the
    /// subscribers so far.
    unfinished: Option<Unfinished>,
}

/// A run of arrivals offered to the subscribers before `next_key`.
struct Unfinished {
    run: Vec<Arrival>,
    next_key: usize,
}

/// One subscriber on one channel.
struct Entry {
    sub: Arc<Subscriber>,
    /// The last position offered to it (or resumed from).
    last: Option<Position>,
    /// `Some` while catching up: live messages buffered meanwhile.
    catching_up: Option<Vec<Arc<Message>>>,
    /// Messages dropped since the last gap notice (drop policy).
    dropped: u64,
    /// Put on hold by a resync: its catch-up has yet to start.
    resync: bool,
    /// The number of the first arrival it is offered.
    first_arrival: u64,
}

/// A subscription as the registry knows it.
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    pub(crate) member_id: Arc<str>,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) policy: SlowConsumer,
    /// Whether it receives presence messages.
    pub(crate) presence: bool,
}

/// Where a subscription sits in one channel, to leave it in O(1).
pub(crate) struct Joined {
    cell: Arc<ChannelCell>,
    key: usize,
}

impl Registry {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        max_channels: usize,
        node: Arc<str>,
        presence_events: bool,
        presence_interval: Duration,
    ) -> Self {
        Registry {
            shards: Shards::default(),
            channels: AtomicUsize::new(0),
            max_channels,
            backend,
            counters: Counters::default(),
            node,
            next_subscription: AtomicU64::new(1),
            deferred: AtomicUsize::new(0),
            presence: PresenceTicks {
                enabled: presence_events,
                interval: presence_interval,
                dirty: Mutex::default(),
                ticking: AtomicBool::new(false),
            },
        }
    }

    /// A new subscriber with its own member id.
    pub(crate) fn subscriber(
        &self,
        sink: Arc<dyn Sink>,
        policy: SlowConsumer,
        presence: bool,
    ) -> Arc<Subscriber> {
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        Arc::new(Subscriber {
            id,
            member_id: format!("{}.{id}", self.node).into(),
            sink,
            policy,
            presence,
        })
    }

    /// How many channels have local subscribers.
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.load(Ordering::Acquire)
    }

    /// Local subscribers of `channel` now.
    pub(crate) fn subscriber_count(&self, channel: &str) -> usize {
        self.shards
            .lock(channel)
            .get(channel)
            .map_or(0, |cell| cell.count.load(Ordering::Acquire))
    }

    /// Every channel with local subscribers and their count, one shard
    /// lock at a time (never a lock across the whole walk).
    pub(crate) fn channel_counts(&self) -> Vec<(Arc<str>, usize)> {
        let mut all = Vec::new();
        for i in 0..SHARDS {
            let shard = self.shards.lock_nth(i);
            all.extend(
                shard
                    .values()
                    .map(|cell| (cell.name.clone(), cell.count.load(Ordering::Acquire))),
            );
        }
        all
    }

    /// The cell of `channel`, created if `create` (within the cap).
    fn cell(
        &self,
        channel: &str,
        create: bool,
    ) -> Result<Option<Arc<ChannelCell>>, SubscribeError> {
        let mut shard = self.shards.lock(channel);
        if let Some(cell) = shard.get(channel) {
            return Ok(Some(cell.clone()));
        }
        if !create {
            return Ok(None);
        }
        if self.channels.load(Ordering::Acquire) >= self.max_channels {
            return Err(SubscribeError::TooManyChannels {
                max: self.max_channels,
            });
        }
        self.channels.fetch_add(1, Ordering::AcqRel);
        let name: Arc<str> = channel.into();
        let cell = Arc::new(ChannelCell {
            name: name.clone(),
            count: AtomicUsize::new(0),
            state: Mutex::default(),
            arrivals: Mutex::default(),
        });
        shard.insert(name, cell.clone());
        Ok(Some(cell))
    }

    /// Adds `sub` to `channel`; from `since`, it catches up first.
    pub(crate) fn join(
        self: &Arc<Self>,
        sub: &Arc<Subscriber>,
        channel: &str,
        since: Option<Since>,
    ) -> Result<Joined, SubscribeError> {
        if channel.is_empty() || channel.len() > MAX_CHANNEL_NAME {
            return Err(SubscribeError::InvalidChannel);
        }
        // On a backend other processes share, "from now" is exact only as a
        // catch-up: the position now, then the history after it once this
        // process's subscription to the channel is in place (see
        // `start_then_catch_up`). In-process, live delivery starts at once.
        let exact_start = since.is_none() && self.backend.shared();
        let (cell, key) = loop {
            let Some(cell) = self.cell(channel, true)? else {
                unreachable!("cell() creates when asked")
            };
            let mut state = lock(&cell.state);
            if state.removed {
                continue;
            }
            let first = state.subscribers.is_empty();
            let first_arrival = lock(&cell.arrivals).next;
            let key = state.subscribers.insert(Entry {
                sub: sub.clone(),
                last: match &since {
                    Some(Since::After(position)) => Some(position.clone()),
                    _ => None,
                },
                catching_up: (since.is_some() || exact_start).then(Vec::new),
                dropped: 0,
                resync: false,
                first_arrival,
            });
            cell.count.store(state.subscribers.len(), Ordering::Release);
            if first {
                self.backend.listen(channel);
            }
            let member = Member {
                id: sub.member_id.clone(),
                metadata: Arc::new(sub.sink.metadata().clone()),
            };
            self.backend.presence_add(channel, member.clone());
            if self.presence.enabled {
                state.presence.joined(member);
                self.mark_dirty(&cell, &mut state);
            }
            drop(state);
            break (cell, key);
        };
        if sub.presence && self.presence.enabled {
            self.send_snapshot(&cell, key, sub.id);
        }
        match since {
            Some(since) => self.catch_up(&cell, key, sub.id, &since),
            None if exact_start => self.start_then_catch_up(&cell, key, sub.id),
            None => self.report_start(&cell, key, sub.id),
        }
        Ok(Joined { cell, key })
    }

    /// Takes `sub` out of the channel it joined.
    pub(crate) fn leave(self: &Arc<Self>, sub: &Subscriber, joined: &Joined) {
        let cell = &joined.cell;
        let emptied = {
            let mut state = lock(&cell.state);
            let Some(_) = state
                .subscribers
                .remove_if(joined.key, |entry| entry.sub.id == sub.id)
            else {
                return;
            };
            self.left(cell, &mut state, sub)
        };
        if emptied {
            self.forget(cell);
        }
    }

    /// Bookkeeping once `sub` is out of `cell`'s slab; whether the cell is
    /// now empty (and marked removed), to be taken out of its shard.
    fn left(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        state: &mut ChannelState,
        sub: &Subscriber,
    ) -> bool {
        cell.count.store(state.subscribers.len(), Ordering::Release);
        self.backend.presence_remove(&cell.name, &sub.member_id);
        if self.presence.enabled {
            state.presence.left(&sub.member_id);
            self.mark_dirty(cell, state);
        }
        if !state.subscribers.is_empty() {
            return false;
        }
        self.backend.unlisten(&cell.name);
        // A pending presence diff is dropped with the channel: nobody is
        // left on this node to receive it here, and a channel must not live
        // on because of its presence events.
        state.removed = true;
        true
    }

    fn forget(&self, cell: &Arc<ChannelCell>) {
        let mut shard = self.shards.lock(&cell.name);
        if shard
            .get(&cell.name)
            .is_some_and(|current| Arc::ptr_eq(current, cell))
        {
            shard.remove(&cell.name);
            self.channels.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Delivers `message` to the local subscribers of its channel: appends
    /// it to the channel's arrivals, then fans out — at once, or in a task
    /// inside a detached publish (see the module doc).
    pub(crate) fn deliver(self: &Arc<Self>, message: Arc<Message>) {
        let Ok(Some(cell)) = self.cell(message.channel(), false) else {
            return;
        };
        let deferred = DETACHED
            .with(Cell::get)
            .then(tokio::runtime::Handle::try_current)
            .and_then(Result::ok);
        let spawn = {
            let mut arrivals = lock(&cell.arrivals);
            let mut gap = false;
            if message.kind() == MessageKind::Publication {
                let position = message.position();
                let continuity = match (&arrivals.last, &arrivals.read) {
                    (None, None) => Continuity::Next,
                    (None, Some(read))
                        if read.epoch() != position.epoch()
                            || position.offset() > read.offset() + 1 =>
                    {
                        Continuity::Gap
                    }
                    (None, Some(_)) => Continuity::Next,
                    (Some(last), _) => last_continuity(last, position),
                };
                match continuity {
                    // A backend that delivers twice (after a reconnection).
                    Continuity::Seen => return,
                    Continuity::Next => {}
                    Continuity::Gap => {
                        tracing::debug!(
                            channel = message.channel(),
                            "gap in delivery; catching up"
                        );
                        gap = true;
                    }
                }
                advance(&mut arrivals.last, position);
            }
            let number = arrivals.next;
            arrivals.next += 1;
            let arrival = Arrival {
                message,
                number,
                gap,
            };
            arrivals.handoff.push(arrival, deferred.is_some())
        };
        match deferred {
            None => self.fan_out_now(&cell),
            Some(runtime) if spawn => {
                self.deferred.fetch_add(1, Ordering::AcqRel);
                runtime.spawn(fan_out_task(TaskPending {
                    registry: Arc::downgrade(self),
                    cell,
                    armed: true,
                }));
            }
            Some(_) => {}
        }
    }

    /// Fans out, at once, whatever waits for a fan-out task on `channel`:
    /// a transport calls it before a message of its own, so that what was
    /// published before it (on this thread, or before a synchronization)
    /// is offered first. Costs one atomic load when no task is pending.
    pub(crate) fn flush(self: &Arc<Self>, channel: &str) {
        if self.deferred.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Ok(Some(cell)) = self.cell(channel, false) {
            self.fan_out_now(&cell);
        }
    }

    /// One slice of a fan-out task: whether there may be more to do.
    fn fan_out_slice(self: &Arc<Self>, cell: &Arc<ChannelCell>) -> bool {
        let mut state = lock(&cell.state);
        let (emptied, more) = self.fan_out_some(cell, &mut state, FAN_OUT_SLICE, true);
        drop(state);
        if emptied {
            self.forget(cell);
        }
        more
    }

    /// Fans out every arrival waiting on `cell`; forgets the channel if that
    /// emptied it.
    fn fan_out_now(self: &Arc<Self>, cell: &Arc<ChannelCell>) {
        let mut state = lock(&cell.state);
        let emptied = self.fan_out(cell, &mut state);
        drop(state);
        if emptied {
            self.forget(cell);
        }
    }

    /// Finishes any fan-out left unfinished, then takes every arrival
    /// waiting and offers it, subscriber by subscriber (see
    /// [`fan_out_some`](Self::fan_out_some)). Whether the channel emptied
    /// (the caller forgets it once the channel lock is released).
    fn fan_out(self: &Arc<Self>, cell: &Arc<ChannelCell>, state: &mut ChannelState) -> bool {
        self.fan_out_some(cell, state, usize::MAX, false).0
    }

    /// Offers waiting arrivals to at most `budget` subscribers: first the
    /// rest of a run left unfinished, then (if the budget allows) the
    /// arrivals waiting now, taken whole. Buffers them for those catching
    /// up, starts a catch-up at a gap, applies the slow-consumer policy,
    /// removes those gone. Returns whether the channel emptied, and whether
    /// there may be more to do; a `task` finding nothing to do clears the
    /// channel's `scheduled` flag (under the arrivals lock, so no arrival is
    /// left without a task).
    fn fan_out_some(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        state: &mut ChannelState,
        budget: usize,
        task: bool,
    ) -> (bool, bool) {
        let mut emptied = false;
        if let Some(unfinished) = state.unfinished.take() {
            let (gone, next) =
                self.offer_run_from(cell, state, &unfinished.run, unfinished.next_key, budget);
            emptied |= gone;
            if let Some(next_key) = next {
                state.unfinished = Some(Unfinished {
                    next_key,
                    ..unfinished
                });
                return (emptied, true);
            }
            self.recycle(cell, unfinished.run);
            if budget != usize::MAX {
                return (emptied, true);
            }
        }
        let batch = {
            let mut arrivals = lock(&cell.arrivals);
            let taken = if task {
                arrivals.handoff.take_for_task(FAN_OUT_RUN)
            } else {
                Ok(arrivals.handoff.take())
            };
            match taken {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(empty) => {
                    arrivals.handoff.recycle(empty);
                    return (emptied, false);
                }
                Err(was_scheduled) => {
                    if was_scheduled {
                        self.deferred.fetch_sub(1, Ordering::AcqRel);
                    }
                    return (emptied, false);
                }
            }
        };
        if !batch.iter().any(|a| a.gap) {
            let (gone, next) = self.offer_run_from(cell, state, &batch, 0, budget);
            emptied |= gone;
            match next {
                Some(next_key) => {
                    state.unfinished = Some(Unfinished {
                        run: batch,
                        next_key,
                    })
                }
                None => self.recycle(cell, batch),
            }
            return (emptied, true);
        }
        // A gap: run by run, whole (gaps are rare).
        let mut run = 0;
        for (i, arrival) in batch.iter().enumerate() {
            if arrival.gap {
                emptied |= self
                    .offer_run_from(cell, state, &batch[run..i], 0, usize::MAX)
                    .0;
                // Everyone catches up, this message buffered first.
                Self::hold_for_catch_up(state, &Some(arrival.message.clone()));
                let cell = cell.clone();
                self.defer(move |registry| registry.resync_cell(&cell, None));
                run = i + 1;
            }
        }
        emptied |= self
            .offer_run_from(cell, state, &batch[run..], 0, usize::MAX)
            .0;
        self.recycle(cell, batch);
        (emptied, true)
    }

    /// Keeps an emptied buffer of arrivals for the next run.
    fn recycle(&self, cell: &ChannelCell, batch: Vec<Arrival>) {
        lock(&cell.arrivals).handoff.recycle(batch);
    }

    /// Offers a run of arrivals to the subscribers from key `from_key` on,
    /// at most `budget` of them, each everything it is owed in one
    /// [`Sink::offer_many`]. Returns whether the channel emptied, and the
    /// key to go on from when the budget ran out first.
    fn offer_run_from(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        state: &mut ChannelState,
        run: &[Arrival],
        from_key: usize,
        budget: usize,
    ) -> (bool, Option<usize>) {
        if run.is_empty() {
            return (false, None);
        }
        let mut gone = Vec::new();
        let mut delivered = 0;
        let mut next = None;
        let mut owed: Vec<&Arc<Message>> = Vec::with_capacity(run.len());
        for (visited, (key, entry)) in state.subscribers.iter_mut_from(from_key).enumerate() {
            if visited == budget {
                next = Some(key);
                break;
            }
            owed.clear();
            owed.extend(
                run.iter()
                    .filter(|a| a.number >= entry.first_arrival && wants(&entry.sub, &a.message))
                    .map(|a| &a.message),
            );
            if let Some(buffer) = &mut entry.catching_up {
                buffer.extend(owed.iter().map(|m| Arc::clone(m)));
                continue;
            }
            owed.retain(|m| !already_offered(entry.last.as_ref(), m));
            match self.offer_owed(entry, &owed) {
                Ok(queued) => delivered += queued,
                Err(queued) => {
                    delivered += queued;
                    gone.push(key);
                }
            }
        }
        // Once per run, not per delivery.
        self.counters.delivered.add(delivered);
        (self.remove_gone(cell, state, gone), next)
    }

    /// Offers a live subscriber the messages it is owed, in order, applying
    /// the policy to any that do not fit: how many were queued, as `Err`
    /// once the subscriber is gone.
    fn offer_owed(&self, entry: &mut Entry, owed: &[&Arc<Message>]) -> Result<u64, u64> {
        let mut queued = 0;
        let mut rest = owed;
        while let Some((&first, after)) = rest.split_first() {
            if entry.dropped > 0 || after.is_empty() {
                // One at a time: a gap notice goes first.
                match self.offer(entry, first, Delivery::Live) {
                    Offer::Queued => queued += 1,
                    Offer::Full => {}
                    Offer::Gone => return Err(queued),
                }
                rest = after;
                continue;
            }
            let (taken, outcome) = entry.sub.sink.offer_many(rest, Delivery::Live);
            let taken = taken.min(rest.len());
            if let Some(newest) = rest[..taken]
                .iter()
                .rev()
                .find(|m| m.kind() == MessageKind::Publication)
            {
                advance(&mut entry.last, newest.position());
            }
            queued += taken as u64;
            rest = &rest[taken..];
            match outcome {
                Offer::Queued => break,
                Offer::Gone => return Err(queued),
                Offer::Full => match self.refused(entry) {
                    Offer::Gone => return Err(queued),
                    // That one is dropped; the next is offered after a gap notice.
                    _ => rest = rest.get(1..).unwrap_or_default(),
                },
            }
        }
        Ok(queued)
    }

    /// Offers one message to one subscriber, with the gap notice first if
    /// some were dropped; applies the policy when it is full.
    fn offer(&self, entry: &mut Entry, message: &Arc<Message>, delivery: Delivery) -> Offer {
        let sink = &entry.sub.sink;
        if entry.dropped > 0 {
            match sink.gap(message.channel(), entry.dropped) {
                Offer::Queued => entry.dropped = 0,
                Offer::Gone => return Offer::Gone,
                Offer::Full => {
                    entry.dropped += 1;
                    self.counters.dropped.add(1);
                    return Offer::Full;
                }
            }
        }
        match sink.offer(message, delivery) {
            Offer::Queued => {
                if message.kind() == MessageKind::Publication {
                    advance(&mut entry.last, message.position());
                }
                Offer::Queued
            }
            Offer::Gone => Offer::Gone,
            Offer::Full => self.refused(entry),
        }
    }

    /// A live message did not fit: counts it and applies the policy (`Gone`
    /// once the subscriber is closed, `Full` when it was dropped).
    fn refused(&self, entry: &mut Entry) -> Offer {
        self.counters.dropped.add(1);
        match entry.sub.policy {
            SlowConsumer::Disconnect => {
                self.counters.slow_disconnects.add(1);
                entry.sub.sink.close();
                Offer::Gone
            }
            SlowConsumer::DropWithGap => {
                entry.dropped += 1;
                Offer::Full
            }
        }
    }

    /// Removes the subscribers at `keys`; whether the channel emptied.
    fn remove_gone(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        state: &mut ChannelState,
        keys: Vec<usize>,
    ) -> bool {
        let mut emptied = false;
        for key in keys {
            if let Some(entry) = state.subscribers.remove_if(key, |_| true) {
                emptied = self.left(cell, state, &entry.sub);
            }
        }
        emptied
    }

    /// Starts catching the subscriber at `key` up from `since`: reads the
    /// history (at once for an in-process backend, else in a task) and
    /// finishes under the channel lock.
    fn catch_up(self: &Arc<Self>, cell: &Arc<ChannelCell>, key: usize, sub_id: u64, since: &Since) {
        let history = self.backend.history(&cell.name, since);
        self.when_answered(cell, history, move |registry, cell, result| {
            registry.finish_catch_up(cell, key, sub_id, result)
        });
    }

    /// Runs `then` with the backend's answer: at once when it answered at
    /// once (the in-process backend always does), else in a task. Without a
    /// runtime to wait in, `then` gets `BackendError::Detached`.
    fn when_answered<T: Send + 'static>(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        mut answer: BoxFuture<Result<T, BackendError>>,
        then: impl FnOnce(&Arc<Registry>, &Arc<ChannelCell>, Result<T, BackendError>) + Send + 'static,
    ) {
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(result) = answer.as_mut().poll(&mut cx) {
            then(self, cell, result);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (registry, cell) = (Arc::downgrade(self), cell.clone());
                runtime.spawn(async move {
                    let result = answer.await;
                    if let Some(registry) = registry.upgrade() {
                        then(&registry, &cell, result);
                    }
                });
            }
            Err(_) => {
                tracing::warn!(channel = %cell.name, "no runtime to wait for the backend in");
                then(self, cell, Err(BackendError::Detached));
            }
        }
    }

    /// Offers a subscriber that asked for presence everyone on the channel
    /// (itself included); the diffs of later ticks keep it up to date.
    fn send_snapshot(self: &Arc<Self>, cell: &Arc<ChannelCell>, key: usize, sub_id: u64) {
        let members = self.backend.presence(&cell.name);
        self.when_answered(cell, members, move |registry, cell, result| {
            registry.offer_snapshot(cell, key, sub_id, result)
        });
    }

    fn offer_snapshot(
        &self,
        cell: &ChannelCell,
        key: usize,
        sub_id: u64,
        members: Result<Vec<Member>, BackendError>,
    ) {
        let members = match members {
            Ok(members) => members,
            Err(error) => {
                tracing::warn!(channel = %cell.name, %error, "presence unavailable");
                return;
            }
        };
        let message = Arc::new(Message::with_kind(
            cell.name.clone(),
            Position::new(Epoch::from_number(0), 0),
            MessageKind::Presence,
            Publication::new(snapshot_json(&cell.name, &members)).event("presence"),
        ));
        let mut state = lock(&cell.state);
        if let Some(entry) = state
            .subscribers
            .get_mut(key)
            .filter(|e| e.sub.id == sub_id)
        {
            // Gone or full: the next diff (or the end) says the rest.
            let _ = entry.sub.sink.offer(&message, Delivery::Replay);
        }
    }

    /// A live join on a shared backend: the subscriber (registered catching
    /// up, so live arrivals are buffered) starts at the channel's position
    /// now, and catches up from there — the backend's history read waits
    /// for its subscription to the channel, so whatever was published after
    /// the start comes from the history or from the buffer, never from
    /// neither. Without an answer (the backend is down), it goes live with
    /// what was buffered.
    fn start_then_catch_up(self: &Arc<Self>, cell: &Arc<ChannelCell>, key: usize, sub_id: u64) {
        let top = self.backend.position(&cell.name);
        self.when_answered(cell, top, move |registry, cell, result| {
            let since = match result {
                Ok(Some(top)) => {
                    let mut state = lock(&cell.state);
                    if let Some(entry) = state
                        .subscribers
                        .get_mut(key)
                        .filter(|e| e.sub.id == sub_id)
                    {
                        if entry.last.is_none() {
                            entry.sub.sink.position(&cell.name, &top);
                            entry.last = Some(top.clone());
                        }
                    }
                    Since::After(top)
                }
                // Nothing published yet: everything there will be is new.
                Ok(None) => Since::Start,
                Err(error) => {
                    tracing::warn!(channel = %cell.name, %error, "start unknown; live from here");
                    registry.finish_catch_up(
                        cell,
                        key,
                        sub_id,
                        Ok(History::Continuous(Vec::new())),
                    );
                    return;
                }
            };
            registry.catch_up(cell, key, sub_id, &since);
        });
    }

    /// Tells a subscriber where it starts on a channel it joined without a
    /// position (the channel's last position now), unless a message got
    /// there first: what it needs to resume exactly later.
    fn report_start(self: &Arc<Self>, cell: &Arc<ChannelCell>, key: usize, sub_id: u64) {
        let top = self.backend.position(&cell.name);
        self.when_answered(cell, top, move |registry, cell, result| {
            registry.started_at(cell, key, sub_id, result)
        });
    }

    fn started_at(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        key: usize,
        sub_id: u64,
        top: Result<Option<Position>, BackendError>,
    ) {
        let Ok(Some(top)) = top else { return };
        let mut state = lock(&cell.state);
        // A message that arrived first moves the position itself.
        if self.fan_out(cell, &mut state) {
            drop(state);
            self.forget(cell);
            return;
        }
        let Some(entry) = state
            .subscribers
            .get_mut(key)
            .filter(|e| e.sub.id == sub_id)
        else {
            return;
        };
        if entry.last.is_none() && entry.catching_up.is_none() {
            entry.sub.sink.position(&cell.name, &top);
            entry.last = Some(top);
        }
    }

    /// Offers the history, then the buffered messages it does not hold, and
    /// switches the subscriber to live delivery.
    fn finish_catch_up(
        self: &Arc<Self>,
        cell: &Arc<ChannelCell>,
        key: usize,
        sub_id: u64,
        history: Result<History, BackendError>,
    ) {
        let mut state = lock(&cell.state);
        // What arrived meanwhile goes to its buffer (or elsewhere) first.
        if self.fan_out(cell, &mut state) {
            drop(state);
            self.forget(cell);
            return;
        }
        let Some(entry) = state
            .subscribers
            .get_mut(key)
            .filter(|e| e.sub.id == sub_id)
        else {
            return;
        };
        let Some(buffered) = entry.catching_up.take() else {
            return;
        };
        let (reset, retained) = match history {
            Ok(History::Continuous(messages)) => (false, messages),
            Ok(History::Reset(messages)) => (true, messages),
            Err(error) => {
                tracing::warn!(channel = %cell.name, %error, "history unavailable; resetting");
                (true, Vec::new())
            }
        };
        let mut gone = false;
        if reset {
            self.counters.resets.add(1);
            entry.last = None;
            gone = entry.sub.sink.reset(&cell.name) == Offer::Gone;
        }
        // Before the channel's first delivery, what this history showed
        // (the buffer holds deliveries, so it is empty of publications then).
        let mut arrivals = lock(&cell.arrivals);
        if arrivals.last.is_none() {
            let newest = retained
                .iter()
                .rev()
                .find(|m| m.kind() == MessageKind::Publication);
            if let Some(read) = newest.map(|m| m.position()) {
                let older = arrivals.read.as_ref().is_none_or(|seen| {
                    seen.epoch() != read.epoch() || seen.offset() < read.offset()
                });
                if older {
                    arrivals.read = Some(read.clone());
                }
            }
        }
        drop(arrivals);
        let Some(entry) = state.subscribers.get_mut(key) else {
            return;
        };
        for message in retained.iter().chain(&buffered) {
            if gone {
                break;
            }
            if !wants(&entry.sub, message) || already_offered(entry.last.as_ref(), message) {
                continue;
            }
            match self.offer(entry, message, Delivery::Replay) {
                Offer::Queued => self.counters.delivered.add(1),
                Offer::Full => {}
                Offer::Gone => gone = true,
            }
        }
        if gone {
            let emptied = self.remove_gone(cell, &mut state, vec![key]);
            drop(state);
            if emptied {
                self.forget(cell);
            }
            return;
        }
        entry.sub.sink.caught_up(&cell.name);
        // Nothing offered (a reset with nothing retained, or a start from
        // an empty channel): in-process, tell it where the channel is now
        // (read under the backend's lock, so no publication is on its way).
        // On a shared backend such a read would race what pub/sub is still
        // bringing — a publication placed after the history read but
        // delivered after the answer would be taken as seen and lost — so
        // the subscriber stays at the start, and its first message tells
        // it where it is.
        if entry.last.is_none() && !self.backend.shared() {
            drop(state);
            self.report_start(cell, key, sub_id);
        }
    }

    /// Runs `f` outside the current call: a backend may deliver (and report
    /// lost contact) while holding its own locks, and catching up reads its
    /// history, so it must not happen within the backend's call. In a task
    /// when there is a runtime; at once otherwise.
    fn defer(self: &Arc<Self>, f: impl FnOnce(&Arc<Registry>) + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let registry = Arc::downgrade(self);
                runtime.spawn(async move {
                    if let Some(registry) = registry.upgrade() {
                        f(&registry);
                    }
                });
            }
            Err(_) => f(self),
        }
    }

    /// Puts every live subscriber of `channel` (or of every channel) back
    /// into catching up from its own last position.
    pub(crate) fn resync(self: &Arc<Self>, channel: Option<&str>) {
        let channel = channel.map(str::to_owned);
        self.defer(move |registry| registry.resync_now(channel.as_deref()));
    }

    /// [`resync`](Self::resync) in place: for a backend that calls it with
    /// no lock of its own held, so that no delivery it makes afterwards can
    /// move a subscriber's position before the catch-up is registered.
    pub(crate) fn resync_now(self: &Arc<Self>, channel: Option<&str>) {
        let cells: Vec<Arc<ChannelCell>> = match channel {
            Some(channel) => self
                .cell(channel, false)
                .ok()
                .flatten()
                .into_iter()
                .collect(),
            None => (0..SHARDS)
                .flat_map(|i| {
                    self.shards
                        .lock_nth(i)
                        .values()
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        for cell in cells {
            self.resync_cell(&cell, None);
        }
    }

    /// Marks every live subscriber of the channel as catching up (from its
    /// own last position), `pending` buffered first; those already catching
    /// up buffer it too.
    fn hold_for_catch_up(state: &mut ChannelState, pending: &Option<Arc<Message>>) {
        for (_, entry) in state.subscribers.iter_mut() {
            match &mut entry.catching_up {
                Some(buffer) => buffer.extend(pending.iter().cloned()),
                None => {
                    entry.catching_up = Some(pending.iter().cloned().collect());
                    entry.resync = true;
                }
            }
        }
    }

    /// Catches up every subscriber of the channel that was put on hold (or,
    /// when none was, puts every live one on hold first).
    fn resync_cell(self: &Arc<Self>, cell: &Arc<ChannelCell>, pending: Option<Arc<Message>>) {
        let mut restarts = Vec::new();
        {
            let mut state = lock(&cell.state);
            // Live subscribers get what arrived before they are put on hold.
            if self.fan_out(cell, &mut state) {
                drop(state);
                self.forget(cell);
                return;
            }
            if !state.subscribers.iter_mut().any(|(_, e)| e.resync) {
                Self::hold_for_catch_up(&mut state, &pending);
            }
            for (key, entry) in state.subscribers.iter_mut() {
                if !std::mem::take(&mut entry.resync) {
                    continue;
                }
                let since = match &entry.last {
                    Some(position) => Since::After(position.clone()),
                    None => Since::Start,
                };
                restarts.push((key, entry.sub.id, since));
            }
        }
        for (key, sub_id, since) in restarts {
            self.catch_up(cell, key, sub_id, &since);
        }
    }

    fn mark_dirty(self: &Arc<Self>, cell: &Arc<ChannelCell>, state: &mut ChannelState) {
        if state.dirty {
            return;
        }
        state.dirty = true;
        lock(&self.presence.dirty).push(cell.clone());
        if !self.presence.ticking.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(presence_ticks(Arc::downgrade(self), self.presence.interval));
                }
                Err(_) => self.presence.ticking.store(false, Ordering::Release),
            }
        }
    }

    /// Sends one presence message per channel that changed since the last
    /// tick.
    fn presence_tick(&self) {
        let cells = std::mem::take(&mut *lock(&self.presence.dirty));
        for cell in cells {
            let json = {
                let mut state = lock(&cell.state);
                state.dirty = false;
                if state.removed || state.presence.is_empty() {
                    continue;
                }
                state.presence.take_json(&cell.name)
            };
            let message = Message::with_kind(
                cell.name.clone(),
                Position::new(Epoch::from_number(0), 0),
                MessageKind::Presence,
                Publication::new(json).event("presence"),
            );
            self.backend.send_ephemeral(Arc::new(message));
        }
    }
}

/// Subscribers a fan-out task offers to before it lets the writers it woke
/// run (it yields; the channel lock is released in between).
const FAN_OUT_SLICE: usize = 256;

/// Arrivals a fan-out task offers as one run, at most: a longer burst goes
/// out in runs, each to every subscriber before the next, so a subscriber
/// that keeps up drains one run before the next arrives — its queue bounds
/// how far it may fall behind, not how large a burst may be (half the
/// hub's default queue of 256).
const FAN_OUT_RUN: usize = 128;

/// A channel's fan-out task: slices until nothing waits. `pending` is
/// made before the task is spawned, so that even a task dropped before its
/// first poll clears the flag.
async fn fan_out_task(mut pending: TaskPending) {
    let (registry, cell) = (pending.registry.clone(), pending.cell.clone());
    loop {
        let Some(live) = registry.upgrade() else {
            return;
        };
        if !live.fan_out_slice(&cell) {
            // The flag was cleared with the emptiness seen.
            pending.armed = false;
            return;
        }
        drop(live);
        tokio::task::yield_now().await;
    }
}

/// Clears a channel's `scheduled` flag if its fan-out task is dropped
/// before it finished (a runtime shutting down), so that a later detached
/// publish schedules another.
struct TaskPending {
    registry: Weak<Registry>,
    cell: Arc<ChannelCell>,
    armed: bool,
}

impl Drop for TaskPending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let was = lock(&self.cell.arrivals).handoff.abandon();
        if let (true, Some(registry)) = (was, self.registry.upgrade()) {
            registry.deferred.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

thread_local! {
    /// Set while this thread runs a detached publish (see the module doc).
    static DETACHED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as a detached publish: deliveries it makes on this thread are
/// fanned out in a task (when there is a runtime) rather than at once.
pub(crate) fn detached<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            DETACHED.with(|d| d.set(self.0));
        }
    }
    let _reset = Reset(DETACHED.with(|d| d.replace(true)));
    f()
}

/// How a delivered publication stands to the last one of its channel.
enum Continuity {
    /// It follows (or is the first).
    Next,
    /// It was delivered already.
    Seen,
    /// Something is missing before it, or its epoch changed.
    Gap,
}

/// How a delivered publication at `position` stands to the last one
/// delivered.
fn last_continuity(last: &Position, position: &Position) -> Continuity {
    if last.epoch() != position.epoch() {
        Continuity::Gap
    } else if position.offset() <= last.offset() {
        Continuity::Seen
    } else if position.offset() == last.offset() + 1 {
        Continuity::Next
    } else {
        Continuity::Gap
    }
}

/// Whether `sub` receives `message` at all: presence only when it asked,
/// publications when its metadata matches their filter.
fn wants(sub: &Subscriber, message: &Message) -> bool {
    match message.kind() {
        MessageKind::Presence => sub.presence,
        MessageKind::Publication => message
            .filter()
            .is_none_or(|filter| filter.matches(sub.sink.metadata())),
    }
}

/// Whether a subscriber at `last` already had `message` (same epoch, not
/// past its offset).
fn already_offered(last: Option<&Position>, message: &Message) -> bool {
    message.kind() == MessageKind::Publication
        && last.is_some_and(|last| {
            last.epoch() == message.position().epoch()
                && message.position().offset() <= last.offset()
        })
}

async fn presence_ticks(registry: Weak<Registry>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.presence_tick();
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("channels", &self.channel_count())
            .finish_non_exhaustive()
    }
}
