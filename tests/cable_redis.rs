//! Extended-protocol cable sessions across processes: two cable servers,
//! each with its own broker on its own `RedisBackend`, one real
//! `redis-server` (started by each test on a free loopback port, stopped by
//! its PID). A session parked on one is restored on the other — without
//! `connect` or `subscribed`, its streams resumed exactly once and in
//! order, its timers running — and then ends on neither's callbacks at the
//! owner; one nobody restores ends on its owner as before; a local restore
//! takes the record so no other process can; bad records give a fresh
//! welcome; a remote disconnect asked of one reaches the other's
//! connections and parked sessions.
//!
//! Needs `redis-server` (scripts/setup-test-deps.sh installs it). Without
//! it the tests say so and pass — except with `CI=true`, where a missing
//! Redis fails them.
#![cfg(feature = "redis")]

mod support;

use rill::broker::{Broker, RedisBackend, RedisConfig};
use rill::cable::{Cable, Channel, ChannelResult, Identifiers, Rejection, Subscription};
use rill::{Context, Router};
use serde_json::{json, Map, Value};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    start_with,
    ws::{WsClient, CLOSE, PING, PONG, TEXT},
    TestServer, WAIT,
};
use tokio::net::TcpStream;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

const EXT_PROTOCOL: &str = "actioncable-v1-ext-json";
const PREFIX: &str = "cable-test:";

/// What the hooks and channels of every node saw, each entry naming its node.
type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, entry: String) {
    log.lock().unwrap().push(entry);
}

/// Streams what its params list; ticks with its own counter when asked.
struct EchoChannel {
    node: &'static str,
    log: Log,
    ticks: u64,
}

impl Channel for EchoChannel {
    async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
        record(&self.log, format!("{} subscribed", self.node));
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

    async fn unsubscribed(&mut self, _: &Subscription) -> ChannelResult {
        record(&self.log, format!("{} unsubscribed", self.node));
        Ok(())
    }

    async fn perform(
        &mut self,
        sub: &Subscription,
        action: &str,
        _: Map<String, Value>,
    ) -> ChannelResult {
        if action == "tick" {
            self.ticks += 1;
            let ids = sub.identifiers();
            sub.transmit(&json!({
                "tick": self.ticks,
                "node": self.node,
                "user": ids.get("user"),
                "connected_on": ids.get("node"),
            }))?;
        }
        Ok(())
    }
}

/// A channel only node A serves.
#[derive(Default)]
struct OnlyOnA;

impl Channel for OnlyOnA {
    async fn subscribed(&mut self, _: &Subscription) -> ChannelResult {
        Ok(())
    }
}

struct Node {
    server: TestServer,
    cable: Cable,
}

/// A cable server on its own broker and `RedisBackend`: `?user=NAME`
/// connects as NAME, no user is rejected; sessions are kept for `ttl`.
async fn node(redis: &RedisServer, name: &'static str, log: &Log, ttl: Duration) -> Node {
    let config = RedisConfig::new(redis.url())
        .prefix(PREFIX)
        .probe(Duration::from_millis(500))
        .timeout(Duration::from_secs(1));
    let backend = RedisBackend::connect(config).await.expect("connect");
    let broker = Broker::builder().backend(Arc::new(backend)).build();
    let (connect_log, disconnect_log, channel_log) = (log.clone(), log.clone(), log.clone());
    let mut builder = Cable::builder()
        .broker(broker)
        .session_ttl(ttl)
        .ping_interval(Duration::from_millis(100))
        .connect(move |req| {
            let user = req.query("user").map(str::to_owned);
            let log = connect_log.clone();
            async move {
                let user = user.ok_or(Rejection::Unauthorized)?;
                record(&log, format!("{name} connect {user}"));
                Ok(Identifiers::new().with("user", user).with("node", name))
            }
        })
        .disconnect(move |ids| {
            let log = disconnect_log.clone();
            async move {
                let user = ids.get("user").unwrap_or("?");
                record(&log, format!("{name} disconnect {user}"));
            }
        })
        .channel("EchoChannel", move || EchoChannel {
            node: name,
            log: channel_log.clone(),
            ticks: 0,
        });
    if name == "A" {
        builder = builder.channel("OnlyOnA", OnlyOnA::default);
    }
    let cable = builder.build();
    let c = cable.clone();
    let router = Router::new().get("/cable", move |ctx: Context| {
        let cable = c.clone();
        async move { cable.accept(ctx) }
    });
    let server = start_with(router, |server| {
        server.shutdown_deadline(Duration::from_millis(300))
    })
    .await;
    Node { server, cable }
}

