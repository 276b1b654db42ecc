//! The thread pool's promises, one scenario each: every job once, never more than
//! `workers` at a time, a drained queue on drop, panics that kill no worker.

mod common;

use async_scratch::pool::{PoolError, ThreadPool};
use common::{quiet_deliberate_panics, receive_or_give_up, Gate, PanicsWhenDropped, DELIBERATE};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// 10,000 jobs each bump their own counter; after the pool is dropped, every counter
/// is exactly 1: no job lost, none run twice.
#[test]
fn every_job_runs_exactly_once() {
    const JOBS: usize = 10_000;
    let counters: Arc<Vec<AtomicUsize>> =
        Arc::new((0..JOBS).map(|_| AtomicUsize::new(0)).collect());
    let pool = ThreadPool::new(4).unwrap();
    for job in 0..JOBS {
        let counters = counters.clone();
        pool.execute(move || {
            counters[job].fetch_add(1, Ordering::Relaxed);
        });
    }
    drop(pool);
    assert!(counters
        .iter()
        .all(|count| count.load(Ordering::Relaxed) == 1));
}

/// With `w` workers and jobs that block, exactly `w` jobs run at once. Each job waits at
/// a gate for `w` parties, so the run can only finish if `w` were inside together; a
/// counter of running jobs shows no more than `w` ever were.
#[test]
fn exactly_as_many_jobs_run_at_once_as_there_are_workers() {
    for workers in [1, 3, 8] {
        let gate = Arc::new(Gate::new(workers));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::new(workers).unwrap();
        for _ in 0..workers * 5 {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            pool.execute(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.pass();
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        pool.shutdown();
        assert_eq!(
            peak.load(Ordering::SeqCst),
            workers,
            "with {workers} workers"
        );
    }
}

/// Dropping the pool while its only worker is busy still runs everything queued
/// behind it, in order.
#[test]
fn drop_finishes_queued_jobs_in_order() {
    let pool = ThreadPool::new(1).unwrap();
    let (done, finished) = mpsc::channel();
    for job in 0..1_000 {
        let done = done.clone();
        pool.execute(move || done.send(job).unwrap());
    }
    drop(done);
    drop(pool);
    assert_eq!(
        finished.iter().collect::<Vec<_>>(),
        (0..1_000).collect::<Vec<_>>()
    );
}

/// After 100 panicking jobs, all `w` workers are still alive: `w` jobs can meet at a
/// gate, each on a different worker thread. Every panic was counted.
#[test]
fn panicking_jobs_leave_every_worker_running() {
    quiet_deliberate_panics();
    let workers = 4;
    let pool = ThreadPool::new(workers).unwrap();
    for _ in 0..100 {
        pool.execute(|| panic!("{DELIBERATE} job panic"));
    }
    let gate = Arc::new(Gate::new(workers));
    let (name_sender, names) = mpsc::channel();
    for _ in 0..workers {
        let (gate, name_sender) = (gate.clone(), name_sender.clone());
        pool.execute(move || {
            gate.pass();
            let name = std::thread::current().name().unwrap().to_string();
            name_sender.send(name).unwrap();
        });
    }
    drop(name_sender);
    let panicked = {
        let names: HashSet<String> = names.iter().collect();
        assert_eq!(names.len(), workers);
        assert!(names.iter().all(|name| name.starts_with("pool-worker-")));
        pool.panicked_jobs()
    };
    assert_eq!(panicked, 100);
}

/// A job panics with a payload whose own `Drop` panics, on a one-worker pool: the
/// worker survives dropping it, so the 10 jobs queued behind it all run, in order; the
/// panic is counted once, and the payload was dropped once (not leaked).
#[test]
fn a_payload_that_panics_when_dropped_kills_no_worker() {
    const JOBS_BEHIND: usize = 10;
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1).unwrap();
    let payload_drops = Arc::new(AtomicUsize::new(0));
    let payload = PanicsWhenDropped::new(&payload_drops);
    pool.execute(move || std::panic::panic_any(payload));
    let (done, finished) = mpsc::channel();
    for job in 0..JOBS_BEHIND {
        let done = done.clone();
        pool.execute(move || done.send(job).unwrap());
    }
    let ran: Vec<usize> = (0..JOBS_BEHIND)
        .map(|job| receive_or_give_up(&finished, &format!("queued job {job}")))
        .collect();
    assert_eq!(ran, (0..JOBS_BEHIND).collect::<Vec<_>>());
    assert_eq!(pool.panicked_jobs(), 1);
    assert_eq!(payload_drops.load(Ordering::SeqCst), 1);
}

/// Zero workers is refused with an error that says why.
#[test]
fn zero_workers_is_an_error() {
    let error = ThreadPool::new(0).unwrap_err();
    assert!(matches!(error, PoolError::NoWorkers));
    assert_eq!(error.to_string(), "a thread pool needs at least one worker");
}

/// A job may own the last handle to its own pool: dropping it there must not make the
/// worker try to join itself.
#[test]
fn a_job_can_drop_its_own_pool() {
    let pool = ThreadPool::new(2).unwrap();
    let (pool_sender, pool_receiver) = mpsc::channel::<ThreadPool>();
    let (done, finished) = mpsc::channel();
    pool.execute(move || {
        let pool = pool_receiver.recv().unwrap();
        drop(pool);
        done.send(()).unwrap();
    });
    pool_sender.send(pool).unwrap();
    finished.recv().unwrap();
}

/// Workers carry the names that make them recognisable in a debugger or panic message.
#[test]
fn workers_are_named_in_order() {
    let pool = ThreadPool::new(3).unwrap();
    assert_eq!(pool.workers(), 3);
    let gate = Arc::new(Gate::new(3));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let gate = gate.clone();
            pool.spawn(move || {
                gate.pass();
                std::thread::current().name().unwrap().to_string()
            })
        })
        .collect();
    let mut names: Vec<String> = tasks.into_iter().map(|task| task.wait().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["pool-worker-0", "pool-worker-1", "pool-worker-2"]);
}
