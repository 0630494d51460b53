//! The example's WebSocket endpoints read by real clients: the npm `ws`
//! package speaking the wire format by hand, and rill's own client
//! (`/rill.js`) in Node (with `ws` as `globalThis.WebSocket`) and in
//! headless Chromium, running the `/ws` protocol (`tests/js/ws-*.mjs`).
//! A proxy that cuts connections checks that the client resumes hub
//! channels exactly.
//!
//! Needs node, `tests/js/node_modules` and `/usr/bin/chromium`: run
//! `bash scripts/setup-test-deps.sh` (`scripts/test.sh` does).

mod common;

use common::*;
use serde_json::{json, Value};
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the scenario (`tests/js/ws-scenario.mjs`) must report, whichever
/// runtime ran it.
fn assert_scenario(result: &Value) {
    let words: Vec<Value> = controllers_example::controllers::PARAGRAPH
        .split(' ')
        .map(|w| Value::from(w.to_owned()))
        .collect();
    assert_eq!(result["states"], json!(["open", "closed"]), "{result}");
    assert_eq!(result["finalState"], "closed");
    assert_eq!(result["echo"], json!({"count": 10000, "inOrder": true}));
    assert_eq!(result["tokens"], Value::Array(words));
    assert_eq!(result["doneData"], "absent");
    assert_eq!(result["tickSeqs"], json!([1, 2, 3, 4, 5]));
    assert_eq!(result["ticksHavePrices"], true);
    assert_eq!(result["lateTicks"], 0, "ticks after stream-stop: {result}");
    // The first connection of a fresh app is 1; so is its first order.
    assert_eq!(
        result["ack"],
        json!({"symbol": "BTC", "qty": 2, "side": "buy", "id": 1})
    );
    assert_eq!(
        result["trade"],
        json!({"symbol": "BTC", "qty": 2, "side": "buy", "by": 1})
    );
}

#[tokio::test]
async fn npm_ws_speaks_the_wire_format() {
    let addr = serve(controllers_example::app()).await;
    let out = run_node(
        "ws-raw.mjs",
        &[&format!("ws://{addr}")],
        Duration::from_secs(60),
    )
    .await;
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["count"], 10000, "{result}");
    assert_eq!(result["inOrder"], true);
    assert_eq!(result["batched"], true, "10,000 events in as many messages");
    assert_eq!(result["closeCode"], 1000);
    let hello: String = "héllo ☃".bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        result["echo"],
        json!([{"binary": false, "hex": hello}, {"binary": true, "hex": "000102ff"}])
    );
}

#[tokio::test]
async fn the_project_client_runs_the_protocol_in_node() {
    let addr = serve(controllers_example::app()).await;
    let out = run_node(
        "ws-client.mjs",
        &[&format!("http://{addr}")],
        Duration::from_secs(90),
    )
    .await;
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_scenario(&result);
}

const SCENARIO: &str = include_str!("../../tests/js/ws-scenario.mjs");

/// A page that imports the served client and the scenario, runs it, and
/// leaves the result in `window.rillResult`.
const WS_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>rill WebSocket test</title></head>
<body data-done="">
<script type="module">
import { connect } from '/rill.js';
import { runScenario } from '/test/ws-scenario.mjs';
try {
  window.rillResult = await runScenario(connect, '/ws');
  document.body.dataset.done = 'ok';
} catch (error) {
  window.rillResult = { error: String(error) };
  document.body.dataset.done = 'error';
}
</script>
</body></html>
"#;

#[tokio::test]
async fn the_project_client_runs_the_protocol_in_chromium() {
    require_chromium();
    let app = controllers_example::app()
        .get("/test/ws-page", |_ctx: rill::Context| async {
            rill::Response::html(WS_PAGE)
        })
        .get("/test/ws-scenario.mjs", |_ctx: rill::Context| async {
            rill::Response::new(http::StatusCode::OK, SCENARIO).with_header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/javascript"),
            )
        });
    let addr = serve(app).await;
    let url = format!("http://{addr}/test/ws-page");
    let out = run_node(
        "chromium-page.mjs",
        &[&url, "60000"],
        Duration::from_secs(120),
    )
    .await;
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["done"], "ok", "{page}");
    assert_scenario(&page["result"]);
}

