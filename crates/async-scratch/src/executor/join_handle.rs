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
//! use async_scratch::executor::JoinError;
//!
//! block_on(async {
//!     assert_eq!(spawn(async { 1 + 1 }).await, Ok(2));
//!     let failed = spawn(async { panic!("oops") }).await;
//!     assert_eq!(failed, Err::<(), _>(JoinError::Panicked("oops".into())));
//! });
//! ```
//!
//! Two handles, two names: a [`Task`](crate::task::Task) (step 2) is the handle of a
//! job on a thread pool, and fails with a [`TaskError`]; a [`JoinHandle`] (step 4) is
//! the handle of a coroutine on the executor, and fails with a [`JoinError`], which
//! can also say `Cancelled`, since a coroutine can be aborted. A `TaskError` converts
//! into a `JoinError`, so code that awaits both kinds can use `?` for both:
//!
//! ```
//! use async_scratch::executor::{block_on, spawn, JoinError};
//! use async_scratch::pool::ThreadPool;
//!
//! let pool = ThreadPool::new(1).unwrap();
//! let sum = block_on(async {
//!     let on_a_thread = pool.spawn(|| 40).await?; // a `TaskError` if it panicked
//!     let as_a_coroutine = spawn(async { 2 }).await?;
//!     Ok::<_, JoinError>(on_a_thread + as_a_coroutine)
//! });
//! assert_eq!(sum, Ok(42));
//! ```

use super::task::{TaskHeader, TaskPrefix};
use super::task_ref::TaskRef;
use super::task_waker::cancel_task;
use super::waits::{register_wait, WaitRegistration, WaitTarget};
use crate::coop;
use crate::locking::lock;
use crate::task::TaskError;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
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

/// A pool job's failure, as a coroutine's: it panicked, with the same message.
impl From<TaskError> for JoinError {
    fn from(error: TaskError) -> JoinError {
        match error {
            TaskError::Panicked(message) => JoinError::Panicked(message),
        }
    }
}

/// The slot a task and its handle share.
pub(crate) struct JoinSlot<T> {
    pub(super) state: Mutex<JoinState<T>>,
}

pub(super) struct JoinState<T> {
    pub(super) outcome: Outcome<T>,
    /// The waker of whoever awaits the handle, called when the outcome arrives, and
    /// the executor's record of that wait (when the awaiter is one of its tasks).
    /// (The registration is boxed: most handles are awaited after their task ended,
    /// or never, and every task's slot would otherwise carry its 40 bytes.)
    pub(super) joiner: Option<(Waker, Option<Box<WaitRegistration>>)>,
    // Whether the handle was dropped (and the outcome is to be dropped as it arrives,
    // on the executor's thread, where a panic in its `Drop` is caught) is the state
    // word's `JOIN_INTEREST`, cleared and read under this slot's lock.
}

pub(super) enum Outcome<T> {
    Running,
    Finished(Result<T, JoinError>),
    /// The handle has taken the result.
    Taken,
}

impl<T> JoinSlot<T> {
    pub(super) fn new() -> JoinSlot<T> {
        JoinSlot {
            state: Mutex::new(JoinState {
                outcome: Outcome::Running,
                joiner: None,
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, JoinState<T>> {
        // Only ever held to move values in and out: never left half-written.
        lock(&self.state)
    }

    /// Hands `result` to the handle and wakes whoever awaits it. The awaiter's waker and
    /// the `Drop` of an output nobody will take are user code: a panic in either is
    /// caught and reported, never thrown into the executor.
    pub(super) fn finish(&self, result: Result<T, JoinError>, header: &TaskHeader) {
        let (unwanted, joiner) = {
            let mut state = self.lock();
            if !header.state.load().has_join_interest() {
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

/// A handle for a spawned task's result: await it for `Result<T, JoinError>`.
///
/// Dropping the handle *detaches* the task: it keeps running, and its result is
/// dropped. [`abort`](JoinHandle::abort) cancels it instead.
#[must_use = "dropping a JoinHandle detaches its task; await it to get the result"]
pub struct JoinHandle<T> {
    /// A `TaskCell<F>` with `F::Output = T`, which starts with a `TaskPrefix<T>`.
    task: TaskRef,
    /// A handle is `Send` or `Sync` only as its output is: it hands the output over.
    _output: PhantomData<T>,
}

impl<T> JoinHandle<T> {
    /// The handle of the task `task`.
    ///
    /// # Safety
    /// `task` is a `TaskCell<F>` with `F::Output = T` (so its allocation starts with a
    /// `TaskPrefix<T>`).
    pub(super) unsafe fn new(task: TaskRef) -> JoinHandle<T> {
        JoinHandle {
            task,
            _output: PhantomData,
        }
    }

    /// The task's outcome slot.
    fn slot(&self) -> &JoinSlot<T> {
        let prefix = self.task.as_ptr().cast::<TaskPrefix<T>>();
        // SAFETY: the task starts with a `TaskPrefix<T>` (`new`'s contract), `repr(C)`,
        // whose layout depends on `T` alone; the pointer has the provenance of the
        // whole allocation, which `self.task` keeps alive for the borrow. Only the
        // slot is borrowed, never the future after it.
        unsafe { &(*prefix.as_ptr()).slot }
    }

    /// Cancels the task: it is not polled again, its future is dropped on the executor's
    /// next turn, and awaiting this handle gives [`JoinError::Cancelled`]. A task that
    /// already finished keeps its result. May be called from any thread.
    pub fn abort(&self) {
        // SAFETY: a `TaskRef`'s pointer, which this handle keeps alive.
        unsafe { cancel_task(self.task.as_ptr()) };
    }

    /// Whether the task has ended (value, panic or cancellation). Never blocks.
    pub fn is_finished(&self) -> bool {
        !matches!(self.slot().lock().outcome, Outcome::Running)
    }
}

impl<T: 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // One unit of the budget if the outcome is there (see `coop`), or a turn to wait.
        let unit = ready!(coop::poll_proceed(cx));
        let mut state = self.slot().lock();
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
                    let awaited = WaitTarget::Task(self.task.clone());
                    let registration = register_wait(cx.waker(), awaited);
                    // Awaited through a wait the executor knows, the handle can abort
                    // nothing while its awaiter is stuck; otherwise it stays "loose".
                    let loose = registration.is_none();
                    let registration = registration.map(Box::new);
                    let previous = state.joiner.replace((cx.waker().clone(), registration));
                    drop(state);
                    drop(previous); // outside the lock: dropping a registration locks too
                    self.task.set_handle_loose(loose);
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
        let (outcome, joiner, now) = {
            let mut state = self.slot().lock();
            // Under the slot's lock, so that `finish` sees either the handle alive and
            // leaves the outcome for it, or the handle gone and drops the outcome.
            let now = self.task.state.drop_join_interest();
            let outcome = match &state.outcome {
                Outcome::Finished(_) => mem::replace(&mut state.outcome, Outcome::Taken),
                _ => Outcome::Taken,
            };
            (outcome, state.joiner.take(), now)
        };
        drop(joiner);
        // Gone, it can abort nothing any more (told with no lock held: this may unpark
        // the executor, through a custom `Park`).
        self.task.one_possible_wake_fewer(now);
        if let Outcome::Finished(result) = outcome {
            let place = "the drop of a task's output, with its JoinHandle";
            self.task.catch_reported(place, move || drop(result));
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
