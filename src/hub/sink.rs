//! [`SseSink`]: a hub subscriber as the broker sees it — a pipe feed that
//! encodes messages as SSE frames, and the cursor a client resumes from.
//!
//! # Ids on the wire
//!
//! A subscription to one channel gets the message's position as its id
//! (`id: <epoch>-<offset>`), in a frame encoded once and shared by every
//! subscriber. A subscription to several channels gets a *cursor*: the
//! position of each of its channels, in the order of their names, joined
//! by dots (`id: <epoch>-<offset>.<epoch>-<offset>`). The frame's `event:`
//! and `data:` lines are still encoded once and shared; only the `id:` line
//! is the subscriber's own.

use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{
    broker::{
        offer_each, Delivery, Encoding, Message, MessageKind, Metadata, Offer, Position, Since,
        Sink,
    },
    pipe::{PipeFeed, COPY_BELOW},
    sse::Event,
};

/// The separator of positions in a multi-channel cursor.
const CURSOR_SEPARATOR: char = '.';

/// A hub subscriber's end of the broker.
pub(super) struct SseSink {
    feed: PipeFeed,
    metadata: Metadata,
    /// Live frames that may wait before the slow-consumer policy applies.
    queue: usize,
    /// The subscription's channels, sorted: the order of the cursor.
    channels: Arc<[String]>,
    /// The position of each channel (multi-channel subscriptions only).
    cursor: Option<Mutex<Vec<Option<Position>>>>,
}

impl SseSink {
    pub(super) fn new(
        feed: PipeFeed,
        metadata: Metadata,
        queue: usize,
        channels: Arc<[String]>,
    ) -> Self {
        let cursor = (channels.len() > 1).then(|| Mutex::new(vec![None; channels.len()]));
        SseSink {
            feed,
            metadata,
            queue,
            channels,
            cursor,
        }
    }

    /// Queues `frame`: shared, never copied, for a replay; copied when
    /// short (a message's frame is read by every subscriber at once).
    fn queue_frame(&self, frame: &Bytes, delivery: Delivery) -> Offer {
        let queued = self.feed.with_state(|state| {
            match delivery {
                Delivery::Replay => state.batch.push_shared(frame.clone()),
                Delivery::Live => {
                    if state.batch.writes() >= self.queue {
                        return Offer::Full;
                    }
                    state.batch.push_ref(frame);
                }
            }
            Offer::Queued
        });
        queued.unwrap_or(Offer::Gone)
    }

    /// Queues a publication for a multi-channel subscription: its shared
    /// `event:`/`data:` lines, then this subscriber's cursor with the
    /// message's channel moved on. Under the pipe's lock, so the cursor of
    /// each frame covers exactly the frames before it, whichever channels
    /// offer concurrently.
    fn queue_with_cursor(
        &self,
        cursor: &Mutex<Vec<Option<Position>>>,
        message: &Message,
        delivery: Delivery,
    ) -> Offer {
        let fields = message.encoded(Encoding::SseFields, encode_fields);
        let index = self
            .channels
            .binary_search_by(|c| c.as_str().cmp(message.channel()));
        let queued = self.feed.with_state(|state| {
            if delivery == Delivery::Live && state.batch.writes() >= self.queue {
                return Offer::Full;
            }
            let mut cursor = cursor.lock().unwrap_or_else(PoisonError::into_inner);
            if let Ok(i) = index {
                cursor[i] = Some(message.position().clone());
            }
            match delivery {
                Delivery::Replay => state.batch.push_shared(fields.clone()),
                Delivery::Live => state.batch.push_ref(fields),
            }
            state.batch.encode(|buf| {
                buf.extend_from_slice(b"id: ");
                write_cursor(&cursor, buf);
                buf.extend_from_slice(b"\n\n");
            });
            Offer::Queued
        });
        queued.unwrap_or(Offer::Gone)
    }
}

impl Sink for SseSink {
    fn offer(&self, message: &Arc<Message>, delivery: Delivery) -> Offer {
        match (&self.cursor, message.kind()) {
            (Some(cursor), MessageKind::Publication) => {
                self.queue_with_cursor(cursor, message, delivery)
            }
            _ => self.queue_frame(sse_frame(message), delivery),
        }
    }

    fn offer_many(&self, messages: &[&Arc<Message>], delivery: Delivery) -> (usize, Offer) {
        if self.cursor.is_some() {
            // Each frame carries this subscriber's cursor: one at a time.
            return offer_each(self, messages, delivery);
        }
        let queued = self.feed.with_state(|state| {
            // One allocation for the frames that will fit.
            let room = self.queue.saturating_sub(state.batch.writes());
            let bytes = messages
                .iter()
                .take(room)
                .map(|m| sse_frame(m).len())
                .filter(|&len| len < COPY_BELOW)
                .sum();
            state.batch.reserve_bytes(bytes);
            for (queued, message) in messages.iter().enumerate() {
                if delivery == Delivery::Live && state.batch.writes() >= self.queue {
                    return (queued, Offer::Full);
                }
                state.batch.push_ref(sse_frame(message));
            }
            (messages.len(), Offer::Queued)
        });
        queued.unwrap_or((0, Offer::Gone))
    }

    fn reset(&self, channel: &str) -> Offer {
        self.queue_frame(&notice("reset", channel), Delivery::Replay)
    }

