//! The ActionCable wire protocol, as `@rails/actioncable` 8.1 and
//! `@anycable/web` 1.1 speak it: what a client sends ([`Command`], read by
//! [`parse_command`]) and what a server answers (the encoding functions).
//!
//! Every message is one WebSocket text message holding one JSON object.
//!
//! * An identifier is a JSON *string* (the client's `JSON.stringify` of the
//!   subscription's params) that clients match replies against by string
//!   equality. [`Identifier`] keeps the token exactly as it arrived and
//!   replies carry it unchanged: it is never re-serialized.
//! * A broadcast is delivered as it was given: [`message`] takes JSON text
//!   and writes it as the `message` value, so an object stays an object and
//!   a string stays a string, even one whose text looks like JSON.
//! * Every `disconnect` carries an explicit boolean `reconnect` (the Rails
//!   client reads a missing one as `false` and stops reconnecting).
//!
//! ```
//! use rill::cable::protocol::{self, Command, DisconnectReason};
//!
//! let text = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","data":"{\"action\":\"away\"}"}"#;
//! let Ok(Command::Message { identifier, data }) = protocol::parse_command(text) else {
//!     panic!("a message command");
//! };
//! assert_eq!(identifier.channel(), "ChatChannel");
//! assert_eq!(identifier.params()["room"], "1");
//! assert_eq!(data.action(), Some("away"));
//! assert_eq!(
//!     protocol::confirm_subscription(&identifier),
//!     r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","type":"confirm_subscription"}"#
//! );
//! assert_eq!(
//!     protocol::disconnect(DisconnectReason::Unauthorized, false),
//!     r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#
//! );
//! ```

use serde_json::{value::RawValue, Map, Value};
use std::collections::HashMap;

/// The subprotocol of `@rails/actioncable` (and `@anycable/web` by default).
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{Protocol, PROTOCOL_JSON};
///
/// assert_eq!(PROTOCOL_JSON, "actioncable-v1-json");
/// assert_eq!(Protocol::from_name(PROTOCOL_JSON), Some(Protocol::Json));
/// ```
pub const PROTOCOL_JSON: &str = "actioncable-v1-json";
/// AnyCable's extended protocol: sessions that survive a reconnect, stream
/// positions on broadcasts, history on demand.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{Protocol, PROTOCOL_EXT_JSON};
///
/// // What `createCable({protocol: "actioncable-v1-ext-json"})` offers.
/// assert_eq!(Protocol::from_name(PROTOCOL_EXT_JSON), Some(Protocol::ExtJson));
/// ```
pub const PROTOCOL_EXT_JSON: &str = "actioncable-v1-ext-json";

/// Which protocol a connection speaks.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::Protocol;
///
/// // The Rails client offers two subprotocols; the cable picks the first it speaks.
/// let offered = ["actioncable-v1-json", "actioncable-unsupported"];
/// let chosen = offered.iter().find_map(|name| Protocol::from_name(name));
/// assert_eq!(chosen, Some(Protocol::Json));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `actioncable-v1-json`.
    Json,
    /// `actioncable-v1-ext-json`.
    ExtJson,
}

impl Protocol {
    /// The protocol of a subprotocol name; `None` for any other name (the
    /// Rails client also offers `actioncable-unsupported`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::Protocol;
    ///
    /// assert_eq!(Protocol::from_name("actioncable-v1-ext-json"), Some(Protocol::ExtJson));
    /// assert_eq!(Protocol::from_name("actioncable-unsupported"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            PROTOCOL_JSON => Some(Protocol::Json),
            PROTOCOL_EXT_JSON => Some(Protocol::ExtJson),
            _ => None,
        }
    }

    /// Its subprotocol name.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::Protocol;
    ///
    /// assert_eq!(Protocol::Json.name(), "actioncable-v1-json");
    /// assert_eq!(Protocol::ExtJson.name(), "actioncable-v1-ext-json");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Json => PROTOCOL_JSON,
            Protocol::ExtJson => PROTOCOL_EXT_JSON,
        }
    }
}

