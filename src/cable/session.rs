//! One cable connection's task: `connect` (or the restore of a session),
//! the welcome, then the client's commands — one at a time, in the order
//! they arrived — and the ticks of its channels' timers; at the end,
//! `unsubscribed` for every subscription and the connection's `disconnect`
//! (or, for an extended-protocol client that lost its socket, the session
//! parked to be restored).
//!
//! The socket's driver reads frames into a bounded queue while this task
//! runs a channel's method, so a slow method never stalls the socket; only
//! once the queue is full does reading wait, and TCP slows the client.
//!
//! Memory: an idle connection is mostly this task's future, so it holds
//! only the loop's state. The paths taken now and then — `connect`, a
//! restore, a command, the end — are boxed when taken, the channel of timer
//! ticks is made when a first timer (or a session id) needs it, and the
//! subscription list starts with room for one: 7 KiB per subscribed
//! connection instead of 12 (the `cable_fanout` benchmark).

use bytes::Bytes;
use serde_json::Map;
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

use super::{
    channel::{run_method, DynChannel, StreamRequest, Subscription},
    connection::{ConnectRequest, Identifiers},
    outbox::Outbox,
    parked::{self, Parked, ParkedSub},
    protocol::{self, Command, DisconnectReason, HistoryRequest, Identifier, Protocol},
    server::{unix_seconds, Cable},
    sink::CableSink,
};
use crate::{
    broker::{
        BrokerSubscription, Epoch, History, MessageKind, Position, Since, SlowConsumer,
        SubscribeOptions,
    },
    ws::{
        shared::{SocketShared, DISCONNECTED, SHUTDOWN},
        socket::Receiver,
    },
};

/// Something for the session that is not a client's command.
pub(crate) enum Event {
    /// A new connection restores this session (its client saw the old
    /// socket die before the server did): hand the session over and end.
    TakeOver(oneshot::Sender<Parked>),
    /// A timer of a subscription (by identifier) fired.
    Tick {
        identifier: Arc<str>,
        action: String,
    },
    /// A restored subscription's client did not ask for history in time.
    RestoreTimeout { identifier: Arc<str> },
}

/// One subscription.
struct Sub {
    handle: Subscription,
    channel: Box<dyn DynChannel>,
    sink: Arc<CableSink>,
    membership: Option<BrokerSubscription>,
    streams: Vec<String>,
    timers: Vec<(Duration, String)>,
    ticking: Vec<AbortHandle>,
    /// Restored, streams not joined yet: waiting for the client's history
    /// request (or the timeout), with when the socket was lost.
    awaiting_history: Option<SystemTime>,
}

impl Sub {
    fn key(&self) -> &str {
        self.handle.identifier().as_str()
    }

    fn stop_timers(&mut self) {
        for timer in self.ticking.drain(..) {
            timer.abort();
        }
    }
}

struct Session {
    cable: Cable,
    out: Arc<Outbox>,
    ext: bool,
    identifiers: Arc<Identifiers>,
    subs: Vec<Sub>,
    events: Option<mpsc::Sender<Event>>,
    events_rx: Option<mpsc::Receiver<Event>>,
}

impl Session {
    /// The sender of this connection's events, made on first use.
    fn events(&mut self) -> mpsc::Sender<Event> {
        if let Some(events) = &self.events {
            return events.clone();
        }
        let (tx, rx) = mpsc::channel(64);
        self.events = Some(tx.clone());
        self.events_rx = Some(rx);
        tx
    }
}

