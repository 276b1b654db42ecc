//! The multi-threaded runtime (step 7): its public API, and stress tests checked by
//! counters, never by timing. Each test runs under a watchdog that fails it instead of
//! letting it hang.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use async_scratch::runtime::{self, JoinError, Runtime};
use common::futures::yield_now;

/// Counts under Miri are small: it interprets every instruction.
const fn scaled(full: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        full
    }
}

/// Runs `test` on its own thread; fails if it has not finished within a minute.
fn within_a_minute(test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let runner = thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The test panicked: report its panic.
            if let Err(panic) = runner.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test hung for a minute"),
    }
}

fn two_workers() -> Runtime {
    Runtime::builder().worker_threads(2).build().unwrap()
}

/// A one-shot signal: a future that completes once `fire` is called, from any thread.
#[derive(Clone, Default)]
struct Signal(Arc<SignalState>);

#[derive(Default)]
struct SignalState {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    fn fire(&self) {
        self.0.fired.store(true, Ordering::SeqCst);
        let waker = self.0.waker.lock().unwrap().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Signal {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.fired.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Counts its drops.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn zero_workers_is_an_error_not_a_panic() {
    let error = Runtime::builder().worker_threads(0).build().unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn spawned_tasks_all_complete_with_their_values() {
    within_a_minute(|| {
        let runtime = two_workers();
        let count = scaled(10_000, 50) as u64;
        let total = runtime.block_on(async {
            let handles: Vec<_> = (0..count)
                .map(|n| runtime::spawn(async move { n }))
                .collect();
            let mut total = 0;
            for handle in handles {
                total += handle.await.unwrap();
            }
            total
        });
        assert_eq!(total, count * (count - 1) / 2);
        let polls: u64 = runtime.stats().polls_per_worker.iter().sum();
        assert!(
            polls >= count,
            "every task was polled at least once: {polls}"
        );
    });
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    let panic = std::panic::catch_unwind(|| drop(runtime::spawn(async {}))).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("outside a runtime"), "{message}");
    assert_eq!(runtime::current_worker(), None);
}

#[test]
fn block_on_on_a_worker_panics_with_a_clear_message() {
    within_a_minute(|| {
        let runtime = two_workers();
        let inner = Runtime::builder().worker_threads(1).build().unwrap();
        let handle = runtime.spawn(async move { inner.block_on(async {}) });
        match runtime.block_on(handle) {
            Err(JoinError::Panicked(message)) => assert!(message.contains("block_on"), "{message}"),
            other => panic!("expected a panic, got {other:?}"),
        }
    });
}

#[test]
fn a_panicking_task_gives_its_message_and_the_runtime_goes_on() {
    within_a_minute(|| {
        let runtime = two_workers();
        let handle = runtime.spawn(async { panic!("boom") });
        assert_eq!(
            runtime.block_on(handle),
            Err(JoinError::Panicked("boom".into()))
        );
        assert_eq!(runtime.block_on(runtime.spawn(async { 1 })), Ok(1));
    });
}

/// 100,000 tasks, each woken by another thread racing the task's own registration of
/// its waker: every task completes, none is lost.
#[test]
fn cross_thread_wakes_lose_no_task() {
    within_a_minute(|| {
        let runtime = two_workers();
        let batches = scaled(100, 2);
        let per_batch = scaled(1_000, 20);
        let completed = Arc::new(AtomicUsize::new(0));
        for _ in 0..batches {
            let signals: Vec<Signal> = (0..per_batch).map(|_| Signal::default()).collect();
            let handles: Vec<_> = signals
                .iter()
                .map(|signal| {
                    let (signal, completed) = (signal.clone(), completed.clone());
                    runtime.spawn(async move {
                        signal.await;
                        completed.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let firer = thread::spawn(move || signals.iter().for_each(Signal::fire));
            runtime.block_on(async {
                for handle in handles {
                    handle.await.unwrap();
                }
            });
            firer.join().unwrap();
        }
        assert_eq!(completed.load(Ordering::SeqCst), batches * per_batch);
    });
}

/// A task fills its worker's queue with children, then blocks that worker until all
/// of them are done: they can only run if the other worker steals them.
#[test]
fn an_idle_worker_steals_from_a_blocked_one() {
    within_a_minute(|| {
        let runtime = two_workers();
        let children = scaled(100, 10);
        let outcome = runtime.block_on(runtime.spawn(async move {
            let parent = runtime::current_worker().unwrap();
            let (done, all_done) = mpsc::channel();
            let ran_on = Arc::new(Mutex::new(Vec::new()));
            for _ in 0..children {
                let (done, ran_on) = (done.clone(), ran_on.clone());
                drop(runtime::spawn(async move {
                    ran_on
                        .lock()
                        .unwrap()
                        .push(runtime::current_worker().unwrap());
                    done.send(()).unwrap();
                }));
            }
            // Blocks this worker on purpose (a test, not a pattern to copy).
            for _ in 0..children {
                all_done
                    .recv_timeout(Duration::from_secs(30))
                    .expect("the children were not stolen");
            }
            let ran_on = ran_on.lock().unwrap().clone();
            (parent, ran_on)
        }));
        let (parent, ran_on) = outcome.unwrap();
        assert_eq!(ran_on.len(), children);
        assert!(ran_on.iter().all(|&worker| worker != parent));
        assert!(runtime.stats().steals >= 1);
    });
}

/// Tasks that yield many times, woken from their own worker and from outside: each
/// runs to the end exactly once, wherever its polls happen.
#[test]
fn tasks_migrate_and_each_completes_once() {
    within_a_minute(|| {
        let runtime = two_workers();
        let tasks = scaled(200, 10);
        let yields = scaled(200, 5);
        let polls = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let polls = polls.clone();
                runtime.spawn(async move {
                    let mut workers = [false; 2];
                    for _ in 0..yields {
                        workers[runtime::current_worker().unwrap()] = true;
                        polls.fetch_add(1, Ordering::SeqCst);
                        yield_now().await;
                    }
                    workers
                })
            })
            .collect();
        let results = runtime.block_on(async {
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.await.unwrap());
            }
            results
        });
        assert_eq!(results.len(), tasks);
        assert_eq!(polls.load(Ordering::SeqCst), tasks * yields);
    });
}

/// An abort racing the task's completion: the outcome is the value or `Cancelled`,
/// and the future is dropped exactly once either way.
#[test]
fn abort_racing_completion_drops_each_future_once() {
    within_a_minute(|| {
        let runtime = two_workers();
        let count = scaled(10_000, 50);
        let drops = Arc::new(AtomicUsize::new(0));
        let (values, cancels) = (AtomicUsize::new(0), AtomicUsize::new(0));
        for n in 0..count {
            let guard = DropCounter(drops.clone());
            let handle = runtime.spawn(async move {
                let _guard = guard;
                for _ in 0..n % 3 {
                    yield_now().await;
                }
                n
            });
            let aborter = thread::spawn({
                let handle = Arc::new(handle);
                let aborting = handle.clone();
                move || {
                    aborting.abort();
                    drop(aborting);
                    handle
                }
            });
            let handle = Arc::into_inner(aborter.join().unwrap()).unwrap();
            match runtime.block_on(handle) {
                Ok(value) => {
                    assert_eq!(value, n);
                    values.fetch_add(1, Ordering::SeqCst);
                }
                Err(JoinError::Cancelled) => {
                    cancels.fetch_add(1, Ordering::SeqCst);
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        drop(runtime);
        assert_eq!(drops.load(Ordering::SeqCst), count);
        assert_eq!(
            values.load(Ordering::SeqCst) + cancels.load(Ordering::SeqCst),
            count
        );
    });
}

/// `JoinHandle`s dropped on other threads, before and after their tasks end: every
/// future and every output is dropped exactly once.
#[test]
fn join_handles_dropped_on_other_threads_leak_nothing() {
    within_a_minute(|| {
        let runtime = two_workers();
        let count = scaled(10_000, 50);
        let future_drops = Arc::new(AtomicUsize::new(0));
        let output_drops = Arc::new(AtomicUsize::new(0));
        let (send, receive) = mpsc::channel();
        let dropper = thread::spawn(move || {
            for handle in receive {
                drop(handle);
            }
        });
        for n in 0..count {
            let guard = DropCounter(future_drops.clone());
            let output = DropCounter(output_drops.clone());
            let handle = runtime.spawn(async move {
                let _guard = guard;
                if n % 2 == 0 {
                    yield_now().await;
                }
                output
            });
            send.send(handle).unwrap();
        }
        drop(send);
        dropper.join().unwrap();
        drop(runtime);
        assert_eq!(future_drops.load(Ordering::SeqCst), count);
        assert_eq!(output_drops.load(Ordering::SeqCst), count);
    });
}

/// Dropping the runtime with tasks pending (waiting on nothing, on a long sleep, or
/// queued) drops each future once, and their handles say `Cancelled`.
#[test]
fn dropping_the_runtime_drops_every_pending_future_once() {
    within_a_minute(|| {
        let runtime = two_workers();
        let count = scaled(1_000, 20);
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..count)
            .map(|n| {
                let (guard, started) = (DropCounter(drops.clone()), started.clone());
                runtime.spawn(async move {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    if n % 2 == 0 {
                        std::future::pending::<()>().await;
                    } else {
                        async_scratch::time::sleep(Duration::from_secs(3600)).await;
                    }
                })
            })
            .collect();
        // Let some of them start (not needed for the count: queued ones count too).
        while started.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        drop(runtime);
        assert_eq!(drops.load(Ordering::SeqCst), count);
        let mut cx = Context::from_waker(Waker::noop());
        for mut handle in handles {
            assert_eq!(
                Pin::new(&mut handle).poll(&mut cx),
                Poll::Ready(Err(JoinError::Cancelled))
            );
        }
    });
}

#[test]
fn sleep_works_inside_runtime_tasks() {
    within_a_minute(|| {
        let runtime = two_workers();
        let start = Instant::now();
        let handles: Vec<_> = (0..scaled(100, 4))
            .map(|_| runtime.spawn(async_scratch::time::sleep(Duration::from_millis(20))))
            .collect();
        runtime.block_on(async {
            async_scratch::time::sleep(Duration::from_millis(5)).await;
            for handle in handles {
                handle.await.unwrap();
            }
        });
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

/// A timer that is due when its worker runs out of work: the worker fires it just
/// before parking, which puts the woken task in that worker's LIFO slot. The worker
/// must see it there and not park. (The test thread waits on a channel, not in
/// `block_on`, which would fire the timer itself.)
#[test]
fn a_timer_due_as_its_worker_goes_idle_still_wakes_its_task() {
    within_a_minute(|| {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let (done, finished) = mpsc::channel();
        drop(runtime.spawn(async move {
            async_scratch::time::sleep(Duration::from_millis(1)).await;
            done.send(()).unwrap();
        }));
        // Holds the one worker past the deadline (a blocking call, on purpose).
        drop(runtime.spawn(async { thread::sleep(Duration::from_millis(20)) }));
        finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the woken task was left in the LIFO slot of a parked worker");
    });
}

/// Four blocking jobs that wait for one another: they finish only if the pool grows
/// to four threads.
#[test]
fn the_blocking_pool_grows_on_demand() {
    within_a_minute(|| {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let barrier = barrier.clone();
                runtime.spawn_blocking(move || {
                    barrier.wait();
                    n
                })
            })
            .collect();
        let sum = runtime.block_on(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 6);
        assert!(runtime.stats().blocking_threads <= 4);
    });
}

#[test]
fn the_blocking_pool_threads_exit_when_idle() {
    within_a_minute(|| {
        let runtime = Runtime::builder()
            .worker_threads(1)
            .thread_keep_alive(Duration::from_millis(10))
            .build()
            .unwrap();
        runtime.block_on(runtime.spawn_blocking(|| ())).unwrap();
        while runtime.stats().blocking_threads != 0 {
            thread::sleep(Duration::from_millis(5));
        }
        // The pool starts a thread again for the next job, and that one leaves too.
        assert_eq!(runtime.block_on(runtime.spawn_blocking(|| 7)), Ok(7));
        while runtime.stats().blocking_threads != 0 {
            thread::sleep(Duration::from_millis(5));
        }
    });
}

/// A waker that panics when woken: someone else's code, run by the runtime.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("deliberate: a waiter's waker panics");
    }
}

/// A `JoinHandle` polled once with a panicking waker: when the task finishes, the
/// worker wakes that waker. The panic is caught there; the worker lives on and runs
/// the next task (with one worker, a dead worker would hang the runtime for good).
#[test]
fn a_panicking_waiter_does_not_kill_the_worker() {
    within_a_minute(|| {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let (finish, finish_rx) = mpsc::channel::<()>();
        let finish_rx = Mutex::new(finish_rx);
        let mut handle = runtime.spawn(async move {
            let _ = finish_rx.lock().unwrap().recv();
        });
        let waker = Waker::from(Arc::new(PanickingWaker));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut handle).poll(&mut cx).is_pending());
        finish.send(()).unwrap(); // the task ends, and its worker wakes the waker
        let after = runtime.block_on(runtime.spawn(async { 7 }));
        assert_eq!(after.unwrap(), 7, "the one worker still runs tasks");
        assert!(matches!(runtime.block_on(handle), Ok(())));
    });
}

/// A runtime dropped by one of its own tasks: the worker cannot join itself, so the
/// shutdown runs on a thread of its own once the worker is free, and it still ends
/// every other pending task (its handle says `Cancelled`).
#[test]
// The shutdown thread is detached, and may outlive the test by its last lines: Miri
// counts a thread left running at exit as an error.
#[cfg_attr(miri, ignore)]
fn a_runtime_dropped_by_its_own_task_still_shuts_down() {
    within_a_minute(|| {
        let runtime = two_workers();
        let pending = runtime.spawn(std::future::pending::<()>());
        let (give, take) = mpsc::channel::<Runtime>();
        let take = Mutex::new(take);
        let dropper = runtime.spawn(async move {
            drop(take.lock().unwrap().recv().unwrap());
        });
        give.send(runtime).unwrap();
        let outcome = async_scratch::executor::block_on(dropper);
        assert!(outcome.is_ok(), "the dropping task ends well: {outcome:?}");
        let pending = async_scratch::executor::block_on(pending);
        assert!(matches!(pending, Err(JoinError::Cancelled)), "{pending:?}");
    });
}

/// Waits until `done` holds, at most 20 s (then fails, naming `what`): for a state
/// another thread reaches, without hanging the test if it never does.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Sets its flag when dropped; kept in a thread-local, it is dropped when its thread
/// ends.
struct OnThreadEnd(Arc<AtomicBool>);

impl Drop for OnThreadEnd {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static THREAD_END: std::cell::RefCell<Option<OnThreadEnd>> =
        const { std::cell::RefCell::new(None) };
}

/// One blocking thread, one job running on it and one queued behind. Dropping the
/// runtime cancels the queued job (it never runs, its closure is dropped once, its
/// handle says `Cancelled`), then waits for the running job to return and joins its
/// thread: when the drop returns, the job has returned and the thread has ended.
#[test]
fn dropping_the_runtime_cancels_queued_blocking_jobs_and_waits_for_running_ones() {
    within_a_minute(|| {
        let runtime = Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (started_tx, started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let job_returned = Arc::new(AtomicBool::new(false));
        let thread_ended = Arc::new(AtomicBool::new(false));
        let running = runtime.spawn_blocking({
            let (job_returned, thread_ended) = (job_returned.clone(), thread_ended.clone());
            move || {
                THREAD_END.with(|end| *end.borrow_mut() = Some(OnThreadEnd(thread_ended)));
                started_tx.send(()).unwrap();
                released.recv().unwrap();
                job_returned.store(true, Ordering::SeqCst);
            }
        });
        started.recv().unwrap();
        let queued_ran = Arc::new(AtomicBool::new(false));
        let queued_drops = Arc::new(AtomicUsize::new(0));
        let queued = runtime.spawn_blocking({
            let ran = queued_ran.clone();
            let counter = DropCounter(queued_drops.clone());
            move || {
                let _counter = counter;
                ran.store(true, Ordering::SeqCst);
            }
        });
        let dropper = thread::spawn(move || {
            drop(runtime);
            (
                job_returned.load(Ordering::SeqCst),
                thread_ended.load(Ordering::SeqCst),
            )
        });
        // The drop cancels the queued job before it waits for the running one.
        wait_until("the queued job to be cancelled", || queued.is_finished());
        let queued = async_scratch::executor::block_on(queued);
        assert!(matches!(queued, Err(JoinError::Cancelled)), "{queued:?}");
        assert!(!queued_ran.load(Ordering::SeqCst), "a queued job ran");
        assert_eq!(queued_drops.load(Ordering::SeqCst), 1);
        // Lets a drop that does not wait return first, so that this test fails every
        // time without the wait; a drop that waits is not affected by it.
        thread::sleep(Duration::from_millis(20));
        release.send(()).unwrap();
        let (returned, ended) = dropper.join().unwrap();
        assert!(
            returned,
            "the drop returned before the running blocking job"
        );
        assert!(ended, "the drop returned before the blocking thread ended");
        assert!(matches!(async_scratch::executor::block_on(running), Ok(())));
    });
}

/// `shutdown_timeout` cancels the queued job as the drop does, but returns while the
/// running job is still blocked; the job then finishes on its detached thread.
#[test]
// The detached thread may outlive the test by its last lines: Miri counts a thread
// left running at exit as an error.
#[cfg_attr(miri, ignore)]
fn shutdown_timeout_leaves_a_running_blocking_job_detached() {
    within_a_minute(|| {
        let runtime = Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (started_tx, started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let (finished_tx, finished) = mpsc::channel();
        let running = runtime.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            released.recv().unwrap();
            finished_tx.send(()).unwrap();
        });
        started.recv().unwrap();
        let queued = runtime.spawn_blocking(|| ());
        runtime.shutdown_timeout(Duration::from_millis(10));
        let queued = async_scratch::executor::block_on(queued);
        assert!(matches!(queued, Err(JoinError::Cancelled)), "{queued:?}");
        assert!(!running.is_finished(), "the running job is still blocked");
        release.send(()).unwrap();
        finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the detached job finishes");
        assert!(matches!(async_scratch::executor::block_on(running), Ok(())));
    });
}

/// Two threads at most: with two jobs blocked, a third waits in the queue instead of
/// starting a third thread, and runs once a thread is free.
#[test]
fn the_blocking_pool_grows_no_further_than_its_cap() {
    within_a_minute(|| {
        let runtime = Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        let (started_tx, started) = mpsc::channel();
        let releases: Vec<_> = (0..2)
            .map(|_| {
                let (release, released) = mpsc::channel::<()>();
                let started_tx = started_tx.clone();
                let handle = runtime.spawn_blocking(move || {
                    started_tx.send(()).unwrap();
                    released.recv().unwrap();
                });
                (release, handle)
            })
            .collect();
        started.recv().unwrap();
        started.recv().unwrap();
        let third = runtime.spawn_blocking(|| 3);
        assert_eq!(
            runtime.stats().blocking_threads,
            2,
            "the cap is two threads"
        );
        for (release, handle) in releases {
            release.send(()).unwrap();
            assert!(matches!(runtime.block_on(handle), Ok(())));
        }
        assert_eq!(runtime.block_on(third), Ok(3));
        assert!(runtime.stats().blocking_threads <= 2);
    });
}

/// A blocking job runs in its runtime's context: `runtime::spawn` from it spawns on
/// the runtime's workers, and `runtime::spawn_blocking` on its pool.
#[test]
fn a_blocking_job_spawns_tasks_and_jobs_on_its_runtime() {
    within_a_minute(|| {
        let runtime = two_workers();
        let (task, job) = runtime
            .block_on(runtime.spawn_blocking(|| {
                let task = runtime::spawn(async { runtime::current_worker() });
                let job = runtime::spawn_blocking(|| 6 * 7);
                (task, job)
            }))
            .unwrap();
        let worker = runtime.block_on(task).unwrap();
        assert!(matches!(worker, Some(0 | 1)), "ran on a worker: {worker:?}");
        assert_eq!(runtime.block_on(job), Ok(42));
    });
}

/// A runtime dropped inside one of its own blocking jobs: the drop waits for the other
/// blocking threads, not for the one it runs on (which would wait for itself for
/// ever); the job then returns, and its handle has its output.
#[test]
// The job's thread is left detached, and may outlive the test by its last lines: Miri
// counts a thread left running at exit as an error.
#[cfg_attr(miri, ignore)]
fn a_runtime_dropped_by_its_own_blocking_job_does_not_wait_for_that_job() {
    within_a_minute(|| {
        let runtime = two_workers();
        let (give, take) = mpsc::channel::<Runtime>();
        let dropper = runtime.spawn_blocking(move || {
            drop(take.recv().unwrap());
            "dropped"
        });
        give.send(runtime).unwrap();
        let outcome = async_scratch::executor::block_on(dropper);
        assert_eq!(outcome, Ok("dropped"));
    });
}

/// Ordinary async code keeps a `&mut` to its own local across `.await`s, and on a
/// runtime it may resume on another worker each time (woken from a plain thread, it
/// goes through the injector to whichever worker takes it). Meanwhile the runtime reads
/// the task's header: the lost-task check when a waker's clone goes, the stall
/// watchdog at each poll. None of that may make a reference to the task's future, or
/// the task's `&mut` is invalid when it resumes (Miri, under Stacked and Tree Borrows).
#[test]
fn a_task_may_borrow_its_own_state_across_awaits_on_any_worker() {
    within_a_minute(|| {
        let rounds = scaled(100, 4);
        let runtime = Runtime::builder()
            .worker_threads(2)
            .stall_watchdog(Duration::from_secs(60))
            .build()
            .unwrap();
        let (wakers, to_wake) = mpsc::channel::<Waker>();
        let waking_thread = thread::spawn(move || to_wake.into_iter().for_each(Waker::wake));
        let borrower = runtime.spawn(async move {
            let mut count = 0;
            let counter = &mut count;
            for _ in 0..rounds {
                let mut sent = false;
                std::future::poll_fn(|cx| {
                    drop(cx.waker().clone()); // a clone goes: the task is checked for loss
                    if sent {
                        return Poll::Ready(());
                    }
                    sent = true;
                    wakers.send(cx.waker().clone()).unwrap();
                    Poll::Pending
                })
                .await;
                *counter += 1;
                yield_now().await;
            }
            count
        });
        assert_eq!(runtime.block_on(borrower), Ok(rounds));
        drop(runtime);
        waking_thread.join().unwrap();
    });
}
