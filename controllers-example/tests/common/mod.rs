//! What the client tests share: the app served on 127.0.0.1:0, node
//! scripts from `tests/js` run with a time limit, a raw HTTP/1.1 request,
//! the hub's HTTP endpoints, and the JSON bits the scripts print; in
//! [`nodes`], example processes on a redis-server of the test's own.
#![allow(dead_code)]

pub mod nodes;

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::Command,
};

pub const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/js");
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const SETUP: &str = "run `bash scripts/setup-test-deps.sh` first";

/// Moves the whole chunks of a chunked body from `raw` to `text`, leaving a
/// partial one in `raw`.
pub fn dechunk(raw: &mut Vec<u8>, text: &mut String) {
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16)
            .expect("a chunk size");
        if raw.len() < line_end + 2 + size + 2 {
            return;
        }
        let start = line_end + 2;
        text.push_str(&String::from_utf8_lossy(&raw[start..start + size]));
        raw.drain(..start + size + 2);
    }
}

pub async fn serve(router: rill::Router) -> SocketAddr {
    let server = rill::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(router));
    addr
}

/// Fails (never skips) when the environment lacks what the scripts need.
pub fn require_node_deps() {
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

pub fn require_chromium() {
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
pub async fn run_node(script: &str, args: &[&str], limit: Duration) -> String {
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

pub async fn read_all(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    // The child's exit closes the pipe; a read error only loses diagnostics.
    let _ = pipe.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The raw JSON text of `"name":…` in `json`, up to the matching `]` for an
/// array or the next `,`/`}` otherwise; enough for the scripts' flat output.
pub fn json_field<'a>(json: &'a str, name: &str) -> &'a str {
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
pub fn json_items(array: &str) -> Vec<String> {
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
pub fn json_string(text: &str) -> String {
    assert!(!text.chars().any(char::is_control), "{text:?}");
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A name no other test run uses, for rooms and channels.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One HTTP/1.1 request with `Connection: close` straight to `addr`: the
/// status code and the raw body (chunk framing left in, if any).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
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
pub async fn wait_for_subscriber(addr: SocketAddr, channel: &str) {
    let wanted = format!("{}:1", json_string(channel));
    let mut last = String::new();
    for _ in 0..500 {
        let (status, body) = http(addr, "GET", "/hub/stats?local=1", "").await;
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
pub async fn publish_messages(addr: SocketAddr, channel: &str, count: usize) -> Vec<String> {
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

/// Fails (never skips) when the cable clients are not installed.
pub fn require_cable_clients() {
    require_node_deps();
    for package in [
        "@rails/actioncable",
        "@anycable/web",
        "@anycable/core",
        "ws",
    ] {
        let dir = std::path::Path::new(JS_DIR)
            .join("node_modules")
            .join(package);
        assert!(dir.is_dir(), "{} is missing: {SETUP}", dir.display());
    }
}
