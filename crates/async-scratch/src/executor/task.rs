//! The task: what a spawned future becomes, and what every part of the executor holds
//! of it.
//!
//! A task is one allocation, a [`TaskCell`](crate::executor::task::TaskCell): first its
//! [`TaskHeader`], the part any thread may read (its id, name, spawn location and
//! state word, and how its wakers reach it), then the slot its outcome waits in, then
//! its future, which only the executor's thread touches. Everything else holds the
//! task through one of two views: [`TaskHandle`] (a header, for wait records and
//! diagnostics) and [`RunTask`] (something to poll, for the ready queue).
//!
//! **Step 4** introduced tasks; step 5's diagnostics read their headers; this module
//! gathers what a task is, which the executor's run loop (in `mod.rs`) only drives.

use super::join_handle::{JoinError, JoinSlot};
use super::shared::Shared;
use super::state::State;
use super::task_waker::{is_waker_of, task_waker_ref, StartsWithHeader, TaskRefs};
use super::waits::{report_certain_cycle, WaitRecords};
use crate::coop;
use crate::diagnostics::{Diagnostic, TaskId, TaskInfo};
use crate::observe::Event;
use crate::unwind::{into_message, Payload};
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The id of `block_on`'s own future, which is not in the slab.
pub(super) const ROOT: TaskId = crate::observe::BLOCK_ON;

/// The thread-safe half of a task, which its wakers and its `JoinHandle` reach (it is
/// the head of the task's [`TaskCell`]): who the task is, and how to queue it.
pub(crate) struct TaskHeader {
    pub(super) id: TaskId,
    /// Queued, being polled, complete, cancelled, and how many owning wakers are alive
    /// anywhere (the waker vtable counts them; borrowed wakers, used for polls, are not
    /// counted): one atomic word, see `state`.
    pub(super) state: State,
    /// How many of those are held by our own primitives for a wait the executor knows
    /// (a `JoinHandle`, the async `Mutex`). The rest are held "outside".
    pub(super) internal_waits: AtomicU32,
    /// What the task waits for, when it is one of those known waits: one record per
    /// registration, the latest last, since a task may wait on several things at once
    /// (`join(handle, lock.lock())`), and one wait ending must not erase another.
    pub(super) waits_on: Mutex<WaitRecords>,
    pub(super) shared: Arc<Shared>,
    /// How the task's wakers count references to the allocation this header starts.
    pub(super) refs: &'static TaskRefs,
    /// `Box<str>`, not `String`: a name never grows, and 8 bytes a task add up.
    pub(super) name: Option<Box<str>>,
    pub(super) spawned_at: &'static Location<'static>,
}

impl TaskHeader {
    /// The header of a task held in an `Arc` whose value starts with this header;
    /// `refs` must be made for that value's type (see `StartsWithHeader`).
    pub(super) fn new(
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
            waits_on: Mutex::new(WaitRecords::new()),
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
        let now = self.state.waker_released();
        if !self.shared.keeps_books {
            return;
        }
        if now.looks_lost() {
            self.shared.suspect(self.id);
        } else if !now.is_scheduled() && !now.is_complete() {
            // Fewer wakers outside may turn "cannot tell" into a certain deadlock: if the
            // executor parked undecided, it must look again.
            self.shared.look_again_if_undecided();
        }
    }

