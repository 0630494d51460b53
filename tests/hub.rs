//! The broadcast hub against a real server: fan-out, filters, replay under
//! random disconnects, slow consumers, stats, presence, and the HTTP
//! endpoints.

mod support;

use rill::{
    hub::{Filter, Hub, SlowConsumer},
    sse::Event,
    Router,
};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use support::{start, RawResponse, SseReader, TestServer, WAIT};

fn mounted(hub: &Hub) -> Router {
    hub.mount(Router::new(), "/hub")
}

async fn wait_subscribers(server: &TestServer, hub: &Hub, channel: &str, n: usize) {
    let (hub, channel) = (hub.clone(), channel.to_owned());
    server
        .eventually("subscribers registered", move || {
            hub.subscribers(&channel) == n
        })
        .await;
}

async fn post(server: &TestServer, path: &str, body: &str) -> (u16, String) {
    let mut r = RawResponse::request(
        server.addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let body = r.sized_body().await;
    (r.status, String::from_utf8(body).unwrap())
}

/// 1,000 subscribers each receive every event, in order, exactly once.
#[tokio::test]
async fn thousand_subscribers_get_every_event_in_order() {
    const SUBSCRIBERS: usize = 1000;
    const EVENTS: u64 = 50;
    let hub = Hub::new();
    let server = start(mounted(&hub)).await;
    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        readers.push(SseReader::connect(server.addr, "/hub?channel=all", None).await);
    }
    wait_subscribers(&server, &hub, "all", SUBSCRIBERS).await;
    for n in 1..=EVENTS {
        hub.publish("all", Event::data(format!("event {n}")))
            .unwrap();
    }
    let mut tasks = Vec::new();
    for mut reader in readers {
        tasks.push(tokio::spawn(async move {
            for n in 1..=EVENTS {
                let frame = reader.next_event().await.expect("stream open");
                assert_eq!(frame.id_num(), n);
                assert_eq!(frame.data.as_deref(), Some(format!("event {n}").as_str()));
            }
            reader // still connected while the stats are read
        }));
    }
    let mut readers = Vec::new();
    for task in tasks {
        readers.push(tokio::time::timeout(WAIT * 4, task).await.unwrap().unwrap());
    }
    let stats = hub.stats();
    assert_eq!(stats.published, EVENTS);
    assert_eq!(stats.delivered, EVENTS * SUBSCRIBERS as u64);
    assert_eq!(stats.connections, SUBSCRIBERS);
    assert_eq!(stats.dropped, 0);
}

/// Publishing while subscribers read, on a multi-threaded runtime: events
/// queue behind the one in flight and leave in batches, and every
/// subscriber still gets each event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_subscribers_get_batched_events_in_order() {
    const SUBSCRIBERS: usize = 50;
    const EVENTS: u64 = 5000;
    let hub = Hub::builder().queue(EVENTS as usize).build();
    let server = start(mounted(&hub)).await;
    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        readers.push(SseReader::connect(server.addr, "/hub?channel=busy", None).await);
    }
    wait_subscribers(&server, &hub, "busy", SUBSCRIBERS).await;
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            tokio::spawn(async move {
                for n in 1..=EVENTS {
                    let frame = reader.next_event().await.expect("stream open");
                    assert_eq!(frame.id_num(), n, "out of order");
                    assert_eq!(frame.data.as_deref(), Some(n.to_string().as_str()));
                }
            })
        })
        .collect();
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for n in 1..=EVENTS {
                hub.publish("busy", Event::data(n.to_string())).unwrap();
                if n % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    publisher.await.unwrap();
    for task in tasks {
        tokio::time::timeout(WAIT * 6, task).await.unwrap().unwrap();
    }
    let stats = hub.stats();
    assert_eq!(stats.delivered, EVENTS * SUBSCRIBERS as u64);
    assert_eq!(stats.dropped, 0);
}

/// A filtered publish reaches only subscribers whose metadata (from their
/// query) matches every pair; the action can pin metadata too.
#[tokio::test]
async fn filters_select_subscribers_by_metadata() {
    let hub = Hub::new();
    let server = start(mounted(&hub)).await;
    let mut sports =
        SseReader::connect(server.addr, "/hub?channel=news&topic=sports&lang=en", None).await;
    let mut politics =
        SseReader::connect(server.addr, "/hub?channel=news&topic=politics", None).await;
    wait_subscribers(&server, &hub, "news", 2).await;
    hub.publish_filtered(
        "news",
        Event::data("goal"),
        Filter::new().eq("topic", "sports"),
    )
    .unwrap();
    hub.publish_filtered(
        "news",
        Event::data("nobody"),
        Filter::new().eq("topic", "sports").eq("lang", "fr"),
    )
    .unwrap();
    hub.publish("news", Event::data("everyone")).unwrap();
    assert_eq!(
        sports.next_event().await.unwrap().data.as_deref(),
        Some("goal")
    );
    assert_eq!(
        sports.next_event().await.unwrap().data.as_deref(),
        Some("everyone")
    );
    let first = politics.next_event().await.unwrap();
    assert_eq!(
        (first.data.as_deref(), first.id_num()),
        (Some("everyone"), 3)
    );
}

