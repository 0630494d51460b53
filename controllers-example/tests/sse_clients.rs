//! The SSE endpoints read by real clients: the npm `eventsource` package in
//! node and headless Chromium's native `EventSource`, both driven by the
//! scripts in `tests/js/`. The app is served in-process on 127.0.0.1:0; each
//! script prints one JSON line that is asserted here.
//!
//! Needs node, `tests/js/node_modules` and `/usr/bin/chromium`: run
//! `bash scripts/setup-test-deps.sh` (`scripts/test.sh` does).

mod common;

use common::*;
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

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
/// escaped as text, with the head count at 2 — over rill's client on
/// WebSocket (the page's default) and over `EventSource`.
async fn chat_users_see_each_other(transport: &str) {
    require_chromium();
    let addr = serve(controllers_example::app()).await;
    let base = format!("http://{addr}");
    let room = unique_name("room");
    let (name_a, text_a) = ("Alice", "hello from A");
    let (name_b, text_b) = ("Bob", r#"2 < 3 & "quoted" <b>not bold</b>"#);
    let out = run_node(
        "chat.mjs",
        &[&base, &room, name_a, text_a, name_b, text_b, transport],
        Duration::from_secs(90),
    )
    .await;

    let messages = [message_html(name_a, text_a), message_html(name_b, text_b)]
        .map(|html| json_string(&html))
        .join(",");
    let page = format!(
        r#"{{"here":"(2 here)","messages":[{messages}],"text":"","transport":"{transport}"}}"#
    );
    assert_eq!(out, format!(r#"{{"a":{page},"b":{page}}}"#));
}

#[tokio::test]
async fn chromium_chat_users_see_each_other_over_websocket() {
    chat_users_see_each_other("websocket").await;
}

#[tokio::test]
async fn chromium_chat_users_see_each_other_over_sse() {
    chat_users_see_each_other("sse").await;
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
