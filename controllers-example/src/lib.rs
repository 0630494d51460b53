//! The rill example app: controllers with live actions.
//!
//! Run with: `cargo run -p controllers-example -- --addr 127.0.0.1:3000`
//!
//! `main.rs` serves [`app`]; the tests in `tests/` serve the very same
//! router on `127.0.0.1:0`.

pub mod cable_token;
pub mod channels;
pub mod controllers;

use rill::Router;
use std::sync::Arc;

use cable_token::CableSecret;
use controllers::{
    chat_hub, state_routes, CableController, ChatController, EventsController, LiveController,
    Metrics, PagesController, SocketsController, StatsController, TodosController,
};

/// The whole app: every controller's routes on one router, with a random
/// key for cable tokens.
pub fn app() -> Router {
    app_with(CableSecret::random())
}

/// [`app`], signing cable tokens with `secret` (`--cable-secret`).
pub fn app_with(secret: CableSecret) -> Router {
    let metrics = Arc::new(Metrics::default());
    let hub = chat_hub();
    let store = rill::state::Store::new();
    let router = Router::new()
        .controller(Arc::new(PagesController))
        .controller(Arc::new(LiveController::new(metrics.clone())))
        .controller(Arc::new(EventsController))
        .controller(Arc::new(StatsController::new(metrics)))
        .controller(Arc::new(ChatController))
        .controller(Arc::new(SocketsController::new(hub.clone(), store.clone())))
        .controller(Arc::new(CableController::new(secret)))
        .controller(Arc::new(TodosController::new(store.clone())));
    // GET/PUT/PATCH/DELETE /state/:stream/:group/:item, …
    let router = state_routes(router, &store);
    // GET /hub, GET /hub/stats, POST /hub/broadcast
    hub.mount(router, "/hub")
}
