//! [`Connection`]: one client of a named-event stream, and the pipe its
//! events travel through.
//!
//! Everything sent to a connection — its own events, the stream's
//! broadcasts, hub channel messages — is appended, as lines, to one
//! [pipe](crate::pipe) under its lock, in the order the sends happen. The
//! socket's driver takes whatever is queued whenever the socket can take
//! more, and writes it as one text message: an idle connection sends each
//! event at once; a busy one sends many per message and per `writev`. A
//! send never waits: when the queue is full, the stream's
//! [`SlowConsumer`](crate::broker::SlowConsumer) policy applies.

use bytes::Bytes;
use serde::Serialize;
use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    task::{Context as TaskContext, Poll},
};
use tokio::sync::Notify;

use super::{error::EventError, wire};
use crate::{
    broker::{Broker, Delivery, Offer, Publication, SlowConsumer},
    pipe::{Gather, PipeFeed, PipeReader, Read},
    ws::{
        driver::Outbox,
        message::{Outgoing, WsMessage},
        shared::{SocketShared, CLOSED, DISCONNECTED},
    },
};

/// The close code for a client too slow for its queue: `1013 Try Again
/// Later` (it may reconnect and resume).
pub(crate) const CLOSE_SLOW: u16 = 1013;

/// What a connection's handles, its sinks and its outbox share.
#[derive(Debug)]
pub(crate) struct ConnShared {
    id: u64,
    feed: PipeFeed,
    /// The stream's broker, for [`Connection::broadcast`]. (The broker
    /// holds this connection's sink while it is connected, and no longer.)
    broker: Broker,
    socket: Arc<SocketShared>,
    /// Live lines that may wait before the slow-consumer policy applies.
    queue: usize,
    /// Bytes that may wait (a single larger line is still taken when
    /// nothing else waits).
    buffer: usize,
    slow: SlowConsumer,
    /// How the socket closes once the pipe ends; `1000` when unset.
    close: Mutex<Option<(u16, String)>>,
    /// Woken each time the driver takes what was queued.
    room: Notify,
}

/// Limits of a connection's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) lines: usize,
    pub(crate) bytes: usize,
    pub(crate) slow: SlowConsumer,
}

impl ConnShared {
    pub(crate) fn new(
        id: u64,
        feed: PipeFeed,
        broker: Broker,
        socket: Arc<SocketShared>,
        limits: QueueLimits,
    ) -> Self {
        ConnShared {
            id,
            feed,
            broker,
            socket,
            queue: limits.lines.max(1),
            buffer: limits.bytes.max(1),
            slow: limits.slow,
            close: Mutex::new(None),
            room: Notify::new(),
        }
    }

    /// Queues one line (see [`queue_lines`](Self::queue_lines)).
    pub(crate) fn queue_line(&self, line: &Bytes, delivery: Delivery) -> Offer {
        self.queue_lines(1, |_| Some(line), delivery).1
    }

    /// Queues the lines of `count` messages under one lock (and one wake of
    /// the driver): `line(i)` is message `i`'s, `None` to skip it. Stops at
    /// the first live line refused (the queue is at its bounds): how many
    /// messages were taken, and why it stopped (`Queued` when it did not).
    ///
    /// The lines of a run are shared, not copied: a broadcast line is one
    /// allocation for every connection, and joining a connection's lines
    /// into the message it sends happens in its driver's task, not in the
    /// fan-out's loop over every subscriber. A single line (a connection's
    /// own send) is copied into the batch's open part, as a busy sender's
    /// lines then leave as one buffer.
    pub(crate) fn queue_lines<'l>(
        &self,
        count: usize,
        line: impl Fn(usize) -> Option<&'l Bytes>,
        delivery: Delivery,
    ) -> (usize, Offer) {
        let queued = self.feed.with_state(|state| {
            state.batch.reserve_parts(count.min(self.queue));
            for i in 0..count {
                let Some(line) = line(i) else { continue };
                let batch = &state.batch;
                if delivery == Delivery::Live
                    && !batch.is_empty()
                    && (batch.writes() >= self.queue || batch.len() + line.len() > self.buffer)
                {
                    return (i, Offer::Full);
                }
                if count == 1 {
                    // A connection's own send, or an idle stream's one
                    // broadcast: copied into the open part, so the driver
                    // takes one buffer (no part to join or free later).
                    state.batch.push_ref(line);
                } else {
                    state.batch.push_shared(line.clone());
                }
            }
            (count, Offer::Queued)
        });
        queued.unwrap_or((0, Offer::Gone))
    }

    /// Whether the queue is below its bounds.
    fn has_room(&self) -> bool {
        self.feed
            .with_state(|state| {
                state.batch.writes() < self.queue && state.batch.len() < self.buffer
            })
            .unwrap_or(true)
    }

    /// Closes the socket with `code` after what is queued (the first close
    /// asked for wins).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        {
            let mut close = self.close.lock().unwrap_or_else(PoisonError::into_inner);
            if close.is_none() {
                let mut reason = reason.to_owned();
                while reason.len() > 123 {
                    reason.pop();
                }
                *close = Some((code, reason));
            }
        }
        self.feed.close();
    }

    /// The error a send gets now that the pipe refused it.
    fn gone(&self) -> EventError {
        match self.socket.send_error() {
            Some(crate::ws::WsError::Disconnected) => EventError::Disconnected,
            _ => EventError::Closed,
        }
    }
}

