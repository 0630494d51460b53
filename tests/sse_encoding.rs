//! The SSE frame encoder against exact bytes and against a parser written
//! from the WHATWG "Interpreting an event stream" algorithm.

mod sse_parser;

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use rill::sse::{encode_comment, Event, FrameError};
use sse_parser::{parse, Dispatched, Parsed};

fn encoded(event: &Event) -> String {
    let bytes = event.encode().expect("event in this test is valid");
    String::from_utf8(bytes.to_vec()).expect("frames of str fields are UTF-8")
}

fn comment(text: &str) -> String {
    let mut buf = BytesMut::new();
    encode_comment(text, &mut buf);
    String::from_utf8(buf.to_vec()).expect("comments of str are UTF-8")
}

fn message(data: &str) -> Dispatched {
    Dispatched {
        event_type: "message".into(),
        data: data.into(),
        last_event_id: String::new(),
    }
}

// ---------------------------------------------------------------- golden bytes

/// The seed's named frame: `event` precedes `data`.
#[test]
fn seed_frame_with_event_name() {
    assert_eq!(
        encoded(&Event::data("hello").event("greeting")),
        "event: greeting\ndata: hello\n\n"
    );
}

/// The seed's plain frame is a single data line and a blank line.
#[test]
fn seed_frame_plain_data() {
    assert_eq!(encoded(&Event::data("world")), "data: world\n\n");
}

/// A default retry applies to every frame and a per-event retry overrides it.
#[test]
fn default_retry_applied_and_overridden() {
    let defaults = Event::new().retry(Duration::from_millis(5000));
    let mut buf = BytesMut::new();
    Event::data("tick")
        .encode_into(Some(&defaults), &mut buf)
        .unwrap();
    Event::data("pong")
        .retry(Duration::from_millis(1000))
        .encode_into(Some(&defaults), &mut buf)
        .unwrap();
    assert_eq!(
        buf,
        "retry: 5000\ndata: tick\n\nretry: 1000\ndata: pong\n\n"
    );
}

/// Defaults supply event and id too, and their data is never written.
#[test]
fn defaults_supply_event_and_id_but_not_data() {
    let defaults = Event::data("ignored").event("tick").id("0");
    let mut buf = BytesMut::new();
    Event::data("a")
        .encode_into(Some(&defaults), &mut buf)
        .unwrap();
    Event::data("b")
        .event("tock")
        .id("1")
        .encode_into(Some(&defaults), &mut buf)
        .unwrap();
    Event::new().encode_into(Some(&defaults), &mut buf).unwrap();
    assert_eq!(
        buf,
        "event: tick\nid: 0\ndata: a\n\nevent: tock\nid: 1\ndata: b\n\nevent: tick\nid: 0\n\n"
    );
}

/// A multi-line payload is split across `data:` lines.
#[test]
fn lf_splits_data_lines() {
    assert_eq!(
        encoded(&Event::data("line one\nline two")),
        "data: line one\ndata: line two\n\n"
    );
}

/// CRLF is one line break, not two.
#[test]
fn crlf_is_one_break() {
    assert_eq!(encoded(&Event::data("a\r\nb")), "data: a\ndata: b\n\n");
}

/// A lone CR is a line break.
#[test]
fn lone_cr_is_a_break() {
    assert_eq!(encoded(&Event::data("a\rb")), "data: a\ndata: b\n\n");
}

/// A trailing LF gives a final empty data line, so the client keeps it.
#[test]
fn trailing_lf_gives_empty_last_line() {
    assert_eq!(encoded(&Event::data("a\n")), "data: a\ndata:\n\n");
}

/// A leading LF gives an empty first data line.
#[test]
fn leading_lf_gives_empty_first_line() {
    assert_eq!(encoded(&Event::data("\na")), "data:\ndata: a\n\n");
}

/// Consecutive breaks give an empty data line between them, never a blank line.
#[test]
fn consecutive_breaks() {
    assert_eq!(
        encoded(&Event::data("a\r\n\r\nb")),
        "data: a\ndata:\ndata: b\n\n"
    );
    assert_eq!(
        encoded(&Event::data("a\n\r\rb")),
        "data: a\ndata:\ndata:\ndata: b\n\n"
    );
}

/// Empty data is one `data:` line without a trailing space.
#[test]
fn empty_data() {
    assert_eq!(encoded(&Event::data("")), "data:\n\n");
    assert_eq!(parse(b"data:\n\n").events, [message("")]);
}

/// A leading space survives because the one space after the colon is always written.
#[test]
fn leading_space_is_kept() {
    assert_eq!(encoded(&Event::data(" x")), "data:  x\n\n");
    assert_eq!(parse(b"data:  x\n\n").events, [message(" x")]);
}