/// A client cut off again and again while publishing continues resumes with
/// Last-Event-ID each time and ends with every event exactly once, in order.
#[tokio::test]
async fn replay_after_random_disconnects_loses_and_repeats_nothing() {
    const EVENTS: u64 = 1500;
    let hub = Hub::builder().history(EVENTS as usize).build();
    let server = start(mounted(&hub)).await;
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for n in 1..=EVENTS {
                hub.publish("feed", Event::data(format!("{n}"))).unwrap();
                if n % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut reconnects = 0;
    while seen.last().copied() != Some(EVENTS) {
        reconnects += 1;
        assert!(reconnects < 500, "too many reconnects");
        // The first connection asks for everything from the start (id 0).
        let resume = seen.last().copied().or(Some(0));
        let mut reader = SseReader::connect(server.addr, "/hub?channel=feed", resume).await;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let take = 1 + rng % 60;
        for _ in 0..take {
            let Some(frame) = tokio::time::timeout(WAIT, reader.next_event())
                .await
                .unwrap()
            else {
                break;
            };
            assert_ne!(
                frame.event.as_deref(),
                Some("reset"),
                "history was long enough"
            );
            seen.push(frame.id_num());
            if frame.id_num() == EVENTS {
                break;
            }
        }
        drop(reader); // cut off mid-stream
    }
    publisher.await.unwrap();
    assert!(reconnects > 20, "only {reconnects} reconnects");
    let expected: Vec<u64> = (1..=EVENTS).collect();
    assert_eq!(seen, expected);
}

/// A client whose Last-Event-ID is older than the history, or newer than any
/// id (the hub restarted), gets `event: reset` before what is retained.
#[tokio::test]
async fn resume_beyond_history_gets_reset() {
    let hub = Hub::builder().history(5).build();
    let server = start(mounted(&hub)).await;
    for n in 1..=10 {
        hub.publish("c", Event::data(format!("{n}"))).unwrap();
    }
    let mut old = SseReader::connect(server.addr, "/hub?channel=c", Some(2)).await;
    let reset = old.next_event().await.unwrap();
    assert_eq!(
        (reset.event.as_deref(), reset.data.as_deref()),
        (Some("reset"), Some("c"))
    );
    for n in 6..=10 {
        assert_eq!(old.next_event().await.unwrap().id_num(), n);
    }
    let mut fine = SseReader::connect(server.addr, "/hub?channel=c", Some(7)).await;
    assert_eq!(fine.next_event().await.unwrap().id_num(), 8);
    let mut future = SseReader::connect(server.addr, "/hub?channel=c", Some(999)).await;
    assert_eq!(
        future.next_event().await.unwrap().event.as_deref(),
        Some("reset")
    );
    assert_eq!(future.next_event().await.unwrap().id_num(), 6);
}

/// One request may subscribe to several channels; replay merges them in id
/// order.
#[tokio::test]
async fn multi_channel_subscription_and_merged_replay() {
    let hub = Hub::new();
    let server = start(mounted(&hub)).await;
    hub.publish("a", Event::data("a1")).unwrap();
    hub.publish("b", Event::data("b2")).unwrap();
    hub.publish("c", Event::data("c3")).unwrap();
    hub.publish("a", Event::data("a4")).unwrap();
    let mut reader = SseReader::connect(server.addr, "/hub?channel=a&channel=b", Some(0)).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(reader.next_event().await.unwrap().data.unwrap());
    }
    assert_eq!(got, ["a1", "b2", "a4"]);
    wait_subscribers(&server, &hub, "b", 1).await;
    hub.publish("b", Event::data("b5")).unwrap();
    assert_eq!(
        reader.next_event().await.unwrap().data.as_deref(),
        Some("b5")
    );
}

