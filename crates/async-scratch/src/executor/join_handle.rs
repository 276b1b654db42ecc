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
use crate::task::TaskError;
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
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

/// The slot a task and its handle share: two cells, and no lock. Which side may touch
/// each cell, when, is said by the task's state word (`DELIVERED`, `JOIN_WAKER`,
/// `JOIN_INTEREST`): see "Who may touch the outcome slot" in [`state`](super::state).
pub(crate) struct JoinSlot<T> {
    /// The task's outcome: the task's to write until `DELIVERED`, the handle's to take
    /// after (or the task's to drop, if the handle is gone).
    outcome: UnsafeCell<Option<Result<T, JoinError>>>,
    /// The waker of whoever awaits the handle, and the executor's record of that wait
    /// (when the awaiter is one of its tasks): the handle's while `JOIN_WAKER` is clear.
    /// (The registration is boxed: most handles are awaited after their task ended,
    /// or never, and every task's slot would otherwise carry its 40 bytes.)
    joiner: UnsafeCell<Option<Joiner>>,
}

/// An awaiter's waker, with the record of its wait.
type Joiner = (Waker, Option<Box<WaitRegistration>>);

impl<T> JoinSlot<T> {
    pub(super) fn new() -> JoinSlot<T> {
        JoinSlot {
            outcome: UnsafeCell::new(None),
            joiner: UnsafeCell::new(None),
        }
    }

    /// Takes the outcome out.
    ///
    /// # Safety
    /// The caller owns the outcome cell now (see the type's doc), and no reference to
    /// it is alive.
    unsafe fn take_outcome(&self) -> Option<Result<T, JoinError>> {
        // SAFETY: by the contract above.
        unsafe { (*self.outcome.get()).take() }
    }

    /// Replaces the awaiter's waker, giving back the one that was there.
    ///
    /// # Safety
    /// The caller owns the waker cell (`JOIN_WAKER` clear for the handle, or cleared
    /// by the task after delivery), and no reference to it is alive.
    unsafe fn replace_joiner(&self, joiner: Option<Joiner>) -> Option<Joiner> {
        // SAFETY: by the contract above.
        unsafe { std::ptr::replace(self.joiner.get(), joiner) }
    }