/// A subscription's identifier: the JSON string token as the client sent
/// it, and the params it encodes (a JSON object with a `channel`).
///
/// # Example
///
/// ```
/// use rill::cable::protocol::Identifier;
///
/// // Two spellings of the same params are two subscriptions to the client.
/// let a = Identifier::from_token(r#""{\"channel\":\"ChatChannel\",\"room\":1}""#)?;
/// let b = Identifier::from_token(r#""{\"room\":1,\"channel\":\"ChatChannel\"}""#)?;
/// assert_eq!(a.params(), b.params());
/// assert_ne!(a, b);
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Identifier {
    /// The token, quotes and escapes included, as received.
    raw: Box<str>,
    /// The decoded string: what clients compare.
    text: String,
    params: Map<String, Value>,
}

impl Identifier {
    /// Reads an identifier from its JSON token (a JSON string whose content
    /// is a JSON object with a string `channel`).
    ///
    /// # Errors
    ///
    /// [`CommandError::BadIdentifier`] saying what is wrong.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::{CommandError, Identifier};
    ///
    /// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\",\"room\":\"1\"}""#)?;
    /// assert_eq!(id.channel(), "ChatChannel");
    /// // A bare object is not a token: clients send a JSON string.
    /// let error = Identifier::from_token(r#"{"channel":"ChatChannel"}"#).unwrap_err();
    /// assert!(matches!(error, CommandError::BadIdentifier { .. }));
    /// # Ok::<(), CommandError>(())
    /// ```
    pub fn from_token(token: &str) -> Result<Identifier, CommandError> {
        let bad = |reason: &str| CommandError::BadIdentifier {
            reason: reason.to_owned(),
        };
        let text: String =
            serde_json::from_str(token).map_err(|_| bad("the identifier is not a JSON string"))?;
        let params: Map<String, Value> = serde_json::from_str(&text)
            .map_err(|_| bad("the identifier does not encode a JSON object"))?;
        match params.get("channel") {
            Some(Value::String(channel)) if !channel.is_empty() => {}
            _ => return Err(bad("the identifier has no channel name")),
        }
        Ok(Identifier {
            raw: token.trim().into(),
            text,
            params,
        })
    }

    /// The identifier for `params` (an object with a `channel`), written as
    /// compact JSON with its keys sorted (as AnyCable's client writes it):
    /// for tests and server-side subscriptions.
    ///
    /// # Errors
    ///
    /// As for [`from_token`](Self::from_token).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::{self, Identifier};
    /// use serde_json::json;
    ///
    /// let id = Identifier::from_params(&json!({"room": "1", "channel": "ChatChannel"}))?;
    /// assert_eq!(id.as_str(), r#"{"channel":"ChatChannel","room":"1"}"#);
    /// assert!(protocol::confirm_subscription(&id).contains("confirm_subscription"));
    /// # Ok::<(), rill::cable::protocol::CommandError>(())
    /// ```
    pub fn from_params(params: &Value) -> Result<Identifier, CommandError> {
        let text = params.to_string();
        Identifier::from_token(&Value::String(text).to_string())
    }

