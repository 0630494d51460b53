//! The example's ActionCable channels.
//!
//! * [`ChatChannel`] (params `room`), as in the cable-cr seed: streams
//!   `chat_<room>`; room `secret` only for `admin`; what a client sends is
//!   broadcast to the room with its author, and so are `away`, `status`
//!   and leaving.
//! * [`EchoChannel`], the conformance helper: transmits `"hello"` and
//!   `"world"` before its confirmation, echoes, counts per subscription,
//!   streams what its params list and stops one on request.

use rill::cable::{CableError, Channel, ChannelResult, Subscription};
use serde_json::{json, Map, Value};

/// A chat room.
#[derive(Debug, Default)]
pub struct ChatChannel {
    /// The room's stream, once the subscription was accepted.
    stream: Option<String>,
}

/// The connection's user (the example's connections are identified by it).
fn user(sub: &Subscription) -> String {
    sub.identifiers().get("user").unwrap_or_default().to_owned()
}

/// A param as text: a string as it is, a number written out.
fn param_text(sub: &Subscription, name: &str) -> Option<String> {
    match sub.params().get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ChatChannel {
    fn say(&self, sub: &Subscription, message: &Value) -> ChannelResult {
        if let Some(stream) = &self.stream {
            sub.cable().broadcast(stream, message)?;
        }
        Ok(())
    }
}

impl Channel for ChatChannel {
    async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
        let Some(room) = param_text(sub, "room") else {
            sub.reject();
            return Ok(());
        };
        if room == "secret" && user(sub) != "admin" {
            sub.reject();
            return Ok(());
        }
        let stream = format!("chat_{room}");
        sub.stream_from(stream.clone());
        self.stream = Some(stream);
        Ok(())
    }

    async fn unsubscribed(&mut self, sub: &Subscription) -> ChannelResult {
        self.say(sub, &json!({"user": user(sub), "performed": "left"}))
    }

    async fn receive(&mut self, sub: &Subscription, data: Map<String, Value>) -> ChannelResult {
        let message = data.get("message").cloned().unwrap_or(Value::Null);
        self.say(
            sub,
            &json!({"message": message, "current_user_id": user(sub)}),
        )
    }

    async fn perform(
        &mut self,
        sub: &Subscription,
        action: &str,
        data: Map<String, Value>,
    ) -> ChannelResult {
        match action {
            "away" => self.say(sub, &json!({"user": user(sub), "performed": "away"})),
            "status" => {
                let status = data.get("status").cloned().unwrap_or(Value::Null);
                self.say(
                    sub,
                    &json!({"user": user(sub), "performed": "status", "status": status}),
                )
            }
            _ => Err(CableError::UnknownAction {
                action: action.to_owned(),
            }
            .into()),
        }
    }
}

/// The conformance helper.
#[derive(Debug, Default)]
pub struct EchoChannel {
    /// This subscription's own counter (`tick`).
    ticks: u64,
}

impl Channel for EchoChannel {
    async fn subscribed(&mut self, sub: &Subscription) -> ChannelResult {
        sub.transmit("hello")?;
        sub.transmit("world")?;
        if let Some(Value::Array(streams)) = sub.params().get("streams") {
            for stream in streams.iter().filter_map(Value::as_str) {
                sub.stream_from(stream);
            }
        }
        Ok(())
    }

    async fn receive(&mut self, sub: &Subscription, data: Map<String, Value>) -> ChannelResult {
        sub.transmit(&data)?;
        Ok(())
    }

    async fn perform(
        &mut self,
        sub: &Subscription,
        action: &str,
        data: Map<String, Value>,
    ) -> ChannelResult {
        match action {
            "echo" => sub.transmit(&data)?,
            "tick" => {
                self.ticks += 1;
                sub.transmit(&self.ticks)?;
            }
            "stop_stream" => {
                if let Some(name) = data.get("name").and_then(Value::as_str) {
                    sub.stop_stream_from(name);
                }
            }
            _ => {
                return Err(CableError::UnknownAction {
                    action: action.to_owned(),
                }
                .into())
            }
        }
        Ok(())
    }
}
