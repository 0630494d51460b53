//! The keyed-state scenario (`state_fanout`): N SSE subscribers of one
//! `rill::state` group, M updates written in-process as fast as the store
//! takes them; updates/s, delivery latency, every subscriber's rebuilt
//! state against the store's, memory, and the plain hub fan-out of the
//! same shape measured on the same server right after.
//!
//! A subscriber follows `GET /bench/state/bench/g` (`Accept:
//! text/event-stream`): `event: sync` (`{"items":{id: value},"ts"}`), then
//! `create` / `update` events `{"id":"item<k>","type":…,"data":{"seq":S,"t":T},"ts":…}`
//! with `id: <epoch>.<rev>`, and `reset` before a fresh `sync` when the
//! server conflated it. Events of the shape rill writes
//! (`event:`/`id:`/`data:` lines) are split with three `memchr`s, anything
//! else goes through a general line parser. A subscriber keeps, per item,
//! the raw JSON bytes of the last value (from after `"data":` to the last
//! comma, before `"ts"`; copied into a reused buffer), checks that
//! revisions are consecutive, and reads `T` (the server's wall clock when
//! it made the update) after the value's last colon: no JSON parser per
//! update, since the load generator shares the machine's two
//! cores with the server. Syncs — rare — are parsed with `serde_json`.

use crate::cable::own_cpu_seconds;
use crate::client::{connect, read_head, HttpClient};
use crate::scenarios::{fanout, join_subscribers, unix_nanos, Config};
use crate::servers::Server;
use crate::stats::quantile;
use crate::wire::BodyDecoder;
use memchr::memmem;
use memchr::{memchr, memrchr};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The stream of the scenario's group.
pub const STREAM: &str = "bench";
/// The group every subscriber follows.
pub const GROUP: &str = "g";
/// A group of the same shape, written first (not followed).
pub const WARM_UP_GROUP: &str = "warm";
/// Data bytes of the hub events of the peer run: about a state update's
/// `{"id":"item42","type":"update","data":{"seq":10999,"t":…},"ts":…}`.
pub const HUB_EVENT_SIZE: usize = 90;

/// One event of a state stream, borrowed from the bytes read.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateEvent<'a> {
    /// The `event` field (`sync`, `update`, …).
    pub event: &'a [u8],
    /// The `id` field (`<epoch>.<rev>`; empty for `reset`).
    pub id: &'a [u8],
    /// The (single) `data` line.
    pub data: &'a [u8],
}

/// An incremental parser of `event` / `id` / `data` blocks; copies only a
/// block that straddles two reads.
#[derive(Debug, Default)]
pub struct StateParser {
    carry: Vec<u8>,
}

