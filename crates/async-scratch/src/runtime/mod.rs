//! The multi-threaded runtime: tasks spread over a pool of worker threads, which steal
//! from one another when idle.
//!
//! Step 7 introduces it. Until now one thread ran every task (`executor`), with the
//! reactor of step 6 parking it when nothing was ready. A runtime runs `n` workers
//! (by default one per core). What changed from the one-thread executor:
//!
//! - tasks are `Send`: a task woken on one worker may run next on another;
//! - each worker has its own bounded queue (`queue`), and there is one shared queue,
//!   the injector (`injector`), for spawns from outside and for a full queue's overflow;
//! - an idle worker steals half of another worker's queue (a lock-free ring, `queue`);
//! - a task woken by the task running now goes to its worker's LIFO slot and runs
//!   next, while the data the waker just wrote is in the cache (a message passed);
//!   at most three times in a row, so that the queue behind it is not starved. The
//!   slot is not stealable: a task there waits for its own worker;
//! - idle workers park, and new work wakes one only when no worker is already looking
//!   for work (`idle`);
//! - blocking work goes to its own elastic pool of threads (`blocking`), which the
//!   runtime's drop shuts down with it: jobs not started are cancelled, running ones
//!   waited for (or, with [`Runtime::shutdown_timeout`], for a bounded time);
//! - one timer queue is shared by all workers: the worker about to park fires the due
//!   timers, and parks no longer than the next deadline (see `worker`);
//! - one reactor is shared by all workers: the worker about to park waits in its
//!   `epoll_wait` if no other worker does, and the others park on their own parkers;
//!   a busy worker polls it every 61st turn (`driver`). Sockets register with it
//!   through [`Runtime::reactor`], or [`reactor()`] from inside;
//! - dropping the runtime stops the workers, then drops every pending future exactly
//!   once (`owned`);
//! - what each worker writes at every poll (its queue's ends, its LIFO slot, its poll
//!   count) sits on cache lines of its own, so that two workers do not bounce one line
//!   between their cores (`padded`).
//!
//! A runtime task is the one-thread executor's task (`task`): the same allocation, state
//! word, wakers, outcome slot and [`JoinHandle`], with the runtime as its scheduler
//! instead of the executor (the `Schedule` seam of `executor::schedule`). The worker
//! pool and the blocking pool are two schedulers of it. The one difference is that a
//! runtime's futures and outputs are `Send`, since its workers pass tasks between
//! threads.
//!
//! Of step 5's diagnostics, the runtime has the stall watchdog, naming the worker as
//! well as the task, the lost-task report, found in the task's state word by whoever
//! drops its last waker, and reports the panics it catches in user code
//! ([`Builder::stall_watchdog`], [`Builder::diagnostics`], [`Builder::on_diagnostic`];
//! see `diagnostics`).
//!
//! And the deadlock report ([`Diagnostic::Deadlock`]): the books of who waits on whom
//! are kept for runtime tasks too, and read when every worker is idle, with no timer,
//! no socket and no blocking job that could wake a task; a wait cycle is reported from
//! there, never after a single poll as on the executor (see `diagnostics` for why).
//! `block_on`'s own future is a task in those books, as on the executor, but a
//! deadlock does not make `block_on` panic: the report is the answer.
//!
//! ```
//! use async_scratch::runtime::{self, Runtime};
//!
//! let runtime = Runtime::builder().worker_threads(2).build()?;
//! let sum = runtime.block_on(async {
//!     let handles: Vec<_> = (0..10u64).map(|n| runtime::spawn(async move { n * n })).collect();
//!     let mut sum = 0;
//!     for handle in handles {
//!         sum += handle.await.unwrap();
//!     }
//!     sum
//! });
//! assert_eq!(sum, 285);
//! # Ok::<(), std::io::Error>(())
//! ```

mod blocking;
mod context;
mod diagnostics;
mod driver;
mod idle;
mod injector;
mod owned;
mod padded;
mod queue;
mod task;
mod worker;