    /// The channel's name (`"ChatChannel"`).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::Identifier;
    /// use serde_json::json;
    ///
    /// let id = Identifier::from_params(&json!({"channel": "Admin::StatsChannel"}))?;
    /// assert_eq!(id.channel(), "Admin::StatsChannel");
    /// # Ok::<(), rill::cable::protocol::CommandError>(())
    /// ```
    pub fn channel(&self) -> &str {
        self.params
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The subscription's params, `channel` included.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::Identifier;
    /// use serde_json::json;
    ///
    /// let id = Identifier::from_params(&json!({"channel": "ChatChannel", "room": 7}))?;
    /// assert_eq!(id.params()["room"], 7);
    /// assert_eq!(id.params()["channel"], "ChatChannel");
    /// # Ok::<(), rill::cable::protocol::CommandError>(())
    /// ```
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// The decoded identifier string, which clients compare.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::Identifier;
    ///
    /// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\"}""#)?;
    /// assert_eq!(id.as_str(), r#"{"channel":"ChatChannel"}"#); // what the client's JSON.stringify made
    /// # Ok::<(), rill::cable::protocol::CommandError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The JSON token exactly as received, for replies.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::Identifier;
    ///
    /// // An escape the client chose is kept as it is in replies.
    /// let token = r#""{\"channel\":\"ChatChannel\",\"room\":\"caf\u00e9\"}""#;
    /// let id = Identifier::from_token(token)?;
    /// assert_eq!(id.token(), token);
    /// assert_eq!(id.params()["room"], "café");
    /// # Ok::<(), rill::cable::protocol::CommandError>(())
    /// ```
    pub fn token(&self) -> &str {
        &self.raw
    }
}

impl PartialEq for Identifier {
    /// Identifiers are equal when clients would take them for the same.
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Identifier {}

impl std::hash::Hash for Identifier {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// The data of a `message` command: a JSON object, its `action` naming the
/// channel action to run (`receive` when absent).
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{parse_command, Command};
///
/// let text = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}","data":"{\"message\":\"hi\"}"}"#;
/// let Ok(Command::Message { data, .. }) = parse_command(text) else { panic!() };
/// assert_eq!(data.action(), None); // no action: the channel's `receive`
/// assert_eq!(data.data()["message"], "hi");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ActionData {
    data: Map<String, Value>,
}

impl ActionData {
    /// The action asked for; `None` means `receive`.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::{parse_command, Command};
    ///
    /// // subscription.perform("speak", {message: "hi"})
    /// let text = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}","data":"{\"action\":\"speak\",\"message\":\"hi\"}"}"#;
    /// let Ok(Command::Message { data, .. }) = parse_command(text) else { panic!() };
    /// assert_eq!(data.action(), Some("speak"));
    /// ```
    pub fn action(&self) -> Option<&str> {
        self.data
            .get("action")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
    }

    /// The whole object, `action` included (as Rails passes it).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::{parse_command, Command};
    ///
    /// let text = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}","data":"{\"action\":\"speak\",\"message\":\"hi\"}"}"#;
    /// let Ok(Command::Message { data, .. }) = parse_command(text) else { panic!() };
    /// assert_eq!(data.data()["message"], "hi");
    /// assert_eq!(data.data()["action"], "speak"); // kept, as in Rails
    /// ```
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// The object, `action` included.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::{parse_command, Command};
    ///
    /// let text = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}","data":"{\"message\":\"hi\"}"}"#;
    /// let Ok(Command::Message { data, .. }) = parse_command(text) else { panic!() };
    /// let mut map = data.into_data();
    /// assert_eq!(map.remove("message"), Some("hi".into()));
    /// ```
    pub fn into_data(self) -> Map<String, Value> {
        self.data
    }
}

/// Where a client stands on one stream (extended protocol).
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{parse_command, Command, StreamPosition};
///
/// let text = r#"{"command":"history","identifier":"{\"channel\":\"ChatChannel\"}","history":{"streams":{"chat_1":{"epoch":"k2","offset":41}}}}"#;
/// let Ok(Command::History { history, .. }) = parse_command(text) else { panic!() };
/// assert_eq!(history.streams[0].1, StreamPosition { epoch: "k2".into(), offset: 41 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    /// The stream's epoch, as the server gave it.
    pub epoch: String,
    /// The offset of the last message the client got.
    pub offset: u64,
}

/// A `history` request (extended protocol): what the client missed.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{parse_command, Command};
///
/// // A subscribe of `@anycable/web` that asks for the last minute too.
/// let text = r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\"}","history":{"since":1700000000}}"#;
/// let Ok(Command::Subscribe { history: Some(history), .. }) = parse_command(text) else { panic!() };
/// assert_eq!(history.since, Some(1_700_000_000));
/// assert!(history.streams.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Messages since this Unix time (seconds), for streams it has no
    /// position on.
    pub since: Option<u64>,
    /// The client's position on each stream it knows.
    pub streams: Vec<(String, StreamPosition)>,
}

