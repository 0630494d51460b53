//! Loom models of the hand-off between deliveries and a channel's fan-out
//! task (`handoff.rs`): two publishers, the tasks their pushes start, and a
//! fan-out at once, in every interleaving of the lock. A lost item shows up
//! as an item left waiting with no task scheduled, a reordering as a failed
//! assert.
//!
//! Run with `bash scripts/loom.sh broker::loom_tests`.

use loom::{
    sync::{Arc, Mutex},
    thread,
};

use super::handoff::Handoff;

/// What the model's fan-outs offered, in the order they offered it.
type Offered = Arc<Mutex<Vec<u32>>>;

/// A fan-out task: takes and offers until `take_for_task` ends it. Offers
/// under the lock, as the registry offers under the channel lock after
/// taking (rule 3).
fn task(handoff: Arc<Mutex<Handoff<u32>>>, offered: Offered) {
    loop {
        let mut h = handoff.lock().expect("handoff lock");
        // Runs of one: the most interleavings of takes and pushes.
        match h.take_for_task(1) {
            Ok(batch) => offered.lock().expect("offered").extend(batch),
            Err(_) => return,
        }
        drop(h);
        thread::yield_now();
    }
}

/// Pushes `items`, starting a task whenever the hand-off says so; returns
/// the tasks it started.
fn publish(
    handoff: &Arc<Mutex<Handoff<u32>>>,
    offered: &Offered,
    items: &[u32],
) -> Vec<thread::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for &item in items {
        let start = handoff.lock().expect("handoff lock").push(item, true);
        if start {
            let (handoff, offered) = (handoff.clone(), offered.clone());
            tasks.push(thread::spawn(move || task(handoff, offered)));
        }
    }
    tasks
}

/// Two publishers leave their items to tasks: every item is offered once,
/// each publisher's in its order, and nothing is left waiting without a
/// task once they are done.
#[test]
fn every_item_reaches_a_task_once_and_in_order() {
    loom::model(|| {
        let handoff = Arc::new(Mutex::new(Handoff::default()));
        let offered: Offered = Arc::default();
        let other = {
            let (handoff, offered) = (handoff.clone(), offered.clone());
            thread::spawn(move || publish(&handoff, &offered, &[10]))
        };
        let mut tasks = publish(&handoff, &offered, &[1, 2]);
        tasks.extend(other.join().expect("publisher"));
        for t in tasks {
            t.join().expect("task");
        }
        let offered = offered.lock().expect("offered").clone();
        let mut sorted = offered.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 10], "each once: {offered:?}");
        let mine: Vec<u32> = offered.iter().copied().filter(|&i| i < 10).collect();
        assert_eq!(mine, [1, 2], "in the order pushed");
        let mut h = handoff.lock().expect("handoff lock");
        assert!(h.take().is_empty(), "nothing left behind");
        assert!(!h.abandon(), "no task left scheduled");
    });
}

/// A fan-out at once (an awaited publish) takes what a scheduled task was
/// to take: the task then finds nothing, ends, and clears the flag; no
/// item is offered twice.
#[test]
fn a_fan_out_at_once_and_a_task_share_the_items() {
    loom::model(|| {
        let handoff = Arc::new(Mutex::new(Handoff::default()));
        let offered: Offered = Arc::default();
        let tasks = publish(&handoff, &offered, &[1]);
        {
            let mut h = handoff.lock().expect("handoff lock");
            h.push(2, false);
            let batch = h.take();
            offered.lock().expect("offered").extend(batch);
        }
        for t in tasks {
            t.join().expect("task");
        }
        assert_eq!(*offered.lock().expect("offered"), [1, 2]);
        let mut h = handoff.lock().expect("handoff lock");
        assert!(!h.abandon(), "the task cleared its flag");
        assert!(h.push(3, true), "so the next push starts a task");
    });
}
