//! [`SocketShared`]: what a socket's driver and its handler share — the
//! socket's flags, the two bounded queues between them, and the wakers.
//!
//! The queues are plain `VecDeque`s behind one lock: an idle socket holds no
//! queue memory at all (a channel would reserve a block of slots per
//! direction up front).
//!
//! # Invariants
//!
//! 1. **One lock.** Both queues, the sender count, whether the handler's
//!    receiving end lives, and both parked wakers are touched only under
//!    `state`.
//! 2. **No lost wake-up.** The driver parks its waker at the start of every
//!    poll, before it looks at any queue; whoever pushes to `outgoing`, pops
//!    from a full `incoming`, drops the last sender or the receiving end, or
//!    sets a flag takes the driver's waker under the lock and wakes it. The
//!    handler parks its waker in `recv` under the lock after finding
//!    `incoming` empty; the driver takes it when it pushes or finishes.
//! 3. **Room.** `outgoing` holds at most `capacity` messages (a close
//!    request may go over); a sender that finds it full waits on `room`,
//!    registered before it looks, and the driver notifies `room` whenever it
//!    takes from a full queue. `incoming` holds at most `capacity`: the
//!    driver reads a frame only after seeing room for it.
//! 4. **Flags, then wake.** A flag (`CLOSED`, `DISCONNECTED`, `SHUTDOWN`) is
//!    set first, then the driver is woken and `changed` notified.

use std::{
    collections::VecDeque,
    sync::PoisonError,
    task::{Context, Poll, Waker},
};
use tokio::sync::Notify;

use crate::sync::{AtomicU8, Mutex, MutexGuard, Ordering};

use super::{
    error::WsError,
    message::{Outgoing, WsMessage},
};
use crate::live::ShutDown;

/// The socket was closed (by either side, or a shutdown).
pub(crate) const CLOSED: u8 = 1 << 0;
/// The peer went away without a close handshake.
pub(crate) const DISCONNECTED: u8 = 1 << 1;
/// The server is shutting down: the driver closes with `1001`.
pub(crate) const SHUTDOWN: u8 = 1 << 2;

/// What the driver and the handler share (see the module doc).
#[derive(Debug)]
pub(crate) struct SocketShared {
    flags: AtomicU8,
    /// Woken on every flag change (for `disconnected()` and `closed()`).
    changed: Notify,
    /// Woken when a full `outgoing` queue gets room.
    room: Notify,
    state: Mutex<Queues>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Queues {
    /// What the driver read, for the handler.
    incoming: VecDeque<Result<WsMessage, WsError>>,
    /// The driver is done: nothing more will come in.
    incoming_closed: bool,
    /// The handler's receiving end was dropped: what comes in is dropped.
    receiver_gone: bool,
    /// What the handlers sent, for the driver.
    outgoing: VecDeque<Outgoing>,
    /// Sending ends alive; none left means the handler is done.
    senders: usize,
    driver: Option<Waker>,
    handler: Option<Waker>,
}

/// Whether the driver may read the next frame for the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// There is room in `incoming`.
    Yes,
    /// `incoming` is full; the driver is woken when the handler takes.
    Full,
    /// The handler's end is gone: read, and drop what arrives.
    ReceiverGone,
}