use std::fmt;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

pub use crate::executor::JoinError;
pub use crate::executor::JoinHandle;

use crate::diagnostics::{print_to_stderr, Diagnostic, Reporter};
use crate::executor::schedule::Schedule;
use crate::executor::task::poll_root;
use crate::reactor;
use blocking::{BlockingJob, BlockingPool};
use diagnostics::Diagnostics;
use driver::Driver;
use idle::Parker;
use worker::{Placement, Shared};

/// How many blocking threads a runtime starts at most, unless told otherwise.
const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;
/// How long a blocking thread waits idle for a job before it exits.
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Configures and builds a [`Runtime`].
///
/// ```
/// use async_scratch::runtime::Runtime;
///
/// let runtime = Runtime::builder().worker_threads(2).build()?;
/// assert_eq!(runtime.stats().workers, 2);
/// assert!(Runtime::builder().worker_threads(0).build().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Builder {
    worker_threads: Option<usize>,
    max_blocking_threads: usize,
    keep_alive: Duration,
    stall_threshold: Option<Duration>,
    keeps_books: bool,
    reporter: Reporter,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("worker_threads", &self.worker_threads)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("keep_alive", &self.keep_alive)
            .field("stall_threshold", &self.stall_threshold)
            .field("diagnostics", &self.keeps_books)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// How many worker threads run tasks. Defaults to the available parallelism.
    /// Zero makes [`build`](Builder::build) fail.
    pub fn worker_threads(mut self, count: usize) -> Builder {
        self.worker_threads = Some(count);
        self
    }

    /// How many threads the blocking pool may grow to (default 512; at least 1).
    pub fn max_blocking_threads(mut self, count: usize) -> Builder {
        self.max_blocking_threads = count.max(1);
        self
    }

    /// How long an idle blocking thread waits for a job before it exits (default 10 s).
    pub fn thread_keep_alive(mut self, keep_alive: Duration) -> Builder {
        self.keep_alive = keep_alive;
        self
    }

    /// Turns on the stall watchdog: a poll holding a worker longer than `threshold` is
    /// reported ([`Diagnostic::Stall`], naming the worker and the task: its id and
    /// where it was spawned), when it returns, or by a watchdog thread, which looks
    /// every quarter threshold, while it has not returned. Off by default: on, it costs
    /// a lock and two clock reads per poll, and a thread; off, nothing.
    ///
    /// A stall on a runtime holds one worker: the others go on, but the tasks queued
    /// on that worker wait until another steals them, and a task in its LIFO slot
    /// waits for it. Blocking work belongs on [`Runtime::spawn_blocking`].
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use async_scratch::diagnostics::Diagnostic;
    /// use async_scratch::runtime::Runtime;
    ///
    /// let (reports, reported) = mpsc::channel();
    /// let reports = std::sync::Mutex::new(reports);
    /// let runtime = Runtime::builder()
    ///     .worker_threads(1)
    ///     .stall_watchdog(Duration::from_millis(20))
    ///     .on_diagnostic(move |d: &Diagnostic| {
    ///         let _ = reports.lock().unwrap().send(d.clone());
    ///     })
    ///     .build()?;
    /// // A blocking call in async code: it holds worker 0 until the watchdog speaks.
    /// let blocked = runtime.spawn(async move {
    ///     reported.recv_timeout(Duration::from_secs(20)).expect("a stall report")
    /// });
    /// let report = runtime.block_on(blocked).unwrap();
    /// assert!(matches!(report, Diagnostic::Stall { worker: Some(0), still_running: true, .. }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `threshold` is zero: every poll would be a stall, and the watchdog thread,
    /// looking every quarter of nothing, would spin on a core.
    #[track_caller]
    pub fn stall_watchdog(mut self, threshold: Duration) -> Builder {
        assert!(
            !threshold.is_zero(),
            "runtime::Builder::stall_watchdog needs a threshold above zero"
        );
        self.stall_threshold = Some(threshold);
        self
    }

    /// Whether lost tasks are reported (on by default, as on the executor): a task that
    /// is pending, not queued and not being polled when the last waker for it is
    /// dropped, anywhere, can never be woken again, and the thread that dropped that
    /// waker reports [`Diagnostic::LostTask`], naming where the task was spawned. It
    /// costs nothing while wakers come and go: the waker count and the task's flags are
    /// one atomic word, and the drop that takes the count to zero reads both.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use async_scratch::diagnostics::Diagnostic;
    /// use async_scratch::runtime::Runtime;
    ///
    /// let (reports, reported) = mpsc::channel();
    /// let reports = std::sync::Mutex::new(reports);
    /// let runtime = Runtime::builder()
    ///     .worker_threads(2)
    ///     .on_diagnostic(move |d: &Diagnostic| {
    ///         let _ = reports.lock().unwrap().send(d.clone());
    ///     })
    ///     .build()?;
    /// // Pending, and it kept no waker: nothing will ever wake it.
    /// let lost = runtime.spawn(std::future::pending::<()>());
    /// let report = reported.recv().unwrap();
    /// assert!(matches!(report, Diagnostic::LostTask { .. }), "{report}");
    /// lost.abort();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// It also turns on the deadlock report: when every worker is idle, no timer is
    /// pending, no socket is registered and no blocking job runs, and every pending
    /// task waits only on other tasks of this runtime through our own primitives (a
    /// [`JoinHandle`], the async [`Mutex`](crate::mutex::Mutex)), nothing can ever wake
    /// them: [`Diagnostic::Deadlock`] names each and the wait cycles among them, once
    /// per stuck spell. A waker held anywhere else (another thread, a timer, a socket),
    /// a `JoinHandle` that someone could abort, a lock held by a plain thread or a wait
    /// on another runtime's task is a wake the runtime cannot rule out: then it says
    /// nothing. It costs a task nothing unless it waits through our primitives (then a
    /// record of the wait, as on the executor).
    ///
    /// ```
    /// use std::sync::{mpsc, Arc};
    /// use async_scratch::diagnostics::Diagnostic;
    /// use async_scratch::mutex::Mutex;
    /// use async_scratch::runtime::Runtime;
    ///
    /// let (reports, reported) = mpsc::channel();
    /// let reports = std::sync::Mutex::new(reports);
    /// let runtime = Runtime::builder()
    ///     .worker_threads(2)
    ///     .on_diagnostic(move |d: &Diagnostic| {
    ///         let _ = reports.lock().unwrap().send(d.clone());
    ///     })
    ///     .build()?;
    /// // Each task takes one lock, then waits for the other's: a lock cycle.
    /// let (first, second) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
    /// let gate = Arc::new(Mutex::new(()));
    /// let closed = gate.try_lock().unwrap(); // until both hold their first lock
    /// let (holding, holds) = mpsc::channel();
    /// for (mine, theirs) in [(&first, &second), (&second, &first)] {
    ///     let (mine, theirs, gate, holding) =
    ///         (mine.clone(), theirs.clone(), gate.clone(), holding.clone());
    ///     // Detached: a handle kept here could abort the task, a possible wake.
    ///     drop(runtime.spawn(async move {
    ///         let _mine = mine.lock().await;
    ///         holding.send(()).unwrap();
    ///         drop(gate.lock().await);
    ///         let _theirs = theirs.lock().await;
    ///     }));
    /// }
    /// holds.recv().unwrap();
    /// holds.recv().unwrap();
    /// drop(closed);
    /// let report = reported.iter().find(|d| matches!(d, Diagnostic::Deadlock(_))).unwrap();
    /// assert!(report.to_string().contains("they wait on each other in a cycle"), "{report}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn diagnostics(mut self, on: bool) -> Builder {
        self.keeps_books = on;
        self
    }

    /// Where diagnostics go (default: [`print_to_stderr`]): the stall watchdog's
    /// reports, lost tasks, deadlocks, and the panics the runtime caught in user code that nobody waits to be
    /// handed (a `JoinHandle` waiter's waker, a timer's waker and its `Drop`, the `Drop`
    /// of a detached task's output). Called from whichever thread found the report: a worker, the
    /// watchdog, a blocking thread, a thread dropping the runtime.
    pub fn on_diagnostic(
        mut self,
        reporter: impl Fn(&Diagnostic) + Send + Sync + 'static,
    ) -> Builder {
        self.reporter = Arc::new(reporter);
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    /// `InvalidInput` if the worker count is zero; the OS's error if a thread cannot
    /// be started, or the reactor cannot be made (no descriptors left).
    pub fn build(self) -> io::Result<Runtime> {
        let workers = match self.worker_threads {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a runtime needs at least one worker thread",
                ))
            }
            Some(count) => count,
            None => thread::available_parallelism().map_or(1, usize::from),
        };
        let blocking = BlockingPool::new(
            self.max_blocking_threads,
            self.keep_alive,
            self.reporter.clone(),
        );
        let diagnostics = Diagnostics::new(
            self.reporter,
            self.stall_threshold,
            self.keeps_books,
            workers,
        );
        let shared = Arc::new(Shared::new(workers, blocking, Driver::new()?, diagnostics));
        let mut runtime = Runtime {
            shared: shared.clone(),
            threads: Vec::with_capacity(workers),
            watchdog: None,
        };
        runtime.watchdog = shared.diagnostics.start_watchdog()?;
        for index in 0..workers {
            let shared = shared.clone();
            let thread = thread::Builder::new()
                .name(format!("async-scratch-worker-{index}"))
                .spawn(move || worker::run(shared, index))?;
            runtime.threads.push(thread);
        }
        Ok(runtime)
    }
}

