//! Any bytes a client sends as a `PATCH {"ops":[…]}` body, applied to any
//! JSON value: reading and applying never panic; a success stays within
//! the limits, a failure names an operation that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::state::{apply, Limits, UpdateOp};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The first line is the starting value, the rest the operations.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (start, ops) = text.split_once('\n').unwrap_or(("null", text));
    let Ok(start) = serde_json::from_str::<Value>(start) else {
        return;
    };
    let Ok(ops) = serde_json::from_str::<Vec<UpdateOp>>(ops) else {
        return;
    };
    let limits = Limits {
        max_depth: 8,
        max_keys: 16,
        max_value_bytes: 4096,
        max_name_bytes: 32,
    };
    match apply(Some(&start), &ops, &limits) {
        Ok(value) => assert!(limits.check_value(&value).is_ok()),
        Err(error) => assert!(error.index < ops.len().max(1), "{error}"),
    }
});
