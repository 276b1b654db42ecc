//! The executor: runs many coroutines (futures) on one thread, polling each one only
//! when its waker says it can make progress.
//!
//! **Step 4** introduces it. Steps 1–3 got concurrency from threads: each waiting unit
//! held a whole thread. Here every unit is a *task*, a future the executor owns, and one
//! thread is enough for all of them: when a task has to wait it returns `Pending`, and
//! the thread moves on to the next task that is ready.
//!
//! # How it runs
//! ```text
//!  spawn ──► ready queue ──► poll ──► Ready: deliver the result to the JoinHandle
//!               ▲                └──► Pending: the task waits, untouched
//!               └── waker.wake() (any thread, a timer, another task)
//! ```
//! - **A task is one allocation**, a `TaskCell`: its header (id, name, spawn location,
//!   state word), the slot its result waits in, and its future, shared through
//!   `TaskRef`s (one pointer each, counted in the state word: see `task_ref`) by its
//!   wakers, its `JoinHandle`, the executor's list of tasks and, while it is queued,
//!   the ready queue. A task's waker is a `TaskRef` by another name, with one `static`
//!   vtable for every task (see `task_waker`).
//! - **The executor's list of tasks** is a slab (a `Vec` with a free list), indexed by
//!   [`TaskId`]: what diagnostics walk, and what the executor ends when it is dropped.
//!   Polling never looks in it.
//! - **The ready queue** holds the tasks to poll, themselves: a waker pushes its
//!   task's `TaskRef`, so running it needs no lookup. It is behind a `Mutex` because
//!   wakers may be called from any thread; the executor takes the whole queue at once
//!   and polls that batch, so each lock is paid once per batch, and a task woken while
//!   the batch runs (say, by `yield_now`) waits for the next batch: fair.
//! - **Many wakes, one poll.** Each task has a `SCHEDULED` bit in its state word (see
//!   `state`): the first wake sets it and queues the task, later wakes see it set and
//!   do nothing; the poll clears it as it starts, so a wake *during* the poll queues the
//!   task again. An abort is a wake that also sets `CANCELLED`, in the same atomic step.
//! - **When nothing is ready** the executor fires the timers that are due (reading the
//!   clock only when a timer is pending); if there are none, it waits until the earliest
//!   deadline (or, with a [`ManualClock`](crate::time::ManualClock), jumps the clock to
//!   it), or until a waker ends the wait. It waits through a [`Park`], a thread's
//!   park by default, or step 6's [`Reactor`](crate::reactor::Reactor), which waits
//!   on sockets and timers at once. A wake from the executor's own thread (a task
//!   waking another, a timer, a ready socket) goes on a local queue, with no lock and
//!   no unpark; one from another thread takes the shared queue and unparks.
//! - **A busy executor still hears its sockets**: every 61 busy turns it asks the park
//!   for the I/O events already waiting (`Park::poll_events`).
//!
//! Futures stay on the executor's thread, so they need not be `Send`; the thread-safe
//! part of a task (its header: id, state word, the way to its queue) is what its
//! wakers hold.
//!
//! # Where each part lives
//! One file per part, in reading order. Inside the folder the task is the hub: its
//! header points at its executor's shared queue, its waits and its waker, and each of
//! those points back at tasks. Across the crate the dependencies go one way: the
//! executor uses timers, diagnostics, the budget and the park seam, and none of those
//! uses the executor (timers, for one, are handed to `sleep` through `time`'s own
//! thread-local, set by `block_on`).
//!
//! | file | what it holds |
//! |---|---|
//! | `state.rs` | the task's state word: its bits, its transitions, their loom models |
//! | `task_ref.rs` | `TaskRef`: one pointer to a task, counted in its state word, and the task's vtable |
//! | `task_waker.rs` | the one `static` waker vtable of every task |
//! | `task.rs` | the task: its header, the one allocation with its future, a poll's bookkeeping |
//! | `schedule.rs` | the seam between a task and its scheduler: this executor, or step 7's runtime |
//! | `join_handle.rs` | [`JoinHandle`] and [`JoinError`]: how the outcome reaches whoever awaits it, through a slot with no lock |
//! | `waits.rs` | the wait graph: which task waits on which, wait cycles |
//! | `shared.rs` | what other threads reach: the ready queue, reports and suspects (mailboxes), the unparker |
//! | `watchdog.rs` | the stall watchdog |
//! | `slab.rs` | the executor's list of its tasks, for diagnostics and for its drop |
//! | `context.rs` | which executor runs on this thread |
//! | `mod.rs` | the run loop (`Core`), [`Executor`], its builder, the free functions |
//!
//! # Where user code runs, and what catches its panics
//! The executor calls code it did not write in a few places, and any of it may panic.
//! A panic is caught where the code runs, and goes to whoever waits for it; when nobody
//! does, it is reported ([`Diagnostic::CaughtPanic`]) and the executor carries on.
//! Nothing else is lost: no other task, no queued wake, no cleanup.
//!
//! | user code | where it runs | a panic goes to |
//! |---|---|---|
//! | a task's `poll` | the task's poll | its `JoinHandle`, as [`JoinError::Panicked`] |
//! | a task's future's `Drop` | right after its last poll, or on abort, or when the executor drops it | its `JoinHandle`, in place of the value or `Cancelled` |
//! | a panic payload's `Drop` | after its message is read | nowhere: caught, and its own payload dropped or, if that could panic too, leaked (see `unwind`) |
//! | an output's `Drop`, when the `JoinHandle` is gone | as the task ends, or as the handle is dropped | a report |
//! | the `wake` of the waker that awaits a `JoinHandle` | as the task ends | a report |
//! | the `wake` of a timer's waker | when timers fire | a report; the other due timers still fire |
//! | the [`Park`] (a custom one, or a reactor calling the wakers of ready sockets) | when the executor waits, or looks for I/O events | a report; a reactor still wakes the other ready sockets |
//! | `block_on`'s own future | its poll | the caller of `block_on`: it is the caller's code |
//! | the diagnostic reporter (`on_diagnostic`) | as a report is delivered, on the executor's thread or the watchdog's | standard error: one line, the last place left |
//!
//! So the executor's own loop never unwinds through a half-done step, and dropping an
//! executor always finishes its cleanup (watchdog, every task, timers), even while a
//! panic unwinds (where a second panic escaping a `Drop` would abort the process). As
//! a last line, the tasks of a batch not yet polled go back to the queue if a poll
//! ever unwinds.
//!
//! ```
//! use async_scratch::executor::{block_on, spawn, yield_now};
//!
//! let total = block_on(async {
//!     let tasks: Vec<_> = (1..=10).map(|n| spawn(async move {
//!         yield_now().await; // let the others run
//!         n * n
//!     })).collect();
//!     let mut total = 0;
//!     for task in tasks {
//!         total += task.await.unwrap();
//!     }
//!     total
//! });
//! assert_eq!(total, 385);
//! ```
//!
//! *From `Arc` to `TaskRef`:* until the task core was rebuilt, a task's reference count
//! was an `Arc`'s and the executor reached a task through `dyn` traits: fat pointers
//! everywhere, and two counts more in front of every task. Now, as in async-task and
//! tokio, references are counted in the state word itself and the type-dependent part
//! of a task (poll, end, free) is reached through a hand-written vtable in its header
//! (`task_ref`): 8 bytes a pointer instead of 16, at the price of raw-pointer
//! reference counting, confined to `task_ref`, `task` and `task_waker`.

