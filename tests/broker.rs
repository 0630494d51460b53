//! The broker without any transport: subscriptions that join and leave
//! channels while they run, and a backend of the test's own (implemented
//! through the public `Backend` trait, as a distributed one would be) that
//! loses messages, so the broker must notice and catch up from history.

use rill::broker::{
    Backend, BackendError, BoxFuture, Broker, Delivery, Epoch, History, Inbox, Member, Message,
    Metadata, Offer, Position, Publication, PublishError, Since, Sink, SubscribeOptions,
};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
};

/// What a sink was told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Message {
        channel: String,
        offset: u64,
        data: String,
    },
    Reset(String),
}

/// A sink that records everything it is offered.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    metadata: Metadata,
}

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// Waits (bounded) until `n` things were seen, then takes them: catching
    /// up runs in a task of its own.
    async fn take_when(&self, n: usize) -> Vec<Seen> {
        for _ in 0..500 {
            if self.seen.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.take()
    }
}

impl Sink for Recorder {
    fn offer(&self, message: &Arc<Message>, _delivery: Delivery) -> Offer {
        self.seen.lock().unwrap().push(Seen::Message {
            channel: message.channel().to_owned(),
            offset: message.position().offset(),
            data: message.data().to_owned(),
        });
        Offer::Queued
    }

    fn reset(&self, channel: &str) -> Offer {
        self.seen
            .lock()
            .unwrap()
            .push(Seen::Reset(channel.to_owned()));
        Offer::Queued
    }

    fn gap(&self, _channel: &str, _dropped: u64) -> Offer {
        Offer::Queued
    }

    fn position(&self, _channel: &str, _position: &Position) {}

    fn close(&self) {}

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

fn message(channel: &str, offset: u64, data: &str) -> Seen {
    Seen::Message {
        channel: channel.into(),
        offset,
        data: data.into(),
    }
}

/// A subscription joins and leaves channels while it runs: it gets the
/// messages of exactly the channels it is on at each moment.
#[tokio::test]
async fn channels_are_joined_and_left_at_runtime() {
    let broker = Broker::new();
    let recorder = Arc::new(Recorder::default());
    let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription.join("a", None).unwrap();
    broker.publish("a", Publication::new("a1")).await.unwrap();
    broker.publish("b", Publication::new("b1")).await.unwrap();
    subscription.join("b", None).unwrap();
    broker.publish("b", Publication::new("b2")).await.unwrap();
    assert!(subscription.leave("a"));
    assert!(!subscription.leave("a"), "left already");
    broker.publish("a", Publication::new("a2")).await.unwrap();
    broker.publish("b", Publication::new("b3")).await.unwrap();
    assert_eq!(
        recorder.take(),
        [
            message("a", 1, "a1"),
            message("b", 2, "b2"),
            message("b", 3, "b3")
        ]
    );
    assert_eq!(broker.subscriber_count("a"), 0);
    assert_eq!(broker.subscriber_count("b"), 1);
    assert_eq!(subscription.channels(), ["b"]);
    drop(subscription);
    assert_eq!(broker.subscriber_count("b"), 0);
    assert_eq!(broker.stats(false).channels_with_subscribers, 0);
}

/// Joining from a position replays what followed it, then goes live, each
/// message once; a position of another epoch gets a reset first.
#[tokio::test]
async fn joining_from_a_position_replays_exactly() {
    let broker = Broker::new();
    let mut positions = Vec::new();
    for n in 1..=4 {
        positions.push(
            broker
                .publish("c", Publication::new(format!("{n}")))
                .await
                .unwrap(),
        );
    }
    let recorder = Arc::new(Recorder::default());
    let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription
        .join("c", Some(Since::After(positions[1].clone())))
        .unwrap();
    broker.publish("c", Publication::new("5")).await.unwrap();
    assert_eq!(
        recorder.take(),
        [
            message("c", 3, "3"),
            message("c", 4, "4"),
            message("c", 5, "5")
        ]
    );

    let other = Arc::new(Recorder::default());
    let stale = broker.subscribe(other.clone(), SubscribeOptions::default());
    let elsewhere = Position::new(Epoch::parse("elsewhere").unwrap(), 2);
    stale.join("c", Some(Since::After(elsewhere))).unwrap();
    let seen = other.take();
    assert_eq!(seen[0], Seen::Reset("c".into()));
    assert_eq!(seen.len(), 6, "a reset, then the five kept: {seen:?}");
}

/// A backend of the test's own: one log per channel under one lock, one
/// epoch, and a switch that makes it lose deliveries (as a pub/sub
/// connection that dropped would).
struct LossyBackend {
    epoch: Mutex<Epoch>,
    logs: Mutex<HashMap<String, Vec<Arc<Message>>>>,
    losing: AtomicBool,
    inbox: OnceLock<Inbox>,
}

impl LossyBackend {
    fn new() -> Arc<Self> {
        Arc::new(LossyBackend {
            epoch: Mutex::new(Epoch::parse("first").unwrap()),
            logs: Mutex::default(),
            losing: AtomicBool::new(false),
            inbox: OnceLock::new(),
        })
    }