/// One client of an [`EventStream`](super::EventStream): send it events,
/// close it, know when it is gone. Cheap to clone; clones share the
/// connection, and may be kept and used from any task.
///
/// # Example
///
/// ```
/// use rill::events::{Connection, EventStream};
/// use std::sync::{Arc, Mutex};
///
/// // Keep the connections of signed-in users, to reach one of them later.
/// let by_user: Arc<Mutex<Vec<(String, Connection)>>> = Arc::default();
/// let stream = EventStream::new();
/// let users = by_user.clone();
/// stream.on("login", move |conn, data| {
///     let users = users.clone();
///     async move {
///         let name: String = data.parse()?;
///         users.lock().unwrap().push((name, conn));
///         Ok(())
///     }
/// });
/// ```
#[derive(Debug, Clone)]
pub struct Connection {
    pub(crate) shared: Arc<ConnShared>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<ConnShared>) -> Self {
        Connection { shared }
    }

    /// The connection's id, unique within its stream (1, 2, 3, …).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::builder()
    ///     .on_connect(|conn| async move {
    ///         conn.send("hello", &serde_json::json!({"your_id": conn.id()}))?;
    ///         Ok(())
    ///     })
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Sends event `name` with `data` (any `Serialize`; `()` or `None` for
    /// no data) to this client, after everything sent to it before. Never
    /// waits; safe to call from any task.
    ///
    /// # Errors
    ///
    /// [`EventError::Encode`] when `data` is not JSON-serializable;
    /// [`EventError::Full`] when the connection's queue is full (the
    /// stream's slow-consumer policy was applied); `Closed` or
    /// `Disconnected` once the connection is over.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// // socket.emit("pong", …) back to the one client that asked
    /// stream.on("ping", |conn, data| async move {
    ///     conn.send("pong", &data)?;
    ///     Ok(())
    /// });
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> Result<(), EventError> {
        let data = to_json(data)?;
        self.send_line(&wire::event_line(name, data.as_deref()))
    }

    /// Sends event `name` with `data` to every client of this connection's
    /// stream, this one included: see
    /// [`EventStream::send`](super::EventStream::send).
    ///
    /// # Errors
    ///
    /// As for [`EventStream::send`](super::EventStream::send).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// // io.emit: to every client, the sender included
    /// stream.on("cursor", |conn, data| async move {
    ///     conn.broadcast("cursor", &serde_json::json!({"who": conn.id(), "at": data}))?;
    ///     Ok(())
    /// });
    /// ```
    pub fn broadcast<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> Result<(), EventError> {
        broadcast(&self.shared.broker, name, data)
    }

    /// Queues a whole line, applying the slow-consumer policy when full —
    /// after the stream's broadcasts published before it (a broadcast's
    /// fan-out may still wait for its task).
    pub(crate) fn send_line(&self, line: &Bytes) -> Result<(), EventError> {
        self.shared.broker.flush(BROADCAST_CHANNEL);
        match self.shared.queue_line(line, Delivery::Live) {
            Offer::Queued => Ok(()),
            Offer::Gone => Err(self.shared.gone()),
            Offer::Full => {
                if self.shared.slow == SlowConsumer::Disconnect {
                    self.shared.close(CLOSE_SLOW, "slow consumer");
                }
                Err(EventError::Full)
            }
        }
    }

    /// Waits until the connection's queue has room again (at once when it
    /// has): for producers that would rather slow down than meet the
    /// slow-consumer policy.
    ///
    /// ```
    /// # async fn produce(conn: rill::events::Connection) -> Result<(), rill::events::EventError> {
    /// for line in ["one", "two", "three"] {
    ///     conn.ready().await?;
    ///     conn.send("log", line)?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `Closed` or `Disconnected` once the connection is over.
    pub async fn ready(&self) -> Result<(), EventError> {
        // The common case, without registering for a wake-up.
        if self.shared.socket.send_error().is_none() && self.shared.has_room() {
            return Ok(());
        }
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.shared.socket.send_error().is_some() || self.is_closed() {
                return Err(self.shared.gone());
            }
            if self.shared.has_room() {
                return Ok(());
            }
            tokio::select! {
                () = &mut room => {}
                () = self.closed() => return Err(self.shared.gone()),
            }
        }
    }

    /// Closes the connection with `code` (1000: normal) and `reason` (at
    /// most 123 bytes), after the events already queued.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::new();
    /// stream.on("logout", |conn, _data| async move {
    ///     conn.send("bye", &())?;
    ///     conn.close(1000, "logged out"); // after "bye"
    ///     Ok(())
    /// });
    /// ```
    pub fn close(&self, code: u16, reason: &str) {
        self.shared.close(code, reason);
    }

    /// Whether nothing more can be sent.
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use std::time::Duration;
    ///
    /// let stream = EventStream::builder()
    ///     .on_connect(|conn| async move {
    ///         tokio::spawn(async move {
    ///             while !conn.is_closed() {
    ///                 let _ = conn.send("heartbeat", &());
    ///                 tokio::time::sleep(Duration::from_secs(15)).await;
    ///             }
    ///         });
    ///         Ok(())
    ///     })
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.socket.send_error().is_some() || self.shared.feed.with_state(|_| ()).is_err()
    }

    /// Resolves when the connection is over (closed by either side, or the
    /// client gone).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    /// use std::time::Duration;
    ///
    /// let stream = EventStream::builder()
    ///     .on_connect(|conn| async move {
    ///         let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ///         tokio::spawn(async move {
    ///             loop {
    ///                 tokio::select! {
    ///                     _ = ticks.tick() => { let _ = conn.send("tick", &()); }
    ///                     () = conn.closed() => break, // stop the timer with the connection
    ///                 }
    ///             }
    ///         });
    ///         Ok(())
    ///     })
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let socket = self.shared.socket.clone();
        async move { socket.wait_for(CLOSED | DISCONNECTED).await }
    }

    /// Resolves when the client goes away without a close handshake (or
    /// stops answering pings).
    ///
    /// # Example
    ///
    /// ```
    /// use rill::events::EventStream;
    ///
    /// let stream = EventStream::builder()
    ///     .on_connect(|conn| async move {
    ///         let id = conn.id();
    ///         tokio::spawn(async move {
    ///             conn.disconnected().await; // no close handshake: the network dropped
    ///             tracing::info!(id, "client lost");
    ///         });
    ///         Ok(())
    ///     })
    ///     .build();
    /// # drop(stream);
    /// ```
    pub fn disconnected(&self) -> impl Future<Output = ()> + Send + 'static {
        let socket = self.shared.socket.clone();
        async move { socket.wait_for(DISCONNECTED).await }
    }
}

