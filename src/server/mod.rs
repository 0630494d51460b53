//! [`Server`]: accepts TCP connections and serves a router over HTTP/1.1
//! and HTTP/2 (cleartext, prior knowledge) on one port, with a deadline for
//! every phase in which the client must act, a connection cap, and graceful
//! shutdown.
//!
//! * `admission` — the connection cap and back-off when out of descriptors;
//! * `conn` — one connection: protocol detection, hyper, graceful close;
//! * `io` — the socket with the header-read and idle deadlines;
//! * `head` — spotting a `Content-Length` no server could accept;
//! * `signal` — [`shutdown_signal`]: Ctrl-C and `SIGTERM`.

mod admission;
mod conn;
mod head;
mod io;
mod signal;

pub use signal::shutdown_signal;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpSocket, ToSocketAddrs},
    sync::watch,
    task::JoinSet,
};

use crate::{
    error::ServeError, live::DEFAULT_SHUTDOWN_GRACE, request_body::BodyTimeouts,
    router::RouterService, Router,
};
use admission::{Admission, OpenConnections};
use conn::Connections;
use io::Deadlines;

/// The default listen backlog. Tokio's `TcpListener::bind` uses 128, which
/// drops bursts of simultaneous connects (every browser tab of a busy page
/// opening its event stream at once).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rill::ServeError> {
/// use rill::{Server, DEFAULT_BACKLOG};
///
/// assert_eq!(DEFAULT_BACKLOG, 1024); // what `Server::bind` uses
/// // a service whose clients all reconnect at once after a deploy
/// let server = Server::bind_with_backlog("127.0.0.1:0", DEFAULT_BACKLOG * 4).await?;
/// # drop(server);
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_BACKLOG: u32 = 1024;

/// How long a client may take to send its request headers.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rill::ServeError> {
/// use rill::{Server, DEFAULT_HEADER_READ_TIMEOUT};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_HEADER_READ_TIMEOUT, Duration::from_secs(30));
/// let server = Server::bind("127.0.0.1:0").await?
///     .header_read_timeout(DEFAULT_HEADER_READ_TIMEOUT / 3); // stricter: 10 s
/// # drop(server);
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may stay open with no request in progress.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rill::ServeError> {
/// use rill::{Server, DEFAULT_IDLE_TIMEOUT};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_IDLE_TIMEOUT, Duration::from_secs(60));
/// // behind a load balancer that keeps connections for 5 minutes
/// let server = Server::bind("127.0.0.1:0").await?
///     .idle_timeout(DEFAULT_IDLE_TIMEOUT * 5);
/// # drop(server);
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest an HTTP/2 connection asked to go away (`GOAWAY`) for being
/// idle may take to close before its socket is cut.
const GOAWAY_GRACE: Duration = Duration::from_secs(5);

/// How long a graceful shutdown waits for live writers and connections to
/// finish before aborting them.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rill::ServeError> {
/// use rill::{Server, DEFAULT_SHUTDOWN_DEADLINE};
/// use std::time::Duration;
///
/// assert_eq!(DEFAULT_SHUTDOWN_DEADLINE, Duration::from_secs(10));
/// // an orchestrator that kills the process 30 s after SIGTERM
/// let server = Server::bind("127.0.0.1:0").await?
///     .shutdown_deadline(DEFAULT_SHUTDOWN_DEADLINE * 2);
/// # drop(server);
/// # Ok(())
/// # }
/// ```
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
///
/// # Limits
///
/// Every phase in which the server waits for the client has a deadline, and
/// the number of connections has a cap; see [`docs/security.md`](crate::guides::security) for what each
/// protects against. The size of request bodies is limited by the
/// [`Router`](crate::Router::body_limit).
///
/// | setting | default |
/// |---|---|
/// | [`header_read_timeout`](Self::header_read_timeout) | 30 s |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s |
/// | [`body_read_timeout`](Self::body_read_timeout) | 30 s |
/// | [`body_idle_timeout`](Self::body_idle_timeout) | 10 s |
/// | [`max_connections`](Self::max_connections) | 90% of the open-file limit |
/// | [`shutdown_grace`](Self::shutdown_grace) | 1 s |
/// | [`shutdown_deadline`](Self::shutdown_deadline) | 10 s |
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    body_timeouts: BodyTimeouts,
    max_connections: usize,
    shutdown_grace: Duration,
    shutdown_deadline: Duration,
}

