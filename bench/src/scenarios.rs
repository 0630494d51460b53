//! The measured scenarios. Each run gets a freshly started server and
//! returns one value per metric of its scenario, or an error; every wait is
//! bounded by a timeout.

use crate::client::{fetch_blocking, open_stream, HttpClient};
use crate::servers::{Kind, Server};
use crate::sse::{BurstCheck, FanoutCheck, SseParser};
use crate::stats::quantile;
use crate::wire::BodyDecoder;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

/// Sizes and durations of every scenario.
#[derive(Debug, Clone)]
pub struct Config {
    /// Events in the single-stream SSE burst.
    pub burst_n: usize,
    /// Data bytes per burst event.
    pub burst_size: usize,
    /// Chunks in the live body.
    pub live_n: usize,
    /// Bytes per live chunk.
    pub live_size: usize,
    /// Idle SSE connections for the RSS and CPU runs.
    pub idle_conns: usize,
    /// Heartbeat period asked of idle streams (`?heartbeat=`).
    pub idle_heartbeat: u64,
    /// How long the idle CPU is sampled.
    pub cpu_secs: u64,
    /// Idle connections closed at once in the disconnect run.
    pub disconnect_conns: usize,
    /// Fan-out subscribers.
    pub fanout_subs: usize,
    /// Events published in the fan-out run.
    pub fanout_events: usize,
    /// Data bytes per fan-out event.
    pub fanout_size: usize,
    /// Subscribers of the paced run.
    pub paced_subs: usize,
    /// Length of the paced run.
    pub paced_secs: u64,
    /// Interval between paced events.
    pub paced_interval_ms: u64,
    /// Simultaneous connects in the backlog run.
    pub backlog_conns: usize,
    /// WebSocket fan-out subscribers.
    pub ws_fanout_subs: usize,
    /// Events published in the WebSocket fan-out run.
    pub ws_fanout_events: usize,
    /// Idle WebSockets for the memory run.
    pub ws_idle_conns: usize,
    /// Echo round trips per window size.
    pub ws_echo_n: usize,
    /// Events in the one-way WebSocket run.
    pub ws_oneway_n: usize,
    /// ActionCable clients subscribed to one stream.
    pub cable_subs: usize,
    /// Broadcasts sent to them, one at a time.
    pub cable_events: usize,
    /// Interval between two broadcasts.
    pub cable_interval_ms: u64,
    /// SSE subscribers of the keyed-state group.
    pub state_subs: usize,
    /// Updates written while they follow it.
    pub state_updates: usize,
    /// Items of the group (update k goes to item k mod items).
    pub state_items: usize,
    /// Updates written before anyone subscribes (the group's items and a
    /// full history of changes: the broker keeps 1,000 per group).
    pub state_prefill: usize,
}

impl Config {
    /// The sizes of issue 5.
    pub fn full() -> Self {
        Config {
            burst_n: 1_000_000,
            burst_size: 32,
            live_n: 100_000,
            live_size: 1024,
            idle_conns: 10_000,
            idle_heartbeat: 15,
            cpu_secs: 60,
            disconnect_conns: 100,
            fanout_subs: 1000,
            fanout_events: 1000,
            fanout_size: 64,
            paced_subs: 1000,
            paced_secs: 10,
            paced_interval_ms: 10,
            backlog_conns: 1000,
            ws_fanout_subs: 1000,
            ws_fanout_events: 1000,
            ws_idle_conns: 10_000,
            ws_echo_n: 20_000,
            ws_oneway_n: 1_000_000,
            cable_subs: 10_000,
            cable_events: 50,
            // Longer than one broadcast takes to reach 10,000 clients here
            // (150–300 ms), so that latency is measured, not queueing.
            cable_interval_ms: 500,
            state_subs: 1000,
            state_updates: 10_000,
            state_items: 100,
            state_prefill: 1000,
        }
    }

