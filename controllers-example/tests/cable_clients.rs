//! The example's ActionCable endpoint (`/cable`, issue 11) driven by the
//! official JavaScript clients, unmodified: `@rails/actioncable` in Node
//! (npm `ws` as its WebSocket) and in headless Chromium (the ESM build the
//! app serves at `/actioncable.esm.js`), and `@anycable/web` in Node over
//! `actioncable-v1-json` and `actioncable-v1-ext-json` — the latter through
//! 50 transport cuts while messages are published, each delivered exactly
//! once and in order. Raw npm `ws` sends what no client would (malformed
//! commands, other subprotocols). A graceful shutdown tells both clients
//! `server_restart` with `reconnect: true`. The scenarios are
//! `tests/js/cable-*.mjs`; each prints one JSON line asserted here.
//!
//! Needs node, `tests/js/node_modules` and `/usr/bin/chromium`: run
//! `bash scripts/setup-test-deps.sh` (`scripts/test.sh` does).

mod common;

use common::*;
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};

/// Runs a cable script and parses its JSON line.
async fn run_cable_script(script: &str, args: &[&str], limit: Duration) -> Value {
    require_cable_clients();
    let out = run_node(script, args, limit).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{script} printed {out:?}: {e}"))
}

fn left(user: &str) -> Value {
    json!({"user": user, "performed": "left"})
}

/// Every frame of a run: JSON objects, pings with increasing integer
/// seconds, `disconnect`s with a boolean `reconnect`.
fn assert_frame_facts(frames: &Value, disconnects: u64) {
    assert_eq!(frames["notObjects"], json!([]), "{frames}");
    assert_eq!(frames["pingsBad"], json!([]), "{frames}");
    assert_eq!(frames["disconnectsBad"], json!([]), "{frames}");
    assert_eq!(frames["disconnects"], disconnects, "{frames}");
}

