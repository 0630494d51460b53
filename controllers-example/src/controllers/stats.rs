//! `GET /stats`: what is open right now.

use rill::{Context, Controller, Response, Routes};
use std::sync::{atomic::Ordering, Arc};

use super::Metrics;

/// Reports open live streams and clean-up counts as JSON.
#[derive(Debug)]
pub struct StatsController {
    metrics: Arc<Metrics>,
}

impl Controller for StatsController {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/stats", Self::show);
    }
}

impl StatsController {
    /// A controller that reads `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        StatsController { metrics }
    }

    /// `{"live_active": N, "feed_cleanups": M}`
    async fn show(self: Arc<Self>, ctx: Context) -> Response {
        Response::json_string(format!(
            "{{\"live_active\":{},\"feed_cleanups\":{}}}",
            ctx.tracker().active(),
            self.metrics.feed_cleanups.load(Ordering::Relaxed)
        ))
    }
}
