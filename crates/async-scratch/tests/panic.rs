//! Panics in user code, where a real program puts them: a future's `Drop`, an
//! output's `Drop`, a panic payload's `Drop`, a waker's `wake`. Each is caught where it
//! happens and handed to the task's `JoinHandle`, or reported when nobody waits; the
//! executor carries on, and no other task is lost.

mod common;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::executor::JoinError;
use async_scratch::executor::{spawn, Executor};
use async_scratch::join_all::join_all;
use async_scratch::time::{sleep, Clock, ManualClock};
use common::{
    collect_diagnostics, quiet_deliberate_panics, PanicsWhenDropped, DELIBERATE, GIVE_UP_AFTER,
};
use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};

/// A future that is ready (or, with `ready: false`, pending for good, keeping its
/// waker) and panics when dropped.
struct PanicsOnDrop {
    ready: bool,
    waker: Option<Waker>,
}

impl PanicsOnDrop {
    fn ready() -> PanicsOnDrop {
        PanicsOnDrop {
            ready: true,
            waker: None,
        }
    }

    fn pending() -> PanicsOnDrop {
        PanicsOnDrop {
            ready: false,
            waker: None,
        }
    }
}

impl Future for PanicsOnDrop {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.ready {
            return Poll::Ready(7);
        }
        self.waker = Some(cx.waker().clone()); // pending, but not lost
        Poll::Pending
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{DELIBERATE} panic in a future's drop");
    }
}

/// A task output whose `Drop` panics.
struct OutputPanicsOnDrop;

impl Drop for OutputPanicsOnDrop {
    fn drop(&mut self) {
        panic!("{DELIBERATE} panic in an output's drop");
    }
}

/// A waker whose `wake` panics.
struct PanicsOnWake;

impl Wake for PanicsOnWake {
    fn wake(self: Arc<Self>) {
        panic!("{DELIBERATE} panic in a waker");
    }
}

type Seen = Arc<Mutex<Vec<Diagnostic>>>;

fn executor_collecting() -> (Executor, Seen) {
    quiet_deliberate_panics();
    let (reporter, seen) = collect_diagnostics();
    (Executor::builder().on_diagnostic(reporter).build(), seen)
}

/// The places of the caught panics reported so far.
fn caught_places(seen: &Seen) -> Vec<&'static str> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|diagnostic| match diagnostic {
            Diagnostic::CaughtPanic { place, message, .. } => {
                assert!(message.contains(DELIBERATE), "{message}");
                Some(*place)
            }
            _ => None,
        })
        .collect()
}

fn panicked_with(result: Result<u32, JoinError>, text: &str) {
    match result {
        Err(JoinError::Panicked(message)) => assert!(message.contains(text), "{message}"),
        other => panic!("expected a panic with '{text}', got {other:?}"),
    }
}

/// A future that returned `Ready` and panics when it is then dropped: the panic goes to
/// its handle (the value is dropped with it), `block_on` returns, the task after it in
/// the same batch runs, and no slot stays behind.
#[test]
fn a_future_that_panics_when_dropped_after_finishing_gives_its_handle_the_panic() {
    let (executor, _seen) = executor_collecting();
    let (first, second) = executor.block_on(async {
        let first = spawn(PanicsOnDrop::ready());
        let second = spawn(async { 8 });
        (first.await, second.await)
    });
    panicked_with(first, "panic in a future's drop");
    assert_eq!(second, Ok(8));
    assert_eq!(executor.pending_tasks(), 0);
}

/// An aborted task whose future panics when dropped: its handle gets the panic, not
/// `Cancelled`, and `block_on` returns.
#[test]
fn a_future_that_panics_when_dropped_on_abort_gives_its_handle_the_panic() {
    let (executor, _seen) = executor_collecting();
    let aborted = executor.block_on(async {
        let task = spawn(PendingForever(PanicsOnDrop::pending()));
        async_scratch::executor::yield_now().await; // it runs once, and waits
        task.abort();
        task.await
    });
    panicked_with(aborted, "panic in a future's drop");
    assert_eq!(executor.pending_tasks(), 0);
}

/// `PanicsOnDrop::pending` as a future of any output (never ready).
struct PendingForever(PanicsOnDrop);

