//! A session kept after its socket was lost (extended protocol), to be
//! restored by its id: in this process's memory ([`Parked`]) and — when the
//! cable's broker runs on a backend other processes share (Redis) — as a
//! record there too, under `cable-session:<sid>`, so that a client whose
//! reconnect lands on another process is restored there (AnyCable's
//! session recovery).
//!
//! # What crosses processes
//!
//! The record holds the connection's identifiers, and per subscription its
//! identifier, streams and timers, with the time the socket was lost. The
//! process that takes it makes each channel from its registry by the
//! identifier's channel name, *without* running `subscribed` again (as
//! AnyCable restores subscriptions), joins its streams from the client's
//! history request (or from the time the socket was lost) and restarts its
//! timers. A channel value's own fields do not cross: there it starts as
//! its factory makes it (AnyCable too keeps only the state a channel
//! declares). A subscription to a channel that process does not have is
//! dropped with a warning; the others are restored.
//!
//! # One process continues a session
//!
//! The record is taken with the backend's `unstash` (Redis `GETDEL`): one
//! taker at most. A restore on another process takes it; a restore here,
//! and the session's end here (its TTL, a remote disconnect, the parking
//! cap), take it too before going on. When that take finds nothing,
//! another process restored the session: this one drops its copy without
//! `unsubscribed` or `disconnect` (the session lives on there). When the
//! backend cannot be reached, this process goes on as if no other could
//! have taken it (logged). The record is kept a little longer than the
//! session ([`STASH_MARGIN`] past the TTL and the ticker's period) so that
//! the owner's own expiry still finds a record nobody took.

use serde::{Deserialize, Serialize};
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{
    channel::{run_method, DynChannel, Subscription},
    connection::Identifiers,
    outbox::Outbox,
    protocol::Identifier,
    server::Cable,
};

/// How much longer than the session a shared record is kept (beyond the
/// ticker's period, which bounds how late the owner notices the expiry).
pub(crate) const STASH_MARGIN: Duration = Duration::from_secs(10);

/// The record's format; a record of another format is not restored.
const RECORD_VERSION: u32 = 1;

/// A session kept after its socket was lost, to be restored by its id.
pub(crate) struct Parked {
    pub(crate) identifiers: Arc<Identifiers>,
    pub(crate) subs: Vec<ParkedSub>,
    /// When the socket was lost: restored subscriptions whose client never
    /// asks for history resume from here.
    pub(crate) parked_at: SystemTime,
    pub(crate) expires: Instant,
    /// The key of its record on the shared backend, once stashed there:
    /// whoever takes the record continues the session.
    pub(crate) stashed: Option<String>,
}

/// One subscription of a parked session.
pub(crate) struct ParkedSub {
    pub(crate) identifier: Identifier,
    pub(crate) channel: Box<dyn DynChannel>,
    pub(crate) streams: Vec<String>,
    pub(crate) timers: Vec<(Duration, String)>,
}

/// Why a record read from the shared backend cannot be restored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// Not JSON, or not the shape of a session record.
    #[error("not a cable session record")]
    Shape(#[source] serde_json::Error),
    /// Written by a version of rill that writes another format.
    #[error("cable session record format {0} is not known here")]
    Version(u32),
}