    /// Reports the task as lost if it is pending and no waker for it is left anywhere.
    /// Runs on the executor's thread, between polls, so no poll can make a new waker
    /// meanwhile. The count and the flags are one word, read at once: a wake in flight
    /// queues its task before it releases its waker, so a count of 0 read with the
    /// flags shows any wake that happened. (Checked from any thread, this raced with
    /// polls: Miri found a false report that way.)
    pub(super) fn check_lost(&self) {
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

    pub(super) fn is_scheduled(&self) -> bool {
        self.state.load().is_scheduled()
    }

    /// Says whether the task's `JoinHandle` is loose (see `State::set_handle_loose`).
    /// A handle that stops being loose is one possible wake fewer: if the executor
    /// parked undecided, it looks again, as for the release of a waker.
    pub(crate) fn set_handle_loose(&self, loose: bool) {
        let now = self.state.set_handle_loose(loose);
        if !loose && !now.is_scheduled() && !now.is_complete() && self.shared.keeps_books {
            self.shared.look_again_if_undecided();
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.state.load().is_complete()
    }

    /// Whether the task is being polled right now (on its executor's thread).
    pub(super) fn is_running(&self) -> bool {
        self.state.load().is_running()
    }
}

/// A spawned task as its executor holds it, whatever its future and output: something
/// to poll, and to end when the executor goes.
///
/// Both methods run only on the task's executor's thread: the task's future, which
/// need not be `Send`, is touched there alone (see `TaskCell`).
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
    header.shared.observe(|| Event::Polling { task: header.id });
    header.shared.poll_started(header);
    let outcome = coop::with_budget(own_waker, || poll(cancelled));
    header.shared.poll_ended();
    let ready = outcome.is_ready();
    header.shared.observe(|| Event::Polled {
        task: header.id,
        ready,
    });
    match &outcome {
        Poll::Ready(_) => header.mark_finished(),
        // Polls run on the executor's thread, so this is between polls: safe to check.
        Poll::Pending => {
            let now = header.state.end_poll();
            if header.shared.keeps_books {
                if now.looks_lost() {
                    header.check_lost();
                }
                if header.has_known_waits() {
                    report_certain_cycle(header);
                }
            }
        }
    }
    outcome
}

/// A spawned task, in one allocation: its header (id, state word, name, spawn
/// location), the slot its outcome waits in, and its future. One `Arc` of it is shared
/// by the task's wakers, its `JoinHandle`, the executor's list of tasks and, while it
/// is queued, the ready queue.
///
/// `repr(C)`, header first: a task's waker points at the header, and reaches the
/// whole cell from there (see `executor::task_waker`).
///
/// The future sits in an `UnsafeCell`, apart from the header: the executor reads a
/// pending task's header (its name, its waits) through shared references, and those
/// must never cover the future, because the future may hold references into itself
/// (a `&mut` to a local, held across an `.await`) that any other reference to its
/// memory would invalidate. (Miri reported exactly that while the header was read
/// through the future.) Only the executor's thread touches the future: it polls it in
/// [`RunTask::run`] and drops it in `end`.
#[repr(C)]
pub(crate) struct TaskCell<F: Future> {
    pub(super) header: TaskHeader,
    pub(super) slot: JoinSlot<F::Output>,
    future: UnsafeCell<FutureSlot<F>>,
}

/// The part of a task only its executor's thread touches.
struct FutureSlot<F> {
    /// Dropped by hand, once, in `drop_future` (`dropped` says when): in place, as
    /// `Pin` requires, and inside `catch_unwind`, since its `Drop` is user code.
    future: ManuallyDrop<F>,
    dropped: bool,
    /// Whether the outcome has been delivered.
    delivered: bool,
}

// SAFETY: other threads reach a task only through its wakers and its `JoinHandle`.
// - The header is `Send + Sync`: a waker schedules through it.
// - The future, which need not be `Send`, is touched only on the executor's thread:
//   `run` and `abandon` are called only by the executor that spawned the task (its
//   `Core` is `!Send`, and it runs them from its own thread), and every way a task
//   ends drops the future there. If the last reference goes on another thread, the
//   future is gone already: `ManuallyDrop` keeps dropping the cell from ever dropping
//   it.
// - The output, which need not be `Send` either, moves only between the executor's
//   thread (which puts it in the slot, or drops it if the handle is gone) and the
//   `JoinHandle` (which takes it, or drops it in its own `Drop`). A handle is `Send`
//   only when the output is (`PhantomData<T>`), so for an output that is not, all of
//   this happens on the thread that spawned the task, which is the executor's. Nothing
//   else takes the output out: `&JoinHandle` only reads whether it is there. And a
//   cell is never freed with an output still in its slot: a handle forgotten with
//   `mem::forget` leaks its reference to the cell too.
unsafe impl<F: Future> Send for TaskCell<F> {}
// SAFETY: as for `Send`: shared references on other threads reach the header, and
// through `&JoinHandle` whether the outcome is there, never the future or the output.
unsafe impl<F: Future> Sync for TaskCell<F> {}

// SAFETY: `repr(C)` with the header first; `spawn` makes the header with
// `TaskRefs::spawned::<TaskCell<F>>()`.
unsafe impl<F: Future> StartsWithHeader for TaskCell<F> {}

impl<F: Future> TaskCell<F>
where
    F: 'static,
    F::Output: 'static,
{
    pub(crate) fn new(header: TaskHeader, future: F) -> TaskCell<F> {
        TaskCell {
            header,
            slot: JoinSlot::new(),
            future: UnsafeCell::new(FutureSlot {
                future: ManuallyDrop::new(future),
                dropped: false,
                delivered: false,
            }),
        }
    }

    /// The executor's part of the task.
    ///
    /// # Safety
    /// Only on the executor's thread (see the `Send` impl), and never while another
    /// `&mut` to it lives: `run` and `abandon` are not re-entered (a task cannot be
    /// polled from inside its own poll, and the executor abandons tasks only when it
    /// is dropped, never during a poll).
    #[allow(clippy::mut_from_ref)]
    unsafe fn future_slot(&self) -> &mut FutureSlot<F> {
        // SAFETY: by this function's contract, this is the only reference to it.
        unsafe { &mut *self.future.get() }
    }

    /// Ends the task with `result`: drops the future, then hands the outcome over. A
    /// panic in the future's `Drop` replaces the outcome (the value, if any, is dropped
    /// too, its own panic caught): the handle learns that the task panicked.
    fn end(&self, slot: &mut FutureSlot<F>, result: Result<F::Output, JoinError>) {
        let result = match slot.drop_future() {
            Ok(()) => result,
            Err(payload) => {
                let panicked = Err(JoinError::Panicked(into_message(payload)));
                let place = "the drop of a task's output";
                self.header.catch_reported(place, move || drop(result));
                panicked
            }
        };
        slot.delivered = true;
        self.header.mark_finished();
        self.slot.finish(result, &self.header);
    }
}

impl<F> FutureSlot<F> {
    /// Drops the future in place, at most once, catching a panic from its `Drop`.
    fn drop_future(&mut self) -> Result<(), Payload> {
        if mem::replace(&mut self.dropped, true) {
            return Ok(());
        }
        let future = &mut self.future;
        // SAFETY: the future is dropped where it lies, as `Pin` requires of pinned
        // data, and only once: `dropped` was false and is now true, and no code touches
        // `future` once it is set (polls check `delivered`, which `end` sets right
        // after this).
        catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(future) }))
    }
}

