//! Catching panics of user code (actions and live writers) so that one bad
//! request never takes its connection's neighbours — or its own connection —
//! down with it.

use std::{any::Any, future::Future, panic::AssertUnwindSafe, task::Poll};

/// Polls `fut` to completion; a panic inside it becomes `Err(payload)`.
pub(crate) async fn catch_unwind<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    tokio::pin!(fut);
    std::future::poll_fn(|cx| {
        // AssertUnwindSafe: after a panic the future is never polled again,
        // so no broken invariant inside it can be observed.
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
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