mod context;
mod join_handle;
pub(crate) mod schedule;
mod shared;
mod slab;
mod state;
pub(crate) mod task;
pub(crate) mod task_ref;
mod task_waker;
mod wait_watch;
pub(crate) mod waits;
mod watchdog;

use crate::diagnostics::{print_to_stderr, Deadlock, Diagnostic, Reporter};
// Who a task is: defined with the diagnostics that name tasks, and part of the
// executor's API (`TaskInfo` is what `pending_task_info` returns).
pub use crate::diagnostics::{TaskId, TaskInfo};
use crate::observe::{Event, Observer};
use crate::park::{Park, ThreadPark};
use crate::stall_watch::{stop_watchdog, StallWatch};
use crate::time::{Clock, TimerQueue};
use context::{current, RunGuard};
pub use join_handle::{JoinError, JoinHandle};
use schedule::Schedule;
use shared::{Mailbox, Shared};
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};
pub(crate) use task::current_task;
use task::{allocate_root, new_task, Runnable, TaskHeader, ROOT};
use task_ref::{Ran, TaskRef};
use wait_watch::WaitWatch;
use waits::distinct_cycles;
use watchdog::start_watchdog;

/// A pending task's header, unless the task is being polled right now: a task being
/// polled is out of the executor's hands (and it is the one asking, when a task calls
/// [`Executor::pending_task_info`]).
fn idle_header(task: &Runnable) -> Option<&TaskHeader> {
    let header = task.header();
    (!header.is_running()).then_some(header)
}

/// Refuses a zero threshold for a watchdog, naming the builder method.
#[track_caller]
fn assert_positive(threshold: Duration, method: &str) {
    assert!(
        !threshold.is_zero(),
        "ExecutorBuilder::{method} needs a threshold above zero"
    );
}

/// `block_on`'s own future and every pending task not being polled, root first.
fn idle_headers<'a>(root: &'a TaskHeader, tasks: &'a Slab) -> Vec<&'a TaskHeader> {
    let pending = tasks.iter().filter_map(|(_, task)| idle_header(task));
    std::iter::once(root).chain(pending).collect()
}