/// A pool of worker threads running `Send` tasks, with work stealing.
///
/// Dropping it stops the workers (after the poll each one is in), then drops every
/// task still pending: each future exactly once, and their `JoinHandle`s give
/// [`JoinError::Cancelled`]. Blocking jobs not started yet are cancelled the same way
/// (they never run); the drop waits for the jobs already running, and joins every
/// thread it started. [`Runtime::shutdown_timeout`] bounds that wait.
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
    /// The stall watchdog's thread, when it is on.
    watchdog: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.locals.len())
            .finish_non_exhaustive()
    }
}

/// A snapshot of a runtime's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// How many worker threads the runtime has.
    pub workers: usize,
    /// How many times a worker stole from another worker's queue.
    pub steals: u64,
    /// How many times a worker parked for lack of work.
    pub parks: u64,
    /// How many times a worker about to park found every other worker asleep, and
    /// looked for a deadlock while they all slept on (with [`Builder::diagnostics`]
    /// on; see its doc). A test can wait on it: a look counted after a task's poll
    /// has begun saw what that poll left.
    pub deadlock_checks: u64,
    /// How many polls each worker made, by worker index.
    pub polls_per_worker: Vec<u64>,
    /// How many threads the blocking pool has now.
    pub blocking_threads: usize,
}

