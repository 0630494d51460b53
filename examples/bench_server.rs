//! The benchmark contract, served by rill through its public API only.
//!
//! Run with: `cargo run --release --example bench_server -- --addr 127.0.0.1:0`
//! (first stdout line: `listening on http://IP:PORT`).
//!
//! * `GET /bench/burst?n=N&size=S` — SSE: N events `id: 1..N`, S bytes of data each, then the end;
//! * `GET /bench/live?n=N&size=S` — a live body of N chunks of S bytes;
//! * `GET /bench/idle` — SSE that only sends heartbeats (`?heartbeat=SECS`, default 15);
//! * `GET /bench/fanout` — a subscription to hub channel `bench`;
//! * `POST /bench/publish?n=N&size=S` — publishes N events, data `<seq> <unix_nanos>` padded
//!   with `x` to S bytes; answers when all are published;
//! * `GET /bench/stats` — `{"active": <open streams and sockets>}`;
//! * `GET /bench/ws/fanout` — a named-event stream connection (`rill::events`);
//! * `POST /bench/ws/publish?n=N&size=S` — sends N events `e` to every
//!   connection, data as for `/bench/publish`; answers
//!   `{"published":N,"thread_cpu_ms":T}`, T the publishing thread's CPU
//!   time (Linux, 10 ms steps; `RILL_BENCH_DEBUG=1` makes loadgen print it);
//! * `GET /bench/ws/idle` — a WebSocket that only reads;
//! * `GET /bench/ws/echo` — a WebSocket echo;
//! * `GET /bench/ws/flood` — a named-event stream connection: its event
//!   `flood` (`{"n": N, "size": S}`) is answered with N events `e`, as fast
//!   as the client reads;
//! * `GET /bench/cable` — an ActionCable connection (`rill::cable::Cable`,
//!   no connect hook) with channel `BenchChannel`, whose subscriptions
//!   stream their param `stream`;
//! * `POST /bench/cable/publish?stream=S&i=K&n=N&t=T` — broadcasts N
//!   messages `{"t":T,"i":k}`, k = K … K+N−1, to stream S (default `bench`);
//!   T is the caller's send time in Unix nanoseconds (the server's clock
//!   when absent). Answers `{"published":N}` once they are handed to the
//!   broker (the fan-out follows in its task).
//! * `/bench/state/…` — a `rill::state::Store`'s HTTP API (`StateApi`):
//!   `GET /bench/state/:stream/:group` with `Accept: text/event-stream`
//!   follows a group (`event: sync`, then `create` / `update` events
//!   `{"id","type","data","ts"}` with `id: <epoch>.<rev>`; `reset` before a
//!   fresh `sync`), without that header answers `{"rev","items":[…]}`;
//! * `POST /bench/state-run?stream=S&group=G&n=N&items=K&first=F` — N
//!   updates of `S/G` (default `bench/g`) made in-process, one after the
//!   other, as fast as the store takes them: update k (k = F … F+N−1,
//!   F default 1) sets `seq` to k and `t` to the server's wall clock (Unix
//!   ns) on item `item<k mod K>` (K default 100). Answers
//!   `{"updates":N,"write_ns":W,"rev":"<epoch>.<rev>"}` once the last one
//!   is published, W the time the loop took.

