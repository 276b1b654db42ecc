//! `--scale`: how each strategy scales. Every step from 0 to 4 runs at 10, 100, ...,
//! 1,000,000 units of 10 ms, each run in a process of its own (the tour itself, with
//! `--step N --json`), so that its peak memory is its own. A size whose expected time
//! is over the budget is skipped, and said so, rather than run for hours.

use crate::steps::{Step, UnitForm, Workload, STEPS};
use async_scratch::work::Work;
use std::process::Command;
use std::time::Duration;

/// The sizes, a factor of ten apart: a straight line on log–log axes means time (or
/// memory) proportional to a power of the size.
pub const SIZES: [usize; 6] = [10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// Short units, so that the large sizes stay within a budget for the strategies that
/// can reach them at all.
pub const SCALE_UNIT: Duration = Duration::from_millis(10);

/// One strategy at one size.
pub struct Point {
    pub step: &'static Step,
    pub units: usize,
    pub outcome: PointOutcome,
}

pub enum PointOutcome {
    Ran {
        wall: Duration,
        peak_rss_kib: Option<u64>,
    },
    Skipped(Duration),
    Failed(String),
}

/// Runs every strategy at every size up to `up_to`, like `workload` but with
/// [`SCALE_UNIT`] units; `on_point` sees each point as it is measured.
pub fn run(
    workload: &Workload,
    budget: Duration,
    cores: usize,
    up_to: usize,
    mut on_point: impl FnMut(&Point),
) -> Vec<Point> {
    let mut points = Vec::new();
    for step in &STEPS {
        for units in SIZES.into_iter().filter(|&units| units <= up_to) {
            let sized = Workload {
                unit_form: workload.unit_form,
                units,
                work: Work::new(workload.work.kind, SCALE_UNIT),
                workers: workload.workers,
            };
            let expected = (step.expected_time)(&sized, cores);
            let outcome = if expected > budget {
                PointOutcome::Skipped(expected)
            } else {
                run_in_child(step, &sized, budget)
            };
            let point = Point {
                step,
                units,
                outcome,
            };
            on_point(&point);
            points.push(point);
        }
    }
    points
}

fn run_in_child(step: &Step, workload: &Workload, budget: Duration) -> PointOutcome {
    let executable = match std::env::current_exe() {
        Ok(executable) => executable,
        Err(error) => {
            return PointOutcome::Failed(format!("cannot find the tour executable: {error}"))
        }
    };
    let output = Command::new(executable)
        .args(["--json", "--step", &step.short_label()])
        .args(["--units", &workload.units.to_string()])
        .args(["--unit-ms", &workload.work.duration.as_millis().to_string()])
        .args(["--workers", &workload.workers.to_string()])
        .args(["--work", workload.work.kind.name()])
        .args(["--budget-secs", &budget.as_secs().to_string()])
        .args((workload.unit_form == UnitForm::StateMachine).then_some("--unit-future"))
        .output();
    let stdout = match output {
        Ok(output) if output.status.success() => output.stdout,
        Ok(output) => {
            return PointOutcome::Failed(format!("the child exited with {}", output.status))
        }
        Err(error) => return PointOutcome::Failed(format!("cannot start the child: {error}")),
    };
    let line: serde_json::Value = match serde_json::from_slice(&stdout) {
        Ok(line) => line,
        Err(error) => return PointOutcome::Failed(format!("unreadable child output: {error}")),
    };
    match line["wall_ms"].as_f64() {
        Some(wall_ms) => PointOutcome::Ran {
            wall: Duration::from_secs_f64(wall_ms / 1000.0),
            peak_rss_kib: line["peak_rss_kib"].as_u64(),
        },
        None => PointOutcome::Failed(format!("the step did not run: {}", line["reason"])),
    }
}
