//! The named-event stream's wire format: JSON objects, one per line, in
//! WebSocket text messages (see the module doc of [`crate::events`]).
//!
//! Every line this side writes is compact JSON (serde_json never writes a
//! raw line break in compact form), so a `\n` always ends a message and a
//! frame may carry several.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use crate::broker::{Message, MessageKind, Position};

/// The longest event name a client may send, in bytes.
///
/// # Example
///
/// ```
/// use rill::events::{EventStream, MAX_EVENT_NAME};
///
/// assert_eq!(MAX_EVENT_NAME, 256);
/// let name = "order:filled";
/// assert!(name.len() <= MAX_EVENT_NAME); // a longer name from a client is refused
/// let stream = EventStream::new();
/// stream.on(name, |_conn, _data| async { Ok(()) });
/// ```
pub const MAX_EVENT_NAME: usize = 256;

/// The longest state key a client may watch (`stream/group/item`).
pub(crate) const MAX_STATE_KEY: usize = 800;

/// What a client sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientMessage {
    /// A named event for the server's handlers.
    Event { name: String, data: Option<Value> },
    /// Join a hub channel, after `since` (a position, or `"0"` for the
    /// whole history) when given.
    Subscribe {
        channel: String,
        since: Option<String>,
        presence: bool,
    },
    /// Leave a hub channel.
    Unsubscribe { channel: String },
    /// Watch a state group or item (`"<stream>/<group>[/<item>]"`), after
    /// a revision when given.
    Watch { key: String, since: Option<String> },
    /// Stop watching.
    Unwatch { key: String },
}

/// Why a client's line was not understood; the client is told, and the
/// connection goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// The line is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The line is JSON but not an object.
    #[error("a message is a JSON object")]
    NotAnObject,
    /// The object has none of `event`, `subscribe`, `unsubscribe`,
    /// `watch`, `unwatch`.
    #[error("a message has \"event\", \"subscribe\", \"unsubscribe\", \"watch\" or \"unwatch\"")]
    Unknown,
    /// A field has the wrong type or size.
    #[error("\"{field}\" must be {expected}")]
    BadField {
        field: &'static str,
        expected: &'static str,
    },
}

/// The messages of one text frame: one per non-empty line.
pub(crate) fn parse_frame(
    text: &str,
) -> impl Iterator<Item = Result<ClientMessage, WireError>> + '_ {
    text.split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
        .map(parse_line)
}

fn parse_line(line: &str) -> Result<ClientMessage, WireError> {
    let value: Value =
        serde_json::from_str(line).map_err(|error| WireError::NotJson(error.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(WireError::NotAnObject);
    };
    if let Some(name) = object.remove("event") {
        let name = string_field(name, "event", MAX_EVENT_NAME)?;
        let data = object.remove("data").filter(|d| !d.is_null());
        return Ok(ClientMessage::Event { name, data });
    }
    if let Some(channel) = object.remove("subscribe") {
        let channel = string_field(channel, "subscribe", crate::broker::MAX_CHANNEL_NAME)?;
        let since = match object.remove("since") {
            None | Some(Value::Null) => None,
            Some(since) => Some(string_field(since, "since", 64)?),
        };
        let presence = match object.remove("presence") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(WireError::BadField {
                    field: "presence",
                    expected: "a boolean",
                })
            }
        };
        return Ok(ClientMessage::Subscribe {
            channel,
            since,
            presence,
        });
    }
    if let Some(channel) = object.remove("unsubscribe") {
        let channel = string_field(channel, "unsubscribe", crate::broker::MAX_CHANNEL_NAME)?;
        return Ok(ClientMessage::Unsubscribe { channel });
    }
    if let Some(key) = object.remove("watch") {
        let key = string_field(key, "watch", MAX_STATE_KEY)?;
        let since = match object.remove("since") {
            None | Some(Value::Null) => None,
            Some(since) => Some(string_field(since, "since", 64)?),
        };
        return Ok(ClientMessage::Watch { key, since });
    }
    if let Some(key) = object.remove("unwatch") {
        let key = string_field(key, "unwatch", MAX_STATE_KEY)?;
        return Ok(ClientMessage::Unwatch { key });
    }
    Err(WireError::Unknown)
}

fn string_field(value: Value, field: &'static str, max: usize) -> Result<String, WireError> {
    match value {
        Value::String(s) if !s.is_empty() && s.len() <= max => Ok(s),
        _ => Err(WireError::BadField {
            field,
            expected: "a non-empty string of limited length",
        }),
    }
}

