//! The broker on a real `redis-server` (started by each test on a free
//! loopback port, `--save "" --appendonly no`, stopped by its PID): brokers
//! that share it deliver every publication once and in order, resume across
//! brokers, survive a killed pub/sub connection and a Redis restart with an
//! explicit reset, fail fast while Redis is down, and share presence.
//!
//! Needs `redis-server` (scripts/setup-test-deps.sh installs it). Without
//! it the tests say so and pass — except with `CI=true`, where a missing
//! Redis fails them.
#![cfg(feature = "redis")]

use rill::broker::{
    BackendError, Broker, Delivery, Message, Metadata, Offer, Position, Publication, PublishError,
    RedisBackend, RedisConfig, Since, Sink, SubscribeOptions,
};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const WAIT: Duration = Duration::from_secs(10);

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Message(u64, String),
    Reset,
}

/// A subscriber that records what it is offered.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    last: Mutex<Option<Position>>,
    metadata: Metadata,
}

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn messages(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Message(_, data) => Some(data),
                Seen::Reset => None,
            })
            .collect()
    }

    /// Waits (bounded) until `done` holds for what was seen.
    async fn wait(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let start = Instant::now();
        while !done(&self.seen()) {
            assert!(
                start.elapsed() < WAIT,
                "{what}: not within {WAIT:?}; seen {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Sink for Recorder {
    fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
        *self.last.lock().unwrap() = Some(message.position().clone());
        self.seen.lock().unwrap().push(Seen::Message(
            message.position().offset(),
            message.data().to_owned(),
        ));
        Offer::Queued
    }
    fn reset(&self, _: &str) -> Offer {
        self.seen.lock().unwrap().push(Seen::Reset);
        Offer::Queued
    }
    fn gap(&self, _: &str, _: u64) -> Offer {
        Offer::Queued
    }
    fn position(&self, _: &str, position: &Position) {
        *self.last.lock().unwrap() = Some(position.clone());
    }
    fn close(&self) {}
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

fn config(redis: &RedisServer) -> RedisConfig {
    RedisConfig::new(redis.url())
        .prefix("test:")
        .probe(Duration::from_millis(500))
        .timeout(Duration::from_millis(500))
}

async fn broker_with(config: RedisConfig) -> (Broker, RedisBackend) {
    let backend = RedisBackend::connect(config).await.expect("connect");
    let broker = Broker::builder().backend(Arc::new(backend.clone())).build();
    (broker, backend)
}

async fn broker(redis: &RedisServer) -> (Broker, RedisBackend) {
    broker_with(config(redis)).await
}

/// Publishes `range` as "m<n>" on `channel`.
async fn publish_range(broker: &Broker, channel: &str, range: std::ops::Range<u32>) {
    for n in range {
        broker
            .publish(channel, Publication::new(format!("m{n}")))
            .await
            .expect("publish");
    }
}

fn expected(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("m{n}")).collect()
}

/// A publication on A reaches subscribers on B and C, each exactly once and
/// in order, with the same ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_cross_brokers_once_and_in_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker(&redis).await;
    let (b, _) = broker(&redis).await;
    let (c, _) = broker(&redis).await;
    let (on_b, on_c) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let sub_b = b.subscribe(on_b.clone(), SubscribeOptions::default());
    let sub_c = c.subscribe(on_c.clone(), SubscribeOptions::default());
    sub_b.join("news", None).unwrap();
    sub_c.join("news", None).unwrap();
    // Their start positions are read once their SUBSCRIBE is confirmed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_range(&a, "news", 0..500).await;
    for on in [&on_b, &on_c] {
        on.wait("all 500", |seen| seen.len() >= 500).await;
        assert_eq!(on.messages(), expected(0..500));
        let offsets: Vec<u64> = on
            .seen()
            .iter()
            .filter_map(|s| match s {
                Seen::Message(o, _) => Some(*o),
                Seen::Reset => None,
            })
            .collect();
        assert_eq!(offsets, (1..=500).collect::<Vec<u64>>());
    }
    assert_eq!(b.subscriber_count("news"), 1);
}

