//! [`LiveStream`]: the writer's end of a live response.

use bytes::{Bytes, BytesMut};
use futures_channel::mpsc;
use std::{future::Future, sync::Arc, task::Poll};

use super::shared::{Shared, CLOSED, DISCONNECTED, SHUTDOWN, WRITER_GONE};
use crate::{charset::Charset, chunk::Chunk, error::LiveError};

/// The most bytes a writer may queue beyond the channel before `write` waits.
pub(crate) const BATCH_LIMIT: usize = 256 * 1024;

/// Frames sent through the channel are encoded into a scratch buffer
/// allocated in blocks of this size, so a writer allocates once per block
/// rather than once per event.
const SCRATCH_BLOCK: usize = 16 * 1024;

/// What became of one attempt to hand bytes over.
enum Push {
    /// In the channel or in the pending batch.
    Done,
    /// The channel is full and the chunk is too big to batch: wait for room.
    Large(Bytes),
    /// The batch is full: wait until the body takes it.
    BatchFull(Bytes),
}

/// Where an encoded frame can go without waiting.
enum Batch {
    /// Appended to the pending batch.
    Added,
    /// The batch is full: wait until the body takes it.
    Full,
    /// Nothing is ahead: send through the channel, which wakes the body.
    Idle,
}

/// The writer's end of a live response: what `ctx.live(|ctx, stream| …)`
/// hands to your closure.
///
/// Writes reach the client in order. A write to an idle stream leaves at
/// once as its own chunk; writes made faster than the client reads are
/// gathered into a pending batch and leave together. Writes wait once the
/// channel and the batch (256 KiB) are full — that is the back-pressure of
/// a client that reads slowly — and fail once the client has gone
/// ([`LiveError::ClientDisconnected`]) or the stream is closed
/// ([`LiveError::StreamClosed`]).
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
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    charset: Charset,
}

