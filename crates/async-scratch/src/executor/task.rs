//! The task: what a spawned future becomes, and what every part of the executor holds
//! of it.
//!
//! A task is one allocation, a [`TaskCell`](crate::executor::task::TaskCell): first its
//! [`TaskHeader`], the part any thread may read (its id, name, spawn location and
//! state word, and how its wakers reach it), then the slot its outcome waits in, then
//! its future, which only the executor's thread touches. Everything else holds the
//! task through a [`TaskRef`]: one pointer to the header, counted in the state word
//! (see `task_ref`), the same for the ready queue, the executor's list, the wakers,
//! the `JoinHandle` and the wait records.
//!
//! **Step 4** introduced tasks; step 5's diagnostics read their headers; this module
//! gathers what a task is, which the executor's run loop (in `mod.rs`) only drives.

use super::join_handle::{JoinError, JoinHandle, JoinSlot};
use super::schedule::{owner_as_dyn, Owner, Schedule};
use super::state::{Snapshot, State};
use super::task_ref::{Ran, TaskRef, TaskVtable};
use super::task_waker::task_waker_ref;
use super::waits::{report_certain_cycle, WaitRecords};
use crate::coop;
use crate::diagnostics::{Diagnostic, TaskId, TaskInfo};
use crate::observe::Event;
use crate::park::Unpark;
use crate::unwind::{into_message, Payload};
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// The id of `block_on`'s own future, which is not in the slab.
pub(super) const ROOT: TaskId = crate::observe::BLOCK_ON;

/// The thread-safe half of a task, which its wakers and its `JoinHandle` reach (it is
/// the head of the task's [`TaskCell`]): who the task is, and who schedules it.
pub(crate) struct TaskHeader {
    pub(super) id: TaskId,
    /// Queued, being polled, complete, cancelled, how many owning wakers are alive
    /// anywhere (the waker vtable counts them; borrowed wakers, used for polls, are not
    /// counted), and how many references to the task: one atomic word, see `state`.
    pub(super) state: State,
    /// How many of those are held by our own primitives for a wait the executor knows
    /// (a `JoinHandle`, the async `Mutex`). The rest are held "outside".
    pub(super) internal_waits: AtomicU32,
    /// How many records `waits_on` holds, readable without its lock: after every
    /// `Pending` poll the executor asks whether the task has any (to look for a wait
    /// cycle), and nearly always the answer is no. (It fits in the padding after
    /// `internal_waits`: the header does not grow.)
    pub(super) wait_records: AtomicU32,
    /// What the task waits for, when it is one of those known waits: one record per
    /// registration, the latest last, since a task may wait on several things at once
    /// (`join(handle, lock.lock())`), and one wait ending must not erase another.
    pub(super) waits_on: WaitRecords,
    /// Its scheduler: the executor, or a runtime (see `schedule`).
    pub(super) owner: Owner,
    /// What depends on the task's future type and its scheduler's: how to poll, end,
    /// free and queue it, and how to reach the scheduler.
    pub(super) vtable: &'static TaskVtable,
    /// A thin pointer to the name: 8 bytes in every task instead of a `Box<str>`'s 16.
    /// Few tasks have a name, and each pays one small allocation more; a million
    /// nameless tasks save 8 MB.
    name: Option<Box<Box<str>>>,
    pub(super) spawned_at: &'static Location<'static>,
}

impl TaskHeader {
    /// The header of a task whose allocation `vtable` was made for, with one reference
    /// (its maker's).
    fn new<S: Schedule>(
        id: TaskId,
        owner: &Arc<S>,
        vtable: &'static TaskVtable,
        name: Option<Box<str>>,
        spawned_at: &'static Location<'static>,
    ) -> TaskHeader {
        TaskHeader {
            id,
            // A new task is queued at once.
            state: State::new_task(owner.keeps_books(), owner.observed()),
            internal_waits: AtomicU32::new(0),
            wait_records: AtomicU32::new(0),
            waits_on: WaitRecords::new(),
            owner: Owner::new(owner),
            vtable,
            name: name.map(Box::new),
            spawned_at,
        }
    }

