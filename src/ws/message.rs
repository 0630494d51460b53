//! [`WsMessage`]: one WebSocket message, and `Outgoing`, what a handler asks
//! of the driver.

use bytes::Bytes;

/// One WebSocket message: text (UTF-8, checked) or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    text: bool,
    payload: Bytes,
}

impl WsMessage {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        WsMessage {
            text: true,
            payload: Bytes::from(text.into()),
        }
    }

    /// A text message of bytes that are UTF-8 (shared, not copied: one
    /// payload for many sockets). `None` when they are not UTF-8.
    pub fn text_bytes(payload: Bytes) -> Option<Self> {
        std::str::from_utf8(&payload).ok()?;
        Some(WsMessage {
            text: true,
            payload,
        })
    }

    /// A message as the frame codec gave it (text already checked as UTF-8).
    pub(crate) fn from_codec(text: bool, payload: Bytes) -> Self {
        WsMessage { text, payload }
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        WsMessage {
            text: false,
            payload: payload.into(),
        }
    }

    /// Whether it is a text message.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        // Text payloads are checked when made (or by the frame codec).
        self.text
            .then(|| std::str::from_utf8(&self.payload).ok())
            .flatten()
    }

    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The payload.
    pub fn into_bytes(self) -> Bytes {
        self.payload
    }

    pub(crate) fn into_frame(self) -> tokio_websockets::Message {
        let payload = tokio_websockets::Payload::from(self.payload);
        if self.text {
            tokio_websockets::Message::text(payload)
        } else {
            tokio_websockets::Message::binary(payload)
        }
    }
}

impl From<&str> for WsMessage {
    fn from(text: &str) -> Self {
        WsMessage::text(text)
    }
}

impl From<String> for WsMessage {
    fn from(text: String) -> Self {
        WsMessage::text(text)
    }
}

impl From<Bytes> for WsMessage {
    fn from(payload: Bytes) -> Self {
        WsMessage::binary(payload)
    }
}

/// What a handler asks of the driver.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Message(WsMessage),
    Close { code: u16, reason: String },
}
