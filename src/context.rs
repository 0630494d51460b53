//! [`Context`]: everything an action knows about its request, and the door to
//! live responses.

use bytes::Bytes;
use http::{request::Parts, HeaderMap, Method, Uri};
use std::{future::Future, sync::Arc};

use crate::{
    error::BoxError,
    live::{self, LiveOptions, LiveStream, LiveTracker},
    query,
    request_body::{self, BodyLimits},
    response::Response,
    router::App,
    sse::{self, SseOptions, SseWriter},
};

/// The request as an action sees it: method, path, path and query
/// parameters, headers, body, and the app's shared state.
///
/// # Example
///
/// ```
/// use rill::{Context, Response};
///
/// async fn greet(ctx: Context) -> Response {
///     let name = ctx.param("name").unwrap_or("stranger");
///     let punct = ctx.query("punct").unwrap_or("!");
///     Response::text(format!("hello, {name}{punct}\n"))
/// }
/// let router = rill::Router::new().get("/hello/:name", greet);
/// ```
pub struct Context {
    parts: Parts,
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Bytes,
    app: Arc<App>,
}

impl Context {
    pub(crate) fn new(
        parts: Parts,
        params: Vec<(String, String)>,
        query: Vec<(String, String)>,
        body: Bytes,
        app: Arc<App>,
    ) -> Self {
        Context {
            parts,
            params,
            query,
            body,
            app,
        }
    }

