//! [`Router`]: maps method + path pattern to actions, and answers 404, 405,
//! 413 and `HEAD` itself.

use http::{header, HeaderValue, Method, Request, StatusCode, Version};
use std::{convert::Infallible, sync::Arc, task::Poll, time::Duration};

use crate::{
    body::Body,
    context::Context,
    controller::{Controller, Routes},
    error::BoxError,
    handler::{Handler, IntoHandler},
    live::LiveTracker,
    query,
    request_body::{self, BodyTimeouts},
    response::Response,
};

/// What every request of one app shares: state, the live tracker, limits.
pub(crate) struct App {
    pub(crate) state: http::Extensions,
    pub(crate) tracker: LiveTracker,
    pub(crate) body_limit: usize,
    pub(crate) body_timeouts: BodyTimeouts,
}

impl App {
    /// The app of a request that came through another router: no state,
    /// default limits, `tracker` for its live responses.
    pub(crate) fn standalone(tracker: LiveTracker) -> Arc<App> {
        Arc::new(App {
            state: http::Extensions::new(),
            tracker,
            body_limit: request_body::DEFAULT_BODY_LIMIT,
            body_timeouts: BodyTimeouts::default(),
        })
    }
}

/// Maps method + path to actions.
///
/// Patterns are made of `/`-separated segments: static (`/numbers`), named
/// parameters (`/rooms/:id`, or axum 0.8's `/rooms/{id}`), and a final
/// catch-all (`/files/*path` or `/files/{*path}`). When several patterns
/// match, the most specific wins (static before parameter before
/// catch-all, segment by segment). A pattern that cannot mean what it
/// says — a brace that is not a whole segment, a name used twice, a
/// catch-all before the end — is refused when the route is added.
///
/// The router itself answers:
/// * unknown path → `404 Not Found`;
/// * known path, other method → `405 Method Not Allowed` with `Allow`;
/// * `HEAD` on a `GET` route → the `GET` action's headers, no body;
/// * an HTTP/1.1 request without exactly one `Host` header → `400 Bad Request`;
/// * a body over [`body_limit`](Self::body_limit) → `413 Payload Too Large`;
/// * a body slower than [`body_read_timeout`](Self::body_read_timeout) or
///   [`body_idle_timeout`](Self::body_idle_timeout) → `408 Request Timeout`;
/// * a path parameter that is not UTF-8 once decoded → `400 Bad Request`;
/// * a panicking action → `500 Internal Server Error` (the connection and all
///   others carry on).
///
/// # Example
///
/// ```
/// use rill::{Context, Response, Router};
///
/// async fn show(ctx: Context) -> Response {
///     Response::text(format!("room {}\n", ctx.param("id").unwrap_or_default()))
/// }
///
/// let router = Router::new()
///     .get("/rooms/:id", show)
///     .state(String::from("shared config"));
/// ```
pub struct Router<S = ()> {
    routes: Vec<Route>,
    app: App,
    state: S,
}

struct Route {
    method: Method,
    pattern: Pattern,
    handler: Arc<dyn Handler>,
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    /// An empty router with no state: its actions take the [`Context`]
    /// alone.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Router};
    ///
    /// let service = Router::new().into_service();
    /// let request = Request::get("/anything").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NOT_FOUND);
    /// # }
    /// ```
    pub fn new() -> Self {
        Router::with_state(())
    }
}

