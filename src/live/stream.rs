//! [`LiveStream`]: the writer's end of a live response.

use bytes::{Bytes, BytesMut};
use std::future::Future;

use crate::{
    charset::Charset,
    chunk::Chunk,
    error::LiveError,
    pipe::{PipeWriter, CLOSED, DISCONNECTED, SHUTDOWN},
};

/// The writer's end of a live response: what `ctx.live(|ctx, stream| …)`
/// hands to your closure.
///
/// Writes reach the client in order. A write to an idle stream leaves at
/// once as its own chunk; writes made faster than the client reads are
/// gathered and leave together. Writes wait once the bytes queued reach the
/// [buffer limit](crate::LiveOptions::buffer_limit) (256 KiB by default) —
/// that is the back-pressure of a client that reads slowly — and fail once
/// the client has gone ([`LiveError::ClientDisconnected`]) or the stream is
/// closed ([`LiveError::StreamClosed`]).
///
/// # Example
///
/// ```
/// use rill::{Context, LiveError, Response};
/// use std::time::Duration;
///
/// async fn feed(ctx: Context) -> Response {
///     ctx.live(|_ctx, mut stream| async move {
///         let mut n = 0u64;
///         loop {
///             n += 1;
///             match stream.write(format!("line {n}\n")).await {
///                 Ok(()) => {}
///                 Err(LiveError::ClientDisconnected) => {
///                     // release resources here
///                     return Ok(());
///                 }
///                 Err(e) => return Err(e.into()),
///             }
///             tokio::time::sleep(Duration::from_millis(100)).await;
///         }
///     })
/// }
/// ```
///
/// # Pitfalls
///
/// * **Proxy buffering.** nginx and some CDNs buffer responses; rill sends
///   `X-Accel-Buffering: no` and `Cache-Control: no-cache`, but other proxies
///   may need their own configuration.
/// * **Idle writers and departed clients.** A writer that waits on something
///   else does not learn of a disconnect from `write` until it writes again:
///   `select!` on [`disconnected`](Self::disconnected) to stop at once.
/// * **Cancel safety.** Dropping a `write` future before it completes writes
///   nothing of that chunk (the chunk is handed over in one step).
/// * **Back-pressure.** A client that stops reading makes `write` wait, and
///   the writer with it. A producer that must not wait should drop or
///   coalesce data itself rather than buffer without bound.
#[must_use = "a live stream does nothing unless written to"]
pub struct LiveStream {
    pipe: PipeWriter,
    charset: Charset,
}

impl LiveStream {
    pub(crate) fn new(pipe: PipeWriter, charset: Charset) -> Self {
        LiveStream { pipe, charset }
    }

