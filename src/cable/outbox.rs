//! [`Outbox`]: the queue of one cable connection's messages, each one
//! WebSocket text message (ActionCable clients parse every message as one
//! JSON object, so messages are never joined the way named-event lines are).
//!
//! # Rules
//!
//! 1. **One lock.** The frames, their byte count, the driver's waker and
//!    the end are kept under one mutex; a push and the driver's take never
//!    interleave, so frames leave in the order they were pushed.
//! 2. **Wake after unlock.** A push that finds the driver parked takes its
//!    waker under the lock and wakes it after releasing it; the driver parks
//!    only under the lock, after finding nothing to take. No frame is left
//!    behind with the driver asleep (checked by `loom_tests.rs`).
//! 3. **Bounded live, unbounded control.** A live broadcast is refused when
//!    `messages` frames or `bytes` bytes already wait (a single frame is
//!    taken when nothing waits); the connection's own replies (confirmations,
//!    transmissions, history, pings) are never refused while it is open: the
//!    client asked for them, and they are few.
//! 4. **The end is last.** Once [`end`](Outbox::end) was called nothing more
//!    is queued; the driver sends what waits, then the close.

use bytes::Bytes;
use std::{
    collections::VecDeque,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use crate::{
    sync::Mutex,
    ws::{driver, message::Outgoing, message::WsMessage},
};

/// The close code after a `too_slow` disconnect: `1013 Try Again Later`.
pub(crate) const CLOSE_SLOW: u16 = 1013;

/// What a push found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Queued.
    Queued,
    /// Refused: too much waits already (live frames only).
    Full,
    /// Refused: the connection is ending.
    Gone,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    bytes: usize,
    waker: Option<Waker>,
    /// The close to send once the frames are out; set once.
    end: Option<(u16, String)>,
    /// A last message should the server shut down first (set by the
    /// connection once it is welcomed).
    farewell: Option<Bytes>,
}

