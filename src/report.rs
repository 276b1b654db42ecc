//! The tour's output: a table for people, or one JSON object per line for scripts.

use crate::memory;
use crate::runner::{Measured, Outcome};
use crate::steps::step5::{Attempt, Case};
use crate::steps::step6::many::ManyConnections;
use crate::steps::{SchedulerCounts, Step, UnitForm, Workload};
use crate::words::{count, format_duration, wrap};
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
    fn wall(self) -> Duration {
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

    /// How many times faster than the baseline `measured` was.
    pub fn speedup(self, measured: &Measured) -> f64 {
        self.wall().as_secs_f64() / measured.wall.as_secs_f64().max(f64::MIN_POSITIVE)
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
    let form = match workload.unit_form {
        UnitForm::AsyncFn => "",
        UnitForm::StateMachine => {
            "\nstep 4's unit: UnitFuture, the hand-written state machine (--unit-future)"
        }
    };
    format!(
        "async-from-scratch tour: {} x {} ({}), {}, on {}{form}\n\n\
         {:<5} {:<42} {:>9} {:>9} {:>8} {:>8} {:>15}",
        count(workload.units, "unit"),
        format_duration(work.duration),
        work.kind,
        count(workload.workers, "worker"),
        count(cores, "core"),
        "step",
        "what it does",
        "wall",
        "cpu",
        "speedup",
        "threads",
        "peak in flight",
    )
}

pub fn row(step: &Step, outcome: &Outcome, baseline: Baseline) -> String {
    let lead = format!("{:<5} {:<42}", step.short_label(), step.what);
    match outcome {
        Outcome::Ran(measured) => {
            let row = format!(
                "{lead} {:>9} {:>9} {:>8} {:>8} {:>15}",
                format_duration(measured.wall),
                format_duration(measured.cpu),
                format_speedup(baseline.speedup(measured)),
                measured.threads,
                measured.peak_in_flight,
            );
            match &measured.scheduler {
                Some(counts) => format!(
                    "{row}
      {}",
                    scheduler_words(counts)
                ),
                None => row,
            }
        }
        Outcome::Skipped(reason) => format!("{lead} skipped: {reason}"),
        Outcome::Failed(reason) => format!("{lead} FAILED: {reason}"),
    }
}

/// Step 7's counts, in words, for the line under its row and for the report.
pub fn scheduler_words(counts: &SchedulerCounts) -> String {
    format!(
        "its {}: {} (an idle worker took half of another's queue), {} (nothing to run or steal)",
        count(counts.workers, "worker"),
        count(
            usize::try_from(counts.steals).unwrap_or(usize::MAX),
            "steal"
        ),
        count(usize::try_from(counts.parks).unwrap_or(usize::MAX), "park"),
    )
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
        "\ncpu: CPU time the process used while the step ran, user + system, every thread.\n\
         speedup: over {against}.\n\
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
            "cpu_ms": measured.cpu.as_secs_f64() * 1000.0,
            "speedup": baseline.speedup(measured),
            "speedup_baseline": baseline.name(),
            "threads": measured.threads,
            "peak_in_flight": measured.peak_in_flight,
            "units_done": measured.units_done,
            "peak_rss_kib": memory::peak_rss_kib(),
        }),
        Outcome::Skipped(reason) => json!({ "status": "skipped", "reason": reason }),
        Outcome::Failed(reason) => json!({ "status": "failed", "reason": reason }),
    };
    merge(&mut line, fields);
    if let Outcome::Ran(Measured {
        scheduler: Some(counts),
        ..
    }) = outcome
    {
        line["worker_threads"] = json!(counts.workers);
        line["steals"] = json!(counts.steals);
        line["parks"] = json!(counts.parks);
    }
    if step.number == 4 {
        line["version"] = json!(step.short_label());
        line["unit_form"] = json!(workload.unit_form.name());
    }
    line.to_string()
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

pub fn failures_header() -> String {
    "Step 5: failure points, each tried with threads and with coroutines, then fixed\n\
     (a run that hangs for good is run in a child process and stopped after a bound)"
        .to_string()
}

/// Width of the label column of a failure case.
const LABEL_WIDTH: usize = 12;

pub fn failure_text(case: &Case) -> String {
    let mut text = format!("\n{}. {}\n", case.number, case.title);
    for attempt in &case.attempts {
        text.push_str(&attempt_text(attempt));
    }
    let indent = " ".repeat(3 + LABEL_WIDTH + 1);
    text.push_str(&format!(
        "   {:<LABEL_WIDTH$} {}",
        "why",
        wrap(case.why, &indent)
    ));
    text
}

fn attempt_text(attempt: &Attempt) -> String {
    let indent = " ".repeat(3 + LABEL_WIDTH + 1);
    let mut text = format!(
        "   {:<LABEL_WIDTH$} {}\n",
        attempt.label,
        wrap(&attempt.what, &indent)
    );
    let outcome = if attempt.completed {
        format!("completed in {}", format_duration(attempt.wall))
    } else {
        format!(
            "did NOT complete: stopped after {}",
            format_duration(attempt.wall)
        )
    };
    text.push_str(&format!("{indent}-> {outcome}\n"));
    if let Some(after) = attempt.reported_after {
        text.push_str(&format!(
            "{indent}   first report after {}:\n",
            format_duration(after)
        ));
    }
    for line in &attempt.report {
        for part in line.lines() {
            text.push_str(&format!("{indent}   | {part}\n"));
        }
    }
    text
}