    /// A context for a request that reached the app through another router —
    /// an axum handler, a tower service, a bare hyper service — so that
    /// rill's entry points ([`live`](Self::live), [`sse`](Self::sse),
    /// [`Hub::subscribe`](crate::hub::Hub::subscribe), WebSocket, cable and
    /// state endpoints) take it from standard `http` types.
    ///
    /// The body is empty (use [`from_request`](Self::from_request) to read
    /// one), the path parameters are none (add them with
    /// [`with_param`](Self::with_param)), the query is parsed from the URI.
    /// Live responses are registered with the [`LiveTracker`] found in the
    /// request's extensions — put one there with a layer (axum's
    /// `Extension(tracker)`) and a graceful shutdown reaches every stream —
    /// or else with a tracker of their own.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::Request, Context, LiveTracker};
    ///
    /// // What an axum handler receives as its `Parts` extractor, with the
    /// // tracker an `Extension(tracker)` layer put there:
    /// let tracker = LiveTracker::new();
    /// let (mut parts, ()) = Request::get("/prices?symbol=RILL").body(()).unwrap().into_parts();
    /// parts.extensions.insert(tracker.clone());
    ///
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.query("symbol"), Some("RILL"));
    /// let response = ctx.sse(|_ctx, mut sse| async move { sse.write("42").await?; Ok(()) });
    /// assert_eq!(tracker.active(), 1); // a graceful shutdown reaches it
    /// let _http: rill::http::Response<rill::Body> = response.into(); // what axum returns
    /// # }
    /// ```
    pub fn from_parts(parts: Parts) -> Context {
        let query = parts
            .uri
            .query()
            .map(query::parse_query)
            .unwrap_or_default();
        let app = App::standalone(LiveTracker::new());
        Context::new(parts, Vec::new(), query, Bytes::new(), app)
    }

    /// [`from_parts`](Self::from_parts) with the body read in full, bounded
    /// like rill's router does by default (1 MiB, 30 s in all, 10 s between
    /// two pieces). A body that breaks a bound is refused with the answer
    /// rill's router gives (`413`, `408`, `400`), ready to return.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::Request, Context};
    ///
    /// let request = Request::post("/rooms/1").body(String::from("hello")).unwrap();
    /// let ctx = match Context::from_request(request).await {
    ///     Ok(ctx) => ctx,
    ///     Err(refusal) => panic!("refused: {}", refusal.status()),
    /// };
    /// assert_eq!(&ctx.body()[..], b"hello");
    /// # }
    /// ```
    pub async fn from_request<B>(request: http::Request<B>) -> Result<Context, Response>
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        match request_body::read(&parts.headers, body, BodyLimits::default()).await {
            Ok(body) => {
                let mut ctx = Context::from_parts(parts);
                ctx.body = body;
                Ok(ctx)
            }
            Err(error) => Err(request_body::refusal(&error, parts.version)),
        }
    }

    /// Adds a path parameter, as a route's `{name}` would have: for a
    /// context made by [`from_parts`](Self::from_parts) from a request whose
    /// parameters another router extracted.
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/rooms/7").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts).with_param("room", "7");
    /// assert_eq!(ctx.param("room"), Some("7"));
    /// ```
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// The request's head, for the layers that take something out of it (a
    /// WebSocket takes the connection's upgrade from its extensions).
    pub(crate) fn parts_mut(&mut self) -> &mut Parts {
        &mut self.parts
    }

    /// The request method.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::{Method, Request}, Context};
    ///
    /// let (parts, ()) = Request::delete("/todos/3").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.method(), Method::DELETE);
    /// ```
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The request URI as sent.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/search?q=rill&page=2").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.uri().query(), Some("q=rill&page=2")); // raw, as the client wrote it
    /// assert_eq!(ctx.uri().to_string(), "/search?q=rill&page=2");
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The request path, still percent-encoded.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/files/annual%20report.pdf?dl=1").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.path(), "/files/annual%20report.pdf"); // no query, not decoded
    /// ```
    pub fn path(&self) -> &str {
        self.parts.uri.path()
    }

    /// A path parameter (`:name` in the route), percent-decoded.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::Request, Context, Router};
    ///
    /// async fn profile(ctx: Context) -> String {
    ///     format!("profile of {}\n", ctx.param("name").unwrap_or("nobody"))
    /// }
    ///
    /// let service = Router::new().get("/users/:name", profile).into_service();
    /// let request = Request::get("/users/Ana%20Lima").header("host", "t").body(String::new())?;
    /// let body = service.handle(request).await.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "profile of Ana Lima\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        lookup(&self.params, name)
    }

    /// All path parameters, in pattern order.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::Request, Context, Router};
    ///
    /// async fn show(ctx: Context) -> String {
    ///     ctx.params().iter().map(|(name, value)| format!("{name}={value}\n")).collect()
    /// }
    ///
    /// let service = Router::new().get("/repos/{owner}/{repo}", show).into_service();
    /// let request = Request::get("/repos/rill/core").header("host", "t").body(String::new())?;
    /// let body = service.handle(request).await.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "owner=rill\nrepo=core\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The first query parameter called `name`, percent-decoded (`+` is a
    /// space).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/search?q=live+http&page=2").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.query("q"), Some("live http"));
    /// let page: u32 = ctx.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    /// assert_eq!(page, 2);
    /// assert_eq!(ctx.query("sort"), None);
    /// ```
    pub fn query(&self, name: &str) -> Option<&str> {
        lookup(&self.query, name)
    }

    /// Every value of the query parameter `name`, in order
    /// (`?channel=a&channel=b`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/events?channel=news&channel=sports").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts);
    /// let channels: Vec<&str> = ctx.query_all("channel").collect();
    /// assert_eq!(channels, ["news", "sports"]);
    /// ```
    pub fn query_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All query parameters, decoded, in order.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/report?from=2024-01-01&to=2024%2D12%2D31").body(()).unwrap().into_parts();
    /// let ctx = Context::from_parts(parts);
    /// let pairs: Vec<(&str, &str)> =
    ///     ctx.query_pairs().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    /// assert_eq!(pairs, [("from", "2024-01-01"), ("to", "2024-12-31")]);
    /// ```
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The request headers.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::{header, Request}, Context};
    ///
    /// let (parts, ()) = Request::get("/")
    ///     .header(header::ACCEPT, "text/event-stream")
    ///     .header(header::ACCEPT_LANGUAGE, "pt-BR")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.headers()[header::ACCEPT], "text/event-stream");
    /// assert!(ctx.headers().contains_key(header::ACCEPT_LANGUAGE));
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// A header's value, when it is present and visible ASCII.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// let (parts, ()) = Request::get("/feed")
    ///     .header("last-event-id", "42")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.header("last-event-id"), Some("42"));
    /// assert_eq!(ctx.header("authorization"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name)?.to_str().ok()
    }

    /// The request body, read in full before the action ran (bounded by
    /// [`Router::body_limit`](crate::Router::body_limit)).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::Request, Context};
    ///
    /// async fn echo(ctx: Context) -> String {
    ///     String::from_utf8_lossy(ctx.body()).to_uppercase()
    /// }
    ///
    /// let request = Request::post("/echo").body(String::from("hello")).unwrap();
    /// let ctx = Context::from_request(request).await.unwrap();
    /// assert_eq!(ctx.body().as_ref(), b"hello");
    /// assert_eq!(echo(ctx).await, "HELLO");
    /// # }
    /// ```
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The request's extensions (set by layers in front of rill, if any).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::{http::Request, Context};
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct UserId(u64); // what an authentication layer put there
    ///
    /// let (mut parts, ()) = Request::get("/inbox").body(()).unwrap().into_parts();
    /// parts.extensions.insert(UserId(7));
    /// let ctx = Context::from_parts(parts);
    /// assert_eq!(ctx.extensions().get::<UserId>(), Some(&UserId(7)));
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.parts.extensions
    }

    /// App state registered with [`Router::state`](crate::Router::state).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::Request, Context, Router};
    ///
    /// #[derive(Clone)]
    /// struct Version(&'static str);
    ///
    /// async fn version(ctx: Context) -> String {
    ///     ctx.state::<Version>().map_or("unknown", |v| v.0).to_owned()
    /// }
    ///
    /// let service = Router::new().get("/version", version).state(Version("1.4.2")).into_service();
    /// let request = Request::get("/version").header("host", "t").body(String::new())?;
    /// let body = service.handle(request).await.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "1.4.2");
    /// # Ok(())
    /// # }
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.app.state.get::<T>()
    }

    /// The tracker this request's live responses are registered with: the
    /// [`LiveTracker`] in the request's extensions when a layer put one there
    /// (axum's `Extension(tracker)`), else the app's.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, LiveTracker, Response};
    ///
    /// // No new streams once the server is going down.
    /// async fn feed(ctx: Context) -> Response {
    ///     if ctx.tracker().is_shutting_down() {
    ///         return Response::status_only(StatusCode::SERVICE_UNAVAILABLE);
    ///     }
    ///     ctx.sse(|_ctx, mut sse| async move { sse.write("hello").await?; Ok(()) })
    /// }
    ///
    /// let tracker = LiveTracker::new();
    /// tracker.announce_shutdown();
    /// let (mut parts, ()) = Request::get("/feed").body(()).unwrap().into_parts();
    /// parts.extensions.insert(tracker);
    /// assert_eq!(feed(Context::from_parts(parts)).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// # }
    /// ```
    pub fn tracker(&self) -> &LiveTracker {
        self.parts
            .extensions
            .get::<LiveTracker>()
            .unwrap_or(&self.app.tracker)
    }

    /// Answers with a live response: spawns `writer` with this context and a
    /// [`LiveStream`], and returns at once. Defaults: `text/plain;
    /// charset=utf-8`, channel capacity 8. See [`rill::live_with`](crate::live_with)
    /// for how the body ends.
    ///
    /// A `HEAD` request gets the headers and no body, and the writer is not
    /// started.
    ///
    /// ```
    /// use rill::{Context, Response};
    ///
    /// async fn numbers(ctx: Context) -> Response {
    ///     ctx.live(|_ctx, mut stream| async move {
    ///         for n in 1..=10 {
    ///             stream.write(format!("{n}\n")).await?;
    ///         }
    ///         Ok(())
    ///     })
    /// }
    /// ```
    ///
    /// # Pitfalls
    ///
    /// See [`LiveStream`]: proxy buffering, idle writers, back-pressure.
    pub fn live<F, Fut>(self, writer: F) -> Response
    where
        F: FnOnce(Context, LiveStream) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.live_with(LiveOptions::default(), writer)
    }

    /// [`live`](Self::live) with options (charset, content type, buffer
    /// limit, status). The app's tracker is used unless the options name another.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::{header, Request}, Context, LiveOptions, Response};
    ///
    /// async fn export(ctx: Context) -> Response {
    ///     ctx.live_with(LiveOptions::new().content_type("text/csv"), |_ctx, mut stream| async move {
    ///         stream.write("id,name\n").await?;
    ///         stream.write("1,Ana\n").await?;
    ///         Ok(())
    ///     })
    /// }
    ///
    /// let (parts, ()) = Request::get("/export.csv").body(())?.into_parts();
    /// let response = export(Context::from_parts(parts)).await;
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "id,name\n1,Ana\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn live_with<F, Fut>(self, options: LiveOptions, writer: F) -> Response
    where
        F: FnOnce(Context, LiveStream) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.start_live(options, |ctx, options| {
            live::live_with(options, move |stream| writer(ctx, stream))
        })
    }

    /// The one place a live response starts from a request: with the app's
    /// tracker unless the options name another, and for a `HEAD` request
    /// with the headers alone — no writer task or subscription is started.
    pub(crate) fn start_live(
        self,
        mut options: LiveOptions,
        start: impl FnOnce(Context, LiveOptions) -> Response,
    ) -> Response {
        if options.tracker.is_none() {
            options.tracker = Some(self.tracker().clone());
        }
        if self.parts.method == Method::HEAD {
            return live::head_response(&options);
        }
        start(self, options)
    }
}

