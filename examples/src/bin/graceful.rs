//! Graceful shutdown on rill's server: on Ctrl-C or SIGTERM every stream
//! is told, says goodbye within the grace, and the server stops — at once
//! if every writer returns, even with clients that never leave.
//! `cargo run -p rill-examples --bin graceful [ADDR]`.
use rill::{sse::Event, Context, Response, Router, Server};
use std::time::Duration;

async fn clock(ctx: Context) -> Response {
    ctx.sse(|_ctx, mut sse| async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        let closed = sse.closed();
        tokio::pin!(closed);
        for n in 0_u64.. {
            tokio::select! {
                _ = &mut closed => break,
                _ = ticks.tick() => sse.send(Event::data(n.to_string()).event("tick")).await?,
            }
        }
        if sse.is_shutting_down() {
            sse.send(Event::data("server going away").event("bye"))
                .await?;
        }
        Ok(())
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3003".into());
    let server = Server::bind(addr)
        .await?
        .shutdown_grace(Duration::from_secs(2))
        .shutdown_deadline(Duration::from_secs(5));
    println!("listening on http://{}", server.local_addr()?);
    server
        .serve_with_shutdown(Router::new().get("/clock", clock), rill::shutdown_signal())
        .await?;
    println!("stopped");
    Ok(())
}
