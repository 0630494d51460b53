//! [`Handler`]: anything that turns a [`Context`] into a response — a plain
//! async fn, a closure, or a controller action bound to its controller.

use std::{future::Future, pin::Pin, sync::Arc};

use crate::{
    context::Context,
    response::{IntoResponse, Response},
};

/// A boxed, sendable future, as handlers return.
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
pub trait IntoHandler<S, M>: Send + Sync + 'static {
    /// Binds the action to the router's state.
    fn into_handler(self, state: &S) -> Arc<dyn Handler>;
}

/// Marks an action that takes the [`Context`] alone.
#[derive(Debug)]
pub enum ContextOnly {}

/// Marks an action that takes [`State<S>`] and the [`Context`].
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
