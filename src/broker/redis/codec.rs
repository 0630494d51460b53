//! How a publication travels through Redis: a compact JSON body that Lua
//! never decodes, and the pub/sub payloads around it.
//!
//! * body: `{"d": data, "e": event?, "f": [[name, value], …]?, "t": ms}`,
//!   `t` the publication's time (ms since the Unix epoch), so that a message
//!   read back from the history keeps its age (ActionCable's time-based
//!   `since`);
//! * a publication: `m <epoch> <offset> <body>` (written by the publish
//!   script, so epoch and offset are the ones Redis assigned);
//! * an ephemeral message (a presence change): `p <body>`.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::broker::{
    message::{Epoch, Message, MessageKind, Position, Publication},
    Filter,
};

#[derive(Serialize, Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    d: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    e: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    f: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<u64>,
}

/// The body of a publication.
pub(super) fn encode(publication: &Publication) -> String {
    let body = Body {
        d: publication.data().into(),
        e: publication.event_name().map(Into::into),
        f: publication
            .filter
            .as_deref()
            .map(|filter| filter.pairs().to_vec())
            .unwrap_or_default(),
        t: Some(unix_ms()),
    };
    // Strings and pairs of strings always serialize.
    serde_json::to_string(&body).unwrap_or_default()
}

/// A publication back from its body; `None` when the bytes are not one.
pub(super) fn decode(body: &[u8]) -> Option<Publication> {
    decode_timed(body).map(|(publication, _)| publication)
}

/// A message of `channel` at `position` from its body, dated when it was
/// published (not when it was read).
pub(super) fn message(channel: &str, position: Position, body: &[u8]) -> Option<Message> {
    let (publication, published) = decode_timed(body)?;
    let mut message = Message::new(channel.into(), position, publication);
    if let Some(published) = published {
        let age = Duration::from_millis(unix_ms().saturating_sub(published));
        message.received = Instant::now().checked_sub(age).unwrap_or(message.received);
    }
    Some(message)
}

fn decode_timed(body: &[u8]) -> Option<(Publication, Option<u64>)> {
    let body: Body<'_> = serde_json::from_slice(body).ok()?;
    let published = body.t;
    let mut publication = Publication::new(body.d.into_owned());
    if let Some(event) = body.e {
        publication = publication.event(event.into_owned());
    }
    if !body.f.is_empty() {
        let filter = body
            .f
            .into_iter()
            .fold(Filter::new(), |filter, (name, value)| {
                filter.eq(name, value)
            });
        publication = publication.filter(filter);
    }
    Some((publication, published))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A pub/sub payload, read.
#[derive(Debug)]
pub(super) enum Payload {
    /// A publication at its position.
    Publication(Arc<Message>),
    /// A presence change, with no place in the channel's order.
    Ephemeral(Arc<Message>),
}

/// Reads what arrived on `channel`'s pub/sub channel; `None` for bytes that
/// are not a payload of ours.
pub(super) fn payload(channel: &str, bytes: &[u8]) -> Option<Payload> {
    let (kind, rest) = split(bytes)?;
    match kind {
        b"m" => {
            let (epoch, rest) = split(rest)?;
            let (offset, body) = split(rest)?;
            let epoch = Epoch::parse(std::str::from_utf8(epoch).ok()?)?;
            let offset = std::str::from_utf8(offset).ok()?.parse().ok()?;
            let message = message(channel, Position::new(epoch, offset), body)?;
            Some(Payload::Publication(Arc::new(message)))
        }
        b"p" => {
            let message = Message::with_kind(
                channel.into(),
                Position::new(Epoch::from_number(0), 0),
                MessageKind::Presence,
                decode(rest)?,
            );
            Some(Payload::Ephemeral(Arc::new(message)))
        }
        _ => None,
    }
}

/// The ephemeral payload of `message`.
pub(super) fn ephemeral(message: &Message) -> String {
    let mut publication = Publication::new(message.data());
    if let Some(event) = message.event_name() {
        publication = publication.event(event);
    }
    format!("p {}", encode(&publication))
}

fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = memchr::memchr(b' ', bytes)?;
    Some((&bytes[..space], &bytes[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publication_survives_the_trip() {
        let publication = Publication::new("hé \"quoted\"\nline")
            .event("update")
            .filter(Filter::new().eq("user", "ann"));
        let body = encode(&publication);
        assert_eq!(decode(body.as_bytes()), Some(publication.clone()));
        let wire = format!("m 1abc 42 {body}");
        match payload("ch", wire.as_bytes()) {
            Some(Payload::Publication(message)) => {
                assert_eq!(message.position().to_string(), "1abc-42");
                assert_eq!(message.data(), publication.data());
                assert_eq!(message.event_name(), Some("update"));
                assert_eq!(message.channel(), "ch");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_message_read_back_keeps_its_age() {
        let ten_seconds_ago = unix_ms() - 10_000;
        let body = format!(r#"{{"d":"x","t":{ten_seconds_ago}}}"#);
        let position = Position::new(Epoch::from_number(7), 1);
        let message = message("ch", position, body.as_bytes()).expect("a message");
        let age = message.received.elapsed();
        assert!(
            age >= Duration::from_secs(9) && age < Duration::from_secs(60),
            "{age:?}"
        );
        // Bodies without a time (older writers) are dated now.
        let message = message_now();
        assert!(message.received.elapsed() < Duration::from_secs(5));
    }

    fn message_now() -> Message {
        message(
            "ch",
            Position::new(Epoch::from_number(7), 1),
            br#"{"d":"x"}"#,
        )
        .expect("a message")
    }

    #[test]
    fn garbage_is_refused() {
        for wire in [
            "",
            "m",
            "m 1 2",
            "m 1 x {}",
            "m BAD 1 {\"d\":\"x\"}",
            "x 1 2 {}",
            "m 1 2 [1]",
        ] {
            assert!(payload("ch", wire.as_bytes()).is_none(), "{wire:?}");
        }
    }
}
