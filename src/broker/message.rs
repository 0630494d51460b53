//! What travels through a broker: a [`Publication`] as the app gives it, a
//! [`Message`] once the backend has placed it, and the [`Position`] that
//! places it — an [`Epoch`] and an offset.

use bytes::Bytes;
use std::{
    fmt,
    sync::{Arc, OnceLock},
};
use tokio::time::Instant;

use super::filter::Filter;

/// What an app publishes: an optional event name, the data, and an optional
/// filter on subscriber metadata.
///
/// ```
/// use rill::broker::{Filter, Publication};
///
/// let note = Publication::new("hello").event("note");
/// let private = Publication::new("for user 7").filter(Filter::new().eq("user_id", "7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub(crate) event: Option<Arc<str>>,
    pub(crate) data: Arc<str>,
    pub(crate) filter: Option<Arc<Filter>>,
}

impl Publication {
    /// A publication of `data` (text: every transport can carry it).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Publication;
    ///
    /// let json = serde_json::json!({"order": 17, "status": "paid"}).to_string();
    /// let publication = Publication::new(json);
    /// assert_eq!(publication.data(), r#"{"order":17,"status":"paid"}"#);
    /// ```
    pub fn new(data: impl Into<Arc<str>>) -> Self {
        Publication {
            event: None,
            data: data.into(),
            filter: None,
        }
    }

    /// Names the event (SSE `event:`, the WebSocket event name).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Publication;
    ///
    /// // SSE clients listen with `addEventListener("paid", …)`.
    /// let publication = Publication::new("order 17").event("paid");
    /// assert_eq!(publication.event_name(), Some("paid"));
    /// ```
    pub fn event(mut self, name: impl Into<Arc<str>>) -> Self {
        self.event = Some(name.into());
        self
    }

    /// Delivers only to subscribers whose metadata matches `filter` (an
    /// empty filter matches everyone).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
    /// # impl Recorder {
    /// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
    /// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
    /// # }
    /// # impl Sink for Recorder {
    /// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
    /// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
    /// #         Offer::Queued
    /// #     }
    /// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
    /// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
    /// #     fn position(&self, _: &str, _: &Position) {}
    /// #     fn close(&self) {}
    /// #     fn metadata(&self) -> &Metadata { &self.metadata }
    /// # }
    /// use rill::broker::{Broker, Filter, Publication, SubscribeOptions};
    ///
    /// let broker = Broker::new();
    /// let (ada, bob) = (Arc::new(Recorder::with(vec![("user".into(), "ada".into())])), Arc::new(Recorder::default()));
    /// let a = broker.subscribe(ada.clone(), SubscribeOptions::default());
    /// let b = broker.subscribe(bob.clone(), SubscribeOptions::default());
    /// a.join("inbox", None)?;
    /// b.join("inbox", None)?;
    /// let private = Publication::new("for ada").filter(Filter::new().eq("user", "ada"));
    /// broker.publish("inbox", private).await?;
    /// assert_eq!((ada.data().len(), bob.data().len()), (1, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = (!filter.is_empty()).then(|| Arc::new(filter));
        self
    }

    /// The event name, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Publication;
    ///
    /// assert_eq!(Publication::new("x").event("note").event_name(), Some("note"));
    /// assert_eq!(Publication::new("x").event_name(), None); // SSE: a `message` event
    /// ```
    pub fn event_name(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The data.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Publication;
    ///
    /// assert_eq!(Publication::new("hello").data(), "hello");
    /// ```
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Bytes the publication holds (what it costs in history).
    pub(crate) fn weight(&self) -> usize {
        self.data.len() + self.event.as_ref().map_or(0, |e| e.len()) + MESSAGE_OVERHEAD
    }
}

/// What a stored message costs beyond its text, counted against history
/// limits in bytes (the message, its `Arc`, the history slot).
const MESSAGE_OVERHEAD: usize = 160;

