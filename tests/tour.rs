//! The tour, run as a user runs it: its `--json` output, the concurrency each step
//! reaches (counted from spans, not timed), and its answers to bad options.

use serde_json::Value;
use std::process::{Command, Output};

fn tour(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tour"))
        .args(args)
        .output()
        .expect("the tour binary runs")
}

/// Runs the tour with `--json` and parses each line of its output.
fn tour_json(args: &[&str]) -> Vec<Value> {
    let output = tour(&[args, &["--json"]].concat());
    assert!(output.status.success(), "tour failed: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

/// Every step reports the documented fields, and its peak in flight is what the step
/// is about: 1 for the sequential steps 0 and 2, all the workers for steps 1 and 3, and
/// every unit, on one thread, for the coroutines of step 4.
#[test]
fn json_reports_each_steps_concurrency() {
    let lines = tour_json(&["--units", "12", "--unit-ms", "20", "--workers", "4"]);
    assert_eq!(lines.len(), 5);
    for (line, step) in lines.iter().zip(0..) {
        assert_eq!(line["step"], step);
        for field in [
            "name",
            "wall_ms",
            "speedup",
            "threads",
            "peak_in_flight",
            "units",
            "unit_ms",
            "work",
        ] {
            assert!(
                !line[field].is_null(),
                "step {step} lacks `{field}`: {line}"
            );
        }
        assert_eq!(line["units"], 12);
        assert_eq!(line["units_done"], 12);
        assert_eq!(line["unit_ms"], 20);
        assert_eq!(line["work"], "sleep");
        let expected_peak = match step {
            0 | 2 => 1, // one unit after another
            1 | 3 => 4, // one unit per worker
            _ => 12,    // every coroutine at once
        };
        assert_eq!(line["peak_in_flight"], expected_peak, "step {step}: {line}");
    }
    assert_eq!(
        lines[0]["threads"], 1,
        "step 0 runs on the main thread only"
    );
    assert_eq!(
        lines[4]["threads"], 1,
        "step 4 runs its coroutines on one thread"
    );
}

/// With fewer units than workers, the pool steps can only have `units` in flight.
#[test]
fn peak_is_bounded_by_units_when_units_are_few() {
    let lines = tour_json(&["--units", "3", "--unit-ms", "20", "--workers", "8"]);
    assert_eq!(lines[1]["peak_in_flight"], 3);
    assert_eq!(lines[3]["peak_in_flight"], 3);
}

/// `--step N` runs just that step; `--work cpu` is carried through.
#[test]
fn a_single_step_can_be_run_alone() {
    let lines = tour_json(&[
        "--step",
        "3",
        "--units",
        "4",
        "--unit-ms",
        "5",
        "--work",
        "cpu",
    ]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["step"], 3);
    assert_eq!(lines[0]["work"], "cpu");
    assert_eq!(lines[0]["speedup_baseline"], "nominal");
}

/// A step that would run for hours is skipped with its reason, not run.
#[test]
fn an_over_budget_step_is_skipped_with_a_reason() {
    let lines = tour_json(&["--step", "0", "--units", "1000000", "--unit-ms", "1000"]);
    assert_eq!(lines[0]["status"], "skipped");
    let reason = lines[0]["reason"].as_str().unwrap();
    assert!(reason.contains("over the budget"), "{reason}");
}

/// Bad options give a one-line explanation and exit code 2, never a panic.
#[test]
fn bad_options_exit_with_code_2_and_a_message() {
    let cases: [&[&str]; 7] = [
        &["--workers", "0"],
        &["--units", "0"],
        &["--units", "99999999999"],
        &["--unit-ms", "-5"],
        &["--work", "io"],
        &["--step", "42"],
        &["--no-such-flag"],
    ];
    for args in cases {
        let output = tour(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The table names every step and explains its columns.
#[test]
fn the_table_shows_every_step() {
    let output = tour(&["--units", "2", "--unit-ms", "1", "--workers", "2"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    for text in [
        "a loop, one unit after another",
        "spawn every task, then wait for all",
        "every unit a coroutine task, on one thread",
        "peak in flight:",
    ] {
        assert!(stdout.contains(text), "missing `{text}` in:\n{stdout}");
    }
}
