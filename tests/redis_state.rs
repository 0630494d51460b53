//! The keyed state store on a real `redis-server` (started by each test on
//! a free loopback port, stopped by its PID): stores of several processes
//! (here: each with its own `RedisBackend`, as separate processes have)
//! share items, revisions and changes; concurrent updates from all of them
//! lose nothing; user JSON is stored byte for byte; watchers resume across
//! processes and get a reset when Redis lost its data.
//!
//! Needs `redis-server` (scripts/setup-test-deps.sh installs it); with
//! `CI=true` a missing one fails the tests.
#![cfg(feature = "redis")]

use rill::{
    broker::{Broker, RedisBackend, RedisConfig},
    state::{StateError, Store, UpdateOp, WatchEvent, Watcher},
};
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(10);

/// A store on its own connection to `redis` (a process of its own, as far
/// as Redis can tell).
async fn store(redis: &RedisServer) -> Store {
    let config = RedisConfig::new(redis.url())
        .prefix("t:")
        .probe(Duration::from_millis(500))
        .timeout(Duration::from_millis(500));
    let backend = RedisBackend::connect(config).await.expect("connect");
    let broker = Broker::builder().backend(Arc::new(backend)).build();
    Store::builder().broker(broker).build()
}

/// The next event, within [`WAIT`].
async fn next(watcher: &mut Watcher) -> WatchEvent {
    tokio::time::timeout(WAIT, watcher.next())
        .await
        .expect("an event in time")
        .expect("the watcher goes on")
}

/// Items written on A are read on B with the same revision; a watcher on
/// B gets the snapshot, then A's changes once, in order; the stream's
/// groups are listed everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_changes_are_shared_by_every_process() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (store(&redis).await, store(&redis).await);
    let first = a
        .set("todos", "ann", "t1", json!({"title": "milk"}))
        .await
        .unwrap();
    assert_eq!(first.rev.rev, 1);
    assert_eq!(
        b.get("todos", "ann", "t1").await.unwrap(),
        Some(json!({"title": "milk"}))
    );
    let snapshot = b.snapshot("todos", "ann", None).await.unwrap();
    assert_eq!(snapshot.rev, first.rev);

    let mut watcher = b.watch("todos", "ann", None, None).unwrap();
    let WatchEvent::Sync(sync) = next(&mut watcher).await else {
        panic!("a sync first")
    };
    assert_eq!(sync.items.len(), 1);
    let second = a.set("todos", "ann", "t2", json!("eggs")).await.unwrap();
    let done = [UpdateOp::Set {
        path: vec!["done".into()],
        value: json!(true),
    }];
    let third = a.update("todos", "ann", "t1", &done, None).await.unwrap();
    let deleted = a.delete("todos", "ann", "t2").await.unwrap();
    let mut last_ts = sync.timestamp;
    for (write, kind) in [
        (&second, "create"),
        (&third, "update"),
        (&deleted, "delete"),
    ] {
        let WatchEvent::Change(delta) = next(&mut watcher).await else {
            panic!("a change")
        };
        assert_eq!(delta.rev(), write.rev);
        assert_eq!(delta.value()["type"], kind);
        let ts = delta.value()["ts"].as_u64().unwrap();
        assert!(ts > last_ts, "timestamps increase: {ts} after {last_ts}");
        last_ts = ts;
    }
    assert_eq!(deleted.rev.rev, 4);

    b.set("todos", "bob", "t1", json!("tea")).await.unwrap();
    assert_eq!(a.list_groups("todos").await.unwrap(), ["ann", "bob"]);
    b.delete("todos", "bob", "t1").await.unwrap();
    assert_eq!(a.list_groups("todos").await.unwrap(), ["ann"]);
    assert_eq!(
        a.list("todos", "ann").await.unwrap(),
        [("t1".to_owned(), json!({"title": "milk", "done": true}))]
    );
}

/// Three processes increment one counter 60 times each, concurrently:
/// every increment counts, each revision is taken once, and a watcher sees
/// the values 1..=180 in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_from_many_processes_lose_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let stores = [
        store(&redis).await,
        store(&redis).await,
        store(&redis).await,
    ];
    stores[0]
        .set("votes", "poll", "yes", json!(0))
        .await
        .unwrap();
    let mut watcher = stores[1].watch("votes", "poll", Some("yes"), None).unwrap();
    let WatchEvent::Sync(sync) = next(&mut watcher).await else {
        panic!("a sync first")
    };
    assert_eq!(sync.items["yes"], json!(0));

    let bump = [UpdateOp::Increment {
        path: vec![],
        by: 1.into(),
    }];
    let mut tasks = Vec::new();
    for store in &stores {
        for _ in 0..3 {
            let (store, bump) = (store.clone(), bump.clone());
            tasks.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for _ in 0..20 {
                    let write = store.update("votes", "poll", "yes", &bump, None).await;
                    revs.push(write.expect("an increment").rev.rev);
                }
                revs
            }));
        }
    }
    let mut revs = Vec::new();
    for task in tasks {
        revs.extend(task.await.unwrap());
    }
    revs.sort_unstable();
    assert_eq!(revs, (2..=181).collect::<Vec<u64>>(), "each revision once");
    assert_eq!(
        stores[2].get("votes", "poll", "yes").await.unwrap(),
        Some(json!(180))
    );
    for expected in 1..=180 {
        let WatchEvent::Change(delta) = next(&mut watcher).await else {
            panic!("a change")
        };
        assert_eq!(delta.value()["data"], json!(expected));
    }
}

