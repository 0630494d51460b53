//! The WebSocket part of the contract, as an axum 0.8 user writes it
//! (`axum::extract::ws`, tokio-tungstenite underneath), in two forms:
//!
//! * default (`axum`) — the guide's way: one `send` per message, which
//!   writes and flushes each one; tungstenite's default buffers;
//! * `--tuned` (`axum_tuned`) — every waiting event `feed` into the sink and
//!   one flush per burst, and 4 KiB read buffers instead of 128 KiB.
//!
//! Routes: `GET /bench/ws/fanout` (a subscriber of the broadcast),
//! `POST /bench/ws/publish?n=&size=`, `GET /bench/ws/idle`,
//! `GET /bench/ws/echo`, `GET /bench/ws/flood` (the client's first message,
//! `{"event":"flood","data":{"n":N,"size":S}}`, says how many lines).

use axum::{
    extract::{
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;

use super::{json, param, ActiveGuard, AppState, Params};

/// A tuned socket's read buffer.
const TUNED_READ_BUFFER: usize = 4 * 1024;

pub(crate) fn configure(ws: WebSocketUpgrade, tuned: bool) -> WebSocketUpgrade {
    if tuned {
        ws.read_buffer_size(TUNED_READ_BUFFER)
    } else {
        ws
    }
}

pub async fn fanout(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let rx = state.ws_tx.subscribe();
    let guard = ActiveGuard::new(&state.active);
    let tuned = state.tuned;
    configure(ws, tuned).on_upgrade(move |socket| async move {
        let _guard = guard;
        if tuned {
            batched(socket, rx).await;
        } else {
            one_by_one(socket, rx).await;
        }
    })
}

/// One `send` per event.
async fn one_by_one(mut socket: WebSocket, mut rx: broadcast::Receiver<Utf8Bytes>) {
    loop {
        match rx.recv().await {
            Ok(line) => {
                if socket.send(Message::Text(line)).await.is_err() {
                    return;
                }
            }
            // A lagging subscriber skips ahead; the load generator reports the gap.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Every waiting event fed, one flush per burst.
async fn batched(socket: WebSocket, mut rx: broadcast::Receiver<Utf8Bytes>) {
    let (mut sink, _stream) = socket.split();
    loop {
        let first = match rx.recv().await {
            Ok(line) => line,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if sink.feed(Message::Text(first)).await.is_err() {
            return;
        }
        while let Ok(line) = rx.try_recv() {
            if sink.feed(Message::Text(line)).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

pub async fn publish(State(state): State<AppState>, q: Params) -> Response {
    let (n, size) = (param(&q, "n", 1000), param(&q, "size", 64));
    for seq in 1..=n {
        let line = rill_bench::ws_scenarios::contract_line(seq as u64, size);
        // No subscribers is not an error for a publisher.
        let _ = state.ws_tx.send(Utf8Bytes::from(line));
    }
    json(format!("{{\"published\":{n}}}"))
}

pub async fn idle(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let guard = ActiveGuard::new(&state.active);
    configure(ws, state.tuned).on_upgrade(move |mut socket| async move {
        let _guard = guard;
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

pub async fn echo(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let guard = ActiveGuard::new(&state.active);
    configure(ws, state.tuned).on_upgrade(move |mut socket| async move {
        let _guard = guard;
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Text(_) | Message::Binary(_))
                && socket.send(message).await.is_err()
            {
                return;
            }
        }
    })
}

pub async fn flood(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let guard = ActiveGuard::new(&state.active);
    let tuned = state.tuned;
    configure(ws, tuned).on_upgrade(move |mut socket| async move {
        let _guard = guard;
        let Some(Ok(Message::Text(ask))) = socket.recv().await else {
            return;
        };
        let Ok(ask) = serde_json::from_str::<serde_json::Value>(&ask) else {
            return;
        };
        let n = ask["data"]["n"].as_u64().unwrap_or(0);
        let size = ask["data"]["size"].as_u64().unwrap_or(64) as usize;
        for seq in 1..=n {
            let line = Utf8Bytes::from(rill_bench::ws_scenarios::contract_line(seq, size));
            let sent = if tuned {
                socket.feed(Message::Text(line)).await
            } else {
                socket.send(Message::Text(line)).await
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = socket.flush().await;
        // Wait for the client to close.
        while let Some(Ok(_)) = socket.recv().await {}
    })
}
