//! A lean Server-Sent Events parser: it scans body bytes in place and hands
//! each event's `id` and first `data` line to a sink, copying only an event
//! that straddles two reads.
//!
//! When the data length is known (`size_hint`), an event of the exact shape
//! `id: N\ndata: <size bytes>\n\n` is recognised with a few compares and one
//! `memchr` over its data; anything else goes through the general line parser.

use memchr::{memchr, memmem};

/// Receives parsed events.
pub trait EventSink {
    /// One dispatched event: its `id` field (parsed as an integer, if any)
    /// and its first `data` line.
    fn on_event(&mut self, id: Option<u64>, data: &[u8]) -> Result<(), String>;
}

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The start of an event whose end has not arrived yet.
    carry: Vec<u8>,
    /// Expected data length for the fast path (0 disables it).
    size_hint: usize,
}

impl SseParser {
    /// A parser whose fast path expects `size_hint` bytes of data per event.
    pub fn new(size_hint: usize) -> Self {
        SseParser {
            carry: Vec::new(),
            size_hint,
        }
    }

    /// Feeds the next bytes of the event stream.
    pub fn feed<S: EventSink>(&mut self, mut s: &[u8], sink: &mut S) -> Result<(), String> {
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
            let result = parse_block(&block, sink);
            self.carry = block;
            self.carry.clear();
            result?;
            s = &s[end + 1..];
        }
        let mut pos = 0;
        while pos < s.len() {
            let rest = &s[pos..];
            if let Some(len) = self.fast_event(rest, sink)? {
                pos += len;
                continue;
            }
            match memmem::find(rest, b"\n\n") {
                Some(i) => {
                    parse_block(&rest[..i + 2], sink)?;
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

    /// `id: N\ndata: <size_hint bytes without \n>\n\n` at the start of `rest`
    /// (`id: <epoch>-N` too: rill's hub writes its position).
    #[inline]
    fn fast_event<S: EventSink>(&self, rest: &[u8], sink: &mut S) -> Result<Option<usize>, String> {
        let size = self.size_hint;
        if size == 0 || !rest.starts_with(b"id: ") {
            return Ok(None);
        }
        let mut j = 4;
        if let Some(dash) = rest[4..rest.len().min(22)].iter().position(|&b| b == b'-') {
            j += dash + 1;
        }
        let start = j;
        let mut id: u64 = 0;
        while j < rest.len() && rest[j].is_ascii_digit() && j < 24 {
            id = id * 10 + u64::from(rest[j] - b'0');
            j += 1;
        }
        if j == start {
            return Ok(None);
        }
        let data = j + 1 + 6;
        let end = data + size;
        if rest.len() < end + 2
            || rest[j] != b'\n'
            || &rest[j + 1..data] != b"data: "
            || rest[end] != b'\n'
            || rest[end + 1] != b'\n'
            || memchr(b'\n', &rest[data..end]).is_some()
        {
            return Ok(None);
        }
        sink.on_event(Some(id), &rest[data..end])?;
        Ok(Some(end + 2))
    }
}

/// Parses complete lines ending in a blank line, dispatching each event.
fn parse_block<S: EventSink>(block: &[u8], sink: &mut S) -> Result<(), String> {
    let mut id = None;
    let mut data: Option<&[u8]> = None;
    let mut rest = block;
    while let Some(nl) = memchr(b'\n', rest) {
        let mut line = &rest[..nl];
        rest = &rest[nl + 1..];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            if let Some(d) = data.take() {
                sink.on_event(id.take(), d)?;
            }
            id = None;
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
            // `<epoch>-N` (rill's hub) or `N`: the number after the dash.
            b"id" => id = parse_u64(value.rsplit(|&b| b == b'-').next().unwrap_or(value)),
            b"data" if data.is_none() => data = Some(value),
            _ => {}
        }
    }
    Ok(())
}

/// Parses leading ASCII digits; `None` if there are none.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in s {
        if !b.is_ascii_digit() || digits == 19 {
            break;
        }
        n = n * 10 + u64::from(b - b'0');
        digits += 1;
    }
    (digits > 0).then_some(n)
}

/// Checks a single burst stream: ids 1..=n exactly once, in order, each with
/// `size` bytes of data. It keeps counting past a violation, so that a
/// broken stream still reports how broken it is.
#[derive(Debug)]
pub struct BurstCheck {
    /// The id the next event should carry.
    pub next: u64,
    /// Required data length.
    pub size: usize,
    /// Events seen.
    pub count: u64,
    /// Sum of the ids seen (with `count`, catches losses and duplicates).
    pub id_sum: u64,
    /// Events whose id was not the expected one.
    pub out_of_order: u64,
    /// The first violation, for the report.
    pub first_error: Option<String>,
}

