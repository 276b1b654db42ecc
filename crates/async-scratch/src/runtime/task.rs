//! A task of the multi-threaded runtime: one allocation holding the future, its state
//! word, its outcome and the scheduler it goes back to when woken.
//!
//! Step 7 introduces it. The one-thread executor's task (`executor::task`) is tied to
//! that executor's shared state (its ready queue, its diagnostics); this one knows its
//! scheduler only through the small [`Schedule`] trait, so the same task serves the
//! worker pool and the blocking pool. The future sits in a `Mutex`: only one thread
//! polls it at a time anyway (the state word says who), so the lock is never
//! contended, and it makes "the future is dropped exactly once" a property of the type.
//!
//! # The state word
//!
//! | bit | name | set by | cleared by |
//! |---|---|---|---|
//! | `SCHEDULED` | in a queue | a wake or an abort that finds the task idle; a new task | the poll that starts |
//! | `RUNNING` | being polled | the poll that starts | the poll that ends |
//! | `NOTIFIED` | woken while running | a wake or an abort that finds `RUNNING` | the poll that ends (it queues the task again) |
//! | `COMPLETE` | done | the last poll; shutdown | never |
//! | `CANCELLED` | abort requested | `JoinHandle::abort` | never |
//!
//! A wake is one read-modify-write, and at most one of all the racing wakes sees the
//! task idle and queues it: a task is never in two queues, and never polled by two
//! workers at once.

#[cfg(loom)]
use loom::sync::atomic::AtomicUsize;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
#[cfg(not(loom))]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::{fmt, mem};

use crate::diagnostics::{Diagnostic, TaskId, TaskInfo};
use crate::executor::JoinError;
use crate::unwind::into_message;

const SCHEDULED: usize = 1;
const RUNNING: usize = 1 << 1;
const NOTIFIED: usize = 1 << 2;
const COMPLETE: usize = 1 << 3;
const CANCELLED: usize = 1 << 4;

/// The state word, and its transitions: each one read-modify-write.
pub(crate) struct State(AtomicUsize);

impl State {
    /// A new task's state: `SCHEDULED` (its spawner queues it).
    pub(crate) fn new_scheduled() -> State {
        State(AtomicUsize::new(SCHEDULED))
    }

    /// A wake (`extra` = 0) or an abort (`extra` = `CANCELLED`). Returns whether the
    /// caller must queue the task: only when it was idle (not queued, not running,
    /// not complete). Running, it is marked `NOTIFIED` for its poll's end to queue.
    pub(crate) fn notify(&self, extra: usize) -> bool {
        let previous = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                if state & COMPLETE != 0 {
                    None
                } else if state & RUNNING != 0 {
                    Some(state | NOTIFIED | extra)
                } else if state & SCHEDULED != 0 {
                    (state & extra != extra).then_some(state | extra)
                } else {
                    Some(state | SCHEDULED | extra)
                }
            });
        previous.is_ok_and(|previous| previous & (RUNNING | SCHEDULED) == 0)
    }

    /// A poll starts: `SCHEDULED` off, `RUNNING` on. Returns the word before, or
    /// `None` if the task is complete already (nothing to poll).
    pub(crate) fn start(&self) -> Option<usize> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & COMPLETE == 0).then_some((state & !SCHEDULED) | RUNNING)
            })
            .ok()
    }

    /// A poll ended `Pending`: `RUNNING` off. Returns whether the caller must queue
    /// the task again (it was woken or aborted during the poll).
    pub(crate) fn end_poll(&self) -> bool {
        let previous = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                Some(if state & NOTIFIED != 0 {
                    (state & !(NOTIFIED | RUNNING)) | SCHEDULED
                } else {
                    state & !RUNNING
                })
            });
        previous.is_ok_and(|previous| previous & NOTIFIED != 0)
    }

    /// The task is done (its last poll, or its future dropped).
    pub(crate) fn complete(&self) {
        self.0.fetch_or(COMPLETE, Ordering::AcqRel);
    }

    /// Shutdown: complete and cancelled at once. Returns whether it was not complete
    /// before (then the caller drops the future).
    pub(crate) fn shut_down(&self) -> bool {
        self.0.fetch_or(COMPLETE | CANCELLED, Ordering::AcqRel) & COMPLETE == 0
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.0.load(Ordering::Acquire) & COMPLETE != 0
    }
}

/// Where a woken task goes: a worker's queue, the injector, the blocking pool.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Queues `task` to be run.
    fn schedule(&self, task: Runnable);
    /// Queues `task`, which woke itself while polled (it yielded): behind the others.
    fn yield_now(&self, task: Runnable) {
        self.schedule(task);
    }
    /// The task with this id is complete: forget it (see `Owned`).
    fn release(&self, _id: u64) {}
    /// Hands a diagnostic (a caught panic) to the runtime's reporter.
    fn report(&self, diagnostic: &Diagnostic) {
        eprintln!("async-scratch: {diagnostic}");
    }
}

