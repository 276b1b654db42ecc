//! A worker: one thread of the runtime, running tasks from its own queue, then from
//! the injector, then stolen from other workers, and parking when there is nothing.
//!
//! Step 7 introduces it. It is the one-thread executor's loop (take a task, poll it,
//! park when there is none), with three changes: the queue it takes from is its own
//! among several; when its own is empty it steals; and before parking it tells the
//! others (see `idle`), so that new work wakes it only when no one else can take it.
//!
//! Timers: the runtime has one timer queue, shared by all workers (every worker thread
//! makes it the current one for `time::sleep`). A worker fires the due timers before it
//! parks, every 61st turn, and when its park ends; it parks no longer than the next
//! deadline. One queue rather than one per worker, because a task migrates: a timer per
//! worker would fire only when its worker is awake, however idle the task's new worker.
//!
//! Sockets: the runtime has one reactor (see `driver`). The worker about to park
//! parks in it if no other worker does, and parks on its own parker otherwise; a busy
//! worker polls it every 61st turn, with the timers.
//!
//! Deadlocks: the worker about to park, once registered asleep, looks for one if every
//! other worker sleeps too (`look_for_deadlock`; the argument is in `diagnostics`).
//! While another worker is awake, the look costs one load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use super::blocking::BlockingPool;
use super::context;
use super::diagnostics::{all_stuck, describe_deadlock, Diagnostics};
use super::driver::Driver;
use super::idle::{Idle, Parker};
use super::injector::{Injector, MAX_SHARE};
use super::owned::Owned;
use super::padded::Padded;
use super::queue::LocalQueue;
use super::task::{lock, Ran, Runnable};
use crate::diagnostics::Diagnostic;
use crate::executor::schedule::Schedule;
use crate::executor::task::TaskHeader;
use crate::time::{self, Clock, TimerQueue};

/// How often a busy worker looks at the injector and the timers before its own queue.
const FAIRNESS_INTERVAL: u32 = 61;

/// How many times an idle worker yields its core, looking for work, before it parks.
const SPINS_BEFORE_PARK: u32 = 4;

/// How many times in a row a worker may take its LIFO slot before its queue's front.
const LIFO_STREAK: u32 = 3;

/// Where a task goes on its worker's queue.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// At the back: a spawn, or a task that yielded (woke itself while polled).
    Back,
    /// In the LIFO slot, to run next: a task woken by the task running now (a
    /// message sent, its receiver woken), while what it needs is in the cache.
    Next,
}

/// What the workers, the runtime and every task's scheduler share.
pub(crate) struct Shared {
    /// Each worker's queue, on cache lines of its own (see `padded`): its owner writes
    /// its tail at every push and pop.
    pub(crate) locals: Box<[Padded<LocalQueue>]>,
    /// Each worker's LIFO slot. Only its worker fills or empties it (behind a lock
    /// never contended), and no thief takes from it: a task there waits for its worker.
    pub(crate) lifo: Box<[Padded<Mutex<Option<Runnable>>>]>,
    pub(crate) parkers: Box<[Parker]>,
    pub(crate) injector: Injector,
    pub(crate) idle: Idle,
    pub(crate) owned: Owned,
    /// The roots of the `block_on` calls running now (their own futures, as tasks),
    /// for the deadlock check: a lock or a waker they hold is part of the picture.
    roots: Mutex<Vec<Runnable>>,
    pub(crate) timers: Arc<TimerQueue>,
    /// The reactor, driven by one parking worker at a time.
    pub(crate) driver: Driver,
    pub(crate) blocking: Arc<BlockingPool>,
    pub(crate) shutdown: AtomicBool,
    pub(crate) stats: Stats,
    pub(crate) diagnostics: Diagnostics,
}

/// Counters, all relaxed: read for reports, never for decisions.
pub(crate) struct Stats {
    pub(crate) steals: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) deadlock_checks: AtomicU64,
    pub(crate) polls: Box<[Padded<AtomicU64>]>,
}

impl Shared {
    pub(crate) fn new(
        workers: usize,
        blocking: Arc<BlockingPool>,
        driver: Driver,
        diagnostics: Diagnostics,
    ) -> Shared {
        Shared {
            locals: (0..workers)
                .map(|_| Padded::new(LocalQueue::new()))
                .collect(),
            lifo: (0..workers)
                .map(|_| Padded::new(Mutex::new(None)))
                .collect(),
            parkers: (0..workers)
                .map(|_| Parker::with_driver(driver.unparker()))
                .collect(),
            injector: Injector::new(),
            idle: Idle::new(workers),
            owned: Owned::new(),
            roots: Mutex::new(Vec::new()),
            timers: Arc::default(),
            driver,
            blocking,
            shutdown: AtomicBool::new(false),
            stats: Stats {
                steals: AtomicU64::new(0),
                parks: AtomicU64::new(0),
                deadlock_checks: AtomicU64::new(0),
                polls: (0..workers)
                    .map(|_| Padded::new(AtomicU64::new(0)))
                    .collect(),
            },
            diagnostics,
        }
    }

