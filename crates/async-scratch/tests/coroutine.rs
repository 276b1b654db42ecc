//! The `async fn` and its hand-written state machine behave the same.

use async_scratch::coroutine::{run_unit, UnitFuture};
use async_scratch::executor::Executor;
use async_scratch::join_all::join_all;
use async_scratch::time::{Clock, ManualClock};
use async_scratch::timeline::{peak_in_flight, threads_used, Span, Timeline};
use async_scratch::work::{Work, WorkKind};
use std::time::Duration;

/// Runs `units` units, made by `make`, under a manual clock; returns the spans sorted
/// by unit.
fn spans_of<F: std::future::Future<Output = ()>>(
    units: usize,
    make: impl Fn(Work, usize, Timeline) -> F,
) -> Vec<Span> {
    let timeline = Timeline::new(); // first: the clock's instants must fall after its origin
    let executor = Executor::with_clock(Clock::Manual(ManualClock::new()));
    let work = Work::new(WorkKind::Sleep, Duration::from_millis(100));
    executor.block_on(join_all(
        (0..units).map(|unit| make(work, unit, timeline.clone())),
    ));
    let mut spans = timeline.spans();
    spans.sort_by_key(|span| span.unit);
    spans
}

/// Both versions record one span per unit, each exactly 100 ms on the executor's
/// clock, all on one thread, all in flight at once; and the same spans, unit for unit
/// (compared relative to each run's first start).
#[test]
fn async_fn_and_state_machine_record_the_same_spans() {
    let by_async_fn = spans_of(100, run_unit);
    let by_hand = spans_of(100, UnitFuture::new);
    for spans in [&by_async_fn, &by_hand] {
        assert_eq!(spans.len(), 100);
        assert!(spans
            .iter()
            .all(|span| span.end - span.start == Duration::from_millis(100)));
        assert_eq!(peak_in_flight(spans), 100);
        assert_eq!(threads_used(spans), 1);
    }
    let shape = |spans: &[Span]| {
        let origin = spans[0].start;
        spans
            .iter()
            .map(|span| (span.unit, span.lane, span.start - origin, span.end - origin))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&by_async_fn), shape(&by_hand));
}

/// CPU units cannot be suspended: on one thread they run one at a time.
#[test]
#[cfg_attr(miri, ignore = "CPU units calibrate for 50 ms, hours when interpreted")]
fn cpu_units_run_one_at_a_time_on_one_thread() {
    let timeline = Timeline::new();
    let work = Work::new(WorkKind::Cpu, Duration::from_millis(2));
    Executor::new().block_on(join_all(
        (0..4).map(|unit| UnitFuture::new(work, unit, timeline.clone())),
    ));
    assert_eq!(peak_in_flight(&timeline.spans()), 1);
}
