//! Runs one step and measures it: the wall time from the outside, and everything else
//! (threads used, units in flight at once) counted from the spans the units recorded.

use crate::executor_lane::{self, ExecutorLane};
use crate::progress;
use crate::steps::{Step, Workload};
use async_scratch::timeline::{peak_in_flight, threads_used, Span, Timeline};
use std::time::{Duration, Instant};

/// What the runner needs to know besides the workload.
pub struct Settings {
    /// A step expected to run longer than this is skipped, not run for hours.
    pub budget: Duration,
    /// The machine's cores, for estimating CPU-bound steps.
    pub cores: usize,
    /// Whether a progress bar may be drawn (standard error is a terminal, no `--json`).
    pub progress: bool,
}

/// What one run of a step measured.
#[derive(Clone, Debug)]
pub struct Measured {
    pub wall: Duration,
    pub threads: usize,
    pub peak_in_flight: usize,
    /// Units that recorded a span: every unit, unless the step failed part-way.
    pub units_done: usize,
    /// Every unit's span, for the pictures and the trace.
    pub spans: Vec<Span>,
    /// The executor thread's busy and parked time, for a step that runs one (step 4).
    pub executor_lane: Option<ExecutorLane>,
}

/// How a step's turn ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Ran(Measured),
    Skipped(String),
    Failed(String),
}

/// The cores this machine offers the tour (1 if the OS will not say).
pub fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run_step(step: &Step, workload: &Workload, settings: &Settings) -> Outcome {
    let expected = (step.expected_time)(workload, settings.cores);
    if expected > settings.budget {
        return Outcome::Skipped(format!(
            "would take about {}, over the budget of {} (raise it with --budget-secs)",
            crate::words::format_duration(expected),
            crate::words::format_duration(settings.budget),
        ));
    }
    let bar = progress::bar(step, workload.units, expected, settings.progress);
    let observer_bar = bar.clone();
    let timeline = Timeline::with_observer(move |_span| observer_bar.inc(1));

    let started = Instant::now();
    let (result, executor_lane) =
        executor_lane::collect(&timeline, || (step.run)(workload, &timeline));
    let wall = started.elapsed();
    bar.finish_and_clear();

    match result {
        Ok(()) => {
            let spans = timeline.spans();
            Outcome::Ran(Measured {
                wall,
                threads: threads_used(&spans),
                peak_in_flight: peak_in_flight(&spans),
                units_done: spans.len(),
                spans,
                executor_lane,
            })
        }
        Err(error) => Outcome::Failed(error.to_string()),
    }
}
