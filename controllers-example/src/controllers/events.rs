//! `GET /events`, `GET /ticker`, `GET /llm`: Server-Sent Events.

use rill::{
    sse::{Event, SseOptions},
    Context, Controller, Response, Routes,
};
use std::{sync::Arc, time::Duration};

/// SSE demos.
#[derive(Debug)]
pub struct EventsController;

impl Controller for EventsController {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .get("/events", Self::events)
            .get("/ticker", Self::ticker)
            .get("/llm", Self::llm);
    }
}

/// The paragraph `/llm` streams, one word per event.
pub const PARAGRAPH: &str = "Live responses let a server answer while it is still thinking: \
each token reaches the reader the moment it exists, and nothing waits for the whole.";

impl EventsController {
    /// The frames of the Keayl SSE example, with `retry: 5000` as the
    /// stream's default; then the stream ends.
    async fn events(self: Arc<Self>, ctx: Context) -> Response {
        let options = SseOptions::new().retry(Duration::from_millis(5000));
        ctx.sse_with(options, |_ctx, mut sse| async move {
            sse.send(Event::data("hello").event("greeting")).await?;
            sse.write("world").await?;
            sse.write("tick").await?;
            sse.send(Event::data("pong").retry(Duration::from_millis(1000)))
                .await?;
            sse.write("line one\nline two").await?;
            Ok(())
        })
    }

    /// `tick N` every 200 ms with ids 1, 2, 3, …; a client reconnecting with
    /// `Last-Event-ID: K` continues at K+1.
    async fn ticker(self: Arc<Self>, ctx: Context) -> Response {
        let options = SseOptions::new()
            .retry(Duration::from_millis(500))
            .auto_id();
        ctx.sse_with(options, |_ctx, mut sse| async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                let n = sse.next_id().unwrap_or(1);
                sse.write(format!("tick {n}")).await?;
            }
        })
    }

    /// Token streaming: each word of [`PARAGRAPH`] 50 ms apart, then
    /// `event: done`.
    async fn llm(self: Arc<Self>, ctx: Context) -> Response {
        ctx.sse(|_ctx, mut sse| async move {
            for word in PARAGRAPH.split(' ') {
                sse.send(Event::data(word).event("token")).await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sse.send(Event::data("").event("done")).await?;
            Ok(())
        })
    }
}
