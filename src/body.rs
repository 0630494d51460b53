//! [`Body`]: the one response body type of rill — empty, full, live (pulling
//! a writer's channel) or streamed (pulling any `Stream`).

use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use futures_core::Stream;
use http_body::{Frame, SizeHint};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::time::{Instant, Sleep};

use crate::{
    error::{BodyError, BoxError},
    live::{
        shared::{BODY_DONE, CLOSED, DISCONNECTED, FAILED},
        ActiveGuard, Shared,
    },
};

type BoxStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// A response body: implements [`http_body::Body`] with `Bytes` data, so it
/// plugs into hyper (and axum) as it is.
///
/// A live body pulls the chunks a [`LiveStream`](crate::LiveStream) writes,
/// one channel slot at a time: while the client does not read, hyper does not
/// poll, the channel fills, and the writer waits. When hyper drops the body
/// before its end (the client went away), the stream is marked disconnected
/// and the writer is woken.
#[must_use = "streams do nothing unless polled"]
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Live(LiveBody),
    Stream(BoxStream),
}

struct LiveBody {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
    done: bool,
    /// The end was seen and is an error, held back for one poll.
    failing: Option<BodyError>,
    /// A taken batch that goes out as the next frame (not copied behind the
    /// chunks gathered with it).
    stash: Option<Bytes>,
    /// Keeps the response counted as open in its tracker while hyper holds it.
    _active: Option<Arc<ActiveGuard>>,
    heartbeat: Option<Heartbeat>,
    /// Run when hyper drops the body (a hub subscription unregisters here).
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

/// Sends `frame` whenever `interval` passes without data. Lives in the body,
/// not the writer, so it fires while the writer is busy elsewhere, and every
/// chunk restarts it, so busy streams never carry heartbeats.
struct Heartbeat {
    interval: Duration,
    frame: Bytes,
    /// When data last went out; the timer is re-armed lazily from it instead
    /// of being reset on every chunk.
    last_data: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl Body {
    /// A body with no data.
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of exactly these bytes.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(Some(data)),
        }
    }

    /// A body pulled from a stream of chunks, for responses produced by
    /// polling rather than by a writer task. An error from the stream aborts
    /// the response.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use std::convert::Infallible;
    ///
    /// # fn chunks() -> impl futures_core::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    /// #     tokio_stream_stub::iter()
    /// # }
    /// # mod tokio_stream_stub {
    /// #     use bytes::Bytes; use std::{convert::Infallible, pin::Pin, task::{Context, Poll}};
    /// #     pub struct It(u8);
    /// #     impl futures_core::Stream for It {
    /// #         type Item = Result<Bytes, Infallible>;
    /// #         fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
    /// #             self.0 += 1;
    /// #             Poll::Ready((self.0 <= 3).then(|| Ok(Bytes::from(format!("{}\n", self.0)))))
    /// #         }
    /// #     }
    /// #     pub fn iter() -> It { It(0) }
    /// # }
    /// let body = rill::Body::from_stream(chunks());
    /// ```
    pub fn from_stream<S, D, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<D, E>> + Send + 'static,
        D: Into<Bytes>,
        E: Into<BoxError>,
    {
        Body {
            kind: Kind::Stream(Box::pin(IntoBytes(Box::pin(stream)))),
        }
    }

    pub(crate) fn live(
        rx: mpsc::Receiver<Bytes>,
        shared: Arc<Shared>,
        active: Option<Arc<ActiveGuard>>,
        heartbeat: Option<(Duration, Bytes)>,
    ) -> Self {
        let heartbeat =
            heartbeat
                .filter(|(interval, _)| !interval.is_zero())
                .map(|(interval, frame)| Heartbeat {
                    interval,
                    frame,
                    last_data: Instant::now(),
                    sleep: Box::pin(tokio::time::sleep(interval)),
                });
        Body {
            kind: Kind::Live(LiveBody {
                rx,
                shared,
                done: false,
                failing: None,
                stash: None,
                _active: active,
                heartbeat,
                on_drop: None,
            }),
        }
    }

    /// Runs `f` when this (live) body is dropped.
    pub(crate) fn on_drop(mut self, f: Box<dyn FnOnce() + Send>) -> Self {
        if let Kind::Live(live) = &mut self.kind {
            live.on_drop = Some(f);
        }
        self
    }

    /// Whether this body is fed by a live writer.
    pub fn is_live(&self) -> bool {
        matches!(self.kind, Kind::Live(_))
    }

    /// Whether this body is produced over time (live or pulled from a stream)
    /// rather than known up front.
    pub fn is_streaming(&self) -> bool {
        matches!(self.kind, Kind::Live(_) | Kind::Stream(_))
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::full(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::full(v)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Live(live) => live.poll_frame(cx),
            Kind::Stream(stream) => loop {
                return match stream.as_mut().poll_next(cx) {
                    // An empty chunk would end a chunked body early: skip it.
                    Poll::Ready(Some(Ok(data))) if data.is_empty() => continue,
                    Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Stream(e)))),
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                };
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(data) => data.is_none(),
            Kind::Live(live) => live.done && live.failing.is_none() && live.stash.is_none(),
            Kind::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Live(_) | Kind::Stream(_) => SizeHint::default(),
        }
    }
}