    /// A fast smoke run: same shapes, smaller counts.
    pub fn quick() -> Self {
        Config {
            burst_n: 200_000,
            live_n: 20_000,
            cpu_secs: 10,
            fanout_events: 200,
            paced_secs: 2,
            ws_fanout_events: 200,
            ws_echo_n: 5_000,
            ws_oneway_n: 200_000,
            cable_subs: 1000,
            cable_events: 20,
            cable_interval_ms: 100,
            state_subs: 100,
            state_updates: 1000,
            ..Config::full()
        }
    }
}

/// One measured quantity.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Key in the JSON.
    pub name: &'static str,
    /// Unit, for people.
    pub unit: &'static str,
    /// Whether more is better.
    pub higher_is_better: bool,
}

const fn metric(name: &'static str, unit: &'static str, higher_is_better: bool) -> Metric {
    Metric {
        name,
        unit,
        higher_is_better,
    }
}

/// A scenario: what it runs and what it reports.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Key in the JSON and for `--only`.
    pub id: &'static str,
    /// Title, for people.
    pub title: &'static str,
    /// What each run returns, in order.
    pub metrics: &'static [Metric],
    /// Servers that implement what it needs.
    pub servers: &'static [Kind],
}

const STREAMING: &[Kind] = &[Kind::Rill, Kind::Axum];
/// rill, axum as its guide writes it, and axum tuned (batched writes, 4 KiB
/// read buffers).
const WEBSOCKET: &[Kind] = &[Kind::Rill, Kind::Axum, Kind::AxumTuned];
const LATENCY: [Metric; 3] = [
    metric("p50_ms", "ms", false),
    metric("p99_ms", "ms", false),
    metric("max_ms", "ms", false),
];

/// Every scenario, in run order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "burst",
        title: "single-stream SSE burst",
        metrics: &[metric("events_per_s", "events/s", true)],
        servers: &Kind::ALL,
    },
    Scenario {
        id: "live",
        title: "live body",
        metrics: &[
            metric("chunks_per_s", "chunks/s", true),
            metric("mb_per_s", "MB/s", true),
        ],
        servers: &Kind::ALL,
    },
    Scenario {
        id: "idle",
        title: "idle SSE connections: RSS and CPU",
        metrics: &[
            metric("rss_kib_per_conn", "KiB/conn", false),
            metric("cpu_pct_one_core", "% of a core", false),
        ],
        servers: STREAMING,
    },
    Scenario {
        id: "disconnect",
        title: "idle disconnect detection",
        metrics: &LATENCY,
        servers: STREAMING,
    },
    Scenario {
        id: "fanout",
        title: "hub fan-out",
        metrics: &[
            metric("deliveries_per_s", "deliveries/s", true),
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
        ],
        servers: &Kind::ALL,
    },
    Scenario {
        id: "paced",
        title: "paced fan-out latency",
        metrics: &LATENCY,
        servers: &Kind::ALL,
    },
    Scenario {
        id: "backlog",
        title: "simultaneous connects",
        metrics: &[
            metric("failures", "connections", false),
            metric("over_1s", "connections", false),
            metric("elapsed_ms", "ms", false),
            metric("listen_overflows", "kernel count", false),
            metric("listen_drops", "kernel count", false),
            metric("softnet_drops", "kernel count", false),
        ],
        servers: STREAMING,
    },
    Scenario {
        id: "ws_fanout",
        title: "WebSocket fan-out",
        metrics: &[
            metric("deliveries_per_s", "deliveries/s", true),
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
        ],
        servers: WEBSOCKET,
    },
    Scenario {
        id: "ws_idle",
        title: "idle WebSockets: RSS",
        metrics: &[metric("rss_kib_per_conn", "KiB/conn", false)],
        servers: WEBSOCKET,
    },
    Scenario {
        id: "ws_disconnect",
        title: "idle WebSocket disconnect detection",
        metrics: &LATENCY,
        servers: STREAMING,
    },
    Scenario {
        id: "ws_echo",
        title: "WebSocket echo round trips",
        metrics: &[
            metric("round_trips_per_s_window_1", "round trips/s", true),
            metric("round_trips_per_s_window_16", "round trips/s", true),
        ],
        servers: STREAMING,
    },
    Scenario {
        id: "ws_oneway",
        title: "one-way WebSocket events",
        metrics: &[metric("events_per_s", "events/s", true)],
        servers: WEBSOCKET,
    },
    Scenario {
        id: "cable_fanout",
        title: "ActionCable clients on one stream: broadcast latency and memory",
        metrics: &[
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
            metric("rss_kib_per_conn", "KiB/conn", false),
        ],
        servers: WEBSOCKET,
    },
    Scenario {
        id: "state_fanout",
        title: "keyed state: subscribers of one group, updates as fast as the store takes them",
        metrics: &[
            metric("updates_per_s", "updates/s", true),
            metric("write_updates_per_s", "updates/s", true),
            LATENCY[0],
            LATENCY[1],
            LATENCY[2],
            metric("deliveries_per_s", "deliveries/s", true),
            metric("hub_deliveries_per_s", "deliveries/s", true),
            metric("vs_hub", "× hub fan-out", true),
            metric("cpu_ns_per_delivery", "server CPU ns", false),
            metric("hub_cpu_ns_per_delivery", "server CPU ns", false),
            metric("rss_kib_per_sub", "KiB/subscriber", false),
            metric("store_kib_per_group", "KiB", false),
            metric("resets", "resets", false),
            metric("mismatches", "subscribers", false),
        ],
        servers: &[Kind::Rill],
    },
];

