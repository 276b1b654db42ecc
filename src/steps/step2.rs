//! Step 2: tasks. Each unit is spawned as a task and waited for before the next one is
//! spawned, as the tutorial does. A task gives a result (or the job's panic) back, but
//! waiting for each one in turn means only one unit ever runs: step 0's time again.

use super::{Lanes, Step, StepError, Workload};
use async_scratch::pool::ThreadPool;
use async_scratch::timeline::Timeline;

pub const STEP: Step = Step {
    number: 2,
    part: None,
    look_for: "The units run on pool threads, yet never two at once: waiting for each task before spawning the next is sequential again.",
    lanes: Lanes::Threads,
    name: "tasks",
    what: "spawn a task, wait for it, then the next",
    run,
    expected_time: |workload, _cores| workload.sequential_time(),
    note: |_| None,
};

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let pool = ThreadPool::new(workload.workers)?;
    for unit in 0..workload.units {
        let (work, timeline) = (workload.work, timeline.clone());
        let task = pool.spawn(move || work.run_recorded(unit, &timeline));
        task.wait()?; // waiting here, before the next spawn, is what makes it sequential
    }
    Ok(())
}
