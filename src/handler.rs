//! [`Handler`]: anything that turns a [`Context`] into a response — a plain
//! async fn, a closure, or a controller action bound to its controller.

use std::{future::Future, pin::Pin, sync::Arc};

use crate::{
    context::Context,
    response::{IntoResponse, Response},
};

/// A boxed, sendable future, as handlers return.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{http::Request, BoxFuture, Context, Handler, Response, Router};
///
/// // A handler that is a value, not a fn: a fixed file.
/// struct Static(&'static str);
///
/// impl Handler for Static {
///     fn call(&self, _ctx: Context) -> BoxFuture<Response> {
///         let text = self.0;
///         Box::pin(async move { Response::text(text) })
///     }
/// }
///
/// let service = Router::new().get("/robots.txt", Static("User-agent: *\n")).into_service();
/// let request = Request::get("/robots.txt").header("host", "t").body(String::new()).unwrap();
/// assert_eq!(service.handle(request).await.status(), 200);
/// # }
/// ```
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An action a route calls.
///
/// Implemented for every `Fn(Context) -> impl Future<Output = impl
/// IntoResponse>` that is `Send + Sync + 'static`, so a plain `async fn`
/// works:
///
/// ```
/// use rill::{Context, Router};
///
/// async fn ping(_ctx: Context) -> &'static str {
///     "pong\n"
/// }
/// let router = Router::new().get("/ping", ping);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Runs the action.
    fn call(&self, ctx: Context) -> BoxFuture<Response>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, ctx: Context) -> BoxFuture<Response> {
        let fut = self(ctx);
        Box::pin(async move { fut.await.into_response() })
    }
}

/// The app's state, handed to an action by a [`Router::with_state`](crate::Router::with_state)
/// router: checked when the program compiles, unlike
/// [`Context::state`](crate::Context::state).
///
/// ```
/// use rill::{hub::{Hub, Subscription}, Context, Response, Router, State};
///
/// async fn room(State(hub): State<Hub>, ctx: Context) -> Response {
///     let room = ctx.param("room").unwrap_or_default().to_owned();
///     hub.subscribe(ctx, Subscription::new().channel(room))
/// }
///
/// let router = Router::with_state(Hub::new()).get("/rooms/{room}/events", room);
/// ```
///
/// An action asking for state the router does not have does not compile:
///
/// ```compile_fail,E0277
/// use rill::{Context, Router, State};
///
/// async fn wrong(State(name): State<String>, _ctx: Context) -> String { name }
/// let router = Router::with_state(7_u32).get("/", wrong);
/// ```
///
/// And a router with no state has none to give:
///
/// ```compile_fail,E0277
/// use rill::{Context, Router, State};
///
/// async fn wrong(State(n): State<u32>, _ctx: Context) -> String { n.to_string() }
/// let router = Router::new().get("/", wrong);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

/// What a route of a `Router<S>` accepts: a [`Handler`] (`async fn(Context)`),
/// or an `async fn(State<S>, Context)` which gets a clone of the router's
/// state. `M` tells the two apart; you never name it.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{http::Request, Context, IntoHandler, Router, State};
///
/// // Mounts one action, whatever its kind, at the root and at `/index.html`.
/// fn home<S: Clone + Send + Sync + 'static, M>(
///     router: Router<S>,
///     action: impl IntoHandler<S, M> + Clone,
/// ) -> Router<S> {
///     router.get("/", action.clone()).get("/index.html", action)
/// }
///
/// async fn welcome(State(site): State<&'static str>, _ctx: Context) -> String { format!("{site}\n") }
///
/// let service = home(Router::with_state("rill.example"), welcome).into_service();
/// let request = Request::get("/index.html").header("host", "t").body(String::new()).unwrap();
/// assert_eq!(service.handle(request).await.status(), 200);
/// # }
/// ```
pub trait IntoHandler<S, M>: Send + Sync + 'static {
    /// Binds the action to the router's state.
    fn into_handler(self, state: &S) -> Arc<dyn Handler>;
}

/// Marks an action that takes the [`Context`] alone.
///
/// # Example
///
/// ```
/// use rill::{Context, ContextOnly, IntoHandler, Router};
///
/// // A helper that accepts only actions needing no state.
/// fn with_health<S: Clone + Send + Sync + 'static>(
///     router: Router<S>,
///     check: impl IntoHandler<S, ContextOnly>,
/// ) -> Router<S> {
///     router.get("/health", check)
/// }
///
/// async fn ok(_ctx: Context) -> &'static str { "ok\n" }
/// let router = with_health(Router::with_state(42_u32), ok);
/// assert_eq!(format!("{router:?}"), r#"Router { routes: ["GET /health"] }"#);
/// ```
#[derive(Debug)]
pub enum ContextOnly {}

/// Marks an action that takes [`State<S>`] and the [`Context`].
///
/// # Example
///
/// ```
/// use rill::{Context, IntoHandler, Router, State, WithState};
/// use std::sync::{atomic::{AtomicU64, Ordering}, Arc};
///
/// // A helper that accepts only actions taking the router's state.
/// fn with_stats<S: Clone + Send + Sync + 'static>(
///     router: Router<S>,
///     stats: impl IntoHandler<S, WithState>,
/// ) -> Router<S> {
///     router.get("/stats", stats)
/// }
///
/// async fn stats(State(hits): State<Arc<AtomicU64>>, _ctx: Context) -> String {
///     format!("{} hits\n", hits.load(Ordering::Relaxed))
/// }
/// let router = with_stats(Router::with_state(Arc::new(AtomicU64::new(0))), stats);
/// assert_eq!(format!("{router:?}"), r#"Router { routes: ["GET /stats"] }"#);
/// ```
#[derive(Debug)]
pub enum WithState {}

impl<S, H: Handler> IntoHandler<S, ContextOnly> for H {
    fn into_handler(self, _state: &S) -> Arc<dyn Handler> {
        Arc::new(self)
    }
}

impl<S, F, Fut, R> IntoHandler<S, WithState> for F
where
    S: Clone + Send + Sync + 'static,
    F: Fn(State<S>, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn into_handler(self, state: &S) -> Arc<dyn Handler> {
        let state = state.clone();
        Arc::new(move |ctx: Context| self(State(state.clone()), ctx))
    }
}
