//! A model test of the broker on a shared backend (what the Redis backend
//! is to it): every order of the events that race — publications placed in
//! the backend, their pub/sub deliveries, the confirmation of this
//! process's subscription, a dropped and restored pub/sub connection, and
//! the answers to the broker's position and history reads — is played
//! against the real broker, and each subscriber must get every publication
//! after its start that its filter lets through exactly once, in order,
//! without a reset. A second subscriber may join at any point: its catch-up
//! can read the history past what pub/sub has delivered so far, which must
//! not cost the first one anything. A subscriber joining from the start of
//! an empty channel must get every publication.
//!
//! The backend here is scripted: it holds the channel's log, answers reads
//! only when the model says so (with the log as it is at that moment, as a
//! Redis script reads it atomically), and delivers a publication only if it
//! was placed while the subscription was confirmed and connected (pub/sub
//! loses what is published before `SUBSCRIBE` or during a cut). The rules
//! under test are the registry's (`src/broker/registry.rs`: a live join on
//! a shared backend starts at the position read and catches up; a gap or a
//! resync catches up from history, buffering live deliveries, merging by
//! offset).

use rill::broker::{
    Backend, BackendError, BoxFuture, Broker, Delivery, Epoch, Filter, History, Inbox, Member,
    Message, Metadata, Offer, Position, Publication, PublishError, Since, Sink, SubscribeOptions,
};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

const CHANNEL: &str = "orders";

/// A read the broker made, waiting for the model to answer it.
enum Pending {
    Position(oneshot::Sender<Result<Option<Position>, BackendError>>),
    History(Since, oneshot::Sender<Result<History, BackendError>>),
}

#[derive(Default)]
struct Scripted {
    inbox: OnceLock<Inbox>,
    log: Mutex<Vec<Arc<Message>>>,
    pending: Mutex<Vec<Pending>>,
    /// A read was answered before the subscription was confirmed (the
    /// Redis backend waits for the confirmation only so long): once it is
    /// confirmed, the channel's subscribers are resynced.
    read_ahead: Mutex<bool>,
}

fn epoch() -> Epoch {
    Epoch::from_number(7)
}

impl Scripted {
    /// Places publication `n` in the log (its offset is `n`); with
    /// `filtered`, publication 2 is for team "a" only.
    fn place(&self, n: u64, filtered: bool) -> Arc<Message> {
        let mut publication = Publication::new(format!("m{n}"));
        if filtered && n == FILTERED {
            publication = publication.filter(Filter::new().eq("team", "a"));
        }
        let message = Arc::new(Message::new(
            CHANNEL.into(),
            Position::new(epoch(), n),
            publication,
        ));
        self.log.lock().unwrap().push(message.clone());
        message
    }

    fn deliver(&self, message: Arc<Message>) {
        self.inbox.get().expect("attached").deliver(message);
    }

    /// Answers the oldest pending read from the log as it is now; `false`
    /// when none is pending. `confirmed`: whether the subscription is.
    fn answer(&self, confirmed: bool) -> bool {
        let mut pending = self.pending.lock().unwrap();
        if pending.is_empty() {
            return false;
        }
        let read = pending.remove(0);
        drop(pending);
        if !confirmed {
            *self.read_ahead.lock().unwrap() = true;
        }
        let log = self.log.lock().unwrap().clone();
        match read {
            Pending::Position(reply) => {
                let _ = reply.send(Ok(log.last().map(|m| m.position().clone())));
            }
            Pending::History(since, reply) => {
                let after = match &since {
                    Since::Start => 0,
                    Since::After(position) => position.offset(),
                };
                let messages = log
                    .iter()
                    .filter(|m| m.position().offset() > after)
                    .cloned()
                    .collect();
                let _ = reply.send(Ok(History::Continuous(messages)));
            }
        }
        true
    }
}

