//! rill alone: a price ticker and chat rooms whose clients resume exactly
//! after a reconnect, on rill's own server. `cargo run -p rill-examples
//! --bin standalone [ADDR]`, then `curl -N localhost:3001/rooms/lobby/events`.
use rill::{
    hub::{Hub, Subscription},
    sse::{Event, SseOptions},
    Context, Json, Response, Router, Server, State,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Deserialize, Serialize)]
struct Message {
    user: String,
    text: String,
}

/// A price every 200 ms; the ids let a reconnecting browser carry on.
async fn prices(ctx: Context) -> Response {
    ctx.sse_with(SseOptions::new().auto_id(), |_ctx, mut sse| async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        for n in 0_u64.. {
            ticks.tick().await;
            let price = 100.0 + (n * 7919 % 200) as f64 / 100.0;
            sse.send(Event::data(format!("{price:.2}")).event("price"))
                .await?;
        }
        Ok(())
    })
}

/// A room's messages; a client back with `Last-Event-ID` gets what it missed.
async fn room_events(State(hub): State<Hub>, ctx: Context) -> Response {
    let room = ctx.param("room").unwrap_or_default().to_owned();
    hub.subscribe(ctx, Subscription::new().channel(room))
}

/// `POST /rooms/{room}` `{"user": …, "text": …}`: 415/400/422 when it is not that.
async fn post_message(State(hub): State<Hub>, ctx: Context) -> Result<Response, Response> {
    let Json(message) = Json::<Message>::from_context(&ctx)?;
    let room = ctx.param("room").unwrap_or_default();
    let id = hub
        .publish(room, Event::json(&message)?.event("message"))
        .await?;
    Ok(Response::json(&serde_json::json!({ "id": id.to_string() })))
}

async fn stats(State(hub): State<Hub>, _ctx: Context) -> Response {
    Response::json(&hub.stats(true))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3001".into());
    let router = Router::with_state(Hub::new())
        .get("/prices", prices)
        .get("/rooms/{room}/events", room_events)
        .post("/rooms/{room}", post_message)
        .get("/stats", stats);
    let server = Server::bind(addr).await?;
    println!("listening on http://{}", server.local_addr()?);
    server
        .serve_with_shutdown(router, rill::shutdown_signal())
        .await?;
    Ok(())
}
