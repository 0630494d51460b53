//! The example's keyed state (`rill::state`: the todo app, the state HTTP
//! API at `/state`, the iii-compatible WebSocket at `/iii`) driven by real
//! clients, unmodified: the iii/Motia browser client
//! `@motiadev/stream-client-browser` 0.2.2 in Node (npm `ws` as its
//! WebSocket) and in headless Chromium (its dist served by this test with
//! `.js` added to its relative imports), npm `eventsource` following a
//! group through a proxy that cuts it more than a hundred times while the
//! test writes, and the todo page in two headless Chromium contexts; `/iii`
//! refuses a connection without a user. The scenarios are
//! `tests/js/state-*.mjs`; each prints one JSON line asserted here. One
//! test, ignored, shows a known server bug (a group's sync overtaken by an
//! item subscription's frames on the same connection).
//!
//! Needs node, `tests/js/node_modules` and `/usr/bin/chromium`: run
//! `bash scripts/setup-test-deps.sh` (`scripts/test.sh` does).

mod common;

use common::*;
use controllers_example::controllers::{state_routes, TodosController};
use rill::{
    state::{Store, UpdateOp, WatchEvent},
    Context, Response, Router,
};
use serde_json::{json, Value};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const MOTIA: &str = "@motiadev/stream-client-browser";

/// Fails (never skips) when the Motia client is not installed.
fn require_motia_client() {
    require_node_deps();
    for package in [MOTIA, "uuid", "ws"] {
        let dir = Path::new(JS_DIR).join("node_modules").join(package);
        assert!(dir.is_dir(), "{} is missing: {SETUP}", dir.display());
    }
}

/// Runs a state script and parses its JSON line.
async fn run_state_script(script: &str, args: &[&str], limit: Duration) -> Value {
    require_motia_client();
    let out = run_node(script, args, limit).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{script} printed {out:?}: {e}"))
}

/// What the first todo of a user looks like to a client.
fn todo(value: &Value, title: &str, completed: bool) -> Value {
    json!({"id": value["id"], "title": title, "completed": completed})
}

/// The Motia client in Node, on one connection through a proxy the script
/// cuts: a group's sync, creates, a PATCH and a DELETE; custom events to the
/// group and to an item; five PATCHes sent at once to one item, every one
/// seen by the item's change listener in turn; a join to another user's
/// group refused with `unauthorized` (nothing of that group reaches the
/// client, and the client, which ignores the refusal, asks again on every
/// reconnect); a connection without a user refused (401); four cuts while
/// a writer creates, updates and deletes — each followed by the client's
/// reconnect and fresh syncs — after which the client's group and item
/// equal the server's.
#[tokio::test]
async fn the_motia_client_follows_todos_in_node() {
    let addr = serve(controllers_example::app()).await;
    let r = run_state_script(
        "state-motia.mjs",
        &[&format!("http://{addr}"), "4"],
        Duration::from_secs(60),
    )
    .await;
    eprintln!("state-motia.mjs: {r}");

    let first = &r["sync"]["state"][0];
    let first_todo = todo(first, "made before the subscription", false);
    assert_eq!(r["sync"]["state"], json!([first_todo]), "{r}");
    assert_eq!(r["sync"]["changes"], 1, "{r}");
    assert_eq!(r["itemSync"], first_todo, "{r}");

    assert_eq!(
        r["crud"],
        json!({
            "titles": ["made before the subscription", "second"],
            "completed": [false, true],
            "equalsServer": true,
        }),
        "{r}"
    );

    // A group-wide event reaches the group only; an item's event reaches
    // the item and the group once each: the server sends one frame naming
    // the item for every subscription of the group on the connection, and
    // the client hands a frame that names an item to the item's listeners
    // and to the group's.
    let one = json!({"n": 1});
    let two = json!({"n": 2, "s": "héllo"});
    let item_id = &first["id"];
    assert_eq!(
        r["events"],
        json!({
            "group": [one, two],
            "item": [two],
            "frames": [
                {"id": null, "event": {"type": "ping", "data": one}},
                {"id": item_id, "event": {"type": "ping", "data": two}},
            ],
        }),
        "{r}"
    );

    // Five concurrent updates: all applied, each seen once, in order.
    let burst = &r["burst"];
    assert_eq!(burst["statuses"], json!([200, 200, 200, 200, 200]), "{r}");
    assert_eq!(burst["n"], 5, "{r}");
    assert_eq!(burst["log"], json!([1, 2, 3, 4, 5]), "{r}");
    let seen = burst["seen"].as_array().unwrap();
    assert_eq!(seen.len(), 5, "one change per update: {r}");
    assert_eq!(burst["prefixes"], true, "each state the last plus one: {r}");
    assert_eq!(burst["equalsServer"], true, "{r}");
    assert_eq!(burst["groupEqualsItem"], true, "{r}");
    assert_eq!(
        burst["frames"], 5,
        "one frame per update, for the group and the item subscription: {r}"
    );
    assert_eq!(burst["timestamps"], 5, "{r}");
    assert_eq!(burst["timestampsIncrease"], true, "{r}");

    let unauthorized = &r["unauthorized"];
    assert_eq!(
        unauthorized["frames"],
        json!([{
            "type": "stream",
            "streamName": "todos",
            "groupId": true,
            "event": {"type": "unauthorized"},
            "hasTimestamp": true,
        }]),
        "{r}"
    );
    assert_eq!(unauthorized["state"], json!([]), "{r}");
    assert_eq!(unauthorized["changes"], 0, "{r}");
    assert_eq!(unauthorized["socketOpen"], true, "{r}");

    assert_eq!(
        r["noUser"],
        json!({"opened": false, "errors": ["Unexpected server response: 401"], "frames": 0}),
        "{r}"
    );

    let d = &r["disconnects"];
    assert_eq!(d["cuts"], 4, "{r}");
    assert_eq!(d["severed"], json!([1, 1, 1, 1]), "one socket per cut: {r}");
    assert_eq!(d["sockets"], 5, "{r}");
    assert_eq!(d["opened"], 5, "{r}");
    assert_eq!(d["groupSyncs"], 5, "a fresh sync per connection: {r}");
    for back in d["backMs"].as_array().unwrap() {
        let back = back.as_u64().unwrap();
        assert!((1900..6000).contains(&back), "reconnect after ~2 s: {r}");
    }
    assert!(d["writes"].as_u64().unwrap() >= 100, "{r}");
    assert_eq!(d["equal"], true, "client's group = server's: {r}");
    assert_eq!(d["itemEqual"], true, "client's item = server's: {r}");
    assert_eq!(
        d["unauthorizedFrames"], 5,
        "refused once per connection: {r}"
    );
    assert_eq!(d["otherLeaked"], false, "{r}");
    assert_eq!(d["otherChanges"], 0, "{r}");
}

