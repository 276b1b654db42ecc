//! The waker of a task: one `static` vtable for every task, whatever its output type.
//!
//! [`crate::waker`] builds a vtable for each [`Wakeable`](crate::waker::Wakeable) type
//! at compile time, as a constant. That is enough to wake, but not to *compare*:
//! [`Waker::will_wake`] says two wakers are the same when their data pointers and their
//! vtable pointers are, and a constant has no address of its own: the compiler may
//! place a copy of it in each codegen unit. In a release build, a task's waker and its
//! own clone then had different vtable addresses, `will_wake` said "no", and every
//! re-poll of a `Sleep`, a lock future or a `JoinHandle` cloned the waker again and
//! re-registered its wait.
//!
//! A `static` has one address. It cannot be generic, so the vtable here knows only the
//! [`TaskHeader`] (the waker's data pointer, at the start of every task's allocation),
//! and the header knows how to take and give back a reference to the allocation it
//! heads ([`TaskRefs`]): the one thing that depends on the task's type.

use super::context::queue_here;
use super::task::{RunTask, Runnable, TaskHeader};
use crate::observe::Event;
use crate::waker::{borrowed_waker, WakerRef};
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// What a task's waker needs to know of the allocation a [`TaskHeader`] sits at the
/// start of (an `Arc<TaskCell<F>>` for a spawned task, an `Arc<TaskHeader>` for
/// `block_on`'s future): how to count references to it, and how to queue it.
pub(crate) struct TaskRefs {
    /// Takes one more strong reference. Safety: the pointer must be one of a live
    /// allocation of the type these functions were made for.
    retain: unsafe fn(*const TaskHeader),
    /// Gives one back (and frees the allocation with the last). Same safety, plus: the
    /// caller owns the reference it gives back.
    release: unsafe fn(*const TaskHeader),
    /// Puts the task on its executor's ready queue (its `SCHEDULED` bit just went
    /// on). Safety: as for `retain`.
    pub(crate) enqueue: unsafe fn(*const TaskHeader),
}

/// A type whose values start with their [`TaskHeader`], so that a pointer to one is a
/// pointer to its header. `Send + Sync`: its wakers may take it to any thread, and drop
/// the last reference to it there.
///
/// # Safety
/// The type is `TaskHeader` itself, or a `#[repr(C)]` struct whose first field is the
/// header; and that header's `refs` were made for `Self` (`TaskRefs::spawned::<Self>`,
/// or `TaskRefs::ROOT` for the header alone).
pub(crate) unsafe trait StartsWithHeader: Send + Sync {}

// SAFETY: the header is the whole value; `block_on` makes it with `TaskRefs::ROOT`.
unsafe impl StartsWithHeader for TaskHeader {}

impl TaskRefs {
    /// The functions for a spawned task, an `Arc<A>`: waking it puts it on the ready
    /// queue.
    pub(crate) const fn spawned<A: StartsWithHeader + RunTask + 'static>() -> TaskRefs {
        TaskRefs {
            retain: retain::<A>,
            release: release::<A>,
            enqueue: enqueue::<A>,
        }
    }

    /// The functions for `block_on`'s own future, an `Arc<TaskHeader>`. It is never
    /// on the ready queue: `block_on` polls it whenever its `SCHEDULED` bit is on, so
    /// waking it only has to end the executor's park.
    pub(crate) const ROOT: TaskRefs = TaskRefs {
        retain: retain::<TaskHeader>,
        release: release::<TaskHeader>,
        enqueue: unpark_only,
    };
}

/// # Safety
/// As for [`retain`]: a live `Arc<A>`'s pointer, which the caller keeps alive for the
/// length of the call (a waker waking its task owns or borrows a reference).
unsafe fn enqueue<A: StartsWithHeader + RunTask + 'static>(header: *const TaskHeader) {
    // SAFETY: by the contract above; the queue gets a reference of its own.
    let task: Runnable = unsafe {
        retain::<A>(header);
        Arc::from_raw(header.cast::<A>())
    };
    // SAFETY: the caller's reference keeps the header alive during the call (the
    // queue's reference, moved just below, would too).
    let header = unsafe { &*header };
    if let Some(task) = queue_here(&header.shared, task) {
        header.shared.push_ready(task); // from another thread, or another executor
    }
}

/// # Safety
/// `header` points at a live header.
unsafe fn unpark_only(header: *const TaskHeader) {
    // SAFETY: by the contract above.
    unsafe { &*header }.shared.unparker.unpark();
}

/// # Safety
/// `header` is the pointer of a live `Arc<A>`, cast: it keeps the provenance of the
/// whole allocation (it was never narrowed through a reference to the header field).
unsafe fn retain<A>(header: *const TaskHeader) {
    // SAFETY: by the contract above, this is `Arc::as_ptr` of a live `Arc<A>`.
    unsafe { Arc::increment_strong_count(header.cast::<A>()) }
}