/// `{"event":<name>,"data":<data>}\n`; `data` is JSON text, left out when
/// `None`.
pub(crate) fn event_line(name: &str, data: Option<&str>) -> Bytes {
    let mut out = BytesMut::with_capacity(24 + name.len() + data.map_or(0, str::len));
    out.put_slice(b"{\"event\":");
    put_string(&mut out, name);
    if let Some(data) = data {
        out.put_slice(b",\"data\":");
        out.put_slice(data.as_bytes());
    }
    out.put_slice(b"}\n");
    out.freeze()
}

/// A message of the stream's broadcast channel as an event line: its name
/// (`message` when it has none) and its data, JSON text already (empty
/// when absent).
pub(crate) fn broadcast_line(message: &Message) -> Bytes {
    let data = message.data();
    event_line(
        message.event_name().unwrap_or("message"),
        (!data.is_empty()).then_some(data),
    )
}

/// A hub channel's message:
/// `{"channel":…,"id":"<epoch>-<offset>","event":…,"data":"…"}\n` for a
/// publication (the data as a JSON string, as SSE clients get it), and
/// `{"channel":…,"presence":{…}}\n` for a presence change.
pub(crate) fn channel_line(message: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + message.channel().len() + message.data().len());
    out.put_slice(b"{\"channel\":");
    put_string(&mut out, message.channel());
    match message.kind() {
        MessageKind::Publication => {
            out.put_slice(b",\"id\":\"");
            put_position(&mut out, message.position());
            out.put_u8(b'"');
            if let Some(name) = message.event_name() {
                out.put_slice(b",\"event\":");
                put_string(&mut out, name);
            }
            out.put_slice(b",\"data\":");
            put_string(&mut out, message.data());
        }
        MessageKind::Presence => {
            // The broker writes presence data as a JSON object.
            out.put_slice(b",\"presence\":");
            out.put_slice(message.data().as_bytes());
        }
    }
    out.put_slice(b"}\n");
    out.freeze()
}

/// A notice about a hub channel: `{"channel":…,"<field>":<value>}\n`, the
/// value being JSON text.
pub(crate) fn channel_notice(channel: &str, field: &str, value: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(24 + channel.len() + field.len() + value.len());
    out.put_slice(b"{\"channel\":");
    put_string(&mut out, channel);
    out.put_u8(b',');
    put_string(&mut out, field);
    out.put_u8(b':');
    out.put_slice(value.as_bytes());
    out.put_slice(b"}\n");
    out.freeze()
}

/// Where a channel stands: `{"channel":…,"position":"<epoch>-<offset>"}`.
pub(crate) fn position_notice(channel: &str, position: &Position) -> Bytes {
    channel_notice(channel, "position", &json_string(&position.to_string()))
}

/// A refusal or a misunderstanding: `{"error":"…"}` or, about a channel,
/// `{"channel":…,"error":"…"}`.
pub(crate) fn error_line(channel: Option<&str>, error: &str) -> Bytes {
    match channel {
        Some(channel) => channel_notice(channel, "error", &json_string(error)),
        None => {
            let mut out = BytesMut::with_capacity(16 + error.len());
            out.put_slice(b"{\"error\":");
            put_string(&mut out, error);
            out.put_slice(b"}\n");
            out.freeze()
        }
    }
}