/// The Motia client's dist, served from `node_modules` with `.js` added to
/// its relative imports (`from './src/stream'`), which browsers need and
/// bundlers add; npm `uuid`'s browser build as it is.
fn motia_routes(router: Router) -> Router {
    let dist = Path::new(JS_DIR)
        .join("node_modules")
        .join(MOTIA)
        .join("dist");
    let uuid = Path::new(JS_DIR).join("node_modules/uuid/dist/esm-browser");
    router
        .get("/motia/*path", move |ctx: Context| {
            let dist = dist.clone();
            async move { serve_module(&dist, ctx.param("path").unwrap_or_default(), true) }
        })
        .get("/uuid/*path", move |ctx: Context| {
            let uuid = uuid.clone();
            async move { serve_module(&uuid, ctx.param("path").unwrap_or_default(), false) }
        })
        .get("/test/motia-page", |_ctx: Context| async {
            Response::html(MOTIA_PAGE)
        })
}

fn serve_module(dir: &Path, path: &str, add_extensions: bool) -> Response {
    if path.split('/').any(|s| s == ".." || s.is_empty()) || !path.ends_with(".js") {
        return Response::new(http::StatusCode::NOT_FOUND, "not found\n");
    }
    let file: PathBuf = dir.join(path);
    let Ok(source) = std::fs::read_to_string(&file) else {
        return Response::new(http::StatusCode::NOT_FOUND, "not found\n");
    };
    let source = if add_extensions {
        with_js_extensions(&source)
    } else {
        source
    };
    Response::new(http::StatusCode::OK, source).with_header(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/javascript; charset=utf-8"),
    )
}

