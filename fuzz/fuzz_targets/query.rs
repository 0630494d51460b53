//! Query strings and path segments: parsing never panics, and what it yields
//! survives a round trip — every pair, form-encoded again and parsed, comes
//! back the same; percent-encoded bytes decode to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::fuzzing::{decode_segment, parse_query, percent_decode};

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fuzz_target!(|input: (String, Vec<u8>)| {
    let (query, raw) = input;
    let pairs = parse_query(&query);
    let again: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", form_encode(n), form_encode(v)))
        .collect();
    let reparsed = parse_query(&again.join("&"));
    // Empty pairs (`&&`) are dropped, and so is an encoded "=" with an empty
    // name and value; everything else must come back.
    let kept: Vec<_> = pairs
        .into_iter()
        .filter(|(n, v)| !(n.is_empty() && v.is_empty()))
        .collect();
    let rekept: Vec<_> = reparsed
        .into_iter()
        .filter(|(n, v)| !(n.is_empty() && v.is_empty()))
        .collect();
    assert_eq!(kept, rekept);

    let encoded: String = raw.iter().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(percent_decode(&encoded, false), raw);
    assert_eq!(decode_segment(&encoded), String::from_utf8(raw).ok());
    let _ = decode_segment(&query);
});
