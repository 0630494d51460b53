//! The axum-embedded app with axum alone (the twin of `axum_embedded.rs`):
//! the same routes, layers and goodbye, with rooms as tokio broadcast
//! channels (no history: a reconnecting client loses what was sent
//! meanwhile) and the shutdown wired into every stream by hand.
//! `cargo run -p rill-examples --bin axum_only_embedded [ADDR]`.
use axum::{
    extract::{Path, State},
    response::sse::{Event, KeepAlive, KeepAliveStream, Sse},
    routing::{get, post},
    Json,
};
use futures_util::{stream::BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};
use tower_http::{compression::CompressionLayer, trace::TraceLayer};

#[derive(Clone, Deserialize, Serialize)]
struct Message {
    user: String,
    text: String,
}

#[derive(Clone)]
struct App {
    rooms: Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>,
    stop: watch::Receiver<bool>,
}

impl App {
    fn room(&self, room: &str) -> broadcast::Sender<Message> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(256).0)
            .clone()
    }

    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }
}

type Events = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

async fn prices(State(app): State<App>) -> Events {
    let ticks = IntervalStream::new(tokio::time::interval(Duration::from_millis(200)));
    let prices = ticks
        .zip(futures_util::stream::iter(0_u64..))
        .map(|(_, n)| {
            let price = 100.0 + (n * 7919 % 200) as f64 / 100.0;
            tracing::debug!(price, "tick");
            Ok(Event::default()
                .event("price")
                .id(n.to_string())
                .data(format!("{price:.2}")))
        });
    let bye = futures_util::stream::once(async {
        Ok(Event::default().event("bye").data("server going away"))
    });
    Sse::new(prices.take_until(app.stopped()).chain(bye).boxed()).keep_alive(KeepAlive::default())
}

async fn room_events(State(app): State<App>, Path(room): Path<String>) -> Events {
    let messages =
        BroadcastStream::new(app.room(&room).subscribe()).filter_map(|message| async move {
            let message = message.ok()?; // lagged: skipped without a word
            Some(Ok(Event::default()
                .event("message")
                .json_data(message)
                .ok()?))
        });
    Sse::new(messages.take_until(app.stopped()).boxed()).keep_alive(KeepAlive::default())
}

async fn post_message(
    State(app): State<App>,
    Path(room): Path<String>,
    Json(message): Json<Message>,
) -> Json<serde_json::Value> {
    let delivered = app.room(&room).send(message).unwrap_or(0);
    Json(serde_json::json!({ "delivered": delivered }))
}

async fn stats(State(app): State<App>) -> Json<serde_json::Value> {
    let rooms = app.rooms.lock().unwrap_or_else(|p| p.into_inner());
    let counts: HashMap<&String, usize> =
        rooms.iter().map(|(k, s)| (k, s.receiver_count())).collect();
    Json(serde_json::json!({ "subscribers": counts.values().sum::<usize>(), "channels": counts }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = std::env::var("RUST_LOG").unwrap_or("info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3002".into());
    let (stop_tx, stop) = watch::channel(false);
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/prices", get(prices))
        .route("/rooms/{room}/events", get(room_events))
        .route("/rooms/{room}", post(post_message))
        .route("/hub/stats", get(stats))
        .with_state(App {
            rooms: Arc::default(),
            stop,
        })
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
