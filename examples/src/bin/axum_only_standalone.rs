//! The standalone app with axum alone (the twin of `standalone.rs`): the
//! ticker's ids are kept by hand, rooms are tokio broadcast channels — a
//! client that reconnects loses what was sent meanwhile (no history), and a
//! lagging one silently skips messages. `cargo run -p rill-examples --bin
//! axum_only_standalone [ADDR]`.
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
    Json, Router,
};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::broadcast;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};

#[derive(Clone, Deserialize, Serialize)]
struct Message {
    user: String,
    text: String,
}

#[derive(Clone, Default)]
struct Rooms(Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>);

impl Rooms {
    fn sender(&self, room: &str) -> broadcast::Sender<Message> {
        let mut rooms = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(256).0)
            .clone()
    }
}

async fn prices(headers: HeaderMap) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let ticks = IntervalStream::new(tokio::time::interval(Duration::from_millis(200)));
    let stream = ticks
        .zip(futures_util::stream::iter(last + 1..))
        .map(|(_, n)| {
            let price = 100.0 + (n * 7919 % 200) as f64 / 100.0;
            Ok(Event::default()
                .event("price")
                .id(n.to_string())
                .data(format!("{price:.2}")))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn room_events(
    State(rooms): State<Rooms>,
    Path(room): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream =
        BroadcastStream::new(rooms.sender(&room).subscribe()).filter_map(|message| async move {
            let message = message.ok()?; // lagged: skipped without a word
            Some(Ok(Event::default()
                .event("message")
                .json_data(message)
                .ok()?))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn post_message(
    State(rooms): State<Rooms>,
    Path(room): Path<String>,
    Json(message): Json<Message>,
) -> Json<serde_json::Value> {
    let delivered = rooms.sender(&room).send(message).unwrap_or(0);
    Json(serde_json::json!({ "delivered": delivered }))
}

async fn stats(State(rooms): State<Rooms>) -> Json<serde_json::Value> {
    let rooms = rooms.0.lock().unwrap_or_else(|p| p.into_inner());
    let counts: HashMap<&String, usize> =
        rooms.iter().map(|(k, s)| (k, s.receiver_count())).collect();
    Json(serde_json::json!({ "subscribers": counts.values().sum::<usize>(), "channels": counts }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3001".into());
    let app = Router::new()
        .route("/prices", get(prices))
        .route("/rooms/{room}/events", get(room_events))
        .route("/rooms/{room}", axum::routing::post(post_message))
        .route("/stats", get(stats))
        .with_state(Rooms::default());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // No graceful shutdown: axum's would wait for every SSE client to leave.
    axum::serve(listener, app).await?;
    Ok(())
}
