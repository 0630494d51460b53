//! One Server-Sent Event and its exact bytes on the wire.
//!
//! This module is private (its items are re-exported from `rill::sse`), so the
//! frame layout is documented on [`Event`], where rustdoc shows it.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

pub use crate::error::FrameError;

/// One Server-Sent Event, built by value.
///
/// Setters never fail; [`encode`](Event::encode) and
/// [`encode_into`](Event::encode_into) validate. The [spec] says how clients
/// read the frame.
///
/// # Frame layout
///
/// An event encodes to one frame, fields in this order, each line ended by
/// `\n`, the frame ended by one blank line:
///
/// ```text
/// event: <name>\n      only if set
/// id: <id>\n           only if set; `id:\n` when empty
/// retry: <ms>\n        only if set, whole milliseconds
/// data: <line>\n       one per line of the data; `data:\n` for an empty line
/// \n                   dispatches the event (if it has data)
/// ```
///
/// Data is split on CRLF, LF and CR (the three line breaks of the
/// [event stream grammar]), so the client's `MessageEvent.data` is the
/// original text with every line break turned into LF. A field whose value is
/// empty is written without the space (`data:\n`), and a non-empty value gets
/// exactly one space after the colon, which the client strips: a value that
/// starts with a space therefore survives (`" x"` → `data:  x`). An event with
/// no fields encodes to nothing.
///
/// [`encode_comment`] writes `: text\n` lines, which clients ignore.
///
/// # Example
///
/// ```
/// use rill::sse::Event;
///
/// let frame = Event::data("hello").event("greeting").encode()?;
/// assert_eq!(frame, "event: greeting\ndata: hello\n\n");
/// # Ok::<(), rill::sse::FrameError>(())
/// ```
///
/// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
/// [event stream grammar]: https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `event:` — the type client listeners match on; `None` leaves the
    /// client's default, `message`.
    event: Option<String>,
    /// `id:` — becomes the client's last event id, sent back in
    /// `Last-Event-ID` when it reconnects.
    id: Option<String>,
    /// `retry:` — the client's reconnection delay; kept as a `Duration` so the
    /// getter returns what was set, truncated to milliseconds only on the wire.
    retry: Option<Duration>,
    /// `data:` — `None` means no event is dispatched (the frame only updates
    /// id or retry), which differs from `Some("")`, an empty message.
    data: Option<String>,
}

impl Event {
    /// Creates an event with no fields, which encodes to nothing.
    ///
    /// Add fields with the setters; an event without data dispatches nothing
    /// on the client but still updates its last event id and retry delay.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// assert_eq!(Event::new().encode()?, "");
    /// assert_eq!(Event::new().id("5").encode()?, "id: 5\n\n");
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    pub const fn new() -> Event {
        Event {
            event: None,
            id: None,
            retry: None,
            data: None,
        }
    }

    /// Creates an event whose `data:` lines carry `data`.
    ///
    /// Each line of `data` (split on CRLF, LF or CR) becomes one `data:`
    /// line; the client joins them with LF. Empty data (`""`) is written as
    /// `data:` and dispatches an empty message. See the [spec].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// let frame = Event::data("line one\nline two").encode()?;
    /// assert_eq!(frame, "data: line one\ndata: line two\n\n");
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn data(data: impl Into<String>) -> Event {
        Event::new().with_data(data)
    }