impl<S: Clone + Send + Sync + 'static> Router<S> {
    /// An empty router whose actions may take `state` as their first
    /// argument, [`State<S>`](crate::State) — checked when the program
    /// compiles: an action asking for state of another type is a type
    /// error, not a `500` at run time. Each request's action gets a clone
    /// (share with an `Arc`, or use a cheap handle such as
    /// [`Hub`](crate::hub::Hub)). Actions that take the [`Context`] alone
    /// mix freely with them.
    ///
    /// ```
    /// use rill::{Context, Response, Router, State};
    /// use std::sync::Arc;
    ///
    /// struct Config { greeting: String }
    ///
    /// async fn hello(State(config): State<Arc<Config>>, _ctx: Context) -> Response {
    ///     Response::text(format!("{}\n", config.greeting))
    /// }
    /// async fn health(_ctx: Context) -> &'static str { "ok\n" }
    ///
    /// let router = Router::with_state(Arc::new(Config { greeting: "hi".into() }))
    ///     .get("/", hello)
    ///     .get("/health", health);
    /// ```
    pub fn with_state(state: S) -> Self {
        Router {
            routes: Vec::new(),
            app: App {
                state: http::Extensions::new(),
                tracker: LiveTracker::new(),
                body_limit: request_body::DEFAULT_BODY_LIMIT,
                body_timeouts: BodyTimeouts::default(),
            },
            state,
        }
    }

    /// Routes `method` + `path` to `handler`.
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/`, a catch-all is not the last
    /// segment, a parameter has no name or a name used twice, or a segment
    /// holds a brace without being a whole `{param}` — mistakes in the
    /// program, found when it builds its router.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Method, Request, StatusCode}, Context, Router};
    ///
    /// // CORS preflight: a method without a shortcut of its own.
    /// async fn preflight(_ctx: Context) -> StatusCode { StatusCode::NO_CONTENT }
    ///
    /// let service = Router::new().route(Method::OPTIONS, "/api/{*rest}", preflight).into_service();
    /// let request = Request::options("/api/todos").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NO_CONTENT);
    /// # }
    /// ```
    pub fn route<M>(mut self, method: Method, path: &str, handler: impl IntoHandler<S, M>) -> Self {
        let handler = handler.into_handler(&self.state);
        self.add(method, path, handler);
        self
    }

    /// Routes `GET path` (and so `HEAD path`) to `handler`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::Request, Context, Router};
    ///
    /// async fn show(ctx: Context) -> String { format!("room {}\n", ctx.param("id").unwrap_or("?")) }
    ///
    /// let service = Router::new().get("/rooms/:id", show).into_service();
    /// let request = Request::get("/rooms/7").header("host", "t").body(String::new())?;
    /// let body = service.handle(request).await.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "room 7\n");
    ///
    /// let head = Request::head("/rooms/7").header("host", "t").body(String::new())?;
    /// assert_eq!(service.handle(head).await.status(), 200); // GET's headers, no body
    /// # Ok(())
    /// # }
    /// ```
    pub fn get<M>(self, path: &str, handler: impl IntoHandler<S, M>) -> Self {
        self.route(Method::GET, path, handler)
    }

    /// Routes `POST path` to `handler`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{header, Request, StatusCode}, Context, Router};
    ///
    /// async fn create(ctx: Context) -> (StatusCode, String) {
    ///     (StatusCode::CREATED, format!("{} bytes\n", ctx.body().len()))
    /// }
    ///
    /// let service = Router::new().post("/todos", create).into_service();
    /// let request = Request::post("/todos").header("host", "t").body(String::from("milk")).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::CREATED);
    ///
    /// let get = Request::get("/todos").header("host", "t").body(String::new()).unwrap();
    /// let refused = service.handle(get).await;
    /// assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    /// assert_eq!(refused.headers()[header::ALLOW], "POST");
    /// # }
    /// ```
    pub fn post<M>(self, path: &str, handler: impl IntoHandler<S, M>) -> Self {
        self.route(Method::POST, path, handler)
    }

    /// Routes `PUT path` to `handler`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Router};
    ///
    /// async fn replace(_ctx: Context) -> StatusCode { StatusCode::NO_CONTENT }
    ///
    /// let service = Router::new().put("/todos/{id}", replace).into_service();
    /// let request = Request::put("/todos/3").header("host", "t").body(String::from("{}")).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NO_CONTENT);
    /// # }
    /// ```
    pub fn put<M>(self, path: &str, handler: impl IntoHandler<S, M>) -> Self {
        self.route(Method::PUT, path, handler)
    }

    /// Routes `DELETE path` to `handler`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{header, Request, StatusCode}, Context, Router};
    ///
    /// async fn show(_ctx: Context) -> &'static str { "todo\n" }
    /// async fn destroy(_ctx: Context) -> StatusCode { StatusCode::NO_CONTENT }
    ///
    /// let service = Router::new().get("/todos/:id", show).delete("/todos/:id", destroy).into_service();
    /// let request = Request::delete("/todos/3").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NO_CONTENT);
    ///
    /// let post = Request::post("/todos/3").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(post).await.headers()[header::ALLOW], "DELETE, GET, HEAD");
    /// # }
    /// ```
    pub fn delete<M>(self, path: &str, handler: impl IntoHandler<S, M>) -> Self {
        self.route(Method::DELETE, path, handler)
    }

    /// Routes `PATCH path` to `handler`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Router};
    ///
    /// async fn rename(ctx: Context) -> String {
    ///     let title = String::from_utf8_lossy(ctx.body());
    ///     format!("todo {} is now {title}\n", ctx.param("id").unwrap_or("?"))
    /// }
    ///
    /// let service = Router::new().patch("/todos/{id}", rename).into_service();
    /// let request = Request::patch("/todos/3").header("host", "t").body(String::from("eggs")).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::OK);
    /// # }
    /// ```
    pub fn patch<M>(self, path: &str, handler: impl IntoHandler<S, M>) -> Self {
        self.route(Method::PATCH, path, handler)
    }

    /// Adds every route a controller declares.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Controller, Router, Routes};
    /// use std::sync::Arc;
    ///
    /// struct Rooms { names: Vec<&'static str> }
    ///
    /// impl Controller for Rooms {
    ///     fn routes(routes: &mut Routes<Self>) {
    ///         routes.get("/rooms", Self::index);
    ///     }
    /// }
    /// impl Rooms {
    ///     async fn index(self: Arc<Self>, _ctx: Context) -> String { self.names.join("\n") }
    /// }
    ///
    /// let rooms = Arc::new(Rooms { names: vec!["lobby", "rust"] });
    /// let service = Router::new().controller(rooms).into_service();
    /// let request = Request::get("/rooms").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::OK);
    /// # }
    /// ```
    pub fn controller<C: Controller>(mut self, controller: Arc<C>) -> Self {
        let mut routes = Routes::new(controller);
        C::routes(&mut routes);
        for (method, path, handler) in routes.list {
            self.add(method, &path, handler);
        }
        self
    }

    /// Registers app state that actions read with
    /// [`Context::state`](crate::Context::state); one value per type.
    /// Looked up at run time — prefer [`with_state`](Self::with_state),
    /// which the compiler checks.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::Request, Context, Router};
    ///
    /// #[derive(Clone)]
    /// struct SiteName(&'static str);
    ///
    /// async fn about(ctx: Context) -> String {
    ///     let site = ctx.state::<SiteName>().map_or("?", |s| s.0);
    ///     format!("welcome to {site}\n")
    /// }
    ///
    /// let service = Router::new().get("/about", about).state(SiteName("rill.example")).into_service();
    /// let request = Request::get("/about").header("host", "t").body(String::new())?;
    /// let body = service.handle(request).await.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "welcome to rill.example\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.app.state.insert(value);
        self
    }

    /// The largest request body accepted, in bytes (default 1 MiB); larger
    /// ones get `413 Payload Too Large` and the action does not run.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Router};
    ///
    /// async fn avatar(ctx: Context) -> String { format!("{} bytes\n", ctx.body().len()) }
    ///
    /// let service = Router::new().post("/avatar", avatar).body_limit(16).into_service();
    /// let big = Request::post("/avatar").header("host", "t").body("x".repeat(17)).unwrap();
    /// assert_eq!(service.handle(big).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
    /// let small = Request::post("/avatar").header("host", "t").body("x".repeat(16)).unwrap();
    /// assert_eq!(service.handle(small).await.status(), StatusCode::OK);
    /// # }
    /// ```
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.app.body_limit = bytes;
        self
    }

    /// How long a client may take to send a whole request body (default
    /// 30 s, or what [`Server::body_read_timeout`](crate::Server::body_read_timeout)
    /// says); a slower one gets `408 Request Timeout`, its connection is
    /// closed, and the action does not run. Set here, it wins over the
    /// server's.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use http_body_util::{BodyExt, Full};
    /// use rill::{http::{Request, StatusCode}, Context, Router};
    /// use std::time::Duration;
    ///
    /// async fn upload(ctx: Context) -> String { format!("{} bytes\n", ctx.body().len()) }
    ///
    /// let service = Router::new()
    ///     .post("/uploads", upload)
    ///     .body_read_timeout(Duration::from_secs(5))
    ///     .into_service();
    /// // A client that sends a first piece, then never finishes:
    /// let stalled = Full::new(&b"part"[..]).with_trailers(std::future::pending());
    /// let request = Request::post("/uploads").header("host", "t").body(stalled).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::REQUEST_TIMEOUT);
    /// # }
    /// ```
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.app.body_timeouts.read = Some(timeout);
        self
    }

    /// How long a client may pause between two pieces of a request body
    /// (default 10 s, or what [`Server::body_idle_timeout`](crate::Server::body_idle_timeout)
    /// says); a longer pause gets `408 Request Timeout` and the connection
    /// is closed. Set here, it wins over the server's.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use http_body_util::{BodyExt, Full};
    /// use rill::{http::{Request, StatusCode}, Context, Router};
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    ///
    /// async fn upload(ctx: Context) -> String { format!("{} bytes\n", ctx.body().len()) }
    ///
    /// let service = Router::new()
    ///     .post("/uploads", upload)
    ///     .body_idle_timeout(Duration::from_secs(2))
    ///     .into_service();
    /// let stalled = Full::new(&b"part"[..]).with_trailers(std::future::pending()); // then silence
    /// let request = Request::post("/uploads").header("host", "t").body(stalled).unwrap();
    /// let start = Instant::now();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::REQUEST_TIMEOUT);
    /// assert!(start.elapsed() < Duration::from_secs(10)); // 2 s, not the default 10 s
    /// # }
    /// ```
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.app.body_timeouts.idle = Some(timeout);
        self
    }

    /// The tracker of this app's live responses.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{Context, Response, Router};
    /// use std::time::Duration;
    ///
    /// async fn ticks(ctx: Context) -> Response {
    ///     ctx.sse(|_ctx, mut sse| async move { sse.write("tick").await?; Ok(()) })
    /// }
    ///
    /// let router = Router::new().get("/ticks", ticks);
    /// let tracker = router.tracker().clone(); // keep it for shutdown
    /// let service = router.into_service();
    /// // ... serve `service`; when the process is told to stop:
    /// assert_eq!(tracker.shutdown(Duration::from_secs(5)).await, 0);
    /// # }
    /// ```
    pub fn tracker(&self) -> &LiveTracker {
        &self.app.tracker
    }

    fn add(&mut self, method: Method, path: &str, handler: Arc<dyn Handler>) {
        let pattern = Pattern::parse(path).unwrap_or_else(|why| panic!("route {path:?}: {why}"));
        self.routes.push(Route {
            method,
            pattern,
            handler,
        });
    }

    /// Freezes the router into something shareable that answers requests.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::Request, Context, Router};
    ///
    /// async fn health(_ctx: Context) -> &'static str { "ok\n" }
    ///
    /// let service = Router::new().get("/health", health).into_service();
    /// let worker = service.clone(); // cheap: one set of routes, shared
    /// let answer = tokio::spawn(async move {
    ///     let request = Request::get("/health").header("host", "t").body(String::new()).unwrap();
    ///     worker.handle(request).await.status()
    /// });
    /// assert_eq!(answer.await.unwrap(), 200);
    /// # }
    /// ```
    pub fn into_service(self) -> RouterService {
        RouterService {
            inner: Arc::new(Inner {
                routes: self.routes,
                app: Arc::new(self.app),
            }),
        }
    }
}