/// The executor's state, on its own thread (hence `Rc` and `RefCell`).
struct Core {
    shared: Arc<Shared>,
    tasks: RefCell<Slab>,
    timers: Arc<TimerQueue>,
    clock: Clock,
    /// Set while `block_on` runs, to refuse a nested `block_on` on the same executor.
    running: Cell<bool>,
    /// The batch being polled, kept between turns to reuse its allocation.
    spare_batch: RefCell<Vec<Runnable>>,
    /// Tasks spawned, or woken from this thread, since the last batch: the local
    /// queue. Both happen on the executor's own thread, so they need neither the
    /// ready queue's lock nor an unpark (see `context::queue_here`).
    spawned: RefCell<Vec<Runnable>>,
    detect_deadlocks: bool,
    /// The stall watchdog's thread, stopped and joined when the executor is dropped.
    watchdog: Option<ThreadHandle<()>>,
    /// How the executor waits when nothing is ready: the seam where the reactor of
    /// step 6 plugs in.
    park: Box<dyn Park>,
    /// Turns in a row that polled something, since the park last looked for events.
    busy_turns: Cell<u32>,
    /// The wait watchdog, if on: what to say after a long undecided park.
    wait_watch: Option<WaitWatch>,
}

/// How to build an [`Executor`]; from [`Executor::builder`].
pub struct ExecutorBuilder {
    clock: Clock,
    stall_threshold: Option<Duration>,
    wait_threshold: Option<Duration>,
    detect_deadlocks: bool,
    diagnostics: bool,
    reporter: Reporter,
    park: Option<Box<dyn Park>>,
    observer: Option<Observer>,
}

impl fmt::Debug for ExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorBuilder")
            .field("clock", &self.clock)
            .field("stall_threshold", &self.stall_threshold)
            .field("wait_threshold", &self.wait_threshold)
            .field("detect_deadlocks", &self.detect_deadlocks)
            .field("diagnostics", &self.diagnostics)
            .field("custom_park", &self.park.is_some())
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive() // the reporter is a closure
    }
}

/// How many busy turns in a row the executor runs before it asks its park for the
/// I/O events already waiting (see `Core::busy_turn_done`). A turn polls every task
/// that was ready, so this bounds how long a socket's task waits behind busy ones,
/// at the cost of one non-blocking `epoll_wait` per this many turns. (tokio's
/// scheduler looks every 61 ticks; the same order of magnitude.)
const EVENT_INTERVAL: u32 = 61;

/// The stall threshold the tour uses, and a good start: far above any healthy poll
/// (microseconds), well below what a person notices as a hang.
pub const DEFAULT_STALL_THRESHOLD: Duration = Duration::from_millis(100);

impl ExecutorBuilder {
    /// The clock the executor's timers read (default: the real one).
    pub fn clock(mut self, clock: Clock) -> ExecutorBuilder {
        self.clock = clock;
        self
    }

    /// Turns on the stall watchdog: a poll holding the thread longer than `threshold`
    /// is reported with its task's name and spawn location, when it returns, or by a
    /// watchdog thread while it has not returned. Off by default: it costs a lock and
    /// a clock read per poll, and a thread.
    ///
    /// Time is read on the executor's [`clock`](ExecutorBuilder::clock): with a
    /// [`ManualClock`](crate::time::ManualClock), a poll holds the thread only for the
    /// time that the clock is advanced by during it. A test of the watchdog is then
    /// deterministic: healthy work is never reported, on however busy a machine (the
    /// clock jumps to a deadline only between polls), and a stall is a poll that
    /// advances the clock past the threshold. The watchdog thread still looks every
    /// quarter threshold of real time.
    ///
    /// # Panics
    /// If `threshold` is zero: every poll would be a stall, and the watchdog thread,
    /// looking every quarter of nothing, would spin on a core.
    #[track_caller]
    pub fn stall_watchdog(mut self, threshold: Duration) -> ExecutorBuilder {
        assert_positive(threshold, "stall_watchdog");
        self.stall_threshold = Some(threshold);
        self
    }

