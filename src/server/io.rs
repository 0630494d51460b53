//! [`ConnIo`]: a connection's socket as hyper reads it, with the deadlines
//! of the phases in which the client, not the server, must act.
//!
//! hyper reads from the socket exactly when it waits for the client, so the
//! deadlines live in `poll_read`, with one timer per connection and no task
//! of their own:
//!
//! * **HTTP/1** — a request head must arrive within the header-read timeout
//!   (from the accept, or from its first byte after an idle keep-alive
//!   period); a late one is answered `408 Request Timeout` and the connection
//!   closed. An idle keep-alive connection (no byte of a next request) is
//!   closed quietly after the idle timeout.
//! * **HTTP/2** — the first stream must open within the header-read timeout
//!   of the accept (a client that sends half a preface, or never finishes
//!   its `HEADERS`, opens none); a connection without an open stream is
//!   closed after the idle timeout. Either way the connection is first asked
//!   to go away (`GOAWAY`, through [`Activity::take_goaway`]); if it has not
//!   closed a grace period later, the socket is cut.
//!
//! While a request is open (from the service call until its response body
//! is dropped, counted in [`Activity`]) no deadline runs here: request bodies
//! are timed by the router, responses may stream for hours.
//!
//! The bytes read while telling HTTP/1 from HTTP/2 are replayed first.

use super::{admission::ConnectionSlot, head::ContentLengthScan};
use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    task::{ready, Context, Poll, Waker},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};

/// Sent to an HTTP/1 client whose request head did not arrive in time.
const REQUEST_TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Sent to an HTTP/1 client that declares a body no server could take (see
/// [`ContentLengthScan`]).
const CONTENT_TOO_LARGE_RESPONSE: &[u8] =
    b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// The deadlines a connection is held to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadlines {
    /// From accept (or, on HTTP/1, from the first byte of a later request)
    /// until the request head is in; HTTP/2: until the first stream opens.
    pub(super) header_read: Duration,
    /// How long a connection may stay without an open request.
    pub(super) idle: Duration,
    /// HTTP/2: how long a connection asked to go away may take to close.
    pub(super) goaway_grace: Duration,
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

/// What a connection's service and its socket share.
///
/// `started` counts requests ever started and `open` those whose response
/// has not finished; the socket compares `started` with the value it saw to
/// tell a new idle period from the same one, even when a whole request came
/// and went between two reads. `goaway` is set by the socket and taken by the
/// connection's driver, which polls the socket and so sees it in the same
/// poll.
///
/// While a request is open the socket's reader parks its waker in
/// `wake_when_idle`; the request that brings `open` to zero wakes it, so the
/// idle deadline starts even though no byte arrives (hyper may have read
/// last while the response was still being written).
#[derive(Debug)]
pub(super) struct Activity {
    open: AtomicUsize,
    started: AtomicU64,
    goaway: AtomicBool,
    wake_when_idle: Mutex<Option<Waker>>,
    /// The connection's place under the server's cap, held as long as its
    /// socket is (an upgraded connection outlives the task that served it).
    _slot: ConnectionSlot,
}

impl Activity {
    pub(super) fn new(slot: ConnectionSlot) -> Self {
        Activity {
            open: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            goaway: AtomicBool::new(false),
            wake_when_idle: Mutex::default(),
            _slot: slot,
        }
    }

    /// Marks a request as open until the guard is dropped.
    pub(super) fn start(self: &Arc<Self>) -> OpenRequest {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel);
        OpenRequest(self.clone())
    }

    /// Parks the reader's waker until no request is open.
    fn wake_when_idle(&self, waker: &Waker) {
        let mut parked = self
            .wake_when_idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*parked {
            Some(old) if old.will_wake(waker) => {}
            _ => *parked = Some(waker.clone()),
        }
    }

    /// Whether the socket asked for the connection to go away since the last
    /// call.
    pub(super) fn take_goaway(&self) -> bool {
        self.goaway.swap(false, Ordering::AcqRel)
    }
}

/// An open request of a connection; dropped with the response body (or with
/// the service's future, when the request is abandoned first).
#[derive(Debug)]
pub(super) struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let parked = self
                .0
                .wake_when_idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = parked {
                waker.wake();
            }
        }
    }
}

/// Where a connection stands in its deadlines.
#[derive(Debug, Clone, Copy)]
enum Watch {
    /// A request is open: nothing is timed here.
    Busy,
    /// No request is open since the `generation`-th one started.
    Idle {
        generation: u64,
        /// HTTP/1: a byte of the next request head has arrived.
        head_started: bool,
    },
    /// HTTP/2: asked to go away; cut once the grace period passes with no
    /// request open.
    GoingAway,
}

/// A TCP connection as hyper's reader and writer, with replayed first bytes
/// and the deadlines of the module doc.
#[derive(Debug)]
pub(super) struct ConnIo {
    tcp: TcpStream,
    /// Bytes read while telling the protocol, replayed first.
    prefix: [u8; 4],
    prefix_start: u8,
    prefix_end: u8,
    protocol: Protocol,
    deadlines: Deadlines,
    activity: Arc<Activity>,
    watch: Watch,
    /// Boxed: a timer is large, and lives as long as the connection.
    timer: Pin<Box<Sleep>>,
    /// HTTP/1: watches the head being read for an impossible length.
    scan: ContentLengthScan,
}

