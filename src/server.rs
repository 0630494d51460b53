//! [`Server`]: accepts TCP connections and serves a router over HTTP/1.1
//! and HTTP/2 (cleartext, prior knowledge) on one port, with graceful
//! shutdown.

use hyper::server::conn::{http1, http2};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
};
use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs},
    task::JoinSet,
};

use crate::{
    body::WireBody,
    error::{BoxError, ServeError},
    handler::BoxFuture,
    router::RouterService,
    Router,
};

/// The default listen backlog. Tokio's `TcpListener::bind` uses 128, which
/// drops bursts of simultaneous connects (every browser tab of a busy page
/// opening its event stream at once).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// How long a client may take to send its request headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a graceful shutdown waits for live writers and connections to
/// finish before aborting them.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// An HTTP server for a [`Router`].
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
/// println!("listening on http://{}", server.local_addr()?);
/// server
///     .serve_with_shutdown(Router::new().get("/", hello), async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown_deadline: Duration,
}

impl Server {
    /// Listens on `addr` (port 0 picks a free port) with a backlog of
    /// [`DEFAULT_BACKLOG`].
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] when no resolved address can be bound.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Server, ServeError> {
        Server::bind_with_backlog(addr, DEFAULT_BACKLOG).await
    }

    /// Listens on `addr` with this listen backlog (the kernel caps it at
    /// `net.core.somaxconn`).
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] when no resolved address can be bound,
    /// [`ServeError::NoAddress`] when `addr` resolves to nothing.
    pub async fn bind_with_backlog(
        addr: impl ToSocketAddrs,
        backlog: u32,
    ) -> Result<Server, ServeError> {
        let mut last_error = None;
        for addr in tokio::net::lookup_host(addr).await? {
            match listen(addr, backlog) {
                Ok(listener) => return Ok(Server::from_listener(listener)),
                Err(source) => last_error = Some(ServeError::Bind { addr, source }),
            }
        }
        Err(last_error.unwrap_or(ServeError::NoAddress))
    }

    /// Serves on a listener you bound yourself.
    pub fn from_listener(listener: TcpListener) -> Server {
        Server {
            listener,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }

    /// The address actually bound (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] if the operating system cannot tell.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// How long an HTTP/1.1 client may take to send its request headers
    /// before the connection is closed (default 30 s).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a graceful shutdown waits before aborting what is left
    /// (default 10 s).
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    /// Serves until the process ends.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for start-up failures.
    pub async fn serve(self, app: impl Into<RouterService>) -> Result<(), ServeError> {
        self.serve_with_shutdown(app, std::future::pending()).await
    }

    /// Serves until `signal` completes, then shuts down gracefully:
    ///
    /// 1. stops accepting connections;
    /// 2. closes every live stream — writes return
    ///    [`LiveError::StreamClosed`](crate::LiveError::StreamClosed) and
    ///    [`LiveStream::closed`](crate::LiveStream::closed) resolves — and
    ///    asks every connection to finish (HTTP/1.1: after its current
    ///    response; HTTP/2: `GOAWAY`);
    /// 3. waits for live writers and connections up to the
    ///    [`shutdown_deadline`](Self::shutdown_deadline), then aborts the rest.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for start-up failures.
    pub async fn serve_with_shutdown(
        self,
        app: impl Into<RouterService>,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let service: RouterService = app.into();
        let tracker = service.tracker().clone();
        let builders = Arc::new(Builders::new(self.header_read_timeout));
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();

        tokio::pin!(signal);
        loop {
            tokio::select! {
                biased;
                () = &mut signal => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        // Live chunks are small and latency-sensitive.
                        let _ = tcp.set_nodelay(true);
                        let builders = builders.clone();
                        let service = service.clone();
                        let watcher = graceful.watcher();
                        connections.spawn(async move {
                            builders.serve(tcp, peer, service, watcher).await;
                        });
                    }
                    Err(error) => accept_failed(error).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        drop(self.listener);
        tracing::info!(
            connections = connections.len(),
            live = tracker.active(),
            "shutting down"
        );
        tracker.close_all();
        let drained = async {
            tokio::join!(graceful.shutdown(), tracker.wait_writers());
        };
        if tokio::time::timeout(self.shutdown_deadline, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                writers = tracker.running_writers(),
                connections = connections.len(),
                "shutdown deadline passed; aborting what is left"
            );
            tracker.abort_writers();
            connections.abort_all();
        }
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}

/// The protocol a connection speaks, told from its first bytes.
enum Protocol {
    Http1,
    Http2,
}

/// HTTP/2 with prior knowledge opens with this preface; no HTTP/1 request
/// starts with the `PRI` method.
const H2_PREFACE_START: &[u8; 4] = b"PRI ";

/// One builder per protocol, shared by every connection.
///
/// rill tells the protocol from the first bytes itself rather than through
/// hyper-util's auto builder: the auto connection keeps a rewind buffer and a
/// future sized for both protocols, which measured about 4 KiB more resident
/// memory per idle connection.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    header_read_timeout: Duration,
}

impl Builders {
    fn new(header_read_timeout: Duration) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2.timer(TokioTimer::new());
        Builders {
            http1,
            http2,
            header_read_timeout,
        }
    }

    async fn serve(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        service: RouterService,
        watcher: Watcher,
    ) {
        let protocol = match tokio::time::timeout(self.header_read_timeout, sniff(&tcp)).await {
            Ok(Ok(Some(protocol))) => protocol,
            // Closed before sending anything, or an I/O error: nothing to serve.
            Ok(Ok(None)) | Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!(%peer, "no request bytes before the header-read timeout");
                return;
            }
        };
        let io = TokioIo::new(tcp);
        let result = match protocol {
            Protocol::Http1 => {
                watcher
                    .watch(self.http1.serve_connection(io, WireService(service)))
                    .await
            }
            // Boxed: the HTTP/2 connection future is large, and every HTTP/1
            // connection task would otherwise reserve room for it.
            Protocol::Http2 => {
                Box::pin(watcher.watch(self.http2.serve_connection(io, WireService(service)))).await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Peeks at the first bytes (without consuming them) until they tell
/// HTTP/1.1 from HTTP/2; `None` when the peer closed first.
async fn sniff(tcp: &TcpStream) -> io::Result<Option<Protocol>> {
    let mut first = [0u8; 4];
    loop {
        let n = tcp.peek(&mut first).await?;
        if n == 0 {
            return Ok(None);
        }
        if first[..n] != H2_PREFACE_START[..n] {
            return Ok(Some(Protocol::Http1));
        }
        if n == H2_PREFACE_START.len() {
            return Ok(Some(Protocol::Http2));
        }
        // A prefix of "PRI " arrived alone: peek would return at once again,
        // so wait a little for the rest (bounded by the caller's timeout).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The app as this server runs it: like [`RouterService`], but its
/// responses' frames carry the written chunks as a list
/// ([`WireBody`]), so hyper writes them to the socket without copying them
/// together first.
#[derive(Clone)]
struct WireService(RouterService);

impl<B> hyper::service::Service<http::Request<B>> for WireService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<WireBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<WireBody>, Infallible>>;

    fn call(&self, request: http::Request<B>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(request).await.into_http().map(WireBody)) })
    }
}

impl From<Router> for RouterService {
    fn from(router: Router) -> Self {
        router.into_service()
    }
}

fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server rebind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn accept_failed(error: io::Error) {
    match error.kind() {
        // The peer gave up between SYN and accept: nothing to do.
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => {}
        // Out of file descriptors or memory: back off instead of spinning.
        _ => {
            tracing::warn!(%error, "accept failed; retrying shortly");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