    /// Turns on the wait watchdog: when the executor has been parked for `threshold`
    /// with no task ready, no timer pending and no deadlock it can prove, it reports
    /// [`Diagnostic::NoWakeInSight`]: each pending task whose wait it cannot see into
    /// (a waker on another thread, a task of another executor, a lock held outside any
    /// task), and that it cannot tell whether a wake will come. Once for each quiet
    /// spell; a poll ends the spell. Off by default: a program that waits on another
    /// thread for longer than any threshold is healthy, and would be told otherwise.
    /// The tour turns it on, and so should a test that must not hang in silence.
    ///
    /// Time is real time, whatever the [`clock`](ExecutorBuilder::clock): what the
    /// executor waits for here is another thread, which a manual clock does not move.
    /// It needs deadlock detection on (the default), which decides what it can prove.
    ///
    /// ```
    /// use async_scratch::diagnostics::Diagnostic;
    /// use async_scratch::executor::Executor;
    /// use std::future::poll_fn;
    /// use std::sync::{mpsc, Arc, Mutex};
    /// use std::task::{Poll, Waker};
    /// use std::time::Duration;
    ///
    /// // A thread holds the task's waker, and wakes it only once the report is out.
    /// let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    /// let (go, go_rx) = mpsc::channel::<String>();
    /// let waker_thread = std::thread::spawn(move || {
    ///     let waker = waker_rx.recv().unwrap();
    ///     let report = go_rx.recv().unwrap();
    ///     waker.wake();
    ///     report
    /// });
    /// let executor = Executor::builder()
    ///     .wait_watchdog(Duration::from_millis(20))
    ///     .on_diagnostic(move |d: &Diagnostic| go.send(d.to_string()).unwrap())
    ///     .build();
    /// let mut first = true;
    /// executor.block_on(poll_fn(|cx| {
    ///     if std::mem::take(&mut first) {
    ///         waker_tx.send(cx.waker().clone()).unwrap();
    ///         return Poll::Pending;
    ///     }
    ///     Poll::Ready(())
    /// }));
    /// let report = waker_thread.join().unwrap();
    /// assert!(report.starts_with("no wake in sight"));
    /// assert!(report.contains("1 of its wakers is held where the executor cannot follow it"));
    /// ```
    #[track_caller]
    pub fn wait_watchdog(mut self, threshold: Duration) -> ExecutorBuilder {
        assert_positive(threshold, "wait_watchdog");
        self.wait_threshold = Some(threshold);
        self
    }

    /// Whether `block_on` detects deadlocks (default: yes). Without it, a deadlocked
    /// executor parks its thread forever, as other runtimes do.
    pub fn detect_deadlocks(mut self, on: bool) -> ExecutorBuilder {
        self.detect_deadlocks = on;
        self
    }

    /// Whether the executor keeps the books its diagnostics need (default: yes): it
    /// then reports lost tasks and wait cycles, and `block_on` detects deadlocks.
    /// Off, it keeps none of them: no wait records, no check of a task whose last
    /// waker went, no deadlock detection (a deadlocked executor parks forever, as
    /// other runtimes do). The stall watchdog is its own switch
    /// ([`stall_watchdog`](ExecutorBuilder::stall_watchdog)).
    ///
    /// What the books cost is in the README's benchmark section, measured both ways.
    ///
    /// ```
    /// use async_scratch::executor::Executor;
    ///
    /// let executor = Executor::builder().diagnostics(false).build();
    /// assert_eq!(executor.block_on(executor.spawn(async { 6 * 7 })), Ok(42));
    /// ```
    pub fn diagnostics(mut self, on: bool) -> ExecutorBuilder {
        self.diagnostics = on;
        self
    }

    /// Where diagnostics go (default: [`print_to_stderr`]).
    pub fn on_diagnostic(
        mut self,
        reporter: impl Fn(&Diagnostic) + Send + Sync + 'static,
    ) -> ExecutorBuilder {
        self.reporter = Arc::new(reporter);
        self
    }

