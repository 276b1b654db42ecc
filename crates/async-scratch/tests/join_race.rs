//! A task's outcome, handed to its `JoinHandle` on another thread while the task ends,
//! is neither lost nor dropped twice.
//!
//! The slot a task's outcome waits in has no lock: the task's state word hands its two
//! cells (the outcome, the awaiter's waker) between the task and its handle (see
//! `executor::state`, whose loom models check the protocol itself). These tests run the
//! real code with the handle on another thread, racing the task's end: awaited there,
//! or dropped there. On a real machine each runs many rounds; under Miri, which
//! preempts threads at random, each seed is another interleaving:
//!
//! ```text
//! MIRIFLAGS="-Zmiri-many-seeds=0..64" cargo +nightly miri test -p async-scratch --test join_race
//! ```

use async_scratch::executor::{block_on, spawn, yield_now, Executor, JoinHandle};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

/// Rounds per test: many natively, one per seed under Miri.
const ROUNDS: usize = if cfg!(miri) { 1 } else { 2_000 };

/// An output that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Spawns a task that yields `yields` times and ends with a `Counted`; hands its
/// handle to `elsewhere`, run on another thread, while the executor runs the task.
fn race_the_end(yields: usize, elsewhere: impl FnOnce(JoinHandle<Counted>) + Send + 'static) {
    let drops = Arc::new(AtomicUsize::new(0));
    let executor = Executor::new();
    let output = Arc::clone(&drops);
    let ended = Arc::new(AtomicBool::new(false));
    let task_ended = Arc::clone(&ended);
    executor.block_on(async move {
        let task = spawn(async move {
            for _ in 0..yields {
                yield_now().await;
            }
            task_ended.store(true, Ordering::SeqCst); // its last poll: the end follows
            Counted(output)
        });
        let (done, finished) = mpsc::channel();
        let other = thread::spawn(move || {
            elsewhere(task);
            done.send(()).expect("the executor waits for this thread");
        });
        // Turn until the other thread is done with the handle and the task has ended
        // (its end, in the same turn as its last poll, is over when this runs again):
        // the end comes before, during or after what the other thread does.
        let mut other_done = false;
        while !(other_done && ended.load(Ordering::SeqCst)) {
            other_done = other_done || finished.try_recv().is_ok();
            yield_now().await;
        }
        other.join().expect("the other thread does not panic");
    });
    drop(executor);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the output is dropped exactly once"
    );
}

#[test]
fn a_handle_awaited_on_another_thread_gets_the_outcome() {
    for round in 0..ROUNDS {
        race_the_end(round % 3, |task| {
            // Awaited in another executor's `block_on`: its waker is that thread's.
            let outcome = block_on(task);
            assert!(
                outcome.is_ok(),
                "the task's value arrives: {:?}",
                outcome.err()
            );
        });
    }
}

#[test]
fn a_handle_dropped_on_another_thread_drops_the_outcome_once() {
    for round in 0..ROUNDS {
        race_the_end(round % 3, drop);
    }
}

#[test]
fn a_handle_polled_then_dropped_on_another_thread_leaves_nothing_behind() {
    for round in 0..ROUNDS {
        race_the_end(round % 3, |task| {
            // One poll stores this thread's waker in the slot (unless the outcome is
            // there already); the drop then takes it back, or leaves it to the task.
            let mut task = Box::pin(task);
            let waker = std::task::Waker::noop();
            let polled = task
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker));
            drop(polled);
            drop(task);
        });
    }
}
