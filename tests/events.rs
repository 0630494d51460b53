//! Named-event streams (`rill::events`) against a real server, with a
//! client that sees every frame: handlers and their order, broadcasts,
//! batching, bad input, hub channels with the ids SSE gets, resume and
//! reset, and the slow-consumer policy on broker feeds.

mod support;

use rill::{
    events::{EventStream, EventStreamBuilder},
    hub::{Hub, SlowConsumer},
    sse::Event,
    Context, Router,
};
use serde_json::{json, Value};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    start,
    ws::{WsClient, TEXT},
    SseReader, TestServer,
};
use tokio::net::TcpStream;

fn router(stream: &EventStream, hub: Option<&Hub>) -> Router {
    let s = stream.clone();
    let router = Router::new().get("/ws", move |ctx: Context| {
        let stream = s.clone();
        async move { stream.accept(ctx) }
    });
    match hub {
        Some(hub) => hub.mount(router, "/hub"),
        None => router,
    }
}

async fn connect(server: &TestServer) -> Client {
    let (ws, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    Client {
        ws,
        pending: Vec::new(),
        frames: 0,
    }
}

/// A client that reads the stream line by line.
struct Client {
    ws: WsClient<TcpStream>,
    pending: Vec<Value>,
    frames: usize,
}

impl Client {
    async fn send(&mut self, line: Value) {
        self.ws.send_text(&line.to_string()).await;
    }

    /// The next line, as JSON.
    async fn next(&mut self) -> Value {
        loop {
            if !self.pending.is_empty() {
                return self.pending.remove(0);
            }
            let text = self.ws.recv_text().await.expect("the stream is open");
            self.frames += 1;
            assert!(text.ends_with('\n'), "{text:?}");
            for line in text.split_terminator('\n') {
                self.pending.push(serde_json::from_str(line).unwrap());
            }
        }
    }

    /// The next line that is not about `skip` (say, a channel's
    /// `subscribed` notice).
    async fn next_where(&mut self, keep: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.next().await;
            if keep(&line) {
                return line;
            }
        }
    }
}