/// Runs `scenario` once against `server`.
pub async fn run(scenario: &Scenario, server: &Server, cfg: &Config) -> Result<Vec<f64>, String> {
    let addr = server.addr;
    match scenario.id {
        "burst" => {
            let cfg = cfg.clone();
            blocking(move || burst(addr, cfg.burst_n, cfg.burst_size)).await
        }
        "live" => {
            let cfg = cfg.clone();
            blocking(move || live(addr, cfg.live_n, cfg.live_size)).await
        }
        "idle" => idle(server, cfg).await,
        "disconnect" => disconnect(addr, cfg).await,
        "fanout" => {
            fanout(
                addr,
                cfg.fanout_subs,
                cfg.fanout_events,
                cfg.fanout_size,
                None,
            )
            .await
        }
        "paced" => {
            let events = (cfg.paced_secs * 1000 / cfg.paced_interval_ms.max(1)) as usize;
            let pace = Duration::from_millis(cfg.paced_interval_ms);
            let mut values =
                fanout(addr, cfg.paced_subs, events, cfg.fanout_size, Some(pace)).await?;
            values.remove(0);
            Ok(values)
        }
        "backlog" => backlog(addr, cfg.backlog_conns).await,
        "ws_fanout" => crate::ws_scenarios::ws_fanout(addr, cfg).await,
        "ws_idle" => crate::ws_scenarios::ws_idle(server, cfg).await,
        "ws_disconnect" => crate::ws_scenarios::ws_disconnect(addr, cfg).await,
        "ws_echo" => crate::ws_scenarios::ws_echo(addr, cfg).await,
        "ws_oneway" => crate::ws_scenarios::ws_oneway(addr, cfg).await,
        "cable_fanout" => crate::cable::cable_fanout(server, cfg).await,
        "state_fanout" => crate::state::state_fanout(server, cfg).await,
        other => Err(format!("unknown scenario {other}")),
    }
}

async fn blocking(
    f: impl FnOnce() -> Result<Vec<f64>, String> + Send + 'static,
) -> Result<Vec<f64>, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("client thread: {e}"))?
}