    fn gap(&self, _channel: &str, dropped: u64) -> Offer {
        self.queue_frame(&notice("gap", &dropped.to_string()), Delivery::Live)
    }

    fn position(&self, channel: &str, position: &Position) {
        if let Some(cursor) = &self.cursor {
            if let Ok(i) = self.channels.binary_search_by(|c| c.as_str().cmp(channel)) {
                let mut cursor = cursor.lock().unwrap_or_else(PoisonError::into_inner);
                if cursor[i].is_none() {
                    cursor[i] = Some(position.clone());
                }
            }
        }
    }

    fn close(&self) {
        self.feed.close();
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// A message's whole frame, encoded once and shared.
fn sse_frame(message: &Message) -> &Bytes {
    message.encoded(Encoding::SseFrame, encode_frame)
}

/// `event: <name>` and `data: <text>`, no id: a notice that must not move
/// the client's last event id.
fn notice(name: &str, data: &str) -> Bytes {
    let mut buf = BytesMut::new();
    // A constant name and data without a field to inject: always encodes.
    if let Err(error) = Event::data(data).event(name).encode_into(None, &mut buf) {
        tracing::warn!(%error, "could not encode a {name} notice");
    }
    buf.freeze()
}

/// A whole frame: `event:`, `id: <position>` (publications), `data:`.
fn encode_frame(message: &Message) -> Bytes {
    let mut event = Event::data(message.data());
    if let Some(name) = message.event_name() {
        event = event.event(name);
    }
    if message.kind() == MessageKind::Publication {
        event = event.id(message.position().to_string());
    }
    encoded(&event)
}

/// `event:` and `data:` lines without the closing blank line.
fn encode_fields(message: &Message) -> Bytes {
    let mut event = Event::data(message.data());
    if let Some(name) = message.event_name() {
        event = event.event(name);
    }
    let frame = encoded(&event);
    // Drop the blank line that ends the frame; the cursor's id line and a
    // new blank line follow.
    frame.slice(..frame.len().saturating_sub(1))
}

fn encoded(event: &Event) -> Bytes {
    // Names were validated when published; positions are `[0-9a-z-]`.
    event.encode().unwrap_or_else(|error| {
        tracing::warn!(%error, "could not encode a hub message");
        Bytes::new()
    })
}

fn write_cursor(cursor: &[Option<Position>], out: &mut BytesMut) {
    use std::fmt::Write;
    for (i, position) in cursor.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&[CURSOR_SEPARATOR as u8]);
        }
        match position {
            Some(position) => {
                let _ = write!(out, "{position}");
            }
            // Never reached for a live channel (its start is reported when
            // it joins); `0` resumes it from the start of its history.
            None => out.extend_from_slice(b"0"),
        }
    }
}

/// Where each of `channels` resumes from, given the client's last event id:
/// `0` means the whole history of every channel; a position (one channel)
/// or a cursor (several) its own channels; anything else cannot be
/// continued — every channel gets a reset.
pub(super) fn resume_points(last_event_id: Option<&str>, channels: usize) -> Vec<Option<Since>> {
    let Some(id) = last_event_id else {
        return vec![None; channels];
    };
    if id == "0" {
        return vec![Some(Since::Start); channels];
    }
    let parsed: Option<Vec<Since>> = id
        .split(CURSOR_SEPARATOR)
        .map(|part| match part {
            "0" => Some(Since::Start),
            part => part.parse::<Position>().ok().map(Since::After),
        })
        .collect();
    match parsed {
        Some(points) if points.len() == channels => points.into_iter().map(Some).collect(),
        // A position that cannot be this subscription's (an id of another
        // kind, another channel count): never a silent continuation.
        _ => vec![Some(Since::After(Position::new(unknown_epoch(), 0))); channels],
    }
}

/// Where one channel resumes from, given a client's id for it: `0` is its
/// whole history, a position what follows it; anything else cannot be
/// continued and gets a reset.
pub(crate) fn since_from_id(id: &str) -> Since {
    match id {
        "0" => Since::Start,
        id => Since::After(
            id.parse::<Position>()
                .unwrap_or_else(|_| Position::new(unknown_epoch(), 0)),
        ),
    }
}

/// An epoch no backend gives (backends write lowercase alphanumerics; this
/// one is longer than any they make): resuming from it is always a reset.
fn unknown_epoch() -> crate::broker::Epoch {
    crate::broker::Epoch::parse("zzzzzzzzzzzzzzzz")
        .unwrap_or_else(|| crate::broker::Epoch::from_number(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Epoch;

    #[test]
    fn resume_points_from_ids() {
        let p = Position::new(Epoch::from_number(7), 3);
        assert_eq!(resume_points(None, 2), vec![None, None]);
        assert_eq!(resume_points(Some("0"), 2), vec![Some(Since::Start); 2]);
        assert_eq!(
            resume_points(Some("7-3"), 1),
            vec![Some(Since::After(p.clone()))]
        );
        assert_eq!(
            resume_points(Some("7-3.0"), 2),
            vec![Some(Since::After(p)), Some(Since::Start)]
        );
        for bad in ["42", "7-3", "x", "7-3.7-4.7-5"] {
            let points = resume_points(Some(bad), 2);
            assert!(
                points
                    .iter()
                    .all(|p| matches!(p, Some(Since::After(q)) if q.offset() == 0)),
                "{bad}: {points:?}"
            );
        }
    }
}
