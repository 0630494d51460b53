//! Memory stays bounded: a stalled subscriber on a busy channel, history
//! in bytes, subscribers resuming from a large history. Its own test binary,
//! and one test at a time: each reads this process's resident set size,
//! which tests running in parallel would disturb.

mod support;

use rill::{
    hub::{Hub, SlowConsumer},
    sse::Event,
    Router,
};
use support::{start, SseReader};

/// One test at a time in this binary.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _turn = ONE_AT_A_TIME.lock().await;
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

/// History is bounded in bytes: 300 broadcasts of 900 KB keep about the
/// per-channel byte limit, not 270 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_bounded_in_bytes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let hub = Hub::builder().history_bytes(4 * 1024 * 1024).build();
    let payload = "h".repeat(900 * 1000);
    for _ in 0..4 {
        hub.publish("warm-up", Event::data(payload.clone()))
            .await
            .unwrap();
    }
    let before = rss_bytes();
    for _ in 0..300 {
        hub.publish("big", Event::data(payload.clone()))
            .await
            .unwrap();
    }
    let growth = rss_bytes().saturating_sub(before);
    assert!(
        growth < 48 * 1024 * 1024,
        "history of 4 MiB grew the process by {} MiB",
        growth / (1024 * 1024)
    );
}

/// Subscribers that resume from the start of a large history and never read
/// share the stored frames: five of them over 48 MB of history add far less
/// than five copies of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_subscribers_share_the_history() {
    let _turn = ONE_AT_A_TIME.lock().await;
    const EVENTS: usize = 48;
    let hub = Hub::builder()
        .history(EVENTS)
        .history_bytes(64 * 1024 * 1024)
        .build();
    let server = start(hub.mount(Router::new(), "/hub")).await;
    let payload = "r".repeat(1000 * 1000);
    for _ in 0..EVENTS {
        hub.publish("log", Event::data(payload.clone()))
            .await
            .unwrap();
    }
    let before = rss_bytes();
    let mut stalled = Vec::new();
    for _ in 0..5 {
        stalled.push(SseReader::connect(server.addr, "/hub?channel=log", Some("0")).await);
    }
    let counted = hub.clone();
    server
        .eventually("subscribed", move || counted.subscriber_count("log") == 5)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let growth = rss_bytes().saturating_sub(before);
    assert!(
        growth < 48 * 1024 * 1024,
        "5 resuming subscribers grew the process by {} MiB (the history is 48 MB)",
        growth / (1024 * 1024)
    );
    drop(stalled);
}

/// A channel lives only while it has history or subscribers: subscribers
/// coming and going on fresh channels (with presence events on) leave no
/// channel behind.
#[tokio::test]
async fn channels_do_not_outlive_their_subscribers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let hub = Hub::builder()
        .presence_events(std::time::Duration::from_millis(10))
        .build();
    let server = start(hub.mount(Router::new(), "/hub")).await;
    for n in 0..50 {
        let reader =
            SseReader::connect(server.addr, &format!("/hub?channel=c{n}&presence=1"), None).await;
        drop(reader);
    }
    let counted = hub.clone();
    server
        .eventually("every channel forgotten", move || {
            counted.stats(false).channel_count == 0
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        hub.stats(false).channel_count,
        0,
        "presence kept a channel alive"
    );
}
