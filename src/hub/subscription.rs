//! [`Subscription`]: turning a request into a hub subscriber.

use bytes::Bytes;
use http::StatusCode;
use std::sync::{atomic::Ordering, Arc, Mutex, PoisonError};

use super::{sink, sink::SseSink, Hub, Metadata};
use crate::{
    broker::{SubscribeError, SubscribeOptions, MAX_CHANNEL_NAME},
    context::Context,
    live,
    response::Response,
    sse::{self, Event, SseOptions},
};

/// Which channels a request subscribes to, and the subscriber's metadata.
///
/// Metadata is what publication filters match, so it comes from the server:
/// pairs set here by the action, after those of
/// [`HubBuilder::identify`](super::HubBuilder::identify). The client's query
/// parameters count only with
/// [`HubBuilder::metadata_from_query`](super::HubBuilder::metadata_from_query),
/// and never over a server-set pair.
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
    presence: Option<bool>,
}

impl Subscription {
    /// No channel yet: the request's `?channel=` parameters are used unless
    /// [`channel`](Self::channel) names some.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::{Hub, Subscription}, Context, Router};
    ///
    /// let hub = Hub::new();
    /// let h = hub.clone();
    /// // The client picks its channels: `GET /events?channel=a&channel=b`.
    /// let app = Router::new()
    ///     .get("/events", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move { hub.subscribe(ctx, Subscription::new()) }
    ///     })
    ///     .into_service();
    /// let _body = get(&app, "/events?channel=a&channel=b").await;
    /// assert_eq!((hub.subscriber_count("a"), hub.subscriber_count("b")), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        Subscription::default()
    }

    /// Subscribes to `channel` too.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::{Hub, Subscription}, Context, Router};
    ///
    /// let hub = Hub::new();
    /// let h = hub.clone();
    /// let app = Router::new()
    ///     .get("/users/:id/events", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move {
    ///             let mine = format!("user:{}", ctx.param("id").unwrap_or_default());
    ///             hub.subscribe(ctx, Subscription::new().channel(mine).channel("announcements"))
    ///         }
    ///     })
    ///     .into_service();
    /// let _body = get(&app, "/users/7/events").await;
    /// assert_eq!(hub.subscriber_count("user:7"), 1);
    /// assert_eq!(hub.subscriber_count("announcements"), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channels.push(channel.into());
        self
    }

    /// Sets metadata `name` to `value`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::{Hub, Subscription}, Context, Router};
    ///
    /// let hub = Hub::new();
    /// let h = hub.clone();
    /// let app = Router::new()
    ///     .get("/boards/:id/events", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move {
    ///             let board = ctx.param("id").unwrap_or_default().to_owned();
    ///             let subscription = Subscription::new().channel("boards").metadata("board", board);
    ///             hub.subscribe(ctx, subscription)
    ///         }
    ///     })
    ///     .into_service();
    /// let _body = get(&app, "/boards/42/events").await;
    /// let members = hub.presence("boards").await?;
    /// assert_eq!(*members[0].metadata, [("board".to_owned(), "42".to_owned())]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }

    /// Receives `event: presence` messages (with
    /// [`HubBuilder::presence_events`](super::HubBuilder::presence_events)
    /// on). Without this, a mounted hub's `?presence=1` decides.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::{Hub, Subscription}, Context, Router};
    /// use std::time::Duration;
    ///
    /// let hub = Hub::builder().presence_events(Duration::from_millis(10)).build();
    /// let h = hub.clone();
    /// let app = Router::new()
    ///     .get("/rooms/:room/events", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move {
    ///             let room = ctx.param("room").unwrap_or("lobby").to_owned();
    ///             hub.subscribe(ctx, Subscription::new().channel(room).presence(true))
    ///         }
    ///     })
    ///     .into_service();
    /// let mut body = get(&app, "/rooms/lobby/events").await.into_http().into_body();
    /// assert!(read_until(&mut body, "\n\n").await.contains("event: presence\n")); // itself joined
    /// # Ok(())
    /// # }
    /// ```
    pub fn presence(mut self, enabled: bool) -> Self {
        self.presence = Some(enabled);
        self
    }
}

/// Query parameters that are the subscription's own, never metadata.
const RESERVED: [&str; 3] = ["channel", "lastEventId", "presence"];