fn burst_once(addr: SocketAddr, n: usize, size: usize) -> Result<f64, String> {
    let mut parser = SseParser::new(size);
    let mut check = BurstCheck::new(size);
    let path = format!("/bench/burst?n={n}&size={size}");
    let got = fetch_blocking(addr, &path, Duration::from_secs(120), |b| {
        parser.feed(b, &mut check)
    })?;
    let rate = n as f64 / got.elapsed.as_secs_f64();
    check.verify(n as u64).map_err(|e| {
        format!(
            "verification failed at an unverified {:.2} M events/s: {e}",
            rate / 1e6
        )
    })?;
    Ok(rate)
}

/// Timed requests per server and round; each round reports their median.
/// A single transfer lasts 30–700 ms here, short enough for one
/// descheduling to move it by a third.
const REPEATS: usize = 5;

/// The median of `REPEATS` runs of `once`.
fn median_of(mut once: impl FnMut() -> Result<f64, String>) -> Result<f64, String> {
    let mut runs = (0..REPEATS)
        .map(|_| once())
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(f64::total_cmp);
    Ok(runs[REPEATS / 2])
}

/// `GET /bench/burst`: events/s (median of 5 requests), every id checked,
/// after one identical warm-up request (which also lets raw hyper cache its
/// pre-encoded body).
pub fn burst(addr: SocketAddr, n: usize, size: usize) -> Result<Vec<f64>, String> {
    // The warm-up only faults pages in; its verdict is the measured run's.
    let _ = burst_once(addr, n, size);
    Ok(vec![median_of(|| burst_once(addr, n, size))?])
}

fn live_once(addr: SocketAddr, n: usize, size: usize) -> Result<f64, String> {
    let path = format!("/bench/live?n={n}&size={size}");
    let got = fetch_blocking(addr, &path, Duration::from_secs(120), |_| Ok(()))?;
    let want = (n * size) as u64;
    if got.body_bytes != want {
        return Err(format!(
            "got {} body bytes, expected {want}",
            got.body_bytes
        ));
    }
    Ok(got.elapsed.as_secs_f64())
}

/// `GET /bench/live`: chunks/s and MB/s (median of 5 requests), total bytes
/// checked, after one identical warm-up request.
pub fn live(addr: SocketAddr, n: usize, size: usize) -> Result<Vec<f64>, String> {
    live_once(addr, n, size).map_err(|e| format!("warm-up: {e}"))?;
    // Seconds per transfer: the median time gives the median rate.
    let secs = median_of(|| live_once(addr, n, size))?;
    Ok(vec![n as f64 / secs, (n * size) as f64 / 1e6 / secs])
}

/// Opens `count` idle SSE streams, at most 256 connecting at a time.
async fn open_idle(
    addr: SocketAddr,
    count: usize,
    heartbeat: u64,
) -> Result<Vec<tokio::net::TcpStream>, String> {
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut set = JoinSet::new();
    let path = format!("/bench/idle?heartbeat={heartbeat}");
    for _ in 0..count {
        let (gate, path) = (gate.clone(), path.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            open_stream(addr, &path, Duration::from_secs(20))
                .await
                .map(|s| s.stream)
        });
    }
    let mut streams = Vec::with_capacity(count);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(stream) => streams.push(stream),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    match first_error {
        Some(e) => Err(format!(
            "{} of {count} idle streams failed to open; first: {e}",
            count - streams.len()
        )),
        None => Ok(streams),
    }
}

