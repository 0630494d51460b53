//! The cable server against a real socket, with a client that sees every
//! frame: subprotocol negotiation, the welcome after `connect`, commands in
//! order, confirmations and rejections, malformed input, timers, streams,
//! remote disconnect, shutdown, the `too_slow` bound, and the extended
//! protocol's session restore and history — exactly once, in order.
//! (The official JavaScript clients run in `controllers-example/tests/
//! cable_clients.rs`.)

mod support;

use rill::broker::Broker;
use rill::cable::{
    Cable, CableError, Channel, ChannelResult, Identifiers, Rejection, Subscription,
};
use rill::{Context, Router};
use serde_json::{json, Map, Value};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    start_with,
    ws::{WsClient, BINARY, CLOSE, PING, PONG, TEXT},
    TestServer, WAIT,
};
use tokio::net::TcpStream;

const JSON_PROTOCOLS: &str = "actioncable-v1-json, actioncable-unsupported";
const EXT_PROTOCOL: &str = "actioncable-v1-ext-json";

/// What channels and hooks saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

#[derive(Default)]
struct EchoChannel {
    log: Log,
    count: u64,
}

impl Channel for EchoChannel {
    async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
        record(
            &self.log,
            format!("subscribed {}", sub.identifier().as_str()),
        );
        if sub.param_str("reject") == Some("yes") {
            sub.reject();
            return Ok(());
        }
        sub.transmit("hello")?;
        if let Some(Value::Array(streams)) = sub.params().get("streams") {
            for stream in streams.iter().filter_map(Value::as_str) {
                sub.stream_from(stream);
            }
        }
        if let Some(every) = sub.params().get("tick_ms").and_then(Value::as_u64) {
            sub.periodically(Duration::from_millis(every), "tick");
        }
        Ok(())
    }

    async fn unsubscribed(&mut self, sub: &Subscription) -> ChannelResult {
        record(
            &self.log,
            format!(
                "unsubscribed {} count={}",
                sub.identifier().as_str(),
                self.count
            ),
        );
        Ok(())
    }

    async fn receive(&mut self, sub: &Subscription, data: Map<String, Value>) -> ChannelResult {
        sub.transmit(&json!({"received": data}))?;
        Ok(())
    }

    async fn perform(
        &mut self,
        sub: &Subscription,
        action: &str,
        data: Map<String, Value>,
    ) -> ChannelResult {
        match action {
            "tick" => {
                self.count += 1;
                sub.transmit(&self.count)?;
            }
            "echo" => sub.transmit(&data)?,
            "stop" => sub.stop_stream_from(data["name"].as_str().unwrap_or_default()),
            "stop_all" => sub.stop_all_streams(),
            "follow" => sub.stream_from(data["name"].as_str().unwrap_or_default()),
            "panic" => panic!("a channel action panicked"),
            _ => {
                return Err(CableError::UnknownAction {
                    action: action.to_owned(),
                }
                .into())
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct RoomChannel;

impl Channel for RoomChannel {
    async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
        let room = sub.param_str("room").unwrap_or_default().to_owned();
        sub.stream_for(&[&room]);
        Ok(())
    }
}

struct Setup {
    server: TestServer,
    cable: Cable,
    log: Log,
}

/// A server with a cable at `/cable`: `?user=NAME` connects as NAME (after
/// `connect_delay`), no user is rejected.
async fn setup(
    configure: impl FnOnce(rill::cable::CableBuilder) -> rill::cable::CableBuilder,
) -> Setup {
    let log: Log = Arc::default();
    let (connect_log, disconnect_log, channel_log) = (log.clone(), log.clone(), log.clone());
    let builder = Cable::builder()
        .connect(move |req| {
            let user = req.query("user").map(str::to_owned);
            let delay = req
                .query("delay_ms")
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let log = connect_log.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                match user {
                    Some(user) => {
                        record(&log, format!("connect {user}"));
                        Ok(Identifiers::new().with("user", user))
                    }
                    None => Err(Rejection::Unauthorized),
                }
            }
        })
        .disconnect(move |ids| {
            let log = disconnect_log.clone();
            async move {
                record(
                    &log,
                    format!("disconnect {}", ids.get("user").unwrap_or("?")),
                )
            }
        })
        .channel("EchoChannel", move || EchoChannel {
            log: channel_log.clone(),
            count: 0,
        })
        .channel("Chat::RoomChannel", RoomChannel::default);
    let cable = configure(builder).build();
    let c = cable.clone();
    let router = Router::new().get("/cable", move |ctx: Context| {
        let cable = c.clone();
        async move { cable.accept(ctx) }
    });
    // The test clients do not answer close frames: the shutdown at each
    // test's end need not wait for them.
    let server = start_with(router, |server| {
        server.shutdown_deadline(Duration::from_millis(300))
    })
    .await;
    Setup { server, cable, log }
}

/// A cable client that sees every message.
struct Client {
    ws: WsClient<TcpStream>,
    head: String,
}

impl Client {
    async fn connect(setup: &Setup, query: &str, protocols: &str) -> Client {
        let path = format!("/cable{query}");
        let (ws, head) = WsClient::connect(
            setup.server.addr,
            &path,
            &[("Sec-WebSocket-Protocol", protocols)],
        )
        .await
        .expect("101");
        Client { ws, head }
    }

    async fn send(&mut self, message: Value) {
        self.ws.send_text(&message.to_string()).await;
    }

    async fn subscribe(&mut self, params: Value) {
        self.send(json!({"command": "subscribe", "identifier": params.to_string()}))
            .await;
    }

    async fn perform(&mut self, params: &Value, data: Value) {
        self.send(json!({
            "command": "message",
            "identifier": params.to_string(),
            "data": data.to_string(),
        }))
        .await;
    }

    /// The next message that is not a ping; `None` once the socket closes.
    async fn next(&mut self) -> Option<Value> {
        loop {
            let frame = self.ws.recv().await?;
            match frame.opcode {
                TEXT => {
                    let value: Value = serde_json::from_str(frame.text()).expect("JSON");
                    if value["type"] == "ping" {
                        continue;
                    }
                    return Some(value);
                }
                PING | PONG => continue,
                CLOSE => return None,
                other => panic!("opcode {other}"),
            }
        }
    }

    async fn expect(&mut self, expected: Value) {
        assert_eq!(self.next().await, Some(expected));
    }

    /// The next data message's `message`.
    async fn data(&mut self) -> Value {
        let message = self.next().await.expect("a message");
        assert!(message.get("message").is_some(), "{message}");
        message["message"].clone()
    }
}

fn id(params: &Value) -> String {
    params.to_string()
}

#[tokio::test]
async fn echoes_the_first_supported_subprotocol() {
    let s = setup(|b| b).await;
    let rails = Client::connect(&s, "?user=a", JSON_PROTOCOLS).await;
    assert!(
        rails
            .head
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: actioncable-v1-json\r\n"),
        "{}",
        rails.head
    );
    let ext = Client::connect(&s, "?user=a", EXT_PROTOCOL).await;
    assert!(
        ext.head
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: actioncable-v1-ext-json\r\n"),
        "{}",
        ext.head
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn welcomes_after_connect_and_runs_early_commands_in_order() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=ann&delay_ms=300", JSON_PROTOCOLS).await;
    let echo = json!({"channel": "EchoChannel"});
    // Sent while `connect` still runs.
    c.subscribe(echo.clone()).await;
    c.perform(&echo, json!({"action": "tick"})).await;
    c.perform(&echo, json!({"message": "hi"})).await;
    c.expect(json!({"type": "welcome"})).await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    assert_eq!(c.data().await, 1);
    assert_eq!(c.data().await, json!({"received": {"message": "hi"}}));
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rejected_connection_is_told_not_to_reconnect() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false}))
        .await;
    assert_eq!(c.ws.recv_close().await, Some(1000));
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscriptions_are_confirmed_once_rejected_with_unsubscribed_and_keep_their_state() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=bo", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let a = json!({"channel": "EchoChannel", "n": 1});
    let b = json!({"channel": "EchoChannel", "n": 2});
    let rejected = json!({"channel": "EchoChannel", "reject": "yes"});
    c.subscribe(a.clone()).await;
    c.subscribe(a.clone()).await; // the Rails client's retry: ignored
    c.subscribe(b.clone()).await;
    c.subscribe(rejected.clone()).await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&a), "type": "confirm_subscription"}))
        .await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&b), "type": "confirm_subscription"}))
        .await;
    c.expect(json!({"identifier": id(&rejected), "type": "reject_subscription"}))
        .await;
    // Each subscription counts on its own.
    for _ in 0..2 {
        c.perform(&a, json!({"action": "tick"})).await;
    }
    c.perform(&b, json!({"action": "tick"})).await;
    assert_eq!(c.data().await, 1);
    assert_eq!(c.data().await, 2);
    let last = c.next().await.unwrap();
    assert_eq!(
        (last["identifier"].as_str(), &last["message"]),
        (Some(id(&b).as_str()), &json!(1))
    );
    let entries = s.log.lock().unwrap().clone();
    let rejected_id = id(&rejected);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.contains(&rejected_id))
            .collect::<Vec<_>>(),
        [
            &format!("subscribed {rejected_id}"),
            &format!("unsubscribed {rejected_id} count=0")
        ]
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.starts_with(&format!("subscribed {}", id(&a))))
            .count(),
        1,
        "a duplicate subscribe ran subscribed again: {entries:?}"
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_input_is_ignored_and_the_connection_stays() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=cy", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    for junk in [
        "not json",
        "[1,2]",
        r#"{"command":"dance"}"#,
        r#"{"command":"subscribe"}"#,
        r#"{"command":"subscribe","identifier":{"channel":"EchoChannel"}}"#,
        r#"{"command":"subscribe","identifier":"{\"no\":\"channel\"}"}"#,
        r#"{"command":"subscribe","identifier":"{\"channel\":\"NoSuchChannel\"}"}"#,
        r#"{"command":"message","identifier":"{\"channel\":\"EchoChannel\",\"x\":9}","data":"{}"}"#,
        r#"{"command":"message","identifier":"{\"channel\":\"EchoChannel\"}","data":"not json"}"#,
        r#"{"command":"unsubscribe","identifier":"{\"channel\":\"EchoChannel\",\"x\":9}"}"#,
    ] {
        c.ws.send_text(junk).await;
    }
    c.ws.send_frame(true, BINARY, b"\x00\x01").await;
    let echo = json!({"channel": "EchoChannel"});
    c.subscribe(echo.clone()).await;
    // An unknown action and a panicking one are logged; the subscription goes on.
    c.perform(&echo, json!({"action": "fly"})).await;
    c.perform(&echo, json!({"action": "panic"})).await;
    c.perform(&echo, json!({"action": "echo", "x": "<script>"}))
        .await;
    // Nothing answered the junk (an unknown channel gets no reply, as in
    // Rails): the first reply is the valid subscription's.
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    assert_eq!(c.data().await, json!({"action": "echo", "x": "<script>"}));
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_channels_are_rejected_when_asked() {
    let s = setup(|b| b.reject_unknown_channels(true)).await;
    let mut c = Client::connect(&s, "?user=di", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let ghost = json!({"channel": "GhostChannel"});
    c.subscribe(ghost.clone()).await;
    c.expect(json!({"identifier": id(&ghost), "type": "reject_subscription"}))
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streams_deliver_broadcasts_as_given_until_stopped() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=ed", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let echo = json!({"channel": "EchoChannel", "streams": ["a", "b"]});
    c.subscribe(echo.clone()).await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    s.cable.broadcast("a", &json!({"obj": 1})).unwrap();
    s.cable.broadcast("a", "a string").unwrap();
    s.cable
        .broadcast_json("b", r#""{\"looks\":\"like json\"}""#)
        .unwrap();
    assert_eq!(c.data().await, json!({"obj": 1}));
    assert_eq!(c.data().await, "a string");
    assert_eq!(c.data().await, r#"{"looks":"like json"}"#);
    assert!(matches!(
        s.cable.broadcast_json("a", "{not json"),
        Err(CableError::InvalidJson { .. })
    ));
    c.perform(&echo, json!({"action": "stop", "name": "a"}))
        .await;
    c.perform(&echo, json!({"action": "echo", "sync": 1})).await;
    assert_eq!(c.data().await, json!({"action": "echo", "sync": 1}));
    s.cable.publish("a", "lost").await.unwrap();
    s.cable.publish("b", "kept").await.unwrap();
    assert_eq!(c.data().await, "kept");
    c.perform(&echo, json!({"action": "stop_all"})).await;
    c.perform(&echo, json!({"action": "follow", "name": "c"}))
        .await;
    c.perform(&echo, json!({"action": "echo", "sync": 2})).await;
    assert_eq!(c.data().await, json!({"action": "echo", "sync": 2}));
    s.cable.publish("b", "lost too").await.unwrap();
    s.cable.publish("c", "followed").await.unwrap();
    assert_eq!(c.data().await, "followed");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_for_uses_rails_broadcasting_names() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=fi", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let room = json!({"channel": "Chat::RoomChannel", "room": "42"});
    c.subscribe(room.clone()).await;
    c.expect(json!({"identifier": id(&room), "type": "confirm_subscription"}))
        .await;
    s.cable
        .publish("chat:room:42", &json!({"hi": true}))
        .await
        .unwrap();
    assert_eq!(c.data().await, json!({"hi": true}));
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn periodic_timers_tick_until_unsubscribed() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=gus", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let ticking = json!({"channel": "EchoChannel", "tick_ms": 30});
    c.subscribe(ticking.clone()).await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&ticking), "type": "confirm_subscription"}))
        .await;
    for n in 1..=3 {
        assert_eq!(c.data().await, n);
    }
    c.send(json!({"command": "unsubscribe", "identifier": id(&ticking)}))
        .await;
    // Ticks already queued may still come; then none.
    let mut quiet = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_millis(200), c.next()).await {
            Err(_) => {
                quiet = true;
                break;
            }
            Ok(Some(message)) => assert!(message["message"].is_u64(), "{message}"),
            Ok(None) => panic!("closed"),
        }
    }
    assert!(quiet, "ticks went on after unsubscribe");
    let entries = s.log.lock().unwrap().clone();
    assert!(
        entries
            .iter()
            .any(|e| e.starts_with(&format!("unsubscribed {}", id(&ticking)))),
        "{entries:?}"
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn closing_runs_unsubscribed_for_every_subscription_then_disconnect() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=hal", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let (a, b) = (
        json!({"channel": "EchoChannel", "n": "a"}),
        json!({"channel": "EchoChannel", "n": "b"}),
    );
    for params in [&a, &b] {
        c.subscribe(params.clone()).await;
        assert_eq!(c.data().await, "hello");
        c.next().await.unwrap();
    }
    c.perform(&b, json!({"action": "tick"})).await;
    assert_eq!(c.data().await, 1);
    c.ws.send_close(1000).await;
    assert_eq!(c.ws.recv_close().await, Some(1000));
    let wanted = [
        format!("unsubscribed {} count=0", id(&a)),
        format!("unsubscribed {} count=1", id(&b)),
        "disconnect hal".to_owned(),
    ];
    s.server
        .eventually("unsubscribed, then disconnect", || {
            let entries = s.log.lock().unwrap();
            entries.len() >= 3 && entries[entries.len() - 3..] == wanted[..]
        })
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn remote_disconnect_reaches_the_connections_of_an_identifier() {
    let s = setup(|b| b).await;
    let mut ivy = Client::connect(&s, "?user=ivy", JSON_PROTOCOLS).await;
    let mut ivy2 = Client::connect(&s, "?user=ivy", JSON_PROTOCOLS).await;
    let mut jo = Client::connect(&s, "?user=jo", JSON_PROTOCOLS).await;
    for c in [&mut ivy, &mut ivy2, &mut jo] {
        c.expect(json!({"type": "welcome"})).await;
    }
    assert_eq!(s.cable.disconnect(&[("user", "ivy")], false), 2);
    ivy.expect(json!({"type": "disconnect", "reason": "remote", "reconnect": false}))
        .await;
    assert_eq!(ivy.ws.recv_close().await, Some(1000));
    ivy2.expect(json!({"type": "disconnect", "reason": "remote", "reconnect": false}))
        .await;
    assert_eq!(s.cable.disconnect(&[("user", "jo")], true), 1);
    jo.expect(json!({"type": "disconnect", "reason": "remote", "reconnect": true}))
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn remote_disconnect_reaches_the_other_cables_on_the_broker() {
    // Two cables on one broker stand for two processes on one Redis
    // (tests/cable_redis.rs has the real thing).
    let broker = Broker::new();
    let a = setup(|b| b.broker(broker.clone())).await;
    let b = setup(|b| b.broker(broker.clone())).await;
    let mut ivy_a = Client::connect(&a, "?user=ivy", JSON_PROTOCOLS).await;
    let mut ivy_b = Client::connect(&b, "?user=ivy", JSON_PROTOCOLS).await;
    let mut jo_b = Client::connect(&b, "?user=jo", JSON_PROTOCOLS).await;
    for c in [&mut ivy_a, &mut ivy_b, &mut jo_b] {
        c.expect(json!({"type": "welcome"})).await;
    }
    // A session of ivy's parked on b, waiting for its client.
    let (parked, _sid, _) = ext_subscribe(&b, "?user=ivy").await;
    parked.ws.vanish();
    b.server
        .eventually("the session parked", || b.cable.parked_session_count() == 1)
        .await;

    // a reaches its own connection at once, b's through the broker.
    assert_eq!(a.cable.disconnect(&[("user", "ivy")], false), 1);
    let remote = json!({"type": "disconnect", "reason": "remote", "reconnect": false});
    ivy_a.expect(remote.clone()).await;
    assert_eq!(ivy_a.next().await, None, "one disconnect, then the close");
    ivy_b.expect(remote).await;
    assert_eq!(ivy_b.ws.recv_close().await, Some(1000));
    ivy_b.ws.send_close(1000).await;
    b.server
        .eventually("the parked session ended", || {
            b.cable.parked_session_count() == 0
                && b.log.lock().unwrap().iter().any(|e| e == "disconnect ivy")
        })
        .await;
    // jo, on b too, is still connected.
    let echo = json!({"channel": "EchoChannel"});
    jo_b.subscribe(echo.clone()).await;
    assert_eq!(jo_b.data().await, "hello");
    jo_b.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    b.server
        .eventually("jo alone on b", || b.cable.connection_count() == 1)
        .await;
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_tells_every_client_to_come_back() {
    let mut s = setup(|b| b).await;
    let mut a = Client::connect(&s, "?user=kim", JSON_PROTOCOLS).await;
    let mut b = Client::connect(&s, "?user=lou", EXT_PROTOCOL).await;
    a.expect(json!({"type": "welcome"})).await;
    assert_eq!(b.next().await.unwrap()["type"], "welcome");
    s.server.begin_shutdown();
    for c in [&mut a, &mut b] {
        c.expect(json!({"type": "disconnect", "reason": "server_restart", "reconnect": true}))
            .await;
        assert_eq!(c.ws.recv_close().await, Some(1001));
    }
    s.server.join().await.unwrap();
}

#[tokio::test]
async fn pings_carry_increasing_unix_seconds() {
    let s = setup(|b| b.ping_interval(Duration::from_millis(1100))).await;
    let mut c = Client::connect(&s, "?user=max", JSON_PROTOCOLS).await;
    let mut pings = Vec::new();
    while pings.len() < 2 {
        let text = c.ws.recv_text().await.expect("open");
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["type"] == "ping" {
            pings.push(message["message"].as_u64().expect("an integer"));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        pings[0] < pings[1] && pings[1] <= now && now - pings[1] < 5,
        "{pings:?}"
    );
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ten_thousand_broadcasts_arrive_in_order() {
    let s = setup(|b| b.queue(20_000)).await;
    let mut c = Client::connect(&s, "?user=ned", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let echo = json!({"channel": "EchoChannel", "streams": ["seq"]});
    c.subscribe(echo.clone()).await;
    assert_eq!(c.data().await, "hello");
    c.next().await.unwrap();
    let cable = s.cable.clone();
    let publisher = tokio::spawn(async move {
        for i in 0..10_000u32 {
            if i % 2 == 0 {
                cable.broadcast("seq", &i).unwrap();
            } else {
                cable.publish("seq", &i).await.unwrap();
            }
        }
    });
    for i in 0..10_000u64 {
        assert_eq!(c.data().await, i);
    }
    publisher.await.unwrap();
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected_as_too_slow() {
    let s = setup(|b| b.queue(8).buffer(64 * 1024)).await;
    let mut c = Client::connect(&s, "?user=oz", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let echo = json!({"channel": "EchoChannel", "streams": ["flood"]});
    c.subscribe(echo.clone()).await;
    assert_eq!(c.data().await, "hello");
    c.next().await.unwrap();
    // Far more than the socket buffers and the queue hold, unread.
    let big = "x".repeat(64 * 1024);
    for _ in 0..400 {
        s.cable.publish("flood", &big).await.unwrap();
    }
    let mut last = None;
    loop {
        match tokio::time::timeout(WAIT, c.ws.recv())
            .await
            .expect("in time")
        {
            Some(frame) if frame.opcode == TEXT => last = Some(frame.text().to_owned()),
            Some(frame) if frame.opcode == CLOSE => {
                assert_eq!(frame.close_code(), Some(1013));
                break;
            }
            Some(_) => {}
            None => panic!("closed without a close frame"),
        }
    }
    assert_eq!(
        last.as_deref(),
        Some(r#"{"type":"disconnect","reason":"too_slow","reconnect":true}"#)
    );
    s.server.shutdown().await.unwrap();
}

/// The extended protocol: one subscription to stream `s`, the messages
/// `from..to` published, and where the client stands after reading them.
async fn ext_subscribe(s: &Setup, query: &str) -> (Client, String, Value) {
    let mut c = Client::connect(s, query, EXT_PROTOCOL).await;
    let welcome = c.next().await.unwrap();
    assert_eq!(welcome["type"], "welcome");
    let sid = welcome["sid"].as_str().expect("a session id").to_owned();
    assert_eq!(sid.len(), 32, "{sid}");
    let echo = json!({"channel": "EchoChannel", "streams": ["s"]});
    c.subscribe(echo.clone()).await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    (c, sid, echo)
}

/// The next broadcast: its number, epoch and offset.
async fn positioned(c: &mut Client) -> (u64, String, u64) {
    let m = c.next().await.expect("a broadcast");
    assert_eq!(m["stream_id"], "s", "{m}");
    (
        m["message"].as_u64().expect("a number"),
        m["epoch"].as_str().expect("an epoch").to_owned(),
        m["offset"].as_u64().expect("an offset"),
    )
}

#[tokio::test]
async fn a_restored_session_resumes_exactly_once_without_connect() {
    let s = setup(|b| b).await;
    let (mut c, sid, echo) = ext_subscribe(&s, "?user=pat").await;
    for i in 0..3u64 {
        s.cable.publish("s", &i).await.unwrap();
    }
    let mut last = None;
    for i in 0..3u64 {
        let (n, epoch, offset) = positioned(&mut c).await;
        assert_eq!(n, i);
        last = Some((epoch, offset));
    }
    let (epoch, offset) = last.unwrap();
    // The socket dies; the server parks the session; more is published.
    c.ws.vanish();
    s.server
        .eventually("the session parked", || s.cable.parked_session_count() == 1)
        .await;
    for i in 3..6u64 {
        s.cable.publish("s", &i).await.unwrap();
    }
    let connects = s
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.starts_with("connect"))
        .count();
    // No user in the query: only the session id can let it in.
    let mut back = Client::connect(&s, &format!("?sid={sid}"), EXT_PROTOCOL).await;
    let welcome = back.next().await.unwrap();
    assert_eq!(welcome["restored"], true, "{welcome}");
    assert_eq!(welcome["restored_ids"], json!([id(&echo)]));
    assert_ne!(welcome["sid"], sid);
    // Published while it waits for the client's history request: held in
    // the broker's history, not sent twice.
    s.cable.publish("s", &6u64).await.unwrap();
    back.send(json!({
        "command": "history",
        "identifier": id(&echo),
        "history": {"since": 0, "streams": {"s": {"epoch": epoch, "offset": offset}}},
    }))
    .await;
    for i in 3..7u64 {
        assert_eq!(positioned(&mut back).await.0, i);
    }
    back.expect(json!({"identifier": id(&echo), "type": "confirm_history"}))
        .await;
    s.cable.publish("s", &7u64).await.unwrap();
    assert_eq!(positioned(&mut back).await.0, 7);
    // The channel's state came along; connect did not run again.
    back.perform(&echo, json!({"action": "tick"})).await;
    assert_eq!(back.data().await, 1);
    let entries = s.log.lock().unwrap().clone();
    assert_eq!(
        entries.iter().filter(|e| e.starts_with("connect")).count(),
        connects
    );
    assert!(
        !entries.iter().any(|e| e.starts_with("unsubscribed")),
        "{entries:?}"
    );
    // A session id is good once.
    let mut again = Client::connect(&s, &format!("?sid={sid}"), EXT_PROTOCOL).await;
    again
        .expect(json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false}))
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restore_takes_over_a_session_whose_old_socket_seems_alive() {
    let s = setup(|b| b).await;
    let (mut old, sid, echo) = ext_subscribe(&s, "?user=quinn").await;
    s.cable.publish("s", &0u64).await.unwrap();
    let (_, epoch, offset) = positioned(&mut old).await;
    s.cable.publish("s", &1u64).await.unwrap();
    // The old socket stays open (the server has not noticed anything).
    let mut back = Client::connect(&s, &format!("?sid={sid}"), EXT_PROTOCOL).await;
    let welcome = back.next().await.unwrap();
    assert_eq!(welcome["restored"], true, "{welcome}");
    back.send(json!({
        "command": "history",
        "identifier": id(&echo),
        "history": {"streams": {"s": {"epoch": epoch, "offset": offset}}},
    }))
    .await;
    assert_eq!(positioned(&mut back).await.0, 1);
    back.expect(json!({"identifier": id(&echo), "type": "confirm_history"}))
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn history_on_subscribe_and_its_rejection() {
    let s = setup(|b| b).await;
    for i in 0..3u64 {
        s.cable.publish("s", &i).await.unwrap();
    }
    let epoch = {
        let (mut c, _, _) = ext_subscribe(&s, "?user=rex").await;
        s.cable.publish("s", &3u64).await.unwrap();
        positioned(&mut c).await.1
    };
    let mut c = Client::connect(&s, "?user=rex", EXT_PROTOCOL).await;
    assert_eq!(c.next().await.unwrap()["type"], "welcome");
    let echo = json!({"channel": "EchoChannel", "streams": ["s"]});
    // From offset 2 (message 1): 2 and 3 follow, after the confirmation.
    c.send(json!({
        "command": "subscribe",
        "identifier": id(&echo),
        "history": {"since": 0, "streams": {"s": {"epoch": epoch, "offset": 2}}},
    }))
    .await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    assert_eq!(positioned(&mut c).await.0, 2);
    assert_eq!(positioned(&mut c).await.0, 3);
    c.expect(json!({"identifier": id(&echo), "type": "confirm_history"}))
        .await;
    // An epoch this server never made: continuity is lost.
    let other = json!({"channel": "EchoChannel", "streams": ["s"], "n": 2});
    c.send(json!({
        "command": "subscribe",
        "identifier": id(&other),
        "history": {"streams": {"s": {"epoch": "zzzz-not-ours", "offset": 1}}},
    }))
    .await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&other), "type": "confirm_subscription"}))
        .await;
    let mut rejected = false;
    for _ in 0..8 {
        let m = c.next().await.unwrap();
        if m["type"] == "reject_history" {
            assert_eq!(m["identifier"], id(&other));
            rejected = true;
            break;
        }
    }
    assert!(rejected, "no reject_history");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plain_protocol_connection_gets_nothing_of_the_extended_one() {
    let s = setup(|b| b).await;
    let mut c = Client::connect(&s, "?user=sam", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    let echo = json!({"channel": "EchoChannel", "streams": ["p"]});
    c.send(json!({
        "command": "subscribe",
        "identifier": id(&echo),
        "history": {"since": 0},
    }))
    .await;
    assert_eq!(c.data().await, "hello");
    c.expect(json!({"identifier": id(&echo), "type": "confirm_subscription"}))
        .await;
    s.cable.publish("p", "plain").await.unwrap();
    c.expect(json!({"identifier": id(&echo), "message": "plain"}))
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscriptions_past_the_cap_are_rejected() {
    let s = setup(|b| b.max_subscriptions(2)).await;
    let mut c = Client::connect(&s, "?user=tia", JSON_PROTOCOLS).await;
    c.expect(json!({"type": "welcome"})).await;
    for n in 0..3 {
        c.subscribe(json!({"channel": "Chat::RoomChannel", "room": n.to_string()}))
            .await;
    }
    for n in 0..2 {
        let room = json!({"channel": "Chat::RoomChannel", "room": n.to_string()});
        c.expect(json!({"identifier": id(&room), "type": "confirm_subscription"}))
            .await;
    }
    let third = json!({"channel": "Chat::RoomChannel", "room": "2"});
    c.expect(json!({"identifier": id(&third), "type": "reject_subscription"}))
        .await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lost_session_past_the_parking_cap_ends_at_once() {
    let s = setup(|b| b.max_parked_sessions(0)).await;
    let (c, _sid, echo) = ext_subscribe(&s, "?user=uma").await;
    c.ws.vanish();
    let wanted = [
        format!("unsubscribed {} count=0", id(&echo)),
        "disconnect uma".to_owned(),
    ];
    s.server
        .eventually("unsubscribed, then disconnect", || {
            let entries = s.log.lock().unwrap();
            entries.len() >= 2 && entries[entries.len() - 2..] == wanted[..]
        })
        .await;
    assert_eq!(s.cable.parked_session_count(), 0);
    s.server.shutdown().await.unwrap();
}
