//! `Last-Event-ID` as a client sends it: numeric ids are exactly the
//! canonical decimal numbers up to 2^63 - 1, and a taken header or query
//! value never carries a line break or NUL, nor exceeds 1 KiB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::fuzzing::{last_event_id, numeric_id};

fuzz_target!(|input: (String, Vec<u8>, Option<String>)| {
    let (text, header, query) = input;
    match numeric_id(&text) {
        Some(n) => {
            assert_eq!(n.to_string(), text, "not canonical");
            assert!(n <= i64::MAX as u64);
        }
        None => {
            if let Ok(n) = text.parse::<u64>() {
                assert!(
                    n.to_string() != text || n > i64::MAX as u64,
                    "{text:?} refused"
                );
            }
        }
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(&header) {
        headers.insert("last-event-id", value);
    }
    if let Some(id) = last_event_id(&headers, query.as_deref()) {
        assert!(id.len() <= 1024);
        assert!(!id.contains(['\r', '\n', '\0']));
    }
});
