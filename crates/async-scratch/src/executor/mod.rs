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
//!   state word), the slot its result waits in, and its future, shared through an
//!   `Arc` by its wakers, its `JoinHandle`, the executor's list of tasks and, while it
//!   is queued, the ready queue. A task's waker points at its header, with one
//!   `static` vtable for every task (see `task_waker`).
//! - **The executor's list of tasks** is a slab (a `Vec` with a free list), indexed by
//!   [`TaskId`]: what diagnostics walk, and what the executor ends when it is dropped.
//!   Polling never looks in it.
//! - **The ready queue** holds the tasks to poll, themselves: a waker pushes its
//!   task's `Arc`, so running it needs no lookup. It is behind a `Mutex` because
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
//!   it), or until a waker ends the wait. It waits through a [`Park`],
//!   a thread's park by default: the seam where step 6's reactor will wait on sockets.
//!
//! Futures stay on the executor's thread, so they need not be `Send`; the thread-safe
//! part of a task (its id, its flag and the queue) is what its wakers hold.
//!
//! # Where user code runs, and what catches its panics
//! The executor calls code it did not write in a few places, and any of it may panic.
//! A panic is caught where the code runs, and goes to whoever waits for it; when nobody
//! does, it is reported ([`Diagnostic::CaughtPanic`]) and the executor carries on.
//! Nothing else is lost: no other task, no queued wake, no cleanup.
//!
//! | user code | where it runs | a panic goes to |
//! |---|---|---|
//! | a task's `poll` | the task's poll | its `JoinHandle`, as [`JoinError::Panicked`](crate::join::JoinError::Panicked) |
//! | a task's future's `Drop` | right after its last poll, or on abort, or when the executor drops it | its `JoinHandle`, in place of the value or `Cancelled` |
//! | a panic payload's `Drop` | after its message is read | nowhere: caught, and its own payload dropped or, if that could panic too, leaked (see `unwind`) |
//! | an output's `Drop`, when the `JoinHandle` is gone | as the task ends, or as the handle is dropped | a report |
//! | the `wake` of the waker that awaits a `JoinHandle` | as the task ends | a report |
//! | the `wake` of a timer's waker | when timers fire | a report; the other due timers still fire |
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
//! *Teaching shortcut:* the task's reference count is an `Arc`'s, and the executor
//! reaches a task through `dyn` traits (`RunTask`, `TaskHandle`). async-task and tokio
//! count references in the state word itself and dispatch through a hand-written
//! vtable: a few bytes and an indirection less, at the price of raw-pointer reference
//! counting. Here the raw pointers are confined to the waker (`task_waker`).

mod state;
mod task_waker;

use crate::coop;
use crate::diagnostics::{print_to_stderr, Deadlock, Diagnostic, Reporter, StuckTask};
use crate::join::{JoinHandle, TaskCell};
use crate::locking::lock;
use crate::park::{Park, ThreadPark, Unpark};
use crate::time::{Clock, TimerQueue};
use crate::unwind::{into_message, Payload};
use state::State;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle as ThreadHandle};
use std::time::{Duration, Instant};
use task_waker::is_waker_of;
pub(crate) use task_waker::{cancel_task, task_waker_ref, StartsWithHeader, TaskRefs};

/// Names a task in its executor: a slab index, and the generation of that slot, so a
/// stale id (a wake after the task ended and its slot was reused) matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    index: u32,
    generation: u32,
}

impl TaskId {
    /// The task's slot in its executor (small numbers, reused after a task ends).
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// The id of `block_on`'s own future, which is not in the slab.
const ROOT: TaskId = TaskId {
    index: u32::MAX,
    generation: 0,
};

/// The thread-safe half of a task, which its wakers and its `JoinHandle` reach (it is
/// the head of the task's [`TaskCell`]): who the task is, and how to queue it.
pub(crate) struct TaskHeader {
    id: TaskId,
    /// Queued, being polled, complete, cancelled, and how many owning wakers are alive
    /// anywhere (the waker vtable counts them; borrowed wakers, used for polls, are not
    /// counted): one atomic word, see `state`.
    state: State,
    /// How many of those are held by our own primitives for a wait the executor knows
    /// (a `JoinHandle`, the async `Mutex`). The rest are held "outside".
    internal_waits: AtomicU32,
    /// What the task waits for, when it is one of those known waits: one record per
    /// registration, the latest last, since a task may wait on several things at once
    /// (`join(handle, lock.lock())`), and one wait ending must not erase another.
    waits_on: Mutex<Vec<WaitRecord>>,
    shared: Arc<Shared>,
    /// How the task's wakers count references to the allocation this header starts.
    refs: &'static TaskRefs,
    /// `Box<str>`, not `String`: a name never grows, and 8 bytes a task add up.
    name: Option<Box<str>>,
    spawned_at: &'static Location<'static>,
}

impl TaskHeader {
    /// The header of a task held in an `Arc` whose value starts with this header;
    /// `refs` must be made for that value's type (see `StartsWithHeader`).
    fn new(
        id: TaskId,
        shared: &Arc<Shared>,
        refs: &'static TaskRefs,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> TaskHeader {
        TaskHeader {
            id,
            state: State::new_scheduled(), // a new task is queued at once
            internal_waits: AtomicU32::new(0),
            waits_on: Mutex::new(Vec::new()),
            shared: Arc::clone(shared),
            refs,
            name,
            spawned_at,
        }
    }

