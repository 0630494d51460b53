//! [`shutdown_signal`]: the signals that ask a server to stop.

/// Resolves when the process is asked to stop: Ctrl-C (`SIGINT`) or, on
/// Unix, `SIGTERM` — what `kill`, systemd, Docker and Kubernetes send. Pass
/// it to [`Server::serve_with_shutdown`](crate::Server::serve_with_shutdown)
/// so that both start the graceful shutdown.
///
/// If a signal handler cannot be installed, that signal is logged and
/// ignored; the other one still works.
///
/// # Example
///
/// ```no_run
/// use rill::{Context, Response, Router, Server};
///
/// async fn hello(_ctx: Context) -> Response {
///     Response::text("hello\n")
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), rill::ServeError> {
/// let server = Server::bind("127.0.0.1:3000").await?;
/// server
///     .serve_with_shutdown(Router::new().get("/", hello), rill::shutdown_signal())
///     .await
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
