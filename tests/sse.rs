//! The SSE writer against a real server (raw socket, exact bytes) and its
//! heartbeat on tokio's paused clock.

mod support;

use http_body_util::BodyExt;
use rill::{
    sse::{Event, FrameError, SseOptions},
    Context, Router, SendError,
};
use std::time::Duration;
use support::{start, RawResponse};

fn app() -> Router {
    Router::new()
        .get("/seed", |ctx: Context| async move {
            let options = SseOptions::new().retry(Duration::from_millis(5000));
            ctx.sse_with(options, |_ctx, mut sse| async move {
                sse.send(Event::data("hello").event("greeting")).await?;
                sse.write("world").await?;
                sse.send(Event::data("pong").retry(Duration::from_millis(1000)))
                    .await?;
                sse.comment("two\nlines").await?;
                Ok(())
            })
        })
        .get("/injection", |ctx: Context| async move {
            ctx.sse(|_ctx, mut sse| async move {
                let bad_event = sse.send(Event::data("x").event("a\ndata: injected")).await;
                assert_eq!(
                    bad_event,
                    Err(SendError::Frame(FrameError::EventNameLineBreak))
                );
                let bad_id = sse.send(Event::data("x").id("1\r\nevent: evil")).await;
                assert_eq!(bad_id, Err(SendError::Frame(FrameError::IdLineBreak)));
                let nul_id = sse.send(Event::data("x").id("1\0")).await;
                assert_eq!(nul_id, Err(SendError::Frame(FrameError::IdNul)));
                sse.send(Event::data("still here").id("7")).await?;
                Ok(())
            })
        })
        .get("/numbered", |ctx: Context| async move {
            ctx.sse_with(
                SseOptions::new().auto_id().event("n"),
                |_ctx, mut sse| async move {
                    let resumed = sse.last_event_id().map(str::to_owned);
                    sse.write(format!("after {resumed:?}")).await?;
                    sse.send(Event::data("own id").id("100")).await?;
                    sse.send(Event::data("custom").event("other")).await?;
                    Ok(())
                },
            )
        })
}

async fn get(server: &support::TestServer, request: &str) -> (RawResponse, String) {
    let mut response = RawResponse::request(server.addr, request).await;
    let body = response.body().await.expect("clean end");
    (response, String::from_utf8(body).unwrap())
}

