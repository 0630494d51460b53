//! [`Subscription`]: turning a request into a hub subscriber.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::sync::{atomic::Ordering, Arc};
use tokio::time::Instant;

use super::{state::Subscriber, Hub, Metadata};
use crate::{
    context::Context,
    live::{self, Feed},
    response::Response,
    sse::{self, Event, SseOptions},
};

/// Which channels a request subscribes to, and the subscriber's metadata.
///
/// Metadata starts as the request's query parameters (all but `channel` and
/// `lastEventId`); pairs set here replace query pairs of the same name, so an
/// action can pin what the client must not choose (a user id from its
/// session, say).
///
/// ```
/// use rill::{hub::{Hub, Subscription}, Context, Response};
///
/// async fn notifications(ctx: Context, hub: Hub) -> Response {
///     let user = ctx.header("x-user").unwrap_or("anonymous").to_owned();
///     hub.subscribe(ctx, Subscription::new().channel("notifications").metadata("user_id", user))
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    channels: Vec<String>,
    metadata: Metadata,
}

impl Subscription {
    /// No channel yet: the request's `?channel=` parameters are used unless
    /// [`channel`](Self::channel) names some.
    pub fn new() -> Self {
        Subscription::default()
    }

    /// Subscribes to `channel` too.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channels.push(channel.into());
        self
    }

    /// Sets metadata `name` to `value`, replacing what the query said.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }
}

impl Hub {
    /// Answers `ctx` with an SSE stream of the subscription's channels.
    ///
    /// A client reconnecting with `Last-Event-ID` (or `?lastEventId=`) first
    /// gets every event it missed that is still in history, in order, then
    /// the live ones — nothing twice, nothing lost in between. When its id is
    /// older than a channel's history, it first gets `event: reset` (data: the
    /// channel name): events were lost, reload the state.
    ///
    /// Answers `400` without any channel, `403` when
    /// [`authorize_subscribe`](super::HubBuilder::authorize_subscribe)
    /// refuses a channel.
    pub fn subscribe(&self, ctx: Context, subscription: Subscription) -> Response {
        let mut channels = subscription.channels;
        if channels.is_empty() {
            channels = ctx.query_all("channel").map(str::to_owned).collect();
        }
        channels.sort();
        channels.dedup();
        if channels.is_empty() {
            return Response::text("subscribe to at least one channel: ?channel=NAME\n")
                .with_status(StatusCode::BAD_REQUEST);
        }
        if let Some(authorize) = &self.inner.authorize_subscribe {
            if !channels.iter().all(|channel| authorize(&ctx, channel)) {
                return Response::text("forbidden\n").with_status(StatusCode::FORBIDDEN);
            }
        }
        let mut metadata: Metadata = ctx
            .query_pairs()
            .iter()
            .filter(|(name, _)| name != "channel" && name != "lastEventId")
            .filter(|(name, _)| !subscription.metadata.iter().any(|(n, _)| n == name))
            .cloned()
            .collect();
        metadata.extend(subscription.metadata);
        let resume = sse::last_event_id(ctx.headers(), ctx.query("lastEventId"))
            .as_deref()
            .and_then(sse::numeric_id);

        let mut options = sse::live_options(
            &SseOptions::new()
                .heartbeat(self.inner.heartbeat)
                .capacity(self.inner.queue),
        );
        options.tracker = Some(ctx.tracker().clone());
        if ctx.method() == Method::HEAD {
            return live::head_response(&options);
        }

        let id = self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let channels: Arc<[String]> = channels.into();
        let metadata = Arc::new(metadata);
        let closer = {
            let hub = self.clone();
            Arc::new(move || hub.lock().close(id))
        };
        let on_drop = {
            let hub = self.clone();
            let (channels, metadata) = (channels.clone(), metadata.clone());
            Box::new(move || {
                hub.lock().remove(id);
                hub.inner.connections.fetch_sub(1, Ordering::AcqRel);
                hub.presence(&hub.inner.on_leave, id, &channels, &metadata);
            })
        };
        let (Feed { mut tx, shared }, response) = live::feed_response(&options, closer, on_drop);
        self.inner.connections.fetch_add(1, Ordering::AcqRel);

        let mut first = bytes::BytesMut::new();
        if let Some(retry) = self.inner.retry {
            if let Err(error) = Event::new().retry(retry).encode_into(None, &mut first) {
                tracing::warn!(%error, "could not encode the retry frame");
            }
        }
        {
            let mut state = self.lock();
            let replay = {
                let subscriber = Subscriber::new(
                    tx.clone(),
                    shared.clone(),
                    metadata.clone(),
                    channels.clone(),
                );
                state.subscribe(&self.inner.limits, id, subscriber, resume, Instant::now())
            };
            first.extend_from_slice(&replay);
            // Still under the lock: the replay is queued before any event
            // published after the snapshot. A fresh channel always has room
            // for one message.
            if !first.is_empty() {
                shared.sending();
                if tx.try_send(Bytes::from(first)).is_err() {
                    shared.not_sent();
                    tracing::debug!(subscriber = id, "subscriber left before its replay");
                }
            }
        }
        drop(tx);
        self.presence(&self.inner.on_join, id, &channels, &metadata);
        response
    }
}

impl Context {
    /// Subscribes this request to one hub channel: see [`Hub::subscribe`].
    pub fn subscribe(self, hub: &Hub, channel: impl Into<String>) -> Response {
        hub.subscribe(self, Subscription::new().channel(channel))
    }

    /// Subscribes this request as `subscription` says: see
    /// [`Hub::subscribe`].
    pub fn subscribe_with(self, hub: &Hub, subscription: Subscription) -> Response {
        hub.subscribe(self, subscription)
    }
}
