//! Reading a request body into memory: bounded in size, in total time and in
//! time between frames, with memory proportional to the body.
//!
//! hyper hands a body over as frames that are slices of its connection's read
//! buffer. Keeping those slices (as `http_body_util::Collected` does) keeps
//! every buffer they point into alive: a body sent one byte per TCP segment
//! pinned about 1.9 KB per byte. Each frame is therefore copied into one
//! growing buffer and dropped at once, so a body costs at most twice its
//! length while it grows, whatever its segmentation.

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Version};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use std::{pin::pin, time::Duration};
use tokio::time::Instant;

use crate::{
    error::{BoxError, RequestBodyError},
    response::Response,
};

/// The default request-body limit: 1 MiB.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{http::{Request, StatusCode}, Context, Router, DEFAULT_BODY_LIMIT};
///
/// async fn upload(ctx: Context) -> String { format!("{} bytes\n", ctx.body().len()) }
///
/// let service = Router::new().post("/upload", upload).into_service();
/// let too_big = "x".repeat(DEFAULT_BODY_LIMIT + 1);
/// let request = Request::post("/upload").header("host", "t").body(too_big).unwrap();
/// assert_eq!(service.handle(request).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
/// // Where more is expected: `Router::new().body_limit(20 * DEFAULT_BODY_LIMIT)`.
/// # }
/// ```
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a client may take to send a whole request body, by default.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use http_body_util::{BodyExt, Full};
/// use rill::{http::Request, Context, Router, DEFAULT_BODY_READ_TIMEOUT};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// async fn upload(ctx: Context) -> String { format!("{} bytes\n", ctx.body().len()) }
/// let service = Router::new()
///     .post("/upload", upload)
///     .body_idle_timeout(Duration::from_secs(60)) // the whole-body bound comes first
///     .into_service();
/// let stalled = Full::new(&b"part"[..]).with_trailers(std::future::pending()); // never ends
/// let request = Request::post("/upload").header("host", "t").body(stalled).unwrap();
/// let start = Instant::now();
/// assert_eq!(service.handle(request).await.status(), 408);
/// assert!(start.elapsed() >= DEFAULT_BODY_READ_TIMEOUT); // 30 s
/// # }
/// ```
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may pause between two pieces of a request body, by
/// default.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use http_body_util::{BodyExt, Full};
/// use rill::{http::Request, Context, Router, DEFAULT_BODY_IDLE_TIMEOUT};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// async fn upload(ctx: Context) -> String { format!("{} bytes\n", ctx.body().len()) }
/// let service = Router::new().post("/upload", upload).into_service();
/// let stalled = Full::new(&b"part"[..]).with_trailers(std::future::pending()); // then silence
/// let request = Request::post("/upload").header("host", "t").body(stalled).unwrap();
/// let start = Instant::now();
/// assert_eq!(service.handle(request).await.status(), 408);
/// assert!(start.elapsed() >= DEFAULT_BODY_IDLE_TIMEOUT); // 10 s
/// assert!(start.elapsed() < Duration::from_secs(30)); // before the whole-body bound
/// # }
/// ```
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first allocation for a body of unknown or large declared length: a
/// `Content-Length` header alone must not reserve the whole limit.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// Body-read timeouts as set on a [`Router`](crate::Router) or a
/// [`Server`](crate::Server); `None` where not set. The server's travel with
/// each request as an extension; the router's own win over them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BodyTimeouts {
    pub(crate) read: Option<Duration>,
    pub(crate) idle: Option<Duration>,
}

impl BodyTimeouts {
    /// The limits for one request: these timeouts, else the server's, else
    /// the defaults.
    pub(crate) fn limits(&self, max_len: usize, server: Option<&BodyTimeouts>) -> BodyLimits {
        let server = server.copied().unwrap_or_default();
        BodyLimits {
            max_len,
            read_timeout: self
                .read
                .or(server.read)
                .unwrap_or(DEFAULT_BODY_READ_TIMEOUT),
            idle_timeout: self
                .idle
                .or(server.idle)
                .unwrap_or(DEFAULT_BODY_IDLE_TIMEOUT),
        }
    }
}

/// The limits a request body is read under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// The largest body accepted, in bytes.
    pub(crate) max_len: usize,
    /// The longest the whole body may take, from the first poll.
    pub(crate) read_timeout: Duration,
    /// The longest pause between two frames.
    pub(crate) idle_timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_len: DEFAULT_BODY_LIMIT,
            read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
        }
    }
}

