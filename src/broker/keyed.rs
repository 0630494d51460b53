//! [`KeyedItems`]: items a shared backend keeps under a channel, changed
//! together with a publication on it in one atomic step — how the keyed
//! state store keeps its items on Redis, so that every process reads and
//! writes the same ones.
//!
//! # The rule
//!
//! A [`Commit`] is a compare-and-set: it changes the item and publishes
//! only if what its writer read is still there — the item's stored text
//! and, when asked, the channel's position — and its timestamp is still
//! ahead of the channel's. Otherwise nothing changes and the writer reads
//! again ([`Committed::Conflict`]). So writes from any number of processes
//! are placed one after another, each one computed from the state right
//! before it, and the channel's position after a commit is the revision of
//! exactly that state. Values are JSON text written by rill: the backend
//! stores and compares them as bytes, never decoding them.

use super::{
    backend::BoxFuture,
    error::{BackendError, PublishError},
    message::{Position, Publication},
};

/// What a [`KeyedItems::read`] found, all at one instant.
///
/// # Example
///
/// ```
/// use rill::broker::ItemsRead;
///
/// let read = ItemsRead { items: vec![("t1".into(), r#""milk""#.into())], position: None, timestamp: 7 };
/// assert_eq!(read.items[0].1, "\"milk\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsRead {
    /// Item id → its JSON text as written, in id order.
    pub items: Vec<(String, String)>,
    /// The channel's position (`None`: nothing published, or its data is
    /// gone).
    pub position: Option<Position>,
    /// The channel's next timestamp (ms since the Unix epoch): above every
    /// timestamp taken before. A commit carrying it succeeds only if no
    /// other took it first.
    pub timestamp: u64,
}

/// Which items a [`KeyedItems::read`] returns.
///
/// # Example
///
/// ```
/// use rill::broker::ItemSelection;
///
/// // A custom event needs the position and timestamp, no items.
/// let wanted = ItemSelection::Nothing;
/// assert_ne!(wanted, ItemSelection::One("t1"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemSelection<'a> {
    /// Every item of the channel.
    All,
    /// This item (if present).
    One(&'a str),
    /// None: only the position and timestamp.
    Nothing,
}

/// One item's change within a [`Commit`].
///
/// # Example
///
/// ```
/// use rill::broker::ItemWrite;
///
/// // Set t1 to "oat milk" if it still holds "milk".
/// let write = ItemWrite {
///     item: "t1".into(),
///     expected: Some(r#""milk""#.into()),
///     value: Some(r#""oat milk""#.into()),
/// };
/// # let _ = write;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemWrite {
    /// The item's id.
    pub item: String,
    /// The text the writer read (`None`: it was absent). The commit fails
    /// unless the item still holds exactly this.
    pub expected: Option<String>,
    /// The new text (`None`: delete the item).
    pub value: Option<String>,
}

/// What a commit requires of the channel's position.
///
/// # Example
///
/// ```
/// use rill::broker::{Epoch, Position, PositionCheck};
///
/// let at = Position::new(Epoch::from_number(1), 41);
/// assert_ne!(PositionCheck::Exactly(Some(at)), PositionCheck::Any);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PositionCheck {
    /// Nothing beyond the item's own check.
    Any,
    /// The channel must still be at this position (`None`: nothing
    /// published) — an update "if the group is at revision r".
    Exactly(Option<Position>),
}

/// A compare-and-set of one item (or none) and a publication, done at once.
///
/// # Example
///
/// ```
/// use rill::broker::{Commit, ItemWrite, PositionCheck, Publication};
///
/// let commit = Commit {
///     write: Some(ItemWrite { item: "t1".into(), expected: None, value: Some("1".into()) }),
///     position: PositionCheck::Any,
///     timestamp: 1_700_000_000_000,
///     publication: Publication::new(r#"{"type":"create"}"#),
///     index: Some(("state:todos".into(), "ann".into())),
/// };
/// # let _ = commit;
/// ```
#[derive(Debug, Clone)]
pub struct Commit {
    /// The item changed (`None`: only the publication, a custom event).
    pub write: Option<ItemWrite>,
    /// What the channel's position must be.
    pub position: PositionCheck,
    /// The timestamp the publication carries: the commit fails unless it
    /// is still above the channel's last one, and then becomes the last.
    pub timestamp: u64,
    /// Published on the channel when the commit succeeds.
    pub publication: Publication,
    /// An index (name, member) the channel belongs to while it holds items
    /// (a stream's groups): the member is added when the channel holds
    /// items after the commit, removed when it holds none.
    pub index: Option<(String, String)>,
}

/// How a [`Commit`] ended.
///
/// # Example
///
/// ```
/// use rill::broker::Committed;
///
/// fn describe(outcome: &Committed) -> String {
///     match outcome {
///         Committed::Placed(position) => format!("published at {position}"),
///         Committed::Conflict => "someone else wrote first: read again".into(),
///     }
/// }
/// assert!(describe(&Committed::Conflict).contains("again"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Changed and published at this position.
    Placed(Position),
    /// What the writer read has changed since: nothing was done.
    Conflict,
}

/// Items kept by a shared backend under its channels. A backend offers
/// them through [`Backend::keyed`](super::Backend::keyed); the in-memory
/// backend does not — a store in one process keeps its items itself.
///
/// The rule every implementation keeps: a [`Commit`] changes the item and
/// publishes only if what its writer read is still there — the item's
/// stored text and, when asked, the channel's position — and its timestamp
/// is still ahead of the channel's; otherwise nothing changes
/// ([`Committed::Conflict`]) and the writer reads again. Values are JSON
/// text written by rill, stored and compared as bytes, never decoded.
///
/// # Example
///
/// ```
/// use rill::broker::{Backend, BackendError, ItemSelection};
///
/// /// How many items a group holds in a shared backend (`None`: the backend
/// /// keeps no items; the store keeps them in its process).
/// async fn count(backend: &dyn Backend) -> Result<Option<usize>, BackendError> {
///     let Some(items) = backend.keyed() else { return Ok(None) };
///     Ok(Some(items.read("state:todos/ann", ItemSelection::All, false).await?.items.len()))
/// }
/// ```
pub trait KeyedItems: Send + Sync + 'static {
    /// The `selected` items of `channel`, its position and next timestamp,
    /// read at one instant. With `take_timestamp`, the timestamp is taken:
    /// later ones are above it (a snapshot's place in the channel's
    /// sequence).
    fn read(
        &self,
        channel: &str,
        selected: ItemSelection<'_>,
        take_timestamp: bool,
    ) -> BoxFuture<Result<ItemsRead, BackendError>>;

    /// Applies `commit` to `channel` if its checks hold (see [`Commit`]).
    fn commit(&self, channel: &str, commit: Commit) -> BoxFuture<Result<Committed, PublishError>>;

    /// The members of an index (see [`Commit::index`]), in order.
    fn index(&self, index: &str) -> BoxFuture<Result<Vec<String>, BackendError>>;
}