    /// Tells `observer` of every spawn, poll, wake and park, as it happens (see
    /// [`observe`](crate::observe)). None by default; it costs nothing when off.
    pub fn observe(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> ExecutorBuilder {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// How the executor waits when nothing is ready (default: a [`ThreadPark`] of
    /// the thread that calls [`build`](ExecutorBuilder::build)).
    pub fn park(mut self, park: impl Park + 'static) -> ExecutorBuilder {
        self.park = Some(Box::new(park));
        self
    }

    /// The executor, to be run on the calling thread.
    ///
    /// # Panics
    /// If the stall watchdog is on and its thread cannot be started.
    pub fn build(self) -> Executor {
        // One slot: the executor polls on one thread.
        let watch = self
            .stall_threshold
            .map(|threshold| Arc::new(StallWatch::new(threshold, self.clock.clone(), 1)));
        let park = self.park.unwrap_or_else(|| Box::new(ThreadPark::current()));
        let shared = Arc::new(Shared {
            ready: Mailbox::new(),
            unparker: park.unparker(),
            reports: Mailbox::new(),
            suspects: Mailbox::new(),
            executor_gone: AtomicBool::new(false),
            reporter: self.reporter,
            watch,
            keeps_books: self.diagnostics,
            observer: self.observer,
            parked_undecided: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let watchdog = start_watchdog(&shared);
        let core = Core {
            shared,
            tasks: RefCell::new(Slab::default()),
            timers: Arc::new(TimerQueue::default()),
            clock: self.clock,
            running: Cell::new(false),
            spare_batch: RefCell::new(Vec::new()),
            spawned: RefCell::new(Vec::new()),
            detect_deadlocks: self.detect_deadlocks && self.diagnostics,
            watchdog,
            park,
            busy_turns: Cell::new(0),
            wait_watch: self.wait_threshold.map(WaitWatch::new),
        };
        Executor {
            core: Rc::new(core),
        }
    }
}

/// A single-threaded executor: tasks spawned on it run on the thread that calls
/// [`block_on`](Executor::block_on).
///
/// Dropping the executor drops every task still pending (their handles then report
/// [`JoinError::Cancelled`]).
///
/// It never leaves its thread, which is what lets its tasks be `!Send`; the compiler
/// holds it to that:
///
/// ```compile_fail
/// fn must_be_send<T: Send>() {}
/// must_be_send::<async_scratch::executor::Executor>();
/// ```
///
/// A task's handle may travel, when its output may:
///
/// ```
/// fn must_be_send<T: Send>() {}
/// must_be_send::<async_scratch::executor::JoinHandle<String>>();
/// must_be_send::<async_scratch::time::Sleep>();
/// ```
pub struct Executor {
    core: Rc<Core>,
}

impl Executor {
    /// An executor on the real clock, to be run on the calling thread.
    pub fn new() -> Executor {
        Executor::with_clock(Clock::Real)
    }

    /// An executor whose timers read `clock`.
    pub fn with_clock(clock: Clock) -> Executor {
        Executor::builder().clock(clock).build()
    }

    /// Options beyond the clock: the stall watchdog, deadlock detection, where
    /// diagnostics go.
    ///
    /// ```
    /// use async_scratch::diagnostics::Diagnostic;
    /// use async_scratch::executor::Executor;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let executor = Executor::builder()
    ///     .stall_watchdog(Duration::from_millis(20))
    ///     .on_diagnostic(move |d: &Diagnostic| sink.lock().unwrap().push(d.clone()))
    ///     .build();
    /// executor.block_on(executor.spawn_named("blocker", async {
    ///     std::thread::sleep(Duration::from_millis(50)); // blocks the executor's thread
    /// })).unwrap();
    /// assert!(matches!(seen.lock().unwrap()[0], Diagnostic::Stall { .. }));
    /// ```
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder {
            clock: Clock::Real,
            stall_threshold: None,
            wait_threshold: None,
            detect_deadlocks: true,
            diagnostics: true,
            observer: None,
            reporter: print_to_stderr(),
            park: None,
        }
    }

    /// Spawns `future` as a task of this executor. It starts running when the
    /// executor runs (inside [`block_on`](Executor::block_on)).
    ///
    /// Neither the future nor its output need be `Send`: the future never leaves this
    /// thread, and the output goes to the `JoinHandle`, which can leave it only when
    /// the output can (`JoinHandle<T>` is `Send` exactly when `T` is):
    ///
    /// ```
    /// use async_scratch::executor::Executor;
    /// use std::rc::Rc;
    ///
    /// let executor = Executor::new();
    /// let shared = executor.spawn(async { Rc::new("not Send") });
    /// assert_eq!(*executor.block_on(shared).unwrap(), "not Send");
    /// ```
    ///
    /// ```compile_fail
    /// fn must_be_send<T: Send>(_: T) {}
    /// let executor = async_scratch::executor::Executor::new();
    /// must_be_send(executor.spawn(async { std::rc::Rc::new(1) })); // its output is not
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.core.spawn(future, None, Location::caller())
    }

    /// Like [`spawn`](Executor::spawn), with a name that diagnostics will show.
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<String>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.core
            .spawn(future, Some(name.into().into()), Location::caller())
    }

    /// Runs `future` to completion on this thread, running the executor's tasks
    /// meanwhile, and returns its output. Tasks not finished by then stay pending, to
    /// run on the next `block_on`, or to be dropped with the executor.
    ///
    /// Inside it, [`spawn`], [`sleep`](crate::time::sleep) and the other free
    /// functions use this executor. A panic in `future` itself propagates; a panic in
    /// a spawned task goes to that task's `JoinHandle`.
    ///
    /// # Panics
    /// - On a deadlock (see [`try_block_on`](Executor::try_block_on)), with the
    ///   deadlock's report as the message: the alternative is to hang forever.
    /// - If called from inside one of this executor's own tasks: that would block the
    ///   one thread the tasks need.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self.try_block_on(future) {
            Ok(output) => output,
            Err(deadlock) => panic!("{deadlock}"),
        }
    }

    /// Like [`block_on`](Executor::block_on), but a deadlock is returned as an error
    /// instead of a panic.
    ///
    /// A deadlock is declared when no task is ready, no timer is pending, and no waker
    /// of `future` or of any pending task is held anywhere but in this executor's own
    /// primitives (an async [`Mutex`](crate::mutex::Mutex) queue, a `JoinHandle`): then
    /// nothing can ever wake anything. A waker held by another thread, a static, a pool
    /// `Task` or another crate's channel counts as a possible wake, so those waits are
    /// never taken for a deadlock, however long they last.
    ///
    /// ```
    /// use async_scratch::executor::Executor;
    /// use std::future::pending;
    ///
    /// let executor = Executor::new();
    /// let stuck = executor.spawn_named("waits forever", pending::<()>());
    /// let deadlock = executor.try_block_on(stuck).unwrap_err();
    /// assert!(deadlock.to_string().contains("task 'waits forever'"));
    /// ```
    #[track_caller]
    pub fn try_block_on<F: Future>(&self, future: F) -> Result<F::Output, Deadlock> {
        let _running = RunGuard::enter(&self.core);
        let mut future = pin!(future);
        let name = Some("block_on's future".into());
        let shared = &self.core.shared;
        let unparker = Arc::clone(&shared.unparker);
        let root = allocate_root(shared, ROOT, name, Location::caller(), unparker);
        let outcome = loop {
            if root.is_scheduled() {
                if let Poll::Ready(output) = self.core.poll_root(&root, future.as_mut()) {
                    break Ok(output);
                }
            }
            self.core.check_suspects(&root);
            self.core.shared.deliver_reports();
            self.core.fire_due_timers();
            let polled = self.core.run_ready_batch();
            if polled == 0 && !root.is_scheduled() {
                if let Err(deadlock) = self.core.wait_for_work(&root) {
                    break Err(deadlock);
                }
            } else {
                self.core.busy_turn_done();
            }
        };
        root.mark_finished();
        self.core.check_suspects(&root);
        self.core.shared.deliver_reports();
        outcome
    }

    /// The clock this executor's timers read.
    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }

    /// How many spawned tasks have not finished.
    pub fn pending_tasks(&self) -> usize {
        self.core.tasks.borrow().occupied
    }

    /// How many timers (sleeps, timeouts) are waiting on this executor.
    pub fn pending_timers(&self) -> usize {
        self.core.timers.len()
    }

    /// The id, name and spawn location of every task that has not finished, except the
    /// one calling this (a task being polled is out of the executor's hands).
    pub fn pending_task_info(&self) -> Vec<TaskInfo> {
        let tasks = self.core.tasks.borrow();
        tasks
            .iter()
            .filter_map(|(id, task)| {
                let header = idle_header(task)?;
                Some(TaskInfo {
                    id,
                    name: header.name().map(str::to_string),
                    spawned_at: header.spawned_at,
                })
            })
            .collect()
    }
}

