//! The detectors: each fires on its failure, naming the right task, and stays quiet on
//! the waits that only look alike (another thread, a static, a timer, a pool job, and
//! wakes racing the check).

mod common;

use async_scratch::blocking::spawn_blocking;
use async_scratch::diagnostics::Diagnostic;
use async_scratch::executor::{yield_now, Executor};
use async_scratch::executor::{JoinError, JoinHandle};
use async_scratch::join_all::{join, join_all};
use async_scratch::time::{sleep, timeout, Clock, ManualClock};
use common::{bounded, collect_diagnostics};
use std::cell::RefCell;
use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::{mpsc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

/// Checks that the executor said nothing, and shows what it said if it did.
fn assert_quiet(seen: &Mutex<Vec<Diagnostic>>) {
    let seen = seen.lock().unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}

/// The names of the tasks reported lost, in order.
fn lost_task_names(seen: &Mutex<Vec<Diagnostic>>) -> Vec<String> {
    let seen = seen.lock().unwrap();
    let lost = seen.iter().filter_map(|diagnostic| match diagnostic {
        Diagnostic::LostTask { task } => task.name.clone(),
        _ => None,
    });
    lost.collect()
}

fn executor_collecting() -> (Executor, std::sync::Arc<Mutex<Vec<Diagnostic>>>) {
    let (reporter, seen) = collect_diagnostics();
    (Executor::builder().on_diagnostic(reporter).build(), seen)
}

/// A future that returns `Pending` without keeping its waker: the task is reported lost
/// right after that poll, and `try_block_on` reports the deadlock, naming the task and
/// where it was spawned.
#[test]
fn a_forgotten_waker_is_reported_lost_and_deadlocked() {
    let (executor, seen) = executor_collecting();
    let line = line!() + 1;
    let forgetful = executor.spawn_named("forgetful", poll_fn(|_cx| Poll::<()>::Pending));
    let deadlock = executor.try_block_on(forgetful).unwrap_err();
    let report = deadlock.to_string();
    assert!(report.contains("task 'forgetful'"), "{report}");
    assert!(report.contains(&format!("{}:{line}", file!())), "{report}");
    assert_eq!(lost_task_names(&seen), ["forgetful"]);
}

/// `block_on` turns the deadlock into a panic carrying the same report.
#[test]
fn block_on_panics_with_the_deadlock_report() {
    common::quiet_deliberate_panics();
    let (executor, _seen) = executor_collecting();
    let stuck = executor.spawn_named("deliberate deadlock", pending::<()>());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| executor.block_on(stuck)))
        .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.starts_with("deadlock:"), "{message}");
    assert!(message.contains("task 'deliberate deadlock'"), "{message}");
}

