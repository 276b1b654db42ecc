//! The wait watchdog: the waits the deadlock detector cannot prove, and that used to
//! hang in silence, are reported as "no wake in sight" (never as a deadlock), naming
//! what the executor cannot see; healthy waits are not reported.
//!
//! Each test's `block_on` ends through an escape hatch that the reporter opens: the
//! report itself is what lets the test go on, so nothing here waits on a clock, and a
//! missing report shows as a test that fails after a bounded wait, not as a hang.

mod common;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::executor::{Executor, ExecutorBuilder};
use async_scratch::mutex::Mutex;
use async_scratch::time::{sleep, Clock, ManualClock};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex as StdMutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use common::bounded;

/// Short, for the tests' sake; a real program would use seconds.
const THRESHOLD: Duration = Duration::from_millis(20);

/// What the reporter saw, and the hatch it opens on a "no wake in sight" report.
#[derive(Default)]
struct Hatch {
    reports: StdMutex<Vec<Diagnostic>>,
    open: AtomicBool,
    waker: StdMutex<Option<Waker>>,
}

impl Hatch {
    fn reporter(self: &Arc<Hatch>) -> impl Fn(&Diagnostic) + Send + Sync + 'static {
        let hatch = Arc::clone(self);
        move |diagnostic| {
            hatch.reports.lock().unwrap().push(diagnostic.clone());
            if matches!(diagnostic, Diagnostic::NoWakeInSight { .. }) {
                hatch.open.store(true, Ordering::SeqCst);
                if let Some(waker) = hatch.waker.lock().unwrap().take() {
                    waker.wake();
                }
            }
        }
    }

    /// `future`'s output, or `None` once the hatch opens.
    async fn or_escape<F: Future>(&self, future: F) -> Option<F::Output> {
        let mut future = pin!(future);
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            if self.open.load(Ordering::SeqCst) {
                return Poll::Ready(None);
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The one "no wake in sight" report, as text.
    fn the_report(&self) -> String {
        let reports = self.reports.lock().unwrap();
        let quiet = reports
            .iter()
            .filter(|report| matches!(report, Diagnostic::NoWakeInSight { .. }));
        let texts: Vec<String> = quiet.map(ToString::to_string).collect();
        assert_eq!(texts.len(), 1, "{reports:?}");
        texts[0].clone()
    }
}

fn watched(hatch: &Arc<Hatch>) -> ExecutorBuilder {
    Executor::builder()
        .wait_watchdog(THRESHOLD)
        .on_diagnostic(hatch.reporter())
}

/// A `block_on` nested on the same thread, waiting on a task of the executor
/// suspended beneath it: that task can never run. The outer executor's task is beyond
/// the inner one's sight, so it cannot prove it; it says what it cannot see.
#[test]
fn a_nested_block_on_waiting_on_the_outer_executors_task_is_reported() {
    let report = bounded(|| {
        let hatch = Arc::new(Hatch::default());
        let outer = Executor::new();
        let inner = watched(&hatch).build();
        outer.block_on(async {
            let outer_task = outer.spawn_named("outer task", async { 7 });
            let escaped = inner.block_on(hatch.or_escape(outer_task));
            assert!(
                escaped.is_none(),
                "the outer task cannot run while inner blocks"
            );
        });
        hatch.the_report()
    });
    assert!(report.starts_with("no wake in sight"), "{report}");
    assert!(
        report.contains("awaits the result of task 'outer task'"),
        "{report}"
    );
    assert!(!report.contains("deadlock:"), "{report}");
}

/// Our mutex, locked by the thread that then waits for it in `block_on`: the guard is
/// on this thread's stack, but a guard can be sent anywhere, so the executor cannot
/// prove it; it names the lock and says it is held outside any task.
#[test]
fn a_lock_held_by_the_block_on_thread_is_reported() {
    let report = bounded(|| {
        let hatch = Arc::new(Hatch::default());
        let lock = Mutex::named("config", ());
        let _guard = lock.try_lock().expect("free");
        let executor = watched(&hatch).build();
        let escaped = executor.block_on(hatch.or_escape(lock.lock()));
        assert!(escaped.is_none());
        hatch.the_report()
    });
    assert!(report.starts_with("no wake in sight"), "{report}");
    assert!(
        report.contains("waits for mutex 'config', held outside any task"),
        "{report}"
    );
}

/// A sleep that never ends, on a manual clock: its waker is kept (it is no lost task),
/// and no timer is pending, so the manual clock has nothing to jump to.
#[test]
fn a_sleep_that_never_ends_on_a_manual_clock_is_reported() {
    let report = bounded(|| {
        let hatch = Arc::new(Hatch::default());
        let executor = watched(&hatch)
            .clock(Clock::Manual(ManualClock::new()))
            .build();
        let forever = executor.spawn_named("sleeper", sleep(Duration::MAX));
        let escaped = executor.block_on(hatch.or_escape(forever));
        assert!(escaped.is_none());
        hatch.the_report()
    });
    assert!(report.starts_with("no wake in sight"), "{report}");
    assert!(report.contains("task 'sleeper'"), "{report}");
    assert!(report.contains("a sleep that never ends"), "{report}");
}

/// Healthy waits are not reported: timers (even long ones, on a manual clock) and a
/// proven deadlock, which is a deadlock report and not this one.
#[test]
fn timers_and_proven_deadlocks_raise_no_such_report() {
    let hatch = Arc::new(Hatch::default());
    let executor = watched(&hatch)
        .clock(Clock::Manual(ManualClock::new()))
        .build();
    executor.block_on(sleep(Duration::from_secs(3600)));
    let stuck = executor.spawn_named("stuck", std::future::pending::<()>());
    assert!(executor.try_block_on(stuck).is_err(), "a proven deadlock");
    let reports = hatch.reports.lock().unwrap();
    let quiet = |report: &&Diagnostic| matches!(report, Diagnostic::NoWakeInSight { .. });
    assert_eq!(reports.iter().filter(quiet).count(), 0, "{reports:?}");
}

/// A quiet spell is reported once, however many times the executor is unparked for
/// nothing during it (here: a thread clones and drops the waker, which unparks an
/// executor parked undecided, and wakes it only once the report is out).
#[test]
fn a_quiet_spell_is_reported_once() {
    let report = bounded(|| {
        let hatch = Arc::new(Hatch::default());
        let executor = watched(&hatch).build();
        let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
        let hatch_in_thread = Arc::clone(&hatch);
        let thread = thread::spawn(move || {
            let waker = waker_rx.recv().unwrap();
            while !hatch_in_thread.open.load(Ordering::SeqCst) {
                drop(waker.clone()); // a release: the executor looks again, finds nothing
                thread::yield_now();
            }
            waker.wake();
        });
        let mut first = true;
        executor.block_on(poll_fn(|cx| {
            if std::mem::take(&mut first) {
                waker_tx.send(cx.waker().clone()).unwrap();
                return Poll::Pending;
            }
            Poll::Ready(())
        }));
        thread.join().unwrap();
        hatch.the_report() // asserts there was exactly one
    });
    assert!(
        report.contains("block_on's future") && report.contains("of its wakers"),
        "{report}"
    );
}

#[test]
#[should_panic(expected = "ExecutorBuilder::wait_watchdog needs a threshold above zero")]
fn a_zero_wait_threshold_is_refused() {
    let _ = Executor::builder().wait_watchdog(Duration::ZERO);
}

#[test]
#[should_panic(expected = "ExecutorBuilder::stall_watchdog needs a threshold above zero")]
fn a_zero_stall_threshold_is_refused() {
    let _ = Executor::builder().stall_watchdog(Duration::ZERO);
}
