//! The one JSON line a measured run prints, and reading it back.
//!
//! `workload` prints it; `compare` reads it from each child's standard output. Both
//! sides live here so that they cannot drift apart. A line looks like
//!
//! ```text
//! {"ms":381.202,"runtime":"tokio","tasks":1000000,"workload":"spawn"}
//! ```
//!
//! (keys in alphabetical order), with `bytes_per_task` (or `bytes_per_connection`)
//! in place of `ms` for the memory workloads.

use crate::workload::Workload;
use serde_json::{json, Value};

/// Figures are rounded to three decimals, a microsecond or a thousandth of a byte:
/// finer digits are noise, and they make a line hard to read.
const ROUNDING: f64 = 1000.0;

/// The result line of one run of `workload` on the runtime named `runtime`.
pub fn format(runtime: &str, workload: Workload, value: f64) -> String {
    let mut line = json!({
        "runtime": runtime,
        "workload": workload.as_str(),
        "tasks": workload.tasks(),
    });
    line[workload.unit().json_key()] = json!((value * ROUNDING).round() / ROUNDING);
    line.to_string()
}

/// The figure in a child's standard output: its last line must be the result of
/// `workload` on `runtime`, with a finite, non-negative figure in the right unit.
///
/// Anything else is an error that says what was wrong, quoting the line.
pub fn parse(output: &str, runtime: &str, workload: Workload) -> Result<f64, String> {
    let Some(line) = output.lines().map(str::trim).rfind(|line| !line.is_empty()) else {
        return Err("printed nothing".to_string());
    };
    let garbage = |why: &str| format!("printed {why}: `{line}`");
    let value: Value = serde_json::from_str(line).map_err(|_| garbage("no JSON"))?;
    if value["runtime"] != runtime || value["workload"] != workload.as_str() {
        return Err(garbage("the result of another run"));
    }
    let key = workload.unit().json_key();
    match value[key].as_f64() {
        Some(figure) if figure.is_finite() && figure >= 0.0 => Ok(figure),
        _ => Err(garbage(&format!("no valid `{key}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `format` writes, `parse` reads back, for a figure in either unit.
    #[test]
    fn a_line_round_trips() {
        for (workload, figure) in [(Workload::Spawn, 381.202), (Workload::SleepBytes, 249.0)] {
            let line = format("smol", workload, figure);
            assert_eq!(parse(&line, "smol", workload), Ok(figure));
        }
    }

    /// Figures keep three decimals.
    #[test]
    fn figures_are_rounded_to_three_decimals() {
        let line = format("tokio", Workload::Chain, 15.123_456_7);
        assert_eq!(parse(&line, "tokio", Workload::Chain), Ok(15.123));
    }

    /// Lines before the last (a warning, say) are ignored.
    #[test]
    fn only_the_last_line_counts() {
        let output = format!("warming up\n{}\n\n", format("tokio", Workload::Chain, 15.5));
        assert_eq!(parse(&output, "tokio", Workload::Chain), Ok(15.5));
    }

    /// Garbage, another run's result, a figure in the wrong unit or a negative one
    /// are each refused, with the line quoted.
    #[test]
    fn anything_else_is_refused() {
        let chain = format("tokio", Workload::Chain, 15.5);
        let refused = [
            ("", "tokio", Workload::Chain, "printed nothing"),
            ("Segmentation fault", "tokio", Workload::Chain, "no JSON"),
            (chain.as_str(), "smol", Workload::Chain, "another run"),
            (chain.as_str(), "tokio", Workload::Spawn, "another run"),
            (
                r#"{"runtime":"tokio","workload":"chain","bytes_per_task":3}"#,
                "tokio",
                Workload::Chain,
                "no valid `ms`",
            ),
            (
                r#"{"runtime":"tokio","workload":"chain","ms":-1}"#,
                "tokio",
                Workload::Chain,
                "no valid `ms`",
            ),
        ];
        for (output, runtime, workload, why) in refused {
            let error = parse(output, runtime, workload).unwrap_err();
            assert!(error.contains(why), "{output:?}: {error}");
        }
    }
}
