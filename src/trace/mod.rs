//! `--trace FILE`: every span of every step as Chrome trace-event JSON. Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open it as it is, so a learner can zoom
//! into any unit with tools they already know.
//!
//! The format: a `traceEvents` array of complete events (`"ph": "X"`, start `ts` and
//! duration `dur` in microseconds), one process per row of the table (`pid` = the row, from 1: steps 0 to 3 are 1 to
//! 4, step 4's versions 4a to 4c are 5 to 7, step 6's rows 8 and 9) and
//! one track per lane (`tid`: a thread, or a task in step 4), named by metadata events.
//!
//! Each step's spans are measured from that step's own start, so laid on one time axis
//! as they are, every step would begin at zero, on top of the others. The trace puts
//! the steps one after another instead, in the order they ran: each starts a little
//! after the previous one's last unit ends.
//!
//! With `--explain`, the trace holds that run's executor events instead (see
//! [`explained`]).

mod explained;

pub use explained::write_explained;

use crate::steps::{table_position, Step};
use async_scratch::timeline::Span;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Empty time between one step's last unit and the next step's start: without it the
/// two would touch, and in Perfetto the boundary between steps would not show.
const GAP_BETWEEN_STEPS: Duration = Duration::from_millis(1);

/// A step that ran, with its spans.
pub type StepSpans<'a> = (&'a Step, &'a [Span]);

/// Writes the trace of `steps` to `path`.
pub fn write_trace(path: &Path, steps: &[StepSpans<'_>]) -> Result<(), String> {
    write_events(path, trace_events(steps))
}

/// Writes `events` to `path` as a whole trace.
fn write_events(path: &Path, events: Vec<Value>) -> Result<(), String> {
    let text = json!({ "traceEvents": events, "displayTimeUnit": "ms" }).to_string();
    std::fs::write(path, text)
        .map_err(|error| format!("cannot write the trace to {}: {error}", path.display()))
}

/// A duration as the trace's timestamps count: microseconds, fractions kept.
fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn trace_events(steps: &[StepSpans<'_>]) -> Vec<Value> {
    let mut events = Vec::new();
    let mut step_start = Duration::ZERO;
    for &(step, spans) in steps {
        events.push(metadata(
            "process_name",
            step,
            None,
            format!("step {}: {}", step.label(), step.what),
        ));
        for &lane in step.spans_by_lane(spans).keys() {
            events.push(metadata(
                "thread_name",
                step,
                Some(lane),
                step.lane_name(lane),
            ));
        }
        events.extend(spans.iter().map(|span| unit_event(step, span, step_start)));
        step_start += last_end(spans) + GAP_BETWEEN_STEPS;
    }
    events
}

/// When the last of `spans` ended, from its step's start (zero for no spans).
fn last_end(spans: &[Span]) -> Duration {
    spans.iter().map(|span| span.end).max().unwrap_or_default()
}

/// The trace's process for `step`: its row of the table, numbered from 1 (steps 0 to
/// 3 are 1 to 4, 4a to 4c are 5 to 7, step 6's rows 8 and 9). From 1, because in the
/// system traces these viewers usually show, pid 0 is Linux's idle task, and step 0
/// should not look like it.
fn pid(step: &Step) -> u32 {
    u32::try_from(table_position(step)).map_or(0, |row| row + 1)
}

fn metadata(kind: &str, step: &Step, lane: Option<usize>, name: String) -> Value {
    let mut event = json!({ "name": kind, "ph": "M", "pid": pid(step), "args": { "name": name } });
    if let Some(lane) = lane {
        event["tid"] = json!(lane);
    }
    event
}

/// One unit's complete event, `step_start` being where its step begins in the trace.
fn unit_event(step: &Step, span: &Span, step_start: Duration) -> Value {
    json!({
        "name": format!("unit {}", span.unit),
        "cat": format!("step {}", step.label()),
        "ph": "X",
        "pid": pid(step),
        "tid": step.lane_of(span),
        "ts": micros(step_start + span.start),
        "dur": micros(span.end - span.start),
    })
}
