//! Step 4b: wakers and park. A unit's future is polled when its waker queued it; with
//! nothing queued, the thread parks until the earliest timer's deadline. See
//! `async_scratch::park_executor`.

use super::boxed_units;
use crate::steps::{StepError, Workload};
use async_scratch::park_executor;
use async_scratch::timeline::Timeline;

pub fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    park_executor::run(boxed_units(workload, timeline));
    Ok(())
}
