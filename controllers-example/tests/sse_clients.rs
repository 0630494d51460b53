//! The SSE endpoints read by real clients: the npm `eventsource` package in
//! node and headless Chromium's native `EventSource`, both driven by the
//! scripts in `tests/js/`. The app is served in-process on 127.0.0.1:0; each
//! script prints one JSON line that is asserted here.
//!
//! Needs node, `tests/js/node_modules` and `/usr/bin/chromium`: run
//! `bash scripts/setup-test-deps.sh` (`scripts/test.sh` does).

use std::{
    net::SocketAddr,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    process::Command,
};

const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/js");
const CHROMIUM: &str = "/usr/bin/chromium";
const SETUP: &str = "run `bash scripts/setup-test-deps.sh` first";

/// What both clients must see on `/events`, as the scripts print it.
const EXPECTED_EVENTS: &str = r#"{"done":"closed","events":[{"type":"greeting","data":"hello"},{"type":"message","data":"world"},{"type":"message","data":"tick"},{"type":"message","data":"pong"},{"type":"message","data":"line one\nline two"}]}"#;

/// The same-origin page the browser test opens: it logs every `/events`
/// event into `#events` and closes after the fifth, since the server ends
/// the stream and `EventSource` would otherwise reconnect.
const SSE_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>rill SSE test</title></head>
<body data-done="">
<ol id="events"></ol>
<script>
const list = document.getElementById('events');
const es = new EventSource('/events');
function finish(how) {
  es.close();
  document.body.dataset.done = how;
}
function record(e) {
  const li = document.createElement('li');
  li.textContent = JSON.stringify({type: e.type, data: e.data});
  list.appendChild(li);
  if (list.children.length === 5) finish('closed');
}
es.addEventListener('greeting', record);
es.addEventListener('message', record);
es.addEventListener('error', () => finish('error'));
</script>
</body></html>
"#;

async fn sse_page(_ctx: rill::Context) -> rill::Response {
    rill::Response::html(SSE_PAGE)
}

async fn serve(router: rill::Router) -> SocketAddr {
    let server = rill::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(router));
    addr
}

/// Fails (never skips) when the environment lacks what the scripts need.
fn require_node_deps() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(node, Ok(status) if status.success()),
        "node is not runnable: {SETUP}"
    );
    for package in ["eventsource", "playwright-core"] {
        let dir = Path::new(JS_DIR).join("node_modules").join(package);
        assert!(dir.is_dir(), "{} is missing: {SETUP}", dir.display());
    }
}

fn require_chromium() {
    let version = std::process::Command::new(CHROMIUM)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(version, Ok(status) if status.success()),
        "{CHROMIUM} is not runnable: {SETUP}"
    );
}

/// Runs `node tests/js/<script> <args…>`, kills it (by its own handle) if it
/// overruns `limit`, and returns its stdout's last line once it exited 0.
async fn run_node(script: &str, args: &[&str], limit: Duration) -> String {
    require_node_deps();
    let mut child = Command::new("node")
        .arg(Path::new(JS_DIR).join(script))
        .args(args)
        .current_dir(JS_DIR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node ({e}): {SETUP}"));
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            child.kill().await.unwrap();
            panic!(
                "{script} ran over {limit:?}; stdout: {}; stderr: {}",
                stdout.await.unwrap(),
                stderr.await.unwrap()
            );
        }
    };
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    assert!(
        status.success(),
        "{script} failed ({status}); stdout: {stdout}; stderr: {stderr}"
    );
    stdout.lines().last().unwrap_or_default().to_owned()
}

async fn read_all(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    // The child's exit closes the pipe; a read error only loses diagnostics.
    let _ = pipe.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The raw JSON text of `"name":…` in `json`, up to the matching `]` for an
/// array or the next `,`/`}` otherwise; enough for the scripts' flat output.
fn json_field<'a>(json: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    let rest = &json[start..];
    let end = if rest.starts_with('[') {
        rest.find(']').unwrap() + 1
    } else {
        rest.find([',', '}']).unwrap()
    };
    &rest[..end]
}

