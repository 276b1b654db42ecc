//! The runtime's diagnostics (step 7): the stall watchdog on many workers names the
//! worker and the task, healthy work is never reported, and the panics the runtime
//! catches in user code go to the reporter. Stalls are polls blocked on a channel that
//! the test releases once the report is in, never sleeps of real time; every wait is
//! bounded, so that a missing report fails the test instead of hanging it.

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::runtime::{self, Runtime};
use async_scratch::time;

/// Longer than any report can take to come, on however busy a machine.
const BOUND: Duration = Duration::from_secs(20);

/// A runtime of `workers` workers whose reports come out of the returned channel.
fn runtime_reporting(workers: usize, stall: Option<Duration>) -> (Runtime, Receiver<Diagnostic>) {
    let (reports, reported) = mpsc::channel();
    let reports = Mutex::new(reports);
    let mut builder =
        Runtime::builder()
            .worker_threads(workers)
            .on_diagnostic(move |diagnostic: &Diagnostic| {
                let _ = reports.lock().unwrap().send(diagnostic.clone());
            });
    if let Some(threshold) = stall {
        builder = builder.stall_watchdog(threshold);
    }
    (builder.build().unwrap(), reported)
}

/// A task blocks its worker on a channel (a blocking call in async code). The
/// watchdog reports it while it still blocks, naming the worker it runs on and the
/// task's spawn location; released, it is reported again with the whole time it held
/// the worker. The other worker is never named.
#[test]
fn a_stall_names_its_worker_and_task() {
    const THRESHOLD: Duration = Duration::from_millis(20);
    let (runtime, reports) = runtime_reporting(2, Some(THRESHOLD));
    let (on_worker, worker_is) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let spawn_line = line!() + 1;
    let blocked = runtime.spawn(async move {
        on_worker.send(runtime::current_worker()).unwrap();
        released.lock().unwrap().recv_timeout(BOUND).unwrap();
    });
    let worker = worker_is.recv_timeout(BOUND).unwrap().unwrap();

    let while_blocked = reports.recv_timeout(BOUND).expect("a report while blocked");
    release.send(()).unwrap();
    runtime.block_on(blocked).unwrap();
    let after = reports
        .recv_timeout(BOUND)
        .expect("a report when the poll returned");
    drop(runtime); // joins the watchdog: every report is in

    for (report, running) in [(&while_blocked, true), (&after, false)] {
        let Diagnostic::Stall {
            task,
            held,
            still_running,
            worker: Some(named),
        } = report
        else {
            panic!("expected a stall on a worker, got {report:?}");
        };
        assert_eq!(*named, worker, "{report}");
        assert_eq!(*still_running, running, "{report}");
        assert!(*held > THRESHOLD, "{report}");
        assert_eq!(task.name, None);
        assert_eq!(task.spawned_at.file(), file!(), "{report}");
        assert_eq!(task.spawned_at.line(), spawn_line, "{report}");
        let text = report.to_string();
        assert!(
            text.contains(&format!("runtime worker {worker}'s thread")),
            "{text}"
        );
    }
    let (Diagnostic::Stall { task: first, .. }, Diagnostic::Stall { task: second, .. }) =
        (&while_blocked, &after)
    else {
        unreachable!()
    };
    assert_eq!(first.id, second.id, "both reports name the same task");
    let more: Vec<Diagnostic> = reports.try_iter().collect();
    assert!(
        more.is_empty(),
        "one report while blocked, one at the end: {more:?}"
    );
}

/// Ten thousand short tasks that yield, spawn and join: not one poll comes near a
/// threshold of seconds, so nothing is reported (checked after the drop, which joins
/// the watchdog).
#[test]
fn healthy_work_is_never_reported() {
    let (runtime, reports) = runtime_reporting(2, Some(Duration::from_secs(5)));
    let tasks = if cfg!(miri) { 20 } else { 10_000 };
    let sum = runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|n| {
                runtime::spawn(async move {
                    let inner = runtime::spawn(async move { n % 7 });
                    inner.await.unwrap()
                })
            })
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..tasks).map(|n| n % 7).sum::<usize>());
    drop(runtime);
    let reported: Vec<Diagnostic> = reports.try_iter().collect();
    assert!(reported.is_empty(), "{reported:?}");
}