/// Non-ASCII text is written as its UTF-8 bytes.
#[test]
fn unicode_and_emoji() {
    let frame = Event::data("héllo 🌍\u{2028}x")
        .event("ünï")
        .encode()
        .unwrap();
    assert_eq!(frame, "event: ünï\ndata: héllo 🌍\u{2028}x\n\n".as_bytes());
}

/// An id-only frame is the id line and the blank line.
#[test]
fn id_only_frame() {
    assert_eq!(encoded(&Event::new().id("5")), "id: 5\n\n");
    let parsed = parse(b"id: 5\n\n");
    assert!(parsed.events.is_empty());
    assert_eq!(parsed.last_event_id, "5");
}

/// An empty id is legal, written `id:`, and resets the client's last event id.
#[test]
fn empty_id_resets() {
    assert_eq!(encoded(&Event::data("x").id("")), "id:\ndata: x\n\n");
    let mut stream = encoded(&Event::data("a").id("7"));
    stream += &encoded(&Event::data("b").id(""));
    let parsed = parse(stream.as_bytes());
    assert_eq!(parsed.events[0].last_event_id, "7");
    assert_eq!(parsed.events[1].last_event_id, "");
}

/// All fields come in the order event, id, retry, data.
#[test]
fn field_order() {
    let event = Event::new()
        .retry(Duration::from_secs(3))
        .with_data("x\ny")
        .id("42")
        .event("update");
    assert_eq!(
        encoded(&event),
        "event: update\nid: 42\nretry: 3000\ndata: x\ndata: y\n\n"
    );
}

/// Retry is written in whole milliseconds, truncating the rest.
#[test]
fn retry_in_whole_milliseconds() {
    assert_eq!(
        encoded(&Event::new().retry(Duration::from_micros(1999))),
        "retry: 1\n\n"
    );
    assert_eq!(encoded(&Event::new().retry(Duration::ZERO)), "retry: 0\n\n");
}

/// An event with no fields encodes to zero bytes.
#[test]
fn empty_event_is_zero_bytes() {
    assert!(Event::new().encode().unwrap().is_empty());
    assert_eq!(Event::new(), Event::default());
}

/// Getters return what the setters stored.
#[test]
fn getters_return_what_was_set() {
    let event = Event::data("d")
        .event("e")
        .id("i")
        .retry(Duration::from_micros(1500));
    assert_eq!(event.payload(), Some("d"));
    assert_eq!(event.event_type(), Some("e"));
    assert_eq!(event.event_id(), Some("i"));
    assert_eq!(event.reconnection_time(), Some(Duration::from_micros(1500)));
    let empty = Event::new();
    assert_eq!(
        (
            empty.payload(),
            empty.event_type(),
            empty.event_id(),
            empty.reconnection_time()
        ),
        (None, None, None, None)
    );
}

/// NUL is allowed in event names and data, and reaches the client.
#[test]
fn nul_allowed_in_event_name_and_data() {
    let frame = encoded(&Event::data("a\0b").event("x\0y"));
    assert_eq!(frame, "event: x\0y\ndata: a\0b\n\n");
    let parsed = parse(frame.as_bytes());
    assert_eq!(parsed.events[0].event_type, "x\0y");
    assert_eq!(parsed.events[0].data, "a\0b");
}

/// A single-line comment.
#[test]
fn comment_single_line() {
    assert_eq!(comment("keep-alive"), ": keep-alive\n");
}

/// A multi-line comment is one comment line per line, never a blank line.
#[test]
fn comment_multi_line() {
    assert_eq!(comment("a\r\nb\rc\n"), ": a\n: b\n: c\n:\n");
    assert_eq!(comment("a\n\nb"), ": a\n:\n: b\n");
}

/// An empty comment is a lone colon.
#[test]
fn comment_empty() {
    assert_eq!(comment(""), ":\n");
}

/// Comments dispatch nothing and do not disturb a following event.
#[test]
fn comments_are_ignored_by_the_parser() {
    let mut stream = comment("x\n\ny");
    stream += &encoded(&Event::data("after"));
    assert_eq!(parse(stream.as_bytes()).events, [message("after")]);
}

/// Compact JSON is always a single data line and parses back.
#[cfg(feature = "json")]
#[test]
fn json_is_one_data_line() {
    #[derive(serde::Serialize)]
    struct Tick<'a> {
        text: &'a str,
        n: u32,
    }
    let event = Event::json(&Tick {
        text: "a\r\nb\u{2028}",
        n: 3,
    })
    .unwrap();
    let frame = encoded(&event);
    assert_eq!(frame, "data: {\"text\":\"a\\r\\nb\u{2028}\",\"n\":3}\n\n");
    let data = &parse(frame.as_bytes()).events[0].data;
    let back: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(back["text"], "a\r\nb\u{2028}");
}