    /// Creates an event whose single `data:` line is `value` as compact JSON.
    ///
    /// Compact JSON escapes every control character inside strings, so the
    /// data is always exactly one `data:` line. Available with the `json`
    /// feature. See the [spec].
    ///
    /// # Errors
    ///
    /// The `serde_json` error when `value` cannot be serialized (for example
    /// a map with non-string keys).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// let frame = Event::json(&["a\nb", "c"])?.encode()?;
    /// assert_eq!(frame, "data: [\"a\\nb\",\"c\"]\n\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Event, serde_json::Error> {
        serde_json::to_string(value).map(Event::data)
    }

    /// Sets the `data:` lines of this event, replacing any data it had.
    ///
    /// Same rules as [`Event::data`]; useful on an event built from
    /// [`Event::new`]. See the [spec].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// // Build the fields first, fill in the payload once it is known.
    /// let template = Event::new().event("price");
    /// let frame = template.clone().with_data("42.10").encode()?;
    /// assert_eq!(frame, "event: price\ndata: 42.10\n\n");
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn with_data(mut self, data: impl Into<String>) -> Event {
        self.data = Some(data.into());
        self
    }

    /// Sets the `event:` field: the event type that client listeners
    /// (`addEventListener(name, …)`) match on.
    ///
    /// Without it, or with an empty name, the client dispatches a `message`
    /// event. See the [spec].
    ///
    /// A name containing CR or LF is accepted here and refused by
    /// [`encode`](Event::encode) with [`FrameError::EventNameLineBreak`].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// // In the browser: `source.addEventListener("chat", (e) => …)`.
    /// let frame = Event::data("hi all").event("chat").encode()?;
    /// assert_eq!(frame, "event: chat\ndata: hi all\n\n");
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn event(mut self, name: impl Into<String>) -> Event {
        self.event = Some(name.into());
        self
    }

    /// Sets the `id:` field: the client's last event id, which it sends back
    /// in the `Last-Event-ID` header when it reconnects.
    ///
    /// An empty id (`id:`) resets the client's last event id. See the
    /// [spec].
    ///
    /// An id containing CR, LF or NUL is accepted here and refused by
    /// [`encode`](Event::encode) ([`FrameError::IdLineBreak`],
    /// [`FrameError::IdNul`]).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// let frame = Event::data("order shipped").id("1042").encode()?;
    /// assert_eq!(frame, "id: 1042\ndata: order shipped\n\n");
    /// // On reconnect the browser sends `Last-Event-ID: 1042`.
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn id(mut self, id: impl Into<String>) -> Event {
        self.id = Some(id.into());
        self
    }

    /// Sets the `retry:` field: how long the client waits before
    /// reconnecting, written in whole milliseconds (sub-millisecond parts are
    /// truncated).
    ///
    /// See the [spec].
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    /// use std::time::Duration;
    ///
    /// let frame = Event::data("tick").retry(Duration::from_secs(5)).encode()?;
    /// assert_eq!(frame, "retry: 5000\ndata: tick\n\n");
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn retry(mut self, interval: Duration) -> Event {
        self.retry = Some(interval);
        self
    }

    /// The `event:` field as set, if any: the event type client listeners
    /// match on.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// assert_eq!(Event::data("x").event("chat").event_type(), Some("chat"));
    /// assert_eq!(Event::data("x").event_type(), None); // a `message` event
    /// ```
    pub fn event_type(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The `id:` field as set, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// let event = Event::data("order shipped").id("1042");
    /// assert_eq!(event.event_id(), Some("1042"));
    /// assert_eq!(Event::data("x").event_id(), None);
    /// ```
    pub fn event_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `retry:` field as set (before truncation to milliseconds), if
    /// any: the client's reconnection time.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new().retry(Duration::from_micros(2_500_900));
    /// assert_eq!(event.reconnection_time(), Some(Duration::from_micros(2_500_900)));
    /// assert_eq!(event.encode()?, "retry: 2500\n\n"); // truncated on the wire only
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    pub fn reconnection_time(&self) -> Option<Duration> {
        self.retry
    }

    /// The data as set (before splitting into `data:` lines), if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::Event;
    ///
    /// let event = Event::data("line one\r\nline two");
    /// assert_eq!(event.payload(), Some("line one\r\nline two")); // not yet split
    /// assert_eq!(Event::new().payload(), None);
    /// ```
    pub fn payload(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// Checks that this event can be encoded, without writing anything.
    ///
    /// The same check [`encode`](Event::encode) makes; see the [spec] for
    /// why these values are refused.
    ///
    /// # Errors
    ///
    /// [`FrameError`] naming the first field that would break the frame.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::{Event, FrameError};
    ///
    /// // Check an id taken from user input before queuing the event.
    /// let user_id = "42\nevent: admin";
    /// let event = Event::data("hello").id(user_id);
    /// assert_eq!(event.validate(), Err(FrameError::IdLineBreak));
    /// assert_eq!(Event::data("hello").id("42").validate(), Ok(()));
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn validate(&self) -> Result<(), FrameError> {
        validate_fields(self.event.as_deref(), self.id.as_deref())
    }

    /// Encodes this event as one frame (see the [layout](Event#frame-layout));
    /// an event with no fields encodes to no bytes.
    ///
    /// See the [spec] for how the client reads it.
    ///
    /// # Errors
    ///
    /// [`FrameError`] when the event name or id would break the frame.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::sse::{Event, FrameError};
    ///
    /// assert_eq!(Event::data("").encode()?, "data:\n\n");
    /// assert_eq!(
    ///     Event::data("x").event("a\nb").encode(),
    ///     Err(FrameError::EventNameLineBreak)
    /// );
    /// # Ok::<(), FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn encode(&self) -> Result<Bytes, FrameError> {
        let mut buf = BytesMut::new();
        self.encode_into(None, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Appends this event's frame to `buf`, taking `event`, `id` and `retry`
    /// from `defaults` where this event has none.
    ///
    /// The event's own fields override the defaults; the defaults' data is
    /// ignored. Only the fields that end up on the wire are validated. `buf`
    /// grows at most once and nothing else is allocated. See the [spec].
    ///
    /// # Errors
    ///
    /// [`FrameError`] when the effective event name or id would break the
    /// frame; `buf` is then left untouched.
    ///
    /// # Example
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use rill::sse::Event;
    /// use std::time::Duration;
    ///
    /// let defaults = Event::new().retry(Duration::from_millis(5000));
    /// let mut buf = BytesMut::new();
    /// Event::data("tick").encode_into(Some(&defaults), &mut buf)?;
    /// Event::data("pong")
    ///     .retry(Duration::from_millis(1000))
    ///     .encode_into(Some(&defaults), &mut buf)?;
    /// assert_eq!(buf, "retry: 5000\ndata: tick\n\nretry: 1000\ndata: pong\n\n");
    /// # Ok::<(), rill::sse::FrameError>(())
    /// ```
    ///
    /// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    pub fn encode_into(
        &self,
        defaults: Option<&Event>,
        buf: &mut BytesMut,
    ) -> Result<(), FrameError> {
        Fields {
            event: self
                .event
                .as_deref()
                .or_else(|| defaults.and_then(|d| d.event.as_deref())),
            id: self
                .id
                .as_deref()
                .or_else(|| defaults.and_then(|d| d.id.as_deref()))
                .map(Id::Text),
            retry: self.retry.or_else(|| defaults.and_then(|d| d.retry)),
            data: self.data.as_deref(),
        }
        .encode_into(buf)
    }
}

/// The fields of one frame, borrowed: what [`Event::encode_into`] resolves
/// from an event and its defaults, and what the SSE writer builds directly
/// (no `Event`, no allocation) on its hot path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fields<'a> {
    pub(crate) event: Option<&'a str>,
    pub(crate) id: Option<Id<'a>>,
    pub(crate) retry: Option<Duration>,
    pub(crate) data: Option<&'a str>,
}

