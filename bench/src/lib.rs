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
//!
//! The binaries are `loadgen` (the suite) and the two comparison servers,
//! `axum_server` and `hyper_server`.

#![deny(missing_docs, missing_debug_implementations)]

pub mod client;
pub mod report;
pub mod scenarios;
pub mod servers;
pub mod sse;
pub mod stats;
pub mod wire;