/// A value serde_json cannot serialize is an error, not a panic.
#[cfg(feature = "json")]
#[test]
fn json_error_is_returned() {
    let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    assert!(Event::json(&map).is_err());
}

// ------------------------------------------------------------------ rejections

/// An event name with LF, CR or CRLF is refused.
#[test]
fn event_name_line_breaks_refused() {
    for name in ["a\nb", "a\rb", "a\r\nb", "\n", "x\r"] {
        let event = Event::data("x").event(name);
        assert_eq!(
            event.encode(),
            Err(FrameError::EventNameLineBreak),
            "{name:?}"
        );
        assert_eq!(event.validate(), Err(FrameError::EventNameLineBreak));
    }
}

/// An id with LF or CR is refused.
#[test]
fn id_line_breaks_refused() {
    for id in ["1\n2", "1\r2", "1\r\n", "\n"] {
        let event = Event::data("x").id(id);
        assert_eq!(event.encode(), Err(FrameError::IdLineBreak), "{id:?}");
        assert_eq!(event.validate(), Err(FrameError::IdLineBreak));
    }
}

/// An id with NUL is refused (clients would ignore it silently).
#[test]
fn id_nul_refused() {
    let event = Event::data("x").id("a\0b");
    assert_eq!(event.encode(), Err(FrameError::IdNul));
    assert_eq!(event.validate(), Err(FrameError::IdNul));
}

/// Errors display lowercase without a trailing period.
#[test]
fn error_display() {
    for (err, text) in [
        (
            FrameError::EventNameLineBreak,
            "event name contains a line break",
        ),
        (FrameError::IdLineBreak, "id contains a line break"),
        (FrameError::IdNul, "id contains a NUL character"),
    ] {
        assert_eq!(err.to_string(), text);
    }
}

/// A refused event appends nothing, and the buffer stays usable.
#[test]
fn refusal_leaves_buffer_unchanged() {
    let mut buf = BytesMut::new();
    Event::data("first").encode_into(None, &mut buf).unwrap();
    let before = buf.clone();
    let refused = [
        Event::data("x").event("a\nb"),
        Event::data("x").event("a\rb"),
        Event::data("x").event("a\r\nb"),
        Event::data("x").id("1\n"),
        Event::data("x").id("1\r"),
        Event::data("x").id("1\0"),
    ];
    for event in &refused {
        assert!(event.encode_into(None, &mut buf).is_err());
        assert_eq!(buf, before);
    }
    Event::data("next").encode_into(None, &mut buf).unwrap();
    assert_eq!(buf, "data: first\n\ndata: next\n\n");
}

/// Invalid defaults are refused when they would be written, and nothing is appended.
#[test]
fn invalid_defaults_refused() {
    let mut buf = BytesMut::from("x");
    let bad_event = Event::new().event("a\nb");
    let bad_id = Event::new().id("a\0b");
    assert_eq!(
        Event::data("d").encode_into(Some(&bad_event), &mut buf),
        Err(FrameError::EventNameLineBreak)
    );
    assert_eq!(
        Event::data("d").encode_into(Some(&bad_id), &mut buf),
        Err(FrameError::IdNul)
    );
    assert_eq!(buf, "x");
    // The event's own value replaces the default, so the bad default is not written.
    Event::data("d")
        .id("1")
        .encode_into(Some(&bad_id), &mut buf)
        .unwrap();
    assert_eq!(buf, "xid: 1\ndata: d\n\n");
}

// --------------------------------------------------------- the parser itself

/// The spec's first example: three data lines make one message joined by LF.
#[test]
fn parser_spec_multiline_data() {
    let parsed = parse(b"data: YHOO\ndata: +2\ndata: 10\n\n");
    assert_eq!(parsed.events, [message("YHOO\n+2\n10")]);
}

/// The spec's id example: ids persist, a bare `id` resets, one space is stripped.
#[test]
fn parser_spec_ids_and_space() {
    let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
    let with_id = |data: &str, id: &str| Dispatched {
        last_event_id: id.into(),
        ..message(data)
    };
    assert_eq!(
        parse(stream).events,
        [
            with_id("first event", "1"),
            with_id("second event", ""),
            with_id(" third event", ""),
        ]
    );
}