/// RSS per idle SSE connection (KiB) and the CPU they cost over `cpu_secs`.
async fn idle(server: &Server, cfg: &Config) -> Result<Vec<f64>, String> {
    let mut stats = HttpClient::connect(server.addr).await?;
    stats
        .wait_active(|a| a == 0, Duration::from_secs(5))
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_kib()?;
    let n = cfg.idle_conns;
    let streams = open_idle(server.addr, n, cfg.idle_heartbeat).await?;
    stats
        .wait_active(|a| a as usize >= n, Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib()?;
    let kib_per_conn = after.saturating_sub(before) as f64 / n as f64;
    let cpu0 = server.cpu_seconds()?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(cfg.cpu_secs)).await;
    let cpu1 = server.cpu_seconds()?;
    let pct = (cpu1 - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let still = stats.active().await?;
    drop(streams);
    if (still as usize) < n {
        return Err(format!(
            "only {still} of {n} idle streams still open after the CPU window"
        ));
    }
    Ok(vec![kib_per_conn, pct])
}

/// Closes `disconnect_conns` idle streams at once (FIN) and times, from the
/// first `shutdown`, when `/bench/stats` shows each of them gone.
async fn disconnect(addr: SocketAddr, cfg: &Config) -> Result<Vec<f64>, String> {
    let n = cfg.disconnect_conns;
    let mut stats = HttpClient::connect(addr).await?;
    let streams = open_idle(addr, n, cfg.idle_heartbeat).await?;
    let base = stats
        .wait_active(|a| a as usize >= n, Duration::from_secs(30))
        .await?;
    time_disconnects(&mut stats, streams, base, n).await
}

/// Shuts the write side of `streams` (FIN) at once and times, from the
/// first `shutdown`, when `/bench/stats` shows each gone (`base` active
/// before); p50/p99/max in ms.
pub async fn time_disconnects(
    stats: &mut HttpClient,
    streams: Vec<tokio::net::TcpStream>,
    base: u64,
    n: usize,
) -> Result<Vec<f64>, String> {
    // Leave the reactor before timing, so the close loop is just syscalls.
    let streams: Vec<std::net::TcpStream> = streams
        .into_iter()
        .map(|s| s.into_std())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("into_std: {e}"))?;
    let t0 = Instant::now();
    for s in &streams {
        let _ = s.shutdown(Shutdown::Write);
    }
    // noticed[k] = time at which k+1 closes had been noticed.
    let mut noticed: Vec<u64> = Vec::with_capacity(n);
    let deadline = t0 + Duration::from_secs(20);
    let mut next_poll = t0;
    while noticed.len() < n {
        let active = stats.active().await?;
        let gone = base.saturating_sub(active) as usize;
        let at = t0.elapsed().as_micros() as u64;
        while noticed.len() < gone.min(n) {
            noticed.push(at);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {n} disconnects noticed within 20 s",
                noticed.len()
            ));
        }
        next_poll += Duration::from_millis(1);
        tokio::time::sleep_until(next_poll.into()).await;
    }
    drop(streams);
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(vec![
        ms(quantile(&noticed, 0.5)),
        ms(quantile(&noticed, 0.99)),
        ms(quantile(&noticed, 1.0)),
    ])
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one fan-out subscriber measured.
pub(crate) struct Subscribed {
    /// Latency of each event, in ns.
    pub(crate) latencies: Vec<u64>,
    /// When its last event arrived.
    pub(crate) last: Instant,
}

/// One `/bench/fanout` subscriber: ids 1..=events in order, latency of each.
async fn subscriber(
    addr: SocketAddr,
    events: usize,
    size: usize,
    ready: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
    deadline: Instant,
) -> Result<Subscribed, String> {
    let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
    let mut open = open_stream(addr, "/bench/fanout", Duration::from_secs(20)).await?;
    drop(permit);
    ready.fetch_add(1, Ordering::SeqCst);
    let mut decoder = BodyDecoder::new(open.head.body);
    let mut parser = SseParser::new(size);
    let mut check = FanoutCheck::new(events);
    check.now_nanos = unix_nanos();
    let mut last = Instant::now();
    decoder.feed(&open.early, |b| parser.feed(b, &mut check), |e| e)?;
    let mut buf = vec![0u8; 16 * 1024];
    while check.latencies.len() < events {
        let read = tokio::time::timeout_at(deadline.into(), open.stream.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(0)) => return Err(format!("closed after {} events", check.latencies.len())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => {
                return Err(format!(
                    "timed out after {} of {events} events",
                    check.latencies.len()
                ))
            }
        };
        check.now_nanos = unix_nanos();
        last = Instant::now();
        decoder.feed(&buf[..n], |b| parser.feed(b, &mut check), |e| e)?;
    }
    if check.latencies.len() != events {
        return Err(format!(
            "{} events, expected {events}",
            check.latencies.len()
        ));
    }
    Ok(Subscribed {
        latencies: check.latencies,
        last,
    })
}

