//! Who gets in: the connection cap, refusing past it, and backing off when
//! the operating system has no file descriptor (or memory) left for a new
//! socket — without a log line per refused connection.

use std::{
    io,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{net::TcpStream, time::Instant};

/// What a client past the connection cap is told before its connection is
/// closed. HTTP/1 clients read it; anything else sees a closed connection.
const SERVICE_UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n";

/// The pause after refusing a connection past the cap: refusals go at most
/// this fast (about 1,000 a second), and the rest of a flood waits in the
/// listen backlog rather than in a busy accept loop.
const REFUSAL_PAUSE: Duration = Duration::from_millis(1);

/// The first pause after an accept failed for want of resources; doubled on
/// each failure in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// At most one warning per this period for each kind of trouble.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// The connection cap when none is set: 90% of the process's open-file limit
/// (the rest is left to the app's own files and sockets), or this when the
/// limit cannot be read.
pub(super) const FALLBACK_MAX_CONNECTIONS: usize = 10_000;

/// The default connection cap: 90% of the soft `RLIMIT_NOFILE`.
pub(super) fn default_max_connections() -> usize {
    open_file_limit().map_or(FALLBACK_MAX_CONNECTIONS, |limit| {
        (limit - limit / 10).max(1)
    })
}

/// The soft open-file limit, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

/// The count of open connections, and the guard each one holds.
#[derive(Debug, Clone, Default)]
pub(super) struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    /// How many connections are open now.
    pub(super) fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Counts a connection until the guard is dropped.
    pub(super) fn enter(&self) -> ConnectionSlot {
        self.0.fetch_add(1, Ordering::AcqRel);
        ConnectionSlot(self.0.clone())
    }
}

/// One open connection's place under the cap.
#[derive(Debug)]
pub(super) struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The accept loop's memory of trouble: back-off and rate-limited warnings.
#[derive(Debug, Default)]
pub(super) struct Admission {
    backoff: Option<Duration>,
    at_cap: Trouble,
    no_resources: Trouble,
}

impl Admission {
    /// An accept went through and was admitted: trouble is over.
    pub(super) fn admitted(&mut self) {
        self.backoff = None;
    }

    /// Answers a connection past the cap and closes it; returns how long to
    /// pause before accepting again.
    ///
    /// The pause is short and fixed: open connections finish at their own
    /// pace, and a client waiting in the backlog should get in (or get its
    /// 503) promptly.
    pub(super) fn refuse(&mut self, tcp: TcpStream, max: usize) -> Duration {
        // One try: a client that cannot take 100 bytes now gets a bare close.
        let _ = tcp.try_write(SERVICE_UNAVAILABLE);
        drop(tcp);
        if let Some(suppressed) = self.at_cap.report() {
            tracing::warn!(
                max_connections = max,
                refused_since_last_report = suppressed,
                "connection limit reached; refusing new connections with 503"
            );
        }
        REFUSAL_PAUSE
    }

    /// An accept failed; returns how long to pause before accepting again
    /// (zero when the failure concerned only that one connection).
    pub(super) fn accept_failed(&mut self, error: &io::Error) -> Duration {
        match error.kind() {
            // The peer gave up between SYN and accept: nothing to do.
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted => Duration::ZERO,
            // Out of file descriptors (EMFILE, ENFILE) or memory: the
            // connection waits in the backlog while open ones finish.
            _ => {
                if let Some(suppressed) = self.no_resources.report() {
                    tracing::warn!(
                        %error,
                        failed_since_last_report = suppressed,
                        "accept failed; backing off"
                    );
                }
                self.next_backoff()
            }
        }
    }

    fn next_backoff(&mut self) -> Duration {
        let next = self
            .backoff
            .map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
        self.backoff = Some(next);
        next
    }
}

/// A kind of trouble reported at most once per [`LOG_PERIOD`].
#[derive(Debug, Default)]
struct Trouble {
    last_report: Option<Instant>,
    since_report: u64,
}

impl Trouble {
    /// Counts one occurrence; `Some(occurrences not reported)` when this one
    /// should be.
    fn report(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last_report
            .is_some_and(|last| now.duration_since(last) < LOG_PERIOD)
        {
            self.since_report += 1;
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.since_report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The open-file limit of this process is read, and the default cap
    /// stays below it.
    #[test]
    fn default_cap_is_below_the_open_file_limit() {
        let limit = open_file_limit().expect("/proc/self/limits on Linux");
        let cap = default_max_connections();
        assert!(cap < limit && cap >= limit * 8 / 10, "{cap} of {limit}");
    }

    /// Trouble is reported once per period, with the count of what was not.
    #[tokio::test(start_paused = true)]
    async fn trouble_is_reported_once_per_period() {
        let mut trouble = Trouble::default();
        assert_eq!(trouble.report(), Some(0));
        assert_eq!(trouble.report(), None);
        assert_eq!(trouble.report(), None);
        tokio::time::advance(LOG_PERIOD).await;
        assert_eq!(trouble.report(), Some(2));
    }

    /// Back-off doubles up to its cap and starts over once a connection is
    /// admitted.
    #[test]
    fn backoff_doubles_and_resets() {
        let mut admission = Admission::default();
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(admission.accept_failed(&emfile), FIRST_BACKOFF);
        assert_eq!(admission.accept_failed(&emfile), FIRST_BACKOFF * 2);
        for _ in 0..10 {
            admission.accept_failed(&emfile);
        }
        assert_eq!(admission.accept_failed(&emfile), MAX_BACKOFF);
        admission.admitted();
        assert_eq!(admission.accept_failed(&emfile), FIRST_BACKOFF);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(admission.accept_failed(&reset), Duration::ZERO);
    }
}