/// The spec's empty-data example: bare `data` lines, and an unterminated block is discarded.
#[test]
fn parser_spec_bare_data_fields() {
    let parsed = parse(b"data\n\ndata\ndata\n\ndata:");
    assert_eq!(parsed.events, [message(""), message("\n")]);
}

/// The spec's example that `data:test` and `data: test` are the same.
#[test]
fn parser_spec_optional_space() {
    let parsed = parse(b"data:test\n\ndata: test\n\n");
    assert_eq!(parsed.events, [message("test"), message("test")]);
}

/// The parser splits on CR, LF and CRLF, strips one BOM only, and replaces bad UTF-8.
#[test]
fn parser_line_ends_bom_and_utf8() {
    assert_eq!(
        parse(b"data: a\r\rdata: b\r\n\r\n").events,
        [message("a"), message("b")]
    );
    assert_eq!(
        parse("\u{FEFF}data: x\n\n".as_bytes()).events,
        [message("x")]
    );
    // A second BOM belongs to the field name `\u{FEFF}data`, which is ignored.
    assert!(parse("\u{FEFF}\u{FEFF}data: x\n\n".as_bytes())
        .events
        .is_empty());
    assert_eq!(parse(b"data: \xFFz\n\n").events, [message("\u{FFFD}z")]);
}

/// Event types reset after each dispatch; empty types become `message`; NUL ids are ignored.
#[test]
fn parser_event_types_and_ids() {
    let parsed = parse(b"event: add\ndata: 1\n\nevent:\ndata: 2\n\nevent: x\n\ndata: 3\n\nid: 1\n\nid: a\0b\ndata: 4\n\n");
    let types: Vec<_> = parsed
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["add", "message", "message", "message"]);
    assert_eq!(parsed.events[3].last_event_id, "1");
}

/// Retry takes digits only; unknown fields and unterminated lines are ignored.
#[test]
fn parser_retry_and_unknown_fields() {
    let parsed = parse(b"retry: 1500\n\nretry: 15x\nretry:\nfoo: bar\n\nretry: 7");
    assert_eq!(
        parsed,
        Parsed {
            retry: Some(1500),
            ..Parsed::default()
        }
    );
}

// ------------------------------------------------------------------ properties

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // Shrunk failures are printed; do not write regression files into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that mixes arbitrary Unicode with the characters that matter to SSE.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        2 => "[a-z :]{0,4}",
        1 => Just("\r".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\r\n".to_owned()),
        1 => Just("\u{FEFF}".to_owned()),
        1 => Just("\0".to_owned()),
        1 => Just("🦀".to_owned()),
        1 => Just(" ".to_owned()),
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat()),
    ]
}

/// A valid event name: any text without CR or LF.
fn name() -> impl Strategy<Value = String> {
    text().prop_map(|s| s.replace(['\r', '\n'], ""))
}

/// A valid id: any text without CR, LF or NUL.
fn id() -> impl Strategy<Value = String> {
    text().prop_map(|s| s.replace(['\r', '\n', '\0'], ""))
}

fn retry() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..100_000).prop_map(Duration::from_millis),
        any::<(u64, u32)>().prop_map(|(s, n)| Duration::new(s, n % 1_000_000_000)),
    ]
}

fn build(
    data: Option<String>,
    name: Option<String>,
    id: Option<String>,
    retry: Option<Duration>,
) -> Event {
    let mut event = Event::new();
    if let Some(d) = data {
        event = event.with_data(d);
    }
    if let Some(n) = name {
        event = event.event(n);
    }
    if let Some(i) = id {
        event = event.id(i);
    }
    if let Some(r) = retry {
        event = event.retry(r);
    }
    event
}

fn valid_event() -> impl Strategy<Value = Event> {
    (
        proptest::option::of(text()),
        proptest::option::of(name()),
        proptest::option::of(id()),
        proptest::option::of(retry()),
    )
        .prop_map(|(d, n, i, r)| build(d, n, i, r))
}

fn any_event() -> impl Strategy<Value = Event> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(retry()),
    )
        .prop_map(|(d, n, i, r)| build(d, n, i, r))
}

