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
            hub.subscriber_count(&channel) == n
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
            .await
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
    let stats = hub.stats(true);
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
                hub.publish("busy", Event::data(n.to_string()))
                    .await
                    .unwrap();
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
    let stats = hub.stats(true);
    assert_eq!(stats.delivered, EVENTS * SUBSCRIBERS as u64);
    assert_eq!(stats.dropped, 0);
}

/// A filtered publish reaches only subscribers whose metadata matches every
/// pair (here from their query, opted into with `metadata_from_query`).
#[tokio::test]
async fn filters_select_subscribers_by_metadata() {
    let hub = Hub::builder().metadata_from_query(true).build();
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
    .await
    .unwrap();
    hub.publish_filtered(
        "news",
        Event::data("nobody"),
        Filter::new().eq("topic", "sports").eq("lang", "fr"),
    )
    .await
    .unwrap();
    hub.publish("news", Event::data("everyone")).await.unwrap();
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

/// A client cut off again and again (over 100 times) while publishing
/// continues on another thread resumes with its Last-Event-ID each time and
/// ends with every event exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_is_exactly_once_under_random_disconnects() {
    const EVENTS: u64 = 3000;
    let hub = Hub::builder().history(EVENTS as usize).build();
    let server = start(mounted(&hub)).await;
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for n in 1..=EVENTS {
                hub.publish("feed", Event::data(format!("{n}")))
                    .await
                    .unwrap();
                if n % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut last_id: Option<String> = None;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut reconnects = 0;
    while seen.last().copied() != Some(EVENTS) {
        reconnects += 1;
        assert!(reconnects < 2000, "too many reconnects");
        // The first connection asks for everything from the start (id 0).
        let resume = last_id.clone().unwrap_or_else(|| "0".into());
        let mut reader = SseReader::connect(server.addr, "/hub?channel=feed", Some(&resume)).await;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let take = 1 + rng % 30;
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
            last_id = frame.id.clone();
            if frame.id_num() == EVENTS {
                break;
            }
        }
        drop(reader); // cut off mid-stream
    }
    publisher.await.unwrap();
    assert!(reconnects >= 100, "only {reconnects} reconnects");
    let expected: Vec<u64> = (1..=EVENTS).collect();
    assert_eq!(seen, expected);
}

/// A client whose Last-Event-ID is older than the history, ahead of it, of
/// another epoch, or not an id at all gets `event: reset`, then what is
/// retained; one within the history continues exactly.
#[tokio::test]
async fn resume_beyond_history_gets_reset() {
    let hub = Hub::builder().history(5).build();
    let server = start(mounted(&hub)).await;
    let mut ids = Vec::new();
    for n in 1..=10 {
        ids.push(hub.publish("c", Event::data(format!("{n}"))).await.unwrap());
    }
    let epoch = ids[0].epoch().clone();
    for stale in [
        format!("{epoch}-2"),
        format!("{epoch}-999"),
        "0abc-7".to_owned(),
        "7".to_owned(),
    ] {
        let mut old = SseReader::connect(server.addr, "/hub?channel=c", Some(&stale)).await;
        let reset = old.next_event().await.unwrap();
        assert_eq!(
            (reset.event.as_deref(), reset.data.as_deref(), reset.id),
            (Some("reset"), Some("c"), None),
            "{stale}"
        );
        for n in 6..=10 {
            let frame = old.next_event().await.unwrap();
            assert_eq!(frame.position(), ids[n - 1], "{stale}");
        }
    }
    let within = format!("{epoch}-7");
    let mut fine = SseReader::connect(server.addr, "/hub?channel=c", Some(&within)).await;
    assert_eq!(fine.next_event().await.unwrap().position(), ids[7]);
}

