//! Micro-benchmarks of the SSE encoder: the per-event cost of framing.
//!
//! Run with: `cargo bench --bench sse_encoder`

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rill::sse::{encode_comment, Event};
use std::{hint::black_box, time::Duration};

fn encoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_encode");
    group.throughput(Throughput::Elements(1));

    let small = Event::data("x".repeat(32)).id("123456");
    group.bench_function("data32_with_id", |b| {
        let mut buf = BytesMut::with_capacity(1 << 20);
        b.iter(|| {
            if buf.len() > (1 << 20) - 256 {
                buf.clear();
            }
            black_box(&small).encode_into(None, &mut buf).unwrap();
        })
    });

    let defaults = Event::new()
        .event("tick")
        .retry(Duration::from_millis(5000));
    let plain = Event::data("x".repeat(32));
    group.bench_function("data32_with_defaults", |b| {
        let mut buf = BytesMut::with_capacity(1 << 20);
        b.iter(|| {
            if buf.len() > (1 << 20) - 256 {
                buf.clear();
            }
            black_box(&plain)
                .encode_into(Some(&defaults), &mut buf)
                .unwrap();
        })
    });

    let multiline = Event::data("line one\nline two\r\nline three\rline four".repeat(8));
    group.bench_function("multiline_data_320b", |b| {
        let mut buf = BytesMut::with_capacity(1 << 20);
        b.iter(|| {
            if buf.len() > (1 << 20) - 4096 {
                buf.clear();
            }
            black_box(&multiline).encode_into(None, &mut buf).unwrap();
        })
    });

    group.bench_function("build_and_encode_event", |b| {
        b.iter_batched(
            || "x".repeat(32),
            |data| Event::data(data).event("tick").encode().unwrap(),
            BatchSize::SmallInput,
        )
    });

    group.bench_function("comment", |b| {
        let mut buf = BytesMut::with_capacity(1 << 20);
        b.iter(|| {
            if buf.len() > (1 << 20) - 256 {
                buf.clear();
            }
            encode_comment(black_box("keep-alive"), &mut buf);
        })
    });

    let bad = Event::data("x").id("1\nevent: injected");
    group.bench_function("reject_injection", |b| {
        let mut buf = BytesMut::new();
        b.iter(|| black_box(&bad).encode_into(None, &mut buf).unwrap_err())
    });
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