    pub(crate) fn info(&self) -> TaskInfo {
        TaskInfo {
            id: self.id,
            name: self.name.as_deref().map(str::to_string),
            spawned_at: self.spawned_at,
        }
    }

    /// Wakers of this task held anywhere but in our own primitives' known waits.
    fn outside_wakers(&self) -> u32 {
        let live = u32::try_from(self.state.load().wakers()).unwrap_or(u32::MAX);
        live.saturating_sub(self.internal_waits.load(Ordering::Acquire))
    }

    fn lock_waits_on(&self) -> MutexGuard<'_, Vec<WaitRecord>> {
        lock(&self.waits_on)
    }

    /// The task and what it waits for, in words.
    fn stuck(&self) -> StuckTask {
        let waits = self.lock_waits_on();
        let described: Vec<String> = waits.iter().map(|wait| wait.target.describe()).collect();
        StuckTask {
            task: self.info(),
            waits_for: (!described.is_empty()).then(|| described.join("; and ")),
        }
    }

    /// Whether this task waits on something that can end without any task of this
    /// executor running: a task of another executor, or a lock held outside this
    /// executor's tasks (by a plain thread, or a task of another executor). Such a
    /// wait is never part of a certain deadlock: the executor cannot see the other
    /// side, so it says nothing rather than cry wolf.
    fn waits_beyond_this_executor(&self) -> bool {
        let waits = self.lock_waits_on();
        waits.iter().any(|wait| match wait.target.task() {
            Some(task) => !Arc::ptr_eq(&task.header().shared, &self.shared),
            None => true, // a lock held outside any task
        })
    }

    /// The task this one waits for, through its latest known wait (the one a wait
    /// cycle is followed through).
    fn waits_for_task(&self) -> Option<Arc<dyn TaskHandle>> {
        self.lock_waits_on()
            .last()
            .and_then(|wait| wait.target.task())
    }

    pub(crate) fn waker_created(&self) {
        self.state.waker_created();
    }

    pub(crate) fn waker_released(&self) {
        // The last waker went, perhaps on another thread, perhaps while the task is
        // being polled (and about to make a new one). Only the executor's thread,
        // between polls, can tell: it checks this task at its next turn. Unless the task
        // is queued: then it will be polled, and every poll that returns `Pending` is
        // checked (see `polled`). That is the common case, a wake by value consuming the
        // last waker, and it costs no lock and no queue push: the count and the
        // `SCHEDULED` bit are read in the same atomic step that drops the count.
        if self.state.waker_released().looks_lost() && self.shared.keeps_books {
            self.shared.suspect(self.id);
        }
    }

    /// Reports the task as lost if it is pending and no waker for it is left anywhere.
    /// Runs on the executor's thread, between polls, so no poll can make a new waker
    /// meanwhile. The count and the flags are one word, read at once: a wake in flight
    /// queues its task before it releases its waker, so a count of 0 read with the
    /// flags shows any wake that happened. (Checked from any thread, this raced with
    /// polls: Miri found a false report that way.)
    fn check_lost(&self) {
        if !self.state.load().looks_lost() {
            return;
        }
        if self.state.mark_lost_reported() {
            self.shared
                .report_later(Diagnostic::LostTask { task: self.info() });
        }
    }

    /// Runs `user_code` for this task where nobody waits to be handed its panic (see
    /// the module doc's rule on where user code runs): a panic is caught and reported.
    pub(crate) fn catch_reported(&self, place: &'static str, user_code: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(user_code)) {
            self.shared
                .report_caught_panic(Some(self.info()), place, payload);
        }
    }

    pub(crate) fn mark_finished(&self) {
        self.state.complete();
    }

    fn is_scheduled(&self) -> bool {
        self.state.load().is_scheduled()
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.state.load().is_complete()
    }

    /// Whether the task is being polled right now (on its executor's thread).
    fn is_running(&self) -> bool {
        self.state.load().is_running()
    }
}

/// A spawned task as its executor holds it, whatever its future and output: something
/// to poll, and to end when the executor goes.
///
/// Both methods run only on the task's executor's thread: the task's future, which
/// need not be `Send`, is touched there alone (see `join::TaskCell`).
pub(crate) trait RunTask: TaskHandle {
    /// Polls the task's future once, with the task's own waker; `None` if the task is
    /// over already (a wake during its last poll queued it once more).
    fn run(self: Arc<Self>) -> Option<Poll<()>>;