impl Backend for Scripted {
    fn attach(&self, inbox: Inbox) {
        let _ = self.inbox.set(inbox);
    }
    fn publish(&self, _: &str, _: Publication) -> BoxFuture<Result<Position, PublishError>> {
        Box::pin(async { Err(PublishError::Backend(BackendError::Detached)) })
    }
    fn send_ephemeral(&self, _: Arc<Message>) {}
    fn position(&self, _: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
        let (reply, answer) = oneshot::channel();
        self.pending.lock().unwrap().push(Pending::Position(reply));
        Box::pin(async move { answer.await.unwrap_or(Err(BackendError::Detached)) })
    }
    fn history(&self, _: &str, since: &Since) -> BoxFuture<Result<History, BackendError>> {
        let (reply, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap()
            .push(Pending::History(since.clone(), reply));
        Box::pin(async move { answer.await.unwrap_or(Err(BackendError::Detached)) })
    }
    fn listen(&self, _: &str) {}
    fn unlisten(&self, _: &str) {}
    fn presence_add(&self, _: &str, _: Member) {}
    fn presence_refresh(&self, _: &str, _: &str) {}
    fn presence_remove(&self, _: &str, _: &str) {}
    fn presence(&self, _: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn shared(&self) -> bool {
        true
    }
}

/// The publication a filter keeps from team "b" (in the filtered runs).
const FILTERED: u64 = 2;

/// What a subscriber got: offsets, and `0` for a reset.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<u64>>,
    start: Mutex<Option<u64>>,
    metadata: Metadata,
}

impl Sink for Recorder {
    fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
        self.got.lock().unwrap().push(message.position().offset());
        Offer::Queued
    }
    fn reset(&self, _: &str) -> Offer {
        self.got.lock().unwrap().push(0);
        Offer::Queued
    }
    fn gap(&self, _: &str, _: u64) -> Offer {
        Offer::Queued
    }
    fn position(&self, _: &str, position: &Position) {
        self.start.lock().unwrap().get_or_insert(position.offset());
    }
    fn close(&self) {}
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// The next publication is placed in the backend.
    Place,
    /// The oldest placed publication that pub/sub carries is delivered.
    Deliver,
    /// This process's `SUBSCRIBE` is confirmed.
    Confirm,
    /// The pub/sub connection drops (what is placed meanwhile is not
    /// carried).
    Cut,
    /// It is back: resubscribed, and the broker told to resync.
    Restore,
    /// The oldest pending read is answered.
    Answer,
    /// A second subscriber joins "from now".
    JoinSecond,
}

/// What a run explores besides the orders of the single subscriber's steps.
#[derive(Debug, Clone, Copy, Default)]
struct Variant {
    /// The pub/sub connection is cut and restored once.
    with_cut: bool,
    /// A second subscriber joins at some point: its catch-up may read the
    /// history past what pub/sub has delivered to the first one.
    two: bool,
    /// Publication 2 is for team "a" (the first subscriber) only.
    filtered: bool,
    /// The first subscriber joins from the channel's start (an empty
    /// channel, as a client asking for a stream's whole history before
    /// anything was published to it): it must get every publication.
    from_start: bool,
}

/// The model's state, to know which steps may come next.
#[derive(Debug, Clone, Default)]
struct Abstract {
    placed: u64,
    /// Publications pub/sub carries, not yet delivered.
    in_flight: Vec<u64>,
    confirmed: bool,
    cut: bool,
    restored: bool,
    answers: u32,
    second: bool,
}

const PUBLICATIONS: u64 = 3;
const MAX_ANSWERS: u32 = 4;

impl Abstract {
    fn carried(&self) -> bool {
        self.confirmed && !self.cut
    }

    fn enabled(&self, variant: Variant) -> Vec<Step> {
        let with_cut = variant.with_cut;
        let mut steps = Vec::new();
        if self.placed < PUBLICATIONS {
            steps.push(Step::Place);
        }
        if !self.in_flight.is_empty() {
            steps.push(Step::Deliver);
        }
        if !self.confirmed {
            steps.push(Step::Confirm);
        }
        if with_cut && self.confirmed && !self.cut && !self.restored {
            steps.push(Step::Cut);
        }
        if self.cut {
            steps.push(Step::Restore);
        }
        // The backend waits for the SUBSCRIBE's confirmation before a read,
        // but only so long: a read may go ahead of it (then the listener
        // resyncs the channel once it is confirmed).
        let max_answers = if variant.two {
            MAX_ANSWERS + 1
        } else {
            MAX_ANSWERS
        };
        if self.answers < max_answers {
            steps.push(Step::Answer);
        }
        if variant.two && !self.second {
            steps.push(Step::JoinSecond);
        }
        steps
    }

    fn after(&self, step: Step) -> Abstract {
        let mut next = self.clone();
        match step {
            Step::Place => {
                next.placed += 1;
                if next.carried() {
                    next.in_flight.push(next.placed);
                }
            }
            Step::Deliver => {
                next.in_flight.remove(0);
            }
            Step::Confirm => next.confirmed = true,
            Step::Cut => {
                next.cut = true;
                // What was in flight on the dropped connection is lost.
                next.in_flight.clear();
            }
            Step::Restore => {
                next.cut = false;
                next.restored = true;
            }
            Step::Answer => next.answers += 1,
            Step::JoinSecond => next.second = true,
        }
        next
    }
}