/// A command from the client.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{parse_command, Command};
///
/// let text = r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}"}"#;
/// match parse_command(text) {
///     Ok(Command::Subscribe { identifier, history: None }) => assert_eq!(identifier.channel(), "ChatChannel"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(parse_command(r#"{"command":"pong"}"#), Ok(Command::Pong));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Subscribe to the channel the identifier names, with its params.
    Subscribe {
        /// The subscription.
        identifier: Identifier,
        /// A history request sent along (extended protocol).
        history: Option<HistoryRequest>,
    },
    /// Leave a subscription.
    Unsubscribe {
        /// The subscription.
        identifier: Identifier,
    },
    /// Run an action of a subscription (`perform`, or `send` → `receive`).
    Message {
        /// The subscription.
        identifier: Identifier,
        /// The action's data.
        data: ActionData,
    },
    /// Ask for missed messages (extended protocol).
    History {
        /// The subscription.
        identifier: Identifier,
        /// What the client has.
        history: HistoryRequest,
    },
    /// The answer to a ping, from a client that sends them (extended
    /// protocol with `pongs`).
    Pong,
}

/// Why a client's message is not a command. The connection goes on: Rails
/// logs these and keeps it.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{parse_command, CommandError};
///
/// assert_eq!(parse_command("hello"), Err(CommandError::Malformed));
/// assert_eq!(
///     parse_command(r#"{"command":"dance"}"#),
///     Err(CommandError::UnknownCommand { command: "dance".into() })
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a JSON object.
    #[error("not a JSON object")]
    Malformed,
    /// No `command`, or one this server does not know.
    #[error("unknown command {command:?}")]
    UnknownCommand {
        /// The command, as given (empty when missing).
        command: String,
    },
    /// The command needs an identifier and has none, or a wrong one.
    #[error("bad identifier: {reason}")]
    BadIdentifier {
        /// What is wrong.
        reason: String,
    },
    /// A `message` without usable `data`.
    #[error("bad data: {reason}")]
    BadData {
        /// What is wrong.
        reason: String,
    },
    /// A `history` request that cannot be read.
    #[error("bad history request: {reason}")]
    BadHistory {
        /// What is wrong.
        reason: String,
    },
}

/// Reads one client message.
///
/// # Errors
///
/// [`CommandError`] saying what is wrong; nothing about the connection
/// changes.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{parse_command, Command, CommandError};
///
/// let text = r#"{"command":"unsubscribe","identifier":"{\"channel\":\"ChatChannel\"}"}"#;
/// assert!(matches!(parse_command(text), Ok(Command::Unsubscribe { .. })));
/// // A message without data is refused; the connection goes on.
/// let text = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}"}"#;
/// assert!(matches!(parse_command(text), Err(CommandError::BadData { .. })));
/// ```
pub fn parse_command(text: &str) -> Result<Command, CommandError> {
    let fields: HashMap<String, Box<RawValue>> =
        serde_json::from_str(text).map_err(|_| CommandError::Malformed)?;
    let command = match fields.get("command") {
        Some(raw) => {
            serde_json::from_str::<String>(raw.get()).map_err(|_| CommandError::UnknownCommand {
                command: raw.get().to_owned(),
            })?
        }
        None => String::new(),
    };
    let identifier = || match fields.get("identifier") {
        Some(raw) => Identifier::from_token(raw.get()),
        None => Err(CommandError::BadIdentifier {
            reason: "no identifier".to_owned(),
        }),
    };
    let history = || {
        fields
            .get("history")
            .map(|raw| parse_history(raw.get()))
            .transpose()
    };
    match command.as_str() {
        "subscribe" => Ok(Command::Subscribe {
            identifier: identifier()?,
            history: history()?,
        }),
        "unsubscribe" => Ok(Command::Unsubscribe {
            identifier: identifier()?,
        }),
        "message" => {
            let identifier = identifier()?;
            let data = parse_data(fields.get("data").map(|raw| raw.get()))?;
            Ok(Command::Message { identifier, data })
        }
        "history" => {
            let identifier = identifier()?;
            let history = history()?.ok_or_else(|| CommandError::BadHistory {
                reason: "no history".to_owned(),
            })?;
            Ok(Command::History {
                identifier,
                history,
            })
        }
        "pong" => Ok(Command::Pong),
        _ => Err(CommandError::UnknownCommand { command }),
    }
}

