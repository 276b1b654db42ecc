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
//!               ▲                └──► Pending: park the task in the slab, untouched
//!               └── waker.wake() (any thread, a timer, another task)
//! ```
//! - **Tasks** live in a slab (a `Vec` with a free list), indexed by [`TaskId`]; a slab
//!   slot holds the boxed future and its waker. The rest of a task (its name, where it
//!   was spawned, its `scheduled` flag, its result) is in a `TaskCell` that its wakers
//!   and its `JoinHandle` share.
//! - **The ready queue** holds the ids of tasks to poll. It is behind a `Mutex` because
//!   wakers may be called from any thread; the executor takes the whole queue at once
//!   and polls that batch, so each lock is paid once per batch, and a task woken while
//!   the batch runs (say, by `yield_now`) waits for the next batch: fair.
//! - **Many wakes, one poll.** Each task has a `scheduled` flag: the first wake sets it
//!   and queues the task, later wakes see it set and do nothing; the executor clears it
//!   just before polling, so a wake *during* the poll queues the task again.
//! - **When nothing is ready** the executor fires the timers that are due; if there are
//!   none, it parks its thread until the earliest deadline (or, with a
//!   [`ManualClock`](crate::time::ManualClock), jumps the clock to it), or until a waker
//!   unparks it.
//!
//! Futures stay on the executor's thread, so they need not be `Send`; the thread-safe
//! part of a task (its id, its flag and the queue) is what its wakers hold.
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
//! *Teaching shortcut:* two allocations per task: the boxed future, and a
//! `TaskCell` shared by its wakers and its `JoinHandle`. async-task and tokio fit all
//! of a task in one allocation, at the price of hand-written reference counting over
//! raw pointers.

use crate::join::{JoinHandle, Spawned, TaskCell};
use crate::time::{Clock, TimerQueue};
use crate::waker::{waker_from_arc, Wakeable};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::Location;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::{self, Thread};
use std::time::Instant;

/// Names a task in its executor: a slab index, and the generation of that slot, so a
/// stale id (a wake after the task ended and its slot was reused) matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    index: u32,
    generation: u32,
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
    /// True from the moment the task is queued until the executor starts polling it.
    scheduled: AtomicBool,
    shared: Arc<Shared>,
    /// `Box<str>`, not `String`: a name never grows, and 8 bytes a task add up.
    name: Option<Box<str>>,
    spawned_at: &'static Location<'static>,
}

impl TaskHeader {
    fn new(
        id: TaskId,
        shared: &Arc<Shared>,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> TaskHeader {
        TaskHeader {
            id,
            scheduled: AtomicBool::new(true), // a new task is queued at once
            shared: Arc::clone(shared),
            name,
            spawned_at,
        }
    }

    /// Queues the task unless it is queued already.
    pub(crate) fn schedule(&self) {
        // AcqRel: whoever sets the flag queues the task, and the executor's reset
        // (Release) before a poll is seen by a wake that comes after it.
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.shared.push_ready(self.id);
        }
    }

    /// Clears the flag and says whether it was set.
    fn take_scheduled(&self) -> bool {
        self.scheduled.swap(false, Ordering::AcqRel)
    }
}

/// `block_on`'s own future has a header and nothing else: its waker is made from that.
impl Wakeable for TaskHeader {
    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule();
    }
}

/// What the executor needs of a spawned task besides polling it: its header. Lets the
/// slab hold every task behind one type, whatever its future and output.
pub(crate) trait TaskFuture {
    fn header(&self) -> &TaskHeader;

    /// Polls the task's future once, with the task's own waker.
    fn poll_task(self: Pin<&mut Self>) -> Poll<()>;
}

/// What an executor shares with other threads.
struct Shared {
    /// Ids of tasks to poll, in the order they were woken.
    ready: Mutex<Vec<TaskId>>,
    /// The executor's thread, unparked by every wake.
    executor_thread: Thread,
}

impl Shared {
    fn lock_ready(&self) -> MutexGuard<'_, Vec<TaskId>> {
        // Only ids are pushed and swapped under this lock: never left half-done.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_ready(&self, id: TaskId) {
        self.lock_ready().push(id);
        // Cheap when the executor is not parked (an atomic swap); if it is about to
        // park, the token this leaves makes that park return at once.
        self.executor_thread.unpark();
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

/// A task as the executor stores it: one boxed future (16 bytes), since the slab holds
/// one per live task. Its waker is borrowed from its cell at each poll.
struct TaskSlot {
    /// `None` only while the task is being polled (taken out so that the poll can
    /// spawn new tasks into the slab).
    future: Option<Pin<Box<dyn TaskFuture>>>,
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
    slot: Option<TaskSlot>,
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

