//! The example's controllers, one per file.

mod cable;
mod chat;
mod events;
mod live;
mod pages;
mod sockets;
mod stats;
mod todos;

pub use cable::{CableController, ACTIONCABLE_VERSION};
pub use chat::{chat_hub, ChatController};
pub use events::{EventsController, PARAGRAPH};
pub use live::LiveController;
pub use pages::PagesController;
pub use sockets::{SocketsController, TICK_INTERVAL, TOKEN_INTERVAL};
pub use stats::StatsController;
pub use todos::{state_routes, TodosController};

use std::sync::atomic::AtomicU64;

/// A user name the example accepts (cable tokens, todo lists): 1 to 64
/// letters, digits, `_` or `-`.
pub(crate) fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Counters shared between controllers.
#[derive(Debug, Default)]
pub struct Metrics {
    /// How many `/feed` writers ran their clean-up after their client left.
    pub feed_cleanups: AtomicU64,
}