    fn inbox(&self) -> &Inbox {
        self.inbox.get().expect("attached")
    }

    /// Forgets everything and starts a new epoch (a store that was wiped).
    fn wipe(&self) {
        *self.epoch.lock().unwrap() = Epoch::parse("second").unwrap();
        self.logs.lock().unwrap().clear();
    }
}

impl Backend for LossyBackend {
    fn attach(&self, inbox: Inbox) {
        let _ = self.inbox.set(inbox);
    }

    fn publish(
        &self,
        channel: &str,
        publication: Publication,
    ) -> BoxFuture<Result<Position, PublishError>> {
        let epoch = self.epoch.lock().unwrap().clone();
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(channel.to_owned()).or_default();
        let position = Position::new(epoch, log.len() as u64 + 1);
        let message = Arc::new(Message::new(channel.into(), position.clone(), publication));
        log.push(message.clone());
        if !self.losing.load(Ordering::SeqCst) {
            self.inbox().deliver(message);
        }
        Box::pin(std::future::ready(Ok(position)))
    }

    fn send_ephemeral(&self, message: Arc<Message>) {
        self.inbox().deliver(message);
    }

    fn position(&self, channel: &str) -> BoxFuture<Result<Option<Position>, BackendError>> {
        let epoch = self.epoch.lock().unwrap().clone();
        let top = self.logs.lock().unwrap().get(channel).map_or(0, Vec::len);
        Box::pin(std::future::ready(Ok(Some(Position::new(
            epoch, top as u64,
        )))))
    }

    fn history(&self, channel: &str, since: &Since) -> BoxFuture<Result<History, BackendError>> {
        let epoch = self.epoch.lock().unwrap().clone();
        let log = self
            .logs
            .lock()
            .unwrap()
            .get(channel)
            .cloned()
            .unwrap_or_default();
        let history = match since {
            Since::Start => History::Continuous(log),
            Since::After(p) if p.epoch() == &epoch && p.offset() <= log.len() as u64 => {
                History::Continuous(log[p.offset() as usize..].to_vec())
            }
            Since::After(_) => History::Reset(log),
        };
        Box::pin(std::future::ready(Ok(history)))
    }

    fn listen(&self, _channel: &str) {}

    fn unlisten(&self, _channel: &str) {}

    fn presence_add(&self, _channel: &str, _member: Member) {}

    fn presence_refresh(&self, _channel: &str, _member_id: &str) {}

    fn presence_remove(&self, _channel: &str, _member_id: &str) {}

