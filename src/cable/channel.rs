//! [`Channel`]: what a Rails channel class is — `subscribed`,
//! `unsubscribed`, `receive` and named actions — and [`Subscription`], the
//! handle its methods get: params, the connection's identifiers,
//! `transmit`, `reject`, `stream_from` / `stream_for` / `stop_stream_from` /
//! `stop_all_streams` and `periodically`.
//!
//! One channel value is made per subscription and kept between its
//! commands (Rails' per-subscription instance state). A connection's
//! commands run one at a time, in the order they arrived, so a channel's
//! methods take `&mut self` and need no locks.

use serde::Serialize;
use serde_json::{Map, Value};
use std::{
    fmt::Display,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use super::{
    connection::Identifiers,
    error::CableError,
    naming,
    outbox::{Outbox, Push},
    protocol::Identifier,
    Cable,
};
use crate::error::BoxError;

/// What a channel's method returns: an error is logged, and the connection
/// goes on (as Rails logs an exception in a channel and keeps the socket).
///
/// # Example
///
/// ```
/// use rill::cable::{Channel, ChannelResult, Subscription};
///
/// struct RoomChannel;
///
/// impl Channel for RoomChannel {
///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
///         let room: u32 = sub.param_str("room").unwrap_or_default().parse()?; // logged, not fatal
///         sub.stream_from(format!("room_{room}"));
///         Ok(())
///     }
/// }
/// ```
pub type ChannelResult = Result<(), BoxError>;

/// A channel: the server side of `consumer.subscriptions.create(…)`.
///
/// Every method has a default that does nothing (`perform` answers
/// [`CableError::UnknownAction`]), so a channel implements what it needs.
/// Actions are matched by name in [`perform`](Self::perform), as Rails
/// dispatches to a channel's public methods.
///
/// ```
/// use rill::cable::{Channel, ChannelResult, Subscription, CableError};
/// use serde_json::{json, Map, Value};
///
/// #[derive(Default)]
/// struct ChatChannel {
///     room: String,
/// }
///
/// impl Channel for ChatChannel {
///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
///         self.room = sub.param_str("room").unwrap_or("lobby").to_owned();
///         sub.stream_from(format!("chat_{}", self.room));
///         Ok(())
///     }
///
///     async fn receive(&mut self, sub: &Subscription, data: Map<String, Value>) -> ChannelResult {
///         let user = sub.identifiers().get("user").unwrap_or("anonymous");
///         sub.cable().broadcast(&format!("chat_{}", self.room), &json!({
///             "message": data.get("message"), "current_user_id": user,
///         }))?;
///         Ok(())
///     }
///
///     async fn perform(&mut self, sub: &Subscription, action: &str, data: Map<String, Value>) -> ChannelResult {
///         match action {
///             "typing" => sub.transmit(&json!({"typing": true}))?,
///             _ => return Err(CableError::UnknownAction { action: action.to_owned() }.into()),
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Channel: Send + 'static {
    /// The client subscribed: check params, [`reject`](Subscription::reject)
    /// or [`stream_from`](Subscription::stream_from). What it
    /// [transmits](Subscription::transmit) reaches the client before the
    /// confirmation.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct DocumentChannel;
    ///
    /// impl Channel for DocumentChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         match sub.param_str("doc_id") {
    ///             Some(id) => sub.stream_from(format!("document_{id}")),
    ///             None => sub.reject(),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn subscribed(&mut self, sub: &Subscription) -> impl Future<Output = ChannelResult> + Send {
        let _ = sub;
        async { Ok(()) }
    }

    /// The subscription ended: the client unsubscribed or left, or the
    /// subscription was rejected. Its streams are left after this returns.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct AppearanceChannel;
    ///
    /// impl Channel for AppearanceChannel {
    ///     async fn unsubscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         let user = sub.identifiers().get("current_user").unwrap_or_default();
    ///         sub.cable().broadcast("appearances", &serde_json::json!({"user": user, "online": false}))?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn unsubscribed(&mut self, sub: &Subscription) -> impl Future<Output = ChannelResult> + Send {
        let _ = sub;
        async { Ok(()) }
    }

    /// Data the client sent without an action (`subscription.send(data)`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    /// use serde_json::{Map, Value};
    ///
    /// struct EchoChannel;
    ///
    /// impl Channel for EchoChannel {
    ///     // `subscription.send({text: "hi"})` in the browser
    ///     async fn receive(&mut self, sub: &Subscription, data: Map<String, Value>) -> ChannelResult {
    ///         sub.transmit(&data)?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn receive(
        &mut self,
        sub: &Subscription,
        data: Map<String, Value>,
    ) -> impl Future<Output = ChannelResult> + Send {
        let _ = (sub, data);
        async { Ok(()) }
    }

    /// Action `action` (`subscription.perform(action, data)`); `data`
    /// still holds its `"action"` key, as in Rails. Periodic timers call it
    /// with empty data.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{CableError, Channel, ChannelResult, Subscription};
    /// use serde_json::{Map, Value};
    ///
    /// struct GameChannel { moves: u32 }
    ///
    /// impl Channel for GameChannel {
    ///     // `subscription.perform("make_move", {square: 4})` in the browser
    ///     async fn perform(&mut self, sub: &Subscription, action: &str, data: Map<String, Value>) -> ChannelResult {
    ///         match action {
    ///             "make_move" => {
    ///                 self.moves += 1;
    ///                 sub.cable().broadcast("game_1", &serde_json::json!({"square": data.get("square")}))?;
    ///             }
    ///             _ => return Err(CableError::UnknownAction { action: action.to_owned() }.into()),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn perform(
        &mut self,
        sub: &Subscription,
        action: &str,
        data: Map<String, Value>,
    ) -> impl Future<Output = ChannelResult> + Send {
        let _ = (sub, data);
        let error = CableError::UnknownAction {
            action: action.to_owned(),
        };
        async move { Err(error.into()) }
    }
}