/// `subs` subscribers, then `events` published at once (`pace: None`) or
/// one per `pace`; returns deliveries/s and latency p50/p99/max in ms.
pub(crate) async fn fanout(
    addr: SocketAddr,
    subs: usize,
    events: usize,
    size: usize,
    pace: Option<Duration>,
) -> Result<Vec<f64>, String> {
    let mut stats = HttpClient::connect(addr).await?;
    let mut publisher = HttpClient::connect(addr).await?;
    let ready = Arc::new(AtomicUsize::new(0));
    let publishing = pace.map_or(Duration::ZERO, |p| p * events as u32);
    let deadline = Instant::now() + Duration::from_secs(60) + publishing;
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut set = JoinSet::new();
    for _ in 0..subs {
        let (ready, gate) = (ready.clone(), gate.clone());
        set.spawn(subscriber(addr, events, size, ready, gate, deadline));
    }
    let wait_ready = async {
        while ready.load(Ordering::SeqCst) < subs {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), wait_ready)
        .await
        .is_err()
    {
        set.abort_all();
        return Err(format!(
            "only {} of {subs} subscribers connected",
            ready.load(Ordering::SeqCst)
        ));
    }
    stats
        .wait_active(|a| a as usize >= subs, Duration::from_secs(30))
        .await?;
    let t0 = Instant::now();
    let timeout = Duration::from_secs(60);
    match pace {
        None => {
            let path = format!("/bench/publish?n={events}&size={size}");
            let (status, body) = publisher.request("POST", &path, timeout).await?;
            if status != 200 {
                return Err(format!(
                    "publish: status {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
        Some(every) => {
            let mut tick = tokio::time::interval(every);
            let path = format!("/bench/publish?n=1&size={size}");
            for _ in 0..events {
                tick.tick().await;
                let (status, _) = publisher.request("POST", &path, timeout).await?;
                if status != 200 {
                    return Err(format!("publish: status {status}"));
                }
            }
        }
    }
    collect_subscribers(set, subs, events, t0).await
}

/// Waits for every subscriber task of a fan-out whose publishing started at
/// `t0`: deliveries/s (all deliveries / `t0` → the last one) and latency
/// p50/p99/max in ms; an error naming how many failed, and the first.
pub(crate) async fn collect_subscribers(
    set: JoinSet<Result<Subscribed, String>>,
    subs: usize,
    events: usize,
    t0: Instant,
) -> Result<Vec<f64>, String> {
    let all = join_subscribers(set, subs).await?;
    Ok(fanout_figures(&all, events, t0))
}

/// Waits for every subscriber task: what each returned, or an error naming
/// how many failed, and the first.
pub(crate) async fn join_subscribers<T: 'static>(
    mut set: JoinSet<Result<T, String>>,
    subs: usize,
) -> Result<Vec<T>, String> {
    let mut all = Vec::with_capacity(subs);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(sub) => all.push(sub),
            Err(e) => {
                failed += 1;
                first_error = first_error.or(Some(e));
            }
        }
    }
    match first_error {
        Some(e) => Err(format!("{failed} of {subs} subscribers failed; first: {e}")),
        None => Ok(all),
    }
}

/// Deliveries/s (all deliveries / `t0` → the last one) and latency
/// p50/p99/max in ms over every subscriber.
pub(crate) fn fanout_figures(subs: &[Subscribed], events: usize, t0: Instant) -> Vec<f64> {
    let mut all = Vec::with_capacity(subs.len() * events);
    let mut last = t0;
    for sub in subs {
        all.extend_from_slice(&sub.latencies);
        last = last.max(sub.last);
    }
    let secs = last.duration_since(t0).as_secs_f64();
    all.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    vec![
        all.len() as f64 / secs,
        ms(quantile(&all, 0.5)),
        ms(quantile(&all, 0.99)),
        ms(quantile(&all, 1.0)),
    ]
}

/// `conns` connects started at once, each asking `/bench/stats`: failures,
/// connections that took over a second (a dropped SYN is retried after 1 s),
/// and the time until all have answered or failed.
async fn backlog(addr: SocketAddr, conns: usize) -> Result<Vec<f64>, String> {
    let drops0 = kernel_drops();
    let t0 = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..conns {
        set.spawn(async move {
            let start = Instant::now();
            let mut client = HttpClient::connect(addr).await?;
            client.active().await?;
            Ok::<_, String>(start.elapsed())
        });
    }
    let (mut failures, mut slow) = (0usize, 0usize);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(took) if took >= Duration::from_millis(900) => slow += 1,
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                first_error = first_error.or(Some(e));
            }
        }
    }
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let drops1 = kernel_drops();
    if let Some(e) = first_error {
        eprintln!("  backlog: {failures} failures; first: {e}");
    }
    let delta = |i: usize| drops1[i].saturating_sub(drops0[i]) as f64;
    Ok(vec![
        failures as f64,
        slow as f64,
        elapsed_ms,
        delta(0),
        delta(1),
        delta(2),
    ])
}