    /// The task's scheduler, whatever its type (see `schedule`).
    pub(crate) fn owner(&self) -> &dyn Schedule {
        // SAFETY: the vtable was made for this header's owner's type (`new` and
        // `TaskCell::allocate` check they go together).
        unsafe { (self.vtable.owner)(&self.owner) }
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// The task's scheduler, as the type it is.
    ///
    /// # Safety
    /// The task's scheduler is an `S` (its vtable was made for `S`).
    pub(crate) unsafe fn scheduler<S>(&self) -> &S {
        // SAFETY: by the contract above.
        unsafe { self.owner.get::<S>() }
    }

    /// One more reference to the task's scheduler, as an `Arc` of its own.
    ///
    /// # Safety
    /// As for [`scheduler`](TaskHeader::scheduler).
    pub(crate) unsafe fn owner_arc<S>(&self) -> Arc<S> {
        // SAFETY: by the contract above.
        unsafe { self.owner.arc::<S>() }
    }

    /// The name given at spawn, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|name| &**name)
    }

    pub(crate) fn info(&self) -> TaskInfo {
        TaskInfo {
            id: self.id,
            name: self.name().map(str::to_string),
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
        if !now.keeps_books() {
            return;
        }
        if now.looks_lost() {
            self.owner().suspect(self);
        } else {
            // Fewer wakers outside may turn "cannot tell" into a certain deadlock.
            self.one_possible_wake_fewer(now);
        }
    }

    /// Reports the task as lost if it is pending and no waker for it is left anywhere.
    /// The count and the flags are one word, read at once: a wake in flight queues its
    /// task before it releases its waker, so a count of 0 read with the flags shows any
    /// wake that happened; and a task being polled (`RUNNING`) is never taken for lost,
    /// since its poll may make a new waker (its poll's end checks it again). So this may
    /// run on any thread: on the executor's, between polls; on the thread that dropped
    /// a runtime task's last waker. (It once raced with polls, before `RUNNING` was in
    /// the word it reads: Miri found a false report that way.)
    pub(crate) fn check_lost(&self) {
        if !self.state.load().looks_lost() {
            return;
        }
        if self.state.mark_lost_reported() {
            self.owner()
                .report_later(Diagnostic::LostTask { task: self.info() });
        }
    }

    /// Runs `user_code` for this task where nobody waits to be handed its panic (see
    /// the module doc's rule on where user code runs): a panic is caught and reported.
    pub(crate) fn catch_reported(&self, place: &'static str, user_code: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(user_code)) {
            self.owner()
                .report_caught_panic(Some(self.info()), place, payload);
        }
    }

    pub(crate) fn mark_finished(&self) {
        self.state.complete();
    }

    pub(crate) fn is_scheduled(&self) -> bool {
        self.state.load().is_scheduled()
    }

    /// Says whether the task's `JoinHandle` is loose (see `State::set_handle_loose`).
    /// A handle that stops being loose is one possible wake fewer: if the executor
    /// parked undecided, it looks again, as for the release of a waker.
    pub(crate) fn set_handle_loose(&self, loose: bool) {
        let now = self.state.set_handle_loose(loose);
        if !loose {
            self.one_possible_wake_fewer(now);
        }
    }

    /// A waker or a loose handle of this task went (`now` is the state word after):
    /// if the executor parked undecided, it must look again (see `waker_released`).
    pub(super) fn one_possible_wake_fewer(&self, now: Snapshot) {
        if !now.is_scheduled() && !now.is_complete() && now.keeps_books() {
            self.owner().look_again_if_undecided();
        }
    }

    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        self.state.load().is_complete()
    }

    /// Whether the task is being polled right now (on its executor's thread).
    pub(super) fn is_running(&self) -> bool {
        self.state.load().is_running()
    }
}

