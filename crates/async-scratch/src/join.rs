//! Join handles: how a spawned coroutine's result (or failure) reaches whoever awaits it.
//!
//! **Step 4** introduces it: the coroutine counterpart of step 2's [`Task`](crate::task::Task).
//! [`spawn`](crate::executor::spawn) puts the future in a `TaskCell`, one allocation
//! with the task's header and the slot its outcome waits in; the task's poll catches
//! the future's panic and, when the task ends, puts the outcome in the slot, which the
//! [`JoinHandle`] shares. Awaiting the handle reads the slot, or leaves a waker there for the
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
    cancel_task, polled, register_wait, task_waker_ref, CurrentTask, RunTask, StartsWithHeader,
    TaskHandle, TaskHeader, WaitRegistration, WaitTarget,
};
use crate::locking::lock;
use crate::unwind::{into_message, Payload};
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
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
    header: TaskHeader,
    slot: JoinSlot<F::Output>,
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

// SAFETY: the header and the slot are `Send + Sync` (the output is `Send`), and they
// are all that other threads touch: a waker schedules through the header, a
// `JoinHandle` takes the outcome from the slot. The future, which need not be `Send`,
// is touched only on the executor's thread: `run` and `abandon` are called only by the
// executor that spawned the task (its `Core` is `!Send`, and it runs them from its own
// thread), and every way a task ends drops the future there. If the last reference
// goes on another thread, the future is gone already: `ManuallyDrop` keeps dropping
// the cell from ever dropping it.
unsafe impl<F: Future> Send for TaskCell<F> where F::Output: Send {}
// SAFETY: as for `Send`: shared references on other threads reach only the header and
// the slot, both `Sync`.
unsafe impl<F: Future> Sync for TaskCell<F> where F::Output: Send {}

// SAFETY: `repr(C)` with the header first; `spawn` makes the header with
// `TaskRefs::spawned::<TaskCell<F>>()`.
unsafe impl<F: Future> StartsWithHeader for TaskCell<F> where F::Output: Send {}

impl<F: Future> TaskCell<F>
where
    F: 'static,
    F::Output: Send + 'static,
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
    F::Output: Send + 'static,
{
    fn header(&self) -> &TaskHeader {
        &self.header
    }
}

/// What a `JoinHandle<T>` reaches of its task, whatever the task's future type.
pub(crate) trait JoinTask<T>: TaskHandle {
    fn slot(&self) -> &JoinSlot<T>;
}

impl<F> JoinTask<F::Output> for TaskCell<F>
where
    F: Future + 'static,
    F::Output: Send + 'static,
{
    fn slot(&self) -> &JoinSlot<F::Output> {
        &self.slot
    }
}

/// The slot a task and its handle share.
pub(crate) struct JoinSlot<T> {
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

impl<F> RunTask for TaskCell<F>
where
    F: Future + 'static,
    F::Output: Send + 'static,
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

/// A handle for a spawned task's result: await it for `Result<T, JoinError>`.
///
/// Dropping the handle *detaches* the task: it keeps running, and its result is
/// dropped. [`abort`](JoinHandle::abort) cancels it instead.
#[must_use = "dropping a JoinHandle detaches its task; await it to get the result"]
pub struct JoinHandle<T> {
    task: Arc<dyn JoinTask<T>>,
    /// A handle is `Send` or `Sync` only as its output is: it hands the output over.
    _output: PhantomData<T>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Arc<dyn JoinTask<T>>) -> JoinHandle<T> {
        JoinHandle {
            task,
            _output: PhantomData,
        }
    }

    /// Cancels the task: it is not polled again, its future is dropped on the executor's
    /// next turn, and awaiting this handle gives [`JoinError::Cancelled`]. A task that
    /// already finished keeps its result. May be called from any thread.
    pub fn abort(&self) {
        let header: *const TaskHeader = Arc::as_ptr(&self.task).cast();
        // SAFETY: `Arc::as_ptr` of the task, which starts with its header and which
        // this handle keeps alive.
        unsafe { cancel_task(header) };
    }

    /// Whether the task has ended (value, panic or cancellation). Never blocks.
    pub fn is_finished(&self) -> bool {
        !matches!(self.task.slot().lock().outcome, Outcome::Running)
    }
}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // One unit of the budget if the outcome is there (see `coop`), or a turn to wait.
        let unit = ready!(coop::poll_proceed(cx));
        let mut state = self.task.slot().lock();
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
                    let awaited: Arc<dyn TaskHandle> = self.task.clone();
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
            let mut state = self.task.slot().lock();
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
            self.task
                .header()
                .catch_reported(place, move || drop(result));
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
