//! The broadcast hub: the broker's SSE transport. Named channels fan one
//! event out to many `EventSource` clients, with filters on server-set
//! metadata, exact resume from history, presence, and a per-subscriber
//! slow-consumer policy.
//!
//! * [`Hub`] — publish from anywhere, subscribe from actions.
//! * [`Subscription`] — which channels a request subscribes to, with its
//!   metadata.
//! * `sink` — the SSE sink: frames, ids and multi-channel cursors.
//! * [`HubStats`] — connections, channels, counters.
//! * `Hub::mount` — `GET /hub`, `GET /hub/stats`, `POST /hub/broadcast` in
//!   one line.
//!
//! See [`docs/hub.md`](crate::guides::hub).

mod cluster;
mod http;
mod sink;
mod stats;
mod subscription;

pub use crate::broker::{Filter, Member, Metadata, SlowConsumer};
pub use stats::{HubStats, PER_CHANNEL_LIMIT};
pub use subscription::Subscription;

pub(crate) use sink::since_from_id;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::{
    broker::{Backend, BackendError, Broker, BrokerBuilder, Position, Publication, PublishError},
    context::Context,
    sse::Event,
};

/// A join or leave of one subscriber on one channel, as the presence hooks
/// see it.
///
/// Hooks run outside every lock of the hub, so they may publish through
/// [`hub`](Self::hub).
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
/// use rill::{hub::Hub, sse::Event, Router};
///
/// let hub = Hub::builder()
///     .on_join(|change| {
///         // Greet the room; hooks run outside the hub's locks.
///         let hello = Event::data(change.member_id).event("joined");
///         let _ = change.hub.publish_detached(change.channel, hello);
///     })
///     .build();
/// let app = hub.mount(Router::new(), "/hub").into_service();
/// let mut body = get(&app, "/hub?channel=lobby").await.into_http().into_body();
/// assert!(read_until(&mut body, "\n\n").await.contains("event: joined\n"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PresenceChange<'a> {
    /// The hub, to publish from the hook.
    pub hub: &'a Hub,
    /// The channel joined or left.
    pub channel: &'a str,
    /// The subscriber's member id, unique within the broker.
    pub member_id: &'a str,
    /// The subscriber's metadata.
    pub metadata: &'a [(String, String)],
}

type PresenceHook = Arc<dyn Fn(&PresenceChange<'_>) + Send + Sync>;
type Authorize = Arc<dyn Fn(&Context, &str) -> bool + Send + Sync>;
type Identify = Arc<dyn Fn(&Context) -> Metadata + Send + Sync>;

/// Default SSE frames queued per subscriber before the slow-consumer policy
/// applies.
///
/// # Example
///
/// ```
/// use rill::hub::{Hub, DEFAULT_QUEUE};
///
/// assert_eq!(DEFAULT_QUEUE, 256);
/// // Bursty channels (a live ticker): let subscribers fall further behind.
/// let hub = Hub::builder().queue(DEFAULT_QUEUE * 4).build();
/// ```
pub const DEFAULT_QUEUE: usize = 256;
/// Default cap on the channels one subscription may join.
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
/// use rill::{hub::{Hub, DEFAULT_MAX_CHANNELS_PER_SUBSCRIPTION}, Router};
///
/// assert_eq!(DEFAULT_MAX_CHANNELS_PER_SUBSCRIPTION, 32);
/// let app = Hub::new().mount(Router::new(), "/hub").into_service();
/// let too_many: String = (0..33).map(|n| format!("channel=c{n}&")).collect();
/// let response = get(&app, &format!("/hub?{too_many}")).await;
/// assert_eq!(response.status(), 400);
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_MAX_CHANNELS_PER_SUBSCRIPTION: usize = 32;

pub use crate::broker::{DEFAULT_HISTORY, DEFAULT_HISTORY_AGE, DEFAULT_HISTORY_BYTES};

/// A fan-out hub of named channels over SSE. Cheap to clone; clones share
/// everything.
///
/// # Example
///
/// ```
/// use rill::{hub::Hub, sse::Event, Context, Response, Router};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rill::broker::PublishError> {
/// let hub = Hub::builder().history(1000).build();
///
/// // subscribe from an action...
/// let h = hub.clone();
/// let router = Router::new().get("/rooms/:room/events", move |ctx: Context| {
///     let hub = h.clone();
///     async move {
///         let room = ctx.param("room").unwrap_or("lobby").to_owned();
///         ctx.subscribe(&hub, room)
///     }
/// });
///
/// // ...and publish from anywhere: awaiting the event's id...
/// let id = hub.publish("lobby", Event::data("hello")).await?;
/// assert_eq!(id.offset(), 1);
/// // ...or from synchronous code, without waiting
/// hub.publish_detached("lobby", Event::data("hello again"))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    broker: Broker,
    /// This process's name in the stats of a shared backend.
    node: Arc<str>,
    queue: usize,
    slow: SlowConsumer,
    heartbeat: Duration,
    retry: Option<Duration>,
    presence_events: bool,
    max_channels_per_subscription: usize,
    on_join: Vec<PresenceHook>,
    on_leave: Vec<PresenceHook>,
    authorize_subscribe: Option<Authorize>,
    authorize_broadcast: Option<Authorize>,
    identify: Option<Identify>,
    metadata_from_query: bool,
    http_broadcast: bool,
    connections: AtomicUsize,
}

