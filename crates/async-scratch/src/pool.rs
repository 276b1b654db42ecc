//! A thread pool of our own: a fixed set of worker threads taking jobs from one queue.
//!
//! **Step 1** introduces it. Step 0 ran every unit on the main thread, one after another;
//! now the main thread only *hands out* work, and `workers` threads run it at the same
//! time. For units that wait (I/O), N workers finish about N times sooner.
//!
//! How it works, in three pieces:
//! - a FIFO queue of boxed closures (`VecDeque`s behind `Mutex`es, see below);
//! - a `Condvar` that an idle worker sleeps on until [`ThreadPool::execute`] pushes a job;
//! - worker threads named `pool-worker-0`, `pool-worker-1`, …, each looping "take a job,
//!   run it" until the pool is shut down *and* the queue is empty.
//!
//! Two refinements make it as fast as the `threadpool` crate on tiny jobs (see the
//! README's benchmark section), and both are worth knowing:
//! - **The queue has two halves.** `execute` pushes onto an *incoming* half; workers pop
//!   from a *ready* half and, when it runs dry, swap the whole incoming half in at once.
//!   With one lock, the thread queueing jobs and the workers taking them would fight
//!   over it for every job; with two, they meet once per batch.
//! - **An idle worker looks before it sleeps.** Sleeping on a condvar and being woken
//!   costs two system calls. When jobs are tiny, the next one is usually microseconds
//!   away, so a worker first spins and yields for a short, bounded while.
//!
//! What it promises:
//! - **Nothing queued is lost.** Dropping the pool, or [`ThreadPool::shutdown`], lets the
//!   workers finish every queued job, then joins them.
//! - **A panicking job does not kill its worker**, not even with a panic payload whose
//!   own `Drop` panics. The panic is caught, the worker takes the next job, and the
//!   panic is not silent: the standard panic hook prints its message once, as for any
//!   thread, and [`ThreadPool::panicked_jobs`] counts it. To get the message back as a
//!   value, use [`ThreadPool::spawn`] (step 2, in [`crate::task`]).
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
//! *Teaching shortcut:* every worker still shares one ready queue, which holds up well on
//! a few cores. Work-stealing pools (rayon, tokio's scheduler) give each worker its own
//! queue and let idle workers steal, so workers rarely touch the same lock at all; step 7
//! of the roadmap builds that.

use crate::locking::{lock, wait};
use crate::unwind::drop_payload;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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
///
/// The queue is split in two halves with a lock each, so that `execute` (which only
/// touches `incoming`) and the workers (which mostly touch `ready`) rarely wait for
/// each other. When `ready` runs dry, a worker moves the whole of `incoming` into it in
/// one swap. Jobs stay in FIFO order: `ready` is only refilled when empty, and always
/// with jobs queued after every job it held. Lock order: `ready` before `incoming`.
struct Shared {
    /// Jobs that workers take, oldest first. Only workers lock it (and `Debug`).
    ready: Mutex<VecDeque<Job>>,
    /// Jobs queued since the last refill, and the pool's sleeping/closing state.
    incoming: Mutex<Incoming>,
    /// Signalled when a job is pushed or the pool closes. Workers wait on it with the
    /// `incoming` lock, so a push can never slip in between "empty" and "sleep".
    job_ready: Condvar,
    /// `incoming.jobs.len()`, written under its lock, read without it by workers
    /// watching for work (`watch_briefly_for_work`). A stale read costs one more look.
    incoming_len: AtomicUsize,
    /// Jobs given to [`ThreadPool::execute`] that panicked. Only counted, so relaxed
    /// atomics are enough: nothing else is ordered by it.
    panicked_jobs: AtomicUsize,
}

/// How many times an idle worker spins (each twice as long as the last) before it
/// starts yielding: 7 rounds add up to about 127 spin-loop hints.
const SPIN_ROUNDS: u32 = 7;

/// How many looks an idle worker takes in all before it sleeps on the condvar. The
/// rounds after `SPIN_ROUNDS` yield the core; a handful is enough to catch a producer
/// that was only descheduled for a moment.
const WATCH_ROUNDS: u32 = 11;

