//! Benchmark tooling for rill: the load generator's building blocks.
//!
//! # Layout
//!
//! - `wire`: HTTP/1.1 response head and body framing (length, chunked, EOF), zero-copy.
//! - `sse`: an in-place SSE parser and the checkers that verify ids and record latency.
//! - `client`: a blocking big-buffer reader, async connect/stream/keep-alive helpers.
//! - `servers`: starting, measuring (`/proc`) and killing the servers under test.
//! - `scenarios`: the measured runs of issue 5, each bounded in time and count.
//! - `report`: medians, ratios, the JSON file and the printed table.
//! - `stats`: median and nearest-rank quantiles.
//! - `ws`: a WebSocket client (handshake, frames) and the check of event lines.
//! - `ws_scenarios`: the WebSocket runs of issue 10.
//! - `cable`: the ActionCable run (`cable_fanout`): its clients and their check.
//! - `state`: the keyed-state run (`state_fanout`): SSE subscribers of one
//!   `rill::state` group rebuilding its state, and the hub fan-out peer.
//!
//! The binaries are `loadgen` (the suite), the two comparison servers,
//! `axum_server` and `hyper_server`, and `redis_bench` (issue 13: rill's
//! broker on its Redis backend against `redis-benchmark` and the in-memory
//! broker).

#![deny(missing_docs, missing_debug_implementations)]

pub mod cable;
pub mod client;
pub mod report;
pub mod scenarios;
pub mod servers;
pub mod sse;
pub mod state;
pub mod stats;
pub mod wire;
pub mod ws;
pub mod ws_scenarios;

/// The data of published event `seq` in the contract: `<seq> <unix_nanos>`
/// padded with `x` to `size` bytes (the nanoseconds let subscribers measure
/// latency).
pub fn publish_data(seq: u64, size: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut data = format!("{seq} {nanos}");
    while data.len() < size {
        data.push('x');
    }
    data
}

/// Start-up shared by the peer servers (`axum_server`, `hyper_server`): binds
/// the `--addr` argument (default `127.0.0.1:3000`), prints the contract's
/// first line `listening on http://IP:PORT`, and exits with a message when
/// the address cannot be bound.
pub async fn listen_from_args() -> tokio::net::TcpListener {
    use std::io::Write;
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:3000");
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = args.next().unwrap_or(addr);
        }
    }
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on http://{local}"),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    }
    let _ = std::io::stdout().flush();
    listener
}