/// Configures a [`Hub`].
///
/// ```
/// use rill::hub::{Hub, SlowConsumer};
/// use std::time::Duration;
///
/// let hub = Hub::builder()
///     .history(1000)                          // events kept per channel
///     .history_age(Duration::from_secs(600))  // and for at most 10 minutes
///     .queue(256)                             // frames queued per subscriber
///     .slow_consumer(SlowConsumer::Disconnect)
///     .identify(|ctx| vec![("user_id".into(), ctx.header("x-user").unwrap_or("anonymous").into())])
///     .authorize_subscribe(|ctx, channel| channel != "admin" || ctx.header("x-admin").is_some())
///     .http_broadcast(true)
///     .build();
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct HubBuilder {
    broker: BrokerBuilder,
    queue: usize,
    slow: SlowConsumer,
    heartbeat: Duration,
    retry: Option<Duration>,
    presence_events: bool,
    max_channels_per_subscription: usize,
    on_join: Vec<PresenceHook>,
    on_leave: Vec<PresenceHook>,
    authorize_subscribe: Option<Authorize>,
    authorize_broadcast: Option<Authorize>,
    identify: Option<Identify>,
    metadata_from_query: bool,
    http_broadcast: bool,
}

impl Default for HubBuilder {
    fn default() -> Self {
        HubBuilder {
            broker: Broker::builder(),
            queue: DEFAULT_QUEUE,
            slow: SlowConsumer::default(),
            heartbeat: crate::sse::DEFAULT_HEARTBEAT,
            retry: None,
            presence_events: false,
            max_channels_per_subscription: DEFAULT_MAX_CHANNELS_PER_SUBSCRIPTION,
            on_join: Vec::new(),
            on_leave: Vec::new(),
            authorize_subscribe: None,
            authorize_broadcast: None,
            identify: None,
            metadata_from_query: false,
            http_broadcast: false,
        }
    }
}