/// Reads `body` in full under `limits`.
///
/// A declared `Content-Length` over the limit is refused before anything is
/// read.
pub(crate) async fn read<B>(
    headers: &HeaderMap,
    body: B,
    limits: BodyLimits,
) -> Result<Bytes, RequestBodyError>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > limits.max_len as u64) {
        return Err(RequestBodyError::TooLarge {
            limit: limits.max_len,
        });
    }
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut body = pin!(body);
    // The declared length sizes the buffer only up to a small first block.
    let capacity = declared.map_or(0, |len| len.min(INITIAL_CAPACITY as u64) as usize);
    let mut buf = BytesMut::with_capacity(capacity);
    let total_deadline = Instant::now() + limits.read_timeout;
    let mut timer = pin!(tokio::time::sleep_until(total_deadline));
    loop {
        let idle_deadline = Instant::now() + limits.idle_timeout;
        let idle = idle_deadline < total_deadline;
        timer
            .as_mut()
            .reset(if idle { idle_deadline } else { total_deadline });
        let next = body.frame();
        let frame = tokio::select! {
            biased;
            frame = next => frame,
            () = timer.as_mut() => {
                return Err(if idle {
                    RequestBodyError::IdleTimeout { timeout: limits.idle_timeout }
                } else {
                    RequestBodyError::ReadTimeout { timeout: limits.read_timeout }
                });
            }
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| RequestBodyError::Malformed(e.into()))?;
        // Trailers carry no body bytes; they are not kept.
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.remaining() > limits.max_len {
            return Err(RequestBodyError::TooLarge {
                limit: limits.max_len,
            });
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            buf.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    Ok(buf.freeze())
}

/// The `Content-Length` a request declares, when it is one valid number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()
}

/// The answer to a body that is not read in full: `413`, `408` or `400`,
/// with `Connection: close` on HTTP/1 — the rest of the body is still on the
/// connection, which cannot carry another request (HTTP/2 resets just the
/// stream).
pub(crate) fn refusal(error: &RequestBodyError, version: Version) -> Response {
    tracing::debug!(%error, "request body refused");
    let text = match error {
        RequestBodyError::TooLarge { .. } => "payload too large\n",
        RequestBodyError::ReadTimeout { .. } | RequestBodyError::IdleTimeout { .. } => {
            "request body timed out\n"
        }
        _ => "could not read request body\n",
    };
    let mut response = Response::text(text).with_status(error.status());
    if version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use std::{
        collections::VecDeque,
        convert::Infallible,
        pin::Pin,
        task::{Context, Poll},
    };

    /// A body that yields its frames, one every `gap`, then ends or stalls.
    struct Scripted {
        frames: VecDeque<Bytes>,
        gap: Option<Pin<Box<tokio::time::Sleep>>>,
        every: Duration,
        stall_at_end: bool,
    }

    impl Scripted {
        fn new(frames: impl IntoIterator<Item = &'static [u8]>, every: Duration) -> Self {
            Scripted {
                frames: frames.into_iter().map(Bytes::from_static).collect(),
                gap: None,
                every,
                stall_at_end: false,
            }
        }
    }

    impl HttpBody for Scripted {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if !self.every.is_zero() {
                let every = self.every;
                let gap = self
                    .gap
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
                if gap.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.gap = None;
            }
            match self.frames.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None if self.stall_at_end => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    use std::future::Future;

    fn limits(max_len: usize) -> BodyLimits {
        BodyLimits {
            max_len,
            ..BodyLimits::default()
        }
    }

    /// One-byte frames end up in one buffer, in order.
    #[tokio::test]
    async fn small_frames_are_joined() {
        let body = Scripted::new([&b"a"[..], b"b", b"", b"c"], Duration::ZERO);
        let got = read(&HeaderMap::new(), body, limits(10)).await.unwrap();
        assert_eq!(got, "abc");
    }

    /// A body over the limit is refused once it passes the limit.
    #[tokio::test]
    async fn over_the_limit_is_refused_while_reading() {
        let body = Scripted::new([&b"12345"[..], b"678901"], Duration::ZERO);
        let err = read(&HeaderMap::new(), body, limits(10)).await.unwrap_err();
        assert!(
            matches!(err, RequestBodyError::TooLarge { limit: 10 }),
            "{err:?}"
        );
    }

    /// A declared length over the limit is refused before reading, even the
    /// largest number a `Content-Length` can hold.
    #[tokio::test]
    async fn declared_length_over_the_limit_is_refused_first() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_LENGTH,
            http::HeaderValue::from_static("18446744073709551615"),
        );
        let mut body = Scripted::new([], Duration::ZERO);
        body.stall_at_end = true;
        let err = read(&headers, body, limits(10)).await.unwrap_err();
        assert!(matches!(err, RequestBodyError::TooLarge { .. }), "{err:?}");
    }

    /// A body that stops sending times out at the idle limit.
    #[tokio::test(start_paused = true)]
    async fn stalled_body_times_out_when_idle() {
        let mut body = Scripted::new([&b"a"[..]], Duration::ZERO);
        body.stall_at_end = true;
        let err = read(&HeaderMap::new(), body, BodyLimits::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestBodyError::IdleTimeout { .. }),
            "{err:?}"
        );
    }

    /// A body that trickles (each piece within the idle limit) times out at
    /// the total limit.
    #[tokio::test(start_paused = true)]
    async fn trickled_body_times_out_in_total() {
        let pieces: Vec<&'static [u8]> = vec![b"x"; 100];
        let body = Scripted::new(pieces, Duration::from_secs(5));
        let started = Instant::now();
        let err = read(&HeaderMap::new(), body, BodyLimits::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestBodyError::ReadTimeout { .. }),
            "{err:?}"
        );
        assert_eq!(started.elapsed(), DEFAULT_BODY_READ_TIMEOUT);
    }
}
