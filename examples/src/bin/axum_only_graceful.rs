//! The graceful app with axum alone (the twin of `graceful.rs`): the
//! streams must be told by hand (a watch channel) to say goodbye and end,
//! or axum's graceful shutdown waits for every client to leave; SIGTERM
//! is wired by hand, and so is a deadline for clients that never leave.
//! `cargo run -p rill-examples --bin axum_only_graceful [ADDR]`.
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
    Router,
};
use futures_util::{Stream, StreamExt};
use std::{convert::Infallible, time::Duration};
use tokio::sync::watch;
use tokio_stream::wrappers::IntervalStream;

async fn clock(
    State(stop): State<watch::Receiver<bool>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = IntervalStream::new(tokio::time::interval(Duration::from_millis(200)));
    let ticks = ticks
        .zip(futures_util::stream::iter(0_u64..))
        .map(|(_, n)| Ok(Event::default().event("tick").data(n.to_string())));
    let mut stop = stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let bye = futures_util::stream::once(async {
        Ok(Event::default().event("bye").data("server going away"))
    });
    Sse::new(ticks.take_until(stopped).chain(bye)).keep_alive(KeepAlive::default())
}

async fn signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(term) => { term.recv().await; } None => std::future::pending().await } } => {}
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3003".into());
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = Router::new()
        .route("/clock", get(clock))
        .with_state(stop_rx);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let (deadline_tx, deadline_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        signal().await;
        let _ = stop_tx.send(true);
        let _ = deadline_tx.send(());
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let deadline = async {
        let _ = deadline_rx.await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    tokio::select! {
        served = std::future::IntoFuture::into_future(server) => served?,
        _ = deadline => eprintln!("deadline passed; stopping anyway"),
    }
    println!("stopped");
    Ok(())
}
