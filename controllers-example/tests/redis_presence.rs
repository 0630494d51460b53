//! Presence across example processes on one real `redis-server`: a node
//! killed with `kill -9` says nothing to anyone, yet its hub members leave
//! — once, seen by the watchers on every other node, within the presence
//! TTL (`--redis-presence-ttl`), and never a second time.
//!
//! Every hub subscriber is a presence member of its channels; a
//! subscription with `presence=1` (as the chat page's) gets everyone on the
//! channel first (`{"members":[…]}`, read from Redis — the presence query a
//! client has), then the joins and leaves (`{"joined":[…],"left":[…]}`).
//!
//! Needs `redis-server` (scripts/setup-test-deps.sh); without it the test
//! says so and passes, except with `CI=true`, where it fails. The harness
//! (`Redis`, `Node`) is `common/nodes.rs`.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

mod common;
use common::{
    nodes::{Node, Redis, WAIT},
    unique_name,
};

/// The nodes' presence TTL: members of a dead process expire after it.
const TTL: Duration = Duration::from_millis(1500);

/// What a leave may take beyond the TTL: the dead node's last refresh was
/// up to a third of the TTL before it died, the sweeps run every third of
/// it, then a pub/sub hop and the hub's 250 ms presence tick.
const MARGIN: Duration = Duration::from_millis(2000);

/// A presence message of the hub, parsed.
#[derive(Debug, Default)]
struct Presence {
    /// `members` of a first message (everyone on the channel).
    members: Option<Vec<String>>,
    joined: Vec<String>,
    left: Vec<String>,
}

impl Presence {
    fn parse(data: &str) -> Presence {
        let json: serde_json::Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        let ids = |field: &str, key: Option<&str>| -> Option<Vec<String>> {
            let items = json.get(field)?.as_array()?;
            Some(
                items
                    .iter()
                    .filter_map(|item| match key {
                        Some(key) => item.get(key)?.as_str(),
                        None => item.as_str(),
                    })
                    .map(str::to_owned)
                    .collect(),
            )
        };
        Presence {
            members: ids("members", Some("id")),
            joined: ids("joined", Some("id")).unwrap_or_default(),
            left: ids("left", None).unwrap_or_default(),
        }
    }
}

/// A raw SSE client of `GET /hub?channel=…&presence=1` that reads only the
/// `presence` events, each within a deadline.
struct Watcher {
    stream: TcpStream,
    raw: Vec<u8>,
    text: String,
    /// Who is on the channel, as its presence events say.
    members: BTreeSet<String>,
    /// Every id reported as left, in order, repeats included.
    left: Vec<String>,
}

