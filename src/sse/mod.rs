//! Server-Sent Events: an SSE writer on top of live responses, with frames
//! encoded exactly as the [WHATWG HTML spec] parses them.
//!
//! * [`Event`] and [`encode_comment`] — the pure encoder (`Event` → bytes).
//! * [`SseWriter`] — what `ctx.sse(|ctx, sse| …)` hands to the writer.
//! * [`SseOptions`] — defaults for every frame, auto ids, heartbeats.
//! * [`response`] — an SSE response without the router (bare hyper, axum).
//!
//! [WHATWG HTML spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html

mod event;
mod options;
mod writer;

pub use event::{encode_comment, Event, FrameError};

pub(crate) use event::{Fields, Id};
pub use options::{SseOptions, DEFAULT_HEARTBEAT};
pub use writer::SseWriter;

pub(crate) use writer::last_event_id;
#[cfg(fuzzing)]
pub(crate) use writer::numeric_id;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use std::future::Future;

use crate::{error::BoxError, live::LiveOptions, response::Response};

/// The heartbeat frame: a comment, ignored by clients.
fn heartbeat_frame() -> Bytes {
    let mut buf = BytesMut::new();
    encode_comment("keep-alive", &mut buf);
    buf.freeze()
}

/// The live options behind an SSE response: `text/event-stream` (always
/// UTF-8), the heartbeat, the buffer limit.
pub(crate) fn live_options(options: &SseOptions) -> LiveOptions {
    let mut live = LiveOptions::new().buffer_limit(options.buffer_limit);
    live.exact_content_type = Some(HeaderValue::from_static("text/event-stream"));
    live.heartbeat = Some((options.heartbeat, heartbeat_frame()));
    if let Some(tracker) = &options.tracker {
        live = live.tracker(tracker.clone());
    }
    live
}

/// Starts an SSE response without a router: for a bare hyper service or an
/// axum handler. `last_event_id` is what the client sent (see
/// [`SseWriter::last_event_id`]); pass `None` if you do not read it.
///
/// ```
/// use rill::sse::{Event, SseOptions};
///
/// async fn service(
///     req: http::Request<hyper::body::Incoming>,
/// ) -> Result<http::Response<rill::Body>, std::convert::Infallible> {
///     let resume = req.headers().get("last-event-id").and_then(|v| v.to_str().ok()).map(String::from);
///     Ok(rill::sse::response(SseOptions::new().auto_id(), resume, |mut sse| async move {
///         sse.send(Event::data("hello")).await?;
///         Ok(())
///     })
///     .into_http())
/// }
/// ```
///
/// # Panics
///
/// When called outside a tokio runtime.
pub fn response<F, Fut>(options: SseOptions, last_event_id: Option<String>, writer: F) -> Response
where
    F: FnOnce(SseWriter) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let live = live_options(&options);
    crate::live::live_with(live, move |stream| {
        writer(SseWriter::new(
            stream,
            options.defaults,
            options.auto_id,
            last_event_id,
        ))
    })
}

#[cfg(test)]
mod tracker_tests {
    use super::*;

    #[tokio::test]
    async fn a_tracker_given_in_the_options_sees_the_stream_and_closes_it() {
        let tracker = crate::live::LiveTracker::new();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        let response = response(
            SseOptions::new().tracker(tracker.clone()),
            None,
            |writer| async move {
                writer.closed().await;
                let _ = closed_tx.send(());
                Ok(())
            },
        );
        assert_eq!(tracker.active(), 1);
        tracker.close_all();
        tokio::time::timeout(std::time::Duration::from_secs(5), closed_rx)
            .await
            .expect("the writer saw the close")
            .unwrap();
        drop(response);
    }
}
