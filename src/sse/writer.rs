//! [`SseWriter`]: the writer's end of an SSE response.

use bytes::BytesMut;
use std::{future::Future, time::Duration};

use super::{encode_comment, Event, Fields, Id};
use crate::{
    error::{LiveError, SendError},
    live::LiveStream,
};

/// The writer's end of an SSE response: what `ctx.sse(|ctx, sse| …)` hands
/// to your closure. It encodes each event (straight into the stream's
/// pending batch when the stream is busy) and sends it with the same
/// ordering, back-pressure, disconnect and shutdown behaviour as
/// [`LiveStream`].
///
/// # Example
///
/// ```
/// use rill::{sse::Event, Context, Response};
///
/// async fn events(ctx: Context) -> Response {
///     ctx.sse(|_ctx, mut sse| async move {
///         sse.send(Event::data("hello").event("greeting")).await?;
///         sse.write("world").await?;
///         sse.comment("keep-alive").await?;
///         Ok(())
///     })
/// }
/// ```
#[must_use = "an SSE writer does nothing unless written to"]
pub struct SseWriter {
    stream: LiveStream,
    default_event: Option<String>,
    default_id: Option<String>,
    default_retry: Option<Duration>,
    next_id: Option<u64>,
    last_event_id: Option<String>,
    buf: BytesMut,
}

impl SseWriter {
    pub(crate) fn new(
        stream: LiveStream,
        defaults: Event,
        auto_id: bool,
        last_event_id: Option<String>,
    ) -> Self {
        let next_id = auto_id.then(|| {
            last_event_id
                .as_deref()
                .and_then(numeric_id)
                .map_or(1, |k| k + 1)
        });
        SseWriter {
            stream,
            default_event: defaults.event_type().map(str::to_owned),
            default_id: defaults.event_id().map(str::to_owned),
            default_retry: defaults.reconnection_time(),
            next_id,
            last_event_id,
            buf: BytesMut::new(),
        }
    }

