//! The tour's output: a table for people, or one JSON object per line for scripts.

use crate::runner::{Measured, Outcome};
use crate::steps::{Step, Workload};
use serde_json::{json, Value};
use std::time::Duration;

/// What speedups are measured against.
#[derive(Clone, Copy, Debug)]
pub enum Baseline {
    /// Step 0 ran in this tour: its measured wall time.
    Measured(Duration),
    /// Step 0 did not run: the sum of the units' nominal times, which is what it takes.
    Nominal(Duration),
}

impl Baseline {
    pub fn wall(self) -> Duration {
        match self {
            Baseline::Measured(wall) | Baseline::Nominal(wall) => wall,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Baseline::Measured(_) => "measured",
            Baseline::Nominal(_) => "nominal",
        }
    }

    fn speedup(self, measured: &Measured) -> f64 {
        self.wall().as_secs_f64() / measured.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `1.23 s` for a second or more, `456 ms` or `0.456 ms` below.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 0.001 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{:.3} ms", seconds * 1000.0)
    }
}

/// `7.7x` below 100, `50893x` from there: a decimal means nothing that far up, and
/// the column stays aligned.
fn format_speedup(speedup: f64) -> String {
    if speedup < 100.0 {
        format!("{speedup:.1}x")
    } else {
        format!("{speedup:.0}x")
    }
}

pub fn header(workload: &Workload, cores: usize) -> String {
    let work = workload.work;
    format!(
        "async-from-scratch tour: {} units x {} ({}), {} workers, on {} cores\n\n\
         {:<5} {:<42} {:>9} {:>8} {:>8} {:>15}",
        workload.units,
        format_duration(work.duration),
        work.kind,
        workload.workers,
        cores,
        "step",
        "what it does",
        "wall",
        "speedup",
        "threads",
        "peak in flight",
    )
}

pub fn row(step: &Step, outcome: &Outcome, baseline: Baseline) -> String {
    let lead = format!("{:<5} {:<42}", step.number, step.what);
    match outcome {
        Outcome::Ran(measured) => format!(
            "{lead} {:>9} {:>8} {:>8} {:>15}",
            format_duration(measured.wall),
            format_speedup(baseline.speedup(measured)),
            measured.threads,
            measured.peak_in_flight,
        ),
        Outcome::Skipped(reason) => format!("{lead} skipped: {reason}"),
        Outcome::Failed(reason) => format!("{lead} FAILED: {reason}"),
    }
}

pub fn footer(baseline: Baseline) -> String {
    let against = match baseline {
        Baseline::Measured(_) => "step 0's measured time".to_string(),
        Baseline::Nominal(wall) => format!(
            "step 0's nominal time, {} (units x unit time; step 0 did not run)",
            format_duration(wall)
        ),
    };
    format!(
        "\nspeedup: over {against}.\n\
         threads: distinct threads that ran a unit.\n\
         peak in flight: most units running at the same instant, counted from the spans they recorded."
    )
}

pub fn json_line(
    step: &Step,
    workload: &Workload,
    outcome: &Outcome,
    baseline: Baseline,
) -> String {
    let mut line = json!({
        "step": step.number,
        "name": step.name,
        "units": workload.units,
        "unit_ms": workload.work.duration.as_millis() as u64,
        "work": workload.work.kind.name(),
        "workers": workload.workers,
    });
    let fields = match outcome {
        Outcome::Ran(measured) => json!({
            "status": "ran",
            "wall_ms": measured.wall.as_secs_f64() * 1000.0,
            "speedup": baseline.speedup(measured),
            "speedup_baseline": baseline.name(),
            "threads": measured.threads,
            "peak_in_flight": measured.peak_in_flight,
            "units_done": measured.units_done,
        }),
        Outcome::Skipped(reason) => json!({ "status": "skipped", "reason": reason }),
        Outcome::Failed(reason) => json!({ "status": "failed", "reason": reason }),
    };
    merge(&mut line, fields);
    line.to_string()
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}