/// Ids survive no restart: a client that resumes with an id of one hub
/// (process) on another gets a reset — never the new hub's events as if
/// they were the continuation.
#[tokio::test]
async fn an_id_of_another_hub_gets_a_reset() {
    let before = Hub::new();
    let server = start(mounted(&before)).await;
    let mut reader = SseReader::connect(server.addr, "/hub?channel=r", None).await;
    wait_subscribers(&server, &before, "r", 1).await;
    for n in 1..=6 {
        before
            .publish("r", Event::data(format!("old {n}")))
            .await
            .unwrap();
    }
    let mut last = None;
    for _ in 0..6 {
        last = reader.next_event().await.unwrap().id;
    }
    drop(reader);
    drop(server);

    // "The server restarted": a new hub, with events 1..12 of its own.
    let after = Hub::new();
    let server = start(mounted(&after)).await;
    for n in 1..=12 {
        after
            .publish("r", Event::data(format!("new {n}")))
            .await
            .unwrap();
    }
    let mut resumed = SseReader::connect(server.addr, "/hub?channel=r", last.as_deref()).await;
    let first = resumed.next_event().await.unwrap();
    assert_eq!(first.event.as_deref(), Some("reset"));
    let next = resumed.next_event().await.unwrap();
    assert_eq!(
        next.data.as_deref(),
        Some("new 1"),
        "retained history follows"
    );
}

/// One request may subscribe to several channels: each in order, replay
/// included; its id is a cursor over all of them, so resuming continues
/// every channel exactly.
#[tokio::test]
async fn multi_channel_subscription_and_replay() {
    let hub = Hub::new();
    let server = start(mounted(&hub)).await;
    for (channel, data) in [("a", "a1"), ("b", "b2"), ("c", "c3"), ("a", "a4")] {
        hub.publish(channel, Event::data(data)).await.unwrap();
    }
    let mut reader = SseReader::connect(server.addr, "/hub?channel=a&channel=b", Some("0")).await;
    let mut got = Vec::new();
    let mut cursor = None;
    for _ in 0..3 {
        let frame = reader.next_event().await.unwrap();
        cursor = frame.id;
        got.push(frame.data.unwrap());
    }
    // Per channel in order; the channels in the order of their names.
    assert_eq!(got, ["a1", "a4", "b2"]);
    let cursor = cursor.unwrap();
    assert_eq!(cursor.split('.').count(), 2, "{cursor}");
    wait_subscribers(&server, &hub, "b", 1).await;
    hub.publish("b", Event::data("b5")).await.unwrap();
    let b5 = reader.next_event().await.unwrap();
    assert_eq!(b5.data.as_deref(), Some("b5"));
    drop(reader);

    // Missed while away: one event on each channel.
    hub.publish("a", Event::data("a6")).await.unwrap();
    hub.publish("b", Event::data("b7")).await.unwrap();
    let mut back =
        SseReader::connect(server.addr, "/hub?channel=a&channel=b", b5.id.as_deref()).await;
    let mut missed = Vec::new();
    for _ in 0..2 {
        missed.push(back.next_event().await.unwrap().data.unwrap());
    }
    missed.sort();
    assert_eq!(missed, ["a6", "b7"]);
}