impl Drop for TaskHeader {
    fn drop(&mut self) {
        // SAFETY: the vtable was made for this owner's type; the owner goes with the
        // header, once.
        unsafe { (self.vtable.drop_owner)(&self.owner) };
    }
}

/// A task on the ready queue: the task itself, one reference to it, so that running
/// it needs no lookup. It may be pushed from any thread, by a waker.
pub(crate) type Runnable = TaskRef;

thread_local! {
    /// The task being polled on this thread, as a raw pointer: set for the length of
    /// each poll, where the poller holds an `Arc` to the task (see `CurrentTask`).
    static CURRENT_TASK: Cell<Option<NonNull<TaskHeader>>> = const { Cell::new(None) };
}

/// Marks a task as the one being polled on this thread, until dropped. It borrows a
/// reference to the task for its whole life, so the task outlives the mark.
pub(crate) struct CurrentTask<'a> {
    previous: Option<NonNull<TaskHeader>>,
    _task: std::marker::PhantomData<&'a TaskRef>,
}

impl<'a> CurrentTask<'a> {
    /// Inlined, as is the guard's drop: a poll is entered from a task's vtable, made
    /// in the crate that spawned the task, where a call into this crate cannot be
    /// inlined unless it says so, and each poll would pay two calls for two moves.
    #[inline]
    pub(crate) fn enter(task: &'a TaskRef) -> CurrentTask<'a> {
        let pointer = task.as_ptr();
        let previous = CURRENT_TASK.with(|current| current.replace(Some(pointer)));
        CurrentTask {
            previous,
            _task: std::marker::PhantomData,
        }
    }
}

impl Drop for CurrentTask<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = CURRENT_TASK.try_with(|current| current.set(self.previous));
    }
}

/// The task being polled on this thread, if any.
pub(crate) fn current_task() -> Option<TaskRef> {
    let pointer = CURRENT_TASK.try_with(Cell::get).ok().flatten()?;
    // SAFETY: `CURRENT_TASK` holds a pointer only while a `CurrentTask` guard lives,
    // and the guard borrows a `TaskRef` of that task for its whole life (its lifetime
    // parameter), so the task is live and has a reference; the pointer is that
    // `TaskRef`'s, with its provenance. Nested guards restore the outer pointer on
    // drop, so the innermost live guard's task is the one read here.
    Some(unsafe { TaskRef::clone_from_raw(pointer) })
}

/// Runs one poll of the task with `header`, whose scheduler is `owner`, keeping its
/// state word and the watchdog up to date, and checking afterwards whether a pending
/// task kept any waker. `poll` is told whether the task was cancelled: read in the same
/// atomic step that unqueues it, so an abort is either seen by this poll or queues the
/// task again (see `state`).
pub(crate) fn polled<T, S: Schedule>(
    header: &TaskHeader,
    owner: &S,
    own_waker: &Waker,
    poll: impl FnOnce(bool) -> Poll<T>,
) -> Polled<T> {
    let cancelled = header.state.start_poll().is_cancelled();
    owner.observe(|| Event::Polling { task: header.id });
    owner.poll_started(header);
    let outcome = coop::with_budget(own_waker, || poll(cancelled));
    owner.poll_ended();
    let ready = outcome.is_ready();
    owner.observe(|| Event::Polled {
        task: header.id,
        ready,
    });
    if let Poll::Ready(output) = outcome {
        header.mark_finished();
        return Polled::Ready(output);
    }
    let now = header.state.end_poll();
    if now.is_scheduled() {
        return Polled::Pending { woken: true }; // not lost, and no wait is stuck
    }
    // The lost-task check reads the state word, which any thread may (see
    // `check_lost`). The cycle check reads other tasks too, and only a scheduler that
    // polls on one thread can trust what it reads of them (see
    // `Schedule::checks_cycles_after_polls`).
    if now.keeps_books() {
        if now.looks_lost() {
            header.check_lost();
        }
        if owner.checks_cycles_after_polls() && header.has_known_waits() {
            report_certain_cycle(header);
        }
    }
    Polled::Pending { woken: false }
}