/// An `id:` value: text as given, or a number (an auto id) written straight
/// as digits, which needs neither formatting to a string nor validation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Id<'a> {
    Text(&'a str),
    Number(u64),
}

impl<'a> From<&'a str> for Id<'a> {
    fn from(text: &'a str) -> Self {
        Id::Text(text)
    }
}

impl Fields<'_> {
    /// Appends the frame; on error `buf` is untouched.
    pub(crate) fn encode_into(self, buf: &mut BytesMut) -> Result<(), FrameError> {
        // Validate before the first byte so a refused event leaves no partial
        // frame behind for the client to misread.
        self.validate()?;
        self.write_validated(buf);
        Ok(())
    }

    /// Whether these fields make a frame that cannot be misread.
    pub(crate) fn validate(&self) -> Result<(), FrameError> {
        let id = match self.id {
            Some(Id::Text(text)) => Some(text),
            Some(Id::Number(_)) | None => None,
        };
        validate_fields(self.event, id)
    }

    /// Appends the frame of fields already [validated](Self::validate).
    pub(crate) fn write_validated(self, buf: &mut BytesMut) {
        let Fields {
            event,
            id,
            retry,
            data,
        } = self;
        if event.is_none() && id.is_none() && retry.is_none() && data.is_none() {
            return;
        }

        let mut id_digits = itoa::Buffer::new();
        let id = id.map(|id| match id {
            Id::Text(text) => text,
            Id::Number(n) => id_digits.format(n),
        });
        let mut retry_digits = itoa::Buffer::new();
        let retry = retry.map(|d| retry_digits.format(d.as_millis()));
        // One scan of the data: most events are a single line.
        let single_line = data.filter(|text| find_line_break(text.as_bytes()).is_none());
        let data_len = match (data, single_line) {
            (_, Some(line)) => field_len(b"data", line),
            (Some(text), None) => Lines::new(text).map(|l| field_len(b"data", l)).sum(),
            (None, None) => 0,
        };
        buf.reserve(
            event.map_or(0, |v| field_len(b"event", v))
                + id.map_or(0, |v| field_len(b"id", v))
                + retry.map_or(0, |v| field_len(b"retry", v))
                + data_len
                + 1,
        );

        if let Some(v) = event {
            put_field(buf, b"event", v);
        }
        if let Some(v) = id {
            put_field(buf, b"id", v);
        }
        if let Some(v) = retry {
            put_field(buf, b"retry", v);
        }
        match (data, single_line) {
            (_, Some(line)) => put_field(buf, b"data", line),
            (Some(text), None) => {
                for line in Lines::new(text) {
                    put_field(buf, b"data", line);
                }
            }
            (None, None) => {}
        }
        buf.put_u8(b'\n');
    }
}

