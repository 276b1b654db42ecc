//! Join handles: how a spawned coroutine's result (or failure) reaches whoever awaits it.
//!
//! **Step 4** introduces it: the coroutine counterpart of step 2's [`Task`](crate::task::Task).
//! [`spawn`](crate::executor::spawn) wraps the future in a `Spawned` that catches its
//! panic and, when it ends, puts the outcome in a slot shared with the
//! [`JoinHandle`]. Awaiting the handle reads the slot, or leaves a waker there for the
//! task to call when it ends. Every spawned task ends in exactly one of three ways, and
//! the handle is told which: its value, [`JoinError::Panicked`] with the message, or
//! [`JoinError::Cancelled`] (aborted, or dropped with its executor). Nothing is lost.
//!
//! ```
//! use async_scratch::executor::{block_on, spawn};
//! use async_scratch::join::JoinError;
//!
//! block_on(async {
//!     assert_eq!(spawn(async { 1 + 1 }).await, Ok(2));
//!     let failed = spawn(async { panic!("oops") }).await;
//!     assert_eq!(failed, Err::<(), _>(JoinError::Panicked("oops".into())));
//! });
//! ```

use crate::coop;
use crate::executor::{
    polled, register_wait, task_waker_ref, CurrentTask, StartsWithHeader, TaskFuture, TaskHandle,
    TaskHeader, WaitRegistration, WaitTarget,
};
use crate::locking::lock;
use crate::unwind::{into_message, Payload};
use std::fmt;
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

/// Why a spawned task gave no value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The task panicked while polled; this is the panic's message.
    Panicked(String),
    /// The task was stopped before it finished: [`JoinHandle::abort`] was called, or
    /// its executor was dropped with the task still pending.
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(message) => write!(f, "task panicked: {message}"),
            JoinError::Cancelled => f.write_str("task was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Everything of a task that outlives a poll: its header (id, flag, name, spawn
/// location) and the slot its outcome waits in. One `Arc` of it is shared by the
/// task's wakers, its `JoinHandle` and its `Spawned` future.
///
/// `repr(C)`, header first: a task's waker points at the header, and reaches the
/// whole cell from there (see `executor::task_waker`).
#[repr(C)]
pub(crate) struct TaskCell<T> {
    pub(crate) header: TaskHeader,
    slot: JoinSlot<T>,
}

impl<T> TaskCell<T> {
    pub(crate) fn new(header: TaskHeader) -> TaskCell<T> {
        TaskCell {
            header,
            slot: JoinSlot::new(),
        }
    }
}

// SAFETY: `repr(C)` with the header first; `spawn` makes the header with
// `TaskHeader::new::<TaskCell<T>>`.
unsafe impl<T: Send> StartsWithHeader for TaskCell<T> {}

/// `T: Send` because a waker may carry the cell to any thread, and drop the last
/// reference to it there, with the outcome in it.
impl<T: Send + 'static> TaskHandle for TaskCell<T> {
    fn header(&self) -> &TaskHeader {
        &self.header
    }
}

/// The slot a task and its handle share.
struct JoinSlot<T> {
    state: Mutex<JoinState<T>>,
}

struct JoinState<T> {
    outcome: Outcome<T>,
    /// The waker of whoever awaits the handle, called when the outcome arrives, and
    /// the executor's record of that wait (when the awaiter is one of its tasks).
    joiner: Option<(Waker, Option<WaitRegistration>)>,
    /// The handle was dropped: nobody will take the outcome, so it is dropped as it
    /// arrives (on the executor's thread, where a panic in its `Drop` is caught).
    detached: bool,
}

enum Outcome<T> {
    Running,
    Finished(Result<T, JoinError>),
    /// The handle has taken the result.
    Taken,
}