impl Hub {
    /// Answers `ctx` with an SSE stream of the subscription's channels.
    ///
    /// A client reconnecting with `Last-Event-ID` (or `?lastEventId=`) first
    /// gets every event it missed that is still in history, in order, then
    /// the live ones — each exactly once. When continuity is lost (its id is
    /// of another epoch — the server restarted —, older than the history, or
    /// not an id of this subscription), it first gets `event: reset` (data:
    /// the channel name), then what the history holds: reload your state.
    ///
    /// Answers `400` without any channel, with more than
    /// [`max_channels_per_subscription`](super::HubBuilder::max_channels_per_subscription)
    /// or with an invalid channel name, `403` when
    /// [`authorize_subscribe`](super::HubBuilder::authorize_subscribe)
    /// refuses a channel, `503` past the broker's channel cap.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::{Hub, Subscription}, sse::Event, Context, Router};
    ///
    /// let hub = Hub::new();
    /// let h = hub.clone();
    /// let app = Router::new()
    ///     .get("/news", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move { hub.subscribe(ctx, Subscription::new().channel("news")) }
    ///     })
    ///     .into_service();
    /// let response = get(&app, "/news").await;
    /// assert_eq!(response.headers()["content-type"], "text/event-stream");
    /// let mut body = response.into_http().into_body();
    /// hub.publish("news", Event::data("hello")).await?;
    /// assert!(read_until(&mut body, "\n\n").await.ends_with("data: hello\n\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self, ctx: Context, subscription: Subscription) -> Response {
        let inner = &self.inner;
        let mut channels = subscription.channels;
        if channels.is_empty() {
            channels = ctx.query_all("channel").map(str::to_owned).collect();
        }
        channels.sort();
        channels.dedup();
        if let Some(refusal) = self.refuse(&ctx, &channels) {
            return refusal;
        }
        let metadata = self.metadata(&ctx, subscription.metadata);
        let presence = subscription.presence.unwrap_or_else(|| {
            ctx.query("presence")
                .is_some_and(|v| v == "1" || v == "true")
        });
        let last_event_id = sse::last_event_id(ctx.headers(), ctx.query("lastEventId"));
        let resume = sink::resume_points(last_event_id.as_deref(), channels.len());
        let options = sse::live_options(&SseOptions::new().heartbeat(inner.heartbeat));

        ctx.start_live(options, |_ctx, options| {
            let channels: Arc<[String]> = channels.into();
            // Filled below; taken (and dropped: the subscription leaves its
            // channels) when the body is.
            let slot: Arc<Mutex<Option<crate::broker::BrokerSubscription>>> = Arc::default();
            let on_drop = {
                let (hub, slot, metadata) = (self.clone(), slot.clone(), metadata.clone());
                let channels = channels.clone();
                Box::new(move || {
                    let subscription = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                    if let Some(subscription) = subscription {
                        let member = subscription.member_id().to_owned();
                        drop(subscription);
                        hub.inner.connections.fetch_sub(1, Ordering::AcqRel);
                        hub.presence_hooks(&hub.inner.on_leave, &member, &channels, &metadata);
                    }
                })
            };
            let (feed, response) = live::feed_response(&options, on_drop);
            if let Some(retry) = inner.retry {
                let mut first = bytes::BytesMut::new();
                if Event::new()
                    .retry(retry)
                    .encode_into(None, &mut first)
                    .is_ok()
                {
                    let _ = feed.with_state(|state| state.batch.push(Bytes::from(first)));
                }
            }
            let sink = Arc::new(SseSink::new(
                feed.clone(),
                metadata.clone(),
                inner.queue,
                channels.clone(),
            ));
            let subscription = inner.broker.subscribe(
                sink,
                SubscribeOptions {
                    slow_consumer: inner.slow,
                    presence: presence && inner.presence_events,
                },
            );
            for (channel, since) in channels.iter().zip(resume) {
                if let Err(error) = subscription.join(channel, since) {
                    feed.close();
                    return refused(&error);
                }
            }
            let member = subscription.member_id().to_owned();
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(subscription);
            inner.connections.fetch_add(1, Ordering::AcqRel);
            self.presence_hooks(&inner.on_join, &member, &channels, &metadata);
            response
        })
    }

    /// The answer to a subscription that cannot be, if it cannot.
    fn refuse(&self, ctx: &Context, channels: &[String]) -> Option<Response> {
        let bad = |text: String| Some(Response::text(text).with_status(StatusCode::BAD_REQUEST));
        if channels.is_empty() {
            return bad("subscribe to at least one channel: ?channel=NAME\n".into());
        }
        let max = self.inner.max_channels_per_subscription;
        if channels.len() > max {
            return bad(format!("at most {max} channels per subscription\n"));
        }
        if channels
            .iter()
            .any(|c| c.is_empty() || c.len() > MAX_CHANNEL_NAME)
        {
            return bad(format!("channel names are 1 to {MAX_CHANNEL_NAME} bytes\n"));
        }
        if let Some(authorize) = &self.inner.authorize_subscribe {
            if !channels.iter().all(|channel| authorize(ctx, channel)) {
                return Some(Response::text("forbidden\n").with_status(StatusCode::FORBIDDEN));
            }
        }
        None
    }

    /// The subscriber's metadata: the server's (identify hook, then the
    /// action's pairs), then — only if enabled — query pairs of other names.
    pub(crate) fn metadata(&self, ctx: &Context, pinned: Metadata) -> Metadata {
        let mut metadata = match &self.inner.identify {
            Some(identify) => identify(ctx),
            None => Vec::new(),
        };
        for (name, value) in pinned {
            metadata.retain(|(n, _)| *n != name);
            metadata.push((name, value));
        }
        if self.inner.metadata_from_query {
            let from_query: Vec<(String, String)> = ctx
                .query_pairs()
                .iter()
                .filter(|(name, _)| !RESERVED.contains(&name.as_str()))
                .filter(|(name, _)| !metadata.iter().any(|(n, _)| n == name))
                .cloned()
                .collect();
            metadata.extend(from_query);
        }
        metadata
    }
}