/// Frames are byte-exact: field order, defaults and per-frame overrides,
/// comments split into lines; headers as SSE needs them.
#[tokio::test]
async fn seed_frames_are_byte_exact() {
    let server = start(app()).await;
    let (response, body) = get(&server, "GET /seed HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
    assert_eq!(response.header("x-accel-buffering"), Some("no"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(
        body,
        "event: greeting\nretry: 5000\ndata: hello\n\n\
         retry: 5000\ndata: world\n\n\
         retry: 1000\ndata: pong\n\n\
         : two\n: lines\n"
    );
}

/// Line breaks in `event`/`id` and NUL in `id` are refused with FrameError;
/// nothing reaches the wire and the stream stays usable.
#[tokio::test]
async fn invalid_fields_are_refused_not_injected() {
    let server = start(app()).await;
    let (_, body) = get(&server, "GET /injection HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(body, "id: 7\ndata: still here\n\n");
}

/// Auto ids start at 1, or after a numeric Last-Event-ID header or
/// `lastEventId` query; an event's own numeric id moves the counter; the
/// default event applies unless overridden.
#[tokio::test]
async fn auto_ids_resume_after_last_event_id() {
    let server = start(app()).await;
    let (_, fresh) = get(&server, "GET /numbered HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(
        fresh,
        "event: n\nid: 1\ndata: after None\n\n\
         event: n\nid: 100\ndata: own id\n\n\
         event: other\nid: 101\ndata: custom\n\n"
    );
    let (_, resumed) = get(
        &server,
        "GET /numbered HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 41\r\n\r\n",
    )
    .await;
    assert!(
        resumed.starts_with("event: n\nid: 42\ndata: after Some(\"41\")\n\n"),
        "{resumed}"
    );
    let (_, polyfill) = get(
        &server,
        "GET /numbered?lastEventId=9 HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert!(polyfill.starts_with("event: n\nid: 10\n"), "{polyfill}");
}

/// A Last-Event-ID that is not a number, or not visible ASCII, does not break
/// numbering: ids start at 1.
#[tokio::test]
async fn invalid_last_event_id_is_ignored() {
    let server = start(app()).await;
    let (_, body) = get(
        &server,
        "GET /numbered HTTP/1.1\r\nHost: t\r\nLast-Event-ID: été\r\n\r\n",
    )
    .await;
    assert!(
        body.starts_with("event: n\nid: 1\ndata: after None\n\n"),
        "{body}"
    );
    let (_, body) = get(
        &server,
        "GET /numbered HTTP/1.1\r\nHost: t\r\nLast-Event-ID: abc\r\n\r\n",
    )
    .await;
    assert!(
        body.starts_with("event: n\nid: 1\ndata: after Some(\"abc\")\n\n"),
        "{body}"
    );
}

/// A Last-Event-ID that looks numeric but is not written the way rill writes
/// ids (a sign, leading zeros, past 2^63 - 1) starts numbering over at 1: a
/// client cannot park the counter at its maximum, where every id would
/// repeat.
#[tokio::test]
async fn non_canonical_or_huge_last_event_id_starts_over() {
    let server = start(app()).await;
    for id in ["+7", "0007", "18446744073709551615", "9223372036854775808"] {
        let (_, body) = get(
            &server,
            &format!("GET /numbered HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {id}\r\n\r\n"),
        )
        .await;
        let expected = format!("event: n\nid: 1\ndata: after Some({id:?})\n\n");
        assert!(body.starts_with(&expected), "{id}: {body}");
        // The event with its own id 100 moves the counter on: 101 follows.
        assert!(body.contains("id: 101\n"), "{id}: {body}");
    }
    let (_, body) = get(
        &server,
        "GET /numbered HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 9223372036854775806\r\n\r\n",
    )
    .await;
    assert!(
        body.starts_with("event: n\nid: 9223372036854775807\n"),
        "{body}"
    );
}

/// With a short interval, an idle SSE stream carries `: keep-alive` comments
/// on the wire while the writer waits.
#[tokio::test]
async fn heartbeats_reach_the_wire() {
    let router = Router::new().get("/quiet", |ctx: Context| async move {
        let options = SseOptions::new().heartbeat(Duration::from_millis(50));
        ctx.sse_with(options, |_ctx, mut sse| async move {
            sse.write("first").await?;
            sse.closed().await;
            Ok(())
        })
    });
    let server = start(router).await;
    let mut response = server.get("/quiet").await;
    assert_eq!(
        response.next_chunk().await,
        Ok(Some(b"data: first\n\n".to_vec()))
    );
    assert_eq!(
        response.next_chunk().await,
        Ok(Some(b": keep-alive\n".to_vec()))
    );
    assert_eq!(
        response.next_chunk().await,
        Ok(Some(b": keep-alive\n".to_vec()))
    );
}

type Frames = http::Response<rill::Body>;

fn quiet_stream(options: SseOptions, writes_every: Option<Duration>) -> Frames {
    rill::sse::response(options, None, move |mut sse| async move {
        sse.write("start").await?;
        match writes_every {
            Some(period) => loop {
                tokio::time::sleep(period).await;
                sse.write("busy").await?;
            },
            None => {
                sse.closed().await;
                Ok(())
            }
        }
    })
    .into_http()
}

async fn next_frame(body: &mut rill::Body, within: Duration) -> Option<String> {
    match tokio::time::timeout(within, body.frame()).await {
        Ok(Some(Ok(frame))) => {
            Some(String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap())
        }
        Ok(other) => panic!("body ended: {other:?}"),
        Err(_) => None,
    }
}

/// The heartbeat comes 15 s after the last write by default, not before, and
/// then every 15 s of silence.
#[tokio::test(start_paused = true)]
async fn heartbeat_after_default_interval_of_silence() {
    let mut body = quiet_stream(SseOptions::new(), None).into_body();
    assert_eq!(
        next_frame(&mut body, Duration::from_secs(1))
            .await
            .as_deref(),
        Some("data: start\n\n")
    );
    let started = tokio::time::Instant::now();
    assert_eq!(
        next_frame(&mut body, Duration::from_millis(14_900)).await,
        None
    );
    assert_eq!(
        next_frame(&mut body, Duration::from_secs(1))
            .await
            .as_deref(),
        Some(": keep-alive\n")
    );
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    assert_eq!(
        next_frame(&mut body, Duration::from_millis(14_900)).await,
        None
    );
    assert_eq!(
        next_frame(&mut body, Duration::from_secs(1))
            .await
            .as_deref(),
        Some(": keep-alive\n")
    );
}

/// Every write restarts the timer: a stream written every 10 s never carries
/// a heartbeat.
#[tokio::test(start_paused = true)]
async fn busy_stream_sends_no_heartbeat() {
    let mut body = quiet_stream(SseOptions::new(), Some(Duration::from_secs(10))).into_body();
    for _ in 0..30 {
        let frame = next_frame(&mut body, Duration::from_secs(11))
            .await
            .unwrap();
        assert_ne!(frame, ": keep-alive\n");
    }
}

/// A zero interval disables heartbeats.
#[tokio::test(start_paused = true)]
async fn zero_interval_disables_heartbeats() {
    let mut body = quiet_stream(SseOptions::new().heartbeat(Duration::ZERO), None).into_body();
    assert_eq!(
        next_frame(&mut body, Duration::from_secs(1))
            .await
            .as_deref(),
        Some("data: start\n\n")
    );
    assert_eq!(next_frame(&mut body, Duration::from_secs(3600)).await, None);
}

/// `Event::json` writes compact JSON as one data line.
#[cfg(feature = "json")]
#[tokio::test]
async fn json_events() {
    #[derive(serde::Serialize)]
    struct Tick {
        n: u32,
        text: &'static str,
    }
    let event = Event::json(&Tick { n: 1, text: "a\nb" })
        .unwrap()
        .event("tick");
    assert_eq!(
        &event.encode().unwrap()[..],
        b"event: tick\ndata: {\"n\":1,\"text\":\"a\\nb\"}\n\n"
    );
}

/// Under load on a multi-threaded runtime (events encoded straight into the
/// pending batch), 200,000 auto-numbered events arrive complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_events_stay_in_order_under_load() {
    const EVENTS: u64 = 200_000;
    let router = Router::new().get("/burst", |ctx: Context| async move {
        let options = SseOptions::new().auto_id().heartbeat(Duration::ZERO);
        ctx.sse_with(options, |_ctx, mut sse| async move {
            for _ in 0..EVENTS {
                sse.write("0123456789abcdef0123456789abcdef").await?;
            }
            Ok(())
        })
    });
    let server = start(router).await;
    for _ in 0..3 {
        let (_, body) = get(&server, "GET /burst HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let mut expected = 1u64;
        for frame in body.split_terminator("\n\n") {
            let id = frame
                .strip_prefix("id: ")
                .and_then(|rest| rest.split('\n').next())
                .expect("id line first");
            assert_eq!(id.parse::<u64>().unwrap(), expected, "out of order");
            assert!(frame.ends_with("\ndata: 0123456789abcdef0123456789abcdef"));
            expected += 1;
        }
        assert_eq!(expected, EVENTS + 1);
    }
}