impl Runtime {
    /// A runtime with the default configuration (one worker per core).
    ///
    /// # Errors
    /// The OS's error if a thread cannot be started.
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// A builder, to choose the worker count and the blocking pool's limits.
    pub fn builder() -> Builder {
        Builder {
            worker_threads: None,
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            stall_threshold: None,
            keeps_books: true,
            reporter: print_to_stderr(),
        }
    }

    /// Runs `future` on the calling thread to completion, while the workers run the
    /// tasks it spawns. Inside it, [`spawn`], [`spawn_blocking`] and `time::sleep`
    /// use this runtime.
    ///
    /// The future is polled as a task of the runtime's own (its *root*, as the
    /// executor's `block_on` has), so that the deadlock check knows what it waits on:
    /// if it waits, with tasks of this runtime, in a deadlock nothing can end, the
    /// deadlock is reported ([`Builder::diagnostics`]), naming "block_on's future"
    /// where this was called; `block_on` itself waits on, as it cannot be woken.
    ///
    /// # Panics
    /// When called from a task running on a worker: a worker must not block. Await
    /// the future instead.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            context::worker().is_none(),
            "Runtime::block_on was called from a task running on a runtime worker; \
             a worker must not block: await the future instead"
        );
        let _context = context::enter(self.shared.clone(), None);
        let _timers = crate::time::use_timers(crate::time::Clock::Real, self.shared.timers.clone());
        let mut future = pin!(future);
        let parker = Arc::new(Parker::new());
        let root = task::new_root(&self.shared, Location::caller(), Arc::clone(&parker));
        let root = RootGuard::enter(&self.shared, root);
        loop {
            if root.0.is_scheduled() {
                match poll_root(&root.0, &*self.shared, future.as_mut()) {
                    Poll::Ready(output) => return output,
                    // A poll that ended pending may have made a deadlock certain that a
                    // worker, parked undecided while the root was in its poll, could
                    // not claim: as on the executor, every pending poll is looked at.
                    Poll::Pending => self.shared.look_again_if_undecided(),
                }
            }
            // The workers may all be parked: the timers this thread set are its own
            // to fire.
            self.shared.fire_timers();
            if !root.0.is_scheduled() {
                let timeout = self
                    .shared
                    .timers
                    .next_deadline()
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()));
                parker.park(timeout);
            }
            self.shared.fire_timers();
        }
    }

    /// Spawns `future` as a task on the workers, and returns its handle. Callable
    /// from anywhere.
    ///
    /// ```
    /// use async_scratch::runtime::Runtime;
    ///
    /// let runtime = Runtime::builder().worker_threads(2).build()?;
    /// let handle = runtime.spawn(async { 6 * 7 });
    /// assert_eq!(runtime.block_on(handle), Ok(42));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_on(&self.shared, future)
    }

    /// Runs `job` on the blocking pool, and returns its handle. The job runs in this
    /// runtime's context: [`spawn`] and [`spawn_blocking`] work inside it.
    ///
    /// ```
    /// use async_scratch::runtime::Runtime;
    ///
    /// let runtime = Runtime::builder().worker_threads(1).build()?;
    /// let handle = runtime.spawn_blocking(|| std::thread::current().name().map(String::from));
    /// let name = runtime.block_on(handle).unwrap();
    /// assert_eq!(name.as_deref(), Some("async-scratch-blocking"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, job: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_blocking_on(&self.shared, job)
    }

    /// The handle of the runtime's reactor, to make sockets whose tasks run on this
    /// runtime. One of the workers waits for their events (see the module doc); a
    /// socket's task may be polled on any worker.
    ///
    /// ```
    /// use async_scratch::net::{TcpListener, TcpStream};
    /// use async_scratch::runtime::Runtime;
    ///
    /// let runtime = Runtime::builder().worker_threads(2).build()?;
    /// let handle = runtime.reactor();
    /// let mut listener = TcpListener::bind(&handle, "127.0.0.1:0")?;
    /// let address = listener.local_addr()?;
    /// let server = runtime.spawn(async move {
    ///     let (mut stream, _) = listener.accept().await?;
    ///     let mut buffer = [0; 4];
    ///     stream.read_exact(&mut buffer).await?;
    ///     stream.write_all(&buffer).await?;
    ///     Ok::<_, std::io::Error>(())
    /// });
    /// let echoed = runtime.block_on(async {
    ///     let mut client = TcpStream::connect(&handle, address).await?;
    ///     client.write_all(b"ping").await?;
    ///     let mut echoed = [0; 4];
    ///     client.read_exact(&mut echoed).await?;
    ///     Ok::<_, std::io::Error>(echoed)
    /// })?;
    /// assert_eq!(&echoed, b"ping");
    /// runtime.block_on(server).unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reactor(&self) -> reactor::Handle {
        self.shared.driver.handle().clone()
    }

    /// The runtime's counters now.
    pub fn stats(&self) -> RuntimeStats {
        let stats = &self.shared.stats;
        RuntimeStats {
            workers: self.shared.locals.len(),
            steals: stats.steals.load(Ordering::Relaxed),
            parks: stats.parks.load(Ordering::Relaxed),
            deadlock_checks: stats.deadlock_checks.load(Ordering::Relaxed),
            polls_per_worker: stats
                .polls
                .iter()
                .map(|polls| polls.load(Ordering::Relaxed))
                .collect(),
            blocking_threads: self.shared.blocking.threads(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shut_down(None);
    }
}

impl Runtime {
    /// Shuts the runtime down as its drop does, but waits at most `timeout` for the
    /// blocking jobs still running.
    ///
    /// Every pending task is dropped and every blocking job not started yet is
    /// cancelled (their `JoinHandle`s give [`JoinError::Cancelled`]), as on drop. The
    /// blocking jobs already running cannot be stopped from outside (a thread is not
    /// interrupted in a system call): those still running after `timeout` are left
    /// **detached**, and their threads end on their own when their jobs return. A
    /// plain drop waits for them however long they take.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use async_scratch::runtime::Runtime;
    ///
    /// let runtime = Runtime::builder().worker_threads(1).build()?;
    /// let (release, wait) = mpsc::channel::<()>();
    /// let (started, has_started) = mpsc::channel();
    /// let stuck = runtime.spawn_blocking(move || {
    ///     started.send(()).unwrap();
    ///     wait.recv().ok(); // blocks until released
    /// });
    /// has_started.recv().unwrap();
    /// runtime.shutdown_timeout(Duration::from_millis(10)); // returns; the job runs on
    /// release.send(()).unwrap();
    /// drop(stuck);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shut_down(Some(timeout));
    }

    /// Shuts down once (the drop after `shutdown_timeout` finds it done), waiting for
    /// running blocking jobs at most `blocking_timeout` (`None`: as long as they take).
    fn shut_down(&mut self, blocking_timeout: Option<Duration>) {
        if self.shared.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        let threads = std::mem::take(&mut self.threads);
        if let Some(watchdog) = self.watchdog.take() {
            // First: stopping it runs no user code, so nothing can skip it.
            self.shared.diagnostics.stop_watchdog(watchdog);
        }
        let here = thread::current().id();
        if threads.iter().any(|worker| worker.thread().id() == here) {
            // Dropped by one of its own tasks: this worker cannot join itself, and the
            // task it runs is still being polled. A thread of its own does the shutdown
            // once this worker has left that poll and stopped.
            let shared = Arc::clone(&self.shared);
            let _ = thread::Builder::new()
                .name("async-scratch-shutdown".into())
                .spawn(move || shut_down(&shared, threads, blocking_timeout));
            return;
        }
        shut_down(&self.shared, threads, blocking_timeout);
    }
}

