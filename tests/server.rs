//! The server: HTTP/2 prior knowledge, graceful shutdown, timeouts, bursts,
//! and rill's live machinery inside a bare hyper service.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rill::{Context, LiveError, Response, Router, WriterError};
use std::{convert::Infallible, time::Duration};
use support::{start, start_with, RawResponse, WAIT};
use tokio::{io::AsyncReadExt, net::TcpStream, sync::mpsc};

async fn numbers(ctx: Context) -> Response {
    ctx.live(|_ctx, mut stream| async move {
        for n in 1..=10 {
            stream.write(format!("{n}\n")).await?;
        }
        Ok(())
    })
}

async fn h2_client(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

fn get(path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("http://test{path}"))
        .body(Empty::new())
        .unwrap()
}

/// An HTTP/2 prior-knowledge request gets the same live body, frame by frame.
#[tokio::test]
async fn http2_prior_knowledge_live_body() {
    let server = start(Router::new().get("/numbers", numbers)).await;
    let mut client = h2_client(server.addr).await;
    let response = client.send_request(get("/numbers")).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
}

/// An HTTP/2 client resetting its stream (dropping the response) wakes an
/// idle writer's `disconnected()`; the connection stays usable.
#[tokio::test]
async fn http2_stream_reset_is_a_disconnect() {
    let (woke_tx, mut woke_rx) = mpsc::channel::<()>(1);
    let router = Router::new()
        .get("/numbers", numbers)
        .get("/idle", move |ctx: Context| {
            let woke_tx = woke_tx.clone();
            async move {
                ctx.live(move |_ctx, mut stream| async move {
                    stream.write("hello\n").await?;
                    stream.disconnected().await;
                    let _ = woke_tx.send(()).await;
                    Ok(())
                })
            }
        });
    let server = start(router).await;
    let mut client = h2_client(server.addr).await;
    let response = client.send_request(get("/idle")).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"hello\n");
    drop(body); // RST_STREAM(CANCEL)
    tokio::time::timeout(WAIT, woke_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let again = client.send_request(get("/numbers")).await.unwrap();
    assert_eq!(
        again.into_body().collect().await.unwrap().to_bytes().len(),
        21
    );
}

/// Graceful shutdown with a live stream open: the writer's next write says
/// StreamClosed (and it sees is_shutting_down), the client gets a cleanly
/// ended body, and the server stops.
#[tokio::test]
async fn graceful_shutdown_closes_live_streams() {
    let (seen_tx, mut seen_rx) = mpsc::channel::<(LiveError, bool)>(1);
    let router = Router::new().get("/ticks", move |ctx: Context| {
        let seen_tx = seen_tx.clone();
        async move {
            ctx.live(move |_ctx, mut stream| async move {
                loop {
                    if let Err(e) = stream.write("tick\n").await {
                        let _ = seen_tx.send((e, stream.is_shutting_down())).await;
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        }
    });
    let mut server = start(router).await;
    let mut response = server.get("/ticks").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"tick\n".to_vec())));
    let addr = server.addr;
    server.begin_shutdown();
    let (error, shutting_down) = tokio::time::timeout(WAIT, seen_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(error, LiveError::StreamClosed);
    assert!(shutting_down);
    // The body ends with the terminating chunk: a clean end, not an abort.
    let rest = response.chunks().await.expect("clean end");
    assert!(rest.iter().all(|c| c == b"tick\n"));
    server.join().await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

/// Graceful shutdown leaves a grace window: a writer told by `closed()`
/// still sends its goodbye, the client receives it, and the server stops as
/// soon as the writer returns (not at the end of the grace).
#[tokio::test]
async fn shutdown_grace_lets_a_writer_say_goodbye() {
    let router = Router::new().get("/feed", |ctx: Context| async move {
        ctx.sse(|_ctx, mut sse| async move {
            sse.write("hello").await?;
            sse.closed().await;
            assert!(sse.is_shutting_down());
            sse.send(rill::sse::Event::data("server going away").event("bye"))
                .await?;
            Ok(())
        })
    });
    let mut server = start_with(router, |s| s.shutdown_grace(Duration::from_secs(30))).await;
    let mut response = server.get("/feed").await;
    assert_eq!(
        response.next_chunk().await,
        Ok(Some(b"data: hello\n\n".to_vec()))
    );
    server.begin_shutdown();
    let rest = response.chunks().await.expect("clean end");
    assert_eq!(rest.concat(), b"event: bye\ndata: server going away\n\n");
    // Well within the 30 s grace: the writer returned, so the close came at once.
    tokio::time::timeout(WAIT, server.join())
        .await
        .expect("the server stopped once the writer returned")
        .unwrap();
}

/// With no grace, the writer told of the shutdown can no longer write.
#[tokio::test]
async fn zero_grace_closes_at_once() {
    let (seen_tx, mut seen_rx) = mpsc::channel::<LiveError>(1);
    let router = Router::new().get("/feed", move |ctx: Context| {
        let seen_tx = seen_tx.clone();
        async move {
            ctx.live(|_ctx, mut stream| async move {
                stream.write("hello\n").await?;
                stream.closed().await;
                if let Err(error) = stream.write("bye\n").await {
                    let _ = seen_tx.send(error).await;
                }
                Ok(())
            })
        }
    });
    let mut server = start_with(router, |s| s.shutdown_grace(Duration::ZERO)).await;
    let mut response = server.get("/feed").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"hello\n".to_vec())));
    server.begin_shutdown();
    let error = tokio::time::timeout(WAIT, seen_rx.recv()).await.unwrap();
    assert_eq!(error, Some(LiveError::StreamClosed));
    assert!(response.chunks().await.expect("clean end").is_empty());
    server.join().await.unwrap();
}

