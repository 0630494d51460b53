//! `GET /ws/echo`: a raw WebSocket echo (text and binary, verbatim), the
//! endpoint the Autobahn conformance cases run against.

use rill::{ws::WsOptions, Context, Controller, Response, Routes};
use std::sync::Arc;

/// WebSocket endpoints.
#[derive(Debug)]
pub struct SocketsController;

impl Controller for SocketsController {
    fn routes(routes: &mut Routes<Self>) {
        routes.get("/ws/echo", Self::echo);
    }
}

impl SocketsController {
    /// Every message back, as it came. Messages up to 32 MiB: the Autobahn
    /// cases send 16 MiB ones.
    async fn echo(self: Arc<Self>, ctx: Context) -> Response {
        let options = WsOptions::new().max_message(32 * 1024 * 1024);
        ctx.websocket_with(options, |_ctx, mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message?).await?;
            }
            Ok(())
        })
    }
}