async fn next_event(rx: &mut Option<mpsc::Receiver<Event>>) -> Option<Event> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs one connection until its socket closes.
pub(crate) async fn run(
    cable: Cable,
    request: ConnectRequest,
    protocol: Protocol,
    out: Arc<Outbox>,
    socket: Arc<SocketShared>,
    mut incoming: Receiver,
) {
    let ext = protocol == Protocol::ExtJson;
    let restore_sid = ext
        .then(|| {
            request
                .query("sid")
                .or_else(|| request.header("x-anycable-restore-sid"))
                .map(str::to_owned)
        })
        .flatten();
    let parked = match restore_sid {
        Some(sid) => Box::pin(cable.restore(&sid)).await,
        None => None,
    };
    let (identifiers, parked) = match parked {
        Some(parked) => (parked.identifiers.clone(), Some(parked)),
        None => match Box::pin(cable.run_connect(request)).await {
            Ok(identifiers) => (Arc::new(identifiers), None),
            Err(rejection) => {
                let frame = protocol::disconnect(rejection.reason(), false);
                out.end(Some(Bytes::from(frame)), 1000, "");
                return;
            }
        },
    };
    let mut session = Session {
        cable: cable.clone(),
        out: out.clone(),
        ext,
        identifiers: identifiers.clone(),
        subs: Vec::with_capacity(1),
        events: None,
        events_rx: None,
    };
    let sid = ext.then(new_session_id);
    let welcome = match parked {
        Some(parked) => {
            let ids: Vec<Identifier> = parked.subs.iter().map(|s| s.identifier.clone()).collect();
            for sub in parked.subs {
                session.restore(sub, parked.parked_at);
            }
            protocol::welcome(sid.as_deref(), Some(&ids))
        }
        None => protocol::welcome(sid.as_deref(), None),
    };
    out.push(Bytes::from(welcome), false);
    // Pinged and reachable from now on: after its welcome.
    let _registered = cable.register(
        identifiers,
        out.clone(),
        sid.clone().map(|sid| (sid, session.events())),
    );
    out.set_farewell(Bytes::from(protocol::disconnect(
        DisconnectReason::ServerRestart,
        true,
    )));

    loop {
        tokio::select! {
            message = incoming.recv() => {
                let message = match message {
                    Some(Ok(message)) => message,
                    // A protocol violation or an oversized message: the
                    // driver is closing the socket with 1007 or 1009.
                    Some(Err(error)) => {
                        tracing::debug!(%error, "cable client broke the WebSocket protocol");
                        break;
                    }
                    None => break,
                };
                let Some(text) = message.as_text() else {
                    tracing::debug!("cable client sent a binary message; ignored");
                    continue;
                };
                match protocol::parse_command(text) {
                    Ok(command) => Box::pin(session.handle(command)).await,
                    Err(error) => tracing::info!(%error, "cable command not understood; ignored"),
                }
            }
            Some(event) = next_event(&mut session.events_rx) => {
                if let Event::TakeOver(reply) = event {
                    // The client is back on another socket: this one is
                    // done, and the session lives on there.
                    let _ = reply.send(session.take_parked());
                    out.end(None, 1000, "session restored elsewhere");
                    return;
                }
                Box::pin(session.handle_event(event)).await;
            }
        }
    }

    let flags = socket.flags();
    let lost = flags & DISCONNECTED != 0 && flags & SHUTDOWN == 0 && !out.is_ended();
    match sid {
        Some(sid) if lost && !session.cable.inner.session_ttl.is_zero() => {
            let parked = session.take_parked();
            if let Err(parked) = Box::pin(session.cable.park(sid, parked)).await {
                tracing::warn!("too many cable sessions kept for restoring; this one ends");
                Box::pin(parked::end(&session.cable, parked)).await;
            }
        }
        _ => Box::pin(session.end()).await,
    }
}

