//! Every rill entry point called from axum handlers with standard `http`
//! types alone — `Context::from_parts` / `from_request` in, `into_http()` /
//! `.into()` out — and rill routers nested with `nest_service`, served by
//! `axum::serve` on 127.0.0.1:0: live, SSE, hub subscribe and mount,
//! WebSocket, ActionCable, keyed state. With the `axum` feature, the same
//! through the `Context` extractor.

mod support;

use axum::{extract::Request, routing::get};
use rill::{
    cable::Cable,
    hub::{Hub, Subscription},
    state::{StateApi, Store},
    Body, Context, LiveTracker,
};
use std::net::SocketAddr;
use support::{ws::WsClient, RawResponse, SseReader, WAIT};

type HttpResponse = http::Response<Body>;

async fn live(request: Request) -> HttpResponse {
    let (parts, _) = request.into_parts();
    Context::from_parts(parts)
        .live(|_ctx, mut stream| async move {
            stream.write("1\n").await?;
            stream.write("2\n").await?;
            Ok(())
        })
        .into()
}

async fn room(
    axum::extract::State(hub): axum::extract::State<Hub>,
    request: Request,
) -> HttpResponse {
    let (parts, _) = request.into_parts();
    hub.subscribe(
        Context::from_parts(parts),
        Subscription::new().channel("room"),
    )
    .into()
}

/// A body too: `from_request` reads it under rill's bounds.
async fn echo_body(request: Request) -> HttpResponse {
    match Context::from_request(request).await {
        Ok(ctx) => rill::Response::text(format!("{} bytes\n", ctx.body().len())).into(),
        Err(refusal) => refusal.into(),
    }
}

