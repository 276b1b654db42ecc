//! The runtime's lost-task report: a task pending, not queued, not being polled, with
//! no waker left for it anywhere, is reported by whoever dropped that last waker. And
//! never a task that something can still wake: a report of a lost task is a claim of
//! certainty. Ordered by channels; the one wait below is a bound on a failure, never
//! what a pass depends on.

mod common;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::runtime::{JoinError, Runtime};
use common::runtime::{lost_reports, reporting_runtime};

/// Long enough for any machine to deliver a report that is coming.
const PATIENCE: Duration = Duration::from_secs(20);

/// A future that is pending at every poll and keeps no waker: it tells `polled` each
/// time it was polled.
fn forgets_its_waker(polled: mpsc::Sender<()>) -> impl Future<Output = ()> + Send {
    poll_fn(move |_| {
        let _ = polled.send(());
        Poll::Pending
    })
}

#[test]
fn a_task_that_kept_no_waker_is_reported_where_it_was_spawned() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let (polled, was_polled) = mpsc::channel();
    let line = line!() + 1;
    let lost = runtime.spawn(forgets_its_waker(polled));
    was_polled.recv().unwrap();
    let report = reported.recv_timeout(PATIENCE).expect("a lost-task report");
    let Diagnostic::LostTask { task } = &report else {
        panic!("not a lost task: {report}");
    };
    assert_eq!(task.spawned_at.line(), line, "{report}");
    assert!(
        task.spawned_at.file().ends_with("runtime_lost.rs"),
        "{report}"
    );
    // Reported once; and the handle can still end it.
    lost.abort();
    assert!(matches!(runtime.block_on(lost), Err(JoinError::Cancelled)));
    drop(runtime);
    assert!(lost_reports(&reported).is_empty(), "reported twice");
}

#[test]
fn the_last_waker_dropped_on_another_thread_reports_the_idle_task() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (stored, was_stored) = mpsc::channel();
    let keeps = slot.clone();
    let task = runtime.spawn(poll_fn(move |cx| {
        *keeps.lock().unwrap() = Some(cx.waker().clone());
        let _ = stored.send(());
        Poll::<()>::Pending
    }));
    was_stored.recv().unwrap();
    // Let the poll end, so that the task is idle when its waker goes, and the report
    // comes from this thread's drop (were the poll still running, its end would
    // report it: the test passes either way).
    thread::sleep(Duration::from_millis(20));
    assert!(lost_reports(&reported).is_empty(), "a waker was kept");
    drop(slot.lock().unwrap().take());
    let report = reported.recv_timeout(PATIENCE).expect("a lost-task report");
    assert!(matches!(report, Diagnostic::LostTask { .. }), "{report}");
    task.abort();
    drop(runtime);
}

/// Drops its old waker before it clones the new one, at every poll: for a moment in
/// each poll no waker is left. The task is being polled then, and that poll keeps a
/// waker: it is not lost.
struct DropsBeforeCloning {
    slot: Arc<Mutex<Option<Waker>>>,
    polls_left: u32,
}

impl Future for DropsBeforeCloning {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        drop(self.slot.lock().unwrap().take());
        if self.polls_left == 0 {
            return Poll::Ready(());
        }
        self.polls_left -= 1;
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn no_report_for_tasks_that_a_waker_on_another_thread_still_wakes() {
    // Under Miri, which interprets every instruction, a few of each.
    let (tasks, polls) = if cfg!(miri) { (4, 5) } else { (200, 50) };
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let slots: Vec<Arc<Mutex<Option<Waker>>>> = (0..tasks).map(|_| Arc::default()).collect();
    let handles: Vec<_> = slots
        .iter()
        .map(|slot| {
            runtime.spawn(DropsBeforeCloning {
                slot: slot.clone(),
                polls_left: polls,
            })
        })
        .collect();
    // Wake every task, by reference and by value, until all are done.
    let waker_thread = thread::spawn(move || {
        let mut by_value = false;
        while slots.iter().any(|slot| Arc::strong_count(slot) > 1) {
            for slot in &slots {
                let waker = slot.lock().unwrap().clone();
                if let Some(waker) = waker {
                    if by_value {
                        waker.wake();
                    } else {
                        waker.wake_by_ref();
                    }
                }
                by_value = !by_value;
            }
            thread::yield_now();
        }
    });
    for handle in handles {
        runtime.block_on(handle).unwrap();
    }
    waker_thread.join().unwrap();
    drop(runtime);
    assert_eq!(
        lost_reports(&reported),
        vec![],
        "a task that could be woken was reported lost"
    );
}

#[test]
fn with_diagnostics_off_no_task_is_reported_lost() {
    for on in [true, false] {
        let (runtime, reported) = reporting_runtime(Runtime::builder().diagnostics(on));
        let (polled, was_polled) = mpsc::channel();
        let lost = runtime.spawn(forgets_its_waker(polled));
        was_polled.recv().unwrap();
        // Dropping the runtime joins its workers: whatever the poll reported is in.
        drop(runtime);
        assert_eq!(
            lost_reports(&reported).len(),
            usize::from(on),
            "diagnostics {on}"
        );
        drop(lost);
    }
}
