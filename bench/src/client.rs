//! Loopback HTTP/1.1 clients: a blocking single-stream reader with a big
//! buffer for throughput runs, and small async helpers for runs with many
//! connections.

use crate::wire::{parse_head, BodyDecoder, Head};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read buffer of the single-stream reader: big reads amortise syscalls.
const BIG_READ: usize = 1 << 20;

/// Connections per local source address (well below the ephemeral port range).
const PER_SOURCE: usize = 5000;

/// Counts every connection the tool opens, so that source addresses rotate
/// across scenarios and never meet their own TIME_WAIT ports again.
static OPENED: AtomicUsize = AtomicUsize::new(0);

/// The next local source address: 127.0.0.2, .3, … (5,000 connections each).
fn next_source() -> SocketAddr {
    let i = OPENED.fetch_add(1, Ordering::Relaxed);
    let host = 2 + (i / PER_SOURCE) % 250;
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, host as u8), 0))
}

/// Outcome of reading one whole response.
#[derive(Debug)]
pub struct Fetched {
    /// Body bytes received.
    pub body_bytes: u64,
    /// From writing the request to the last body byte.
    pub elapsed: Duration,
}

/// Sends `GET path` on a fresh connection and streams the body through
/// `on_body`, with a blocking socket and a 1 MiB buffer.
pub fn fetch_blocking(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    mut on_body: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Fetched, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; BIG_READ];
    let start = Instant::now();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("write: {e}"))?;
    let mut filled = 0;
    let mut decoder = None::<BodyDecoder>;
    let mut body_bytes = 0u64;
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {timeout:?} ({body_bytes} body bytes)"
            ));
        }
        let n = stream
            .read(&mut buf[filled..])
            .map_err(|e| format!("read: {e}"))?;
        let Some(dec) = decoder.as_mut() else {
            if n == 0 {
                return Err("connection closed before the response head".into());
            }
            filled += n;
            if let Some((head, len)) = parse_head(&buf[..filled])? {
                check_ok(&head)?;
                let mut dec = BodyDecoder::new(head.body);
                let body = &buf[len..filled];
                dec.feed(
                    body,
                    |b| {
                        body_bytes += b.len() as u64;
                        on_body(b)
                    },
                    |e| e,
                )?;
                filled = 0;
                if dec.is_done() {
                    break;
                }
                decoder = Some(dec);
            } else if filled == buf.len() {
                return Err("response head too long".into());
            }
            continue;
        };
        if n == 0 {
            if dec.ends_at_eof() {
                break;
            }
            return Err(format!(
                "connection closed mid-body after {body_bytes} bytes"
            ));
        }
        dec.feed(
            &buf[..n],
            |b| {
                body_bytes += b.len() as u64;
                on_body(b)
            },
            |e| e,
        )?;
        if dec.is_done() {
            break;
        }
    }
    Ok(Fetched {
        body_bytes,
        elapsed: start.elapsed(),
    })
}

fn check_ok(head: &Head) -> Result<(), String> {
    if head.status == 200 {
        Ok(())
    } else {
        Err(format!("status {}", head.status))
    }
}

/// Opens a connection from the next source address.
pub async fn connect(addr: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(next_source())
        .map_err(|e| format!("bind: {e}"))?;
    let connecting = socket.connect(addr);
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect timed out".into()),
    }
}

/// A streaming response whose head has been read.
#[derive(Debug)]
pub struct OpenStream {
    /// The connection.
    pub stream: tokio::net::TcpStream,
    /// Its head.
    pub head: Head,
    /// Body bytes that arrived with the head.
    pub early: Vec<u8>,
}

/// Connects, sends `GET path` and waits for a `200` head.
pub async fn open_stream(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<OpenStream, String> {
    let work = async {
        let mut stream = connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let (head, early) = read_head(&mut stream).await?;
        check_ok(&head)?;
        Ok(OpenStream {
            stream,
            head,
            early,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err("timed out waiting for the response head".into()))
}

/// Reads a response head from `stream`: the head, and the bytes that came
/// after it in the same reads.
pub async fn read_head(stream: &mut tokio::net::TcpStream) -> Result<(Head, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut piece = [0u8; 1024];
        let n = stream
            .read(&mut piece)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the response head".to_string());
        }
        buf.extend_from_slice(&piece[..n]);
        if let Some((head, len)) = parse_head(&buf)? {
            buf.drain(..len);
            return Ok((head, buf));
        }
    }
}

/// A keep-alive connection for small requests (`/bench/stats`, `/bench/publish`).
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl HttpClient {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, String> {
        let stream = connect(addr).await?;
        let _ = stream.set_nodelay(true);
        Ok(HttpClient {
            addr,
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and returns the status and whole body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let work = async {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\n\r\n",
                self.addr
            );
            self.stream
                .write_all(req.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut head = None;
            let mut body = Vec::new();
            loop {
                if head.is_none() {
                    if let Some((h, len)) = parse_head(&self.buf)? {
                        self.buf.drain(..len);
                        head = Some((h, BodyDecoder::new(h.body)));
                    }
                }
                if let Some((h, dec)) = head.as_mut() {
                    let used = dec.feed(
                        &self.buf,
                        |b| -> Result<(), String> {
                            body.extend_from_slice(b);
                            Ok(())
                        },
                        |e| e,
                    )?;
                    self.buf.drain(..used);
                    if dec.is_done() {
                        return Ok((h.status, body));
                    }
                }
                let mut piece = [0u8; 4096];
                let n = self
                    .stream
                    .read(&mut piece)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("connection closed mid-response".to_string());
                }
                self.buf.extend_from_slice(&piece[..n]);
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("{method} {path} timed out")))
    }

    /// `GET /bench/stats` → `active`. A keep-alive connection the server
    /// closed while it sat unused (e.g. through the idle CPU window) is
    /// replaced once.
    pub async fn active(&mut self) -> Result<u64, String> {
        let timeout = Duration::from_secs(5);
        let (status, body) = match self.request("GET", "/bench/stats", timeout).await {
            Ok(answer) => answer,
            Err(_) => {
                *self = HttpClient::connect(self.addr).await?;
                self.request("GET", "/bench/stats", timeout).await?
            }
        };
        if status != 200 {
            return Err(format!("/bench/stats: status {status}"));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("/bench/stats: {e}"))?;
        value["active"]
            .as_u64()
            .ok_or_else(|| "/bench/stats: no `active`".to_string())
    }

    /// Polls `/bench/stats` every 5 ms until `pred(active)` holds.
    pub async fn wait_active(
        &mut self,
        pred: impl Fn(u64) -> bool,
        timeout: Duration,
    ) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let active = self.active().await?;
            if pred(active) {
                return Ok(active);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "gave up waiting on /bench/stats after {timeout:?} (active {active})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
