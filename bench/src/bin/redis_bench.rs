//! The Redis broker benchmark (issue 13): rill's `Broker` on a
//! `RedisBackend` against the physical limit of the same `redis-server`, and
//! against rill's in-memory broker, all in one run.
//!
//! 1. **publish**: `Broker::publish` from N concurrent tasks (history on)
//!    against `redis-benchmark`'s `PUBLISH` on the same server, and against
//!    `redis-benchmark` running rill's own publish script (`EVALSHA`, one
//!    publication per call): what the script costs Redis, without rill's
//!    client in the way. The tasks publish on one channel (rill places a
//!    channel's concurrent publications in one script call), and again
//!    each on a channel of its own (one call per publication).
//! 2. **fanout**: two subscriber "nodes" (brokers with their own
//!    `RedisBackend`: their own command and pub/sub connections) with S
//!    subscribers each, M events published from a third broker; every
//!    subscriber must get every event once and in order. Peer: the
//!    in-memory broker with 2·S subscribers, the same M events.
//! 3. **paced**: one subscriber on node B, the publisher on node A, R
//!    events/s for T s: delivery latency against the in-memory broker at the
//!    same pace (the added p50), and against raw Redis pub/sub (a `PUBLISH`
//!    read by a `SUBSCRIBE` connection: the floor of any cross-node hop).
//! 4. **state**: `Store::update` increments from N tasks spread over two
//!    stores on Redis (two nodes), each task on an item of its own, then
//!    all on one item (every write a compare-and-set that may be refused
//!    and recomputed), against one in-memory store; the final counts must
//!    add up.
//!
//! It starts its own `redis-server` on a free 127.0.0.1 port
//! (`--save "" --appendonly no`) and kills it by PID at the end, on error and
//! on panic. Run with `bash scripts/bench.sh` (after loadgen) or
//! `target/release/redis_bench [--quick] [--out FILE]`.

use rill::{
    broker::{
        Broker, Delivery, Message, MessageKind, Metadata, Offer, Position, Publication,
        RedisBackend, RedisConfig, Sink, SubscribeOptions,
    },
    state::{Store, UpdateOp},
};
use rill_bench::stats::{median, quantile};
use serde_json::{json, Value};
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const USAGE: &str = "redis_bench [--quick] [--rounds N] [--publishes N] [--tasks N] \
[--subs-per-node N] [--events N] [--rate N] [--secs N] [--out FILE]";

/// Size of every publication's data (bytes), as in loadgen's fan-out.
const DATA_SIZE: usize = 64;

#[derive(Debug, Clone)]
struct Config {
    quick: bool,
    rounds: usize,
    publishes: usize,
    tasks: usize,
    benchmark_requests: usize,
    subs_per_node: usize,
    events: usize,
    rate: u64,
    secs: u64,
    out: PathBuf,
}

fn parse_args() -> Result<Config, String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let quick = raw.iter().any(|a| a == "--quick");
    let mut cfg = Config {
        quick,
        rounds: if quick { 1 } else { 3 },
        publishes: if quick { 10_000 } else { 50_000 },
        tasks: 32,
        benchmark_requests: if quick { 20_000 } else { 100_000 },
        subs_per_node: if quick { 200 } else { 500 },
        events: if quick { 200 } else { 1_000 },
        rate: 200,
        secs: if quick { 2 } else { 5 },
        out: manifest.join("results/redis.json"),
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|e| format!("{v}: {e}"))
                .map(|n| n.max(1))
        };
        match arg.as_str() {
            "--quick" => {}
            "--rounds" => cfg.rounds = number(value("--rounds")?)?,
            "--publishes" => cfg.publishes = number(value("--publishes")?)?,
            "--tasks" => cfg.tasks = number(value("--tasks")?)?,
            "--subs-per-node" => cfg.subs_per_node = number(value("--subs-per-node")?)?,
            "--events" => cfg.events = number(value("--events")?)?,
            "--rate" => cfg.rate = number(value("--rate")?)? as u64,
            "--secs" => cfg.secs = number(value("--secs")?)? as u64,
            "--out" => cfg.out = PathBuf::from(value("--out")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(cfg)
}

// ---------------------------------------------------------------------------
// The redis-server of this run.

/// A redis-server of this run's own, killed by its PID when dropped (at the
/// end, on error, and while a panic unwinds).
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Result<RedisServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server (is it installed?): {e}"))?;
        let server = RedisServer { child, port };
        let start = Instant::now();
        while server.ping().as_deref() != Some("+PONG") {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn ping(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).ok()?;
        Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()?
                .to_owned(),
        )
    }

    /// The server's CPU time so far (utime + stime, in clock ticks).
    fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(self.child.id())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

