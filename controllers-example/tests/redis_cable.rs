//! ActionCable across processes on Redis, with the official clients
//! unmodified: one real `redis-server` and three example processes
//! started with `--redis` and one `--cable-secret` (common/nodes.rs), all
//! on 127.0.0.1, driven by `tests/js/cable-nodes.mjs`. Clients connect to
//! node B with tokens signed by node A; every broadcast is
//! `POST /cable/broadcast` on A.
//!
//! * `@rails/actioncable` on B, in a ChatChannel room: 450 broadcasts on A
//!   (a pipelined burst, 50 one request at a time, another burst) arrive
//!   once each, in the order they were posted.
//! * `@anycable/web` over `actioncable-v1-ext-json` on B: messages from A
//!   arrive with stream positions; its socket is cut and held away while
//!   20 more are broadcast; it comes back on node C, which restores the
//!   session B parked in Redis: a restored welcome naming its
//!   subscription, no resubscribe (so no `subscribed` on C), and history
//!   from its stream position — C reads the missed ones from Redis. Cut
//!   again, back on C, which now holds the session itself: restored again,
//!   history from Redis. Every message once, in order.
//! * A remote disconnect asked of A (`POST /cable/disconnect`) reaches
//!   that user's Rails client on B; another user's on C stays connected.
//!
//! Needs node and `tests/js/node_modules` (fails without them) and
//! `redis-server` (without it the test says so and passes, except with
//! `CI=true`, where it fails): `bash scripts/setup-test-deps.sh`.

mod common;

use common::{
    nodes::{Node, Redis},
    require_cable_clients, run_node,
};
use serde_json::{json, Value};
use std::time::Duration;

