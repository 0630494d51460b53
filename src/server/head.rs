//! [`ContentLengthScan`]: spots, in the bytes of an HTTP/1 request head as
//! they arrive, a `Content-Length` too large for any server to accept.
//!
//! hyper refuses such a head itself, but for the two largest values (2^64 - 2
//! and 2^64 - 1, which its body length type reserves) it answers `431
//! Request Header Fields Too Large` — a status that sends the client looking
//! at its headers' size. Spotting them first lets the server answer what is
//! true: `413 Content Too Large`. Every other length, valid or not, is left
//! to hyper (and larger bodies to the router's limit).

/// `content-length`, lowercase.
const NAME: &[u8] = b"content-length";

/// The smallest length hyper's body length type cannot hold.
const FIRST_UNREPRESENTABLE: u64 = u64::MAX - 1;

/// Where the scan stands in the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `n` bytes of the line matched the start of `content-length`.
    Name(u8),
    /// After `content-length:`, in optional whitespace.
    Space,
    /// In the digits of the value, this much so far.
    Digits(u64),
    /// The rest of a line that is not of interest.
    Skip,
}

/// A streaming scanner over one request head; see the module doc.
#[derive(Debug, Clone, Copy)]
pub(super) struct ContentLengthScan {
    state: State,
}

impl Default for ContentLengthScan {
    fn default() -> Self {
        ContentLengthScan {
            state: State::Name(0),
        }
    }
}

impl ContentLengthScan {
    /// Feeds the next bytes of the head; `true` once a `Content-Length` of
    /// 2^64 - 2 or more was seen.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            self.state = match self.state {
                _ if b == b'\n' => {
                    if self.ends_unrepresentable() {
                        return true;
                    }
                    State::Name(0)
                }
                State::Name(n) if usize::from(n) == NAME.len() => {
                    if b == b':' {
                        State::Space
                    } else {
                        State::Skip
                    }
                }
                State::Name(n) if b.to_ascii_lowercase() == NAME[usize::from(n)] => {
                    State::Name(n + 1)
                }
                State::Space if b == b' ' || b == b'\t' => State::Space,
                State::Space | State::Digits(_) if b.is_ascii_digit() => {
                    let so_far = match self.state {
                        State::Digits(v) => v,
                        _ => 0,
                    };
                    // Past u64 hyper says 400 itself.
                    match so_far
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                    {
                        Some(v) => State::Digits(v),
                        None => State::Skip,
                    }
                }
                State::Digits(_) => {
                    if self.ends_unrepresentable() {
                        return true;
                    }
                    State::Skip
                }
                _ => State::Skip,
            };
        }
        false
    }

    fn ends_unrepresentable(&self) -> bool {
        matches!(self.state, State::Digits(v) if v >= FIRST_UNREPRESENTABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::ContentLengthScan;

    fn scan(head: &[u8]) -> bool {
        ContentLengthScan::default().feed(head)
    }

    #[test]
    fn spots_only_the_unrepresentable_lengths() {
        for value in [
            "18446744073709551615",
            "18446744073709551614",
            "018446744073709551615",
        ] {
            let head = format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {value}\r\n\r\n");
            assert!(scan(head.as_bytes()), "{value}");
        }
        for value in [
            "18446744073709551613",
            "0",
            "5",
            "18446744073709551616",
            "5, 5",
            "x",
        ] {
            let head = format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {value}\r\n\r\n");
            assert!(!scan(head.as_bytes()), "{value}");
        }
        assert!(!scan(
            b"POST / HTTP/1.1\r\nX-Content-Length: 18446744073709551615\r\n"
        ));
        assert!(scan(
            b"POST / HTTP/1.1\r\ncontent-LENGTH:\t18446744073709551615 \r\n"
        ));
    }

    #[test]
    fn finds_the_header_split_across_reads() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n";
        for split in 0..head.len() {
            let mut s = ContentLengthScan::default();
            let seen = s.feed(&head[..split]) | s.feed(&head[split..]);
            assert!(seen, "split at {split}");
        }
    }
}
