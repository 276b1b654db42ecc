//! Timers, on a manual clock so that no test waits: order, cancellation, edge
//! durations, timeouts, and a million pending timers.

mod common;

use async_scratch::executor::{spawn, yield_now, Executor};
use async_scratch::join_all::{join, join_all};
use async_scratch::time::{self, sleep, sleep_until, timeout, Clock, Elapsed, ManualClock};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

fn manual_executor() -> (Executor, ManualClock) {
    let clock = ManualClock::new();
    (Executor::with_clock(Clock::Manual(clock.clone())), clock)
}

const MS: Duration = Duration::from_millis(1);

/// Timers fire in deadline order; equal deadlines fire in the order the sleeps were
/// created, even when they were first polled in another order.
#[test]
fn timers_fire_in_deadline_then_creation_order() {
    let (executor, _clock) = manual_executor();
    let fired = Rc::new(RefCell::new(Vec::new()));
    executor.block_on(async {
        // Created in the order a, b, c, d, e; `c` and `a` share a deadline, as do `d`
        // and `b`.
        let plan = [("a", 20), ("b", 10), ("c", 20), ("d", 10), ("e", 5)];
        let sleeps: Vec<_> = plan
            .iter()
            .map(|&(name, ms)| (name, sleep(MS * ms)))
            .collect();
        // Spawned (and so first polled) in reverse.
        let handles: Vec<_> = sleeps
            .into_iter()
            .rev()
            .map(|(name, sleep)| {
                let fired = fired.clone();
                spawn(async move {
                    sleep.await;
                    fired.borrow_mut().push(name);
                })
            })
            .collect();
        join_all(handles).await;
    });
    assert_eq!(*fired.borrow(), ["e", "b", "d", "a", "c"]);
}

/// Under the manual clock, sleeping takes no real time: the clock jumps, exactly.
#[test]
fn the_manual_clock_jumps_to_each_deadline() {
    let (executor, clock) = manual_executor();
    let start = clock.now();
    let seen = executor.block_on(async {
        let mut seen = Vec::new();
        for ms in [5, 10, 30] {
            sleep(MS * ms).await;
            seen.push(time::now() - start);
        }
        seen
    });
    assert_eq!(seen, [MS * 5, MS * 15, MS * 45]);
}

/// Advancing the manual clock by hand fires what became due.
#[test]
fn advancing_the_manual_clock_fires_due_timers() {
    let (executor, clock) = manual_executor();
    let start = clock.now();
    executor.block_on(async {
        let sleeper = spawn(sleep(MS * 100));
        yield_now().await; // the sleeper registers its timer
        clock.advance(MS * 100);
        sleeper.await.unwrap();
    });
    assert_eq!(clock.now() - start, MS * 100);
}

/// A sleep dropped before its deadline is removed at once: nothing pending, nothing
/// fires, the clock does not jump to it.
#[test]
fn a_dropped_sleep_is_cancelled_and_never_fires() {
    let (executor, clock) = manual_executor();
    let start = clock.now();
    assert!(
        matches!(executor.clock(), Clock::Manual(_)),
        "the clock it was built with"
    );
    let inner = &executor;
    executor.block_on(async {
        let hour = sleep(Duration::from_secs(3600));
        let count = async {
            yield_now().await; // both timers are set by now
            assert_eq!(inner.pending_timers(), 2, "the hour and the timeout's own");
        };
        let result = timeout(MS * 10, join(hour, count)).await;
        assert_eq!(result, Err(Elapsed));
    });
    assert_eq!(executor.pending_timers(), 0);
    assert_eq!(
        clock.now() - start,
        MS * 10,
        "the hour-long sleep never fired"
    );
}

