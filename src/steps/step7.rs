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

pub const STEP: Step = Step {
    number: 7,
    part: None,
    look_for: "One lane per worker thread, a worker per core: on sleep work every unit is in flight at once, as in step 4; on cpu work (--work cpu) the units compute on every core at once, which step 4's one thread could not.",
    lanes: Lanes::Threads,
    name: "work-stealing",
    what: "every unit a task, on a worker per core",
    run,
    expected_time: |workload, cores| match workload.work.kind {
        WorkKind::Sleep => workload.work.duration,
        WorkKind::Cpu => workload.spread_over(cores),
    },
    note: |_| None,
};

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