impl HubBuilder {
    /// How many events each channel keeps for replay (default 1000; 0 keeps
    /// none).
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
    /// use rill::{hub::Hub, sse::Event, Router};
    ///
    /// let hub = Hub::builder().history(2).build();
    /// for data in ["a", "b", "c"] {
    ///     hub.publish("news", Event::data(data)).await?;
    /// }
    /// // `Last-Event-ID: 0` asks for everything the history still holds.
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=news&lastEventId=0").await.into_http().into_body();
    /// let replayed = read_until(&mut body, "data: c\n\n").await;
    /// assert!(replayed.contains("data: b\n") && !replayed.contains("data: a\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn history(mut self, events: usize) -> Self {
        self.broker = self.broker.history(events);
        self
    }

    /// How many bytes of events each channel keeps (default 1 MiB).
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
    /// use rill::{hub::Hub, sse::Event, Router};
    ///
    /// let hub = Hub::builder().history_bytes(64 * 1024).build();
    /// hub.publish("files", Event::data("x".repeat(100 * 1024))).await?; // live only
    /// hub.publish("files", Event::data("small")).await?;                // kept
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=files&lastEventId=0").await.into_http().into_body();
    /// let replayed = read_until(&mut body, "data: small\n\n").await;
    /// assert!(!replayed.contains("xxxx"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.broker = self.broker.history_bytes(bytes);
        self
    }

    /// How long an event stays in history (default 10 minutes).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
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
    /// use rill::{hub::Hub, sse::Event, Router};
    /// use std::time::Duration;
    ///
    /// let hub = Hub::builder().history_age(Duration::from_secs(60)).build();
    /// hub.publish("news", Event::data("stale")).await?;
    /// tokio::time::advance(Duration::from_secs(61)).await;
    /// hub.publish("news", Event::data("fresh")).await?;
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=news&lastEventId=0").await.into_http().into_body();
    /// let replayed = read_until(&mut body, "data: fresh\n\n").await;
    /// assert!(!replayed.contains("stale"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn history_age(mut self, age: Duration) -> Self {
        self.broker = self.broker.history_age(age);
        self
    }

    /// The most channels that may exist at once (default 100,000).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use rill::{broker::PublishError, hub::Hub, sse::Event};
    ///
    /// let hub = Hub::builder().max_channels(2).build();
    /// assert!(hub.publish("room-1", Event::data("hi")).await.is_ok());
    /// assert!(hub.publish("room-2", Event::data("hi")).await.is_ok());
    /// let third = hub.publish("room-3", Event::data("hi")).await;
    /// assert!(matches!(third, Err(PublishError::TooManyChannels { max: 2 })));
    /// # }
    /// ```
    pub fn max_channels(mut self, channels: usize) -> Self {
        self.broker = self.broker.max_channels(channels);
        self
    }

    /// The most channels one subscription may join (default 32); a request
    /// asking for more gets `400 Bad Request`.
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::builder().max_channels_per_subscription(2).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// assert_eq!(get(&app, "/hub?channel=a&channel=b").await.status(), 200);
    /// assert_eq!(get(&app, "/hub?channel=a&channel=b&channel=c").await.status(), 400);
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_channels_per_subscription(mut self, channels: usize) -> Self {
        self.max_channels_per_subscription = channels.max(1);
        self
    }

    /// How many frames may wait for one subscriber (default 256).
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
    /// use rill::{hub::{Hub, SlowConsumer}, sse::Event, Router};
    ///
    /// let hub = Hub::builder().queue(4).slow_consumer(SlowConsumer::DropWithGap).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let _body = get(&app, "/hub?channel=ticks").await; // a client that never reads
    /// for n in 0..20 {
    ///     hub.publish("ticks", Event::data(n.to_string())).await?;
    /// }
    /// assert!(hub.stats(false).dropped > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn queue(mut self, frames: usize) -> Self {
        self.queue = frames.max(1);
        self
    }

    /// What happens to a subscriber whose queue is full.
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
    /// use rill::{hub::{Hub, SlowConsumer}, sse::Event, Router};
    ///
    /// let hub = Hub::builder().queue(4).slow_consumer(SlowConsumer::Disconnect).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let _body = get(&app, "/hub?channel=ticks").await; // a client that never reads
    /// for n in 0..20 {
    ///     hub.publish("ticks", Event::data(n.to_string())).await?;
    /// }
    /// // It was cut off; it reconnects with its Last-Event-ID and replays the rest.
    /// assert_eq!(hub.stats(false).slow_disconnects, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow = policy;
        self
    }

    /// The heartbeat interval of subscriber streams (default 15 s; zero
    /// disables).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
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
    /// use rill::{hub::Hub, Router};
    /// use std::time::Duration;
    ///
    /// let hub = Hub::builder().heartbeat(Duration::from_secs(5)).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=quiet").await.into_http().into_body();
    /// // Nothing is published: after 5 s the client gets a comment.
    /// assert_eq!(read_until(&mut body, "\n").await, ": keep-alive\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Sends `retry: <ms>` first on every subscription, telling
    /// `EventSource` how soon to reconnect.
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
    /// use rill::{hub::Hub, Router};
    /// use std::time::Duration;
    ///
    /// let hub = Hub::builder().retry(Duration::from_secs(3)).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=news").await.into_http().into_body();
    /// assert_eq!(read_until(&mut body, "\n\n").await, "retry: 3000\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry(mut self, interval: Duration) -> Self {
        self.retry = Some(interval);
        self
    }

    /// Sends joins and leaves as `event: presence` to the subscriptions that
    /// ask for them ([`Subscription::presence`], or `?presence=1` on a
    /// mounted hub): at most one per channel per `interval`, with the
    /// members that joined (and their metadata) and the ids that left.
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
    /// use rill::{hub::Hub, Router};
    /// use std::time::Duration;
    ///
    /// let hub = Hub::builder().presence_events(Duration::from_millis(10)).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut watcher = get(&app, "/hub?channel=doc-7&presence=1").await.into_http().into_body();
    /// let _editor = get(&app, "/hub?channel=doc-7").await; // someone opens the document
    /// assert!(read_until(&mut watcher, "\n\n").await.contains("event: presence\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn presence_events(mut self, interval: Duration) -> Self {
        self.broker = self.broker.presence_events(interval);
        self.presence_events = true;
        self
    }

    /// Called once per channel when a subscriber joins it, outside every
    /// lock (the hook may publish).
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
    /// use rill::{hub::Hub, Router};
    /// use std::sync::{atomic::{AtomicUsize, Ordering}, Arc};
    ///
    /// let online = Arc::new(AtomicUsize::new(0));
    /// let count = online.clone();
    /// let hub = Hub::builder()
    ///     .on_join(move |_change| { count.fetch_add(1, Ordering::Relaxed); })
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let _body = get(&app, "/hub?channel=lobby").await;
    /// assert_eq!(online.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_join(mut self, hook: impl Fn(&PresenceChange<'_>) + Send + Sync + 'static) -> Self {
        self.on_join.push(Arc::new(hook));
        self
    }

    /// Called once per channel when a subscriber's connection ends.
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
    /// use rill::{hub::Hub, Router};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let left = Arc::new(Mutex::new(Vec::new()));
    /// let log = left.clone();
    /// let hub = Hub::builder()
    ///     .on_leave(move |change| log.lock().expect("not poisoned").push(change.channel.to_owned()))
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let body = get(&app, "/hub?channel=lobby").await;
    /// drop(body); // the client closes the tab
    /// assert_eq!(*left.lock().expect("not poisoned"), ["lobby"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_leave(mut self, hook: impl Fn(&PresenceChange<'_>) + Send + Sync + 'static) -> Self {
        self.on_leave.push(Arc::new(hook));
        self
    }

    /// Decides who may subscribe to which channel; a refused request gets
    /// `403 Forbidden` and no stream. Without it, everyone may.
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::builder()
    ///     .authorize_subscribe(|ctx, channel| {
    ///         !channel.starts_with("admin") || ctx.header("x-role") == Some("admin")
    ///     })
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// assert_eq!(get(&app, "/hub?channel=admin-log").await.status(), 403);
    /// assert_eq!(get_with(&app, "/hub?channel=admin-log", "x-role", "admin").await.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn authorize_subscribe(
        mut self,
        decide: impl Fn(&Context, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorize_subscribe = Some(Arc::new(decide));
        self
    }

    /// Decides who may publish to which channel through
    /// `POST <path>/broadcast`; a refused request gets `403 Forbidden`.
    /// Without it, everyone may (once [`http_broadcast`](Self::http_broadcast)
    /// is on).
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::builder()
    ///     .http_broadcast(true)
    ///     .authorize_broadcast(|_ctx, channel| channel.starts_with("public/"))
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let refused = post(&app, "/hub/broadcast", r#"{"channel": "billing", "data": "hi"}"#).await;
    /// assert_eq!(refused.status(), 403);
    /// let sent = post(&app, "/hub/broadcast", r#"{"channel": "public/news", "data": "hi"}"#).await;
    /// assert_eq!(sent.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn authorize_broadcast(
        mut self,
        decide: impl Fn(&Context, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorize_broadcast = Some(Arc::new(decide));
        self
    }

    /// Computes a subscriber's metadata from its request on the server side
    /// (a session cookie, a verified token): what publication filters match.
    /// Pairs an action sets with [`Subscription::metadata`] come after.
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
    /// use rill::{hub::{Filter, Hub}, sse::Event, Router};
    ///
    /// let hub = Hub::builder()
    ///     // In a real app: the user id of a verified session, not a bare header.
    ///     .identify(|ctx| vec![("user_id".into(), ctx.header("x-user").unwrap_or("").into())])
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get_with(&app, "/hub?channel=inbox", "x-user", "7").await.into_http().into_body();
    /// let only_7 = Filter::new().eq("user_id", "7");
    /// hub.publish_filtered("inbox", Event::data("you have mail"), only_7).await?;
    /// assert!(read_until(&mut body, "\n\n").await.ends_with("data: you have mail\n\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn identify(
        mut self,
        identify: impl Fn(&Context) -> Metadata + Send + Sync + 'static,
    ) -> Self {
        self.identify = Some(Arc::new(identify));
        self
    }

    /// Also takes metadata from the subscription request's query
    /// parameters (all but `channel`, `lastEventId` and `presence`), as
    /// Lucky's SSE shard (lucky_sse) does. **Off by default, and a risk when on:** a client then
    /// chooses its own metadata, so a filter on, say, `user_id` delivers to
    /// whoever asks for `?user_id=7`. Server-set pairs (from
    /// [`identify`](Self::identify) and the action) always win over query
    /// pairs of the same name. Use it only for metadata that selects
    /// nothing private (a topic, a language).
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
    /// use rill::{hub::{Filter, Hub}, sse::Event, Router};
    ///
    /// // Only for metadata that selects nothing private, like a language.
    /// let hub = Hub::builder().metadata_from_query(true).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=news&lang=fr").await.into_http().into_body();
    /// hub.publish_filtered("news", Event::data("hello"), Filter::new().eq("lang", "en")).await?;
    /// hub.publish_filtered("news", Event::data("bonjour"), Filter::new().eq("lang", "fr")).await?;
    /// let text = read_until(&mut body, "\n\n").await;
    /// assert!(text.ends_with("data: bonjour\n\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn metadata_from_query(mut self, enabled: bool) -> Self {
        self.metadata_from_query = enabled;
        self
    }

    /// Mounts `POST <path>/broadcast` with [`Hub::mount`]. Off by default:
    /// publishing over HTTP is a decision, not an accident.
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::builder().http_broadcast(true).build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// // What a Rails app or a cron job would send:
    /// let body = r#"{"channel": "news", "event": "headline", "data": {"title": "Hi"}}"#;
    /// let response = post(&app, "/hub/broadcast", body).await;
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(hub.stats(false).published, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_broadcast(mut self, enabled: bool) -> Self {
        self.http_broadcast = enabled;
        self
    }

    /// Runs the hub on `backend` instead of the in-memory one (see
    /// [`Backend`]).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{broker::Backend, hub::Hub};
    /// use std::sync::Arc;
    ///
    /// /// A hub on a shared backend (Redis, say), so that every process sees
    /// /// every event.
    /// fn shared_hub(backend: Arc<dyn Backend>) -> Hub {
    ///     Hub::builder().history(500).backend(backend).build()
    /// }
    /// ```
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.broker = self.broker.backend(backend);
        self
    }

    /// Builds the hub.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::broker::PublishError> {
    /// use rill::{hub::Hub, sse::Event};
    ///
    /// let hub = Hub::builder().history(100).build();
    /// let app_state = hub.clone(); // clones share channels and history
    /// app_state.publish("news", Event::data("hi")).await?;
    /// assert_eq!(hub.stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Hub {
        let hub = Hub {
            inner: Arc::new(HubInner {
                broker: self.broker.build(),
                queue: self.queue,
                slow: self.slow,
                heartbeat: self.heartbeat,
                retry: self.retry,
                presence_events: self.presence_events,
                max_channels_per_subscription: self.max_channels_per_subscription,
                on_join: self.on_join,
                on_leave: self.on_leave,
                authorize_subscribe: self.authorize_subscribe,
                authorize_broadcast: self.authorize_broadcast,
                identify: self.identify,
                metadata_from_query: self.metadata_from_query,
                http_broadcast: self.http_broadcast,
                connections: AtomicUsize::new(0),
                node: cluster::node_name(),
            }),
        };
        hub.start_reporting();
        hub
    }
}

