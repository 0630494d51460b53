//! [`CableError`]: what a cable operation can fail with.

use crate::broker::PublishError;

/// Why a cable operation failed.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::cable::{Cable, CableError};
///
/// let cable = Cable::default();
/// match cable.broadcast_json("chat_lobby", "<b>hi</b>") {
///     Err(CableError::InvalidJson { reason }) => println!("not sent: {reason}"),
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CableError {
    /// What was to be broadcast or transmitted is not JSON (or could not be
    /// serialized to it).
    #[error("not JSON: {reason}")]
    InvalidJson {
        /// What the parser or serializer said.
        reason: String,
    },
    /// The broker refused the broadcast: an invalid stream name, too many
    /// streams, or its backend failed.
    #[error("broadcast failed: {0}")]
    Publish(#[from] PublishError),
    /// The connection is closed: nothing more reaches its client.
    #[error("the connection is closed")]
    Closed,
    /// A channel was asked for an action it does not have.
    #[error("unknown action {action:?}")]
    UnknownAction {
        /// The action, as the client named it.
        action: String,
    },
}
