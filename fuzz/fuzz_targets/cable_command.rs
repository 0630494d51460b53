//! Any bytes a client sends as an ActionCable command: parsing never
//! panics, and every reply about an identifier it accepts is JSON whose
//! `identifier` is the very string the client sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::cable::protocol::{self, Command, Identifier};

fn check_reply(identifier: &Identifier) {
    for reply in [
        protocol::confirm_subscription(identifier),
        protocol::reject_subscription(identifier),
        protocol::message(identifier, "null", None),
    ] {
        let value: serde_json::Value =
            serde_json::from_str(&reply).expect("every reply is JSON");
        assert_eq!(value["identifier"], identifier.as_str(), "{reply}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match protocol::parse_command(text) {
        Ok(
            Command::Subscribe { identifier, .. }
            | Command::Unsubscribe { identifier }
            | Command::Message { identifier, .. }
            | Command::History { identifier, .. },
        ) => check_reply(&identifier),
        Ok(Command::Pong) | Err(_) => {}
    }
});
