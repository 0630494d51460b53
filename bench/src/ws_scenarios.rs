//! The WebSocket scenarios (issue 10): fan-out, idle memory, disconnect
//! detection, echo round trips and one-way event throughput. Each is bounded
//! in count and time.

use crate::client::HttpClient;
use crate::scenarios::{collect_subscribers, time_disconnects, unix_nanos, Config, Subscribed};
use crate::servers::Server;
use crate::ws::{event_line, read_events, ws_connect, LineCheck, WsConn, TEXT};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const CONNECT: Duration = Duration::from_secs(20);

async fn subscriber(
    addr: SocketAddr,
    events: usize,
    ready: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
    deadline: Instant,
) -> Result<Subscribed, String> {
    let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
    let mut conn = ws_connect(addr, "/bench/ws/fanout", CONNECT).await?;
    drop(permit);
    ready.fetch_add(1, Ordering::SeqCst);
    let mut check = LineCheck::new(events);
    check.now_nanos = unix_nanos();
    let last = read_events(&mut conn, &mut check, events, deadline).await?;
    if check.latencies.len() != events {
        return Err(format!(
            "{} events, expected {events}",
            check.latencies.len()
        ));
    }
    if std::env::var_os("RILL_BENCH_DEBUG").is_some() {
        eprintln!("messages {}", check.messages);
    }
    Ok(Subscribed {
        latencies: check.latencies,
        last,
    })
}

