//! The WebSocket layer's errors.

use http::StatusCode;

/// Why a request could not be upgraded to a WebSocket; the client is
/// answered with [`status`](Self::status) and no socket is opened.
///
/// # Example
///
/// ```
/// use rill::ws::UpgradeError;
///
/// // Each refusal knows its status: log the reason, answer the status.
/// let error = UpgradeError::OriginRefused;
/// assert_eq!(error.to_string(), "origin not allowed");
/// assert_eq!(error.status(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Not a WebSocket handshake: a `GET` with `Upgrade: websocket` and
    /// `Connection: upgrade` (HTTP/1.1), or an extended `CONNECT` with
    /// `:protocol websocket` (HTTP/2). `426 Upgrade Required`.
    #[error("not a WebSocket handshake")]
    NotWebSocket,
    /// `Sec-WebSocket-Version` is not 13. `426`, with the version the server
    /// speaks.
    #[error("unsupported WebSocket version")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing or not 16 bytes of base64. `400`.
    #[error("invalid Sec-WebSocket-Key")]
    InvalidKey,
    /// The `Origin` is not one the endpoint accepts. `403`.
    #[error("origin not allowed")]
    OriginRefused,
    /// The client offered subprotocols and the endpoint requires one, but
    /// supports none of them. `400`.
    #[error("no supported subprotocol offered")]
    NoProtocol,
    /// The connection cannot be taken over (no upgrade support on it: a
    /// server without upgrades, or the request was already consumed).
    /// `500`.
    #[error("the connection cannot be upgraded")]
    NotUpgradable,
}

impl UpgradeError {
    /// The status the client is answered with.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::UpgradeError;
    ///
    /// assert_eq!(UpgradeError::NotWebSocket.status(), 426);
    /// assert_eq!(UpgradeError::InvalidKey.status(), 400);
    /// assert_eq!(UpgradeError::NotUpgradable.status(), 500);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            UpgradeError::NotWebSocket | UpgradeError::UnsupportedVersion => {
                StatusCode::UPGRADE_REQUIRED
            }
            UpgradeError::InvalidKey | UpgradeError::NoProtocol => StatusCode::BAD_REQUEST,
            UpgradeError::OriginRefused => StatusCode::FORBIDDEN,
            UpgradeError::NotUpgradable => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Why a WebSocket operation did not go through. Like
/// [`LiveError`](crate::LiveError), `Closed` and `Disconnected` are normal
/// ends of a socket, not bugs.
///
/// # Example
///
/// ```
/// use rill::{ws::WsError, Context, Response};
///
/// async fn chat(ctx: Context) -> Response {
///     ctx.websocket(|_ctx, mut socket| async move {
///         while let Some(message) = socket.recv().await {
///             match message {
///                 Ok(message) => socket.send(message).await?,
///                 Err(WsError::TooBig { len, max }) => tracing::info!(len, max, "dropped a big message"),
///                 Err(other) => return Err(other.into()),
///             }
///         }
///         Ok(())
///     })
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The socket was closed — by this side, by the peer's close frame, or
    /// by a server shutdown (which sends `1001 Going Away`). Nothing more can
    /// be sent.
    #[error("the WebSocket is closed")]
    Closed,
    /// The peer went away without a close handshake (the connection
    /// dropped, or it stopped answering pings).
    #[error("the WebSocket peer disconnected")]
    Disconnected,
    /// The peer broke the protocol (a bad frame, a text message that is not
    /// UTF-8 — answered with `1007`), and the socket was closed.
    #[error("the WebSocket peer broke the protocol: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The peer sent a message larger than the limit; the socket was closed
    /// with `1009 Message Too Big`.
    #[error("message of {len} bytes over the limit of {max} bytes")]
    TooBig {
        /// The message's size so far.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl WsError {
    /// Whether this is a normal end of the socket (closed, or the peer
    /// gone) rather than a fault.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsError;
    ///
    /// assert!(WsError::Disconnected.is_end_of_stream()); // a closed laptop lid
    /// assert!(WsError::Closed.is_end_of_stream());
    /// assert!(!WsError::TooBig { len: 2048, max: 1024 }.is_end_of_stream());
    /// ```
    pub fn is_end_of_stream(&self) -> bool {
        matches!(self, WsError::Closed | WsError::Disconnected)
    }

    pub(crate) fn from_protocol(error: tokio_websockets::Error) -> WsError {
        match error {
            tokio_websockets::Error::PayloadTooLong { len, max_len } => {
                WsError::TooBig { len, max: max_len }
            }
            tokio_websockets::Error::AlreadyClosed => WsError::Closed,
            tokio_websockets::Error::Io(_) => WsError::Disconnected,
            other => WsError::Protocol {
                reason: other.to_string(),
            },
        }
    }
}