/// Stops the workers and joins them, cancels the blocking jobs not started, drops every
/// pending task's future once, then waits for the blocking jobs still running (at most
/// `blocking_timeout`) and joins the blocking threads.
fn shut_down(
    shared: &Shared,
    threads: Vec<thread::JoinHandle<()>>,
    blocking_timeout: Option<Duration>,
) {
    for parker in shared.parkers.iter() {
        parker.unpark();
    }
    for thread in threads {
        // A worker catches its tasks' panics; a panic here is the runtime's own
        // bug, and this drop must not panic in its turn.
        let _ = thread.join();
    }
    // Not started, never started: a queued job is cancelled like a pending task.
    for job in shared.blocking.close() {
        job.abandon();
    }
    // No worker runs now. Queued references are let go; the owned list holds every
    // pending task, and shuts each down (dropping its future) once. Dropping a
    // future may wake or spawn others: the closed queues and list refuse them, and
    // the loop takes what the list still holds.
    drop(shared.injector.close());
    for (local, lifo) in shared.locals.iter().zip(shared.lifo.iter()) {
        // SAFETY: the workers have stopped (joined above): no thread uses the
        // queues now.
        drop(unsafe { local.drain() });
        drop(task::lock(lifo).take());
    }
    loop {
        let pending = shared.owned.close();
        if pending.is_empty() {
            break;
        }
        for task in pending {
            task.abandon();
        }
    }
    // After the tasks: a running job may be waiting on one of them (a channel whose
    // other end a pending future held), and ends now that it is gone.
    shared.blocking.join_threads(blocking_timeout);
    // The timers' wakers refer to tasks, which refer to this runtime: a cycle. A
    // timer's waker is user code too: its `Drop` may panic.
    shared.timers.clear(|payload| {
        let place = "the drop of a timer's waker";
        shared.diagnostics.caught_panic(place, payload);
    });
    drop(shared.injector.close());
}