/// A TCP proxy on 127.0.0.1:0 in front of `upstream` that drops its n-th
/// connection once it has forwarded `cuts[n]` channel messages to the
/// client (whole WebSocket frames; with `mid_frame`, also half of the next
/// frame), and passes later connections through.
async fn cutting_ws_proxy(upstream: SocketAddr, cuts: Vec<(usize, bool)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cuts = Arc::new(Mutex::new(cuts.into_iter()));
    tokio::spawn(async move {
        // Bounded: a client stuck reconnecting fails the test.
        for _ in 0..50 {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let cut = cuts.lock().unwrap().next();
            tokio::spawn(proxy(client, upstream, cut));
        }
    });
    addr
}

async fn proxy(client: TcpStream, upstream: SocketAddr, cut: Option<(usize, bool)>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream_pump = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    // Server to client: the HTTP head, then frames, counted.
    let mut buf = Vec::new();
    let mut head_done = false;
    let mut forwarded = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(30), server_read.read(&mut chunk)).await
        else {
            break;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if !head_done {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if client_write.write_all(&buf[..end + 4]).await.is_err() {
                break;
            }
            buf.drain(..end + 4);
            head_done = true;
        }
        while let Some(len) = frame_len(&buf) {
            if let Some((limit, mid_frame)) = cut {
                if forwarded >= limit {
                    if mid_frame {
                        let _ = client_write.write_all(&buf[..len / 2]).await;
                    }
                    upstream_pump.abort();
                    return;
                }
            }
            let frame: Vec<u8> = buf.drain(..len).collect();
            forwarded += count_messages(&frame);
            if client_write.write_all(&frame).await.is_err() {
                upstream_pump.abort();
                return;
            }
        }
    }
    upstream_pump.abort();
}

/// The length of the whole unmasked frame at the start of `buf`, if it is
/// all there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 2 {
        return None;
    }
    let (len, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buf.len() >= header + len).then_some(header + len)
}

/// Channel messages (lines with an id) in a frame.
fn count_messages(frame: &[u8]) -> usize {
    let text = String::from_utf8_lossy(frame);
    text.matches("\"id\":\"").count()
}

/// Cut three times while 60 messages are published over HTTP, rill's client
/// reconnects by itself and resumes the channel from its last id: every
/// message exactly once, in order, with the ids SSE subscribers get.
#[tokio::test]
async fn the_project_client_resumes_channels_after_cuts() {
    const COUNT: usize = 60;
    let addr = serve(controllers_example::app()).await;
    let proxy = cutting_ws_proxy(addr, vec![(8, false), (10, true), (12, false)]).await;
    let channel = unique_name("ws-resume");
    let count = COUNT.to_string();
    let base = format!("http://{addr}");
    let ws_url = format!("ws://{proxy}/ws");
    let args = [base.as_str(), &ws_url, &channel, &count];
    let (out, published) = tokio::join!(
        run_node("ws-resume.mjs", &args, Duration::from_secs(60)),
        publish_messages(addr, &channel, COUNT),
    );
    let result: Value = serde_json::from_str(&out).unwrap();
    let expected: Vec<Value> = (1..=COUNT).map(|i| json!(format!("msg {i}"))).collect();
    assert_eq!(result["messages"], Value::Array(expected), "{result}");
    let ids: Vec<String> = result["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, published);
    // Published without an event name: SSE calls it `message`, the
    // WebSocket meta says none.
    assert_eq!(result["events"], json!([null]));
    assert!(
        result["reconnects"].as_u64().unwrap() >= 3,
        "the proxy cut three times: {result}"
    );
}

/// The index page's WebSocket section, clicked in headless Chromium: echo,
/// the ticker started and stopped, the token stream.
#[tokio::test]
async fn the_index_page_websocket_section_works_in_chromium() {
    require_chromium();
    let addr = serve(controllers_example::app()).await;
    let out = run_node(
        "index-ws.mjs",
        &[&format!("http://{addr}")],
        Duration::from_secs(90),
    )
    .await;
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        result,
        json!({
            "state": "open",
            "echo": r#"{"text":"hello over WebSocket"}"#,
            "ticksStartAtOne": true,
            "ticksInOrder": true,
            "ticksAfterStop": 0,
            "tokens": controllers_example::controllers::PARAGRAPH,
        })
    );
}