    /// Ends a task whose executor is being dropped: drops its future, and tells its
    /// handle it was cancelled.
    fn abandon(&self);
}

/// A task on the ready queue: the task itself, one reference to it, so that running
/// it needs no lookup. It may be pushed from any thread, by a waker.
pub(crate) type Runnable = Arc<dyn RunTask>;

/// A task as other tasks and primitives may hold it (in a wait record), whatever its
/// output type: a `TaskCell<T>`, or `block_on`'s bare header.
pub(crate) trait TaskHandle: Send + Sync {
    fn header(&self) -> &TaskHeader;

    /// Whether `waker` is this task's own waker (not, say, a `join_all` child's).
    fn is_own_waker(&self, waker: &Waker) -> bool {
        is_waker_of(waker, self.header())
    }
}

/// `block_on`'s own future has a header and nothing else: its waker is made from that.
impl TaskHandle for TaskHeader {
    fn header(&self) -> &TaskHeader {
        self
    }
}

/// What a task waits for, when it waits on one of our own primitives.
pub(crate) enum WaitTarget {
    /// The outcome of another task (awaiting its `JoinHandle`).
    Task(Arc<dyn TaskHandle>),
    /// An async mutex, and through it whoever holds it.
    Lock(Arc<LockRecord>),
}

/// What the executor may know of an async mutex: its name, and which task holds it.
pub(crate) struct LockRecord {
    pub(crate) name: Option<Box<str>>,
    pub(crate) holder: Mutex<Option<Arc<dyn TaskHandle>>>,
}

impl LockRecord {
    fn holder(&self) -> Option<Arc<dyn TaskHandle>> {
        lock(&self.holder).clone()
    }
}

impl WaitTarget {
    fn task(&self) -> Option<Arc<dyn TaskHandle>> {
        match self {
            WaitTarget::Task(task) => Some(Arc::clone(task)),
            WaitTarget::Lock(lock) => lock.holder(),
        }
    }

    fn describe(&self) -> String {
        match self {
            WaitTarget::Task(task) => format!("awaits the result of {}", task.header().info()),
            WaitTarget::Lock(lock) => {
                let name = lock
                    .name
                    .as_deref()
                    .map_or("a mutex".to_string(), |n| format!("mutex '{n}'"));
                match lock.holder() {
                    Some(holder) => format!("waits for {name}, held by {}", holder.header().info()),
                    None => format!("waits for {name}, held outside any task"),
                }
            }
        }
    }
}

/// One known wait of a task, in its header.
struct WaitRecord {
    /// Which registration made it, so that it alone is withdrawn.
    registration: u64,
    target: WaitTarget,
}

/// A known wait, registered while a task's waker sits in one of our primitives:
/// the task's wait record is there while it lives, and withdrawn when it is dropped.
pub(crate) struct WaitRegistration {
    task: Arc<dyn TaskHandle>,
    number: u64,
}

/// Registers that the current task waits on `target`, if `waker` is its own waker (a
/// wait behind another waker, such as a `join_all` child's, stays unknown: an "outside"
/// waker, so never taken for a deadlock). Reports a wait cycle if this closes one.
pub(crate) fn register_wait(waker: &Waker, target: WaitTarget) -> Option<WaitRegistration> {
    let task = current_task()?;
    if !task.is_own_waker(waker) || !task.header().shared.keeps_books {
        return None;
    }
    /// Numbers the registrations: unique, so a record names the one that made it.
    static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(0);
    let number = NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed);
    let header = task.header();
    header.internal_waits.fetch_add(1, Ordering::AcqRel);
    header.lock_waits_on().push(WaitRecord {
        registration: number,
        target,
    });
    if let Some(cycle) = wait_cycle_through(header) {
        header.shared.report_later(Diagnostic::WaitCycle { cycle });
    }
    Some(WaitRegistration { task, number })
}

