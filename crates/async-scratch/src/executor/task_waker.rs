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
//! [`TaskHeader`] (the waker's data pointer, at the start of every task's allocation):
//! a waker is a [`TaskRef`] by another name. It counts its reference in the task's
//! state word as every `TaskRef` does, plus itself in the waker count, which the
//! diagnostics read; what depends on the task's type (how to queue and free it) is in
//! the header's own vtable.

use super::state::{Snapshot, State};
use super::task::TaskHeader;
use super::task_ref::TaskRef;
use crate::waker::{borrowed_waker, WakerRef};
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// The one vtable of every task's waker.
static TASK_WAKER: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// Whether `waker` is the waker of the task whose header is at `header`.
pub(crate) fn is_waker_of(waker: &Waker, header: *const TaskHeader) -> bool {
    std::ptr::eq(waker.data(), header.cast()) && std::ptr::eq(waker.vtable(), &TASK_WAKER)
}

/// The waker a task is polled with, borrowed from a reference to the task: it takes
/// no reference of its own; a future that keeps it clones it, and the clone owns one.
pub(crate) fn task_waker_ref(task: &TaskRef) -> WakerRef<'_> {
    let raw = RawWaker::new(task.as_ptr().as_ptr().cast_const().cast(), &TASK_WAKER);
    // SAFETY: the data pointer is the live `TaskRef`'s, for as long as the borrow of
    // `task`, and it points at the task's header with the provenance of the whole
    // allocation; the `WakerRef` never releases the reference it does not own (see
    // `borrowed_waker`), and the vtable's functions keep the `RawWaker` contract for
    // such a pointer (see each one).
    unsafe { borrowed_waker(raw) }
}

/// # Safety (for the functions below)
/// `data` is a header pointer with the provenance of its whole allocation, which a
/// waker owns a reference to (or, for a borrowed waker, its borrow keeps alive).
unsafe fn header_ptr(data: *const ()) -> NonNull<TaskHeader> {
    // SAFETY: by the contract above, not null.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast()) }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned keeps the allocation alive.
    let task = unsafe { header_ptr(data).as_ref() };
    task.waker_created(); // the waker count and the reference count, in one step
    RawWaker::new(data, &TASK_WAKER)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: the waker owned one reference, and is consumed: the reference is
    // `task`'s now, to be moved to the queue below, or given back when `task` goes.
    let task = unsafe { TaskRef::from_raw(header_ptr(data)) };
    // The wake and the waker's count, in one step: the count never reads 0 while the
    // wake is unseen. (So a deadlock check that reads the count sees `SCHEDULED` too.)
    if announce_wake(&task, task.state.wake_by_waker()) {
        task.enqueue(); // with the waker's own reference: none taken, none given back
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the waker is alive, and keeps its reference.
    unsafe { wake_task(header_ptr(data)) };
}

/// Wakes the task whose header is at `header`: queues it unless it is queued already
/// or over.
///
/// # Safety
/// `header` is a task's pointer with the provenance of its whole allocation (a waker's
/// data pointer, or a `TaskRef`'s), kept alive by the caller.
pub(crate) unsafe fn wake_task(header: NonNull<TaskHeader>) {
    // SAFETY: by the contract above.
    unsafe { schedule_with(header, State::wake) };
}

/// Cancels the task whose header is at `header`: its next poll ends it instead of
/// polling its future. Queues it, in the same atomic step, unless it is queued already
/// (see [`state`](super::state)).
///
/// # Safety
/// As for [`wake_task`].
pub(crate) unsafe fn cancel_task(header: NonNull<TaskHeader>) {
    // SAFETY: by the contract above.
    unsafe { schedule_with(header, State::cancel) };
}

/// Runs `transition` on the task's state word, and queues the task if it says so (not
/// while it is being polled: the poll's end queues it then; see `state`).
///
/// # Safety
/// As for [`wake_task`].
unsafe fn schedule_with(header: NonNull<TaskHeader>, transition: fn(&State) -> Snapshot) {
    // SAFETY: by the contract above.
    let task = unsafe { header.as_ref() };
    if announce_wake(task, transition(&task.state)) {
        // SAFETY: the caller keeps the task alive; the queue gets a reference of its own.
        unsafe { TaskRef::clone_from_raw(header) }.enqueue();
    }
}

/// After a wake (or an abort) that found the word `before`: tells the observer if it
/// woke the task, and returns whether the caller must queue it. The word says whether
/// there is an observer (`OBSERVED`): without one, a wake reaches for no scheduler at
/// all (that would be two calls through vtables, on every wake).
#[inline]
fn announce_wake(task: &TaskHeader, before: Snapshot) -> bool {
    if before.is_news() && before.is_observed() {
        task.owner().woken(task.id);
    }
    before.needs_queueing()
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
        // SAFETY: the waker owned a reference, which it hands to `task`, given back when
        // `task` goes, after `waker_released` (which reads the header) is done.
        let task = unsafe { TaskRef::from_raw(header_ptr(self.data)) };
        task.waker_released();
    }
}