impl Server {
    /// Listens on `addr` (port 0 picks a free port) with a backlog of
    /// [`DEFAULT_BACKLOG`].
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] when no resolved address can be bound.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::ServeError> {
    /// use rill::{ServeError, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").await?; // port 0: any free port
    /// let addr = server.local_addr()?;
    /// assert_ne!(addr.port(), 0);
    /// // a second server cannot take the same port
    /// assert!(matches!(Server::bind(addr).await, Err(ServeError::Bind { .. })));
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::ServeError> {
    /// use rill::Server;
    ///
    /// let server = Server::bind_with_backlog("127.0.0.1:0", 4096).await?;
    /// assert!(server.local_addr()?.ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::Server;
    ///
    /// // e.g. a listener bound before dropping privileges, or handed over by a test
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = listener.local_addr()?;
    /// let server = Server::from_listener(listener);
    /// assert_eq!(server.local_addr()?, addr);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_listener(listener: TcpListener) -> Server {
        Server {
            listener,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeouts: BodyTimeouts::default(),
            max_connections: admission::default_max_connections(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }

    /// The address actually bound (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] if the operating system cannot tell.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::ServeError> {
    /// use rill::Server;
    ///
    /// let server = Server::bind("127.0.0.1:0").await?;
    /// let addr = server.local_addr()?;
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    /// println!("listening on http://{addr}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// How long a client may take to send a request head (default 30 s).
    ///
    /// * HTTP/1.1: from the accept, or from the first byte of a request on a
    ///   kept-alive connection, until the head is complete. A late client is
    ///   answered `408 Request Timeout` and its connection closed.
    /// * HTTP/2: from the accept until the first stream opens (a client that
    ///   sends half a preface, or never finishes its `HEADERS`, opens none);
    ///   then the connection is sent `GOAWAY` and closed.
    /// * Either: a connection that sends nothing at all is closed.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Router, Server};
    /// use std::time::Duration;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let server = Server::bind("127.0.0.1:0").await?.header_read_timeout(Duration::from_millis(50));
    /// let addr = server.local_addr()?;
    /// tokio::spawn(server.serve(Router::new()));
    ///
    /// let mut client = tokio::net::TcpStream::connect(addr).await?;
    /// client.write_all(b"GET / HTTP/1.1\r\n").await?; // and nothing more
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 408 Request Timeout"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a connection may stay open with no request in progress
    /// (default 60 s): an HTTP/1.1 keep-alive connection between requests
    /// is closed, an HTTP/2 connection with no open stream is sent `GOAWAY`
    /// and closed. A streaming response is a request in progress: an SSE
    /// stream is never cut by this timeout.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Router, Server};
    /// use std::time::Duration;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let server = Server::bind("127.0.0.1:0").await?.idle_timeout(Duration::from_millis(50));
    /// let addr = server.local_addr()?;
    /// tokio::spawn(server.serve(Router::new()));
    ///
    /// let mut client = tokio::net::TcpStream::connect(addr).await?;
    /// client.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n").await?;
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).await?; // ends when the server closes the idle connection
    /// assert!(answer.starts_with("HTTP/1.1 404 Not Found"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a client may take to send a whole request body (default
    /// 30 s): a slower one gets `408 Request Timeout` and its connection is
    /// closed. The router reads bodies, and a
    /// [`Router::body_read_timeout`](crate::Router::body_read_timeout) set
    /// on it wins over this one.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::ServeError> {
    /// use rill::{Router, Server};
    /// use std::time::Duration;
    ///
    /// // uploads over slow links may take up to 5 minutes
    /// let server = Server::bind("127.0.0.1:0").await?
    ///     .body_read_timeout(Duration::from_secs(300));
    /// # let signal = async {};
    /// server.serve_with_shutdown(Router::new(), signal).await
    /// # }
    /// ```
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeouts.read = Some(timeout);
        self
    }

    /// How long a client may pause between two pieces of a request body
    /// (default 10 s): a longer pause gets `408 Request Timeout` and its
    /// connection is closed. A
    /// [`Router::body_idle_timeout`](crate::Router::body_idle_timeout) set on
    /// the router wins over this one.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Context, Response, Router, Server};
    /// use std::time::Duration;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # async fn upload(ctx: Context) -> Response { Response::text(format!("{} bytes\n", ctx.body().len())) }
    /// let server = Server::bind("127.0.0.1:0").await?.body_idle_timeout(Duration::from_millis(50));
    /// let addr = server.local_addr()?;
    /// tokio::spawn(server.serve(Router::new().post("/upload", upload)));
    ///
    /// let mut client = tokio::net::TcpStream::connect(addr).await?;
    /// client.write_all(b"POST /upload HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\nabc").await?;
    /// let mut answer = String::new(); // 3 of 10 bytes sent, then a pause
    /// client.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 408 Request Timeout"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeouts.idle = Some(timeout);
        self
    }

    /// The most connections served at once (default: 90% of the process's
    /// open-file limit, read at start; 10,000 where it cannot be read).
    ///
    /// A client connecting past the cap is answered `503 Service
    /// Unavailable` with `Retry-After: 1` and closed; accepting pauses 1 ms
    /// after each refusal (so a flood costs at most ~1,000 refusals a
    /// second, the rest waiting in the listen backlog), and one warning is
    /// logged per 10 s. Connections already open are not affected. Keep it
    /// below the open-file limit: past that limit the operating system
    /// refuses the sockets itself, and the server can only back off (5 ms,
    /// doubling to 0.5 s) until descriptors free up.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Router, Server};
    /// use tokio::{io::AsyncReadExt, net::TcpStream};
    ///
    /// let server = Server::bind("127.0.0.1:0").await?.max_connections(1);
    /// let addr = server.local_addr()?;
    /// tokio::spawn(server.serve(Router::new()));
    ///
    /// let _first = TcpStream::connect(addr).await?;
    /// let mut second = TcpStream::connect(addr).await?;
    /// let mut answer = String::new();
    /// second.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long live streams stay open, once told of a graceful shutdown,
    /// for their writers to send their last events (default 1 s; ends as
    /// soon as every writer has returned; `Duration::ZERO` closes them at
    /// once). See [`LiveTracker::announce_shutdown`](crate::LiveTracker::announce_shutdown).
    ///
    /// ```no_run
    /// # async fn f(router: rill::Router) -> Result<(), rill::ServeError> {
    /// use std::time::Duration;
    ///
    /// rill::Server::bind("127.0.0.1:3000").await?
    ///     .shutdown_grace(Duration::from_millis(500))
    ///     .serve_with_shutdown(router, rill::shutdown_signal())
    ///     .await
    /// # }
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long a graceful shutdown waits before aborting what is left
    /// (default 10 s, the grace included).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rill::ServeError> {
    /// use rill::{Router, Server};
    /// use std::time::Duration;
    ///
    /// // the orchestrator kills the process 30 s after SIGTERM: finish within 25 s
    /// let server = Server::bind("127.0.0.1:0").await?
    ///     .shutdown_deadline(Duration::from_secs(25));
    /// # let signal = async {};
    /// server.serve_with_shutdown(Router::new(), signal).await
    /// # }
    /// ```
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    /// Serves until the process ends.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for start-up failures.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Context, Response, Router, Server};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// async fn hello(_ctx: Context) -> Response {
    ///     Response::text("hello\n")
    /// }
    ///
    /// let server = Server::bind("127.0.0.1:0").await?;
    /// let addr = server.local_addr()?;
    /// tokio::spawn(server.serve(Router::new().get("/", hello)));
    ///
    /// let mut client = tokio::net::TcpStream::connect(addr).await?;
    /// client.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await?;
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("\r\n\r\nhello\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve(self, app: impl Into<RouterService>) -> Result<(), ServeError> {
        self.serve_with_shutdown(app, std::future::pending()).await
    }

    /// Serves until `signal` completes, then shuts down gracefully:
    ///
    /// 1. stops accepting connections;
    /// 2. tells every live stream — [`LiveStream::closed`](crate::LiveStream::closed)
    ///    resolves, writes still succeed — and asks every connection to
    ///    finish (HTTP/1.1: after its current response; HTTP/2: `GOAWAY`);
    ///    WebSockets are closed (1001);
    /// 3. once every writer has returned, or the
    ///    [`shutdown_grace`](Self::shutdown_grace) has passed, closes every
    ///    live stream: writes return
    ///    [`LiveError::StreamClosed`](crate::LiveError::StreamClosed);
    /// 4. waits for live writers and connections up to the
    ///    [`shutdown_deadline`](Self::shutdown_deadline), then aborts the rest.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for start-up failures.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Router, Server};
    /// use tokio::sync::oneshot;
    ///
    /// let server = Server::bind("127.0.0.1:0").await?;
    /// let (stop, stopped) = oneshot::channel::<()>();
    /// let serving = tokio::spawn(server.serve_with_shutdown(Router::new(), async {
    ///     let _ = stopped.await;
    /// }));
    /// // later, e.g. when a deploy replaces this process:
    /// stop.send(()).unwrap();
    /// serving.await??; // returns once everything has shut down
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve_with_shutdown(
        self,
        app: impl Into<RouterService>,
        signal: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let service: RouterService = app.into();
        let tracker = service.tracker().clone();
        let connections = Arc::new(Connections::new(
            Deadlines {
                header_read: self.header_read_timeout,
                idle: self.idle_timeout,
                goaway_grace: GOAWAY_GRACE.min(self.header_read_timeout),
            },
            self.body_timeouts,
        ));
        let (stop, stopped) = watch::channel(false);
        let open = OpenConnections::default();
        let mut tasks = JoinSet::new();
        let mut admission = Admission::default();

        tokio::pin!(signal);
        'accept: loop {
            let pause = tokio::select! {
                biased;
                () = &mut signal => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, _)) if open.count() >= self.max_connections => {
                        admission.refuse(tcp, self.max_connections)
                    }
                    Ok((tcp, peer)) => {
                        admission.admitted();
                        // Live chunks are small and latency-sensitive.
                        let _ = tcp.set_nodelay(true);
                        let slot = open.enter();
                        let connections = connections.clone();
                        let service = service.clone();
                        let stopped = stopped.clone();
                        tasks.spawn(async move {
                            connections.serve(tcp, peer, service, stopped, slot).await;
                        });
                        continue;
                    }
                    Err(error) => admission.accept_failed(&error),
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            };
            if !pause.is_zero() {
                tokio::select! {
                    biased;
                    () = &mut signal => break 'accept,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }

        drop(self.listener);
        tracing::info!(
            connections = open.count(),
            live = tracker.active(),
            "shutting down"
        );
        if self.shutdown_grace.is_zero() {
            tracker.close_all();
        } else {
            tracker.announce_shutdown();
        }
        let _ = stop.send(true);
        let drained = async {
            tokio::join!(
                async { while tasks.join_next().await.is_some() {} },
                async {
                    let _ = tokio::time::timeout(self.shutdown_grace, tracker.wait_writers()).await;
                    tracker.close_all();
                    tracker.wait_writers().await;
                }
            );
        };
        if tokio::time::timeout(self.shutdown_deadline, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                writers = tracker.running_writers(),
                connections = open.count(),
                "shutdown deadline passed; aborting what is left"
            );
            tracker.abort_writers();
            tasks.abort_all();
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// See `rill::fuzzing::content_length_scan`.
#[cfg(fuzzing)]
pub(crate) fn content_length_scan(pieces: &[&[u8]]) -> bool {
    let mut scan = head::ContentLengthScan::default();
    pieces.iter().any(|piece| scan.feed(piece))
}

impl<S: Clone + Send + Sync + 'static> From<Router<S>> for RouterService {
    fn from(router: Router<S>) -> Self {
        router.into_service()
    }
}

fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
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