impl Context {
    /// Answers with a Server-Sent Events stream: spawns `writer` with this
    /// context and an [`SseWriter`], and returns at once with
    /// `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
    /// `X-Accel-Buffering: no`. A `: keep-alive` comment goes out after 15 s
    /// without a write. Same back-pressure, disconnect and shutdown
    /// behaviour as [`live`](Self::live).
    ///
    /// ```
    /// use rill::{sse::Event, Context, Response};
    ///
    /// async fn events(ctx: Context) -> Response {
    ///     ctx.sse(|_ctx, mut sse| async move {
    ///         sse.send(Event::data("hello").event("greeting")).await?;
    ///         sse.write("world").await?;
    ///         Ok(())
    ///     })
    /// }
    /// ```
    ///
    /// # Pitfalls
    ///
    /// See [`docs/sse.md`](crate::guides::sse): proxies and compression, the six-connection limit
    /// of HTTP/1.1 browsers, reconnect loops.
    pub fn sse<F, Fut>(self, writer: F) -> Response
    where
        F: FnOnce(Context, SseWriter) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.sse_with(SseOptions::default(), writer)
    }

    /// [`sse`](Self::sse) with options: defaults for every frame (`retry`,
    /// `event`, `id`), auto ids resuming after `Last-Event-ID`, heartbeat
    /// interval, buffer limit.
    ///
    /// ```
    /// use rill::{sse::SseOptions, Context, Response};
    /// use std::time::Duration;
    ///
    /// async fn ticks(ctx: Context) -> Response {
    ///     let options = SseOptions::new().retry(Duration::from_millis(5000));
    ///     ctx.sse_with(options, |_ctx, mut sse| async move {
    ///         sse.write("tick").await?; // retry: 5000 applied
    ///         sse.send(rill::sse::Event::data("pong").retry(Duration::from_millis(1000))).await?; // overridden
    ///         Ok(())
    ///     })
    /// }
    /// ```
    pub fn sse_with<F, Fut>(self, options: SseOptions, writer: F) -> Response
    where
        F: FnOnce(Context, SseWriter) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let resume = sse::last_event_id(self.headers(), self.query("lastEventId"));
        let live = sse::live_options(&options);
        self.start_live(live, move |ctx, live| {
            live::live_with(live, move |stream| {
                let sse = SseWriter::new(stream, options.defaults, options.auto_id, resume);
                writer(ctx, sse)
            })
        })
    }
}

impl From<Parts> for Context {
    /// [`Context::from_parts`].
    fn from(parts: Parts) -> Self {
        Context::from_parts(parts)
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("method", &self.parts.method)
            .field("uri", &self.parts.uri)
            .field("params", &self.params)
            .field("body_len", &self.body.len())
            .finish()
    }
}