/// Disconnect policy: a stalled client is cut off alone; the publisher never
/// waits and a fast subscriber gets everything.
#[tokio::test]
async fn stalled_client_is_disconnected_alone() {
    let hub = Hub::builder()
        .queue(8)
        .history(10)
        .slow_consumer(SlowConsumer::Disconnect)
        .build();
    let server = start(mounted(&hub)).await;
    let stalled = SseReader::connect(server.addr, "/hub?channel=x", None).await;
    let mut fast = SseReader::connect(server.addr, "/hub?channel=x", None).await;
    wait_subscribers(&server, &hub, "x", 2).await;
    let payload = "x".repeat(64 * 1024);
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let read = progress.clone();
    let reader = tokio::spawn(async move {
        for n in 1..=400u64 {
            assert_eq!(fast.next_event().await.unwrap().id_num(), n);
            read.store(n, Ordering::SeqCst);
        }
    });
    for n in 1..=400u64 {
        // Stay a few events ahead of the fast reader, never waiting on the
        // stalled one: its queue fills and the policy cuts it off.
        let ahead = progress.clone();
        support::eventually("fast reader keeps up", &mut move || {
            ahead.load(Ordering::SeqCst) + 4 >= n
        })
        .await;
        hub.publish("x", Event::data(payload.clone())).unwrap();
    }
    tokio::time::timeout(WAIT * 2, reader)
        .await
        .unwrap()
        .unwrap();
    let stats = hub.stats();
    assert_eq!(stats.slow_disconnects, 1);
    assert!(stats.dropped >= 1);
    assert_eq!(hub.subscribers("x"), 1);
    drop(stalled);
}

/// Drop policy: a stalled client loses what does not fit, then gets
/// `event: gap` with the count before the next event once it reads again.
#[tokio::test]
async fn stalled_client_gets_gap_marker_under_drop_policy() {
    let hub = Hub::builder()
        .queue(4)
        .slow_consumer(SlowConsumer::DropWithGap)
        .build();
    let server = start(mounted(&hub)).await;
    let mut stalled = SseReader::connect(server.addr, "/hub?channel=y", None).await;
    wait_subscribers(&server, &hub, "y", 1).await;
    let payload = "y".repeat(256 * 1024);
    for _ in 0..200 {
        hub.publish("y", Event::data(payload.clone())).unwrap();
    }
    let dropped = hub.stats().dropped;
    assert!(dropped > 0);
    // Read everything that was queued.
    let mut last = 0;
    loop {
        let frame = tokio::time::timeout(Duration::from_millis(500), stalled.next_event()).await;
        match frame {
            Ok(Some(f)) => last = f.id_num(),
            _ => break,
        }
    }
    hub.publish("y", Event::data("after")).unwrap();
    let gap = stalled.next_event().await.unwrap();
    assert_eq!(gap.event.as_deref(), Some("gap"));
    assert_eq!(gap.data.unwrap().parse::<u64>().unwrap(), dropped);
    assert_eq!(gap.id, None);
    let next = stalled.next_event().await.unwrap();
    assert_eq!((next.id_num(), next.data.as_deref()), (201, Some("after")));
    assert_eq!(last + dropped, 200);
    assert_eq!(hub.subscribers("y"), 1, "still subscribed");
}