    fn insert(&mut self, slot: TaskSlot) -> TaskId {
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

    fn get_mut(&mut self, id: TaskId) -> Option<&mut TaskSlot> {
        let entry = self.entries.get_mut(id.index as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        entry.slot.as_mut()
    }

    fn remove(&mut self, id: TaskId) -> Option<TaskSlot> {
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

    fn iter(&self) -> impl Iterator<Item = (TaskId, &TaskSlot)> {
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

    fn take_all(&mut self) -> Vec<TaskSlot> {
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
    spare_batch: RefCell<Vec<TaskId>>,
    /// Tasks spawned since the last batch. Spawning happens on the executor's own
    /// thread, so it needs neither the ready queue's lock nor an unpark.
    spawned: RefCell<Vec<TaskId>>,
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
        let shared = Arc::new(Shared {
            ready: Mutex::new(Vec::new()),
            executor_thread: thread::current(),
        });
        let core = Core {
            shared,
            tasks: RefCell::new(Slab::default()),
            timers: Arc::new(TimerQueue::default()),
            clock,
            running: Cell::new(false),
            spare_batch: RefCell::new(Vec::new()),
            spawned: RefCell::new(Vec::new()),
        };
        Executor {
            core: Rc::new(core),
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
    /// If called from inside one of this executor's own tasks: that would block the
    /// one thread the tasks need.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _running = RunGuard::enter(&self.core);
        let mut future = pin!(future);
        let root = Arc::new(TaskHeader::new(
            ROOT,
            &self.core.shared,
            None,
            Location::caller(),
        ));
        let root_waker = waker_from_arc(Arc::clone(&root));
        let mut cx = Context::from_waker(&root_waker);
        loop {
            if root.take_scheduled() {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
            }
            self.core.fire_due_timers();
            let polled = self.core.run_ready_batch();
            if polled == 0 && !root.scheduled.load(Ordering::Acquire) {
                self.core.wait_for_work();
            }
        }
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
            .filter_map(|(id, slot)| {
                let header = slot.future.as_ref()?.header();
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
        let header = TaskHeader::new(id, &self.shared, name, spawned_at);
        let cell = Arc::new(TaskCell::new(header));
        let future: Pin<Box<dyn TaskFuture>> = Box::pin(Spawned::new(future, Arc::clone(&cell)));
        tasks.insert(TaskSlot {
            future: Some(future),
        });
        drop(tasks);
        self.spawned.borrow_mut().push(id);
        JoinHandle::new(cell)
    }

    fn fire_due_timers(&self) -> usize {
        self.timers.fire_due(self.clock.now())
    }

    /// Polls every task that was ready when the batch was taken; returns how many.
    fn run_ready_batch(&self) -> usize {
        let mut batch = self.spare_batch.take();
        mem::swap(&mut batch, &mut *self.spawned.borrow_mut());
        batch.append(&mut self.shared.lock_ready());
        let polled = batch.iter().filter(|&&id| self.poll_task(id)).count();
        batch.clear();
        *self.spare_batch.borrow_mut() = batch;
        polled
    }

    /// Polls one task, if it still exists; says whether it did.
    fn poll_task(&self, id: TaskId) -> bool {
        let taken = {
            let mut tasks = self.tasks.borrow_mut();
            tasks.get_mut(id).and_then(|slot| {
                let future = slot.future.take()?;
                future.header().take_scheduled(); // a wake from here on queues it again
                Some(future)
            })
        };
        let Some(mut future) = taken else {
            return false; // the root, or a stale wake of a finished task
        };
        // No borrow of the slab is held here: the task may spawn, and its wakers may
        // run.
        let poll = future.as_mut().poll_task();
        let mut tasks = self.tasks.borrow_mut();
        match poll {
            Poll::Pending => {
                if let Some(slot) = tasks.get_mut(id) {
                    slot.future = Some(future);
                }
            }
            Poll::Ready(()) => {
                let slot = tasks.remove(id);
                drop(tasks);
                // Dropped with no borrow held: a future's `Drop` may spawn or wake.
                drop((future, slot));
            }
        }
        true
    }

    /// Waits until something may be ready: parks the thread, or jumps a manual clock.
    fn wait_for_work(&self) {
        if !self.spawned.borrow().is_empty() || !self.shared.lock_ready().is_empty() {
            return;
        }
        match (self.timers.next_deadline(), &self.clock) {
            // Nothing is due ever, unless some waker is woken: wait for that.
            (None, _) => thread::park(),
            // Nothing can happen before the deadline, so let time pass at once.
            (Some(deadline), Clock::Manual(clock)) => clock.advance_to(deadline),
            (Some(deadline), Clock::Real) => {
                let now = Instant::now();
                if deadline > now {
                    thread::park_timeout(deadline - now);
                }
            }
        }
        // Parking may end early (a wake, or spuriously): the caller looks again.
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Taken out first, then dropped: a future's `Drop` may touch the timers or wake
        // other tasks, and must find no borrow held.
        let tasks = self.tasks.get_mut().take_all();
        drop(tasks);
        self.timers.clear();
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
/// completes are dropped with the executor.
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
