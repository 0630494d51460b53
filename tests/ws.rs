//! WebSockets against a real server, with a client that sees the wire:
//! the handshake and its refusals, echo, close codes (1000, 1001, 1007,
//! 1009), keep-alive against a vanished peer, back-pressure, HTTP/2
//! extended CONNECT with hyper's client, and `rill::ws::upgrade` from a
//! bare hyper service.

mod support;

use rill::{
    ws::{WsError, WsMessage, WsOptions},
    Context, Router,
};
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use support::{
    start,
    ws::{WsClient, BINARY, CLOSE, PING, PONG, TEXT},
    RawResponse, WAIT,
};
use tokio::sync::oneshot;

fn echo_router(options: WsOptions) -> Router {
    Router::new().get("/echo", move |ctx: Context| {
        let options = options.clone();
        async move {
            ctx.websocket_with(options, |_ctx, mut socket| async move {
                while let Some(message) = socket.recv().await {
                    socket.send(message?).await?;
                }
                Ok(())
            })
        }
    })
}

#[tokio::test]
async fn echoes_text_and_binary_verbatim_and_closes_with_1000() {
    let server = start(echo_router(WsOptions::new())).await;
    let (mut client, head) = WsClient::connect(server.addr, "/echo", &[]).await.unwrap();
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    client.send_text("héllo").await;
    let frame = client.recv().await.unwrap();
    assert_eq!((frame.opcode, frame.text()), (TEXT, "héllo"));
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    client.send_frame(true, BINARY, &binary).await;
    let frame = client.recv().await.unwrap();
    assert_eq!((frame.opcode, &frame.payload), (BINARY, &binary));
    // A fragmented message comes back whole.
    client.send_frame(false, TEXT, b"frag").await;
    client.send_frame(true, 0x0, b"mented").await;
    assert_eq!(client.recv_text().await.unwrap(), "fragmented");
    // Pings are answered with the same payload.
    client.send_frame(true, PING, b"p1").await;
    let frame = client.recv().await.unwrap();
    assert_eq!((frame.opcode, frame.payload.as_slice()), (PONG, &b"p1"[..]));
    client.send_close(1000).await;
    assert_eq!(client.recv_close().await, Some(1000));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_what_is_not_an_acceptable_handshake() {
    let options = WsOptions::new()
        .allowed_origins(["https://good.example"])
        .protocols(["v2", "v1"])
        .require_protocol(true);
    let server = start(echo_router(options)).await;
    let plain = server.get("/echo").await;
    assert_eq!(plain.status, 426, "{}", plain.head);
    assert!(plain
        .head
        .to_ascii_lowercase()
        .contains("upgrade: websocket"));

    let refused = |extra: &'static [(&'static str, &'static str)]| {
        let addr = server.addr;
        async move {
            let head = WsClient::connect(addr, "/echo", extra)
                .await
                .err()
                .expect("refused");
            head.split_whitespace().nth(1).unwrap().to_owned()
        }
    };
    assert_eq!(
        refused(&[
            ("Origin", "https://evil.example"),
            ("Sec-WebSocket-Protocol", "v1")
        ])
        .await,
        "403"
    );
    assert_eq!(refused(&[("Sec-WebSocket-Protocol", "v3")]).await, "400");
    assert_eq!(refused(&[]).await, "400");
    let bad_key = RawResponse::request(
        server.addr,
        "GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v1\r\n\r\n",
    )
    .await;
    assert_eq!(bad_key.status, 400);
    let old_version = RawResponse::request(
        server.addr,
        "GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert_eq!(old_version.status, 426);
    assert_eq!(old_version.header("sec-websocket-version"), Some("13"));

    // The first protocol the client offers that the server speaks, echoed.
    let (mut client, head) = WsClient::connect(
        server.addr,
        "/echo",
        &[
            ("Origin", "https://good.example"),
            ("Sec-WebSocket-Protocol", "v0, v1, v2"),
        ],
    )
    .await
    .unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: v1\r\n"),
        "{head}"
    );
    client.send_text("ok").await;
    assert_eq!(client.recv_text().await.unwrap(), "ok");
    // Gone clients: the shutdown need not wait for their close handshake.
    drop(client);
    server.shutdown().await.unwrap();
}

/// What a handler's `recv` returned last, for the tests below.
type Seen = Arc<Mutex<Vec<Result<String, WsError>>>>;

