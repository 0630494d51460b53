//! rill — live HTTP responses for Rust.
//!
//! Controllers whose actions stream their answer while it is being produced:
//! an action calls [`Context::live`] and returns at once; a spawned writer
//! pushes chunks through a bounded channel that the response body pulls, so
//! a slow client slows the writer (back-pressure) and a departed one stops it
//! ([`LiveError::ClientDisconnected`]).
//!
//! ```no_run
//! use rill::{Context, Response, Router, Server};
//!
//! async fn numbers(ctx: Context) -> Response {
//!     ctx.live(|_ctx, mut stream| async move {
//!         for n in 1..=10 {
//!             stream.write(format!("{n}\n")).await?;
//!         }
//!         Ok(())
//!     })
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), rill::ServeError> {
//! let server = Server::bind("127.0.0.1:3000").await?;
//! server.serve(Router::new().get("/numbers", numbers)).await
//! # }
//! ```
//!
//! # Layout
//!
//! * `error` — one error enum per layer.
//! * `charset` — [`Charset`]: how text chunks become bytes.
//! * `pipe` — the bounded pipe between a writer (or a broker) and a body;
//!   its invariants are written in its module doc and checked with loom.
//! * `body` — [`Body`], the `http_body::Body` that pulls a pipe.
//! * `live` — [`live()`]/[`live_with`], [`LiveStream`] (the writer's end),
//!   the writer task and its [`WriterHandle`], [`LiveTracker`].
//! * `chunk` — [`Chunk`]: what a writer can write.
//! * `response` — [`Response`] and [`IntoResponse`].
//! * `context` — [`Context`]: the request as an action sees it.
//! * `handler` — [`Handler`]: async fns and closures as actions.
//! * `controller` — [`Controller`] and [`Routes`]: actions grouped with state.
//! * `json` — [`Json`]: request bodies as typed JSON with 415/400/422
//!   rejections; [`Response::json`]; `Result<R, E>` as a response.
//! * `router` — [`Router`]: method + path pattern → action; 404/405/413/HEAD.
//! * `request_body` — reading request bodies under size and time limits.
//! * `server` — [`Server`]: HTTP/1.1 + HTTP/2 on one port, deadlines for
//!   every phase, a connection cap, graceful shutdown ([`shutdown_signal`]).
//! * `sse` — Server-Sent Events: [`sse::Event`] encoding, [`sse::SseWriter`],
//!   [`sse::SseOptions`] (defaults, auto ids, heartbeats).
//! * `broker` — [`broker::Broker`]: the transport-agnostic fan-out core
//!   (channels, epochs and positions, history, presence, a backend seam).
//! * `ws` — WebSockets: [`Context::websocket`], [`ws::upgrade`],
//!   [`ws::WebSocket`].
//! * `events` — named-event streams over WebSocket:
//!   [`events::EventStream`], hub channels over the same socket, and the
//!   JavaScript client ([`events::client_module`]).
//! * `hub` — [`hub::Hub`]: channels fanning events out to many SSE
//!   subscribers, with filters, replay, slow-consumer policy, HTTP endpoints.
//! * `cable` — [`cable::Cable`]: ActionCable-compatible channels for the
//!   official Rails and AnyCable clients.
//! * `state` — [`state::Store`]: keyed state (stream/group/item) with atomic
//!   updates, watched as a snapshot then every change once, in order.
//!
//! Guides: [`docs/architecture.md`](crate::guides::architecture) (the path of a chunk), [`docs/live.md`](crate::guides::live),
//! [`docs/sse.md`](crate::guides::sse), [`docs/hub.md`](crate::guides::hub), [`docs/websocket.md`](crate::guides::websocket), [`docs/cable.md`](crate::guides::cable),
//! [`docs/state.md`](crate::guides::state) and [`docs/security.md`](crate::guides::security) (limits and timeouts).

#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

#[cfg(feature = "axum")]
pub mod axum;
mod body;
pub mod broker;
pub mod cable;
mod charset;
mod chunk;
mod context;
mod controller;
mod error;
pub mod events;
mod handler;
pub mod hub;
mod json;
mod live;
mod panic;
mod pipe;
mod query;
mod request_body;
mod response;
mod router;
mod server;
pub mod sse;
pub mod state;
mod sync;
pub mod ws;

/// The `http` crate rill's API speaks (`StatusCode`, `HeaderName`,
/// `HeaderValue`, `Method`, `Uri`), re-exported: no separate dependency to
/// keep at the same version.
///
/// ```
/// use rill::http::{header, HeaderValue, StatusCode};
///
/// let response = rill::Response::text("made")
///     .with_status(StatusCode::CREATED)
///     .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
/// assert_eq!(response.status(), StatusCode::CREATED);
/// ```
pub use http;

pub use body::Body;
pub use charset::Charset;
pub use chunk::Chunk;
pub use context::Context;
pub use controller::{Controller, Routes};
pub use error::{
    BodyError, BoxError, CharsetError, LiveError, RequestBodyError, SendError, ServeError,
    WriterError,
};
pub use handler::{BoxFuture, ContextOnly, Handler, IntoHandler, State, WithState};
pub use json::{Json, JsonRejection};
pub use live::{
    live, live_with, LiveOptions, LiveStream, LiveTracker, WriterHandle, WriterResult,
    DEFAULT_BUFFER_LIMIT, DEFAULT_SHUTDOWN_GRACE,
};
pub use request_body::{DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_BODY_LIMIT, DEFAULT_BODY_READ_TIMEOUT};
pub use response::{IntoResponse, Response};
pub use router::{Router, RouterService};
pub use server::{
    shutdown_signal, Server, DEFAULT_BACKLOG, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_SHUTDOWN_DEADLINE,
};

/// Entry points for the fuzz targets in `fuzz/` (built only by `cargo fuzz`,
/// which sets `cfg(fuzzing)`): the private parsers a client's bytes reach.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// The query-string parser of [`Context::query`](crate::Context::query).
    pub fn parse_query(query: &str) -> Vec<(String, String)> {
        crate::query::parse_query(query)
    }

    /// Percent-decoding of a path segment (`None`: not UTF-8).
    pub fn decode_segment(segment: &str) -> Option<String> {
        crate::query::decode_segment(segment)
    }

    /// Percent-decoding, `+` as space or not.
    pub fn percent_decode(input: &str, plus_is_space: bool) -> Vec<u8> {
        crate::query::percent_decode(input, plus_is_space)
    }

    /// An event id as a number, as auto ids and the hub read it.
    pub fn numeric_id(id: &str) -> Option<u64> {
        crate::sse::numeric_id(id)
    }

    /// The client's last event id from its headers or query.
    pub fn last_event_id(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
        crate::sse::last_event_id(headers, query)
    }

    /// Feeds a request head, in these pieces, to the server's scan for an
    /// impossible `Content-Length`.
    pub fn content_length_scan(pieces: &[&[u8]]) -> bool {
        crate::server::content_length_scan(pieces)
    }
}

/// The guides of `docs/` and the README, rendered here (and on docs.rs)
/// and run as doctests: every code block in them compiles.
pub mod guides {
    #[doc = include_str!("../README.md")]
    pub mod readme {}
    #[doc = include_str!("../docs/live.md")]
    pub mod live {}
    #[doc = include_str!("../docs/architecture.md")]
    pub mod architecture {}
    #[doc = include_str!("../docs/sse.md")]
    pub mod sse {}
    #[doc = include_str!("../docs/hub.md")]
    pub mod hub {}
    #[doc = include_str!("../docs/security.md")]
    pub mod security {}
    #[doc = include_str!("../docs/websocket.md")]
    pub mod websocket {}
    #[doc = include_str!("../docs/cable.md")]
    pub mod cable {}
    #[doc = include_str!("../docs/state.md")]
    pub mod state {}
    #[doc = include_str!("../docs/performance.md")]
    pub mod performance {}
    // Its examples use the `redis` feature.
    #[cfg(feature = "redis")]
    #[doc = include_str!("../docs/redis.md")]
    pub mod redis {}
    // Its examples use the `axum` feature.
    #[cfg(feature = "axum")]
    #[doc = include_str!("../docs/axum.md")]
    pub mod axum {}
}