    /// Whether worker `worker` has a task to run: in its LIFO slot (filled when the
    /// timers it fires wake a task), or in any queue (a hint, read before parking).
    fn has_work(&self, worker: usize) -> bool {
        lock(&self.lifo[worker]).is_some()
            || !self.injector.is_empty()
            || self.locals.iter().any(|local| !local.is_empty())
    }

    /// Adds the root of a `block_on` starting; `remove_root` takes it out at its end.
    pub(crate) fn add_root(&self, root: Runnable) {
        lock(&self.roots).push(root);
    }

    pub(crate) fn remove_root(&self, root: &Runnable) {
        let mut roots = lock(&self.roots);
        let at = roots.iter().position(|other| other.id() == root.id());
        let removed = at.map(|at| roots.swap_remove(at));
        drop(roots);
        drop(removed); // with no lock held: it may be the root's last reference
    }

    /// Whether any task is queued anywhere: a LIFO slot, a worker's queue, the
    /// injector.
    fn any_queued(&self) -> bool {
        (0..self.locals.len()).any(|worker| self.has_work(worker))
    }

    /// Whether nothing but a task of this runtime can wake one: no timer pending, no
    /// socket registered with the reactor, no blocking job queued or running.
    fn nothing_else_can_wake(&self) -> bool {
        self.timers.is_empty() && self.driver.handle().registered() == 0 && self.blocking.is_quiet()
    }

    /// The deadlock check, by a worker about to park, itself registered asleep: if
    /// every other worker sleeps too, decides whether every pending task (and every
    /// `block_on`'s root) is stuck for good, and reports it if so (once a stuck spell).
    /// Returns whether the worker parks undecided: tasks are pending that something
    /// outside them may yet wake, or may not.
    ///
    /// Why the reads, one task after another, add up to a certain answer: no worker
    /// runs a task while they are made (`Idle::all_asleep` marks the same moment
    /// before and after them), so every change to a task comes from outside the
    /// workers, and each outside way to wake a task (a waker held elsewhere, a loose
    /// `JoinHandle`, a lock held by a plain thread) is a possible wake that makes the
    /// task's own reading say it may go on. The queues are looked at after the tasks,
    /// as on the executor: a wake sets `SCHEDULED` before it queues its task.
    fn look_for_deadlock(&self) -> bool {
        if !self.diagnostics.keeps_books {
            return false;
        }
        let Some(mark) = self.idle.all_asleep() else {
            return false; // a worker is awake: the last to park looks
        };
        let undecided = self.decide_deadlock(mark);
        // Counted only if every worker slept through the whole look: then it saw
        // whatever the tasks had done before (the count is for tests to wait on).
        if self.idle.all_asleep() == Some(mark) {
            self.stats.deadlock_checks.fetch_add(1, Ordering::Relaxed);
        }
        undecided
    }

    /// `look_for_deadlock` once every worker was seen asleep, at `mark`.
    fn decide_deadlock(&self, mark: u64) -> bool {
        if !self.nothing_else_can_wake() {
            return false; // a timer, a socket or a job may wake a task
        }
        self.diagnostics.about_to_read();
        let mut tasks = lock(&self.roots).clone();
        let roots = tasks.len();
        tasks.extend(self.owned.snapshot());
        if !all_stuck(&tasks) {
            return true;
        }
        let still = self.idle.all_asleep() == Some(mark);
        let root_woken = tasks[..roots].iter().any(|root| root.is_scheduled());
        if !still || self.any_queued() || root_woken || !self.nothing_else_can_wake() {
            return true; // something moved while the tasks were read: no claim
        }
        self.diagnostics.decided();
        self.diagnostics.report_deadlock(describe_deadlock(&tasks));
        false
    }

    /// Fires the due timers (their tasks are queued by their wakers).
    pub(crate) fn fire_timers(&self) {
        if !self.timers.is_empty() {
            self.timers.fire_due(
                Instant::now(),
                |_| {},
                |payload| {
                    let place = "the wake of a timer's waker";
                    self.diagnostics.caught_panic(place, payload);
                },
            );
        }
    }

    /// Queues `task`: on the current worker's own queue if called on one of this
    /// runtime's workers, on the injector otherwise; then wakes a worker if needed.
    pub(crate) fn push(&self, task: Runnable, placement: Placement) {
        self.push_from(context::worker_of(self), task, placement);
    }