/// A queued task, whatever its future's type.
pub(crate) type Runnable = Arc<dyn RunTask>;

/// What a queue can do with a task it holds.
pub(crate) trait RunTask: Send + Sync {
    /// Polls the task once (or drops its future, when aborted).
    fn run(self: Arc<Self>);
    /// Drops the future if still pending, and ends the task as cancelled. Only when no
    /// thread is polling it: at shutdown, after the workers have stopped.
    fn shutdown(&self);
    /// The task's id, unique in the process.
    fn id(&self) -> u64;
    /// What diagnostics name the task by: its id and where it was spawned.
    fn info(&self) -> TaskInfo;
}

/// Locks, ignoring poison: every lock here guards data that stays valid whatever
/// panicked (a panic in user code is caught before it reaches a lock holder).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The task itself, in one `Arc`.
pub(crate) struct Task<F: Future, S> {
    id: u64,
    /// Where `spawn` was called, for diagnostics (the stall watchdog's reports).
    spawned_at: &'static Location<'static>,
    state: State,
    /// `None` once the future has completed or been dropped.
    future: Mutex<Option<F>>,
    join: Mutex<JoinState<F::Output>>,
    scheduler: S,
}

/// The outcome, and who waits for it.
struct JoinState<T> {
    outcome: Option<Result<T, JoinError>>,
    /// The outcome was handed to the `JoinHandle`.
    taken: bool,
    /// The `JoinHandle` was dropped: an outcome arriving later is dropped at once.
    detached: bool,
    joiner: Option<Waker>,
}

impl<F, S> Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    /// A new task, already `SCHEDULED`: the caller queues the returned `Runnable`.
    pub(crate) fn allocate(
        future: F,
        scheduler: S,
        spawned_at: &'static Location<'static>,
    ) -> (Runnable, JoinHandle<F::Output>) {
        let task = Arc::new(Task {
            id: next_id(),
            spawned_at,
            state: State::new_scheduled(),
            future: Mutex::new(Some(future)),
            join: Mutex::new(JoinState {
                outcome: None,
                taken: false,
                detached: false,
                joiner: None,
            }),
            scheduler,
        });
        let handle = JoinHandle {
            task: task.clone(),
            _output: PhantomData,
        };
        (task, handle)
    }

    /// A wake or an abort: sets `extra` (0 or `CANCELLED`), and queues the task if it
    /// was idle.
    fn notify(self: &Arc<Self>, extra: usize) {
        if self.state.notify(extra) {
            self.scheduler.schedule(self.clone());
        }
    }

    /// Drops the future in place (where it was pinned), catching a panic in its drop.
    fn drop_future(slot: &mut Option<F>) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| *slot = None)) {
            crate::unwind::drop_payload(payload);
        }
    }

    /// Marks the task complete and hands `result` to the `JoinHandle`.
    fn finish(&self, result: Result<F::Output, JoinError>) {
        self.state.complete();
        let mut join = lock(&self.join);
        let waker = join.joiner.take();
        let unwanted = if join.detached {
            Some(result)
        } else {
            join.outcome = Some(result);
            None
        };
        drop(join);
        // User code (a drop, a wake) runs outside the lock.
        if let Some(unwanted) = unwanted {
            self.catch_reported("the drop of a detached task's output", || drop(unwanted));
        }
        if let Some(waker) = waker {
            // Someone else's code (a waker of anyone's), run on a worker or on the
            // thread dropping the runtime: a panic there would end the worker thread,
            // or the runtime's drop half-way.
            self.catch_reported("the wake of the task awaiting it", || waker.wake());
        }
        self.scheduler.release(self.id);
    }
}

impl<F, S> Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    /// Runs `user_code` for this task where nobody waits to be handed its panic: a
    /// panic is caught and reported to the runtime's reporter, and goes no further.
    fn catch_reported(&self, place: &'static str, user_code: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(user_code)) {
            self.scheduler.report(&Diagnostic::CaughtPanic {
                task: Some(RunTask::info(self)),
                place,
                message: into_message(payload),
            });
        }
    }
}

