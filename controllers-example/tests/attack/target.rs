//! The attacked server: the example binary in its own process (so its memory
//! and CPU can be read from `/proc`), its log, and the checks every attack
//! makes of it.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// How long a well-behaved request may take while the server is attacked.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The example binary, started for one attack and killed (by its PID, which
/// we started) when dropped.
pub struct Target {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    log: Arc<Mutex<Vec<String>>>,
}

impl Target {
    /// Starts the example with these extra arguments.
    pub fn start(args: &[&str]) -> Target {
        Target::spawn(Command::new(binary()), args)
    }

    /// Starts the example with its open-file limit lowered to `limit`.
    pub fn start_with_open_file_limit(limit: u32, args: &[&str]) -> Target {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
            &binary(),
        ]);
        Target::spawn(command, args)
    }

    fn spawn(mut command: Command, args: &[&str]) -> Target {
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example binary");
        let pid = child.id();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("read the first line");
        let addr = first
            .trim_end()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .expect("an address");
        Target {
            child,
            addr,
            pid,
            log,
        }
    }

    /// Resident memory now, in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// CPU time used so far (user + system), from `/proc/PID/stat`.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("read stat");
        // The command name may hold spaces; fields are counted after its ')'.
        let after = &stat[stat.rfind(')').expect("comm in stat") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Sends `signal` (`TERM`, `INT`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the server to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics unless a fresh connection gets `/numbers` in full, in time.
    pub async fn assert_answers(&self, when: &str) {
        let result = tokio::time::timeout(ANSWER_WITHIN, numbers(self.addr)).await;
        match result {
            Ok(Ok(body)) if body.starts_with("HTTP/1.1 200 OK") && body.contains("10\n") => {}
            other => panic!("{when}: GET /numbers was not answered: {other:?}"),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server to attack: this build of the example, or the binary named by
/// `ATTACK_TARGET` (to run the suite against a release build, or an older
/// one to see an attack succeed).
fn binary() -> String {
    std::env::var("ATTACK_TARGET")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_controllers-example").to_owned())
}

/// `GET /numbers` on a new connection; the raw response.
pub async fn numbers(addr: SocketAddr) -> std::io::Result<String> {
    request_on(
        &mut TcpStream::connect(addr).await?,
        "GET /numbers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
}

/// Sends `request` and reads until the server closes.
pub async fn request_on(conn: &mut TcpStream, request: &str) -> std::io::Result<String> {
    conn.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `getconf CLK_TCK`, 100 when it cannot be run.
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// How many more sockets this (test) process may open: its soft open-file
/// limit minus what is open now, from `/proc/self`.
pub fn spare_file_descriptors() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l["Max open files".len()..].split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    soft.saturating_sub(open)
}