/// A task keeps its waker and returns `Pending`: not lost. Later another task drops
/// that waker, the last one: the first task is reported lost at the executor's next
/// turn (not at its own poll, which saw a waker alive), and only then.
#[test]
fn a_waker_dropped_after_the_poll_reports_the_task_lost() {
    let (executor, seen) = executor_collecting();
    let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
    let _forgotten = executor.spawn_named("dropped later", {
        let kept = kept.clone();
        poll_fn(move |cx| {
            *kept.borrow_mut() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
    });
    executor.block_on(async {
        yield_now().await; // the task runs and keeps its waker
        yield_now().await;
        assert!(lost_task_names(&seen).is_empty(), "its waker is alive");
        drop(kept.borrow_mut().take()); // the last waker goes
        yield_now().await; // the executor's next turn checks the task
        yield_now().await;
    });
    assert_eq!(lost_task_names(&seen), ["dropped later"]);
}

/// A task asleep for `Duration::MAX` waits forever, as asked: it is no lost task, and
/// nothing blames the user's code. (Its `Sleep` has no deadline to register, and kept
/// no waker: the executor saw a pending task with none left.)
#[test]
fn sleeping_forever_is_not_a_lost_task() {
    let (executor, seen) = executor_collecting();
    let forever = executor.spawn_named("sleeps forever", sleep(Duration::MAX));
    executor.block_on(async {
        for _ in 0..3 {
            yield_now().await; // it is polled, and checked, in these turns
        }
    });
    assert!(!forever.is_finished());
    assert_quiet(&seen);
}

/// The same for `block_on`'s own future: it keeps its waker, a task drops it later,
/// and the future is reported lost (then, nothing else being able to run, the
/// deadlock). The executor runs on a thread of its own, so that a detector that missed
/// it would fail the test (after a bound) instead of hanging it.
#[test]
fn block_ons_future_is_reported_lost_when_its_last_waker_goes_later() {
    let (done, outcome) = mpsc::channel();
    thread::spawn(move || {
        let (executor, seen) = executor_collecting();
        let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
        let _dropper = executor.spawn({
            let kept = kept.clone();
            async move {
                yield_now().await; // block_on's future has kept its waker by now
                drop(kept.borrow_mut().take());
            }
        });
        let keeps_its_waker = poll_fn(move |cx| {
            kept.borrow_mut().get_or_insert_with(|| cx.waker().clone());
            Poll::<()>::Pending
        });
        let deadlock = executor.try_block_on(keeps_its_waker).unwrap_err();
        done.send((deadlock.to_string(), lost_task_names(&seen)))
            .unwrap();
    });
    let (deadlock, lost) = common::receive_or_give_up(&outcome, "the deadlock report");
    assert!(deadlock.contains("block_on's future"), "{deadlock}");
    assert_eq!(lost, ["block_on's future"]);
}

/// A task gives up waiting on another's `JoinHandle` (a `timeout` drops the handle);
/// later the other task waits on the first, legitimately. Dropping the handle withdrew
/// the first wait, so no wait cycle is reported (one was, while the dropped handle's
/// wait record stayed behind).
#[test]
fn a_join_handle_dropped_while_awaited_withdraws_its_wait() {
    let ms = Duration::from_millis;
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder()
        .clock(Clock::Manual(ManualClock::new()))
        .on_diagnostic(reporter)
        .build();
    let first_handle: Rc<RefCell<Option<JoinHandle<u32>>>> = Rc::default();
    let second = executor.spawn({
        let first_handle = first_handle.clone();
        async move {
            sleep(ms(10)).await; // the first task has given up on this one by now
            let first = first_handle.borrow_mut().take().unwrap();
            first.await.unwrap() + 1
        }
    });
    let first = executor.spawn(async move {
        let gave_up = timeout(ms(1), second).await; // waits on the second, then drops it
        assert!(gave_up.is_err());
        sleep(ms(20)).await;
        1
    });
    *first_handle.borrow_mut() = Some(first);
    executor.block_on(sleep(ms(30)));
    assert_quiet(&seen);
}

/// The free `block_on`'s deadlock report names the line that called it as the place of
/// `block_on`'s future, not a line inside the library.
#[test]
fn the_free_block_on_names_its_callers_line() {
    common::quiet_deliberate_panics();
    let line = line!() + 2;
    let panic = std::panic::catch_unwind(|| {
        async_scratch::executor::block_on(poll_fn(|_cx| Poll::<()>::Pending)) // deliberate
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains(&format!("{}:{line}", file!())),
        "{message}"
    );
}

/// A future that hands its waker to `keep` at its first poll and is ready at the next:
/// whoever holds the waker decides when that is.
fn ready_when_woken(mut keep: impl FnMut(Waker)) -> impl std::future::Future<Output = ()> {
    let mut handed_out = false;
    poll_fn(move |cx| {
        if handed_out {
            return Poll::Ready(());
        }
        handed_out = true;
        keep(cx.waker().clone());
        Poll::Pending
    })
}

/// A task whose waker another thread holds, and uses later, is not a deadlock.
#[test]
fn a_task_woken_later_by_another_thread_is_no_deadlock() {
    let (executor, seen) = executor_collecting();
    let (waker_sender, waker_receiver) = mpsc::channel::<Waker>();
    let waker_thread = thread::spawn(move || {
        let waker = waker_receiver.recv().unwrap();
        thread::sleep(Duration::from_millis(20)); // the executor idles meanwhile
        waker.wake();
    });
    executor
        .try_block_on(ready_when_woken(move |waker| {
            waker_sender.send(waker).unwrap()
        }))
        .unwrap();
    waker_thread.join().unwrap();
    assert_quiet(&seen);
}

static KEPT_WAKER: Mutex<Option<Waker>> = Mutex::new(None);

/// A waker kept in a static and woken after the executor has gone idle (and woken up
/// for nothing) many times is no deadlock either.
#[test]
fn a_waker_kept_in_a_static_is_no_deadlock() {
    let (executor, seen) = executor_collecting();
    let waker_thread = thread::spawn(|| {
        for _ in 0..20 {
            thread::sleep(Duration::from_millis(1));
            // Spurious unparks: the executor looks again, finds nothing, idles again.
            if let Some(waker) = KEPT_WAKER.lock().unwrap().as_ref() {
                let _ = waker.clone();
            }
        }
        let waker = loop {
            if let Some(waker) = KEPT_WAKER.lock().unwrap().take() {
                break waker;
            }
            thread::yield_now();
        };
        waker.wake();
    });
    executor
        .try_block_on(ready_when_woken(|waker| {
            *KEPT_WAKER.lock().unwrap() = Some(waker)
        }))
        .unwrap();
    waker_thread.join().unwrap();
    assert_quiet(&seen);
}

/// Waiting on a timer, or on work running on a pool thread, is no deadlock.
#[test]
#[cfg_attr(
    miri,
    ignore = "the shared blocking pool's threads outlive the test, which Miri reports"
)]
fn timers_and_pool_jobs_are_no_deadlock() {
    let (executor, seen) = executor_collecting();
    executor
        .try_block_on(async {
            sleep(Duration::from_millis(5)).await;
            spawn_blocking(|| thread::sleep(Duration::from_millis(5)))
                .await
                .unwrap();
        })
        .unwrap();
    assert_quiet(&seen);
}

/// 100,000 wakes by value from another thread race the executor's checks: each wake
/// queues the task and then drops the last waker, the very order the checks rely on.
/// Never a lost task, never a deadlock.
#[test]
fn wakes_by_value_racing_the_check_are_no_deadlock() {
    const WAKES: usize = if cfg!(miri) { 50 } else { 100_000 };
    let (executor, seen) = executor_collecting();
    let (waker_sender, waker_receiver) = mpsc::channel::<Waker>();
    let waker_thread = thread::spawn(move || {
        for waker in waker_receiver {
            waker.wake(); // by value: queue, then release the only waker
        }
    });
    let mut polls = 0;
    executor
        .try_block_on(executor.spawn(poll_fn(move |cx| {
            polls += 1;
            if polls > WAKES {
                return Poll::Ready(());
            }
            waker_sender.send(cx.waker().clone()).unwrap();
            Poll::Pending
        })))
        .unwrap()
        .unwrap();
    waker_thread.join().unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap().first()
    );
}

