//! The server's limits on a real socket: header-read and idle deadlines for
//! HTTP/1.1 and HTTP/2, request-body timeouts, the connection cap, and
//! malformed requests answered with the right status.

mod support;

use rill::{Context, Response, Router};
use std::time::Duration;
use support::{start_with, RawResponse, WAIT};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

async fn hello(_ctx: Context) -> Response {
    Response::text("hello\n")
}

async fn echo_len(ctx: Context) -> Response {
    Response::text(format!("{}\n", ctx.body().len()))
}

/// An SSE stream that sends one event, then waits for the client to leave.
async fn quiet_stream(ctx: Context) -> Response {
    ctx.sse(|_ctx, mut sse| async move {
        sse.write("hi").await?;
        sse.disconnected().await;
        Ok(())
    })
}

fn app() -> Router {
    Router::new()
        .get("/hello", hello)
        .post("/echo", echo_len)
        .get("/quiet", quiet_stream)
        .body_read_timeout(Duration::from_millis(600))
        .body_idle_timeout(Duration::from_millis(300))
}

/// Reads until the peer closes (bounded by [`WAIT`]); panics if it does not.
async fn read_until_closed(conn: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    match tokio::time::timeout(WAIT, conn.read_to_end(&mut buf)).await {
        Ok(_) => buf,
        Err(_) => panic!("connection still open; read so far: {buf:?}"),
    }
}

/// The frame types in a stream of HTTP/2 frames.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

const GOAWAY: u8 = 7;

/// A kept-alive HTTP/1.1 connection with no next request is closed quietly
/// at the idle timeout.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed_quietly() {
    let server = start_with(app(), |s| s.idle_timeout(Duration::from_millis(300))).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.ends_with("hello\n"),
        "nothing after the response: {text}"
    );
}

