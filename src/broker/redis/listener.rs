//! The pub/sub side of the Redis backend: one connection of rill's own,
//! subscribed to the channels this process has subscribers on.
//!
//! The task owns the connection and the set of channels. It reconnects
//! (with back-off) whenever the connection ends or a probe goes unanswered,
//! resubscribes every channel, and only then asks the broker to have every
//! subscriber catch up from the history — so whatever was published while
//! it was away is delivered, exactly once, or announced as a reset. A
//! channel's position and history reads wait for its SUBSCRIBE to be
//! confirmed, so that a subscriber's start or catch-up never leaves a
//! window that neither the read nor pub/sub covers.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_core::Stream;
use tokio::{sync::mpsc, time::Instant};

use super::{
    codec::{self, Payload},
    RedisConfig, Subscribed,
};
use crate::broker::backend::Inbox;

/// What the backend asks of its listener.
pub(super) enum Command {
    /// The broker to deliver to.
    Attach(Inbox),
    /// Subscribe to a channel (its first local subscriber joined).
    Listen(String),
    /// Unsubscribe (its last local subscriber left).
    Unlisten(String),
}

/// Channels per SUBSCRIBE command when resubscribing.
const BATCH: usize = 256;
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How the connected phase ended.
enum Ended {
    /// The backend is gone: stop.
    Dropped,
    /// The connection failed: reconnect.
    Lost,
}

pub(super) async fn run(
    client: redis::Client,
    config: RedisConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    listening: Arc<AtomicBool>,
    subscribed: Subscribed,
) {
    let mut state = State {
        config,
        inbox: None,
        channels: HashSet::new(),
        seen: HashMap::new(),
    };
    let mut backoff = Duration::from_millis(50);
    let mut reconnecting = false;
    loop {
        match connect(&client, &state).await {
            Ok((sink, stream)) => {
                listening.store(true, Ordering::Release);
                // Only what this connection subscribed: a Listen still in
                // the queue is confirmed when it is served.
                for channel in &state.channels {
                    if subscribed.set(Some(channel), true) && !reconnecting {
                        state.resync(Some(channel));
                    }
                }
                backoff = Duration::from_millis(50);
                if reconnecting {
                    tracing::info!("Redis pub/sub reconnected; subscribers catch up");
                    state.heal(&client).await;
                    // Whatever was published while away is in the history.
                    state.resync(None);
                }
                let ended = state.serve(sink, stream, &mut commands, &subscribed).await;
                listening.store(false, Ordering::Release);
                let _ = subscribed.set(None, false);
                if let Ended::Dropped = ended {
                    return;
                }
                tracing::warn!("Redis pub/sub connection lost; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, "Redis pub/sub connection failed; retrying");
            }
        }
        reconnecting = true;
        // Wait before the next attempt, keeping up with commands meanwhile.
        let retry_at = Instant::now() + backoff;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(retry_at) => break,
                command = commands.recv() => match command {
                    None => return,
                    Some(command) => state.record(command),
                },
            }
        }
    }
}

type Sink = redis::aio::PubSubSink;
type Messages = redis::aio::PubSubStream;

/// Opens the connection and subscribes every channel.
async fn connect(client: &redis::Client, state: &State) -> Result<(Sink, Messages), String> {
    let timeout = state.config.timeout;
    let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| e.to_string())?;
    let (mut sink, stream) = pubsub.split();
    let names: Vec<String> = state
        .channels
        .iter()
        .map(|c| state.config.pubsub_channel(c))
        .collect();
    for batch in names.chunks(BATCH) {
        tokio::time::timeout(timeout, sink.subscribe(batch))
            .await
            .map_err(|_| "SUBSCRIBE not confirmed in time".to_owned())?
            .map_err(|e| e.to_string())?;
    }
    Ok((sink, stream))
}

struct State {
    config: RedisConfig,
    inbox: Option<Inbox>,
    channels: HashSet<String>,
    /// The last position delivered per channel (epoch, offset).
    seen: HashMap<String, (String, u64)>,
}

impl State {
    /// Notes a command while disconnected (the next connection subscribes
    /// what is listened to then).
    fn record(&mut self, command: Command) {
        match command {
            Command::Attach(inbox) => self.inbox = Some(inbox),
            Command::Listen(channel) => {
                self.channels.insert(channel);
            }
            Command::Unlisten(channel) => {
                self.seen.remove(&channel);
                self.channels.remove(&channel);
            }
        }
    }

