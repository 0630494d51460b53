//! [`CableSink`]: one cable subscription as the broker sees it. It turns a
//! broadcast into the subscription's frame (`{"identifier":…,"message":…}`,
//! with the stream's position under the extended protocol) and queues it on
//! the connection's [`Outbox`].
//!
//! # Order of what a subscription sends
//!
//! Until the subscription is confirmed, broadcasts are *held* in the sink:
//! whatever the channel transmitted while subscribing goes out first, then
//! `confirm_subscription`, then what was held (the history a resuming
//! client asked for included), then — once every stream joined with a
//! position has [caught up](Sink::caught_up) — `confirm_history` (or
//! `reject_history` if a stream lost continuity), then live broadcasts.
//! The state is under one lock, taken before the outbox's (lock order:
//! broker channel → sink → outbox), so a confirmation and a broadcast never
//! pass each other.

use bytes::Bytes;
use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use super::{
    outbox::{Outbox, Push},
    protocol::{self, MessagePosition},
};
use crate::broker::{
    Delivery, KeyedEncoding, Message, MessageKind, Metadata, Offer, Position, Sink,
};

/// A history request being answered.
#[derive(Debug, Default)]
struct HistoryAnswer {
    /// Streams joined with a position that have not caught up yet.
    waiting: HashSet<String>,
    /// A stream lost continuity: the answer is `reject_history`.
    rejected: bool,
}

#[derive(Debug, Default)]
struct SinkState {
    confirmed: bool,
    /// Broadcasts that arrived before the confirmation.
    held: Vec<Bytes>,
    history: Option<HistoryAnswer>,
}

pub(crate) struct CableSink {
    out: Arc<Outbox>,
    /// The identifier's JSON token, as the client sent it.
    token: Arc<str>,
    ext: bool,
    /// How many broadcasts may be held before the confirmation.
    hold_limit: usize,
    state: Mutex<SinkState>,
    metadata: Metadata,
}

impl CableSink {
    /// A sink for the subscription `token`; `confirmed` for a restored one
    /// (its client has its confirmation from before).
    pub(crate) fn new(
        out: Arc<Outbox>,
        token: Arc<str>,
        ext: bool,
        hold_limit: usize,
        confirmed: bool,
    ) -> Self {
        CableSink {
            out,
            token,
            ext,
            hold_limit: hold_limit.max(1),
            state: Mutex::new(SinkState {
                confirmed,
                ..SinkState::default()
            }),
            metadata: Vec::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts answering a history request: `streams` are about to be
    /// joined with a position.
    pub(crate) fn expect_history(&self, streams: impl IntoIterator<Item = String>) {
        let mut state = self.state();
        state.history = Some(HistoryAnswer {
            waiting: streams.into_iter().collect(),
            rejected: false,
        });
    }

    /// Marks a stream of the pending history request as lost (its position
    /// could not be read).
    pub(crate) fn reject_stream(&self, stream: &str) {
        let mut state = self.state();
        if let Some(answer) = &mut state.history {
            answer.waiting.remove(stream);
            answer.rejected = true;
        }
        self.answer_history(&mut state);
    }

    /// Sends `confirm` (a `confirm_subscription`), then what was held, then
    /// the history answer if it is complete; from now on broadcasts go
    /// straight to the outbox.
    pub(crate) fn confirm(&self, confirm: Option<Bytes>) {
        let mut state = self.state();
        if let Some(confirm) = confirm {
            self.out.push(confirm, false);
        }
        let held = std::mem::take(&mut state.held);
        self.out.push_many(held.len(), |i| held[i].clone(), false);
        state.confirmed = true;
        self.answer_history(&mut state);
    }

    /// Whether the pending history request is answered (or there is none).
    pub(crate) fn history_answered(&self) -> bool {
        self.state().history.is_none()
    }

    /// Queues the history answer once it is complete and the subscription
    /// confirmed.
    fn answer_history(&self, state: &mut SinkState) {
        let complete = state.confirmed
            && state
                .history
                .as_ref()
                .is_some_and(|answer| answer.waiting.is_empty());
        if !complete {
            return;
        }
        let Some(answer) = state.history.take() else {
            return;
        };
        let frame = if answer.rejected {
            protocol::reject_history_for_token(&self.token)
        } else {
            protocol::confirm_history_for_token(&self.token)
        };
        self.out.push(Bytes::from(frame), false);
    }

    /// The message's frame for this subscription: shared by every
    /// subscription with the same identifier.
    fn frame(&self, message: &Message) -> Bytes {
        let token = &self.token;
        if self.ext {
            message.encoded_for(KeyedEncoding::CableExt, token, |m| {
                let position = m.position();
                Bytes::from(protocol::message_for_token(
                    token,
                    m.data(),
                    Some(MessagePosition {
                        stream: m.channel(),
                        epoch: position.epoch().as_str(),
                        offset: position.offset(),
                    }),
                ))
            })
        } else {
            message.encoded_for(KeyedEncoding::Cable, token, |m| {
                Bytes::from(protocol::message_for_token(token, m.data(), None))
            })
        }
    }

    fn offer_frames(&self, frames: &[Bytes], delivery: Delivery) -> (usize, Offer) {
        let mut state = self.state();
        if !state.confirmed {
            if state.held.len() + frames.len() > self.hold_limit && delivery == Delivery::Live {
                return (0, Offer::Full);
            }
            state.held.extend_from_slice(frames);
            return (frames.len(), Offer::Queued);
        }
        let (queued, push) = self.out.push_many(
            frames.len(),
            |i| frames[i].clone(),
            delivery == Delivery::Live,
        );
        (queued, offer_of(push))
    }
}

fn offer_of(push: Push) -> Offer {
    match push {
        Push::Queued => Offer::Queued,
        Push::Full => Offer::Full,
        Push::Gone => Offer::Gone,
    }
}

impl Sink for CableSink {
    fn offer(&self, message: &Arc<Message>, delivery: Delivery) -> Offer {
        if message.kind() != MessageKind::Publication {
            return Offer::Queued;
        }
        let frame = self.frame(message);
        self.offer_frames(std::slice::from_ref(&frame), delivery).1
    }

    fn offer_many(&self, messages: &[&Arc<Message>], delivery: Delivery) -> (usize, Offer) {
        // Cable subscriptions never ask for presence: every message is a
        // publication.
        let frames: Vec<Bytes> = messages.iter().map(|m| self.frame(m)).collect();
        self.offer_frames(&frames, delivery)
    }

    fn reset(&self, channel: &str) -> Offer {
        let mut state = self.state();
        if let Some(answer) = &mut state.history {
            if answer.waiting.contains(channel) {
                answer.rejected = true;
            }
        }
        if self.out.is_ended() {
            Offer::Gone
        } else {
            Offer::Queued
        }
    }

    fn gap(&self, _channel: &str, _dropped: u64) -> Offer {
        // Cable subscriptions are disconnected when too slow, never given
        // gaps.
        Offer::Queued
    }

    fn position(&self, _channel: &str, _position: &Position) {}

    fn caught_up(&self, channel: &str) {
        let mut state = self.state();
        if let Some(answer) = &mut state.history {
            answer.waiting.remove(channel);
        }
        self.answer_history(&mut state);
    }

    fn close(&self) {
        self.out.end_too_slow();
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}