/// A session id: 128 random bits from the operating system, in hex. A
/// session restores a connection's identity, so it must not be guessable.
fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    if let Err(error) = getrandom::fill(&mut bytes) {
        // No randomness to be had: a session that cannot be restored
        // (nothing is ever parked under an empty id's guess).
        tracing::error!(%error, "no OS randomness for a cable session id");
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Session {
    fn find(&self, identifier: &Identifier) -> Option<usize> {
        self.index_of(identifier.as_str())
    }

    fn index_of(&self, identifier: &str) -> Option<usize> {
        self.subs.iter().position(|s| s.key() == identifier)
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                identifier,
                history,
            } => {
                let history = if self.ext { history } else { None };
                self.subscribe(identifier, history).await;
            }
            Command::Unsubscribe { identifier } => match self.find(&identifier) {
                Some(i) => {
                    let sub = self.subs.remove(i);
                    self.unsubscribe(sub).await;
                }
                None => tracing::info!(
                    identifier = identifier.as_str(),
                    "unsubscribe from a subscription not found; ignored"
                ),
            },
            Command::Message { identifier, data } => {
                let Some(i) = self.find(&identifier) else {
                    tracing::info!(
                        identifier = identifier.as_str(),
                        "message for a subscription not found; ignored"
                    );
                    return;
                };
                let action = data.action().map(str::to_owned);
                let data = data.into_data();
                self.perform(i, action.as_deref(), data).await;
            }
            Command::History {
                identifier,
                history,
            } => {
                if !self.ext {
                    tracing::info!("history asked for outside the extended protocol; ignored");
                    return;
                }
                match self.find(&identifier) {
                    Some(i) => self.answer_history(i, &history).await,
                    None => tracing::info!(
                        identifier = identifier.as_str(),
                        "history for a subscription not found; ignored"
                    ),
                }
            }
            Command::Pong => {}
        }
    }

    async fn handle_event(&mut self, event: Event) {
        match event {
            Event::Tick { identifier, action } => {
                let found = self.index_of(&identifier);
                if let Some(i) = found {
                    self.perform(i, Some(&action), Map::new()).await;
                }
            }
            // Handled by the connection's loop.
            Event::TakeOver(_) => {}
            Event::RestoreTimeout { identifier } => {
                let Some(i) = self.index_of(&identifier) else {
                    return;
                };
                let Some(parked_at) = self.subs[i].awaiting_history.take() else {
                    return;
                };
                let streams = self.subs[i].streams.clone();
                let since = HistoryRequest {
                    since: Some(unix_seconds(parked_at)),
                    streams: Vec::new(),
                };
                self.join_streams(i, &streams, Some(&since), false).await;
            }
        }
    }

    /// A new subscription: `subscribed`, then rejection or confirmation.
    async fn subscribe(&mut self, identifier: Identifier, history: Option<HistoryRequest>) {
        if self.find(&identifier).is_some() {
            // The Rails client resends until confirmed; a second
            // confirmation would make AnyCable's client unsubscribe.
            tracing::debug!(
                identifier = identifier.as_str(),
                "duplicate subscribe ignored"
            );
            return;
        }
        if self.subs.len() >= self.cable.inner.max_subscriptions {
            tracing::warn!(
                identifier = identifier.as_str(),
                max = self.cable.inner.max_subscriptions,
                "too many subscriptions on one connection; rejected"
            );
            let frame = protocol::reject_subscription(&identifier);
            self.out.push(Bytes::from(frame), false);
            return;
        }
        let Some(factory) = self.cable.channel_factory(identifier.channel()) else {
            tracing::info!(
                channel = identifier.channel(),
                "subscription to an unknown channel"
            );
            if self.cable.inner.reject_unknown {
                let frame = protocol::reject_subscription(&identifier);
                self.out.push(Bytes::from(frame), false);
            }
            return;
        };
        let token: Arc<str> = identifier.token().into();
        let sink = Arc::new(CableSink::new(
            self.out.clone(),
            token,
            self.ext,
            self.cable.inner.queue,
            false,
        ));
        let handle = Subscription::new(
            identifier.clone(),
            self.identifiers.clone(),
            self.cable.clone(),
            self.out.clone(),
        );
        let mut channel = factory();
        let ok = run_method("subscribed", channel.subscribed(&handle)).await;
        let requests = handle.take_requests();
        if requests.rejected || !ok {
            run_method("unsubscribed", channel.unsubscribed(&handle)).await;
            let frame = protocol::reject_subscription(&identifier);
            self.out.push(Bytes::from(frame), false);
            return;
        }
        self.subs.push(Sub {
            handle,
            channel,
            sink: sink.clone(),
            membership: None,
            streams: Vec::new(),
            timers: Vec::new(),
            ticking: Vec::new(),
            awaiting_history: None,
        });
        let i = self.subs.len() - 1;
        self.start_timers(i, requests.timers);
        let joins = self.stream_changes(i, requests.streams);
        self.join_streams(i, &joins, history.as_ref(), true).await;
        let confirm = protocol::confirm_subscription(&identifier);
        sink.confirm(Some(Bytes::from(confirm)));
    }

    /// A subscription ends: `unsubscribed`, then its streams and timers.
    async fn unsubscribe(&mut self, mut sub: Sub) {
        sub.stop_timers();
        run_method("unsubscribed", sub.channel.unsubscribed(&sub.handle)).await;
        // Requests made in `unsubscribed` have nothing left to act on.
        let _ = sub.handle.take_requests();
        drop(sub.membership.take());
    }

    /// An action (`Some`) or `receive` (`None`) of subscription `i`.
    async fn perform(
        &mut self,
        i: usize,
        action: Option<&str>,
        data: Map<String, serde_json::Value>,
    ) {
        let sub = &mut self.subs[i];
        match action {
            Some(action) => {
                run_method(action, sub.channel.perform(&sub.handle, action, data)).await;
            }
            None => {
                run_method("receive", sub.channel.receive(&sub.handle, data)).await;
            }
        }
        let requests = sub.handle.take_requests();
        if requests.rejected {
            tracing::info!(
                identifier = sub.key(),
                "reject() outside subscribed; ignored (unsubscribe instead)"
            );
        }
        self.start_timers(i, requests.timers);
        let joins = self.stream_changes(i, requests.streams);
        self.join_streams(i, &joins, None, false).await;
    }

    /// Applies stops at once; returns the streams to join, in order.
    fn stream_changes(&mut self, i: usize, requests: Vec<StreamRequest>) -> Vec<String> {
        let sub = &mut self.subs[i];
        let mut joins: Vec<String> = Vec::new();
        for request in requests {
            match request {
                StreamRequest::From(name) => {
                    if !sub.streams.contains(&name) && !joins.contains(&name) {
                        joins.push(name);
                    }
                }
                StreamRequest::Stop(name) => {
                    joins.retain(|s| *s != name);
                    if let Some(at) = sub.streams.iter().position(|s| *s == name) {
                        sub.streams.remove(at);
                        if let Some(membership) = &sub.membership {
                            membership.leave(&name);
                        }
                    }
                }
                StreamRequest::StopAll => {
                    joins.clear();
                    sub.streams.clear();
                    drop(sub.membership.take());
                }
            }
        }
        joins
    }

    /// Joins `streams` for subscription `i`: live, or — answering
    /// `history` — from where the client stands on each (its position, or
    /// the time it asks from). With `history`, the subscription's sink
    /// sends `confirm_history` (or `reject_history`) once every stream
    /// joined with a position has caught up. `record` adds the streams to
    /// the subscription's (a restored one has them already).
    async fn join_streams(
        &mut self,
        i: usize,
        streams: &[String],
        history: Option<&HistoryRequest>,
        record: bool,
    ) {
        let broker = self.cable.inner.broker.clone();
        let mut joins: Vec<(String, Option<Since>)> = Vec::with_capacity(streams.len());
        let mut lost = Vec::new();
        for stream in streams {
            let since = match history {
                Some(history) => match since_for(&broker, stream, history).await {
                    Ok(since) => since,
                    Err(()) => {
                        lost.push(stream.clone());
                        Some(Since::Start)
                    }
                },
                None => None,
            };
            joins.push((stream.clone(), since));
        }
        let sub = &mut self.subs[i];
        if history.is_some() {
            sub.sink.expect_history(
                joins
                    .iter()
                    .filter(|(_, since)| since.is_some())
                    .map(|(s, _)| s.clone()),
            );
            for stream in &lost {
                sub.sink.reject_stream(stream);
            }
        }
        let membership = sub.membership.get_or_insert_with(|| {
            broker.subscribe(
                sub.sink.clone(),
                SubscribeOptions {
                    slow_consumer: SlowConsumer::Disconnect,
                    presence: false,
                },
            )
        });
        for (stream, since) in joins {
            let had_since = since.is_some();
            match membership.join(&stream, since) {
                Ok(()) => {
                    if record && !sub.streams.contains(&stream) {
                        sub.streams.push(stream);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, stream, "cable stream could not be joined");
                    if had_since {
                        sub.sink.reject_stream(&stream);
                    }
                }
            }
        }
    }

    /// The client's `history` command for subscription `i`.
    async fn answer_history(&mut self, i: usize, history: &HistoryRequest) {
        if self.subs[i].awaiting_history.take().is_some() {
            let streams = self.subs[i].streams.clone();
            self.join_streams(i, &streams, Some(history), false).await;
            return;
        }
        // Delivery on this connection was never interrupted: everything
        // since the subscription started was sent, in order.
        let sub = &self.subs[i];
        if sub.sink.history_answered() {
            let frame = protocol::confirm_history(sub.handle.identifier());
            self.out.push(Bytes::from(frame), false);
        }
    }

    fn start_timers(&mut self, i: usize, timers: Vec<(Duration, String)>) {
        for (every, action) in timers {
            let handle = self.spawn_timer(i, every, action.clone());
            let sub = &mut self.subs[i];
            sub.ticking.push(handle);
            sub.timers.push((every, action));
        }
    }

    fn spawn_timer(&mut self, i: usize, every: Duration, action: String) -> AbortHandle {
        let identifier: Arc<str> = self.subs[i].key().into();
        let events = self.events();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                let tick = Event::Tick {
                    identifier: identifier.clone(),
                    action: action.clone(),
                };
                match events.try_send(tick) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        })
        .abort_handle()
    }

    /// Brings back a parked subscription: confirmed already, its timers
    /// running, its streams joined once the client says where it stands.
    fn restore(&mut self, parked: ParkedSub, parked_at: SystemTime) {
        let token: Arc<str> = parked.identifier.token().into();
        let sink = Arc::new(CableSink::new(
            self.out.clone(),
            token.clone(),
            self.ext,
            self.cable.inner.queue,
            true,
        ));
        let handle = Subscription::new(
            parked.identifier,
            self.identifiers.clone(),
            self.cable.clone(),
            self.out.clone(),
        );
        self.subs.push(Sub {
            handle,
            channel: parked.channel,
            sink,
            membership: None,
            streams: parked.streams,
            timers: Vec::new(),
            ticking: Vec::new(),
            awaiting_history: Some(parked_at),
        });
        let i = self.subs.len() - 1;
        self.start_timers(i, parked.timers);
        let events = self.events();
        let identifier: Arc<str> = self.subs[i].key().into();
        let wait = self.cable.inner.restore_wait;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = events.send(Event::RestoreTimeout { identifier }).await;
        });
    }

    /// The subscriptions, timers stopped and streams left, as a parked
    /// session.
    fn take_parked(&mut self) -> Parked {
        let subs = self
            .subs
            .drain(..)
            .map(|mut sub| {
                sub.stop_timers();
                ParkedSub {
                    identifier: sub.handle.identifier().clone(),
                    channel: sub.channel,
                    streams: sub.streams,
                    timers: sub.timers,
                }
            })
            .collect();
        Parked {
            identifiers: self.identifiers.clone(),
            subs,
            parked_at: SystemTime::now(),
            expires: Instant::now() + self.cable.inner.session_ttl,
            stashed: None,
        }
    }

    /// The connection is over: `unsubscribed` for every subscription, in
    /// the order they were made, then `disconnect`.
    async fn end(mut self) {
        for sub in std::mem::take(&mut self.subs) {
            self.unsubscribe(sub).await;
        }
        self.cable
            .run_disconnect(Identifiers::clone(&self.identifiers))
            .await;
    }
}