/// An extended-protocol client that sees every message but pings.
struct Client {
    ws: WsClient<TcpStream>,
}

impl Client {
    async fn connect(node: &Node, query: &str) -> Client {
        let path = format!("/cable{query}");
        let (ws, _) = WsClient::connect(
            node.server.addr,
            &path,
            &[("Sec-WebSocket-Protocol", EXT_PROTOCOL)],
        )
        .await
        .expect("101");
        Client { ws }
    }

    async fn send(&mut self, message: Value) {
        self.ws.send_text(&message.to_string()).await;
    }

    /// The next message that is not a ping; `None` once the socket closes.
    async fn next(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("a message in time")?;
            match frame.opcode {
                TEXT => {
                    let value: Value = serde_json::from_str(frame.text()).expect("JSON");
                    if value["type"] != "ping" {
                        return Some(value);
                    }
                }
                PING | PONG => {}
                CLOSE => return None,
                other => panic!("opcode {other}"),
            }
        }
    }

    /// The next message for subscription `params` (others are skipped).
    async fn next_for(&mut self, params: &Value) -> Value {
        let identifier = params.to_string();
        loop {
            let message = self.next().await.expect("a message");
            if message["identifier"] == identifier.as_str() {
                return message;
            }
        }
    }

    /// Subscribes to `params` and waits for the confirmation.
    async fn subscribe(&mut self, params: &Value) {
        self.send(json!({"command": "subscribe", "identifier": params.to_string()}))
            .await;
        loop {
            let message = self.next_for(params).await;
            if message["type"] == "confirm_subscription" {
                return;
            }
        }
    }
}

/// Stream `s` and the client's position on it after the messages seen.
async fn stream_message(c: &mut Client, params: &Value) -> (u64, String, u64) {
    let m = c.next_for(params).await;
    assert_eq!(m["stream_id"], "s", "{m}");
    (
        m["message"].as_u64().expect("a number"),
        m["epoch"].as_str().expect("an epoch").to_owned(),
        m["offset"].as_u64().expect("an offset"),
    )
}

