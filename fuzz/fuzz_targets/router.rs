//! The router's path matching and percent-decoding: any request target
//! gets an answer (never a panic), parameters are the decoded segments, and
//! a catch-all gets the rest of the path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::{Context, Response, Router, RouterService};
use std::sync::OnceLock;

fn service() -> &'static RouterService {
    static SERVICE: OnceLock<RouterService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        Router::new()
            .get("/", |_ctx: Context| async { Response::text("root") })
            .get("/rooms/:id", |ctx: Context| async move {
                Response::text(format!("room={}", ctx.param("id").unwrap_or("?")))
            })
            .get("/rooms/:id/files/*path", |ctx: Context| async move {
                Response::text(format!(
                    "room={} path={}",
                    ctx.param("id").unwrap_or("?"),
                    ctx.param("path").unwrap_or("?")
                ))
            })
            .post("/rooms/:id", |ctx: Context| async move {
                Response::text(format!("q={:?}", ctx.query_pairs()))
            })
            .into_service()
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime for the fuzz target")
    })
}

fuzz_target!(|input: (bool, String)| {
    let (post, target) = input;
    let Ok(uri) = http::Uri::try_from(format!("http://t{target}")) else {
        return;
    };
    let path = uri.path().to_owned();
    let method = if post {
        http::Method::POST
    } else {
        http::Method::GET
    };
    let Ok(request) = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
    else {
        return;
    };
    let response = runtime().block_on(service().handle(request));
    let status = response.status().as_u16();
    assert!(
        matches!(status, 200 | 400 | 404 | 405),
        "{status} for {target:?}"
    );
    // A single room segment that decodes to UTF-8 is matched as a parameter.
    if let Some(id) = path.strip_prefix("/rooms/") {
        if !id.is_empty() && !id.contains('/') {
            let decoded = rill::fuzzing::decode_segment(id);
            assert_eq!(status == 400, decoded.is_none(), "{target:?}");
        }
    }
});
