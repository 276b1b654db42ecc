//! Step 4c: the real executor. Every unit is spawned as a task on the library's
//! single-threaded executor; `join_all` waits for all of them, as `run_all` did for
//! threads. What changed from 4b: a future can start others (`spawn`) and await their
//! results (`JoinHandle`), and the executor watches for what goes wrong (step 5).

use super::one_unit_or_all_in_turn;
use crate::steps::{Lanes, Part, Step, StepError, UnitForm, Workload};
use crate::words::{format_duration, wrap};
use async_scratch::coroutine::{run_unit, UnitFuture};
use async_scratch::executor::{spawn, yield_now, Executor, DEFAULT_STALL_THRESHOLD};
use async_scratch::join_all::join_all;
use async_scratch::timeline::Timeline;
use async_scratch::work::WorkKind;
use std::future::Future;

pub const STEP: Step = Step {
    number: 4,
    part: Some(Part::Executor),
    look_for: "One lane per task, all on one thread, as many in flight at once as the thread can start before the first unit ends (every unit, at the default size); above them, the executor's thread, parked while every unit awaits its timer.",
    lanes: Lanes::Tasks,
    name: "coroutines",
    what: "every unit a coroutine task, on one thread",
    run,
    expected_time: one_unit_or_all_in_turn,
    note: cpu_stall_note,
};

/// On `cpu` work, why the stall watchdog may report this step's units. It is right
/// to: a computing unit never reaches an `.await` that returns `Pending`, so it holds
/// the executor's only thread for its whole time, as the blocking call of step 5's
/// second case does. So the tour explains the report rather than raise the threshold
/// above the unit time: a watchdog tuned to the workload would keep quiet about the
/// very thing this run shows, that coroutines share one thread and a computation does
/// not let go of it. Printed whenever the work is `cpu`, since whether a report comes
/// for units near the threshold depends on the machine.
fn cpu_stall_note(workload: &Workload) -> Option<String> {
    (workload.work.kind == WorkKind::Cpu).then(|| {
        let text = format!(
            "step 4 on cpu work: each unit computes for {} in one poll and never awaits, so \
             it holds the executor's only thread all that time. The stall watchdog reports a \
             poll over {}: a report on step 4's units is true, not a fault of the tour (step \
             5 shows the same with a blocking call, and its fix, spawn_blocking).",
            format_duration(workload.work.duration),
            format_duration(DEFAULT_STALL_THRESHOLD),
        );
        format!("note: {}", wrap(&text, "      "))
    })
}

/// Spawns between two yields. Spawning is work too: a million spawns in one poll would
/// hold the thread for a fifth of a second, and the stall watchdog (on in the tour)
/// would rightly report it. Yielding now and then lets the spawned units start.
const SPAWNS_PER_TURN: usize = 4096;

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let (work, units) = (workload.work, workload.units);
    match workload.unit_form {
        UnitForm::AsyncFn => spawn_all(units, |unit| run_unit(work, unit, timeline.clone())),
        UnitForm::StateMachine => {
            spawn_all(units, |unit| UnitFuture::new(work, unit, timeline.clone()))
        }
    }
}

/// Spawns `units` tasks, unit `n` the future `make(n)`, and waits for all of them.
fn spawn_all<F>(units: usize, make: impl Fn(usize) -> F) -> Result<(), StepError>
where
    F: Future<Output = ()> + 'static,
{
    let executor = crate::executor_lane::observed(Executor::builder())
        .stall_watchdog(DEFAULT_STALL_THRESHOLD)
        .build();
    executor.block_on(async {
        let mut tasks = Vec::with_capacity(units);
        for unit in 0..units {
            tasks.push(spawn(make(unit)));
            if unit % SPAWNS_PER_TURN == SPAWNS_PER_TURN - 1 {
                yield_now().await;
            }
        }
        for result in join_all(tasks).await {
            result?;
        }
        Ok(())
    })
}
