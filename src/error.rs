//! Error types, one enum per layer.
//!
//! * [`LiveError`] — what a live writer sees when a write cannot go through.
//! * [`FrameError`] — an SSE event that cannot be encoded.
//! * [`SendError`] — why an SSE writer's send did not go through.
//! * [`WriterError`] — how a live writer task ended, as seen through its
//!   [`WriterHandle`](crate::WriterHandle).
//! * [`BodyError`] — why a response body was aborted (what hyper sees).
//! * [`CharsetError`] — an unknown charset label.
//! * [`RequestBodyError`] — a request body could not be read (and the status
//!   the client is answered with).
//! * [`ServeError`] — the server could not bind or listen.

use std::{error::Error as StdError, io, net::SocketAddr, sync::Arc};

/// A boxed error that can cross threads: what writers and streams may fail with.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a write to a [`LiveStream`](crate::LiveStream) did not go through.
///
/// `ClientDisconnected` and `StreamClosed` are normal outcomes of a long-lived
/// response, not bugs: a writer catches them, releases what it holds and returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The stream was closed — by [`close`](crate::LiveStream::close),
    /// [`disconnect`](crate::LiveStream::disconnect), or by the framework (the
    /// writer returned, or the server is shutting down). Nothing more can be
    /// written; the writer should return.
    #[error("the live stream is closed")]
    StreamClosed,
    /// The client went away (its connection closed or its HTTP/2 stream was
    /// reset). Nothing more will reach it; release resources and return.
    #[error("the client disconnected")]
    ClientDisconnected,
    /// The text holds a character the response charset cannot represent.
    /// Nothing of this chunk was written; the stream is still usable.
    #[error("character {character:?} cannot be encoded in {charset}")]
    Unencodable {
        /// The first character that has no representation in the charset.
        character: char,
        /// The charset's canonical name, e.g. `windows-1252`.
        charset: &'static str,
    },
}

impl LiveError {
    /// Whether this error means the response is over for a reason the writer
    /// should treat as normal (closed stream or departed client).
    pub fn is_end_of_stream(&self) -> bool {
        matches!(
            self,
            LiveError::StreamClosed | LiveError::ClientDisconnected
        )
    }
}

/// Why an SSE event ([`sse::Event`](crate::sse::Event)) cannot be encoded.
///
/// Only values that would change how a client splits the stream are refused;
/// everything else the [spec] allows (NUL in event names and data, any
/// Unicode, empty values) is written as is. When encoding fails, nothing was
/// written.
///
/// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The event name contains CR or LF, which would end the `event:` line
    /// early and let the rest be read as another field. Event names are
    /// single-line tokens: remove or replace the line break.
    #[error("event name contains a line break")]
    EventNameLineBreak,
    /// The id contains CR or LF, which would end the `id:` line early and let
    /// the rest be read as another field. Use a single-line id (for example a
    /// number or an opaque token).
    #[error("id contains a line break")]
    IdLineBreak,
    /// The id contains U+0000 NULL; clients ignore such an `id:` field, so
    /// the id would silently not reach them. Use an id without NUL.
    #[error("id contains a NUL character")]
    IdNul,
}

/// Why an SSE writer's [`send`](crate::sse::SseWriter::send) did not go
/// through: the event itself, or the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The event could not be encoded (a line break in its `event` or `id`,
    /// a NUL in its `id`). Nothing was written — no field can be injected
    /// into the stream — and the stream stays usable.
    #[error("invalid server-sent event")]
    Frame(#[from] FrameError),
    /// The stream can take no more (closed, or the client gone), or the
    /// text could not be encoded: see [`LiveError`].
    #[error("the event was not sent")]
    Stream(#[from] LiveError),
}

impl SendError {
    /// Whether the response is over for a reason the writer should treat as
    /// normal (closed stream or departed client).
    pub fn is_end_of_stream(&self) -> bool {
        matches!(self, SendError::Stream(live) if live.is_end_of_stream())
    }
}

/// How a live writer task ended badly; the `Err` side of a
/// [`WriterHandle`](crate::WriterHandle)'s result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WriterError {
    /// The writer returned a [`LiveError`] (typically `ClientDisconnected`).
    #[error("live writer stopped")]
    Live(#[source] LiveError),
    /// The writer returned some other error; the response was aborted.
    #[error("live writer failed")]
    Failed(#[source] Arc<dyn StdError + Send + Sync + 'static>),
    /// The writer panicked; the response was aborted. The panic did not reach
    /// any other task.
    #[error("live writer panicked: {message}")]
    Panicked {
        /// The panic payload, if it was a string.
        message: String,
    },
    /// The writer task was cancelled before it finished (server shutdown
    /// deadline, or runtime shutdown).
    #[error("live writer was cancelled")]
    Cancelled,
}

/// Why a response body ended with an error instead of cleanly.
///
/// hyper turns a body error into an aborted response: on HTTP/1.1 the
/// connection is closed without the terminating chunk, on HTTP/2 the stream is
/// reset. The client therefore never mistakes a broken response for a
/// complete one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The live writer returned an error or panicked.
    #[error("live writer failed; response aborted")]
    WriterFailed,
    /// The live writer was cancelled before it closed the stream.
    #[error("live writer was cancelled; response aborted")]
    WriterCancelled,
    /// A pull-based response stream yielded an error.
    #[error("response stream failed")]
    Stream(#[source] BoxError),
}

/// Why a request body was not read; the router answers the client with
/// [`status`](Self::status) and the action does not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestBodyError {
    /// The body is (or declares itself) longer than the limit
    /// ([`Router::body_limit`](crate::Router::body_limit)): `413`.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The whole body took longer than
    /// [`Router::body_read_timeout`](crate::Router::body_read_timeout): `408`.
    #[error("request body not received within {timeout:?}")]
    ReadTimeout {
        /// The limit that passed.
        timeout: std::time::Duration,
    },
    /// The client paused longer than
    /// [`Router::body_idle_timeout`](crate::Router::body_idle_timeout)
    /// between two pieces of the body: `408`.
    #[error("request body stalled for {timeout:?}")]
    IdleTimeout {
        /// The limit that passed.
        timeout: std::time::Duration,
    },
    /// The body's framing was broken or the connection failed while reading
    /// it: `400`.
    #[error("request body could not be read")]
    Malformed(#[source] BoxError),
}

impl RequestBodyError {
    /// The status the client is answered with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            RequestBodyError::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            RequestBodyError::ReadTimeout { .. } | RequestBodyError::IdleTimeout { .. } => {
                http::StatusCode::REQUEST_TIMEOUT
            }
            RequestBodyError::Malformed(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// A charset label that the WHATWG Encoding Standard does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown charset label {label:?}")]
pub struct CharsetError {
    /// The label as given.
    pub label: String,
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address did not resolve to anything.
    #[error("the address resolved to nothing")]
    NoAddress,
    /// Binding or listening on the address failed (in use, permission, …).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Another I/O failure (e.g. reading the listener's local address).
    #[error("server i/o failed")]
    Io(#[from] io::Error),
}