impl StateParser {
    /// Feeds the next body bytes, calling `on` for every complete event.
    pub fn feed(
        &mut self,
        mut s: &[u8],
        on: &mut impl FnMut(StateEvent<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        if !self.carry.is_empty() {
            let ends_nl = self.carry.last() == Some(&b'\n');
            let end = if ends_nl && s.first() == Some(&b'\n') {
                Some(0)
            } else {
                memmem::find(s, b"\n\n").map(|i| i + 1)
            };
            let Some(end) = end else {
                self.carry.extend_from_slice(s);
                return Ok(());
            };
            self.carry.extend_from_slice(&s[..=end]);
            let block = std::mem::take(&mut self.carry);
            let result = parse_block(&block, on);
            self.carry = block;
            self.carry.clear();
            result?;
            s = &s[end + 1..];
        }
        let mut pos = 0;
        while pos < s.len() {
            let rest = &s[pos..];
            if let Some((event, len)) = fast_event(rest) {
                on(event)?;
                pos += len;
                continue;
            }
            match memmem::find(rest, b"\n\n") {
                Some(i) => {
                    parse_block(&rest[..i + 2], on)?;
                    pos += i + 2;
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    break;
                }
            }
        }
        Ok(())
    }
}

/// `event: E\nid: I\ndata: D\n\n` at the start of `rest` — how rill writes
/// every change — with three `memchr`s; `None` for anything else (or an
/// event not complete yet), which the general parser takes.
#[inline]
fn fast_event(rest: &[u8]) -> Option<(StateEvent<'_>, usize)> {
    let line = |at: usize, prefix: &[u8]| -> Option<(usize, usize)> {
        let body = rest.get(at..)?.strip_prefix(prefix)?;
        let end = memchr(b'\n', body)?;
        let start = at + prefix.len();
        Some((start, start + end))
    };
    let (e0, e1) = line(0, b"event: ")?;
    let (i0, i1) = line(e1 + 1, b"id: ")?;
    let (d0, d1) = line(i1 + 1, b"data: ")?;
    if rest.get(d1 + 1) != Some(&b'\n') || rest[..d1].contains(&b'\r') {
        return None;
    }
    let event = StateEvent {
        event: &rest[e0..e1],
        id: &rest[i0..i1],
        data: &rest[d0..d1],
    };
    Some((event, d1 + 2))
}

/// One block of lines ending in a blank line: its fields, dispatched once
/// (comments and empty blocks are skipped).
fn parse_block(
    block: &[u8],
    on: &mut impl FnMut(StateEvent<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut event = StateEvent::default();
    let mut any = false;
    let mut rest = block;
    while let Some(nl) = memchr(b'\n', rest) {
        let mut line = &rest[..nl];
        rest = &rest[nl + 1..];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            if any {
                on(event)?;
            }
            event = StateEvent::default();
            any = false;
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (name, value) = match memchr(b':', line) {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => event.event = value,
            b"id" => event.id = value,
            b"data" if event.data.is_empty() => event.data = value,
            _ => continue,
        }
        any = true;
    }
    Ok(())
}

/// The number written by all of `s` (1 to 19 ASCII digits), in one pass.
#[inline]
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// `<epoch>.<rev>` split.
fn revision(id: &[u8]) -> Result<(&[u8], u64), String> {
    let bad = || format!("bad id {:?}", String::from_utf8_lossy(id));
    let dot = memrchr(b'.', id).ok_or_else(bad)?;
    let rev = digits(&id[dot + 1..]).ok_or_else(bad)?;
    Ok((&id[..dot], rev))
}

/// `k` of `item<k>`, when below `items`.
fn item_index(name: &[u8], items: usize) -> Result<usize, String> {
    name.strip_prefix(b"item")
        .and_then(digits)
        .map(|k| k as usize)
        .filter(|&k| k < items)
        .ok_or_else(|| format!("unexpected item {:?}", String::from_utf8_lossy(name)))
}

/// Item index, value and `t` of a change's data
/// `{"id":"item<k>","type":"<kind>","data":<value>,"ts":<ms>}`, read in
/// place: the value runs from after `"data":` to the last comma (`ts` is
/// the last field, a number), and `t` is the number after the value's last
/// colon, which must follow `"t"`.
fn change_fields(data: &[u8], items: usize) -> Result<(usize, &[u8], u64), String> {
    let bad = || format!("bad change {:?}", String::from_utf8_lossy(data));
    let rest = data.strip_prefix(br#"{"id":""#).ok_or_else(bad)?;
    let name_end = memchr(b'"', rest).ok_or_else(bad)?;
    let k = item_index(&rest[..name_end], items)?;
    let rest = rest[name_end..]
        .strip_prefix(br#"","type":""#)
        .ok_or_else(bad)?;
    let kind_end = memchr(b'"', rest).ok_or_else(bad)?;
    let value_and_ts = rest[kind_end..]
        .strip_prefix(br#"","data":"#)
        .ok_or_else(bad)?;
    let comma = memrchr(b',', value_and_ts).ok_or_else(bad)?;
    if !value_and_ts[comma..].starts_with(br#","ts":"#) {
        return Err(bad());
    }
    let value = &value_and_ts[..comma];
    let colon = memrchr(b':', value).ok_or_else(bad)?;
    if !value[..colon].ends_with(br#""t""#) || !value.ends_with(b"}") {
        return Err(bad());
    }
    let t = digits(&value[colon + 1..value.len() - 1]).ok_or_else(bad)?;
    Ok((k, value, t))
}

/// One subscriber's view of the group, rebuilt from its events.
#[derive(Debug)]
pub struct StateCheck {
    /// Item k → the JSON of its last value (`None`: absent).
    pub values: Vec<Option<Vec<u8>>>,
    /// The epoch of the last sync.
    pub epoch: Vec<u8>,
    /// The revision reached.
    pub rev: u64,
    /// The revision after which it is done (the first sync's + the updates
    /// to come), once the first sync arrived.
    pub target: Option<u64>,
    updates: u64,
    /// A reset arrived and its sync has not yet.
    awaiting_sync: bool,
    /// Syncs received (the first, and one after each reset).
    pub syncs: u64,
    /// Resets received.
    pub resets: u64,
    /// Changes (create / update) received.
    pub changes: u64,
    /// Latency of each change: read time − its `t`, in ns.
    pub latencies: Vec<u64>,
    /// The wall clock when the bytes being checked were read (Unix ns).
    pub now_nanos: u64,
}

impl StateCheck {
    /// A check of a group of `items` items that will see `updates` changes
    /// after its first sync.
    pub fn new(items: usize, updates: usize) -> Self {
        StateCheck {
            values: vec![None; items],
            epoch: Vec::new(),
            rev: 0,
            target: None,
            updates: updates as u64,
            awaiting_sync: false,
            syncs: 0,
            resets: 0,
            changes: 0,
            latencies: Vec::with_capacity(updates),
            now_nanos: 0,
        }
    }

    /// Whether the first sync arrived.
    pub fn synced(&self) -> bool {
        self.syncs > 0
    }

    /// Whether it holds the revision of the last update (and no reset is
    /// pending).
    pub fn done(&self) -> bool {
        !self.awaiting_sync && self.target.is_some_and(|t| self.rev >= t)
    }

    /// Checks and applies one event.
    pub fn on_event(&mut self, event: StateEvent<'_>) -> Result<(), String> {
        match event.event {
            b"sync" => self.sync(event),
            b"reset" => {
                self.resets += 1;
                self.awaiting_sync = true;
                Ok(())
            }
            b"create" | b"update" => self.change(event),
            other => Err(format!(
                "unexpected event {:?} (id {:?})",
                String::from_utf8_lossy(other),
                String::from_utf8_lossy(event.id)
            )),
        }
    }

    fn sync(&mut self, event: StateEvent<'_>) -> Result<(), String> {
        let (epoch, rev) = revision(event.id)?;
        let sync: serde_json::Value =
            serde_json::from_slice(event.data).map_err(|e| format!("sync: {e}"))?;
        let items = sync["items"]
            .as_object()
            .ok_or("sync without an `items` object")?;
        self.values.iter_mut().for_each(|v| *v = None);
        for (name, value) in items {
            let k = item_index(name.as_bytes(), self.values.len())?;
            self.values[k] = Some(serde_json::to_vec(value).map_err(|e| e.to_string())?);
        }
        if self.synced() && (epoch != self.epoch || rev < self.rev) {
            return Err(format!(
                "a sync went back: {}.{rev} after {}.{}",
                String::from_utf8_lossy(epoch),
                String::from_utf8_lossy(&self.epoch),
                self.rev
            ));
        }
        self.epoch = epoch.to_vec();
        self.rev = rev;
        self.syncs += 1;
        self.awaiting_sync = false;
        self.target.get_or_insert(rev + self.updates);
        self.over_target()
    }

    fn change(&mut self, event: StateEvent<'_>) -> Result<(), String> {
        if !self.synced() || self.awaiting_sync {
            return Err("a change before its sync".into());
        }
        let (epoch, rev) = revision(event.id)?;
        if epoch != self.epoch.as_slice() || rev != self.rev + 1 {
            return Err(format!(
                "revision {}.{rev} after {}.{}",
                String::from_utf8_lossy(epoch),
                String::from_utf8_lossy(&self.epoch),
                self.rev
            ));
        }
        let (k, value, t) = change_fields(event.data, self.values.len())?;
        let slot = self.values[k].get_or_insert_with(Vec::new);
        slot.clear();
        slot.extend_from_slice(value);
        self.latencies.push(self.now_nanos.saturating_sub(t));
        self.changes += 1;
        self.rev = rev;
        self.over_target()
    }

    fn over_target(&self) -> Result<(), String> {
        match self.target {
            Some(target) if self.rev > target => Err(format!(
                "revision {} past the last update's {target}",
                self.rev
            )),
            _ => Ok(()),
        }
    }
}

/// What one subscriber measured and rebuilt.
#[derive(Debug)]
pub struct StateSub {
    /// Its rebuilt state, revision, counts and latencies.
    pub check: StateCheck,
    /// When it reached the last update's revision.
    pub last: Instant,
}

/// `GET /bench/state/bench/g` as `text/event-stream`: the head read, the
/// connection and the body bytes that came with the head.
async fn open_follow(addr: SocketAddr) -> Result<(TcpStream, BodyDecoder, Vec<u8>), String> {
    let mut stream = connect(addr).await?;
    let request = format!(
        "GET /bench/state/{STREAM}/{GROUP} HTTP/1.1\r\nhost: {addr}\r\n\
         accept: text/event-stream\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let (head, early) = read_head(&mut stream).await?;
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    Ok((stream, BodyDecoder::new(head.body), early))
}

/// One subscriber: its first sync (then it counts as ready), then every
/// event until it holds the last update's revision. Its connection is
/// returned with what it measured, to be closed once every subscriber is
/// done.
async fn subscriber(
    addr: SocketAddr,
    items: usize,
    updates: usize,
    ready: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
    deadline: Instant,
) -> Result<(StateSub, TcpStream), String> {
    // Held until synced: at most 256 subscribers connecting at a time.
    let mut permit = Some(gate.acquire_owned().await.map_err(|e| e.to_string())?);
    let (mut stream, mut decoder, early) =
        tokio::time::timeout(Duration::from_secs(20), open_follow(addr))
            .await
            .map_err(|_| "timed out opening the stream".to_string())??;
    let mut parser = StateParser::default();
    let mut check = StateCheck::new(items, updates);
    let mut feed = |bytes: &[u8], check: &mut StateCheck| {
        decoder.feed(bytes, |b| parser.feed(b, &mut |e| check.on_event(e)), |e| e)
    };
    check.now_nanos = unix_nanos();
    feed(&early, &mut check)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut last = Instant::now();
    let mut counted = false;
    while !check.done() {
        if !counted && check.synced() {
            counted = true;
            permit = None;
            ready.fetch_add(1, Ordering::SeqCst);
        }
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(0)) => return Err(format!("closed at revision {}", check.rev)),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => {
                return Err(format!(
                    "timed out at revision {} (target {:?}, {} changes, {} resets)",
                    check.rev, check.target, check.changes, check.resets
                ))
            }
        };
        check.now_nanos = unix_nanos();
        last = Instant::now();
        feed(&buf[..n], &mut check)?;
    }
    drop(permit);
    if !counted {
        ready.fetch_add(1, Ordering::SeqCst);
    }
    Ok((StateSub { check, last }, stream))
}

/// The store's group as `GET /bench/state/bench/g` answers it: its revision
/// and item k → the JSON of its value.
async fn store_state(
    client: &mut HttpClient,
    items: usize,
) -> Result<(String, Vec<Option<Vec<u8>>>), String> {
    let path = format!("/bench/state/{STREAM}/{GROUP}");
    let (status, body) = client
        .request("GET", &path, Duration::from_secs(10))
        .await?;
    if status != 200 {
        return Err(format!("{path}: status {status}"));
    }
    let group: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{path}: {e}"))?;
    let rev = group["rev"].as_str().unwrap_or_default().to_owned();
    let mut values = vec![None; items];
    for item in group["items"].as_array().ok_or("no `items` array")? {
        let name = item["id"].as_str().ok_or("an item without `id`")?;
        let k = item_index(name.as_bytes(), items)?;
        values[k] = Some(serde_json::to_vec(&item["value"]).map_err(|e| e.to_string())?);
    }
    Ok((rev, values))
}

/// `POST /bench/state-run`: the server's own time for the loop, in s, and
/// the last revision.
async fn run_updates(
    client: &mut HttpClient,
    group: &str,
    updates: usize,
    items: usize,
    first: usize,
) -> Result<(f64, String), String> {
    let path = format!(
        "/bench/state-run?stream={STREAM}&group={group}&n={updates}&items={items}&first={first}"
    );
    let (status, body) = client
        .request("POST", &path, Duration::from_secs(120))
        .await?;
    if status != 200 {
        return Err(format!(
            "{path}: status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{path}: {e}"))?;
    let write_ns = answer["write_ns"].as_f64().ok_or("no `write_ns`")?;
    let rev = answer["rev"].as_str().ok_or("no `rev`")?.to_owned();
    Ok((write_ns / 1e9, rev))
}

/// Waits until `ready` reaches `subs`; a subscriber that failed (or
/// ended) ends the wait at once.
async fn wait_ready<T: 'static>(
    set: &mut JoinSet<Result<T, String>>,
    ready: &AtomicUsize,
    subs: usize,
    within: Duration,
) -> Result<(), String> {
    let until = Instant::now() + within;
    while ready.load(Ordering::SeqCst) < subs {
        if let Some(joined) = set.try_join_next() {
            let error = match joined {
                Ok(Ok(_)) => "a subscriber ended before the updates".to_string(),
                Ok(Err(e)) => e,
                Err(e) => e.to_string(),
            };
            set.abort_all();
            return Err(format!(
                "{} of {subs} subscribers synced; one failed: {error}",
                ready.load(Ordering::SeqCst)
            ));
        }
        if Instant::now() > until {
            set.abort_all();
            return Err(format!(
                "only {} of {subs} subscribers synced within {within:?}",
                ready.load(Ordering::SeqCst)
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The scenario (see the module doc and `bench/README.md`). Returns, in
/// the order of its metrics: updates/s until every subscriber holds the
/// last revision, the server's in-process write rate, latency p50/p99/max
/// (ms), change deliveries/s, the hub's deliveries/s of the same shape,
/// their ratio, the server's CPU per delivery (state, then hub; ns), KiB
/// per subscriber, KiB of the group in the store, resets,
/// mismatches.
pub async fn state_fanout(server: &Server, cfg: &Config) -> Result<Vec<f64>, String> {
    let addr = server.addr;
    let (subs, updates, items) = (cfg.state_subs, cfg.state_updates, cfg.state_items);
    let prefill = cfg.state_prefill;
    let debug = std::env::var_os("RILL_BENCH_DEBUG").is_some();
    let mut stats = HttpClient::connect(addr).await?;
    let mut writer = HttpClient::connect(addr).await?;
    stats
        .wait_active(|a| a == 0, Duration::from_secs(5))
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The group alone: its items and a full history of changes — the
    // second group of that shape, so that what the first one set up (the
    // store's maps, the broker's shard, the request's path) is not counted.
    run_updates(&mut writer, WARM_UP_GROUP, prefill, items, 1).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = server.rss_kib()?;
    let (prefill_secs, prefill_rev) = run_updates(&mut writer, GROUP, prefill, items, 1).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss1 = server.rss_kib()?;
    let store_kib = rss1.saturating_sub(rss0) as f64;

    // The subscribers, each synced.
    let ready = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut set = JoinSet::new();
    for _ in 0..subs {
        let (ready, gate) = (ready.clone(), gate.clone());
        set.spawn(subscriber(addr, items, updates, ready, gate, deadline));
    }
    wait_ready(&mut set, &ready, subs, Duration::from_secs(60)).await?;
    stats
        .wait_active(|a| a as usize >= subs, Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss2 = server.rss_kib()?;
    let kib_per_sub = rss2.saturating_sub(rss1) as f64 / subs as f64;

    // The updates.
    let cpu0 = (server.cpu_seconds()?, own_cpu_seconds());
    let t0 = Instant::now();
    let written = run_updates(&mut writer, GROUP, updates, items, prefill + 1).await;
    let write_returned = t0.elapsed();
    let (write_secs, last_rev) = match written {
        Ok(w) => w,
        Err(e) => {
            set.abort_all();
            return Err(e);
        }
    };
    let (all, conns): (Vec<StateSub>, Vec<TcpStream>) =
        join_subscribers(set, subs).await?.into_iter().unzip();
    let server_cpu = server.cpu_seconds()? - cpu0.0;
    let own_cpu = own_cpu_seconds() - cpu0.1;
    let rss3 = server.rss_kib()?;
    let (store_rev, expected) = store_state(&mut stats, items).await?;
    drop(conns);
    if store_rev != last_rev {
        return Err(format!(
            "the store is at {store_rev}, the last update made {last_rev}"
        ));
    }

    let mut latencies = Vec::with_capacity(subs * updates);
    let (mut resets, mut mismatches, mut changes) = (0u64, 0u64, 0u64);
    let mut last = t0;
    let mut first_mismatch = None;
    for sub in &all {
        let check = &sub.check;
        latencies.extend_from_slice(&check.latencies);
        resets += check.resets;
        changes += check.changes;
        last = last.max(sub.last);
        let rev = format!("{}.{}", String::from_utf8_lossy(&check.epoch), check.rev);
        if rev != store_rev || check.values != expected {
            mismatches += 1;
            first_mismatch.get_or_insert(rev);
        }
    }
    if let Some(rev) = first_mismatch {
        eprintln!(
            "  state_fanout: {mismatches} of {subs} subscribers differ from the store \
             (first at {rev}, store at {store_rev})"
        );
    }
    latencies.sort_unstable();
    let secs = last.duration_since(t0).as_secs_f64();
    let ms = |ns: u64| ns as f64 / 1e6;
    let delivered_per_s = changes as f64 / secs;
    if debug {
        eprintln!(
            "  state_fanout: prefill {prefill} in {prefill_secs:.3} s → {prefill_rev}; \
             VmRSS {rss0} → {rss1} (group) → {rss2} ({subs} subscribed) → {rss3} KiB (after)"
        );
        eprintln!(
            "  state_fanout: {updates} updates written in {write_secs:.3} s (POST answered \
             after {write_returned:.1?}); all subscribers final after {secs:.3} s; \
             {changes} changes + {resets} resets delivered; server CPU {:.0}% of a core, \
             load generator {:.0}% ({:.0} ns per change)",
            server_cpu / secs * 100.0,
            own_cpu / secs * 100.0,
            own_cpu * 1e9 / changes.max(1) as f64
        );
    }

    // The peer: plain hub fan-out of as many events to as many subscribers.
    stats
        .wait_active(|a| a == 0, Duration::from_secs(30))
        .await?;
    let hub_cpu0 = (server.cpu_seconds()?, own_cpu_seconds());
    let hub_rss0 = server.rss_kib()?;
    let hub = fanout(addr, subs, updates, HUB_EVENT_SIZE, None).await?;
    let hub_cpu = server.cpu_seconds()? - hub_cpu0.0;
    let hub_own_cpu = own_cpu_seconds() - hub_cpu0.1;
    let hub_per_s = hub[0];
    let hub_deliveries = (subs * updates) as f64;
    if debug {
        eprintln!(
            "  state_fanout: hub peer {:.0} deliveries/s, p50/p99/max {:.1}/{:.1}/{:.1} ms; \
             server CPU {:.0} ns per delivery (state: {:.0}), load generator {:.0} ns \
             (incl. connecting); VmRSS {hub_rss0} → {} KiB",
            hub[0],
            hub[1],
            hub[2],
            hub[3],
            hub_cpu * 1e9 / hub_deliveries,
            server_cpu * 1e9 / changes.max(1) as f64,
            hub_own_cpu * 1e9 / hub_deliveries,
            server.rss_kib().unwrap_or(0)
        );
    }

    Ok(vec![
        updates as f64 / secs,
        updates as f64 / write_secs,
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(quantile(&latencies, 1.0)),
        delivered_per_s,
        hub_per_s,
        delivered_per_s / hub_per_s,
        server_cpu * 1e9 / changes.max(1) as f64,
        hub_cpu * 1e9 / hub_deliveries,
        kib_per_sub,
        store_kib,
        resets as f64,
        mismatches as f64,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(
            b"event: sync\nid: ep.5\ndata: {\"items\":{\"item1\":{\"seq\":5,\"t\":1}},\"ts\":9}\n\n",
        );
        out.extend_from_slice(b": heartbeat\n\n");
        for rev in 6..=8u64 {
            out.extend_from_slice(
                format!(
                    "event: update\nid: ep.{rev}\ndata: {{\"id\":\"item{}\",\"type\":\"update\",\"data\":{{\"seq\":{rev},\"t\":{}}},\"ts\":10}}\n\n",
                    rev % 2,
                    900 + rev
                )
                .as_bytes(),
            );
        }
        out
    }

    /// Whatever the read boundaries: the state rebuilt, latencies read.
    #[test]
    fn rebuilds_the_group_at_any_split() {
        let wire = wire();
        for step in 1..60 {
            let mut parser = StateParser::default();
            let mut check = StateCheck::new(2, 3);
            check.now_nanos = 1000;
            for piece in wire.chunks(step) {
                parser
                    .feed(piece, &mut |e| check.on_event(e))
                    .unwrap_or_else(|e| panic!("step {step}: {e}"));
            }
            assert!(check.done(), "step {step}");
            assert_eq!(check.rev, 8);
            assert_eq!(
                check.values[0].as_deref(),
                Some(&br#"{"seq":8,"t":908}"#[..])
            );
            assert_eq!(
                check.values[1].as_deref(),
                Some(&br#"{"seq":7,"t":907}"#[..])
            );
            assert_eq!(check.latencies, vec![94, 93, 92]);
        }
    }

    /// A change's item, value and `t` are read in place; other shapes fail.
    #[test]
    fn change_fields_are_read_in_place() {
        let (k, value, t) = change_fields(
            br#"{"id":"item7","type":"create","data":{"seq":12,"t":345},"ts":6}"#,
            10,
        )
        .unwrap();
        assert_eq!((k, value, t), (7, &br#"{"seq":12,"t":345}"#[..], 345));
        for bad in [
            &br#"{"id":"item70","type":"update","data":{"seq":1,"t":2},"ts":3}"#[..],
            br#"{"id":"x1","type":"update","data":{"seq":1,"t":2},"ts":3}"#,
            br#"{"id":"item1","type":"update","data":{"seq":1,"u":2},"ts":3}"#,
            br#"{"id":"item1","type":"update","data":{"seq":1,"t":2}}"#,
            br#"{"type":"event","event":"x","data":{},"ts":3}"#,
        ] {
            assert!(
                change_fields(bad, 10).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(revision(b"ab1.42").unwrap(), (&b"ab1"[..], 42));
        assert!(revision(b"ab1.4x").is_err() && revision(b"ab1").is_err());
    }

    /// A gap in the revisions is an error; a reset and a sync start over.
    #[test]
    fn gaps_fail_and_resets_resync() {
        let mut check = StateCheck::new(2, 10);
        let mut parser = StateParser::default();
        let mut feed =
            |check: &mut StateCheck, s: &str| parser.feed(s.as_bytes(), &mut |e| check.on_event(e));
        feed(
            &mut check,
            "event: sync\nid: ep.1\ndata: {\"items\":{},\"ts\":1}\n\n",
        )
        .unwrap();
        feed(
            &mut check,
            "event: reset\ndata: {}\n\nevent: sync\nid: ep.7\ndata: {\"items\":{\"item0\":{\"seq\":7,\"t\":1}},\"ts\":2}\n\n",
        )
        .unwrap();
        assert_eq!((check.resets, check.rev, check.target), (1, 7, Some(11)));
        let gap = "event: update\nid: ep.9\ndata: {\"id\":\"item0\",\"type\":\"update\",\"data\":{\"seq\":9,\"t\":1},\"ts\":3}\n\n";
        assert!(feed(&mut check, gap).is_err());
    }
}
