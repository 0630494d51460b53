//! Loom models of a cable connection's [`Outbox`](super::outbox::Outbox):
//! pushers and the driver in every interleaving of its lock, checked
//! against the rules of its module doc. A lost wake-up shows up as a
//! deadlock, a lost or reordered frame as a failed assert.
//!
//! Run with `bash scripts/loom.sh cable::loom_tests` (it builds with
//! `--cfg loom`).

use bytes::Bytes;
use loom::{future::block_on, thread};
use std::{future::poll_fn, sync::Arc};

use super::outbox::{Outbox, OutboxReader, Push};

/// The driver's side: every frame, then the close code.
fn drain(outbox: Arc<Outbox>) -> (Vec<Bytes>, u16) {
    let mut reader = OutboxReader::new(outbox);
    let mut frames = Vec::new();
    loop {
        match block_on(poll_fn(|cx| reader.poll_frame(cx))) {
            Some(Ok(frame)) => frames.push(frame),
            Some(Err((code, _))) => return (frames, code),
            None => unreachable!("the close comes before the end"),
        }
    }
}

/// Two pushers and an ender against the driver, which may be parked at any
/// point: each pusher's frames arrive in its order, none is lost unless
/// refused after the end, and the close comes last.
#[test]
fn frames_arrive_in_order_and_the_close_comes_last() {
    loom::model(|| {
        let outbox = Arc::new(Outbox::new(16, 1 << 20));
        let pushers: Vec<_> = ["x", "y"]
            .into_iter()
            .map(|name| {
                let outbox = outbox.clone();
                thread::spawn(move || {
                    let mut queued = Vec::new();
                    for i in 0..2 {
                        let frame = Bytes::from(format!("{name}{i}"));
                        if outbox.push(frame.clone(), true) == Push::Queued {
                            queued.push(frame);
                        }
                    }
                    queued
                })
            })
            .collect();
        let ender = {
            let outbox = outbox.clone();
            thread::spawn(move || outbox.end(Some(Bytes::from_static(b"bye")), 1000, ""))
        };
        let (frames, code) = drain(outbox);
        let queued: Vec<Vec<Bytes>> = pushers.into_iter().map(|p| p.join().unwrap()).collect();
        ender.join().unwrap();
        assert_eq!(code, 1000);
        assert_eq!(frames.last().map(|f| &f[..]), Some(&b"bye"[..]));
        for (name, queued) in ["x", "y"].iter().zip(queued) {
            let seen: Vec<Bytes> = frames
                .iter()
                .filter(|f| f.starts_with(name.as_bytes()))
                .cloned()
                .collect();
            assert_eq!(seen, queued, "pusher {name}");
        }
    });
}

/// A pusher against a parked driver, with no close to wake it at the end:
/// every push must wake the driver it finds parked (rule 2), or the driver
/// sleeps forever.
#[test]
fn a_push_wakes_a_parked_driver() {
    loom::model(|| {
        let outbox = Arc::new(Outbox::new(16, 1 << 20));
        let pusher = {
            let outbox = outbox.clone();
            thread::spawn(move || {
                for frame in ["p0", "p1"] {
                    assert_eq!(
                        outbox.push(Bytes::from_static(frame.as_bytes()), true),
                        Push::Queued
                    );
                }
            })
        };
        let mut reader = OutboxReader::new(outbox);
        let mut frames = Vec::new();
        while frames.len() < 2 {
            match block_on(poll_fn(|cx| reader.poll_frame(cx))) {
                Some(Ok(frame)) => frames.push(frame),
                other => panic!("unexpected {other:?}"),
            }
        }
        pusher.join().unwrap();
        assert_eq!(frames, ["p0", "p1"]);
    });
}
