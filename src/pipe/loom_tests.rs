//! Loom models of the pipe: every interleaving of a writer (or feed), a
//! body, and whoever closes the stream, checked against the invariants of
//! the module doc. A lost wake-up shows up as a deadlock (every model thread
//! parked in `block_on`), a reordering or a lost byte as a failed assert.
//!
//! Run with `bash scripts/loom.sh` (it builds with `--cfg loom`).

use bytes::Bytes;
use loom::{future::block_on, thread};
use std::future::poll_fn;

use super::{channel, feed, Collect, End, PipeReader, Read};
use crate::error::LiveError;

/// Collects a frame's chunks into one vector.
#[derive(Default)]
struct Joined(Vec<u8>);

impl Collect for Joined {
    type Data = Vec<u8>;

    fn push(&mut self, chunk: Bytes) {
        self.0.extend_from_slice(&chunk);
    }

    fn finish(self) -> Option<Vec<u8>> {
        (!self.0.is_empty()).then_some(self.0)
    }
}

/// Reads until the end: everything the body received, and how it ended.
fn read_to_end(reader: &mut PipeReader) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    loop {
        match block_on(poll_fn(|cx| reader.poll_read::<Joined>(cx))) {
            Read::Data(data) => got.extend_from_slice(&data),
            Read::End(end) => return (got, end),
        }
    }
}

fn chunk(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// A writer task's writes reach the body in order and in full, with waits
/// for room (the limit is smaller than the whole), and the close is seen
/// once everything was taken.
#[test]
fn writes_arrive_in_order_and_close_is_seen() {
    loom::model(|| {
        let (mut writer, mut reader) = channel(4);
        let producer = thread::spawn(move || {
            block_on(async {
                for part in ["ab", "cd", "ef"] {
                    writer.send(chunk(part)).await.expect("the body is alive");
                }
                writer.close();
            });
        });
        assert_eq!(read_to_end(&mut reader), (b"abcdef".to_vec(), End::Clean));
        producer.join().expect("writer thread");
    });
}

/// Frames encoded into a busy pipe keep their place behind the message in
/// the channel.
#[test]
fn encoded_frames_keep_their_order() {
    loom::model(|| {
        let (mut writer, mut reader) = channel(64);
        let producer = thread::spawn(move || {
            block_on(async {
                let mut scratch = bytes::BytesMut::new();
                writer.send(chunk("1")).await.expect("alive");
                writer
                    .send_encoded(&mut scratch, |buf| buf.extend_from_slice(b"2"))
                    .await
                    .expect("alive");
                writer.send(chunk("3")).await.expect("alive");
                writer.close();
            });
        });
        assert_eq!(read_to_end(&mut reader), (b"123".to_vec(), End::Clean));
        producer.join().expect("writer thread");
    });
}

/// A body dropped while the writer waits for room wakes the writer, which
/// fails with `ClientDisconnected` instead of waiting forever.
#[test]
fn disconnect_wakes_a_waiting_writer() {
    loom::model(|| {
        let (mut writer, reader) = channel(2);
        let producer = thread::spawn(move || {
            block_on(async {
                for part in ["ab", "cd"] {
                    if let Err(error) = writer.send(chunk(part)).await {
                        return Some(error);
                    }
                }
                None
            })
        });
        drop(reader);
        let error = producer.join().expect("writer thread");
        assert_eq!(error, Some(LiveError::ClientDisconnected));
    });
}

/// A shutdown wakes a writer waiting for room (`StreamClosed`); once the
/// writer's end is gone, the body ends cleanly after what was written.
#[test]
fn shutdown_wakes_a_waiting_writer_and_ends_cleanly() {
    loom::model(|| {
        let (mut writer, mut reader) = channel(2);
        let shared = writer.shared().clone();
        let producer = thread::spawn(move || {
            block_on(async {
                let mut sent = Vec::new();
                for part in ["ab", "cd"] {
                    match writer.send(chunk(part)).await {
                        Ok(()) => sent.extend_from_slice(part.as_bytes()),
                        Err(error) => {
                            assert_eq!(error, LiveError::StreamClosed);
                            break;
                        }
                    }
                }
                // As the writer task does when its writer returns: close
                // (a stream closed by the shutdown is closed already).
                writer.close();
                sent
            })
        });
        let closer = thread::spawn(move || shared.shut_down());
        let (got, end) = read_to_end(&mut reader);
        closer.join().expect("closer thread");
        let sent = producer.join().expect("writer thread");
        assert_eq!(end, End::Clean);
        assert_eq!(
            got, sent,
            "the body got exactly what the writer was told it sent"
        );
    });
}

/// A writer task dropped without closing (aborted) ends the body with
/// `Cancelled`, after what it wrote.
#[test]
fn a_dropped_writer_is_a_cancelled_stream() {
    loom::model(|| {
        let (mut writer, mut reader) = channel(8);
        let producer = thread::spawn(move || {
            block_on(writer.send(chunk("x"))).expect("alive");
        });
        assert_eq!(read_to_end(&mut reader), (b"x".to_vec(), End::Cancelled));
        producer.join().expect("writer thread");
    });
}

/// A broker feed's frames reach an idle body (parked waker), in order, and
/// its close ends the body cleanly after them.
#[test]
fn feed_frames_wake_the_body_and_close_ends_it() {
    loom::model(|| {
        let (feed, mut reader) = feed(1024);
        let producer = thread::spawn(move || {
            for part in ["a", "b"] {
                feed.with_state(|state| state.batch.push(chunk(part)))
                    .expect("the body is alive");
            }
            feed.close();
        });
        assert_eq!(read_to_end(&mut reader), (b"ab".to_vec(), End::Clean));
        producer.join().expect("feed thread");
    });
}

/// A feed whose body is gone says so, and never queues again.
#[test]
fn a_feed_sees_its_body_gone() {
    loom::model(|| {
        let (feed, reader) = feed(1024);
        let consumer = thread::spawn(move || drop(reader));
        let first = feed.with_state(|state| state.batch.push(chunk("a")));
        consumer.join().expect("body thread");
        assert!(feed.is_closed());
        let second = feed.with_state(|state| state.batch.push(chunk("b")));
        assert!(second.is_err(), "queued after the body was dropped");
        let _ = first;
    });
}