impl Drop for WaitRegistration {
    fn drop(&mut self) {
        let header = self.task.header();
        // Taken out under the lock, dropped after it: a record holds `Arc`s of tasks.
        let withdrawn = {
            let mut waits = header.lock_waits_on();
            let mine = waits
                .iter()
                .position(|wait| wait.registration == self.number);
            mine.map(|index| waits.remove(index))
        };
        drop(withdrawn);
        header.internal_waits.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Follows "waits for" from `start`; if the chain comes back to it, returns the cycle.
/// The walk stops at the first task seen twice, so a cycle elsewhere on the chain (one
/// that `start` waits on but is not part of) ends it too; tasks are described only once
/// a cycle through `start` is found.
fn wait_cycle_through(start: &TaskHeader) -> Option<Vec<StuckTask>> {
    let mut chain: Vec<Arc<dyn TaskHandle>> = Vec::new();
    let mut next = start.waits_for_task();
    while let Some(task) = next {
        let header = task.header();
        if std::ptr::eq(header, start) {
            let rest = chain.iter().map(|task| task.header().stuck());
            return Some(std::iter::once(start.stuck()).chain(rest).collect());
        }
        if chain.iter().any(|seen| std::ptr::eq(seen.header(), header)) {
            return None; // a cycle, but not through `start`
        }
        next = header.waits_for_task();
        chain.push(task);
    }
    None
}

thread_local! {
    /// The task being polled on this thread, as a raw pointer: set for the length of
    /// each poll, where the poller holds an `Arc` to the task (see `CurrentTask`).
    static CURRENT_TASK: Cell<Option<*const dyn TaskHandle>> = const { Cell::new(None) };
}

/// Marks a task as the one being polled on this thread, until dropped. It borrows the
/// task's `Arc` for its whole life, so the task outlives the mark.
pub(crate) struct CurrentTask<'a> {
    previous: Option<*const dyn TaskHandle>,
    _task: std::marker::PhantomData<&'a ()>,
}

impl<'a> CurrentTask<'a> {
    pub(crate) fn enter<T: TaskHandle + 'static>(task: &'a Arc<T>) -> CurrentTask<'a> {
        let concrete: *const T = Arc::as_ptr(task);
        let pointer: *const dyn TaskHandle = concrete;
        let previous = CURRENT_TASK.with(|current| current.replace(Some(pointer)));
        CurrentTask {
            previous,
            _task: std::marker::PhantomData,
        }
    }
}

impl Drop for CurrentTask<'_> {
    fn drop(&mut self) {
        let _ = CURRENT_TASK.try_with(|current| current.set(self.previous));
    }
}

/// The task being polled on this thread, if any.
pub(crate) fn current_task() -> Option<Arc<dyn TaskHandle>> {
    let pointer = CURRENT_TASK.try_with(Cell::get).ok().flatten()?;
    // SAFETY: `CURRENT_TASK` holds a pointer only while a `CurrentTask` guard lives,
    // and the guard borrows an `Arc` of that task for its whole life (its lifetime
    // parameter), so the allocation is live and the strong count at least 1. We add a
    // reference of our own and take it as an `Arc`; nested guards restore the outer
    // pointer on drop, so the innermost live guard's task is the one read here.
    unsafe {
        Arc::increment_strong_count(pointer);
        Some(Arc::from_raw(pointer))
    }
}

/// What an executor shares with other threads.
struct Shared {
    /// Tasks to poll, in the order they were woken.
    ready: Mutex<Vec<Runnable>>,
    /// Ends the executor's park (see `park`): called by every wake.
    unparker: Arc<dyn Unpark>,
    /// Diagnostics found on any thread, handed to the reporter on the executor's thread
    /// at its next turn.
    reports: Mutex<Vec<Diagnostic>>,
    /// Tasks whose last waker went: the executor checks whether they are lost.
    suspects: Mutex<Vec<TaskId>>,
    reporter: Reporter,
    /// The poll in progress, for the stall watchdog; `None` when it is off.
    watch: Option<StallWatch>,
    /// Set when the executor is dropped: reports from then on go straight to the
    /// reporter (see `report_later`).
    executor_gone: AtomicBool,
    /// Whether the books of lost tasks and waits are kept (see
    /// [`ExecutorBuilder::diagnostics`]).
    keeps_books: bool,
}

/// What the stall watchdog sees of the executor: the poll in progress.
struct StallWatch {
    threshold: Duration,
    /// The executor's own clock: with a [`ManualClock`](crate::time::ManualClock), a
    /// poll lasts only the time a test advances the clock by inside it, so a test of
    /// healthy work is quiet however slow or busy the machine is.
    clock: Clock,
    current: Mutex<Option<PollRecord>>,
    /// Set when the executor is dropped: the watchdog thread then ends.
    stop: AtomicBool,
}

struct PollRecord {
    task: TaskInfo,
    started: Instant,
    /// The watchdog has reported this poll already.
    reported: bool,
}

impl StallWatch {
    fn lock(&self) -> MutexGuard<'_, Option<PollRecord>> {
        lock(&self.current)
    }

    /// How long the poll that started at `started` has held the thread, on the clock.
    fn held_since(&self, started: Instant) -> Duration {
        self.clock.now().saturating_duration_since(started)
    }
}

impl Shared {
    fn suspect(&self, id: TaskId) {
        self.hand_over(&self.suspects, id);
    }

    fn take_suspects(&self) -> Vec<TaskId> {
        drain(&self.suspects)
    }

    fn report_later(&self, diagnostic: Diagnostic) {
        if self.executor_gone.load(Ordering::Acquire) {
            // Nobody will take the queue any more (say, a `JoinHandle` dropped on
            // another thread after its executor): report it here and now.
            self.report(&diagnostic);
            return;
        }
        self.hand_over(&self.reports, diagnostic);
    }

