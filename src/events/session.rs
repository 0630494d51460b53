//! One connection's task: joins the stream's broadcasts, reads what the
//! client sends, runs the handlers — one event at a time, in the order
//! they arrived — and subscribes to hub channels when asked.
//!
//! The socket's driver reads frames into a bounded queue while this task
//! runs a handler, so a slow handler never stalls the socket (pings are
//! still answered); only once the queue is full does reading wait, and TCP
//! slows the client.

use std::{collections::HashMap, sync::Arc};
use tokio::task::AbortHandle;

use super::{
    connection::Connection,
    error::EventError,
    handlers::Data,
    sink::{EventSink, Role},
    wire::{self, ClientMessage},
    EventStream, BROADCAST_CHANNEL,
};
use crate::{
    broker::{BrokerSubscription, SubscribeOptions},
    context::Context,
    hub::Hub,
    state::{Access, Revision},
    ws::socket::Receiver,
};

/// Runs one connection until its socket closes.
pub(crate) async fn run(
    stream: EventStream,
    ctx: Context,
    conn: Connection,
    mut incoming: Receiver,
) {
    let inner = &stream.inner;
    let sink = EventSink::new(conn.shared.clone(), Role::Broadcast, Vec::new());
    let broadcast = inner.broker.subscribe(
        Arc::new(sink),
        SubscribeOptions {
            slow_consumer: inner.limits.slow,
            presence: false,
        },
    );
    if let Err(error) = broadcast.join(BROADCAST_CHANNEL, None) {
        tracing::warn!(%error, "event stream connection could not join the broadcasts");
        conn.close(1011, "internal error");
        return;
    }
    let mut channels = HubChannels::new(inner.hub.clone(), &ctx, &conn);
    let mut watches = Watches::default();
    let _counted = inner.count_connection();
    for hook in &inner.on_connect {
        super::run_hook("on_connect", hook(conn.clone())).await;
    }

    while let Some(message) = incoming.recv().await {
        let message = match message {
            Ok(message) => message,
            // A protocol violation or an oversized message: the driver is
            // closing the socket with 1007 or 1009.
            Err(error) => {
                tracing::debug!(%error, connection = conn.id(), "event stream client broke the protocol");
                break;
            }
        };
        let Some(text) = message.as_text() else {
            let _ = conn.send_line(&wire::error_line(
                None,
                "binary messages are not part of this protocol",
            ));
            continue;
        };
        for parsed in wire::parse_frame(text) {
            match parsed {
                Ok(ClientMessage::Event { name, data }) => {
                    stream.dispatch(&conn, &name, Data::new(data)).await;
                }
                Ok(ClientMessage::Subscribe {
                    channel,
                    since,
                    presence,
                }) => channels.subscribe(&channel, since.as_deref(), presence),
                Ok(ClientMessage::Unsubscribe { channel }) => channels.unsubscribe(&channel),
                Ok(ClientMessage::Watch { key, since }) => {
                    watches.watch(&stream, &ctx, &conn, key, since.as_deref());
                }
                Ok(ClientMessage::Unwatch { key }) => watches.unwatch(&key),
                Err(error) => {
                    let _ = conn.send_line(&wire::error_line(None, &error.to_string()));
                }
            }
        }
    }

    drop(broadcast);
    channels.leave_all();
    watches.stop_all();
    for hook in &inner.on_disconnect {
        super::run_hook("on_disconnect", hook(conn.clone())).await;
    }
}

/// The state groups and items a connection watches: a task each, sending
/// the watcher's events as lines, in order.
#[derive(Default)]
struct Watches {
    tasks: HashMap<String, AbortHandle>,
}