    /// Sends one event frame: `event`, `id`, `retry`, then the `data` lines
    /// and a blank line, with the stream's defaults for fields the event
    /// lacks, and the next auto id if enabled.
    ///
    /// # Errors
    ///
    /// * [`SendError::Frame`] when the event (or a default) is invalid —
    ///   nothing is written and the stream stays usable;
    /// * [`SendError::Stream`] with [`LiveError::ClientDisconnected`] or
    ///   [`LiveError::StreamClosed`], as for [`LiveStream::write`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
    ///     sse.send(Event::data("{\"id\":7}").event("order").id("7")).await?;
    ///     // An invalid event is refused; the stream stays usable.
    ///     assert!(sse.send(Event::data("x").id("bad\nid")).await.is_err());
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "event: order\nid: 7\ndata: {\"id\":7}\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(&mut self, event: Event) -> Result<(), SendError> {
        self.send_fields(
            event.event_type(),
            event.event_id(),
            event.reconnection_time(),
            event.payload(),
        )
        .await
    }

    /// Sends `data` as an event with only the stream's defaults (as Keayl's
    /// `$sse.write('tick')` does). Encodes straight into the outgoing buffer:
    /// nothing is allocated per event.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let options = SseOptions::new().event("tick");
    /// let response = sse::response(options, None, |mut sse| async move {
    ///     for n in 1..=2 {
    ///         sse.write(n.to_string()).await?;
    ///     }
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write(&mut self, data: impl AsRef<str>) -> Result<(), SendError> {
        self.send_fields(None, None, None, Some(data.as_ref()))
            .await
    }

    /// Sends one event from its fields, encoded straight into the outgoing
    /// buffer (nothing allocated): for transports that hold the fields
    /// already (the state store's watchers).
    pub(crate) async fn send_fields(
        &mut self,
        event: Option<&str>,
        id: Option<&str>,
        retry: Option<Duration>,
        data: Option<&str>,
    ) -> Result<(), SendError> {
        if let Some(e) = self.stream.write_error() {
            return Err(e.into());
        }
        // Auto ids number the events that carry none; an event's own
        // numeric id moves the counter past it.
        let (id, numbered) = match (self.next_id, id) {
            (Some(next), None) => (Some(Id::Number(next)), Some(next)),
            (Some(_), Some(own)) => (Some(Id::Text(own)), numeric_id(own)),
            (None, own) => (own.or(self.default_id.as_deref()).map(Id::Text), None),
        };
        let fields = Fields {
            event: event.or(self.default_event.as_deref()),
            id,
            retry: retry.or(self.default_retry),
            data,
        };
        fields.validate()?;
        self.stream
            .send_encoded(&mut self.buf, |buf| fields.write_validated(buf))
            .await?;
        if let Some(sent) = numbered {
            // `numeric_id` leaves room: a counter started below 2^63 does
            // not reach u64::MAX.
            self.next_id = Some(sent.saturating_add(1));
        }
        Ok(())
    }

    /// Sends frames encoded already (whole `…\n\n` events, shared by every
    /// subscriber): `encode` appends them to the outgoing buffer, under one
    /// lock of the stream. It may run more than once (after a wait) and must
    /// append the same bytes each time. The stream's defaults and auto ids
    /// do not apply.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub(crate) async fn send_frames(
        &mut self,
        encode: impl Fn(&mut BytesMut),
    ) -> Result<(), SendError> {
        if let Some(e) = self.stream.write_error() {
            return Err(e.into());
        }
        self.stream.send_encoded(&mut self.buf, encode).await?;
        Ok(())
    }

    /// Sends one whole frame encoded already, handed over as it is (not
    /// copied into the outgoing buffer, which would keep a large frame's
    /// memory for as long as the buffer lives).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub(crate) async fn send_frame_bytes(&mut self, frame: bytes::Bytes) -> Result<(), SendError> {
        if let Some(e) = self.stream.write_error() {
            return Err(e.into());
        }
        self.stream.send_bytes(frame).await?;
        Ok(())
    }

    /// Sends a comment line (`: text`; several lines for multi-line text).
    /// Clients ignore it; it keeps idle connections alive through proxies.
    ///
    /// # Errors
    ///
    /// [`LiveError::ClientDisconnected`], [`LiveError::StreamClosed`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
    ///     sse.comment("connected").await?; // flushes headers, shows nothing
    ///     sse.write("hello").await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, ": connected\ndata: hello\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn comment(&mut self, text: &str) -> Result<(), LiveError> {
        if let Some(e) = self.stream.write_error() {
            return Err(e);
        }
        encode_comment(text, &mut self.buf);
        let frame = self.buf.split().freeze();
        self.stream.send_bytes(frame).await
    }

    /// The id the client last saw, from its `Last-Event-ID` header (or a
    /// `lastEventId` query parameter, as EventSource polyfills send it).
    /// `None` on a first connection, or when the value was invalid.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// // The browser reconnects after seeing event `order-17`.
    /// let resume = Some("order-17".to_owned());
    /// let response = sse::response(SseOptions::new(), resume, |mut sse| async move {
    ///     let after = sse.last_event_id().unwrap_or("the start").to_owned();
    ///     sse.write(format!("replaying after {after}")).await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "data: replaying after order-17\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The id the next auto-numbered event will get (`None` without
    /// [`SseOptions::auto_id`](super::SseOptions::auto_id)).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let resume = Some("9".to_owned());
    /// let response = sse::response(SseOptions::new().auto_id(), resume, |mut sse| async move {
    ///     let next = sse.next_id().unwrap_or(1);
    ///     sse.write(format!("starting at {next}")).await?;
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "id: 10\ndata: starting at 10\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_id(&self) -> Option<u64> {
        self.next_id
    }

    /// Whether the client has gone away.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    /// let response = sse::response(SseOptions::new(), None, |sse| async move {
    ///     sse.disconnected().await;
    ///     let _ = seen_tx.send(sse.is_disconnected());
    ///     Ok(())
    /// });
    /// drop(response); // the browser tab is closed
    /// assert!(seen_rx.await?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.stream.is_disconnected()
    }

    /// Whether the stream is closed (by [`close`](Self::close) or shutdown).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
    ///     sse.write("done").await?;
    ///     sse.close();
    ///     assert!(sse.is_closed());
    ///     assert!(sse.write("ignored").await.is_err());
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "data: done\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.stream.is_closed()
    }

    /// Whether the stream was closed because the server is shutting down.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// use rill::LiveTracker;
    ///
    /// let tracker = LiveTracker::new();
    /// let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    /// let options = SseOptions::new().tracker(tracker.clone());
    /// let _response = sse::response(options, None, |mut sse| async move {
    ///     sse.closed().await;
    ///     if sse.is_shutting_down() {
    ///         let _ = seen_tx.send(());
    ///         // Say goodbye; the client reconnects to another instance.
    ///     }
    ///     Ok(())
    /// });
    /// tracker.close_all(); // what a graceful shutdown does
    /// seen_rx.await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        self.stream.is_shutting_down()
    }

    /// Closes the stream; the body ends cleanly after what was sent.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// // A one-shot report: send it, then end the response.
    /// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
    ///     sse.send(Event::data("42 rows exported").event("done")).await?;
    ///     sse.close();
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "event: done\ndata: 42 rows exported\n\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&mut self) {
        self.stream.close();
    }

    /// A future that resolves when the client goes away, even while idle.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// let (left_tx, left_rx) = tokio::sync::oneshot::channel();
    /// let response = sse::response(SseOptions::new(), None, |sse| async move {
    ///     // Idle until the client leaves, then clean up (presence, locks, …).
    ///     sse.disconnected().await;
    ///     let _ = left_tx.send("cleaned up");
    ///     Ok(())
    /// });
    /// drop(response); // hyper drops the body when the client goes away
    /// assert_eq!(left_rx.await?, "cleaned up");
    /// # Ok(())
    /// # }
    /// ```
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stream.disconnected()
    }

    /// A future that resolves when the stream can take no more events
    /// (closed, shutting down, or client gone).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use http_body_util::BodyExt;
    /// use rill::sse::{self, Event, SseOptions};
    ///
    /// use std::time::Duration;
    ///
    /// let response = sse::response(SseOptions::new(), None, |mut sse| async move {
    ///     let mut ticks = tokio::time::interval(Duration::from_millis(10));
    ///     loop {
    ///         tokio::select! {
    ///             _ = ticks.tick() => sse.write("tick").await?,
    ///             _ = sse.closed() => return Ok(()), // gone, closed or shutting down
    ///         }
    ///     }
    /// });
    /// drop(response);
    /// # Ok(())
    /// # }
    /// ```
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stream.closed()
    }
}