/// A writer that ignores shutdown is aborted at the deadline, and its handle
/// reports Cancelled.
#[tokio::test]
async fn shutdown_deadline_aborts_stuck_writers() {
    let (handle_tx, mut handle_rx) = mpsc::channel(1);
    let router = Router::new().get("/stuck", move |ctx: Context| {
        let handle_tx = handle_tx.clone();
        async move {
            let response = ctx.live(|_ctx, mut stream| async move {
                stream.write("started\n").await?;
                std::future::pending::<()>().await;
                Ok(())
            });
            let _ = handle_tx.send(response.writer().unwrap()).await;
            response
        }
    });
    let mut server = start_with(router, |s| s.shutdown_deadline(Duration::from_millis(300))).await;
    let mut response = server.get("/stuck").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"started\n".to_vec())));
    let writer = handle_rx.recv().await.unwrap();
    server.begin_shutdown();
    server.join().await.unwrap();
    let outcome = tokio::time::timeout(WAIT, writer).await.unwrap();
    assert!(
        matches!(outcome, Err(WriterError::Cancelled)),
        "{outcome:?}"
    );
}

/// A client that sends half a request head is answered 408 and cut off at
/// the header-read timeout.
#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = start_with(Router::new().get("/numbers", numbers), |s| {
        s.header_read_timeout(Duration::from_millis(200))
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut conn, b"GET /numbers HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, conn.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection still open after the header timeout"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
}

/// A burst of simultaneous connects is served in full.
#[tokio::test]
async fn burst_of_connections_is_served() {
    let server = start(Router::new().get("/numbers", numbers)).await;
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut r = RawResponse::request(
                addr,
                "GET /numbers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .await;
            r.body().await.unwrap().len()
        }));
    }
    for task in tasks {
        assert_eq!(tokio::time::timeout(WAIT, task).await.unwrap().unwrap(), 21);
    }
}

/// rill::live works in a bare hyper service, without router or server.
#[tokio::test]
async fn live_in_a_bare_hyper_service() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service =
            hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                let response: http::Response<rill::Body> = rill::live(|mut stream| async move {
                    stream.write("bare ").await?;
                    stream.write("hyper\n").await?;
                    Ok(())
                })
                .into_http();
                Ok::<_, Infallible>(response)
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .await;
    });
    let mut response = RawResponse::request(addr, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(response.body().await.unwrap(), b"bare hyper\n");
}

/// A request whose first bytes arrive one at a time is still served as
/// HTTP/1.1 (protocol detection waits for enough bytes).
#[tokio::test]
async fn request_arriving_in_pieces_is_served() {
    use tokio::io::AsyncWriteExt;
    let server = start(Router::new().get("/numbers", numbers)).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    for piece in [
        "G",
        "E",
        "T",
        " /numbers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        conn.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, conn.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("10\n"), "{text}");
}

/// A client that connects and sends nothing, or only the start of the
/// HTTP/2 preface, is closed at the header-read timeout.
#[tokio::test]
async fn silent_or_stalled_preface_is_closed() {
    use tokio::io::AsyncWriteExt;
    let server = start_with(Router::new().get("/numbers", numbers), |s| {
        s.header_read_timeout(Duration::from_millis(200))
    })
    .await;
    for first in ["", "PR"] {
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(first.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(WAIT, conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "connection after {first:?} still open");
        assert!(buf.is_empty());
    }
}
