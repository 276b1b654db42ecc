//! Attacks on the runtime's task core, its wake path and its diagnostics, as a
//! stranger would make them: shutdown racing wakes, handles awaited elsewhere, panics
//! in `Drop`s and wakers, and waits the diagnostics must not take for lost tasks or
//! deadlocks. Ordered by channels; a wait below is a bound on a failure, never what a
//! pass depends on.

use std::future::{poll_fn, Future};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use async_scratch::diagnostics::Diagnostic;
use async_scratch::runtime::{Builder, Runtime};

/// A runtime on two workers whose reports arrive on the returned channel.
fn reporting_runtime(builder: Builder) -> (Runtime, Receiver<Diagnostic>) {
    let (reports, reported) = mpsc::channel();
    let reports = Mutex::new(reports);
    let runtime = builder
        .worker_threads(2)
        .on_diagnostic(move |diagnostic: &Diagnostic| {
            let _ = reports.lock().unwrap().send(diagnostic.clone());
        })
        .build()
        .unwrap();
    (runtime, reported)
}

fn lost_reports(reported: &Receiver<Diagnostic>) -> Vec<Diagnostic> {
    reported
        .try_iter()
        .filter(|report| matches!(report, Diagnostic::LostTask { .. }))
        .collect()
}

/// A future pending for ever that keeps its own waker in itself (as a channel
/// receiver keeps its waker in state only it owns): the task is never lost while its
/// future lives, and it tells `polled` at each poll.
fn keeps_its_own_waker(polled: mpsc::Sender<()>) -> impl Future<Output = ()> + Send {
    let mut own: Option<Waker> = None;
    poll_fn(move |cx| {
        own = Some(cx.waker().clone());
        let _ = polled.send(());
        Poll::Pending
    })
}

/// A runtime dropped with a task pending drops the task's future, and with it the
/// task's own last waker: the task is being cancelled, not lost, and no report says
/// it is lost.
#[test]
fn shutdown_reports_no_lost_task_for_a_future_that_kept_its_own_waker() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let (polled, was_polled) = mpsc::channel();
    let pending = runtime.spawn(keeps_its_own_waker(polled));
    was_polled.recv().unwrap();
    drop(runtime);
    assert_eq!(lost_reports(&reported), vec![], "a cancelled task reported lost");
    drop(pending);
}
