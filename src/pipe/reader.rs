//! [`PipeReader`]: the body's end of the pipe.

use bytes::Bytes;
use futures_channel::mpsc;
use futures_core::Stream;
use std::{
    pin::Pin,
    task::{Context, Poll},
};

use std::sync::Arc;

use super::{park, Batch, Shared, BODY_DONE, CLOSED, DISCONNECTED, FAILED};

/// How the chunks taken in one poll become the data of one frame.
pub(crate) trait Collect: Default {
    /// The frame's data type.
    type Data;
    /// Announces that about `bytes` more will be pushed (a hint for one
    /// allocation instead of several).
    fn reserve(&mut self, bytes: usize) {
        let _ = bytes;
    }
    /// Adds one chunk, after those already collected.
    fn push(&mut self, chunk: Bytes);
    /// The frame's data, or `None` if nothing was collected.
    fn finish(self) -> Option<Self::Data>;
}

/// What one poll of the reader found.
#[derive(Debug)]
pub(crate) enum Read<D> {
    /// Everything that was ready, in order.
    Data(D),
    /// The stream is over and everything was taken.
    End(End),
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Closed: the response is complete.
    Clean,
    /// The writer failed or panicked.
    Failed,
    /// The writer task was dropped before it closed the stream.
    Cancelled,
}

/// The body's end: takes the channel's message and the batch together.
/// Dropped before the end, it marks the client as gone.
#[derive(Debug)]
pub(crate) struct PipeReader {
    /// `None` for a feed, which has no channel.
    rx: Option<mpsc::Receiver<Bytes>>,
    shared: Arc<Shared>,
    ended: bool,
    /// The batch swapped out of the pipe under the lock and emptied into a
    /// frame after it; then swapped back in empty, its buffer reused.
    spare: Batch,
}

impl PipeReader {
    pub(super) fn new(rx: Option<mpsc::Receiver<Bytes>>, shared: Arc<Shared>) -> Self {
        PipeReader {
            rx,
            shared,
            ended: false,
            spare: Batch::default(),
        }
    }

    /// Takes everything ready, collected by `C`; parks the body when there is
    /// nothing (invariant 3) and wakes a writer waiting for room when there
    /// was something (invariant 5).
    pub(crate) fn poll_read<C: Collect>(&mut self, cx: &mut Context<'_>) -> Poll<Read<C::Data>> {
        let mut frame = C::default();
        let mut took = false;
        // The channel holds at most the one message in flight, older than
        // the batch (invariant 2). It is taken before the lock, so the
        // writer, who needs the lock for every write, waits for none of the
        // channel's bookkeeping.
        let mut channel_ended = match &mut self.rx {
            Some(rx) => drain(rx, cx, &mut frame, &mut took),
            None => false,
        };
        let (writer, flags) = {
            let mut state = self.shared.lock();
            if state.in_channel.is_some() {
                if !took && !channel_ended {
                    // Sent after the look above: still older than the batch.
                    if let Some(rx) = &mut self.rx {
                        channel_ended = drain(rx, cx, &mut frame, &mut took);
                    }
                }
                if took {
                    // Acknowledged under the lock: only now may the writer
                    // use the channel again.
                    state.in_channel = None;
                }
            }
            if !state.batch.is_empty() {
                took = true;
                // A swap under the lock; the parts are collected after it.
                std::mem::swap(&mut state.batch, &mut self.spare);
            }
            let writer = if took {
                state.writer.take()
            } else {
                park(&mut state.reader, cx.waker());
                None
            };
            // Read under the lock: whoever set a flag took this lock after
            // (invariant 4), so a flag set before the channel closed is seen
            // here — the lock, not the channel's own atomics, orders them.
            (writer, self.shared.flags())
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        if !self.spare.is_empty() {
            frame.reserve(self.spare.len());
            self.spare.take(|part| frame.push(part));
        }
        if let Some(data) = frame.finish() {
            return Poll::Ready(Read::Data(data));
        }
        let end = match &self.rx {
            Some(_) if channel_ended => Some(if flags & FAILED != 0 {
                End::Failed
            } else if flags & CLOSED != 0 {
                End::Clean
            } else {
                End::Cancelled
            }),
            None if flags & CLOSED != 0 => Some(End::Clean),
            _ => None,
        };
        match end {
            Some(end) => {
                self.ended = true;
                self.shared.set(BODY_DONE);
                Poll::Ready(Read::End(end))
            }
            None => Poll::Pending,
        }
    }
}

/// Moves what the channel holds into `frame`; whether the channel ended.
fn drain<C: Collect>(
    rx: &mut mpsc::Receiver<Bytes>,
    cx: &mut Context<'_>,
    frame: &mut C,
    took: &mut bool,
) -> bool {
    loop {
        match Pin::new(&mut *rx).poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                *took = true;
                frame.push(chunk);
            }
            Poll::Ready(None) => return true,
            Poll::Pending => return false,
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        // hyper drops the body early when the connection closes or the
        // HTTP/2 stream is reset: that is how a departed client becomes
        // visible to an idle writer.
        if !self.ended {
            self.shared.set(DISCONNECTED);
        }
    }
}