/// An update at a revision is refused when another process wrote since;
/// the group's revision is the same seen from every process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_at_a_stale_revision_is_refused_across_processes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (store(&redis).await, store(&redis).await);
    let rev = a.set("votes", "poll", "yes", json!(0)).await.unwrap().rev;
    let bump = [UpdateOp::Increment {
        path: vec![],
        by: 1.into(),
    }];
    b.update("votes", "poll", "yes", &bump, Some(&rev))
        .await
        .unwrap();
    let stale = a.update("votes", "poll", "yes", &bump, Some(&rev)).await;
    assert!(
        matches!(stale, Err(StateError::RevisionMismatch { .. })),
        "{stale:?}"
    );
    assert_eq!(a.get("votes", "poll", "yes").await.unwrap(), Some(json!(1)));
}

/// Values reach Redis as serde_json wrote them and come back equal — big
/// integers, floats, escapes and unicode included (Redis's cjson would
/// rewrite them; it never decodes them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_json_is_stored_byte_for_byte() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (store(&redis).await, store(&redis).await);
    let value: Value = serde_json::from_str(
        r#"{"big": 18446744073709551615, "neg": -9007199254740993, "float": 1.5e300,
            "text": "é \" \\ \u0000 😀", "empty": {}, "list": [1, [], null, true]}"#,
    )
    .unwrap();
    a.set("docs", "d", "x", value.clone()).await.unwrap();
    assert_eq!(b.get("docs", "d", "x").await.unwrap(), Some(value.clone()));
    let stored = redis
        .bulk(&["HGET", "t:{state:docs/d}:items", "x"])
        .expect("the item in Redis");
    assert_eq!(stored, value.to_string());
    let ops = [UpdateOp::Set {
        path: vec!["more".into()],
        value: json!(12345678901234567_u64),
    }];
    let updated = b.update("docs", "d", "x", &ops, None).await.unwrap();
    assert_eq!(updated.new.as_ref().unwrap()["big"], value["big"]);
    assert_eq!(a.get("docs", "d", "x").await.unwrap(), updated.new);
}

/// A watcher on C resumes from the revision it had on B and gets exactly
/// the changes it missed; after Redis lost its data (FLUSHALL), a resume
/// gets a reset and the state as it is now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_resume_on_another_process_and_reset_after_data_loss() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b, c) = (
        store(&redis).await,
        store(&redis).await,
        store(&redis).await,
    );
    let seen = a
        .set("todos", "ann", "t1", json!("milk"))
        .await
        .unwrap()
        .rev;
    let mut on_b = b.watch("todos", "ann", None, Some(seen.clone())).unwrap();
    a.set("todos", "ann", "t2", json!("eggs")).await.unwrap();
    let WatchEvent::Change(first) = next(&mut on_b).await else {
        panic!("a change")
    };
    drop(on_b); // the client goes away, then comes back to C
    a.set("todos", "ann", "t3", json!("tea")).await.unwrap();
    let mut on_c = c.watch("todos", "ann", None, Some(first.rev())).unwrap();
    let WatchEvent::Change(missed) = next(&mut on_c).await else {
        panic!("the missed change")
    };
    assert_eq!(missed.value()["id"], "t3");
    assert_eq!(missed.rev().rev, 3);

    redis.command(&["FLUSHALL"]).expect("flushed");
    a.set("todos", "ann", "t9", json!("new")).await.unwrap();
    let mut resumed = c.watch("todos", "ann", None, Some(missed.rev())).unwrap();
    assert!(matches!(next(&mut resumed).await, WatchEvent::Reset));
    let WatchEvent::Sync(now) = next(&mut resumed).await else {
        panic!("a sync after the reset")
    };
    assert_eq!(now.items.keys().collect::<Vec<_>>(), ["t9"]);
    assert_ne!(now.rev.epoch, missed.rev().epoch, "a new epoch");
}

/// Custom events take their place in the group's sequence on every
/// process: timestamps increase across changes, events and snapshots made
/// on different processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_snapshots_take_increasing_timestamps_across_processes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (store(&redis).await, store(&redis).await);
    a.set("chat", "room", "topic", json!("hi")).await.unwrap();
    let mut watcher = b.watch("chat", "room", None, None).unwrap();
    let WatchEvent::Sync(first) = next(&mut watcher).await else {
        panic!("a sync first")
    };
    let rev = a
        .send("chat", "room", None, "typing", json!({"user": "ann"}))
        .await
        .unwrap();
    let WatchEvent::Change(event) = next(&mut watcher).await else {
        panic!("the event")
    };
    assert_eq!(event.rev(), rev);
    assert_eq!(event.value()["event"], "typing");
    let event_ts = event.value()["ts"].as_u64().unwrap();
    assert!(event_ts > first.timestamp);
    let later = b.snapshot("chat", "room", None).await.unwrap();
    assert!(later.timestamp > event_ts);
    assert_eq!(later.rev, rev);
    assert_eq!(
        a.list("chat", "room").await.unwrap().len(),
        1,
        "events are not stored"
    );
}