/// A welcomed extended-protocol client of `user` on `node`, and its sid.
async fn welcomed(node: &Node, user: &str) -> (Client, String) {
    let mut c = Client::connect(node, &format!("?user={user}")).await;
    let welcome = c.next().await.expect("a welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let sid = welcome["sid"].as_str().expect("a sid").to_owned();
    (c, sid)
}

fn stash_key(sid: &str) -> String {
    format!("{PREFIX}stash:cable-session:{sid}")
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// A session parked on A is restored on B: no `connect`, no `subscribed`,
/// the identifiers and the subscriptions A's channels B serves; what was
/// published meanwhile arrives once, in order, then live; timers tick on
/// B with the channel's fields fresh. A's expiry then runs no callbacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_parked_on_one_process_is_restored_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let log: Log = Arc::default();
    let a = node(&redis, "A", &log, Duration::from_secs(2)).await;
    let b = node(&redis, "B", &log, Duration::from_secs(2)).await;
    let (mut c, sid) = welcomed(&a, "ada").await;
    let echo = json!({"channel": "EchoChannel", "streams": ["s"]});
    let ticker = json!({"channel": "EchoChannel", "tick_ms": 150});
    let only_a = json!({"channel": "OnlyOnA"});
    for params in [&echo, &ticker, &only_a] {
        c.subscribe(params).await;
    }
    for i in 0..3u64 {
        a.cable.publish("s", &i).await.unwrap();
    }
    let mut last = None;
    for i in 0..3u64 {
        let (n, epoch, offset) = stream_message(&mut c, &echo).await;
        assert_eq!(n, i);
        last = Some((epoch, offset));
    }
    let (epoch, offset) = last.unwrap();

    c.ws.vanish();
    a.server
        .eventually("the session parked on A", || {
            a.cable.parked_session_count() == 1
        })
        .await;
    assert_eq!(
        redis.command(&["EXISTS", &stash_key(&sid)]).as_deref(),
        Some(":1"),
        "stashed before it counts as parked"
    );
    for i in 3..6u64 {
        a.cable.publish("s", &i).await.unwrap();
    }
    let before = entries(&log).len();

    // No user in the query: only the session id lets it in.
    let mut back = Client::connect(&b, &format!("?sid={sid}")).await;
    let welcome = back.next().await.expect("a welcome");
    assert_eq!(welcome["restored"], true, "{welcome}");
    assert_eq!(
        welcome["restored_ids"],
        json!([echo.to_string(), ticker.to_string()]),
        "OnlyOnA is not served on B: dropped"
    );
    assert_ne!(welcome["sid"], sid);
    assert_eq!(
        redis.command(&["EXISTS", &stash_key(&sid)]).as_deref(),
        Some(":0"),
        "taken"
    );
    // Published on B while it waits for the client's history request.
    b.cable.publish("s", &6u64).await.unwrap();
    back.send(json!({
        "command": "history",
        "identifier": echo.to_string(),
        "history": {"since": 0, "streams": {"s": {"epoch": epoch, "offset": offset}}},
    }))
    .await;
    for i in 3..7u64 {
        assert_eq!(stream_message(&mut back, &echo).await.0, i);
    }
    assert_eq!(
        back.next_for(&echo).await,
        json!({"identifier": echo.to_string(), "type": "confirm_history"})
    );
    a.cable.publish("s", &7u64).await.unwrap();
    assert_eq!(stream_message(&mut back, &echo).await.0, 7);

    // The timer runs on B, with the channel's counter fresh there and the
    // identifiers A's `connect` gave.
    let tick = back.next_for(&ticker).await;
    assert_eq!(
        tick["message"],
        json!({"tick": 1, "node": "B", "user": "ada", "connected_on": "A"}),
        "{tick}"
    );
    let after = entries(&log);
    assert!(
        after[before..].is_empty(),
        "no connect, no subscribed: {after:?}"
    );

    // A's copy expires: B continues the session, so A runs no callbacks.
    a.server
        .eventually("A's parked session gone", || {
            a.cable.parked_session_count() == 0
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = entries(&log);
    assert!(
        after[before..].is_empty(),
        "no unsubscribed, no disconnect: {after:?}"
    );
    assert_eq!(b.cable.connection_count(), 1);
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// A session nobody restores ends on its own process as before —
/// `unsubscribed`, then `disconnect` — and its record with it: another
/// process then gives that sid a fresh session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_nobody_restores_ends_on_its_owner() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let log: Log = Arc::default();
    let a = node(&redis, "A", &log, Duration::from_millis(500)).await;
    let b = node(&redis, "B", &log, Duration::from_secs(5)).await;
    let (mut c, sid) = welcomed(&a, "bea").await;
    c.subscribe(&json!({"channel": "EchoChannel", "streams": ["s"]}))
        .await;
    c.ws.vanish();
    a.server
        .eventually("the session parked on A", || {
            a.cable.parked_session_count() == 1
        })
        .await;
    a.server
        .eventually("its callbacks on A", || {
            entries(&log).contains(&"A disconnect bea".to_owned())
        })
        .await;
    let log_a: Vec<String> = entries(&log);
    assert_eq!(
        log_a,
        [
            "A connect bea",
            "A subscribed",
            "A unsubscribed",
            "A disconnect bea"
        ]
    );
    assert_eq!(
        redis.command(&["EXISTS", &stash_key(&sid)]).as_deref(),
        Some(":0")
    );
    let mut late = Client::connect(&b, &format!("?sid={sid}&user=bea")).await;
    let welcome = late.next().await.expect("a welcome");
    assert_eq!(welcome.get("restored"), None, "{welcome}");
    assert_eq!(
        entries(&log).last().map(String::as_str),
        Some("B connect bea")
    );
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// A restore on the owner takes the record: the same sid then restores
/// nothing on another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_restore_takes_the_record() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let log: Log = Arc::default();
    let a = node(&redis, "A", &log, Duration::from_secs(5)).await;
    let b = node(&redis, "B", &log, Duration::from_secs(5)).await;
    let (mut c, sid) = welcomed(&a, "cy").await;
    let echo = json!({"channel": "EchoChannel", "streams": ["s"]});
    c.subscribe(&echo).await;
    c.ws.vanish();
    a.server
        .eventually("the session parked on A", || {
            a.cable.parked_session_count() == 1
        })
        .await;
    let mut here = Client::connect(&a, &format!("?sid={sid}")).await;
    let welcome = here.next().await.expect("a welcome");
    assert_eq!(
        welcome["restored_ids"],
        json!([echo.to_string()]),
        "{welcome}"
    );
    assert_eq!(
        redis.command(&["EXISTS", &stash_key(&sid)]).as_deref(),
        Some(":0")
    );
    let mut there = Client::connect(&b, &format!("?sid={sid}")).await;
    assert_eq!(
        there.next().await,
        Some(json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false})),
        "not restored on B: connect ran, without a user"
    );
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// A record that is not JSON, or not a session's, gives a fresh welcome
/// (and is gone); a record of a session never parked anywhere does not
/// exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_give_a_fresh_welcome() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let log: Log = Arc::default();
    let b = node(&redis, "B", &log, Duration::from_secs(5)).await;
    let bad = [
        "not json",
        r#"{"v":1}"#,
        r#"{"v":7,"identifiers":[],"parked_at_ms":0,"subs":[]}"#,
    ];
    for (i, record) in bad.iter().enumerate() {
        let sid = format!("{i:032x}");
        let key = stash_key(&sid);
        assert_eq!(
            redis
                .command(&["SET", &key, record, "PX", "10000"])
                .as_deref(),
            Some("+OK")
        );
        let mut c = Client::connect(&b, &format!("?sid={sid}&user=dee")).await;
        let welcome = c.next().await.expect("a welcome");
        assert_eq!(welcome["type"], "welcome", "{record}: {welcome}");
        assert_eq!(welcome.get("restored"), None, "{record}: {welcome}");
        assert_eq!(redis.command(&["EXISTS", &key]).as_deref(), Some(":0"));
    }
    assert_eq!(entries(&log).len(), bad.len(), "connect ran each time");
    b.server.shutdown().await.unwrap();
}

/// When Redis cannot be reached as the session expires, its owner ends it
/// as before: no one else can have taken it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expiring_while_redis_is_down_ends_on_its_owner() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let log: Log = Arc::default();
    let a = node(&redis, "A", &log, Duration::from_secs(1)).await;
    let (mut c, _sid) = welcomed(&a, "eve").await;
    c.subscribe(&json!({"channel": "EchoChannel"})).await;
    c.ws.vanish();
    a.server
        .eventually("the session parked on A", || {
            a.cable.parked_session_count() == 1
        })
        .await;
    redis.kill();
    a.server
        .eventually("its callbacks on A", || {
            entries(&log).contains(&"A disconnect eve".to_owned())
        })
        .await;
    assert_eq!(
        entries(&log),
        [
            "A connect eve",
            "A subscribed",
            "A unsubscribed",
            "A disconnect eve"
        ]
    );
    a.server.shutdown().await.unwrap();
}

