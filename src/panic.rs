//! Catching panics of user code (actions and live writers) so that one bad
//! request never takes its connection's neighbours — or its own connection —
//! down with it.

use std::{
    any::Any,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
};

/// A caught panic's payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Polls `fut` once; a panic inside it becomes `Ready(Err(payload))`.
///
/// The caller must not poll `fut` again after a panic: AssertUnwindSafe is
/// sound because no broken invariant inside it can then be observed.
pub(crate) fn poll_catching<F: Future>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, Payload>> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(payload)),
    }
}

/// Polls `fut` to completion; a panic inside it becomes `Err(payload)`.
pub(crate) async fn catch_unwind<F: Future>(fut: F) -> Result<F::Output, Payload> {
    tokio::pin!(fut);
    std::future::poll_fn(|cx| poll_catching(fut.as_mut(), cx)).await
}

/// The panic message, when the payload is a string.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