impl Default for Executor {
    fn default() -> Self {
        Executor::new()
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("pending_tasks", &self.pending_tasks())
            .field("pending_timers", &self.core.timers.len())
            .field("clock", &self.core.clock)
            .field("running", &self.core.running.get())
            .finish()
    }
}

impl Core {
    fn spawn<F>(
        &self,
        future: F,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let mut tasks = self.tasks.borrow_mut();
        let id = tasks.next_id();
        // The one allocation of the task: header, outcome slot and future together.
        // SAFETY: the task is run and abandoned only by this executor, on its thread
        // (`Core` is not `Send`), where the future may be whatever its type.
        let (task, handle) = unsafe { new_task(&self.shared, id, name, spawned_at, future) };
        tasks.insert(task.clone());
        drop(tasks);
        let info = self.shared.observer.as_ref().map(|_| task.info());
        self.spawned.borrow_mut().push(task);
        // Told with no borrow held: the observer may spawn, too.
        if let Some(task) = info {
            self.shared.observe(|| Event::Spawned { task });
        }
        handle
    }

    /// Fires the timers that are due; the clock is read only when a timer is pending.
    fn fire_due_timers(&self) -> usize {
        if self.timers.is_empty() {
            return 0;
        }
        let due = |count| self.shared.observe(|| Event::TimersFired { count });
        self.timers.fire_due(self.clock.now(), due, |payload| {
            let place = "the wake of a timer's waker";
            self.shared.report_caught_panic(None, place, payload);
        })
    }

    /// Polls every task that was ready when the batch was taken; returns how many.
    fn run_ready_batch(&self) -> usize {
        // The spawned tasks first, then the woken ones. The `Vec` of spawned tasks
        // becomes the batch, with no copy, and last turn's empty one takes its place.
        // Reversed, so that taking from its end takes the tasks in queue order.
        let spare = self.spare_batch.take();
        let mut tasks = mem::replace(&mut *self.spawned.borrow_mut(), spare);
        self.shared.ready.append_to(&mut tasks);
        tasks.reverse();
        let mut batch = Batch { tasks, core: self };
        let mut polled = 0;
        while let Some(task) = batch.take_next() {
            polled += usize::from(self.poll_task(task));
        }
        polled
    }

    /// Polls one task, unless it is over already; says whether it did. No borrow of
    /// the slab is held during the poll: the task may spawn, and its wakers may run.
    fn poll_task(&self, task: Runnable) -> bool {
        match task.run() {
            Ran::Skipped => false,
            Ran::Pending { woken: false } => true,
            // Woken during its poll: queued again with the reference the batch held.
            Ran::Pending { woken: true } => {
                self.spawned.borrow_mut().push(task);
                true
            }
            Ran::Finished => {
                let entry = self.tasks.borrow_mut().remove(task.id);
                drop(entry); // with no borrow held: it may be the last reference
                true
            }
        }
    }

