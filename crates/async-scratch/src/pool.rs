//! A thread pool of our own: a fixed set of worker threads taking jobs from one queue.
//!
//! **Step 1** introduces it. Step 0 ran every unit on the main thread, one after another;
//! now the main thread only *hands out* work, and `workers` threads run it at the same
//! time. For units that wait (I/O), N workers finish about N times sooner.
//!
//! How it works, in three pieces:
//! - a FIFO queue of boxed closures (`VecDeque`), guarded by a `Mutex`;
//! - a `Condvar` that an idle worker sleeps on until [`ThreadPool::execute`] pushes a job;
//! - worker threads named `pool-worker-0`, `pool-worker-1`, …, each looping "take a job,
//!   run it" until the pool is shut down *and* the queue is empty.
//!
//! What it promises:
//! - **Nothing queued is lost.** Dropping the pool, or [`ThreadPool::shutdown`], lets the
//!   workers finish every queued job, then joins them.
//! - **A panicking job does not kill its worker.** The panic is caught, the worker takes
//!   the next job, and the panic is not silent: the standard panic hook prints its message
//!   once, as for any thread, and [`ThreadPool::panicked_jobs`] counts it. To get the
//!   message back as a value, use [`ThreadPool::spawn`] (step 2, in [`crate::task`]).
//! - **Zero workers is an error**, not a pool that silently never runs anything.
//!
//! ```
//! use async_scratch::pool::ThreadPool;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let pool = ThreadPool::new(4)?;
//! let done = Arc::new(AtomicUsize::new(0));
//! for _ in 0..100 {
//!     let done = done.clone();
//!     pool.execute(move || {
//!         done.fetch_add(1, Ordering::Relaxed);
//!     });
//! }
//! drop(pool); // waits for all 100 jobs
//! assert_eq!(done.load(Ordering::Relaxed), 100);
//! # Ok::<(), async_scratch::pool::PoolError>(())
//! ```
//!
//! *Teaching shortcut:* one queue behind one lock is the simplest correct design, and it
//! holds up well on a few cores. Production pools (rayon, tokio's blocking pool) give each
//! worker its own queue and let idle workers steal, so workers rarely touch the same lock;
//! step 7 of the roadmap builds that.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

/// A job: any closure that can be sent to another thread and run once.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed number of worker threads that run jobs in the order they were queued.
pub struct ThreadPool {
    shared: Arc<Shared>,
    /// Emptied by the first shutdown, so the second (from `Drop`) has nothing to do.
    workers: Vec<JoinHandle<()>>,
}

/// What the pool and its workers share.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is pushed or the pool closes. Workers wait on it with the
    /// `queue` lock, so a push can never slip in between "queue is empty" and "sleep".
    job_ready: Condvar,
    /// Jobs given to [`ThreadPool::execute`] that panicked. Only counted, so relaxed
    /// atomics are enough: nothing else is ordered by it.
    panicked_jobs: AtomicUsize,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Workers asleep on `job_ready`. `execute` signals only when this is non-zero:
    /// waking a condvar is a system call, and under load no worker is asleep.
    idle_workers: usize,
    /// Set once by shutdown: workers leave as soon as the queue is empty.
    closed: bool,
}

/// Why a pool could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError {
    /// `ThreadPool::new(0)`: a pool with no workers would never run a job.
    NoWorkers,
    /// The operating system refused to start a worker thread.
    Spawn(io::Error),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NoWorkers => f.write_str("a thread pool needs at least one worker"),
            PoolError::Spawn(error) => write!(f, "could not start a worker thread: {error}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::NoWorkers => None,
            PoolError::Spawn(error) => Some(error),
        }
    }
}

