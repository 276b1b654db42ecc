//! Idle workers: how a worker with nothing to do goes to sleep, and how new work wakes
//! exactly one of them, and only when one is needed.
//!
//! Step 7 introduces it. On one thread, the executor parks when its queue is empty and
//! a wake unparks it. With many workers, two new questions: which worker to wake, and
//! whether to wake one at all. The answers, kept in two counters:
//!
//! - **searching**: workers awake and looking for work to steal. At most half the
//!   workers search at once, so idle cores do not all spin on the same queues. While
//!   one searches, new work wakes no one: the searcher will find it.
//! - **sleeping**: workers parked. New work wakes one only if no worker is searching.
//!   The woken worker counts as searching from the moment it is chosen, so a burst of
//!   spawns wakes one worker, not one per spawn. A searcher that finds work and was the
//!   last searcher wakes the next one: the work spreads one worker at a time.
//!
//! No lost wake-up: a worker going to sleep first registers as sleeping (under the
//! lock), then looks at every queue once more. A spawner first pushes its task, then
//! reads the counters. Both sides are sequentially consistent, so either the spawner
//! sees the sleeper (and wakes it) or the sleeper sees the task. The loom model at the
//! end of this file checks every interleaving.

#[cfg(loom)]
use loom::sync::{
    atomic::{fence, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
use std::sync::PoisonError;
#[cfg(not(loom))]
use std::sync::{
    atomic::{fence, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
use std::time::Duration;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One worker's bed: `park` sleeps until `unpark` (or the timeout), and an `unpark`
/// that comes first is kept as a token, so it is never lost.
pub(crate) struct Parker {
    notified: Mutex<bool>,
    condvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            notified: Mutex::new(false),
            condvar: Condvar::new(),
        }
    }

    /// Sleeps until unparked or `timeout` passes; consumes the token. May return early
    /// (a spurious wake-up): the caller looks for work again either way.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        let mut notified = lock(&self.notified);
        if !*notified {
            notified = match timeout {
                None => self
                    .condvar
                    .wait(notified)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(timeout) => {
                    self.condvar
                        .wait_timeout(notified, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        *notified = false;
    }

    /// Wakes the parked worker, or makes its next `park` return at once.
    pub(crate) fn unpark(&self) {
        *lock(&self.notified) = true;
        self.condvar.notify_one();
    }
}

/// The runtime's counts of searching and sleeping workers, and who sleeps.
pub(crate) struct Idle {
    sleepers: Mutex<Vec<usize>>,
    searching: AtomicUsize,
    sleeping: AtomicUsize,
    workers: usize,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            workers,
        }
    }

    /// Starts searching (stealing), unless half the workers already search.
    pub(crate) fn try_start_searching(&self) -> bool {
        let mut searching = self.searching.load(Ordering::SeqCst);
        loop {
            if 2 * searching >= self.workers {
                return false;
            }
            match self.searching.compare_exchange(
                searching,
                searching + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => searching = now,
            }
        }
    }

    /// A searcher found work. Returns whether it was the last searcher: then it wakes
    /// another worker (if one sleeps), to carry on the search.
    pub(crate) fn stop_searching(&self) -> bool {
        self.searching.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// New work was queued (the caller pushed it first): wakes one sleeping worker,
    /// unless a worker is searching already. Returns whether it woke one.
    pub(crate) fn notify_one(&self, parkers: &[Parker]) -> bool {
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::SeqCst) != 0 || self.sleeping.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let mut sleepers = lock(&self.sleepers);
        if self.searching.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let Some(worker) = sleepers.pop() else {
            return false;
        };
        // Counted as searching before it even wakes: the next spawns wake no one else.
        self.searching.fetch_add(1, Ordering::SeqCst);
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        drop(sleepers);
        parkers[worker].unpark();
        true
    }

    /// Worker `worker` is about to park: registers it as sleeping (and no longer
    /// searching, if it was). The caller then looks at every queue once more before it
    /// really parks.
    pub(crate) fn register_sleeper(&self, worker: usize, was_searching: bool) {
        let mut sleepers = lock(&self.sleepers);
        sleepers.push(worker);
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        if was_searching {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        drop(sleepers);
        fence(Ordering::SeqCst);
    }

    /// Worker `worker` is awake again (it found work at the last look, or its park
    /// ended). Returns whether it is searching: a `notify_one` chose it, and counted it.
    pub(crate) fn unregister_sleeper(&self, worker: usize) -> bool {
        let mut sleepers = lock(&self.sleepers);
        match sleepers.iter().position(|&sleeper| sleeper == worker) {
            Some(at) => {
                sleepers.swap_remove(at);
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
                false
            }
            None => true,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// One worker going to sleep races one spawner: the worker must end up seeing
    /// the work, however the two interleave. A lost wake-up shows as a deadlock.
    #[test]
    fn loom_park_unpark_loses_no_wakeup() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(2));
            let parkers = Arc::new([Parker::new(), Parker::new()]);
            let work = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (idle, parkers, work) = (idle.clone(), parkers.clone(), work.clone());
                thread::spawn(move || loop {
                    if work.load(Ordering::SeqCst) != 0 {
                        return;
                    }
                    idle.register_sleeper(0, false);
                    if work.load(Ordering::SeqCst) != 0 {
                        idle.unregister_sleeper(0);
                        return;
                    }
                    parkers[0].park(None);
                    if idle.unregister_sleeper(0) {
                        idle.stop_searching();
                    }
                })
            };
            work.store(1, Ordering::SeqCst);
            idle.notify_one(&parkers[..]);
            worker.join().unwrap();
        });
    }

    /// Two spawners and one sleeper: each notify wakes at most one worker, and the
    /// counters come back to zero.
    #[test]
    fn loom_notify_wakes_one_and_counts_it_searching() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(2));
            let parkers = Arc::new([Parker::new(), Parker::new()]);
            idle.register_sleeper(1, false);
            let spawner = {
                let (idle, parkers) = (idle.clone(), parkers.clone());
                thread::spawn(move || idle.notify_one(&parkers[..]))
            };
            let here = idle.notify_one(&parkers[..]);
            let there = spawner.join().unwrap();
            assert!(here ^ there, "exactly one notify wakes the one sleeper");
            assert_eq!(idle.searching.load(Ordering::SeqCst), 1);
            assert_eq!(idle.sleeping.load(Ordering::SeqCst), 0);
        });
    }
}
