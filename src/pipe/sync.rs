//! The synchronisation primitives of the pipe: std's, or loom's when the
//! crate is built with `--cfg loom` (see `scripts/loom.sh`), so the model
//! tests explore every interleaving of the pipe's lock and flags.

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