/// A parked session as other processes read it.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// [`RECORD_VERSION`] of the process that wrote it.
    v: u32,
    /// The connection's identifiers, in order.
    identifiers: Vec<(String, String)>,
    /// When the socket was lost, in milliseconds since the Unix epoch.
    parked_at_ms: u64,
    subs: Vec<SubRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SubRecord {
    /// The identifier's token as the client sent it (a JSON string), so
    /// the restored subscription answers with the very same.
    identifier: String,
    streams: Vec<String>,
    timers: Vec<TimerRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TimerRecord {
    every_ms: u64,
    action: String,
}

/// The backend key of session `sid`'s record.
fn key(sid: &str) -> String {
    format!("cable-session:{sid}")
}

/// Whether `sid` can be a session id this server made (32 hex digits):
/// anything else a client sends is not looked up on the shared backend.
fn is_session_id(sid: &str) -> bool {
    sid.len() == 32 && sid.bytes().all(|b| b.is_ascii_hexdigit())
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Parked {
    /// The record of this session, for other processes.
    fn to_record(&self) -> Result<String, serde_json::Error> {
        let record = Record {
            v: RECORD_VERSION,
            identifiers: self
                .identifiers
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            parked_at_ms: unix_millis(self.parked_at),
            subs: self
                .subs
                .iter()
                .map(|sub| SubRecord {
                    identifier: sub.identifier.token().to_owned(),
                    streams: sub.streams.clone(),
                    timers: sub
                        .timers
                        .iter()
                        .map(|(every, action)| TimerRecord {
                            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
                            action: action.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        serde_json::to_string(&record)
    }

    /// The session `json` records, its channels made by `cable`'s
    /// registry (their `subscribed` not run). A subscription that cannot be
    /// rebuilt here — an identifier that does not parse, a channel this
    /// cable does not have — is left out, with a warning.
    fn from_record(cable: &Cable, json: &str) -> Result<Parked, RecordError> {
        let record: Record = serde_json::from_str(json).map_err(RecordError::Shape)?;
        if record.v != RECORD_VERSION {
            return Err(RecordError::Version(record.v));
        }
        let identifiers = record
            .identifiers
            .into_iter()
            .fold(Identifiers::new(), |ids, (n, v)| ids.with(n, v));
        let mut subs = Vec::with_capacity(record.subs.len());
        for sub in record.subs {
            let identifier = match Identifier::from_token(&sub.identifier) {
                Ok(identifier) => identifier,
                Err(error) => {
                    tracing::warn!(%error, "a restored cable subscription's identifier is bad; dropped");
                    continue;
                }
            };
            let Some(factory) = cable.channel_factory(identifier.channel()) else {
                tracing::warn!(
                    channel = identifier.channel(),
                    "a restored cable subscription's channel is not served here; dropped"
                );
                continue;
            };
            subs.push(ParkedSub {
                channel: factory(),
                identifier,
                streams: sub.streams,
                // As `periodically` bounds them (an interval of 0 panics).
                timers: sub
                    .timers
                    .into_iter()
                    .map(|t| (Duration::from_millis(t.every_ms.max(10)), t.action))
                    .collect(),
            });
        }
        Ok(Parked {
            identifiers: Arc::new(identifiers),
            subs,
            // A time past what the clock can hold (a bad record): now.
            parked_at: UNIX_EPOCH
                .checked_add(Duration::from_millis(record.parked_at_ms))
                .unwrap_or_else(SystemTime::now),
            expires: Instant::now() + cable.inner.session_ttl,
            stashed: None,
        })
    }
}

/// Stashes `parked`'s record under `sid` for `ttl` when the cable's
/// backend is shared, and resolves once it is kept; a session that could
/// not be stashed stays this process's alone (logged).
pub(crate) async fn stash(cable: &Cable, sid: &str, parked: &mut Parked, ttl: Duration) {
    let backend = cable.inner.broker.backend();
    if !backend.shared() || !is_session_id(sid) {
        return;
    }
    let record = match parked.to_record() {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(%error, "a cable session record could not be written; kept here only");
            return;
        }
    };
    let key = key(sid);
    match backend.stash(&key, record, ttl).await {
        Ok(()) => parked.stashed = Some(key),
        Err(error) => {
            tracing::warn!(%error, "a cable session could not be stashed; restorable here only");
        }
    }
}

/// Whether this process continues a parked session whose record is
/// `stashed` (its [`Parked::stashed`]), to restore it or to end it: it does
/// unless another process took the record meanwhile. Takes the record, so
/// no other process can from now on. (Given the key, not the session: a
/// channel value is not `Sync`, so no reference to one is held across the
/// wait.)
pub(crate) async fn claim(cable: &Cable, stashed: Option<&str>) -> bool {
    let Some(key) = stashed else {
        return true;
    };
    match cable.inner.broker.backend().unstash(key).await {
        Ok(Some(_)) => true,
        Ok(None) => {
            tracing::debug!("a parked cable session was restored on another process");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "a parked cable session's record could not be taken; continued here");
            true
        }
    }
}

/// The session `sid` parked on another process, taken from the shared
/// backend and rebuilt here; `None` when there is none (or it cannot be
/// read: a fresh session then).
pub(crate) async fn take_from_elsewhere(cable: &Cable, sid: &str) -> Option<Parked> {
    let backend = cable.inner.broker.backend();
    if !backend.shared() || !is_session_id(sid) {
        return None;
    }
    let json = match backend.unstash(&key(sid)).await {
        Ok(json) => json?,
        Err(error) => {
            tracing::warn!(%error, "cable sessions of other processes unavailable; a fresh session");
            return None;
        }
    };
    match Parked::from_record(cable, &json) {
        Ok(parked) => Some(parked),
        Err(error) => {
            tracing::warn!(%error, "a stashed cable session could not be restored; a fresh session");
            None
        }
    }
}

/// Ends a parked session that was not restored — unless another process
/// restored it (see [`claim`]): `unsubscribed` of every subscription, then
/// the connection's `disconnect`.
pub(crate) async fn end(cable: &Cable, parked: Parked) {
    if claim(cable, parked.stashed.as_deref()).await {
        end_here(cable, parked).await;
    }
}

/// `unsubscribed` of every subscription of `parked`, then `disconnect`.
async fn end_here(cable: &Cable, parked: Parked) {
    let out = Arc::new(Outbox::new(1, 1));
    out.end(None, 1000, "");
    for mut sub in parked.subs {
        let handle = Subscription::new(
            sub.identifier,
            parked.identifiers.clone(),
            cable.clone(),
            out.clone(),
        );
        run_method("unsubscribed", sub.channel.unsubscribed(&handle)).await;
    }
    cable
        .run_disconnect(Identifiers::clone(&parked.identifiers))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cable::{Channel, ChannelResult};

    #[derive(Default)]
    struct Room;

    impl Channel for Room {
        async fn subscribed(&mut self, _: &Subscription) -> ChannelResult {
            Ok(())
        }
    }

    fn parked(cable: &Cable, channels: &[&str]) -> Parked {
        let subs = channels
            .iter()
            .map(|channel| ParkedSub {
                identifier: Identifier::from_params(
                    &serde_json::json!({"channel": channel, "room": "caf\u{e9}"}),
                )
                .expect("an identifier"),
                channel: cable.channel_factory("Room").expect("the Room channel")(),
                streams: vec!["a".into(), "b".into()],
                timers: vec![(Duration::from_millis(250), "tick".into())],
            })
            .collect();
        Parked {
            identifiers: Arc::new(Identifiers::new().with("user", "ada").with("tenant", "7")),
            subs,
            parked_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            expires: Instant::now(),
            stashed: None,
        }
    }

    /// A record read back gives the same identifiers, subscriptions,
    /// streams, timers and time; a channel not served here is left out.
    #[tokio::test]
    async fn a_record_round_trips_and_drops_unknown_channels() {
        let cable = Cable::builder().channel("Room", Room::default).build();
        let json = parked(&cable, &["Room", "Gone", "Room"])
            .to_record()
            .expect("JSON");
        let back = Parked::from_record(&cable, &json).expect("a record");
        let ids: Vec<_> = back.identifiers.iter().collect();
        assert_eq!(ids, [("user", "ada"), ("tenant", "7")]);
        assert_eq!(back.subs.len(), 2);
        assert_eq!(back.subs[0].identifier.channel(), "Room");
        assert_eq!(back.subs[0].identifier.params()["room"], "caf\u{e9}");
        assert_eq!(back.subs[0].streams, ["a", "b"]);
        assert_eq!(
            back.subs[0].timers,
            [(Duration::from_millis(250), "tick".to_owned())]
        );
        assert_eq!(unix_millis(back.parked_at), 1_700_000_000_123);
        assert!(back.stashed.is_none());
    }

    /// Bad contents are an error, never a panic: not JSON, another shape,
    /// another format, and a zero timer bounded as `periodically` does.
    #[tokio::test]
    async fn bad_records_are_refused() {
        let cable = Cable::builder().channel("Room", Room::default).build();
        for bad in [
            "not json",
            "[]",
            r#"{"v":1}"#,
            "null",
            r#"{"v":1,"identifiers":7}"#,
        ] {
            assert!(
                matches!(Parked::from_record(&cable, bad), Err(RecordError::Shape(_))),
                "{bad}"
            );
        }
        let far = format!(
            r#"{{"v":1,"identifiers":[],"parked_at_ms":{},"subs":[]}}"#,
            u64::MAX
        );
        assert!(Parked::from_record(&cable, &far).is_ok());
        let future = r#"{"v":99,"identifiers":[],"parked_at_ms":0,"subs":[]}"#;
        assert!(matches!(
            Parked::from_record(&cable, future),
            Err(RecordError::Version(99))
        ));
        let odd = r#"{"v":1,"identifiers":[],"parked_at_ms":0,"subs":[
            {"identifier":"not a token","streams":[],"timers":[]},
            {"identifier":"\"{\\\"channel\\\":\\\"Room\\\"}\"","streams":["s"],
             "timers":[{"every_ms":0,"action":"tick"}]}]}"#;
        let back = Parked::from_record(&cable, odd).expect("a record");
        assert_eq!(back.subs.len(), 1);
        assert_eq!(back.subs[0].timers[0].0, Duration::from_millis(10));
    }

    /// Only what looks like a session id this server made is looked up.
    #[test]
    fn session_ids_are_32_hex_digits() {
        assert!(is_session_id("0123456789abcdef0123456789ABCDEF"));
        assert!(!is_session_id("0123456789abcdef"));
        assert!(!is_session_id("0123456789abcdef0123456789abcdeg"));
        assert!(!is_session_id(""));
    }
}
