//! ActionCable-compatible channels: Rails front-ends keep
//! `@rails/actioncable` — and AnyCable users `@anycable/web`, with its
//! extended protocol — and talk to a rill server. Every broadcast rides the
//! [broker](crate::broker), so a broker that spans processes makes the
//! cable span them too.
//!
//! * [`Cable`] — the server: [`accept`](Cable::accept) connections,
//!   [`broadcast`](Cable::broadcast) from anywhere,
//!   [`disconnect`](Cable::disconnect) connections by their identifiers.
//! * [`Channel`] — a channel class: `subscribed`, `unsubscribed`,
//!   `receive` and actions; [`Subscription`] — what its methods act on
//!   (`transmit`, `reject`, `stream_from`, `stream_for`, `periodically`).
//! * [`ConnectRequest`] and [`Identifiers`] — what the `connect` hook
//!   reads and returns (Rails' `identified_by`).
//! * [`protocol`] — the wire format of both clients; [`naming`] — Rails'
//!   names for channels and broadcastings.
//! * `outbox` — a connection's queue of frames; `sink` — a subscription as
//!   the broker's subscriber; `session` — a connection's task; `parked` —
//!   a session kept for its client to restore, here or (on a shared
//!   backend) on another process; `remote` — disconnects that reach the
//!   cables of other processes through the broker.
//!
//! # Guarantees beyond Rails'
//!
//! * A connection's commands run one at a time, in the order they arrived
//!   (Rails runs them on a thread pool); broadcasts of one stream reach a
//!   subscription in the order they were made.
//! * What a channel transmits while subscribing arrives before
//!   `confirm_subscription`; broadcasts only after it.
//! * Extended protocol: a restored session or a `history` request resumes
//!   every stream exactly once, in order — history after the client's
//!   position, then live messages, with no repeat (AnyCable's server can
//!   repeat or reorder there, and its client does not de-duplicate).
//! * Extended protocol on a shared backend (Redis): a session parked by
//!   one process is restored by whichever process its client reconnects
//!   to, as AnyCable's session recovery; one process at most continues it.
//!
//! See [`docs/cable.md`](crate::guides::cable).

mod channel;
mod connection;
mod error;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod naming;
mod outbox;
mod parked;
pub mod protocol;
mod remote;
mod server;
mod session;
mod sink;

pub use channel::{Channel, ChannelResult, Subscription};
pub use connection::{ConnectRequest, Identifiers};
pub use error::CableError;
pub use server::{
    Cable, CableBuilder, Rejection, DEFAULT_BUFFER, DEFAULT_MAX_PARKED_SESSIONS,
    DEFAULT_MAX_SUBSCRIPTIONS, DEFAULT_PING_INTERVAL, DEFAULT_QUEUE, DEFAULT_SESSION_TTL,
};
