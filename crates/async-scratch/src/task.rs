//! Tasks: a handle for work that finishes later, and the value it finishes with.
//!
//! **Step 2** introduces it. Step 1's [`ThreadPool::execute`] is fire-and-forget: the
//! caller cannot get a result back, nor learn that the job panicked. A [`Task<T>`] is
//! the other end of the job: [`Task::wait`] blocks until the job has run, then hands
//! over its return value, or [`TaskError::Panicked`] with the panic's message.
//!
//! The job and the handle share one slot: a `Mutex` around the result-to-be and a
//! `Condvar`. The worker fills the slot and signals; `wait` sleeps on the condvar until
//! the slot is full.
//!
//! **Step 4** adds the other way to wait: `Task<T>` is also a `Future`, so a coroutine
//! can `.await` work running on a pool thread without blocking its executor. Polling
//! leaves the coroutine's waker in the slot; the worker that fills the slot wakes it.
//! This is the bridge from threads to coroutines, and what
//! [`spawn_blocking`](crate::blocking::spawn_blocking) returns.
//!
//! ```
//! use async_scratch::pool::ThreadPool;
//! use async_scratch::task::TaskError;
//!
//! let pool = ThreadPool::new(2)?;
//! let answer = pool.spawn(|| 6 * 7);
//! assert_eq!(answer.wait(), Ok(42));
//!
//! let broken = pool.spawn(|| -> u32 { panic!("no answer") });
//! assert_eq!(broken.wait(), Err(TaskError::Panicked("no answer".to_string())));
//! # Ok::<(), async_scratch::pool::PoolError>(())
//! ```
//!
//! Waiting is what makes a task useful, and also what can undo the pool's benefit: step
//! 2's program waits for each task before it spawns the next, and is back to step 0's
//! speed. Step 3's [`run_all`](crate::run_all::run_all) spawns first and waits after.

use crate::locking::{lock, wait};
use crate::pool::ThreadPool;
use crate::unwind::into_message;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// How a task can fail to produce its value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The job panicked; this is the panic's message (or a placeholder if the panic
    /// carried something other than a string).
    Panicked(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(message) => write!(f, "task panicked: {message}"),
        }
    }
}

impl std::error::Error for TaskError {}

/// A handle for the result of a job running on a [`ThreadPool`].
///
/// Dropping a `Task` without waiting *detaches* it: the job still runs to the end, and
/// its result is dropped.
#[must_use = "a task does nothing to its result unless you `wait` for it; drop it to detach"]
pub struct Task<T> {
    slot: Arc<Slot<T>>,
}

/// What the job and its handle share.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    /// Signalled once, when the result arrives, for a thread blocked in `wait`.
    finished: Condvar,
}

struct SlotState<T> {
    /// `None` until the job has run (and again once an `.await` has taken it).
    result: Option<Result<T, TaskError>>,
    /// The waker of a coroutine awaiting the task, woken when the result arrives.
    waker: Option<Waker>,
    /// Whether an `.await` already returned the result.
    taken: bool,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        // The lock is only ever held to move a value in or out, which cannot panic
        // half-way, so a poisoned lock still holds a consistent value.
        lock(&self.state)
    }

    fn fill(&self, result: Result<T, TaskError>) {
        let waker = {
            let mut state = self.lock();
            state.result = Some(result);
            state.waker.take()
        };
        self.finished.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Task<T> {
    /// Blocks the calling thread until the job has run, then returns its value, or the
    /// error it failed with.
    pub fn wait(self) -> Result<T, TaskError> {
        let mut state = self.slot.lock();
        loop {
            if let Some(result) = state.result.take() {
                return result;
            }
            assert!(
                !state.taken,
                "Task::wait called after an .await returned its result"
            );
            // Condvars may wake spuriously: the loop checks the slot again.
            state = wait(&self.slot.finished, state);
        }
    }

    /// Whether the job has finished (returned or panicked). Never blocks on the job.
    pub fn is_finished(&self) -> bool {
        let state = self.slot.lock();
        state.result.is_some() || state.taken
    }

    fn new() -> (Task<T>, Arc<Slot<T>>) {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                result: None,
                waker: None,
                taken: false,
            }),
            finished: Condvar::new(),
        });
        let job_side = Arc::clone(&slot);
        (Task { slot }, job_side)
    }
}

/// Awaiting a task suspends the coroutine (not the thread) until the job has run.
///
/// ```
/// use async_scratch::executor::block_on;
/// use async_scratch::pool::ThreadPool;
///
/// let pool = ThreadPool::new(1)?;
/// let task = pool.spawn(|| "computed on a pool thread");
/// assert_eq!(block_on(task), Ok("computed on a pool thread"));
/// # Ok::<(), async_scratch::pool::PoolError>(())
/// ```
impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        if let Some(result) = state.result.take() {
            state.taken = true;
            return Poll::Ready(result);
        }
        assert!(
            !state.taken,
            "a Task was polled after it returned its result"
        );
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl ThreadPool {
    /// Runs `job` on the pool and returns a [`Task`] for its result.
    ///
    /// A panic in `job` is caught and becomes [`TaskError::Panicked`] for whoever waits;
    /// the worker carries on with the next job.
    pub fn spawn<T, F>(&self, job: F) -> Task<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (task, job_side) = Task::new();
        self.execute(move || job_side.fill(run_catching_panic(job)));
        task
    }
}

/// Runs `job`, turning a panic into [`TaskError::Panicked`] with its message.
fn run_catching_panic<T>(job: impl FnOnce() -> T) -> Result<T, TaskError> {
    // `AssertUnwindSafe`: a job that panics is dropped with everything it captured;
    // only its message comes out, so no broken state of the job's can be observed.
    // The payload's `Drop` may panic too; let loose here, that panic would skip filling
    // the slot, and `wait` would never return: `into_message` catches it.
    catch_unwind(AssertUnwindSafe(job))
        .map_err(|payload| TaskError::Panicked(into_message(payload)))
}