/// The first byte of a later request on a kept-alive connection starts the
/// header deadline: a head trickled past it gets 408.
#[tokio::test]
async fn second_request_head_has_its_own_deadline() {
    let server = start_with(app(), |s| {
        s.header_read_timeout(Duration::from_millis(300))
            .idle_timeout(Duration::from_secs(10))
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 256];
    let n = conn.read(&mut first).await.unwrap();
    assert!(first[..n].ends_with(b"hello\n"));
    // Well within the idle timeout, then a head that never ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    conn.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
    let started = tokio::time::Instant::now();
    let text = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A streaming response is a request in progress: the idle timeout does not
/// cut it.
#[tokio::test]
async fn idle_timeout_spares_open_streams() {
    let server = start_with(app(), |s| s.idle_timeout(Duration::from_millis(200))).await;
    let mut stream = server.get("/quiet").await;
    assert_eq!(stream.status, 200);
    let first = stream.next_chunk().await.unwrap().unwrap();
    assert_eq!(first, b"data: hi\n\n");
    // Several idle timeouts pass; the stream is still open.
    let more = tokio::time::timeout(Duration::from_millis(800), stream.next_chunk()).await;
    assert!(more.is_err(), "stream ended: {more:?}");
}

/// HTTP/2: a client that sends half the preface, only the preface, or a
/// HEADERS frame that never ends is closed at the header-read timeout.
#[tokio::test]
async fn stalled_http2_clients_are_closed() {
    let server = start_with(app(), |s| s.header_read_timeout(Duration::from_millis(300))).await;
    // HEADERS on stream 1 without END_HEADERS: a header block that never ends.
    let unfinished_headers: &[u8] = &[0, 0, 1, 1, 0x1, 0, 0, 0, 1, 0x82];
    let openings: [&[&[u8]]; 3] = [
        &[&H2_PREFACE[..12]],
        &[H2_PREFACE, H2_SETTINGS],
        &[H2_PREFACE, H2_SETTINGS, unfinished_headers],
    ];
    for opening in openings {
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        for part in opening {
            conn.write_all(part).await.unwrap();
        }
        let started = tokio::time::Instant::now();
        let _ = read_until_closed(&mut conn).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "closed only after {:?}",
            started.elapsed()
        );
    }
}

/// HTTP/2: a connection whose streams are all done is sent GOAWAY at the
/// idle timeout, then closed.
#[tokio::test]
async fn idle_http2_connection_gets_goaway() {
    // The header-read timeout bounds the grace after GOAWAY too (this raw
    // client never acknowledges the server's PING).
    let server = start_with(app(), |s| {
        s.idle_timeout(Duration::from_millis(300))
            .header_read_timeout(Duration::from_millis(500))
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(H2_PREFACE).await.unwrap();
    conn.write_all(H2_SETTINGS).await.unwrap();
    // HEADERS, END_STREAM | END_HEADERS, stream 1: GET http://t/hello
    // (HPACK: :method GET, :scheme http, :path literal, :authority literal).
    let mut block = vec![0x82, 0x86, 0x04, 6];
    block.extend_from_slice(b"/hello");
    block.extend_from_slice(&[0x01, 1, b't']);
    let mut headers = vec![0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1];
    headers.extend_from_slice(&block);
    conn.write_all(&headers).await.unwrap();
    let bytes = read_until_closed(&mut conn).await;
    let types = h2_frame_types(&bytes);
    // SETTINGS, SETTINGS ack, HEADERS, DATA …, then GOAWAY.
    assert!(types.contains(&1), "no response HEADERS: {types:?}");
    assert!(types.contains(&GOAWAY), "no GOAWAY: {types:?}");
}

/// A request body that stalls gets 408 at the idle timeout, and the
/// connection is closed.
#[tokio::test]
async fn stalled_body_gets_408() {
    let server = start_with(app(), |s| s).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let text = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(text.contains("connection: close\r\n"), "{text}");
}

/// The server's body timeouts apply where the router sets none; the
/// router's own win.
#[tokio::test]
async fn server_body_timeouts_apply_unless_the_router_sets_its_own() {
    let plain = Router::new().post("/echo", echo_len);
    let server = start_with(plain, |s| {
        s.body_idle_timeout(Duration::from_millis(200))
            .body_read_timeout(Duration::from_secs(20))
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let text = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // app() sets 300 ms idle on the router: it wins over the server's 20 s.
    let server = start_with(app(), |s| s.body_idle_timeout(Duration::from_secs(20))).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab")
        .await
        .unwrap();
    let text = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
}

/// A request body trickled just fast enough to dodge the idle timeout gets
/// 408 at the total read timeout.
#[tokio::test]
async fn trickled_body_gets_408_in_total() {
    let server = start_with(app(), |s| s).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let (mut read, mut write) = conn.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            if write.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = tokio::time::Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, read.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    trickle.abort();
}

/// Past the connection cap, a new client is answered 503 and closed; the
/// connections already open are still served.
#[tokio::test]
async fn connections_past_the_cap_get_503() {
    let server = start_with(app(), |s| s.max_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        held.push(conn);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let text = String::from_utf8(read_until_closed(&mut extra).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("retry-after: 1\r\n"), "{text}");
    // The held connections still work.
    held[0]
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = held[0].read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    // Once one leaves, a new client gets in.
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut r = RawResponse::request(
            server.addr,
            "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        if r.status == 200 {
            assert_eq!(r.sized_body().await, b"hello\n");
            ok = true;
            break;
        }
    }
    assert!(ok, "no connection admitted after the held ones left");
}

/// A Content-Length no server could accept gets 413, not hyper's 431; one
/// past u64 gets hyper's 400; an ordinary one over the body limit 413 from
/// the router.
#[tokio::test]
async fn huge_content_lengths_get_413_or_400() {
    let server = start_with(app().body_limit(1000), |s| s).await;
    for (length, status) in [
        ("18446744073709551615", 413),
        ("18446744073709551614", 413),
        ("18446744073709551613", 413),
        ("99999999999999999999999", 400),
        ("1001", 413),
    ] {
        let request = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n");
        let r = RawResponse::request(server.addr, &request).await;
        assert_eq!(r.status, status, "Content-Length: {length}");
    }
}

/// HTTP/1.1 without a Host header, or with two, is refused with 400
/// (RFC 9112 §3.2); HTTP/1.0 may omit it.
#[tokio::test]
async fn host_header_is_required_once() {
    let server = start_with(app(), |s| s).await;
    for (request, status) in [
        ("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (
            "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            400,
        ),
        ("GET /hello HTTP/1.0\r\n\r\n", 200),
        (
            "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            200,
        ),
    ] {
        let r = RawResponse::request(server.addr, request).await;
        assert_eq!(r.status, status, "{request:?}");
    }
}
