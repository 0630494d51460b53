//! Keyed state: update operations against a simple model (proptest),
//! snapshot-then-delta never overtaken under concurrent writers, exact
//! resume, resets, slow watchers, triggers in order, the HTTP API with its
//! SSE, and the iii-compatible WebSocket endpoint, with a client that sees
//! the wire.

mod support;

use proptest::prelude::*;
use rill::state::{
    ChangeFilter, ChangeKind, IiiEndpoint, OpFailure, Revision, StateApi, StateError, Store,
    UpdateOp, WatchEvent, Watcher,
};
use rill::{Context, Router};
use serde_json::{json, Map, Value};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{start, ws::WsClient, RawResponse, WAIT};

// ---------------------------------------------------------------------
// Update operations against a model
// ---------------------------------------------------------------------

/// The model's values: integers and arrays of integers under keys a, b, c.
#[derive(Debug, Clone, PartialEq)]
enum M {
    /// Exact between i64::MIN and u64::MAX, as the store keeps integers.
    Int(i128),
    Arr(Vec<i64>),
}

#[derive(Debug, Clone)]
enum ModelOp {
    Set(usize, i64),
    Inc(usize, i64),
    Append(usize, i64),
    Remove(usize),
    TestInt(usize, i64),
}

const KEYS: [&str; 3] = ["a", "b", "c"];

fn model_op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        (0..3usize, -5i64..5).prop_map(|(k, v)| ModelOp::Set(k, v)),
        (
            0..3usize,
            prop_oneof![Just(i64::MAX), Just(i64::MIN), -3i64..3]
        )
            .prop_map(|(k, v)| ModelOp::Inc(k, v)),
        (0..3usize, -5i64..5).prop_map(|(k, v)| ModelOp::Append(k, v)),
        (0..3usize).prop_map(ModelOp::Remove),
        (0..3usize, -2i64..2).prop_map(|(k, v)| ModelOp::TestInt(k, v)),
    ]
}

fn to_update(op: &ModelOp) -> UpdateOp {
    let path = |k: &usize| vec![KEYS[*k].to_owned()];
    match op {
        ModelOp::Set(k, v) => UpdateOp::Set {
            path: path(k),
            value: json!(v),
        },
        ModelOp::Inc(k, v) => UpdateOp::Increment {
            path: path(k),
            by: (*v).into(),
        },
        ModelOp::Append(k, v) => UpdateOp::Append {
            path: path(k),
            value: json!(v),
        },
        ModelOp::Remove(k) => UpdateOp::Remove { path: path(k) },
        ModelOp::TestInt(k, v) => UpdateOp::Test {
            path: path(k),
            value: json!(v),
        },
    }
}

/// The model: applies ops all-or-nothing; the index of the failing one.
fn model_apply(start: &BTreeMap<usize, M>, ops: &[ModelOp]) -> Result<BTreeMap<usize, M>, usize> {
    let mut state = start.clone();
    for (i, op) in ops.iter().enumerate() {
        match op {
            ModelOp::Set(k, v) => {
                state.insert(*k, M::Int(i128::from(*v)));
            }
            ModelOp::Inc(k, v) => match state.get(k) {
                None => {
                    state.insert(*k, M::Int(i128::from(*v)));
                }
                Some(M::Int(x)) => {
                    let r = x + i128::from(*v);
                    if r < i128::from(i64::MIN) || r > i128::from(u64::MAX) {
                        return Err(i);
                    }
                    state.insert(*k, M::Int(r));
                }
                Some(M::Arr(_)) => return Err(i),
            },
            ModelOp::Append(k, v) => match state.get_mut(k) {
                None => {
                    state.insert(*k, M::Arr(vec![*v]));
                }
                Some(M::Arr(items)) => items.push(*v),
                Some(M::Int(_)) => return Err(i),
            },
            ModelOp::Remove(k) => {
                state.remove(k);
            }
            ModelOp::TestInt(k, v) => {
                if state.get(k) != Some(&M::Int(i128::from(*v))) {
                    return Err(i);
                }
            }
        }
    }
    Ok(state)
}