/// What a client's data is: the original with every line break turned into LF.
fn normalize(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// What the spec says a client learns from `events` sent back-to-back.
fn model(events: &[Event]) -> Parsed {
    let mut expected = Parsed::default();
    for event in events {
        if let Some(id) = event.event_id() {
            expected.last_event_id = id.to_owned();
        }
        if let Some(retry) = event.reconnection_time() {
            expected.retry = Some(retry.as_millis());
        }
        if let Some(data) = event.payload() {
            let event_type = match event.event_type() {
                Some(name) if !name.is_empty() => name.to_owned(),
                _ => "message".to_owned(),
            };
            expected.events.push(Dispatched {
                event_type,
                data: normalize(data),
                last_event_id: expected.last_event_id.clone(),
            });
        }
    }
    expected
}

proptest! {
    #![proptest_config(config())]

    /// Data, event type and id of one event reach the client unchanged.
    #[test]
    fn one_event_round_trips(
        data in text(),
        name in proptest::option::of(name()),
        id in proptest::option::of(id()),
    ) {
        let event = build(Some(data.clone()), name.clone(), id.clone(), None);
        let parsed = parse(&event.encode().unwrap());
        let expected = Dispatched {
            event_type: name.filter(|n| !n.is_empty()).unwrap_or_else(|| "message".into()),
            data: normalize(&data),
            last_event_id: id.unwrap_or_default(),
        };
        prop_assert_eq!(parsed.events, vec![expected]);
    }

    /// Events encoded back-to-back parse to the same sequence, ids carrying over.
    #[test]
    fn sequence_round_trips(events in prop::collection::vec(valid_event(), 0..6)) {
        let mut buf = BytesMut::new();
        for event in &events {
            event.encode_into(None, &mut buf).unwrap();
        }
        prop_assert_eq!(parse(&buf), model(&events));
    }

    /// With defaults, a stream parses as if each event carried the merged fields.
    #[test]
    fn defaults_round_trip(
        events in prop::collection::vec(valid_event(), 0..5),
        defaults in valid_event(),
    ) {
        let mut buf = BytesMut::new();
        let mut merged = Vec::new();
        for event in &events {
            event.encode_into(Some(&defaults), &mut buf).unwrap();
            let mut m = event.clone();
            if m.event_type().is_none() {
                if let Some(n) = defaults.event_type() { m = m.event(n); }
            }
            if m.event_id().is_none() {
                if let Some(i) = defaults.event_id() { m = m.id(i); }
            }
            if m.reconnection_time().is_none() {
                if let Some(r) = defaults.reconnection_time() { m = m.retry(r); }
            }
            merged.push(m);
        }
        prop_assert_eq!(parse(&buf), model(&merged));
    }

    /// A stream that starts with a BOM parses exactly as one without.
    #[test]
    fn bom_prefix_is_transparent(events in prop::collection::vec(valid_event(), 0..4)) {
        let mut buf = BytesMut::from("\u{FEFF}");
        for event in &events {
            event.encode_into(None, &mut buf).unwrap();
        }
        prop_assert_eq!(parse(&buf), parse(&buf[3..]));
        prop_assert_eq!(parse(&buf), model(&events));
    }

    /// The retry field reaches the client as the interval in whole milliseconds.
    #[test]
    fn retry_round_trips(retry in retry(), data in proptest::option::of(text())) {
        let event = build(data, None, None, Some(retry));
        prop_assert_eq!(parse(&event.encode().unwrap()).retry, Some(retry.as_millis()));
    }

    /// Any event either is refused for exactly the spec's reasons or reaches
    /// the client as exactly itself, with nothing injected.
    #[test]
    fn any_event_is_refused_or_exact(event in any_event()) {
        let bad_name = event.event_type().is_some_and(|n| n.contains(['\r', '\n']));
        let bad_id_break = event.event_id().is_some_and(|i| i.contains(['\r', '\n']));
        let bad_id_nul = event.event_id().is_some_and(|i| i.contains('\0'));
        let mut buf = BytesMut::from("data: before\n\n");
        match event.encode_into(None, &mut buf) {
            Err(err) => {
                let expected = if bad_name {
                    FrameError::EventNameLineBreak
                } else if bad_id_break {
                    FrameError::IdLineBreak
                } else {
                    FrameError::IdNul
                };
                prop_assert!(bad_name || bad_id_break || bad_id_nul);
                prop_assert_eq!(err, expected);
                prop_assert_eq!(&buf[..], b"data: before\n\n");
            }
            Ok(()) => {
                prop_assert!(!(bad_name || bad_id_break || bad_id_nul));
                let before = Event::data("before");
                prop_assert_eq!(parse(&buf), model(&[before, event]));
            }
        }
    }

    /// A comment of any text dispatches nothing and leaves the next event intact.
    #[test]
    fn comments_inject_nothing(note in text(), event in valid_event()) {
        let mut buf = BytesMut::new();
        encode_comment(&note, &mut buf);
        prop_assert!(parse(&buf).events.is_empty());
        event.encode_into(None, &mut buf).unwrap();
        prop_assert_eq!(parse(&buf), model(std::slice::from_ref(&event)));
    }
}
