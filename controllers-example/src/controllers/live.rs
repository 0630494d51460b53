//! `GET /numbers` and `GET /feed`: live plain-text bodies.

use rill::{Context, Controller, LiveError, Response, Routes};
use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use super::Metrics;

/// Live plain-text demos.
#[derive(Debug)]
pub struct LiveController {
    metrics: Arc<Metrics>,
}

impl Controller for LiveController {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .get("/numbers", Self::numbers)
            .get("/feed", Self::feed);
    }
}

impl LiveController {
    /// A controller that records its clean-ups in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        LiveController { metrics }
    }

    /// `1\n2\n…10\n`, one line per write.
    async fn numbers(self: Arc<Self>, ctx: Context) -> Response {
        ctx.live(|_ctx, mut stream| async move {
            for n in 1..=10 {
                stream.write(format!("{n}\n")).await?;
            }
            Ok(())
        })
    }

    /// One line every 100 ms until the client leaves (or the server stops).
    async fn feed(self: Arc<Self>, ctx: Context) -> Response {
        ctx.live(move |_ctx, mut stream| async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for n in 1u64.. {
                tick.tick().await;
                match stream.write(format!("line {n}\n")).await {
                    Ok(()) => {}
                    Err(LiveError::ClientDisconnected) => {
                        // The clean-up a real feed would do: unsubscribe,
                        // release a cursor, ...
                        self.metrics.feed_cleanups.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
    }
}