/// `data`: a JSON string holding a JSON object.
fn parse_data(raw: Option<&str>) -> Result<ActionData, CommandError> {
    let bad = |reason: &str| CommandError::BadData {
        reason: reason.to_owned(),
    };
    let raw = raw.ok_or_else(|| bad("no data"))?;
    let text: String =
        serde_json::from_str(raw).map_err(|_| bad("the data is not a JSON string"))?;
    let data: Map<String, Value> =
        serde_json::from_str(&text).map_err(|_| bad("the data does not encode a JSON object"))?;
    Ok(ActionData { data })
}

/// `{"since": <unix s>, "streams": {S: {"epoch": E, "offset": N}}}`.
fn parse_history(raw: &str) -> Result<HistoryRequest, CommandError> {
    let bad = |reason: &str| CommandError::BadHistory {
        reason: reason.to_owned(),
    };
    let value: Map<String, Value> =
        serde_json::from_str(raw).map_err(|_| bad("not a JSON object"))?;
    let since = match value.get("since") {
        None | Some(Value::Null) => None,
        Some(since) => Some(
            since
                .as_u64()
                .or_else(|| since.as_f64().filter(|s| *s >= 0.0).map(|s| s as u64))
                .ok_or_else(|| bad("since is not a time"))?,
        ),
    };
    let mut streams = Vec::new();
    match value.get("streams") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (stream, position) in map {
                let epoch = position
                    .get("epoch")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a stream without an epoch"))?;
                let offset = position
                    .get("offset")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("a stream without an offset"))?;
                streams.push((
                    stream.clone(),
                    StreamPosition {
                        epoch: epoch.to_owned(),
                        offset,
                    },
                ));
            }
        }
        Some(_) => return Err(bad("streams is not an object")),
    }
    Ok(HistoryRequest { since, streams })
}

/// Why the server ends a connection, as the clients know the reasons.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{self, DisconnectReason};
///
/// // A deploy: clients reconnect to the next server.
/// let frame = protocol::disconnect(DisconnectReason::ServerRestart, true);
/// assert_eq!(frame, r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// `connect` refused the connection.
    Unauthorized,
    /// The request or a command could not be served.
    InvalidRequest,
    /// The server is shutting down or restarting.
    ServerRestart,
    /// The application disconnected it (remote disconnect).
    Remote,
    /// It could not keep up with its broadcasts (AnyCable's reason).
    TooSlow,
}

impl DisconnectReason {
    /// The reason as it goes on the wire.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::cable::protocol::DisconnectReason;
    ///
    /// assert_eq!(DisconnectReason::TooSlow.as_str(), "too_slow");
    /// assert_eq!(DisconnectReason::InvalidRequest.as_str(), "invalid_request");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Unauthorized => "unauthorized",
            DisconnectReason::InvalidRequest => "invalid_request",
            DisconnectReason::ServerRestart => "server_restart",
            DisconnectReason::Remote => "remote",
            DisconnectReason::TooSlow => "too_slow",
        }
    }
}