    /// Reports a panic in user code that nobody waits to be handed.
    fn report_caught_panic(&self, task: Option<TaskInfo>, place: &'static str, payload: Payload) {
        let message = into_message(payload);
        self.report_later(Diagnostic::CaughtPanic {
            task,
            place,
            message,
        });
    }

    /// Hands `diagnostic` to the reporter: user code, so a panic in it is caught (and
    /// said on standard error, the one place left), never let loose in the executor.
    fn report(&self, diagnostic: &Diagnostic) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (self.reporter)(diagnostic))) {
            eprintln!(
                "async-scratch: the diagnostic reporter panicked ('{}') on: {diagnostic}",
                into_message(payload)
            );
        }
    }

    /// Adds `item` to a queue the executor empties at its next turn, and wakes it up
    /// for that turn (it may be parked, and the item may come from another thread).
    fn hand_over<T>(&self, queue: &Mutex<Vec<T>>, item: T) {
        lock(queue).push(item);
        self.unparker.unpark();
    }

    fn deliver_reports(&self) {
        let reports = drain(&self.reports);
        for diagnostic in &reports {
            self.report(diagnostic);
        }
    }

    /// Notes the start of a poll for the watchdog (when it is on).
    fn poll_started(&self, header: &TaskHeader) {
        if let Some(watch) = &self.watch {
            *watch.lock() = Some(PollRecord {
                task: header.info(),
                started: watch.clock.now(),
                reported: false,
            });
        }
    }

    /// Notes the end of a poll; reports it if it held the thread too long.
    fn poll_ended(&self) {
        let Some(watch) = &self.watch else { return };
        let Some(record) = watch.lock().take() else {
            return;
        };
        let held = watch.held_since(record.started);
        if held > watch.threshold {
            self.report(&Diagnostic::Stall {
                task: record.task,
                held,
                still_running: false,
            });
        }
    }

    fn lock_ready(&self) -> MutexGuard<'_, Vec<Runnable>> {
        // Only tasks are pushed and swapped under this lock: never left half-done.
        lock(&self.ready)
    }

    fn push_ready(&self, task: Runnable) {
        self.lock_ready().push(task);
        // Cheap when the executor is not parked (an atomic swap); if it is about to
        // park, the token this leaves makes that park return at once.
        self.unparker.unpark();
    }
}

/// Where a spawned task came from, for diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's id in its executor.
    pub id: TaskId,
    /// The name given with `spawn_named`, if any.
    pub name: Option<String>,
    /// Where `spawn` was called.
    pub spawned_at: &'static Location<'static>,
}

/// A pending task's header, unless the task is being polled right now: a task being
/// polled is out of the executor's hands (and it is the one asking, when a task calls
/// [`Executor::pending_task_info`]).
fn idle_header(task: &Runnable) -> Option<&TaskHeader> {
    let header = task.header();
    (!header.is_running()).then_some(header)
}

/// Task storage: a `Vec` of slots with a free list, so ids stay small and slots are
/// reused; each reuse bumps the slot's generation.
#[derive(Default)]
struct Slab {
    entries: Vec<SlabEntry>,
    free: Vec<u32>,
    occupied: usize,
}

struct SlabEntry {
    generation: u32,
    slot: Option<Runnable>,
}

impl Slab {
    /// The id the next `insert` will use.
    fn next_id(&self) -> TaskId {
        let index = match self.free.last() {
            Some(&index) => index,
            None => u32::try_from(self.entries.len()).expect("more than 4 billion tasks"),
        };
        let generation = self.entries.get(index as usize).map_or(0, |e| e.generation);
        TaskId { index, generation }
    }

    fn insert(&mut self, slot: Runnable) -> TaskId {
        let id = self.next_id();
        match self.free.pop() {
            Some(index) => self.entries[index as usize].slot = Some(slot),
            None => self.entries.push(SlabEntry {
                generation: 0,
                slot: Some(slot),
            }),
        }
        self.occupied += 1;
        id
    }

    fn get(&self, id: TaskId) -> Option<&Runnable> {
        let entry = self.entries.get(id.index as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        entry.slot.as_ref()
    }

    fn remove(&mut self, id: TaskId) -> Option<Runnable> {
        let entry = self.entries.get_mut(id.index as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        let slot = entry.slot.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(id.index);
        self.occupied -= 1;
        Some(slot)
    }

    fn iter(&self) -> impl Iterator<Item = (TaskId, &Runnable)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| {
                let id = TaskId {
                    index: index as u32,
                    generation: entry.generation,
                };
                entry.slot.as_ref().map(|slot| (id, slot))
            })
    }

    fn take_all(&mut self) -> Vec<Runnable> {
        self.free.clear();
        self.occupied = 0;
        mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|entry| entry.slot)
            .collect()
    }
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
    spare_batch: RefCell<VecDeque<Runnable>>,
    /// Tasks spawned since the last batch. Spawning happens on the executor's own
    /// thread, so it needs neither the ready queue's lock nor an unpark.
    spawned: RefCell<Vec<Runnable>>,
    detect_deadlocks: bool,
    /// The stall watchdog's thread, stopped and joined when the executor is dropped.
    watchdog: Option<ThreadHandle<()>>,
    /// How the executor waits when nothing is ready: the seam where the reactor of
    /// step 6 plugs in.
    park: Box<dyn Park>,
}

