//! Step 5: failure points. Each failure is tried with threads and with coroutines,
//! what happened is measured and the detector's own report shown, and the fix is run.
//! The runs that block a thread for good happen in a child process (`child.rs`),
//! stopped after a bound: the tour never hangs.

use crate::child::{run_failure_child, ChildRun};
use async_scratch::blocking::spawn_blocking;
use async_scratch::diagnostics::{Deadlock, Diagnostic};
use async_scratch::executor::{
    spawn, spawn_named, yield_now, Executor, JoinHandle, DEFAULT_STALL_THRESHOLD,
};
use async_scratch::join_all::join_all;
use async_scratch::mutex::Mutex;
use async_scratch::pool::ThreadPool;
use async_scratch::time::sleep;
use std::future::poll_fn;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{Arc, Barrier, Condvar, Mutex as StdMutex};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

/// One way a failure was tried, and what came of it.
pub struct Attempt {
    pub label: &'static str,
    pub what: String,
    pub wall: Duration,
    pub completed: bool,
    /// What a detector said (our executor's diagnostics, or the child's own report).
    pub report: Vec<String>,
    /// When the first report arrived, for runs in a child process.
    pub reported_after: Option<Duration>,
}

/// One failure point: its attempts in order (threads, coroutines, fixes), and why.
pub struct Case {
    pub number: u8,
    pub name: &'static str,
    pub title: &'static str,
    pub attempts: Vec<Attempt>,
    pub why: &'static str,
}

/// Every case, in order; each runs when the iterator reaches it.
pub fn run_cases() -> impl Iterator<Item = Case> {
    let cases: [fn() -> Case; 5] = [
        lock_across_await,
        blocking_call,
        pool_starvation,
        unwakeable_future,
        lock_order,
    ];
    cases.into_iter().map(|run| run())
}