impl Future for PendingForever {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// A task that panics with a payload whose own `Drop` panics: the handle gets the
/// first panic, the payload's panic is caught as it is dropped, and the task spawned
/// after it still runs.
#[test]
fn a_panic_payload_that_panics_when_dropped_is_caught() {
    let (executor, _seen) = executor_collecting();
    let drops = Arc::new(AtomicUsize::new(0));
    let (first, second) = executor.block_on({
        let drops = drops.clone();
        async move {
            let first = spawn(async move {
                std::panic::panic_any(PanicsWhenDropped::new(&drops));
            });
            let second = spawn(async { 8 });
            (first.await, second.await)
        }
    });
    assert!(matches!(first, Err(JoinError::Panicked(_))), "{first:?}");
    assert_eq!(second, Ok(8));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the payload was dropped once"
    );
}

/// A detached task's output that panics when dropped: nobody will take it, so it is
/// dropped as the task ends, and the panic is reported; the executor runs on. The same
/// for an output already there when its handle is dropped.
#[test]
fn an_output_nobody_takes_that_panics_when_dropped_is_reported() {
    let (executor, seen) = executor_collecting();
    let after = executor.block_on(async {
        drop(spawn(async { OutputPanicsOnDrop })); // detached before it runs
        let finished = spawn(async { OutputPanicsOnDrop });
        async_scratch::executor::yield_now().await; // both run and finish
        assert!(finished.is_finished());
        drop(finished); // the output is there, and dropped with the handle
        spawn(async { 8 }).await
    });
    assert_eq!(after, Ok(8));
    assert_eq!(
        caught_places(&seen),
        [
            "the drop of a detached task's output",
            "the drop of a task's output, with its JoinHandle"
        ]
    );
    assert_eq!(executor.pending_tasks(), 0);
}

/// The task awaiting a handle has a waker that panics when woken: the panic is caught
/// and reported when the awaited task ends, and the tasks polled after it in the same
/// batch still run.
#[test]
fn a_joiners_waker_that_panics_is_reported_and_the_batch_goes_on() {
    let (executor, seen) = executor_collecting();
    let outputs = executor.block_on(async {
        let mut awaited = spawn(async { 1 });
        let others: Vec<_> = (2..=4).map(|n| spawn(async move { n })).collect();
        let waker = Waker::from(Arc::new(PanicsOnWake));
        // Wait on the handle with the panicking waker, once, before the task runs.
        let first = Pin::new(&mut awaited).poll(&mut Context::from_waker(&waker));
        assert!(first.is_pending());
        async_scratch::executor::yield_now().await; // the batch: all four tasks run
        let mut outputs = vec![awaited.await.unwrap()];
        for other in join_all(others).await {
            outputs.push(other.unwrap());
        }
        outputs
    });
    assert_eq!(outputs, [1, 2, 3, 4]);
    assert_eq!(caught_places(&seen), ["the wake of the task awaiting it"]);
}

/// Dropping an executor whose pending task panics when dropped: the drop returns, the
/// task's handle gets the panic, and the executor's cleanup runs to its end: the
/// watchdog thread is joined, and with it the last reference to the reporter goes.
#[test]
fn dropping_an_executor_with_a_task_that_panics_in_drop_cleans_up() {
    quiet_deliberate_panics();
    let reporter_alive = Arc::new(());
    let executor = Executor::builder()
        .stall_watchdog(std::time::Duration::from_secs(60))
        .on_diagnostic({
            let alive = reporter_alive.clone();
            move |_: &Diagnostic| {
                let _ = &alive;
            }
        })
        .build();
    let handle = executor.spawn(PendingForever(PanicsOnDrop::pending()));
    drop(executor);
    assert!(handle.is_finished());
    panicked_with(
        async_scratch::executor::block_on(handle),
        "panic in a future's drop",
    );
    assert_eq!(
        Arc::strong_count(&reporter_alive),
        1,
        "the reporter is gone"
    );
}

/// `block_on` panics with a deadlock report while a pending task's future panics when
/// dropped. The executor is dropped during that unwinding; a second panic escaping a
/// `Drop` then would abort the process. It is caught: the test sees the deadlock panic.
#[test]
fn an_executor_dropped_while_a_panic_unwinds_does_not_abort() {
    quiet_deliberate_panics();
    let outcome = std::panic::catch_unwind(|| {
        let (reporter, _seen) = collect_diagnostics();
        let executor = Executor::builder().on_diagnostic(reporter).build();
        drop(executor.spawn(Forgetful(PanicsOnDrop::pending()))); // detached
        executor.block_on(pending::<()>()); // deadlock: panics, and `executor` drops
    });
    let payload = outcome.unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("deadlock"), "{message}");
}