/// One connection's queue of messages, shared by its session, its
/// subscriptions' sinks, the cable's pinger and the socket's driver.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    max_messages: usize,
    max_bytes: usize,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Outbox {
            queue: Mutex::new(Queue::default()),
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Queue> {
        crate::sync::lock(&self.queue)
    }

    /// Queues `frame`; a `live` one is refused when the queue is at its
    /// bounds (rule 3).
    pub(crate) fn push(&self, frame: Bytes, live: bool) -> Push {
        self.push_many(1, |_| frame.clone(), live).1
    }

    /// Queues `count` frames made by `frame(i)` under one lock and one wake:
    /// how many were queued, and why it stopped (`Queued` when it did not).
    pub(crate) fn push_many(
        &self,
        count: usize,
        frame: impl Fn(usize) -> Bytes,
        live: bool,
    ) -> (usize, Push) {
        let (queued, push, waker) = {
            let mut queue = self.lock();
            if queue.end.is_some() {
                return (0, Push::Gone);
            }
            let mut outcome = (count, Push::Queued);
            for i in 0..count {
                let frame = frame(i);
                if live
                    && !queue.frames.is_empty()
                    && (queue.frames.len() >= self.max_messages
                        || queue.bytes + frame.len() > self.max_bytes)
                {
                    outcome = (i, Push::Full);
                    break;
                }
                queue.bytes += frame.len();
                queue.frames.push_back(frame);
            }
            let waker = if outcome.0 > 0 {
                queue.waker.take()
            } else {
                None
            };
            (outcome.0, outcome.1, waker)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        (queued, push)
    }

    /// Queues `last` (if any) after what waits, then the close with `code`
    /// and `reason`; later pushes are refused. The first end asked for wins.
    pub(crate) fn end(&self, last: Option<Bytes>, code: u16, reason: &str) {
        let waker = {
            let mut queue = self.lock();
            if queue.end.is_some() {
                return;
            }
            if let Some(last) = last {
                queue.bytes += last.len();
                queue.frames.push_back(last);
            }
            let mut reason = reason.to_owned();
            while reason.len() > 123 {
                reason.pop();
            }
            queue.end = Some((code, reason));
            queue.farewell = None;
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ends the connection as too slow for its bounds: AnyCable's
    /// `{"type":"disconnect","reason":"too_slow","reconnect":true}`, then a
    /// `1013 Try Again Later` close.
    pub(crate) fn end_too_slow(&self) {
        let farewell =
            super::protocol::disconnect(super::protocol::DisconnectReason::TooSlow, true);
        self.end(Some(Bytes::from(farewell)), CLOSE_SLOW, "too slow");
    }

    /// Whether the connection is ending (nothing more is queued).
    pub(crate) fn is_ended(&self) -> bool {
        self.lock().end.is_some()
    }

    /// Sets the message sent should the server shut down.
    pub(crate) fn set_farewell(&self, farewell: Bytes) {
        let mut queue = self.lock();
        if queue.end.is_none() {
            queue.farewell = Some(farewell);
        }
    }

    /// Frames waiting now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().frames.len()
    }

    /// Moves every waiting frame into `into` (empty), or says the end:
    /// `Ready(None)` with nothing left but the close; `Pending` (the waker
    /// parked) with nothing at all.
    fn take(
        &self,
        into: &mut VecDeque<Bytes>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u16, String)>> {
        let mut queue = self.lock();
        if !queue.frames.is_empty() {
            std::mem::swap(&mut queue.frames, into);
            queue.bytes = 0;
            return Poll::Ready(None);
        }
        match &queue.end {
            Some(end) => Poll::Ready(Some(end.clone())),
            None => {
                queue.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The driver's side of an [`Outbox`]: the frames taken at once, handed
/// out one by one.
pub(crate) struct OutboxReader {
    outbox: Arc<Outbox>,
    taken: VecDeque<Bytes>,
    ended: bool,
}

impl OutboxReader {
    pub(crate) fn new(outbox: Arc<Outbox>) -> Self {
        OutboxReader {
            outbox,
            taken: VecDeque::new(),
            ended: false,
        }
    }

    /// The next frame or the close (see [`Outbox::take`]).
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, (u16, String)>>> {
        if let Some(frame) = self.taken.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match self.outbox.take(&mut self.taken, cx) {
            Poll::Ready(None) => Poll::Ready(self.taken.pop_front().map(Ok)),
            Poll::Ready(Some(end)) => {
                self.ended = true;
                Poll::Ready(Some(Err(end)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl driver::Outbox for OutboxReader {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        match self.poll_frame(cx) {
            // Every frame was written by this module's callers as JSON:
            // UTF-8.
            Poll::Ready(Some(Ok(frame))) => {
                Poll::Ready(Some(Outgoing::Message(WsMessage::from_codec(true, frame))))
            }
            Poll::Ready(Some(Err((code, reason)))) => {
                Poll::Ready(Some(Outgoing::Close { code, reason }))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn farewell(&mut self) -> Option<WsMessage> {
        let farewell = self.outbox.lock().farewell.take()?;
        Some(WsMessage::from_codec(true, farewell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn live_frames_are_bounded_and_control_frames_are_not() {
        let outbox = Arc::new(Outbox::new(2, 1024));
        assert_eq!(outbox.push(Bytes::from_static(b"1"), true), Push::Queued);
        assert_eq!(outbox.push(Bytes::from_static(b"2"), true), Push::Queued);
        assert_eq!(outbox.push(Bytes::from_static(b"3"), true), Push::Full);
        assert_eq!(outbox.push(Bytes::from_static(b"c"), false), Push::Queued);
        let mut reader = OutboxReader::new(outbox.clone());
        let mut cx = noop();
        let mut seen = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) = reader.poll_frame(&mut cx) {
            seen.push(frame);
        }
        assert_eq!(seen, ["1", "2", "c"]);
        assert_eq!(outbox.push(Bytes::from_static(b"4"), true), Push::Queued);
    }

    #[test]
    fn the_end_comes_after_what_waits_and_refuses_more() {
        let outbox = Arc::new(Outbox::new(8, 1024));
        outbox.push(Bytes::from_static(b"a"), true);
        outbox.end(Some(Bytes::from_static(b"bye")), 1000, "");
        assert_eq!(outbox.push(Bytes::from_static(b"late"), false), Push::Gone);
        let mut reader = OutboxReader::new(outbox.clone());
        let mut cx = noop();
        assert!(matches!(reader.poll_frame(&mut cx), Poll::Ready(Some(Ok(f))) if f == "a"));
        assert!(matches!(reader.poll_frame(&mut cx), Poll::Ready(Some(Ok(f))) if f == "bye"));
        assert!(matches!(
            reader.poll_frame(&mut cx),
            Poll::Ready(Some(Err((1000, _))))
        ));
        assert!(matches!(reader.poll_frame(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_single_large_frame_passes_when_nothing_waits() {
        let outbox = Outbox::new(8, 4);
        assert_eq!(
            outbox.push(Bytes::from_static(b"too large"), true),
            Push::Queued
        );
        assert_eq!(outbox.push(Bytes::from_static(b"x"), true), Push::Full);
        assert_eq!(outbox.waiting(), 1);
    }
}