impl<S> std::fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.pattern.source))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A frozen [`Router`], cheap to clone, that answers requests; a hyper
/// service and a tower service for any request body, so rill's routes can be
/// served by [`Server`](crate::Server), by hyper, or nested in axum:
///
/// ```
/// use rill::{Context, Response, Router};
///
/// async fn prices(ctx: Context) -> Response {
///     ctx.sse(|_ctx, mut sse| async move { sse.write("42").await?; Ok(()) })
/// }
/// let live = Router::new().get("/prices", prices).into_service();
/// // axum: `axum::Router::new().nest_service("/live", live)` serves
/// // `GET /live/prices` (see the axum guide).
/// fn is_tower_service<S: tower_service::Service<rill::http::Request<String>>>(_: &S) {}
/// is_tower_service(&live);
/// ```
#[derive(Clone)]
pub struct RouterService {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Vec<Route>,
    app: Arc<App>,
}

impl RouterService {
    /// The tracker of this app's live responses.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::Request, Context, Response, Router};
    ///
    /// async fn feed(ctx: Context) -> Response {
    ///     ctx.sse(|_ctx, mut sse| async move { sse.write("hello").await?; Ok(()) })
    /// }
    ///
    /// let service = Router::new().get("/feed", feed).into_service();
    /// let request = Request::get("/feed").header("host", "t").body(String::new()).unwrap();
    /// let response = service.handle(request).await;
    /// assert_eq!(service.tracker().active(), 1); // open until its body is dropped
    /// drop(response);
    /// # }
    /// ```
    pub fn tracker(&self) -> &LiveTracker {
        &self.inner.app.tracker
    }