/// The stall watchdog names a task whose poll blocks the thread, while it still blocks
/// (the test only lets it go once that report has arrived), and again when it returns
/// with how long it held the thread. Reports about other polls (on a slow machine, or
/// under Miri, even short polls can pass a 10 ms threshold) are skipped.
#[test]
fn the_watchdog_reports_a_blocking_poll_while_it_blocks() {
    let (report_sender, reports) = mpsc::channel::<Diagnostic>();
    let report_sender = Mutex::new(report_sender);
    let executor = Executor::builder()
        .stall_watchdog(Duration::from_millis(10))
        .on_diagnostic(move |d| drop(report_sender.lock().unwrap().send(d.clone())))
        .build();
    let (release, released) = mpsc::channel::<()>();
    let about_the_blocker = |still: bool| {
        move |d: &Diagnostic| {
            matches!(d, Diagnostic::Stall { task, still_running, .. }
                if task.name.as_deref() == Some("blocker") && *still_running == still)
        }
    };
    let releaser = thread::spawn(move || {
        let first = reports.iter().find(about_the_blocker(true)).unwrap();
        release.send(()).unwrap(); // only now does the blocking poll return
        let second = reports.iter().find(about_the_blocker(false)).unwrap();
        (first, second)
    });
    executor
        .block_on(executor.spawn_named("blocker", async move {
            released.recv().unwrap(); // a blocking call inside async code
        }))
        .unwrap();
    drop(executor); // stops the watchdog; the reporter's sender goes with it
    let (_first, second) = releaser.join().unwrap();
    let Diagnostic::Stall { held, .. } = second else {
        unreachable!()
    };
    assert!(held >= Duration::from_millis(10));
}