/// A channel a multi-channel subscriber has received nothing from still
/// resumes exactly: its cursor holds where that channel stood when it
/// subscribed.
#[tokio::test]
async fn a_quiet_channel_resumes_from_where_it_was_joined() {
    let hub = Hub::new();
    let server = start(mounted(&hub)).await;
    hub.publish("quiet", Event::data("before the subscription"))
        .await
        .unwrap();
    let mut reader = SseReader::connect(server.addr, "/hub?channel=busy&channel=quiet", None).await;
    wait_subscribers(&server, &hub, "quiet", 1).await;
    hub.publish("busy", Event::data("b1")).await.unwrap();
    let frame = reader.next_event().await.unwrap();
    drop(reader);
    wait_subscribers(&server, &hub, "quiet", 0).await;
    hub.publish("quiet", Event::data("while away"))
        .await
        .unwrap();
    let mut back = SseReader::connect(
        server.addr,
        "/hub?channel=busy&channel=quiet",
        frame.id.as_deref(),
    )
    .await;
    let missed = back.next_event().await.unwrap();
    assert_eq!(
        missed.data.as_deref(),
        Some("while away"),
        "and not the older one"
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
        hub.publish("x", Event::data(payload.clone()))
            .await
            .unwrap();
    }
    tokio::time::timeout(WAIT * 2, reader)
        .await
        .unwrap()
        .unwrap();
    let stats = hub.stats(true);
    assert_eq!(stats.slow_disconnects, 1);
    assert!(stats.dropped >= 1);
    assert_eq!(hub.subscriber_count("x"), 1);
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
        hub.publish("y", Event::data(payload.clone()))
            .await
            .unwrap();
    }
    let dropped = hub.stats(true).dropped;
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
    hub.publish("y", Event::data("after")).await.unwrap();
    let gap = stalled.next_event().await.unwrap();
    assert_eq!(gap.event.as_deref(), Some("gap"));
    assert_eq!(gap.data.unwrap().parse::<u64>().unwrap(), dropped);
    assert_eq!(gap.id, None);
    let next = stalled.next_event().await.unwrap();
    assert_eq!((next.id_num(), next.data.as_deref()), (201, Some("after")));
    assert_eq!(last + dropped, 200);
    assert_eq!(hub.subscriber_count("y"), 1, "still subscribed");
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
        hub.publish("s", Event::data("x")).await.unwrap();
    }
    hub.publish("t", Event::data("y")).await.unwrap();
    for _ in 0..4 {
        one.next_event().await.unwrap();
    }
    let mut r =
        RawResponse::request(server.addr, "GET /hub/stats HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let json = String::from_utf8(r.sized_body().await).unwrap();
    assert_eq!(
        json,
        r#"{"channel_count":2,"channels":{"s":2,"t":1},"connections":2,"delivered":7,"dropped":0,"published":4,"resets":0,"slow_disconnects":0}"#
    );
    drop(two);
    let leaves_now = leaves.clone();
    server
        .eventually("leave hook ran", move || {
            leaves_now.load(Ordering::SeqCst) == 1
        })
        .await;
    assert_eq!(hub.subscriber_count("s"), 1);
    assert_eq!(hub.stats(true).connections, 1);
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
        .metadata_from_query(true)
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
    assert_eq!(status, 200, "{text}");
    assert!(
        text.starts_with(r#"{"id":""#) && text.ends_with(r#"-1"}"#),
        "{text}"
    );
    let frame = reader.next_event().await.unwrap();
    assert_eq!(frame.event.as_deref(), Some("chat"));
    assert_eq!(frame.data.as_deref(), Some(r#"{"text":"hi"}"#));
    assert_eq!(
        hub.stats(true).published,
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
    assert_eq!(hub.stats(true).connections, 0);
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
    hub.publish("z", Event::data("before")).await.unwrap();
    assert_eq!(
        reader.next_event().await.unwrap().data.as_deref(),
        Some("before")
    );
    server.begin_shutdown();
    assert!(reader.next_event().await.is_none());
    assert_eq!(reader.ended_cleanly, Some(true), "clean end, not an abort");
    server.join().await.unwrap();
}

/// Filters cannot be steered by the client: by default a subscriber's
/// metadata comes from the server alone, so asking for `?user_id=7` does
/// not deliver user 7's events; the server's `identify` hook does.
#[tokio::test]
async fn query_metadata_cannot_widen_what_a_client_receives() {
    let hub = Hub::builder()
        .identify(|ctx| match ctx.header("x-user") {
            Some(user) => vec![("user_id".into(), user.into())],
            None => Vec::new(),
        })
        .build();
    let server = start(mounted(&hub)).await;
    let mut attacker = SseReader::connect(server.addr, "/hub?channel=inbox&user_id=7", None).await;
    let mut owner = {
        let response = RawResponse::request(
            server.addr,
            "GET /hub?channel=inbox HTTP/1.1\r\nHost: t\r\nX-User: 7\r\n\r\n",
        )
        .await;
        assert_eq!(response.status, 200);
        SseReader::from_response(response)
    };
    wait_subscribers(&server, &hub, "inbox", 2).await;
    hub.publish_filtered(
        "inbox",
        Event::data("for user 7 only"),
        Filter::new().eq("user_id", "7"),
    )
    .await
    .unwrap();
    hub.publish("inbox", Event::data("for everyone"))
        .await
        .unwrap();
    assert_eq!(
        owner.next_event().await.unwrap().data.as_deref(),
        Some("for user 7 only")
    );
    assert_eq!(
        attacker.next_event().await.unwrap().data.as_deref(),
        Some("for everyone"),
        "the attacker got user 7's event"
    );
}

/// A subscription too wide is refused: more channels than allowed per
/// request (400), or new channels past the hub's cap (503, and publishing
/// on a new channel fails too).
#[tokio::test]
async fn channel_caps_are_enforced() {
    let hub = Hub::builder()
        .max_channels_per_subscription(3)
        .max_channels(4)
        .build();
    let server = start(mounted(&hub)).await;
    let r = RawResponse::request(
        server.addr,
        "GET /hub?channel=a&channel=b&channel=c&channel=d HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400);
    let _three = SseReader::connect(server.addr, "/hub?channel=a&channel=b&channel=c", None).await;
    wait_subscribers(&server, &hub, "c", 1).await;
    let _fourth = SseReader::connect(server.addr, "/hub?channel=d", None).await;
    wait_subscribers(&server, &hub, "d", 1).await;
    let r = RawResponse::request(
        server.addr,
        "GET /hub?channel=e HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 503);
    let error = hub.publish("f", Event::data("x")).await.unwrap_err();
    assert!(
        matches!(
            error,
            rill::broker::PublishError::TooManyChannels { max: 4 }
        ),
        "{error:?}"
    );
    assert_eq!(hub.stats(false).channel_count, 4);
}

/// Presence is data: who is on a channel can be read, with the metadata the
/// server gave each subscriber; subscribers that ask get everyone first,
/// then joins and leaves as diffs.
#[tokio::test]
async fn presence_is_read_and_delivered() {
    let hub = Hub::builder()
        .presence_events(Duration::from_millis(20))
        .identify(|ctx| vec![("name".into(), ctx.query("name").unwrap_or("?").into())])
        .build();
    let server = start(mounted(&hub)).await;
    let mut ann =
        SseReader::connect(server.addr, "/hub?channel=room&presence=1&name=ann", None).await;
    let snapshot = ann.next_event().await.unwrap();
    assert_eq!(snapshot.event.as_deref(), Some("presence"));
    assert_eq!(snapshot.id, None, "presence never moves the last event id");
    let data = snapshot.data.unwrap();
    assert!(
        data.contains(r#""members":[{"id":"#) && data.contains(r#""name":"ann""#),
        "{data}"
    );

    let bob = SseReader::connect(server.addr, "/hub?channel=room&name=bob", None).await;
    wait_subscribers(&server, &hub, "room", 2).await;
    let members = hub.presence("room").await.unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.metadata[0].1.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"ann") && names.contains(&"bob"),
        "{names:?}"
    );

    // A diff with bob's join (ann's own join may come first).
    let mut saw_bob = false;
    for _ in 0..3 {
        let diff = ann.next_event().await.unwrap();
        let data = diff.data.unwrap();
        if data.contains(r#""joined":[{"id":"#) && data.contains(r#""name":"bob""#) {
            saw_bob = true;
            break;
        }
    }
    assert!(saw_bob, "no join of bob");
    drop(bob);
    let left = ann.next_event().await.unwrap();
    assert!(left.data.unwrap().contains(r#""left":[""#));
    wait_subscribers(&server, &hub, "room", 1).await;
    assert_eq!(hub.presence("room").await.unwrap().len(), 1);
}

/// A join storm costs readers nothing: presence changes are coalesced per
/// tick, so 500 subscribers coming and going while 100 readers listen to
/// presence disconnects none of them as slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_storm_does_not_disconnect_readers() {
    let hub = Hub::builder()
        .queue(16)
        .presence_events(Duration::from_millis(50))
        .build();
    let server = start(mounted(&hub)).await;
    let mut readers = Vec::new();
    for _ in 0..100 {
        readers.push(SseReader::connect(server.addr, "/hub?channel=lobby&presence=1", None).await);
    }
    wait_subscribers(&server, &hub, "lobby", 100).await;
    let draining: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            tokio::spawn(async move {
                let mut events = 0;
                while let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(800), reader.next_event()).await
                {
                    events += 1;
                }
                (events, reader.ended_cleanly)
            })
        })
        .collect();
    for _ in 0..5 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            batch.push(SseReader::connect(server.addr, "/hub?channel=lobby", None).await);
        }
        drop(batch);
    }
    for task in draining {
        let (events, ended) = task.await.unwrap();
        assert_eq!(ended, None, "a reader was disconnected");
        assert!(events >= 1, "a reader got no presence at all");
    }
    assert_eq!(hub.stats(false).slow_disconnects, 0);
}

/// Subscriptions that arrive while the server shuts down end too: none is
/// left open after the shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_racing_a_shutdown_all_end() {
    let hub = Hub::new();
    let mut server = start(mounted(&hub)).await;
    let addr = server.addr;
    let connecting: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async move {
                let request = "GET /hub?channel=late HTTP/1.1\r\nHost: t\r\n\r\n";
                let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await else {
                    return true;
                };
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if conn.write_all(request.as_bytes()).await.is_err() {
                    return true;
                }
                let mut buf = Vec::new();
                // Ends (EOF or reset) rather than staying open.
                tokio::time::timeout(WAIT * 2, conn.read_to_end(&mut buf))
                    .await
                    .is_ok()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.begin_shutdown();
    for task in connecting {
        assert!(
            task.await.unwrap(),
            "a subscription stayed open after shutdown"
        );
    }
    server.join().await.unwrap();
}

/// A burst of detached publishes (the fan-out task offers each subscriber
/// the whole burst at once) reaches single- and multi-channel subscribers
/// alike, every event once and in order, with the ids of its channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_burst_reaches_everyone_once_in_order() {
    const EVENTS: u64 = 600;
    let hub = Hub::builder().queue(2 * EVENTS as usize).build();
    let server = start(mounted(&hub)).await;
    let mut single = Vec::new();
    for _ in 0..20 {
        single.push(SseReader::connect(server.addr, "/hub?channel=burst", None).await);
    }
    let mut multi = SseReader::connect(server.addr, "/hub?channel=burst&channel=other", None).await;
    wait_subscribers(&server, &hub, "burst", 21).await;
    for n in 1..=EVENTS {
        hub.publish_detached("burst", Event::data(format!("e{n}")))
            .unwrap();
    }
    for reader in &mut single {
        for n in 1..=EVENTS {
            let frame = reader.next_event().await.unwrap();
            assert_eq!(frame.id_num(), n);
            assert_eq!(frame.data.as_deref(), Some(format!("e{n}").as_str()));
        }
    }
    for n in 1..=EVENTS {
        let frame = multi.next_event().await.unwrap();
        assert_eq!(frame.data.as_deref(), Some(format!("e{n}").as_str()));
    }
    assert_eq!(hub.stats(false).dropped, 0);
}