    /// Answers one request.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{http::{Request, StatusCode}, Context, Router};
    ///
    /// async fn search(ctx: Context) -> String { format!("q={}\n", ctx.query("q").unwrap_or("")) }
    /// let service = Router::new().get("/search", search).into_service();
    ///
    /// let request = Request::get("/search?q=live+http").header("host", "t").body(String::new())?;
    /// let body = service.handle(request).await.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "q=live http\n");
    ///
    /// let no_host = Request::get("/search").body(String::new())?; // HTTP/1.1 needs one
    /// assert_eq!(service.handle(no_host).await.status(), StatusCode::BAD_REQUEST);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn handle<B>(&self, request: Request<B>) -> Response
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if let Some(reason) = host_problem(&request) {
            return plain(StatusCode::BAD_REQUEST, reason);
        }
        let inner = &self.inner;
        let path = request.uri().path();
        let is_head = request.method() == Method::HEAD;
        // An HTTP/2 WebSocket (RFC 8441: CONNECT with `:protocol`) goes to
        // the GET route, as its HTTP/1.1 handshake would.
        let is_extended_connect = request.method() == Method::CONNECT
            && request.extensions().get::<hyper::ext::Protocol>().is_some();

        let mut allowed: Vec<&Method> = Vec::new();
        let mut best: Option<(&Route, Vec<(String, &str)>)> = None;
        for route in &inner.routes {
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            allowed.push(&route.method);
            let method_fits = route.method == request.method()
                || ((is_head || is_extended_connect) && route.method == Method::GET);
            let better = match &best {
                None => true,
                Some((current, _)) => {
                    // An explicit HEAD route beats the GET fallback.
                    let exact = route.method == request.method();
                    let current_exact = current.method == request.method();
                    route.pattern.rank < current.pattern.rank
                        || (route.pattern.rank == current.pattern.rank && exact && !current_exact)
                }
            };
            if method_fits && better {
                best = Some((route, params));
            }
        }