fn refused(error: &SubscribeError) -> Response {
    let status = match error {
        SubscribeError::TooManyChannels { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    Response::text(format!("{error}\n")).with_status(status)
}

impl Context {
    /// Subscribes this request to one hub channel: see [`Hub::subscribe`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::Hub, Context, Router};
    ///
    /// let hub = Hub::new();
    /// let h = hub.clone();
    /// let app = Router::new()
    ///     .get("/rooms/:room/events", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move {
    ///             let room = format!("room:{}", ctx.param("room").unwrap_or("lobby"));
    ///             ctx.subscribe(&hub, room)
    ///         }
    ///     })
    ///     .into_service();
    /// let _body = get(&app, "/rooms/rust/events").await;
    /// assert_eq!(hub.subscriber_count("room:rust"), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(self, hub: &Hub, channel: impl Into<String>) -> Response {
        hub.subscribe(self, Subscription::new().channel(channel))
    }

    /// Subscribes this request as `subscription` says: see
    /// [`Hub::subscribe`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// # async fn get(app: &rill::RouterService, uri: &str) -> rill::Response {
    /// #     get_with(app, uri, "x-none", "").await
    /// # }
    /// # async fn get_with(app: &rill::RouterService, uri: &str, name: &str, value: &str) -> rill::Response {
    /// #     let request = http::Request::get(uri)
    /// #         .header("host", "example.com")
    /// #         .header(name, value)
    /// #         .body(http_body_util::Empty::<bytes::Bytes>::new())
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn post(app: &rill::RouterService, uri: &str, json: &'static str) -> rill::Response {
    /// #     let request = http::Request::post(uri)
    /// #         .header("host", "example.com")
    /// #         .header("content-type", "application/json")
    /// #         .body(http_body_util::Full::new(bytes::Bytes::from_static(json.as_bytes())))
    /// #         .expect("a valid request");
    /// #     app.handle(request).await
    /// # }
    /// # async fn read_until(body: &mut rill::Body, needle: &str) -> String {
    /// #     let mut text = String::new();
    /// #     while !text.contains(needle) {
    /// #         let frame = body.frame().await.expect("more frames").expect("no error");
    /// #         text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("UTF-8"));
    /// #     }
    /// #     text
    /// # }
    /// use rill::{hub::{Hub, Subscription}, Context, Router};
    ///
    /// let hub = Hub::new();
    /// let h = hub.clone();
    /// let app = Router::new()
    ///     .get("/feed", move |ctx: Context| {
    ///         let hub = h.clone();
    ///         async move {
    ///             let user = ctx.header("x-user").unwrap_or("anonymous").to_owned();
    ///             ctx.subscribe_with(&hub, Subscription::new().channel("feed").metadata("user", user))
    ///         }
    ///     })
    ///     .into_service();
    /// let _body = get_with(&app, "/feed", "x-user", "ada").await;
    /// assert_eq!(hub.subscriber_count("feed"), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_with(self, hub: &Hub, subscription: Subscription) -> Response {
        hub.subscribe(self, subscription)
    }
}
