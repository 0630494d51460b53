//! A client-side event stream parser written from the WHATWG HTML standard,
//! "Parsing an event stream" and "Interpreting an event stream"
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>),
//! step by step, so that the encoder is checked against the spec rather than
//! against itself. It works on a whole buffer: the spec's streaming decoder
//! and line splitter give the same result when all bytes are present.

/// One event as `EventSource` would hand it to a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    /// `MessageEvent.type`.
    pub event_type: String,
    /// `MessageEvent.data`.
    pub data: String,
    /// `MessageEvent.lastEventId`.
    pub last_event_id: String,
}

/// Everything a client learns from a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The dispatched events, in order.
    pub events: Vec<Dispatched>,
    /// The event source's last event ID string at the end (what it would send
    /// as `Last-Event-ID` on reconnection).
    pub last_event_id: String,
    /// The reconnection time in milliseconds, if a `retry` field set it.
    pub retry: Option<u128>,
}

/// Parses a complete event stream.
pub fn parse(bytes: &[u8]) -> Parsed {
    // "UTF-8 decode": invalid sequences become U+FFFD and one leading BOM is
    // stripped, at the start of the stream only.
    let decoded = String::from_utf8_lossy(bytes);
    let text = decoded.strip_prefix('\u{FEFF}').unwrap_or(&decoded);

    let mut state = State::default();
    let mut rest = text;
    // Lines end with CRLF, a lone LF or a lone CR. A final line with no end of
    // line is not a line: "once the end of the file is reached, any pending
    // data must be discarded".
    while let Some(i) = rest.find(['\r', '\n']) {
        let line = &rest[..i];
        let next = if rest[i..].starts_with("\r\n") {
            i + 2
        } else {
            i + 1
        };
        state.process_line(line);
        rest = &rest[next..];
    }
    Parsed {
        events: state.events,
        last_event_id: state.last_event_id,
        retry: state.retry,
    }
}

#[derive(Default)]
struct State {
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    last_event_id: String,
    retry: Option<u128>,
    events: Vec<Dispatched>,
}

impl State {
    fn process_line(&mut self, line: &str) {
        if line.is_empty() {
            // "If the line is empty (a blank line): Dispatch the event."
            self.dispatch();
        } else if line.starts_with(':') {
            // "If the line starts with a U+003A COLON character: Ignore the line."
        } else if let Some(colon) = line.find(':') {
            // "Collect the characters on the line before the first U+003A COLON
            // character, and let field be that string. Collect the characters
            // on the line after the first U+003A COLON character, and let value
            // be that string. If value starts with a U+0020 SPACE character,
            // remove it from value."
            let field = &line[..colon];
            let value = &line[colon + 1..];
            let value = value.strip_prefix(' ').unwrap_or(value);
            self.process_field(field, value);
        } else {
            // "Otherwise, the string is not empty but does not contain a U+003A
            // COLON character: Process the field using the whole line as the
            // field name, and the empty string as the field value."
            self.process_field(line, "");
        }
    }

    fn process_field(&mut self, field: &str, value: &str) {
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // "If the field value does not contain U+0000 NULL, then set the
            // last event ID buffer to the field value. Otherwise, ignore the
            // field."
            "id" if !value.contains('\0') => self.last_event_id_buffer = value.to_owned(),
            // "If the field value consists of only ASCII digits, then
            // interpret the field value as an integer in base ten, and set the
            // event stream's reconnection time to that integer." An empty
            // value has no digits to interpret, and a value too large for u128
            // cannot come from a Duration: both are ignored.
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            // "Otherwise: The field is ignored."
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        // 1. "Set the last event ID string of the event source to the value of
        //    the last event ID buffer." (The buffer itself is not reset.)
        self.last_event_id = self.last_event_id_buffer.clone();
        // 2. "If the data buffer is an empty string, set the data buffer and
        //    the event type buffer to the empty string and return."
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // 3. "If the data buffer's last character is a U+000A LINE FEED (LF)
        //    character, then remove the last character from the data buffer."
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        // 4.–5. The event's data and lastEventId; its type is the event type
        //    buffer unless that is empty, then "message".
        let event_type = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event_type)
        };
        self.events.push(Dispatched {
            event_type,
            data: std::mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        });
        // 6. "Set the data buffer and the event type buffer to the empty
        //    string."
        self.data.clear();
        self.event_type.clear();
    }
}