        let Some((route, raw_params)) = best else {
            if allowed.is_empty() {
                return plain(StatusCode::NOT_FOUND, "not found\n");
            }
            return method_not_allowed(allowed);
        };

        let mut params = Vec::with_capacity(raw_params.len());
        for (name, raw) in raw_params {
            match query::decode_segment(raw) {
                Some(value) => params.push((name, value)),
                None => {
                    return plain(
                        StatusCode::BAD_REQUEST,
                        "path parameter is not valid UTF-8\n",
                    )
                }
            }
        }
        let query = request
            .uri()
            .query()
            .map(query::parse_query)
            .unwrap_or_default();

        let (parts, body) = request.into_parts();
        let limits = inner
            .app
            .body_timeouts
            .limits(inner.app.body_limit, parts.extensions.get::<BodyTimeouts>());
        let body = match request_body::read(&parts.headers, body, limits).await {
            Ok(body) => body,
            Err(error) => return request_body::refusal(&error, parts.version),
        };

        let ctx = Context::new(parts, params, query, body, inner.app.clone());
        let mut response = match crate::panic::catch_unwind(route.handler.call(ctx)).await {
            Ok(response) => response,
            Err(payload) => {
                tracing::error!(
                    panic = %crate::panic::message(payload.as_ref()),
                    "action panicked; answering 500"
                );
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        };
        if is_head && response.body().is_streaming() {
            // Nothing is sent for HEAD; do not keep a writer running for it.
            let headers = std::mem::take(response.headers_mut());
            response = Response::new(response.status(), Body::empty());
            *response.headers_mut() = headers;
        }
        response
    }
}

impl<B> hyper::service::Service<Request<B>> for RouterService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = crate::handler::BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await.into_http()) })
    }
}

impl<B> tower_service::Service<Request<B>> for RouterService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = crate::handler::BoxFuture<Result<http::Response<Body>, Infallible>>;

    /// Always ready: every request is answered (a refusal is an answer).
    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        hyper::service::Service::call(self, request)
    }
}

impl std::fmt::Debug for RouterService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterService")
            .field("routes", &self.inner.routes.len())
            .finish()
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one `Host` header (an
/// HTTP/2 request names its authority in the `:authority` pseudo-header).
fn host_problem<B>(request: &Request<B>) -> Option<&'static str> {
    if request.version() != Version::HTTP_11 {
        return None;
    }
    let mut hosts = request.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => Some("missing Host header\n"),
        (Some(_), Some(_)) => Some("more than one Host header\n"),
        (Some(_), None) => None,
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    Response::text(text).with_status(status)
}