impl<F> TaskHandle for TaskCell<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn header(&self) -> &TaskHeader {
        &self.header
    }
}

impl<F> RunTask for TaskCell<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn run(self: Arc<Self>) -> Option<Poll<()>> {
        if self.header.is_complete() {
            return None; // queued by a wake during its last poll: nothing to do
        }
        // SAFETY: `run` is called by the task's executor, on its thread (`RunTask`).
        let slot = unsafe { self.future_slot() };
        let outcome = {
            // SAFETY: the future is never moved while pinned: no method moves it, and
            // it is only ever dropped in place (`drop_future`); it has not been
            // dropped, since the task is not complete.
            let future = unsafe { Pin::new_unchecked(&mut *slot.future) };
            let _current = CurrentTask::enter(&self);
            // The waker is borrowed from the task's own `Arc`: the poll takes no
            // reference; only a future that keeps a clone does.
            let waker = task_waker_ref(&self);
            let mut cx = Context::from_waker(&waker);
            polled(&self.header, &waker, |cancelled| {
                if cancelled {
                    return Poll::Ready(Err(JoinError::Cancelled)); // not polled again
                }
                // `AssertUnwindSafe`: after a panic the future is never polled again
                // (the task ends and the future is dropped), so its broken state is
                // never seen.
                match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                    Err(payload) => Poll::Ready(Err(JoinError::Panicked(into_message(payload)))),
                }
            })
        };
        Some(outcome.map(|result| self.end(slot, result)))
    }

    fn abandon(&self) {
        // SAFETY: called by the task's executor, on its thread, as it is dropped.
        let slot = unsafe { self.future_slot() };
        if !slot.delivered {
            self.end(slot, Err(JoinError::Cancelled));
        }
    }
}
#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// What a task costs at rest is what a million of them cost: this is the budget
    /// of one task's allocation (before its future), watched so that it only grows on
    /// purpose. The header is 96 bytes (a third of it the diagnostics' wait records
    /// and counts); the outcome slot 64, the future's flags 8.
    #[test]
    fn a_task_allocation_stays_within_its_budget() {
        assert_eq!(std::mem::size_of::<TaskHeader>(), 96);
        assert_eq!(std::mem::size_of::<TaskCell<std::future::Ready<()>>>(), 168);
    }
}
