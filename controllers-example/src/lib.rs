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

/// How the example's brokers use Redis (`--redis-*` on its command line).
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The key prefix every broker's own prefix starts with
    /// (`--redis-prefix`, `rill:` by default).
    pub prefix: String,
    /// How long the members of a process that died stay present
    /// ([`RedisConfig::presence_ttl`], `--redis-presence-ttl`).
    pub presence_ttl: Option<std::time::Duration>,
    /// Publications kept per channel for resuming clients
    /// ([`RedisConfig::history`], `--redis-history`).
    pub history: Option<usize>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "rill:".to_owned(),
            presence_ttl: None,
            history: None,
        }
    }
}

impl Backends {
    /// One Redis connection set per broker, each under its own key prefix
    /// (`<prefix>hub:`, `<prefix>cable:`, `<prefix>state:`), as in one
    /// process the hub, the cable and the state store have brokers of their
    /// own; `options` sets what else they share.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rill::broker::BackendError> {
    /// use controllers_example::{Backends, RedisOptions};
    ///
    /// let options = RedisOptions { history: Some(100), ..RedisOptions::default() };
    /// let backends = Backends::redis("redis://127.0.0.1:6379", &options).await?;
    /// # let _ = backends;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn redis(url: &str, options: &RedisOptions) -> Result<Backends, BackendError> {
        let connect = |part: &str| {
            let mut config = RedisConfig::new(url).prefix(format!("{}{part}:", options.prefix));
            if let Some(ttl) = options.presence_ttl {
                config = config.presence_ttl(ttl);
            }
            if let Some(history) = options.history {
                config = config.history(history);
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