/// A `block_on`'s root while it runs: known to the deadlock check, and, at its end
/// (its future's output taken, or its panic unwinding), finished before its future
/// is dropped, so that the wakers the future drops report no lost task.
struct RootGuard<'a>(task::Runnable, &'a Shared);

impl<'a> RootGuard<'a> {
    fn enter(shared: &'a Shared, root: task::Runnable) -> RootGuard<'a> {
        shared.add_root(root.clone());
        RootGuard(root, shared)
    }
}

impl Drop for RootGuard<'_> {
    fn drop(&mut self) {
        self.0.mark_finished();
        self.1.remove_root(&self.0);
    }
}

#[track_caller]
fn spawn_on<F>(shared: &Arc<Shared>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, handle) = task::new_task(shared, Location::caller(), future);
    match shared.owned.insert(task.clone()) {
        Ok(()) => shared.push(task, Placement::Back),
        // The runtime is shutting down: the task ends as cancelled at once (no worker
        // has it: it was never queued).
        Err(task) => task.abandon(),
    }
    handle
}

#[track_caller]
fn spawn_blocking_on<F, T>(shared: &Arc<Shared>, job: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let job = BlockingJob::new(job, shared.clone());
    let (task, handle) = task::new_task(&shared.blocking, Location::caller(), job);
    shared.blocking.push(task);
    handle
}

