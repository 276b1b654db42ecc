//! Step 4: coroutines. Every unit becomes a future, and all of them run on one thread:
//! while a unit awaits its timer, the thread runs the others. The executor that does
//! it is built in three versions, each a row of the table on the same workload, so
//! that each version's cost is measured, not claimed (the CPU column):
//!
//! | row | module | the loop | what it teaches |
//! |---|---|---|---|
//! | 4a | [`busy`] | polls every future, round and round, with a no-op waker | correct, and burns a core while it waits |
//! | 4b | [`park`] | polls what a waker queued; parks until the next deadline | wakers: the CPU falls to about zero |
//! | 4c | [`executor`] | the library's executor: `spawn`, `JoinHandle`, `join_all` | a future can start others and await their results |
//!
//! The unit is the library's `async fn run_unit`, or, with `--unit-future`, the state
//! machine it compiles into, written by hand (`UnitFuture`): the same table either way.
//! (A `cpu` unit cannot be suspended, so those run one at a time: coroutines share a
//! thread, they do not add cores.)

use super::{Lanes, Part, Step, UnitForm, Workload};
use async_scratch::busy_executor::UnitTask;
use async_scratch::coroutine::{run_unit, UnitFuture};
use async_scratch::timeline::Timeline;
use async_scratch::work::WorkKind;
use std::time::Duration;

pub mod busy;
pub mod executor;
pub mod park;

/// Step 4's three rows, in the order they were built.
pub const ROWS: [Step; 3] = [
    Step {
        number: 4,
        part: Some(Part::BusyPoll),
        look_for: "Units in flight at once on one thread, done in about one unit's time, as in 4c: but the CPU column shows the thread spinning all that time, polling futures that are not ready.",
        lanes: Lanes::Tasks,
        name: "busy-poll",
        what: "polls every future, round and round",
        run: busy::run,
        expected_time: one_unit_or_all_in_turn,
        note: |_| None,
    },
    Step {
        number: 4,
        part: Some(Part::Park),
        look_for: "The same timeline as 4a, for a fraction of its CPU: each unit is polled when its waker says so, and the thread parks until the next deadline.",
        lanes: Lanes::Tasks,
        name: "wake-and-park",
        what: "polls only what a waker queued, then parks",
        run: park::run,
        expected_time: one_unit_or_all_in_turn,
        note: |_| None,
    },
    executor::STEP,
];

/// How long step 4 takes: one unit's time when units wait (they all wait at once),
/// every unit's time in turn when they compute.
fn one_unit_or_all_in_turn(workload: &Workload, _cores: usize) -> Duration {
    match workload.work.kind {
        WorkKind::Sleep => workload.work.duration,
        WorkKind::Cpu => workload.sequential_time(),
    }
}

/// Every unit of `workload` as a boxed future, as 4a and 4b run them, in the form
/// `--unit-future` chose.
fn boxed_units(workload: &Workload, timeline: &Timeline) -> Vec<UnitTask> {
    let work = workload.work;
    (0..workload.units)
        .map(|unit| -> UnitTask {
            match workload.unit_form {
                UnitForm::AsyncFn => Box::pin(run_unit(work, unit, timeline.clone())),
                UnitForm::StateMachine => Box::pin(UnitFuture::new(work, unit, timeline.clone())),
            }
        })
        .collect()
}
