//! Live responses against a real server on 127.0.0.1:0, read off a raw socket.

mod support;

use bytes::Bytes;
use rill::{Charset, Context, LiveError, LiveOptions, Response, Router, WriterError};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use support::{start, ReadEnd, WAIT};
use tokio::{io::AsyncWriteExt, sync::mpsc};

async fn numbers(ctx: Context) -> Response {
    ctx.live(|_ctx, mut stream| async move {
        for n in 1..=10 {
            stream.write(format!("{n}\n")).await?;
        }
        Ok(())
    })
}

/// The body is exactly 1..10, framed as valid HTTP/1.1 chunks and ended by
/// the terminating chunk. (Writes made faster than the socket drains may share
/// a chunk; chunk boundaries carry no meaning in HTTP.)
#[tokio::test]
async fn numbers_exact_body_and_chunked_framing() {
    let server = start(Router::new().get("/numbers", numbers)).await;
    let mut response = support::RawResponse::request(
        server.addr,
        "GET /numbers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
    assert_eq!(response.header("content-length"), None);
    let raw = response.rest_raw().await;
    // Decode the chunked framing by hand, strictly.
    let mut rest = &raw[..];
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
            .expect("hex size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            assert_eq!(rest, b"\r\n", "terminating chunk, then nothing");
            break;
        }
        body.extend_from_slice(&rest[..size]);
        assert_eq!(&rest[size..size + 2], b"\r\n");
        rest = &rest[size + 2..];
    }
    assert_eq!(body, b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
}

/// A write to a stream whose earlier writes have left goes out at once as its
/// own chunk: exact bytes on the wire for paced writes.
#[tokio::test]
async fn paced_writes_are_separate_chunks_on_the_wire() {
    let (ack_tx, ack_rx) = mpsc::channel::<()>(1);
    let ack_rx = Arc::new(tokio::sync::Mutex::new(Some(ack_rx)));
    let router = Router::new().get("/paced", move |ctx: Context| {
        let ack_rx = ack_rx.clone();
        async move {
            let mut ack = ack_rx.lock().await.take().expect("one request");
            ctx.live(|_ctx, mut stream| async move {
                for line in ["one\n", "two\n", "three\n"] {
                    stream.write(line).await?;
                    ack.recv().await; // the client saw it
                }
                Ok(())
            })
        }
    });
    let server = start(router).await;
    let mut response = server.get("/paced").await;
    for expected in ["one\n", "two\n", "three\n"] {
        assert_eq!(
            response.next_chunk().await,
            Ok(Some(expected.as_bytes().to_vec()))
        );
        ack_tx.send(()).await.unwrap();
    }
    assert_eq!(response.next_chunk().await, Ok(None));
}

/// The first chunk reaches the client while the writer is still running.
#[tokio::test]
async fn first_chunk_arrives_before_writer_finishes() {
    let (go_tx, go_rx) = mpsc::channel::<()>(1);
    let go_rx = Arc::new(tokio::sync::Mutex::new(Some(go_rx)));
    let router = Router::new().get("/wait", move |ctx: Context| {
        let go_rx = go_rx.clone();
        async move {
            let mut go = go_rx.lock().await.take().expect("one request");
            ctx.live(|_ctx, mut stream| async move {
                stream.write("first\n").await?;
                go.recv().await; // held until the test has seen "first"
                stream.write("second\n").await?;
                Ok(())
            })
        }
    });
    let server = start(router).await;
    let mut response = server.get("/wait").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"first\n".to_vec())));
    go_tx.send(()).await.unwrap();
    assert_eq!(response.next_chunk().await, Ok(Some(b"second\n".to_vec())));
    assert_eq!(response.next_chunk().await, Ok(None));
}

