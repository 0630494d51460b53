//! The benchmark contract of `examples/bench_server.rs`, written the way an
//! experienced axum 0.8 user would: `Sse` + `KeepAlive` for SSE,
//! `Body::from_stream` for the live body, `tokio::sync::broadcast` for the
//! hub, and a drop guard in every streaming response for `/bench/stats`.
//!
//! WebSockets: see `ws.rs` (`--tuned` for batched writes and small read
//! buffers); a minimal ActionCable endpoint: see `cable.rs`.
//!
//! Run with: `cargo run --release -p rill-bench --bin axum_server -- --addr 127.0.0.1:0 [--tuned]`.

mod cable;
mod ws;

use axum::{
    body::Body,
    extract::{Query, State},
    http::header,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Router,
};
use bytes::Bytes;
use futures_util::{
    stream::{self, Stream},
    StreamExt,
};
use std::{
    collections::HashMap,
    convert::Infallible,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::sync::broadcast;

/// One published event, shared by every subscriber.
#[derive(Clone)]
struct Message {
    id: u64,
    data: Arc<str>,
}

#[derive(Clone)]
struct AppState {
    tx: broadcast::Sender<Message>,
    /// Hub-wide event id, as rill's hub assigns them; the lock also keeps
    /// ids in send order.
    next_id: Arc<Mutex<u64>>,
    active: Arc<AtomicUsize>,
    /// The WebSocket broadcast: each event's whole line, shared.
    ws_tx: broadcast::Sender<axum::extract::ws::Utf8Bytes>,
    /// `--tuned`: batched WebSocket writes, 4 KiB read buffers.
    tuned: bool,
    /// What every cable connection receives: broadcasts and pings.
    cable_tx: broadcast::Sender<cable::Cast>,
}

/// Counts an open streaming response (or socket) until it is dropped.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(active.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that holds an [`ActiveGuard`] for as long as it lives.
struct Guarded<S> {
    inner: S,
    _guard: ActiveGuard,
}

impl<S: Stream + Unpin> Stream for Guarded<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

pub(crate) type Params = Query<HashMap<String, String>>;

fn param(q: &Params, name: &str, default: usize) -> usize {
    q.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn burst(State(state): State<AppState>, q: Params) -> impl IntoResponse {
    let (n, size) = (param(&q, "n", 1000), param(&q, "size", 32));
    let data = "x".repeat(size);
    let events = stream::iter(1..=n as u64)
        .map(move |i| Ok::<_, Infallible>(Event::default().id(i.to_string()).data(&data)));
    Sse::new(Guarded {
        inner: events,
        _guard: ActiveGuard::new(&state.active),
    })
}

async fn live(State(state): State<AppState>, q: Params) -> impl IntoResponse {
    let (n, size) = (param(&q, "n", 1000), param(&q, "size", 1024));
    let chunk = Bytes::from(vec![b'x'; size]);
    let chunks = stream::iter(0..n).map(move |_| Ok::<_, Infallible>(chunk.clone()));
    let body = Body::from_stream(Guarded {
        inner: chunks,
        _guard: ActiveGuard::new(&state.active),
    });
    ([(header::CONTENT_TYPE, "application/octet-stream")], body)
}

async fn idle(State(state): State<AppState>, q: Params) -> impl IntoResponse {
    let every = param(&q, "heartbeat", 15) as u64;
    let nothing = stream::pending::<Result<Event, Infallible>>();
    Sse::new(Guarded {
        inner: nothing,
        _guard: ActiveGuard::new(&state.active),
    })
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(every)))
}

async fn fanout(State(state): State<AppState>) -> impl IntoResponse {
    let rx = state.tx.subscribe();
    let events = stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(m) => {
                    return Some((
                        Ok::<_, Infallible>(Event::default().id(m.id.to_string()).data(&*m.data)),
                        rx,
                    ))
                }
                // A lagging subscriber skips ahead; the load generator reports the gap.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(Guarded {
        inner: Box::pin(events),
        _guard: ActiveGuard::new(&state.active),
    })
    .keep_alive(KeepAlive::default())
}

async fn publish(State(state): State<AppState>, q: Params) -> Response {
    let (n, size) = (param(&q, "n", 1000), param(&q, "size", 64));
    for seq in 1..=n {
        let data = rill_bench::publish_data(seq as u64, size);
        let mut next_id = state.next_id.lock().unwrap_or_else(|e| e.into_inner());
        *next_id += 1;
        // No subscribers is not an error for a publisher.
        let _ = state.tx.send(Message {
            id: *next_id,
            data: data.into(),
        });
    }
    json(format!("{{\"published\":{n}}}"))
}

async fn stats(State(state): State<AppState>) -> Response {
    json(format!(
        "{{\"active\":{}}}",
        state.active.load(Ordering::Relaxed)
    ))
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn app(tuned: bool) -> Router {
    let (tx, _) = broadcast::channel(4096);
    let (ws_tx, _) = broadcast::channel(4096);
    let state = AppState {
        tx,
        next_id: Arc::new(Mutex::new(0)),
        active: Arc::new(AtomicUsize::new(0)),
        ws_tx,
        tuned,
        cable_tx: cable::channel(),
    };
    Router::new()
        .route("/bench/burst", get(burst))
        .route("/bench/live", get(live))
        .route("/bench/idle", get(idle))
        .route("/bench/fanout", get(fanout))
        .route("/bench/publish", post(publish))
        .route("/bench/stats", get(stats))
        .route("/bench/ws/fanout", get(ws::fanout))
        .route("/bench/ws/publish", post(ws::publish))
        .route("/bench/ws/idle", get(ws::idle))
        .route("/bench/ws/echo", get(ws::echo))
        .route("/bench/ws/flood", get(ws::flood))
        .route("/bench/cable", get(cable::cable))
        .route("/bench/cable/publish", post(cable::publish))
        .with_state(state)
}

#[tokio::main]
async fn main() {
    let tuned = std::env::args().any(|a| a == "--tuned");
    let listener = rill_bench::listen_from_args().await;
    if let Err(error) = axum::serve(listener, app(tuned)).await {
        eprintln!("{error}");
    }
}
