//! Step 4a: the busy-polling loop. Every unit's future is polled, all of them, again
//! and again, until each has finished; the waker does nothing, since nobody needs to
//! be told what to poll next. See `async_scratch::busy_executor`.

use super::boxed_units;
use crate::steps::{StepError, Workload};
use async_scratch::busy_executor;
use async_scratch::timeline::Timeline;

pub fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    busy_executor::run(boxed_units(workload, timeline));
    Ok(())
}
