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
///
/// # Example
///
/// ```
/// use rill::BoxError;
///
/// // What a live writer returns: any error, boxed, through `?`.
/// fn parse_port(text: &str) -> Result<u16, BoxError> {
///     Ok(text.parse::<u16>()?)
/// }
/// assert!(parse_port("8080").is_ok());
/// assert_eq!(parse_port("http").map_err(|e| e.to_string()), Err("invalid digit found in string".into()));
/// ```
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a write to a [`LiveStream`](crate::LiveStream) did not go through.
///
/// `ClientDisconnected` and `StreamClosed` are normal outcomes of a long-lived
/// response, not bugs: a writer catches them, releases what it holds and returns.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::LiveError;
///
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let response = rill::live(|mut stream| async move {
///     stream.write("first").await?;
///     stream.close();
///     let _ = tx.send(stream.write("second").await);
///     Ok(())
/// });
/// # let _body = response.into_http().into_body();
/// assert_eq!(rx.await?, Err(LiveError::StreamClosed));
/// # Ok(())
/// # }
/// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::LiveError;
    ///
    /// let response = rill::live(|mut stream| async move {
    ///     loop {
    ///         match stream.write("tick\n").await {
    ///             Ok(()) => tokio::task::yield_now().await,
    ///             Err(e) if e.is_end_of_stream() => return Ok(()), // the client left: fine
    ///             Err(e) => return Err(e.into()),
    ///         }
    ///     }
    /// });
    /// let writer = response.writer().expect("a live response has a writer");
    /// drop(response); // the client goes away
    /// assert!(writer.await.is_ok());
    /// assert!(!LiveError::Unencodable { character: '€', charset: "iso-8859-2" }.is_end_of_stream());
    /// # Ok(())
    /// # }
    /// ```
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
/// # Example
///
/// ```
/// use rill::sse::{Event, FrameError};
///
/// // An id taken from a database row that was not meant to be one:
/// let event = Event::data("x").id("row\0id");
/// assert_eq!(event.encode(), Err(FrameError::IdNul));
/// assert_eq!(FrameError::IdNul.to_string(), "id contains a NUL character");
/// ```
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
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::{sse::{self, Event, FrameError, SseOptions}, SendError};
///
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
///     let refused = sse.send(Event::data("x").event("a\nb")).await;
///     let _ = tx.send(refused);
///     sse.write("still usable").await?;
///     Ok(())
/// });
/// # let _body = response.into_http().into_body();
/// assert_eq!(rx.await?, Err(SendError::Frame(FrameError::EventNameLineBreak)));
/// # Ok(())
/// # }
/// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{sse::FrameError, LiveError, SendError};
    ///
    /// assert!(SendError::Stream(LiveError::ClientDisconnected).is_end_of_stream());
    /// assert!(!SendError::Frame(FrameError::IdLineBreak).is_end_of_stream()); // a bug to fix
    /// ```
    pub fn is_end_of_stream(&self) -> bool {
        matches!(self, SendError::Stream(live) if live.is_end_of_stream())
    }
}

/// How a live writer task ended badly; the `Err` side of a
/// [`WriterHandle`](crate::WriterHandle)'s result.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::WriterError;
///
/// let response = rill::live(|mut stream| async move {
///     stream.write("partial").await?;
///     Err("the database went away".into())
/// });
/// let writer = response.writer().expect("a live response has a writer");
/// # let _body = response.into_http().into_body();
/// let error = writer.await.expect_err("the writer failed");
/// assert!(matches!(error, WriterError::Failed(_)));
/// assert_eq!(error.to_string(), "live writer failed");
/// # Ok(())
/// # }
/// ```
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
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::BodyExt;
/// use rill::BodyError;
///
/// let response = rill::live(|mut stream| async move {
///     stream.write("partial").await?;
///     Err("the database went away".into())
/// });
/// // The client sees an aborted response, never a complete-looking one.
/// let error = response.into_http().into_body().collect().await.expect_err("aborted");
/// assert!(matches!(error, BodyError::WriterFailed));
/// # Ok(())
/// # }
/// ```
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
///
/// # Example
///
/// ```
/// use rill::RequestBodyError;
///
/// let error = RequestBodyError::TooLarge { limit: 1024 * 1024 };
/// assert_eq!(error.to_string(), "request body is larger than 1048576 bytes");
/// assert_eq!(error.status(), 413);
/// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::RequestBodyError;
    /// use std::time::Duration;
    ///
    /// let slow = RequestBodyError::IdleTimeout { timeout: Duration::from_secs(10) };
    /// assert_eq!(slow.status(), 408);
    /// ```
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
///
/// # Example
///
/// ```
/// use rill::Charset;
///
/// let error = Charset::for_label("klingon").expect_err("not a WHATWG label");
/// assert_eq!(error.label, "klingon");
/// assert_eq!(error.to_string(), r#"unknown charset label "klingon""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown charset label {label:?}")]
pub struct CharsetError {
    /// The label as given.
    pub label: String,
}

/// The server could not start.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use rill::{ServeError, Server};
///
/// let first = Server::bind("127.0.0.1:0").await.expect("a free port");
/// let taken = first.local_addr().expect("bound").to_string();
/// match Server::bind(&taken).await {
///     Err(ServeError::Bind { addr, .. }) => assert_eq!(addr.to_string(), taken),
///     other => panic!("expected a bind error, got {other:?}"),
/// }
/// # }
/// ```
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
