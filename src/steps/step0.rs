//! Step 0: the baseline. A plain loop runs the units one after another on the main
//! thread, so the wall time is the sum of every unit's time.

use super::{Lanes, Step, StepError, Workload};
use async_scratch::timeline::Timeline;

pub const STEP: Step = Step {
    number: 0,
    part: None,
    look_for: "One lane: each unit starts where the one before it ends, so the wall time is the sum of every unit.",
    lanes: Lanes::Threads,
    name: "sequential",
    what: "a loop, one unit after another",
    run,
    expected_time: |workload, _cores| workload.sequential_time(),
    note: |_| None,
};

fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    for unit in 0..workload.units {
        workload.work.run_recorded(unit, timeline);
    }
    Ok(())
}