/// Stats are exact and served as JSON at <path>/stats; join/leave hooks fire
/// once per channel; leaving is noticed when the client disconnects.
#[tokio::test]
async fn stats_and_presence() {
    let joins = Arc::new(AtomicUsize::new(0));
    let leaves = Arc::new(AtomicUsize::new(0));
    let hub = Hub::builder()
        .on_join({
            let joins = joins.clone();
            move |p| {
                assert!(p.channel == "s" || p.channel == "t");
                joins.fetch_add(1, Ordering::SeqCst);
            }
        })
        .on_leave({
            let leaves = leaves.clone();
            move |_| {
                leaves.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    let server = start(mounted(&hub)).await;
    let mut one = SseReader::connect(server.addr, "/hub?channel=s&channel=t", None).await;
    let two = SseReader::connect(server.addr, "/hub?channel=s", None).await;
    wait_subscribers(&server, &hub, "s", 2).await;
    assert_eq!(joins.load(Ordering::SeqCst), 3);
    for _ in 0..3 {
        hub.publish("s", Event::data("x")).unwrap();
    }
    hub.publish("t", Event::data("y")).unwrap();
    for _ in 0..4 {
        one.next_event().await.unwrap();
    }
    let mut r =
        RawResponse::request(server.addr, "GET /hub/stats HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let json = String::from_utf8(r.sized_body().await).unwrap();
    assert_eq!(
        json,
        r#"{"channels":{"s":2,"t":1},"connections":2,"delivered":7,"dropped":0,"published":4,"slow_disconnects":0}"#
    );
    drop(two);
    let leaves_now = leaves.clone();
    server
        .eventually("leave hook ran", move || {
            leaves_now.load(Ordering::SeqCst) == 1
        })
        .await;
    assert_eq!(hub.subscribers("s"), 1);
    assert_eq!(hub.stats().connections, 1);
}

/// HTTP broadcast: off unless enabled; bad bodies get 400 with the reason;
/// refused channels get 403; a good body publishes with its filter.
#[tokio::test]
async fn http_broadcast_validation_and_auth() {
    let off = Hub::new();
    let server = start(mounted(&off)).await;
    let (status, _) = post(&server, "/hub/broadcast", r#"{"channel":"a","data":"x"}"#).await;
    assert_eq!(status, 404);

    let hub = Hub::builder()
        .http_broadcast(true)
        .authorize_broadcast(|ctx, channel| {
            channel != "admin" || ctx.header("x-admin") == Some("yes")
        })
        .build();
    let server = start(mounted(&hub)).await;
    let mut reader = SseReader::connect(server.addr, "/hub?channel=a&room=1", None).await;
    wait_subscribers(&server, &hub, "a", 1).await;
    for (body, reason) in [
        ("not json", "body is not valid JSON"),
        ("[1,2]", "body must be a JSON object"),
        (r#"{"data":"x"}"#, "field channel is missing"),
        (
            r#"{"channel":"","data":"x"}"#,
            "field channel must not be empty",
        ),
        (
            r#"{"channel":7,"data":"x"}"#,
            "field channel must be a string",
        ),
        (r#"{"channel":"a"}"#, "field data is missing"),
        (
            r#"{"channel":"a","data":"x","event":3}"#,
            "field event must be a string",
        ),
        (
            r#"{"channel":"a","data":"x","filter":{"room":1}}"#,
            "filter value of room must be a string",
        ),
        (
            r#"{"channel":"a","data":"x","filter":[]}"#,
            "field filter must be an object of strings",
        ),
        (
            r#"{"channel":"a","data":"x","extra":1}"#,
            "unknown field extra",
        ),
        (
            r#"{"channel":"a","data":"x","event":"a\nb"}"#,
            "invalid event",
        ),
    ] {
        let (status, text) = post(&server, "/hub/broadcast", body).await;
        assert_eq!(status, 400, "{body}");
        assert!(text.contains(reason), "{body}: {text}");
    }
    let (status, _) = post(
        &server,
        "/hub/broadcast",
        r#"{"channel":"admin","data":"x"}"#,
    )
    .await;
    assert_eq!(status, 403);
    let (status, text) = post(
        &server,
        "/hub/broadcast",
        r#"{"channel":"a","event":"chat","data":{"text":"hi"},"filter":{"room":"1"}}"#,
    )
    .await;
    assert_eq!((status, text.as_str()), (200, r#"{"id":1}"#));
    let frame = reader.next_event().await.unwrap();
    assert_eq!(frame.event.as_deref(), Some("chat"));
    assert_eq!(frame.data.as_deref(), Some(r#"{"text":"hi"}"#));
    assert_eq!(
        hub.stats().published,
        1,
        "rejected bodies published nothing"
    );
}

/// A refused subscription gets 403 and no stream; no channel is a 400.
#[tokio::test]
async fn subscribe_authorization() {
    let hub = Hub::builder()
        .authorize_subscribe(|ctx, channel| {
            channel != "secret" || ctx.query("token") == Some("t0k")
        })
        .build();
    let server = start(mounted(&hub)).await;
    let r = RawResponse::request(
        server.addr,
        "GET /hub?channel=public&channel=secret HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = RawResponse::request(server.addr, "GET /hub HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(hub.stats().connections, 0);
    let _ok = SseReader::connect(server.addr, "/hub?channel=secret&token=t0k", None).await;
    wait_subscribers(&server, &hub, "secret", 1).await;
}

/// Graceful shutdown ends hub subscriptions cleanly (they have no writer).
#[tokio::test]
async fn shutdown_ends_subscriptions_cleanly() {
    let hub = Hub::new();
    let mut server = start(mounted(&hub)).await;
    let mut reader = SseReader::connect(server.addr, "/hub?channel=z", None).await;
    wait_subscribers(&server, &hub, "z", 1).await;
    hub.publish("z", Event::data("before")).unwrap();
    assert_eq!(
        reader.next_event().await.unwrap().data.as_deref(),
        Some("before")
    );
    server.begin_shutdown();
    assert!(reader.next_event().await.is_none());
    assert_eq!(reader.ended_cleanly, Some(true), "clean end, not an abort");
    server.join().await.unwrap();
}
