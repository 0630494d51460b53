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
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
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

#[path = "../../../tests/support/redis_server.rs"]
mod redis_server;
/// A redis-server of the test's own (tests/support/redis_server.rs).
pub use redis_server::RedisServer as Redis;

/// One example process on Redis (`--redis URL --redis-prefix nodes:
/// --cable-secret CABLE_SECRET`), on a port of its own.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Node {
    pub fn start(redis: &Redis) -> Node {
        Node::start_with(redis, &[])
    }

    /// [`Node::start`] with more options (`--redis-presence-ttl 1500ms`, …).
    pub fn start_with(redis: &Redis, args: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_controllers-example"))
            .args(["--addr", "127.0.0.1:0", "--redis", &redis.url()])
            .args(["--redis-prefix", "nodes:"])
            .args(["--cable-secret", CABLE_SECRET])
            .args(args)
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

impl Node {
    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` of this process (by its own child handle: SIGKILL on
    /// Unix), waited for: it stops without a word to Redis or its clients.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the example");
        self.child.wait().expect("reap the example");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