    /// Checks the tasks whose last waker went since the last turn (see `check_lost`).
    fn check_suspects(&self, root: &TaskHeader) {
        let suspects = self.shared.take_suspects();
        if suspects.is_empty() {
            return;
        }
        let tasks = self.tasks.borrow();
        for id in suspects {
            if id == ROOT {
                root.check_lost();
            } else if let Some(header) = tasks.get(id).and_then(idle_header) {
                header.check_lost();
            }
        }
    }

    /// A task was polled: any quiet spell of the wait watchdog is over.
    fn note_progress(&self) {
        if let Some(watch) = &self.wait_watch {
            watch.progress();
        }
    }

    /// Polls `block_on`'s own future once.
    fn poll_root<F: Future>(&self, root: &TaskRef, future: Pin<&mut F>) -> Poll<F::Output> {
        self.note_progress();
        task::poll_root(root, &*self.shared, future)
    }

    /// Waits until something may be ready: parks the thread, or jumps a manual clock.
    /// Returns the deadlock instead, when nothing can ever be ready again.
    fn wait_for_work(&self, root: &TaskHeader) -> Result<(), Deadlock> {
        if !self.spawned.borrow().is_empty() || !self.shared.ready.is_empty() {
            return Ok(());
        }
        match (self.timers.next_deadline(), &self.clock) {
            // Nothing is due ever: only a waker can help, if any is left anywhere.
            (None, _) => {
                // Set before the counts are read (see `Shared::parked_undecided`).
                let undecided = &self.shared.parked_undecided;
                undecided.store(self.detect_deadlocks, Ordering::SeqCst);
                if let Some(deadlock) = self.find_deadlock(root) {
                    undecided.store(false, Ordering::Relaxed);
                    return Err(deadlock);
                }
                self.park_undecided(root);
                undecided.store(false, Ordering::Relaxed);
            }
            // Nothing can happen before the deadline, so let time pass at once.
            (Some(deadline), Clock::Manual(clock)) => clock.advance_to(deadline),
            (Some(deadline), Clock::Real) => self.park_until(Some(deadline)),
        }
        // Parking may end early (a wake, or spuriously): the caller looks again.
        Ok(())
    }

    /// Parks with no timer pending and no deadlock proven: until a wake, or, with the
    /// wait watchdog on, until it is time to say what the executor cannot see.
    fn park_undecided(&self, root: &TaskHeader) {
        let Some(watch) = self.wait_watch.as_ref().filter(|_| self.detect_deadlocks) else {
            return self.park_until(None);
        };
        self.park_until(watch.park_deadline(Instant::now()));
        if let Some(waited) = watch.overdue(Instant::now()) {
            let tasks = {
                let tasks = self.tasks.borrow();
                let headers = idle_headers(root, &tasks);
                headers.into_iter().filter_map(TaskHeader::unseen).collect()
            }; // no borrow held while the reporter, user code, runs
            let report = Diagnostic::NoWakeInSight { waited, tasks };
            self.shared.report(&report);
        }
    }

    /// Parks until `deadline` (or a wake), telling the observer.
    fn park_until(&self, deadline: Option<Instant>) {
        self.shared.observe(|| Event::Parking { deadline });
        self.run_park(|park| park.park(deadline));
        self.shared.observe(|| Event::Unparked);
    }

    /// Counts a turn that polled something. A busy executor never parks, and parking is
    /// where a reactor delivers I/O events; so every [`EVENT_INTERVAL`] busy turns it
    /// asks the park for the events already waiting, and the tasks waiting on sockets
    /// get their turn even while others are always ready.
    fn busy_turn_done(&self) {
        self.note_progress();
        let turns = self.busy_turns.get() + 1;
        if turns < EVENT_INTERVAL {
            self.busy_turns.set(turns);
            return;
        }
        self.busy_turns.set(0);
        self.run_park(|park| park.poll_events());
    }

