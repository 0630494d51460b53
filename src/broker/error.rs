//! The broker's errors.

use crate::error::{BoxError, FrameError};

/// Why a publication was not published. Nothing of it reached anyone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event cannot be carried by a transport (an event name with a line
    /// break would inject SSE fields): fix the event.
    #[error("invalid event")]
    Frame(#[from] FrameError),
    /// Publishing would create a channel past the broker's cap
    /// ([`BrokerBuilder::max_channels`](super::BrokerBuilder::max_channels)).
    #[error("too many channels (at most {max})")]
    TooManyChannels {
        /// The cap.
        max: usize,
    },
    /// The channel name is empty or longer than
    /// [`MAX_CHANNEL_NAME`](super::MAX_CHANNEL_NAME) bytes.
    #[error("invalid channel name")]
    InvalidChannel,
    /// The backend could not publish (a distributed backend that lost its
    /// store): retry later.
    #[error("the backend could not publish")]
    Backend(#[source] BackendError),
}

/// Why a backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend cannot be reached (a Redis that went away): retry later.
    #[error("the backend is unavailable")]
    Unavailable(#[source] BoxError),
    /// The broker this backend delivers to is gone.
    #[error("the broker is gone")]
    Detached,
}

/// Why a subscription could not join a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// Joining would create a channel past the broker's cap.
    #[error("too many channels (at most {max})")]
    TooManyChannels {
        /// The cap.
        max: usize,
    },
    /// The channel name is empty or longer than
    /// [`MAX_CHANNEL_NAME`](super::MAX_CHANNEL_NAME) bytes.
    #[error("invalid channel name")]
    InvalidChannel,
    /// The subscription's subscriber is gone.
    #[error("the subscriber is gone")]
    Gone,
}
