//! The blocking pool: threads for work that blocks (a file read, a long computation),
//! so that it never holds a worker and the tasks queued behind it.
//!
//! Step 7 introduces it. It is elastic: a job finds an idle thread, or a new thread is
//! started for it, up to a cap; a thread idle for `keep_alive` exits. A blocking job is
//! a task like any other (the same task core, with this pool as its scheduler; see
//! `runtime::task`), so its `JoinHandle` and `abort` are the runtime's: a job aborted
//! before it starts never runs.
//!
//! A job runs inside its runtime's context, as a task does: `runtime::spawn` and
//! `runtime::spawn_blocking` work from it (a blocking read that hands its result to a
//! new task is ordinary).
//!
//! Shutting down is in two halves, because the runtime's drop puts something between
//! them: [`close`](BlockingPool::close) refuses new jobs and hands back the jobs not
//! started yet, which the runtime cancels (their handles say `Cancelled`, as for a
//! task); then, once the runtime has dropped its pending tasks (a blocking job may be
//! waiting on one of them, and ends when it goes),
//! [`join_threads`](BlockingPool::join_threads) waits for the jobs still running and
//! joins every thread, or gives up at a deadline and leaves the rest detached.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use super::context;
use super::task::{lock, Runnable};
use super::worker::Shared;
use crate::diagnostics::{report_to, Diagnostic, Reporter};
use crate::executor::schedule::Schedule;

/// The pool, shared by the runtime and its threads.
pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    /// Idle threads wait here for a job (or for the shutdown).
    jobs_ready: Condvar,
    /// The shutdown waits here for the threads to end.
    thread_ended: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    /// The runtime's reporter, for a job's caught panics (its waiter's waker).
    reporter: Reporter,
}

struct PoolState {
    jobs: VecDeque<Runnable>,
    /// Threads started and not yet ended.
    threads: usize,
    idle: usize,
    shutdown: bool,
    /// The handle of each thread that has not left on its own, by the thread's number:
    /// the shutdown joins them.
    handles: HashMap<u64, thread::JoinHandle<()>>,
    /// The last thread that left idle. A thread cannot join itself, so each one that
    /// leaves joins the one before it, and the shutdown joins the last: no ended
    /// thread stays unjoined for longer than one keep-alive.
    left_idle: Option<thread::JoinHandle<()>>,
    next_number: u64,
}

