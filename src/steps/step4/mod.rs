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

/// What one unit costs step 4 beyond its own time, on a busy machine: creating its
/// future (and, in 4c, spawning and joining its task), its polls, its timer, its span.
///
/// Measured on the 2-core VM with `tour --step 4X --units 1000000 --unit-ms 1`
/// (release build), the process's wall time under `/usr/bin/time`, both cores kept busy
/// by two shell loops: 4a 3.4 s, 4b 5.3 s, 4c 6.9 to 7.8 s (9.1 s with 100 ms units);
/// quiet, 4c took 2.5 s. So about 8 µs a unit for the slowest row, which the three
/// rows share: the budget is there to refuse a run far too long, and a busy machine is
/// where it is most often run (the CI's second pass keeps every core busy).
const PER_TASK_COST: Duration = Duration::from_micros(8);

/// How long step 4 takes: one unit's time when units wait (they all wait at once),
/// every unit's time in turn when they compute; and what every unit costs the
/// executor on top ([`PER_TASK_COST`]).
fn one_unit_or_all_in_turn(workload: &Workload, _cores: usize) -> Duration {
    let units = match workload.work.kind {
        WorkKind::Sleep => workload.work.duration,
        WorkKind::Cpu => workload.sequential_time(),
    };
    units.saturating_add(workload.task_costs(PER_TASK_COST))
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