/// A boxed channel future.
pub(crate) type ChannelFuture<'a> = Pin<Box<dyn Future<Output = ChannelResult> + Send + 'a>>;

/// [`Channel`] behind a pointer: what the session keeps per subscription.
pub(crate) trait DynChannel: Send {
    fn subscribed<'a>(&'a mut self, sub: &'a Subscription) -> ChannelFuture<'a>;
    fn unsubscribed<'a>(&'a mut self, sub: &'a Subscription) -> ChannelFuture<'a>;
    fn receive<'a>(
        &'a mut self,
        sub: &'a Subscription,
        data: Map<String, Value>,
    ) -> ChannelFuture<'a>;
    fn perform<'a>(
        &'a mut self,
        sub: &'a Subscription,
        action: &'a str,
        data: Map<String, Value>,
    ) -> ChannelFuture<'a>;
}

impl<C: Channel> DynChannel for C {
    fn subscribed<'a>(&'a mut self, sub: &'a Subscription) -> ChannelFuture<'a> {
        Box::pin(Channel::subscribed(self, sub))
    }
    fn unsubscribed<'a>(&'a mut self, sub: &'a Subscription) -> ChannelFuture<'a> {
        Box::pin(Channel::unsubscribed(self, sub))
    }
    fn receive<'a>(
        &'a mut self,
        sub: &'a Subscription,
        data: Map<String, Value>,
    ) -> ChannelFuture<'a> {
        Box::pin(Channel::receive(self, sub, data))
    }
    fn perform<'a>(
        &'a mut self,
        sub: &'a Subscription,
        action: &'a str,
        data: Map<String, Value>,
    ) -> ChannelFuture<'a> {
        Box::pin(Channel::perform(self, sub, action, data))
    }
}

/// Makes a channel value for each new subscription.
pub(crate) type ChannelFactory = Arc<dyn Fn() -> Box<dyn DynChannel> + Send + Sync>;

/// What a channel asked for during one of its methods, applied by the
/// connection once the method returns.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    pub(crate) rejected: bool,
    pub(crate) streams: Vec<StreamRequest>,
    pub(crate) timers: Vec<(Duration, String)>,
}

/// A change to a subscription's streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamRequest {
    From(String),
    Stop(String),
    StopAll,
}

/// One subscription of one connection, as its channel's methods see it.
///
/// # Example
///
/// ```
/// use rill::cable::{Channel, ChannelResult, Subscription};
///
/// struct NotificationsChannel;
///
/// impl Channel for NotificationsChannel {
///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
///         let Some(user) = sub.identifiers().get("current_user") else {
///             sub.reject();
///             return Ok(());
///         };
///         sub.stream_for(&[&user]); // "notifications:<user>"
///         Ok(())
///     }
/// }
/// ```
pub struct Subscription {
    identifier: Identifier,
    identifiers: Arc<Identifiers>,
    cable: Cable,
    out: Arc<Outbox>,
    requests: Mutex<Requests>,
}