impl Watcher {
    async fn connect(addr: SocketAddr, channel: &str) -> Watcher {
        let connect = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let request = format!(
                "GET /hub?channel={channel}&presence=1 HTTP/1.1\r\nHost: {addr}\r\n\
                 Accept: text/event-stream\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.expect("send");
            stream
        };
        let stream = tokio::time::timeout(WAIT, connect)
            .await
            .expect("connected in time");
        let mut watcher = Watcher {
            stream,
            raw: Vec::new(),
            text: String::new(),
            members: BTreeSet::new(),
            left: Vec::new(),
        };
        let deadline = Instant::now() + WAIT;
        let end = loop {
            if let Some(at) = watcher.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(watcher.read_more(deadline).await, "no response head");
        };
        let head = String::from_utf8_lossy(&watcher.raw[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        watcher.raw.drain(..end);
        watcher
    }

    /// Reads more bytes; `false` at the deadline.
    async fn read_more(&mut self, deadline: Instant) -> bool {
        let mut buf = [0u8; 8192];
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
            Err(_) => false,
            Ok(read) => {
                let n = read.expect("read");
                assert!(n > 0, "the stream ended");
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// Moves whole chunks from `raw` to `text`.
    fn dechunk(&mut self) {
        common::dechunk(&mut self.raw, &mut self.text);
    }

    /// The next presence event before `deadline` (other frames skipped),
    /// applied to `members` and `left`; `None` at the deadline.
    async fn next(&mut self, deadline: Instant) -> Option<Presence> {
        loop {
            self.dechunk();
            while let Some(end) = self.text.find("\n\n") {
                let frame: String = self.text.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(v.to_owned());
                    }
                }
                if let (Some("presence"), Some(data)) = (name.as_deref(), data) {
                    let presence = Presence::parse(&data);
                    self.members
                        .extend(presence.members.iter().flatten().cloned());
                    self.members.extend(presence.joined.iter().cloned());
                    for id in &presence.left {
                        self.members.remove(id);
                        self.left.push(id.clone());
                    }
                    return Some(presence);
                }
            }
            if !self.read_more(deadline).await {
                return None;
            }
        }
    }

    /// Reads presence events until `done(self)`; panics after `limit`.
    async fn until(&mut self, limit: Duration, what: &str, done: impl Fn(&Watcher) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if self.next(deadline).await.is_none() {
                panic!(
                    "{what}: not within {limit:?}; members {:?}, left {:?}",
                    self.members, self.left
                );
            }
        }
    }

    /// Reads presence events until `deadline`.
    async fn drain_until(&mut self, deadline: Instant) {
        while self.next(deadline).await.is_some() {}
    }
}

/// Who is on `channel`, as a new `presence=1` subscription on `addr` gets
/// it first (the members Redis holds).
async fn members_on(addr: SocketAddr, channel: &str) -> BTreeSet<String> {
    let mut query = Watcher::connect(addr, channel).await;
    let first = query
        .next(Instant::now() + WAIT)
        .await
        .expect("the members in time");
    let members = first
        .members
        .clone()
        .unwrap_or_else(|| panic!("the first presence event lists the members: {first:?}"));
    members.into_iter().collect()
}

/// Waits until `node`'s hub has a local subscriber on `channel`, and its
/// pub/sub subscription had time to be confirmed.
async fn subscribed(node: &Node, channel: &str) {
    common::wait_for_subscriber(node.addr, channel).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_kill_9_has_its_members_leave_once_within_the_ttl() {
    let Some(redis) = Redis::start() else { return };
    let ttl = format!("{}ms", TTL.as_millis());
    let options = ["--redis-presence-ttl", ttl.as_str()];
    let (a, b, mut c) = (
        Node::start_with(&redis, &options),
        Node::start_with(&redis, &options),
        Node::start_with(&redis, &options),
    );
    let channel = unique_name("room");

    // A watcher on A, then one on B; each sees both.
    let mut on_a = Watcher::connect(a.addr, &channel).await;
    subscribed(&a, &channel).await;
    let mut on_b = Watcher::connect(b.addr, &channel).await;
    subscribed(&b, &channel).await;
    on_a.until(WAIT, "A's watcher sees two members", |w| {
        w.members.len() == 2
    })
    .await;
    on_b.until(WAIT, "B's watcher sees two members", |w| {
        w.members.len() == 2
    })
    .await;
    assert_eq!(on_a.members, on_b.members);
    let watchers = on_a.members.clone();

    // A client joins on C (as the chat page does); both watchers see it.
    let mut client = Watcher::connect(c.addr, &channel).await;
    on_a.until(WAIT, "A's watcher sees C's client join", |w| {
        w.members.len() == 3
    })
    .await;
    on_b.until(WAIT, "B's watcher sees C's client join", |w| {
        w.members.len() == 3
    })
    .await;
    assert_eq!(on_a.members, on_b.members);
    let member = on_a
        .members
        .difference(&watchers)
        .next()
        .cloned()
        .expect("C's member");
    client
        .until(WAIT, "C's client sees itself", |w| {
            w.members.contains(&member)
        })
        .await;
    // Redis holds it (the presence query lists it) before C dies.
    let start = Instant::now();
    while !members_on(a.addr, &channel).await.contains(&member) {
        assert!(start.elapsed() < WAIT, "{member} never listed by A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // kill -9: no leave from C itself, no unsubscribe, nothing.
    let pid = c.pid();
    c.kill_9();
    let killed = Instant::now();
    let gone = |w: &Watcher| w.left.contains(&member);
    let (left_a, left_b) = tokio::join!(
        async {
            on_a.until(TTL + MARGIN, "A's watcher sees the leave", gone)
                .await;
            killed.elapsed()
        },
        async {
            on_b.until(TTL + MARGIN, "B's watcher sees the leave", gone)
                .await;
            killed.elapsed()
        },
    );
    eprintln!("node C (pid {pid}) killed: its member {member} left after {left_a:?} on A, {left_b:?} on B (TTL {TTL:?})");

    // Nothing more for a further TTL: the leave came once, and the
    // watchers did not leave (the presence queries' own subscriptions on A
    // come and go, and may be reported).
    let quiet = Instant::now() + TTL + Duration::from_millis(500);
    tokio::join!(on_a.drain_until(quiet), on_b.drain_until(quiet));
    for (node, watcher) in [("A", &on_a), ("B", &on_b)] {
        let leaves = watcher.left.iter().filter(|id| **id == member).count();
        assert_eq!(
            leaves, 1,
            "{node}'s watcher saw the leaves {:?}",
            watcher.left
        );
        assert!(
            !watcher.left.iter().any(|id| watchers.contains(id)),
            "{node}'s watcher saw the leaves {:?}",
            watcher.left
        );
        assert!(
            watcher.members.is_superset(&watchers),
            "{:?}",
            watcher.members
        );
        assert!(!watcher.members.contains(&member), "{:?}", watcher.members);
    }

    // The presence query no longer lists it, on either node.
    for node in [&a, &b] {
        let members = members_on(node.addr, &channel).await;
        assert!(
            !members.contains(&member),
            "{member} still listed: {members:?}"
        );
        assert!(members.is_superset(&watchers), "{members:?}");
    }
}