/// `published` messages, each once, in order.
fn assert_exactly_once_in_order(delivery: &Value, published: u64, what: &str) {
    assert_eq!(delivery["published"], published, "{what}: {delivery}");
    assert_eq!(delivery["received"], published, "{what}: {delivery}");
    assert_eq!(delivery["missing"], 0, "{what}: {delivery}");
    assert_eq!(delivery["duplicates"], 0, "{what}: {delivery}");
    assert_eq!(
        delivery["firstOutOfOrder"],
        Value::Null,
        "{what}: {delivery}"
    );
    assert_eq!(delivery["exactlyOnceInOrder"], true, "{what}: {delivery}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actioncable_spans_processes_on_redis_with_the_official_clients() {
    require_cable_clients();
    let Some(redis) = Redis::start() else { return };
    let (a, b, c) = (
        Node::start(&redis),
        Node::start(&redis),
        Node::start(&redis),
    );
    let (on_b, on_a, on_c) = (
        format!("ws://{}", b.addr),
        format!("ws://{}", a.addr),
        format!("ws://{}", c.addr),
    );
    let out = run_node(
        "cable-nodes.mjs",
        &[&on_b, &on_a, &on_c],
        Duration::from_secs(60),
    )
    .await;
    let r: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("cable-nodes.mjs printed {out:?}: {e}"));
    eprintln!("cable-nodes.mjs: {r}");

    // a. The Rails client on B, broadcasts on A.
    let rails = &r["rails"];
    assert_eq!(rails["error"], Value::Null, "{r}");
    assert_eq!(rails["log"], json!(["connected"]), "{rails}");
    assert_eq!(rails["sockets"], 1, "never reconnected: {rails}");
    assert_eq!(rails["socketHosts"], json!(["B"]), "{rails}");
    assert_eq!(rails["confirmations"], 1, "{rails}");
    assert_eq!(rails["disconnectFrames"], json!([]), "{rails}");
    assert_eq!(rails["pipelinedOk"], 400, "{rails}");
    // Every message once, across the three phases.
    assert_eq!(rails["published"], 450, "{rails}");
    assert_eq!(rails["received"], 450, "{rails}");
    assert_eq!(rails["missing"], 0, "{rails}");
    assert_eq!(rails["duplicates"], 0, "{rails}");
    assert_exactly_once_in_order(&rails["oneByOne"], 50, "one request at a time");
    for burst in ["firstBurst", "secondBurst"] {
        let facts = &rails[burst];
        assert_eq!(facts["received"], 200, "{burst}: {facts}");
        assert_eq!(facts["missing"], 0, "{burst}: {facts}");
        assert_eq!(facts["duplicates"], 0, "{burst}: {facts}");
    }
    // In the order they were posted: `POST /cable/broadcast` publishes
    // detached, and the Redis backend queues each publication when it is
    // made — the first burst also right after a fresh Redis, whose script
    // cache is empty (NOSCRIPT, loaded once, resent in order).
    assert_exactly_once_in_order(&rails["firstBurst"], 200, "the first burst");
    assert_exactly_once_in_order(&rails["secondBurst"], 200, "the second burst");

    // b. `@anycable/web`, extended protocol: B, then C restoring B's
    // session from Redis, then C with its own.
    let any = &r["anycable"];
    assert_eq!(any["error"], Value::Null, "{r}");
    assert_eq!(any["first"], json!({"node": "ok"}), "{any}");
    // Live on B: broadcasts on A right after the confirmation, on a
    // stream that does not exist yet, the subscribe carrying AnyCable's
    // `history: {since: <now>, streams: {}}`.
    let on_b = &any["liveOnB"];
    assert_eq!(on_b["duplicates"], 0, "{on_b}");
    assert_eq!(on_b["ascending"], true, "{on_b}");
    // None missing either — also the first, which opens the stream's
    // epoch while B's subscription is still being set up: B's reads wait
    // for its SUBSCRIBE, and a read that could not wait (a slow Redis) is
    // repaired from the history once the SUBSCRIBE is confirmed.
    assert_exactly_once_in_order(on_b, 20, "live on B");
    assert_eq!(
        any["positions"],
        json!({"streams": ["this stream"], "epochs": 1, "offsetsRise": true}),
        "{any}"
    );

    // On C, which never held the session: B parked it in Redis, C takes it
    // and restores it — the same identifiers (the token signed on A is
    // not checked again) and the subscription, which the client does not
    // resubscribe: it asks for history from its position on the stream,
    // and C answers from Redis.
    let to_c = &any["toC"];
    assert_eq!(to_c["node"], "ok", "{to_c}");
    assert_eq!(
        to_c["welcome"],
        json!({"sid": true, "restored": true, "restoredThisChannel": true}),
        "{to_c}"
    );
    assert_eq!(to_c["commands"], json!(["history"]), "{to_c}");
    assert_eq!(to_c["historyStreams"], json!([["this stream"]]), "{to_c}");
    assert_eq!(to_c["confirmSubscription"], 0, "{to_c}");
    assert_eq!(to_c["confirmHistory"], 1, "{to_c}");
    assert_eq!(to_c["rejectHistory"], 0, "{to_c}");
    assert_eq!(to_c["disconnectFrames"], json!([]), "{to_c}");
    let replayed = to_c["replayed"].as_u64().expect("a confirm_history");
    assert!(
        (1..=20).contains(&replayed),
        "the missed messages come from the history: {to_c}"
    );
    assert_eq!(
        to_c["cable"],
        json!([
            "disconnect(transport_closed)",
            "connect(reconnect=true,restored=true)"
        ]),
        "{to_c}"
    );
    assert_exactly_once_in_order(&to_c["delivery"], 30, "restored on C from B");

    // On C again, which now holds the session: restored, history asked
    // for with the stream position, answered from Redis.
    let same = &any["sameNode"];
    assert_eq!(same["node"], "ok", "{same}");
    assert_eq!(
        same["welcome"],
        json!({"sid": true, "restored": true, "restoredThisChannel": true}),
        "{same}"
    );
    assert_eq!(same["commands"], json!(["history"]), "{same}");
    assert_eq!(same["historyStreams"], json!([["this stream"]]), "{same}");
    assert_eq!(same["confirmSubscription"], 0, "{same}");
    assert_eq!(same["confirmHistory"], 1, "{same}");
    assert_eq!(same["rejectHistory"], 0, "{same}");
    assert_eq!(same["disconnectFrames"], json!([]), "{same}");
    assert_exactly_once_in_order(&same["delivery"], 30, "restored on C");
    let replayed = same["replayed"].as_u64().expect("a confirm_history");
    assert!(
        (1..=20).contains(&replayed),
        "the missed messages come from the history: {same}"
    );
    assert_eq!(
        same["cable"],
        json!([
            "disconnect(transport_closed)",
            "connect(reconnect=true,restored=true)"
        ]),
        "{same}"
    );

    assert_eq!(
        any["channel"],
        json!([
            "connect(reconnect=false,restored=false)",
            "connect(reconnect=true,restored=true)",
            "connect(reconnect=true,restored=true)",
        ]),
        "{any}"
    );
    assert_eq!(any["sockets"], 3, "{any}");
    assert_exactly_once_in_order(&any["delivery"], 60, "from B to C, then on C");

    let frames = &r["frames"];
    assert_eq!(frames["notObjects"], json!([]), "{frames}");
    assert_eq!(frames["pingsBad"], json!([]), "{frames}");
    assert_eq!(frames["disconnectsBad"], json!([]), "{frames}");
    // The one disconnect frame of the run: c.'s.
    assert_eq!(frames["disconnects"], 1, "{frames}");

    // c. A remote disconnect asked of A: none there, rory's on B reached
    // through Redis, sam's on C untouched.
    let remote = &r["remote"];
    assert_eq!(remote["error"], Value::Null, "{r}");
    assert_eq!(remote["answerOnA"], json!({"disconnected": 0}), "{remote}");
    assert_eq!(
        remote["rory"],
        json!(["connected", "disconnected(false)"]),
        "{remote}"
    );
    assert_eq!(
        remote["disconnectFrames"],
        json!([{"type": "disconnect", "reason": "remote", "reconnect": false}]),
        "{remote}"
    );
    assert_eq!(remote["sam"], json!(["connected"]), "{remote}");
    assert_eq!(remote["samOpen"], true, "{remote}");
}
