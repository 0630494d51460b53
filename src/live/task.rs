//! The writer task: runs the user's future, catches its panic, and decides
//! how the body ends. [`WriterHandle`] lets anyone await the outcome.

use bytes::Bytes;
use futures_channel::mpsc;
use pin_project_lite::pin_project;
use std::{
    future::{Future, IntoFuture},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};
use tokio::sync::Notify;

use super::tracker::{ActiveGuard, WriterGuard};
use crate::{
    error::{BoxError, LiveError, SendError, WriterError},
    pipe::{Shared, CLOSED, FAILED},
    response::Response,
};

/// The outcome of a live writer: `Ok` when it returned `Ok(())`.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rill::{LiveError, WriterError, WriterResult};
///
/// let response = rill::live(|mut stream| async move {
///     stream.write("hello\n").await?;
///     Ok(())
/// });
/// let writer = response.writer().unwrap();
/// drop(response); // the client left before the first write
/// let result: WriterResult = writer.await;
/// assert!(matches!(result, Err(WriterError::Live(LiveError::ClientDisconnected))));
/// # }
/// ```
pub type WriterResult = Result<(), WriterError>;

/// Where the task leaves its outcome for the handles.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    result: Mutex<Option<WriterResult>>,
    /// Woken once the result is set.
    set: Notify,
}

impl Outcome {
    fn lock(&self) -> MutexGuard<'_, Option<WriterResult>> {
        // Set once, read by clones: a poisoned lock still holds a whole value.
        self.result
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Response {
    /// A handle on the live writer task (what Keayl calls a `live-promise`):
    /// await it for the writer's result. `None` for responses without a writer task.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let response = rill::live(|mut stream| async move {
    ///     stream.write("hello\n").await?;
    ///     Ok(())
    /// });
    /// let writer = response.writer().expect("a live response has a writer");
    /// let _body = response.into_http().into_body(); // keep the client connected
    /// assert!(writer.await.is_ok());
    /// assert!(rill::Response::text("hello\n").writer().is_none());
    /// # }
    /// ```
    pub fn writer(&self) -> Option<WriterHandle> {
        self.extension::<WriterHandle>().cloned()
    }

    pub(crate) fn set_writer(&mut self, writer: WriterHandle) {
        self.insert_extension(writer);
    }
}

/// A handle on a live response's writer task (Keayl's `live-promise`).
///
/// Await it (it implements [`IntoFuture`]) to get the writer's result once it
/// finishes. Cloning is cheap and every clone sees the same result; awaiting
/// does not keep the writer alive or affect the response.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let response = rill::live(|mut stream| async move {
///     stream.write("done").await?;
///     Ok(())
/// });
/// let writer = response.writer().unwrap();
/// let body = response.into_http().into_body(); // keep the "client" alive
/// assert!(writer.await.is_ok());
/// # drop(body);
/// # }
/// ```
#[derive(Clone)]
pub struct WriterHandle {
    outcome: Arc<Outcome>,
}

impl WriterHandle {
    pub(crate) fn new(outcome: Arc<Outcome>) -> Self {
        WriterHandle { outcome }
    }

    /// Whether the writer has finished.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let response = rill::live(|_stream| async { Ok(()) });
    /// let writer = response.writer().unwrap();
    /// assert!(!writer.is_finished()); // spawned, not run yet
    /// writer.clone().await?;
    /// assert!(writer.is_finished());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.outcome.lock().is_some()
    }
}

impl IntoFuture for WriterHandle {
    type Output = WriterResult;
    type IntoFuture = Pin<Box<dyn Future<Output = WriterResult> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            loop {
                let notified = self.outcome.set.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(result) = self.outcome.lock().clone() {
                    return result;
                }
                notified.await;
            }
        })
    }
}

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Records the outcome; dropped unused when the task is aborted, which it
/// records as `Cancelled`.
pub(crate) struct Reporter {
    outcome: Arc<Outcome>,
    reported: bool,
}

impl Reporter {
    pub(crate) fn new(outcome: Arc<Outcome>) -> Self {
        Reporter {
            outcome,
            reported: false,
        }
    }

