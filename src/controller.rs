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
///
/// # Example
///
/// ```
/// use rill::{Context, Controller, Routes};
/// use std::sync::Arc;
///
/// struct Articles;
///
/// impl Controller for Articles {
///     fn routes(routes: &mut Routes<Self>) {
///         routes
///             .get("/articles", Self::index)
///             .get("/articles/:id", Self::show);
///     }
/// }
/// impl Articles {
///     async fn index(self: Arc<Self>, _ctx: Context) -> &'static str { "all articles\n" }
///     async fn show(self: Arc<Self>, ctx: Context) -> String {
///         format!("article {}\n", ctx.param("id").unwrap_or("?"))
///     }
/// }
/// let router = rill::Router::new().controller(Arc::new(Articles));
/// assert_eq!(format!("{router:?}"), r#"Router { routes: ["GET /articles", "GET /articles/:id"] }"#);
/// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Method, Request, StatusCode}, Context, Controller, Router, Routes};
    /// use std::sync::Arc;
    ///
    /// struct Api;
    /// impl Controller for Api {
    ///     fn routes(routes: &mut Routes<Self>) {
    ///         routes.route(Method::OPTIONS, "/api/{*rest}", Self::preflight);
    ///     }
    /// }
    /// impl Api {
    ///     async fn preflight(self: Arc<Self>, _ctx: Context) -> StatusCode { StatusCode::NO_CONTENT }
    /// }
    ///
    /// let service = Router::new().controller(Arc::new(Api)).into_service();
    /// let request = Request::options("/api/todos").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NO_CONTENT);
    /// # }
    /// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Controller, Router, Routes};
    /// use std::sync::Arc;
    ///
    /// struct Status { version: &'static str }
    /// impl Controller for Status {
    ///     fn routes(routes: &mut Routes<Self>) {
    ///         routes.get("/status", Self::show);
    ///     }
    /// }
    /// impl Status {
    ///     async fn show(self: Arc<Self>, _ctx: Context) -> String { format!("v{}\n", self.version) }
    /// }
    ///
    /// let service = Router::new().controller(Arc::new(Status { version: "1.2" })).into_service();
    /// let head = Request::head("/status").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(head).await.status(), StatusCode::OK);
    /// # }
    /// ```
    pub fn get<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::GET, path, action)
    }

    /// Routes `POST path` to `action`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Controller, Router, Routes};
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Default)]
    /// struct Comments { list: Mutex<Vec<String>> }
    /// impl Controller for Comments {
    ///     fn routes(routes: &mut Routes<Self>) {
    ///         routes.post("/comments", Self::create);
    ///     }
    /// }
    /// impl Comments {
    ///     async fn create(self: Arc<Self>, ctx: Context) -> StatusCode {
    ///         self.list.lock().unwrap().push(String::from_utf8_lossy(ctx.body()).into_owned());
    ///         StatusCode::CREATED
    ///     }
    /// }
    ///
    /// let comments = Arc::new(Comments::default());
    /// let service = Router::new().controller(comments.clone()).into_service();
    /// let request = Request::post("/comments").header("host", "t").body(String::from("nice")).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::CREATED);
    /// assert_eq!(*comments.list.lock().unwrap(), ["nice"]);
    /// # }
    /// ```
    pub fn post<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::POST, path, action)
    }

    /// Routes `PUT path` to `action`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Controller, Router, Routes};
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Default)]
    /// struct Settings { theme: Mutex<String> }
    /// impl Controller for Settings {
    ///     fn routes(routes: &mut Routes<Self>) {
    ///         routes.put("/settings/theme", Self::update);
    ///     }
    /// }
    /// impl Settings {
    ///     async fn update(self: Arc<Self>, ctx: Context) -> StatusCode {
    ///         *self.theme.lock().unwrap() = String::from_utf8_lossy(ctx.body()).into_owned();
    ///         StatusCode::NO_CONTENT
    ///     }
    /// }
    ///
    /// let settings = Arc::new(Settings::default());
    /// let service = Router::new().controller(settings.clone()).into_service();
    /// let request = Request::put("/settings/theme").header("host", "t").body(String::from("dark")).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NO_CONTENT);
    /// assert_eq!(*settings.theme.lock().unwrap(), "dark");
    /// # }
    /// ```
    pub fn put<A, Fut, R>(&mut self, path: &str, action: A) -> &mut Self
    where
        A: Fn(Arc<C>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoResponse,
    {
        self.route(Method::PUT, path, action)
    }

    /// Routes `DELETE path` to `action`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{http::{Request, StatusCode}, Context, Controller, Router, Routes};
    /// use std::sync::{Arc, Mutex};
    ///
    /// struct Sessions { open: Mutex<Vec<String>> }
    /// impl Controller for Sessions {
    ///     fn routes(routes: &mut Routes<Self>) {
    ///         routes.delete("/sessions/:id", Self::destroy);
    ///     }
    /// }
    /// impl Sessions {
    ///     async fn destroy(self: Arc<Self>, ctx: Context) -> StatusCode {
    ///         let id = ctx.param("id").unwrap_or_default();
    ///         self.open.lock().unwrap().retain(|s| s != id);
    ///         StatusCode::NO_CONTENT
    ///     }
    /// }
    ///
    /// let sessions = Arc::new(Sessions { open: Mutex::new(vec!["a1".into(), "b2".into()]) });
    /// let service = Router::new().controller(sessions.clone()).into_service();
    /// let request = Request::delete("/sessions/a1").header("host", "t").body(String::new()).unwrap();
    /// assert_eq!(service.handle(request).await.status(), StatusCode::NO_CONTENT);
    /// assert_eq!(*sessions.open.lock().unwrap(), ["b2"]);
    /// # }
    /// ```
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
