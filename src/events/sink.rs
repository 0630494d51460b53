//! [`EventSink`]: a named-event connection as the broker sees it — once for
//! the stream's broadcasts, once for the hub channels it subscribed to.
//! Both append lines to the connection's one pipe, so everything reaches
//! the client in the order it was offered.

use bytes::Bytes;
use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use super::{
    connection::{ConnShared, CLOSE_SLOW},
    wire,
};
use crate::broker::{Delivery, Encoding, Message, MessageKind, Metadata, Offer, Position, Sink};

/// Which broker a sink is subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The stream's own broadcast channel: messages are named events.
    Broadcast,
    /// Hub channels: messages carry their channel and id.
    Channels,
}

pub(crate) struct EventSink {
    conn: Arc<ConnShared>,
    role: Role,
    metadata: Metadata,
    /// The channels whose presence messages the client asked for.
    presence: Mutex<HashSet<String>>,
}

impl EventSink {
    pub(crate) fn new(conn: Arc<ConnShared>, role: Role, metadata: Metadata) -> Self {
        EventSink {
            conn,
            role,
            metadata,
            presence: Mutex::default(),
        }
    }

    /// Delivers (or stops delivering) `channel`'s presence messages.
    pub(crate) fn want_presence(&self, channel: &str, wanted: bool) {
        let mut set = self.presence.lock().unwrap_or_else(PoisonError::into_inner);
        if wanted {
            set.insert(channel.to_owned());
        } else {
            set.remove(channel);
        }
    }

    fn wants_presence(&self, channel: &str) -> bool {
        self.presence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(channel)
    }
}

impl EventSink {
    /// The message's line for this connection; `None` for a presence
    /// message it did not ask for. Encoded once per message, shared by
    /// every connection.
    fn line<'m>(&self, message: &'m Message) -> Option<&'m Bytes> {
        if message.kind() == MessageKind::Presence && !self.wants_presence(message.channel()) {
            return None;
        }
        Some(match self.role {
            Role::Broadcast => message.encoded(Encoding::WsEvent, wire::broadcast_line),
            Role::Channels => message.encoded(Encoding::WsChannel, wire::channel_line),
        })
    }
}

impl Sink for EventSink {
    fn offer(&self, message: &Arc<Message>, delivery: Delivery) -> Offer {
        match self.line(message) {
            Some(line) => self.conn.queue_line(line, delivery),
            None => Offer::Queued,
        }
    }

    fn offer_many(&self, messages: &[&Arc<Message>], delivery: Delivery) -> (usize, Offer) {
        self.conn
            .queue_lines(messages.len(), |i| self.line(messages[i]), delivery)
    }

    fn reset(&self, channel: &str) -> Offer {
        let line = wire::channel_notice(channel, "reset", "true");
        self.conn.queue_line(&line, Delivery::Replay)
    }

    fn gap(&self, channel: &str, dropped: u64) -> Offer {
        let line = match self.role {
            Role::Broadcast => wire::gap_line(dropped),
            Role::Channels => wire::channel_notice(channel, "gap", &dropped.to_string()),
        };
        self.conn.queue_line(&line, Delivery::Replay)
    }

    fn position(&self, channel: &str, position: &Position) {
        if self.role == Role::Channels {
            let line = wire::position_notice(channel, position);
            self.conn.queue_line(&line, Delivery::Replay);
        }
    }

    fn close(&self) {
        self.conn.close(CLOSE_SLOW, "slow consumer");
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}