impl Watches {
    fn watch(
        &mut self,
        stream: &EventStream,
        ctx: &Context,
        conn: &Connection,
        key: String,
        since: Option<&str>,
    ) {
        let inner = &stream.inner;
        let refuse = |why: &str| {
            let _ = conn.send_line(&wire::state_error(&key, why));
        };
        let Some(store) = inner.state.clone() else {
            return refuse("this stream has no state");
        };
        let mut parts = key.splitn(3, '/');
        let (Some(name), Some(group)) = (parts.next(), parts.next()) else {
            return refuse("a watch is \"<stream>/<group>\" or \"<stream>/<group>/<item>\"");
        };
        let item = parts.next();
        let access = Access {
            stream: name,
            group: Some(group),
            item,
            write: false,
        };
        if let Some(authorize) = &inner.authorize_watch {
            if !authorize(ctx, &access) {
                return refuse("forbidden");
            }
        }
        let since = since.and_then(Revision::parse);
        let mut watcher = match store.watch(name, group, item, since) {
            Ok(watcher) => watcher,
            Err(error) => return refuse(&error.to_string()),
        };
        if let Some(old) = self.tasks.remove(&key) {
            old.abort();
        }
        let conn = conn.clone();
        let line_key = key.clone();
        let (name, group, item) = (name.to_owned(), group.to_owned(), item.map(str::to_owned));
        let task = tokio::spawn(async move {
            while let Some(event) = watcher.next().await {
                match conn.send_line(&wire::state_line(&line_key, &event)) {
                    Ok(()) => {}
                    // A change did not fit (the stream drops rather than
                    // disconnects): once there is room, the client starts
                    // over from a reset and a fresh snapshot.
                    Err(EventError::Full) => {
                        if conn.ready().await.is_err() {
                            return;
                        }
                        match store.watch(&name, &group, item.as_deref(), None) {
                            Ok(fresh) => watcher = fresh,
                            Err(_) => return,
                        }
                        let reset = wire::state_line(&line_key, &crate::state::WatchEvent::Reset);
                        if conn.send_line(&reset).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        self.tasks.insert(key, task.abort_handle());
    }

    fn unwatch(&mut self, key: &str) {
        if let Some(task) = self.tasks.remove(key) {
            task.abort();
        }
    }

    fn stop_all(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }
}

/// The hub channels a connection subscribed to.
struct HubChannels<'a> {
    hub: Option<Hub>,
    ctx: &'a Context,
    conn: &'a Connection,
    /// Made at the first subscription.
    joined: Option<Joined>,
}

struct Joined {
    subscription: BrokerSubscription,
    sink: Arc<EventSink>,
    metadata: Vec<(String, String)>,
}

impl<'a> HubChannels<'a> {
    fn new(hub: Option<Hub>, ctx: &'a Context, conn: &'a Connection) -> Self {
        HubChannels {
            hub,
            ctx,
            conn,
            joined: None,
        }
    }

    fn refuse(&self, channel: &str, why: &str) {
        let _ = self.conn.send_line(&wire::error_line(Some(channel), why));
    }

    /// Joins `channel` after `since` (or live), if the hub allows it.
    fn subscribe(&mut self, channel: &str, since: Option<&str>, presence: bool) {
        let Some(hub) = self.hub.clone() else {
            return self.refuse(channel, "this stream has no hub channels");
        };
        if !hub.may_subscribe(self.ctx, channel) {
            return self.refuse(channel, "forbidden");
        }
        let limits = hub.subscriber_limits();
        let joined = self.joined.get_or_insert_with(|| {
            // Metadata comes from the server (the hub's identify hook),
            // never from what the client sends over the socket.
            let metadata = hub.metadata(self.ctx, Vec::new());
            let sink = Arc::new(EventSink::new(
                self.conn.shared.clone(),
                Role::Channels,
                metadata.clone(),
            ));
            let subscription = hub.broker().subscribe(
                sink.clone(),
                SubscribeOptions {
                    slow_consumer: limits.slow,
                    presence: limits.presence_events,
                },
            );
            hub.connection_opened();
            Joined {
                subscription,
                sink,
                metadata,
            }
        });
        let already = joined.subscription.channels().iter().any(|c| c == channel);
        if !already && joined.subscription.channels().len() >= limits.max_channels {
            let why = format!("at most {} channels per connection", limits.max_channels);
            return self.refuse(channel, &why);
        }
        joined.sink.want_presence(channel, presence);
        let since = since.map(crate::hub::since_from_id);
        if let Err(error) = joined.subscription.join(channel, since) {
            joined.sink.want_presence(channel, false);
            return self.refuse(channel, &error.to_string());
        }
        let _ = self
            .conn
            .send_line(&wire::channel_notice(channel, "subscribed", "true"));
        if !already {
            let member = joined.subscription.member_id().to_owned();
            hub.presence_changed(true, &member, &[channel.to_owned()], &joined.metadata);
        }
    }

    fn unsubscribe(&mut self, channel: &str) {
        let (Some(hub), Some(joined)) = (&self.hub, &self.joined) else {
            return;
        };
        if joined.subscription.leave(channel) {
            joined.sink.want_presence(channel, false);
            let member = joined.subscription.member_id().to_owned();
            hub.presence_changed(false, &member, &[channel.to_owned()], &joined.metadata);
        }
    }

    fn leave_all(&mut self) {
        let (Some(hub), Some(joined)) = (&self.hub, self.joined.take()) else {
            return;
        };
        let channels = joined.subscription.channels();
        let member = joined.subscription.member_id().to_owned();
        drop(joined.subscription);
        hub.connection_closed();
        hub.presence_changed(false, &member, &channels, &joined.metadata);
    }
}