impl Subscription {
    pub(crate) fn new(
        identifier: Identifier,
        identifiers: Arc<Identifiers>,
        cable: Cable,
        out: Arc<Outbox>,
    ) -> Self {
        Subscription {
            identifier,
            identifiers,
            cable,
            out,
            requests: Mutex::default(),
        }
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what the channel asked for since the last call.
    pub(crate) fn take_requests(&self) -> Requests {
        std::mem::take(&mut *self.requests())
    }

    /// The subscription's identifier (its params, as the client wrote them).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct ChatChannel;
    ///
    /// impl Channel for ChatChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         // `{"channel":"ChatChannel","room":"lobby"}`, exactly as the client sent it
    ///         tracing::info!(identifier = sub.identifier().as_str(), "subscribed");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn identifier(&self) -> &Identifier {
        &self.identifier
    }

    /// The channel's class name (`"ChatChannel"`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct AuditedChannel;
    ///
    /// impl Channel for AuditedChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         let who = sub.identifiers().get("current_user").unwrap_or("anonymous");
    ///         sub.cable().broadcast("audit", &format!("{who} joined {}", sub.channel_class()))?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn channel_class(&self) -> &str {
        self.identifier.channel()
    }

    /// The subscription's params (`channel` included).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct BoardChannel { columns: Vec<u64> }
    ///
    /// impl Channel for BoardChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         // consumer.subscriptions.create({channel: "BoardChannel", columns: [1, 2]})
    ///         let columns = sub.params().get("columns").and_then(|v| v.as_array());
    ///         self.columns = columns.into_iter().flatten().filter_map(|c| c.as_u64()).collect();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn params(&self) -> &Map<String, Value> {
        self.identifier.params()
    }

    /// Param `name`, when it is a string.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct ChatChannel;
    ///
    /// impl Channel for ChatChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         let room = sub.param_str("room").unwrap_or("lobby");
    ///         sub.stream_from(format!("chat_{room}"));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.params().get(name).and_then(Value::as_str)
    }

    /// The connection's identifiers (what `connect` returned).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct AdminChannel;
    ///
    /// impl Channel for AdminChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         if sub.identifiers().matches(&[("role", "admin")]) {
    ///             sub.stream_from("admin_alerts");
    ///         } else {
    ///             sub.reject();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn identifiers(&self) -> &Identifiers {
        &self.identifiers
    }

    /// The cable this subscription belongs to: broadcast from a channel
    /// with [`Cable::broadcast`].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    /// use serde_json::{Map, Value};
    ///
    /// struct ChatChannel;
    ///
    /// impl Channel for ChatChannel {
    ///     async fn receive(&mut self, sub: &Subscription, data: Map<String, Value>) -> ChannelResult {
    ///         sub.cable().broadcast("chat_lobby", &data)?; // to every subscriber, this one included
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn cable(&self) -> &Cable {
        &self.cable
    }

    /// Sends `data` (any `Serialize`) to this subscription's client alone,
    /// as `{"identifier":…,"message":data}`, after what was sent to it
    /// before.
    ///
    /// # Errors
    ///
    /// [`CableError::InvalidJson`] when `data` cannot be serialized;
    /// [`CableError::Closed`] once the connection is closing (or was just
    /// closed for being too slow: its queue was full).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct GameChannel;
    ///
    /// impl Channel for GameChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         // Only this client: its hand of cards, before the confirmation.
    ///         sub.transmit(&serde_json::json!({"hand": ["7♠", "Q♥"]}))?;
    ///         sub.stream_from("game_1");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn transmit<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), CableError> {
        let json = serde_json::to_string(data).map_err(|e| CableError::InvalidJson {
            reason: e.to_string(),
        })?;
        self.transmit_frame(super::protocol::message(&self.identifier, &json, None))
    }

    /// Sends JSON text `json` as it is (checked to be JSON): see
    /// [`transmit`](Self::transmit).
    ///
    /// # Errors
    ///
    /// As for [`transmit`](Self::transmit).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct PricesChannel { cached: String } // JSON made once, sent to many
    ///
    /// impl Channel for PricesChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         sub.transmit_json(&self.cached)?;
    ///         sub.stream_from("prices");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn transmit_json(&self, json: &str) -> Result<(), CableError> {
        let json = super::server::checked_json(json)?;
        self.transmit_frame(super::protocol::message(&self.identifier, json, None))
    }

    fn transmit_frame(&self, frame: String) -> Result<(), CableError> {
        match self.out.push(frame.into(), true) {
            Push::Queued => Ok(()),
            Push::Gone => Err(CableError::Closed),
            Push::Full => {
                self.out.end_too_slow();
                Err(CableError::Closed)
            }
        }
    }

    /// Rejects the subscription (from [`subscribed`](Channel::subscribed)):
    /// `unsubscribed` runs, then the client gets `reject_subscription`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct PrivateRoomChannel;
    ///
    /// impl Channel for PrivateRoomChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         let user = sub.identifiers().get("current_user").unwrap_or_default();
    ///         if sub.param_str("owner") != Some(user) {
    ///             sub.reject(); // the client's `rejected` callback runs
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn reject(&self) {
        self.requests().rejected = true;
    }

    /// Delivers what is broadcast to stream `name` to this subscription,
    /// from when the channel's method returns.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    ///
    /// struct CommentsChannel;
    ///
    /// impl Channel for CommentsChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         let post = sub.param_str("post_id").unwrap_or_default();
    ///         sub.stream_from(format!("post_{post}_comments"));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn stream_from(&self, name: impl Into<String>) {
        self.requests()
            .streams
            .push(StreamRequest::From(name.into()));
    }

    /// [`stream_from`](Self::stream_from) the stream Rails names after this
    /// channel and `objects` ([`naming::broadcasting_for`]):
    /// `stream_for(&[&"1"])` in `Chat::RoomChannel` streams `chat:room:1`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{naming, Channel, ChannelResult, Subscription};
    ///
    /// struct WebNotificationsChannel;
    ///
    /// impl Channel for WebNotificationsChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         let user = sub.identifiers().get("current_user").unwrap_or_default().to_owned();
    ///         sub.stream_for(&[&user]); // "web_notifications:<user>"
    ///         Ok(())
    ///     }
    /// }
    /// // Where a Rails app would call `WebNotificationsChannel.broadcast_to(user, …)`:
    /// assert_eq!(naming::broadcasting_for("WebNotificationsChannel", &[&"42"]), "web_notifications:42");
    /// ```
    pub fn stream_for(&self, objects: &[&dyn Display]) {
        self.stream_from(naming::broadcasting_for(self.channel_class(), objects));
    }

    /// Stops delivering stream `name` (Rails' `stop_stream_from`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    /// use serde_json::{Map, Value};
    ///
    /// struct RoomsChannel;
    ///
    /// impl Channel for RoomsChannel {
    ///     async fn perform(&mut self, sub: &Subscription, action: &str, data: Map<String, Value>) -> ChannelResult {
    ///         let room = data.get("room").and_then(Value::as_str).unwrap_or_default();
    ///         match action {
    ///             "join" => sub.stream_from(format!("room_{room}")),
    ///             "leave" => sub.stop_stream_from(format!("room_{room}")),
    ///             _ => {}
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn stop_stream_from(&self, name: impl Into<String>) {
        self.requests()
            .streams
            .push(StreamRequest::Stop(name.into()));
    }

    /// Stops delivering every stream of this subscription.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    /// use serde_json::{Map, Value};
    ///
    /// struct FeedChannel;
    ///
    /// impl Channel for FeedChannel {
    ///     async fn perform(&mut self, sub: &Subscription, action: &str, _data: Map<String, Value>) -> ChannelResult {
    ///         if action == "pause" {
    ///             sub.stop_all_streams(); // the subscription stays, silent
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn stop_all_streams(&self) {
        self.requests().streams.push(StreamRequest::StopAll);
    }

    /// Performs `action` (with empty data) every `every`, until the
    /// subscription ends (Rails' `periodically`). Ticks run in the
    /// connection's order like any command; a tick that finds the previous
    /// one still waiting is skipped.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::{Channel, ChannelResult, Subscription};
    /// use serde_json::{Map, Value};
    /// use std::time::Duration;
    ///
    /// struct ClockChannel;
    ///
    /// impl Channel for ClockChannel {
    ///     async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
    ///         sub.periodically(Duration::from_secs(1), "tick"); // Rails' `periodically :tick, every: 1.second`
    ///         Ok(())
    ///     }
    ///     async fn perform(&mut self, sub: &Subscription, action: &str, _data: Map<String, Value>) -> ChannelResult {
    ///         if action == "tick" {
    ///             sub.transmit(&serde_json::json!({"tick": true}))?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn periodically(&self, every: Duration, action: impl Into<String>) {
        let every = every.max(Duration::from_millis(10));
        self.requests().timers.push((every, action.into()));
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("identifier", &self.identifier.as_str())
            .field("identifiers", &self.identifiers)
            .finish_non_exhaustive()
    }
}

/// Runs a channel's method, logging how it failed; whether it succeeded.
pub(crate) async fn run_method(what: &str, method: ChannelFuture<'_>) -> bool {
    match crate::panic::catch_unwind(method).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(method = what, %error, "cable channel method failed");
            false
        }
        Err(payload) => {
            tracing::error!(
                method = what,
                panic = %crate::panic::message(payload.as_ref()),
                "cable channel method panicked"
            );
            false
        }
    }
}