impl std::fmt::Debug for SseWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseWriter")
            .field("stream", &self.stream)
            .field("next_id", &self.next_id)
            .field("last_event_id", &self.last_event_id)
            .finish()
    }
}

/// The largest id [`numeric_id`] accepts: 2^63 - 1, which leaves the
/// counter 2^63 ids of room before it could saturate.
pub(crate) const MAX_NUMERIC_ID: u64 = i64::MAX as u64;

/// An event id as a number, when it is written the way rill writes numbers:
/// decimal digits only, no sign, no leading zero (`0` itself excepted), at
/// most [`MAX_NUMERIC_ID`]. `+7`, `0007` and `18446744073709551615` are
/// not numbers here: a client sending them starts over rather than steering
/// the counter.
pub(crate) fn numeric_id(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    let canonical = match bytes {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ => bytes.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    id.parse::<u64>().ok().filter(|&n| n <= MAX_NUMERIC_ID)
}

/// The longest `Last-Event-ID` taken from a client.
const MAX_LAST_EVENT_ID: usize = 1024;

/// The client's last event id: the `Last-Event-ID` header, else a
/// `lastEventId` query parameter. Values with CR, LF or NUL, longer than
/// 1 KiB, or not UTF-8 are ignored.
pub(crate) fn last_event_id(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let valid = |v: &str| v.len() <= MAX_LAST_EVENT_ID && !v.contains(['\r', '\n', '\0']);
    if let Some(value) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        if valid(value) {
            return Some(value.to_owned());
        }
    }
    query.filter(|v| valid(v)).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::numeric_id;

    #[test]
    fn numeric_ids_are_canonical_and_bounded() {
        assert_eq!(numeric_id("0"), Some(0));
        assert_eq!(numeric_id("7"), Some(7));
        assert_eq!(numeric_id("9223372036854775807"), Some(i64::MAX as u64));
        for refused in [
            "",
            "+7",
            "-7",
            "0007",
            "00",
            " 7",
            "7 ",
            "7a",
            "1e3",
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            assert_eq!(numeric_id(refused), None, "{refused:?}");
        }
    }
}
