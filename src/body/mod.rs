//! [`Body`]: the one response body type of rill — empty, full, live (pulling
//! a writer's channel) or streamed (pulling any `Stream`).

mod live;
mod wire;

pub(crate) use wire::{Parts, WireBody};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Frame, SizeHint};
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use crate::pipe::Gather;
use crate::{
    error::{BodyError, BoxError},
    pipe::PipeReader,
};
use live::LiveBody;

type BoxStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// A response body: implements [`http_body::Body`] with `Bytes` data, so it
/// plugs into hyper (and axum) as it is.
///
/// A live body pulls what a [`LiveStream`](crate::LiveStream) writes (or a
/// broker offers) through a pipe bounded in bytes: while the client does
/// not read, hyper does not poll, the pipe fills, and the writer waits. When
/// hyper drops the body before its end (the client went away), the stream is
/// marked disconnected and the writer is woken.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::BodyExt;
///
/// // Under axum or a bare hyper service, a rill response is an
/// // `http::Response<rill::Body>`:
/// let response = rill::live(|mut stream| async move {
///     stream.write("one ").await?;
///     stream.write("two").await?;
///     Ok(())
/// });
/// let body: rill::Body = response.into_http().into_body();
/// assert_eq!(body.collect().await?.to_bytes(), "one two");
/// # Ok(())
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    /// Boxed: a live body holds a pipe's reader and its spare batch, which
    /// would make every `Body` that large.
    Live(Box<LiveBody>),
    Stream(BoxStream),
}

impl Body {
    /// A body with no data.
    ///
    /// # Example
    ///
    /// ```
    /// use http_body::Body as _;
    ///
    /// let body = rill::Body::empty();
    /// assert!(body.is_end_stream());
    /// assert_eq!(body.size_hint().exact(), Some(0));
    /// ```
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of exactly these bytes.
    ///
    /// # Example
    ///
    /// ```
    /// use http_body::Body as _;
    ///
    /// // A small JSON answer from a bare hyper service:
    /// let body = rill::Body::full(r#"{"ok":true}"#);
    /// assert_eq!(body.size_hint().exact(), Some(11)); // hyper sends Content-Length: 11
    /// assert!(!body.is_streaming());
    /// ```
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

    /// A body that pulls a pipe; `guard` lives as long as the body (it keeps
    /// the response counted by its tracker), `heartbeat` is sent after each
    /// interval without data.
    pub(crate) fn live(
        reader: PipeReader,
        guard: Option<Arc<dyn Send + Sync>>,
        heartbeat: Option<(Duration, Bytes)>,
    ) -> Self {
        Body {
            kind: Kind::Live(Box::new(LiveBody::new(reader, guard, heartbeat))),
        }
    }

    /// Runs `f` when this (live) body is dropped.
    pub(crate) fn on_drop(mut self, f: Box<dyn FnOnce() + Send>) -> Self {
        if let Kind::Live(live) = &mut self.kind {
            live.on_drop = Some(f);
        }
        self
    }

    /// Whether this body is live: fed through a pipe, by a writer task
    /// ([`Context::live`](crate::Context::live)) or by a broker (a hub
    /// subscription).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let response = rill::live(|mut stream| async move {
    ///     stream.write("tick").await?;
    ///     Ok(())
    /// });
    /// assert!(response.body().is_live());
    /// assert!(!rill::Body::full("static").is_live());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_live(&self) -> bool {
        matches!(self.kind, Kind::Live(_))
    }

    /// Whether this body is produced over time (live or pulled from a stream)
    /// rather than known up front.
    ///
    /// # Example
    ///
    /// ```
    /// use bytes::Bytes;
    ///
    /// let chunks = futures_stub::once(Ok::<_, std::convert::Infallible>(Bytes::from("data")));
    /// let streamed = rill::Body::from_stream(chunks);
    /// assert!(streamed.is_streaming() && !streamed.is_live());
    /// assert!(!rill::Body::full("known up front").is_streaming());
    /// # mod futures_stub {
    /// #     use std::{pin::Pin, task::{Context, Poll}};
    /// #     pub struct Once<T>(Option<T>);
    /// #     impl<T: Unpin> futures_core::Stream for Once<T> {
    /// #         type Item = T;
    /// #         fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
    /// #             Poll::Ready(self.0.take())
    /// #         }
    /// #     }
    /// #     pub fn once<T>(item: T) -> Once<T> { Once(Some(item)) }
    /// # }
    /// ```
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
            Kind::Live(live) => live.poll_frame::<Gather>(cx),
            Kind::Stream(stream) => loop {
                return match stream.as_mut().poll_next(cx) {
                    // An empty chunk carries nothing: skip it rather than
                    // hand hyper a frame it would discard.
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
            Kind::Live(live) => live.done && live.failing.is_none(),
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