/// A detached burst larger than a subscriber's queue overflows it at once
/// (the burst is offered as one): under the drop policy the subscriber gets
/// what fits, then a gap notice counting the rest, then what follows.
#[tokio::test]
async fn a_detached_burst_past_the_queue_is_dropped_with_a_gap() {
    let hub = Hub::builder()
        .queue(10)
        .slow_consumer(SlowConsumer::DropWithGap)
        .build();
    let server = start(mounted(&hub)).await;
    let mut reader = SseReader::connect(server.addr, "/hub?channel=over", None).await;
    wait_subscribers(&server, &hub, "over", 1).await;
    for n in 1..=100 {
        hub.publish_detached("over", Event::data(format!("e{n}")))
            .unwrap();
    }
    for n in 1..=10u64 {
        assert_eq!(reader.next_event().await.unwrap().id_num(), n);
    }
    // An awaited publish fans out whatever still waits first, then itself.
    hub.publish("over", Event::data("after")).await.unwrap();
    let gap = reader.next_event().await.unwrap();
    assert_eq!(gap.event.as_deref(), Some("gap"));
    assert_eq!(gap.data.as_deref(), Some("90"));
    let next = reader.next_event().await.unwrap();
    assert_eq!((next.id_num(), next.data.as_deref()), (101, Some("after")));
    assert_eq!(hub.stats(true).dropped, 90);
    assert_eq!(hub.subscriber_count("over"), 1, "still subscribed");
}

/// A detached burst longer than the default queue (256) goes out in runs:
/// subscribers that read along get all of it, none is cut off as slow.
#[tokio::test]
async fn a_long_detached_burst_goes_out_in_runs_that_fit() {
    const EVENTS: u64 = 2000;
    let hub = Hub::new();
    let server = start(mounted(&hub)).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(SseReader::connect(server.addr, "/hub?channel=long", None).await);
    }
    wait_subscribers(&server, &hub, "long", 3).await;
    for n in 1..=EVENTS {
        hub.publish_detached("long", Event::data(format!("e{n}")))
            .unwrap();
    }
    for reader in &mut readers {
        for n in 1..=EVENTS {
            assert_eq!(reader.next_event().await.unwrap().id_num(), n);
        }
    }
    let stats = hub.stats(true);
    assert_eq!((stats.dropped, stats.slow_disconnects), (0, 0));
}
