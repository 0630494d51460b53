//! Example processes on a real `redis-server`, all on 127.0.0.1: a
//! redis-server of the test's own on a free port, and
//! `controllers-example --redis URL` processes sharing it (and one
//! `--cable-secret`, so a cable token signed by one is valid on every
//! other). Both are stopped by their own child handle when dropped.
//!
//! Needs `redis-server` (scripts/setup-test-deps.sh); without it
//! [`Redis::start`] says so and returns `None` (the test passes), except
//! with `CI=true`, where it fails.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

/// How long the harness waits for a process to come up.
pub const WAIT: Duration = Duration::from_secs(10);

/// The key every node signs and checks cable tokens with.
pub const CABLE_SECRET: &str = "redis-nodes-test-secret";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A redis-server of this test's own, stopped by its PID.
pub struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    /// A running redis-server, or `None` (after a loud skip message) when
    /// none is installed; with `CI=true` a missing one fails the test.
    pub fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is missing: run scripts/setup-test-deps.sh"
            );
            eprintln!(
                "SKIPPED: redis-server not installed (scripts/setup-test-deps.sh installs it)"
            );
            return None;
        }
        let mut redis = Redis {
            child: None,
            port: free_port(),
        };
        redis.launch();
        Some(redis)
    }

    /// Starts (or restarts, after [`kill`](Self::kill)) the server on its
    /// port, empty, and waits for its `PONG`.
    pub fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(start.elapsed() < WAIT, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command; the first line of the reply (`+PONG`, `:3`, …).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).ok()?;
        Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()?
                .to_owned(),
        )
    }

    /// Stops the server (`SIGKILL` to its own child).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One example process on Redis (`--redis URL --redis-prefix nodes:
/// --cable-secret CABLE_SECRET`), on a port of its own.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Node {
    pub fn start(redis: &Redis) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_controllers-example"))
            .args(["--addr", "127.0.0.1:0", "--redis", &redis.url()])
            .args(["--redis-prefix", "nodes:"])
            .args(["--cable-secret", CABLE_SECRET])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the address line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        Node {
            child,
            addr,
            _stdout: stdout,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