/// A remote disconnect asked of A reaches B's connections and B's parked
/// sessions of that user, through Redis; the others stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_disconnect_reaches_every_process() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let log: Log = Arc::default();
    let a = node(&redis, "A", &log, Duration::from_secs(5)).await;
    let b = node(&redis, "B", &log, Duration::from_secs(5)).await;
    let (mut ivy, _) = welcomed(&b, "ivy").await;
    let (mut jo, _) = welcomed(&b, "jo").await;
    let (mut away, away_sid) = welcomed(&b, "ivy").await;
    away.subscribe(&json!({"channel": "EchoChannel"})).await;
    away.ws.vanish();
    b.server
        .eventually("the session parked on B", || {
            b.cable.parked_session_count() == 1
        })
        .await;
    // B listens for remote disconnects from its first connection on; wait
    // for Redis to have its subscription (a disconnect published before
    // it would be news to no one on B).
    let control = format!("{PREFIX}{{cable:remote-disconnect}}:msgs");
    b.server
        .eventually("B subscribed to remote disconnects", || {
            redis.command(&["PUBSUB", "CHANNELS", &control]).as_deref() == Some("*1")
        })
        .await;

    assert_eq!(a.cable.disconnect(&[("user", "ivy")], true), 0, "none on A");
    assert_eq!(
        ivy.next().await,
        Some(json!({"type": "disconnect", "reason": "remote", "reconnect": true}))
    );
    assert_eq!(ivy.next().await, None, "then the close");
    // The close answered: the session ends (and runs `disconnect`) now,
    // not when the server stops waiting for the answer.
    ivy.ws.send_close(1000).await;
    b.server
        .eventually("ivy's parked session ended on B", || {
            b.cable.parked_session_count() == 0
                && entries(&log)
                    .iter()
                    .filter(|e| *e == "B disconnect ivy")
                    .count()
                    == 2
        })
        .await;
    assert_eq!(
        redis.command(&["EXISTS", &stash_key(&away_sid)]).as_deref(),
        Some(":0")
    );
    // jo, on B too, is still connected.
    jo.subscribe(&json!({"channel": "EchoChannel"})).await;
    b.server
        .eventually("jo alone on B", || b.cable.connection_count() == 1)
        .await;
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}