/// Identifies one run of a channel's log: a new epoch means offsets started
/// over, so a position of another epoch says nothing about this one.
///
/// Epochs are short lowercase alphanumeric strings; the in-memory backend
/// picks a fresh one for every channel log it creates (so every restart, and
/// every channel forgotten and created again), a distributed backend one per
/// data set.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rill::broker::{Broker, Publication};
///
/// let broker = Broker::new();
/// let a = broker.publish("news", Publication::new("a")).await?;
/// let b = broker.publish("news", Publication::new("b")).await?;
/// assert_eq!(a.epoch(), b.epoch()); // same log: offsets compare
/// assert!(a.offset() < b.offset());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// An epoch from its text; `None` unless it is 1 to 16 characters of
    /// `[0-9a-z]`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Epoch;
    ///
    /// assert_eq!(Epoch::parse("k3x9q2").map(|e| e.to_string()), Some("k3x9q2".to_owned()));
    /// assert!(Epoch::parse("K3X").is_none()); // lowercase only
    /// assert!(Epoch::parse("").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Epoch> {
        let valid = !text.is_empty()
            && text.len() <= 16
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        valid.then(|| Epoch(text.into()))
    }

    /// An epoch from a number, written in base 36.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Epoch;
    ///
    /// // E.g. a Redis stream's creation time, as a backend's epoch.
    /// assert_eq!(Epoch::from_number(36 * 36 + 1).as_str(), "101");
    /// assert_eq!(Epoch::from_number(0).as_str(), "0");
    /// ```
    pub fn from_number(mut n: u64) -> Epoch {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut buf = [0u8; 13];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = DIGITS[(n % 36) as usize];
            n /= 36;
            if n == 0 {
                break;
            }
        }
        // Only ASCII digits and letters were written.
        Epoch(String::from_utf8_lossy(&buf[i..]).into())
    }

    /// The epoch as text.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Epoch;
    ///
    /// let epoch = Epoch::from_number(35);
    /// assert_eq!(epoch.as_str(), "z");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({})", self.0)
    }
}

/// Where a message sits in its channel: the log's epoch and the message's
/// offset (1, 2, 3, … within the epoch).
///
/// Written as `<epoch>-<offset>` — the SSE `id:` of a single-channel
/// subscription. Within an epoch, offsets compare in publish order.
///
/// ```
/// use rill::broker::Position;
///
/// let p: Position = "k3x9q2-42".parse().unwrap();
/// assert_eq!(p.offset(), 42);
/// assert_eq!(p.to_string(), "k3x9q2-42");
/// assert!("42".parse::<Position>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Position {
    epoch: Epoch,
    offset: u64,
}

impl Position {
    /// The position of `offset` in `epoch`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Position};
    ///
    /// let position = Position::new(Epoch::from_number(36), 42);
    /// assert_eq!(position.to_string(), "10-42"); // the SSE `id:`
    /// ```
    pub fn new(epoch: Epoch, offset: u64) -> Self {
        Position { epoch, offset }
    }

    /// The epoch of the channel's log.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Position;
    ///
    /// let resumed: Position = "k3x9q2-42".parse()?;
    /// assert_eq!(resumed.epoch().as_str(), "k3x9q2");
    /// # Ok::<(), rill::broker::PositionError>(())
    /// ```
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// The offset within the epoch.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::Position;
    ///
    /// let resumed: Position = "k3x9q2-42".parse()?;
    /// assert_eq!(resumed.offset(), 42);
    /// # Ok::<(), rill::broker::PositionError>(())
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Moves this position to `to`, sharing the epoch it already holds when
    /// it is the same (no reference count touched: this runs once per
    /// delivery).
    pub(crate) fn advance_to(&mut self, to: &Position) {
        if !Arc::ptr_eq(&self.epoch.0, &to.epoch.0) && self.epoch != to.epoch {
            self.epoch = to.epoch.clone();
        }
        self.offset = to.offset;
    }
}

/// Moves `last` to `to` (see [`Position::advance_to`]).
pub(crate) fn advance(last: &mut Option<Position>, to: &Position) {
    match last {
        Some(last) => last.advance_to(to),
        None => *last = Some(to.clone()),
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.offset)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({self})")
    }
}

/// A position that is not `<epoch>-<offset>`.
///
/// # Example
///
/// ```
/// use rill::broker::{Position, PositionError};
///
/// // A `Last-Event-ID` is client input: handle the error, don't unwrap.
/// let last_event_id = "42";
/// assert_eq!(last_event_id.parse::<Position>(), Err(PositionError));
/// assert_eq!(PositionError.to_string(), "not a position (expected <epoch>-<offset>)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a position (expected <epoch>-<offset>)")]
pub struct PositionError;

impl std::str::FromStr for Position {
    type Err = PositionError;

    fn from_str(s: &str) -> Result<Self, PositionError> {
        let (epoch, offset) = s.rsplit_once('-').ok_or(PositionError)?;
        let epoch = Epoch::parse(epoch).ok_or(PositionError)?;
        let canonical = !offset.is_empty()
            && offset.bytes().all(|b| b.is_ascii_digit())
            && (offset == "0" || !offset.starts_with('0'));
        if !canonical {
            return Err(PositionError);
        }
        let offset = offset.parse().map_err(|_| PositionError)?;
        Ok(Position { epoch, offset })
    }
}

