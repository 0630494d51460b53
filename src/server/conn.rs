//! One accepted connection: tell its protocol, serve it with hyper under the
//! deadlines of [`ConnIo`], and shut it down gracefully when asked.

use http_body::{Frame, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::{pin, Pin},
    sync::Arc,
    task::{Context, Poll},
};
use tokio::{io::AsyncReadExt, net::TcpStream, sync::watch, time::Instant};

use super::{
    admission::ConnectionSlot,
    io::{Activity, ConnIo, Deadlines, OpenRequest, Protocol},
};
use crate::{
    body::{Parts, WireBody},
    error::{BodyError, BoxError},
    handler::BoxFuture,
    request_body::BodyTimeouts,
    router::RouterService,
    ws::ConnectionHold,
};

/// HTTP/2 with prior knowledge opens with this preface; no HTTP/1 request
/// starts with the `PRI` method.
const H2_PREFACE_START: &[u8; 4] = b"PRI ";

/// What every connection of one server shares.
///
/// rill tells the protocol from the first bytes itself rather than through
/// hyper-util's auto builder: the auto connection keeps a rewind buffer and a
/// future sized for both protocols, which measured about 4 KiB more resident
/// memory per idle connection.
pub(super) struct Connections {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    deadlines: Deadlines,
    body_timeouts: BodyTimeouts,
}

impl Connections {
    pub(super) fn new(deadlines: Deadlines, body_timeouts: BodyTimeouts) -> Self {
        let mut http1 = http1::Builder::new();
        // Header reads are timed by `ConnIo`, which also answers 408.
        http1.timer(TokioTimer::new()).header_read_timeout(None);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        // RFC 8441: WebSockets over HTTP/2 (extended CONNECT).
        http2.timer(TokioTimer::new()).enable_connect_protocol();
        Connections {
            http1,
            http2,
            deadlines,
            body_timeouts,
        }
    }

    /// Serves one connection until it ends, or until `shutdown` says so and
    /// its open requests are done.
    pub(super) async fn serve(
        &self,
        mut tcp: TcpStream,
        peer: SocketAddr,
        service: RouterService,
        shutdown: watch::Receiver<bool>,
        slot: ConnectionSlot,
    ) {
        let accepted_at = Instant::now();
        let mut first = [0u8; 4];
        let deadline = accepted_at + self.deadlines.header_read;
        let (protocol, len) =
            match tokio::time::timeout_at(deadline, sniff(&mut tcp, &mut first)).await {
                Ok(Ok(Some(sniffed))) => sniffed,
                // Closed before sending anything, or an I/O error.
                Ok(Ok(None)) | Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!(%peer, "no request before the header-read timeout");
                    return;
                }
            };
        // The slot lives as long as the connection's socket — past this task
        // when the connection is upgraded to a WebSocket.
        let activity = Arc::new(Activity::new(slot));
        let io = TokioIo::new(ConnIo::new(
            tcp,
            &first[..len],
            protocol,
            self.deadlines,
            activity.clone(),
            accepted_at,
        ));
        let service = WireService {
            app: service,
            activity: activity.clone(),
            body_timeouts: self.body_timeouts,
        };
        let result = match protocol {
            Protocol::Http1 => {
                drive(
                    self.http1.serve_connection(io, service).with_upgrades(),
                    &activity,
                    shutdown,
                )
                .await
            }
            // Boxed: the HTTP/2 connection future is large, and every HTTP/1
            // connection task would otherwise reserve room for it.
            Protocol::Http2 => {
                Box::pin(drive(
                    self.http2.serve_connection(io, service),
                    &activity,
                    shutdown,
                ))
                .await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Reads the first bytes until they tell HTTP/1.1 from HTTP/2 (at most four:
/// `PRI `), waiting for the socket to become readable in between; `None`
/// when the peer closed first. Returns the protocol and how many bytes of
/// `first` were read.
async fn sniff(tcp: &mut TcpStream, first: &mut [u8; 4]) -> io::Result<Option<(Protocol, usize)>> {
    let mut len = 0;
    loop {
        let n = tcp.read(&mut first[len..]).await?;
        if n == 0 {
            return Ok(None);
        }
        len += n;
        if first[..len] != H2_PREFACE_START[..len] {
            return Ok(Some((Protocol::Http1, len)));
        }
        if len == H2_PREFACE_START.len() {
            return Ok(Some((Protocol::Http2, len)));
        }
    }
}

/// A hyper connection that can be asked to finish gracefully.
trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

type Io = TokioIo<ConnIo>;

impl Graceful for http1::UpgradeableConnection<Io, WireService> {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl Graceful for http2::Connection<Io, WireService, TokioExecutor> {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

/// Polls `conn` to its end: asks it to go away when its socket says a
/// deadline passed, or when the server shuts down.
async fn drive<C: Graceful>(
    conn: C,
    activity: &Activity,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), hyper::Error> {
    let mut conn = pin!(GoAwayOnRequest { conn, activity });
    tokio::select! {
        result = conn.as_mut() => return result,
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().project().conn.graceful_shutdown();
    conn.await
}

pin_project_lite::pin_project! {
    /// A connection that sends `GOAWAY` (HTTP/2) as soon as its socket, polled
    /// inside it, raised [`Activity::take_goaway`].
    struct GoAwayOnRequest<'a, C> {
        #[pin]
        conn: C,
        activity: &'a Activity,
    }
}

impl<C: Graceful> Future for GoAwayOnRequest<'_, C> {
    type Output = Result<(), hyper::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let poll = this.conn.as_mut().poll(cx);
            if poll.is_ready() || !this.activity.take_goaway() {
                return poll;
            }
            this.conn.as_mut().graceful_shutdown();
        }
    }
}

/// The app as this server runs it: like [`RouterService`], but its
/// responses' frames carry the written chunks as a list ([`WireBody`]), so
/// hyper writes them to the socket without copying them together first; and
/// each request is counted open in its connection's [`Activity`] until its
/// response body is dropped, and carries the server's body-read timeouts.
#[derive(Clone)]
struct WireService {
    app: RouterService,
    activity: Arc<Activity>,
    body_timeouts: BodyTimeouts,
}

impl<B> hyper::service::Service<http::Request<B>> for WireService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<ServedBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<ServedBody>, Infallible>>;

    fn call(&self, mut request: http::Request<B>) -> Self::Future {
        let app = self.app.clone();
        let open = Arc::new(self.activity.start());
        // A WebSocket keeps the request open (no idle deadline) as long as
        // it lives on this connection.
        request.extensions_mut().insert(ConnectionHold {
            _open: open.clone(),
        });
        if self.body_timeouts.read.is_some() || self.body_timeouts.idle.is_some() {
            request.extensions_mut().insert(self.body_timeouts);
        }
        Box::pin(async move {
            let response = app.handle(request).await.into_http();
            Ok(response.map(|body| ServedBody {
                body: WireBody(body),
                _open: open,
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted open.
    struct ServedBody {
        #[pin]
        body: WireBody,
        _open: Arc<OpenRequest>,
    }
}

impl http_body::Body for ServedBody {
    type Data = Parts;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Parts>, BodyError>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