struct Incoming {
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
            ready: Mutex::new(VecDeque::new()),
            incoming: Mutex::new(Incoming {
                jobs: VecDeque::new(),
                idle_workers: 0,
                closed: false,
            }),
            job_ready: Condvar::new(),
            incoming_len: AtomicUsize::new(0),
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
        let job: Job = Box::new(job); // allocate before taking the lock, not under it
        let mut incoming = lock(&self.shared.incoming);
        incoming.jobs.push_back(job);
        self.shared
            .incoming_len
            .store(incoming.jobs.len(), Ordering::Relaxed);
        let someone_is_asleep = incoming.idle_workers > 0;
        drop(incoming); // let the woken worker take the lock straight away
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
        let ready = lock(&self.shared.ready);
        let incoming = lock(&self.shared.incoming);
        ready.len() + incoming.jobs.len()
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
        let ready = lock(&self.shared.ready);
        let incoming = lock(&self.shared.incoming);
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers.len())
            .field("idle_workers", &incoming.idle_workers)
            .field("queued_jobs", &(ready.len() + incoming.jobs.len()))
            .field("closed", &incoming.closed)
            .field("panicked_jobs", &self.panicked_jobs())
            .finish()
    }
}

impl Shared {
    /// The body of every worker thread.
    fn work_until_closed(&self) {
        while let Some(job) = self.next_job() {
            self.run(job);
        }
    }

    /// The next job in FIFO order, sleeping while the queue is empty; `None` once the
    /// pool is closed and nothing is left to do.
    fn next_job(&self) -> Option<Job> {
        let mut ready = lock(&self.ready);
        let mut watched = false;
        loop {
            if let Some(job) = ready.pop_front() {
                return Some(job);
            }
            let mut incoming = lock(&self.incoming);
            if !incoming.jobs.is_empty() {
                // The refill: O(1), and it leaves `incoming` the empty deque, whose
                // allocation `execute` then reuses.
                std::mem::swap(&mut *ready, &mut incoming.jobs);
                self.incoming_len.store(0, Ordering::Relaxed);
                continue;
            }
            if incoming.closed {
                return None;
            }
            drop(ready); // no lock held while idle, so `queued_jobs` never waits on one
            if watched {
                self.sleep_until_signalled(incoming);
                watched = false;
            } else {
                // Sleeping and being woken costs two system calls; a job is often
                // only a moment away, so look out for one first, without any lock.
                drop(incoming);
                self.watch_briefly_for_work();
                watched = true;
            }
            ready = lock(&self.ready);
        }
    }

    fn sleep_until_signalled(&self, mut incoming: MutexGuard<'_, Incoming>) {
        incoming.idle_workers += 1;
        // May wake spuriously; the caller looks at the queue again either way.
        incoming = wait(&self.job_ready, incoming);
        incoming.idle_workers -= 1;
    }

    /// Spins, then yields, until a job is queued or the watch is over; whoever calls it
    /// looks at the real queue afterwards, so a missed job only costs a sleep.
    fn watch_briefly_for_work(&self) {
        for round in 0..WATCH_ROUNDS {
            if self.incoming_len.load(Ordering::Relaxed) > 0 {
                return;
            }
            if round < SPIN_ROUNDS {
                // Doubling spins: a few nanoseconds at first, about a microsecond last.
                for _ in 0..1u32 << round {
                    std::hint::spin_loop();
                }
            } else {
                // Give the core away: on a busy machine the job we wait for may be
                // queued by a thread that needs this core to run.
                thread::yield_now();
            }
        }
    }

    fn run(&self, job: Job) {
        // `AssertUnwindSafe`: if the job panics, everything it captured is dropped with
        // it, so no half-updated state of the job's is ever seen again by the worker.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
            self.panicked_jobs.fetch_add(1, Ordering::Relaxed);
            // Not a plain drop: the payload's own `Drop` may panic, and out here that
            // would end this worker and strand every job queued behind this one.
            drop_payload(payload);
        }
    }

    fn close(&self) {
        lock(&self.incoming).closed = true;
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