/// Waits for the next report, and checks it is a caught panic at `place` with `message`,
/// naming the task spawned on line `spawn_line`.
fn expect_caught_panic(
    reports: &Receiver<Diagnostic>,
    (place, message): (&str, &str),
    spawn_line: u32,
) {
    let report = reports
        .recv_timeout(BOUND)
        .expect("the caught panic is reported");
    let Diagnostic::CaughtPanic {
        task: Some(task),
        place: reported_place,
        message: reported_message,
    } = &report
    else {
        panic!("expected a caught panic naming its task, got {report:?}");
    };
    assert_eq!(*reported_place, place);
    assert_eq!(reported_message, message);
    assert_eq!(task.spawned_at.line(), spawn_line);
}

/// A waker that panics when woken: someone else's code, run by the runtime.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("deliberate: this waker panics");
    }
}

/// A `JoinHandle`'s waiter whose waker panics: the worker that finishes the task
/// catches it and hands it to the reporter, naming the task.
#[test]
fn a_panicking_waiter_is_reported_to_the_reporter() {
    let (runtime, reports) = runtime_reporting(1, None);
    let (finish, finish_rx) = mpsc::channel::<()>();
    let finish_rx = Mutex::new(finish_rx);
    let spawn_line = line!() + 1;
    let mut handle = runtime.spawn(async move {
        let _ = finish_rx.lock().unwrap().recv_timeout(BOUND);
    });
    let waker = Waker::from(Arc::new(PanickingWaker));
    assert!(pin!(&mut handle)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    finish.send(()).unwrap();
    let expected = (
        "the wake of the task awaiting it",
        "deliberate: this waker panics",
    );
    expect_caught_panic(&reports, expected, spawn_line);
    assert!(matches!(runtime.block_on(handle), Ok(())));
}

/// A timer's waker that panics, fired by the runtime: caught and reported.
#[test]
fn a_panicking_timer_waker_is_reported_to_the_reporter() {
    let (runtime, reports) = runtime_reporting(1, None);
    runtime.block_on(async {
        let waker = Waker::from(Arc::new(PanickingWaker));
        // A timer whose waker panics. Its first poll must find it not yet due (then it
        // keeps the waker): on a machine slow enough to pass 50 ms between two lines
        // (Miri), a new one is tried.
        let _panicking = loop {
            let mut sleep = Box::pin(time::sleep(Duration::from_millis(50)));
            if sleep
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
            {
                break sleep;
            }
        };
        // Due after the first: the first fires (and its waker panics) before this one.
        time::sleep(Duration::from_millis(100)).await;
    });
    let report = reports
        .recv_timeout(BOUND)
        .expect("the caught panic is reported");
    assert!(
        matches!(
            &report,
            Diagnostic::CaughtPanic {
                place: "the wake of a timer's waker",
                ..
            }
        ),
        "{report:?}"
    );
}

/// An output whose `Drop` panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("deliberate: this output's drop panics");
    }
}

/// A detached task's output is dropped by the worker that finishes it; its `Drop`
/// panics there, and the panic goes to the reporter, naming the task.
#[test]
fn a_detached_output_whose_drop_panics_is_reported() {
    let (runtime, reports) = runtime_reporting(1, None);
    let (finish, finish_rx) = mpsc::channel::<()>();
    let finish_rx = Mutex::new(finish_rx);
    let spawn_line = line!() + 1;
    let handle = runtime.spawn(async move {
        let _ = finish_rx.lock().unwrap().recv_timeout(BOUND);
        PanicsOnDrop
    });
    drop(handle); // detached: nobody will take the output
    finish.send(()).unwrap();
    let place = "the drop of a detached task's output";
    expect_caught_panic(
        &reports,
        (place, "deliberate: this output's drop panics"),
        spawn_line,
    );
}