impl ConnIo {
    /// Wraps a connection accepted at `accepted_at` whose first bytes,
    /// `prefix`, were already read.
    pub(super) fn new(
        tcp: TcpStream,
        prefix: &[u8],
        protocol: Protocol,
        deadlines: Deadlines,
        activity: Arc<Activity>,
        accepted_at: Instant,
    ) -> Self {
        let mut buf = [0u8; 4];
        let len = prefix.len().min(buf.len());
        buf[..len].copy_from_slice(&prefix[..len]);
        ConnIo {
            tcp,
            prefix: buf,
            prefix_start: 0,
            prefix_end: len as u8,
            protocol,
            deadlines,
            activity,
            watch: Watch::Idle {
                generation: 0,
                head_started: len > 0,
            },
            timer: Box::pin(tokio::time::sleep_until(
                accepted_at + deadlines.header_read,
            )),
            scan: ContentLengthScan::default(),
        }
    }

    fn arm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }

    /// Brings `watch` up to date with the requests the service has seen;
    /// whether a deadline runs now.
    fn observe(&mut self) -> bool {
        let open = self.activity.open.load(Ordering::Acquire);
        if let Watch::GoingAway = self.watch {
            return open == 0;
        }
        if open > 0 {
            self.watch = Watch::Busy;
            return false;
        }
        let started = self.activity.started.load(Ordering::Acquire);
        match self.watch {
            Watch::Idle { generation, .. } if generation == started => {}
            _ => {
                self.watch = Watch::Idle {
                    generation: started,
                    head_started: false,
                };
                self.scan = ContentLengthScan::default();
                self.arm(self.deadlines.idle);
            }
        }
        true
    }

    /// Bytes arrived while idle: on HTTP/1 the head's own deadline starts.
    fn bytes_arrived(&mut self) {
        if let Watch::Idle {
            head_started: head_started @ false,
            ..
        } = &mut self.watch
        {
            if self.protocol == Protocol::Http1 {
                *head_started = true;
                self.arm(self.deadlines.header_read);
            }
        }
    }

    /// Answers an HTTP/1 client with a canned response and fails the read,
    /// which ends the connection.
    fn refuse(&mut self, cx: &mut Context<'_>, response: &[u8], why: io::Error) -> io::Error {
        // One try, no waiting: the connection is about to close whether the
        // answer fits in the socket buffer or not.
        let _ = Pin::new(&mut self.tcp).poll_write(cx, response);
        why
    }

    /// Answers `413` to a head whose `Content-Length` no server could take.
    fn refuse_impossible_length(&mut self, cx: &mut Context<'_>) -> io::Error {
        let why = io::Error::new(
            io::ErrorKind::InvalidData,
            "request declares an impossible content length",
        );
        self.refuse(cx, CONTENT_TOO_LARGE_RESPONSE, why)
    }

    /// The deadline passed.
    fn expire(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match (self.protocol, self.watch) {
            (Protocol::Http1, Watch::Idle { head_started, .. }) => {
                if !head_started {
                    // An idle keep-alive connection: end of file, and hyper
                    // closes it as a client that left.
                    return Poll::Ready(Ok(()));
                }
                let why =
                    io::Error::new(io::ErrorKind::TimedOut, "request head not received in time");
                Poll::Ready(Err(self.refuse(cx, REQUEST_TIMEOUT_RESPONSE, why)))
            }
            (Protocol::Http2, Watch::Idle { .. }) => {
                self.watch = Watch::GoingAway;
                self.activity.goaway.store(true, Ordering::Release);
                self.arm(self.deadlines.goaway_grace);
                // Registers the grace timer; the driver sends GOAWAY as soon
                // as this poll returns.
                let _ = self.timer.as_mut().poll(cx);
                Poll::Pending
            }
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection did not close after GOAWAY",
            ))),
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.prefix_start < this.prefix_end {
            let filled = buf.filled().len();
            let replay = &this.prefix[this.prefix_start as usize..this.prefix_end as usize];
            let n = replay.len().min(buf.remaining());
            buf.put_slice(&replay[..n]);
            this.prefix_start += n as u8;
            // Whatever else already arrived joins the replayed bytes in this
            // one read, as if nothing had been read before: hyper sizes its
            // read buffer by what one read brings, and a first read of four
            // bytes would make it grow the buffer (measured: +6.7 KiB per
            // idle connection). Nothing yet, or an error, waits for the next
            // read.
            if buf.remaining() > 0 {
                let _ = Pin::new(&mut this.tcp).poll_read(cx, buf);
            }
            if this.protocol == Protocol::Http1 && this.scan.feed(&buf.filled()[filled..]) {
                return Poll::Ready(Err(this.refuse_impossible_length(cx)));
            }
            return Poll::Ready(Ok(()));
        }
        let timed = this.observe();
        let filled = buf.filled().len();
        let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if !timed {
            if read.is_pending() {
                this.activity.wake_when_idle(cx.waker());
                // The last request may have ended before the waker was
                // parked: then nobody else will wake this reader.
                if this.activity.open.load(Ordering::Acquire) == 0 {
                    cx.waker().wake_by_ref();
                }
            }
            return read;
        }
        match read {
            Poll::Ready(Ok(())) if buf.filled().len() > filled => {
                this.bytes_arrived();
                if this.protocol == Protocol::Http1 && this.scan.feed(&buf.filled()[filled..]) {
                    return Poll::Ready(Err(this.refuse_impossible_length(cx)));
                }
                if this.timer.is_elapsed() {
                    if let Poll::Ready(result) = this.expire(cx) {
                        return Poll::Ready(result);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                this.expire(cx)
            }
            // End of file or an error: nothing left to time.
            done => done,
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