fn model_json(state: &BTreeMap<usize, M>) -> Value {
    let mut map = Map::new();
    for (k, v) in state {
        map.insert(
            KEYS[*k].to_owned(),
            match v {
                M::Int(x) => match i64::try_from(*x) {
                    Ok(x) => json!(x),
                    Err(_) => json!(*x as u64),
                },
                M::Arr(items) => json!(items),
            },
        );
    }
    Value::Object(map)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random sequences of updates through the store end where the model
    /// ends, a failing update names the model's failing op and changes
    /// nothing, and an update that changes nothing is not a change.
    #[test]
    fn updates_through_the_store_match_the_model(batches in prop::collection::vec(prop::collection::vec(model_op(), 1..5), 1..8)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::new();
            store.set("m", "g", "x", json!({})).await.unwrap();
            let mut model: BTreeMap<usize, M> = BTreeMap::new();
            let mut rev = 1;
            for batch in &batches {
                let ops: Vec<UpdateOp> = batch.iter().map(to_update).collect();
                let result = store.update("m", "g", "x", &ops, None).await;
                match (model_apply(&model, batch), result) {
                    (Ok(next), Ok(write)) => {
                        let changed = next != model;
                        prop_assert_eq!(write.changed, changed);
                        if changed { rev += 1; }
                        prop_assert_eq!(write.rev.rev, rev);
                        prop_assert_eq!(write.new.clone().unwrap(), model_json(&next));
                        model = next;
                    }
                    (Err(i), Err(StateError::Op(e))) => prop_assert_eq!(e.index, i),
                    (Err(i), Ok(write)) => prop_assert!(false, "model failed at {i}, store wrote {write:?}"),
                    (Ok(_), Err(e)) => prop_assert!(false, "model ok, store failed: {e}"),
                    (Err(_), Err(e)) => prop_assert!(false, "unexpected error {e}"),
                }
                prop_assert_eq!(store.get("m", "g", "x").await.unwrap().unwrap(), model_json(&model));
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn updates_are_all_or_nothing_with_typed_errors() {
    let store = Store::new();
    store
        .set("s", "g", "i", json!({"n": 1, "tags": []}))
        .await
        .unwrap();
    let err = store
        .update(
            "s",
            "g",
            "i",
            &[
                UpdateOp::Set {
                    path: vec!["n".into()],
                    value: json!(2),
                },
                UpdateOp::Append {
                    path: vec!["n".into()],
                    value: json!("x"),
                },
            ],
            None,
        )
        .await
        .unwrap_err();
    let StateError::Op(op) = err else {
        panic!("{err}")
    };
    assert_eq!((op.index, op.op), (1, "append"));
    assert!(matches!(op.failure, OpFailure::WrongType { .. }));
    assert_eq!(
        store.get("s", "g", "i").await.unwrap(),
        Some(json!({"n": 1, "tags": []}))
    );
    // A revision precondition.
    let at = store.snapshot("s", "g", None).await.unwrap().rev;
    let stale = Revision {
        epoch: at.epoch.clone(),
        rev: at.rev - 1,
    };
    assert!(matches!(
        store
            .update(
                "s",
                "g",
                "i",
                &[UpdateOp::Remove {
                    path: vec!["n".into()]
                }],
                Some(&stale)
            )
            .await,
        Err(StateError::RevisionMismatch { .. })
    ));
    assert!(
        store
            .update(
                "s",
                "g",
                "i",
                &[UpdateOp::Remove {
                    path: vec!["n".into()]
                }],
                Some(&at)
            )
            .await
            .unwrap()
            .changed
    );
    // Limits and names.
    assert!(matches!(
        store.set("s", "g", "a/b", json!(1)).await,
        Err(StateError::Limit(_))
    ));
    assert!(matches!(
        store
            .set("s", "g", "i", json!({"__proto__": {"x": 1}}))
            .await,
        Err(StateError::Limit(_))
    ));
    let deep = (0..40).fold(json!(1), |v, _| json!([v]));
    assert!(matches!(
        store.set("s", "g", "i", deep).await,
        Err(StateError::Limit(_))
    ));
    // Nothing changed: nothing published, same revision.
    let before = store.snapshot("s", "g", None).await.unwrap().rev;
    let same = store.set("s", "g", "i", json!({"tags": []})).await.unwrap();
    assert!(!same.changed);
    assert_eq!(same.rev, before);
    assert_eq!(store.list_groups("s").await.unwrap(), ["g"]);
    store.delete("s", "g", "i").await.unwrap();
    assert!(store.list_groups("s").await.unwrap().is_empty());
}

// ---------------------------------------------------------------------
// Watchers
// ---------------------------------------------------------------------

/// What a watcher has seen: the state it rebuilt, and the revisions.
#[derive(Default, Debug)]
struct Follower {
    items: BTreeMap<String, Value>,
    rev: Option<Revision>,
    syncs: usize,
    resets: usize,
    events: Vec<Value>,
}

impl Follower {
    fn apply(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Sync(snapshot) => {
                self.items = snapshot.items;
                self.rev = Some(snapshot.rev);
                self.syncs += 1;
            }
            WatchEvent::Reset => self.resets += 1,
            WatchEvent::Change(delta) => {
                let rev = delta.rev();
                if let Some(last) = &self.rev {
                    if last.epoch == rev.epoch || last.epoch.is_empty() {
                        assert_eq!(rev.rev, last.rev + 1, "a change skipped or repeated");
                    }
                }
                self.rev = Some(rev);
                let change = delta.value();
                let id = change["id"].as_str().map(str::to_owned);
                match delta.kind() {
                    ChangeKind::Create | ChangeKind::Update => {
                        self.items.insert(id.unwrap(), change["data"].clone());
                    }
                    ChangeKind::Delete => {
                        self.items.remove(&id.unwrap());
                    }
                    ChangeKind::Event => self.events.push(change),
                }
            }
        }
    }
}

async fn follow_until(
    watcher: &mut Watcher,
    follower: &mut Follower,
    done: impl Fn(&Follower) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !done(follower) {
            let event = watcher.next().await.expect("a watcher event");
            follower.apply(event);
        }
    })
    .await
    .expect("the watcher caught up in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_never_overtaken_by_concurrent_writes() {
    let store = Store::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300u64 {
                    let item = format!("w{w}-{}", i % 7);
                    if i % 11 == 10 {
                        store.delete("g", "one", &item).await.unwrap();
                    } else {
                        store
                            .update(
                                "g",
                                "one",
                                &item,
                                &[UpdateOp::Increment {
                                    path: vec!["n".into()],
                                    by: 1.into(),
                                }],
                                None,
                            )
                            .await
                            .unwrap();
                    }
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    // Watchers start while the writers write.
    let mut watchers = Vec::new();
    for _ in 0..8 {
        watchers.push((
            store.watch("g", "one", None, None).unwrap(),
            Follower::default(),
        ));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let last = store.snapshot("g", "one", None).await.unwrap();
    for (watcher, follower) in &mut watchers {
        let target = last.rev.clone();
        follow_until(watcher, follower, |f| f.rev.as_ref() == Some(&target)).await;
        assert_eq!(follower.items, last.items);
        assert_eq!((follower.syncs, follower.resets), (1, 0));
    }
}

#[tokio::test]
async fn a_watcher_resumes_exactly_from_its_revision() {
    let store = Store::new();
    for i in 0..5 {
        store
            .set("r", "g", &format!("i{i}"), json!(i))
            .await
            .unwrap();
    }
    let mut watcher = store.watch("r", "g", None, None).unwrap();
    let mut follower = Follower::default();
    follow_until(&mut watcher, &mut follower, |f| f.syncs == 1).await;
    store.set("r", "g", "i9", json!(9)).await.unwrap();
    follow_until(&mut watcher, &mut follower, |f| f.items.len() == 6).await;
    let at = follower.rev.clone().unwrap();
    drop(watcher);
    // Missed while away.
    store.delete("r", "g", "i0").await.unwrap();
    store
        .send("r", "g", None, "ping", json!({"n": 1}))
        .await
        .unwrap();
    store.set("r", "g", "i1", json!(100)).await.unwrap();
    let mut back = store.watch("r", "g", None, Some(at)).unwrap();
    let target = store.snapshot("r", "g", None).await.unwrap();
    follow_until(&mut back, &mut follower, |f| {
        f.rev.as_ref() == Some(&target.rev)
    })
    .await;
    assert_eq!(follower.items, target.items);
    assert_eq!(follower.syncs, 1, "a resume sends no snapshot");
    assert_eq!(follower.events.len(), 1);
    assert_eq!(follower.events[0]["event"], "ping");
}

#[tokio::test]
async fn a_lost_epoch_or_a_slow_watcher_gets_a_reset_and_a_fresh_snapshot() {
    let store = Store::new();
    store.set("e", "g", "a", json!(1)).await.unwrap();
    let bogus = Revision {
        epoch: "zz".into(),
        rev: 3,
    };
    let mut watcher = store.watch("e", "g", None, Some(bogus)).unwrap();
    assert!(matches!(watcher.next().await, Some(WatchEvent::Reset)));
    let Some(WatchEvent::Sync(snapshot)) = watcher.next().await else {
        panic!("a sync")
    };
    assert_eq!(snapshot.items["a"], json!(1));

    let mut slow = store.watch("e", "g", None, None).unwrap().queue(4);
    assert!(matches!(slow.next().await, Some(WatchEvent::Sync(_))));
    for i in 0..50 {
        store.set("e", "g", "a", json!(i + 10)).await.unwrap();
    }
    // Conflated: the latest value, not 50 changes.
    assert!(matches!(slow.next().await, Some(WatchEvent::Reset)));
    let Some(WatchEvent::Sync(snapshot)) = slow.next().await else {
        panic!("a sync")
    };
    assert_eq!(snapshot.items["a"], json!(59));
}

#[tokio::test]
async fn item_watchers_see_their_item_only() {
    let store = Store::new();
    let mut watcher = store.watch("it", "g", Some("mine"), None).unwrap();
    let Some(WatchEvent::Sync(empty)) = watcher.next().await else {
        panic!()
    };
    assert!(empty.items.is_empty());
    store.set("it", "g", "other", json!(1)).await.unwrap();
    store
        .send("it", "g", Some("other"), "poke", json!(null))
        .await
        .unwrap();
    store.set("it", "g", "mine", json!(2)).await.unwrap();
    store
        .send("it", "g", Some("mine"), "poke", json!(3))
        .await
        .unwrap();
    let Some(WatchEvent::Change(first)) = watcher.next().await else {
        panic!()
    };
    assert_eq!(
        first.value(),
        json!({"id": "mine", "type": "create", "data": 2, "ts": first.value()["ts"]})
    );
    let Some(WatchEvent::Change(second)) = watcher.next().await else {
        panic!()
    };
    assert_eq!(second.value()["event"], "poke");
    assert_eq!(second.value()["data"], 3);
}

#[tokio::test]
async fn triggers_run_after_each_change_in_order_and_may_write() {
    let store = Store::new();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, log) = (store.clone(), seen.clone());
    store.on_change(ChangeFilter::stream("todos"), move |change| {
        let (store, log) = (s.clone(), log.clone());
        async move {
            log.lock().unwrap().push(format!(
                "{} {} {:?}->{:?}",
                change.kind.as_str(),
                change.item.clone().unwrap_or_default(),
                change.old,
                change.new
            ));
            // A derived count, written to another stream from the trigger.
            let count = store.list(&change.stream, &change.group).await?.len();
            store
                .set("counts", &change.group, "todos", json!(count))
                .await?;
            Ok(())
        }
    });
    store.set("todos", "ann", "t1", json!("a")).await.unwrap();
    store.set("todos", "ann", "t1", json!("b")).await.unwrap();
    store.delete("todos", "ann", "t1").await.unwrap();
    store.set("other", "ann", "x", json!(1)).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while seen.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "create t1 None->Some(String(\"a\"))",
            "update t1 Some(String(\"a\"))->Some(String(\"b\"))",
            "delete t1 Some(String(\"b\"))->None",
        ]
    );
    assert_eq!(
        store.get("counts", "ann", "todos").await.unwrap(),
        Some(json!(0))
    );
}

