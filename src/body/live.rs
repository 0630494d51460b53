//! The live body: pulls what a writer sent through the channel and the
//! pending batch, sends heartbeats while idle, and marks the stream
//! disconnected when hyper drops it early.

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};
use tokio::time::{Instant, Sleep};

use super::wire::Parts;
use crate::{
    error::BodyError,
    pipe::{Collect, End, Gather, PipeReader, Read, COPY_BELOW},
};

pub(super) struct LiveBody {
    reader: PipeReader,
    pub(super) done: bool,
    /// The end was seen and is an error, held back for one poll.
    pub(super) failing: Option<BodyError>,
    /// Keeps the response counted as open (in its tracker) while hyper
    /// holds the body.
    _guard: Option<Arc<dyn Send + Sync>>,
    heartbeat: Option<Heartbeat>,
    /// Run when hyper drops the body (a broker subscription leaves here).
    pub(super) on_drop: Option<Box<dyn FnOnce() + Send>>,
}

/// Sends `frame` whenever `interval` passes without data. Lives in the body,
/// not the writer, so it fires while the writer is busy elsewhere, and every
/// chunk restarts it, so busy streams never carry heartbeats.
struct Heartbeat {
    interval: Duration,
    frame: Bytes,
    /// When data last went out; the timer is re-armed lazily from it instead
    /// of being reset on every chunk.
    last_data: Instant,
    sleep: Pin<Box<Sleep>>,
    /// The waker the running timer was last polled with: polling it again
    /// with the same one (every time the body is polled) would only
    /// re-register it.
    armed: Option<Waker>,
}

/// A frame's data as the body hands it out: [`Collect`] plus the data of a
/// frame of one chunk (a heartbeat).
pub(super) trait FrameData: Collect {
    fn single(chunk: Bytes) -> Self::Data;
}

impl LiveBody {
    pub(super) fn new(
        reader: PipeReader,
        guard: Option<Arc<dyn Send + Sync>>,
        heartbeat: Option<(Duration, Bytes)>,
    ) -> Self {
        let heartbeat =
            heartbeat
                .filter(|(interval, _)| !interval.is_zero())
                .map(|(interval, frame)| Heartbeat {
                    interval,
                    frame,
                    last_data: Instant::now(),
                    sleep: Box::pin(tokio::time::sleep(interval)),
                    armed: None,
                });
        LiveBody {
            reader,
            done: false,
            failing: None,
            _guard: guard,
            heartbeat,
            on_drop: None,
        }
    }

    /// The next frame: everything ready, collected by `C`.
    pub(super) fn poll_frame<C: FrameData>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<C::Data>, BodyError>>> {
        if let Some(error) = self.failing.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.reader.poll_read::<C>(cx) {
            Poll::Ready(Read::Data(data)) => {
                if let Some(heartbeat) = &mut self.heartbeat {
                    heartbeat.last_data = Instant::now();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Read::End(end)) => {
                self.done = true;
                let error = match end {
                    End::Clean => return Poll::Ready(None),
                    End::Failed => BodyError::WriterFailed,
                    End::Cancelled => BodyError::WriterCancelled,
                };
                // hyper aborts without flushing what it buffered in the same
                // pass. Yield once so the chunks written before the failure
                // reach the client, then report the error.
                self.failing = Some(error);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => match &mut self.heartbeat {
                Some(heartbeat) => heartbeat
                    .poll_due(cx)
                    .map(|frame| Some(Ok(Frame::data(C::single(frame))))),
                None => Poll::Pending,
            },
        }
    }
}

impl FrameData for Gather {
    fn single(chunk: Bytes) -> Bytes {
        chunk
    }
}

/// Chunks for rill's own server: long ones kept apart (hyper hands them to
/// the socket in one vectored write, uncopied), short ones joined in order
/// so a frame of many small events is one buffer, not one `writev` entry
/// each.
#[derive(Default)]
pub(super) struct Wire {
    parts: Parts,
    open: BytesMut,
}

impl Collect for Wire {
    type Data = Parts;

    fn push(&mut self, chunk: Bytes) {
        if chunk.len() < COPY_BELOW {
            if self.open.is_empty() && bytes::Buf::remaining(&self.parts) == 0 {
                // Alone so far: keep it as it is, it may stay alone.
                self.parts.push(chunk);
                return;
            }
            if self.open.is_empty() && self.parts.last_len() < COPY_BELOW {
                // The previous chunk was short and kept: join it too.
                if let Some(last) = self.parts.pop_last() {
                    self.open.reserve(last.len() + chunk.len());
                    self.open.extend_from_slice(&last);
                }
            }
            self.open.extend_from_slice(&chunk);
        } else {
            self.close_open();
            self.parts.push(chunk);
        }
    }

    fn finish(mut self) -> Option<Parts> {
        self.close_open();
        (bytes::Buf::remaining(&self.parts) > 0).then_some(self.parts)
    }
}

impl FrameData for Wire {
    fn single(chunk: Bytes) -> Parts {
        Parts::from(chunk)
    }
}

impl Wire {
    fn close_open(&mut self) {
        if !self.open.is_empty() {
            self.parts.push(self.open.split().freeze());
        }
    }
}

impl Heartbeat {
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        let same_waker = self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if same_waker && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        self.armed = None;
        while self.sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let due = self.last_data + self.interval;
            if due <= now {
                self.last_data = now;
                self.sleep.as_mut().reset(now + self.interval);
                return Poll::Ready(self.frame.clone());
            }
            // Data went out since the timer was armed: wait the remainder.
            self.sleep.as_mut().reset(due);
        }
        self.armed = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for LiveBody {
    fn drop(&mut self) {
        // The reader marks the client gone (if the body did not end) as it
        // drops, after this.
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;

    fn collect(chunks: &[Bytes]) -> Parts {
        let mut wire = Wire::default();
        chunks.iter().for_each(|c| wire.push(c.clone()));
        wire.finish().expect("data")
    }

    fn chunks_of(parts: &Parts) -> Vec<Vec<u8>> {
        let mut slots = [std::io::IoSlice::new(&[]); 16];
        let n = parts.chunks_vectored(&mut slots);
        slots[..n].iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn short_chunks_are_joined_long_ones_kept() {
        let long = Bytes::from(vec![b'L'; COPY_BELOW]);
        let parts = collect(&[
            Bytes::from_static(b"a"),
            Bytes::from_static(b"b"),
            long.clone(),
            Bytes::from_static(b"c"),
            Bytes::from_static(b"d"),
        ]);
        let chunks = chunks_of(&parts);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0], b"ab");
        assert_eq!(chunks[1], long.to_vec());
        assert_eq!(chunks[2], b"cd");
        assert_eq!(parts.remaining(), 4 + COPY_BELOW);
    }

    #[test]
    fn a_lone_short_chunk_is_not_copied() {
        let only = Bytes::from_static(b"event");
        let parts = collect(std::slice::from_ref(&only));
        assert_eq!(parts.chunk().as_ptr(), only.as_ptr());
        assert!(Wire::default().finish().is_none());
    }
}