fn current_or_panic(what: &str) -> Arc<Shared> {
    context::shared().unwrap_or_else(|| {
        panic!(
            "runtime::{what} was called outside a runtime: call it from a task on a \
             Runtime (or inside Runtime::block_on), or use Runtime::{what}"
        )
    })
}

/// Spawns `future` on the current runtime (the one running this task, or whose
/// `block_on` this is).
///
/// # Panics
/// Outside a runtime.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_on(&current_or_panic("spawn"), future)
}

/// Runs `job` on the current runtime's blocking pool (inside that runtime's context,
/// like a task).
///
/// # Panics
/// Outside a runtime.
#[track_caller]
pub fn spawn_blocking<F, T>(job: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_blocking_on(&current_or_panic("spawn_blocking"), job)
}

/// The current runtime's reactor handle, to make sockets with (`net::TcpListener::bind`,
/// `net::TcpStream::connect`): the one [`Runtime::reactor`] gives.
///
/// # Panics
/// Outside a runtime.
pub fn reactor() -> reactor::Handle {
    current_or_panic("reactor").driver.handle().clone()
}

/// The index of the worker running the current task; `None` off the workers (inside
/// `block_on`, on a blocking thread, outside any runtime).
///
/// ```
/// use async_scratch::runtime::{self, Runtime};
///
/// let runtime = Runtime::builder().worker_threads(2).build()?;
/// assert_eq!(runtime.block_on(async { runtime::current_worker() }), None);
/// let on = runtime.block_on(runtime.spawn(async { runtime::current_worker() }));
/// assert!(matches!(on, Ok(Some(0 | 1))));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current_worker() -> Option<usize> {
    context::worker()
}