// ---------------------------------------------------------------------------
// Clock, data and the recording sink.

/// One clock for the whole process: publishers write `now_ns()` into the
/// data, subscribers subtract it from their own `now_ns()`.
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// `<seq> <now_ns>` padded with `x` to [`DATA_SIZE`].
fn data(seq: u64) -> String {
    let mut data = format!("{seq} {}", now_ns());
    while data.len() < DATA_SIZE {
        data.push('x');
    }
    data
}

fn parse_data(data: &str) -> Option<(u64, u64)> {
    let mut parts = data.splitn(3, ' ');
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.trim_end_matches('x').parse().ok()?;
    Some((seq, sent))
}

#[derive(Debug, Clone, Copy)]
struct Got {
    seq: u64,
    offset: u64,
    latency_ns: u64,
    at_ns: u64,
}

/// A subscriber that records, for each message it is offered, its sequence
/// number, offset, latency and arrival time; resets, gaps, closes and
/// unreadable data are counted as oddities (0 when healthy).
struct Recorder {
    got: Mutex<Vec<Got>>,
    started: Mutex<Option<Position>>,
    oddities: AtomicU64,
    delivered: Arc<AtomicUsize>,
    metadata: Metadata,
}

impl Recorder {
    fn new(delivered: Arc<AtomicUsize>, capacity: usize) -> Recorder {
        Recorder {
            got: Mutex::new(Vec::with_capacity(capacity)),
            started: Mutex::new(None),
            oddities: AtomicU64::new(0),
            delivered,
            metadata: Metadata::default(),
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("not poisoned").clone()
    }

    fn started(&self) -> Option<Position> {
        self.started.lock().expect("not poisoned").clone()
    }
}

impl Sink for Recorder {
    fn offer(&self, message: &Arc<Message>, _: Delivery) -> Offer {
        let at_ns = now_ns();
        if message.kind() != MessageKind::Publication {
            return Offer::Queued;
        }
        match parse_data(message.data()) {
            Some((seq, sent)) => {
                self.got.lock().expect("not poisoned").push(Got {
                    seq,
                    offset: message.position().offset(),
                    latency_ns: at_ns.saturating_sub(sent),
                    at_ns,
                });
                self.delivered.fetch_add(1, Ordering::AcqRel);
            }
            None => {
                self.oddities.fetch_add(1, Ordering::AcqRel);
            }
        }
        Offer::Queued
    }
    fn reset(&self, _: &str) -> Offer {
        self.oddities.fetch_add(1, Ordering::AcqRel);
        Offer::Queued
    }
    fn gap(&self, _: &str, _: u64) -> Offer {
        self.oddities.fetch_add(1, Ordering::AcqRel);
        Offer::Queued
    }
    fn position(&self, _: &str, position: &Position) {
        *self.started.lock().expect("not poisoned") = Some(position.clone());
    }
    fn close(&self) {
        self.oddities.fetch_add(1, Ordering::AcqRel);
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn of(mut nanos: Vec<u64>) -> Latency {
        nanos.sort_unstable();
        let ms = |q: f64| quantile(&nanos, q) as f64 / 1e6;
        Latency {
            p50: ms(0.5),
            p99: ms(0.99),
            max: ms(1.0),
        }
    }

    fn json(&self) -> Value {
        json!({ "p50_ms": self.p50, "p99_ms": self.p99, "max_ms": self.max })
    }
}

/// A broker on its own `RedisBackend`: one "node".
async fn redis_node(url: &str) -> Result<Broker, String> {
    let backend = RedisBackend::connect(RedisConfig::new(url).prefix("bench:"))
        .await
        .map_err(|e| format!("RedisBackend::connect: {e}"))?;
    Ok(Broker::builder().backend(Arc::new(backend)).build())
}

/// Waits (bounded) until `done()`, polling every millisecond.
async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("{what}: not within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Checks that every recorder got seq 1..=n, in order, at consecutive
/// offsets right after the position it started from, and nothing else.
fn check_all(what: &str, recorders: &[Arc<Recorder>], n: usize) -> Result<(), String> {
    for (i, recorder) in recorders.iter().enumerate() {
        let got = recorder.got();
        let oddities = recorder.oddities.load(Ordering::Acquire);
        if oddities != 0 {
            return Err(format!(
                "{what}: subscriber {i} saw {oddities} resets/gaps/closes/unreadable messages"
            ));
        }
        if got.len() != n {
            return Err(format!(
                "{what}: subscriber {i} got {} messages, not {n}",
                got.len()
            ));
        }
        let start = recorder.started().map_or(0, |p| p.offset());
        for (k, g) in got.iter().enumerate() {
            let (seq, offset) = (k as u64 + 1, start + k as u64 + 1);
            if g.seq != seq || g.offset != offset {
                return Err(format!(
                    "{what}: subscriber {i}, message #{seq}: got seq {} at offset {}, \
                     expected seq {seq} at offset {offset}",
                    g.seq, g.offset
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. Publish rate.

/// `Broker::publish` from `tasks` tasks until `n` publications are placed:
/// publications per second. All on one channel, or (`spread`) each task on
/// a channel of its own — then no two publications share a script call.
async fn rill_publish_rate(url: &str, n: usize, tasks: usize, spread: bool) -> Result<f64, String> {
    let broker = redis_node(url).await?;
    let channel = |task: usize| {
        if spread {
            format!("pub{task}")
        } else {
            "pub".to_owned()
        }
    };
    // The script is loaded and the channels created before the clock starts.
    for task in 0..if spread { tasks } else { 1 } {
        broker
            .publish(&channel(task), Publication::new(data(0)))
            .await
            .map_err(|e| format!("warm-up publish: {e}"))?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let (broker, next, channel) = (broker.clone(), next.clone(), channel(task));
        handles.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                broker
                    .publish(&channel, Publication::new(data(1)))
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
            }
            Ok::<(), String>(())
        }));
    }
    for handle in handles {
        handle.await.map_err(|e| format!("publisher task: {e}"))??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// `redis-benchmark -n N -c C --csv ARGS…`: requests per second.
fn redis_benchmark(port: u16, n: usize, clients: usize, args: &[&str]) -> Result<f64, String> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-n", &n.to_string(), "-c", &clients.to_string(), "--csv"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-benchmark (is it installed?): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // "test","rps",… then "<the command>","<rps>",…
    let line = stdout
        .lines()
        .find(|l| !l.starts_with("\"test\"") && l.contains("\",\""))
        .ok_or_else(|| {
            format!(
                "redis-benchmark {}: no result in {stdout:?} {:?}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    // The name may hold commas; the seven numbers after it do not.
    let rps = line
        .rsplit(',')
        .nth(6)
        .and_then(|f| f.trim_matches('"').parse::<f64>().ok());
    let errors = String::from_utf8_lossy(&output.stderr);
    if errors.contains("ERR") || stdout.contains("ERR") {
        return Err(format!("redis-benchmark {}: {errors}", args.join(" ")));
    }
    rps.ok_or_else(|| format!("redis-benchmark: unreadable line {line:?}"))
}

/// rill's publish script, read from its source at build time (so the
/// `EVALSHA` peer runs exactly what `RedisBackend::publish` runs: the
/// publish steps, then the answer).
fn publish_script() -> Option<String> {
    const SOURCE: &str = include_str!("../../../src/broker/redis/scripts.rs");
    let raw = |name: &str| {
        let after = &SOURCE[SOURCE.find(&format!("const {name}"))?..];
        let body = &after[after.find("r\"")? + 2..];
        Some(&body[..body.find('"')?])
    };
    let (bodies, steps) = (raw("PUBLISH_BODIES")?, raw("PUBLISH_STEPS")?);
    SOURCE
        .contains("{PUBLISH_BODIES}\\n{PUBLISH_STEPS}\\nreturn {{epoch, offset}}")
        .then(|| format!("{bodies}\n{steps}\nreturn {{epoch, offset}}"))
}

/// Loads the script into Redis: its SHA1.
async fn load_script(url: &str, script: &str) -> Result<String, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script)
        .query_async(&mut connection)
        .await
        .map_err(|e| format!("SCRIPT LOAD: {e}"))
}

// ---------------------------------------------------------------------------
// 4. State writes.

/// `tasks` tasks (task `t` on `stores[t % len]`) each increment their own
/// item (`hot`: all the same item) `writes / tasks` times: writes per
/// second, once the counts are checked.
async fn state_writes(
    stores: &[Store],
    tasks: usize,
    writes: usize,
    hot: bool,
    group: &str,
) -> Result<f64, String> {
    let each = (writes / tasks).max(1);
    let bump = [UpdateOp::Increment {
        path: vec![],
        by: 1.into(),
    }];
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let store = stores[t % stores.len()].clone();
        let (group, bump) = (group.to_owned(), bump.clone());
        let item = if hot {
            "hot".to_owned()
        } else {
            format!("i{t}")
        };
        handles.push(tokio::spawn(async move {
            for _ in 0..each {
                store
                    .update("bench", &group, &item, &bump, None)
                    .await
                    .map_err(|e| format!("update: {e}"))?;
            }
            Ok::<(), String>(())
        }));
    }
    for handle in handles {
        handle.await.map_err(|e| format!("writer task: {e}"))??;
    }
    let rate = (each * tasks) as f64 / start.elapsed().as_secs_f64();
    let items = stores[0]
        .list("bench", group)
        .await
        .map_err(|e| format!("list: {e}"))?;
    let total: u64 = items.iter().filter_map(|(_, v)| v.as_u64()).sum();
    if total != (each * tasks) as u64 {
        return Err(format!(
            "state {group}: the counts add up to {total}, not {}",
            each * tasks
        ));
    }
    Ok(rate)
}

// ---------------------------------------------------------------------------
// 2. Fan-out.

#[derive(Debug, Clone, Copy)]
struct FanOut {
    deliveries_per_s: f64,
    publish_s: f64,
    latency: Latency,
}

/// `nodes.len() × per_node` subscribers of one channel, `events` published
/// one after the other by `publisher`; checked, then measured.
async fn fan_out(
    what: &str,
    publisher: &Broker,
    nodes: &[Broker],
    per_node: usize,
    events: usize,
    channel: &str,
) -> Result<FanOut, String> {
    // The channel has a position before anyone joins: each subscriber is
    // told where it starts, which (on Redis) also means its node's
    // SUBSCRIBE is confirmed.
    publisher
        .publish(channel, Publication::new(data(0)))
        .await
        .map_err(|e| format!("{what}: warm-up publish: {e}"))?;
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut recorders = Vec::new();
    let mut subscriptions = Vec::new();
    for node in nodes {
        for _ in 0..per_node {
            let recorder = Arc::new(Recorder::new(delivered.clone(), events));
            let subscription = node.subscribe(recorder.clone(), SubscribeOptions::default());
            subscription
                .join(channel, None)
                .map_err(|e| format!("{what}: join: {e}"))?;
            recorders.push(recorder);
            subscriptions.push(subscription);
        }
    }
    wait_until(
        &format!("{what}: every subscriber told its start"),
        Duration::from_secs(30),
        || recorders.iter().all(|r| r.started().is_some()),
    )
    .await?;
    let total = recorders.len() * events;
    let t0 = now_ns();
    for seq in 1..=events as u64 {
        publisher
            .publish(channel, Publication::new(data(seq)))
            .await
            .map_err(|e| format!("{what}: publish #{seq}: {e}"))?;
    }
    let publish_s = (now_ns() - t0) as f64 / 1e9;
    let got = || delivered.load(Ordering::Acquire);
    if let Err(error) = wait_until(what, Duration::from_secs(60), || got() >= total).await {
        // Who is short, and what they saw instead.
        let short: Vec<String> = recorders
            .iter()
            .enumerate()
            .filter(|(_, r)| r.got().len() < events)
            .take(5)
            .map(|(i, r)| {
                let got = r.got();
                format!(
                    "subscriber {i}: {} messages (seq {:?}..{:?}), {} resets/gaps/closes, started at {:?}",
                    got.len(),
                    got.first().map(|g| g.seq),
                    got.last().map(|g| g.seq),
                    r.oddities.load(Ordering::Acquire),
                    r.started().map(|p| p.to_string()),
                )
            })
            .collect();
        let count = recorders.iter().filter(|r| r.got().len() < events).count();
        return Err(format!(
            "{error}: {} of {total} deliveries; {count} subscribers short, e.g. {short:?}",
            got()
        ));
    }
    // Anything delivered twice would show up here.
    tokio::time::sleep(Duration::from_millis(100)).await;
    check_all(what, &recorders, events)?;
    let mut last = t0;
    let mut latencies = Vec::with_capacity(total);
    for recorder in &recorders {
        for g in recorder.got() {
            last = last.max(g.at_ns);
            latencies.push(g.latency_ns);
        }
    }
    drop(subscriptions);
    Ok(FanOut {
        deliveries_per_s: total as f64 / ((last - t0) as f64 / 1e9),
        publish_s,
        latency: Latency::of(latencies),
    })
}

// ---------------------------------------------------------------------------
// 3. Paced latency.

/// `rate` events per second for `secs` s from `publisher` to one subscriber
/// on `node`: its latencies.
async fn paced(
    what: &str,
    publisher: &Broker,
    node: &Broker,
    rate: u64,
    secs: u64,
    channel: &str,
) -> Result<Latency, String> {
    publisher
        .publish(channel, Publication::new(data(0)))
        .await
        .map_err(|e| format!("{what}: warm-up publish: {e}"))?;
    let n = (rate * secs) as usize;
    let delivered = Arc::new(AtomicUsize::new(0));
    let recorder = Arc::new(Recorder::new(delivered.clone(), n));
    let subscription = node.subscribe(recorder.clone(), SubscribeOptions::default());
    subscription
        .join(channel, None)
        .map_err(|e| format!("{what}: join: {e}"))?;
    wait_until(
        &format!("{what}: subscriber told its start"),
        Duration::from_secs(10),
        || recorder.started().is_some(),
    )
    .await?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=n as u64 {
        tick.tick().await;
        publisher
            .publish(channel, Publication::new(data(seq)))
            .await
            .map_err(|e| format!("{what}: publish #{seq}: {e}"))?;
    }
    wait_until(what, Duration::from_secs(10), || {
        delivered.load(Ordering::Acquire) >= n
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    check_all(what, std::slice::from_ref(&recorder), n)?;
    drop(subscription);
    Ok(Latency::of(
        recorder.got().iter().map(|g| g.latency_ns).collect(),
    ))
}

/// The floor: raw `PUBLISH` on one connection, read by a `SUBSCRIBE`
/// connection (the redis crate, no rill), at the same pace.
async fn raw_paced(url: &str, rate: u64, secs: u64) -> Result<Latency, String> {
    use futures_util::StreamExt;
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .map_err(|e| format!("raw pub/sub: {e}"))?;
    pubsub
        .subscribe("raw:paced")
        .await
        .map_err(|e| format!("raw SUBSCRIBE: {e}"))?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("raw connection: {e}"))?;
    let n = (rate * secs) as usize;
    let reader = tokio::spawn(async move {
        let mut stream = pubsub.on_message();
        let mut latencies = Vec::with_capacity(n);
        while latencies.len() < n {
            let Some(message) = stream.next().await else {
                return Err("raw pub/sub connection ended".to_owned());
            };
            let at = now_ns();
            let bytes = message.get_payload_bytes();
            let (seq, sent) = std::str::from_utf8(bytes)
                .ok()
                .and_then(parse_data)
                .ok_or("raw: unreadable message")?;
            if seq != latencies.len() as u64 + 1 {
                return Err(format!("raw: seq {seq} after {}", latencies.len()));
            }
            latencies.push(at.saturating_sub(sent));
        }
        Ok(latencies)
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=n as u64 {
        tick.tick().await;
        redis::cmd("PUBLISH")
            .arg("raw:paced")
            .arg(data(seq))
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| format!("raw PUBLISH: {e}"))?;
    }
    let latencies = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .map_err(|_| "raw: not every message within 10 s".to_owned())?
        .map_err(|e| format!("raw reader: {e}"))??;
    Ok(Latency::of(latencies))
}

// ---------------------------------------------------------------------------
// The run.

async fn run(cfg: &Config, redis: &RedisServer) -> Result<Value, String> {
    let url = redis.url();
    let started = Instant::now();

    // 1. Publish rate: rill, PUBLISH, rill's script; alternating rounds.
    let script = publish_script();
    let sha = match &script {
        Some(script) => Some(load_script(&url, script).await?),
        None => {
            eprintln!("note: rill's publish script not found in its source; EVALSHA row skipped");
            None
        }
    };
    let body = format!("{{\"d\":\"{}\"}}", data(1));
    let (mut rill_rates, mut publish_rates, mut script_rates) = (vec![], vec![], vec![]);
    let mut spread_rates = vec![];
    let (mut rill_cpu, mut publish_cpu) = (vec![], vec![]);
    for round in 1..=cfg.rounds {
        let rate = rill_publish_rate(&url, cfg.publishes, cfg.tasks, true).await?;
        eprintln!("publish round {round}: rill, a channel per task {rate:.0}/s");
        spread_rates.push(rate);
        let ticks = redis.cpu_ticks();
        let t = Instant::now();
        let rate = rill_publish_rate(&url, cfg.publishes, cfg.tasks, false).await?;
        // Redis's CPU per publication (µs), from its utime+stime (100 Hz).
        if let (Some(a), Some(b)) = (ticks, redis.cpu_ticks()) {
            rill_cpu.push((b - a) as f64 * 1e4 / cfg.publishes as f64);
        }
        eprintln!(
            "publish round {round}: rill {rate:.0}/s ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
        rill_rates.push(rate);
        let ticks = redis.cpu_ticks();
        let port = redis.port;
        let (n, c) = (cfg.benchmark_requests, cfg.tasks);
        let rate = tokio::task::spawn_blocking(move || {
            redis_benchmark(port, n, c, &["PUBLISH", "bench", "x"])
        })
        .await
        .map_err(|e| e.to_string())??;
        if let (Some(a), Some(b)) = (ticks, redis.cpu_ticks()) {
            publish_cpu.push((b - a) as f64 * 1e4 / n as f64);
        }
        eprintln!("publish round {round}: redis-benchmark PUBLISH {rate:.0}/s");
        publish_rates.push(rate);
        if let Some(sha) = &sha {
            let (sha, body) = (sha.clone(), body.clone());
            let n = cfg.publishes;
            let rate = tokio::task::spawn_blocking(move || {
                redis_benchmark(
                    port,
                    n,
                    c,
                    &[
                        "EVALSHA",
                        &sha,
                        "2",
                        "rb:{peer}:meta",
                        "rb:{peer}:log",
                        "rb:{peer}:msgs",
                        &body,
                        "1peer",
                        "1000",
                        "3600",
                        "604800",
                    ],
                )
            })
            .await
            .map_err(|e| e.to_string())??;
            eprintln!("publish round {round}: redis-benchmark EVALSHA (rill's script) {rate:.0}/s");
            script_rates.push(rate);
        }
    }

    // 2. Fan-out: in-memory, then two Redis nodes; alternating rounds.
    let (mut memory_fan, mut redis_fan) = (vec![], vec![]);
    for round in 1..=cfg.rounds {
        let memory = Broker::new();
        let subs = 2 * cfg.subs_per_node;
        let what = format!("fan-out in memory, round {round}");
        let m = tokio::time::timeout(
            Duration::from_secs(120),
            fan_out(
                &what,
                &memory,
                std::slice::from_ref(&memory),
                subs,
                cfg.events,
                "fan",
            ),
        )
        .await
        .map_err(|_| format!("{what}: over 120 s"))??;
        eprintln!(
            "fan-out round {round}: memory {:.0} deliveries/s, p50 {:.2} ms, p99 {:.2} ms",
            m.deliveries_per_s, m.latency.p50, m.latency.p99
        );
        memory_fan.push(m);
        drop(memory);

        let publisher = redis_node(&url).await?;
        let nodes = [redis_node(&url).await?, redis_node(&url).await?];
        let what = format!("fan-out on Redis, round {round}");
        let r = tokio::time::timeout(
            Duration::from_secs(120),
            fan_out(
                &what,
                &publisher,
                &nodes,
                cfg.subs_per_node,
                cfg.events,
                &format!("fan{round}"),
            ),
        )
        .await
        .map_err(|_| format!("{what}: over 120 s"))??;
        eprintln!(
            "fan-out round {round}: redis {:.0} deliveries/s, p50 {:.2} ms, p99 {:.2} ms",
            r.deliveries_per_s, r.latency.p50, r.latency.p99
        );
        redis_fan.push(r);
    }

    // 3. Paced: in memory, on Redis (A → B), raw Redis pub/sub.
    let limit = Duration::from_secs(cfg.secs + 30);
    let memory = Broker::new();
    let paced_memory = tokio::time::timeout(
        limit,
        paced(
            "paced in memory",
            &memory,
            &memory,
            cfg.rate,
            cfg.secs,
            "paced",
        ),
    )
    .await
    .map_err(|_| "paced in memory: over time".to_owned())??;
    eprintln!("paced: memory p50 {:.3} ms", paced_memory.p50);
    let (a, b) = (redis_node(&url).await?, redis_node(&url).await?);
    let paced_redis = tokio::time::timeout(
        limit,
        paced("paced on Redis", &a, &b, cfg.rate, cfg.secs, "paced"),
    )
    .await
    .map_err(|_| "paced on Redis: over time".to_owned())??;
    eprintln!("paced: redis p50 {:.3} ms", paced_redis.p50);
    let paced_raw = tokio::time::timeout(limit, raw_paced(&url, cfg.rate, cfg.secs))
        .await
        .map_err(|_| "paced raw: over time".to_owned())??;
    eprintln!("paced: raw pub/sub p50 {:.3} ms", paced_raw.p50);

    // 4. State writes: spread and hot, in memory and on Redis (2 nodes).
    let state_writes_n = if cfg.quick { 2_000 } else { 10_000 };
    let (mut state_runs, mut round) = (Vec::new(), 0);
    for hot in [false, true] {
        let mut memory_rates = Vec::new();
        let mut redis_rates = Vec::new();
        for _ in 0..cfg.rounds {
            round += 1;
            let group = format!("g{round}");
            let memory = [Store::new()];
            memory_rates.push(state_writes(&memory, cfg.tasks, state_writes_n, hot, &group).await?);
            let nodes = [
                Store::builder().broker(redis_node(&url).await?).build(),
                Store::builder().broker(redis_node(&url).await?).build(),
            ];
            redis_rates.push(state_writes(&nodes, cfg.tasks, state_writes_n, hot, &group).await?);
            eprintln!(
                "state {} round {round}: memory {:.0} writes/s, redis {:.0} writes/s",
                if hot { "hot" } else { "spread" },
                memory_rates.last().copied().unwrap_or(0.0),
                redis_rates.last().copied().unwrap_or(0.0),
            );
        }
        state_runs.push((
            hot,
            median(&memory_rates),
            median(&redis_rates),
            memory_rates,
            redis_rates,
        ));
    }

    // Summary.
    let rill_rate = median(&rill_rates);
    let publish_rate = median(&publish_rates);
    let script_rate = median(&script_rates);
    let vs_publish = rill_rate / publish_rate;
    let spread_rate = median(&spread_rates);
    let fan_median =
        |runs: &[FanOut], f: fn(&FanOut) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let fan_json = |runs: &[FanOut]| {
        json!({
            "deliveries_per_s": fan_median(runs, |r| r.deliveries_per_s),
            "p50_ms": fan_median(runs, |r| r.latency.p50),
            "p99_ms": fan_median(runs, |r| r.latency.p99),
            "max_ms": fan_median(runs, |r| r.latency.max),
            "publish_s": fan_median(runs, |r| r.publish_s),
            "runs": runs.iter().map(|r| json!({
                "deliveries_per_s": r.deliveries_per_s,
                "publish_s": r.publish_s,
                "latency": r.latency.json(),
            })).collect::<Vec<_>>(),
        })
    };
    let fan_vs_memory = fan_median(&redis_fan, |r| r.deliveries_per_s)
        / fan_median(&memory_fan, |r| r.deliveries_per_s);
    let added_p50 = paced_redis.p50 - paced_memory.p50;

    println!();
    println!(
        "Redis broker benchmark ({}; median of {} round(s))",
        if cfg.quick { "quick" } else { "full" },
        cfg.rounds
    );
    println!();
    println!(
        "1. publish, {} tasks, history on        publications/s   vs PUBLISH",
        cfg.tasks
    );
    println!(
        "   rill Broker::publish (RedisBackend)  {:>14.0}   {:>9.2}",
        rill_rate, vs_publish
    );
    println!(
        "   rill, each task its own channel      {:>14.0}   {:>9.2}",
        spread_rate,
        spread_rate / publish_rate
    );
    if !script_rates.is_empty() {
        println!(
            "   redis-benchmark EVALSHA rill script  {:>14.0}   {:>9.2}",
            script_rate,
            script_rate / publish_rate
        );
    }
    println!(
        "   redis-benchmark PUBLISH (the limit)  {:>14.0}   {:>9.2}",
        publish_rate, 1.0
    );
    println!(
        "   Redis CPU per publication: rill {:.1} µs, PUBLISH {:.1} µs",
        median(&rill_cpu),
        median(&publish_cpu)
    );
    println!();
    println!(
        "2. fan-out, {} subscribers, {} events   deliveries/s   p50 ms   p99 ms   max ms",
        2 * cfg.subs_per_node,
        cfg.events
    );
    for (name, runs) in [
        (
            "Redis, 2 nodes × ".to_owned() + &cfg.subs_per_node.to_string(),
            &redis_fan,
        ),
        ("in-memory broker".to_owned(), &memory_fan),
    ] {
        println!(
            "   {:<28} {:>14.0} {:>8.2} {:>8.2} {:>8.2}",
            name,
            fan_median(runs, |r| r.deliveries_per_s),
            fan_median(runs, |r| r.latency.p50),
            fan_median(runs, |r| r.latency.p99),
            fan_median(runs, |r| r.latency.max),
        );
    }
    println!("   Redis / in-memory deliveries/s: {fan_vs_memory:.2}");
    println!();
    println!(
        "3. paced, {} events/s for {} s, 1 subscriber      p50 ms   p99 ms   max ms",
        cfg.rate, cfg.secs
    );
    for (name, l) in [
        ("rill on Redis, node A → node B", paced_redis),
        ("rill in-memory broker", paced_memory),
        ("raw Redis PUBLISH → SUBSCRIBE", paced_raw),
    ] {
        println!(
            "   {:<38} {:>8.3} {:>8.3} {:>8.3}",
            name, l.p50, l.p99, l.max
        );
    }
    println!(
        "   added p50 (Redis − in-memory): {added_p50:.3} ms; over raw pub/sub: {:.3} ms",
        paced_redis.p50 - paced_raw.p50
    );
    println!();
    println!(
        "4. state, Store::update, {} tasks, {} writes    writes/s: Redis (2 nodes)   in memory   ratio",
        cfg.tasks, state_writes_n
    );
    for (hot, memory, redis, _, _) in &state_runs {
        println!(
            "   {:<36} {:>14.0} {:>11.0} {:>7.2}",
            if *hot {
                "one hot item (compare-and-set)"
            } else {
                "an item per task"
            },
            redis,
            memory,
            redis / memory
        );
    }
    println!();
    println!(
        "aims: publish ≥ 50% of PUBLISH: {} ({:.0}%); added p50 ≤ 2 ms: {} ({added_p50:.3} ms)",
        if vs_publish >= 0.5 { "met" } else { "NOT met" },
        vs_publish * 100.0,
        if added_p50 <= 2.0 { "met" } else { "NOT met" },
    );

    Ok(json!({
        "meta": {
            "date": today(),
            "quick": cfg.quick,
            "rounds": cfg.rounds,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "redis_server": redis_version(),
            "elapsed_s": started.elapsed().as_secs_f64(),
            "config": {
                "publishes": cfg.publishes,
                "tasks": cfg.tasks,
                "benchmark_requests": cfg.benchmark_requests,
                "subs_per_node": cfg.subs_per_node,
                "events": cfg.events,
                "rate": cfg.rate,
                "secs": cfg.secs,
                "data_bytes": DATA_SIZE,
            },
        },
        "publish": {
            "rill_per_s": rill_rate,
            "rill_runs": rill_rates,
            "rill_channel_per_task_per_s": spread_rate,
            "rill_channel_per_task_runs": spread_rates,
            "rill_channel_per_task_vs_redis_publish": spread_rate / publish_rate,
            "redis_publish_per_s": publish_rate,
            "redis_publish_runs": publish_rates,
            "rill_script_evalsha_per_s": if script_rates.is_empty() { Value::Null } else { json!(script_rate) },
            "rill_script_evalsha_runs": script_rates,
            "redis_cpu_us_per_rill_publish": median(&rill_cpu),
            "redis_cpu_us_per_publish": median(&publish_cpu),
            "vs_redis_publish": vs_publish,
            "aim": 0.5,
            "aim_met": vs_publish >= 0.5,
        },
        "fanout": {
            "subscribers": 2 * cfg.subs_per_node,
            "events": cfg.events,
            "redis_two_nodes": fan_json(&redis_fan),
            "memory": fan_json(&memory_fan),
            "vs_memory": fan_vs_memory,
            "checked": "every subscriber got every event once, in order, at consecutive offsets",
        },
        "paced": {
            "rate_per_s": cfg.rate,
            "secs": cfg.secs,
            "redis_a_to_b": paced_redis.json(),
            "memory": paced_memory.json(),
            "raw_redis_pubsub": paced_raw.json(),
            "added_p50_ms": added_p50,
            "added_p50_over_raw_ms": paced_redis.p50 - paced_raw.p50,
            "aim_ms": 2.0,
            "aim_met": added_p50 <= 2.0,
        },
        "state": {
            "tasks": cfg.tasks,
            "writes": state_writes_n,
            "checked": "the counts add up to the writes made",
            "runs": state_runs.iter().map(|(hot, memory, redis, memory_runs, redis_runs)| json!({
                "items": if *hot { "one hot item" } else { "an item per task" },
                "redis_two_nodes_per_s": redis,
                "memory_per_s": memory,
                "vs_memory": redis / memory,
                "redis_runs": redis_runs,
                "memory_runs": memory_runs,
            })).collect::<Vec<_>>(),
        },
    }))
}

fn redis_version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let mut failed = false;
    {
        // Dropped (and so killed) before exiting, whatever happens.
        let redis = match RedisServer::start() {
            Ok(redis) => redis,
            Err(error) => {
                eprintln!("redis_bench: {error}");
                std::process::exit(1);
            }
        };
        eprintln!(
            "redis-server pid {} on 127.0.0.1:{}",
            redis.child.id(),
            redis.port
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let result = runtime.block_on(run(&cfg, &redis));
        // Brokers' background tasks end with the runtime, before Redis.
        drop(runtime);
        match result {
            Ok(report) => {
                if let Some(dir) = cfg.out.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let text = serde_json::to_string_pretty(&report).expect("JSON");
                match std::fs::write(&cfg.out, text + "\n") {
                    Ok(()) => println!("\nJSON: {}", cfg.out.display()),
                    Err(error) => {
                        eprintln!("cannot write {}: {error}", cfg.out.display());
                        failed = true;
                    }
                }
            }
            Err(error) => {
                eprintln!("redis_bench FAILED: {error}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