    /// Whether the stored waker would wake the same task as `waker`.
    ///
    /// # Safety
    /// The caller owns the waker cell (`JOIN_WAKER` clear, and not delivered), and no
    /// reference to it is alive. `JOIN_WAKER` set is not enough: once the outcome is
    /// delivered, the task may clear the bit and take the waker at any moment.
    unsafe fn joiner_will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: by the contract above, nobody writes the cell during this read.
        let joiner = unsafe { &*self.joiner.get() };
        matches!(joiner, Some((joiner, _)) if joiner.will_wake(waker))
    }

    /// Hands `result` to the handle and wakes whoever awaits it: the task's end, on its
    /// executor's thread, once. The awaiter's waker and the `Drop` of an output nobody
    /// will take are user code: a panic in either is caught and reported, never
    /// thrown into the executor.
    pub(super) fn finish(&self, result: Result<T, JoinError>, header: &TaskHeader) {
        // SAFETY: not yet `DELIVERED`: the outcome cell is the task's.
        unsafe { *self.outcome.get() = Some(result) };
        let before = header.state.deliver();
        if !before.has_join_interest() {
            // SAFETY: the handle is gone, and it left the outcome to the task (it saw
            // no `DELIVERED` when it went): the cell is still the task's.
            let unwanted = unsafe { self.take_outcome() };
            header.catch_reported("the drop of a detached task's output", move || {
                drop(unwanted);
            });
        }
        if before.has_join_waker() {
            // SAFETY: `JOIN_WAKER` is set: reading is allowed to anyone.
            let joiner = unsafe { &*self.joiner.get() };
            if let Some((waker, _)) = joiner {
                header.catch_reported("the wake of the task awaiting it", || waker.wake_by_ref());
            }
            header.state.release_join_waker();
            // SAFETY: the task cleared `JOIN_WAKER` after `DELIVERED`: the cell is its
            // own, for good (the handle sets the bit only before `DELIVERED`).
            let joiner = unsafe { self.replace_joiner(None) };
            header.catch_reported("the drop of the waker of the task awaiting it", || {
                drop(joiner);
            });
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
        self.task.state.load().is_delivered()
    }

    /// The outcome, once `DELIVERED` has been seen.
    fn take_delivered(&self) -> Result<T, JoinError> {
        // SAFETY: the outcome was delivered, so its cell is this handle's; `&self` is the
        // only way to it, and no reference into it is kept.
        let outcome = unsafe { self.slot().take_outcome() };
        outcome.expect("a JoinHandle was polled after it returned its result")
    }

    /// Stores `waker` for the task to wake at its end (with the record of the wait, when
    /// the awaiter is a task of the executor), unless the outcome arrived meanwhile.
    fn store_joiner(&self, waker: &Waker) -> Poll<Result<T, JoinError>> {
        let slot = self.slot();
        let word = self.task.state.load();
        if word.is_delivered() {
            // The outcome is ours. The waker cell may be the task's, even with
            // `JOIN_WAKER` clear (the task clears it as it drops the waker): this
            // reading of the word decides both, so the cell is not touched.
            return Poll::Ready(self.take_delivered());
        }
        if word.has_join_waker() {
            // The cell taken back before it is read: with the bit set, the task ending
            // on another thread may take the waker out at any moment.
            if self.task.state.unset_join_waker().is_err() {
                return Poll::Ready(self.take_delivered());
            }
            // SAFETY: this handle cleared `JOIN_WAKER` before `DELIVERED`: the cell is
            // the handle's.
            if unsafe { slot.joiner_will_wake(waker) } {
                return self.publish_joiner(); // the same awaiter: its wait stays as it was
            }
        }
        let awaited = WaitTarget::Task(self.task.clone());
        let registration = register_wait(waker, awaited);
        // Awaited through a wait the executor knows, the handle can abort nothing while
        // its awaiter is stuck; otherwise it stays "loose".
        let loose = registration.is_none();
        let joiner = (waker.clone(), registration.map(Box::new));
        // SAFETY: `JOIN_WAKER` is clear and the outcome was not delivered when it was
        // read so (or this handle just cleared it, before `DELIVERED`): the cell is the
        // handle's, since the task takes it only if it finds the bit set as it delivers.
        let previous = unsafe { slot.replace_joiner(Some(joiner)) };
        drop(previous); // its registration withdrawn, its waker dropped
        let outcome = self.publish_joiner();
        self.task.set_handle_loose(loose);
        outcome
    }

    /// Hands the waker in the cell to the task (sets `JOIN_WAKER`), unless the outcome
    /// arrived meanwhile: then the waker is dropped and the outcome taken.
    fn publish_joiner(&self) -> Poll<Result<T, JoinError>> {
        match self.task.state.set_join_waker() {
            Ok(()) => Poll::Pending,
            Err(_delivered) => {
                // The task ended meanwhile, saw no waker, and left the cell to us.
                // SAFETY: `JOIN_WAKER` is still clear: the cell is the handle's.
                drop(unsafe { self.slot().replace_joiner(None) });
                Poll::Ready(self.take_delivered())
            }
        }
    }
}

impl<T: 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // One unit of the budget if the outcome is there (see `coop`), or a turn to wait.
        let unit = ready!(coop::poll_proceed(cx));
        let outcome = self.store_joiner(cx.waker());
        if outcome.is_ready() {
            unit.spend();
        }
        outcome
    }
}

/// Dropping the handle detaches the task. An outcome already there is dropped here (a
/// panic in its `Drop` caught and reported); one that comes later is dropped by the
/// task as it ends. A wait on this handle, if one was recorded, is withdrawn.
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let slot = self.slot();
        let before = self.task.state.drop_join_interest();
        if before.is_delivered() {
            // SAFETY: delivered before the handle went: the outcome is the handle's.
            let outcome = unsafe { slot.take_outcome() };
            let place = "the drop of a task's output, with its JoinHandle";
            self.task.catch_reported(place, move || drop(outcome));
        } else if !before.has_join_waker() || self.task.state.unset_join_waker().is_ok() {
            // SAFETY: `JOIN_WAKER` is clear, and not delivered: the cell is the handle's
            // (and stays so: nobody sets the bit but the handle).
            let joiner = unsafe { slot.replace_joiner(None) };
            drop(joiner); // its wait withdrawn
        } // else the task delivered meanwhile, and drops the waker itself.
          // Gone, it can abort nothing any more (see `set_handle_loose`).
        self.task.one_possible_wake_fewer(before);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
