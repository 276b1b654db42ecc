//! Step 3: run all. Every unit is spawned first, then all are waited for together, so
//! the pool is busy on every worker again, and each result (or failure) comes back.

use super::{Lanes, Step, StepError, Workload};
use async_scratch::pool::ThreadPool;
use async_scratch::run_all::run_all;
use async_scratch::timeline::Timeline;

pub const STEP: Step = Step {
    number: 3,
    part: None,
    look_for: "As full as step 1: every job is spawned first and all are waited for together, so no worker waits for the caller.",
    lanes: Lanes::Threads,
    name: "run-all",
    what: "spawn every task, then wait for all",
    run,
    expected_time: Workload::pool_time,
    note: |_| None,
};

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let pool = ThreadPool::new(workload.workers)?;
    let jobs = (0..workload.units).map(|unit| {
        let (work, timeline) = (workload.work, timeline.clone());
        move || work.run_recorded(unit, &timeline)
    });
    for result in run_all(&pool, jobs) {
        result?;
    }
    Ok(())
}