use bytes::Bytes;
use rill::{
    cable::{Cable, Channel, ChannelResult, Subscription},
    events::EventStream,
    hub::Hub,
    sse::{Event, SseOptions},
    state::{StateApi, Store, UpdateOp},
    Context, Response, Router, Server,
};
use std::{
    io::Write,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

fn param(ctx: &Context, name: &str, default: usize) -> usize {
    ctx.query(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn burst(ctx: Context) -> Response {
    let (n, size) = (param(&ctx, "n", 1000), param(&ctx, "size", 32));
    let options = SseOptions::new().auto_id().heartbeat(Duration::ZERO);
    ctx.sse_with(options, move |_ctx, mut sse| async move {
        let data = "x".repeat(size);
        for _ in 0..n {
            sse.write(data.as_str()).await?;
        }
        Ok(())
    })
}

async fn live(ctx: Context) -> Response {
    let (n, size) = (param(&ctx, "n", 1000), param(&ctx, "size", 1024));
    ctx.live(move |_ctx, mut stream| async move {
        let chunk = Bytes::from(vec![b'x'; size]);
        for _ in 0..n {
            stream.write(chunk.clone()).await?;
        }
        Ok(())
    })
}

async fn idle(ctx: Context) -> Response {
    let every = param(&ctx, "heartbeat", 15) as u64;
    let options = SseOptions::new().heartbeat(Duration::from_secs(every));
    ctx.sse_with(options, |_ctx, sse| async move {
        sse.closed().await;
        Ok(())
    })
}

fn publish(hub: &Hub, ctx: &Context) -> Response {
    let (n, size) = (param(ctx, "n", 1000), param(ctx, "size", 64));
    for seq in 1..=n {
        let data = publish_data(seq, size);
        if let Err(error) = hub.publish_detached("bench", Event::data(data)) {
            return Response::text(format!("{error}\n")).with_status(http::StatusCode::BAD_REQUEST);
        }
    }
    Response::json_string(format!("{{\"published\":{n}}}"))
}

/// `<seq> <unix_nanos>` padded with `x` to `size` bytes.
fn publish_data(seq: usize, size: usize) -> String {
    let mut data = format!("{seq} {}", unix_nanos());
    while data.len() < size {
        data.push('x');
    }
    data
}

fn ws_routes(router: Router) -> Router {
    let fanout = EventStream::builder().queue(4096).build();
    let flood = EventStream::new();
    flood.on("flood", |conn, data| async move {
        let n = data.value().and_then(|d| d["n"].as_u64()).unwrap_or(0) as usize;
        let size = data.value().and_then(|d| d["size"].as_u64()).unwrap_or(64) as usize;
        for seq in 1..=n {
            // Slows down instead of meeting the slow-consumer policy.
            conn.ready().await?;
            conn.send("e", publish_data(seq, size).as_str())?;
        }
        Ok(())
    });
    let (accept, publish) = (fanout.clone(), fanout);
    router
        .get("/bench/ws/fanout", move |ctx: Context| {
            let stream = accept.clone();
            async move { stream.accept(ctx) }
        })
        .post("/bench/ws/publish", move |ctx: Context| {
            let stream = publish.clone();
            async move {
                let (n, size) = (param(&ctx, "n", 1000), param(&ctx, "size", 64));
                let cpu0 = thread_cpu_ms();
                for seq in 1..=n {
                    if let Err(error) = stream.send("e", publish_data(seq, size).as_str()) {
                        return Response::text(format!("{error}\n"))
                            .with_status(http::StatusCode::BAD_REQUEST);
                    }
                }
                let cpu = thread_cpu_ms() - cpu0;
                Response::json_string(format!("{{\"published\":{n},\"thread_cpu_ms\":{cpu}}}"))
            }
        })
        .get("/bench/ws/idle", |ctx: Context| async move {
            ctx.websocket(|_ctx, mut socket| async move {
                while let Some(message) = socket.recv().await {
                    message?;
                }
                Ok(())
            })
        })
        .get("/bench/ws/echo", |ctx: Context| async move {
            ctx.websocket(|_ctx, mut socket| async move {
                while let Some(message) = socket.recv().await {
                    socket.send(message?).await?;
                }
                Ok(())
            })
        })
        .get("/bench/ws/flood", move |ctx: Context| {
            let stream = flood.clone();
            async move { stream.accept(ctx) }
        })
}

/// This thread's CPU time so far, in ms (Linux; 0 elsewhere): the
/// publisher's cost, apart from the time it waited for a core.
fn thread_cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime, in clock ticks of 10 ms.
    (ticks(11) + ticks(12)) * 10
}

/// The cable scenario's channel: streams its subscription's param `stream`.
struct BenchChannel;

impl Channel for BenchChannel {
    async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
        let stream = sub.param_str("stream").unwrap_or("bench").to_owned();
        sub.stream_from(stream);
        Ok(())
    }
}

fn cable_routes(router: Router) -> Router {
    let cable = Cable::builder()
        .channel("BenchChannel", || BenchChannel)
        .build();
    let publisher = cable.clone();
    router
        .get("/bench/cable", move |ctx: Context| {
            let cable = cable.clone();
            async move { cable.accept(ctx) }
        })
        .post("/bench/cable/publish", move |ctx: Context| {
            let cable = publisher.clone();
            async move {
                let stream = ctx.query("stream").unwrap_or("bench").to_owned();
                let (first, n) = (param(&ctx, "i", 1), param(&ctx, "n", 1));
                let t = ctx
                    .query("t")
                    .and_then(|t| t.parse::<u128>().ok())
                    .unwrap_or_else(unix_nanos);
                for i in first..first + n {
                    let json = format!("{{\"t\":{t},\"i\":{i}}}");
                    if let Err(error) = cable.broadcast_json(&stream, &json) {
                        return Response::text(format!("{error}\n"))
                            .with_status(http::StatusCode::BAD_REQUEST);
                    }
                }
                Response::json_string(format!("{{\"published\":{n}}}"))
            }
        })
}

/// The keyed-state scenario: a store's HTTP API under `/bench/state`, and
/// `POST /bench/state-run`, which writes to it in-process.
fn state_routes(router: Router) -> Router {
    let store = Store::new();
    let writer = store.clone();
    StateApi::new(store).mount(router, "/bench/state").post(
        "/bench/state-run",
        move |ctx: Context| {
            let store = writer.clone();
            async move { state_run(&store, &ctx).await }
        },
    )
}

/// N updates `{"seq": k, "t": <unix nanos>}` of `item<k mod K>`, one after
/// the other; answers how long the loop took and the last revision.
async fn state_run(store: &Store, ctx: &Context) -> Response {
    let stream = ctx.query("stream").unwrap_or("bench");
    let group = ctx.query("group").unwrap_or("g");
    let (n, items, first) = (
        param(ctx, "n", 1000),
        param(ctx, "items", 100).max(1),
        param(ctx, "first", 1),
    );
    let names: Vec<String> = (0..items).map(|k| format!("item{k}")).collect();
    let mut rev = String::new();
    let t0 = Instant::now();
    for seq in first..first + n {
        let ops = [
            UpdateOp::Set {
                path: vec!["seq".into()],
                value: seq.into(),
            },
            UpdateOp::Set {
                path: vec!["t".into()],
                value: (unix_nanos() as u64).into(),
            },
        ];
        match store
            .update(stream, group, &names[seq % items], &ops, None)
            .await
        {
            Ok(write) if seq + 1 == first + n => rev = write.rev.to_string(),
            Ok(_) => {}
            Err(error) => {
                return Response::text(format!("update {seq}: {error}\n"))
                    .with_status(http::StatusCode::BAD_REQUEST)
            }
        }
    }
    let write_ns = t0.elapsed().as_nanos();
    Response::json_string(format!(
        "{{\"updates\":{n},\"write_ns\":{write_ns},\"rev\":\"{rev}\"}}"
    ))
}

/// Nanoseconds since the Unix epoch.
fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn app() -> Router {
    let hub = Hub::builder().history(0).queue(4096).build();
    let (fanout, publisher) = (hub.clone(), hub);
    let router = Router::new()
        .get("/bench/burst", burst)
        .get("/bench/live", live)
        .get("/bench/idle", idle)
        .get("/bench/fanout", move |ctx: Context| {
            let hub = fanout.clone();
            async move { ctx.subscribe(&hub, "bench") }
        })
        .post("/bench/publish", move |ctx: Context| {
            let hub = publisher.clone();
            async move { publish(&hub, &ctx) }
        })
        .get("/bench/stats", |ctx: Context| async move {
            Response::json_string(format!("{{\"active\":{}}}", ctx.tracker().active()))
        });
    state_routes(cable_routes(ws_routes(router)))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:3000");
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = args.next().unwrap_or(addr);
        }
    }
    let server = match Server::bind(&addr).await {
        Ok(server) => server.shutdown_deadline(Duration::from_secs(2)),
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    match server.local_addr() {
        Ok(local) => println!("listening on http://{local}"),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    }
    let _ = std::io::stdout().flush();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(error) = server.serve_with_shutdown(app(), stop).await {
        eprintln!("{error}");
    }
}
