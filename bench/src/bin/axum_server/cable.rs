//! The cable part of the contract as an axum 0.8 user writes a minimal
//! ActionCable-compatible endpoint (`actioncable-v1-json`) by hand: just
//! what the `cable_fanout` scenario and `@rails/actioncable` need.
//!
//! * `GET /bench/cable` — `{"type":"welcome"}`, then the client's commands
//!   (`subscribe` to `BenchChannel` streams its param `stream` and is
//!   answered with `confirm_subscription`; `unsubscribe`); every 3 s a
//!   `{"type":"ping",…}` from one ticker, shared by every connection.
//! * `POST /bench/cable/publish?stream=S&i=K&n=N&t=T` — N broadcasts
//!   `{"t":T,"i":k}` to stream S, through one `tokio::sync::broadcast`
//!   (4096); each connection's task writes
//!   `{"identifier":…,"message":…}` for each of its subscriptions on that
//!   stream.
//!
//! Default (`axum`): one `send` per message. `--tuned` (`axum_tuned`):
//! 4 KiB read buffers, and every message waiting in the receiver `feed`
//! before one flush.

use axum::{
    extract::{
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use futures_util::{stream::SplitSink, SinkExt, StreamExt};
use serde_json::Value;
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::broadcast::{self, error::RecvError};

use super::{json, param, ws::configure, ActiveGuard, AppState, Params};

/// The subprotocol of `@rails/actioncable`.
const PROTOCOL: &str = "actioncable-v1-json";
/// How often every connection is pinged (ActionCable's 3 s).
const PING_EVERY: Duration = Duration::from_secs(3);

/// What the cable's broadcast carries to every connection.
#[derive(Clone)]
pub enum Cast {
    /// A ping frame, the same text for every connection.
    Ping(Utf8Bytes),
    /// A broadcast: its stream and its JSON.
    Broadcast { stream: Arc<str>, json: Arc<str> },
}

/// The broadcast every cable connection receives, with its ping ticker.
pub fn channel() -> broadcast::Sender<Cast> {
    let (tx, _) = broadcast::channel(4096);
    let ticker = tx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PING_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let ping = format!(r#"{{"type":"ping","message":{secs}}}"#);
            // No connections is not an error.
            let _ = ticker.send(Cast::Ping(ping.into()));
        }
    });
    tx
}

pub async fn cable(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let guard = ActiveGuard::new(&state.active);
    let tuned = state.tuned;
    let tx = state.cable_tx.clone();
    configure(ws.protocols([PROTOCOL]), tuned).on_upgrade(move |socket| async move {
        let _guard = guard;
        connection(socket, tx.subscribe(), tuned).await;
    })
}

/// One subscription: its stream and its identifier as a JSON string.
struct Sub {
    stream: String,
    token: String,
}

async fn connection(socket: WebSocket, mut rx: broadcast::Receiver<Cast>, tuned: bool) {
    let (mut sink, mut incoming) = socket.split();
    if sink
        .send(Message::Text(r#"{"type":"welcome"}"#.into()))
        .await
        .is_err()
    {
        return;
    }
    let mut subs: Vec<Sub> = Vec::new();
    loop {
        tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = command(&text, &mut subs) {
                        if sink.send(Message::Text(reply.into())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            cast = rx.recv() => {
                let sent = match cast {
                    Ok(cast) => forward(&mut sink, &mut rx, cast, &subs, tuned).await,
                    // Too slow: the broadcast moved on without it.
                    Err(RecvError::Lagged(_)) => Err(()),
                    Err(RecvError::Closed) => Err(()),
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

/// A client's command: the reply to send, if any.
fn command(text: &str, subs: &mut Vec<Sub>) -> Option<String> {
    let command: Value = serde_json::from_str(text).ok()?;
    let identifier = command["identifier"].as_str()?;
    let params: Value = serde_json::from_str(identifier).ok()?;
    let token = Value::String(identifier.to_owned()).to_string();
    match command["command"].as_str()? {
        "subscribe" => {
            if params["channel"] != "BenchChannel" {
                return Some(format!(
                    r#"{{"identifier":{token},"type":"reject_subscription"}}"#
                ));
            }
            if !subs.iter().any(|s| s.token == token) {
                let stream = params["stream"].as_str().unwrap_or("bench").to_owned();
                subs.push(Sub {
                    stream,
                    token: token.clone(),
                });
            }
            Some(format!(
                r#"{{"identifier":{token},"type":"confirm_subscription"}}"#
            ))
        }
        "unsubscribe" => {
            subs.retain(|s| s.token != token);
            None
        }
        _ => None,
    }
}

/// Writes `cast` (and, tuned, every cast waiting behind it before one
/// flush).
async fn forward(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut broadcast::Receiver<Cast>,
    cast: Cast,
    subs: &[Sub],
    tuned: bool,
) -> Result<(), ()> {
    if !tuned {
        for frame in frames(&cast, subs) {
            sink.send(Message::Text(frame)).await.map_err(|_| ())?;
        }
        return Ok(());
    }
    let mut next = Some(cast);
    while let Some(cast) = next {
        for frame in frames(&cast, subs) {
            sink.feed(Message::Text(frame)).await.map_err(|_| ())?;
        }
        next = match rx.try_recv() {
            Ok(cast) => Some(cast),
            Err(broadcast::error::TryRecvError::Lagged(_)) => return Err(()),
            Err(_) => None,
        };
    }
    sink.flush().await.map_err(|_| ())
}

/// The frames of `cast` for this connection.
fn frames(cast: &Cast, subs: &[Sub]) -> Vec<Utf8Bytes> {
    match cast {
        Cast::Ping(ping) => vec![ping.clone()],
        Cast::Broadcast { stream, json } => subs
            .iter()
            .filter(|s| *s.stream == **stream)
            .map(|s| format!(r#"{{"identifier":{},"message":{json}}}"#, s.token).into())
            .collect(),
    }
}

pub async fn publish(State(state): State<AppState>, q: Params) -> Response {
    let stream: Arc<str> = q.get("stream").map_or("bench", String::as_str).into();
    let (first, n) = (param(&q, "i", 1), param(&q, "n", 1));
    let t = q
        .get("t")
        .and_then(|t| t.parse::<u128>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        });
    for i in first..first + n {
        let json = format!(r#"{{"t":{t},"i":{i}}}"#);
        // No subscribers is not an error for a publisher.
        let _ = state.cable_tx.send(Cast::Broadcast {
            stream: stream.clone(),
            json: json.into(),
        });
    }
    json(format!("{{\"published\":{n}}}"))
}