/// `{"type":"welcome"}`; with a session id (extended protocol), and, for a
/// restored session, `restored` and the ids of the subscriptions kept.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{welcome, Identifier};
/// use serde_json::json;
///
/// assert_eq!(welcome(None, None), r#"{"type":"welcome"}"#);
/// let kept = [Identifier::from_params(&json!({"channel": "ChatChannel"}))?];
/// assert_eq!(
///     welcome(Some("s1"), Some(&kept)),
///     r#"{"type":"welcome","sid":"s1","restored":true,"restored_ids":["{\"channel\":\"ChatChannel\"}"]}"#
/// );
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
pub fn welcome(sid: Option<&str>, restored: Option<&[Identifier]>) -> String {
    let mut out = String::from(r#"{"type":"welcome""#);
    if let Some(sid) = sid {
        out.push_str(r#","sid":"#);
        push_json_string(&mut out, sid);
    }
    if let Some(ids) = restored {
        out.push_str(r#","restored":true,"restored_ids":["#);
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(id.token());
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// `{"type":"ping","message":<unix seconds>}`: the same text serves every
/// connection of a tick.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::ping;
///
/// assert_eq!(ping(1_700_000_000), r#"{"type":"ping","message":1700000000}"#);
/// ```
pub fn ping(unix_seconds: u64) -> String {
    format!(r#"{{"type":"ping","message":{unix_seconds}}}"#)
}

/// `{"identifier":…,"type":"confirm_subscription"}`.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{confirm_subscription, Identifier};
///
/// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\"}""#)?;
/// assert_eq!(
///     confirm_subscription(&id),
///     r#"{"identifier":"{\"channel\":\"ChatChannel\"}","type":"confirm_subscription"}"#
/// );
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
pub fn confirm_subscription(identifier: &Identifier) -> String {
    typed(identifier, "confirm_subscription")
}

/// `{"identifier":…,"type":"reject_subscription"}`.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{reject_subscription, Identifier};
///
/// let id = Identifier::from_token(r#""{\"channel\":\"AdminChannel\"}""#)?;
/// assert_eq!(
///     reject_subscription(&id),
///     r#"{"identifier":"{\"channel\":\"AdminChannel\"}","type":"reject_subscription"}"#
/// );
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
pub fn reject_subscription(identifier: &Identifier) -> String {
    typed(identifier, "reject_subscription")
}

/// `{"identifier":…,"type":"confirm_history"}` (extended protocol): the
/// missed messages were sent.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{confirm_history, Identifier};
///
/// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\"}""#)?;
/// assert!(confirm_history(&id).ends_with(r#","type":"confirm_history"}"#));
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
pub fn confirm_history(identifier: &Identifier) -> String {
    typed(identifier, "confirm_history")
}

/// `{"identifier":…,"type":"reject_history"}` (extended protocol): what was
/// missed cannot be sent (another epoch, or no longer kept).
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{reject_history, Identifier};
///
/// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\"}""#)?;
/// assert!(reject_history(&id).ends_with(r#","type":"reject_history"}"#));
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
pub fn reject_history(identifier: &Identifier) -> String {
    typed(identifier, "reject_history")
}

/// `{"type":"disconnect","reason":…,"reconnect":…}`.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{disconnect, DisconnectReason};
///
/// // A signed-out user: no reconnect loop.
/// assert_eq!(
///     disconnect(DisconnectReason::Unauthorized, false),
///     r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#
/// );
/// ```
pub fn disconnect(reason: DisconnectReason, reconnect: bool) -> String {
    format!(
        r#"{{"type":"disconnect","reason":"{}","reconnect":{reconnect}}}"#,
        reason.as_str()
    )
}

/// Where a broadcast stands in its stream (extended protocol).
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{message, Identifier, MessagePosition};
///
/// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\"}""#)?;
/// let position = MessagePosition { stream: "chat_1", epoch: "k2", offset: 42 };
/// assert!(message(&id, "1", Some(position)).ends_with(r#","stream_id":"chat_1","epoch":"k2","offset":42}"#));
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MessagePosition<'a> {
    /// The stream's name.
    pub stream: &'a str,
    /// The stream's epoch.
    pub epoch: &'a str,
    /// The message's offset.
    pub offset: u64,
}

/// `{"identifier":…,"message":<json>}`, plus `stream_id`, `epoch` and
/// `offset` when `position` is given. `json` must be valid JSON text (the
/// server checks what the application broadcasts): it is written as it is.
///
/// # Example
///
/// ```
/// use rill::cable::protocol::{message, Identifier};
///
/// let id = Identifier::from_token(r#""{\"channel\":\"ChatChannel\"}""#)?;
/// assert_eq!(
///     message(&id, r#"{"text":"hi"}"#, None),
///     r#"{"identifier":"{\"channel\":\"ChatChannel\"}","message":{"text":"hi"}}"#
/// );
/// # Ok::<(), rill::cable::protocol::CommandError>(())
/// ```
pub fn message(
    identifier: &Identifier,
    json: &str,
    position: Option<MessagePosition<'_>>,
) -> String {
    message_for_token(identifier.token(), json, position)
}

/// [`message`] for an identifier given as its JSON token.
pub(crate) fn message_for_token(
    token: &str,
    json: &str,
    position: Option<MessagePosition<'_>>,
) -> String {
    let mut out = String::with_capacity(json.len() + token.len() + 64);
    out.push_str(r#"{"identifier":"#);
    out.push_str(token);
    out.push_str(r#","message":"#);
    out.push_str(json);
    if let Some(p) = position {
        out.push_str(r#","stream_id":"#);
        push_json_string(&mut out, p.stream);
        out.push_str(r#","epoch":"#);
        push_json_string(&mut out, p.epoch);
        out.push_str(r#","offset":"#);
        out.push_str(&p.offset.to_string());
    }
    out.push('}');
    out
}

fn typed(identifier: &Identifier, kind: &str) -> String {
    typed_token(identifier.token(), kind)
}

fn typed_token(token: &str, kind: &str) -> String {
    format!(r#"{{"identifier":{token},"type":"{kind}"}}"#)
}

/// [`confirm_history`] for an identifier given as its JSON token.
pub(crate) fn confirm_history_for_token(token: &str) -> String {
    typed_token(token, "confirm_history")
}

/// [`reject_history`] for an identifier given as its JSON token.
pub(crate) fn reject_history_for_token(token: &str) -> String {
    typed_token(token, "reject_history")
}

fn push_json_string(out: &mut String, s: &str) {
    out.push_str(&Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(params: Value) -> Identifier {
        Identifier::from_params(&params).expect("an identifier")
    }

    #[test]
    fn identifiers_are_echoed_as_sent() {
        // AnyCable sorts keys, Rails keeps their order; escapes vary.
        let token = r#""{\"room\":\"caf\u00e9\",\"channel\":\"Chat\"}""#;
        let text = format!(r#"{{"command":"subscribe","identifier":{token}}}"#);
        let Ok(Command::Subscribe {
            identifier,
            history,
        }) = parse_command(&text)
        else {
            panic!("a subscribe");
        };
        assert_eq!(history, None);
        assert_eq!(identifier.token(), token);
        assert_eq!(identifier.channel(), "Chat");
        assert_eq!(identifier.params()["room"], "café");
        assert_eq!(
            confirm_subscription(&identifier),
            format!(r#"{{"identifier":{token},"type":"confirm_subscription"}}"#)
        );
        // Equal when the decoded strings are, as clients compare them: the
        // same params in another order are another subscription.
        let same = Identifier::from_token(r#""{\"room\":\"café\",\"channel\":\"Chat\"}""#);
        assert_eq!(same.as_ref(), Ok(&identifier));
        assert_ne!(identifier, id(json!({"channel": "Chat", "room": "café"})));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let cases = [
            ("not json", CommandError::Malformed),
            ("[1]", CommandError::Malformed),
            (
                r#"{"command":"dance","identifier":"{}"}"#,
                CommandError::UnknownCommand {
                    command: "dance".into(),
                },
            ),
            (
                r#"{"identifier":"{}"}"#,
                CommandError::UnknownCommand {
                    command: String::new(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_command(text), Err(expected), "{text}");
        }
        let reasons = [
            r#"{"command":"subscribe"}"#,
            r#"{"command":"subscribe","identifier":{"channel":"Chat"}}"#,
            r#"{"command":"subscribe","identifier":"not json"}"#,
            r#"{"command":"subscribe","identifier":"[1]"}"#,
            r#"{"command":"subscribe","identifier":"{\"room\":1}"}"#,
            r#"{"command":"subscribe","identifier":"{\"channel\":\"\"}"}"#,
        ];
        for text in reasons {
            assert!(
                matches!(parse_command(text), Err(CommandError::BadIdentifier { .. })),
                "{text}"
            );
        }
        let data = [
            r#"{"command":"message","identifier":"{\"channel\":\"C\"}"}"#,
            r#"{"command":"message","identifier":"{\"channel\":\"C\"}","data":{"action":"x"}}"#,
            r#"{"command":"message","identifier":"{\"channel\":\"C\"}","data":"[1]"}"#,
        ];
        for text in data {
            assert!(
                matches!(parse_command(text), Err(CommandError::BadData { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn perform_with_and_without_an_action() {
        let with = r#"{"command":"message","identifier":"{\"channel\":\"C\"}","data":"{\"action\":\"status\",\"status\":\"busy\"}"}"#;
        let Ok(Command::Message { data, .. }) = parse_command(with) else {
            panic!("a message");
        };
        assert_eq!(data.action(), Some("status"));
        assert_eq!(data.data()["status"], "busy");
        let without = r#"{"command":"message","identifier":"{\"channel\":\"C\"}","data":"{\"message\":\"hi\"}"}"#;
        let Ok(Command::Message { data, .. }) = parse_command(without) else {
            panic!("a message");
        };
        assert_eq!(data.action(), None, "receive");
    }

    #[test]
    fn history_requests_are_read() {
        let text = r#"{"command":"history","identifier":"{\"channel\":\"C\"}","history":{"since":1700000000,"streams":{"chat_1":{"epoch":"a1","offset":42}}}}"#;
        let Ok(Command::History { history, .. }) = parse_command(text) else {
            panic!("a history command");
        };
        assert_eq!(history.since, Some(1_700_000_000));
        assert_eq!(
            history.streams,
            [(
                "chat_1".to_owned(),
                StreamPosition {
                    epoch: "a1".into(),
                    offset: 42
                }
            )]
        );
        let bad = r#"{"command":"history","identifier":"{\"channel\":\"C\"}","history":{"streams":{"s":{"epoch":"a"}}}}"#;
        assert!(matches!(
            parse_command(bad),
            Err(CommandError::BadHistory { .. })
        ));
        assert_eq!(parse_command(r#"{"command":"pong"}"#), Ok(Command::Pong));
    }

    #[test]
    fn server_messages_are_byte_exact() {
        let chat = id(json!({"channel": "Chat", "room": "1"}));
        assert_eq!(welcome(None, None), r#"{"type":"welcome"}"#);
        assert_eq!(
            welcome(Some("s1"), Some(std::slice::from_ref(&chat))),
            r#"{"type":"welcome","sid":"s1","restored":true,"restored_ids":["{\"channel\":\"Chat\",\"room\":\"1\"}"]}"#
        );
        assert_eq!(
            ping(1_700_000_000),
            r#"{"type":"ping","message":1700000000}"#
        );
        assert_eq!(
            disconnect(DisconnectReason::ServerRestart, true),
            r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#
        );
        assert_eq!(
            reject_history(&chat),
            r#"{"identifier":"{\"channel\":\"Chat\",\"room\":\"1\"}","type":"reject_history"}"#
        );
        // A string that looks like JSON stays a string.
        assert_eq!(
            message(&chat, r#""{\"a\":1}""#, None),
            r#"{"identifier":"{\"channel\":\"Chat\",\"room\":\"1\"}","message":"{\"a\":1}"}"#
        );
        let position = MessagePosition {
            stream: "chat_1",
            epoch: "e",
            offset: 7,
        };
        assert_eq!(
            message(&chat, r#"{"a":1}"#, Some(position)),
            r#"{"identifier":"{\"channel\":\"Chat\",\"room\":\"1\"}","message":{"a":1},"stream_id":"chat_1","epoch":"e","offset":7}"#
        );
    }

    #[test]
    fn protocols_are_named() {
        for p in [Protocol::Json, Protocol::ExtJson] {
            assert_eq!(Protocol::from_name(p.name()), Some(p));
        }
        assert_eq!(Protocol::from_name("actioncable-unsupported"), None);
    }
}