/// The entry point of `tour --failure-child CASE`: runs a failing version that blocks
/// its thread for good, for the parent to watch and stop.
pub fn child_main(case: &str) -> ExitCode {
    match case {
        "lock-across-await" => child_lock_across_await(),
        "pool-starvation" => child_pool_starvation(),
        "condvar" => child_condvar(),
        "lock-order" => child_lock_order(),
        _ => {
            eprintln!("error: unknown failure case `{case}`");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

// ---- 1. A lock held across .await ------------------------------------------------

const HOLD: Duration = Duration::from_millis(50);
/// Units in every attempt of case 1, threads and coroutines alike.
const LOCK_UNITS: usize = 4;

fn lock_across_await() -> Case {
    let threads = timed(
        "threads",
        "4 units on a 4-thread pool share a std Mutex, held across a 50 ms wait",
        || {
            let pool = ThreadPool::new(LOCK_UNITS).expect("a pool of 4");
            let lock = Arc::new(StdMutex::new(0));
            for _ in 0..LOCK_UNITS {
                let lock = lock.clone();
                pool.execute(move || {
                    let mut held = lock.lock().unwrap();
                    thread::sleep(HOLD); // stands for the .await: the lock stays held
                    *held += 1;
                });
            }
            pool.shutdown();
        },
    );
    let coroutines = in_child(
        "coroutines",
        "4 units as coroutines on one thread share a std Mutex, held across `sleep(50 ms).await`",
        "lock-across-await",
        // The watchdog's report on the blocked unit: unit 0 holds the lock, unit 1
        // blocks the thread in lock().
        Some("stall: task 'unit 1'"),
    );
    let fix = timed(
        "fix",
        "the same with async_scratch::mutex::Mutex: `lock().await` suspends the task",
        || {
            let lock = Rc::new(Mutex::named("shared", 0));
            Executor::new().block_on(join_all((0..LOCK_UNITS).map(|_| {
                let lock = lock.clone();
                async move {
                    let mut held = lock.lock().await;
                    sleep(HOLD).await;
                    *held += 1;
                }
            })));
        },
    );
    Case {
        number: 1,
        name: "lock-across-await",
        title: "A lock held across .await",
        attempts: vec![threads, coroutines, fix],
        why: "On threads, a blocked lock() parks one thread of several, and the holder runs on \
              another: the units just take turns. On one thread, the second coroutine blocks THE \
              thread inside lock() while the first, which holds the lock, waits for its timer: it \
              can never be polled again to unlock. The async mutex suspends the waiter instead. \
              (Clippy's await_holding_lock lint flags this very code at compile time.)",
    }
}

// The failure, on purpose. Clippy's `await_holding_lock` lint catches it at compile
// time, which is the first line of defence; the watchdog is the last.
#[allow(clippy::await_holding_lock)]
fn child_lock_across_await() {
    let executor = watched_executor();
    let lock = Rc::new(StdMutex::new(0));
    executor.block_on(join_all((0..LOCK_UNITS).map(|unit| {
        let lock = lock.clone();
        executor.spawn_named(format!("unit {unit}"), async move {
            let mut held = lock.lock().unwrap(); // blocks the thread if taken
            sleep(HOLD).await;
            *held += 1;
        })
    })));
}

// ---- 2. A blocking call inside a coroutine ---------------------------------------

const BLOCKING_UNITS: usize = 8;
const BLOCKING_UNIT: Duration = Duration::from_millis(120);

fn blocking_call() -> Case {
    let threads = timed(
        "threads",
        "8 units call std::thread::sleep(120 ms) on an 8-thread pool",
        || {
            let pool = ThreadPool::new(BLOCKING_UNITS).expect("a pool of 8");
            for _ in 0..BLOCKING_UNITS {
                pool.execute(|| thread::sleep(BLOCKING_UNIT));
            }
            pool.shutdown();
        },
    );
    let mut coroutines = timed_with_diagnostics(
        "coroutines",
        "the same 8 units as coroutines on one thread, std::thread::sleep inside async fn",
        |executor| {
            executor.block_on(join_all((0..BLOCKING_UNITS).map(|unit| {
                executor.spawn_named(format!("unit {unit}"), async {
                    thread::sleep(BLOCKING_UNIT)
                })
            })));
            Ok(())
        },
    );
    summarize_repeats(&mut coroutines.report);
    let fix_sleep = timed(
        "fix",
        "the async `sleep(120 ms).await`: the thread is free while it waits",
        || {
            Executor::new().block_on(join_all((0..BLOCKING_UNITS).map(|_| sleep(BLOCKING_UNIT))));
        },
    );
    let fix_blocking = timed(
        "fix",
        "or, for blocking work that cannot be rewritten: `spawn_blocking(..).await`",
        || {
            Executor::new().block_on(join_all(
                (0..BLOCKING_UNITS).map(|_| spawn_blocking(|| thread::sleep(BLOCKING_UNIT))),
            ));
        },
    );
    Case {
        number: 2,
        name: "blocking-call",
        title: "A blocking call inside a coroutine",
        attempts: vec![threads, coroutines, fix_sleep, fix_blocking],
        why: "A coroutine gives the thread back only at an .await that returns Pending. \
              std::thread::sleep never does: each unit keeps the only thread for its whole 120 ms \
              and the others wait, so 8 units take 8 times as long. Threads do not mind blocking: \
              each unit has its own.",
    }
}

// ---- 3. Thread-pool starvation ---------------------------------------------------

const STARVED_WORKERS: usize = 2;

/// How long each subtask waits, in both versions: a blocking wait on the pool, an
/// async one on the executor, as steps 1 and 4 run a unit.
const SUBTASK_WAIT: Duration = Duration::from_millis(20);

/// The subtask both versions run, in words for their `what`: like with like, so that
/// the only difference between the two attempts is how the job waits for it.
const SUBTASK_WORDS: &str = "a subtask (a 20 ms wait, then its job's number doubled)";

/// The subtask on a pool thread: it blocks its worker for its wait.
fn blocking_subtask(job: usize) -> usize {
    thread::sleep(SUBTASK_WAIT);
    job * 2
}

/// The same subtask as a coroutine: it gives the thread back while it waits.
async fn async_subtask(job: usize) -> usize {
    sleep(SUBTASK_WAIT).await;
    job * 2
}

fn pool_starvation() -> Case {
    let threads = in_child(
        "threads",
        &format!(
            "2 jobs on a 2-thread pool each spawn {SUBTASK_WORDS} on the same pool and wait() \
             for it"
        ),
        "pool-starvation",
        Some(STARVATION_REPORT),
    );
    let coroutines = timed(
        "coroutines",
        &format!("2 tasks on one thread each spawn {SUBTASK_WORDS} and .await it"),
        || {
            let results =
                Executor::new().block_on(join_all((0..STARVED_WORKERS).map(|job| async move {
                    spawn(async_subtask(job)).await.expect("the subtask runs")
                })));
            debug_assert_eq!(results, [0, 2]);
        },
    );
    Case {
        number: 3,
        name: "pool-starvation",
        title: "Thread-pool starvation",
        attempts: vec![threads, coroutines],
        why: "Each job blocks its worker in Task::wait until its subtask has run, but the subtask \
              is queued on the same pool, behind jobs that never finish: once every worker waits, \
              nothing can run. A coroutine awaiting its subtask gives the thread back, so the \
              subtask runs: the coroutine version is the fix.",
    }
}

/// What the starved pool's child reports, once it is sure.
const STARVATION_REPORT: &str = "workers are blocked waiting for subtasks";

fn child_pool_starvation() {
    let pool = Arc::new(ThreadPool::new(STARVED_WORKERS).expect("a pool of 2"));
    // Every job is on a worker before any subtask is queued: otherwise a worker still
    // free could take the first subtask, and there would be no starvation to show.
    let all_running = Arc::new(Barrier::new(STARVED_WORKERS));
    // The parties: every job, once its subtask is queued, and this thread, which looks.
    let all_queued = Arc::new(Barrier::new(STARVED_WORKERS + 1));
    for job in 0..STARVED_WORKERS {
        let (inner_pool, all_running, all_queued) =
            (pool.clone(), all_running.clone(), all_queued.clone());
        pool.execute(move || {
            all_running.wait();
            let subtask = inner_pool.spawn(move || blocking_subtask(job));
            all_queued.wait();
            let _ = subtask.wait(); // blocks this worker until the subtask runs: never
        });
    }
    // A watchdog's look, by hand, at the moment it becomes certain: every worker is
    // inside a job that waits for a subtask, and the subtasks are queued behind them.
    all_queued.wait();
    eprintln!(
        "pool: {STARVED_WORKERS} of {STARVED_WORKERS} {STARVATION_REPORT}, and {} subtasks are \
         queued behind them: no worker will ever be free to run them",
        pool.queued_jobs(),
    );
    hang_until_killed();
}

// ---- 4. A future that nobody will wake -------------------------------------------

fn unwakeable_future() -> Case {
    let threads = in_child(
        "threads",
        "a thread waits on a Condvar that nobody will ever notify",
        "condvar",
        None, // it hangs silently: that is the point
    );
    let coroutines = timed_with_diagnostics(
        "coroutines",
        "a task polls a hand-written future that returns Pending without keeping its waker",
        |executor| {
            let forgetful =
                executor.spawn_named("forgetful unit", poll_fn(|_cx| Poll::<()>::Pending));
            stopped_by_deadlock(executor.try_block_on(forgetful))
        },
    );
    let fix = timed(
        "fix",
        "a future that keeps its waker, woken when its pool job is done",
        || {
            Executor::new()
                .block_on(async {
                    spawn_named("patient unit", async { spawn_blocking(|| 42).await }).await
                })
                .expect("the task runs")
                .expect("the job runs");
        },
    );
    Case {
        number: 4,
        name: "unwakeable-future",
        title: "A future that nobody will wake",
        attempts: vec![threads, coroutines, fix],
        why: "A future that returns Pending promises that someone holds its waker and will call \
              it. This one kept none, so nothing can ever ask for it to be polled again. A thread \
              on a forgotten Condvar hangs the same way, but silently. The executor counts each \
              task's wakers, so it reports the lost task at once, and the deadlock when it runs dry.",
    }
}

fn child_condvar() {
    let never_notified = Condvar::new();
    let lock = StdMutex::new(());
    let guard = lock.lock().unwrap();
    drop(never_notified.wait_while(guard, |()| true)); // nobody will notify: never returns
}

// ---- 5. Two locks taken in opposite orders ---------------------------------------

fn lock_order() -> Case {
    let threads = in_child(
        "threads",
        "thread A takes lock 'first' then 'second', thread B 'second' then 'first'",
        "lock-order",
        Some(LOCK_ORDER_REPORT),
    );
    let coroutines = timed_with_diagnostics(
        "coroutines",
        "task A takes mutex 'first' then 'second', task B 'second' then 'first'",
        |executor| {
            let (a, b) = spawn_lock_takers(executor, ["second", "first"]);
            stopped_by_deadlock(executor.try_block_on(join_all([a, b])))
        },
    );
    let fix = timed(
        "fix",
        "both tasks take 'first' then 'second': one order for every lock",
        || {
            let executor = Executor::new();
            let (a, b) = spawn_lock_takers(&executor, ["first", "second"]);
            let done = executor.block_on(join_all([a, b]));
            assert!(done.iter().all(Result::is_ok), "both tasks finish");
        },
    );
    Case {
        number: 5,
        name: "lock-order",
        title: "Two locks taken in opposite orders",
        attempts: vec![threads, coroutines, fix],
        why: "Each holds the lock the other is waiting for, and waits for the one the other \
              holds: neither can ever go on. Threads and coroutines deadlock alike: no runtime \
              can undo a cycle of waits. What differs is what you learn: the two threads hang \
              silently (the tour's child process reports by hand, then is stopped), while the \
              executor, which records what every task waits for, names the cycle the moment \
              it closes and returns the deadlock from try_block_on. The fix is one order for \
              every lock.",
    }
}

/// What the lock-order child reports, once both threads are stuck for good.
const LOCK_ORDER_REPORT: &str = "each holds the lock the other waits for";

/// Spawns tasks A and B: A takes mutex 'first' then 'second'; B takes `b_order`, each
/// yielding while it holds its first lock, so that both hold one before either takes
/// the other.
fn spawn_lock_takers(
    executor: &Executor,
    b_order: [&'static str; 2],
) -> (JoinHandle<()>, JoinHandle<()>) {
    let locks = Rc::new([Mutex::named("first", ()), Mutex::named("second", ())]);
    let take = move |order: [&'static str; 2]| {
        let locks = locks.clone();
        async move {
            // The index of each lock by its name: "first" is 0, "second" 1.
            let [outer, inner] = order.map(|name| usize::from(name == "second"));
            let _outer = locks[outer].lock().await;
            yield_now().await; // the other task takes its first lock meanwhile
            let _inner = locks[inner].lock().await;
        }
    };
    let a = executor.spawn_named("unit A", take(["first", "second"]));
    let b = executor.spawn_named("unit B", take(b_order));
    (a, b)
}

fn child_lock_order() {
    let locks = Arc::new([StdMutex::new(()), StdMutex::new(())]);
    // Both threads hold their first lock before either reaches for its second.
    let both_hold = Arc::new(Barrier::new(2));
    // The parties: both threads, about to block, and this thread, which reports.
    let both_waiting = Arc::new(Barrier::new(3));
    for (outer, inner) in [(0, 1), (1, 0)] {
        let (locks, both_hold, both_waiting) =
            (locks.clone(), both_hold.clone(), both_waiting.clone());
        thread::spawn(move || {
            let _outer = locks[outer].lock().unwrap();
            both_hold.wait();
            both_waiting.wait();
            let _inner = locks[inner].lock().unwrap(); // held by the other: never
        });
    }
    // Certain from here: each thread holds one lock and is about to ask for the other,
    // which its holder releases only after it gets the first. No timing involved.
    both_waiting.wait();
    eprintln!(
        "threads: thread A holds 'first' and waits for 'second', thread B holds 'second' \
         and waits for 'first': {LOCK_ORDER_REPORT}, a cycle nothing can break"
    );
    hang_until_killed();
}

// ---- measuring -------------------------------------------------------------------

/// A run's outcome for `timed_with_diagnostics`: the deadlock that stopped it, as the
/// executor's own report.
fn stopped_by_deadlock<T>(outcome: Result<T, Deadlock>) -> Result<(), String> {
    outcome
        .map(drop)
        .map_err(|deadlock| format!("async-scratch: {deadlock}"))
}

/// The executor the failing coroutines run on: the stall watchdog on, reports printed
/// on standard error for the parent to read.
fn watched_executor() -> Executor {
    Executor::builder()
        .stall_watchdog(DEFAULT_STALL_THRESHOLD)
        .build()
}

fn hang_until_killed() {
    loop {
        thread::park();
    }
}

fn timed(label: &'static str, what: &str, run: impl FnOnce()) -> Attempt {
    let started = Instant::now();
    run();
    Attempt {
        label,
        what: what.to_string(),
        wall: started.elapsed(),
        completed: true,
        report: Vec::new(),
        reported_after: None,
    }
}

/// Runs `run` with an executor whose diagnostics (stall watchdog on) are collected.
/// `run` returns an error, with a report of its own, when the run was stopped rather
/// than completed (a deadlock returned by `try_block_on`).
fn timed_with_diagnostics(
    label: &'static str,
    what: &str,
    run: impl FnOnce(&Executor) -> Result<(), String>,
) -> Attempt {
    let report = Arc::new(StdMutex::new(Vec::new()));
    let sink = report.clone();
    let executor = Executor::builder()
        .stall_watchdog(DEFAULT_STALL_THRESHOLD)
        .on_diagnostic(move |diagnostic: &Diagnostic| {
            sink.lock()
                .unwrap()
                .push(format!("async-scratch: {diagnostic}"))
        })
        .build();
    let mut stopped = None;
    let mut attempt = timed(label, what, || stopped = run(&executor).err());
    drop(executor); // joins the watchdog: every report is in
    attempt.report = report.lock().unwrap().clone();
    if let Some(own_report) = stopped {
        attempt.completed = false;
        attempt.report.push(own_report);
    }
    attempt
}

/// Runs a failing version in a child process (see `child.rs`); `awaited_report` is a
/// report the child surely gives, which the parent waits for before stopping it.
fn in_child(label: &'static str, what: &str, case: &str, awaited_report: Option<&str>) -> Attempt {
    match run_failure_child(case, awaited_report) {
        Ok(ChildRun {
            wall,
            exited,
            lines,
        }) => Attempt {
            label,
            what: what.to_string(),
            wall,
            completed: exited,
            reported_after: lines.first().map(|(after, _)| *after),
            report: lines.into_iter().map(|(_, line)| line).collect(),
        },
        Err(error) => Attempt {
            label,
            what: format!("{what} (could not run: {error})"),
            wall: Duration::ZERO,
            completed: false,
            report: Vec::new(),
            reported_after: None,
        },
    }
}

/// Keeps the first report about a unit (one about another task is possible when the
/// OS deschedules the thread in its poll), and says how many more there were.
fn summarize_repeats(report: &mut Vec<String>) {
    if let Some(first_unit) = report.iter().position(|line| line.contains("task 'unit")) {
        report.swap(0, first_unit);
    }
    if report.len() > 1 {
        let more = report.len() - 1;
        report.truncate(1);
        report.push(format!(
            "(and {more} more like it: each unit's poll is reported while it runs, and when it returns)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Case 3 compares like with like: the threads' subtask and the coroutines' one
    /// wait as long and return the same value for each job (here run where neither
    /// starves: a pool with a worker per job), and the words both attempts use say so.
    /// (tests/tour.rs checks that both attempts of the tour's run use those words.)
    #[test]
    fn case_3_runs_the_same_subtask_both_ways() {
        let pool = ThreadPool::new(STARVED_WORKERS).expect("a pool of 2");
        let started = Instant::now();
        let on_threads: Vec<usize> = (0..STARVED_WORKERS)
            .map(|job| pool.spawn(move || blocking_subtask(job)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|task| task.wait().expect("the subtask runs"))
            .collect();
        let threads_wall = started.elapsed();
        let started = Instant::now();
        let as_coroutines = Executor::new().block_on(async {
            join_all((0..STARVED_WORKERS).map(|job| spawn(async_subtask(job)))).await
        });
        let coroutines_wall = started.elapsed();
        let as_coroutines: Vec<usize> = as_coroutines
            .into_iter()
            .map(|result| result.expect("the subtask runs"))
            .collect();
        assert_eq!(on_threads, as_coroutines);
        assert_eq!(
            on_threads,
            [0, 2],
            "not empty: each returns its job doubled"
        );
        assert!(threads_wall >= SUBTASK_WAIT && coroutines_wall >= SUBTASK_WAIT);
        let wait_words = format!("a {} wait", crate::words::format_duration(SUBTASK_WAIT));
        assert!(SUBTASK_WORDS.contains(&wait_words), "{SUBTASK_WORDS}");
    }
}