/// Kernel counters that explain lost SYNs: TcpExt `ListenOverflows` and
/// `ListenDrops` (accept queue full) and the softnet backlog drops summed
/// over CPUs (`netdev_max_backlog` exceeded; loopback packets queue there).
fn kernel_drops() -> [u64; 3] {
    let mut out = [0u64; 3];
    if let Ok(netstat) = std::fs::read_to_string("/proc/net/netstat") {
        let lines: Vec<&str> = netstat
            .lines()
            .filter(|l| l.starts_with("TcpExt:"))
            .collect();
        if let [names, values] = lines[..] {
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                let slot = match name {
                    "ListenOverflows" => 0,
                    "ListenDrops" => 1,
                    _ => continue,
                };
                out[slot] = value.parse().unwrap_or(0);
            }
        }
    }
    if let Ok(softnet) = std::fs::read_to_string("/proc/net/softnet_stat") {
        out[2] = softnet
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|v| u64::from_str_radix(v, 16).ok())
            .sum();
    }
    out
}

/// The client alone: events/s of the framing + SSE parser over in-memory
/// bytes in 1 MiB reads, for a `Content-Length` body (raw hyper's wire) and
/// for one chunk per event (axum's wire).
pub fn client_ceiling(n: usize, size: usize) -> Result<(f64, f64), String> {
    let data = "x".repeat(size);
    let mut plain = Vec::with_capacity(n * (size + 16));
    let mut chunked = Vec::with_capacity(n * (size + 24));
    for i in 1..=n {
        let event = format!("id: {i}\ndata: {data}\n\n");
        plain.extend_from_slice(event.as_bytes());
        chunked.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let rate = |wire: &[u8], kind| -> Result<f64, String> {
        let mut best = 0f64;
        for _ in 0..3 {
            let mut parser = SseParser::new(size);
            let mut check = BurstCheck::new(size);
            let mut decoder = BodyDecoder::new(kind);
            let t0 = Instant::now();
            for piece in wire.chunks(1 << 20) {
                decoder.feed(piece, |b| parser.feed(b, &mut check), |e| e)?;
            }
            let secs = t0.elapsed().as_secs_f64();
            check
                .verify(n as u64)
                .map_err(|e| format!("ceiling: {e}"))?;
            best = best.max(n as f64 / secs);
        }
        Ok(best)
    };
    Ok((
        rate(&plain, crate::wire::BodyKind::Length(plain.len() as u64))?,
        rate(&chunked, crate::wire::BodyKind::Chunked)?,
    ))
}
