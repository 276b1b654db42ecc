//! Step 1: a thread pool. The main thread hands every unit to the pool as a job, and
//! the workers run them side by side. Shutting the pool down waits for the queue to
//! drain, so when `run` returns every unit is done.

use super::{Lanes, Step, StepError, Workload};
use async_scratch::pool::ThreadPool;
use async_scratch::timeline::Timeline;

pub const STEP: Step = Step {
    number: 1,
    part: None,
    look_for: "One lane per worker, each taking the next job as soon as it is free: as many units at a time as there are workers.",
    lanes: Lanes::Threads,
    name: "thread-pool",
    what: "every unit a job on a thread pool",
    run,
    expected_time: Workload::pool_time,
    note: |_| None,
};

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let pool = ThreadPool::new(workload.workers)?;
    for unit in 0..workload.units {
        let (work, timeline) = (workload.work, timeline.clone());
        pool.execute(move || work.run_recorded(unit, &timeline));
    }
    pool.shutdown(); // finishes every queued unit, then joins the workers
    Ok(())
}