/// How to build an [`Executor`]; from [`Executor::builder`].
pub struct ExecutorBuilder {
    clock: Clock,
    stall_threshold: Option<Duration>,
    detect_deadlocks: bool,
    diagnostics: bool,
    reporter: Reporter,
    park: Option<Box<dyn Park>>,
}

impl fmt::Debug for ExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorBuilder")
            .field("clock", &self.clock)
            .field("stall_threshold", &self.stall_threshold)
            .field("detect_deadlocks", &self.detect_deadlocks)
            .field("diagnostics", &self.diagnostics)
            .field("custom_park", &self.park.is_some())
            .finish_non_exhaustive() // the reporter is a closure
    }
}

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
    pub fn stall_watchdog(mut self, threshold: Duration) -> ExecutorBuilder {
        self.stall_threshold = Some(threshold);
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
        let watch = self.stall_threshold.map(|threshold| StallWatch {
            threshold,
            clock: self.clock.clone(),
            current: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let park = self.park.unwrap_or_else(|| Box::new(ThreadPark::current()));
        let shared = Arc::new(Shared {
            ready: Mutex::new(Vec::new()),
            unparker: park.unparker(),
            reports: Mutex::new(Vec::new()),
            suspects: Mutex::new(Vec::new()),
            executor_gone: AtomicBool::new(false),
            reporter: self.reporter,
            watch,
            keeps_books: self.diagnostics,
        });
        let watchdog = shared.watch.as_ref().map(|_| start_watchdog(&shared));
        let core = Core {
            shared,
            tasks: RefCell::new(Slab::default()),
            timers: Arc::new(TimerQueue::default()),
            clock: self.clock,
            running: Cell::new(false),
            spare_batch: RefCell::new(VecDeque::new()),
            spawned: RefCell::new(Vec::new()),
            detect_deadlocks: self.detect_deadlocks && self.diagnostics,
            watchdog,
            park,
        };
        Executor {
            core: Rc::new(core),
        }
    }
}

/// The watchdog thread: looks at the poll in progress every quarter threshold, and
/// reports one that has run past the threshold, once, while it still runs.
fn start_watchdog(shared: &Arc<Shared>) -> ThreadHandle<()> {
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("async-scratch-watchdog".to_string())
        .spawn(move || {
            let Some(watch) = &shared.watch else { return };
            while !watch.stop.load(Ordering::Acquire) {
                thread::park_timeout(watch.threshold / 4);
                let stalled = {
                    let mut current = watch.lock();
                    match current.as_mut() {
                        Some(record) if !record.reported => {
                            let held = watch.held_since(record.started);
                            record.reported = held > watch.threshold;
                            record.reported.then(|| (record.task.clone(), held))
                        }
                        _ => None,
                    }
                };
                if let Some((task, held)) = stalled {
                    shared.report(&Diagnostic::Stall {
                        task,
                        held,
                        still_running: true,
                    });
                }
            }
        })
        .expect("cannot start the stall watchdog thread")
}

/// A single-threaded executor: tasks spawned on it run on the thread that calls
/// [`block_on`](Executor::block_on).
///
/// Dropping the executor drops every task still pending (their handles then report
/// [`JoinError::Cancelled`](crate::join::JoinError::Cancelled)).
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
/// must_be_send::<async_scratch::join::JoinHandle<String>>();
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
            detect_deadlocks: true,
            diagnostics: true,
            reporter: print_to_stderr(),
            park: None,
        }
    }

    /// Spawns `future` as a task of this executor. It starts running when the
    /// executor runs (inside [`block_on`](Executor::block_on)).
    ///
    /// The future need not be `Send`: it never leaves this thread. Its output must be,
    /// because the task's wakers, which may travel to any thread, share an allocation
    /// with the slot the output waits in (one allocation fewer per task).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.core.spawn(future, None, Location::caller())
    }

    /// Like [`spawn`](Executor::spawn), with a name that diagnostics will show.
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<String>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: Send + 'static,
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
        let root = Arc::new(TaskHeader::new(
            ROOT,
            &self.core.shared,
            &TaskRefs::ROOT,
            name,
            Location::caller(),
        ));
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
                    name: header.name.as_deref().map(str::to_string),
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
        F::Output: Send + 'static,
    {
        let mut tasks = self.tasks.borrow_mut();
        let id = tasks.next_id();
        let refs = &const { TaskRefs::spawned::<TaskCell<F>>() };
        let header = TaskHeader::new(id, &self.shared, refs, name, spawned_at);
        // The one allocation of the task: header, outcome slot and future together.
        let task = Arc::new(TaskCell::new(header, future));
        tasks.insert(task.clone());
        drop(tasks);
        self.spawned.borrow_mut().push(task.clone());
        JoinHandle::new(task)
    }

    /// Fires the timers that are due; the clock is read only when a timer is pending.
    fn fire_due_timers(&self) -> usize {
        if self.timers.is_empty() {
            return 0;
        }
        self.timers.fire_due(self.clock.now(), |payload| {
            let place = "the wake of a timer's waker";
            self.shared.report_caught_panic(None, place, payload);
        })
    }

    /// Polls every task that was ready when the batch was taken; returns how many.
    fn run_ready_batch(&self) -> usize {
        let mut batch = self.spare_batch.take();
        batch.extend(self.spawned.borrow_mut().drain(..));
        batch.extend(self.shared.lock_ready().drain(..));
        let mut batch = Batch {
            tasks: batch,
            core: self,
        };
        let mut polled = 0;
        while let Some(task) = batch.take_next() {
            polled += usize::from(self.poll_task(task));
        }
        polled
    }

    /// Polls one task, unless it is over already; says whether it did. No borrow of
    /// the slab is held during the poll: the task may spawn, and its wakers may run.
    fn poll_task(&self, task: Runnable) -> bool {
        let id = task.header().id;
        match task.run() {
            None => false, // a wake during its last poll queued it: it is over
            Some(Poll::Pending) => true,
            Some(Poll::Ready(())) => {
                let entry = self.tasks.borrow_mut().remove(id);
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

    /// Polls `block_on`'s own future once.
    fn poll_root<F: Future>(&self, root: &Arc<TaskHeader>, future: Pin<&mut F>) -> Poll<F::Output> {
        let _current = CurrentTask::enter(root);
        let waker = task_waker_ref(root);
        // `block_on`'s own future has no handle, so nothing can cancel it.
        polled(root, &waker, |_cancelled| {
            future.poll(&mut Context::from_waker(&waker))
        })
    }

    /// Waits until something may be ready: parks the thread, or jumps a manual clock.
    /// Returns the deadlock instead, when nothing can ever be ready again.
    fn wait_for_work(&self, root: &TaskHeader) -> Result<(), Deadlock> {
        if !self.spawned.borrow().is_empty() || !self.shared.lock_ready().is_empty() {
            return Ok(());
        }
        match (self.timers.next_deadline(), &self.clock) {
            // Nothing is due ever: only a waker can help, if any is left anywhere.
            (None, _) => {
                if let Some(deadlock) = self.find_deadlock(root) {
                    return Err(deadlock);
                }
                self.park.park(None);
            }
            // Nothing can happen before the deadline, so let time pass at once.
            (Some(deadline), Clock::Manual(clock)) => clock.advance_to(deadline),
            (Some(deadline), Clock::Real) => self.park.park(Some(deadline)),
        }
        // Parking may end early (a wake, or spuriously): the caller looks again.
        Ok(())
    }

    /// The deadlock, if nothing can ever wake any pending task or `root`.
    fn find_deadlock(&self, root: &TaskHeader) -> Option<Deadlock> {
        if !self.detect_deadlocks {
            return None;
        }
        let tasks = self.tasks.borrow();
        let pending = tasks.iter().filter_map(|(_, task)| idle_header(task));
        let headers: Vec<&TaskHeader> = std::iter::once(root).chain(pending).collect();
        if headers
            .iter()
            .any(|header| header.outside_wakers() > 0 || header.waits_beyond_this_executor())
        {
            return None;
        }
        // The queues are looked at *after* the counts: a wake in flight queues its task
        // before it releases its waker, so if the count we read is already down, the
        // task is already in a queue we are about to read.
        let queued = !self.spawned.borrow().is_empty() || !self.shared.lock_ready().is_empty();
        if queued || !self.timers.is_empty() || root.is_scheduled() {
            return None;
        }
        Some(Deadlock {
            tasks: headers.iter().map(|header| header.stuck()).collect(),
            cycles: distinct_cycles(&headers),
        })
    }
}

/// Runs one poll of the task with `header`, keeping its state word and the watchdog up
/// to date, and checking afterwards whether a pending task kept any waker. `poll` is
/// told whether the task was cancelled: read in the same atomic step that unqueues it,
/// so an abort is either seen by this poll or queues the task again (see `state`).
pub(crate) fn polled<T>(
    header: &TaskHeader,
    own_waker: &Waker,
    poll: impl FnOnce(bool) -> Poll<T>,
) -> Poll<T> {
    let cancelled = header.state.start_poll().is_cancelled();
    header.shared.poll_started(header);
    let outcome = coop::with_budget(own_waker, || poll(cancelled));
    header.shared.poll_ended();
    match &outcome {
        Poll::Ready(_) => header.mark_finished(),
        // Polls run on the executor's thread, so this is between polls: safe to check.
        Poll::Pending => {
            if header.state.end_poll().looks_lost() && header.shared.keeps_books {
                header.check_lost();
            }
        }
    }
    outcome
}

/// Empties one of the queues handed to the executor (see `Shared::hand_over`).
fn drain<T>(queue: &Mutex<Vec<T>>) -> Vec<T> {
    mem::take(&mut *lock(queue))
}

/// Every wait cycle through `headers`, each once (whichever task it is found from).
fn distinct_cycles(headers: &[&TaskHeader]) -> Vec<Vec<StuckTask>> {
    let mut seen: Vec<Vec<TaskId>> = Vec::new();
    let mut cycles = Vec::new();
    for header in headers {
        let Some(cycle) = wait_cycle_through(header) else {
            continue;
        };
        let mut members: Vec<TaskId> = cycle.iter().map(|stuck| stuck.task.id).collect();
        members.sort_by_key(|id| (id.index, id.generation));
        if !seen.contains(&members) {
            seen.push(members);
            cycles.push(cycle);
        }
    }
    cycles
}

impl Drop for Core {
    fn drop(&mut self) {
        // The watchdog first: stopping it runs no user code, so nothing can skip it.
        if let (Some(watchdog), Some(watch)) = (self.watchdog.take(), &self.shared.watch) {
            watch.stop.store(true, Ordering::Release);
            watchdog.thread().unpark();
            let _ = watchdog.join();
        }
        // Taken out first, then ended: a future's `Drop` may touch the timers or wake
        // other tasks, and must find no borrow held. Every task is marked finished
        // before any is ended, so wakers dropped along the way report no lost task,
        // and no wake queues a task again. Ending a task drops its future inside
        // `catch_unwind` (see `join::TaskCell::end`), so a panicking `Drop` stops
        // neither this loop nor, during an unwinding, the process.
        let tasks = self.tasks.get_mut().take_all();
        for task in &tasks {
            task.header().mark_finished();
        }
        for task in &tasks {
            task.abandon();
        }
        // The queues hold references to tasks, and each task one to `Shared`, where the
        // ready queue is: emptied here, or that cycle would keep them all alive.
        drop(drain(&self.shared.ready));
        self.spawned.get_mut().clear();
        self.spare_batch.get_mut().clear();
        drop(tasks);
        self.timers.clear();
        self.shared.executor_gone.store(true, Ordering::Release);
        self.shared.deliver_reports(); // what the drops above found
    }
}

thread_local! {
    /// The executor whose `block_on` is running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

fn current() -> Option<Rc<Core>> {
    // `try_with`: during thread teardown the thread-local may be gone; that is "none".
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// The clock of the executor running on this thread.
pub(crate) fn current_clock() -> Option<Clock> {
    current().map(|core| core.clock.clone())
}

/// The clock and timer queue of the executor running on this thread.
pub(crate) fn current_timers() -> Option<(Clock, Arc<TimerQueue>)> {
    current().map(|core| (core.clock.clone(), Arc::clone(&core.timers)))
}

/// The ready tasks being polled in one turn. Every panic in user code is caught inside
/// a poll, so none should leave `poll_task`; if one ever did, the tasks not yet polled
/// go back to the queue rather than being lost with their `scheduled` flag still set
/// (which would keep every later wake from queueing them).
struct Batch<'a> {
    tasks: VecDeque<Runnable>,
    core: &'a Core,
}

impl Batch<'_> {
    fn take_next(&mut self) -> Option<Runnable> {
        self.tasks.pop_front()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        let mut tasks = mem::take(&mut self.tasks);
        if let Ok(mut spawned) = self.core.spawned.try_borrow_mut() {
            spawned.extend(tasks.drain(..));
        }
        if let Ok(mut spare) = self.core.spare_batch.try_borrow_mut() {
            *spare = tasks; // empty now; its allocation serves the next turn
        }
    }
}

/// Marks an executor as running on this thread for as long as it lives, and restores
/// what was there before when dropped, even by a panic.
struct RunGuard {
    core: Rc<Core>,
    previous: Option<Rc<Core>>,
}

impl RunGuard {
    fn enter(core: &Rc<Core>) -> RunGuard {
        assert!(
            !core.running.get(),
            "Executor::block_on was called from inside one of its own tasks; \
             that would block the thread its tasks run on (await the future instead)"
        );
        core.running.set(true);
        let previous = CURRENT.with(|current| current.replace(Some(Rc::clone(core))));
        RunGuard {
            core: Rc::clone(core),
            previous,
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.core.running.set(false);
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| current.replace(previous));
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
    F::Output: Send + 'static,
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
    F::Output: Send + 'static,
{
    spawn_on_current(future, Some(name.into().into()))
}

#[track_caller]
fn spawn_on_current<F>(future: F, name: Option<Box<str>>) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: Send + 'static,
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref(); // back of the queue: everyone ready now goes first
        Poll::Pending
    }
}
