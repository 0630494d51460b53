//! Shared test helpers: a real rill server on 127.0.0.1:0 and a small raw
//! HTTP/1.1 client that sees the wire (chunk framing included).
#![allow(dead_code)]

pub mod ws;

use rill::{LiveTracker, Router, ServeError, Server};
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};

/// Every network wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(5);

/// A server running in the background.
pub struct TestServer {
    pub addr: SocketAddr,
    pub tracker: LiveTracker,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

pub async fn start(router: Router) -> TestServer {
    start_with(router, |s| s).await
}

pub async fn start_with(router: Router, configure: impl FnOnce(Server) -> Server) -> TestServer {
    let server = configure(Server::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0"));
    let addr = server.local_addr().expect("local addr");
    let service = router.into_service();
    let tracker = service.tracker().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with_shutdown(service, async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        tracker,
        stop: Some(stop),
        task,
    }
}

impl TestServer {
    /// Signals shutdown and waits (bounded) for the server to finish.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("server did not stop in time")
            .expect("server task panicked")
    }

    /// Signals shutdown without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn join(mut self) -> Result<(), ServeError> {
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("server did not stop in time")
            .expect("server task panicked")
    }

    pub async fn get(&self, path: &str) -> RawResponse {
        RawResponse::request(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"),
        )
        .await
    }

    /// Polls `cond` every 10 ms until it holds (bounded by WAIT).
    pub async fn eventually(&self, what: &str, mut cond: impl FnMut() -> bool) {
        eventually(what, &mut cond).await
    }
}

pub async fn eventually(what: &str, cond: &mut dyn FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How a chunked body read ended early.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The connection closed before the terminating `0\r\n\r\n` chunk: the
    /// response was aborted.
    Aborted,
}

/// A response read off a raw socket.
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub conn: TcpStream,
    buf: Vec<u8>,
}

impl RawResponse {
    /// Sends `request` bytes and reads the response head.
    pub async fn request(addr: SocketAddr, request: &str) -> RawResponse {
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut response = RawResponse {
            status: 0,
            head: String::new(),
            conn,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(pos) = find(&response.buf, b"\r\n\r\n") {
                break pos;
            }
            assert!(
                response.fill().await > 0,
                "connection closed before the response head"
            );
        };
        response.head = String::from_utf8(response.buf[..end].to_vec()).expect("ascii head");
        response.buf.drain(..end + 4);
        response.status = response.head[9..12].parse().expect("status code");
        response
    }

    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    async fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 16 * 1024];
        let n = tokio::time::timeout(WAIT, self.conn.read(&mut tmp))
            .await
            .expect("read timed out")
            .unwrap_or(0);
        self.buf.extend_from_slice(&tmp[..n]);
        n
    }

    /// The next chunk of a chunked body; `Ok(None)` at the terminating chunk.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ReadEnd> {
        let line_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                break pos;
            }
            if self.fill().await == 0 {
                return Err(ReadEnd::Aborted);
            }
        };
        let size_line = std::str::from_utf8(&self.buf[..line_end]).expect("chunk size line");
        let size = usize::from_str_radix(size_line.trim(), 16).expect("hex chunk size");
        while self.buf.len() < line_end + 2 + size + 2 {
            if self.fill().await == 0 {
                return Err(ReadEnd::Aborted);
            }
        }
        let data = self.buf[line_end + 2..line_end + 2 + size].to_vec();
        assert_eq!(&self.buf[line_end + 2 + size..line_end + 4 + size], b"\r\n");
        self.buf.drain(..line_end + 4 + size);
        Ok((size > 0).then_some(data))
    }

    /// Every chunk until the terminating one.
    pub async fn chunks(&mut self) -> Result<Vec<Vec<u8>>, ReadEnd> {
        let mut chunks = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            chunks.push(chunk);
        }
        Ok(chunks)
    }

    /// The whole chunked body, concatenated.
    pub async fn body(&mut self) -> Result<Vec<u8>, ReadEnd> {
        Ok(self.chunks().await?.concat())
    }

    /// A body with a Content-Length.
    pub async fn sized_body(&mut self) -> Vec<u8> {
        let len: usize = self
            .header("content-length")
            .expect("content-length")
            .parse()
            .expect("numeric content-length");
        while self.buf.len() < len {
            assert!(self.fill().await > 0, "closed before the body was complete");
        }
        self.buf.drain(..len).collect()
    }

    /// Everything that is left on the wire until the server closes.
    pub async fn rest_raw(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One SSE frame as read off the wire (fields as sent; no spec defaults).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: Option<String>,
    pub comment: bool,
}

impl Frame {
    /// The id's number: a plain number, or the offset of a hub position
    /// (`<epoch>-<offset>`).
    pub fn id_num(&self) -> u64 {
        let id = self.id.as_deref().expect("frame has an id");
        id.rsplit('-')
            .next()
            .unwrap_or(id)
            .parse()
            .expect("numeric id or position")
    }

    /// The id as a hub position.
    pub fn position(&self) -> rill::broker::Position {
        self.id
            .as_deref()
            .expect("frame has an id")
            .parse()
            .expect("an <epoch>-<offset> id")
    }
}

/// Reads SSE frames from a chunked response, whatever the chunking.
pub struct SseReader {
    pub response: RawResponse,
    text: String,
    /// Set when the stream ended: `Some(true)` after the terminating chunk,
    /// `Some(false)` when the connection closed without it.
    pub ended_cleanly: Option<bool>,
}

impl SseReader {
    pub async fn connect(addr: SocketAddr, path: &str, last_event_id: Option<&str>) -> SseReader {
        let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let response = RawResponse::request(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{resume}\r\n"),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.head);
        SseReader::from_response(response)
    }

    /// Reads the frames of a response already started.
    pub fn from_response(response: RawResponse) -> SseReader {
        SseReader {
            response,
            text: String::new(),
            ended_cleanly: None,
        }
    }

    /// The next frame; `None` when the stream ended (cleanly or not).
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            match self.response.next_chunk().await {
                Ok(Some(chunk)) => self
                    .text
                    .push_str(std::str::from_utf8(&chunk).expect("utf-8")),
                Ok(None) => {
                    self.ended_cleanly = Some(true);
                    return None;
                }
                Err(ReadEnd::Aborted) => {
                    self.ended_cleanly = Some(false);
                    return None;
                }
            }
        }
    }

    /// The next frame that is not a comment.
    pub async fn next_event(&mut self) -> Option<Frame> {
        loop {
            let frame = self.next().await?;
            if !frame.comment {
                return Some(frame);
            }
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        // A comment-only block ends at its own line; events at a blank line.
        if self.text.starts_with(':') {
            let end = self.text.find('\n')?;
            self.text.drain(..=end);
            return Some(Frame {
                comment: true,
                ..Frame::default()
            });
        }
        let end = self.text.find("\n\n")?;
        let block: String = self.text.drain(..end + 2).collect();
        let mut frame = Frame::default();
        for line in block.lines() {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or((line.trim_end_matches(':'), ""));
            match name {
                "event" => frame.event = Some(value.to_owned()),
                "id" => frame.id = Some(value.to_owned()),
                "data" => {
                    frame.data = Some(match frame.data.take() {
                        Some(prev) => format!("{prev}\n{value}"),
                        None => value.to_owned(),
                    })
                }
                _ => {}
            }
        }
        Some(frame)
    }
}