/// The items of a flat JSON array of numbers or escape-free strings.
fn json_items(array: &str) -> Vec<String> {
    let inner = array
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap();
    if inner.is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|item| item.trim_matches('"').to_owned())
        .collect()
}

/// A JSON string literal for text without control characters, as
/// `JSON.stringify` writes it.
fn json_string(text: &str) -> String {
    assert!(!text.chars().any(char::is_control), "{text:?}");
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// How the proxy ends one connection: after forwarding `events` complete
/// events, or, with `mid_event`, also the next event minus its final blank
/// line, so the client holds an undispatched event when the link drops.
#[derive(Clone, Copy, Debug)]
struct Cut {
    events: usize,
    mid_event: bool,
}

/// A TCP proxy on 127.0.0.1:0 in front of `upstream` that drops the n-th
/// connection (both sides) as `cuts[n]` says and passes later ones through.
/// Returns its address and the `Last-Event-ID` of each request it forwarded,
/// read off the wire (`None` when absent).
async fn cutting_proxy(
    upstream: SocketAddr,
    cuts: Vec<Cut>,
) -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        // Bounded: a client stuck reconnecting fails the test, not the machine.
        for n in 0..20 {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let cut = cuts.get(n).copied();
            tokio::spawn(proxy_connection(client, upstream, cut, log.clone()));
        }
    });
    (addr, seen)
}

async fn proxy_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    cut: Option<Cut>,
    log: Arc<Mutex<Vec<Option<String>>>>,
) {
    let Some(head) = read_request_head(&mut client).await else {
        return;
    };
    let last_event_id = String::from_utf8_lossy(&head).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("last-event-id")
            .then(|| value.trim().to_owned())
    });
    log.lock().unwrap().push(last_event_id);
    let mut server = TcpStream::connect(upstream).await.unwrap();
    server.write_all(&head).await.unwrap();

    // Counts "\n\n" (an event's end; the response head uses "\r\n\r\n" and
    // the chunk framing "\r\n") across reads, and stops at the cut.
    let stop_at = cut.map(|c| c.events + usize::from(c.mid_event));
    let mut ends = 0;
    let mut previous = 0u8;
    let mut buf = vec![0u8; 8192];
    loop {
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), server.read(&mut buf)).await
        else {
            return;
        };
        if n == 0 {
            return;
        }
        let mut forward = n;
        let mut cutting = false;
        for (i, &byte) in buf[..n].iter().enumerate() {
            if previous == b'\n' && byte == b'\n' {
                ends += 1;
                if Some(ends) == stop_at {
                    // A mid-event cut withholds this final '\n'.
                    forward = if cut.is_some_and(|c| c.mid_event) {
                        i
                    } else {
                        i + 1
                    };
                    cutting = true;
                    break;
                }
            }
            previous = byte;
        }
        if client.write_all(&buf[..forward]).await.is_err() {
            return;
        }
        if cutting {
            // Dropping both streams closes both TCP connections: the client
            // sees its body end before the chunked terminator.
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

/// The npm `eventsource` client gets exactly the five `/events` events, in
/// order, with the `greeting` type and the two-line data intact.
#[tokio::test]
async fn eventsource_reads_events() {
    let addr = serve(controllers_example::app()).await;
    let base = format!("http://{addr}");
    let out = run_node("events.mjs", &[&base], Duration::from_secs(30)).await;
    assert_eq!(out, EXPECTED_EVENTS);
}

/// Cut three times mid-stream, the `eventsource` client reconnects by itself
/// with `Last-Event-ID` and `/ticker` resumes: ids 1..=12 with no gap or
/// duplicate, even when a cut strands a half-received event.
#[tokio::test]
async fn eventsource_resumes_ticker_after_cuts() {
    let addr = serve(controllers_example::app()).await;
    let cuts = vec![
        Cut {
            events: 3,
            mid_event: false,
        },
        Cut {
            events: 3,
            mid_event: true,
        },
        Cut {
            events: 3,
            mid_event: false,
        },
    ];
    let (proxy, wire_ids) = cutting_proxy(addr, cuts).await;
    let base = format!("http://{proxy}");
    let out = run_node("ticker.mjs", &[&base, "12"], Duration::from_secs(30)).await;

    assert_eq!(json_field(&out, "done"), "\"reached\"", "{out}");
    let ids: Vec<u64> = json_items(json_field(&out, "ids"))
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=12).collect::<Vec<u64>>(), "{out}");
    assert_eq!(json_field(&out, "badData"), "[]", "{out}");
    // Each connection carried three events, so each reconnect resumes after
    // a multiple of three; the half-sent tick 7 was not counted as received.
    let expected = [None, Some("3"), Some("6"), Some("9")].map(|id| id.map(str::to_owned));
    assert_eq!(*wire_ids.lock().unwrap(), expected, "proxy saw: {out}");
    let client_ids = json_items(json_field(&out, "lastEventIds"));
    assert_eq!(client_ids, ["", "3", "6", "9"], "{out}");
    assert_eq!(json_field(&out, "errors"), "3", "{out}");
}