/// `from './x'` → `from './x.js'` for relative specifiers without `.js`.
fn with_js_extensions(source: &str) -> String {
    const FROM: &str = "from '";
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(at) = rest.find(FROM) {
        let start = at + FROM.len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find('\'').unwrap_or(rest.len());
        let specifier = &rest[..end];
        out.push_str(specifier);
        if specifier.starts_with('.') && !specifier.ends_with(".js") {
            out.push_str(".js");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn relative_imports_get_their_extension() {
    let source = "export { Stream } from './src/stream';\nimport { v4 } from 'uuid';\nimport a from '../b.js';\n";
    assert_eq!(
        with_js_extensions(source),
        "export { Stream } from './src/stream.js';\nimport { v4 } from 'uuid';\nimport a from '../b.js';\n"
    );
}

/// The page the Chromium scenario opens: `uuid` mapped to its browser
/// build, the client imported as served, every WebSocket message recorded
/// (the client only uses the global `WebSocket`, here a recording one).
const MOTIA_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Motia client</title>
<script type="importmap">{"imports": {"uuid": "/uuid/index.js"}}</script>
</head><body>
<script type="module">
window.frames_ = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (e) => window.frames_.push(e.data));
  }
};
const { Stream } = await import('/motia/index.js');
window.Stream = Stream;
</script>
</body></html>
"#;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `POST /test/burst {"user","item"}`: five updates to `todos/<user>/<item>`
/// straight on the store, each appending its number to `log` and
/// incrementing `n`, on a thread of their own (so that no other task of the
/// server runs between them), started at the beginning of a millisecond.
/// Answers how long they took, the wall clock (ms) before and after, and
/// the timestamps the five changes got (read by a watcher of the item).
async fn burst(store: Store, ctx: Context) -> Response {
    let body: Value = serde_json::from_slice(ctx.body()).unwrap();
    let (user, item) = (
        body["user"].as_str().unwrap(),
        body["item"].as_str().unwrap(),
    );
    let mut watcher = store.watch("todos", user, Some(item), None).unwrap();
    assert!(matches!(watcher.next().await, Some(WatchEvent::Sync(_))));
    let updates: Vec<Vec<UpdateOp>> = (1..=5u64)
        .map(|k| {
            vec![
                UpdateOp::Append {
                    path: vec!["log".into()],
                    value: json!(k),
                },
                UpdateOp::Increment {
                    path: vec!["n".into()],
                    by: 1.into(),
                },
            ]
        })
        .collect();
    let (writer, user_, item_) = (store.clone(), user.to_owned(), item.to_owned());
    let (micros, before, after) = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let previous = now_ms();
            while now_ms() == previous {
                std::hint::spin_loop();
            }
            let before = now_ms();
            let start = Instant::now();
            for ops in &updates {
                writer
                    .update("todos", &user_, &item_, ops, None)
                    .await
                    .unwrap();
            }
            (start.elapsed().as_micros() as u64, before, now_ms())
        })
    })
    .await
    .unwrap();
    let mut timestamps = Vec::new();
    for _ in 0..5 {
        match watcher.next().await {
            Some(WatchEvent::Change(delta)) => timestamps.push(delta.value()["ts"].clone()),
            other => panic!("expected a change, got {other:?}"),
        }
    }
    Response::json_string(
        json!({"micros": micros, "clock": [before, after], "timestamps": timestamps}).to_string(),
    )
}

/// The example's todo controller and state API over a store this test
/// holds (wired as `controllers_example::app()` wires them), the Motia
/// client's files, and `/test/burst`.
fn todos_app_with_burst() -> Router {
    let store = Store::new();
    let router = Router::new().controller(Arc::new(TodosController::new(store.clone())));
    let router = motia_routes(state_routes(router, &store));
    router.post("/test/burst", move |ctx: Context| {
        let store = store.clone();
        async move { burst(store, ctx).await }
    })
}