/// What a message is.
///
/// # Example
///
/// ```
/// use rill::broker::{Epoch, Message, MessageKind, Position, Publication};
///
/// let message = Message::new("news".into(), Position::new(Epoch::from_number(1), 1), Publication::new("hi"));
/// // A sink sends publications on and may show presence changes apart.
/// assert_eq!(message.kind(), MessageKind::Publication);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A publication, stored in history and delivered to every matching
    /// subscriber.
    Publication,
    /// A presence change (joins and leaves), delivered only to subscribers
    /// that asked for presence, never stored.
    Presence,
}

/// How a transport encodes messages; each encoding is made at most once per
/// message and shared by every subscriber of that transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// A whole SSE frame, with `id: <position>`.
    SseFrame = 0,
    /// An SSE frame's `event:` and `data:` lines without the id and the
    /// closing blank line (a subscriber adds its own cursor).
    SseFields = 1,
    /// A line of a named-event WebSocket stream: `{"event":…,"data":…}`,
    /// the data being JSON text already (`crate::events`).
    WsEvent = 2,
    /// A line of a WebSocket stream for a hub channel's message:
    /// `{"channel":…,"id":…,"event":…,"data":"…"}` (`crate::events`).
    WsChannel = 3,
    /// A state change as SSE: `event: <kind>`, `id: <epoch>.<rev>`, `data:`
    /// (`crate::state`).
    StateSse = 4,
}

const ENCODINGS: usize = 5;

/// How a transport encodes messages for a key of the subscriber's
/// (see [`Message::encoded_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyedEncoding {
    /// An ActionCable frame: `{"identifier":…,"message":…}`.
    Cable = 0,
    /// An ActionCable frame of the extended protocol, with `stream_id`,
    /// `epoch` and `offset`.
    CableExt = 1,
}

const KEYED_ENCODINGS: usize = 2;

/// A message as the broker delivers it: placed in its channel, immutable,
/// shared by every subscriber that receives it.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use rill::broker::{Delivery, Message, Metadata, Offer, Position, Sink};
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Default)]
/// # struct Recorder { got: Mutex<Vec<String>>, metadata: Metadata }
/// # impl Recorder {
/// #     fn with(metadata: Metadata) -> Self { Recorder { metadata, ..Default::default() } }
/// #     fn data(&self) -> Vec<String> { self.got.lock().expect("not poisoned").clone() }
/// # }
/// # impl Sink for Recorder {
/// #     fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
/// #         self.got.lock().expect("not poisoned").push(message.data().to_owned());
/// #         Offer::Queued
/// #     }
/// #     fn reset(&self, _: &str) -> Offer { Offer::Queued }
/// #     fn gap(&self, _: &str, _: u64) -> Offer { Offer::Queued }
/// #     fn position(&self, _: &str, _: &Position) {}
/// #     fn close(&self) {}
/// #     fn metadata(&self) -> &Metadata { &self.metadata }
/// # }
/// use rill::broker::{Broker, Publication, SubscribeOptions};
///
/// // A `Sink` receives `Arc<Message>`s: here, one that records the data.
/// let broker = Broker::new();
/// let recorder = Arc::new(Recorder::default());
/// let subscription = broker.subscribe(recorder.clone(), SubscribeOptions::default());
/// subscription.join("news", None)?;
/// broker.publish("news", Publication::new("hello")).await?;
/// assert_eq!(recorder.data(), ["hello"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Message {
    channel: Arc<str>,
    position: Position,
    kind: MessageKind,
    publication: Publication,
    /// When it reached this process (history age).
    pub(crate) received: Instant,
    encodings: [OnceLock<Bytes>; ENCODINGS],
    /// Encodings that depend on something of the subscriber too (an
    /// ActionCable frame names the subscription), kept for the first key
    /// asked for — the one every subscriber of a broadcast usually shares.
    keyed: [OnceLock<(Arc<str>, Bytes)>; KEYED_ENCODINGS],
}

impl Message {
    /// A message of `channel` at `position`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Message, Position, Publication};
    ///
    /// // A backend rebuilds what another process published, then delivers it.
    /// let position = Position::new(Epoch::from_number(7), 3);
    /// let message = Message::new("news".into(), position, Publication::new("hi").event("note"));
    /// assert_eq!(message.position().to_string(), "7-3");
    /// ```
    pub fn new(channel: Arc<str>, position: Position, publication: Publication) -> Self {
        Message::with_kind(channel, position, MessageKind::Publication, publication)
    }