    /// [`push`](Shared::push), from `worker` (this thread, if it is one of this
    /// runtime's workers).
    fn push_from(&self, worker: Option<usize>, task: Runnable, placement: Placement) {
        let refused = match worker {
            Some(worker) => {
                let task = match placement {
                    Placement::Next => match lock(&self.lifo[worker]).replace(task) {
                        // This worker runs it next: no other worker is needed.
                        None => return,
                        Some(displaced) => displaced,
                    },
                    Placement::Back => task,
                };
                // SAFETY: this thread is worker `worker` (the context says so), the
                // only thread that pushes to or pops from its queue.
                unsafe { self.locals[worker].push(task, &self.injector) }
            }
            None => self.injector.push(task).err().into_iter().collect(),
        };
        // Refused: the runtime is shutting down, and its drop shuts every pending
        // task down; this reference is just let go.
        drop(refused);
        self.idle.notify_one(&self.parkers);
    }
}

/// The runtime as its tasks' scheduler (see `executor::schedule`).
impl Schedule for Shared {
    /// A woken task goes to the waking worker's LIFO slot, to run next (the message
    /// it waited for is hot in this core's cache), or to the injector from outside.
    unsafe fn schedule(task: Runnable) {
        // SAFETY: the task's scheduler is a `Shared`, by this function's contract; the
        // task keeps it alive for the borrow.
        let shared: *const Shared = unsafe { task.scheduler::<Shared>() };
        // SAFETY: as above: `task` is still here.
        let worker = context::worker_of(unsafe { &*shared });
        if let Some(worker) = worker {
            // On one of this runtime's workers, which holds the runtime's `Shared`
            // for as long as it runs: alive for the push, whatever becomes of `task`.
            // SAFETY: as just said.
            unsafe { &*shared }.push_from(Some(worker), task, Placement::Next);
            return;
        }
        // From elsewhere, the push may let the task go (the runtime is shutting down,
        // and its queues refuse it), and with its last reference the runtime's
        // `Shared` may go too: a reference of our own to the task keeps both alive.
        let keep = task.clone();
        // SAFETY: `keep` keeps the task, so its scheduler, alive for the borrow.
        let shared = unsafe { keep.scheduler::<Shared>() };
        shared.push_from(None, task, Placement::Next);
    }

    fn report(&self, diagnostic: &Diagnostic) {
        self.diagnostics.report(diagnostic);
    }

    fn keeps_books(&self) -> bool {
        self.diagnostics.keeps_books
    }

    /// Waits are recorded from any worker; only the all-idle check reads them (see
    /// `look_for_deadlock`), never a poll's end.
    fn follows_waits(&self) -> bool {
        self.diagnostics.keeps_books
    }

    /// A waker or a handle went: if a worker parked undecided, one looks again.
    fn look_again_if_undecided(&self) {
        if self.diagnostics.should_look_again() {
            self.idle.notify_one(&self.parkers);
        }
    }

    /// The word read with the last waker's release said the task was pending, not
    /// queued, not being polled: reported here, on the thread that dropped the waker
    /// (see `diagnostics`). `check_lost` reads the word once more, so that a task
    /// aborted meanwhile (queued, or being polled for its end) is not reported.
    ///
    /// Not once the runtime shuts down: then every pending task is cancelled, none
    /// lost, and `shut_down` drops their futures outside any poll, which releases the
    /// wakers they kept (their own, or each other's) while the tasks look idle.
    fn suspect(&self, task: &TaskHeader) {
        if !self.shutdown.load(Ordering::Acquire) {
            task.check_lost();
        }
    }
}

/// One worker's loop and its own state.
struct Worker {
    shared: Arc<Shared>,
    index: usize,
    searching: bool,
    tick: u32,
    /// How many times in a row this worker took its LIFO slot.
    lifo_streak: u32,
    /// A xorshift state, to pick where stealing starts.
    random: u32,
    /// Tasks taken from the injector on their way to this worker's queue (kept, so
    /// that taking a share allocates nothing).
    share: Vec<Runnable>,
}

/// The body of worker thread `index`.
pub(crate) fn run(shared: Arc<Shared>, index: usize) {
    let _context = context::enter(shared.clone(), Some(index));
    let _timers = time::use_timers(Clock::Real, shared.timers.clone());
    let mut worker = Worker {
        shared,
        index,
        searching: false,
        tick: 0,
        lifo_streak: 0,
        random: 0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B) | 1,
        share: Vec::with_capacity(MAX_SHARE),
    };
    worker.run();
}

impl Worker {
    fn run(&mut self) {
        while !self.shared.shutdown.load(Ordering::Acquire) {
            if let Some(task) = self.next_task().or_else(|| self.steal()) {
                self.run_task(task);
            } else {
                self.park();
            }
        }
    }