impl std::fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBuilder")
            .field("broker", &self.broker)
            .field("queue", &self.queue)
            .field("slow", &self.slow)
            .field("metadata_from_query", &self.metadata_from_query)
            .field("http_broadcast", &self.http_broadcast)
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub with the defaults (see [`HubBuilder`]).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::broker::PublishError> {
    /// use rill::{hub::Hub, sse::Event};
    ///
    /// let hub = Hub::new();
    /// let id = hub.publish("news", Event::data("hello")).await?;
    /// assert_eq!(id.offset(), 1); // the first event of the channel
    /// # Ok(()) }
    /// ```
    pub fn new() -> Hub {
        HubBuilder::default().build()
    }

    /// Configures a hub.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::hub::Hub;
    /// use std::time::Duration;
    ///
    /// let hub = Hub::builder()
    ///     .history(100)
    ///     .retry(Duration::from_secs(2))
    ///     .build();
    /// assert_eq!(hub.subscriber_count("news"), 0);
    /// ```
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// The broker underneath: for other transports on the same channels,
    /// and for [`Broker::stats`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::broker::PublishError> {
    /// use rill::{broker::Publication, hub::Hub};
    ///
    /// let hub = Hub::new();
    /// // Another transport publishes on the same channels, through the broker.
    /// hub.broker().publish("news", Publication::new("from the broker")).await?;
    /// assert_eq!(hub.stats(false).published, 1);
    /// assert_eq!(hub.broker().stats(false).channels_with_history, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// Publishes `event` on `channel` to every subscriber, and keeps it in
    /// the channel's history. Resolves to the event's id (its position in the
    /// channel: any id set on the event is replaced); never waits on a
    /// subscriber. The event's name is kept; `retry` is not (set it for
    /// every subscription with [`HubBuilder::retry`]).
    ///
    /// # Errors
    ///
    /// [`PublishError`]: an event name with a line break, an invalid
    /// channel name, too many channels, or a backend failure. Nothing was
    /// published then.
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
    /// use rill::{hub::Hub, sse::Event, Router};
    ///
    /// let hub = Hub::new();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut body = get(&app, "/hub?channel=orders").await.into_http().into_body();
    /// let id = hub.publish("orders", Event::data("order 17 paid").event("paid")).await?;
    /// let frame = read_until(&mut body, "\n\n").await;
    /// assert_eq!(frame, format!("event: paid\nid: {id}\ndata: order 17 paid\n\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish(&self, channel: &str, event: Event) -> Result<Position, PublishError> {
        let publication = publication(event, None)?;
        self.inner.broker.publish(channel, publication).await
    }

    /// Publishes to the subscribers of `channel` whose metadata matches
    /// `filter`; replay honours the filter too.
    ///
    /// # Errors
    ///
    /// As for [`publish`](Self::publish).
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
    /// use rill::{hub::{Filter, Hub}, sse::Event, Router};
    ///
    /// let hub = Hub::builder()
    ///     .identify(|ctx| vec![("team".into(), ctx.header("x-team").unwrap_or("").into())])
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let mut ops = get_with(&app, "/hub?channel=alerts", "x-team", "ops").await.into_http().into_body();
    /// let only_dev = Filter::new().eq("team", "dev");
    /// hub.publish_filtered("alerts", Event::data("build broke"), only_dev).await?;
    /// hub.publish("alerts", Event::data("deploy at 5")).await?;
    /// let first = read_until(&mut ops, "\n\n").await; // ops skips the dev alert
    /// assert!(first.ends_with("data: deploy at 5\n\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_filtered(
        &self,
        channel: &str,
        event: Event,
        filter: Filter,
    ) -> Result<Position, PublishError> {
        let publication = publication(event, Some(filter))?;
        self.inner.broker.publish(channel, publication).await
    }

    /// Publishes without waiting for the id, from synchronous code (a
    /// callback, a presence hook): see [`Broker::publish_detached`].
    ///
    /// # Errors
    ///
    /// What can be known at once: see [`Broker::publish_detached`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::broker::PublishError> {
    /// use rill::{hub::Hub, sse::Event};
    ///
    /// // From synchronous code: a callback, a `Drop`, a presence hook.
    /// fn on_upload_finished(hub: &Hub, name: &str) -> Result<(), rill::broker::PublishError> {
    ///     hub.publish_detached("uploads", Event::data(name).event("done"))
    /// }
    ///
    /// let hub = Hub::new();
    /// on_upload_finished(&hub, "report.pdf")?;
    /// assert_eq!(hub.stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn publish_detached(&self, channel: &str, event: Event) -> Result<(), PublishError> {
        let publication = publication(event, None)?;
        self.inner.broker.publish_detached(channel, publication)
    }

    /// [`publish_filtered`](Self::publish_filtered) without waiting for the
    /// id.
    ///
    /// # Errors
    ///
    /// As for [`publish_detached`](Self::publish_detached).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::broker::PublishError> {
    /// use rill::{hub::{Filter, Hub}, sse::Event};
    ///
    /// let hub = Hub::new();
    /// let to_user_7 = Filter::new().eq("user_id", "7");
    /// hub.publish_filtered_detached("inbox", Event::data("you have mail"), to_user_7)?;
    /// assert_eq!(hub.stats(false).published, 1);
    /// # Ok(()) }
    /// ```
    pub fn publish_filtered_detached(
        &self,
        channel: &str,
        event: Event,
        filter: Filter,
    ) -> Result<(), PublishError> {
        let publication = publication(event, Some(filter))?;
        self.inner.broker.publish_detached(channel, publication)
    }

    /// How many subscribers `channel` has in this process right now.
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::new();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let body = get(&app, "/hub?channel=lobby").await;
    /// assert_eq!(hub.subscriber_count("lobby"), 1);
    /// drop(body); // the client left
    /// assert_eq!(hub.subscriber_count("lobby"), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.inner.broker.subscriber_count(channel)
    }

    /// Who is on `channel`: every subscriber, with the metadata the server
    /// gave it.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the backend cannot tell.
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::builder()
    ///     .identify(|ctx| vec![("name".into(), ctx.header("x-name").unwrap_or("guest").into())])
    ///     .build();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let _ada = get_with(&app, "/hub?channel=doc-7", "x-name", "ada").await;
    /// let members = hub.presence("doc-7").await?;
    /// assert_eq!(members.len(), 1);
    /// assert_eq!(*members[0].metadata, [("name".to_owned(), "ada".to_owned())]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn presence(&self, channel: &str) -> Result<Vec<Member>, BackendError> {
        self.inner.broker.presence(channel).await
    }

    /// Connections, channels and counters. `per_channel` adds subscribers
    /// per channel (of the [`PER_CHANNEL_LIMIT`] busiest channels).
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
    /// use rill::{hub::Hub, Router};
    ///
    /// let hub = Hub::new();
    /// let app = hub.mount(Router::new(), "/hub").into_service();
    /// let _a = get(&app, "/hub?channel=lobby").await;
    /// let _b = get(&app, "/hub?channel=lobby&channel=news").await;
    /// let stats = hub.stats(true);
    /// assert_eq!(stats.connections, 2);
    /// assert_eq!(stats.channels, [("lobby".to_owned(), 2), ("news".to_owned(), 1)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self, per_channel: bool) -> HubStats {
        HubStats::new(
            self.inner.connections.load(Ordering::Acquire),
            self.inner.broker.stats(per_channel),
        )
    }

    /// Whether `ctx` may subscribe to `channel` (the
    /// [`authorize_subscribe`](HubBuilder::authorize_subscribe) hook; yes
    /// without one). For other transports on this hub.
    pub(crate) fn may_subscribe(&self, ctx: &Context, channel: &str) -> bool {
        self.inner
            .authorize_subscribe
            .as_ref()
            .is_none_or(|authorize| authorize(ctx, channel))
    }

    /// How this hub's subscribers queue, for other transports.
    pub(crate) fn subscriber_limits(&self) -> SubscriberLimits {
        SubscriberLimits {
            slow: self.inner.slow,
            presence_events: self.inner.presence_events,
            max_channels: self.inner.max_channels_per_subscription,
        }
    }

    /// Counts a connection of another transport in the hub's stats.
    pub(crate) fn connection_opened(&self) {
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts what [`connection_opened`](Self::connection_opened) counted.
    pub(crate) fn connection_closed(&self) {
        self.inner.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Runs the join (or leave) hooks of one subscriber on `channels`.
    pub(crate) fn presence_changed(
        &self,
        joined: bool,
        member_id: &str,
        channels: &[String],
        metadata: &[(String, String)],
    ) {
        let hooks = if joined {
            &self.inner.on_join
        } else {
            &self.inner.on_leave
        };
        if !hooks.is_empty() {
            self.presence_hooks(hooks, member_id, channels, metadata);
        }
    }

    fn presence_hooks(
        &self,
        hooks: &[PresenceHook],
        member_id: &str,
        channels: &[String],
        metadata: &[(String, String)],
    ) {
        for channel in channels {
            let change = PresenceChange {
                hub: self,
                channel,
                member_id,
                metadata,
            };
            for hook in hooks {
                hook(&change);
            }
        }
    }
}

/// How a hub's subscribers queue, whatever their transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubscriberLimits {
    /// What happens to a subscriber whose queue is full (its transport
    /// decides how long the queue is).
    pub(crate) slow: SlowConsumer,
    /// Whether presence messages exist on this hub.
    pub(crate) presence_events: bool,
    /// Channels one subscriber may join.
    pub(crate) max_channels: usize,
}

/// An SSE event as a publication: its name (validated) and data; a missing
/// data is an empty message.
fn publication(event: Event, filter: Option<Filter>) -> Result<Publication, PublishError> {
    // The name is the only field a client reads as a line of its own.
    Event::data("")
        .event(event.event_type().unwrap_or_default())
        .validate()?;
    let mut publication = Publication::new(event.payload().unwrap_or_default());
    if let Some(name) = event.event_type() {
        publication = publication.event(name);
    }
    if let Some(filter) = filter {
        publication = publication.filter(filter);
    }
    Ok(publication)
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field(
                "connections",
                &self.inner.connections.load(Ordering::Relaxed),
            )
            .field("broker", &self.inner.broker)
            .finish_non_exhaustive()
    }
}
