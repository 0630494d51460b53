//! The example app, served on 127.0.0.1:0 from the same `app()` as main.rs,
//! and the real binary started the way the README says.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

async fn serve() -> SocketAddr {
    let server = rill::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(controllers_example::app()));
    addr
}

async fn get(addr: SocketAddr, path: &str) -> http::Response<hyper::body::Incoming> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get(path)
        .header("host", "example")
        .body(Empty::<Bytes>::new())
        .unwrap();
    tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn text(addr: SocketAddr, path: &str) -> String {
    let body = get(addr, path).await.into_body().collect().await.unwrap();
    String::from_utf8(body.to_bytes().to_vec()).unwrap()
}

async fn stats(addr: SocketAddr) -> (u64, u64) {
    let json = text(addr, "/stats").await;
    let field = |name: &str| -> u64 {
        let start = json.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
        json[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (field("live_active"), field("feed_cleanups"))
}

/// `/numbers` is text/plain, body 1..10 one line each.
#[tokio::test]
async fn numbers_body_and_type() {
    let addr = serve().await;
    let response = get(addr, "/numbers").await;
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
}

/// `/feed` sends a line about every 100 ms; closing the client runs the
/// clean-up once and `live_active` returns to 0.
#[tokio::test]
async fn feed_streams_and_cleans_up_on_disconnect() {
    let addr = serve().await;
    assert_eq!(stats(addr).await, (0, 0));
    let mut body = get(addr, "/feed").await.into_body();
    let start = Instant::now();
    for n in 1..=4 {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), format!("line {n}\n"));
    }
    // Four ticks of an interval that fires at once: at least 300 ms.
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert_eq!(stats(addr).await.0, 1);
    drop(body); // the client goes away
    let deadline = Instant::now() + WAIT;
    loop {
        if stats(addr).await == (0, 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "clean-up did not run: {:?}",
            stats(addr).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/` is an HTML page that reads the live demos with fetch.
#[tokio::test]
async fn index_page_uses_fetch_reader() {
    let addr = serve().await;
    let page = text(addr, "/").await;
    assert!(page.contains("<title>rill demos</title>"));
    assert!(page.contains("getReader()"));
    assert!(page.contains("fetch(url"));
}

/// The binary prints exactly `listening on http://IP:PORT` first, serves, and
/// exits cleanly on SIGINT.
#[test]
fn binary_prints_address_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_controllers-example"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let addr: SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime.block_on(text(addr, "/numbers"));
    assert_eq!(body, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");

    // Ctrl-C: graceful shutdown, exit code 0. Only our own child, by PID.
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("example did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

async fn read_until(body: &mut hyper::body::Incoming, want: usize) -> String {
    let mut text = String::new();
    while text.matches("\n\n").count() < want {
        let frame = tokio::time::timeout(WAIT, body.frame()).await.unwrap();
        match frame {
            Some(frame) => {
                text.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap())
            }
            None => break,
        }
    }
    text
}

/// `/events` is exactly the seed's frames with `retry: 5000` as default,
/// then the stream ends.
#[tokio::test]
async fn events_frames_are_exact() {
    let addr = serve().await;
    let response = get(addr, "/events").await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "event: greeting\nretry: 5000\ndata: hello\n\n\
         retry: 5000\ndata: world\n\n\
         retry: 5000\ndata: tick\n\n\
         retry: 1000\ndata: pong\n\n\
         retry: 5000\ndata: line one\ndata: line two\n\n"
    );
}

/// `/ticker` numbers its ticks 1, 2, 3 … and continues at K+1 after
/// `Last-Event-ID: K`.
#[tokio::test]
async fn ticker_numbers_and_resumes() {
    let addr = serve().await;
    let mut body = get(addr, "/ticker").await.into_body();
    assert_eq!(
        read_until(&mut body, 2).await,
        "id: 1\nretry: 500\ndata: tick 1\n\nid: 2\nretry: 500\ndata: tick 2\n\n"
    );
    drop(body);

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get("/ticker")
        .header("host", "example")
        .header("last-event-id", "41")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut body = sender.send_request(request).await.unwrap().into_body();
    assert_eq!(
        read_until(&mut body, 1).await,
        "id: 42\nretry: 500\ndata: tick 42\n\n"
    );
}

/// `/llm` streams each word of the paragraph as a `token` event, then `done`.
#[tokio::test]
async fn llm_streams_tokens_then_done() {
    let addr = serve().await;
    let body = get(addr, "/llm")
        .await
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let text = std::str::from_utf8(&body).unwrap();
    let mut expected: String = controllers_example::controllers::PARAGRAPH
        .split(' ')
        .map(|word| format!("event: token\ndata: {word}\n\n"))
        .collect();
    expected.push_str("event: done\ndata:\n\n");
    assert_eq!(text, expected);
}

/// `/chat` is a page that posts to `/hub/broadcast` and listens on `/hub`;
/// a subscriber asking for presence gets everyone first (itself), and a
/// broadcast with the hub's id, `<epoch>-1`.
#[tokio::test]
async fn chat_page_and_hub_round_trip() {
    let addr = serve().await;
    let page = text(addr, "/chat").await;
    assert!(page.contains("new EventSource(\"/hub?presence=1&channel=\""));
    assert!(page.contains("fetch(\"/hub/broadcast\""));

    let mut body = get(addr, "/hub?presence=1&channel=test-room")
        .await
        .into_body();
    let first = read_until(&mut body, 2).await;
    let (retry, presence) = first.split_at("retry: 1000\n\n".len());
    assert_eq!(retry, "retry: 1000\n\n");
    assert!(
        presence
            .starts_with("event: presence\ndata: {\"channel\":\"test-room\",\"members\":[{\"id\":"),
        "{presence}"
    );
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let message =
        r#"{"channel":"test-room","event":"message","data":"{\"name\":\"ann\",\"text\":\"hi\"}"}"#;
    let request = http::Request::post("/hub/broadcast")
        .header("host", "example")
        .body(http_body_util::Full::new(Bytes::from(message)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    // The subscriber's own join comes as a diff at the next presence tick,
    // before or after the message.
    let text = read_until(&mut body, 2).await;
    let message = text
        .split("\n\n")
        .find(|frame| frame.starts_with("event: message"))
        .unwrap_or_else(|| panic!("no message in {text:?}"));
    let (head, data) = message.split_once("\ndata: ").unwrap();
    let id = head.strip_prefix("event: message\nid: ").unwrap();
    let position: rill::broker::Position = id.parse().unwrap();
    assert_eq!(position.offset(), 1, "{message}");
    assert_eq!(data, "{\"name\":\"ann\",\"text\":\"hi\"}");
}