/// Zero, a deadline in the past and `Duration::MAX` neither panic nor overflow; the
/// first two are ready at once, the last never fires.
#[test]
fn edge_durations_are_handled() {
    let (executor, clock) = manual_executor();
    let start = clock.now();
    executor.block_on(async {
        sleep(Duration::ZERO).await;
        sleep_until(start - Duration::from_secs(1)).await;
        let forever = timeout(MS, sleep(Duration::MAX)).await;
        assert_eq!(forever, Err(Elapsed));
        let forever = timeout(Duration::MAX, async { "ready" }).await;
        assert_eq!(forever, Ok("ready"));
    });
    assert_eq!(clock.now() - start, MS);
    assert_eq!(executor.pending_timers(), 0);
}

/// `advance(Duration::MAX)` saturates, as its doc says: the clock ends up later than a
/// century's advance would take it, and a second `advance(Duration::MAX)` neither
/// panics nor moves it back. A sleep due in a thousand years is pending before and
/// ready after; it is polled by hand (`poll!`), so the executor never gets the chance
/// to jump the clock to its deadline by itself.
#[test]
fn advancing_by_duration_max_saturates() {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    let (executor, clock) = manual_executor();
    let a_century_later = clock.now() + CENTURY;
    executor.block_on(async {
        let mut far = sleep(CENTURY * 10);
        assert!(futures::poll!(&mut far).is_pending());
        clock.advance(Duration::MAX);
        assert!(futures::poll!(&mut far).is_ready(), "the far sleep is due");
    });
    let saturated = clock.now();
    assert!(saturated > a_century_later);
    clock.advance(Duration::MAX);
    assert_eq!(
        clock.now(),
        saturated,
        "already as late as an `Instant` goes"
    );
    assert_eq!(executor.pending_timers(), 0);
}

/// `timeout` gives the output when the future wins, `Elapsed` when time runs out, and
/// drops (cancels) the future it gave up on.
#[test]
fn timeout_returns_elapsed_when_the_time_is_up() {
    let (executor, _clock) = manual_executor();
    executor.block_on(async {
        assert_eq!(timeout(MS * 10, async { 3 }).await, Ok(3));
        let quick = async {
            sleep(MS * 5).await;
            "quick"
        };
        assert_eq!(timeout(MS * 10, quick).await, Ok("quick"));
        let slow = spawn(async { timeout(MS * 10, sleep(MS * 20)).await });
        assert_eq!(slow.await.unwrap(), Err(Elapsed));
    });
    assert_eq!(executor.pending_timers(), 0);
}

/// Equal deadlines and a timeout at the same instant as the future: the future is
/// polled first, so it counts as in time.
#[test]
fn a_future_ready_at_the_deadline_is_in_time() {
    let (executor, _clock) = manual_executor();
    let result = executor.block_on(async {
        let work = async {
            sleep(MS * 10).await;
            "made it"
        };
        timeout(MS * 10, work).await
    });
    assert_eq!(result, Ok("made it"));
}

/// The real clock works too: a short sleep completes (no assertion on how long).
#[test]
fn sleeping_on_the_real_clock_completes() {
    let executor = Executor::new();
    executor.block_on(async {
        sleep(MS).await;
        timeout(MS, std::future::pending::<()>()).await.unwrap_err();
    });
    assert_eq!(executor.pending_timers(), 0);
}

/// A million pending timers are fine: all registered at once, all fired, none left.
#[test]
#[cfg_attr(miri, ignore = "a million timers take hours under Miri")]
fn a_million_pending_timers() {
    let (executor, clock) = manual_executor();
    let start = clock.now();
    let sleeps = (0..1_000_000u64).map(|n| sleep(Duration::from_micros(1 + n % 1000)));
    let done = executor.block_on(join_all(sleeps));
    assert_eq!(done.len(), 1_000_000);
    assert_eq!(executor.pending_timers(), 0);
    assert_eq!(clock.now() - start, Duration::from_micros(1000));
}

/// Polling a sleep outside any executor panics with a message that says so.
#[test]
fn sleeping_outside_an_executor_panics_clearly() {
    let error = std::panic::catch_unwind(|| futures::executor::block_on(sleep(MS))).unwrap_err();
    let message = error
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("outside an async-scratch executor"),
        "{message}"
    );
}