/// The Rails client in Node: welcome, unauthorized, reject and confirm,
/// transmissions before the confirmation, perform with and without data,
/// per-subscription state, broadcasts as given, two clients and an
/// unsubscribe, two streams and `stop_stream_from`, `unsubscribed` for
/// every subscription on close, remote disconnects, 10,000 broadcasts in
/// order, malformed input, subprotocol choice, pings.
#[tokio::test]
async fn the_rails_client_runs_the_actioncable_scenarios_in_node() {
    let addr = serve(controllers_example::app()).await;
    let r = run_cable_script(
        "cable-rails.mjs",
        &[&format!("ws://{addr}")],
        Duration::from_secs(90),
    )
    .await;
    eprintln!("cable-rails.mjs: {r}");

    assert_eq!(r["welcome"]["protocol"], "actioncable-v1-json", "{r}");
    assert_eq!(r["welcome"]["first"]["type"], "welcome", "{r}");

    let unauthorized = json!({
        "frames": [{"type": "disconnect", "reason": "unauthorized", "reconnect": false}],
        "log": ["disconnected(false)"],
        "monitorRunning": false,
    });
    assert_eq!(
        r["unauthorized"],
        json!({"missing": unauthorized, "forged": unauthorized}),
        "{r}"
    );

    let secret = r#"{"channel":"ChatChannel","room":"secret"}"#;
    assert_eq!(
        r["rejection"],
        json!({
            "nonAdmin": ["rejected"],
            "admin": ["connected"],
            "rejectFrames": [{"identifier": secret, "type": "reject_subscription"}],
            "rejectedIdentifier": secret,
        }),
        "{r}"
    );

    let before_confirm = json!([r#"received:"hello""#, r#"received:"world""#, "connected"]);
    assert_eq!(
        r["echo"],
        json!({
            "order": before_confirm,
            "echoed": {"text": "hi ☃", "n": 1, "nested": {"a": [1, 2]}, "action": "echo"},
            "first": [1, 2, 3],
            "second": [1],
            "secondOrder": before_confirm,
            "extra": 0,
        }),
        "{r}"
    );

    assert_eq!(
        r["broadcasts"],
        json!({
            "before": ["hello", "world"],
            "received": [{"k": "v", "n": [1, 2], "u": "héllo ☃"}, "plain text héllo ☃", "{\"a\":1}"],
        }),
        "{r}"
    );

    let hi = json!({"message": "hi from alice", "current_user_id": "alice"});
    let away = json!({"user": "bob", "performed": "away"});
    let status = json!({"user": "bob", "performed": "status", "status": "busy"});
    let after = json!({"message": "after", "current_user_id": "alice"});
    assert_eq!(
        r["chat"],
        json!({
            "alice": [hi, away, status, left("bob"), after],
            "bob": [hi, away, status],
            "bobFramesAfterUnsubscribe": [],
        }),
        "{r}"
    );

    assert_eq!(
        r["streams"]["received"],
        json!([
            {"s": "a", "n": 1},
            {"s": "b", "n": 1},
            {"marker": "stopped", "action": "echo"},
            {"s": "b", "n": 2},
            {"s": "b", "end": true},
        ]),
        "{r}"
    );

    assert_eq!(
        r["closeUnsubscribes"],
        json!({
            "room1": [left("carol")],
            "room2": [left("carol")],
            "carol": [["connected", "disconnected(false)"], ["connected", "disconnected(false)"]],
        }),
        "{r}"
    );

    assert_eq!(
        r["remote"],
        json!({
            "erin": {
                "disconnects": [{"type": "disconnect", "reason": "remote", "reconnect": false}],
                "log": ["connected", "disconnected(false)"],
                "monitorRunning": false,
            },
            "frank": {
                "disconnects": [{"type": "disconnect", "reason": "remote", "reconnect": true}],
                "log": ["connected", "disconnected(true)"],
                "monitorRunning": true,
            },
            "aliceOpen": true,
        }),
        "{r}"
    );

    assert_eq!(
        r["ordering"],
        json!({"published": 10000, "count": 10000, "inOrder": true, "firstOutOfOrder": null}),
        "{r}"
    );

    let id = r["malformed"]["identifier"].clone();
    assert_eq!(
        r["malformed"]["frames"],
        json!([
            {"identifier": id, "message": "hello"},
            {"identifier": id, "message": "world"},
            {"identifier": id, "type": "confirm_subscription"},
            {"identifier": id, "message": {"action": "echo", "x": 1}},
        ]),
        "malformed commands get no answer and leave the connection open: {r}"
    );
    assert_eq!(r["malformed"]["welcome"]["type"], "welcome", "{r}");
    assert_eq!(r["malformed"]["open"], true, "{r}");
    assert_eq!(r["malformed"]["closeCode"], 1000, "{r}");

    let subprotocols = r["subprotocols"].as_array().expect("subprotocols ran");
    let chosen: Vec<&Value> = subprotocols.iter().map(|s| &s["chosen"]).collect();
    assert_eq!(
        chosen,
        [
            "actioncable-v1-json",
            "actioncable-v1-json",
            "actioncable-v1-ext-json",
            "actioncable-v1-ext-json"
        ],
        "{r}"
    );
    for s in subprotocols {
        assert_eq!(s["welcomeType"], "welcome", "{s}");
        if s["chosen"] == "actioncable-v1-ext-json" {
            assert_eq!(s["hasSid"], true, "the extended welcome carries a sid: {s}");
        }
    }

    // Two unauthorized, two remote: nothing else was told to go.
    assert_frame_facts(&r["frames"], 4);
    assert!(r["frames"]["alicePings"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(
        r["frames"]["aliceSockets"], 1,
        "alice never reconnected: {r}"
    );
    assert_eq!(r["frames"]["aliceOpen"], true, "{r}");
}

/// What `@anycable/web` must see on either protocol: the welcome,
/// transmissions before the confirmation, perform, broadcasts as given,
/// reject and confirm.
fn assert_anycable_basics(r: &Value, protocol: &str) {
    assert_eq!(r["protocol"], protocol);
    assert_eq!(r["connect"]["state"], "connected", "{r}");
    assert_eq!(r["connect"]["chosen"], protocol, "{r}");
    assert_eq!(r["connect"]["welcomeType"], "welcome", "{r}");
    assert_eq!(r["connect"]["restored"], Value::Null, "{r}");
    assert_eq!(
        r["connect"]["events"],
        json!([{"ev": "connect", "reconnect": false, "restored": false}]),
        "{r}"
    );
    assert_eq!(
        r["echo"],
        json!({
            "order": [r#"message:"hello""#, r#"message:"world""#, "connect(reconnect=false,restored=false)"],
            "echoed": {"text": "hi ☃", "n": 1, "action": "echo"},
            "ticks": [1, 2],
            "count": 5,
        }),
        "{r}"
    );
    assert_eq!(
        r["broadcasts"]["received"],
        json!([{"k": "v", "n": [1, 2], "u": "héllo ☃"}, "plain text héllo ☃", "{\"a\":1}"]),
        "{r}"
    );
    assert_eq!(
        r["rejection"],
        json!({"nonAdmin": "SubscriptionRejectedError", "nonAdminState": "closed", "admin": "connected"}),
        "{r}"
    );
}

/// `@anycable/web` over `actioncable-v1-json`; a cut transport
/// reconnects and resubscribes (no sessions in this protocol).
#[tokio::test]
async fn the_anycable_client_runs_the_plain_protocol_in_node() {
    let addr = serve(controllers_example::app()).await;
    let r = run_cable_script(
        "cable-anycable.mjs",
        &[&format!("ws://{addr}"), "actioncable-v1-json"],
        Duration::from_secs(60),
    )
    .await;
    eprintln!("cable-anycable.mjs (plain): {r}");
    assert_anycable_basics(&r, "actioncable-v1-json");
    assert_eq!(
        r["cut"],
        json!({
            "channel": [
                "connect(reconnect=false,restored=false)",
                "disconnect(transport_closed)",
                "connect(reconnect=true,restored=false)",
                "message:{\"after\":\"cut\"}",
            ],
            "cable": [
                {"ev": "disconnect", "reason": "transport_closed"},
                {"ev": "connect", "reconnect": true, "restored": false},
            ],
        }),
        "{r}"
    );
    assert_frame_facts(&r["frames"], 0);
}

/// `@anycable/web` over `actioncable-v1-ext-json`: the welcome has a sid,
/// broadcasts carry stream positions; 50 cuts without a close frame while
/// messages are published, each cut restored (no resubscribe) and every
/// message delivered exactly once, in order.
#[tokio::test]
async fn the_anycable_client_restores_sessions_through_fifty_cuts() {
    let addr = serve(controllers_example::app()).await;
    let r = run_cable_script(
        "cable-anycable.mjs",
        &[&format!("ws://{addr}"), "actioncable-v1-ext-json"],
        Duration::from_secs(60),
    )
    .await;
    eprintln!("cable-anycable.mjs (ext): {r}");
    assert_anycable_basics(&r, "actioncable-v1-ext-json");
    assert_eq!(r["connect"]["sid"], "present", "{r}");
    assert_eq!(
        r["broadcasts"]["metaStreams"],
        json!(["this stream"]),
        "{r}"
    );
    assert_eq!(r["broadcasts"]["epochs"], json!(["string"]), "{r}");
    assert_eq!(r["broadcasts"]["offsetsIncrease"], true, "{r}");

    let rel = &r["reliability"];
    assert_eq!(rel["drops"], 50, "{r}");
    assert!(
        rel["published"].as_u64().expect("published") >= 200,
        "too few messages published across the cuts: {r}"
    );
    assert_eq!(rel["missing"], 0, "{r}");
    assert_eq!(rel["duplicates"], 0, "{r}");
    assert_eq!(rel["firstOutOfOrder"], Value::Null, "{r}");
    assert_eq!(rel["exactlyOnceInOrder"], true, "{r}");
    // One new socket per cut, each a restored session.
    assert_eq!(rel["sockets"], 50, "{r}");
    assert_eq!(rel["restoredWelcomes"], 50, "{r}");
    assert_eq!(rel["restoredWithThisChannel"], 50, "{r}");
    assert_eq!(rel["freshWelcomes"], 0, "{r}");
    assert_eq!(rel["restoredConnects"], 50, "{r}");
    assert_eq!(rel["otherConnects"], 0, "{r}");
    assert_eq!(rel["channelRestores"], 50, "{r}");
    assert!(rel["confirmHistory"].as_u64().unwrap() >= 50, "{r}");
    assert!(
        rel["replayed"].as_u64().unwrap() > 0,
        "no message was missed during a cut, so history was never needed: {r}"
    );
    assert_eq!(rel["rejectHistory"], 0, "{r}");
    assert_eq!(rel["disconnectFrames"], json!([]), "{r}");
    assert_frame_facts(&r["frames"], 0);
}

/// The Rails client as a browser runs it (the ESM build the app serves):
/// welcome, transmissions before the confirmation, perform, a broadcast,
/// a rejection, a ping.
#[tokio::test]
async fn the_rails_client_runs_in_chromium() {
    require_chromium();
    let addr = serve(controllers_example::app()).await;
    let r = run_cable_script(
        "cable-chromium.mjs",
        &[&format!("http://{addr}")],
        Duration::from_secs(90),
    )
    .await;
    eprintln!("cable-chromium.mjs: {r}");
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["step"], "done", "{r}");
    assert_eq!(r["pageStatus"], 200, "{r}");
    assert_eq!(r["url"], "ws://HOST/cable?token=…", "{r}");
    assert_eq!(r["welcome"]["type"], "welcome", "{r}");
    assert_eq!(r["protocol"], "actioncable-v1-json", "{r}");
    assert_eq!(r["order"], json!(["hello", "world", "connected"]), "{r}");
    assert_eq!(
        r["echo"],
        json!([{"text": "from chromium ☃", "action": "echo"}, 1, 2]),
        "{r}"
    );
    assert_eq!(
        r["broadcasts"],
        json!([{"from": "http", "n": 1}, "a string", "{\"a\":1}"]),
        "{r}"
    );
    assert_eq!(r["reject"], json!(["rejected"]), "{r}");
    assert_eq!(r["ping"], json!({"integer": true, "nearNow": true}), "{r}");
    assert_eq!(r["disconnected"], json!(["disconnected(false)"]), "{r}");
    assert_eq!(r["extraEcho"], 0, "{r}");
}

/// The example's chat page (`/cable-chat`) in two browser contexts: two
/// users join one room through the page's form, each sends a message, one
/// goes away; both pages show all three lines, in the same order.
#[tokio::test]
async fn the_cable_chat_page_keeps_two_browsers_in_one_room() {
    require_chromium();
    let addr = serve(controllers_example::app()).await;
    let r = run_cable_script(
        "cable-chat.mjs",
        &[&format!("http://{addr}"), "lobby"],
        Duration::from_secs(60),
    )
    .await;
    let lines = json!(["ana: hello from 0", "ben: hello from 1", "ben away"]);
    assert_eq!(r["ana"], lines, "{r}");
    assert_eq!(r["ben"], lines, "{r}");
}

/// A graceful shutdown sends `server_restart` with `reconnect: true` to
/// every cable client, which both official clients take as a disconnect
/// to recover from; the server then finishes within its deadline.
#[tokio::test]
async fn graceful_shutdown_tells_cable_clients_to_reconnect() {
    let ready = Arc::new(tokio::sync::Notify::new());
    let notify = ready.clone();
    let app = controllers_example::app().post("/test/ready", move |_ctx: rill::Context| {
        let notify = notify.clone();
        async move {
            notify.notify_one();
            rill::Response::text("ok")
        }
    });
    let server = rill::Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .shutdown_deadline(Duration::from_secs(5));
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_with_shutdown(app, async move {
        let _ = stopped.await;
    }));

    let url = format!("ws://{addr}");
    let args = [url.as_str()];
    let script = run_cable_script("cable-shutdown.mjs", &args, Duration::from_secs(60));
    let trigger = async {
        tokio::time::timeout(Duration::from_secs(30), ready.notified())
            .await
            .expect("cable-shutdown.mjs never posted /test/ready");
        stop.send(()).expect("the server is running");
    };
    let (r, ()) = tokio::join!(script, trigger);
    eprintln!("cable-shutdown.mjs: {r}");

    let restart = json!([{"type": "disconnect", "reason": "server_restart", "reconnect": true}]);
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["readyStatus"], 200, "{r}");
    assert_eq!(
        r["rails"],
        json!({"frames": restart, "log": ["connected", "disconnected(true)"]}),
        "{r}"
    );
    assert_eq!(
        r["anycable"],
        json!({"frames": restart, "events": ["disconnect(server_restart)"], "state": "disconnected"}),
        "{r}"
    );
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server did not finish shutting down within 10 s")
        .unwrap()
        .unwrap();
}
