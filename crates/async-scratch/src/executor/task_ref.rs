//! A reference to a task: one thin pointer, counted in the task's own state word.
//!
//! Until now a task lived in an `Arc<TaskCell<F>>`, and everything that held it held an
//! `Arc<dyn ...>`: a fat pointer (address and vtable, 16 bytes) in the ready queue, in
//! the executor's list, in each `JoinHandle` and wait record, and `Arc`'s own two counts
//! (16 bytes more) in front of every task. A [`TaskRef`] is what those became:
//!
//! - **one pointer** (8 bytes), to the task's [`TaskHeader`], which starts every task
//!   whatever its future type; what depends on that type (how to poll it, end it and
//!   free it) is reached through the header's [`TaskVtable`], one per future type,
//!   as `dyn` would, but written once per task instead of once per pointer;
//! - **counted in the state word** (see [`state`](super::state)): the reference count
//!   is the top bits of the same atomic word as the task's flags and its waker count,
//!   so a waker's clone takes one atomic operation for both counts.
//!
//! The rules are `Arc`'s: cloning adds a reference, dropping gives one back, and the
//! one that gives back the last frees the task. A task is `Send` and `Sync` through a
//! `TaskRef` (its wakers may take it anywhere), with the same argument as before: other
//! threads reach the header, never the future (see `TaskCell`).
//!
//! **Step 4** introduced tasks; this is how the executor holds them since the task
//! core was rebuilt for steps 6 and 7.

use super::schedule::{Owner, Schedule};
use super::task::TaskHeader;
use super::task_waker::is_waker_of;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::task::Waker;

/// What a [`TaskRef`] needs to know of the task it points at, beyond its header: the
/// functions that depend on the task's future type. Every function takes the header's
/// pointer, with the provenance of the whole allocation.
pub(crate) struct TaskVtable {
    /// Polls the task once; `Skipped` if it is over already. Only by the holder of its
    /// queued reference (see `TaskCell::run`).
    pub(super) run: unsafe fn(&TaskRef) -> Ran,
    /// Ends the task as its scheduler shuts down, when no poll runs.
    pub(super) abandon: unsafe fn(&TaskRef),
    /// Frees the allocation; called once, by the last reference.
    pub(super) dealloc: unsafe fn(NonNull<TaskHeader>),
    /// Queues the task on its scheduler (its `SCHEDULED` bit just went on), handing the
    /// queue the reference it is given.
    pub(super) enqueue: fn(TaskRef),
    /// The header's owner as a `&dyn Schedule`; the vtable was made for its type.
    pub(super) owner: for<'a> unsafe fn(&'a Owner) -> &'a dyn Schedule,
    /// Gives back the owner's reference to its scheduler, as the header goes.
    pub(super) drop_owner: unsafe fn(&Owner),
}

/// What running a task from the queue did.
pub(crate) enum Ran {
    /// Nothing: the task was over already.
    Skipped,
    /// Polled to its end.
    Finished,
    /// Polled, and still pending; `woken` if a wake came during the poll, and the
    /// caller must queue it again (see `State::end_poll`).
    Pending { woken: bool },
}

/// One counted reference to a task (see the module doc).
pub(crate) struct TaskRef {
    header: NonNull<TaskHeader>,
}

// SAFETY: a `TaskRef` reaches the task's header, which is `Sync` (atomics, a mutex,
// and `Shared`, itself `Send + Sync`), and through the vtable the future, only on the
// executor's thread (`run` and `abandon`, whose callers keep that rule; see
// `TaskCell`'s `Send` impl for the whole argument). Freeing the task from another
// thread drops no future there: the future is dropped on the executor's thread before
// the task can be freed (it is in a `ManuallyDrop`).
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`: `&TaskRef` gives `&TaskHeader`, and `run`/`abandon` keep
// their own rule.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Takes ownership of one reference to the task at `header`.
    ///
    /// # Safety
    /// `header` points at the header of a live task allocation, made as the header's
    /// vtable says, with the provenance of the whole allocation; and the caller owns
    /// one reference, which it hands over (it was counted in the state word).
    pub(super) unsafe fn from_raw(header: NonNull<TaskHeader>) -> TaskRef {
        TaskRef { header }
    }

    /// Makes a new reference to the task at `header`, which the caller keeps alive.
    ///
    /// # Safety
    /// As for [`from_raw`](TaskRef::from_raw), except that the caller keeps its own
    /// reference (or a borrow of one) for the length of the call.
    pub(super) unsafe fn clone_from_raw(header: NonNull<TaskHeader>) -> TaskRef {
        // SAFETY: the caller keeps the task alive for this call.
        unsafe { header.as_ref() }.state.ref_inc();
        // SAFETY: the reference just counted is the new `TaskRef`'s.
        unsafe { TaskRef::from_raw(header) }
    }

    /// The header's pointer, with the provenance of the whole allocation.
    pub(crate) fn as_ptr(&self) -> NonNull<TaskHeader> {
        self.header
    }

    pub(crate) fn header(&self) -> &TaskHeader {
        self
    }

    /// Polls the task once. Only by the scheduler that owns the task, with the
    /// reference it took from its queue: on the executor's thread, where its queues
    /// are emptied; on a runtime's worker, which took it from a queue.
    pub(crate) fn run(&self) -> Ran {
        // SAFETY: called by the scheduler that owns the task, as `new_task` requires:
        // one thread at a time, the one that holds the queued reference, and only a
        // thread the future may be on (its executor's, or any if it is `Send`).
        unsafe { (self.vtable.run)(self) }
    }

    /// Ends a task whose scheduler is shutting down: drops its future, and tells its
    /// handle it was cancelled. Only when no poll runs: in the executor's `Drop`, on
    /// its thread; in a runtime's shutdown, after its workers stopped.
    pub(crate) fn abandon(&self) {
        // SAFETY: called by the scheduler that owns the task, as `new_task` requires.
        unsafe { (self.vtable.abandon)(self) }
    }

    /// Puts the task on its executor's queue, with this reference.
    pub(crate) fn enqueue(self) {
        (self.vtable.enqueue)(self);
    }

    /// Whether `waker` is this task's own waker (not, say, a `join_all` child's).
    pub(crate) fn is_own_waker(&self, waker: &Waker) -> bool {
        is_waker_of(waker, self.header.as_ptr())
    }
}

impl Deref for TaskRef {
    type Target = TaskHeader;

    fn deref(&self) -> &TaskHeader {
        // SAFETY: this reference keeps the task alive, so its header is.
        unsafe { self.header.as_ref() }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        // SAFETY: `self` keeps the task alive during the call.
        unsafe { TaskRef::clone_from_raw(self.header) }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        if self.state.ref_dec() {
            let dealloc = self.vtable.dealloc;
            // SAFETY: that was the last reference: nothing else can reach the task, and
            // the vtable was made for this allocation. Called once, here.
            unsafe { dealloc(self.header) };
        }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish()
    }
}