fn recording_router(options: WsOptions, seen: Seen) -> Router {
    Router::new().get("/ws", move |ctx: Context| {
        let (options, seen) = (options.clone(), seen.clone());
        async move {
            ctx.websocket_with(options, move |_ctx, mut socket| async move {
                while let Some(message) = socket.recv().await {
                    let entry = message.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
                    seen.lock().unwrap().push(entry);
                }
                Ok(())
            })
        }
    })
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let seen = Seen::default();
    let server = start(recording_router(
        WsOptions::new().max_message(1024),
        seen.clone(),
    ))
    .await;
    let (mut client, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    client.send_text(&"a".repeat(1024)).await;
    client.send_frame(true, TEXT, &[b'b'; 1025]).await;
    assert_eq!(client.recv_close().await, Some(1009));
    // Fragments adding up past the limit too.
    let (mut client, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    client.send_frame(false, TEXT, &[b'c'; 600]).await;
    client.send_frame(true, 0x0, &[b'c'; 600]).await;
    assert_eq!(client.recv_close().await, Some(1009));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].as_deref(), Ok("a".repeat(1024).as_str()));
    assert!(
        matches!(seen[1], Err(WsError::TooBig { max: 1024, .. })),
        "{seen:?}"
    );
    assert!(matches!(seen[2], Err(WsError::TooBig { .. })), "{seen:?}");
    // Gone clients: the shutdown need not wait for their close handshake.
    drop(client);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let seen = Seen::default();
    let server = start(recording_router(WsOptions::new(), seen.clone())).await;
    let (mut client, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    client
        .send_frame(true, TEXT, &[b'o', b'k', 0xff, 0xfe])
        .await;
    assert_eq!(client.recv_close().await, Some(1007));
    // Split inside a code point across fragments is fine…
    let (mut client, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    let snowman = "☃".as_bytes();
    client.send_frame(false, TEXT, &snowman[..1]).await;
    client.send_frame(true, 0x0, &snowman[1..]).await;
    client.send_close(1000).await;
    assert_eq!(client.recv_close().await, Some(1000));
    let seen = seen.lock().unwrap().clone();
    assert!(matches!(seen[0], Err(WsError::Protocol { .. })), "{seen:?}");
    assert_eq!(seen[1].as_deref(), Ok("☃"));
    server.shutdown().await.unwrap();
}

/// A router whose handler reports when `disconnected()` resolved.
fn watching_router(options: WsOptions, gone: Arc<Mutex<Option<oneshot::Sender<()>>>>) -> Router {
    Router::new().get("/ws", move |ctx: Context| {
        let (options, gone) = (options.clone(), gone.clone());
        async move {
            ctx.websocket_with(options, move |_ctx, socket| async move {
                socket.disconnected().await;
                if let Some(tx) = gone.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                // Sending now fails with the typed error.
                assert_eq!(socket.send("late").await, Err(WsError::Disconnected));
                Ok(())
            })
        }
    })
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_seen_gone() {
    let (tx, rx) = oneshot::channel();
    let options = WsOptions::new()
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(200));
    let server = start(watching_router(options, Arc::new(Mutex::new(Some(tx))))).await;
    // Connected, then silent: never reads, never answers a ping; its TCP
    // stack keeps the connection up.
    let (client, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("seen gone in time")
        .unwrap();
    drop(client);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_peer_that_drops_the_connection_is_seen_gone_at_once() {
    let (tx, rx) = oneshot::channel();
    // Keep-alive far away: only the dropped connection can tell.
    let server = start(watching_router(
        WsOptions::new(),
        Arc::new(Mutex::new(Some(tx))),
    ))
    .await;
    let (client, _) = WsClient::connect(server.addr, "/ws", &[]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.vanish();
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("seen gone in time")
        .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let mut server = start(echo_router(WsOptions::new())).await;
    let (mut client, _) = WsClient::connect(server.addr, "/echo", &[]).await.unwrap();
    client.send_text("before").await;
    assert_eq!(client.recv_text().await.unwrap(), "before");
    assert_eq!(server.tracker.active(), 1);
    server.begin_shutdown();
    assert_eq!(client.recv_close().await, Some(1001));
    client.send_close(1001).await;
    server.join().await.unwrap();
}

#[tokio::test]
async fn a_peer_that_stops_reading_makes_sends_wait() {
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (s, d) = (sent.clone(), done.clone());
    let router = Router::new().get("/flood", move |ctx: Context| {
        let (sent, done) = (s.clone(), d.clone());
        async move {
            ctx.websocket_with(WsOptions::new().queue(4), move |_ctx, socket| async move {
                let chunk = WsMessage::binary(vec![7u8; 64 * 1024]);
                // Bounded: 4 GiB would be needed to finish.
                for _ in 0..65_536 {
                    if socket.send(chunk.clone()).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                done.store(true, Ordering::Relaxed);
                Ok(())
            })
        }
    });
    let server = start(router).await;
    let (mut client, _) = WsClient::connect(server.addr, "/flood", &[]).await.unwrap();
    // The handler gets ahead by what the queue and the socket buffers hold,
    // then waits.
    let mut last = usize::MAX;
    let mut stalled = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sent.load(Ordering::Relaxed);
        if now == last {
            stalled = true;
            break;
        }
        last = now;
    }
    assert!(stalled, "sends never waited ({last} sent)");
    let held = last * 64 * 1024;
    assert!(
        held < 64 * 1024 * 1024,
        "{held} bytes went out to a peer that reads nothing"
    );
    assert!(!done.load(Ordering::Relaxed));
    // Reading again lets the handler go on.
    for _ in 0..200 {
        let frame = client.recv().await.unwrap();
        assert_eq!(frame.opcode, BINARY);
    }
    assert!(sent.load(Ordering::Relaxed) > last);
    client.vanish();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http2_extended_connect_carries_a_websocket() {
    use http_body_util::Empty;
    let server = start(echo_router(WsOptions::new())).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake::<_, Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{}/echo", server.addr))
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut client = WsClient::over(hyper_util::rt::TokioIo::new(upgraded));
    for i in 0..100 {
        client.send_text(&format!("h2 message {i}")).await;
    }
    for i in 0..100 {
        assert_eq!(client.recv_text().await.unwrap(), format!("h2 message {i}"));
    }
    client.send_close(1000).await;
    assert_eq!(client.recv_close().await, Some(1000));
    server.shutdown().await.unwrap();
}

/// `rill::ws::upgrade` from a bare hyper service, served by hyper itself.
#[tokio::test]
async fn upgrade_works_from_a_bare_hyper_service() {
    use hyper::{body::Incoming, service::service_fn};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service = service_fn(|mut request: http::Request<Incoming>| async move {
            let response =
                rill::ws::upgrade(&mut request, WsOptions::new(), |mut socket| async move {
                    while let Some(message) = socket.recv().await {
                        let text = message?.as_text().unwrap_or_default().to_uppercase();
                        socket.send(text).await?;
                    }
                    Ok(())
                });
            Ok::<_, std::convert::Infallible>(response.into_http())
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            .with_upgrades()
            .await;
    });
    let (mut client, _) = WsClient::connect(addr, "/", &[]).await.unwrap();
    client.send_text("shout").await;
    assert_eq!(client.recv_text().await.unwrap(), "SHOUT");
    client.send_close(1000).await;
    assert_eq!(client.recv_close().await, Some(1000));
}

#[tokio::test]
async fn a_handler_that_returns_closes_with_1000_after_what_it_sent() {
    let router = Router::new().get("/bye", |ctx: Context| async move {
        ctx.websocket(|_ctx, socket| async move {
            for i in 0..3 {
                socket.send(format!("m{i}")).await?;
            }
            socket.close(4000, "custom").await;
            Ok(())
        })
    });
    let server = start(router).await;
    let (mut client, _) = WsClient::connect(server.addr, "/bye", &[]).await.unwrap();
    for i in 0..3 {
        assert_eq!(client.recv_text().await.unwrap(), format!("m{i}"));
    }
    let frame = client.recv().await.unwrap();
    assert_eq!(frame.opcode, CLOSE);
    assert_eq!(frame.close_code(), Some(4000));
    assert_eq!(&frame.payload[2..], b"custom");
    // Gone clients: the shutdown need not wait for their close handshake.
    drop(client);
    server.shutdown().await.unwrap();
}

/// A panicking handler closes its own socket; the server and the other
/// sockets go on.
#[tokio::test]
async fn a_panicking_handler_takes_down_only_its_socket() {
    let router = echo_router(WsOptions::new()).get("/panic", |ctx: Context| async move {
        ctx.websocket(|_ctx, mut socket| async move {
            let _ = socket.recv().await;
            panic!("handler bug");
        })
    });
    let server = start(router).await;
    let (mut other, _) = WsClient::connect(server.addr, "/echo", &[]).await.unwrap();
    let (mut doomed, _) = WsClient::connect(server.addr, "/panic", &[]).await.unwrap();
    doomed.send_text("boom").await;
    assert_eq!(doomed.recv_close().await, Some(1000));
    other.send_text("still here").await;
    assert_eq!(other.recv_text().await.unwrap(), "still here");
    other.vanish();
    server.shutdown().await.unwrap();
}