/// A client that stops reading makes `write` wait: the writer stalls with a
/// bounded amount written, then resumes and delivers everything in order.
#[tokio::test]
async fn back_pressure_stalls_writer_and_bounds_memory() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 2000; // 125 MiB if nothing pushed back
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let router = Router::new().get("/flood", move |ctx: Context| {
        let counter = counter.clone();
        async move {
            ctx.live(move |_ctx, mut stream| async move {
                for i in 0..TOTAL {
                    let mut chunk = vec![b'x'; CHUNK];
                    chunk[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    stream.write(chunk).await?;
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        }
    });
    let server = start(router).await;
    let mut response = server.get("/flood").await;

    // Not reading: the writer must stall well short of TOTAL.
    let mut last = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = written.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    let stalled_at = written.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        written.load(Ordering::SeqCst),
        stalled_at,
        "writer kept writing"
    );
    // Socket buffers on loopback hold a few MiB; the channel holds 8 chunks.
    assert!(
        stalled_at < 400,
        "{stalled_at} chunks were written without being read"
    );

    // Reading again drains everything, in order.
    let mut received = 0usize;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.next_chunk().await.expect("complete body") {
        bytes.extend_from_slice(&chunk);
        while bytes.len() >= CHUNK {
            let seq = u64::from_be_bytes(bytes[..8].try_into().unwrap());
            assert_eq!(seq as usize, received);
            received += 1;
            bytes.drain(..CHUNK);
        }
    }
    assert_eq!(received, TOTAL);
}

/// Closing the socket while the writer writes makes the next write fail
/// with ClientDisconnected, and the stream stops counting as active.
#[tokio::test]
async fn disconnect_while_writing_fails_the_next_write() {
    let (result_tx, mut result_rx) = mpsc::channel::<LiveError>(1);
    let router = Router::new().get("/spin", move |ctx: Context| {
        let result_tx = result_tx.clone();
        async move {
            ctx.live(move |_ctx, mut stream| async move {
                loop {
                    if let Err(e) = stream.write("tick\n").await {
                        let _ = result_tx.send(e).await;
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        }
    });
    let server = start(router).await;
    let mut response = server.get("/spin").await;
    assert!(response.next_chunk().await.unwrap().is_some());
    assert_eq!(server.tracker.active(), 1);
    drop(response);
    let error = tokio::time::timeout(WAIT, result_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(error, LiveError::ClientDisconnected);
    let tracker = server.tracker.clone();
    server
        .eventually("active back to 0", || tracker.active() == 0)
        .await;
}

/// An idle writer learns of the disconnect through `disconnected()` without
/// writing, and is_disconnected() turns true.
#[tokio::test]
async fn disconnect_while_idle_wakes_disconnected_future() {
    let (woke_tx, mut woke_rx) = mpsc::channel::<bool>(1);
    let router = Router::new().get("/idle", move |ctx: Context| {
        let woke_tx = woke_tx.clone();
        async move {
            ctx.live(move |_ctx, mut stream| async move {
                stream.write("hello\n").await?;
                stream.disconnected().await;
                let _ = woke_tx.send(stream.is_disconnected()).await;
                assert_eq!(
                    stream.write("late").await,
                    Err(LiveError::ClientDisconnected)
                );
                Ok(())
            })
        }
    });
    let server = start(router).await;
    let mut response = server.get("/idle").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"hello\n".to_vec())));
    response.conn.shutdown().await.unwrap(); // FIN, as curl does on exit
    drop(response);
    let woke = tokio::time::timeout(WAIT, woke_rx.recv()).await.unwrap();
    assert_eq!(woke, Some(true));
    let tracker = server.tracker.clone();
    server
        .eventually("active back to 0", || tracker.active() == 0)
        .await;
}

/// After `close()`, writes fail with StreamClosed and the body ends cleanly
/// with what was written before.
#[tokio::test]
async fn write_after_close_is_stream_closed() {
    let (result_tx, mut result_rx) = mpsc::channel::<Result<(), LiveError>>(1);
    let router = Router::new().get("/close", move |ctx: Context| {
        let result_tx = result_tx.clone();
        async move {
            ctx.live(move |_ctx, mut stream| async move {
                stream.write("before\n").await?;
                stream.close();
                assert!(stream.is_closed());
                let _ = result_tx.send(stream.write("after\n").await).await;
                Ok(())
            })
        }
    });
    let server = start(router).await;
    let mut response = server.get("/close").await;
    assert_eq!(response.body().await, Ok(b"before\n".to_vec()));
    let result = tokio::time::timeout(WAIT, result_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(LiveError::StreamClosed));
}

/// `disconnect()` marks and closes: later writes say StreamClosed.
#[tokio::test]
async fn write_after_disconnect_is_stream_closed() {
    let response = rill::live(|mut stream| async move {
        stream.disconnect();
        assert!(stream.is_disconnected());
        assert!(stream.is_closed());
        assert_eq!(stream.write("x").await, Err(LiveError::StreamClosed));
        Ok(())
    });
    let writer = response.writer().unwrap();
    let _body = response.into_http();
    assert!(tokio::time::timeout(WAIT, writer).await.unwrap().is_ok());
}

fn failing_router() -> Router {
    Router::new()
        .get("/numbers", numbers)
        .get("/fails", |ctx: Context| async move {
            ctx.live(|_ctx, mut stream| async move {
                stream.write("partial\n").await?;
                Err("database went away".into())
            })
        })
        .get("/panics", |ctx: Context| async move {
            ctx.live(|_ctx, mut stream| async move {
                stream.write("partial\n").await?;
                panic!("writer bug");
            })
        })
}

/// A writer error aborts the response: the client gets what was written,
/// then the connection closes without the terminating chunk. Other requests
/// are unaffected.
#[tokio::test]
async fn writer_error_aborts_response() {
    let server = start(failing_router()).await;
    let mut response = server.get("/fails").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"partial\n".to_vec())));
    assert_eq!(response.next_chunk().await, Err(ReadEnd::Aborted));
    let mut other = server.get("/numbers").await;
    assert_eq!(
        other.body().await.unwrap(),
        b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
    );
}

/// A writer panic aborts only its own response; the server keeps serving.
#[tokio::test]
async fn writer_panic_aborts_response_only() {
    let server = start(failing_router()).await;
    let mut slow = server.get("/numbers").await; // opened before the panic
    let mut response = server.get("/panics").await;
    assert_eq!(response.next_chunk().await, Ok(Some(b"partial\n".to_vec())));
    assert_eq!(response.next_chunk().await, Err(ReadEnd::Aborted));
    assert_eq!(slow.body().await.unwrap().len(), 21);
    let mut after = server.get("/numbers").await;
    assert_eq!(after.body().await.unwrap().len(), 21);
}

/// The writer handle reports how the writer ended.
#[tokio::test]
async fn writer_handle_reports_result() {
    let ok = rill::live(|mut s| async move {
        s.write("a").await?;
        Ok(())
    });
    assert!(ok.is_live() && ok.is_streaming());
    let failed = rill::live(|_s| async move { Err("boom".into()) });
    let panicked = rill::live(|_s| async move { panic!("kaboom") });
    let (h1, h2, h3) = (
        ok.writer().unwrap(),
        failed.writer().unwrap(),
        panicked.writer().unwrap(),
    );
    let _bodies = (ok.into_http(), failed.into_http(), panicked.into_http());
    assert!(h1.await.is_ok());
    assert!(matches!(h2.await, Err(WriterError::Failed(e)) if e.to_string() == "boom"));
    assert!(matches!(h3.await, Err(WriterError::Panicked { message }) if message == "kaboom"));
}

/// Text is encoded in the response charset, named in Content-Type; a
/// character the charset lacks yields Unencodable and writes nothing, and the
/// stream stays usable. Bytes pass through unchanged.
#[tokio::test]
async fn charsets_and_unencodable() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_w = seen.clone();
    let router = Router::new()
        .get("/latin", move |ctx: Context| {
            let seen = seen_w.clone();
            async move {
                let options =
                    LiveOptions::new().charset(Charset::for_label("windows-1252").unwrap());
                ctx.live_with(options, move |_ctx, mut stream| async move {
                    stream.write("caf\u{e9} \u{20ac}5\n").await?;
                    let snowman = stream.write("\u{2603}\n").await;
                    seen.lock().unwrap().push(snowman);
                    stream.write(&b"\xff\x00raw"[..]).await?;
                    stream.write("").await?; // skipped, must not end the body
                    stream.write("end\n").await?;
                    Ok(())
                })
            }
        })
        .get("/sjis", |ctx: Context| async move {
            let options = LiveOptions::new().charset(Charset::for_label("shift_jis").unwrap());
            ctx.live_with(options, |_ctx, mut stream| async move {
                stream.write("\u{65e5}\u{672c}").await?;
                Ok(())
            })
        });
    let server = start(router).await;

    let mut latin = server.get("/latin").await;
    assert_eq!(
        latin.header("content-type"),
        Some("text/plain; charset=windows-1252")
    );
    assert_eq!(
        latin.body().await.unwrap(),
        b"caf\xe9 \x805\n\xff\x00rawend\n"
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[Err(LiveError::Unencodable {
            character: '\u{2603}',
            charset: "windows-1252"
        })]
    );

    let mut sjis = server.get("/sjis").await;
    assert_eq!(
        sjis.header("content-type"),
        Some("text/plain; charset=shift_jis")
    );
    assert_eq!(sjis.body().await.unwrap(), b"\x93\xfa\x96\x7b");
}