fn method_not_allowed(mut allowed: Vec<&Method>) -> Response {
    if allowed.contains(&&Method::GET) && !allowed.contains(&&Method::HEAD) {
        allowed.push(&Method::HEAD);
    }
    allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    allowed.dedup();
    let allow = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// A parsed route pattern.
struct Pattern {
    source: String,
    segments: Vec<Segment>,
    /// Specificity, compared lexicographically: lower is more specific.
    rank: Vec<u8>,
}

enum Segment {
    Static(String),
    Param(String),
    CatchAll(String),
}

impl Pattern {
    fn parse(path: &str) -> Result<Pattern, &'static str> {
        let rest = path.strip_prefix('/').ok_or("must start with '/'")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            // axum 0.8's `{name}` and `{*name}` mean `:name` and `*name`.
            let braced = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
            if braced.is_none() && (part.contains('{') || part.contains('}')) {
                return Err("a '{param}' must be a whole segment");
            }
            let (param, catch_all) = match braced {
                Some(inner) => match inner.strip_prefix('*') {
                    Some(name) => (None, Some(name)),
                    None => (Some(inner), None),
                },
                None => (part.strip_prefix(':'), part.strip_prefix('*')),
            };
            let segment = if let Some(name) = param {
                if name.is_empty() {
                    return Err("a parameter needs a name");
                }
                Segment::Param(name.to_owned())
            } else if let Some(name) = catch_all {
                if name.is_empty() {
                    return Err("a '*' catch-all needs a name");
                }
                if i + 1 != parts.len() {
                    return Err("a '*' catch-all must be the last segment");
                }
                Segment::CatchAll(name.to_owned())
            } else {
                Segment::Static((*part).to_owned())
            };
            if let Segment::Param(name) | Segment::CatchAll(name) = &segment {
                let taken = segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n) | Segment::CatchAll(n) if n == name));
                if taken {
                    return Err("a parameter name is used twice");
                }
            }
            segments.push(segment);
        }
        let rank = segments
            .iter()
            .map(|s| match s {
                Segment::Static(_) => 0,
                Segment::Param(_) => 1,
                Segment::CatchAll(_) => 2,
            })
            .collect();
        Ok(Pattern {
            source: path.to_owned(),
            segments,
            rank,
        })
    }

    /// The raw (still encoded) parameters when `path` matches.
    fn matches<'p>(&self, path: &'p str) -> Option<Vec<(String, &'p str)>> {
        let mut rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            if let Segment::CatchAll(name) = segment {
                params.push((name.clone(), rest));
                return Some(params);
            }
            let (part, tail) = match rest.split_once('/') {
                Some((part, tail)) => (part, Some(tail)),
                None => (rest, None),
            };
            match segment {
                Segment::Static(s) if s == part => {}
                Segment::Param(name) if !part.is_empty() => params.push((name.clone(), part)),
                _ => return None,
            }
            let last = i + 1 == self.segments.len();
            match (tail, last) {
                (None, true) => return Some(params),
                (Some(tail), false) => rest = tail,
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn m(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::parse(pattern)
            .unwrap()
            .matches(path)
            .map(|v| v.into_iter().map(|(k, v)| (k, v.to_owned())).collect())
    }

    #[test]
    fn static_param_and_catch_all() {
        assert_eq!(m("/", "/"), Some(vec![]));
        assert_eq!(m("/numbers", "/numbers"), Some(vec![]));
        assert_eq!(m("/numbers", "/numbers/"), None);
        assert_eq!(m("/numbers", "/"), None);
        assert_eq!(
            m("/rooms/:id/messages", "/rooms/7/messages"),
            Some(vec![("id".into(), "7".into())])
        );
        assert_eq!(m("/rooms/:id", "/rooms/"), None);
        assert_eq!(
            m("/files/*path", "/files/a/b.txt"),
            Some(vec![("path".into(), "a/b.txt".into())])
        );
        assert_eq!(m("/a/b", "/a"), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "nope",
            "/:",
            "/*rest/x",
            "/{}",
            "/{*}",
            "/a{id}",
            "/{id}x",
            "/{id",
            "/{*rest}/x",
            "/:id/{id}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn axum_braces_mean_the_same_as_colons_and_stars() {
        assert_eq!(
            m("/rooms/{room}/events", "/rooms/7/events"),
            Some(vec![("room".into(), "7".into())])
        );
        assert_eq!(
            m("/files/{*path}", "/files/a/b.txt"),
            Some(vec![("path".into(), "a/b.txt".into())])
        );
        assert_eq!(m("/rooms/{room}", "/rooms/"), None);
    }
}