    /// Runs a call into the park: code the executor did not write (a custom `Park`,
    /// and the wakers a reactor calls), so a panic there is caught and reported, and
    /// the executor carries on, as for a timer's waker.
    fn run_park(&self, call: impl FnOnce(&dyn Park)) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| call(&*self.park))) {
            let place = "the executor's park (a custom Park, or a waker it woke)";
            self.shared.report_caught_panic(None, place, payload);
        }
    }

    /// The deadlock, if nothing can ever wake any pending task or `root`.
    fn find_deadlock(&self, root: &TaskHeader) -> Option<Deadlock> {
        if !self.detect_deadlocks {
            return None;
        }
        let tasks = self.tasks.borrow();
        let headers = idle_headers(root, &tasks);
        // A woken task will be polled, whether it is in a queue yet or not: a wake by a
        // consumed waker sets `SCHEDULED` in the same step that takes the waker's count
        // down, so a count read as down comes with `SCHEDULED` read as set, when both
        // come from one reading of the word (`may_go_on` reads it once).
        if headers.iter().any(|header| header.may_go_on()) {
            return None;
        }
        // The queues are looked at *after* the counts: a wake in flight sets
        // `SCHEDULED` before it queues its task, so if the count we read is already
        // down, the task is already in a queue we are about to read, or `SCHEDULED`.
        let queued = !self.spawned.borrow().is_empty() || !self.shared.ready.is_empty();
        if queued || !self.timers.is_empty() || root.is_scheduled() {
            return None;
        }
        Some(Deadlock {
            tasks: headers.iter().map(|header| header.stuck()).collect(),
            cycles: distinct_cycles(&headers),
        })
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // The watchdog first: stopping it runs no user code, so nothing can skip it.
        if let (Some(watchdog), Some(watch)) = (self.watchdog.take(), &self.shared.watch) {
            stop_watchdog(watch, watchdog);
        }
        // Taken out first, then ended: a future's `Drop` may touch the timers or wake
        // other tasks, and must find no borrow held. Every task is marked finished
        // before any is ended, so wakers dropped along the way report no lost task,
        // and no wake queues a task again. Ending a task drops its future inside
        // `catch_unwind` (see `TaskCell::end`), so a panicking `Drop` stops
        // neither this loop nor, during an unwinding, the process.
        let tasks = self.tasks.get_mut().take_all();
        for task in &tasks {
            task.header().mark_finished();
        }
        for task in &tasks {
            task.abandon();
        }
        // The queues hold references to tasks, and each task one to `Shared`, where the
        // ready queue is: emptied here, or that cycle would keep them all alive. Closed
        // first, so that a wake racing this drop empties it again (see `push_ready`).
        self.shared.closed.store(true, Ordering::SeqCst);
        drop(self.shared.ready.drain());
        self.spawned.get_mut().clear();
        self.spare_batch.get_mut().clear();
        drop(tasks);
        // A timer's waker is user code too: its `Drop` may panic.
        self.timers.clear(|payload| {
            let place = "the drop of a timer's waker";
            self.shared.report_caught_panic(None, place, payload);
        });
        self.shared.executor_gone.store(true, Ordering::Release);
        self.shared.deliver_reports(); // what the drops above found
    }
}

/// The ready tasks being polled in one turn. Every panic in user code is caught inside
/// a poll, so none should leave `poll_task`; if one ever did, the tasks not yet polled
/// go back to the queue rather than being lost with their `scheduled` flag still set
/// (which would keep every later wake from queueing them).
struct Batch<'a> {
    /// In reverse queue order: the next task is the last.
    tasks: Vec<Runnable>,
    core: &'a Core,
}

impl Batch<'_> {
    fn take_next(&mut self) -> Option<Runnable> {
        self.tasks.pop()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        // What is left (nothing, unless a poll unwound) goes back to the queue, in
        // queue order again.
        let mut tasks = mem::take(&mut self.tasks);
        tasks.reverse();
        if let Ok(mut spawned) = self.core.spawned.try_borrow_mut() {
            spawned.append(&mut tasks);
        }
        if let Ok(mut spare) = self.core.spare_batch.try_borrow_mut() {
            *spare = tasks; // empty now; its allocation serves the next turn
        }
    }
}

/// Runs `future` to completion on a new executor on this thread, with its tasks.
///
/// The same as `Executor::new().block_on(future)`: tasks still pending when `future`
/// completes are dropped with the executor. A report about `future` names the line
/// that called this (`#[track_caller]`), not a line inside the library.
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    Executor::new().block_on(future)
}

/// Spawns `future` on the executor running the current task.
///
/// # Panics
/// Outside an executor (not inside any `block_on`): there is nothing to run the task.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_on_current(future, None)
}

/// Like [`spawn`], with a name that diagnostics will show.
///
/// # Panics
/// Outside an executor.
#[track_caller]
pub fn spawn_named<F>(name: impl Into<String>, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_on_current(future, Some(name.into().into()))
}

#[track_caller]
fn spawn_on_current<F>(future: F, name: Option<Box<str>>) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let Some(core) = current() else {
        panic!("`spawn` was called outside an executor; call it inside `block_on`")
    };
    core.spawn(future, name, Location::caller())
}

/// Lets every other ready task run before this one continues.
///
/// ```
/// use async_scratch::executor::{block_on, spawn, yield_now};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let order = Rc::new(RefCell::new(Vec::new()));
/// block_on({
///     let order = order.clone();
///     async move {
///         let other = spawn({
///             let order = order.clone();
///             async move { order.borrow_mut().push("other task") }
///         });
///         yield_now().await; // the spawned task runs here
///         order.borrow_mut().push("after yield");
///         other.await.unwrap();
///     }
/// });
/// assert_eq!(*order.borrow(), ["other task", "after yield"]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "yield_now does nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    // Inlined into the `async` block that awaits it, in whatever crate that is: a call
    // would cost about what the rest of the poll does.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref(); // back of the queue: everyone ready now goes first
        Poll::Pending
    }
}