impl<F, S> RunTask for Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    fn run(self: Arc<Self>) {
        let Some(previous) = self.state.start() else {
            return;
        };
        let mut slot = lock(&self.future);
        if previous & CANCELLED != 0 {
            Self::drop_future(&mut slot);
            drop(slot);
            self.finish(Err(JoinError::Cancelled));
            return;
        }
        let Some(future) = slot.as_mut() else { return };
        // SAFETY: the future lives inside this task's `Arc` allocation and is never
        // moved out: it is only polled here, through the lock, and dropped in place
        // (`*slot = None`). So it stays at this address until dropped: pinned.
        let future = unsafe { Pin::new_unchecked(future) };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = catch_unwind(AssertUnwindSafe(|| {
            crate::coop::with_budget(&waker, || future.poll(&mut cx))
        }));
        match polled {
            Ok(Poll::Pending) => {
                drop(slot);
                self.end_poll();
            }
            Ok(Poll::Ready(output)) => {
                Self::drop_future(&mut slot);
                drop(slot);
                self.finish(Ok(output));
            }
            Err(payload) => {
                Self::drop_future(&mut slot);
                drop(slot);
                self.finish(Err(JoinError::Panicked(into_message(payload))));
            }
        }
    }

    fn shutdown(&self) {
        if !self.state.shut_down() {
            return;
        }
        let mut slot = lock(&self.future);
        Self::drop_future(&mut slot);
        drop(slot);
        self.finish(Err(JoinError::Cancelled));
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn info(&self) -> TaskInfo {
        TaskInfo {
            id: TaskId::from_runtime(self.id),
            name: None,
            spawned_at: self.spawned_at,
        }
    }
}

impl<F, S> Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    /// The poll ended `Pending`: clears `RUNNING`, and queues the task again if it was
    /// woken (or aborted) meanwhile.
    fn end_poll(self: Arc<Self>) {
        if self.state.end_poll() {
            self.scheduler.yield_now(self.clone());
        }
    }
}

impl<F, S> Wake for Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    fn wake(self: Arc<Self>) {
        self.notify(0);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify(0);
    }
}

/// What a `JoinHandle<T>` reaches of its task, whatever the future's type.
trait JoinTask<T>: Send + Sync {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(self: Arc<Self>);
    fn is_finished(&self) -> bool;
    fn detach(&self) -> Option<Result<T, JoinError>>;
}

impl<F, S> JoinTask<F::Output> for Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        let mut join = lock(&self.join);
        if let Some(outcome) = join.outcome.take() {
            join.taken = true;
            return Poll::Ready(outcome);
        }
        assert!(!join.taken, "a JoinHandle was polled after it completed");
        match &mut join.joiner {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            joiner => *joiner = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn abort(self: Arc<Self>) {
        self.notify(CANCELLED);
    }

    fn is_finished(&self) -> bool {
        self.state.is_complete()
    }

    fn detach(&self) -> Option<Result<F::Output, JoinError>> {
        let mut join = lock(&self.join);
        join.detached = true;
        join.joiner = None;
        join.outcome.take()
    }
}

/// An owned permission to wait for a runtime task's output, and to abort it.
///
/// Awaiting it gives the task's output, or a [`JoinError`] if the task panicked or was
/// cancelled (aborted, or still pending when its runtime was dropped). Dropping it
/// detaches the task: it keeps running, and its output is dropped when it comes.
pub struct JoinHandle<T> {
    task: Arc<dyn JoinTask<T>>,
    _output: PhantomData<T>,
}

impl<T> JoinHandle<T> {
    /// Asks the task to stop: its future is dropped at its next turn on a worker (or at
    /// once if it is idle), and awaiting this handle then gives
    /// [`JoinError::Cancelled`]. A task already complete keeps its outcome.
    pub fn abort(&self) {
        self.task.clone().abort();
    }

    /// Whether the task is complete (done, panicked or cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.poll_join(cx)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // The output is dropped here, on the handle's thread, outside the lock.
        let outcome = self.task.detach();
        mem::drop(outcome);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    /// One turn of a worker on the task: start a poll; a cancelled task completes,
    /// any other stays pending and is queued again if it was woken meanwhile.
    fn run(state: &State, queued: &AtomicUsize) {
        let Some(previous) = state.start() else {
            return;
        };
        if previous & CANCELLED != 0 {
            state.complete();
        } else if state.end_poll() {
            assert_eq!(queued.fetch_add(1, Ordering::SeqCst), 0, "queued twice");
        }
    }

    /// A wake and an abort race the task's first poll: the task is never in the
    /// queue twice, and the abort is never lost (the task ends complete).
    #[test]
    fn loom_task_wake_poll_and_abort_race() {
        loom::model(|| {
            let state = Arc::new(State::new_scheduled());
            let queued = Arc::new(AtomicUsize::new(1));
            let others: Vec<_> = [0, CANCELLED]
                .into_iter()
                .map(|extra| {
                    let (state, queued) = (state.clone(), queued.clone());
                    thread::spawn(move || {
                        if state.notify(extra) {
                            assert_eq!(queued.fetch_add(1, Ordering::SeqCst), 0, "queued twice");
                        }
                    })
                })
                .collect();
            queued.fetch_sub(1, Ordering::SeqCst);
            run(&state, &queued);
            for other in others {
                other.join().unwrap();
            }
            while queued.load(Ordering::SeqCst) > 0 {
                queued.fetch_sub(1, Ordering::SeqCst);
                run(&state, &queued);
            }
            assert!(state.is_complete(), "the abort was lost");
        });
    }
}
