//! The SSE encoder against the WHATWG parser: whatever an event holds, either
//! it is refused (a line break in `event`/`id`, a NUL in `id`) or a client
//! reads back exactly the event that was sent — no field injected, no data
//! lost. Comments never dispatch anything.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rill::sse::{encode_comment, Event};
use std::time::Duration;

#[path = "../../tests/sse_parser/mod.rs"]
mod sse_parser;

fuzz_target!(
    |input: (String, Option<String>, Option<String>, Option<u32>, String)| {
        let (data, event_type, id, retry, comment) = input;
        let mut event = Event::data(data.clone());
        if let Some(name) = &event_type {
            event = event.event(name.clone());
        }
        if let Some(id) = &id {
            event = event.id(id.clone());
        }
        if let Some(ms) = retry {
            event = event.retry(Duration::from_millis(u64::from(ms)));
        }
        match event.encode() {
            Err(_) => {
                let bad_line =
                    |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(['\r', '\n']));
                assert!(
                    bad_line(&event_type)
                        || bad_line(&id)
                        || id.as_deref().is_some_and(|s| s.contains('\0')),
                    "valid event refused"
                );
            }
            Ok(bytes) => {
                let parsed = sse_parser::parse(&bytes);
                assert_eq!(parsed.events.len(), 1, "one event, one dispatch: {bytes:?}");
                let got = &parsed.events[0];
                let want_data = data.replace("\r\n", "\n").replace('\r', "\n");
                assert_eq!(got.data, want_data);
                let want_type = event_type
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "message".into());
                assert_eq!(got.event_type, want_type);
                assert_eq!(got.last_event_id, id.unwrap_or_default());
                assert_eq!(parsed.retry, retry.map(u128::from));
            }
        }
        let mut buf = BytesMut::new();
        encode_comment(&comment, &mut buf);
        let parsed = sse_parser::parse(&buf);
        assert!(
            parsed.events.is_empty() && parsed.retry.is_none(),
            "a comment dispatched: {buf:?}"
        );
    }
);