// ---------------------------------------------------------------------
// HTTP API and SSE
// ---------------------------------------------------------------------

async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    extra: &str,
) -> RawResponse {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    RawResponse::request(addr, &req).await
}

async fn json_of(mut response: RawResponse) -> (u16, Value) {
    let status = response.status;
    let body = response.sized_body().await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_http_api_reads_writes_and_refuses() {
    let store = Store::new();
    let router = StateApi::new(store.clone())
        .authorize(|ctx, access| !(access.write && ctx.header("x-readonly").is_some()))
        .mount(Router::new(), "/state");
    let server = start(router).await;
    let a = server.addr;
    let (status, write) = json_of(
        request(
            a,
            "PUT",
            "/state/todos/ann/t1",
            r#"{"title":"milk","n":1}"#,
            "",
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(write["old"], Value::Null);
    assert_eq!(write["changed"], true);
    let rev1 = write["rev"].as_str().unwrap().to_owned();
    assert!(rev1.ends_with(".1"), "{rev1}");
    let (status, value) = json_of(request(a, "GET", "/state/todos/ann/t1", "", "").await).await;
    assert_eq!((status, value), (200, json!({"title": "milk", "n": 1})));
    assert_eq!(
        json_of(request(a, "GET", "/state/todos/ann/nope", "", "").await)
            .await
            .0,
        404
    );
    let patch = json!({"ops": [
        {"op": "increment", "path": ["n"], "by": 2},
        {"op": "append", "path": ["n"], "value": "x"},
    ]});
    let (status, failed) =
        json_of(request(a, "PATCH", "/state/todos/ann/t1", &patch.to_string(), "").await).await;
    assert_eq!(status, 422);
    assert_eq!(failed["op"]["index"], 1);
    assert_eq!(failed["op"]["op"], "append");
    let patch = json!({"ops": [{"op": "increment", "path": ["n"], "by": 2}], "if_rev": rev1});
    let (status, write) =
        json_of(request(a, "PATCH", "/state/todos/ann/t1", &patch.to_string(), "").await).await;
    assert_eq!(status, 200);
    assert_eq!(write["new"], json!({"title": "milk", "n": 3}));
    let (status, _) =
        json_of(request(a, "PATCH", "/state/todos/ann/t1", &patch.to_string(), "").await).await;
    assert_eq!(status, 409, "a stale if_rev");
    let (_, list) = json_of(request(a, "GET", "/state/todos/ann", "", "").await).await;
    assert_eq!(
        list["items"],
        json!([{"id": "t1", "value": {"title": "milk", "n": 3}}])
    );
    let (_, groups) = json_of(request(a, "GET", "/state/todos", "", "").await).await;
    assert_eq!(groups, json!(["ann"]));
    let (status, _) = json_of(
        request(
            a,
            "POST",
            "/state/todos/ann/events",
            r#"{"type":"typing","data":{"who":"ann"}}"#,
            "",
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) =
        json_of(request(a, "PUT", "/state/todos/ann/t2", "{}", "x-readonly: 1\r\n").await).await;
    assert_eq!(status, 403);
    assert_eq!(
        json_of(request(a, "PUT", "/state/todos/ann/t2", "not json", "").await)
            .await
            .0,
        400
    );
    let (status, write) = json_of(request(a, "DELETE", "/state/todos/ann/t1", "", "").await).await;
    assert_eq!((status, &write["new"]), (200, &Value::Null));
    server.shutdown().await.unwrap();
}

/// Reads SSE frames (`event`, `id`, `data`) from a raw response.
async fn next_frames(response: &mut RawResponse, want: usize) -> Vec<(String, String, Value)> {
    let mut text = String::new();
    let mut frames = Vec::new();
    while frames.len() < want {
        let chunk = tokio::time::timeout(WAIT, response.next_chunk())
            .await
            .expect("a chunk in time")
            .expect("the stream")
            .expect("more");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_owned();
                }
            }
            if !event.is_empty() {
                frames.push((
                    event,
                    id,
                    serde_json::from_str(&data).unwrap_or(Value::Null),
                ));
            }
        }
    }
    frames
}

#[tokio::test]
async fn sse_follows_a_group_and_resumes_with_last_event_id() {
    let store = Store::new();
    let api = StateApi::new(store.clone()).retry(Duration::from_millis(250));
    let server = start(api.mount(Router::new(), "/state")).await;
    store
        .set("todos", "bo", "t1", json!({"title": "a"}))
        .await
        .unwrap();
    let accept = "Accept: text/event-stream\r\n";
    let mut sse = request(server.addr, "GET", "/state/todos/bo", "", accept).await;
    // The first chunk is the sync, which carries the stream's retry.
    let first = String::from_utf8(sse.next_chunk().await.unwrap().unwrap()).unwrap();
    assert!(first.contains("\nretry: 250\n"), "{first:?}");
    let data = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let sync = [(
        "sync".to_owned(),
        String::new(),
        serde_json::from_str::<Value>(data).unwrap(),
    )];
    assert!(first.starts_with("event: sync\n"), "{first:?}");
    assert_eq!(sync[0].2["items"], json!({"t1": {"title": "a"}}));
    store
        .set("todos", "bo", "t2", json!({"title": "b"}))
        .await
        .unwrap();
    let change = next_frames(&mut sse, 1).await;
    assert_eq!(change[0].0, "create");
    assert_eq!(change[0].2["data"], json!({"title": "b"}));
    let last_id = change[0].1.clone();
    drop(sse);
    store
        .set("todos", "bo", "t1", json!({"title": "a2"}))
        .await
        .unwrap();
    store.delete("todos", "bo", "t2").await.unwrap();
    let mut again = request(
        server.addr,
        "GET",
        "/state/todos/bo",
        "",
        &format!("{accept}Last-Event-ID: {last_id}\r\n"),
    )
    .await;
    let missed = next_frames(&mut again, 2).await;
    assert_eq!(
        missed.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["update", "delete"],
        "exactly the missed changes, no snapshot"
    );
    let bad = request(
        server.addr,
        "GET",
        "/state/todos/bo",
        "",
        &format!("{accept}Last-Event-ID: zz.4\r\n"),
    )
    .await;
    let mut bad = bad;
    let reset = next_frames(&mut bad, 2).await;
    assert_eq!(
        (reset[0].0.as_str(), reset[1].0.as_str()),
        ("reset", "sync")
    );
    assert_eq!(reset[1].2["items"], json!({"t1": {"title": "a2"}}));
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// The iii-compatible endpoint
// ---------------------------------------------------------------------

#[tokio::test]
async fn the_iii_endpoint_speaks_join_and_leave() {
    let store = Store::new();
    let iii = IiiEndpoint::new(store.clone())
        .authenticate(|ctx: &Context| {
            let user = ctx.query("user").map(str::to_owned);
            async move { user.map(|u| json!({"user": u})) }
        })
        .on_join(|auth, join| async move { auth["user"] == join.group.as_str() });
    let server = start(Router::new().get("/iii", move |ctx: Context| {
        let iii = iii.clone();
        async move { iii.accept(ctx).await }
    }))
    .await;
    // Fails closed without a user.
    match WsClient::connect(server.addr, "/iii", &[]).await {
        Err(head) => assert!(head.contains("401"), "{head}"),
        Ok(_) => panic!("accepted without a user"),
    }
    store
        .set("todo", "ann", "a", json!({"title": "x"}))
        .await
        .unwrap();
    store.set("todo", "ann", "b", json!(7)).await.unwrap();
    let (mut ws, _) = WsClient::connect(server.addr, "/iii?user=ann", &[])
        .await
        .unwrap();
    let join = |sub: &str, group: &str, id: Option<&str>| {
        let mut data = json!({"subscriptionId": sub, "streamName": "todo", "groupId": group});
        if let Some(id) = id {
            data["id"] = json!(id);
        }
        json!({"type": "join", "data": data}).to_string()
    };
    ws.send_text(&join("s1", "ann", None)).await;
    let sync: Value = serde_json::from_str(&ws.recv_text().await.unwrap()).unwrap();
    assert_eq!(sync["type"], "stream");
    assert_eq!(sync["event"]["type"], "sync");
    assert_eq!(sync["event"]["data"], json!([{"title": "x", "id": "a"}, 7]));
    let mut last_ts = sync["timestamp"].as_u64().unwrap();
    // Five updates to one item within a millisecond: five timestamps, increasing.
    for n in 0..5 {
        store
            .set("todo", "ann", "a", json!({"title": "x", "n": n}))
            .await
            .unwrap();
    }
    for n in 0..5 {
        let m: Value = serde_json::from_str(&ws.recv_text().await.unwrap()).unwrap();
        assert_eq!(m["event"]["type"], "update");
        assert_eq!(m["event"]["data"], json!({"title": "x", "n": n, "id": "a"}));
        assert_eq!(m["id"], "a");
        let ts = m["timestamp"].as_u64().unwrap();
        assert!(
            ts > last_ts,
            "timestamps must increase: {ts} after {last_ts}"
        );
        last_ts = ts;
    }
    store
        .send("todo", "ann", None, "typing", json!({"who": "bo"}))
        .await
        .unwrap();
    let m: Value = serde_json::from_str(&ws.recv_text().await.unwrap()).unwrap();
    assert_eq!(
        m["event"],
        json!({"type": "event", "event": {"type": "typing", "data": {"who": "bo"}}})
    );
    // Another user's group: refused, and told so.
    ws.send_text(&join("s2", "bo", None)).await;
    let m: Value = serde_json::from_str(&ws.recv_text().await.unwrap()).unwrap();
    assert_eq!(m["event"], json!({"type": "unauthorized"}));
    // An item subscription: its value, then only its changes; then leave.
    ws.send_text(&join("s3", "ann", Some("b"))).await;
    let m: Value = serde_json::from_str(&ws.recv_text().await.unwrap()).unwrap();
    assert_eq!(
        (m["id"].as_str(), &m["event"]),
        (Some("b"), &json!({"type": "sync", "data": 7}))
    );
    ws.send_text(&json!({"type": "leave", "data": {"subscriptionId": "s1", "streamName": "todo", "groupId": "ann"}}).to_string()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.delete("todo", "ann", "b").await.unwrap();
    let m: Value = serde_json::from_str(&ws.recv_text().await.unwrap()).unwrap();
    assert_eq!(m["id"], "b");
    assert_eq!(m["event"]["type"], "delete");
    // s1 left: nothing more for it; garbage is ignored.
    ws.send_text("not json").await;
    store.set("todo", "ann", "c", json!(1)).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws.recv_text()).await;
    assert!(quiet.is_err(), "a left subscription still got {quiet:?}");
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// Named-event streams: `watch`
// ---------------------------------------------------------------------

#[tokio::test]
async fn event_streams_watch_state_and_resume_from_a_revision() {
    let store = Store::new();
    let stream = rill::events::EventStream::builder()
        .state(store.clone())
        .authorize_watch(|_ctx, access| access.stream != "secret")
        .build();
    let server = start(Router::new().get("/ws", move |ctx: Context| {
        let stream = stream.clone();
        async move { stream.accept(ctx) }
    }))
    .await;
    store.set("todos", "cy", "a", json!(1)).await.unwrap();
    let (mut ws, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    ws.send_text(r#"{"watch":"todos/cy"}"#).await;
    ws.send_text(r#"{"watch":"secret/cy"}"#).await;
    let line = |text: String| -> Value { serde_json::from_str(text.trim_end()).unwrap() };
    let sync = line(ws.recv_text().await.unwrap());
    assert_eq!(sync["state"], "todos/cy");
    assert_eq!(sync["sync"], json!({"a": 1}));
    let refused = line(ws.recv_text().await.unwrap());
    assert_eq!(refused, json!({"state": "secret/cy", "error": "forbidden"}));
    store.set("todos", "cy", "b", json!(2)).await.unwrap();
    let change = line(ws.recv_text().await.unwrap());
    assert_eq!(change["change"]["type"], "create");
    assert_eq!(change["change"]["id"], "b");
    let rev = change["rev"].as_str().unwrap().to_owned();
    ws.vanish();
    store.delete("todos", "cy", "a").await.unwrap();
    let (mut ws, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    ws.send_text(&json!({"watch": "todos/cy", "since": rev}).to_string())
        .await;
    let missed = line(ws.recv_text().await.unwrap());
    assert_eq!(
        missed["change"]["type"], "delete",
        "the missed change, no snapshot: {missed}"
    );
    assert_eq!(missed["change"]["id"], "a");
    ws.send_text(r#"{"unwatch":"todos/cy"}"#).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.set("todos", "cy", "c", json!(3)).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws.recv_text()).await;
    assert!(quiet.is_err(), "an unwatched group still sent {quiet:?}");
    server.shutdown().await.unwrap();
}
