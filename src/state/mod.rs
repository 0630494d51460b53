//! Keyed state streams: items addressed `stream/group/item` holding JSON
//! values, written with atomic updates, watched by clients that get a
//! snapshot and then every change once, in order — and resume after a
//! disconnect from the revision they had.
//!
//! * [`Store`] — `set`, `get`, `delete`, `update` (with [`UpdateOp`]s, all
//!   or nothing, optionally at a revision), `list`, `list_groups`, `send`
//!   (a custom event); [`Typed`] — the same through one Rust type.
//! * [`Watcher`] — one subscriber: [`WatchEvent::Sync`], then
//!   [`WatchEvent::Change`]s; [`WatchEvent::Reset`] when continuity is
//!   lost.
//! * [`Revision`] — a group's epoch and revision: the broker position of
//!   its last change (`<epoch>.<rev>`).
//! * Triggers — [`Store::on_change`], run after changes, in order.
//! * `ops` — the update operations; `limits` — sizes and names;
//!   `store` — groups and their lock; `watch` — snapshot then deltas;
//!   `triggers` — [`Change`] and the trigger task.
//!
//! Every change rides the [broker](crate::broker), on one channel per
//! group. See [`docs/state.md`](crate::guides::state).

mod error;
mod http;
mod iii;
mod limits;
mod ops;
mod shared;
mod store;
mod triggers;
mod typed;
mod watch;

pub use error::StateError;
pub use http::{Access, StateApi};
pub use iii::{AuthContext, IiiEndpoint, JoinRequest};
pub use limits::{LimitError, Limits, REFUSED_KEYS};
pub use ops::{apply, OpError, OpFailure, UpdateOp};
pub use store::{Revision, Snapshot, Store, StoreBuilder, Write};
pub use triggers::{Change, ChangeFilter, ChangeKind};
pub use typed::Typed;
pub use watch::{Delta, WatchEvent, Watcher, DEFAULT_WATCH_QUEUE};

use crate::error::BoxError;
use std::future::Future;

impl Store {
    /// Runs `trigger` after every change `filter` matches (a stream,
    /// optionally narrowed to a group and an item), seeing the old and new
    /// values. Triggers run in one task, one change at a time, in the order
    /// the changes were made; a trigger may write to the store. An error is
    /// logged, a panic caught. Call it inside a tokio runtime.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::state::StateError> {
    /// use rill::state::{ChangeFilter, Store};
    /// use serde_json::json;
    ///
    /// let store = Store::new();
    /// // Keep a count of each user's todos, next to them.
    /// let counter = store.clone();
    /// store.on_change(ChangeFilter::stream("todos"), move |change| {
    ///     let store = counter.clone();
    ///     async move {
    ///         let count = store.list("todos", &change.group).await?.len();
    ///         store.set("counts", "todos", &change.group, json!(count)).await?;
    ///         Ok(())
    ///     }
    /// });
    /// store.set("todos", "ann", "t1", json!("milk")).await?;
    /// # while store.get("counts", "todos", "ann").await?.is_none() { tokio::task::yield_now().await }
    /// assert_eq!(store.get("counts", "todos", "ann").await?, Some(json!(1)));
    /// # Ok(()) }
    /// ```
    pub fn on_change<F, Fut>(&self, filter: ChangeFilter, trigger: F)
    where
        F: Fn(Change) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.inner.triggers.add(filter, trigger);
    }
}