    pub(crate) fn with_kind(
        channel: Arc<str>,
        position: Position,
        kind: MessageKind,
        publication: Publication,
    ) -> Self {
        Message {
            channel,
            position,
            kind,
            publication,
            received: Instant::now(),
            encodings: Default::default(),
            keyed: Default::default(),
        }
    }

    /// The channel it was published on.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Filter, Message, Position, Publication};
    ///
    /// let publication = Publication::new("hi").event("note").filter(Filter::new().eq("lang", "en"));
    /// let message = Message::new("news".into(), Position::new(Epoch::from_number(7), 3), publication);
    /// assert_eq!(message.channel(), "news");
    /// ```
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Where it sits in its channel.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Filter, Message, Position, Publication};
    ///
    /// let publication = Publication::new("hi").event("note").filter(Filter::new().eq("lang", "en"));
    /// let message = Message::new("news".into(), Position::new(Epoch::from_number(7), 3), publication);
    /// assert_eq!(message.position().offset(), 3);
    /// ```
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// A publication or a presence change.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Filter, Message, MessageKind, Position, Publication};
    ///
    /// let publication = Publication::new("hi").event("note").filter(Filter::new().eq("lang", "en"));
    /// let message = Message::new("news".into(), Position::new(Epoch::from_number(7), 3), publication);
    /// assert_eq!(message.kind(), MessageKind::Publication);
    /// ```
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The event name, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Filter, Message, Position, Publication};
    ///
    /// let publication = Publication::new("hi").event("note").filter(Filter::new().eq("lang", "en"));
    /// let message = Message::new("news".into(), Position::new(Epoch::from_number(7), 3), publication);
    /// assert_eq!(message.event_name(), Some("note"));
    /// ```
    pub fn event_name(&self) -> Option<&str> {
        self.publication.event_name()
    }

    /// The data.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Filter, Message, Position, Publication};
    ///
    /// let publication = Publication::new("hi").event("note").filter(Filter::new().eq("lang", "en"));
    /// let message = Message::new("news".into(), Position::new(Epoch::from_number(7), 3), publication);
    /// assert_eq!(message.data(), "hi");
    /// ```
    pub fn data(&self) -> &str {
        self.publication.data()
    }

    /// The filter subscribers' metadata must match, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::broker::{Epoch, Filter, Message, Position, Publication};
    ///
    /// let publication = Publication::new("hi").event("note").filter(Filter::new().eq("lang", "en"));
    /// let message = Message::new("news".into(), Position::new(Epoch::from_number(7), 3), publication);
    /// // A sink of another kind checks the filter itself:
    /// let metadata = [("lang".to_owned(), "fr".to_owned())];
    /// assert!(!message.filter().is_some_and(|f| f.matches(&metadata)));
    /// ```
    pub fn filter(&self) -> Option<&Filter> {
        self.publication.filter.as_deref()
    }

    /// Bytes the message holds (counted against history limits).
    pub(crate) fn weight(&self) -> usize {
        self.publication.weight() + self.channel.len()
    }

    /// This message in `encoding`, made by `encode` the first time it is
    /// asked for, then shared.
    pub(crate) fn encoded(
        &self,
        encoding: Encoding,
        encode: impl FnOnce(&Message) -> Bytes,
    ) -> &Bytes {
        self.encodings[encoding as usize].get_or_init(|| encode(self))
    }

    /// This message in `encoding` for `key`: the encoding made for the
    /// first key asked for is kept and shared by every subscriber with an
    /// equal key; another key gets an encoding of its own, made by
    /// `encode` each time.
    pub(crate) fn encoded_for(
        &self,
        encoding: KeyedEncoding,
        key: &Arc<str>,
        encode: impl Fn(&Message) -> Bytes,
    ) -> Bytes {
        let (first, bytes) =
            self.keyed[encoding as usize].get_or_init(|| (key.clone(), encode(self)));
        if Arc::ptr_eq(first, key) || **first == **key {
            bytes.clone()
        } else {
            encode(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_refuse_what_is_not_canonical() {
        let p = Position::new(Epoch::from_number(36 * 36 + 1), 7);
        assert_eq!(p.to_string(), "101-7");
        assert_eq!("101-7".parse::<Position>(), Ok(p));
        for bad in [
            "",
            "7",
            "-7",
            "a-",
            "a-07",
            "a-+7",
            "A-7",
            "a b-1",
            "a-1-",
            "aaaaaaaaaaaaaaaaa-1",
        ] {
            assert!(bad.parse::<Position>().is_err(), "{bad:?}");
        }
        assert_eq!(Epoch::from_number(0).as_str(), "0");
        assert_eq!(Epoch::from_number(u64::MAX).as_str(), "3w5e11264sgsf");
    }
}