    /// The next task from this worker's own queue, or the injector; every 61st turn
    /// the injector (and the timers and sockets) first, so that work from outside is
    /// not starved.
    fn next_task(&mut self) -> Option<Runnable> {
        self.tick = self.tick.wrapping_add(1);
        let shared = &self.shared;
        if self.tick.is_multiple_of(FAIRNESS_INTERVAL) {
            shared.fire_timers();
            shared.driver.poll_events();
            if let Some(task) = shared.injector.pop() {
                return Some(task);
            }
        }
        if self.lifo_streak < LIFO_STREAK {
            if let Some(task) = lock(&shared.lifo[self.index]).take() {
                self.lifo_streak += 1;
                return Some(task);
            }
        }
        self.lifo_streak = 0;
        // SAFETY: this thread is worker `self.index`, its queue's owner.
        let own = unsafe { shared.locals[self.index].pop() };
        own.or_else(|| lock(&shared.lifo[self.index]).take())
            .or_else(|| self.take_share_of_injector())
    }

    /// Its own queue empty, the worker takes a task from the injector, and its share of
    /// the rest into its own queue (where the other workers may steal them back).
    fn take_share_of_injector(&mut self) -> Option<Runnable> {
        let shared = &self.shared;
        let first = shared
            .injector
            .pop_share(shared.locals.len(), &mut self.share)?;
        for task in self.share.drain(..) {
            // SAFETY: this thread is worker `self.index`, its queue's owner. The queue
            // was empty, and a share fits in it; a task refused (the runtime shutting
            // down) is let go, as by `push`.
            drop(unsafe { shared.locals[self.index].push(task, &shared.injector) });
        }
        Some(first)
    }

    /// Steals half of another worker's queue, if this worker may search.
    fn steal(&mut self) -> Option<Runnable> {
        if !self.searching {
            if !self.shared.idle.try_start_searching() {
                return None;
            }
            self.searching = true;
        }
        let workers = self.shared.locals.len();
        let start = self.next_random() as usize % workers;
        for offset in 0..workers {
            let victim = (start + offset) % workers;
            if victim == self.index {
                continue;
            }
            let own = &self.shared.locals[self.index];
            // SAFETY: this thread is worker `self.index`, `own`'s owner, and the
            // victim is another worker's queue.
            let stolen = unsafe { self.shared.locals[victim].steal_half_into(own) };
            if let Some(task) = stolen {
                self.shared.stats.steals.fetch_add(1, Ordering::Relaxed);
                return Some(task);
            }
        }
        self.shared.injector.pop()
    }

    fn run_task(&mut self, task: Runnable) {
        if self.searching {
            self.searching = false;
            if self.shared.idle.stop_searching() {
                // The last searcher found work: there may be more, so wake another.
                self.shared.idle.notify_one(&self.shared.parkers);
            }
        }
        self.shared.stats.polls[self.index].fetch_add(1, Ordering::Relaxed);
        match self.shared.diagnostics.run_watched(self.index, &task) {
            Ran::Skipped | Ran::Pending { woken: false } => {}
            // Woken during its poll (it yielded, or another thread woke it): it goes
            // behind the others, with the reference the queue gave this worker.
            // (This thread is that worker: no need to ask the context which it is.)
            Ran::Pending { woken: true } => {
                let worker = Some(self.index);
                self.shared.push_from(worker, task, Placement::Back);
            }
            Ran::Finished => self.shared.owned.remove(task.id().runtime_number()),
        }
    }

    /// Nothing to do: registers as sleeping, looks once more, and parks until new work,
    /// the next timer, or (if it drives the reactor) a ready socket.
    fn park(&mut self) {
        let shared = &self.shared;
        shared.fire_timers();
        // A park and its unpark cost two system calls and two context switches; work
        // often comes within microseconds (a spawner feeding the injector), so first
        // give the core away a few times and look again.
        for _ in 0..SPINS_BEFORE_PARK {
            thread::yield_now();
            if shared.has_work(self.index) {
                return;
            }
        }
        shared.idle.register_sleeper(self.index, self.searching);
        self.searching = false;
        if shared.has_work(self.index) || shared.shutdown.load(Ordering::Acquire) {
            self.searching = shared.idle.unregister_sleeper(self.index);
            return;
        }
        let undecided = shared.look_for_deadlock();
        let deadline = shared.timers.next_deadline();
        shared.stats.parks.fetch_add(1, Ordering::Relaxed);
        let parker = &shared.parkers[self.index];
        if !shared.driver.park(parker, deadline) {
            // Another worker drives the reactor: this one sleeps on its own parker.
            parker
                .park(deadline.map(|deadline| deadline.saturating_duration_since(Instant::now())));
        }
        self.searching = shared.idle.unregister_sleeper(self.index);
        if undecided {
            shared.diagnostics.decided();
        }
        shared.fire_timers();
    }

    fn next_random(&mut self) -> u32 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.random = x;
        x
    }
}
