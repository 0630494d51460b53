//! With the `axum` feature: rill's [`Context`] is an axum extractor and
//! rill's [`Response`] an axum response, so an axum handler calls every rill
//! entry point directly.
//!
//! ```
//! use axum::{extract::{Path, State}, routing::get};
//! use rill::{hub::{Hub, Subscription}, Context, Response};
//!
//! async fn prices(ctx: Context) -> Response {
//!     ctx.sse(|_ctx, mut sse| async move { sse.write("42").await?; Ok(()) })
//! }
//!
//! async fn room(State(hub): State<Hub>, Path(room): Path<String>, ctx: Context) -> Response {
//!     hub.subscribe(ctx, Subscription::new().channel(room))
//! }
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/prices", get(prices))
//!     .route("/rooms/{room}/events", get(room))
//!     .with_state(Hub::new());
//! ```
//!
//! Without the feature, the same works with standard `http` types:
//! [`Context::from_parts`] and `Response::into_http` (see the axum guide).

use axum_core::{
    extract::{FromRequest, Request},
    response::IntoResponse,
};

use crate::{context::Context, response::Response};

/// The request as a rill [`Context`]: its body read in full under rill's
/// default bounds (a refused body answers `413`/`408`/`400` as rill's router
/// would), its query parsed, live responses registered with the
/// [`LiveTracker`](crate::LiveTracker) an `Extension(tracker)` layer put in
/// the request. Path parameters are axum's: take them with `Path`. As it
/// takes the body, it is the handler's last argument.
impl<S: Send + Sync> FromRequest<S> for Context {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &S) -> Result<Context, Response> {
        Context::from_request(request).await
    }
}

/// A rill response (a live or SSE stream included) as axum's.
impl IntoResponse for Response {
    fn into_response(self) -> axum_core::response::Response {
        self.into_http().map(axum_core::body::Body::new)
    }
}
