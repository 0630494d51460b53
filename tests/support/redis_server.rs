//! A `redis-server` of a test's own, on a free 127.0.0.1 port, empty
//! (`--save "" --appendonly no`, `noeviction`), stopped by its own child
//! handle — shared by tests/redis.rs and the example's multi-process tests
//! (`#[path]`-included: each test crate compiles its own copy).
//!
//! Needs `redis-server` (scripts/setup-test-deps.sh installs it); without
//! it [`RedisServer::start`] says so and returns `None` (the test passes),
//! except with `CI=true`, where a missing Redis fails the test.
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a server may take to come up.
const UP_WITHIN: Duration = Duration::from_secs(10);

/// A redis-server of this test's own, stopped by its PID.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// A running redis-server, or `None` (after a loud skip message) when
    /// none is installed; with `CI=true` a missing one fails the test.
    pub fn start() -> Option<RedisServer> {
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
        let mut redis = RedisServer {
            child: None,
            port: TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port(),
        };
        redis.launch();
        Some(redis)
    }

    /// Starts (or restarts, after [`kill`](Self::kill)) the server on its
    /// port, empty, and waits for its `PONG`.
    pub fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(start.elapsed() < UP_WITHIN, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command; the first line of the reply (`+PONG`, `:3`, …).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = self.send(args)?;
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).ok()?;
        Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()?
                .to_owned(),
        )
    }

    /// One command whose reply is a bulk string: its bytes as text (`None`
    /// for a nil or another reply).
    pub fn bulk(&self, args: &[&str]) -> Option<String> {
        let mut stream = self.send(args)?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            let header_end = reply.windows(2).position(|w| w == b"\r\n")?;
            let header = std::str::from_utf8(&reply[..header_end]).ok()?;
            let len: usize = header.strip_prefix('$')?.parse().ok()?;
            let start = header_end + 2;
            if reply.len() >= start + len {
                return String::from_utf8(reply[start..start + len].to_vec()).ok();
            }
        }
    }

    /// Sends one command on a new connection (RESP), for its reply.
    fn send(&self, args: &[&str]) -> Option<std::net::TcpStream> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        Some(stream)
    }

    /// Stops the server (`SIGKILL` to its own child).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