/// Headless Chromium's native `EventSource`, on a same-origin page, gets the
/// same five `/events` events as the npm client.
#[tokio::test]
async fn chromium_eventsource_reads_events() {
    require_chromium();
    let addr = serve(controllers_example::app().get("/test/sse-page", sse_page)).await;
    let url = format!("http://{addr}/test/sse-page");
    let out = run_node("chromium-page.mjs", &[&url], Duration::from_secs(60)).await;
    assert_eq!(out, EXPECTED_EVENTS);
}

/// `/llm` reaches the `eventsource` client as one `token` event per word of
/// the paragraph, in order, then an empty `done` event.
#[tokio::test]
async fn eventsource_reads_llm_tokens() {
    let addr = serve(controllers_example::app()).await;
    let base = format!("http://{addr}");
    let out = run_node("llm.mjs", &[&base], Duration::from_secs(30)).await;
    let words: Vec<String> = controllers_example::controllers::PARAGRAPH
        .split(' ')
        .map(json_string)
        .collect();
    let expected = format!(
        r#"{{"done":"done","tokens":[{}],"doneData":""}}"#,
        words.join(",")
    );
    assert_eq!(out, expected);
}

/// A name no other test run uses, for rooms and channels.
fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One HTTP/1.1 request with `Connection: close` straight to `addr`: the
/// status code and the raw body (chunk framing left in, if any).
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        read_all(stream).await
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: bad response {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line in {head:?}"));
    (status, body.to_owned())
}