/// The Motia client in headless Chromium: the group's sync, creates, a
/// PATCH, a DELETE; then five updates to one item made within one
/// millisecond (made again, up to fifty times, when a busy machine stretched
/// them): the page gets the five with the timestamps the server gave them
/// (strictly increasing), and the item's change listener sees each in
/// turn.
#[tokio::test]
async fn the_motia_client_follows_todos_in_chromium() {
    require_chromium();
    let addr = serve(todos_app_with_burst()).await;
    let r = run_state_script(
        "state-motia-chromium.mjs",
        &[&format!("http://{addr}")],
        Duration::from_secs(60),
    )
    .await;
    eprintln!("state-motia-chromium.mjs: {r}");

    let first = todo(&r["sync"]["item"], "made before the subscription", false);
    assert_eq!(r["sync"], json!({"group": [first], "item": first}), "{r}");
    assert_eq!(
        r["crud"],
        json!({
            "titles": ["made before the subscription", "second"],
            "completed": [false, true],
            "equalsServer": true,
        }),
        "{r}"
    );

    let b = &r["burst"];
    let micros = b["micros"].as_u64().unwrap();
    assert!(micros < 1000, "five updates within one millisecond: {r}");
    let server: Vec<u64> = b["serverTimestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(server.len(), 5, "{r}");
    assert!(server.windows(2).all(|w| w[0] < w[1]), "{r}");
    assert_eq!(b["receivedTimestamps"], b["serverTimestamps"], "{r}");
    assert_eq!(
        b["seen"],
        json!([[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5]]),
        "{r}"
    );
    assert_eq!(b["counts"], json!([1, 2, 3, 4, 5]), "{r}");
    let attempts = b["attempts"].as_u64().unwrap();
    let mut last = first.clone();
    last["log"] = json!([1, 2, 3, 4, 5].repeat(attempts as usize));
    last["n"] = json!(5 * attempts);
    assert_eq!(b["final"], last, "{r}");
    assert_eq!(b["equalsServer"], true, "{r}");
    assert_eq!(b["groupEqualsItem"], true, "{r}");
    assert_eq!(r["groupEqualsServer"], true, "{r}");
}

/// What the SSE proxy saw: each request's `Last-Event-ID` and how each
/// connection ended.
#[derive(Debug, Default)]
struct ProxyLog {
    last_event_ids: Vec<Option<String>>,
    time_cuts: usize,
    byte_cuts: usize,
    /// Byte cuts after the response head that did not end a chunk (an
    /// event's `\n\n` then the chunk's `\r\n`): the client held part of
    /// an event.
    mid_event_cuts: usize,
}

/// A TCP proxy on 127.0.0.1:0 in front of `upstream` that ends its n-th
/// connection (both sides) 30–79 ms after it came, and every third one
/// earlier, after 200–599 bytes of the response (the head included), most
/// often inside an event.
async fn sse_cutting_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<ProxyLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(ProxyLog::default()));
    let shared = log.clone();
    tokio::spawn(async move {
        // Bounded: a client stuck reconnecting fails the test.
        for n in 0..2000usize {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let time_limit = Duration::from_millis(30 + (n as u64 * 37) % 50);
            let byte_limit = (n % 3 == 2).then_some(200 + (n * 53) % 400);
            tokio::spawn(sse_proxy_connection(
                client,
                upstream,
                time_limit,
                byte_limit,
                shared.clone(),
            ));
        }
    });
    (addr, log)
}

async fn sse_proxy_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    time_limit: Duration,
    byte_limit: Option<usize>,
    log: Arc<Mutex<ProxyLog>>,
) {
    let deadline = tokio::time::Instant::now() + time_limit;
    let Some(head) = read_request_head(&mut client).await else {
        return;
    };
    let last_event_id = String::from_utf8_lossy(&head).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("last-event-id")
            .then(|| value.trim().to_owned())
    });
    log.lock().unwrap().last_event_ids.push(last_event_id);
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let mut forwarded = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    // The last four bytes forwarded, and whether the response head is past.
    let mut tail = [0u8; 4];
    let mut head_done = false;
    loop {
        let n = tokio::select! {
            read = server.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = tokio::time::sleep_until(deadline) => {
                log.lock().unwrap().time_cuts += 1;
                return;
            }
        };
        let take = match byte_limit {
            Some(limit) if forwarded + n >= limit => limit - forwarded,
            _ => n,
        };
        if client.write_all(&buf[..take]).await.is_err() {
            return;
        }
        for &byte in &buf[..take] {
            tail = [tail[1], tail[2], tail[3], byte];
            head_done |= &tail == b"\r\n\r\n";
        }
        forwarded += take;
        if take < n || byte_limit == Some(forwarded) {
            // Dropping both streams closes both connections.
            let mut log = log.lock().unwrap();
            log.byte_cuts += 1;
            if head_done && &tail != b"\n\n\r\n" {
                log.mid_event_cuts += 1;
            }
            return;
        }
    }
}

/// Reads up to the blank line that ends a request head (GET has no body).
async fn read_request_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

/// What the writer did.
#[derive(Debug, Default)]
struct Written {
    increments: u64,
    creates: u64,
    deletes: u64,
    events: u64,
}