/// A future that is pending for good and keeps no waker (so the executor can see the
/// deadlock), and panics when dropped (the field is there for its `Drop`).
struct Forgetful(#[allow(dead_code)] PanicsOnDrop);

impl Future for Forgetful {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        Poll::Pending
    }
}

/// A hundred timers are due together, and the first to fire has a waker that panics
/// (a `Sleep` polled by hand with it): the panic is reported, and the 99 tasks sleeping
/// behind it are still woken and finish.
#[test]
fn a_timer_waker_that_panics_is_reported_and_the_other_timers_fire() {
    quiet_deliberate_panics();
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder()
        .clock(Clock::Manual(ManualClock::new()))
        .on_diagnostic(reporter)
        .build();
    let finished = executor.block_on(async {
        let ms = std::time::Duration::from_millis(1);
        let mut doomed = sleep(ms); // created first, so it fires first
        let waker = Waker::from(Arc::new(PanicsOnWake));
        let first = Pin::new(&mut doomed).poll(&mut Context::from_waker(&waker));
        assert!(first.is_pending());
        let sleepers = (0..99).map(|n| {
            spawn(async move {
                sleep(ms).await;
                n
            })
        });
        let finished = join_all(sleepers.collect::<Vec<_>>()).await;
        drop(doomed);
        finished.into_iter().filter(Result::is_ok).count()
    });
    assert_eq!(finished, 99);
    assert_eq!(caught_places(&seen), ["the wake of a timer's waker"]);
}

/// The diagnostic reporter is user code too. One that panics while a report is
/// delivered during an executor's drop, itself during an unwinding (`block_on`'s future
/// panicked), would abort the process; the test sees the future's panic instead.
#[test]
fn a_reporter_that_panics_while_the_executor_drops_does_not_abort() {
    quiet_deliberate_panics();
    let outcome = std::panic::catch_unwind(|| {
        let executor = Executor::builder()
            .on_diagnostic(|_: &Diagnostic| panic!("{DELIBERATE} panic in a reporter"))
            .build();
        executor.block_on(async {
            let mut awaited = spawn(async { 1 });
            let waker = Waker::from(Arc::new(PanicsOnWake));
            let first = Pin::new(&mut awaited).poll(&mut Context::from_waker(&waker));
            assert!(first.is_pending());
            // The task ends, its awaiter's wake panics, and a report is queued.
            async_scratch::executor::yield_now().await;
            panic!("{DELIBERATE} panic in block_on's future");
        });
    });
    let payload = outcome.unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("panic in block_on's future"), "{message}");
}

/// A reporter that panics on a stall report, made as a task's poll ends: the task's
/// value still reaches its handle, and no slot stays behind.
#[test]
fn a_reporter_that_panics_on_a_stall_loses_no_result() {
    quiet_deliberate_panics();
    let clock = ManualClock::new();
    let executor = Executor::builder()
        .clock(Clock::Manual(clock.clone()))
        .stall_watchdog(std::time::Duration::from_secs(1))
        .on_diagnostic(|_: &Diagnostic| panic!("{DELIBERATE} panic in a reporter"))
        .build();
    let slow = executor.spawn(async move {
        clock.advance(std::time::Duration::from_secs(2)); // a stall, on this clock
        7
    });
    assert_eq!(executor.block_on(slow), Ok(7));
    assert_eq!(executor.pending_tasks(), 0);
}

/// A panic caught after the executor is gone (an output dropped with its handle) is
/// reported at once, on the thread that caught it: nobody will empty the queue later.
#[test]
fn a_panic_caught_after_the_executor_is_gone_is_still_reported() {
    let (executor, seen) = executor_collecting();
    let handle = executor.spawn(async { OutputPanicsOnDrop });
    executor.block_on(async_scratch::executor::yield_now()); // the task finishes
    drop(executor);
    std::thread::spawn(move || drop(handle)).join().unwrap();
    assert_eq!(
        caught_places(&seen),
        ["the drop of a task's output, with its JoinHandle"]
    );
}

/// A `Park` whose first wait panics (as a reactor does when a socket's waker panics),
/// then parks the thread as usual.
struct PanicsOnFirstPark {
    inner: async_scratch::park::ThreadPark,
    parks: Arc<AtomicUsize>,
}