/// `subs` WebSocket subscribers of `/bench/ws/fanout`, then one
/// `POST /bench/ws/publish?n=events&size=`; each checks seq 1..=events in
/// order. Returns deliveries/s and latency p50/p99/max in ms.
pub async fn ws_fanout(addr: SocketAddr, cfg: &Config) -> Result<Vec<f64>, String> {
    let (subs, events, size) = (cfg.ws_fanout_subs, cfg.ws_fanout_events, cfg.fanout_size);
    let mut stats = HttpClient::connect(addr).await?;
    let mut publisher = HttpClient::connect(addr).await?;
    let ready = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(90);
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut set = JoinSet::new();
    for _ in 0..subs {
        let (ready, gate) = (ready.clone(), gate.clone());
        set.spawn(subscriber(addr, events, ready, gate, deadline));
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
    // The handshakes are answered before the sockets are handed over.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let path = format!("/bench/ws/publish?n={events}&size={size}");
    let (status, body) = publisher
        .request("POST", &path, Duration::from_secs(60))
        .await?;
    if status != 200 {
        set.abort_all();
        return Err(format!(
            "publish: status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    if std::env::var_os("RILL_BENCH_DEBUG").is_some() {
        eprintln!(
            "published in {:?} {}",
            t0.elapsed(),
            String::from_utf8_lossy(&body)
        );
    }
    collect_subscribers(set, subs, events, t0).await
}

/// Opens `count` idle WebSockets to `/bench/ws/idle`, 256 at a time.
async fn open_idle(addr: SocketAddr, count: usize) -> Result<Vec<WsConn>, String> {
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut set = JoinSet::new();
    for _ in 0..count {
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            ws_connect(addr, "/bench/ws/idle", CONNECT).await
        });
    }
    let mut conns = Vec::with_capacity(count);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(conn) => conns.push(conn),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    match first_error {
        Some(e) => Err(format!(
            "{} of {count} idle sockets failed to open; first: {e}",
            count - conns.len()
        )),
        None => Ok(conns),
    }
}

/// Resident memory per idle WebSocket, in KiB.
pub async fn ws_idle(server: &Server, cfg: &Config) -> Result<Vec<f64>, String> {
    let mut stats = HttpClient::connect(server.addr).await?;
    stats
        .wait_active(|a| a == 0, Duration::from_secs(5))
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_kib()?;
    let n = cfg.ws_idle_conns;
    let conns = open_idle(server.addr, n).await?;
    stats
        .wait_active(|a| a as usize >= n, Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib()?;
    let still = stats.active().await?;
    drop(conns);
    if (still as usize) < n {
        return Err(format!("only {still} of {n} idle sockets still open"));
    }
    Ok(vec![after.saturating_sub(before) as f64 / n as f64])
}

/// `disconnect_conns` idle WebSockets whose peers go away at once (FIN, no
/// close frame): time until the server counts each gone, p50/p99/max ms.
pub async fn ws_disconnect(addr: SocketAddr, cfg: &Config) -> Result<Vec<f64>, String> {
    let n = cfg.disconnect_conns;
    let mut stats = HttpClient::connect(addr).await?;
    let conns = open_idle(addr, n).await?;
    let base = stats
        .wait_active(|a| a as usize >= n, Duration::from_secs(30))
        .await?;
    let streams = conns.into_iter().map(|c| c.stream).collect();
    time_disconnects(&mut stats, streams, base, n).await
}

/// Echo round trips on one connection: window 1 (send, wait, send…) and
/// window 16 (16 in flight). Round trips/s for each.
pub async fn ws_echo(addr: SocketAddr, cfg: &Config) -> Result<Vec<f64>, String> {
    let n = cfg.ws_echo_n;
    let mut values = Vec::new();
    for window in [1usize, 16] {
        let mut conn = ws_connect(addr, "/bench/ws/echo", CONNECT).await?;
        let payload = [b'x'; 32];
        // Warm-up.
        echo_run(&mut conn, &payload, window, n / 10).await?;
        let t0 = Instant::now();
        echo_run(&mut conn, &payload, window, n).await?;
        values.push(n as f64 / t0.elapsed().as_secs_f64());
    }
    Ok(values)
}

async fn echo_run(
    conn: &mut WsConn,
    payload: &[u8],
    window: usize,
    n: usize,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    let mut received = 0;
    while sent < window.min(n) {
        conn.send(TEXT, payload).await?;
        sent += 1;
    }
    while received < n {
        while let Some(frame) = conn.next_frame()? {
            if frame.opcode != TEXT {
                continue;
            }
            if frame.payload.1 - frame.payload.0 != payload.len() {
                return Err("an echo of another length".into());
            }
            received += 1;
            if sent < n {
                conn.send(TEXT, payload).await?;
                sent += 1;
            }
        }
        if received >= n {
            break;
        }
        match tokio::time::timeout_at(deadline.into(), conn.fill()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(format!("EOF after {received} echoes")),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(format!("timed out after {received} of {n} echoes")),
        }
    }
    Ok(())
}

/// One-way events: on `GET /bench/ws/flood`, the client's first message
/// (`{"event":"flood","data":{"n":N,"size":S}}`) asks for `n` event lines,
/// sent as fast as the server can; events/s from that message to the last
/// byte, every seq checked in order.
pub async fn ws_oneway(addr: SocketAddr, cfg: &Config) -> Result<Vec<f64>, String> {
    let (n, size) = (cfg.ws_oneway_n, cfg.fanout_size);
    let once = |n: usize| async move {
        let mut conn = ws_connect(addr, "/bench/ws/flood", CONNECT).await?;
        let ask = format!("{{\"event\":\"flood\",\"data\":{{\"n\":{n},\"size\":{size}}}}}");
        let t0 = Instant::now();
        conn.send(TEXT, ask.as_bytes()).await?;
        let mut check = LineCheck::new(n);
        let deadline = Instant::now() + Duration::from_secs(60);
        read_events(&mut conn, &mut check, n, deadline).await?;
        Ok::<f64, String>(n as f64 / t0.elapsed().as_secs_f64())
    };
    once(n / 10).await?;
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(once(n).await?);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    Ok(vec![rates[1]])
}

/// The line a server sends for event `seq` (what the checker parses), for
/// the servers' own use.
pub fn contract_line(seq: u64, size: usize) -> String {
    event_line(&crate::publish_data(seq, size))
}
