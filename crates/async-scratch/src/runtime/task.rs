//! A task of the multi-threaded runtime: the executor's task core, with the runtime
//! (or its blocking pool) as its scheduler.
//!
//! Step 7 first gave the runtime a task of its own: an `Arc` holding the future behind
//! a `Mutex`, the outcome and its awaiter behind another, and a state word of five
//! flags beside them. Its queues held `Arc<dyn ...>`s, and its `JoinHandle` was a type
//! of its own. Now a runtime task is what an executor task is (see
//! [`executor::task`](crate::executor::task)): one allocation with a 64-byte header,
//! one state word for its flags, its wakers and its references, an outcome slot with
//! no lock, and the same [`JoinHandle`]. What differs is its scheduler, reached through
//! the [`Schedule`] seam: a woken task goes to a worker's queue or the injector (see
//! `worker`), a blocking job to the blocking pool (see `blocking`).
//!
//! The executor's tasks never leave its thread, so their futures need not be `Send`. A
//! runtime's workers pass tasks between them, so [`new_task`] takes only futures and
//! outputs that are `Send`: that is the whole difference, and the core's safety
//! argument (see `TaskCell`'s `Send` impl) rests on it.

use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::idle::Parker;
use crate::diagnostics::TaskId;
use crate::executor::schedule::Schedule;
use crate::executor::task::allocate_root;
use crate::executor::JoinHandle;

pub(crate) use crate::executor::task_ref::{Ran, TaskRef as Runnable};

/// Locks, ignoring poison: every lock here guards data that stays valid whatever
/// panicked (a panic in user code is caught before it reaches a lock holder).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A new runtime task's id: a number unique in the process (see [`TaskId`]).
fn next_id() -> TaskId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    TaskId::from_runtime(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Makes a task of `future`, scheduled by `owner`: its first reference, already
/// `SCHEDULED` (the caller queues it or, if the runtime is shutting down, abandons it),
/// and its handle.
pub(crate) fn new_task<F, S>(
    owner: &Arc<S>,
    spawned_at: &'static Location<'static>,
    future: F,
) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the future and its output are `Send`, so any thread may poll, drop and
    // take them; the runtime runs a task only with the reference it took from a queue,
    // which one worker (or blocking thread) holds at a time, and abandons its tasks
    // only after its workers have stopped (`shut_down`).
    unsafe { crate::executor::task::new_task(owner, next_id(), None, spawned_at, future) }
}

/// `Runtime::block_on`'s own future as a task of `owner`, woken by unparking
/// `parker` (the `block_on` thread's): so that the deadlock check sees what it waits
/// for (a `JoinHandle` it awaits is a known wait, not a loose handle; a lock it holds
/// is held by it, not by a plain thread).
pub(crate) fn new_root<S: Schedule>(
    owner: &Arc<S>,
    spawned_at: &'static Location<'static>,
    parker: Arc<Parker>,
) -> Runnable {
    let name = Some("block_on's future".into());
    allocate_root(owner, next_id(), name, spawned_at, parker)
}