async fn websocket(request: Request) -> HttpResponse {
    let (parts, _) = request.into_parts();
    Context::from_parts(parts)
        .websocket(|_ctx, mut socket| async move {
            while let Some(message) = socket.recv().await {
                socket.send(message?).await?;
            }
            Ok(())
        })
        .into()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Apps {
    addr: SocketAddr,
    hub: Hub,
    tracker: LiveTracker,
}

async fn apps() -> Apps {
    let hub = Hub::new();
    let cable = Cable::builder().build();
    let store = Store::new();
    let tracker = LiveTracker::new();
    let app = axum::Router::new()
        .route("/live", get(live))
        .route("/room", get(room))
        .route("/echo-body", axum::routing::post(echo_body))
        .route("/ws", get(websocket))
        .route(
            "/cable",
            get(move |request: Request| {
                let cable = cable.clone();
                async move {
                    let (parts, _) = request.into_parts();
                    HttpResponse::from(cable.accept(Context::from_parts(parts)))
                }
            }),
        )
        .nest_service("/hub", hub.mount(rill::Router::new(), "/").into_service())
        .nest_service(
            "/state",
            StateApi::new(store)
                .mount(rill::Router::new(), "/")
                .into_service(),
        )
        .with_state(hub.clone())
        .layer(axum::Extension(tracker.clone()));
    Apps {
        addr: serve(app).await,
        hub,
        tracker,
    }
}

async fn send(addr: SocketAddr, head: &str, body: &str) -> RawResponse {
    let request = format!(
        "{head}\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    RawResponse::request(addr, &request).await
}

#[tokio::test]
async fn live_and_body_from_standard_http_types() {
    let apps = apps().await;
    let mut response =
        RawResponse::request(apps.addr, "GET /live HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.body().await.unwrap(), b"1\n2\n");

    let mut sized = send(apps.addr, "POST /echo-body HTTP/1.1", "hello").await;
    assert_eq!(sized.sized_body().await, b"5 bytes\n");
}

/// The hub from an axum handler and through its nested endpoints; the
/// subscription is registered with the tracker the axum layer put in the
/// request, so a shutdown of that tracker closes it.
#[tokio::test]
async fn hub_from_axum_handler_and_nested_mount() {
    let apps = apps().await;
    let mut reader = SseReader::connect(apps.addr, "/room", None).await;
    support::eventually("subscribed", &mut || apps.hub.subscriber_count("room") == 1).await;
    assert_eq!(apps.tracker.active(), 1);
    apps.hub
        .publish("room", rill::sse::Event::data("hi"))
        .await
        .unwrap();
    let frame = reader.next_event().await.expect("an event");
    assert_eq!(frame.data.as_deref(), Some("hi"));

    let mut nested = SseReader::connect(apps.addr, "/hub?channel=other", None).await;
    support::eventually("nested subscriber", &mut || {
        apps.hub.subscriber_count("other") == 1
    })
    .await;
    apps.hub
        .publish("other", rill::sse::Event::data("there"))
        .await
        .unwrap();
    let frame = nested.next_event().await.expect("an event");
    assert_eq!(frame.data.as_deref(), Some("there"));
    assert_eq!(
        apps.tracker.active(),
        2,
        "the nested router used the layer's tracker"
    );

    let mut stats =
        RawResponse::request(apps.addr, "GET /hub/stats HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let stats = String::from_utf8(stats.sized_body().await).unwrap();
    assert!(stats.contains(r#""connections":2"#), "{stats}");

    assert_eq!(apps.tracker.shutdown(WAIT).await, 0);
    assert!(reader.next_event().await.is_none(), "closed by the tracker");
    assert!(nested.next_event().await.is_none(), "closed by the tracker");
}

/// A WebSocket upgrade through axum: the connection's upgrade travels in the
/// request's extensions.
#[tokio::test]
async fn websocket_from_axum_handler() {
    let apps = apps().await;
    let (mut ws, head) = WsClient::connect(apps.addr, "/ws", &[]).await.expect("101");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.send_text("ping through axum").await;
    assert_eq!(ws.recv_text().await.as_deref(), Some("ping through axum"));
}

/// ActionCable through axum: the subprotocol is echoed and the welcome
/// arrives.
#[tokio::test]
async fn cable_from_axum_handler() {
    let apps = apps().await;
    let (mut ws, head) = WsClient::connect(
        apps.addr,
        "/cable",
        &[("Sec-WebSocket-Protocol", "actioncable-v1-json")],
    )
    .await
    .expect("101");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: actioncable-v1-json"),
        "{head}"
    );
    let welcome = ws.recv_text().await.expect("welcome");
    assert!(welcome.contains(r#""type":"welcome""#), "{welcome}");
}

/// Keyed state through a nested `StateApi`: a write, then the group watched
/// as SSE (a sync with the item).
#[tokio::test]
async fn state_api_nested_in_axum() {
    let apps = apps().await;
    let mut put = send(
        apps.addr,
        "PUT /state/todos/ann/t1 HTTP/1.1",
        r#"{"title":"milk"}"#,
    )
    .await;
    let answer = String::from_utf8(put.sized_body().await).unwrap();
    assert!(answer.contains("rev"), "{answer}");
    let watch = RawResponse::request(
        apps.addr,
        "GET /state/todos/ann HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let mut reader = SseReader::from_response(watch);
    let sync = reader.next_event().await.expect("the group's sync");
    assert_eq!(sync.event.as_deref(), Some("sync"));
    let data = sync.data.unwrap_or_default();
    assert!(data.contains("milk"), "{data}");
}

/// With the `axum` feature: `Context` as an extractor, `Response` as an
/// answer, HEAD starting no writer.
#[cfg(feature = "axum")]
#[tokio::test]
async fn context_extractor_with_the_axum_feature() {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let app = axum::Router::new().route(
        "/events",
        get(move |ctx: Context| {
            let counter = counter.clone();
            async move {
                ctx.sse(move |_ctx, mut sse| async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    sse.write(format!("query {}", "ok")).await?;
                    Ok(())
                })
            }
        }),
    );
    let addr = serve(app).await;
    let head = RawResponse::request(addr, "HEAD /events HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    drop(head);
    let mut get = RawResponse::request(addr, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(get.body().await.unwrap(), b"data: query ok\n\n");
    assert_eq!(started.load(Ordering::SeqCst), 1, "HEAD started a writer");
}