    fn report(mut self, result: WriterResult) {
        self.record(result);
        self.reported = true;
    }

    fn record(&self, result: WriterResult) {
        *self.outcome.lock() = Some(result);
        self.outcome.set.notify_waiters();
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if !self.reported {
            self.record(Err(WriterError::Cancelled));
        }
    }
}

pin_project! {
    /// The spawned task of a live response: the user's future, held once and
    /// pinned in place, plus what must outlive it.
    pub(crate) struct WriterTask<F> {
        #[pin]
        writer: F,
        shared: Arc<Shared>,
        reporter: Option<Reporter>,
        // Keeps the channel open after the writer's own sender is gone,
        // until the outcome is recorded: the body must not see the end
        // before it knows whether that end is clean.
        keep_open: Option<mpsc::Sender<Bytes>>,
        writer_guard: Option<WriterGuard>,
        active: Option<Arc<ActiveGuard>>,
    }
}

impl<F> WriterTask<F> {
    pub(crate) fn new(
        writer: F,
        shared: Arc<Shared>,
        outcome: Arc<Outcome>,
        keep_open: mpsc::Sender<Bytes>,
        writer_guard: Option<WriterGuard>,
        active: Option<Arc<ActiveGuard>>,
    ) -> Self {
        WriterTask {
            writer,
            reporter: Some(Reporter::new(outcome)),
            shared,
            keep_open: Some(keep_open),
            writer_guard,
            active,
        }
    }
}

impl<F> Future for WriterTask<F>
where
    F: Future<Output = Result<(), BoxError>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        // Ready once: the task ends, so the writer is never polled again
        // after a panic.
        let Poll::Ready(caught) = crate::panic::poll_catching(this.writer, cx) else {
            return Poll::Pending;
        };
        let outcome = settle(this.shared, caught);
        if let Some(reporter) = this.reporter.take() {
            reporter.report(outcome);
        }
        // Only now may the body see the end of the channel.
        *this.keep_open = None;
        *this.writer_guard = None;
        Poll::Ready(())
    }
}

/// Turns how the writer ended into flags on the stream (which decide how the
/// body ends) and the handles' result.
fn settle(
    shared: &Shared,
    caught: Result<Result<(), BoxError>, crate::panic::Payload>,
) -> WriterResult {
    match caught {
        Ok(Ok(())) => {
            shared.set(CLOSED);
            Ok(())
        }
        Ok(Err(error)) => match live_error(error) {
            Ok(live) if live.is_end_of_stream() => {
                tracing::debug!(error = %live, "live writer stopped");
                shared.set(CLOSED);
                Err(WriterError::Live(live))
            }
            Ok(live) => fail(shared, WriterError::Live(live)),
            Err(other) => fail(shared, WriterError::Failed(Arc::from(other))),
        },
        Err(payload) => fail(
            shared,
            WriterError::Panicked {
                message: crate::panic::message(payload.as_ref()),
            },
        ),
    }
}

/// The stream error a writer's error stands for, if it is one: a
/// [`LiveError`], or the stream side of an SSE writer's [`SendError`].
fn live_error(error: BoxError) -> Result<LiveError, BoxError> {
    let error = match error.downcast::<LiveError>() {
        Ok(live) => return Ok(*live),
        Err(other) => other,
    };
    match error.downcast::<SendError>() {
        Ok(send) => match *send {
            SendError::Stream(live) => Ok(live),
            frame => Err(Box::new(frame)),
        },
        Err(other) => Err(other),
    }
}

fn fail(shared: &Shared, error: WriterError) -> WriterResult {
    // A stream already closed (by the writer, or by shutdown) ends cleanly:
    // what the client got is what the writer meant to send.
    if shared.set_unless(FAILED, CLOSED) {
        tracing::error!(error = %error, source = ?std::error::Error::source(&error), "live writer failed; aborting the response");
    } else {
        tracing::debug!(error = %error, "live writer failed after its stream was closed");
    }
    Err(error)
}