/// Polls `GET /hub/stats` until `channel` has exactly one subscriber.
async fn wait_for_subscriber(addr: SocketAddr, channel: &str) {
    let wanted = format!("{}:1", json_string(channel));
    let mut last = String::new();
    for _ in 0..500 {
        let (status, body) = http(addr, "GET", "/hub/stats", "").await;
        assert_eq!(status, 200, "{body}");
        if body.contains(&wanted) {
            return;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no subscriber on {channel} within 10 s; stats: {last}");
}

/// Once the client subscribed, publishes `msg 1`..=`msg count` to `channel`
/// with `POST /hub/broadcast`, 40 ms apart; returns the hub's ids.
async fn publish_messages(addr: SocketAddr, channel: &str, count: usize) -> Vec<String> {
    wait_for_subscriber(addr, channel).await;
    let mut ids = Vec::with_capacity(count);
    for i in 1..=count {
        let body = format!(r#"{{"channel":{},"data":"msg {i}"}}"#, json_string(channel));
        let (status, reply) = http(addr, "POST", "/hub/broadcast", &body).await;
        assert_eq!(status, 200, "broadcast {i}: {reply}");
        ids.push(json_field(&reply, "id").trim_matches('"').to_owned());
        // Spread over the client's 1 s reconnect delays, so later
        // connections get both replayed and live events.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    ids
}

/// How `/chat` renders one message, as the browser serializes it.
fn message_html(name: &str, text: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        r#"<p class="message"><b>{}: </b>{}</p>"#,
        escape(name),
        escape(text)
    )
}

/// Two users in one headless Chromium (two fresh contexts) type and send
/// through the `/chat` form and both pages show both messages, in order,
/// escaped as text, with the head count at 2.
#[tokio::test]
async fn chromium_chat_users_see_each_other() {
    require_chromium();
    let addr = serve(controllers_example::app()).await;
    let base = format!("http://{addr}");
    let room = unique_name("room");
    let (name_a, text_a) = ("Alice", "hello from A");
    let (name_b, text_b) = ("Bob", r#"2 < 3 & "quoted" <b>not bold</b>"#);
    let out = run_node(
        "chat.mjs",
        &[&base, &room, name_a, text_a, name_b, text_b],
        Duration::from_secs(90),
    )
    .await;

    let messages = [message_html(name_a, text_a), message_html(name_b, text_b)]
        .map(|html| json_string(&html))
        .join(",");
    let page = format!(r#"{{"here":"(2 here)","messages":[{messages}],"text":""}}"#);
    assert_eq!(out, format!(r#"{{"a":{page},"b":{page}}}"#));
}

/// Cut three times while 60 events are published over HTTP, the
/// `eventsource` client resumes `/hub` with `Last-Event-ID` and gets every
/// `message` exactly once, in order, with the ids the hub gave them.
#[tokio::test]
async fn eventsource_resumes_hub_channel_after_cuts() {
    const COUNT: usize = 60;
    let addr = serve(controllers_example::app()).await;
    let cuts = vec![
        Cut {
            events: 8,
            mid_event: false,
        },
        Cut {
            events: 10,
            mid_event: true,
        },
        Cut {
            events: 12,
            mid_event: false,
        },
    ];
    let (proxy, wire_ids) = cutting_proxy(addr, cuts).await;
    let base = format!("http://{proxy}");
    let channel = unique_name("resume");
    let count = COUNT.to_string();
    let args = [base.as_str(), &channel, &count];
    let (out, published) = tokio::join!(
        run_node("hub-resume.mjs", &args, Duration::from_secs(40)),
        publish_messages(addr, &channel, COUNT),
    );

    assert_eq!(json_field(&out, "done"), "\"reached\"", "{out}");
    let messages = json_items(json_field(&out, "messages"));
    let expected: Vec<String> = (1..=COUNT).map(|i| format!("msg {i}")).collect();
    assert_eq!(messages, expected, "{out}");
    let ids = json_items(json_field(&out, "ids"));
    assert_eq!(ids, published, "{out}");
    assert_eq!(json_field(&out, "errors"), "3", "{out}");

    // Four requests: the first without Last-Event-ID, each reconnect with a
    // later one; the client reports the same headers the proxy saw.
    let wire: Vec<Option<String>> = wire_ids.lock().unwrap().clone();
    assert_eq!(wire.len(), 4, "proxy saw {wire:?}: {out}");
    assert_eq!(wire[0], None, "{out}");
    let resumed: Vec<rill::broker::Position> = wire[1..]
        .iter()
        .map(|id| {
            id.as_deref()
                .expect("reconnect without Last-Event-ID")
                .parse()
                .expect("an <epoch>-<offset> id")
        })
        .collect();
    assert!(
        resumed
            .windows(2)
            .all(|w| w[0].epoch() == w[1].epoch() && w[0].offset() < w[1].offset()),
        "{wire:?}"
    );
    let client_ids = json_items(json_field(&out, "lastEventIds"));
    let wire_text: Vec<String> = wire
        .iter()
        .map(|id| id.clone().unwrap_or_default())
        .collect();
    assert_eq!(client_ids, wire_text, "{out}");
}