impl LiveStream {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>, shared: Arc<Shared>, charset: Charset) -> Self {
        LiveStream {
            tx,
            shared,
            charset,
        }
    }

    /// Sends one chunk to the client: text is encoded in the response
    /// charset, bytes go through unchanged. An empty chunk is skipped (an empty
    /// chunk would end an HTTP/1.1 chunked body). Waits while the channel to
    /// the body is full.
    ///
    /// # Errors
    ///
    /// * [`LiveError::StreamClosed`] after [`close`](Self::close),
    ///   [`disconnect`](Self::disconnect) or server shutdown;
    /// * [`LiveError::ClientDisconnected`] once the client is gone;
    /// * [`LiveError::Unencodable`] if the text has a character the charset
    ///   cannot represent — nothing is written and the stream stays usable.
    pub async fn write<'a>(&mut self, chunk: impl Into<Chunk<'a>>) -> Result<(), LiveError> {
        if let Some(e) = self.shared.write_error() {
            return Err(e);
        }
        let bytes = match chunk.into() {
            Chunk::Text(text) => self.charset.encode(text)?,
            Chunk::Binary(bytes) => bytes,
        };
        self.send_bytes(bytes).await
    }

    /// Sends already-encoded bytes; the building block of `write` and of the
    /// SSE writer.
    ///
    /// When the channel has room the bytes go straight into it, so an event
    /// written to an idle stream leaves at once. When it is full, small
    /// writes are appended to the pending batch (up to [`BATCH_LIMIT`]) and
    /// return at once; the body sends the whole batch as one chunk as soon as
    /// it has drained the channel. Past the limit, or for a chunk as large as
    /// the limit, the write waits.
    pub(crate) async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), LiveError> {
        if let Some(e) = self.shared.write_error() {
            return Err(e);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let mut bytes = bytes;
        loop {
            // The waits are boxed: they are rare (once per full batch), and
            // keeping them out of this future keeps every write's future
            // small, which is most of the cost of a write that does not wait.
            match self.try_push(bytes)? {
                Push::Done => return Ok(()),
                Push::Large(large) => return Box::pin(self.send_when_room(large)).await,
                Push::BatchFull(again) => {
                    bytes = again;
                    Box::pin(self.wait_batch_taken()).await?;
                }
            }
        }
    }

    /// One attempt to hand `bytes` over without waiting.
    ///
    /// The channel takes the bytes only when nothing is ahead of them — no
    /// pending batch, and no message the body has not taken yet (so an idle
    /// stream sends at once and wakes the body) — or when the chunk is too
    /// big to copy into the batch. Otherwise they join the batch, which the
    /// body takes right after the message in flight: under load, one wake
    /// and one frame carry many writes.
    fn try_push(&mut self, bytes: Bytes) -> Result<Push, LiveError> {
        let mut pending = self.shared.pending();
        let bytes =
            if pending.is_empty() && (self.shared.in_flight() == 0 || bytes.len() >= BATCH_LIMIT) {
                self.shared.sending();
                match self.tx.try_send(bytes) {
                    Ok(()) => return Ok(Push::Done),
                    Err(e) => {
                        self.shared.not_sent();
                        if e.is_disconnected() {
                            return Err(self.shared.gone_error());
                        }
                        e.into_inner()
                    }
                }
            } else {
                bytes
            };
        if pending.is_empty() && bytes.len() >= BATCH_LIMIT {
            return Ok(Push::Large(bytes));
        }
        if pending.len() + bytes.len() <= BATCH_LIMIT {
            pending.push(bytes);
            return Ok(Push::Done);
        }
        Ok(Push::BatchFull(bytes))
    }

    /// Sends one frame that `encode` appends to a buffer: straight into the
    /// pending batch when the stream is busy (no intermediate buffer, no
    /// reference counting), else through `scratch` and the channel, exactly
    /// like [`send_bytes`](Self::send_bytes). `encode` may run more than once
    /// (after a wait) and must append the same bytes each time. The caller
    /// checks [`write_error`](Self::write_error) first.
    pub(crate) async fn send_encoded(
        &mut self,
        scratch: &mut BytesMut,
        encode: impl Fn(&mut BytesMut),
    ) -> Result<(), LiveError> {
        loop {
            match self.try_encode_into_batch(&encode) {
                Batch::Added => return Ok(()),
                Batch::Full => Box::pin(self.wait_batch_taken()).await?,
                Batch::Idle => {
                    if scratch.capacity() - scratch.len() < 512 {
                        scratch.reserve(SCRATCH_BLOCK);
                    }
                    encode(scratch);
                    return Box::pin(self.send_bytes(scratch.split().freeze())).await;
                }
            }
        }
    }

    fn try_encode_into_batch(&self, encode: &impl Fn(&mut BytesMut)) -> Batch {
        let mut pending = self.shared.pending();
        if pending.is_empty() && self.shared.in_flight() == 0 {
            return Batch::Idle;
        }
        if pending.len() >= BATCH_LIMIT {
            return Batch::Full;
        }
        pending.encode(encode);
        Batch::Added
    }

    /// Waits until the body has taken the pending batch (or the stream can
    /// take no more).
    async fn wait_batch_taken(&self) -> Result<(), LiveError> {
        let shared = &self.shared;
        loop {
            let notified = shared.notifier().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = shared.write_error() {
                return Err(e);
            }
            {
                let mut pending = shared.pending();
                if pending.is_empty() {
                    return Ok(());
                }
                // Under the lock, so the body, which takes the batch under
                // it, cannot miss that someone waits.
                pending.writer_waits();
            }
            notified.await;
        }
    }

    /// Waits for a free slot in the channel, but wakes up if the stream is
    /// closed or the client leaves meanwhile (a shutdown must not wait on a
    /// stalled client).
    async fn send_when_room(&mut self, bytes: Bytes) -> Result<(), LiveError> {
        let shared = &self.shared;
        let tx = &mut self.tx;
        let notified = shared.notifier().notified();
        tokio::pin!(notified);
        std::future::poll_fn(|cx| loop {
            if let Some(e) = shared.write_error() {
                return Poll::Ready(Err(e));
            }
            if notified.as_mut().poll(cx).is_ready() {
                notified.set(shared.notifier().notified());
                continue;
            }
            return match tx.poll_ready(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => Poll::Ready(Err(shared.gone_error())),
                Poll::Pending => Poll::Pending,
            };
        })
        .await?;
        self.shared.sending();
        self.tx.start_send(bytes).map_err(|_| {
            self.shared.not_sent();
            self.shared.gone_error()
        })
    }

    /// The error a write would get now, if any (closed before disconnected).
    pub(crate) fn write_error(&self) -> Option<LiveError> {
        self.shared.write_error()
    }

    /// Whether the client has gone away.
    pub fn is_disconnected(&self) -> bool {
        self.shared.has(DISCONNECTED)
    }

    /// Whether the stream is closed (by [`close`](Self::close),
    /// [`disconnect`](Self::disconnect) or server shutdown).
    pub fn is_closed(&self) -> bool {
        self.shared.has(CLOSED)
    }

    /// Whether the stream was closed because the server is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.has(SHUTDOWN)
    }

    /// Closes the stream: the body ends cleanly once the client has received
    /// what was written; later writes return [`LiveError::StreamClosed`].
    pub fn close(&mut self) {
        self.shared.set(CLOSED);
        self.tx.close_channel();
    }

    /// Marks the client as gone and closes the stream, like the framework does
    /// when the client leaves. Later writes return [`LiveError::StreamClosed`].
    pub fn disconnect(&mut self) {
        self.shared.set(DISCONNECTED | CLOSED);
        self.tx.close_channel();
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
        let shared = self.shared.clone();
        async move { shared.wait_for(DISCONNECTED).await }
    }

    /// A future that resolves when the stream can take no more writes: it
    /// was closed (including by server shutdown) or the client went away.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.wait_for(CLOSED | DISCONNECTED).await }
    }

    /// The charset text chunks are encoded in.
    pub fn charset(&self) -> Charset {
        self.charset
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        // Before the sender goes (fields drop after this): a body that
        // skips looking at an empty channel must look again.
        self.shared.set(WRITER_GONE);
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
