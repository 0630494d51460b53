//! The physical limit: raw hyper 1 answering `/bench/burst` and `/bench/live`
//! with the whole pre-encoded body in one `Bytes` (`http_body_util::Full`),
//! byte for byte what the streaming servers send.
//!
//! Bodies are encoded once per `(route, n, size)` and cached, so a repeated
//! request costs only the write.
//!
//! Fan-out's limit is one `write` per subscriber and event: `/bench/fanout`
//! connections are taken away from hyper after their request head (the
//! response head is written by hand, chunked), and `/bench/publish` encodes
//! its events once and writes them straight into every subscriber's socket,
//! one call per subscriber, from the publishing request — no task, no
//! channel, no wake. `/bench/stats`
//! counts those sockets. Anything else is a 404.
//!
//! Run with: `cargo run --release -p rill-bench --bin hyper_server -- --addr 127.0.0.1:0`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    body::Incoming, server::conn::http1, service::service_fn, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use std::{
    collections::HashMap,
    convert::Infallible,
    io::{Read, Write},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};
use tokio::net::TcpStream;

type Cache = Arc<Mutex<HashMap<(bool, usize, usize), Bytes>>>;

fn param(query: &str, name: &str, default: usize) -> usize {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

/// `id: N\ndata: <size × x>\n\n` for N in 1..=n.
fn encode_burst(n: usize, size: usize) -> Bytes {
    let data = "x".repeat(size);
    let mut out = Vec::with_capacity(n * (size + 20));
    for i in 1..=n {
        let _ = write!(out, "id: {i}\ndata: {data}\n\n");
    }
    out.into()
}

fn handle(cache: &Cache, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or("");
    let (sse, n, size) = match req.uri().path() {
        "/bench/burst" => (true, param(query, "n", 1000), param(query, "size", 32)),
        "/bench/live" => (false, param(query, "n", 1000), param(query, "size", 1024)),
        _ => {
            let mut not_found = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            return not_found;
        }
    };
    let body = {
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((sse, n, size))
            .or_insert_with(|| {
                if sse {
                    encode_burst(n, size)
                } else {
                    Bytes::from(vec![b'x'; n * size])
                }
            })
            .clone()
    };
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/octet-stream"
    };
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Subscribers' sockets (blocking: a full socket makes the publisher wait,
/// which the benchmark's clients never cause), and the last id published.
#[derive(Default)]
struct Fanout {
    subscribers: Mutex<Vec<std::net::TcpStream>>,
    seq: AtomicU64,
}

const FANOUT_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
    cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// Takes a `GET /bench/fanout` connection: reads the request head, writes
/// the response head, keeps the socket. Anything else goes to hyper.
async fn take_subscriber(stream: TcpStream, fanout: &Fanout) -> Result<(), TcpStream> {
    let mut head = [0u8; 2048];
    let n = match stream.peek(&mut head).await {
        Ok(n) => n,
        Err(_) => return Err(stream),
    };
    if !head[..n].starts_with(b"GET /bench/fanout") {
        return Err(stream);
    }
    // The loadgen sends its whole head in one write; read exactly that.
    let Some(end) = head[..n].windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(stream);
    };
    let mut std = match stream.into_std() {
        Ok(std) => std,
        Err(_) => return Ok(()),
    };
    let mut consumed = vec![0u8; end + 4];
    let taken = std
        .set_nonblocking(false)
        .and_then(|()| std.read_exact(&mut consumed))
        .and_then(|()| std.write_all(FANOUT_HEAD));
    if taken.is_ok() {
        lock(&fanout.subscribers).push(std);
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `n` events, data `<seq> <unix_nanos>` padded with `x` to `size`, encoded
/// once into one buffer and written to each subscriber in one call (the
/// fewest system calls possible); subscribers whose write fails are dropped.
fn publish(fanout: &Fanout, n: usize, size: usize) {
    let mut subscribers = lock(&fanout.subscribers);
    let mut frames = Vec::with_capacity(n * (size + 64));
    for _ in 0..n {
        let seq = fanout.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let data = rill_bench::publish_data(seq, size);
        let event = format!("id: {seq}\ndata: {data}\n\n");
        let _ = write!(frames, "{:x}\r\n{event}\r\n", event.len());
    }
    subscribers.retain_mut(|socket| socket.write_all(&frames).is_ok());
}

#[tokio::main]
async fn main() {
    let listener = rill_bench::listen_from_args().await;
    let cache: Cache = Arc::default();
    let fanout: Arc<Fanout> = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (cache, fanout) = (cache.clone(), fanout.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Err(stream) = take_subscriber(stream, &fanout).await else {
                return;
            };
            let service = service_fn(move |req: Request<Incoming>| {
                let (cache, fanout) = (cache.clone(), fanout.clone());
                async move {
                    let query = req.uri().query().unwrap_or("").to_owned();
                    let response = match req.uri().path() {
                        "/bench/publish" => {
                            let (n, size) = (param(&query, "n", 1000), param(&query, "size", 64));
                            let _ = tokio::task::spawn_blocking(move || publish(&fanout, n, size))
                                .await;
                            Response::new(Full::new(Bytes::from(format!("{{\"published\":{n}}}"))))
                        }
                        "/bench/stats" => {
                            let active = lock(&fanout.subscribers).len();
                            Response::new(Full::new(Bytes::from(format!(
                                "{{\"active\":{active}}}"
                            ))))
                        }
                        _ => handle(&cache, &req),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            // A client going away mid-body is a normal end of a benchmark run.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
