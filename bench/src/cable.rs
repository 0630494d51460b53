//! The ActionCable scenario (`cable_fanout`): N cable clients subscribed to
//! one stream, broadcasts paced one at a time, latency of every delivery
//! and the server's resident memory per connection.
//!
//! A client speaks `actioncable-v1-json` as `@rails/actioncable` does:
//! it waits for `{"type":"welcome"}`, sends
//! `{"command":"subscribe","identifier":"{\"channel\":\"BenchChannel\",\"stream\":\"bench\"}"}`
//! and waits for `confirm_subscription`. Broadcasts then arrive as
//! `{"identifier":"…","message":{"t":T,"i":K}}`: T is the load generator's
//! wall clock (Unix ns) when it sent the `POST` that asked for the
//! broadcast, K the broadcast's number. The client finds `"message":{"t":`
//! with one `memmem` and reads the two numbers in place (no JSON parser:
//! the load generator shares the machine's two cores with the server) and
//! skips pings (`{"type":"ping",…}`, every 3 s).

use crate::client::HttpClient;
use crate::scenarios::{fanout_figures, join_subscribers, unix_nanos, Config, Subscribed};
use crate::servers::Server;
use crate::sse::parse_u64;
use crate::stats::quantile;
use crate::ws::{read_events, ws_connect_with, TextCheck, WsConn, CLOSE, TEXT};
use memchr::memmem::Finder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The subprotocol offered (the Rails client's).
pub const PROTOCOL: &str = "actioncable-v1-json";
/// The cable's path in the contract.
pub const PATH: &str = "/bench/cable";
/// The stream every client of the scenario subscribes to.
pub const STREAM: &str = "bench";

/// The `subscribe` command for `BenchChannel` streaming `stream`.
pub fn subscribe_command(stream: &str) -> String {
    let identifier = format!(r#"{{"channel":"BenchChannel","stream":"{stream}"}}"#);
    let token = serde_json::Value::String(identifier).to_string();
    format!(r#"{{"command":"subscribe","identifier":{token}}}"#)
}

static BROADCAST: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""message":{"t":"#));
static PING: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""type":"ping""#));

/// The number at the start of `b` and what follows it.
fn leading_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    Some((parse_u64(&b[..end])?, &b[end..]))
}

/// `T` and `K` of a broadcast `…"message":{"t":T,"i":K}…`; `None` for any
/// other message.
pub fn broadcast_of(payload: &[u8]) -> Result<Option<(u64, u64)>, String> {
    let Some(at) = BROADCAST.find(payload) else {
        return Ok(None);
    };
    let bad = || format!("bad broadcast {:?}", String::from_utf8_lossy(payload));
    let (t, rest) = leading_u64(&payload[at + br#""message":{"t":"#.len()..]).ok_or_else(bad)?;
    let rest = rest.strip_prefix(br#","i":"#).ok_or_else(bad)?;
    let (i, _) = leading_u64(rest).ok_or_else(bad)?;
    Ok(Some((t, i)))
}

/// Checks a cable client's broadcasts: K = 1, 2, 3 … in order, pings
/// skipped, anything else an error; the latency of each from its T.
#[derive(Debug)]
pub struct CableCheck {
    /// The K expected next.
    pub next: u64,
    /// Latency of each broadcast, in ns.
    pub latencies: Vec<u64>,
    /// The wall clock when the bytes being checked were read.
    pub now_nanos: u64,
}

impl CableCheck {
    /// A check expecting `events` broadcasts.
    pub fn new(events: usize) -> Self {
        CableCheck {
            next: 1,
            latencies: Vec::with_capacity(events),
            now_nanos: 0,
        }
    }
}

impl TextCheck for CableCheck {
    fn text(&mut self, payload: &[u8]) -> Result<(), String> {
        match broadcast_of(payload)? {
            Some((t, i)) => {
                if i != self.next {
                    return Err(format!("got broadcast {i}, expected {}", self.next));
                }
                self.next += 1;
                self.latencies.push(self.now_nanos.saturating_sub(t));
                Ok(())
            }
            None if PING.find(payload).is_some() => Ok(()),
            None => Err(format!(
                "unexpected message {:?}",
                String::from_utf8_lossy(payload)
            )),
        }
    }

    fn events(&self) -> usize {
        self.latencies.len()
    }

    fn read_at(&mut self, now_nanos: u64) {
        self.now_nanos = now_nanos;
    }
}

/// Reads text messages until one holds `want` (pings skipped; anything
/// else, or a close, is an error).
async fn expect(conn: &mut WsConn, want: &str) -> Result<(), String> {
    let finder = Finder::new(want.as_bytes());
    loop {
        while let Some(frame) = conn.next_frame()? {
            let payload = &conn.buf[frame.payload.0..frame.payload.1];
            match frame.opcode {
                TEXT if finder.find(payload).is_some() => return Ok(()),
                TEXT if PING.find(payload).is_some() => {}
                TEXT => {
                    return Err(format!(
                        "waiting for {want}, got {:?}",
                        String::from_utf8_lossy(payload)
                    ))
                }
                CLOSE => return Err(format!("closed while waiting for {want}")),
                _ => {}
            }
        }
        if !conn.fill().await? {
            return Err(format!("EOF while waiting for {want}"));
        }
    }
}

/// Opens a cable connection and subscribes it to `BenchChannel` on
/// `stream`: welcome, subscribe, confirmation.
pub async fn cable_subscribe(
    addr: SocketAddr,
    stream: &str,
    timeout: Duration,
) -> Result<WsConn, String> {
    let work = async {
        let mut conn = ws_connect_with(addr, PATH, Some(PROTOCOL), timeout).await?;
        expect(&mut conn, r#""type":"welcome""#).await?;
        conn.send(TEXT, subscribe_command(stream).as_bytes())
            .await?;
        expect(&mut conn, r#""type":"confirm_subscription""#).await?;
        Ok(conn)
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err("cable subscription timed out".into()))
}

/// One subscribed client: reads `events` broadcasts. Its connection is
/// returned with what it measured, to be closed once every client is done
/// (the server's work for the first goodbyes would delay the last
/// deliveries).
async fn subscriber(
    addr: SocketAddr,
    events: usize,
    ready: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
    deadline: Instant,
) -> Result<(Subscribed, WsConn), String> {
    let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
    let mut conn = cable_subscribe(addr, STREAM, Duration::from_secs(30)).await?;
    drop(permit);
    ready.fetch_add(1, Ordering::SeqCst);
    let mut check = CableCheck::new(events);
    let last = read_events(&mut conn, &mut check, events, deadline).await?;
    let measured = Subscribed {
        latencies: check.latencies,
        last,
    };
    Ok((measured, conn))
}

/// `cable_subs` clients subscribed to one stream (256 subscribing at a
/// time), the server's `VmRSS` before the first and after the last
/// confirmation; then `cable_events` broadcasts, one `POST
/// /bench/cable/publish?i=K&n=1&t=T` every `cable_interval_ms` on a
/// keep-alive connection. Latency p50/p99/max in ms (from the `POST`'s
/// send time to the client's read of the broadcast) and KiB per connection.
pub async fn cable_fanout(server: &Server, cfg: &Config) -> Result<Vec<f64>, String> {
    let addr = server.addr;
    let (subs, events) = (cfg.cable_subs, cfg.cable_events);
    let pace = Duration::from_millis(cfg.cable_interval_ms);
    let debug = std::env::var_os("RILL_BENCH_DEBUG").is_some();
    let mut stats = HttpClient::connect(addr).await?;
    stats
        .wait_active(|a| a == 0, Duration::from_secs(5))
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_kib()?;
    let t_connect = Instant::now();
    let ready = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let deadline = Instant::now() + Duration::from_secs(150) + pace * events as u32;
    let mut set = JoinSet::new();
    for _ in 0..subs {
        let (ready, gate) = (ready.clone(), gate.clone());
        set.spawn(subscriber(addr, events, ready, gate, deadline));
    }
    // Every client subscribed; a client that failed ends the wait at once.
    let wait_until = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::SeqCst) < subs {
        if let Some(joined) = set.try_join_next() {
            let error = match joined {
                Ok(Ok(_)) => "a client ended before the broadcasts".to_string(),
                Ok(Err(e)) => e,
                Err(e) => e.to_string(),
            };
            set.abort_all();
            return Err(format!(
                "{} of {subs} clients subscribed; a client failed: {error}",
                ready.load(Ordering::SeqCst)
            ));
        }
        if Instant::now() > wait_until {
            set.abort_all();
            return Err(format!(
                "only {} of {subs} clients subscribed within 120 s",
                ready.load(Ordering::SeqCst)
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let subscribed_in = t_connect.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib()?;
    let kib_per_conn = after.saturating_sub(before) as f64 / subs as f64;
    if debug {
        eprintln!(
            "  cable: {subs} subscribed in {subscribed_in:.1?}; VmRSS {before} → {after} KiB"
        );
    }

    let mut publisher = HttpClient::connect(addr).await?;
    let cpu0 = (server.cpu_seconds()?, own_cpu_seconds());
    let mut tick = tokio::time::interval(pace);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let t0 = Instant::now();
    for i in 1..=events {
        tick.tick().await;
        let path = format!(
            "/bench/cable/publish?stream={STREAM}&i={i}&n=1&t={}",
            unix_nanos()
        );
        let (status, body) = publisher
            .request("POST", &path, Duration::from_secs(10))
            .await?;
        if status != 200 {
            set.abort_all();
            return Err(format!(
                "publish: status {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
    }
    let (all, conns): (Vec<Subscribed>, Vec<WsConn>) =
        join_subscribers(set, subs).await?.into_iter().unzip();
    drop(conns);
    let mut values = fanout_figures(&all, events, t0);
    if debug {
        print_each_broadcast(&all, events);
        let secs = t0.elapsed().as_secs_f64();
        let server_cpu = server.cpu_seconds()? - cpu0.0;
        let own_cpu = own_cpu_seconds() - cpu0.1;
        eprintln!(
            "  cable: broadcasts over {secs:.1} s: server CPU {:.0}% of a core, \
             load generator {:.0}%; VmRSS after {} KiB",
            server_cpu / secs * 100.0,
            own_cpu / secs * 100.0,
            server.rss_kib().unwrap_or(0)
        );
    }
    // Deliveries per second mean nothing at a set pace.
    values.remove(0);
    values.push(kib_per_conn);
    Ok(values)
}

/// Latency p50/p99/max (ms) of each broadcast over its clients, for
/// `RILL_BENCH_DEBUG`.
fn print_each_broadcast(subs: &[Subscribed], events: usize) {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut line = String::from("  cable: each broadcast p50/p99/max ms:");
    for k in 0..events {
        let mut one: Vec<u64> = subs
            .iter()
            .filter_map(|s| s.latencies.get(k))
            .copied()
            .collect();
        one.sort_unstable();
        line.push_str(&format!(
            " {}:{:.0}/{:.0}/{:.0}",
            k + 1,
            ms(quantile(&one, 0.5)),
            ms(quantile(&one, 0.99)),
            ms(quantile(&one, 1.0))
        ));
    }
    eprintln!("{line}");
}

/// This process's user + system CPU time so far, in seconds.
pub(crate) fn own_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return 0.0;
    }
    // SAFETY: initialised by the successful call above (and zeroed before).
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_are_read_in_place() {
        let frame = br#"{"identifier":"{\"channel\":\"BenchChannel\",\"stream\":\"bench\"}","message":{"t":1000,"i":7}}"#;
        assert_eq!(broadcast_of(frame).unwrap(), Some((1000, 7)));
        assert_eq!(
            broadcast_of(br#"{"type":"ping","message":17}"#).unwrap(),
            None
        );
        assert!(broadcast_of(br#"{"message":{"t":1,"x":2}}"#).is_err());
    }

    #[test]
    fn broadcasts_are_checked_in_order_and_pings_skipped() {
        let mut check = CableCheck::new(2);
        check.read_at(1500);
        check
            .text(br#"{"identifier":"x","message":{"t":1000,"i":1}}"#)
            .unwrap();
        check.text(br#"{"type":"ping","message":17}"#).unwrap();
        assert!(check
            .text(br#"{"identifier":"x","message":{"t":1000,"i":3}}"#)
            .is_err());
        assert!(check
            .text(br#"{"type":"disconnect","reason":"too_slow","reconnect":true}"#)
            .is_err());
        assert_eq!(check.latencies, vec![500]);
    }

    #[test]
    fn the_subscribe_command_quotes_its_identifier() {
        assert_eq!(
            subscribe_command("bench"),
            r#"{"command":"subscribe","identifier":"{\"channel\":\"BenchChannel\",\"stream\":\"bench\"}"}"#
        );
    }
}