    /// After a reconnection: a channel whose offset in Redis is behind what
    /// was delivered under the same epoch lost writes (a failover); it gets
    /// a fresh epoch, so every process resets instead of skipping the
    /// offsets handed out again.
    async fn heal(&self, client: &redis::Client) {
        if self.seen.is_empty() {
            return;
        }
        let timeout = self.config.timeout;
        let Ok(Ok(mut connection)) =
            tokio::time::timeout(timeout, client.get_multiplexed_async_connection()).await
        else {
            return;
        };
        let script = super::scripts::heal();
        for (channel, (epoch, offset)) in &self.seen {
            let fresh = super::fresh_epoch();
            let healed = tokio::time::timeout(
                timeout,
                script
                    .key(self.config.key(channel, "meta"))
                    .key(self.config.key(channel, "log"))
                    .arg(epoch)
                    .arg(*offset)
                    .arg(fresh.as_str())
                    .invoke_async::<i64>(&mut connection),
            )
            .await;
            if let Ok(Ok(1)) = healed {
                tracing::warn!(
                    channel,
                    "Redis is behind what was delivered (writes lost in a failover?): new epoch"
                );
            }
        }
    }

    /// Subscribers catch up from their own positions; registered before
    /// this returns, so no message this task delivers afterwards moves a
    /// position past what the catch-up must read.
    fn resync(&self, channel: Option<&str>) {
        if let Some(inbox) = &self.inbox {
            inbox.resync_now(channel);
        }
    }

    /// Delivers messages and follows commands until the connection fails.
    async fn serve(
        &mut self,
        mut sink: Sink,
        mut stream: Messages,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        subscribed: &Subscribed,
    ) -> Ended {
        let timeout = self.config.timeout;
        let mut quiet_since = Instant::now();
        loop {
            let probe_at = quiet_since + self.config.probe;
            tokio::select! {
                message = next(&mut stream) => {
                    let Some(message) = message else { return Ended::Lost };
                    quiet_since = Instant::now();
                    self.deliver(&message);
                }
                command = commands.recv() => {
                    let Some(command) = command else { return Ended::Dropped };
                    let (channel, subscribe) = match &command {
                        Command::Listen(c) if !self.channels.contains(c) => (c.clone(), true),
                        Command::Unlisten(c) if self.channels.contains(c) => (c.clone(), false),
                        _ => {
                            self.record(command);
                            continue;
                        }
                    };
                    self.record(command);
                    let name = self.config.pubsub_channel(&channel);
                    let done = if subscribe {
                        tokio::time::timeout(timeout, sink.subscribe(&name)).await
                    } else {
                        tokio::time::timeout(timeout, sink.unsubscribe(&name)).await
                    };
                    if !matches!(done, Ok(Ok(()))) {
                        return Ended::Lost;
                    }
                    // Position and history reads of the channel waited for
                    // this: from here pub/sub brings the rest. A read that
                    // could not wait is repaired from the history.
                    if subscribe && subscribed.set(Some(&channel), true) {
                        self.resync(Some(&channel));
                    }
                }
                () = tokio::time::sleep_until(probe_at) => {
                    let pong = tokio::time::timeout(timeout, sink.ping::<String>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        tracing::warn!("Redis pub/sub connection silent; reconnecting");
                        return Ended::Lost;
                    }
                    quiet_since = Instant::now();
                }
            }
        }
    }

    fn deliver(&mut self, message: &redis::Msg) {
        let name = message.get_channel_name();
        let Some(channel) = name
            .strip_prefix(self.config.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('{'))
            .and_then(|rest| rest.strip_suffix("}:msgs"))
        else {
            return;
        };
        let Some(inbox) = &self.inbox else { return };
        match codec::payload(channel, message.get_payload_bytes()) {
            Some(Payload::Publication(message)) => {
                let position = message.position();
                let newer = self.seen.get(channel).is_none_or(|(epoch, offset)| {
                    epoch != position.epoch().as_str() || *offset < position.offset()
                });
                if newer {
                    self.seen.insert(
                        channel.to_owned(),
                        (position.epoch().as_str().to_owned(), position.offset()),
                    );
                }
                inbox.deliver(message);
            }
            Some(Payload::Ephemeral(message)) => inbox.deliver(message),
            None => {
                tracing::warn!(
                    channel,
                    "unreadable pub/sub message; catching up from history"
                );
                inbox.resync_now(Some(channel));
            }
        }
    }
}

async fn next(stream: &mut Messages) -> Option<redis::Msg> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
