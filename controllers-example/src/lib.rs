//! The rill example app: controllers with live actions.
//!
//! Run with: `cargo run -p controllers-example -- --addr 127.0.0.1:3000`
//!
//! `main.rs` serves [`app`]; the tests in `tests/` serve the very same
//! router on `127.0.0.1:0`.

pub mod cable_token;
pub mod channels;
pub mod controllers;

use rill::{
    broker::{Backend, BackendError, RedisBackend, RedisConfig},
    Router,
};
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
    app_on(secret, Backends::default())
}

/// Where the app's fan-outs live: in this process (the default), or on
/// Redis (`--redis URL`), so that several processes share them.
#[derive(Default)]
pub struct Backends {
    /// The hub's (`/hub`, `/chat`, WebSocket channels).
    pub hub: Option<Arc<dyn Backend>>,
    /// The ActionCable server's streams.
    pub cable: Option<Arc<dyn Backend>>,
    /// The keyed state store's items and changes (`/state`, the iii
    /// endpoint, the todos).
    pub state: Option<Arc<dyn Backend>>,
}

impl Backends {
    /// One Redis connection set per broker, each under its own key prefix
    /// (`<prefix>hub:`, `<prefix>cable:`, `<prefix>state:`), as in one
    /// process the hub, the cable and the state store have brokers of their
    /// own; with `presence_ttl`, their members' presence TTL
    /// ([`RedisConfig::presence_ttl`], `--redis-presence-ttl`).
    pub async fn redis(
        url: &str,
        prefix: &str,
        presence_ttl: Option<std::time::Duration>,
    ) -> Result<Backends, BackendError> {
        let connect = |part: &str| {
            let mut config = RedisConfig::new(url).prefix(format!("{prefix}{part}:"));
            if let Some(ttl) = presence_ttl {
                config = config.presence_ttl(ttl);
            }
            RedisBackend::connect(config)
        };
        let hub: Arc<dyn Backend> = Arc::new(connect("hub").await?);
        let cable: Arc<dyn Backend> = Arc::new(connect("cable").await?);
        let state: Arc<dyn Backend> = Arc::new(connect("state").await?);
        Ok(Backends {
            hub: Some(hub),
            cable: Some(cable),
            state: Some(state),
        })
    }
}

/// [`app_with`] on these backends.
pub fn app_on(secret: CableSecret, backends: Backends) -> Router {
    let metrics = Arc::new(Metrics::default());
    let hub = chat_hub(backends.hub);
    let store = match backends.state {
        Some(backend) => rill::state::Store::builder()
            .broker(rill::broker::Broker::builder().backend(backend).build())
            .build(),
        None => rill::state::Store::new(),
    };
    let router = Router::new()
        .controller(Arc::new(PagesController))
        .controller(Arc::new(LiveController::new(metrics.clone())))
        .controller(Arc::new(EventsController))
        .controller(Arc::new(StatsController::new(metrics)))
        .controller(Arc::new(ChatController))
        .controller(Arc::new(SocketsController::new(hub.clone(), store.clone())))
        .controller(Arc::new(CableController::new(secret, backends.cable)))
        .controller(Arc::new(TodosController::new(store.clone())));
    // GET/PUT/PATCH/DELETE /state/:stream/:group/:item, …
    let router = state_routes(router, &store);
    // GET /hub, GET /hub/stats, POST /hub/broadcast
    hub.mount(router, "/hub")
}
