//! Step 7: many cores. Every unit is a task again, as in step 4, but on a runtime of
//! worker threads, one per core, that steal work from one another. Step 4's one
//! thread could wait on every unit at once but compute on one core only; here a
//! waiting unit still costs no thread, and a computing one gets a core of its own.
//! Each worker keeps its own queue; one that runs out steals half of another's, and
//! parks when there is nothing to steal. The table's row says how often each happened.

use super::{record_scheduler_counts, Lanes, SchedulerCounts, Step, StepError, Workload};
use async_scratch::coroutine::run_unit;
use async_scratch::join_all::join_all;
use async_scratch::runtime::Runtime;
use async_scratch::timeline::Timeline;
use async_scratch::work::WorkKind;
use std::time::Duration;

pub const STEP: Step = Step {
    number: 7,
    part: None,
    look_for: "One lane per worker thread, a worker per core: on sleep work every unit is in flight at once, as in step 4; on cpu work (--work cpu) the units compute on every core at once, which step 4's one thread could not.",
    lanes: Lanes::Threads,
    name: "work-stealing",
    what: "every unit a task, on a worker per core",
    run,
    expected_time,
    note: |_| None,
};

/// What one unit costs step 7 beyond its own time, on a busy machine: spawning its
/// task from outside (through the injector), its polls on a worker, its timer in the
/// shared queue, its span, its join.
///
/// Measured on the 2-core VM with `tour --step 7 --units 1000000 --unit-ms 1` (release
/// build), the process's wall time under `/usr/bin/time`: 1.3 to 2.5 s quiet (another
/// helper's build running), 3.4 to 4.3 s with both cores kept busy by two shell loops;
/// an earlier run on a loaded machine took 8.5 s. So 6 µs a unit: above the busy
/// figures measured here and below the worst seen. The budget is there to refuse a run
/// far too long, and a busy machine is where it is most often run.
const PER_TASK_COST: Duration = Duration::from_micros(6);

/// How long step 7 takes: one unit's time when units wait (they all wait at once), the
/// units spread over the cores when they compute; and what every unit costs the
/// runtime on top ([`PER_TASK_COST`]).
fn expected_time(workload: &Workload, cores: usize) -> Duration {
    let units = match workload.work.kind {
        WorkKind::Sleep => workload.work.duration,
        WorkKind::Cpu => workload.spread_over(cores),
    };
    units.saturating_add(workload.task_costs(PER_TASK_COST))
}

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let runtime = Runtime::new().map_err(StepError::Runtime)?;
    let work = workload.work;
    let outcome = runtime.block_on(async {
        // Spawned from outside the workers: each goes through the shared injector, and
        // the workers take them from there and from one another.
        let tasks =
            (0..workload.units).map(|unit| runtime.spawn(run_unit(work, unit, timeline.clone())));
        let tasks: Vec<_> = tasks.collect();
        for result in join_all(tasks).await {
            result?;
        }
        Ok(())
    });
    let stats = runtime.stats();
    record_scheduler_counts(SchedulerCounts {
        workers: stats.workers,
        steals: stats.steals,
        parks: stats.parks,
    });
    outcome
}
