//! The writer task: runs the user's closure, catches its panic, and decides
//! how the body ends. [`WriterHandle`] lets anyone await the outcome.

use std::{
    future::{Future, IntoFuture},
    pin::Pin,
    sync::Arc,
};
use tokio::sync::watch;

use super::shared::{Shared, CLOSED, FAILED};
use crate::error::{BoxError, LiveError, WriterError};

/// The outcome of a live writer: `Ok` when it returned `Ok(())`.
pub type WriterResult = Result<(), WriterError>;

/// A handle on a live response's writer task — the seed's `live-promise`.
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
    rx: watch::Receiver<Option<WriterResult>>,
}

impl WriterHandle {
    /// Whether the writer has finished.
    pub fn is_finished(&self) -> bool {
        self.rx.borrow().is_some() || self.rx.has_changed().is_err()
    }
}

impl IntoFuture for WriterHandle {
    type Output = WriterResult;
    type IntoFuture = Pin<Box<dyn Future<Output = WriterResult> + Send>>;

    fn into_future(mut self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.rx.wait_for(Option::is_some).await {
                Ok(result) => result.clone().unwrap_or(Err(WriterError::Cancelled)),
                // The task was dropped without reporting: aborted or the
                // runtime shut down.
                Err(_) => Err(WriterError::Cancelled),
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

/// Sends the writer's outcome to its handles; dropped unsent when the task is
/// aborted, which the handles read as `Cancelled`.
pub(crate) struct Reporter {
    tx: watch::Sender<Option<WriterResult>>,
}

pub(crate) fn handle_pair() -> (Reporter, WriterHandle) {
    let (tx, rx) = watch::channel(None);
    (Reporter { tx }, WriterHandle { rx })
}

/// Runs `writer` to completion, catching a panic, then records the outcome in
/// `shared` (which decides whether the body ends cleanly) and in `reporter`.
pub(crate) async fn run_writer<Fut>(writer: Fut, shared: Arc<Shared>, reporter: Reporter)
where
    Fut: Future<Output = Result<(), BoxError>>,
{
    let caught = crate::panic::catch_unwind(writer).await;

    let outcome = match caught {
        Ok(Ok(())) => {
            shared.set(CLOSED);
            Ok(())
        }
        Ok(Err(error)) => match error.downcast::<LiveError>() {
            Ok(live) if live.is_end_of_stream() => {
                tracing::debug!(error = %live, "live writer stopped");
                shared.set(CLOSED);
                Err(WriterError::Live(*live))
            }
            Ok(live) => fail(&shared, WriterError::Live(*live)),
            Err(other) => fail(&shared, WriterError::Failed(Arc::from(other))),
        },
        Err(payload) => fail(
            &shared,
            WriterError::Panicked {
                message: crate::panic::message(payload.as_ref()),
            },
        ),
    };
    reporter.tx.send_replace(Some(outcome));
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