/// A client that left B resumes on C from its last id: exactly what it
/// missed. An id older than the history gets a reset, then what is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_another_broker_and_reset_when_too_old() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker_with(config(&redis).history(20)).await;
    let (b, _) = broker_with(config(&redis).history(20)).await;
    let (c, _) = broker_with(config(&redis).history(20)).await;
    let first = Arc::new(Recorder::default());
    let sub = b.subscribe(first.clone(), SubscribeOptions::default());
    sub.join("room", None).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_range(&a, "room", 0..5).await;
    first.wait("five", |seen| seen.len() >= 5).await;
    let last = first.last.lock().unwrap().clone().expect("a position");
    drop(sub);
    publish_range(&a, "room", 5..10).await;

    let resumed = Arc::new(Recorder::default());
    let sub = c.subscribe(resumed.clone(), SubscribeOptions::default());
    sub.join("room", Some(Since::After(last.clone()))).unwrap();
    resumed
        .wait("the five missed", |seen| seen.len() >= 5)
        .await;
    publish_range(&a, "room", 10..12).await;
    resumed
        .wait("and the live ones", |seen| seen.len() >= 7)
        .await;
    assert_eq!(resumed.messages(), expected(5..12));

    // 30 more: the history (20) no longer reaches back to `last`.
    publish_range(&a, "room", 12..42).await;
    let late = Arc::new(Recorder::default());
    let sub = c.subscribe(late.clone(), SubscribeOptions::default());
    sub.join("room", Some(Since::After(last))).unwrap();
    late.wait("reset then the history", |seen| seen.len() >= 21)
        .await;
    let seen = late.seen();
    assert_eq!(seen[0], Seen::Reset);
    assert_eq!(late.messages(), expected(22..42));
}

/// `CLIENT KILL TYPE pubsub` while publishing: the subscriber's broker
/// reconnects, resubscribes and catches up — nothing lost, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pubsub_connection_loses_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker(&redis).await;
    let (b, b_backend) = broker(&redis).await;
    let on_b = Arc::new(Recorder::default());
    let sub = b.subscribe(on_b.clone(), SubscribeOptions::default());
    sub.join("feed", None).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let publisher = {
        let a = a.clone();
        tokio::spawn(async move {
            for n in 0..300u32 {
                a.publish("feed", Publication::new(format!("m{n}")))
                    .await
                    .expect("publish");
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    for _ in 0..3 {
        let killed = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert!(
            killed.is_some_and(|k| k.starts_with(':')),
            "CLIENT KILL answered"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    publisher.await.unwrap();
    on_b.wait("all 300", |seen| seen.len() >= 300).await;
    assert_eq!(on_b.messages(), expected(0..300));
    assert!(!on_b.seen().contains(&Seen::Reset));
    let start = Instant::now();
    while !b_backend.is_listening() {
        assert!(start.elapsed() < WAIT, "never listening again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Redis killed with `kill -9`: publishing fails fast with a typed error
/// (nothing is delivered with an id Redis does not know); once it is back
/// (empty: `--save ""`), every subscriber gets one reset and continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_fails_fast_then_resets_once() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker(&redis).await;
    let (b, b_backend) = broker(&redis).await;
    let on_b = Arc::new(Recorder::default());
    let sub = b.subscribe(on_b.clone(), SubscribeOptions::default());
    sub.join("orders", None).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_range(&a, "orders", 0..10).await;
    on_b.wait("ten", |seen| seen.len() >= 10).await;

    redis.kill();
    let started = Instant::now();
    let failed = a.publish("orders", Publication::new("lost")).await;
    assert!(
        matches!(
            failed,
            Err(PublishError::Backend(BackendError::Unavailable(_)))
        ),
        "{failed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not fail fast"
    );

    redis.launch();
    // The command connection reconnects by itself; retry until it has.
    let start = Instant::now();
    loop {
        match a.publish("orders", Publication::new("m10")).await {
            Ok(position) => {
                assert_eq!(position.offset(), 1, "a new epoch starts at 1");
                break;
            }
            Err(_) => {
                assert!(start.elapsed() < WAIT, "Redis never came back");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    publish_range(&a, "orders", 11..15).await;
    on_b.wait("a reset and the new epoch", |seen| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(..)))
            .count()
            >= 15
    })
    .await;
    let seen = on_b.seen();
    assert_eq!(
        seen.iter().filter(|s| **s == Seen::Reset).count(),
        1,
        "{seen:?}"
    );
    assert_eq!(on_b.messages(), expected(0..15));
    assert!(b_backend.is_listening());
}

/// A failover that lost acknowledged writes (simulated: the channel's
/// offset set back, the pub/sub connection dropped as a failover does):
/// the subscriber gets a reset, and the offsets handed out again are
/// delivered — not skipped as already seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_writes_after_a_failover_reset_instead_of_being_skipped() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker(&redis).await;
    let (b, _) = broker(&redis).await;
    let on_b = Arc::new(Recorder::default());
    let sub = b.subscribe(on_b.clone(), SubscribeOptions::default());
    sub.join("ledger", None).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_range(&a, "ledger", 0..10).await;
    on_b.wait("ten", |seen| seen.len() >= 10).await;
    // The new primary never got offsets 6..=10.
    redis.command(&["HSET", "test:{ledger}:meta", "s", "5"]);
    redis.command(&["DEL", "test:{ledger}:log"]);
    redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish_range(&a, "ledger", 10..13).await;
    on_b.wait("a reset and the three new ones", |seen| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(..)))
            .count()
            >= 13
    })
    .await;
    let seen = on_b.seen();
    assert_eq!(
        seen.iter().filter(|s| **s == Seen::Reset).count(),
        1,
        "{seen:?}"
    );
    assert_eq!(&on_b.messages()[10..], &expected(10..13)[..], "{seen:?}");
    // And on: the offsets after the lost ones are not skipped either.
    publish_range(&a, "ledger", 13..18).await;
    on_b.wait("five more", |seen| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(..)))
            .count()
            >= 18
    })
    .await;
    assert_eq!(
        &on_b.messages()[10..],
        &expected(10..18)[..],
        "{:?}",
        on_b.seen()
    );
}