impl SocketShared {
    /// Shared state for queues of `capacity` messages each way, with one
    /// sender (the handler's).
    pub(crate) fn new(capacity: usize) -> Self {
        SocketShared {
            flags: AtomicU8::new(0),
            changed: Notify::new(),
            room: Notify::new(),
            state: Mutex::new(Queues {
                senders: 1,
                ..Queues::default()
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Critical sections are pushes, pops and waker swaps, none of which
        // can panic half-way: a poisoned lock still holds whole queues.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Acquire)
    }

    /// Sets `bits`, then wakes the driver and the watchers (invariant 4).
    pub(crate) fn set(&self, bits: u8) {
        let prev = self.flags.fetch_or(bits, Ordering::AcqRel);
        if prev & bits != bits {
            let driver = self.lock().driver.take();
            if let Some(driver) = driver {
                driver.wake();
            }
            self.changed.notify_waiters();
            self.room.notify_waiters();
        }
    }

    /// The error a send gets now, if any.
    pub(crate) fn send_error(&self) -> Option<WsError> {
        let f = self.flags();
        if f & DISCONNECTED != 0 {
            Some(WsError::Disconnected)
        } else if f & (CLOSED | SHUTDOWN) != 0 {
            Some(WsError::Closed)
        } else {
            None
        }
    }

    /// Waits until any of `bits` is set.
    pub(crate) async fn wait_for(&self, bits: u8) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.flags() & bits != 0 {
                return;
            }
            notified.await;
        }
    }

    // --- the driver's side ---

    /// Parks the driver's waker (invariant 2: at the start of every poll).
    pub(crate) fn park_driver(&self, waker: &Waker) {
        let mut state = self.lock();
        match &state.driver {
            Some(parked) if parked.will_wake(waker) => {}
            _ => state.driver = Some(waker.clone()),
        }
    }

    /// Whether a frame may be read for the handler now.
    pub(crate) fn room_for_incoming(&self) -> Room {
        let state = self.lock();
        if state.receiver_gone {
            Room::ReceiverGone
        } else if state.incoming.len() < self.capacity {
            Room::Yes
        } else {
            Room::Full
        }
    }

    /// Hands a message (or the error that ends the socket) to the handler.
    pub(crate) fn push_incoming(&self, item: Result<WsMessage, WsError>) {
        let handler = {
            let mut state = self.lock();
            if state.receiver_gone {
                return;
            }
            state.incoming.push_back(item);
            state.handler.take()
        };
        if let Some(handler) = handler {
            handler.wake();
        }
    }

    /// Nothing more will come in: `recv` returns `None` once it has taken
    /// what is queued.
    pub(crate) fn close_incoming(&self) {
        let handler = {
            let mut state = self.lock();
            state.incoming_closed = true;
            state.handler.take()
        };
        if let Some(handler) = handler {
            handler.wake();
        }
    }

    /// The next thing to send: `Ready(None)` once every sender is gone and
    /// the queue is empty (the handler is done).
    pub(crate) fn poll_outgoing(&self) -> Poll<Option<Outgoing>> {
        let (item, was_full) = {
            let mut state = self.lock();
            let was_full = state.outgoing.len() >= self.capacity;
            match state.outgoing.pop_front() {
                Some(item) => (Poll::Ready(Some(item)), was_full),
                None if state.senders == 0 => (Poll::Ready(None), false),
                None => (Poll::Pending, false),
            }
        };
        if was_full {
            self.room.notify_waiters();
        }
        item
    }

    // --- the handler's side ---

    /// Queues `item` if there is room (or always, for a close request);
    /// gives it back when the queue is full.
    fn try_push_outgoing(&self, item: Outgoing) -> Result<(), Outgoing> {
        let driver = {
            let mut state = self.lock();
            let is_close = matches!(item, Outgoing::Close { .. });
            if !is_close && state.outgoing.len() >= self.capacity {
                return Err(item);
            }
            state.outgoing.push_back(item);
            state.driver.take()
        };
        if let Some(driver) = driver {
            driver.wake();
        }
        Ok(())
    }

    /// Queues `item`, waiting while the queue is full; `Err` with the
    /// socket's error once it can take no more.
    pub(crate) async fn push_outgoing(&self, item: Outgoing) -> Result<(), WsError> {
        let mut item = item;
        loop {
            if let Some(error) = self.send_error() {
                return Err(error);
            }
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking (invariant 3).
            room.as_mut().enable();
            match self.try_push_outgoing(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
            if let Some(error) = self.send_error() {
                return Err(error);
            }
            room.await;
        }
    }

    /// Queues `item` if there is room now: `Ok(false)` when full.
    pub(crate) fn push_outgoing_now(&self, item: Outgoing) -> Result<bool, WsError> {
        if let Some(error) = self.send_error() {
            return Err(error);
        }
        Ok(self.try_push_outgoing(item).is_ok())
    }

    /// One more sending end.
    pub(crate) fn sender_added(&self) {
        self.lock().senders += 1;
    }

    /// One sending end less; the last one gone tells the driver.
    pub(crate) fn sender_dropped(&self) {
        let driver = {
            let mut state = self.lock();
            state.senders = state.senders.saturating_sub(1);
            if state.senders > 0 {
                return;
            }
            state.driver.take()
        };
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    /// The handler's next message: `Ready(None)` once the driver is done
    /// and everything was taken.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<WsMessage, WsError>>> {
        let (polled, driver) = {
            let mut state = self.lock();
            let was_full = state.incoming.len() >= self.capacity;
            match state.incoming.pop_front() {
                Some(item) => {
                    let driver = if was_full { state.driver.take() } else { None };
                    (Poll::Ready(Some(item)), driver)
                }
                None if state.incoming_closed => (Poll::Ready(None), None),
                None => {
                    match &state.handler {
                        Some(parked) if parked.will_wake(cx.waker()) => {}
                        _ => state.handler = Some(cx.waker().clone()),
                    }
                    (Poll::Pending, None)
                }
            }
        };
        if let Some(driver) = driver {
            driver.wake();
        }
        polled
    }

    /// The handler's receiving end is gone.
    pub(crate) fn receiver_dropped(&self) {
        let driver = {
            let mut state = self.lock();
            state.receiver_gone = true;
            state.incoming.clear();
            state.driver.take()
        };
        if let Some(driver) = driver {
            driver.wake();
        }
    }
}

impl ShutDown for SocketShared {
    fn shut_down(&self) {
        self.set(SHUTDOWN);
    }
}
