//! [`Handler`]: anything that turns a [`Context`] into a response — a plain
//! async fn, a closure, or a controller action bound to its controller.

use std::{future::Future, pin::Pin};

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
