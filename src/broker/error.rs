//! The broker's errors.

use crate::error::{BoxError, FrameError};

/// Why a publication was not published. Nothing of it reached anyone.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::{broker::PublishError, hub::Hub, sse::Event};
///
/// let hub = Hub::new();
/// match hub.publish("news", Event::data("hi").event("bad\nname")).await {
///     Err(PublishError::Frame(e)) => assert_eq!(e.to_string(), "event name contains a line break"),
///     other => panic!("unexpected: {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
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
///
/// # Example
///
/// ```
/// use rill::broker::BackendError;
///
/// // What a Redis backend reports when its connection is gone:
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "redis is down");
/// let error = BackendError::Unavailable(Box::new(io));
/// assert_eq!(error.to_string(), "the backend is unavailable");
/// assert!(std::error::Error::source(&error).is_some());
/// ```
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
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Default)]
/// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
/// # impl Recorder {
/// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
/// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
/// # }
/// # impl Sink for Recorder {
/// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
/// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
/// #         Offer::Queued
/// #     }
/// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
/// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
/// #     fn position(&self, _: &str, _: &Position) {}
/// #     fn close(&self) {}
/// #     fn metadata(&self) -> &Metadata { &self.metadata }
/// # }
/// use rill::broker::{Broker, SubscribeError, SubscribeOptions};
///
/// let broker = Broker::new();
/// let subscription = broker.subscribe(Arc::new(Recorder::default()), SubscribeOptions::default());
/// assert_eq!(subscription.join("", None), Err(SubscribeError::InvalidChannel));
/// # Ok(())
/// # }
/// ```
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