impl<T> JoinSlot<T> {
    fn new() -> JoinSlot<T> {
        JoinSlot {
            state: Mutex::new(JoinState {
                outcome: Outcome::Running,
                joiner: None,
                detached: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, JoinState<T>> {
        // Only ever held to move values in and out: never left half-written.
        lock(&self.state)
    }

    /// Hands `result` to the handle and wakes whoever awaits it. The awaiter's waker and
    /// the `Drop` of an output nobody will take are user code: a panic in either is
    /// caught and reported, never thrown into the executor.
    fn finish(&self, result: Result<T, JoinError>, header: &TaskHeader) {
        let (unwanted, joiner) = {
            let mut state = self.lock();
            if state.detached {
                (Some(result), None)
            } else {
                state.outcome = Outcome::Finished(result);
                (None, state.joiner.take())
            }
        };
        if let Some(result) = unwanted {
            header.catch_reported("the drop of a detached task's output", move || {
                drop(result);
            });
        }
        if let Some((joiner, registration)) = joiner {
            drop(registration);
            header.catch_reported("the wake of the task awaiting it", || joiner.wake());
        }
    }
}

/// A spawned future as the executor stores it: the user's future, plus what turns its
/// end (value, panic, or being dropped unfinished) into the handle's outcome.
///
/// The future is dropped the moment the task ends, inside `catch_unwind`: its `Drop` is
/// user code, and a panic there belongs to the task's handle, not to whatever happens
/// to drop the task later (the executor's loop, or its own `Drop`).
pub(crate) struct Spawned<F: Future> {
    /// Dropped by hand, once, in `drop_future` (`future_dropped` says when).
    future: ManuallyDrop<F>,
    future_dropped: bool,
    cell: Arc<TaskCell<F::Output>>,
    /// Whether the outcome has been delivered; if not when dropped, it is `Cancelled`.
    delivered: bool,
}

impl<F: Future> Spawned<F> {
    pub(crate) fn new(future: F, cell: Arc<TaskCell<F::Output>>) -> Spawned<F> {
        Spawned {
            future: ManuallyDrop::new(future),
            future_dropped: false,
            cell,
            delivered: false,
        }
    }

    /// Ends the task with `result`: drops the future, then hands the outcome over. A
    /// panic in the future's `Drop` replaces the outcome (the value, if any, is dropped
    /// too, its own panic caught): the handle learns that the task panicked.
    fn end(&mut self, result: Result<F::Output, JoinError>) -> Poll<()> {
        let result = match self.drop_future() {
            Ok(()) => result,
            Err(payload) => {
                let panicked = Err(JoinError::Panicked(into_message(payload)));
                let place = "the drop of a task's output";
                self.cell.header.catch_reported(place, move || drop(result));
                panicked
            }
        };
        self.delivered = true;
        self.cell.header.mark_finished();
        self.cell.slot.finish(result, &self.cell.header);
        Poll::Ready(())
    }

    /// Drops the future in place, at most once, catching a panic from its `Drop`.
    fn drop_future(&mut self) -> Result<(), Payload> {
        if mem::replace(&mut self.future_dropped, true) {
            return Ok(());
        }
        let future = &mut self.future;
        // SAFETY: the future is dropped where it lies, as `Pin` requires of pinned
        // data, and only once: `future_dropped` was false and is now true, and no code
        // touches `future` once it is set (polls check `delivered`, which `end` sets
        // right after this).
        catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(future) }))
    }
}

impl<F> TaskFuture for Spawned<F>
where
    F: Future,
    F::Output: Send + 'static,
{
    fn poll_task(self: Pin<&mut Self>) -> Poll<()> {
        // SAFETY: pin projection. `future` is never moved while pinned: no method
        // moves it, and it is only ever dropped in place (`drop_future`). The other
        // fields are `Unpin`, so a plain `&mut` to them is fine.
        let this = unsafe { self.get_unchecked_mut() };
        if this.delivered {
            return Poll::Ready(()); // polled again after finishing: nothing to do
        }
        let outcome = {
            let cell = &this.cell;
            // SAFETY: as above, `this.future` stays where it is until it is dropped,
            // and it has not been dropped: `delivered` is false.
            let future = unsafe { Pin::new_unchecked(&mut *this.future) };
            let _current = CurrentTask::enter(cell);
            // The waker is borrowed from the task's own cell: the poll takes no
            // reference; only a future that keeps a clone does.
            let waker = task_waker_ref(cell);
            let mut cx = Context::from_waker(&waker);
            polled(&cell.header, &waker, |cancelled| {
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
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => this.end(result),
        }
    }
}

impl<F: Future> Drop for Spawned<F> {
    fn drop(&mut self) {
        if !self.delivered {
            let _ = self.end(Err(JoinError::Cancelled));
        }
    }
}

/// A handle for a spawned task's result: await it for `Result<T, JoinError>`.
///
/// Dropping the handle *detaches* the task: it keeps running, and its result is
/// dropped. [`abort`](JoinHandle::abort) cancels it instead.
#[must_use = "dropping a JoinHandle detaches its task; await it to get the result"]
pub struct JoinHandle<T> {
    cell: Arc<TaskCell<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(cell: Arc<TaskCell<T>>) -> JoinHandle<T> {
        JoinHandle { cell }
    }

    /// Cancels the task: it is not polled again, its future is dropped on the executor's
    /// next turn, and awaiting this handle gives [`JoinError::Cancelled`]. A task that
    /// already finished keeps its result. May be called from any thread.
    pub fn abort(&self) {
        self.cell.header.cancel();
    }

    /// Whether the task has ended (value, panic or cancellation). Never blocks.
    pub fn is_finished(&self) -> bool {
        !matches!(self.cell.slot.lock().outcome, Outcome::Running)
    }
}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // One unit of the budget if the outcome is there (see `coop`), or a turn to wait.
        let unit = ready!(coop::poll_proceed(cx));
        let mut state = self.cell.slot.lock();
        match std::mem::replace(&mut state.outcome, Outcome::Taken) {
            Outcome::Finished(result) => {
                unit.spend();
                Poll::Ready(result)
            }
            Outcome::Running => {
                state.outcome = Outcome::Running;
                let known =
                    matches!(&state.joiner, Some((joiner, _)) if joiner.will_wake(cx.waker()));
                if !known {
                    let awaited: Arc<dyn TaskHandle> = self.cell.clone();
                    let registration = register_wait(cx.waker(), WaitTarget::Task(awaited));
                    let previous = state.joiner.replace((cx.waker().clone(), registration));
                    drop(state);
                    drop(previous); // outside the lock: dropping a registration locks too
                }
                Poll::Pending
            }
            Outcome::Taken => panic!("a JoinHandle was polled after it returned its result"),
        }
    }
}

/// Dropping the handle detaches the task. An outcome already there is dropped here (a
/// panic in its `Drop` caught and reported); one that comes later is dropped by the
/// task as it ends. A wait on this handle, if one was recorded, is withdrawn.
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let (outcome, joiner) = {
            let mut state = self.cell.slot.lock();
            state.detached = true;
            let outcome = match &state.outcome {
                Outcome::Finished(_) => mem::replace(&mut state.outcome, Outcome::Taken),
                _ => Outcome::Taken,
            };
            (outcome, state.joiner.take())
        };
        drop(joiner);
        if let Outcome::Finished(result) = outcome {
            let place = "the drop of a task's output, with its JoinHandle";
            self.cell.header.catch_reported(place, move || drop(result));
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
