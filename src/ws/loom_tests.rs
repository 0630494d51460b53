//! Loom models of a socket's shared state (`shared.rs`): senders, the
//! driver and the handler in every interleaving of the lock and the flags,
//! checked against the invariants of the module doc. A lost wake-up shows up
//! as a deadlock, a lost or reordered message as a failed assert.
//!
//! Run with `bash scripts/loom.sh ws::loom_tests` (it builds with `--cfg loom`).

use loom::{future::block_on, thread};
use std::{future::poll_fn, sync::Arc, task::Poll};

use super::{
    message::{Outgoing, WsMessage},
    shared::{Room, SocketShared, CLOSED},
};

fn text(message: &Outgoing) -> String {
    match message {
        Outgoing::Message(m) => m.as_text().unwrap_or_default().to_owned(),
        Outgoing::Close { code, .. } => format!("close {code}"),
    }
}

/// The driver's side: everything sent, until every sender is gone.
fn drain(shared: &SocketShared) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let next = block_on(poll_fn(|cx| {
            shared.park_driver(cx.waker());
            shared.poll_outgoing()
        }));
        match next {
            Some(message) => got.push(text(&message)),
            None => return got,
        }
    }
}

/// A sender through a queue of one, against the driver: it waits for room,
/// every message arrives once and in order, and the driver sees the end
/// once the sender is gone. (Two senders make the model too large to
/// explore; they share the same lock and wake-up paths.)
#[test]
fn a_sender_waits_for_room_and_nothing_is_lost() {
    loom::model(|| {
        // `new` counts the one sender.
        let shared = Arc::new(SocketShared::new(1));
        let sender = {
            let shared = shared.clone();
            thread::spawn(move || {
                block_on(async {
                    for i in 0..3 {
                        let message = WsMessage::text(format!("m{i}"));
                        shared
                            .push_outgoing(Outgoing::Message(message))
                            .await
                            .expect("the socket is open");
                    }
                });
                shared.sender_dropped();
            })
        };
        let got = drain(&shared);
        sender.join().expect("sender");
        assert_eq!(got, ["m0", "m1", "m2"]);
    });
}

/// The driver reads only while the handler has room; the handler gets
/// every message in order, then `None` once the driver is done.
#[test]
fn the_handler_gets_everything_then_the_end() {
    loom::model(|| {
        let shared = Arc::new(SocketShared::new(1));
        let driver = {
            let shared = shared.clone();
            thread::spawn(move || {
                for i in 0..3 {
                    block_on(poll_fn(|cx| {
                        shared.park_driver(cx.waker());
                        match shared.room_for_incoming() {
                            Room::Full => Poll::Pending,
                            _ => Poll::Ready(()),
                        }
                    }));
                    shared.push_incoming(Ok(WsMessage::text(format!("m{i}"))));
                }
                shared.close_incoming();
            })
        };
        let mut got = Vec::new();
        while let Some(message) = block_on(poll_fn(|cx| shared.poll_recv(cx))) {
            got.push(
                message
                    .expect("a message")
                    .as_text()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        driver.join().expect("driver");
        assert_eq!(got, ["m0", "m1", "m2"]);
    });
}

/// A sender waiting for room is released with an error when the socket
/// closes.
#[test]
fn a_close_releases_a_waiting_sender() {
    loom::model(|| {
        let shared = Arc::new(SocketShared::new(1));
        let sender = {
            let shared = shared.clone();
            thread::spawn(move || {
                block_on(async {
                    let first = shared
                        .push_outgoing(Outgoing::Message(WsMessage::text("1")))
                        .await;
                    let second = shared
                        .push_outgoing(Outgoing::Message(WsMessage::text("2")))
                        .await;
                    (first.is_ok(), second.is_ok())
                })
            })
        };
        shared.set(CLOSED);
        let (first, second) = sender.join().expect("sender");
        // The second can only have gone through if the first had been taken,
        // and nobody takes: it must fail.
        assert!(!second);
        let _ = first;
    });
}