/// What one poll of a task gave.
pub(crate) enum Polled<T> {
    Ready(T),
    /// `woken`: a wake came during the poll; it queued nothing, so the poller queues
    /// the task again (see `State::end_poll`).
    Pending {
        woken: bool,
    },
}

/// A spawned task, in one allocation: its header (id, state word, name, spawn
/// location), the slot its outcome waits in, and its future. It is shared through
/// [`TaskRef`]s by the task's wakers, its `JoinHandle`, the executor's list of tasks
/// and, while it is queued, the ready queue; the last of them frees it.
///
/// `repr(C)`, header first: a task's waker and every `TaskRef` point at the header,
/// and reach the whole cell from there (through the header's vtable, made for this
/// type). The header and the outcome slot form a [`TaskPrefix`], whose layout depends
/// on the output type only, so that a `JoinHandle<T>`, which does not know the
/// future's type, finds the slot.
///
/// The future sits in an `UnsafeCell`, apart from the header: the executor reads a
/// pending task's header (its name, its waits) through shared references, and those
/// must never cover the future, because the future may hold references into itself
/// (a `&mut` to a local, held across an `.await`) that any other reference to its
/// memory would invalidate. (Miri reported exactly that while the header was read
/// through the future.) Only the executor's thread touches the future: it polls it in
/// `run` and drops it in `end`.
#[repr(C)]
pub(crate) struct TaskCell<F: Future, S> {
    prefix: TaskPrefix<F::Output>,
    future: UnsafeCell<FutureSlot<F>>,
    /// The scheduler's type, for the vtable: the scheduler itself is the header's
    /// `owner`.
    _scheduler: PhantomData<S>,
}

