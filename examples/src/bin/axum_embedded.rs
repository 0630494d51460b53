//! rill inside an axum app: axum routes, extractors and tower-http layers
//! (trace, compression), rill's live streams and hub in the handlers, and a
//! graceful shutdown that reaches every stream. `cargo run -p rill-examples
//! --bin axum_embedded [ADDR]`; `RUST_LOG=debug` shows the request spans.
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Extension, Json,
};
use rill::{
    hub::{Hub, Subscription},
    sse::{Event, SseOptions},
    Context, LiveTracker, Response,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tower_http::{compression::CompressionLayer, trace::TraceLayer};

#[derive(Deserialize, Serialize)]
struct Message {
    user: String,
    text: String,
}

/// A price every 200 ms, and a goodbye when the server shuts down.
async fn prices(ctx: Context) -> Response {
    ctx.sse_with(SseOptions::new().auto_id(), |_ctx, mut sse| async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        let closed = sse.closed();
        tokio::pin!(closed);
        for n in 0_u64.. {
            tokio::select! {
                _ = &mut closed => break,
                _ = ticks.tick() => {
                    let price = 100.0 + (n * 7919 % 200) as f64 / 100.0;
                    tracing::debug!(price, "tick");
                    sse.send(Event::data(format!("{price:.2}")).event("price")).await?;
                }
            }
        }
        if sse.is_shutting_down() {
            sse.send(Event::data("server going away").event("bye"))
                .await?;
        }
        Ok(())
    })
}

async fn health(Extension(tracker): Extension<LiveTracker>) -> String {
    format!("ok, {} live streams\n", tracker.active())
}

async fn room_events(State(hub): State<Hub>, Path(room): Path<String>, ctx: Context) -> Response {
    hub.subscribe(ctx, Subscription::new().channel(room))
}

async fn post_message(
    State(hub): State<Hub>,
    Path(room): Path<String>,
    Json(message): Json<Message>,
) -> Result<Json<serde_json::Value>, Response> {
    let id = hub
        .publish(&room, Event::json(&message)?.event("message"))
        .await?;
    Ok(Json(serde_json::json!({ "id": id.to_string() })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = std::env::var("RUST_LOG").unwrap_or("info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3002".into());
    let (hub, tracker) = (Hub::new(), LiveTracker::new());
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/prices", get(prices))
        .route("/rooms/{room}/events", get(room_events))
        .route("/rooms/{room}", post(post_message))
        // The hub's own endpoints: `/hub?channel=…`, `/hub/stats`.
        .nest_service("/hub", hub.mount(rill::Router::new(), "/").into_service())
        .with_state(hub)
        .layer(Extension(tracker.clone()))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = async move {
        rill::shutdown_signal().await;
        tokio::spawn(async move { tracker.shutdown(Duration::from_secs(10)).await });
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
