//! The physical limit: raw hyper 1 answering `/bench/burst` and `/bench/live`
//! with the whole pre-encoded body in one `Bytes` (`http_body_util::Full`),
//! byte for byte what the streaming servers send. Anything else is a 404.
//!
//! Bodies are encoded once per `(route, n, size)` and cached, so a repeated
//! request costs only the write.
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
    io::Write,
    sync::{Arc, Mutex},
};

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

#[tokio::main]
async fn main() {
    let listener = rill_bench::listen_from_args().await;
    let cache: Cache = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cache = cache.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = handle(&cache, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client going away mid-body is a normal end of a benchmark run.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
