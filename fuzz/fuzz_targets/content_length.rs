//! The server's scan for an impossible `Content-Length` agrees with a plain
//! line-by-line reading of the head, however the bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::fuzzing::content_length_scan;

/// Whether some complete header line is `content-length:` followed by
/// whitespace and a number of 2^64 - 2 or more (that fits in u64), ended by
/// any byte.
fn reference(head: &[u8]) -> bool {
    let mut rest = head;
    while !rest.is_empty() {
        let (line, terminated, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        rest = next;
        let name = b"content-length:";
        if line.len() < name.len() || !line[..name.len()].eq_ignore_ascii_case(name) {
            continue;
        }
        let value = &line[name.len()..];
        let value = &value[value
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count()..];
        let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits == value.len() && !terminated) {
            continue;
        }
        let n = std::str::from_utf8(&value[..digits])
            .ok()
            .and_then(|d| d.parse::<u64>().ok());
        if n.is_some_and(|n| n >= u64::MAX - 1) {
            return true;
        }
    }
    false
}

// The first two bytes choose where to split the head; the rest is the head.
fuzz_target!(|data: &[u8]| {
    let Some((split, head)) = data.split_first_chunk::<2>() else {
        return;
    };
    let at = usize::from(u16::from_le_bytes(*split)) % (head.len() + 1);
    let whole = content_length_scan(&[&head]);
    assert_eq!(
        whole,
        content_length_scan(&[&head[..at], &head[at..]]),
        "split at {at}"
    );
    assert_eq!(
        whole,
        reference(&head),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
});
