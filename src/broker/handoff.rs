//! [`Handoff`]: the queue between a channel's deliveries and its fan-out
//! task, and the flag that says a task is on its way.
//!
//! # Invariants
//!
//! Every method is called under the lock that guards the `Handoff` (the
//! channel's arrivals lock in `registry.rs`); the model tests in
//! `loom_tests.rs` check the rules below against every interleaving of two
//! publishers and the tasks they start.
//!
//! 1. **At most one task.** [`push`](Handoff::push) asks its caller to
//!    start a task only when none is scheduled, and marks one scheduled in
//!    the same critical section.
//! 2. **No item without a task.** A task ends only through
//!    [`take_for_task`](Handoff::take_for_task) finding nothing waiting,
//!    which clears `scheduled` in the same critical section: an item pushed
//!    before it is taken by the task, one pushed after it starts a new
//!    task. A task dropped before it could end that way (its runtime went
//!    away) calls [`abandon`](Handoff::abandon), so the next push starts
//!    another.
//! 3. **Order.** Items are taken oldest first — a fan-out at once takes
//!    them all, a task at most a run of them — and whoever takes them offers
//!    them before anything is taken again.

/// Items waiting for a fan-out, and whether a task will take them.
#[derive(Debug)]
pub(crate) struct Handoff<T> {
    waiting: Vec<T>,
    scheduled: bool,
    /// An emptied buffer kept for the next run (no allocation per run).
    spare: Vec<T>,
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Handoff {
            waiting: Vec::new(),
            scheduled: false,
            spare: Vec::new(),
        }
    }
}

impl<T> Handoff<T> {
    /// Appends `item`. With `by_task`, the caller leaves the fan-out to a
    /// task: `true` means none is scheduled yet, so the caller must start
    /// one (rule 1).
    pub(crate) fn push(&mut self, item: T, by_task: bool) -> bool {
        self.waiting.push(item);
        by_task && !std::mem::replace(&mut self.scheduled, true)
    }

    /// Takes everything waiting, for a fan-out at once (possibly empty).
    /// A task, if one is scheduled, stays scheduled and finds less to do.
    pub(crate) fn take(&mut self) -> Vec<T> {
        let spare = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.waiting, spare)
    }

    /// A task's take: the oldest `limit` items waiting (all of them when
    /// fewer), or, when nothing waits, the task's end — `Err(true)` if the
    /// flag was set and is now cleared (rule 2).
    pub(crate) fn take_for_task(&mut self, limit: usize) -> Result<Vec<T>, bool> {
        if self.waiting.is_empty() {
            return Err(std::mem::replace(&mut self.scheduled, false));
        }
        if self.waiting.len() <= limit {
            return Ok(self.take());
        }
        let rest = self.waiting.split_off(limit.max(1));
        Ok(std::mem::replace(&mut self.waiting, rest))
    }

    /// A task went away without ending through `take_for_task`: whether
    /// the flag was set (and is now cleared).
    pub(crate) fn abandon(&mut self) -> bool {
        std::mem::replace(&mut self.scheduled, false)
    }

    /// Gives back an emptied buffer for the next run.
    pub(crate) fn recycle(&mut self, mut buffer: Vec<T>) {
        buffer.clear();
        if self.spare.capacity() < buffer.capacity() {
            self.spare = buffer;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_at_a_time_and_it_ends_only_on_empty() {
        let mut h = Handoff::default();
        assert!(h.push(1, true), "the first push starts a task");
        assert!(!h.push(2, true), "one is on its way");
        assert!(!h.push(3, false), "a fan-out at once needs no task");
        assert_eq!(h.take_for_task(2), Ok(vec![1, 2]), "the oldest, at most 2");
        assert_eq!(h.take_for_task(2), Ok(vec![3]));
        assert_eq!(h.take_for_task(2), Err(true), "nothing left: the task ends");
        assert!(h.push(4, true), "so the next push starts another");
        assert_eq!(h.take(), vec![4], "a fan-out at once takes it");
        assert_eq!(h.take_for_task(2), Err(true));
        assert!(!h.abandon());
    }
}
