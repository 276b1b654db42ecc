//! The blocking pool: threads for work that blocks (a file read, a long computation),
//! so that it never holds a worker and the tasks queued behind it.
//!
//! Step 7 introduces it. It is elastic: a job finds an idle thread, or a new thread is
//! started for it, up to a cap; a thread idle for `keep_alive` exits. A blocking job is
//! a task like any other (the same [`Task`](super::task::Task), with this pool as its
//! scheduler), so its `JoinHandle` and `abort` are the runtime's: a job aborted before
//! it starts never runs.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use super::task::{lock, Runnable, Schedule};

/// The pool, shared by the runtime and its threads.
pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    condvar: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

struct PoolState {
    jobs: VecDeque<Runnable>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> Arc<BlockingPool> {
        Arc::new(BlockingPool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
                shutdown: false,
            }),
            condvar: Condvar::new(),
            max_threads,
            keep_alive,
        })
    }

    /// How many threads the pool has now.
    pub(crate) fn threads(&self) -> usize {
        lock(&self.state).threads
    }

    /// Lets idle threads exit at once; running jobs finish on their own.
    pub(crate) fn shutdown(&self) {
        lock(&self.state).shutdown = true;
        self.condvar.notify_all();
    }

    fn run_thread(self: Arc<Self>) {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                job.run();
                state = lock(&self.state);
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (next, waited) = self
                .condvar
                .wait_timeout(state, self.keep_alive)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.jobs.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }
}

/// The pool as a task's scheduler.
pub(crate) struct BlockingSchedule(pub(crate) Arc<BlockingPool>);

impl Schedule for BlockingSchedule {
    fn schedule(&self, job: Runnable) {
        let pool = &self.0;
        let mut state = lock(&pool.state);
        state.jobs.push_back(job);
        if state.idle >= state.jobs.len() {
            drop(state);
            pool.condvar.notify_one();
        } else if state.threads < pool.max_threads {
            state.threads += 1;
            drop(state);
            let pool = pool.clone();
            let started = thread::Builder::new()
                .name("async-scratch-blocking".into())
                .spawn(move || pool.run_thread());
            if started.is_err() {
                // No thread: the job waits for a thread that exists to be free.
                lock(&self.0.state).threads -= 1;
            }
        }
    }
}

/// A blocking closure as a future that completes at its first poll.
pub(crate) struct BlockingJob<F>(pub(crate) Option<F>);

impl<F> Unpin for BlockingJob<F> {}

impl<F: FnOnce() -> T, T> Future for BlockingJob<F> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let job = self.0.take().expect("a blocking job runs once");
        Poll::Ready(job())
    }
}