impl BlockingPool {
    pub(crate) fn new(
        max_threads: usize,
        keep_alive: Duration,
        reporter: Reporter,
    ) -> Arc<BlockingPool> {
        Arc::new(BlockingPool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
                shutdown: false,
                handles: HashMap::new(),
                left_idle: None,
                next_number: 0,
            }),
            jobs_ready: Condvar::new(),
            thread_ended: Condvar::new(),
            max_threads,
            keep_alive,
            reporter,
        })
    }

    /// How many threads the pool has now.
    pub(crate) fn threads(&self) -> usize {
        lock(&self.state).threads
    }

    /// Whether no job is queued or running: every thread the pool has waits idle. A
    /// thread between two jobs counts as busy, which only makes the deadlock check
    /// (the one caller) say nothing.
    pub(crate) fn is_quiet(&self) -> bool {
        let state = lock(&self.state);
        state.jobs.is_empty() && state.idle == state.threads
    }

    /// The first half of the shutdown: refuses new jobs (they end cancelled at once),
    /// lets idle threads exit, and hands back the jobs not started, for the caller to
    /// cancel. Jobs already running go on.
    pub(crate) fn close(&self) -> Vec<Runnable> {
        let mut state = lock(&self.state);
        state.shutdown = true;
        let queued = mem::take(&mut state.jobs);
        drop(state);
        self.jobs_ready.notify_all();
        queued.into()
    }

    /// The second half: waits until every thread has ended (the jobs running at
    /// [`close`](Self::close) have returned), at most `timeout` if one is given, and
    /// joins the threads. Those still running at the deadline are left detached, to end
    /// on their own after their job.
    ///
    /// Called on one of this pool's threads (a job dropped the runtime), that thread is
    /// not waited for: it cannot end while it waits.
    pub(crate) fn join_threads(&self, timeout: Option<Duration>) {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut state = lock(&self.state);
        let here = thread::current().id();
        let this_one = state
            .handles
            .values()
            .any(|handle| handle.thread().id() == here);
        let others = |state: &PoolState| state.threads - usize::from(this_one);
        while others(&state) > 0 {
            state = match deadline {
                None => unpoison(self.thread_ended.wait(state)),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    unpoison(self.thread_ended.wait_timeout(state, left)).0
                }
            };
        }
        let all_ended = others(&state) == 0;
        let left_idle = state.left_idle.take();
        let handles: Vec<_> = state
            .handles
            .drain()
            .map(|(_, handle)| handle)
            .chain(left_idle)
            .collect();
        drop(state);
        for handle in handles {
            if handle.thread().id() != here && (all_ended || handle.is_finished()) {
                // A job's panic is caught by its task: a panic here is the pool's own
                // bug, and the shutdown must not panic in its turn.
                let _ = handle.join();
            }
            // Any other handle is dropped: its thread is detached.
        }
    }

    /// Starts a thread for the queued jobs; called with the state locked, so that the
    /// handle is in `handles` before the thread can look for it.
    fn start_thread(self: &Arc<Self>, state: &mut PoolState) {
        let number = state.next_number;
        state.next_number += 1;
        let pool = self.clone();
        let started = thread::Builder::new()
            .name("async-scratch-blocking".into())
            .spawn(move || pool.run_thread(number));
        // No thread: the job waits for a thread that exists to be free.
        if let Ok(handle) = started {
            state.threads += 1;
            state.handles.insert(number, handle);
        }
    }

    fn run_thread(self: Arc<Self>, number: u64) {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                // A job ends in its one poll: there is nothing to queue again.
                let _ = job.run();
                state = lock(&self.state);
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (next, waited) = unpoison(self.jobs_ready.wait_timeout(state, self.keep_alive));
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.jobs.is_empty() && !state.shutdown {
                self.leave_idle(state, number);
                return;
            }
        }
        // Shutting down: the shutdown holds this thread's handle, and joins it.
        state.threads -= 1;
        drop(state);
        self.thread_ended.notify_all();
    }

    /// Ends thread `number`, idle for a whole keep-alive: its handle takes the place
    /// of the last thread that left, which it joins.
    fn leave_idle(&self, mut state: MutexGuard<'_, PoolState>, number: u64) {
        let own = state.handles.remove(&number);
        let previous = mem::replace(&mut state.left_idle, own);
        state.threads -= 1;
        drop(state);
        self.thread_ended.notify_all();
        if let Some(previous) = previous {
            // It has left its loop already: this join is its last few instructions.
            let _ = previous.join();
        }
    }
}

fn unpoison<T>(result: Result<T, PoisonError<T>>) -> T {
    result.unwrap_or_else(PoisonError::into_inner)
}

impl BlockingPool {
    /// Queues a new job, for an idle thread or a new one.
    pub(crate) fn push(self: &Arc<Self>, job: Runnable) {
        let mut state = lock(&self.state);
        if state.shutdown {
            drop(state);
            // The runtime is going: the job never runs, and its handle says
            // `Cancelled`. No thread polls it: it was never queued.
            job.abandon();
            return;
        }
        state.jobs.push_back(job);
        if state.idle >= state.jobs.len() {
            drop(state);
            self.jobs_ready.notify_one();
        } else if state.threads < self.max_threads {
            self.start_thread(&mut state);
        }
    }
}

/// The pool as its jobs' scheduler (see `executor::schedule`). A job is queued once,
/// when it is made, and never woken: it runs to its end in its one poll. An abort
/// finds it queued already, or over.
impl Schedule for BlockingPool {
    unsafe fn schedule(job: Runnable) {
        // SAFETY: the job's scheduler is a `BlockingPool`, by this function's contract.
        let pool = unsafe { job.header().owner_arc::<BlockingPool>() };
        pool.push(job);
    }

    fn report(&self, diagnostic: &Diagnostic) {
        report_to(&self.reporter, diagnostic);
    }
}

/// A blocking closure as a future that completes at its first poll, run inside its
/// runtime's context.
///
/// It holds its runtime (`Shared`), which holds the pool, which holds the queued job: a
/// cycle, for as long as the job is queued. The runtime's drop breaks it, by cancelling
/// every queued job (see [`BlockingPool::close`]).
pub(crate) struct BlockingJob<F> {
    job: Option<(F, Arc<Shared>)>,
}

impl<F> BlockingJob<F> {
    pub(crate) fn new(job: F, runtime: Arc<Shared>) -> BlockingJob<F> {
        BlockingJob {
            job: Some((job, runtime)),
        }
    }
}

impl<F> Unpin for BlockingJob<F> {}

impl<F: FnOnce() -> T, T> Future for BlockingJob<F> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let (job, runtime) = self.job.take().expect("a blocking job runs once");
        let _context = context::enter(runtime, None);
        Poll::Ready(job())
    }
}