/// The pull-based counterpart: a response body from any Stream.
#[tokio::test]
async fn response_from_stream() {
    let router = Router::new().get("/pulled", |_ctx: Context| async move {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        tokio::spawn(async move {
            for part in ["a\n", "", "b\n", "c\n"] {
                let _ = tx.send(Ok(Bytes::from(part))).await;
            }
        });
        let stream = futures_stream(rx);
        let response = Response::stream("text/plain", stream);
        assert!(response.is_streaming() && !response.is_live());
        response
    });
    let server = start(router).await;
    let mut response = server.get("/pulled").await;
    assert_eq!(
        response.chunks().await.unwrap(),
        vec![b"a\n".to_vec(), b"b\n".to_vec(), b"c\n".to_vec()]
    );
}

/// Adapts a tokio mpsc receiver into a futures Stream (tests only).
fn futures_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_core::Stream<Item = T> + Send + 'static {
    struct S<T>(mpsc::Receiver<T>);
    impl<T> futures_core::Stream for S<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
    S(rx)
}

/// Under load on a multi-threaded runtime (writer and body running in
/// parallel, batching active), hundreds of thousands of small writes arrive
/// complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_writes_stay_in_order_under_load() {
    const WRITES: u32 = 300_000;
    let router = Router::new().get("/count", |ctx: Context| async move {
        ctx.live(|_ctx, mut stream| async move {
            for n in 0..WRITES {
                stream.write(format!("{n}\n")).await?;
            }
            Ok(())
        })
    });
    let server = start(router).await;
    for _ in 0..3 {
        let mut response = server.get("/count").await;
        let body = tokio::time::timeout(WAIT * 6, response.body())
            .await
            .expect("body in time")
            .expect("clean end");
        let text = String::from_utf8(body).unwrap();
        let mut expected = 0u32;
        for line in text.lines() {
            assert_eq!(line.parse::<u32>().unwrap(), expected, "out of order");
            expected += 1;
        }
        assert_eq!(expected, WRITES);
    }
}