/// Where to join `stream` from for a client's `history` request: after its
/// position on the stream, or from the first message kept since the time
/// it asks from; `None` (live) when it asks neither. `Err` when its position
/// cannot be read (an epoch this server never made): continuity is lost.
async fn since_for(
    broker: &crate::broker::Broker,
    stream: &str,
    history: &HistoryRequest,
) -> Result<Option<Since>, ()> {
    if let Some((_, position)) = history.streams.iter().find(|(s, _)| s == stream) {
        let epoch = Epoch::parse(&position.epoch).ok_or(())?;
        return Ok(Some(Since::After(Position::new(epoch, position.offset))));
    }
    let Some(since) = history.since else {
        return Ok(None);
    };
    // The messages kept, and the first that reached this process at or
    // after `since`: joining after the one before it is exact.
    let kept = match broker.history(stream, &Since::Start).await {
        Ok(History::Continuous(kept) | History::Reset(kept)) => kept,
        Err(error) => {
            tracing::warn!(%error, stream, "history unavailable for a time-based resume");
            return Err(());
        }
    };
    let age = unix_seconds(SystemTime::now()).saturating_sub(since);
    let now = tokio::time::Instant::now();
    let cutoff = now.checked_sub(Duration::from_secs(age)).unwrap_or(now);
    let kept: Vec<_> = kept
        .into_iter()
        .filter(|m| m.kind() == MessageKind::Publication)
        .collect();
    Ok(Some(match kept.iter().position(|m| m.received >= cutoff) {
        Some(0) => Since::Start,
        Some(first) => Since::After(kept[first - 1].position().clone()),
        None => match kept.last() {
            Some(last) => Since::After(last.position().clone()),
            None => Since::Start,
        },
    }))
}