impl BurstCheck {
    /// A checker expecting ids from 1 with `size` data bytes.
    pub fn new(size: usize) -> Self {
        BurstCheck {
            next: 1,
            size,
            count: 0,
            id_sum: 0,
            out_of_order: 0,
            first_error: None,
        }
    }

    /// `Ok` if exactly ids 1..=n arrived once each, in order.
    pub fn verify(&self, n: u64) -> Result<(), String> {
        let sum = n * (n + 1) / 2;
        if self.count == n
            && self.id_sum == sum
            && self.out_of_order == 0
            && self.first_error.is_none()
        {
            return Ok(());
        }
        Err(format!(
            "{} events (expected {n}), id sum {} (expected {sum}), {} out of order; first: {}",
            self.count,
            self.id_sum,
            self.out_of_order,
            self.first_error.as_deref().unwrap_or("-")
        ))
    }
}

impl EventSink for BurstCheck {
    #[inline]
    fn on_event(&mut self, id: Option<u64>, data: &[u8]) -> Result<(), String> {
        let id = id.ok_or_else(|| format!("event after id {} has no id", self.next - 1))?;
        self.count += 1;
        self.id_sum = self.id_sum.wrapping_add(id);
        if id != self.next {
            self.out_of_order += 1;
            if self.first_error.is_none() {
                self.first_error = Some(format!(
                    "event #{}: expected id {}, got {id}",
                    self.count, self.next
                ));
            }
        }
        if data.len() != self.size && self.first_error.is_none() {
            self.first_error = Some(format!(
                "event {id}: {} data bytes, expected {}",
                data.len(),
                self.size
            ));
        }
        self.next = id + 1;
        Ok(())
    }
}

/// Checks a fan-out subscription (consecutive ids from 1) and records the
/// latency of each event from the `<seq> <unix_nanos>` in its data.
#[derive(Debug)]
pub struct FanoutCheck {
    /// The id the next event must carry.
    pub next: u64,
    /// Wall clock of the read that carried the current bytes, in Unix nanos.
    pub now_nanos: u64,
    /// Latency of each event, in nanoseconds.
    pub latencies: Vec<u64>,
}

impl FanoutCheck {
    /// A checker expecting up to `events` events.
    pub fn new(events: usize) -> Self {
        FanoutCheck {
            next: 1,
            now_nanos: 0,
            latencies: Vec::with_capacity(events),
        }
    }
}

impl EventSink for FanoutCheck {
    fn on_event(&mut self, id: Option<u64>, data: &[u8]) -> Result<(), String> {
        if id != Some(self.next) {
            return Err(format!("expected id {}, got {id:?}", self.next));
        }
        self.next += 1;
        let sent = memchr(b' ', data)
            .and_then(|sp| parse_u64(&data[sp + 1..]))
            .ok_or_else(|| format!("event {id:?}: data has no `<seq> <unix_nanos>`"))?;
        self.latencies.push(self.now_nanos.saturating_sub(sent));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst_wire(n: u64, size: usize) -> Vec<u8> {
        let data = "x".repeat(size);
        let mut out = Vec::new();
        for i in 1..=n {
            if i % 7 == 0 {
                out.extend_from_slice(b": heartbeat\n\n");
            }
            out.extend_from_slice(format!("id: {i}\ndata: {data}\n\n").as_bytes());
        }
        out
    }

    /// Every id arrives once in order whatever the read boundaries, with or
    /// without the fast path.
    #[test]
    fn burst_any_split() {
        let wire = burst_wire(50, 5);
        for hint in [0, 5, 4] {
            for step in 1..40 {
                let mut p = SseParser::new(hint);
                let mut check = BurstCheck::new(5);
                for piece in wire.chunks(step) {
                    p.feed(piece, &mut check).unwrap();
                }
                check
                    .verify(50)
                    .unwrap_or_else(|e| panic!("hint {hint} step {step}: {e}"));
            }
        }
    }

    /// A reordered stream fails verification even with the right count.
    #[test]
    fn reorder_is_an_error() {
        let mut p = SseParser::new(1);
        let mut check = BurstCheck::new(1);
        p.feed(b"id: 2\ndata: x\n\nid: 1\ndata: x\n\n", &mut check)
            .unwrap();
        assert!(check.verify(2).is_err());
        let mut check = BurstCheck::new(1);
        p.feed(b"id: 1\ndata: x\n\nid: 2\ndata: x\n\n", &mut check)
            .unwrap();
        check.verify(2).unwrap();
    }

    /// Fan-out latency comes from the nanos after the sequence number.
    #[test]
    fn fanout_latency() {
        let mut p = SseParser::new(0);
        let mut check = FanoutCheck::new(2);
        check.now_nanos = 1_000;
        p.feed(
            b"id: 1\ndata: 1 900xxxx\n\nid: 2\ndata: 2 950\n\n",
            &mut check,
        )
        .unwrap();
        assert_eq!(check.latencies, vec![100, 50]);
    }
}