/// `{"gap":<n>}`: `n` events of the stream did not fit the connection's
/// queue and were dropped.
/// A state watcher's event for the watch `key`: `{"state":key,"sync":
/// {items},"rev":…,"ts":…}`, `{"state":key,"change":{…},"rev":…}` or
/// `{"state":key,"reset":true}`.
pub(crate) fn state_line(key: &str, event: &crate::state::WatchEvent) -> Bytes {
    use crate::state::WatchEvent;
    let mut out = String::from(r#"{"state":"#);
    out.push_str(&json_string(key));
    match event {
        WatchEvent::Sync(snapshot) => {
            out.push_str(r#","sync":"#);
            out.push_str(&serde_json::to_string(&snapshot.items).unwrap_or_else(|_| "{}".into()));
            out.push_str(r#","rev":"#);
            out.push_str(&json_string(&snapshot.rev.to_string()));
            out.push_str(r#","ts":"#);
            out.push_str(&snapshot.timestamp.to_string());
        }
        WatchEvent::Change(delta) => {
            out.push_str(r#","change":"#);
            out.push_str(delta.json());
            out.push_str(r#","rev":"#);
            out.push_str(&json_string(&delta.rev().to_string()));
        }
        WatchEvent::Reset => out.push_str(r#","reset":true"#),
    }
    out.push_str("}\n");
    Bytes::from(out)
}

/// `{"state":key,"error":…}`: a watch refused.
pub(crate) fn state_error(key: &str, error: &str) -> Bytes {
    Bytes::from(format!(
        "{{\"state\":{},\"error\":{}}}\n",
        json_string(key),
        json_string(error)
    ))
}

pub(crate) fn gap_line(dropped: u64) -> Bytes {
    Bytes::from(format!("{{\"gap\":{dropped}}}\n"))
}

/// `text` as a JSON string literal.
pub(crate) fn json_string(text: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

fn put_string(out: &mut BytesMut, text: &str) {
    let plain = text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f);
    if plain {
        out.reserve(text.len() + 2);
        out.put_u8(b'"');
        out.put_slice(text.as_bytes());
        out.put_u8(b'"');
    } else {
        out.put_slice(json_string(text).as_bytes());
    }
}

fn put_position(out: &mut BytesMut, position: &Position) {
    out.put_slice(position.epoch().as_str().as_bytes());
    out.put_u8(b'-');
    out.put_slice(itoa::Buffer::new().format(position.offset()).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Epoch, Publication};
    use std::sync::Arc;

    #[test]
    fn lines_are_json_with_one_line_break() {
        let line = event_line("tick", Some(r#"{"seq":1}"#));
        assert_eq!(line, "{\"event\":\"tick\",\"data\":{\"seq\":1}}\n");
        assert_eq!(event_line("done", None), "{\"event\":\"done\"}\n");
        let odd = event_line("a\"b\n", None);
        assert_eq!(odd, "{\"event\":\"a\\\"b\\n\"}\n");

        let position = Position::new(Epoch::from_number(35), 7);
        let message = Message::new(
            Arc::from("prices"),
            position,
            Publication::new("line 1\nline \"2\"").event("quote"),
        );
        let line = channel_line(&message);
        assert_eq!(
            line,
            "{\"channel\":\"prices\",\"id\":\"z-7\",\"event\":\"quote\",\"data\":\"line 1\\nline \\\"2\\\"\"}\n"
        );
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed["data"], "line 1\nline \"2\"");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn client_messages_parse_and_bad_ones_are_typed() {
        let frame = "{\"event\":\"order\",\"data\":{\"qty\":1}}\n{\"subscribe\":\"prices\",\"since\":\"z-7\"}\n\n{\"unsubscribe\":\"prices\"}\n{\"event\":\"ping\",\"data\":null}";
        let parsed: Vec<_> = parse_frame(frame).collect();
        assert_eq!(
            parsed,
            vec![
                Ok(ClientMessage::Event {
                    name: "order".into(),
                    data: Some(serde_json::json!({"qty": 1}))
                }),
                Ok(ClientMessage::Subscribe {
                    channel: "prices".into(),
                    since: Some("z-7".into()),
                    presence: false
                }),
                Ok(ClientMessage::Unsubscribe {
                    channel: "prices".into()
                }),
                Ok(ClientMessage::Event {
                    name: "ping".into(),
                    data: None
                }),
            ]
        );
        let long = format!("{{\"event\":\"{}\"}}", "x".repeat(MAX_EVENT_NAME + 1));
        for (line, error) in [
            ("nope", "not JSON"),
            ("[1]", "object"),
            ("{\"other\":1}", "has"),
            ("{\"event\":7}", "\"event\""),
            ("{\"event\":\"\"}", "\"event\""),
            (long.as_str(), "\"event\""),
            ("{\"subscribe\":\"a\",\"presence\":1}", "\"presence\""),
        ] {
            let result = parse_line(line);
            let message = result.as_ref().map_err(ToString::to_string).unwrap_err();
            assert!(message.contains(error), "{line}: {message}");
        }
        // Deep nesting is refused by the parser's recursion limit, not the
        // stack.
        let deep = format!("{{\"event\":\"x\",\"data\":{}}}", "[".repeat(100_000));
        assert!(matches!(parse_line(&deep), Err(WireError::NotJson(_))));
    }
}
