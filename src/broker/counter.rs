//! [`Counter`]: a count that many threads bump without sharing a cache line.
//!
//! Every delivery bumps a counter; one `AtomicU64` for the whole broker made
//! publishers on different channels (and cores) fight over its cache line,
//! which measured as most of what kept them from scaling.

use std::{
    cell::Cell,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
};

/// How many stripes a counter has.
const STRIPES: usize = 16;

/// One stripe, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe(AtomicU64);

/// A counter split into stripes; each thread adds to its own stripe.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    stripes: [Stripe; STRIPES],
}

impl Counter {
    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        if n > 0 {
            self.stripes[stripe()].0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total so far.
    pub(crate) fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// This thread's stripe, handed out round-robin on first use.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<Option<usize>> = const { Cell::new(None) };
    }
    STRIPE.with(|s| match s.get() {
        Some(i) => i,
        None => {
            let i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(Some(i));
            i
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Counter;

    #[test]
    fn counts_from_many_threads() {
        let counter = Counter::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counter.add(1);
                    }
                });
            }
        });
        assert_eq!(counter.get(), 8000);
    }
}
