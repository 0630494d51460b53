//! WebSocket endpoints:
//!
//! * `GET /ws` — the named-event stream (rill's `/rill.js` client speaks
//!   it). Client → server: `echo` (any JSON) → `echo` with the same data,
//!   to that client; `stream-start` → `tick` events `{"seq": n, "price": p}`
//!   every 50 ms until `stream-stop`; `ask` (a string) → one `token` event
//!   per word of [`PARAGRAPH`], 30 ms apart, then `done`; `order`
//!   (`{"symbol","qty","side"}`) → `order-ack` with the same fields plus
//!   `"id"` to that client, and `trade` with the same fields plus `"by"`
//!   (the connection's id) to every client. The stream also reaches the
//!   hub's channels (`subscribe` in the client) and the state store's
//!   groups (`watch` in the client).
//! * `GET /ws/echo` — a raw WebSocket echo (text and binary, verbatim), the
//!   endpoint the Autobahn conformance cases run against.
//! * `GET /rill.js`, `GET /rill.d.ts` — the client and its types.

use rill::{
    events::{Connection, Data, EventStream},
    hub::Hub,
    state::Store,
    ws::WsOptions,
    Context, Controller, Response, Routes,
};
use serde_json::{json, Map, Value};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};
use tokio::task::AbortHandle;

use super::PARAGRAPH;

/// How often a running ticker sends a `tick`.
pub const TICK_INTERVAL: Duration = Duration::from_millis(50);
/// The pause between two `token` events of an answer.
pub const TOKEN_INTERVAL: Duration = Duration::from_millis(30);

/// WebSocket endpoints.
#[derive(Debug)]
pub struct SocketsController {
    stream: EventStream,
}

impl Controller for SocketsController {
    fn routes(routes: &mut Routes<Self>) {
        routes
            .get("/ws", Self::events)
            .get("/ws/echo", Self::echo)
            .get("/rill.js", |_this, ctx| rill::events::client_module(ctx))
            .get("/rill.d.ts", |_this, ctx| rill::events::client_types(ctx));
    }
}

impl SocketsController {
    /// The controller, with `/ws` reaching `hub`'s channels and `store`'s
    /// state (`watch` in the client).
    pub fn new(hub: Hub, store: Store) -> Self {
        SocketsController {
            stream: event_stream(hub, store),
        }
    }

    /// The named-event stream.
    pub fn stream(&self) -> &EventStream {
        &self.stream
    }

    async fn events(self: Arc<Self>, ctx: Context) -> Response {
        self.stream.accept(ctx)
    }

    /// Every message back, as it came. Messages up to 32 MiB: the Autobahn
    /// cases send 16 MiB ones.
    async fn echo(self: Arc<Self>, ctx: Context) -> Response {
        let options = WsOptions::new().max_message(32 * 1024 * 1024);
        ctx.websocket_with(options, |_ctx, mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message?).await?;
            }
            Ok(())
        })
    }
}

/// The `/ws` stream and its handlers.
fn event_stream(hub: Hub, store: Store) -> EventStream {
    let tickers = Arc::new(Tickers::default());
    let stopping = tickers.clone();
    let stream = EventStream::builder()
        .hub(hub)
        .state(store)
        .on_disconnect(move |conn| {
            let tickers = stopping.clone();
            async move {
                tickers.stop(conn.id());
                Ok(())
            }
        })
        .build();

    stream.on("echo", |conn, data| async move {
        conn.send("echo", &data.into_value())?;
        Ok(())
    });

    let starting = tickers.clone();
    stream.on("stream-start", move |conn, _| {
        let tickers = starting.clone();
        async move {
            tickers.start(conn);
            Ok(())
        }
    });
    stream.on("stream-stop", move |conn, _| {
        let tickers = tickers.clone();
        async move {
            tickers.stop(conn.id());
            Ok(())
        }
    });

    // Answers run in a task of their own, so a `stream-stop` sent while
    // tokens flow is handled at once.
    stream.on("ask", |conn, data| async move {
        if data.as_str().is_none() {
            conn.send(
                "error",
                &json!({"event": "ask", "message": "ask with a string"}),
            )?;
            return Ok(());
        }
        tokio::spawn(answer(conn));
        Ok(())
    });

    let order_ids = Arc::new(AtomicU64::new(0));
    stream.on("order", move |conn, data| {
        let order_ids = order_ids.clone();
        async move {
            let Some(order) = valid_order(&data) else {
                conn.send(
                    "error",
                    &json!({"event": "order", "message": "an order is {symbol, qty, side}"}),
                )?;
                return Ok(());
            };
            let mut ack = order.clone();
            ack.insert(
                "id".into(),
                (order_ids.fetch_add(1, Ordering::Relaxed) + 1).into(),
            );
            conn.send("order-ack", &ack)?;
            let mut trade = order;
            trade.insert("by".into(), conn.id().into());
            conn.broadcast("trade", &trade)?;
            Ok(())
        }
    });
    stream
}

/// One `token` per word, then `done`.
async fn answer(conn: Connection) {
    for (i, word) in PARAGRAPH.split(' ').enumerate() {
        if i > 0 {
            tokio::time::sleep(TOKEN_INTERVAL).await;
        }
        if conn.send("token", word).is_err() {
            return;
        }
    }
    let _ = conn.send("done", &());
}

/// `{symbol: string, qty: positive number, side: "buy" | "sell"}`, with
/// nothing else.
fn valid_order(data: &Data) -> Option<Map<String, Value>> {
    let order = data.value()?.as_object()?;
    let symbol_ok = order.get("symbol")?.as_str().is_some_and(|s| !s.is_empty());
    let qty_ok = order.get("qty")?.as_f64().is_some_and(|q| q > 0.0);
    let side_ok = matches!(order.get("side")?.as_str(), Some("buy" | "sell"));
    (symbol_ok && qty_ok && side_ok && order.len() == 3).then(|| order.clone())
}

/// The running tickers, by connection.
#[derive(Debug, Default)]
struct Tickers(Mutex<HashMap<u64, AbortHandle>>);

impl Tickers {
    /// Starts a ticker for `conn` (one at a time: a second start restarts
    /// it at seq 1).
    fn start(&self, conn: Connection) {
        let id = conn.id();
        let task = tokio::spawn(tick(conn)).abort_handle();
        if let Some(old) = self.lock().insert(id, task) {
            old.abort();
        }
    }

    fn stop(&self, id: u64) {
        if let Some(task) = self.lock().remove(&id) {
            task.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `tick` every [`TICK_INTERVAL`]: seq 1, 2, 3 … and a price that walks.
async fn tick(conn: Connection) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut price = 100.0_f64;
    for seq in 1u64.. {
        interval.tick().await;
        // A deterministic walk: up and down by cents.
        price += ((seq * 7919) % 21) as f64 / 100.0 - 0.10;
        let price = (price * 100.0).round() / 100.0;
        if conn
            .send("tick", &json!({"seq": seq, "price": price}))
            .is_err()
        {
            return;
        }
    }
}
