//! Runs one step and measures it: the wall time and the CPU time from the outside, and
//! everything else (threads used, units in flight at once) counted from the spans the
//! units recorded.

use crate::executor_lane::{self, ExecutorLane};
use crate::progress;
use crate::steps::{take_scheduler_counts, SchedulerCounts, Step, Workload};
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
    /// The CPU time the process used while the step ran, user and system (see
    /// [`process_cpu_time`]).
    pub cpu: Duration,
    pub threads: usize,
    pub peak_in_flight: usize,
    /// Units that recorded a span: every unit, unless the step failed part-way.
    pub units_done: usize,
    /// Every unit's span, for the pictures and the trace.
    pub spans: Vec<Span>,
    /// The executor thread's busy and parked time, for a step that runs one (step 4).
    pub executor_lane: Option<ExecutorLane>,
    /// How the workers shared the units, for a step on the runtime (step 7).
    pub scheduler: Option<SchedulerCounts>,
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
    let cpu_before = process_cpu_time();
    let (result, executor_lane) =
        executor_lane::collect(&timeline, || (step.run)(workload, &timeline));
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    let scheduler = take_scheduler_counts();
    let wall = started.elapsed();
    bar.finish_and_clear();

    match result {
        Ok(()) => {
            let spans = timeline.spans();
            Outcome::Ran(Measured {
                wall,
                cpu,
                threads: threads_used(&spans),
                peak_in_flight: peak_in_flight(&spans),
                units_done: spans.len(),
                spans,
                executor_lane,
                scheduler,
            })
        }
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

/// The CPU time this process has used so far, user and system, from
/// `getrusage(RUSAGE_SELF)`; zero if the OS will not say.
///
/// `RUSAGE_SELF` counts every thread of the process, which is what a step's cost is:
/// a pool's workers, an executor's watchdog, step 6's server thread. (Only child
/// processes are left out, and the table's steps start none.) A thread that has ended
/// still counts: its time is added to the process's when it exits.
pub fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `getrusage` writes one `rusage` through the pointer, which points to a
    // live, writable `rusage` of our own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    as_duration(usage.ru_utime) + as_duration(usage.ru_stime)
}

fn as_duration(time: libc::timeval) -> Duration {
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let micros = u64::try_from(time.tv_usec).unwrap_or(0);
    Duration::from_secs(seconds) + Duration::from_micros(micros)
}

#[cfg(test)]
impl Measured {
    /// A measurement made from spans alone, as the presentation modules' tests need:
    /// the wall time is the last span's end, and no CPU time was counted.
    pub fn from_spans(spans: Vec<Span>, executor_lane: Option<ExecutorLane>) -> Measured {
        Measured {
            wall: spans.iter().map(|span| span.end).max().unwrap_or_default(),
            cpu: Duration::ZERO,
            threads: 1,
            peak_in_flight: peak_in_flight(&spans),
            units_done: spans.len(),
            spans,
            executor_lane,
            scheduler: None,
        }
    }
}