    fn presence(&self, _channel: &str) -> BoxFuture<Result<Vec<Member>, BackendError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

/// A message whose offset does not follow the last one delivered reveals a
/// loss: the broker catches its subscribers up from history, each message
/// once, in order.
#[tokio::test]
async fn a_gap_in_delivery_is_filled_from_history() {
    let backend = LossyBackend::new();
    let broker = Broker::builder().backend(backend.clone()).build();
    let recorder = Arc::new(Recorder::default());
    let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription.join("g", None).unwrap();
    broker.publish("g", Publication::new("1")).await.unwrap();
    backend.losing.store(true, Ordering::SeqCst);
    broker.publish("g", Publication::new("2")).await.unwrap();
    broker.publish("g", Publication::new("3")).await.unwrap();
    backend.losing.store(false, Ordering::SeqCst);
    broker.publish("g", Publication::new("4")).await.unwrap();
    assert_eq!(
        recorder.take_when(4).await,
        [
            message("g", 1, "1"),
            message("g", 2, "2"),
            message("g", 3, "3"),
            message("g", 4, "4"),
        ]
    );
}

/// A backend that lost contact says so; the broker's subscribers catch up
/// from history without waiting for the next message.
#[tokio::test]
async fn resync_catches_subscribers_up() {
    let backend = LossyBackend::new();
    let broker = Broker::builder().backend(backend.clone()).build();
    let recorder = Arc::new(Recorder::default());
    let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription.join("r", None).unwrap();
    broker.publish("r", Publication::new("1")).await.unwrap();
    backend.losing.store(true, Ordering::SeqCst);
    broker.publish("r", Publication::new("2")).await.unwrap();
    backend.losing.store(false, Ordering::SeqCst);
    assert_eq!(recorder.take(), [message("r", 1, "1")]);
    backend.inbox().resync(None);
    assert_eq!(recorder.take_when(1).await, [message("r", 2, "2")]);
    broker.publish("r", Publication::new("3")).await.unwrap();
    assert_eq!(recorder.take_when(1).await, [message("r", 3, "3")]);
    // Live again: no catching up, so nothing waits for a task.
    broker.publish("r", Publication::new("4")).await.unwrap();
    assert_eq!(recorder.take(), [message("r", 4, "4")]);
}

/// A backend whose store was wiped starts a new epoch: subscribers get a
/// reset, never the new messages as if they continued the old ones.
#[tokio::test]
async fn a_new_epoch_resets_subscribers() {
    let backend = LossyBackend::new();
    let broker = Broker::builder().backend(backend.clone()).build();
    let recorder = Arc::new(Recorder::default());
    let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription.join("e", None).unwrap();
    broker.publish("e", Publication::new("old")).await.unwrap();
    backend.wipe();
    broker.publish("e", Publication::new("new")).await.unwrap();
    assert_eq!(
        recorder.take_when(3).await,
        [
            message("e", 1, "old"),
            Seen::Reset("e".into()),
            message("e", 1, "new"),
        ]
    );
}

/// The offsets a recorder saw, in order.
fn offsets(seen: &[Seen]) -> Vec<u64> {
    seen.iter()
        .map(|s| match s {
            Seen::Message { offset, .. } => *offset,
            Seen::Reset(_) => 0,
        })
        .collect()
}

/// Detached publishes from two threads to more subscribers than one slice
/// of a fan-out task, with an awaited publish in between: every subscriber
/// gets every message once, in position order, and a subscriber that joins
/// mid-burst gets an unbroken run from where it joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_bursts_reach_everyone_once_in_order() {
    const SUBSCRIBERS: usize = 600;
    const PER_PUBLISHER: u64 = 300;
    let broker = Broker::new();
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let recorder = Arc::new(Recorder::default());
        let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
        subscription.join("burst", None).unwrap();
        subscribers.push((recorder, subscription));
    }
    let publishers: Vec<_> = (0..2)
        .map(|p| {
            let broker = broker.clone();
            tokio::spawn(async move {
                for i in 0..PER_PUBLISHER {
                    broker
                        .publish_detached("burst", Publication::new(format!("{p}-{i}")))
                        .unwrap();
                    if i % 100 == 50 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let late = Arc::new(Recorder::default());
    let late_subscription = broker.subscribe(late.clone(), SubscribeOptions::default());
    late_subscription.join("burst", None).unwrap();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    // An awaited publish is offered after everything published before it.
    let last = broker
        .publish("burst", Publication::new("last"))
        .await
        .unwrap();
    let total = 2 * PER_PUBLISHER + 1;
    assert_eq!(last.offset(), total);
    for (recorder, _) in &subscribers {
        assert_eq!(offsets(&recorder.take()), (1..=total).collect::<Vec<_>>());
    }
    let seen = offsets(&late.take_when(1).await);
    let first = *seen.first().expect("the late subscriber got the end");
    assert_eq!(seen, (first..=total).collect::<Vec<_>>());
}

/// A detached publish whose fan-out task never ran (its runtime went away)
/// does not stop the channel: the next detached publish on another runtime
/// is delivered, after the stranded one.
#[test]
fn a_lost_fan_out_task_does_not_stall_the_channel() {
    let broker = Broker::new();
    let recorder = Arc::new(Recorder::default());
    let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription.join("c", None).unwrap();
    let first = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    first.block_on(async {
        broker
            .publish_detached("c", Publication::new("stranded"))
            .unwrap();
    });
    // The task was spawned, never polled: dropped with its runtime.
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let seen = second.block_on(async {
        broker
            .publish_detached("c", Publication::new("next"))
            .unwrap();
        recorder.take_when(2).await
    });
    assert_eq!(seen, [message("c", 1, "stranded"), message("c", 2, "next")]);
}