pub fn failure_json(case: &Case) -> String {
    let attempts: Vec<Value> = case
        .attempts
        .iter()
        .map(|attempt| {
            json!({
                "label": attempt.label,
                "what": attempt.what,
                "wall_ms": attempt.wall.as_secs_f64() * 1000.0,
                "completed": attempt.completed,
                "detected": !attempt.report.is_empty(),
                "report": attempt.report,
                "reported_after_ms": attempt.reported_after.map(|after| after.as_secs_f64() * 1000.0),
            })
        })
        .collect();
    json!({
        "step": 5,
        "case": case.number,
        "name": case.name,
        "title": case.title,
        "attempts": attempts,
        "why": case.why,
    })
    .to_string()
}

pub fn many_connections_header(asked: usize) -> String {
    wrap(
        &format!(
            "Step 6: many connections, each a request to the loopback server, all held open \
             at once by coroutines on one thread ({asked} asked for)"
        ),
        "",
    )
}

/// The many-connections run, under its header: what ran, its memory, and why fewer
/// ran than were asked for, if they did.
pub fn many_connections_text(outcome: &Result<ManyConnections, String>) -> String {
    let run = match outcome {
        Ok(run) => run,
        Err(reason) => return format!("   FAILED: {}", wrap(reason, "           ")),
    };
    let mut text = format!(
        "   {} in {} on {}, peak in flight {}",
        count(run.connections, "connection"),
        format_duration(run.wall),
        count(run.threads, "thread"),
        run.peak_in_flight,
    );
    if let (Some(growth), Some(each)) = (run.rss_growth_kib, run.bytes_per_connection()) {
        let memory = format!(
            "{:.1} MiB more resident with all open, about {} per connection (both ends: \
             the client's and the server's)",
            growth as f64 / 1024.0,
            format_bytes(each),
        );
        text.push_str(&format!("\n   memory: {}", wrap(&memory, "           ")));
    }
    if let Some(note) = run.limit_note() {
        text.push_str(&format!("\n   note: {}", wrap(&note, "         ")));
    }
    text
}

/// `2.4 KiB` from 1,024 bytes up, `512 B` below.
fn format_bytes(bytes: u64) -> String {
    if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

pub fn many_connections_json(asked: usize, outcome: &Result<ManyConnections, String>) -> String {
    let mut line = json!({
        "step": 6,
        "name": "many-connections",
        "connections_asked": asked,
    });
    let fields = match outcome {
        Ok(run) => json!({
            "status": "ran",
            "connections": run.connections,
            "open_files_limit": run.open_files.soft,
            "wall_ms": run.wall.as_secs_f64() * 1000.0,
            "threads": run.threads,
            "peak_in_flight": run.peak_in_flight,
            "rss_growth_kib": run.rss_growth_kib,
            "bytes_per_connection": run.bytes_per_connection(),
        }),
        Err(reason) => json!({ "status": "failed", "reason": reason }),
    };
    merge(&mut line, fields);
    if let Ok(Some(note)) = outcome.as_ref().map(ManyConnections::limit_note) {
        line["note"] = json!(note);
    }
    line.to_string()
}

/// One `--scale` point, as a line of the terminal output.
pub fn scale_row(point: &crate::scaling::Point) -> String {
    use crate::scaling::PointOutcome;
    let lead = format!("  step {} at {:>9} units:", point.step.number, point.units);
    match &point.outcome {
        PointOutcome::Ran { wall, peak_rss_kib } => {
            let memory = peak_rss_kib.map_or(String::new(), |kib| {
                format!(", peak memory {} MiB", kib / 1024)
            });
            format!("{lead} {}{memory}", format_duration(*wall))
        }
        PointOutcome::Skipped(expected) => {
            format!("{lead} skipped (about {})", format_duration(*expected))
        }
        PointOutcome::Failed(reason) => format!("{lead} FAILED: {reason}"),
    }
}

/// One `--scale` point as a JSON line.
pub fn scale_json(point: &crate::scaling::Point) -> String {
    use crate::scaling::PointOutcome;
    let mut line = json!({ "scale": true, "step": point.step.number, "units": point.units });
    let fields = match &point.outcome {
        PointOutcome::Ran { wall, peak_rss_kib } => {
            json!({ "status": "ran", "wall_ms": wall.as_secs_f64() * 1000.0, "peak_rss_kib": peak_rss_kib })
        }
        PointOutcome::Skipped(expected) => {
            json!({ "status": "skipped", "expected_ms": expected.as_secs_f64() * 1000.0 })
        }
        PointOutcome::Failed(reason) => json!({ "status": "failed", "reason": reason }),
    };
    merge(&mut line, fields);
    line.to_string()
}