/// Writes to `todos/<user>` straight to the app, once the client resumed
/// (it has its first sync then, so every custom event reaches it), 15 ms
/// apart, until it made 300 writes and the proxy carried 120 connections (or 40 s went
/// by): increments `counter.n` each time, creates a todo every third
/// write, completes the newest every eleventh, deletes the oldest every
/// seventh, sends a custom event every thirteenth; then creates `done`.
async fn write_while_cutting(addr: SocketAddr, user: &str, log: &Mutex<ProxyLog>) -> Written {
    let mut written = Written::default();
    let mut live: Vec<String> = Vec::new();
    let start = Instant::now();
    let base = format!("/state/todos/{user}");
    // Once the client has its first sync (a request resumes from it), so
    // that it gets every custom event.
    while log
        .lock()
        .unwrap()
        .last_event_ids
        .iter()
        .all(Option::is_none)
    {
        assert!(start.elapsed() < Duration::from_secs(10), "no resume");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut i = 0u64;
    loop {
        let connections = log.lock().unwrap().last_event_ids.len();
        if (i >= 300 && connections >= 120) || start.elapsed() > Duration::from_secs(40) {
            break;
        }
        let ops = r#"{"ops":[{"op":"increment","path":["n"],"by":1}]}"#;
        let (status, body) = http(addr, "PATCH", &format!("{base}/counter"), ops).await;
        assert_eq!(status, 200, "{body}");
        written.increments += 1;
        if i.is_multiple_of(3) {
            let todo = json!({"userId": user, "title": format!("todo {i}")}).to_string();
            let (status, body) = http(addr, "POST", "/todos", &todo).await;
            assert_eq!(status, 200, "{body}");
            let id: Value = serde_json::from_str(&body).unwrap();
            live.push(id["id"].as_str().unwrap().to_owned());
            written.creates += 1;
        }
        if i.is_multiple_of(11) {
            if let Some(id) = live.last() {
                let ops = r#"{"ops":[{"op":"set","path":["completed"],"value":true}]}"#;
                let (status, body) = http(addr, "PATCH", &format!("{base}/{id}"), ops).await;
                assert_eq!(status, 200, "{body}");
            }
        }
        if i.is_multiple_of(7) && live.len() > 3 {
            let id = live.remove(0);
            let (status, body) = http(addr, "DELETE", &format!("{base}/{id}"), "").await;
            assert_eq!(status, 200, "{body}");
            written.deletes += 1;
        }
        if i.is_multiple_of(13) {
            let event = json!({"type": "tick", "data": {"i": i}}).to_string();
            let (status, body) = http(addr, "POST", &format!("{base}/events"), &event).await;
            assert_eq!(status, 200, "{body}");
            written.events += 1;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let done = json!({"id": "done", "writes": i}).to_string();
    let (status, body) = http(addr, "PUT", &format!("{base}/done"), &done).await;
    assert_eq!(status, 200, "{body}");
    written
}

/// npm `eventsource` follows a group through more than a hundred cuts
/// (some inside an event) while the test writes hundreds of changes: the
/// client reconnects by itself with the `Last-Event-ID` of the last event
/// it got, each resume continues the revisions exactly (no gap, no
/// duplicate, no second sync, no reset), and the group it rebuilt equals
/// `GET /state/todos/<user>` at the same revision.
#[tokio::test]
async fn eventsource_rebuilds_a_group_through_a_hundred_cuts() {
    let addr = serve(controllers_example::app()).await;
    let user = unique_name("sse");
    let (status, body) = http(
        addr,
        "PUT",
        &format!("/state/todos/{user}/counter"),
        r#"{"id":"counter","n":0}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (proxy, log) = sse_cutting_proxy(addr).await;
    let proxy_base = format!("http://{proxy}");
    let app_base = format!("http://{addr}");
    let args = [proxy_base.as_str(), &app_base, &user];
    let started = Instant::now();
    let (r, written) = tokio::join!(
        run_state_script("state-sse.mjs", &args, Duration::from_secs(60)),
        write_while_cutting(addr, &user, &log),
    );
    let log = log.lock().unwrap();
    eprintln!(
        "state-sse.mjs: {r}\nwritten: {written:?}; proxy: {} requests, {} time cuts, \
         {} byte cuts ({} inside an event); {:?}",
        log.last_event_ids.len(),
        log.time_cuts,
        log.byte_cuts,
        log.mid_event_cuts,
        started.elapsed()
    );

    assert_eq!(r["done"], "reached", "{r}");
    assert_eq!(r["gaps"], json!([]), "{r}");
    assert_eq!(r["duplicates"], json!([]), "{r}");
    assert_eq!(r["badEvents"], json!([]), "{r}");
    assert_eq!(r["resumeMismatches"], json!([]), "{r}");
    assert_eq!(r["syncs"], 1, "every resume continued without a sync: {r}");
    assert_eq!(r["resets"], 0, "{r}");
    assert_eq!(r["equal"], true, "rebuilt group = server's: {r}");
    assert_eq!(r["rev"], r["serverRev"], "{r}");
    assert_eq!(
        r["counter"],
        json!({"id": "counter", "n": written.increments}),
        "{r}"
    );
    assert_eq!(r["customEvents"], written.events, "{r}");
    assert_eq!(
        r["items"],
        written.creates - written.deletes + 2,
        "todos + counter + done: {r}"
    );
    let reconnects = r["reconnects"].as_u64().unwrap();
    assert!(reconnects >= 100, "{r}");
    assert!(written.increments >= 300, "{written:?}");
    // Only the requests before the first event lacked Last-Event-ID, and
    // the proxy saw the headers the client says it sent.
    assert_eq!(r["withoutId"], r["firstWithId"], "{r}");
    let wire: Vec<String> = log
        .last_event_ids
        .iter()
        .map(|id| id.clone().unwrap_or_default())
        .collect();
    assert_eq!(json!(wire), r["requestIds"], "{r}");
    assert!(log.byte_cuts >= 30, "{log:?}");
    assert!(log.mid_event_cuts >= 10, "{log:?}");
    assert!(log.time_cuts >= 30, "{log:?}");
}

/// The todo page in two headless Chromium contexts of user `ann`: a todo
/// added through A's form shows on both; ticked on B, A shows it
/// completed; renamed on A through the `prompt`, B shows the new title;
/// deleted over the state API, both drop it.
#[tokio::test]
async fn the_todo_page_stays_in_step_in_two_browsers() {
    require_chromium();
    let addr = serve(controllers_example::app()).await;
    let r = run_state_script(
        "state-todo-page.mjs",
        &[&format!("http://{addr}"), "ann"],
        Duration::from_secs(60),
    )
    .await;
    eprintln!("state-todo-page.mjs: {r}");

    let id = r["id"].as_str().unwrap();
    let empty = json!({"count": "0", "todos": []});
    let shown = |title: &str, done: bool| json!({"count": "1", "todos": [{"id": id, "title": title, "completed": done, "checked": done}]});
    let both = |page: Value| json!({"a": page, "b": page});
    assert_eq!(r["initial"], both(empty.clone()), "{r}");
    assert_eq!(r["added"], both(shown("buy milk", false)), "{r}");
    assert_eq!(r["formCleared"], true, "{r}");
    assert_eq!(r["toggled"], both(shown("buy milk", true)), "{r}");
    assert_eq!(
        r["dialog"],
        json!({"type": "prompt", "message": "title", "defaultValue": "buy milk"}),
        "{r}"
    );
    assert_eq!(r["renamed"], both(shown("buy oat milk", true)), "{r}");
    assert_eq!(r["deleted"], both(empty), "{r}");
    assert_eq!(r["server"], json!({"items": [], "rev": "string"}), "{r}");
}

/// `/iii` refuses an upgrade without a valid user (401, fails closed) and
/// accepts one with a user (101).
#[tokio::test]
async fn iii_refuses_a_connection_without_a_user() {
    let addr = serve(controllers_example::app()).await;
    let upgrade = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    for (path, status) in [
        ("/iii", "401"),
        ("/iii?user=", "401"),
        ("/iii?user=a%2Fb", "401"),
        ("/iii?user=ann", "101"),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(upgrade(path).as_bytes()).await.unwrap();
        let mut head = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
            .await
            .unwrap()
            .unwrap();
        let head = String::from_utf8_lossy(&head[..n]).into_owned();
        assert_eq!(head.split(' ').nth(1), Some(status), "{path}: {head}");
    }
}

/// An item subscription, then a group subscription of the same group on
/// one connection, while the item is updated (`tests/js/state-motia-race.mjs`):
/// the Motia client lets any frame naming an item move its group's last
/// timestamp, so a group's sync sent after a later-stamped item change is
/// dropped and the group shows empty. The endpoint serves every
/// subscription of a group on a connection from one ordered pipeline: the
/// group's sync is never overtaken (with a subscription per task, 17 of 20
/// runs ended empty on this runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_motia_client_keeps_a_group_joined_after_an_item() {
    let addr = serve(controllers_example::app()).await;
    let r = run_state_script(
        "state-motia-race.mjs",
        &[&format!("http://{addr}"), "300", "20"],
        Duration::from_secs(120),
    )
    .await;
    eprintln!("state-motia-race.mjs: {r}");
    assert_eq!(r["dropped"], json!([]), "{r}");
}