/// Writes of every size — copied into the batch (short) or kept whole
/// (long, no copy) — interleave under load and still arrive complete and in
/// order, through rill's server (chunks sent as a list) and through the
/// plain `http_body::Body` (chunks joined).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_size_writes_stay_in_order_under_load() {
    const WRITES: usize = 20_000;
    /// Line `n`: its number, padded to a length that cycles through short
    /// and long (up to 4 KiB), so copied and kept chunks alternate.
    fn line(n: usize) -> String {
        let width = [4, 100, 511, 512, 600, 1024, 4096][n % 7];
        format!("{n:0>width$}\n")
    }
    fn check(body: &[u8]) {
        let text = std::str::from_utf8(body).unwrap();
        let mut expected = 0;
        for got in text.lines() {
            assert_eq!(format!("{got}\n"), line(expected), "out of order");
            expected += 1;
        }
        assert_eq!(expected, WRITES);
    }
    let writer = |mut stream: rill::LiveStream| async move {
        for n in 0..WRITES {
            stream.write(bytes::Bytes::from(line(n))).await?;
        }
        Ok::<(), rill::BoxError>(())
    };
    let router = Router::new().get("/mixed", move |ctx: Context| async move {
        ctx.live(move |_ctx, stream| writer(stream))
    });
    let server = start(router).await;
    for _ in 0..2 {
        let mut response = server.get("/mixed").await;
        let body = tokio::time::timeout(WAIT * 6, response.body())
            .await
            .expect("body in time")
            .expect("clean end");
        check(&body);
    }
    // The same writes through the plain body, drained in process.
    use http_body_util::BodyExt;
    let body = rill::live(writer).into_http().into_body();
    let collected = tokio::time::timeout(WAIT * 6, body.collect())
        .await
        .expect("body in time")
        .expect("clean end");
    check(&collected.to_bytes());
}