/// Healthy executors say nothing: many tasks that spawn, yield, sleep and join, with
/// the watchdog on. The executor runs on a manual clock, which the watchdog reads too:
/// a poll holds the thread for no time on it, however long the OS (or Miri) takes to
/// run it, so silence is the only right answer on any machine.
#[test]
fn healthy_work_raises_no_diagnostic() {
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder()
        .clock(Clock::Manual(ManualClock::new()))
        .stall_watchdog(Duration::from_secs(1)) // any threshold: no poll takes clock time
        .on_diagnostic(reporter)
        .build();
    executor.block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                async_scratch::executor::spawn(async move {
                    yield_now().await;
                    sleep(Duration::from_micros(n)).await;
                    n
                })
            })
            .collect();
        let outputs = async_scratch::join_all::join_all(tasks).await;
        assert_eq!(outputs.len(), 100);
    });
    assert_quiet(&seen);
}

/// How long a test waits for a report that must come before it calls it missing: far
/// beyond any wait it has on a working watchdog, which reports within a quarter of its
/// threshold.
const NEVER_REPORTED: Duration = Duration::from_secs(30);

/// On a manual clock, a stall is a poll during which the clock moves past the
/// threshold: the watchdog thread reports it while the poll still runs (the poll waits
/// for that report before it returns), and the executor again when it returns; each
/// once. A poll that moves the clock by exactly the threshold is not past it, and is
/// never reported.
///
/// (The polls also wait a little in real time, so that the watchdog thread looks at
/// them several times: a watchdog that reported a poll twice, or at the threshold
/// itself, would then show it. A working one reports the same, whatever the wait.)
#[test]
fn the_watchdog_reads_the_executors_manual_clock() {
    const THRESHOLD: Duration = Duration::from_secs(1);
    const LOOKS: Duration = Duration::from_millis(300); // about a look per 250 ms
    let (report_sender, reports) = mpsc::channel::<Diagnostic>();
    let report_sender = Mutex::new(report_sender);
    let clock = ManualClock::new();
    let executor = Executor::builder()
        .clock(Clock::Manual(clock.clone()))
        .stall_watchdog(THRESHOLD)
        .on_diagnostic(move |d| drop(report_sender.lock().unwrap().send(d.clone())))
        .build();
    let at_threshold = executor.spawn_named("at the threshold", {
        let clock = clock.clone();
        async move {
            clock.advance(THRESHOLD);
            thread::sleep(LOOKS);
        }
    });
    let task = executor.spawn_named("slow on the clock", async move {
        at_threshold.await.unwrap();
        clock.advance(3 * THRESHOLD);
        // Blocks this poll until the report comes; the bound only turns a watchdog that
        // never reports into a failure instead of a hang.
        let while_running = reports.recv_timeout(NEVER_REPORTED).unwrap();
        thread::sleep(2 * LOOKS);
        (while_running, reports)
    });
    let (while_running, reports) = executor.block_on(task).unwrap();
    drop(executor); // joins the watchdog: every report is in
    let at_the_end = reports.recv_timeout(NEVER_REPORTED).unwrap();
    for (report, running) in [(while_running, true), (at_the_end, false)] {
        let Diagnostic::Stall {
            task,
            held,
            still_running,
            worker: None,
        } = report
        else {
            panic!("expected a stall, got {report:?}");
        };
        assert_eq!(task.name.as_deref(), Some("slow on the clock"));
        assert_eq!(held, 3 * THRESHOLD);
        assert_eq!(still_running, running);
    }
    let more: Vec<Diagnostic> = reports.try_iter().collect();
    assert!(more.is_empty(), "{more:?}");
}