impl async_scratch::park::Park for PanicsOnFirstPark {
    fn park(&self, deadline: Option<std::time::Instant>) {
        if self.parks.fetch_add(1, Ordering::Relaxed) == 0 {
            panic!("{DELIBERATE} panic in a park");
        }
        self.inner.park(deadline);
    }

    fn unparker(&self) -> Arc<dyn async_scratch::park::Unpark> {
        self.inner.unparker()
    }
}

/// A panic in the park is caught and reported like a timer waker's, and the executor
/// carries on: the task, woken from another thread once the executor has parked,
/// still finishes.
#[test]
fn a_panic_in_the_park_is_reported_and_the_executor_carries_on() {
    quiet_deliberate_panics();
    let (reporter, seen) = collect_diagnostics();
    let parks = Arc::new(AtomicUsize::new(0));
    let executor = Executor::builder()
        .park(PanicsOnFirstPark {
            inner: async_scratch::park::ThreadPark::current(),
            parks: parks.clone(),
        })
        .on_diagnostic(reporter)
        .build();
    let waiting = executor.spawn(async move {
        let mut woken_once = false;
        std::future::poll_fn(|cx| {
            if woken_once {
                return Poll::Ready(());
            }
            woken_once = true;
            let (waker, parks) = (cx.waker().clone(), parks.clone());
            // Wakes the task only once the executor has tried to park: so it must.
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                while parks.load(Ordering::Relaxed) == 0 && started.elapsed() < GIVE_UP_AFTER {
                    std::thread::yield_now();
                }
                waker.wake();
            });
            Poll::Pending
        })
        .await
    });
    assert_eq!(executor.block_on(waiting), Ok(()));
    let seen = seen.lock().unwrap();
    assert!(
        matches!(&seen[..], [Diagnostic::CaughtPanic { place, .. }] if place.contains("park")),
        "{seen:?}"
    );
}

/// An observer that panics, on every kind of event, is caught and reported; the
/// executor's bookkeeping around it is not left half done: the task still runs to
/// its end, and its handle still wakes its awaiter.
#[test]
fn a_panicking_observer_is_reported_and_the_executor_carries_on() {
    quiet_deliberate_panics();
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder()
        .observe(|_event| panic!("{DELIBERATE} panic in an observer"))
        .on_diagnostic(reporter)
        .build();
    let task = executor.spawn(async {
        async_scratch::executor::yield_now().await; // a wake, a second poll
        6 * 7
    });
    assert_eq!(executor.block_on(task), Ok(42));
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|diagnostic| matches!(
        diagnostic,
        Diagnostic::CaughtPanic { place, .. } if place.contains("observer")
    )));
}

/// The vtable of a waker that does nothing, except panic when dropped. It holds no
/// allocation (a panic in an `Arc`'s `Drop` would leak it, which Miri reports).
static PANICS_WHEN_DROPPED: RawWakerVTable = RawWakerVTable::new(
    |data| RawWaker::new(data, &PANICS_WHEN_DROPPED),
    |_| {},
    |_| {},
    |_| panic!("{DELIBERATE} panic dropping a timer's waker"),
);

fn waker_that_panics_when_dropped() -> Waker {
    // SAFETY: the data pointer is never read, and the vtable's functions keep the
    // `RawWaker` contract for it (a clone returns the same pointer and vtable).
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &PANICS_WHEN_DROPPED)) }
}

/// A timer still pending when its executor is dropped holds a waker whose `Drop`
/// panics: the executor's drop catches it, reports it, and finishes its cleanup.
#[test]
fn a_timer_waker_that_panics_when_dropped_is_reported_by_the_executors_drop() {
    quiet_deliberate_panics();
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder().on_diagnostic(reporter).build();
    let pending_sleep = executor.block_on(async {
        let mut sleep = Box::pin(sleep(std::time::Duration::from_secs(3600)));
        let waker = waker_that_panics_when_dropped();
        let _ = sleep.as_mut().poll(&mut Context::from_waker(&waker));
        std::mem::forget(waker); // the timer queue's clone is the one dropped later
        Some(sleep) // its timer stays pending after block_on (kept, not awaited)
    });
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(executor)));
    assert!(
        dropped.is_ok(),
        "the waker's panic escaped the executor's drop"
    );
    drop(pending_sleep); // its timer went with the executor: nothing left to remove
    let seen = seen.lock().unwrap();
    assert!(
        matches!(&seen[..], [Diagnostic::CaughtPanic { place, .. }] if place.contains("timer")),
        "{seen:?}"
    );
}