/// Publishes event `name` with `data` on a stream's broadcast channel.
pub(crate) fn broadcast<T: Serialize + ?Sized>(
    broker: &Broker,
    name: &str,
    data: &T,
) -> Result<(), EventError> {
    let data = to_json(data)?;
    let publication = Publication::new(data.unwrap_or_default()).event(name);
    broker
        .publish_detached(BROADCAST_CHANNEL, publication)
        .map_err(|error| {
            tracing::warn!(%error, "event stream broadcast failed");
            EventError::Closed
        })
}

/// The stream's broadcast channel on its broker.
pub(crate) const BROADCAST_CHANNEL: &str = "rill.events";

/// `data` as JSON text; `None` for `null` (no data).
pub(crate) fn to_json<T: Serialize + ?Sized>(data: &T) -> Result<Option<String>, EventError> {
    let json = serde_json::to_string(data).map_err(|error| EventError::Encode {
        reason: error.to_string(),
    })?;
    Ok((json != "null").then_some(json))
}

/// The driver's source for a named-event connection: everything queued in
/// the pipe, as one text message per take; the close asked for once the
/// pipe ends.
pub(crate) struct PipeOutbox {
    reader: PipeReader,
    shared: Arc<ConnShared>,
    ended: bool,
}

impl PipeOutbox {
    pub(crate) fn new(reader: PipeReader, shared: Arc<ConnShared>) -> Self {
        PipeOutbox {
            reader,
            shared,
            ended: false,
        }
    }
}

impl Outbox for PipeOutbox {
    fn poll_next(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Outgoing>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.reader.poll_read::<Gather>(cx) {
            Poll::Ready(Read::Data(payload)) => {
                self.shared.room.notify_waiters();
                // Every line was written by this module as JSON: UTF-8.
                Poll::Ready(Some(Outgoing::Message(WsMessage::from_codec(
                    true, payload,
                ))))
            }
            Poll::Ready(Read::End(_)) => {
                self.ended = true;
                let close = self
                    .shared
                    .close
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                let (code, reason) = close.unwrap_or((1000, String::new()));
                Poll::Ready(Some(Outgoing::Close { code, reason }))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
