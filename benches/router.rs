//! Micro-benchmarks of request routing: matching, parameters, query
//! decoding, and the 404/405 paths, without a socket.
//!
//! Run with: `cargo bench --bench router`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::Empty;
use rill::{Context, Response, Router, RouterService};
use std::hint::black_box;

async fn ok(_ctx: Context) -> Response {
    Response::text("ok")
}

fn service() -> RouterService {
    let mut router = Router::new();
    // A realistic app: a few dozen routes of mixed shapes.
    for resource in [
        "users", "rooms", "posts", "events", "files", "orders", "teams", "jobs",
    ] {
        router = router
            .get(&format!("/{resource}"), ok)
            .post(&format!("/{resource}"), ok)
            .get(&format!("/{resource}/:id"), ok)
            .put(&format!("/{resource}/:id"), ok)
            .get(&format!("/{resource}/:id/stream"), ok);
    }
    router.get("/static/*path", ok).into_service()
}

fn request(method: &str, uri: &str) -> http::Request<Empty<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Empty::new())
        .expect("valid request")
}

fn routing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let service = service();
    let mut group = c.benchmark_group("router");
    group.throughput(Throughput::Elements(1));
    for (name, method, uri) in [
        ("static", "GET", "/orders"),
        ("param", "GET", "/orders/42"),
        ("param_nested", "GET", "/jobs/7/stream"),
        ("catch_all", "GET", "/static/css/site.css"),
        (
            "query",
            "GET",
            "/events/9/stream?channel=a&channel=b&user=caf%C3%A9",
        ),
        ("not_found", "GET", "/nowhere/at/all"),
        ("method_not_allowed", "DELETE", "/orders/42"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let response = runtime.block_on(service.handle(request(method, uri)));
                black_box(response.status())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
