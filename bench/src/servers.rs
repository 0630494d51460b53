//! The servers under test: starting one as a child process, reading its
//! address from its first stdout line, reading its memory and CPU from
//! `/proc`, and killing it by its own handle.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One implementation of the benchmark contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `examples/bench_server.rs`.
    Rill,
    /// `bench/src/bin/axum_server.rs`.
    Axum,
    /// `bench/src/bin/hyper_server.rs`: pre-encoded bodies (burst, live) and
    /// fan-out written straight into the sockets (fanout, paced).
    Hyper,
    /// `axum_server --tuned`: WebSockets with batched writes (every waiting
    /// event fed, one flush per burst) and 4 KiB read buffers.
    AxumTuned,
}

impl Kind {
    /// All three, in alternation order.
    pub const ALL: [Kind; 3] = [Kind::Rill, Kind::Axum, Kind::Hyper];

    /// Name used in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rill => "rill",
            Kind::Axum => "axum",
            Kind::Hyper => "hyper",
            Kind::AxumTuned => "axum_tuned",
        }
    }

    /// The binary under `target/release`.
    pub fn binary(self, release_dir: &Path) -> PathBuf {
        match self {
            Kind::Rill => release_dir.join("examples/bench_server"),
            Kind::Axum | Kind::AxumTuned => release_dir.join("axum_server"),
            Kind::Hyper => release_dir.join("hyper_server"),
        }
    }
}

/// A running server; killed (by its PID, through its handle) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `kind` on `127.0.0.1:0` and waits (≤ 10 s) for its
    /// `listening on http://IP:PORT` line.
    pub fn start(kind: Kind, release_dir: &Path) -> Result<Server, String> {
        let path = kind.binary(release_dir);
        let mut child = Command::new(&path)
            .args(["--addr", "127.0.0.1:0"])
            .args(if kind == Kind::AxumTuned {
                &["--tuned"][..]
            } else {
                &[][..]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{}: no `listening on` line ({other:?})",
                    kind.name()
                ));
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|a| a.trim().parse().ok());
        match addr {
            Some(addr) => Ok(Server { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{}: unexpected first line {line:?}", kind.name()))
            }
        }
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "no VmRSS".to_string())
    }

    /// User + system CPU time used so far, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .map_err(|e| e.to_string())?;
        // Fields after the `(comm)`, which may itself hold spaces.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or("bad /proc stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line (1-based); the first
        // field after `)` is field 3.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or("bad /proc stat field")
        };
        let total = ticks(11)? + ticks(12)?;
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(total as f64 / hz.max(1) as f64)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises RLIMIT_NOFILE to at least `want` (the servers we spawn inherit it).
/// Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let target = want.max(lim.rlim_cur);
    if lim.rlim_max < target {
        // Only root may raise the hard limit; try, then fall back to it.
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: target,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(target);
        }
    }
    let soft = target.min(lim.rlim_max);
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(soft)
}
