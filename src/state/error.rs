//! [`StateError`]: what a store operation can fail with.

use super::{limits::LimitError, ops::OpError};
use crate::broker::{BackendError, PublishError};

/// Why a store operation failed. Nothing was changed.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::state::{StateError, Store, UpdateOp};
/// use serde_json::json;
///
/// let store = Store::new();
/// # store.set("todos", "ann", "t1", json!("milk")).await.unwrap();
/// // "milk" is a string: incrementing it fails, and nothing changes.
/// let ops = [UpdateOp::Increment { path: vec![], by: 1.into() }];
/// match store.update("todos", "ann", "t1", &ops, None).await {
///     Err(StateError::Op(error)) => assert_eq!(error.op, "increment"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(store.get("todos", "ann", "t1").await.unwrap(), Some(json!("milk")));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A name, path or value broke the store's limits.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// An update operation failed (which one, and why).
    #[error(transparent)]
    Op(#[from] OpError),
    /// An update asked for a revision the group is no longer (or not yet)
    /// at.
    #[error("the group is at revision {actual}, not {expected}")]
    RevisionMismatch {
        /// The revision asked for.
        expected: String,
        /// The group's revision.
        actual: String,
    },
    /// The stream and group names are too long together for a broker
    /// channel.
    #[error("the stream and group names are too long together")]
    NamesTooLong,
    /// The broker refused the change (its backend failed, or too many
    /// groups).
    #[error("the change could not be published: {0}")]
    Publish(#[from] PublishError),
    /// The shared backend holding the items (Redis) could not be read.
    #[error("the state could not be read: {0}")]
    Read(#[source] BackendError),
    /// Writers on other processes kept changing the item (or group) first;
    /// this write gave up after as many attempts. Nothing was changed.
    #[error("the write kept meeting newer writes ({attempts} attempts)")]
    Contended {
        /// How many times the write was computed and refused.
        attempts: u32,
    },
    /// The typed facade could not convert a value.
    #[error("the value does not fit the type: {reason}")]
    Type {
        /// What serde said.
        reason: String,
    },
}