/// The start of every task whose output is `T`, whatever its future: the header,
/// then the outcome slot.
#[repr(C)]
pub(crate) struct TaskPrefix<T> {
    pub(super) header: TaskHeader,
    pub(super) slot: JoinSlot<T>,
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
// - The future is touched only by `run` and `abandon`, and those only by whoever holds
//   the task's queued reference, one at a time (the state word's `RUNNING` says who;
//   see `new_task`'s contract). On the one-thread executor, whose futures need not be
//   `Send`, that is always the executor's thread: `run` and `abandon` are called only
//   by the executor that spawned the task (its `Core` is `!Send`, and it runs them
//   from its own thread), and every way a task ends drops the future there. A runtime
//   passes its tasks between its workers, and spawns only futures that are `Send`. If
//   the last reference goes on another thread, the future is gone already:
//   `ManuallyDrop` keeps dropping the cell from ever dropping it.
// - The output, which need not be `Send` either, moves only between the executor's
//   thread (which puts it in the slot, or drops it if the handle is gone) and the
//   `JoinHandle` (which takes it, or drops it in its own `Drop`). A handle is `Send`
//   only when the output is (`PhantomData<T>`), so for an output that is not, all of
//   this happens on the thread that spawned the task, which is the executor's. Nothing
//   else takes the output out: `&JoinHandle` only reads whether it is there. And a
//   cell is never freed with an output still in its slot: a handle forgotten with
//   `mem::forget` leaks its reference to the cell too.
// - The slot's two cells (the outcome, the awaiter's waker) have no lock: the state
//   word hands each from one side to the other (see "Who may touch the outcome slot"
//   in `state`, and its loom models), so no cell is touched by two threads at once.
unsafe impl<F: Future, S> Send for TaskCell<F, S> {}
// SAFETY: as for `Send`: shared references on other threads reach the header, and
// through `&JoinHandle` whether the outcome is there, never the future or the output.
unsafe impl<F: Future, S> Sync for TaskCell<F, S> {}

/// Makes a task of `future`, scheduled by `owner`, with the id `id`: one allocation.
/// Returns its first reference, already `SCHEDULED` (the caller queues it), and its
/// `JoinHandle`.
///
/// # Safety
/// The task is run (`TaskRef::run`) and abandoned (`TaskRef::abandon`) by one thread at
/// a time, the holder of its queued reference; and if `owner` may hand it to another
/// thread than this one, `F` and `F::Output` are `Send`. (See `TaskCell`'s `Send`
/// impl: `TaskRef` is `Send` whatever the future.)
pub(crate) unsafe fn new_task<F, S>(
    owner: &Arc<S>,
    id: TaskId,
    name: Option<Box<str>>,
    spawned_at: &'static Location<'static>,
    future: F,
) -> (TaskRef, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    // The vtable is taken once, here: each `&Self::VTABLE` may be a copy of its own
    // (a `const` has no one address), so the header must not be compared with another.
    let vtable = &TaskCell::<F, S>::VTABLE;
    let header = TaskHeader::new(id, owner, vtable, name, spawned_at);
    let task = TaskCell::<F, S>::allocate(header, future);
    // SAFETY: `task` is a `TaskCell<F, S>`, whose output is the handle's.
    let handle = unsafe { JoinHandle::new(task.clone()) };
    (task, handle)
}

impl<F: Future, S: Schedule> TaskCell<F, S>
where
    F: 'static,
    F::Output: 'static,
{
    /// What a `TaskRef` to a `TaskCell<F, S>` does.
    const VTABLE: TaskVtable = TaskVtable {
        run: Self::run,
        abandon: Self::abandon,
        dealloc: Self::dealloc,
        enqueue: Self::enqueue,
        owner: owner_as_dyn::<S>,
        drop_owner: Owner::release::<S>,
    };

    /// Allocates the task, with `header` made with this type's vtable (by `new_task`,
    /// its one caller); returns the one reference it starts with.
    fn allocate(header: TaskHeader, future: F) -> TaskRef {
        let cell = Box::new(TaskCell::<F, S> {
            prefix: TaskPrefix {
                header,
                slot: JoinSlot::new(),
            },
            future: UnsafeCell::new(FutureSlot {
                future: ManuallyDrop::new(future),
                dropped: false,
                delivered: false,
            }),
            _scheduler: PhantomData,
        });
        let cell = NonNull::from(Box::leak(cell));
        // SAFETY: a live allocation made as the vtable says (a `Box<TaskCell<F>>`),
        // `repr(C)` with the header first, so the cast pointer is the header's, with the
        // provenance of the whole box; its state word counts one reference, handed over.
        unsafe { TaskRef::from_raw(cell.cast()) }
    }

    /// The cell a `TaskRef` points at.
    ///
    /// # Safety
    /// `task` was made by [`allocate`](TaskCell::allocate) for this `F` and `S` (its
    /// header's vtable is this type's).
    unsafe fn of(task: &TaskRef) -> &TaskCell<F, S> {
        // SAFETY: by the contract above, the pointer is a `Box<TaskCell<F, S>>`'s, and the
        // reference keeps it alive for the borrow. A shared reference covers the future
        // only through its `UnsafeCell`, so it asserts nothing about the future's
        // memory (see the type's doc).
        unsafe { task.as_ptr().cast::<TaskCell<F, S>>().as_ref() }
    }

    /// The scheduler's part of the task: the future.
    ///
    /// # Safety
    /// Only by the holder of the task's queued reference (see the `Send` impl), and
    /// never while another `&mut` to it lives: `run` and `abandon` are not re-entered
    /// (a task cannot be polled from inside its own poll, and a scheduler abandons its
    /// tasks only as it shuts down, when no poll runs).
    #[allow(clippy::mut_from_ref)]
    unsafe fn future_slot(&self) -> &mut FutureSlot<F> {
        // SAFETY: by this function's contract, this is the only reference to it.
        unsafe { &mut *self.future.get() }
    }

    /// Ends the task with `result`: drops the future, then hands the outcome over. A
    /// panic in the future's `Drop` replaces the outcome (the value, if any, is dropped
    /// too, its own panic caught): the handle learns that the task panicked.
    fn end(&self, slot: &mut FutureSlot<F>, result: Result<F::Output, JoinError>) {
        let header = &self.prefix.header;
        let result = match slot.drop_future() {
            Ok(()) => result,
            Err(payload) => {
                let panicked = Err(JoinError::Panicked(into_message(payload)));
                let place = "the drop of a task's output";
                header.catch_reported(place, move || drop(result));
                panicked
            }
        };
        slot.delivered = true;
        header.mark_finished();
        self.prefix.slot.finish(result, header);
    }

    /// Polls the task once (`TaskVtable::run`).
    ///
    /// # Safety
    /// `task` is a `TaskCell<F, S>`'s, and this runs by the holder of its queued
    /// reference (see `new_task`).
    unsafe fn run(task: &TaskRef) -> Ran {
        if task.is_complete() {
            return Ran::Skipped; // queued by a wake that raced its end: nothing to do
        }
        // SAFETY: by the contract above.
        let cell: &TaskCell<F, S> = unsafe { Self::of(task) };
        // SAFETY: by the holder of the queued reference, by the contract above.
        let slot = unsafe { cell.future_slot() };
        // SAFETY: the vtable that led here was made for this `S`.
        let owner = unsafe { task.owner.get::<S>() };
        let outcome = {
            // SAFETY: the future is never moved while pinned: no method moves it, and
            // it is only ever dropped in place (`drop_future`); it has not been
            // dropped, since the task is not complete.
            let future = unsafe { Pin::new_unchecked(&mut *slot.future) };
            let _current = CurrentTask::enter(task);
            // The waker is borrowed from the queue's reference: the poll takes no
            // reference; only a future that keeps a clone does.
            let waker = task_waker_ref(task);
            let mut cx = Context::from_waker(&waker);
            polled(task, owner, &waker, |cancelled| {
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
        match outcome {
            Polled::Ready(result) => {
                cell.end(slot, result);
                Ran::Finished
            }
            Polled::Pending { woken } => Ran::Pending { woken },
        }
    }

    /// Ends the task as its executor is dropped (`TaskVtable::abandon`).
    ///
    /// # Safety
    /// As for [`run`](TaskCell::run).
    unsafe fn abandon(task: &TaskRef) {
        // SAFETY: by the contract above.
        let cell: &TaskCell<F, S> = unsafe { Self::of(task) };
        // SAFETY: called by the task's scheduler as it shuts down, when no poll runs.
        let slot = unsafe { cell.future_slot() };
        if !slot.delivered {
            cell.end(slot, Err(JoinError::Cancelled));
        }
    }

    /// Frees the task (`TaskVtable::dealloc`).
    ///
    /// # Safety
    /// `header` is a `TaskCell<F, S>`'s, and its last reference is gone.
    unsafe fn dealloc(header: NonNull<TaskHeader>) {
        // SAFETY: by the contract above, the `Box` that `allocate` leaked, now owned by
        // nobody else. Its future was dropped by its scheduler already (or is leaked by
        // `ManuallyDrop`, if the task never ended).
        drop(unsafe { Box::from_raw(header.cast::<TaskCell<F, S>>().as_ptr()) });
    }

    /// Queues the task on its scheduler, with the reference given
    /// (`TaskVtable::enqueue`).
    fn enqueue(task: TaskRef) {
        // SAFETY: the vtable that led here was made for this `S`: the task's owner is
        // an `S`.
        unsafe { S::schedule(task) };
    }
}

/// `block_on`'s own future, as a task: a header, so that it has a waker, a state word
/// and wait records like any task, and beside it what ends the park of the thread that
/// polls it. It is never on a queue and never polled through its vtable (`block_on`
/// polls it whenever its `SCHEDULED` bit is on, see [`poll_root`]), so a wake only has
/// to end that park: the executor's, or a runtime's `block_on` thread's (a runtime may
/// run many `block_on`s at once, each parked on its own thread). `repr(C)`, header
/// first, as every task: a `TaskRef` to it points at the header.
#[repr(C)]
struct RootCell<S> {
    header: TaskHeader,
    unparker: Arc<dyn Unpark>,
    _scheduler: PhantomData<S>,
}

impl<S: Schedule> RootCell<S> {
    /// What a `TaskRef` to a `RootCell<S>` does: a root is never queued nor run
    /// through its vtable; a wake ends its thread's park.
    const VTABLE: TaskVtable = TaskVtable {
        run: |_| Ran::Skipped,
        abandon: |_| {},
        dealloc: Self::dealloc,
        enqueue: Self::wake,
        owner: owner_as_dyn::<S>,
        drop_owner: Owner::release::<S>,
    };

    fn wake(root: TaskRef) {
        // SAFETY: this vtable is only ever a `RootCell<S>`'s (`allocate_root`),
        // `repr(C)` with the header first; `root` keeps it alive for the call.
        let cell = unsafe { root.as_ptr().cast::<RootCell<S>>().as_ref() };
        cell.unparker.unpark();
    }

    /// # Safety
    /// `header` is the `Box` that `allocate_root` leaked, and its last reference is
    /// gone.
    unsafe fn dealloc(header: NonNull<TaskHeader>) {
        // SAFETY: by the contract above.
        drop(unsafe { Box::from_raw(header.cast::<RootCell<S>>().as_ptr()) });
    }
}

/// A root task for `block_on`'s own future on `owner`, whose wakes call `unparker`
/// (see `RootCell`): so that the scheduler's diagnostics see what the future waits on
/// and what it holds. It has no `JoinHandle`: nothing can abort it, so it is not loose.
pub(crate) fn allocate_root<S: Schedule>(
    owner: &Arc<S>,
    id: TaskId,
    name: Option<Box<str>>,
    spawned_at: &'static Location<'static>,
    unparker: Arc<dyn Unpark>,
) -> TaskRef {
    let vtable = &RootCell::<S>::VTABLE;
    let cell = Box::new(RootCell::<S> {
        header: TaskHeader::new(id, owner, vtable, name, spawned_at),
        unparker,
        _scheduler: PhantomData,
    });
    let cell = NonNull::from(Box::leak(cell));
    // SAFETY: a live `RootCell<S>`, `repr(C)` with the header first, as its vtable's
    // `dealloc` expects; its state word counts one reference, handed over.
    let root = unsafe { TaskRef::from_raw(cell.cast()) };
    root.state.set_handle_loose(false);
    root
}

/// Polls `block_on`'s own future once, as its root task: marked as the task being
/// polled, with the root's waker, and the poll's book-keeping (see `polled`). Called
/// when the root's `SCHEDULED` bit is on; woken during its poll, the root is polled
/// again because the bit is on again.
pub(crate) fn poll_root<F: Future, S: Schedule>(
    root: &TaskRef,
    owner: &S,
    future: Pin<&mut F>,
) -> Poll<F::Output> {
    let _current = CurrentTask::enter(root);
    let waker = task_waker_ref(root);
    // A root has no handle: nothing cancels it.
    let polled = polled(root, owner, &waker, |_cancelled| {
        future.poll(&mut Context::from_waker(&waker))
    });
    match polled {
        Polled::Ready(output) => Poll::Ready(output),
        Polled::Pending { .. } => Poll::Pending,
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

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// What a task costs at rest is what a million of them cost: this is the budget
    /// of one task's allocation (before its future), watched so that it only grows on
    /// purpose. The header is 64 bytes (its state word, vtable, executor, id, spawn
    /// location, a thin name, and the diagnostics' wait records and count); the
    /// outcome slot 48 (no lock: see `state`), the future's flags 8.
    #[test]
    fn a_task_allocation_stays_within_its_budget() {
        assert_eq!(std::mem::size_of::<TaskHeader>(), 64);
        assert_eq!(std::mem::size_of::<JoinSlot<()>>(), 48);
        let cell =
            std::mem::size_of::<TaskCell<std::future::Ready<()>, super::super::shared::Shared>>();
        assert_eq!(cell, 120);
    }
}