/// Presence lives in Redis: a member joined on A is seen from B and kept
/// past its TTL while A refreshes it; a member whose process stopped
/// refreshing it (its expiry passed) is not listed, and its leave is
/// reported once, by the one sweeper that removed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_shared_and_a_dead_process_members_leave_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ttl = Duration::from_millis(600);
    let backend = |redis: &RedisServer| RedisBackend::connect(config(redis).presence_ttl(ttl));
    let a = Broker::builder()
        .backend(Arc::new(backend(&redis).await.expect("connect")))
        .presence_events(Duration::from_millis(50))
        .build();
    let c = Broker::builder()
        .backend(Arc::new(backend(&redis).await.expect("connect")))
        .presence_events(Duration::from_millis(50))
        .build();
    let (b, _) = broker_with(config(&redis).presence_ttl(ttl)).await;
    let (watcher_a, watcher_c) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let options = SubscribeOptions {
        presence: true,
        ..SubscribeOptions::default()
    };
    let sub = a.subscribe(watcher_a.clone(), options.clone());
    sub.join("lobby", None).unwrap();
    let sub_c = c.subscribe(watcher_c.clone(), options);
    sub_c.join("lobby", None).unwrap();
    let start = Instant::now();
    loop {
        let members = b.presence("lobby").await.expect("presence");
        if members.len() == 2 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "members never seen from B: {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Kept alive past their TTL while their processes live.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(b.presence("lobby").await.expect("presence").len(), 2);

    // A member of a process that died: its expiry lies in the past.
    redis.command(&[
        "HSET",
        "test:{lobby}:pres",
        "ghost",
        r#"{"id":"ghost","metadata":[]}"#,
    ]);
    redis.command(&["ZADD", "test:{lobby}:pexp", "1", "ghost"]);
    let members = b.presence("lobby").await.expect("presence");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.iter().all(|m| &*m.id != "ghost"));
    let left = |seen: &[Seen]| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(_, data) if data.contains(r#""left":["ghost"]"#)))
            .count()
    };
    for watcher in [&watcher_a, &watcher_c] {
        watcher
            .wait("the ghost's leave", |seen| left(seen) >= 1)
            .await;
    }
    // Both processes sweep; the leave is reported once.
    tokio::time::sleep(ttl).await;
    assert_eq!(left(&watcher_a.seen()), 1);
    assert_eq!(left(&watcher_c.seen()), 1);
    drop(sub);
    drop(sub_c);
    let start = Instant::now();
    while !b.presence("lobby").await.expect("presence").is_empty() {
        assert!(start.elapsed() < WAIT, "the members never left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A hub's stats on Redis count every process: each reports its figures
/// every second, and `cluster_stats` sums them (`nodes` says how many).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_stats_count_every_process() {
    use rill::{hub::Hub, sse::Event};
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let hub = |backend: RedisBackend| Hub::builder().backend(Arc::new(backend)).build();
    let a = hub(RedisBackend::connect(config(&redis))
        .await
        .expect("connect"));
    let b = hub(RedisBackend::connect(config(&redis))
        .await
        .expect("connect"));
    let recorder = Arc::new(Recorder::default());
    let sub = b
        .broker()
        .subscribe(recorder.clone(), SubscribeOptions::default());
    sub.join("metrics", None).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..3 {
        a.publish("metrics", Event::data(format!("m{n}")))
            .await
            .expect("publish");
    }
    recorder.wait("three", |seen| seen.len() >= 3).await;
    let start = Instant::now();
    let stats = loop {
        let stats = a.cluster_stats(true).await.expect("stats");
        if stats.nodes == Some(2) && stats.delivered >= 3 {
            break stats;
        }
        assert!(start.elapsed() < WAIT, "never both nodes: {stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats.published, 3, "{stats:?}");
    assert_eq!(stats.channels, vec![("metrics".to_owned(), 1)], "{stats:?}");
    assert!(stats.to_json().contains(r#""nodes":2"#));
    // B's own view counts itself only.
    assert_eq!(b.stats(true).published, 0);
}

/// Detached publishes (ActionCable's `broadcast`) reach Redis in the order
/// they were made — also right after Redis lost its script cache, and with
/// several publishers bursting at once on their own channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_publishes_keep_their_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker(&redis).await;
    let (b, _) = broker(&redis).await;
    let channels: Vec<String> = (0..6).map(|i| format!("burst{i}")).collect();
    let recorders: Vec<Arc<Recorder>> = channels
        .iter()
        .map(|_| Arc::new(Recorder::default()))
        .collect();
    let subs: Vec<_> = channels
        .iter()
        .zip(&recorders)
        .map(|(channel, recorder)| {
            let sub = b.subscribe(recorder.clone(), SubscribeOptions::default());
            sub.join(channel, None).unwrap();
            sub
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // As after a restart: no script cached.
    assert_eq!(redis.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK"));
    let bursts: Vec<_> = channels
        .iter()
        .map(|channel| {
            let (a, channel) = (a.clone(), channel.clone());
            tokio::spawn(async move {
                for n in 0..300u32 {
                    a.publish_detached(&channel, Publication::new(format!("m{n}")))
                        .expect("queued");
                    if n % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for burst in bursts {
        burst.await.unwrap();
    }
    for recorder in &recorders {
        recorder.wait("all 300", |seen| seen.len() >= 300).await;
        assert_eq!(recorder.messages(), expected(0..300));
    }
    drop(subs);
}

/// Many tasks publishing on one channel at once: their publications share
/// script calls (the publisher places a run of one channel's publications
/// in one call), yet each gets its own position, the positions follow one
/// another with no hole, and a subscriber on another broker gets every one
/// once, in position order, with the body its publisher sent. A resume too
/// old for the history (100) gets a reset and exactly the last 100, though
/// the log is trimmed approximately and may hold more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_on_one_channel_get_consecutive_positions() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = broker_with(config(&redis).history(100)).await;
    let (b, _) = broker_with(config(&redis).history(100)).await;
    let recorder = Arc::new(Recorder::default());
    let sub = b.subscribe(recorder.clone(), SubscribeOptions::default());
    sub.join("hot", None).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    const TASKS: u32 = 32;
    const EACH: u32 = 40;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let a = a.clone();
            tokio::spawn(async move {
                let mut placed = Vec::new();
                for n in 0..EACH {
                    let body = format!("t{t}-{n}");
                    let position = a
                        .publish("hot", Publication::new(body.clone()))
                        .await
                        .expect("publish");
                    placed.push((position, body));
                }
                placed
            })
        })
        .collect();
    let mut placed = Vec::new();
    for task in tasks {
        placed.extend(task.await.unwrap());
    }
    let total = (TASKS * EACH) as usize;
    placed.sort_by_key(|(position, _)| position.offset());
    let first = placed[0].0.offset();
    for (i, (position, _)) in placed.iter().enumerate() {
        assert_eq!(
            position.offset(),
            first + i as u64,
            "positions with a hole or twice"
        );
        assert_eq!(position.epoch(), placed[0].0.epoch());
    }
    recorder
        .wait("every publication", |seen| seen.len() >= total)
        .await;
    let expected: Vec<Seen> = placed
        .iter()
        .map(|(position, body)| Seen::Message(position.offset(), body.clone()))
        .collect();
    assert_eq!(recorder.seen(), expected);

    let length = redis
        .command(&["XLEN", "test:{hot}:log"])
        .and_then(|answer| answer.trim_start_matches(':').parse::<usize>().ok())
        .expect("XLEN");
    assert!(
        length >= 100,
        "the log keeps at least the history: {length}"
    );
    let late = Arc::new(Recorder::default());
    let resumed = b.subscribe(late.clone(), SubscribeOptions::default());
    resumed
        .join("hot", Some(Since::After(placed[0].0.clone())))
        .unwrap();
    late.wait("reset then the history", |seen| seen.len() >= 101)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = late.seen();
    assert_eq!(seen[0], Seen::Reset);
    assert_eq!(&seen[1..], &expected[total - 100..]);
    drop((sub, resumed));
}
