//! [`Controller`]: a struct holding shared state whose async methods are
//! actions, with its routes declared in one place.

use http::Method;
use std::{future::Future, sync::Arc};

use crate::{
    context::Context,
    handler::{BoxFuture, Handler},
    response::{IntoResponse, Response},
};

/// A controller: shared state plus actions, which declares its own routes.
///
/// # Example
///
/// ```
/// use rill::{Context, Controller, Response, Router, Routes};
/// use std::sync::{atomic::{AtomicU64, Ordering}, Arc};
///
/// #[derive(Default)]
/// struct Counter {
///     hits: AtomicU64,
/// }
///
/// impl Controller for Counter {
///     fn routes(routes: &mut Routes<Self>) {
///         routes.get("/hit", Self::hit).get("/hits", Self::hits);
///     }
/// }
///
/// impl Counter {
///     async fn hit(self: Arc<Self>, _ctx: Context) -> Response {
///         self.hits.fetch_add(1, Ordering::Relaxed);
///         Response::text("ok\n")
///     }
///
///     async fn hits(self: Arc<Self>, _ctx: Context) -> String {
///         format!("{}\n", self.hits.load(Ordering::Relaxed))
///     }
/// }
///
/// let router = Router::new().controller(Arc::new(Counter::default()));
/// ```
pub trait Controller: Send + Sync + Sized + 'static {
    /// Declares the controller's routes.
    fn routes(routes: &mut Routes<Self>);
}

/// The routes of one controller, as it declares them in
/// [`Controller::routes`].
pub struct Routes<C> {
    controller: Arc<C>,
    pub(crate) list: Vec<(Method, String, Arc<dyn Handler>)>,
}

impl<C: Controller> Routes<C> {
    pub(crate) fn new(controller: Arc<C>) -> Self {
        Routes {
            controller,
            list: Vec::new(),
        }
    }

    /// Routes `method` + `path` to `action` (a method taking
    /// `self: Arc<Self>` and a [`Context`]).
    pub fn route<A, Fut, R>(&mut self, method: Method, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        let handler = Bound {
            controller: self.controller.clone(),
            action,
        };
        self.list.push((method, path.to_owned(), Arc::new(handler)));
        self
    }

    /// Routes `GET path` (and `HEAD`) to `action`.
    pub fn get<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::GET, path, action)
    }

    /// Routes `POST path` to `action`.
    pub fn post<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::POST, path, action)
    }

    /// Routes `PUT path` to `action`.
    pub fn put<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::PUT, path, action)
    }

    /// Routes `DELETE path` to `action`.
    pub fn delete<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::DELETE, path, action)
    }
}

impl<C> std::fmt::Debug for Routes<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|(m, p, _)| format!("{m} {p}")))
            .finish()
    }
}

/// An action bound to its controller instance.
struct Bound<C, A> {
    controller: Arc<C>,
    action: A,
}

impl<C, A, Fut, R> Handler for Bound<C, A>
where
    C: Send + Sync + 'static,
    A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, ctx: Context) -> BoxFuture<Response> {
        let fut = (self.action)(self.controller.clone(), ctx);
        Box::pin(async move { fut.await.into_response() })
    }
}
