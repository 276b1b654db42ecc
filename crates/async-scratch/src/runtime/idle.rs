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
//!
//! The deadlock check (see `diagnostics`) asks one more thing of these books: whether
//! every worker sleeps, and whether any left its sleep while the check read the tasks
//! (`all_asleep`, from a count of departures kept under the sleepers' lock).
//!
//! A sleeping worker sleeps in one of two places: on its own [`Parker`], or in the
//! runtime's reactor if it holds the driver (see `driver`). Its parker knows which,
//! and wakes it there: the second loom model checks that a worker in the driver
//! misses no wake-up either.

use crate::park::Unpark;
#[cfg(loom)]
use loom::sync::{
    atomic::{fence, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{fence, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One worker's bed: `park` sleeps until `unpark` (or the timeout), and an `unpark`
/// that comes first is kept as a token, so it is never lost.
///
/// A worker parks in one of two places: on this parker's condition variable, or in
/// the runtime's reactor (`park_in_driver`, when it holds the driver). An `unpark`
/// must end either, so the state says which: a worker in the driver is woken through
/// the reactor's own unpark (its eventfd), which a condition variable cannot reach.
pub(crate) struct Parker {
    state: Mutex<ParkState>,
    condvar: Condvar,
    /// Ends a park in the driver: the reactor's unpark. `None` for a thread that never
    /// drives (a `block_on` thread).
    driver: Option<Arc<dyn Unpark>>,
}

/// A parker's state, changed only under its lock.
#[derive(Default)]
struct ParkState {
    /// An unpark came that no park has answered yet: the next park returns at once.
    notified: bool,
    /// The worker is in the driver (from just before its `epoll_wait` to just after):
    /// an unpark must go through the reactor.
    in_driver: bool,
}

impl Parker {
    /// A parker for a thread that never drives the reactor.
    pub(crate) fn new() -> Parker {
        Parker {
            state: Mutex::new(ParkState::default()),
            condvar: Condvar::new(),
            driver: None,
        }
    }

    /// A worker's parker: `driver` ends the worker's park when it is in the reactor.
    pub(crate) fn with_driver(driver: Arc<dyn Unpark>) -> Parker {
        Parker {
            driver: Some(driver),
            ..Parker::new()
        }
    }

    /// Sleeps until unparked or `timeout` passes; consumes the token. May return early
    /// (a spurious wake-up): the caller looks for work again either way.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        let mut state = lock(&self.state);
        if !state.notified {
            state = match timeout {
                None => self
                    .condvar
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(timeout) => {
                    self.condvar
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        state.notified = false;
    }

    /// Parks in the driver: `park_in_reactor` waits in the reactor, which an unpark
    /// of this parker now ends (through the reactor's unpark). Returns at once, with
    /// the token consumed, if an unpark came first.
    ///
    /// No lost wake-up: an unpark reads `in_driver` under the lock that this sets it
    /// under. Before: it leaves `notified`, seen here, and the reactor is not entered.
    /// After: it unparks the reactor, whose own token ends the wait even if it has
    /// not begun yet (see the reactor's `Wakeup`). An unpark that comes while the
    /// reactor is returning leaves the reactor a stale token: its next wait returns
    /// at once, spuriously, which a park may always do.
    pub(crate) fn park_in_driver(&self, park_in_reactor: impl FnOnce()) {
        {
            let mut state = lock(&self.state);
            if state.notified {
                state.notified = false;
                return;
            }
            state.in_driver = true;
        }
        park_in_reactor();
        let mut state = lock(&self.state);
        state.in_driver = false;
        // Answered: the worker is awake and looks for work.
        state.notified = false;
    }

    /// Wakes the parked worker, wherever it parks, or makes its next park return at
    /// once.
    pub(crate) fn unpark(&self) {
        let mut state = lock(&self.state);
        state.notified = true;
        let in_driver = state.in_driver;
        drop(state);
        match &self.driver {
            Some(driver) if in_driver => driver.unpark(),
            _ => self.condvar.notify_one(),
        }
    }
}

impl Unpark for Parker {
    fn unpark(&self) {
        Parker::unpark(self);
    }
}

/// The runtime's counts of searching and sleeping workers, and who sleeps.
pub(crate) struct Idle {
    sleepers: Mutex<Sleepers>,
    searching: AtomicUsize,
    sleeping: AtomicUsize,
    workers: usize,
}

/// Who sleeps, and how many times a sleeper has left the list.
struct Sleepers {
    workers: Vec<usize>,
    /// Counts every worker taken off the list (woken by `notify_one`, or back by
    /// itself): a worker runs tasks again only after that. Read by the deadlock check,
    /// to know that no worker woke while it looked (see `all_asleep`).
    departures: u64,
}

impl Sleepers {
    fn depart(&mut self, at: usize) -> usize {
        self.departures = self.departures.wrapping_add(1);
        self.workers.swap_remove(at)
    }
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            sleepers: Mutex::new(Sleepers {
                workers: Vec::with_capacity(workers),
                departures: 0,
            }),
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
        let Some(last) = sleepers.workers.len().checked_sub(1) else {
            return false;
        };
        let worker = sleepers.depart(last);
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
        sleepers.workers.push(worker);
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
        match sleepers
            .workers
            .iter()
            .position(|&sleeper| sleeper == worker)
        {
            Some(at) => {
                sleepers.depart(at);
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
                false
            }
            None => true,
        }
    }

    /// Whether every worker is registered asleep (the caller among them): if so, a
    /// mark of this moment, which stays the same until a worker leaves its sleep. Two
    /// equal marks say that no worker ran a task between them: a worker polls only
    /// once off the list, and its last poll before it registered happened before the
    /// registration, under this lock that both readings take.
    ///
    /// Cheap when some worker is awake: one load, no lock.
    pub(crate) fn all_asleep(&self) -> Option<u64> {
        if self.sleeping.load(Ordering::SeqCst) != self.workers {
            return None;
        }
        let sleepers = lock(&self.sleepers);
        (sleepers.workers.len() == self.workers).then_some(sleepers.departures)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A worker's loop, as far as sleeping goes: looks for work, registers as a
    /// sleeper, looks again, and parks with `park` until the work is there.
    fn sleep_until_work(idle: &Idle, work: &AtomicUsize, park: impl Fn()) {
        loop {
            if work.load(Ordering::SeqCst) != 0 {
                return;
            }
            idle.register_sleeper(0, false);
            if work.load(Ordering::SeqCst) != 0 {
                idle.unregister_sleeper(0);
                return;
            }
            park();
            if idle.unregister_sleeper(0) {
                idle.stop_searching();
            }
        }
    }

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
                thread::spawn(move || sleep_until_work(&idle, &work, || parkers[0].park(None)))
            };
            work.store(1, Ordering::SeqCst);
            idle.notify_one(&parkers[..]);
            worker.join().unwrap();
        });
    }

    /// The same race with the worker parked in the driver: its park ends only through
    /// the driver's own unpark (here a second parker stands for the reactor), so the
    /// spawner's notify must find the worker's `in_driver` and go that way. A notify
    /// sent to the condition variable instead shows as a deadlock.
    #[test]
    fn loom_a_worker_in_the_driver_loses_no_wakeup() {
        loom::model(|| {
            let reactor = std::sync::Arc::new(Parker::new());
            let driver: std::sync::Arc<dyn Unpark> = reactor.clone();
            let parkers = Arc::new([Parker::with_driver(driver), Parker::new()]);
            let idle = Arc::new(Idle::new(2));
            let work = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (idle, parkers, work) = (idle.clone(), parkers.clone(), work.clone());
                thread::spawn(move || {
                    sleep_until_work(&idle, &work, || {
                        parkers[0].park_in_driver(|| reactor.park(None));
                    });
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A stand-in for the reactor's unpark: counts the unparks that reach it.
    #[derive(Default)]
    struct CountingDriver {
        unparks: AtomicUsize,
    }

    impl Unpark for CountingDriver {
        fn unpark(&self) {
            self.unparks.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An unpark goes through the driver only while the worker is in it: before, it
    /// is a token that keeps the worker out of the reactor altogether.
    #[test]
    fn an_unpark_reaches_the_driver_only_while_the_worker_is_in_it() {
        let driver = Arc::new(CountingDriver::default());
        let parker = Parker::with_driver(driver.clone());

        parker.unpark();
        assert_eq!(
            driver.unparks.load(Ordering::SeqCst),
            0,
            "not in the driver"
        );
        parker.park_in_driver(|| panic!("the token should have ended the park first"));

        let mut entered = false;
        parker.park_in_driver(|| {
            entered = true;
            parker.unpark(); // as another thread's notify would, mid-park
        });
        assert!(entered);
        assert_eq!(driver.unparks.load(Ordering::SeqCst), 1, "in the driver");

        parker.unpark();
        assert_eq!(driver.unparks.load(Ordering::SeqCst), 1, "out of it again");
    }
}
