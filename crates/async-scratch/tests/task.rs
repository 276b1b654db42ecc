//! Tasks: values come back, panics come back as errors, dropped tasks still run.

mod common;

use async_scratch::pool::ThreadPool;
use async_scratch::task::TaskError;
use common::{quiet_deliberate_panics, receive_or_give_up, PanicsWhenDropped, DELIBERATE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// The job's return value is what `wait` returns, whatever its type.
#[test]
fn wait_returns_the_value() {
    let pool = ThreadPool::new(2).unwrap();
    assert_eq!(pool.spawn(|| 6 * 7).wait(), Ok(42));
    assert_eq!(pool.spawn(|| vec!["a", "b"]).wait(), Ok(vec!["a", "b"]));
}

/// A panic becomes `Panicked` with its message, for literal and formatted messages,
/// and the pool keeps serving tasks after it. A task panic is not a fire-and-forget
/// panic, so the pool's panic counter stays at 0.
#[test]
fn a_panic_comes_back_as_an_error_with_its_message() {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1).unwrap();
    let literal = pool.spawn(|| -> () { panic!("deliberate literal") });
    assert_eq!(
        literal.wait(),
        Err(TaskError::Panicked("deliberate literal".into()))
    );
    let unit = 7;
    let formatted = pool.spawn(move || -> () { panic!("{DELIBERATE} unit {unit}") });
    let error = formatted.wait().unwrap_err();
    assert_eq!(error.to_string(), "task panicked: deliberate unit 7");
    assert_eq!(pool.spawn(|| "still serving").wait(), Ok("still serving"));
    assert_eq!(pool.panicked_jobs(), 0);
}

/// A task panics with a payload whose own `Drop` panics: `wait` still returns, with
/// the placeholder message of a non-string payload; the payload was dropped once, and
/// the pool serves the next task. `wait` runs on a thread of its own, so that if it
/// never returns the test fails instead of hanging.
#[test]
fn a_payload_that_panics_when_dropped_still_comes_back_as_an_error() {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1).unwrap();
    let payload_drops = Arc::new(AtomicUsize::new(0));
    let payload = PanicsWhenDropped::new(&payload_drops);
    let task = pool.spawn(move || -> () { std::panic::panic_any(payload) });
    let (sender, result) = mpsc::channel();
    let waiter = std::thread::spawn(move || sender.send(task.wait()).unwrap());
    assert_eq!(
        receive_or_give_up(&result, "the result of `wait`"),
        Err(TaskError::Panicked(
            "(a panic with a non-string payload)".into()
        ))
    );
    waiter.join().unwrap(); // it has sent: no thread outlives the test (Miri checks)
    assert_eq!(payload_drops.load(Ordering::SeqCst), 1);
    assert_eq!(pool.spawn(|| "still serving").wait(), Ok("still serving"));
    assert_eq!(
        pool.panicked_jobs(),
        0,
        "a task's panic is the task's, not the pool's"
    );
}

/// A dropped task is detached, not cancelled: its job still runs.
#[test]
fn a_dropped_task_still_runs() {
    let pool = ThreadPool::new(1).unwrap();
    let (ran, job_ran) = mpsc::channel();
    drop(pool.spawn(move || ran.send("ran").unwrap()));
    assert_eq!(job_ran.recv(), Ok("ran"));
}

/// `is_finished` is false while the job is held up, true once it has run, and never
/// blocks.
#[test]
fn is_finished_tracks_the_job_without_blocking() {
    let pool = ThreadPool::new(1).unwrap();
    let (release, held) = mpsc::channel::<()>();
    let task = pool.spawn(move || held.recv().unwrap());
    assert!(!task.is_finished());
    release.send(()).unwrap();
    let probe = pool.spawn(|| ()); // FIFO on one worker: done means the first is done
    probe.wait().unwrap();
    assert!(task.is_finished());
    assert_eq!(task.wait(), Ok(()));
}

/// A coroutine awaits a pool task without blocking its executor: another coroutine
/// keeps running (and is what releases the pool job).
#[test]
fn a_task_can_be_awaited_without_blocking_the_executor() {
    use async_scratch::executor::{block_on, spawn, yield_now};
    let pool = ThreadPool::new(1).unwrap();
    let (release, held) = mpsc::channel::<()>();
    let task = pool.spawn(move || {
        held.recv().unwrap();
        "from the pool"
    });
    let result = block_on(async move {
        let releaser = spawn(async move {
            yield_now().await; // runs while the main future is suspended on the task
            release.send(()).unwrap();
        });
        let value = task.await;
        releaser.await.unwrap();
        value
    });
    assert_eq!(result, Ok("from the pool"));
}

/// `spawn_blocking` returns the job's value, or its panic as an error.
#[test]
#[cfg_attr(
    miri,
    ignore = "the shared blocking pool's threads outlive the test, which Miri reports"
)]
fn spawn_blocking_returns_values_and_panics() {
    use async_scratch::blocking::spawn_blocking;
    use async_scratch::executor::block_on;
    quiet_deliberate_panics();
    let (value, failure) = block_on(async {
        let value = spawn_blocking(|| std::thread::current().name().map(str::to_string)).await;
        let failure = spawn_blocking(|| -> () { panic!("{DELIBERATE} blocking") }).await;
        (value, failure)
    });
    assert!(value.unwrap().unwrap().starts_with("pool-worker-"));
    assert_eq!(
        failure,
        Err(TaskError::Panicked(format!("{DELIBERATE} blocking")))
    );
}