/// Unnamed tasks are named in reports by their slot: `task #0`, `task #1`.
#[test]
fn unnamed_tasks_are_named_by_their_slot() {
    let (executor, _seen) = executor_collecting();
    let first = executor.spawn(pending::<()>());
    let second = executor.spawn(pending::<()>());
    let deadlock = executor.try_block_on(join(first, second)).unwrap_err();
    let report = deadlock.to_string();
    for text in ["task #0 (spawned at", "task #1 (spawned at"] {
        assert!(report.contains(text), "missing `{text}` in:\n{report}");
    }
}

/// Runs a task that is lost (it returns `Pending` and keeps no waker) on an executor
/// with its books on or off; returns what was reported.
fn report_a_lost_task(diagnostics: bool) -> Vec<Diagnostic> {
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder()
        .diagnostics(diagnostics)
        .on_diagnostic(reporter)
        .build();
    let lost = executor.spawn_named("lost", poll_fn(|_cx| Poll::<()>::Pending));
    executor.block_on(async {
        yield_now().await; // the lost task's one poll runs here
        yield_now().await;
    });
    drop(lost);
    drop(executor);
    let seen = seen.lock().unwrap();
    seen.clone()
}

/// `diagnostics(false)` keeps no books: the lost task goes unreported. (With them on,
/// the same run reports it: the switch is what keeps it quiet.)
#[test]
fn diagnostics_off_report_nothing() {
    assert!(report_a_lost_task(false).is_empty());
    let on = report_a_lost_task(true);
    assert!(
        matches!(&on[..], [Diagnostic::LostTask { task }] if task.name.as_deref() == Some("lost")),
        "{on:?}"
    );
}

/// A `Park` that lets a thread know each time the executor parks.
struct SignallingPark {
    inner: async_scratch::park::ThreadPark,
    parked: mpsc::Sender<()>,
}

impl async_scratch::park::Park for SignallingPark {
    fn park(&self, deadline: Option<std::time::Instant>) {
        let _ = self.parked.send(());
        self.inner.park(deadline);
    }

    fn unparker(&self) -> std::sync::Arc<dyn async_scratch::park::Unpark> {
        self.inner.unparker()
    }
}

/// A `join_all` child waits on a task nobody will ever wake, and another child's
/// waker is held by a thread: the task awaiting the `join_all` can still be woken, so
/// no deadlock is claimed while the thread holds that waker. The thread wakes its
/// child only once the executor has parked (which it does only when it claims
/// nothing); after that, the wait is a deadlock, and is reported as one.
#[test]
fn a_join_all_child_held_by_a_thread_is_no_deadlock() {
    // On a thread of its own: if the executor never looked again once the thread let
    // go of its waker, it would park forever, and this fails instead of hanging.
    let (done, outcome) = mpsc::channel();
    thread::spawn(move || done.send(claims_only_once_the_thread_woke()));
    let thread_woke_first = common::receive_or_give_up(&outcome, "the end of try_block_on");
    assert!(
        thread_woke_first,
        "a deadlock was claimed while a thread held a waker"
    );
}