#[tokio::test]
async fn handlers_run_in_order_per_connection_and_answer_that_connection() {
    let stream = EventStream::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    stream.on("step", move |conn, data| {
        let log = l.clone();
        async move {
            let n: u64 = data.parse()?;
            // Later events wait for this one, though it sleeps.
            if n.is_multiple_of(2) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            log.lock().unwrap().push((conn.id(), n));
            conn.send("stepped", &n)?;
            Ok(())
        }
    });
    // A second handler of the same name runs after the first.
    stream.on("step", |conn, data| async move {
        conn.send("after", &data.into_value())?;
        Ok(())
    });
    let server = start(router(&stream, None)).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    // Several events in one text message, and one per message.
    let lines: Vec<String> = (1..=50)
        .map(|n| json!({"event": "step", "data": n}).to_string())
        .collect();
    a.ws.send_text(&lines.join("\n")).await;
    for n in 51..=60 {
        b.send(json!({"event": "step", "data": n})).await;
    }
    for n in 1..=50u64 {
        assert_eq!(a.next().await, json!({"event": "stepped", "data": n}));
        assert_eq!(a.next().await, json!({"event": "after", "data": n}));
    }
    for n in 51..=60u64 {
        assert_eq!(b.next().await, json!({"event": "stepped", "data": n}));
        assert_eq!(b.next().await, json!({"event": "after", "data": n}));
    }
    let log = log.lock().unwrap().clone();
    let of = |id| {
        log.iter()
            .filter(|(c, _)| *c == id)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(1), (1..=50).collect::<Vec<_>>());
    assert_eq!(of(2), (51..=60).collect::<Vec<_>>());
    // Gone clients: the shutdown need not wait for their close handshake.
    drop((a, b));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn once_off_and_bad_input() {
    let stream = EventStream::new();
    stream.once("first", |conn, _| async move {
        conn.send("got-first", &())?;
        Ok(())
    });
    let id = stream.on("gone", |conn, _| async move {
        conn.send("should-not", &())?;
        Ok(())
    });
    assert!(stream.off_handler(id));
    stream.on("boom", |_conn, _| async move { panic!("handler bug") });
    stream.on("fail", |_conn, data| async move {
        let _: u64 = data.parse()?;
        Ok(())
    });
    stream.on("ping", |conn, data| async move {
        assert!(data.is_absent());
        conn.send("pong", &())?;
        Ok(())
    });
    let server = start(router(&stream, None)).await;
    let mut c = connect(&server).await;
    c.send(json!({"event": "first"})).await;
    c.send(json!({"event": "first"})).await;
    c.send(json!({"event": "gone"})).await;
    c.send(json!({"event": "nobody-listens", "data": [1, 2]}))
        .await;
    c.send(json!({"event": "boom"})).await;
    c.send(json!({"event": "fail", "data": "not a number"}))
        .await;
    c.ws.send_text("this is not json").await;
    c.ws.send_text("[1,2]").await;
    c.ws.send_text(r#"{"event": 42}"#).await;
    c.ws.send_frame(true, 0x2, b"binary").await;
    c.send(json!({"event": "ping", "data": null})).await;

    assert_eq!(c.next().await, json!({"event": "got-first"}));
    for expected in ["not JSON", "object", "\"event\"", "binary"] {
        let line = c.next().await;
        let error = line["error"].as_str().unwrap_or_else(|| panic!("{line}"));
        assert!(error.contains(expected), "{error} lacks {expected}");
    }
    // The connection survived the panic and the errors; the once handler
    // ran once, the removed one never.
    assert_eq!(c.next().await, json!({"event": "pong"}));
    assert!(!stream.has_handler("first"));
    assert_eq!(stream.off("ping"), 1);
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn broadcasts_reach_every_connection_in_order_with_their_own_events() {
    let stream = EventStream::new();
    // Nobody connected: a silent no-op.
    stream.send("early", &1).unwrap();
    stream.on("shout", |conn, data| async move {
        conn.broadcast(
            "heard",
            &json!({"by": conn.id(), "what": data.into_value()}),
        )?;
        conn.send("shouted", &())?;
        Ok(())
    });
    let server = start(router(&stream, None)).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    let s = stream.clone();
    server
        .eventually("both connected", move || s.connection_count() == 2)
        .await;
    for i in 0..100 {
        stream.send("tick", &json!({"seq": i})).unwrap();
    }
    a.send(json!({"event": "shout", "data": "hi"})).await;
    for client in [&mut a, &mut b] {
        for i in 0..100 {
            assert_eq!(
                client.next().await,
                json!({"event": "tick", "data": {"seq": i}})
            );
        }
        assert_eq!(
            client.next().await,
            json!({"event": "heard", "data": {"by": 1, "what": "hi"}})
        );
    }
    // Its own answer comes after the broadcast it made.
    assert_eq!(a.next().await, json!({"event": "shouted"}));
    // Data is any Serialize; a string stays a string.
    stream.send("note", "a \"quoted\"\nline").unwrap();
    assert_eq!(
        b.next().await,
        json!({"event": "note", "data": "a \"quoted\"\nline"})
    );
    // Gone clients: the shutdown need not wait for their close handshake.
    drop((a, b));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_burst_shares_messages_and_an_idle_event_leaves_at_once() {
    let stream = EventStream::new();
    stream.on("burst", |conn, _| async move {
        for i in 0..5_000 {
            conn.ready().await?;
            conn.send("b", &i)?;
        }
        Ok(())
    });
    let server = start(router(&stream, None)).await;
    let mut c = connect(&server).await;
    c.send(json!({"event": "burst"})).await;
    for i in 0..5_000 {
        assert_eq!(c.next().await, json!({"event": "b", "data": i}));
    }
    assert!(
        c.frames < 5_000,
        "5000 events took {} messages: no batching",
        c.frames
    );
    // Idle: one event, one message, at once.
    let frames = c.frames;
    stream.send("alone", &()).unwrap();
    assert_eq!(c.next().await, json!({"event": "alone"}));
    assert_eq!(c.frames, frames + 1);
    // Gone clients: the shutdown need not wait for their close handshake.
    drop(c);
    server.shutdown().await.unwrap();
}

fn hub_stream(
    hub: &Hub,
    configure: impl FnOnce(EventStreamBuilder) -> EventStreamBuilder,
) -> EventStream {
    configure(EventStream::builder().hub(hub.clone())).build()
}

#[tokio::test]
async fn a_hub_message_reaches_sse_and_websocket_subscribers_with_the_same_id() {
    let hub = Hub::builder().history(100).build();
    let stream = hub_stream(&hub, |b| b);
    let server = start(router(&stream, Some(&hub))).await;
    let mut sse = SseReader::connect(server.addr, "/hub?channel=prices", None).await;
    let mut ws = connect(&server).await;
    ws.send(json!({"subscribe": "prices"})).await;
    let position = ws.next().await;
    assert_eq!(position["channel"], "prices");
    let start: rill::broker::Position = position["position"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        ws.next().await,
        json!({"channel": "prices", "subscribed": true})
    );
    let h = hub.clone();
    server
        .eventually("two subscribers", move || h.subscriber_count("prices") == 2)
        .await;

    let id = hub
        .publish("prices", Event::data("42.5\nline two").event("quote"))
        .await
        .unwrap();
    let frame = sse.next_event().await.unwrap();
    assert_eq!(frame.id.as_deref(), Some(id.to_string().as_str()));
    let line = ws.next().await;
    assert_eq!(
        line,
        json!({"channel": "prices", "id": id.to_string(), "event": "quote", "data": "42.5\nline two"})
    );
    assert_eq!(id.offset(), start.offset() + 1);
    assert_eq!(hub.stats(false).connections, 2);

    // Unsubscribed: nothing more from the channel.
    ws.send(json!({"unsubscribe": "prices"})).await;
    let h = hub.clone();
    server
        .eventually("one subscriber", move || h.subscriber_count("prices") == 1)
        .await;
    hub.publish("prices", Event::data("after")).await.unwrap();
    stream.send("marker", &()).unwrap();
    assert_eq!(ws.next().await, json!({"event": "marker"}));
    // Gone clients: the shutdown need not wait for their close handshake.
    drop((sse, ws));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reconnecting_client_resumes_each_channel_exactly_or_is_reset() {
    let hub = Hub::builder().history(100).build();
    let stream = hub_stream(&hub, |b| b);
    let server = start(router(&stream, Some(&hub))).await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(
            hub.publish("a", Event::data(format!("a{i}")))
                .await
                .unwrap(),
        );
        hub.publish("b", Event::data(format!("b{i}")))
            .await
            .unwrap();
    }
    let mut c = connect(&server).await;
    // `a` after its second message, `b` from the start of its history.
    c.send(json!({"subscribe": "a", "since": ids[1].to_string()}))
        .await;
    c.send(json!({"subscribe": "b", "since": "0"})).await;
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    while seen_a.len() < 3 || seen_b.len() < 5 {
        let line = c.next_where(|l| l.get("data").is_some()).await;
        match line["channel"].as_str() {
            Some("a") => seen_a.push(line["data"].as_str().unwrap().to_owned()),
            Some("b") => seen_b.push(line["data"].as_str().unwrap().to_owned()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen_a, ["a3", "a4", "a5"]);
    assert_eq!(seen_b, ["b1", "b2", "b3", "b4", "b5"]);

    // An id of another epoch (the server restarted) or garbage: a reset,
    // then what the history holds.
    let mut d = connect(&server).await;
    d.send(json!({"subscribe": "a", "since": "zzzz-3"})).await;
    assert_eq!(d.next().await, json!({"channel": "a", "reset": true}));
    for i in 1..=5 {
        let line = d.next_where(|l| l.get("data").is_some()).await;
        assert_eq!(line["data"], format!("a{i}"));
        assert_eq!(line["id"], ids[i - 1].to_string());
    }
    // Gone clients: the shutdown need not wait for their close handshake.
    drop((c, d));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_hub_decides_who_subscribes_and_with_what_metadata() {
    let hub = Hub::builder()
        .authorize_subscribe(|ctx, channel| channel != "admin" || ctx.header("x-admin").is_some())
        .identify(|ctx| vec![("user".into(), ctx.header("x-user").unwrap_or("anon").into())])
        .max_channels_per_subscription(2)
        .build();
    let stream = hub_stream(&hub, |b| b);
    let server = start(router(&stream, Some(&hub))).await;
    let (ws, _) = WsClient::connect(server.addr, "/ws", &[("X-User", "7")])
        .await
        .unwrap();
    let mut c = Client {
        ws,
        pending: Vec::new(),
        frames: 0,
    };
    c.send(json!({"subscribe": "admin"})).await;
    assert_eq!(
        c.next().await,
        json!({"channel": "admin", "error": "forbidden"})
    );
    c.send(json!({"subscribe": "one"})).await;
    c.send(json!({"subscribe": "two"})).await;
    c.send(json!({"subscribe": "three"})).await;
    let refused = c.next_where(|l| l.get("error").is_some()).await;
    assert_eq!(refused["channel"], "three");
    // Filters match the server-set metadata; nothing the client sends over
    // the socket can change it.
    let h = hub.clone();
    server
        .eventually("subscribed", move || h.subscriber_count("two") == 1)
        .await;
    hub.publish_filtered(
        "two",
        Event::data("for 8"),
        rill::hub::Filter::new().eq("user", "8"),
    )
    .await
    .unwrap();
    hub.publish_filtered(
        "two",
        Event::data("for 7"),
        rill::hub::Filter::new().eq("user", "7"),
    )
    .await
    .unwrap();
    let line = c.next_where(|l| l.get("data").is_some()).await;
    assert_eq!(line["data"], "for 7");

    // Without a hub, subscriptions are refused.
    let lone = EventStream::new();
    let server2 = start(router(&lone, None)).await;
    let mut d = connect(&server2).await;
    d.send(json!({"subscribe": "x"})).await;
    assert!(d.next().await["error"].as_str().unwrap().contains("no hub"));
    // Gone clients: the shutdown need not wait for their close handshake.
    drop((c, d));
    server.shutdown().await.unwrap();
    server2.shutdown().await.unwrap();
}

/// A WebSocket subscriber that reads nothing meets the hub's slow-consumer
/// policy like an SSE one: cut off with `1013` once its queue is full,
/// after what was queued; the publisher never waits.
#[tokio::test]
async fn a_slow_websocket_subscriber_is_cut_off_by_the_policy() {
    let hub = Hub::builder()
        .history(0)
        .slow_consumer(SlowConsumer::Disconnect)
        .build();
    let stream = hub_stream(&hub, |b| b.queue(16).buffer(256 * 1024));
    let server = start(router(&stream, Some(&hub))).await;
    let mut c = connect(&server).await;
    c.send(json!({"subscribe": "firehose"})).await;
    c.next_where(|l| l.get("subscribed").is_some()).await;
    let payload = "x".repeat(16 * 1024);
    let mut published = 0;
    // Bounded: socket buffers and the queue hold a few MiB at most.
    for _ in 0..4_000 {
        hub.publish("firehose", Event::data(payload.clone()))
            .await
            .unwrap();
        published += 1;
        if hub.stats(false).slow_disconnects > 0 {
            break;
        }
        if published % 64 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert_eq!(hub.stats(false).slow_disconnects, 1, "after {published}");
    // What was queued arrives, in order, then the close.
    let mut offsets = Vec::new();
    loop {
        let frame = c.ws.recv().await.expect("a close frame first");
        if frame.opcode == 0x8 {
            assert_eq!(frame.close_code(), Some(1013));
            break;
        }
        assert_eq!(frame.opcode, TEXT);
        for line in frame.text().split_terminator('\n') {
            let line: Value = serde_json::from_str(line).unwrap();
            if let Some(id) = line["id"].as_str() {
                offsets.push(id.parse::<rill::broker::Position>().unwrap().offset());
            }
        }
    }
    assert!(!offsets.is_empty() && offsets.len() < published);
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
    // Gone clients: the shutdown need not wait for their close handshake.
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_drop_with_gap_a_slow_connection_is_told_what_it_missed() {
    let stream = EventStream::builder()
        .queue(4)
        .slow_consumer(SlowConsumer::DropWithGap)
        .build();
    let server = start(router(&stream, None)).await;
    let mut c = connect(&server).await;
    let s = stream.clone();
    server
        .eventually("connected", move || s.connection_count() == 1)
        .await;
    // Large events: the socket's buffers fill, then the queue.
    let big = "y".repeat(64 * 1024);
    for i in 0..400 {
        stream.send("big", &json!({"i": i, "pad": big})).unwrap();
    }
    // The client reads everything; the last gap is reported before the
    // next event that fits, so `last` is sent until one arrives.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut gaps = 0;
        loop {
            let line = c.next().await;
            if let Some(n) = line.get("gap") {
                gaps += n.as_u64().unwrap();
            } else if line["event"] == "last" {
                return (got, gaps);
            } else {
                got.push(line["data"]["i"].as_u64().unwrap());
            }
        }
    });
    let mut lasts = 0;
    for _ in 0..100 {
        if reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.send("last", &()).unwrap();
        lasts += 1;
    }
    let (got, gaps) = reader.await.unwrap();
    assert!(gaps > 0, "nothing was dropped");
    // Every big event arrived or was counted in a gap; a gap may also count
    // `last`s dropped before the one that arrived (never the one read).
    let accounted = got.len() as u64 + gaps;
    assert!(
        (400..400 + lasts).contains(&accounted),
        "{} events + {gaps} in gaps, {lasts} lasts sent",
        got.len()
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_event_streams_with_1001_and_runs_on_disconnect() {
    let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let stream = EventStream::builder()
        .on_connect(|conn| async move {
            conn.send("welcome", &conn.id())?;
            Ok(())
        })
        .on_disconnect(move |conn| {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(conn.id());
                }
                Ok(())
            }
        })
        .build();
    let mut server = start(router(&stream, None)).await;
    let mut c = connect(&server).await;
    assert_eq!(c.next().await, json!({"event": "welcome", "data": 1}));
    server.begin_shutdown();
    assert_eq!(c.ws.recv_close().await, Some(1001));
    c.ws.send_close(1001).await;
    assert_eq!(
        tokio::time::timeout(support::WAIT, rx)
            .await
            .unwrap()
            .unwrap(),
        1
    );
    server.join().await.unwrap();
    assert_eq!(stream.connection_count(), 0);
}
