//! The broker's lock design, measured: several threads publish at once,
//! either all to one channel (they contend for its lock) or each to its own
//! (each channel has its own lock, so they should not wait for each other).
//! Every channel has the same number of subscribers (counting sinks), so the
//! work per publication is the same in both cases.
//!
//! Also: leaving a channel with many subscribers (one by one, as a mass
//! disconnect does), and the stats walk over many channels.
//!
//! Run with: `cargo bench --bench broker`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rill::broker::{
    Broker, BrokerSubscription, Delivery, Message, Metadata, Offer, Position, Publication, Sink,
    SubscribeOptions,
};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Publications per thread per measured iteration.
const PER_THREAD: u64 = 20_000;
/// Subscribers of every channel.
const SUBSCRIBERS: usize = 8;

/// A sink that only counts.
#[derive(Default)]
struct Counter {
    offered: AtomicU64,
    metadata: Metadata,
}

impl Sink for Counter {
    fn offer(&self, _message: &Arc<Message>, _delivery: Delivery) -> Offer {
        self.offered.fetch_add(1, Ordering::Relaxed);
        Offer::Queued
    }
    fn reset(&self, _channel: &str) -> Offer {
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

/// A broker (no history: this measures the fan-out path) with
/// `SUBSCRIBERS` counting subscribers on each of `channels`.
fn broker_with(channels: &[String]) -> (Broker, Vec<BrokerSubscription>) {
    let broker = Broker::builder().history(0).build();
    let mut subscriptions = Vec::new();
    for channel in channels {
        for _ in 0..SUBSCRIBERS {
            let subscription =
                broker.subscribe(Arc::new(Counter::default()), SubscribeOptions::default());
            subscription.join(channel, None).expect("join");
            subscriptions.push(subscription);
        }
    }
    (broker, subscriptions)
}

/// `threads` threads publish `PER_THREAD` each, thread i to `channels[i % len]`.
fn publish_from(broker: &Broker, threads: usize, channels: &[String]) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..threads {
            let channel = channels[i % channels.len()].clone();
            let broker = broker.clone();
            scope.spawn(move || {
                for _ in 0..PER_THREAD {
                    broker
                        .publish_detached(&channel, Publication::new("x"))
                        .expect("publish");
                }
            });
        }
    });
    start.elapsed()
}

fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_from_threads");
    group.sample_size(10);
    for threads in [1usize, 2, 4] {
        group.throughput(Throughput::Elements(PER_THREAD * threads as u64));
        let one: Vec<String> = vec!["shared".into()];
        let own: Vec<String> = (0..threads).map(|i| format!("own-{i}")).collect();
        let (shared_broker, _keep) = broker_with(&one);
        group.bench_with_input(
            BenchmarkId::new("one_channel", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| publish_from(&shared_broker, t, &one))
                        .sum()
                })
            },
        );
        let (own_broker, _keep) = broker_with(&own);
        group.bench_with_input(
            BenchmarkId::new("own_channels", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| (0..iters).map(|_| publish_from(&own_broker, t, &own)).sum())
            },
        );
    }
    group.finish();
}

fn mass_leave(c: &mut Criterion) {
    let mut group = c.benchmark_group("leave");
    group.sample_size(10);
    for subscribers in [1_000usize, 10_000] {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::new("all_subscribers_of_a_channel", subscribers),
            &subscribers,
            |b, &n| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let broker = Broker::new();
                        let subscriptions: Vec<_> = (0..n)
                            .map(|_| {
                                let s = broker.subscribe(
                                    Arc::new(Counter::default()),
                                    SubscribeOptions::default(),
                                );
                                s.join("room", None).expect("join");
                                s
                            })
                            .collect();
                        let start = Instant::now();
                        drop(subscriptions);
                        total += start.elapsed();
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

fn stats_walk(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats");
    group.sample_size(10);
    let channels: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
    let broker = Broker::new();
    let subscription = broker.subscribe(Arc::new(Counter::default()), SubscribeOptions::default());
    for channel in &channels {
        subscription.join(channel, None).expect("join");
    }
    group.bench_function("per_channel_100k_channels", |b| {
        b.iter(|| broker.stats(true).channels.len())
    });
    group.finish();
}

criterion_group!(benches, contention, mass_leave, stats_walk);
criterion_main!(benches);
