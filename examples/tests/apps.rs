//! The example apps as their users run them: each binary started on a free
//! loopback port, driven over real HTTP, and stopped with a real SIGTERM.
//!
//! The axum-embedded app (axum router, tower-http TraceLayer and
//! CompressionLayer, rill inside the handlers) is checked for disconnect
//! clean-up, graceful shutdown with a client that never leaves, the goodbye
//! event, the hub reached from an axum handler, HEAD, compression and the
//! request span in the writer's logs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// A running example binary; killed (by its PID) if a test fails midway.
struct App {
    child: Child,
    addr: SocketAddr,
    /// Kept open: the app may print again when it stops.
    _stdout: BufReader<ChildStdout>,
    /// What the app logs, drained by a thread so that it never blocks.
    logs: Option<std::thread::JoinHandle<String>>,
}

impl App {
    /// Starts `bin` on 127.0.0.1:0 and reads the address it printed.
    fn start(bin: &str) -> App {
        let mut child = Command::new(bin)
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let mut stderr = child.stderr.take().expect("stderr");
        let logs = std::thread::spawn(move || {
            let mut logs = String::new();
            let _ = stderr.read_to_string(&mut logs);
            logs
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the app prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        App {
            child,
            addr,
            _stdout: stdout,
            logs: Some(logs),
        }
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("a pid")
    }

    /// Sends SIGTERM, as systemd or Kubernetes would.
    fn terminate(&self) {
        // SAFETY: kill(2) on the PID of a child this test started and has
        // not reaped yet; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
    }

    /// Waits (bounded) for the process to exit; its exit status and the
    /// logs it wrote to stderr.
    async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(start.elapsed() < WAIT, "the app did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let logs = self.logs.take().and_then(|logs| logs.join().ok());
        (status, logs.unwrap_or_default())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One request on a fresh connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<Incoming> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("answered in time")
        .expect("answered")
}

async fn text(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let json = [("content-type", "application/json")];
    let response = request(addr, method, path, &json, body).await;
    let status = response.status().as_u16();
    let bytes = tokio::time::timeout(WAIT, response.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads an event stream until `until` appears (bounded); what was read.
async fn read_until(body: &mut Incoming, until: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(until) {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in time; got {seen:?}"));
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
            other => panic!("stream ended before {until:?}: {other:?}; got {seen:?}"),
        }
    }
    seen
}

/// Whether the body ends cleanly (no error) within the bound.
async fn ends_cleanly(body: &mut Incoming) -> bool {
    loop {
        match tokio::time::timeout(WAIT, body.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

async fn live_streams(addr: SocketAddr) -> usize {
    let (_, health) = text(addr, "GET", "/health", "").await;
    health
        .trim()
        .strip_prefix("ok, ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected health {health:?}"))
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Hub subscribers from `/hub/stats` (rill's own endpoint, nested in axum).
async fn hub_connections(addr: SocketAddr) -> u64 {
    let (status, json) = text(addr, "GET", "/hub/stats", "").await;
    assert_eq!(status, 200, "{json}");
    let stats: serde_json::Value = serde_json::from_str(&json).expect("stats JSON");
    stats["connections"].as_u64().expect("connections")
}

/// A live stream and a hub subscription opened through axum handlers are
/// both cleaned up when their clients leave.
#[tokio::test]
async fn axum_embedded_cleans_up_after_disconnects() {
    let app = App::start(env!("CARGO_BIN_EXE_axum_embedded"));
    let mut prices = request(app.addr, "GET", "/prices", &[], "")
        .await
        .into_body();
    read_until(&mut prices, "event: price").await;
    let room = request(app.addr, "GET", "/rooms/cleanup/events", &[], "")
        .await
        .into_body();
    wait_until("hub subscriber counted", || async {
        hub_connections(app.addr).await == 1
    })
    .await;
    assert_eq!(live_streams(app.addr).await, 2);
    drop(prices);
    drop(room);
    wait_until("streams cleaned up", || async {
        live_streams(app.addr).await == 0
    })
    .await;
    assert_eq!(hub_connections(app.addr).await, 0);
}

/// SIGTERM with two clients on `/prices`: one reading, one that sent its
/// request and never reads nor leaves. The reader gets the goodbye event
/// and a clean end; the server stops within the bound anyway; the writer's
/// logs carried the TraceLayer's request span.
#[tokio::test]
async fn axum_embedded_says_goodbye_and_stops_with_a_client_that_never_leaves() {
    let app = App::start(env!("CARGO_BIN_EXE_axum_embedded"));
    let mut reader = request(app.addr, "GET", "/prices", &[], "")
        .await
        .into_body();
    read_until(&mut reader, "event: price").await;
    let mut stayer = TcpStream::connect(app.addr).await.expect("connect");
    stayer
        .write_all(b"GET /prices HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .expect("send");
    wait_until("both streams open", || async {
        live_streams(app.addr).await == 2
    })
    .await;

    app.terminate();
    let rest = read_until(&mut reader, "event: bye").await;
    assert!(rest.contains("data: server going away\n\n"), "{rest:?}");
    assert!(ends_cleanly(&mut reader).await, "the body ends cleanly");
    let (status, logs) = app.exit().await;
    assert!(status.success(), "{status:?}\n{logs}");
    drop(stayer);

    assert!(logs.contains("SIGTERM received"), "{logs}");
    let tick = logs
        .lines()
        .find(|line| line.contains(": tick"))
        .unwrap_or_else(|| panic!("no tick logged:\n{logs}"));
    assert!(
        tick.contains("request{method=GET uri=/prices"),
        "the writer's log is outside the request span: {tick}"
    );
}

/// The hub from axum handlers: an axum `Json` POST publishes, a
/// subscriber gets it, a reconnect with `Last-Event-ID` gets what it missed
/// (rill's history), and a body that does not fit is refused by axum.
#[tokio::test]
async fn axum_embedded_reaches_the_hub_from_axum_handlers() {
    let app = App::start(env!("CARGO_BIN_EXE_axum_embedded"));
    let mut room = request(app.addr, "GET", "/rooms/lobby/events", &[], "")
        .await
        .into_body();
    wait_until("subscribed", || async {
        hub_connections(app.addr).await == 1
    })
    .await;
    let (status, answer) = text(
        app.addr,
        "POST",
        "/rooms/lobby",
        r#"{"user":"ann","text":"hi"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let id = serde_json::from_str::<serde_json::Value>(&answer).expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let seen = read_until(&mut room, r#""text":"hi"}"#).await;
    assert_eq!(
        seen,
        format!("event: message\nid: {id}\ndata: {{\"user\":\"ann\",\"text\":\"hi\"}}\n\n")
    );
    drop(room);

    let (status, _) = text(
        app.addr,
        "POST",
        "/rooms/lobby",
        r#"{"user":"bob","text":"missed"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let mut back = request(
        app.addr,
        "GET",
        "/rooms/lobby/events",
        &[("last-event-id", &id)],
        "",
    )
    .await
    .into_body();
    let missed = read_until(&mut back, "missed").await;
    assert!(!missed.contains(r#""text":"hi""#), "{missed:?}");

    let (status, _) = text(app.addr, "POST", "/rooms/lobby", r#"{"user":"bob"}"#).await;
    assert_eq!(status, 422);
}

/// HEAD through axum answers the stream's headers and starts no writer;
/// behind the CompressionLayer an event stream is not gzipped and its
/// events arrive one by one.
#[tokio::test]
async fn axum_embedded_head_and_compression() {
    let app = App::start(env!("CARGO_BIN_EXE_axum_embedded"));
    let head = request(app.addr, "HEAD", "/prices", &[], "").await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/event-stream");
    assert_eq!(live_streams(app.addr).await, 0, "HEAD started a stream");

    let gzip = [("accept-encoding", "gzip")];
    let response = request(app.addr, "GET", "/prices", &gzip, "").await;
    assert!(response.headers().get("content-encoding").is_none());
    let mut body = response.into_body();
    let first = read_until(&mut body, "event: price").await;
    assert!(
        first.starts_with("event: price\nid: 1\ndata: "),
        "{first:?}"
    );
    read_until(&mut body, "id: 2\n").await;

    let (status, _) = text(app.addr, "GET", "/health", "").await;
    assert_eq!(status, 200);
}

/// The standalone app: rooms with exact resume, typed JSON rejections, the
/// hub's stats as JSON, and a clean stop on SIGTERM.
#[tokio::test]
async fn standalone_rooms_resume_and_reject_bad_json() {
    let app = App::start(env!("CARGO_BIN_EXE_standalone"));
    let (status, answer) = text(
        app.addr,
        "POST",
        "/rooms/r1",
        r#"{"user":"ann","text":"one"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let first: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let first = first["id"].as_str().expect("id").to_owned();
    text(
        app.addr,
        "POST",
        "/rooms/r1",
        r#"{"user":"ann","text":"two"}"#,
    )
    .await;
    let mut body = request(
        app.addr,
        "GET",
        "/rooms/r1/events",
        &[("last-event-id", &first)],
        "",
    )
    .await
    .into_body();
    let seen = read_until(&mut body, "two").await;
    assert!(!seen.contains("one"), "{seen:?}");

    let plain = request(
        app.addr,
        "POST",
        "/rooms/r1",
        &[("content-type", "text/plain")],
        "x",
    )
    .await;
    assert_eq!(plain.status(), 415);
    assert_eq!(text(app.addr, "POST", "/rooms/r1", "{").await.0, 400);
    assert_eq!(
        text(app.addr, "POST", "/rooms/r1", r#"{"user":1}"#).await.0,
        422
    );
    let (status, stats) = text(app.addr, "GET", "/stats", "").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    assert_eq!(stats["channels"]["r1"], 1);

    app.terminate();
    drop(body);
    let (status, logs) = app.exit().await;
    assert!(status.success(), "{status:?}\n{logs}");
}

/// The graceful app: SIGTERM → the clock's client gets its goodbye and a
/// clean end, and the server stops as soon as the writer returned.
#[tokio::test]
async fn graceful_app_says_goodbye() {
    let app = App::start(env!("CARGO_BIN_EXE_graceful"));
    let mut body = request(app.addr, "GET", "/clock", &[], "")
        .await
        .into_body();
    read_until(&mut body, "event: tick").await;
    app.terminate();
    let rest = read_until(&mut body, "event: bye").await;
    assert!(
        rest.ends_with("event: bye\ndata: server going away\n\n"),
        "{rest:?}"
    );
    assert!(ends_cleanly(&mut body).await);
    let (status, _) = app.exit().await;
    assert!(status.success());
}

/// The axum-only twins are real programs: they start and stream.
#[tokio::test]
async fn axum_only_twins_serve() {
    for (bin, path) in [
        (env!("CARGO_BIN_EXE_axum_only_standalone"), "/prices"),
        (env!("CARGO_BIN_EXE_axum_only_embedded"), "/prices"),
        (env!("CARGO_BIN_EXE_axum_only_graceful"), "/clock"),
    ] {
        let app = App::start(bin);
        let mut body = request(app.addr, "GET", path, &[], "").await.into_body();
        read_until(&mut body, "data: ").await;
        drop(app);
    }
}