/// A body frame gathers ready chunks up to about this many bytes.
const MAX_FRAME: usize = 512 * 1024;

/// A pending batch at least this large goes out as a frame of its own.
const STASH_FROM: usize = 16 * 1024;

impl LiveBody {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(batch) = self.stash.take() {
            return Poll::Ready(Some(Ok(Frame::data(batch))));
        }
        if let Some(error) = self.failing.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        // Everything ready goes out as one frame: one chunk header and one
        // buffer for hyper instead of one per write.
        let mut frame = Gather::default();
        let first = drain_channel(&mut self.rx, &self.shared, cx, &mut frame, MAX_FRAME);
        let mut ended = first == Drained::Ended;
        // The pending batch was written after everything in the channel, so
        // it may only follow once the channel is empty.
        if first != Drained::Capped {
            let mut pending = self.shared.pending();
            if !pending.is_empty() {
                // Between our last look and this lock the writer may have
                // refilled the channel before spilling into the batch. It
                // touches the channel only while holding this lock, so with
                // the lock held the channel holds exactly what is older than
                // the batch: take all of that first.
                if drain_channel(&mut self.rx, &self.shared, cx, &mut frame, usize::MAX)
                    == Drained::Ended
                {
                    ended = true;
                }
                let batch = pending.split().freeze();
                drop(pending);
                if frame.len == 0 || batch.len() < STASH_FROM {
                    frame.push(batch);
                } else {
                    // Copying a large batch behind a few small chunks costs
                    // more than a second frame: send it next.
                    self.stash = Some(batch);
                }
                // A writer may be waiting for the batch to be taken.
                self.shared.notifier().notify_waiters();
            }
        }
        if let Some(data) = frame.finish() {
            if let Some(heartbeat) = &mut self.heartbeat {
                heartbeat.last_data = Instant::now();
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if ended {
            self.done = true;
            let flags = self.shared.set(BODY_DONE);
            let error = if flags & FAILED != 0 {
                BodyError::WriterFailed
            } else if flags & CLOSED != 0 {
                return Poll::Ready(None);
            } else {
                // Every sender is gone but nobody closed the stream: the
                // writer task was dropped mid-way (aborted).
                BodyError::WriterCancelled
            };
            // hyper aborts without flushing what it buffered in the same
            // pass. Yield once so the chunks written before the failure
            // reach the client, then report the error.
            self.failing = Some(error);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match &mut self.heartbeat {
            Some(heartbeat) => heartbeat.poll_due(cx),
            None => Poll::Pending,
        }
    }
}

/// How a look at the channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// The frame reached its size limit; the channel may hold more.
    Capped,
    /// Nothing more is ready.
    Empty,
    /// Every sender is gone and the channel is empty.
    Ended,
}

/// Moves ready chunks from the channel into `frame` until nothing more is
/// ready, the channel ends, or `frame` holds `limit` bytes.
fn drain_channel(
    rx: &mut mpsc::Receiver<Bytes>,
    shared: &Shared,
    cx: &mut Context<'_>,
    frame: &mut Gather,
    limit: usize,
) -> Drained {
    while frame.len < limit {
        match Pin::new(&mut *rx).poll_next(cx) {
            Poll::Ready(Some(data)) => {
                shared.received();
                frame.push(data);
            }
            Poll::Ready(None) => return Drained::Ended,
            Poll::Pending => return Drained::Empty,
        }
    }
    Drained::Capped
}

/// Chunks gathered into one frame: a single chunk is passed through as it
/// is; several are copied into one buffer.
#[derive(Default)]
struct Gather {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    len: usize,
}

impl Gather {
    fn push(&mut self, data: Bytes) {
        self.len += data.len();
        if let Some(joined) = &mut self.joined {
            joined.extend_from_slice(&data);
        } else if let Some(first) = self.first.take() {
            let mut joined = BytesMut::with_capacity((first.len() + data.len()).max(8 * 1024));
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&data);
            self.joined = Some(joined);
        } else {
            self.first = Some(data);
        }
    }

    fn finish(self) -> Option<Bytes> {
        match self.joined {
            Some(joined) => Some(joined.freeze()),
            None => self.first,
        }
    }
}

impl Heartbeat {
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        while self.sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let due = self.last_data + self.interval;
            if due <= now {
                self.last_data = now;
                self.sleep.as_mut().reset(now + self.interval);
                return Poll::Ready(Some(Ok(Frame::data(self.frame.clone()))));
            }
            // Data went out since the timer was armed: wait the remainder.
            self.sleep.as_mut().reset(due);
        }
        Poll::Pending
    }
}

impl Drop for LiveBody {
    fn drop(&mut self) {
        // hyper drops the body early when the connection closes or the HTTP/2
        // stream is reset: that is how a departed client becomes visible to
        // an idle writer.
        if !self.done {
            self.shared.set(DISCONNECTED);
        }
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

/// Adapts a stream of `Result<impl Into<Bytes>, impl Into<BoxError>>`.
struct IntoBytes<S>(Pin<Box<S>>);

impl<S, D, E> Stream for IntoBytes<S>
where
    S: Stream<Item = Result<D, E>>,
    D: Into<Bytes>,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(Into::into).map_err(Into::into)))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Live(_) => "live",
            Kind::Stream(_) => "stream",
        };
        f.debug_struct("Body").field("kind", &kind).finish()
    }
}
