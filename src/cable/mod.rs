//! ActionCable-compatible channels (issue 11), so that Rails front-ends keep
//! `@rails/actioncable` — and AnyCable users `@anycable/web` — and talk to a
//! rill server.
//!
//! Built so far: [`protocol`], the wire format both clients speak
//! (`actioncable-v1-json` and AnyCable's `actioncable-v1-ext-json`):
//! commands parsed with the identifier kept verbatim, and every message the
//! server sends; and [`naming`], Rails' names for channels and their
//! broadcastings. The connection, channels and the server that ride the
//! broker come next.

pub mod naming;
pub mod protocol;