/// Appends an SSE comment to `buf`: one `: text` line per line of `text`
/// (split on CRLF, LF or CR), or `:` alone for empty text.
///
/// Clients ignore comments; they serve as heartbeats that keep an idle
/// connection (and the proxies on its path) from timing out without
/// dispatching an event. Comments never fail: no text can break out of them.
/// See the [spec].
///
/// # Example
///
/// ```
/// use bytes::BytesMut;
/// use rill::sse::encode_comment;
///
/// let mut buf = BytesMut::new();
/// encode_comment("keep-alive", &mut buf);
/// encode_comment("", &mut buf);
/// assert_eq!(buf, ": keep-alive\n:\n");
/// ```
///
/// [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
pub fn encode_comment(text: &str, buf: &mut BytesMut) {
    buf.reserve(Lines::new(text).map(|l| field_len(b"", l)).sum());
    for line in Lines::new(text) {
        put_field(buf, b"", line);
    }
}

fn validate_fields(event: Option<&str>, id: Option<&str>) -> Result<(), FrameError> {
    if event.is_some_and(has_line_break) {
        return Err(FrameError::EventNameLineBreak);
    }
    if let Some(id) = id {
        if has_line_break(id) {
            return Err(FrameError::IdLineBreak);
        }
        if memchr::memchr(0, id.as_bytes()).is_some() {
            return Err(FrameError::IdNul);
        }
    }
    Ok(())
}

fn has_line_break(value: &str) -> bool {
    find_line_break(value.as_bytes()).is_some()
}

/// The position of the first CR or LF in `bytes` (vectorized by `memchr`).
fn find_line_break(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\r', b'\n', bytes)
}

/// Bytes of `name: value\n`, or `name:\n` for an empty value.
fn field_len(name: &[u8], value: &str) -> usize {
    name.len() + if value.is_empty() { 2 } else { 3 + value.len() }
}

/// Writes one field line. The space after the colon is always written for a
/// non-empty value because the client strips exactly one leading space: a
/// value that itself starts with a space would otherwise lose it.
#[inline(always)]
fn put_field(buf: &mut BytesMut, name: &[u8], value: &str) {
    buf.put_slice(name);
    if value.is_empty() {
        buf.put_slice(b":\n");
    } else {
        buf.put_slice(b": ");
        buf.put_slice(value.as_bytes());
        buf.put_u8(b'\n');
    }
}

/// The lines of `text` as the event stream grammar splits them: CRLF, LF and
/// CR each end one line. Empty text is one empty line and a trailing break
/// yields a final empty line, so joining the lines with LF gives back `text`
/// with its breaks normalized.
struct Lines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { rest: Some(text) }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self.rest?;
        let bytes = text.as_bytes();
        match find_line_break(bytes) {
            None => {
                self.rest = None;
                Some(text)
            }
            Some(i) => {
                let next = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                // CR and LF are ASCII, so `i` and `next` are char boundaries.
                self.rest = Some(&text[next..]);
                Some(&text[..i])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_all_three_breaks() {
        let lines: Vec<_> = Lines::new("a\r\nb\nc\rd\r\n").collect();
        assert_eq!(lines, ["a", "b", "c", "d", ""]);
        assert_eq!(Lines::new("").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn retry_formats_extremes() {
        let zero = Event::new().retry(Duration::ZERO).encode().unwrap();
        assert_eq!(zero, "retry: 0\n\n");
        let max = Event::new().retry(Duration::MAX).encode().unwrap();
        assert_eq!(max, format!("retry: {}\n\n", Duration::MAX.as_millis()));
    }

    #[test]
    fn refused_event_writes_nothing() {
        let mut buf = BytesMut::from(&b"before"[..]);
        let err = Event::data("x").id("a\0b").encode_into(None, &mut buf);
        assert_eq!(err, Err(FrameError::IdNul));
        assert_eq!(buf, "before");
    }
}