impl ThreadPool {
    /// Starts `workers` threads, named `pool-worker-0` to `pool-worker-{workers - 1}`.
    ///
    /// # Errors
    /// [`PoolError::NoWorkers`] if `workers` is 0; [`PoolError::Spawn`] if a thread could
    /// not be started (the threads already started are shut down first).
    pub fn new(workers: usize) -> Result<ThreadPool, PoolError> {
        if workers == 0 {
            return Err(PoolError::NoWorkers);
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle_workers: 0,
                closed: false,
            }),
            job_ready: Condvar::new(),
            panicked_jobs: AtomicUsize::new(0),
        });
        // Built up one worker at a time: if a spawn fails, dropping `pool` on the way
        // out shuts down the workers that did start.
        let mut pool = ThreadPool {
            shared,
            workers: Vec::with_capacity(workers),
        };
        for index in 0..workers {
            let shared = Arc::clone(&pool.shared);
            let worker = thread::Builder::new()
                .name(format!("pool-worker-{index}"))
                .spawn(move || shared.work_until_closed())
                .map_err(PoolError::Spawn)?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// Queues `job` to run on one of the workers. Never blocks on the job itself.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        let mut queue = self.shared.lock_queue();
        queue.jobs.push_back(Box::new(job));
        let someone_is_asleep = queue.idle_workers > 0;
        drop(queue); // let the woken worker take the lock straight away
        if someone_is_asleep {
            self.shared.job_ready.notify_one();
        }
    }

    /// How many worker threads the pool has.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// How many jobs are queued and not yet taken by a worker.
    pub fn queued_jobs(&self) -> usize {
        self.shared.lock_queue().jobs.len()
    }

    /// How many jobs given to [`execute`](ThreadPool::execute) have panicked so far.
    pub fn panicked_jobs(&self) -> usize {
        self.shared.panicked_jobs.load(Ordering::Relaxed)
    }

    /// Finishes every queued job, then stops and joins the workers.
    ///
    /// Dropping the pool does the same; this method makes the wait visible at the call
    /// site.
    pub fn shutdown(mut self) {
        self.close_and_join();
    }

    fn close_and_join(&mut self) {
        self.shared.close();
        let this_thread = thread::current().id();
        for worker in self.workers.drain(..) {
            // A job that owns the pool and drops it runs *on* a worker; that worker
            // cannot join itself. It leaves by itself once the queue is empty.
            if worker.thread().id() != this_thread {
                // Workers catch every job's panic, so `join` cannot report one.
                let _ = worker.join();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.close_and_join();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = self.shared.lock_queue();
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers.len())
            .field("idle_workers", &queue.idle_workers)
            .field("queued_jobs", &queue.jobs.len())
            .field("closed", &queue.closed)
            .field("panicked_jobs", &self.panicked_jobs())
            .finish()
    }
}

impl Shared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside this lock, and our own code does not panic while holding
        // it, so a poisoned queue is still consistent: carry on rather than fail.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The body of every worker thread.
    fn work_until_closed(&self) {
        while let Some(job) = self.next_job() {
            self.run(job);
        }
    }

    /// The next job in FIFO order, sleeping while the queue is empty; `None` once the
    /// pool is closed and nothing is left to do.
    fn next_job(&self) -> Option<Job> {
        let mut queue = self.lock_queue();
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            if queue.closed {
                return None;
            }
            queue.idle_workers += 1;
            // May wake spuriously; the loop looks at the queue again either way.
            queue = self
                .job_ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.idle_workers -= 1;
        }
    }

    fn run(&self, job: Job) {
        // `AssertUnwindSafe`: if the job panics, everything it captured is dropped with
        // it, so no half-updated state of the job's is ever seen again by the worker.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            self.panicked_jobs.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn close(&self) {
        self.lock_queue().closed = true;
        self.job_ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Jobs still queued when the pool closes all run before shutdown returns. The pool
    /// is closed by hand while its only worker is held up, so the queue is surely full
    /// at that moment.
    #[test]
    fn shutdown_drains_the_queue() {
        let mut pool = ThreadPool::new(1).unwrap();
        let (open_gate, gate) = mpsc::channel::<()>();
        let (at_gate, worker_is_at_gate) = mpsc::channel();
        pool.execute(move || {
            at_gate.send(()).unwrap();
            gate.recv().unwrap();
        });
        worker_is_at_gate.recv().unwrap();
        let (done, finished) = mpsc::channel();
        for job in 0..99 {
            let done = done.clone();
            pool.execute(move || done.send(job).unwrap());
        }
        drop(done);

        pool.shared.close();
        assert_eq!(pool.queued_jobs(), 99, "the worker is held at the gate");
        open_gate.send(()).unwrap();
        pool.close_and_join();

        let ran: Vec<i32> = finished.iter().collect();
        assert_eq!(ran, (0..99).collect::<Vec<_>>(), "all ran, in FIFO order");
    }
}
