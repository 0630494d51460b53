//! Memory stays bounded while a stalled subscriber sits on a busy channel.
//! Its own test binary: it reads this process's resident set size, which
//! other tests running in parallel threads would disturb.

mod support;

use rill::{
    hub::{Hub, SlowConsumer},
    sse::Event,
    Router,
};
use support::{start, SseReader};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// Publishing 128 MiB to a channel whose only subscriber never reads grows
/// the process by a bounded amount (its queue, its socket buffers, the
/// history), not by what was published; publish never waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscriber_memory_is_bounded() {
    const FRAME: usize = 64 * 1024;
    const EVENTS: usize = 2048; // 128 MiB in all
    let hub = Hub::builder()
        .queue(16)
        .history(8)
        .slow_consumer(SlowConsumer::DropWithGap)
        .build();
    let server = start(hub.mount(Router::new(), "/hub")).await;
    let stalled = SseReader::connect(server.addr, "/hub?channel=big", None).await;
    let counted = hub.clone();
    server
        .eventually("subscribed", move || counted.subscriber_count("big") == 1)
        .await;

    let payload = "m".repeat(FRAME);
    for _ in 0..16 {
        hub.publish("warm-up", Event::data(payload.clone()))
            .await
            .unwrap();
    }
    let before = rss_bytes();
    let mut peak = before;
    for n in 0..EVENTS {
        hub.publish("big", Event::data(payload.clone()))
            .await
            .unwrap();
        if n % 64 == 0 {
            tokio::task::yield_now().await; // let hyper move what it can
            peak = peak.max(rss_bytes());
        }
    }
    peak = peak.max(rss_bytes());
    let growth = peak.saturating_sub(before);
    let stats = hub.stats(false);
    assert_eq!(stats.published as usize, EVENTS + 16);
    assert!(stats.dropped as usize > EVENTS / 2, "{stats:?}");
    assert!(
        growth < 40 * 1024 * 1024,
        "resident memory grew by {} MiB for a stalled subscriber",
        growth / (1024 * 1024)
    );
    assert_eq!(
        hub.subscriber_count("big"),
        1,
        "drop policy keeps the subscriber"
    );
    drop(stalled);
}
