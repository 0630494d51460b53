//! The named-event stream's errors.

/// Why an event could not be sent, or its data not read. Like
/// [`WsError`](crate::ws::WsError), `Closed` and `Disconnected` are normal
/// ends of a connection.
///
/// # Example
///
/// ```
/// use rill::events::{Data, EventError};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Move { x: u8, y: u8 }
///
/// let data = Data::new(Some(serde_json::json!({"x": 1})));
/// let error = data.parse::<Move>().unwrap_err();
/// assert!(matches!(error, EventError::Decode { .. }));
/// assert!(!error.is_end_of_stream());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The connection was closed (by either side, for being too slow, or by
    /// a server shutdown): nothing more can be sent on it.
    #[error("the event stream connection is closed")]
    Closed,
    /// The client went away without a close handshake.
    #[error("the event stream client disconnected")]
    Disconnected,
    /// The connection's queue is full (its client reads slower than events
    /// come): the event was not queued, and the stream's
    /// [`SlowConsumer`](crate::broker::SlowConsumer) policy was applied —
    /// with `Disconnect`, the connection is now closing with `1013`.
    #[error("the connection's queue is full")]
    Full,
    /// The data could not be written as JSON (a map with non-string keys,
    /// a failing `Serialize` impl).
    #[error("event data is not serializable as JSON: {reason}")]
    Encode {
        /// What serde said.
        reason: String,
    },
    /// The data a client sent does not have the type asked for.
    #[error("event data does not match the expected type: {reason}")]
    Decode {
        /// What serde said.
        reason: String,
    },
}

impl EventError {
    /// Whether this is a normal end of the connection (closed, or the
    /// client gone) rather than a fault.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventError;
    ///
    /// assert!(EventError::Disconnected.is_end_of_stream()); // the client left: not a fault
    /// assert!(EventError::Closed.is_end_of_stream());
    /// assert!(!EventError::Full.is_end_of_stream());
    /// ```
    pub fn is_end_of_stream(&self) -> bool {
        matches!(self, EventError::Closed | EventError::Disconnected)
    }
}
