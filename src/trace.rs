//! `--trace FILE`: every span of every step as Chrome trace-event JSON. Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open it as it is, so a learner can zoom
//! into any unit with tools they already know.
//!
//! The format: a `traceEvents` array of complete events (`"ph": "X"`, start `ts` and
//! duration `dur` in microseconds), one process per step (`pid` = step number) and one
//! track per lane (`tid`: a thread, or a task in step 4), named by metadata events.

use crate::steps::Step;
use async_scratch::timeline::Span;
use serde_json::{json, Value};
use std::path::Path;

/// A step that ran, with its spans.
pub type StepSpans<'a> = (&'a Step, &'a [Span]);

/// Writes the trace of `steps` to `path`.
pub fn write_trace(path: &Path, steps: &[StepSpans<'_>]) -> Result<(), String> {
    let text = trace(steps).to_string();
    std::fs::write(path, text)
        .map_err(|error| format!("cannot write the trace to {}: {error}", path.display()))
}

fn trace(steps: &[StepSpans<'_>]) -> Value {
    let mut events = Vec::new();
    for &(step, spans) in steps {
        events.push(metadata(
            "process_name",
            step,
            None,
            format!("step {}: {}", step.number, step.what),
        ));
        for &lane in step.spans_by_lane(spans).keys() {
            events.push(metadata(
                "thread_name",
                step,
                Some(lane),
                step.lane_name(lane),
            ));
        }
        events.extend(spans.iter().map(|span| unit_event(step, span)));
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

fn metadata(kind: &str, step: &Step, lane: Option<usize>, name: String) -> Value {
    let mut event =
        json!({ "name": kind, "ph": "M", "pid": step.number, "args": { "name": name } });
    if let Some(lane) = lane {
        event["tid"] = json!(lane);
    }
    event
}

fn unit_event(step: &Step, span: &Span) -> Value {
    json!({
        "name": format!("unit {}", span.unit),
        "cat": format!("step {}", step.number),
        "ph": "X",
        "pid": step.number,
        "tid": step.lane_of(span),
        "ts": span.start.as_secs_f64() * 1e6,
        "dur": (span.end - span.start).as_secs_f64() * 1e6,
    })
}
