//! The in-process cost of a live response, without sockets: a writer task
//! sends N SSE events (or N live chunks) and the response body is drained as
//! hyper would drain it, frame by frame. This is the per-event CPU cost of
//! rill itself — encoding, batching, the hand-over to the body — which the
//! end-to-end benchmark (`scripts/bench.sh`) adds socket I/O to.
//!
//! Run with: `cargo bench --bench pipeline`

use bytes::{Buf, Bytes};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::BodyExt;
use rill::sse::SseOptions;
use std::time::Duration;

const EVENTS: u64 = 100_000;

/// Drains a response body, returning the number of data bytes.
async fn drain(response: rill::Response) -> usize {
    let mut body = response.into_http().into_body();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("the writer does not fail").into_data() {
            total += data.remaining();
        }
    }
    total
}

fn sse_burst() -> rill::Response {
    let options = SseOptions::new().auto_id().heartbeat(Duration::ZERO);
    rill::sse::response(options, None, |mut sse| async move {
        let data = "x".repeat(32);
        for _ in 0..EVENTS {
            sse.write(data.as_str()).await?;
        }
        Ok(())
    })
}

fn live_chunks() -> rill::Response {
    rill::live(|mut stream| async move {
        let chunk = Bytes::from(vec![b'x'; 1024]);
        for _ in 0..EVENTS {
            stream.write(chunk.clone()).await?;
        }
        Ok(())
    })
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(20);
    for (name, runtime) in [
        (
            "current_thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        ),
        (
            "two_workers",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
        ),
    ] {
        let runtime = runtime.expect("a tokio runtime");
        group.bench_function(format!("sse_32b_events/{name}"), |b| {
            b.iter(|| runtime.block_on(async { tokio::spawn(drain(sse_burst())).await }))
        });
        group.bench_function(format!("live_1k_chunks/{name}"), |b| {
            b.iter(|| runtime.block_on(async { tokio::spawn(drain(live_chunks())).await }))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
