//! Step 4: coroutines. Every unit is an `async fn` spawned as a task on one
//! single-threaded executor; `join_all` waits for all of them, as `run_all` did for
//! threads. While a unit awaits its timer, the thread runs the others, so every unit
//! is in flight at once on one thread. (A `cpu` unit cannot be suspended, so those run
//! one at a time: coroutines share a thread, they do not add cores.)

use super::{Step, StepError, Workload};
use async_scratch::coroutine::run_unit;
use async_scratch::executor::{spawn, Executor};
use async_scratch::join_all::join_all;
use async_scratch::timeline::Timeline;
use async_scratch::work::WorkKind;

pub const STEP: Step = Step {
    number: 4,
    name: "coroutines",
    what: "every unit a coroutine task, on one thread",
    run,
    expected_time: |workload, _cores| match workload.work.kind {
        WorkKind::Sleep => workload.work.duration,
        WorkKind::Cpu => workload.sequential_time(),
    },
};

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let executor = Executor::new();
    executor.block_on(async {
        let tasks =
            (0..workload.units).map(|unit| spawn(run_unit(workload.work, unit, timeline.clone())));
        for result in join_all(tasks.collect::<Vec<_>>()).await {
            result?;
        }
        Ok(())
    })
}
