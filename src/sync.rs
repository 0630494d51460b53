//! The synchronisation primitives of the pipe and of a WebSocket's shared
//! state: std's, or loom's when the crate is built with `--cfg loom` (see
//! `scripts/loom.sh`), so the model tests explore every interleaving of
//! their locks and flags.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU8, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU8, Ordering},
    Mutex, MutexGuard,
};

/// Locks `mutex`, carrying on with the data of a holder that panicked (every
/// user keeps its data consistent at each point it could panic).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