    /// Sends one chunk to the client: text is encoded in the response
    /// charset, bytes go through unchanged. An empty chunk sends nothing.
    /// Waits while the buffer limit is reached.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    ///
    /// let response = rill::live(|mut stream| async move {
    ///     stream.write("text and ").await?; // &str, String: encoded in the charset
    ///     stream.write(b"bytes\n").await?; // bytes: sent as they are
    ///     Ok(())
    /// });
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "text and bytes\n");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// * [`LiveError::StreamClosed`] after [`close`](Self::close),
    ///   [`disconnect`](Self::disconnect) or server shutdown;
    /// * [`LiveError::ClientDisconnected`] once the client is gone;
    /// * [`LiveError::Unencodable`] if the text has a character the charset
    ///   cannot represent — nothing is written and the stream stays usable.
    pub async fn write<'a>(&mut self, chunk: impl Into<Chunk<'a>>) -> Result<(), LiveError> {
        if let Some(e) = self.pipe.shared().write_error() {
            return Err(e);
        }
        let bytes = match chunk.into() {
            Chunk::Text(text) => self.charset.encode(text)?,
            Chunk::Binary(bytes) => bytes,
        };
        self.send_bytes(bytes).await
    }

    /// Sends already-encoded bytes; the building block of `write` and of the
    /// SSE writer. A write that finds room needs no future at all; the rare
    /// wait is boxed, which keeps every write's future small — most of the
    /// cost of a write that does not wait.
    pub(crate) async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), LiveError> {
        match self.pipe.try_send(bytes)? {
            None => Ok(()),
            Some(bytes) => Box::pin(self.pipe.send(bytes)).await,
        }
    }

    /// Sends one frame that `encode` appends to a buffer, straight into the
    /// batch when the stream is busy; see `PipeWriter::send_encoded`.
    pub(crate) async fn send_encoded(
        &mut self,
        scratch: &mut BytesMut,
        encode: impl Fn(&mut BytesMut),
    ) -> Result<(), LiveError> {
        self.pipe.send_encoded(scratch, encode).await
    }

    /// The error a write would get now, if any (closed before disconnected).
    pub(crate) fn write_error(&self) -> Option<LiveError> {
        self.pipe.shared().write_error()
    }

    /// Whether the client has gone away.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{LiveError, WriterError};
    ///
    /// let response = rill::live(|mut stream| async move {
    ///     assert!(stream.is_disconnected()); // the client left before the first write
    ///     stream.write("anyone there?\n").await?;
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// drop(response); // the client goes away
    /// assert!(matches!(writer.await, Err(WriterError::Live(LiveError::ClientDisconnected))));
    /// # }
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.pipe.is_disconnected()
    }

    /// Whether the stream is closed (by [`close`](Self::close),
    /// [`disconnect`](Self::disconnect) or server shutdown).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let response = rill::live(|mut stream| async move {
    ///     assert!(!stream.is_closed());
    ///     stream.close();
    ///     assert!(stream.is_closed());
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// let _body = response.into_http().into_body(); // keep the client connected
    /// assert!(writer.await.is_ok());
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.pipe.shared().has(CLOSED)
    }

    /// Whether the server is shutting down: from the announcement (writes
    /// still succeed during the grace period) to the close.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{LiveOptions, LiveTracker};
    ///
    /// let tracker = LiveTracker::new();
    /// let response = rill::live_with(LiveOptions::new().tracker(tracker.clone()), |mut stream| async move {
    ///     stream.closed().await;
    ///     if stream.is_shutting_down() {
    ///         stream.write("restarting, reconnect soon\n").await?; // still allowed
    ///     }
    ///     Ok(())
    /// });
    /// tracker.announce_shutdown();
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "restarting, reconnect soon\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        self.pipe.shared().has(SHUTDOWN)
    }

    /// Closes the stream: the body ends cleanly once the client has received
    /// what was written; later writes return [`LiveError::StreamClosed`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use http_body_util::BodyExt;
    /// use rill::{LiveError, WriterError};
    ///
    /// let response = rill::live(|mut stream| async move {
    ///     stream.write("that's all\n").await?;
    ///     stream.close();
    ///     stream.write("one more thing\n").await?; // fails: StreamClosed
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// let body = response.into_http().into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "that's all\n"); // a clean end after what was written
    /// assert!(matches!(writer.await, Err(WriterError::Live(LiveError::StreamClosed))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&mut self) {
        self.pipe.close();
    }

    /// Marks the client as gone and closes the stream, like the framework does
    /// when the client leaves. Later writes return [`LiveError::StreamClosed`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use rill::{LiveError, WriterError};
    ///
    /// let response = rill::live(|mut stream| async move {
    ///     stream.disconnect(); // e.g. the client's session expired
    ///     assert!(stream.is_disconnected() && stream.is_closed());
    ///     stream.write("hello\n").await?; // fails: StreamClosed
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// let _body = response.into_http().into_body();
    /// assert!(matches!(writer.await, Err(WriterError::Live(LiveError::StreamClosed))));
    /// # }
    /// ```
    pub fn disconnect(&mut self) {
        self.pipe.disconnect();
    }

    /// A future that resolves when the client goes away — even while this
    /// writer is idle. It owns what it needs, so it can be moved into
    /// `tokio::select!` next to a `write` or anything else.
    ///
    /// ```
    /// # async fn f(mut stream: rill::LiveStream, mut rx: tokio::sync::mpsc::Receiver<String>) {
    /// let gone = stream.disconnected();
    /// tokio::pin!(gone);
    /// loop {
    ///     tokio::select! {
    ///         _ = &mut gone => break, // clean up
    ///         Some(msg) = rx.recv() => { let _ = stream.write(msg).await; }
    ///     }
    /// }
    /// # }
    /// ```
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.pipe.shared().clone();
        async move { shared.wait_for(DISCONNECTED).await }
    }

    /// A future that resolves when the writer should stop: the stream was
    /// closed, the client went away, or the server began a graceful
    /// shutdown. In the last case ([`is_shutting_down`](Self::is_shutting_down)
    /// is true) writes still succeed for the shutdown's grace period
    /// ([`Server::shutdown_grace`](crate::Server::shutdown_grace), 1 s by
    /// default): say goodbye, then return.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let response = rill::live(|stream| async move {
    ///     stream.closed().await; // wakes although this writer never writes
    ///     assert!(stream.is_disconnected()); // this time, because the client left
    ///     Ok(())
    /// });
    /// let writer = response.writer().unwrap();
    /// drop(response); // the client goes away
    /// assert!(writer.await.is_ok());
    /// # }
    /// ```
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.pipe.shared().clone();
        async move { shared.wait_for(CLOSED | DISCONNECTED | SHUTDOWN).await }
    }

    /// The charset text chunks are encoded in.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rill::{Charset, LiveOptions};
    ///
    /// let options = LiveOptions::new().charset(Charset::for_label("latin1")?);
    /// let response = rill::live_with(options, |stream| async move {
    ///     assert_eq!(stream.charset().name(), "windows-1252");
    ///     Ok(())
    /// });
    /// assert!(response.writer().unwrap().await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn charset(&self) -> Charset {
        self.charset
    }
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream")
            .field("charset", &self.charset)
            .field("closed", &self.is_closed())
            .field("disconnected", &self.is_disconnected())
            .finish()
    }
}