/// Every sequence of steps that ends with all publications placed and
/// every carried one delivered (reads still pending are answered after).
fn sequences(variant: Variant) -> Vec<Vec<Step>> {
    fn walk(state: Abstract, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>, variant: Variant) {
        let done = state.placed == PUBLICATIONS
            && state.in_flight.is_empty()
            && state.confirmed
            && !state.cut
            && (!variant.with_cut || state.restored)
            && (!variant.two || state.second);
        if done {
            out.push(path.clone());
        }
        for step in state.enabled(variant) {
            // Once done, only answers may follow (they are also drained
            // after every run): no need to branch on them.
            if done {
                break;
            }
            path.push(step);
            walk(state.after(step), path, out, variant);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(Abstract::default(), &mut Vec::new(), &mut out, variant);
    out
}

/// Lets the broker's tasks (reads waiting for answers, deferred resyncs)
/// run.
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// Plays `steps` against a fresh broker with a subscriber that joined
/// "from now" (team "a") and, at `JoinSecond`, another one (team "b");
/// returns, per subscriber, what it got and where it started.
async fn play(steps: &[Step], variant: Variant) -> Vec<(Vec<u64>, u64)> {
    let backend = Arc::new(Scripted::default());
    let broker = Broker::builder().backend(backend.clone()).build();
    let join = |team: &str, since: Option<Since>| {
        let recorder = Arc::new(Recorder {
            metadata: vec![("team".into(), team.into())],
            ..Recorder::default()
        });
        let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
        subscription.join(CHANNEL, since).expect("join");
        (recorder, subscription)
    };
    let mut subscribers = vec![join("a", variant.from_start.then_some(Since::Start))];
    settle().await;
    let mut state = Abstract::default();
    let mut carried: Vec<Arc<Message>> = Vec::new();
    for &step in steps {
        match step {
            Step::Place => {
                let message = backend.place(state.placed + 1, variant.filtered);
                if state.carried() {
                    carried.push(message);
                }
            }
            Step::Deliver => backend.deliver(carried.remove(0)),
            Step::Cut => carried.clear(),
            Step::Restore => backend.inbox.get().expect("attached").resync(None),
            Step::Confirm => {
                if std::mem::take(&mut *backend.read_ahead.lock().unwrap()) {
                    backend.inbox.get().expect("attached").resync(Some(CHANNEL));
                }
            }
            Step::Answer => {
                backend.answer(state.confirmed);
            }
            Step::JoinSecond => subscribers.push(join("b", None)),
        }
        state = state.after(step);
        settle().await;
    }
    // Whatever reads are still pending are answered now (Redis is there).
    for _ in 0..16 {
        if !backend.answer(true) {
            break;
        }
        settle().await;
    }
    subscribers
        .into_iter()
        .map(|(recorder, subscription)| {
            let got = recorder.got.lock().unwrap().clone();
            let start = recorder.start.lock().unwrap().unwrap_or(0);
            drop(subscription);
            (got, start)
        })
        .collect()
}

/// Checks every sequence: each subscriber gets exactly the publications
/// after where it started (the position read at its join; the channel's
/// start for a subscriber joining from there) that its filter lets
/// through, once each, in order, and no reset.
async fn check_all(variant: Variant) -> usize {
    let all = sequences(variant);
    assert!(!all.is_empty());
    for steps in &all {
        let got = play(steps, variant).await;
        for (i, (got, start)) in got.iter().enumerate() {
            let team_b = i == 1;
            let start = if i == 0 && variant.from_start {
                &0
            } else {
                start
            };
            let expected: Vec<u64> = (start + 1..=PUBLICATIONS)
                .filter(|&n| !(team_b && variant.filtered && n == FILTERED))
                .collect();
            assert_eq!(
                got, &expected,
                "{variant:?} steps {steps:?}: subscriber {i} got {got:?}, started at {start}"
            );
        }
    }
    all.len()
}

#[tokio::test(flavor = "current_thread")]
async fn a_live_join_gets_everything_after_its_start_in_every_order() {
    let runs = check_all(Variant::default()).await;
    assert!(runs > 100, "only {runs} orders explored");
}

#[tokio::test(flavor = "current_thread")]
async fn a_join_from_the_start_gets_everything_in_every_order() {
    let variant = Variant {
        from_start: true,
        ..Variant::default()
    };
    let runs = check_all(variant).await;
    assert!(runs > 100, "only {runs} orders explored");
    let with_cut = Variant {
        with_cut: true,
        ..variant
    };
    let runs = check_all(with_cut).await;
    assert!(runs > 1_000, "only {runs} orders explored with a cut");
}

#[tokio::test(flavor = "current_thread")]
async fn a_cut_pubsub_connection_loses_nothing_in_every_order() {
    let variant = Variant {
        with_cut: true,
        ..Variant::default()
    };
    let runs = check_all(variant).await;
    assert!(runs > 1_000, "only {runs} orders explored");
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_joiner_reading_past_pubsub_costs_the_first_nothing() {
    let variant = Variant {
        two: true,
        filtered: true,
        ..Variant::default()
    };
    let runs = check_all(variant).await;
    assert!(runs > 1_000, "only {runs} orders explored");
}