/// The scenario of the test above; returns whether the deadlock was claimed only
/// after the thread had woken its child.
fn claims_only_once_the_thread_woke() -> bool {
    let (parked_sender, parked) = mpsc::channel();
    let (reporter, _seen) = collect_diagnostics();
    let executor = Executor::builder()
        .park(SignallingPark {
            inner: async_scratch::park::ThreadPark::current(),
            parked: parked_sender,
        })
        .on_diagnostic(reporter)
        .build();
    let thread_woke = Arc::new(AtomicBool::new(false));
    let forgotten = executor.spawn(poll_fn(|_cx| Poll::<()>::Pending));
    let mut parked = Some(parked);
    let woke = thread_woke.clone();
    let held_by_a_thread = poll_fn(move |cx| {
        let Some(parked) = parked.take() else {
            return Poll::Ready(Ok(()));
        };
        let (waker, woke) = (cx.waker().clone(), woke.clone());
        thread::spawn(move || {
            let _ = parked.recv_timeout(common::GIVE_UP_AFTER);
            woke.store(true, Ordering::SeqCst);
            waker.wake();
        });
        Poll::Pending
    });
    type Child = Pin<Box<dyn Future<Output = Result<(), JoinError>>>>;
    let children: Vec<Child> = vec![Box::pin(forgotten), Box::pin(held_by_a_thread)];
    let outcome = executor.try_block_on(join_all(children));
    assert!(
        outcome.is_err(),
        "the forgotten task is a deadlock in the end"
    );
    thread_woke.load(Ordering::SeqCst)
}

/// Builds an executor on this thread that tells `parked` each time it parks.
fn executor_signalling_parks(parked: mpsc::Sender<()>) -> Executor {
    Executor::builder()
        .park(SignallingPark {
            inner: async_scratch::park::ThreadPark::current(),
            parked,
        })
        .on_diagnostic(|_| {})
        .build()
}

/// A task holds a lock forever, but its `JoinHandle` went to a thread that aborts it
/// once the executor has parked: the lock is released then. No deadlock may be
/// claimed meanwhile: a loose handle is a possible wake.
#[test]
fn a_handle_that_may_abort_is_a_possible_wake() {
    let outcome = bounded(|| {
        let (parked_sender, parked) = mpsc::channel();
        let executor = executor_signalling_parks(parked_sender);
        executor
            .try_block_on(async {
                let lock = Rc::new(async_scratch::mutex::Mutex::named("m", ()));
                let holder = async_scratch::executor::spawn({
                    let lock = lock.clone();
                    async move {
                        let _guard = lock.lock().await;
                        pending::<()>().await;
                    }
                });
                yield_now().await; // the holder takes the lock
                let aborter = thread::spawn(move || {
                    let _ = parked.recv_timeout(common::GIVE_UP_AFTER);
                    holder.abort();
                });
                drop(lock.lock().await); // released when the holder is aborted
                aborter.join().unwrap();
            })
            .map_err(|deadlock| deadlock.to_string())
    });
    assert_eq!(outcome, Ok(()));
}

/// A lock guard outlives the task that took it (returned by a `block_on`, handed to
/// a thread that drops it once the executor has parked): its holder has ended, so the
/// lock is held outside, and no deadlock is claimed.
#[test]
fn a_guard_that_outlived_its_task_is_no_deadlock() {
    let outcome = bounded(|| {
        let lock = async_scratch::mutex::Mutex::named("m", 0);
        let (parked_sender, parked) = mpsc::channel();
        let executor = executor_signalling_parks(parked_sender);
        let guard = executor.block_on(lock.lock()); // taken by block_on's future, which ends
        thread::scope(|scope| {
            scope.spawn(move || {
                let _ = parked.recv_timeout(common::GIVE_UP_AFTER);
                drop(guard);
            });
            let outcome = executor.try_block_on(async { *lock.lock().await + 1 });
            outcome.map_err(|deadlock| deadlock.to_string())
        })
    });
    assert_eq!(outcome, Ok(1));
}

/// The children of a `join_all` leave their wakers with threads that drop them
/// unused: once they are gone, nothing can wake the task, and the deadlock is
/// reported rather than the executor parking for good.
#[test]
fn join_all_child_wakers_dropped_elsewhere_end_in_a_deadlock_report() {
    let outcome = bounded(|| {
        Executor::builder()
            .on_diagnostic(|_| {})
            .build()
            .try_block_on(async {
                let gives_its_waker_away = || {
                    poll_fn(|cx| {
                        let waker = cx.waker().clone();
                        thread::spawn(move || drop(waker));
                        Poll::<()>::Pending
                    })
                };
                join_all([gives_its_waker_away(), gives_its_waker_away()]).await
            })
            .is_err()
    });
    assert!(outcome, "a deadlock is reported");
}