/// # Safety
/// As for [`retain`], and the caller owns the strong reference given back.
unsafe fn release<A>(header: *const TaskHeader) {
    // SAFETY: by the contract above; the reference is the caller's to give.
    unsafe { Arc::decrement_strong_count(header.cast::<A>()) }
}

/// The one vtable of every task's waker.
static TASK_WAKER: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// Whether `waker` is the waker of the task whose header is at `header`.
pub(crate) fn is_waker_of(waker: &Waker, header: *const TaskHeader) -> bool {
    std::ptr::eq(waker.data(), header.cast()) && std::ptr::eq(waker.vtable(), &TASK_WAKER)
}

/// The waker a task is polled with, borrowed from the `Arc` that holds it: it takes
/// no reference; a future that keeps it clones it, and the clone owns one.
pub(crate) fn task_waker_ref<A: StartsWithHeader>(task: &Arc<A>) -> WakerRef<'_> {
    let raw = RawWaker::new(Arc::as_ptr(task).cast(), &TASK_WAKER);
    // SAFETY: the data pointer is the live `Arc`'s, for as long as the borrow of
    // `task`, and it points at the task's header with the provenance of the whole
    // allocation (`StartsWithHeader`); the `WakerRef` never releases the reference it
    // does not own (see `borrowed_waker`), and the vtable's functions keep the
    // `RawWaker` contract for such a pointer (see each one).
    unsafe { borrowed_waker(raw) }
}

/// # Safety (for the four functions below)
/// `data` is a header pointer with the provenance of its whole allocation, which a
/// waker owns a reference to (or, for a borrowed waker, its borrow keeps alive).
unsafe fn header<'a>(data: *const ()) -> &'a TaskHeader {
    // SAFETY: by the contract above, the allocation is live while the waker is.
    unsafe { &*data.cast::<TaskHeader>() }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned keeps the allocation alive.
    let task = unsafe { header(data) };
    // SAFETY: `refs` was made for this allocation's type, and it is live.
    unsafe { (task.refs.retain)(data.cast()) };
    task.waker_created();
    RawWaker::new(data, &TASK_WAKER)
}

unsafe fn wake(data: *const ()) {
    // The reference this waker owned is given back when `consumed` goes: after the
    // wake, or while a panicking wake (a custom `Unpark`) unwinds.
    let consumed = ConsumedWaker { data };
    // SAFETY: the waker is alive until `consumed` is dropped, and its pointer has the
    // provenance of the whole allocation.
    unsafe { wake_task(consumed.data.cast()) };
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the waker is alive, and keeps its reference.
    unsafe { wake_task(data.cast()) };
}

/// Wakes the task whose header is at `header`: queues it unless it is queued already
/// or over.
///
/// # Safety
/// `header` is a task's pointer with the provenance of its whole allocation (a waker's
/// data pointer, or `Arc::as_ptr` of the task, cast), kept alive by the caller.
pub(crate) unsafe fn wake_task(header: *const TaskHeader) {
    // SAFETY: by the contract above.
    let task = unsafe { &*header };
    if task.state.wake() {
        task.shared.observe(|| Event::Woken { task: task.id });
        // SAFETY: `refs` were made for this allocation, which the caller keeps alive.
        unsafe { (task.refs.enqueue)(header) };
    }
}

/// Cancels the task whose header is at `header`: its next poll ends it instead of
/// polling its future. Queues it, in the same atomic step, unless it is queued already
/// (see [`state`](super::state)).
///
/// # Safety
/// As for [`wake_task`].
pub(crate) unsafe fn cancel_task(header: *const TaskHeader) {
    // SAFETY: by the contract above.
    if unsafe { &*header }.state.cancel() {
        // SAFETY: as in `wake_task`.
        unsafe { ((*header).refs.enqueue)(header) };
    }
}

unsafe fn drop_waker(data: *const ()) {
    drop(ConsumedWaker { data });
}

/// An owning waker on its way out: counts it gone in the task's state word, then gives
/// its reference back, on every way out of `wake` and `drop`.
struct ConsumedWaker {
    data: *const (),
}

impl Drop for ConsumedWaker {
    fn drop(&mut self) {
        // SAFETY: the waker owned a reference, which keeps the allocation alive until
        // the `release` below gives it back.
        let task = unsafe { header(self.data) };
        task.waker_released();
        let release = task.refs.release;
        // SAFETY: `refs` was made for this allocation's type; the reference is the
        // consumed waker's, given back once. `task` is not used after this.
        unsafe { release(self.data.cast()) };
    }
}
