//! [`WsMessage`]: one WebSocket message, and `Outgoing`, what a handler asks
//! of the driver.

use bytes::Bytes;

/// One WebSocket message: text (UTF-8, checked) or binary.
///
/// # Example
///
/// ```
/// use rill::ws::WsMessage;
///
/// // What `socket.recv()` yields and `socket.send(…)` takes:
/// fn reply_to(message: &WsMessage) -> WsMessage {
///     match message.as_text() {
///         Some(text) => WsMessage::text(text.to_uppercase()),
///         None => WsMessage::binary(message.as_bytes().len().to_string().into_bytes()),
///     }
/// }
/// assert_eq!(reply_to(&"hi".into()), WsMessage::text("HI"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    text: bool,
    payload: Bytes,
}

impl WsMessage {
    /// A text message.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsMessage;
    ///
    /// let message = WsMessage::text(r#"{"type":"ping"}"#);
    /// assert!(message.is_text());
    /// assert_eq!(message.as_text(), Some(r#"{"type":"ping"}"#));
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        WsMessage {
            text: true,
            payload: Bytes::from(text.into()),
        }
    }

    /// A text message of bytes that are UTF-8 (shared, not copied: one
    /// payload for many sockets). `None` when they are not UTF-8.
    ///
    /// # Example
    ///
    /// ```
    /// use bytes::Bytes;
    /// use rill::ws::WsMessage;
    ///
    /// // Encode once, send the same bytes to every socket of a room.
    /// let shared = Bytes::from(r#"{"room":"lobby","text":"hi"}"#);
    /// let message = WsMessage::text_bytes(shared.clone()).expect("JSON text is UTF-8");
    /// assert_eq!(message.as_bytes(), &shared[..]);
    /// assert!(WsMessage::text_bytes(Bytes::from_static(&[0xff])).is_none());
    /// ```
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
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsMessage;
    ///
    /// let frame = WsMessage::binary(vec![0x01, 0x00, 0x2a]); // a protobuf, a game tick
    /// assert!(!frame.is_text());
    /// assert_eq!(frame.as_text(), None);
    /// ```
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        WsMessage {
            text: false,
            payload: payload.into(),
        }
    }

    /// Whether it is a text message.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsMessage;
    ///
    /// assert!(WsMessage::text("hi").is_text());
    /// assert!(!WsMessage::binary(&b"hi"[..]).is_text());
    /// ```
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// The text, for a text message.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsMessage;
    ///
    /// let incoming = WsMessage::text("subscribe:news");
    /// if let Some(command) = incoming.as_text().and_then(|t| t.strip_prefix("subscribe:")) {
    ///     assert_eq!(command, "news");
    /// }
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        // Text payloads are checked when made (or by the frame codec).
        self.text
            .then(|| std::str::from_utf8(&self.payload).ok())
            .flatten()
    }

    /// The payload's bytes.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsMessage;
    ///
    /// // Both kinds have bytes: hash or size them alike.
    /// assert_eq!(WsMessage::text("héllo").as_bytes().len(), 6);
    /// assert_eq!(WsMessage::binary(vec![1, 2, 3]).as_bytes(), [1, 2, 3]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The payload.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::ws::WsMessage;
    ///
    /// let upload = WsMessage::binary(vec![0xCA, 0xFE]);
    /// let bytes: bytes::Bytes = upload.into_bytes(); // no copy
    /// assert_eq!(&bytes[..], [0xCA, 0xFE]);
    /// ```
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
