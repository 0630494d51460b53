//! Percent-decoding of query strings and path segments.
//!
//! Query strings follow the WHATWG `application/x-www-form-urlencoded`
//! parser: `&`-separated pairs, `+` is a space, `%XX` is a byte, an invalid
//! `%` sequence stays as it is, and bytes that are not UTF-8 become U+FFFD.

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`) into bytes.
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a query string into decoded name/value pairs, in order.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_lossy(name), decode_lossy(value))
        })
        .collect()
}

fn decode_lossy(s: &str) -> String {
    match String::from_utf8(percent_decode(s, true)) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Decodes a path segment; `None` when the bytes are not UTF-8.
pub(crate) fn decode_segment(segment: &str) -> Option<String> {
    String::from_utf8(percent_decode(segment, false)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_percent_and_keeps_bad_escapes() {
        assert_eq!(
            parse_query("a=1+2&b=%C3%A9t%C3%A9&c=%zz&d&=e&a=3"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "été".into()),
                ("c".into(), "%zz".into()),
                ("d".into(), "".into()),
                ("".into(), "e".into()),
                ("a".into(), "3".into()),
            ]
        );
    }

    #[test]
    fn trailing_percent_is_literal() {
        assert_eq!(percent_decode("50%", false), b"50%");
        assert_eq!(percent_decode("50%4", false), b"50%4");
        assert_eq!(percent_decode("%41", false), b"A");
    }

    #[test]
    fn invalid_utf8_query_is_replaced_and_segment_rejected() {
        assert_eq!(parse_query("x=%FF"), vec![("x".into(), "\u{FFFD}".into())]);
        assert_eq!(decode_segment("%FF"), None);
        assert_eq!(decode_segment("a%20b+c").as_deref(), Some("a b+c"));
    }
}
