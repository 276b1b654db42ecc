//! The tour, run as a user runs it: its `--json` output, the concurrency each step
//! reaches (counted from spans, not timed), and its answers to bad options.

use serde_json::Value;
use std::process::{Command, Output};

/// Runs the tour as a user would, with the timelines 100 columns wide (whatever the
/// terminal running the tests says).
fn tour(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tour"))
        .args(args)
        .env("COLUMNS", "100")
        .output()
        .expect("the tour binary runs")
}

/// Runs the tour with `--json` and parses each line of its output: the table's rows
/// (steps 0 to 4, and step 6's two) only, not step 5's failure cases (see
/// `failure_cases`) nor step 6's many connections.
fn tour_json(args: &[&str]) -> Vec<Value> {
    all_json_lines(args)
        .into_iter()
        .filter(|line| line.get("case").is_none() && line.get("connections_asked").is_none())
        .collect()
}

/// Options that keep step 6's many-connections run small in a test that runs every
/// step: the default 10,000 would cost the test seconds and 20,000 descriptors.
const FEW_CONNECTIONS: [&str; 2] = ["--connections", "20"];

fn all_json_lines(args: &[&str]) -> Vec<Value> {
    let output = tour(&[args, &["--json"]].concat());
    assert!(output.status.success(), "tour failed: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

/// A path in the temporary directory, unique to this test process and `label`.
fn temp_path(label: &str, extension: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tour-{label}-{}.{extension}", std::process::id()))
}

/// Reads and removes a trace the tour wrote.
fn read_trace(path: &std::path::Path) -> Value {
    let trace = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    std::fs::remove_file(path).unwrap();
    trace
}

/// One unit's span as the trace has it, in whole nanoseconds (the trace's
/// microseconds are exact to well below one), so that spans compare exactly.
#[derive(Clone, Copy, Debug)]
struct TraceSpan {
    unit: u64,
    start_ns: i64,
    end_ns: i64,
}

/// The table's rows, by the label its first column and `--step` give them (step 6's
/// two rows both read `6` there; here they are told apart).
const ROWS: [&str; 10] = [
    "0",
    "1",
    "2",
    "3",
    "4a",
    "4b",
    "4c",
    "6 threads",
    "6 coroutines",
    "7",
];

/// The process a row's events are on in a trace: its place in the table, from 1 (pid
/// 0 is Linux's idle task in the traces Perfetto usually shows).
fn trace_pid(row: &str) -> u64 {
    let place = ROWS.iter().position(|label| *label == row);
    place.unwrap_or_else(|| panic!("no row {row}")) as u64 + 1
}

/// The spans of a row's units in a trace, in unit order.
fn unit_spans(trace: &Value, row: &str) -> Vec<TraceSpan> {
    spans_of_process(trace, trace_pid(row))
}

/// The spans of the units on process `pid` of a trace, in unit order.
fn spans_of_process(trace: &Value, pid: u64) -> Vec<TraceSpan> {
    let nanos = |event: &Value, field: &str| (event[field].as_f64().unwrap() * 1e3).round() as i64;
    let mut spans: Vec<TraceSpan> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["ph"] == "X" && event["pid"] == pid)
        .map(|event| {
            let name = event["name"].as_str().unwrap();
            let start_ns = nanos(event, "ts");
            TraceSpan {
                unit: name.trim_start_matches("unit ").parse().unwrap(),
                start_ns,
                end_ns: start_ns + nanos(event, "dur"),
            }
        })
        .collect();
    spans.sort_by_key(|span| span.unit);
    spans
}

/// The most spans in flight at one instant, counted by a sweep written here, apart
/// from the library's: spans are half-open, so an end and a start at the same instant
/// do not overlap.
fn peak_of(spans: &[TraceSpan]) -> u64 {
    let mut edges: Vec<(i64, i64)> = spans
        .iter()
        .flat_map(|span| [(span.start_ns, 1), (span.end_ns, -1)])
        .collect();
    edges.sort(); // at equal times, -1 (an end) sorts before +1 (a start)
    let mut in_flight = 0;
    let mut peak = 0;
    for (_, change) in edges {
        in_flight += change;
        peak = peak.max(in_flight);
    }
    peak as u64
}

/// Every step reports the documented fields, and its peak in flight is what the step
/// is about, as far as it is decided by the code and not by the OS scheduler:
/// - steps 0 and 2 wait for each unit before starting the next, so exactly 1;
/// - the pool steps 1 and 3 run at most one unit per worker; how many overlap depends
///   on when the OS runs each worker, so the test asserts the bound, not the count
///   (the pool's own tests prove with gates that all workers run at once);
/// - step 4 (each of its three versions) polls every unit once before it fires any
///   timer (each unit records its start and sets a timer at its first poll): every unit
///   has started before any can end, so exactly 12, on any machine.
///
/// The same run writes a trace, and each step's peak is counted again from the spans
/// in it: the JSON's number is the spans' number.
#[test]
fn json_reports_each_steps_concurrency() {
    let trace_path = temp_path("json-trace", "json");
    let lines = tour_json(&[
        "--units",
        "12",
        "--unit-ms",
        "20",
        "--workers",
        "4",
        "--trace",
        trace_path.to_str().unwrap(),
        FEW_CONNECTIONS[0],
        FEW_CONNECTIONS[1],
    ]);
    let trace = read_trace(&trace_path);
    assert_eq!(
        lines.len(),
        10,
        "steps 0 to 3, 4a to 4c, step 6's two rows, and step 7"
    );
    for (line, row) in lines[..7].iter().zip(ROWS) {
        let step = row[..1].parse::<u64>().unwrap();
        assert_eq!(line["step"], step);
        for field in [
            "name",
            "wall_ms",
            "cpu_ms",
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
        let peak = line["peak_in_flight"].as_u64().unwrap();
        let threads = line["threads"].as_u64().unwrap();
        match step {
            0 | 2 => assert_eq!(peak, 1, "one unit after another: {line}"),
            1 | 3 => assert!((1..=4).contains(&peak), "one unit per worker: {line}"),
            _ => {
                assert_eq!(peak, 12, "every coroutine at once: {line}");
                assert_eq!(line["version"], row, "{line}");
                assert_eq!(threads, 1, "step {row} runs its coroutines on one thread");
            }
        }
        assert!((1..=4).contains(&threads), "step {row}: {line}");
        let spans = unit_spans(&trace, row);
        assert_eq!(spans.len(), 12, "step {row}: one span per unit");
        assert_eq!(peak, peak_of(&spans), "step {row}: the spans' peak");
    }
    assert_eq!(
        lines[0]["threads"], 1,
        "step 0 runs on the main thread only"
    );
}

/// With fewer units than workers, the pool steps cannot have more than `units` in
/// flight, nor use more than `units` threads.
#[test]
fn peak_is_bounded_by_units_when_units_are_few() {
    let lines = tour_json(
        &[
            &["--units", "3", "--unit-ms", "20", "--workers", "8"][..],
            &FEW_CONNECTIONS,
        ]
        .concat(),
    );
    for step in [1, 3] {
        let line = &lines[step];
        assert!(line["peak_in_flight"].as_u64().unwrap() <= 3, "{line}");
        assert!(line["threads"].as_u64().unwrap() <= 3, "{line}");
    }
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

/// `--step 4` runs step 4's three versions, in the order they were built, each a row
/// with its CPU time; the table's header names the CPU column and each row starts
/// with its version (`4a`); `--step 4b` runs that version alone.
#[test]
fn step_4_runs_its_three_versions_each_with_its_cpu_time() {
    let args = ["--step", "4", "--units", "6", "--unit-ms", "5"];
    let lines = tour_json(&args);
    let versions: Vec<&str> = lines
        .iter()
        .map(|l| l["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["4a", "4b", "4c"]);
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["busy-poll", "wake-and-park", "coroutines"]);
    for line in &lines {
        assert_eq!(line["units_done"], 6, "{line}");
        assert!(
            line["cpu_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{line}"
        );
    }

    let output = tour(&args);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let header = stdout.lines().find(|l| l.starts_with("step ")).unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns[columns.len() - 7..][..3],
        ["wall", "cpu", "speedup"],
        "{header}"
    );
    for version in ["4a ", "4b ", "4c "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(version)),
            "{version}in:\n{stdout}"
        );
    }

    let alone = tour_json(&["--step", "4b", "--units", "3", "--unit-ms", "5"]);
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0]["version"], "4b");
}

/// 4a spins while its units wait and 4b parks, and the CPU column shows it: on 100 ms
/// of waiting, 4a uses several times 4b's CPU. The margin holds on a loaded machine:
/// 4b's CPU is a few polls per unit whatever the load, well under a millisecond,
/// while 4a's is whatever share of a core the machine gives its spinning thread for
/// the 100 ms; at a share as low as a tenth, still ten milliseconds.
#[test]
fn busy_polling_costs_cpu_and_parking_does_not() {
    let lines = tour_json(&["--step", "4", "--units", "12", "--unit-ms", "100"]);
    let cpu = |version: &str| {
        let line = lines.iter().find(|l| l["version"] == version).unwrap();
        line["cpu_ms"].as_f64().unwrap()
    };
    let (busy, parked) = (cpu("4a"), cpu("4b"));
    assert!(
        busy > 4.0 * parked && busy > 2.0,
        "4a: {busy} ms, 4b: {parked} ms"
    );
}

/// `--unit-future` runs step 4 on the hand-written state machine, and every version
/// records every unit, as on the `async fn`; the JSON says which form ran.
#[test]
fn step_4_runs_on_the_hand_written_unit_future() {
    let lines = tour_json(&[
        "--step",
        "4",
        "--units",
        "7",
        "--unit-ms",
        "5",
        "--unit-future",
    ]);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["unit_form"], "unit-future", "{line}");
        assert_eq!(line["units_done"], 7, "{line}");
        assert_eq!(line["peak_in_flight"], 7, "{line}");
    }
    let output = tour(&[
        "--step",
        "4c",
        "--units",
        "2",
        "--unit-ms",
        "1",
        "--unit-future",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("UnitFuture, the hand-written state machine"),
        "{stdout}"
    );
}

/// A step that would run for hours is skipped with its reason, not run.
#[test]
fn an_over_budget_step_is_skipped_with_a_reason() {
    let lines = tour_json(&["--step", "0", "--units", "1000000", "--unit-ms", "1000"]);
    assert_eq!(lines[0]["status"], "skipped");
    let reason = lines[0]["reason"].as_str().unwrap();
    assert!(reason.contains("over the budget"), "{reason}");
}

/// A million short units are not one unit's time: spawning, polling and joining a
/// million tasks takes seconds (4.3 s for step 7 and 7.8 s for step 4c with both cores
/// of the 2-core VM busy). With a 5 s budget both steps refuse the run, saying why,
/// instead of running past the budget; the default workload still runs.
#[test]
fn a_million_short_units_are_refused_over_a_small_budget() {
    for step in ["7", "4c"] {
        let args = [
            "--step",
            step,
            "--units",
            "1000000",
            "--unit-ms",
            "1",
            "--budget-secs",
            "5",
        ];
        let lines = tour_json(&args);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["status"], "skipped", "step {step}: {}", lines[0]);
        let reason = lines[0]["reason"].as_str().unwrap();
        assert!(reason.contains("over the budget"), "{reason}");
    }
    let lines = tour_json(&["--step", "7"]);
    assert_eq!(lines[0]["status"], "ran", "{}", lines[0]);
}

/// Bad options are refused as the README says: the first line is `error:` and names
/// the option at fault (clap adds a usage hint under it), the exit code is 2, and there
/// is never a panic.
#[test]
fn bad_options_exit_with_code_2_and_a_message() {
    let cases: [&[&str]; 10] = [
        &["--unit-future", "--step", "3"],
        &["--workers", "0"],
        &["--connections", "0"],
        &["--connections", "20001"],
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
        let first_line = stderr.lines().next().unwrap_or_default();
        assert!(
            first_line.starts_with("error: ") && first_line.contains(args[0]),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Each numeric option, with the whole numbers it accepts (both ends included).
const NUMERIC_OPTIONS: [(&str, u64, u64); 8] = [
    ("--step", 0, 7),
    ("--explain-units", 1, 10),
    ("--connections", 1, 20_000),
    ("--units", 1, 1_000_000),
    ("--unit-ms", 1, 60_000),
    ("--workers", 1, 1024),
    ("--budget-secs", 1, 86_400),
    ("--scale-up-to", 10, 1_000_000),
];

/// `--help` gives each numeric option's range, and it is the range the option takes:
/// one past either end is refused with the same range in the message.
#[test]
fn help_shows_each_numeric_options_range() {
    let output = tour(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (option, low, high) in NUMERIC_OPTIONS {
        let range = format!("from {low} to {high}");
        let entry = help_entry(&help, option);
        assert!(
            entry.contains(&range),
            "{option}: no `{range}` in:\n{entry}"
        );
        let past_ends = [Some(high + 1), low.checked_sub(1)];
        for refused in past_ends.into_iter().flatten() {
            let output = tour(&[option, &refused.to_string(), "--scale"]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{option} {refused}: {stderr}"
            );
            assert!(stderr.contains(&range), "{option} {refused}: {stderr}");
        }
    }
}

/// An option's entry in `--help`: its line and the lines under it, up to a blank one.
fn help_entry(help: &str, option: &str) -> String {
    let heading = format!("{option} ");
    help.lines()
        .skip_while(|line| !line.trim_start().starts_with(&heading))
        .take_while(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A negative number is a value, and refused for what it is: not "unexpected argument
/// '-1'", as if the user had typed an option, but that the number must be positive (or,
/// for `--step`, not negative).
#[test]
fn a_negative_number_is_refused_as_a_number() {
    let cases = [
        ("--units", "must be positive"),
        ("--workers", "must be positive"),
        ("--unit-ms", "must be positive"),
        ("--connections", "must be positive"),
        ("--step", "must not be negative"),
        ("--explain-units", "must be positive"),
    ];
    for (option, expected) in cases {
        let output = tour(&[option, "-1"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{option}: {stderr}");
        let first_line = stderr.lines().next().unwrap_or_default();
        assert!(
            first_line.starts_with("error: ") && first_line.contains(expected),
            "{option}: {stderr}"
        );
    }
}

/// `--scale-up-to` only means something to `--scale`: alone, it is refused in words
/// (it used to be ignored without a word, leaving the user to wonder where the sizes
/// went).
#[test]
fn scale_up_to_without_scale_is_an_error() {
    let output = tour(&[
        "--scale-up-to",
        "100",
        "--step",
        "0",
        "--units",
        "1",
        "--unit-ms",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("--scale-up-to") && stderr.contains("--scale\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--explain` tells each unit's life in the order the executor lives it: spawned,
/// polled, `Pending` with its timer keeping the waker, woken when the timer fires,
/// polled again, `Ready`; and once a unit is done, `block_on`'s future is woken by its
/// `JoinHandle`. Only the order of lines is asserted: their times are the machine's.
#[test]
fn explain_tells_spawn_poll_wake_and_ready_in_order() {
    let output = tour(&["--explain", "--explain-units", "3", "--unit-ms", "20"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with('+')).collect();
    assert!(lines.iter().all(|line| line.starts_with('+')), "{stdout}");
    for unit in 0..3 {
        let task = format!("task 'unit {unit}'");
        let story = [
            format!("spawn {task}"),
            format!("poll {task}:"),
            format!("{task} -> Pending: in sleep(20 ms), a timer at +"),
            format!("wake {task} -> queued: its timer"),
            format!("poll {task} again"),
            format!("{task} -> Ready"),
        ];
        let mut from = 0;
        for step in &story {
            let found = lines[from..]
                .iter()
                .position(|line| line.contains(step.as_str()));
            let found = found.unwrap_or_else(|| panic!("no `{step}` after line {from}:\n{stdout}"));
            from += found + 1;
        }
    }
    let first_ready = lines.iter().position(|l| l.contains("-> Ready")).unwrap();
    let waiter_woken = lines
        .iter()
        .position(|l| l.contains("wake block_on's future"));
    assert!(waiter_woken > Some(first_ready), "{stdout}");
    assert!(
        lines.last().unwrap().contains("block_on's future -> Ready"),
        "{stdout}"
    );
}

/// `--explain` runs alone: `--explain-units` without it, or it with the table's own
/// options, is refused in words, with code 2.
#[test]
fn explain_refuses_what_it_cannot_do() {
    let cases: [(&[&str], &str); 3] = [
        (&["--explain-units", "2"], "--explain"),
        (&["--explain", "--json"], "cannot be used with '--json'"),
        (&["--explain", "--step", "4"], "cannot be used with '--step"),
    ];
    for (args, expected) in cases {
        let output = tour(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// With `--trace`, `--explain` writes its events as a trace: valid JSON, an instant
/// event for every line it printed, and flow arrows whose every start (at a wake) has
/// its finish (at the poll the wake causes), with the same id, and comes before it.
#[test]
fn the_explain_trace_has_instants_and_matched_flows() {
    let path = temp_path("explain-trace", "json");
    let output = tour(&[
        "--explain",
        "--explain-units",
        "2",
        "--unit-ms",
        "10",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    let told = printed.lines().filter(|line| line.starts_with('+')).count();
    let trace = read_trace(&path);
    let events = trace["traceEvents"].as_array().unwrap();
    let of_phase = |phase: &'static str| events.iter().filter(move |e| e["ph"] == phase);
    assert_eq!(of_phase("i").count(), told, "{printed}");
    let ids_and_times = |phase: &'static str| -> std::collections::BTreeMap<u64, f64> {
        of_phase(phase)
            .map(|e| (e["id"].as_u64().unwrap(), e["ts"].as_f64().unwrap()))
            .collect()
    };
    let (starts, finishes) = (ids_and_times("s"), ids_and_times("f"));
    // Each unit is woken by its timer at least, and block_on's future by a JoinHandle.
    assert!(starts.len() >= 3, "{starts:?}");
    assert_eq!(
        Vec::from_iter(starts.keys()),
        Vec::from_iter(finishes.keys())
    );
    for (id, start) in &starts {
        assert!(*start <= finishes[id], "flow {id} ends before it starts");
    }
}

/// Every field a `--json` line carries is documented in the README's "`--json`
/// output" section, in the table for its kind of line, so that the documentation
/// cannot fall behind the output. Two small runs between them print every kind of
/// line: the table's steps that ran and one that was skipped, step 5's cases (with
/// their attempts), and `--scale` points that ran and that were skipped. (A failed
/// line's only field of its own, `reason`, is a skipped line's too.)
#[test]
fn every_json_field_is_documented_in_the_readme() {
    let documented = readme_json_fields();
    let ran = all_json_lines(
        &[
            &["--units", "1", "--unit-ms", "1", "--workers", "1"][..],
            &FEW_CONNECTIONS,
        ]
        .concat(),
    );
    let skipped_and_scaled = all_json_lines(&[
        "--step",
        "0",
        "--units",
        "1000000",
        "--unit-ms",
        "1000",
        "--budget-secs",
        "1",
        "--scale",
        "--scale-up-to",
        "1000",
    ]);
    let lines: Vec<Value> = [ran, skipped_and_scaled].concat();
    let statuses: std::collections::BTreeSet<(&str, &str)> = lines
        .iter()
        .filter_map(|line| Some((json_line_kind(line), line["status"].as_str()?)))
        .collect();
    for kind_and_status in [
        ("Steps 0 to 4, 6 and 7", "ran"),
        ("Steps 0 to 4, 6 and 7", "skipped"),
        ("Step 6's many connections", "ran"),
        ("`--scale`", "ran"),
        ("`--scale`", "skipped"),
    ] {
        assert!(statuses.contains(&kind_and_status), "{statuses:?}");
    }
    for line in &lines {
        let kind = json_line_kind(line);
        let fields = documented
            .get(kind)
            .unwrap_or_else(|| panic!("no README table for `{kind}` lines"));
        for field in json_fields(line) {
            assert!(
                fields.contains(&field),
                "`{field}` of a `{kind}` line is not in the README: {line}"
            );
        }
    }
}

/// Which README table documents `line`: its heading's first words.
fn json_line_kind(line: &Value) -> &'static str {
    if line.get("scale").is_some() {
        "`--scale`"
    } else if line.get("case").is_some() {
        "Step 5"
    } else if line.get("connections_asked").is_some() {
        "Step 6's many connections"
    } else {
        "Steps 0 to 4, 6 and 7"
    }
}

/// The fields of a JSON line, with those of objects in an array named `array[].field`.
fn json_fields(line: &Value) -> Vec<String> {
    let mut fields = Vec::new();
    for (key, value) in line.as_object().unwrap() {
        fields.push(key.clone());
        let inner_objects = value.as_array().into_iter().flatten();
        for object in inner_objects.filter_map(Value::as_object) {
            fields.extend(object.keys().map(|inner| format!("{key}[].{inner}")));
        }
    }
    fields
}

/// The README's `--json` tables: under each `####` heading of the "`--json` output"
/// section, the fields its table's rows begin with, keyed by the heading's text.
fn readme_json_fields() -> std::collections::BTreeMap<String, Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("the README is beside Cargo.toml");
    let section = readme
        .split("\n### `--json` output\n")
        .nth(1)
        .expect("a `### `--json` output` section in the README");
    let section = section.split("\n## ").next().unwrap();
    let mut tables = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("#### ") {
            current = Some(heading.to_string());
        } else if let (Some(heading), Some(row)) = (&current, line.strip_prefix("| `")) {
            let field = row.split('`').next().unwrap().to_string();
            tables
                .entry(heading.clone())
                .or_insert_with(Vec::new)
                .push(field);
        }
    }
    // Keyed by the heading's words up to the colon, which `json_line_kind` names.
    tables
        .into_iter()
        .map(|(heading, fields)| (heading.split(':').next().unwrap().to_string(), fields))
        .collect()
}

/// The table names every step and explains its columns.
#[test]
fn the_table_shows_every_step() {
    let output = tour(
        &[
            &["--units", "2", "--unit-ms", "1", "--workers", "2"][..],
            &FEW_CONNECTIONS,
        ]
        .concat(),
    );
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    for text in [
        "a loop, one unit after another",
        "spawn every task, then wait for all",
        "polls every future, round and round",
        "polls only what a waker queued, then parks",
        "every unit a coroutine task, on one thread",
        "every unit a request: blocking, on a pool",
        "every unit a request: coroutines, 1 thread",
        "peak in flight:",
        "cpu: CPU time the process used",
        "Step 6: many connections",
    ] {
        assert!(stdout.contains(text), "missing `{text}` in:\n{stdout}");
    }
}

/// Step 5 runs each failure case as documented: the failing runs are stopped (or
/// finish late) and a detector names what went wrong; the fixes complete.
#[test]
fn failure_cases_are_detected_and_fixed() {
    let cases = all_json_lines(&["--step", "5"]);
    assert_eq!(cases.len(), 5);
    let attempt = |case: usize, label: &str, nth: usize| -> Value {
        let attempts = cases[case]["attempts"].as_array().unwrap();
        attempts
            .iter()
            .filter(|a| a["label"] == label)
            .nth(nth)
            .unwrap()
            .clone()
    };
    let report = |a: &Value| {
        a["report"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };

    // 1. Lock across .await: threads complete; coroutines hang, the watchdog names the
    //    blocked task; the async mutex completes.
    assert_eq!(attempt(0, "threads", 0)["completed"], true);
    let hung = attempt(0, "coroutines", 0);
    assert_eq!(hung["completed"], false);
    assert!(report(&hung).contains("stall: task 'unit 1'"), "{hung}");
    assert_eq!(attempt(0, "fix", 0)["completed"], true);

    // 2. Blocking call: completes, but every unit is reported as a stall.
    let blocked = attempt(1, "coroutines", 0);
    assert_eq!(blocked["completed"], true);
    assert!(report(&blocked).contains("stall: task 'unit"), "{blocked}");
    assert_eq!(attempt(1, "fix", 0)["completed"], true);
    assert_eq!(attempt(1, "fix", 1)["completed"], true);

    // 3. Pool starvation: threads hang (with the child's own report); coroutines complete.
    let starved = attempt(2, "threads", 0);
    assert_eq!(starved["completed"], false);
    assert!(
        report(&starved).contains("2 of 2 workers are blocked")
            && report(&starved).contains("and 2 subtasks are queued"),
        "{starved}"
    );
    assert_eq!(attempt(2, "coroutines", 0)["completed"], true);
    // Like with like: both run the same subtask, and it is not empty.
    for label in ["threads", "coroutines"] {
        let what = attempt(2, label, 0)["what"].as_str().unwrap().to_string();
        assert!(
            what.contains("a subtask (a 20 ms wait, then its job's number doubled)"),
            "{what}"
        );
    }

    // 4. Unwakeable future: threads hang silently; coroutines are reported lost and
    //    deadlocked, by name; the fix completes.
    let silent = attempt(3, "threads", 0);
    assert_eq!(
        (silent["completed"].clone(), silent["detected"].clone()),
        (Value::Bool(false), Value::Bool(false))
    );
    let lost = report(&attempt(3, "coroutines", 0));
    assert!(lost.contains("lost task: task 'forgetful unit'"), "{lost}");
    assert!(lost.contains("deadlock:"), "{lost}");
    assert_eq!(attempt(3, "fix", 0)["completed"], true);

    // 5. Locks in opposite orders: threads hang (the child says why, then is stopped);
    //    coroutines deadlock too, and the executor names the cycle, both tasks and
    //    both locks; one order for every lock completes.
    let threads = attempt(4, "threads", 0);
    assert_eq!(threads["completed"], false);
    assert!(
        report(&threads).contains("each holds the lock the other waits for"),
        "{threads}"
    );
    let cycle = attempt(4, "coroutines", 0);
    assert_eq!(cycle["completed"], false);
    for text in [
        "wait cycle:",
        "task 'unit A'",
        "waits for mutex 'second', held by task 'unit B'",
        "waits for mutex 'first', held by task 'unit A'",
        "deadlock:",
    ] {
        assert!(report(&cycle).contains(text), "missing `{text}` in {cycle}");
    }
    assert_eq!(attempt(4, "fix", 0)["completed"], true);
}

/// Step 6 alone, with few units and connections: both rows complete every unit,
/// each a request answered by the loopback server, and the many-connections run holds
/// every connection it was asked for. What is asserted of concurrency holds on any
/// machine, and is counted from spans:
/// - the threads' row has at most one request per worker in flight (the OS scheduler
///   decides how many overlap, as in step 1);
/// - the coroutines' row has all 5 in flight: the tasks are spawned in one poll, each
///   records its start at its first poll, and none can end before the reactor reports
///   its reply, which the executor looks for only when no task is ready, so after
///   every first poll. The trace's spans give the same peak;
/// - the many-connections run holds each connection at a gate until all are open, so
///   its peak is exactly its count.
#[test]
fn step_6_runs_every_request_with_threads_and_with_coroutines() {
    let trace_path = temp_path("step6-trace", "json");
    let args = [
        "--step",
        "6",
        "--units",
        "5",
        "--unit-ms",
        "20",
        "--workers",
        "2",
        "--connections",
        "50",
    ];
    let lines = all_json_lines(&[&args[..], &["--trace", trace_path.to_str().unwrap()]].concat());
    let trace = read_trace(&trace_path);
    assert_eq!(
        lines.len(),
        3,
        "two rows and the many connections: {lines:?}"
    );
    let (threads, coroutines, many) = (&lines[0], &lines[1], &lines[2]);
    for (line, name) in [
        (threads, "requests-threads"),
        (coroutines, "requests-coroutines"),
    ] {
        assert_eq!(line["step"], 6, "{line}");
        assert_eq!(line["name"], name, "{line}");
        assert_eq!(line["status"], "ran", "{line}");
        assert_eq!(line["units_done"], 5, "every request answered: {line}");
    }
    let peak = |line: &Value| line["peak_in_flight"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&peak(threads)),
        "one per worker: {threads}"
    );
    assert!(
        (1..=2).contains(&threads["threads"].as_u64().unwrap()),
        "{threads}"
    );
    assert_eq!(peak(coroutines), 5, "every request at once: {coroutines}");
    assert_eq!(coroutines["threads"], 1, "{coroutines}");
    let spans = unit_spans(&trace, "6 coroutines");
    assert_eq!(spans.len(), 5);
    assert_eq!(peak_of(&spans), 5, "the trace's spans overlap too");

    assert_eq!(many["name"], "many-connections", "{many}");
    assert_eq!(many["status"], "ran", "{many}");
    assert_eq!(many["connections"], 50, "{many}");
    assert_eq!(peak(many), 50, "all open at once: {many}");
    assert_eq!(many["threads"], 1, "{many}");
    assert!(many.get("note").is_none(), "50 connections fit: {many}");

    let output = tour(&args);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows = stdout.lines().filter(|line| line.starts_with("6 ")).count();
    assert_eq!(rows, 2, "two rows for step 6 in:\n{stdout}");
    assert!(stdout.contains("50 connections in"), "{stdout}");
    assert!(stdout.contains("per connection"), "{stdout}");
    assert_eq!(
        timeline_rows(&output, "step 6 coroutines").len(),
        5,
        "a row per task"
    );
}

/// With a hard limit on open files too low for every connection asked for, step 6
/// says so, in words, and runs as many as fit; with one too low for any, it fails
/// with a message and exit code 1, never a panic. The limit is lowered by the shell
/// that starts the tour (`ulimit`), as a user would.
#[test]
fn step_6_runs_what_the_open_file_limit_allows_and_says_so() {
    let run = |limit: u32| {
        let script = format!("ulimit -Sn {limit} && ulimit -Hn {limit} && exec \"$0\" \"$@\"");
        Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_tour")])
            .args([
                "--step",
                "6",
                "--units",
                "1",
                "--unit-ms",
                "1",
                "--connections",
                "500",
            ])
            .output()
            .expect("sh runs the tour")
    };
    let output = run(300);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("the hard limit on open files is 300"),
        "{stdout}"
    );
    assert!(stdout.contains("of the 500"), "{stdout}");

    let output = run(40);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAILED: the limit on open files, 40, leaves no room"),
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The detectors make no claim of certainty on the healthy steps 0 to 4 and 6: no deadlock,
/// no lost task, no wait cycle (deadlock detection is always on). Step 4 also runs with
/// the stall watchdog on; a stall report is a wall-clock observation (a thread the OS
/// deschedules for 100 ms on a busy machine is reported too), so it is the one line
/// allowed here. The watchdog's silence on healthy work is tested on the manual clock,
/// where it is deterministic (crates/async-scratch/tests/diagnostics.rs).
#[test]
fn healthy_steps_raise_no_diagnostic() {
    for step in ["0", "1", "2", "3", "4", "6"] {
        let output = tour(&[
            "--step",
            step,
            "--units",
            "40",
            "--unit-ms",
            "5",
            "--workers",
            "4",
            FEW_CONNECTIONS[0],
            FEW_CONNECTIONS[1],
        ]);
        assert!(output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let claims = stderr
            .lines()
            .filter(|line| line.contains("async-scratch:") && !line.contains("stall:"));
        assert_eq!(claims.count(), 0, "step {step}: {stderr}");
    }
}

/// On `--work cpu`, step 4 explains, on standard error where the stall watchdog's
/// reports go and before them, why the watchdog may report its units: a computing unit
/// holds the executor's only thread for its whole time, and the report says so truly.
/// The note depends on the options only, not on whether a report came (which depends
/// on how fast the machine is), so the test holds on any machine; with `--work sleep`
/// there is nothing to explain, and no note.
#[test]
fn step_4_explains_stall_reports_on_cpu_work() {
    let run = |work: &str| {
        let output = tour(&[
            "--step",
            "4",
            "--units",
            "2",
            "--unit-ms",
            "5",
            "--work",
            work,
            "--json",
        ]);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    let cpu = run("cpu");
    let note = cpu
        .lines()
        .position(|line| line.starts_with("note: step 4"))
        .unwrap_or_else(|| panic!("no note in: {cpu}"));
    assert!(
        cpu.contains("stall watchdog") && cpu.contains("100 ms"),
        "the note names the watchdog and its threshold: {cpu}"
    );
    let first_stall = cpu.lines().position(|line| line.contains("stall:"));
    assert!(first_stall.is_none_or(|stall| stall > note), "{cpu}");
    let sleep = run("sleep");
    assert!(!sleep.contains("note: step 4"), "{sleep}");
}

/// `--trace FILE` writes Chrome trace-event JSON: one complete event per unit with its
/// start and duration, on the track of the lane it ran on, and named tracks.
#[test]
fn the_trace_has_one_event_per_unit() {
    let path = temp_path("trace", "json");
    let path_text = path.to_str().unwrap();
    let output = tour(&[
        "--step",
        "1",
        "--units",
        "6",
        "--unit-ms",
        "5",
        "--workers",
        "2",
        "--trace",
        path_text,
    ]);
    assert!(output.status.success(), "{output:?}");
    let trace = read_trace(&path);
    let events = trace["traceEvents"].as_array().unwrap();
    let units: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(units.len(), 6);
    for event in &units {
        assert_eq!(event["pid"], trace_pid("1"));
        assert!(event["ts"].as_f64().unwrap() >= 0.0);
        assert!(event["dur"].as_f64().unwrap() > 0.0);
    }
    let mut names: Vec<&str> = units.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        ["unit 0", "unit 1", "unit 2", "unit 3", "unit 4", "unit 5"]
    );
    // Which of the 2 workers ran a unit is the OS scheduler's choice: one named track
    // for each worker that did, and no other.
    let tracks: std::collections::BTreeSet<u64> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    let lanes_used: std::collections::BTreeSet<u64> =
        units.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
    assert_eq!(
        tracks, lanes_used,
        "one named track per worker that ran a unit"
    );
    assert!((1..=2).contains(&tracks.len()), "{tracks:?}");
}

/// In the trace, each row of the table is a process (see `trace_pid`), and each row's
/// units start after the previous row's last unit ends: every step's
/// spans are measured from its own start, and laid side by side on one time axis they
/// would sit on top of each other.
#[test]
fn the_trace_puts_each_step_after_the_one_before() {
    let path = temp_path("trace-steps", "json");
    let output = tour(&[
        "--units",
        "3",
        "--unit-ms",
        "5",
        "--workers",
        "2",
        "--trace",
        path.to_str().unwrap(),
        FEW_CONNECTIONS[0],
        FEW_CONNECTIONS[1],
    ]);
    assert!(output.status.success(), "{output:?}");
    let trace = read_trace(&path);
    let pids: std::collections::BTreeSet<u64> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["pid"].as_u64().unwrap())
        .collect();
    let expected = ROWS.map(trace_pid).into_iter().collect();
    assert_eq!(pids, expected);
    for pair in ROWS[..7].windows(2) {
        let last_end = unit_spans(&trace, pair[0])
            .iter()
            .map(|span| span.end_ns)
            .max()
            .unwrap();
        let first_start = unit_spans(&trace, pair[1])
            .iter()
            .map(|span| span.start_ns)
            .min()
            .unwrap();
        assert!(
            first_start > last_end,
            "step {} starts at {first_start} ns, before step {} ends at {last_end} ns",
            pair[1],
            pair[0]
        );
    }
}

/// A trace path that cannot be written is refused before anything runs.
#[test]
fn an_unwritable_trace_path_is_an_error() {
    let output = tour(&["--step", "0", "--trace", "/no/such/directory/trace.json"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: cannot write the trace to /no/such/directory/trace.json"),
        "{stderr}"
    );
}

/// Step 5 records no spans (its failure cases run apart, most in child processes), so
/// `--trace` with `--step 5` is refused before anything runs, in words, and leaves no
/// file behind: it once left an empty file that no viewer could open.
#[test]
fn a_trace_of_step_5_alone_is_refused() {
    let path = temp_path("trace-step5", "json");
    let output = tour(&["--step", "5", "--trace", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let first_line = stderr.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with("error: ")
            && first_line.contains("--trace")
            && first_line.contains("step 5"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!path.exists(), "no trace file is left behind");
}

/// Under the table, each step's timeline: step 0 is one lane, the pool step one row
/// for each thread that ran a unit (the table's `threads`; which workers get units is
/// the OS scheduler's choice), and each version of step 4, past 8 lanes, a single
/// row of units in flight. (How units are drawn in a row, glyphs alternating, is tested on made-up
/// spans in src/terminal_timeline.rs.)
#[test]
fn the_terminal_timelines_show_each_step() {
    let run_step = |step: &str| {
        tour(&[
            "--units",
            "12",
            "--unit-ms",
            "5",
            "--workers",
            "3",
            "--step",
            step,
        ])
    };
    let step0 = timeline_rows(&run_step("0"), "step 0");
    assert_eq!(step0.len(), 1);
    // Which glyph a column shows depends on how long each unit took: a late unit can
    // squeeze the others into columns where a later one is drawn over them.
    let bar = step0[0].split_whitespace().last().unwrap(); // after the lane's label
    assert!(bar.contains(['█', '▒']), "{step0:?}");
    assert!(bar.chars().all(|c| "█▒·".contains(c)), "{step0:?}");

    let step1 = run_step("1");
    let threads = table_threads(&step1, 1);
    assert!((1..=3).contains(&threads), "{threads}");
    assert_eq!(
        timeline_rows(&step1, "step 1").len(),
        threads,
        "a row per thread"
    );

    // Step 4: each version's tasks as one row in flight; 4c, the executor, also
    // draws its one thread above them.
    let step4 = run_step("4");
    for version in ["step 4a", "step 4b", "step 4c"] {
        let rows = timeline_rows(&step4, version);
        let in_flight = rows.last().expect("a row");
        assert!(in_flight.trim_start().starts_with("in flight"), "{rows:?}");
        let executor_row = version == "step 4c";
        assert_eq!(
            rows.len(),
            1 + usize::from(executor_row),
            "{version}: {rows:?}"
        );
        if executor_row {
            assert!(rows[0].trim_start().starts_with("executor"), "{rows:?}");
        }
    }
}

/// The `threads` column of a step's row in the tour's table: second from the right,
/// before `peak in flight` (counted from the right, as descriptions have spaces).
fn table_threads(output: &Output, step: u32) -> usize {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let row = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(&step.to_string()))
        .unwrap_or_else(|| panic!("no row for step {step} in:\n{stdout}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    fields[fields.len() - 2].parse().unwrap()
}

/// The rows of one step's terminal timeline, from the tour's standard output.
fn timeline_rows(output: &Output, step: &str) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .skip_while(|line| *line != step)
        .skip(1)
        .take_while(|line| line.starts_with(' '))
        .map(str::to_string)
        .collect()
}

/// `--report DIR` writes one self-contained page: a timeline per step, each an SVG
/// that parses as XML, with one bar per unit, placed where its span says. The same run
/// writes a trace, whose spans are the truth the bars are checked against: each bar's
/// x and width are its span's start and length on one linear time scale per picture.
/// And what the spans show, the bars show: in step 0 each unit starts at or after the
/// end of the one before it; in step 4 every unit starts before any ends (see
/// `json_reports_each_steps_concurrency` for why that holds on any machine), so the
/// bars overlap.
#[test]
fn the_report_draws_one_bar_per_unit_where_its_span_is() {
    let trace_path = temp_path("report-trace", "json");
    let html = report_page(
        "report",
        &[
            "--units",
            "6",
            "--unit-ms",
            "5",
            "--workers",
            "2",
            "--trace",
            trace_path.to_str().unwrap(),
            FEW_CONNECTIONS[0],
            FEW_CONNECTIONS[1],
        ],
    );
    let trace = read_trace(&trace_path);
    assert!(!html.contains("<script"), "self-contained: no scripts");
    let svgs = svg_documents(&html);
    assert_eq!(
        svgs.len(),
        10,
        "one timeline per row: steps 0-3, 4a-4c, step 6's two, step 7"
    );
    let pids = ROWS.map(trace_pid);
    for (svg, pid) in svgs.iter().zip(pids) {
        let doc = roxmltree::Document::parse(svg).expect("the SVG parses as XML");
        assert_eq!(unit_bars(&doc).len(), 6);
        assert_bars_are_spans_scaled(&bars_by_unit(&doc), &spans_of_process(&trace, pid));
    }

    let spans0 = unit_spans(&trace, "0");
    for pair in spans0.windows(2) {
        assert!(pair[1].start_ns >= pair[0].end_ns, "step 0: {pair:?}");
    }
    let spans4 = unit_spans(&trace, "4c");
    let last_start = spans4.iter().map(|span| span.start_ns).max().unwrap();
    let first_end = spans4.iter().map(|span| span.end_ns).min().unwrap();
    assert!(
        last_start < first_end,
        "step 4's units run at once: {spans4:?}"
    );
    let step4 = roxmltree::Document::parse(&svgs[6]).unwrap();
    let bars4 = bars_by_unit(&step4);
    let overlap = bars4[0].0 < bars4[1].0 + bars4[1].1 && bars4[1].0 < bars4[0].0 + bars4[0].1;
    assert!(overlap, "step 4's bars overlap: {bars4:?}");
    assert_executor_lane_only_in_step_4(&svgs);
    assert_step_5_section(&html);
}

/// Step 4c's timeline (the seventh: 0 to 3, 4a, 4b, 4c), and no other, has the
/// executor's thread as a lane of its own,
/// above the task lanes: parked while the units wait for their timers (a unit's 5 ms
/// is a park of the executor, whatever the machine's load), busy where it polled.
fn assert_executor_lane_only_in_step_4(svgs: &[String]) {
    for (index, svg) in svgs.iter().enumerate() {
        let doc = roxmltree::Document::parse(svg).unwrap();
        let with_class = |class: &str| {
            doc.descendants()
                .filter(|n| n.attribute("class") == Some(class))
                .collect::<Vec<_>>()
        };
        if index != 6 {
            assert!(
                with_class("executor-lane").is_empty(),
                "only step 4c: {svg}"
            );
            continue;
        }
        assert_eq!(with_class("executor-lane").len(), 1, "{svg}");
        assert_eq!(with_class("executor-parked").len(), 1, "{svg}");
        let busy = with_class("executor-busy");
        assert!(!busy.is_empty(), "it polled: {svg}");
        let y = |node: &roxmltree::Node| node.attribute("y").unwrap().parse::<f64>().unwrap();
        let lane_y = y(&busy[0]);
        assert!(
            with_class("unit").iter().all(|bar| y(bar) > lane_y),
            "{svg}"
        );
    }
}

/// The report has a section for step 5: every case, each with its threads and its
/// coroutines attempt, their outcomes and the detectors' reports, escaped.
fn assert_step_5_section(html: &str) {
    let sections: Vec<&str> = html.split("<section class=\"failure\"").skip(1).collect();
    assert_eq!(sections.len(), 5, "five cases");
    for section in &sections {
        for label in ["threads", "coroutines"] {
            assert!(
                section.contains(&format!("data-label=\"{label}\"")),
                "{label} in {section}"
            );
        }
    }
    assert!(
        sections[0].contains("stall: task 'unit 1'"),
        "{}",
        sections[0]
    );
    assert!(
        sections[2].contains("2 of 2 workers are blocked"),
        "{}",
        sections[2]
    );
    assert!(sections[3].contains("it hung silently"), "{}", sections[3]);
    assert!(sections[4].contains("wait cycle"), "{}", sections[4]);
    for report in html.split("<pre>").skip(1) {
        let text = report.split("</pre>").next().unwrap();
        assert!(!text.contains('<'), "escaped: {text}");
    }
}

/// `--report-same-axis` draws every timeline on the slowest step's time scale: step
/// 6's two rows, one slower than the other, end their axes at the same tick, and the
/// shared scale is said above the pictures. Without `--report` it is refused.
#[test]
fn the_same_axis_option_shares_one_time_scale() {
    let html = report_page(
        "same-axis",
        &[
            "--step",
            "6",
            "--units",
            "8",
            "--unit-ms",
            "5",
            "--workers",
            "2",
            "--report-same-axis",
            FEW_CONNECTIONS[0],
            FEW_CONNECTIONS[1],
        ],
    );
    assert!(html.contains("--report-same-axis"), "said on the page");
    let last_tick = |svg: &str| {
        let doc = roxmltree::Document::parse(svg).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("text") && n.attribute("class") == Some("tick"))
            .map(|n| {
                (
                    n.attribute("x").unwrap().to_string(),
                    n.text().unwrap().to_string(),
                )
            })
            .next_back()
            .unwrap()
    };
    let svgs = svg_documents(&html);
    assert_eq!(svgs.len(), 2);
    assert_eq!(last_tick(&svgs[0]), last_tick(&svgs[1]));

    let refused = tour(&["--step", "0", "--report-same-axis"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}

/// Checks that each bar `(x, width)` is its span on one linear scale, `x = a + k * t`:
/// `a` and `k` come from the earliest start and the latest end, and every other bar
/// must then fall where its span says, to within the SVG's rounding (3 decimals).
fn assert_bars_are_spans_scaled(bars: &[(f64, f64)], spans: &[TraceSpan]) {
    const ROUNDING_PX: f64 = 0.01;
    assert_eq!(bars.len(), spans.len());
    let first = (0..spans.len()).min_by_key(|&i| spans[i].start_ns).unwrap();
    let last = (0..spans.len()).max_by_key(|&i| spans[i].end_ns).unwrap();
    let (t0, t1) = (spans[first].start_ns as f64, spans[last].end_ns as f64);
    let (x0, x1) = (bars[first].0, bars[last].0 + bars[last].1);
    let k = (x1 - x0) / (t1 - t0);
    for ((x, width), span) in bars.iter().zip(spans) {
        let expected_x = x0 + (span.start_ns as f64 - t0) * k;
        let expected_width = (span.end_ns - span.start_ns) as f64 * k;
        assert!(
            (x - expected_x).abs() < ROUNDING_PX && (width - expected_width).abs() < ROUNDING_PX,
            "unit {}: bar ({x}, {width}), span says ({expected_x}, {expected_width})",
            span.unit
        );
    }
}

/// Past 300 lanes the timeline turns into a density view: no bars, one line.
#[test]
fn many_lanes_become_a_density_view() {
    let html = report_page(
        "density",
        &["--step", "4", "--units", "400", "--unit-ms", "5"],
    );
    let svg = &svg_documents(&html)[0];
    let doc = roxmltree::Document::parse(svg).unwrap();
    assert!(unit_bars(&doc).is_empty());
    let lines = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("density"))
        .count();
    assert_eq!(lines, 1);
}

/// Runs the tour with `args` and `--report` into a fresh directory, and returns the
/// page it wrote (the directory is removed).
fn report_page(label: &str, args: &[&str]) -> String {
    let dir = temp_path(label, "report");
    let output = tour(&[args, &["--report", dir.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{output:?}");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    html
}

/// A count of 1 takes the singular, in the table's header and in the report: "1 unit",
/// "1 worker", not "1 units", "1 workers". (The machine's cores are whatever the
/// machine has; `count` in src/report.rs is tested for 1 on its own.)
#[test]
fn one_unit_and_one_worker_are_singular() {
    let args = [
        "--step",
        "0",
        "--units",
        "1",
        "--unit-ms",
        "1",
        "--workers",
        "1",
    ];
    let output = tour(&args);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let header = stdout.lines().next().unwrap();
    assert!(
        header.starts_with("async-from-scratch tour: 1 unit x 1 ms (sleep), 1 worker, on "),
        "{header}"
    );
    let html = report_page("singular", &args);
    assert!(
        html.contains("Workload: 1 unit of 1 ms (sleep), 1 pool worker."),
        "{html}"
    );
    assert!(
        html.contains(", 1 unit)</text>"),
        "the timeline's title: {html}"
    );
    for plural_of_one in ["1 units", "1 workers", "1 cores"] {
        assert!(!stdout.contains(plural_of_one), "{stdout}");
        assert!(!html.contains(plural_of_one), "{html}");
    }
}

/// `--report` into a directory that holds an earlier report replaces it, and says so
/// on standard error: regenerating a report (the README's own pictures come from one)
/// is the usual case, and needs no flag.
#[test]
fn a_report_over_an_earlier_one_replaces_it_and_says_so() {
    let dir = temp_path("report-again", "report");
    let args = ["--step", "0", "--units", "1", "--unit-ms", "1", "--report"];
    let first = tour(&[&args[..], &[dir.to_str().unwrap()]].concat());
    assert!(first.status.success(), "{first:?}");
    assert!(!String::from_utf8_lossy(&first.stderr).contains("replacing"));
    let second = tour(&[&args[..], &[dir.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "replacing the earlier report in {}",
            dir.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What `--report` will not write over: a file where the directory should be, or an
/// `index.html` the tour did not write. Each is refused in words, before anything
/// runs, and left as it was.
#[test]
fn a_report_onto_something_else_is_refused() {
    const MINE: &str = "<p>my own page</p>";
    let file = temp_path("report-onto-file", "html");
    std::fs::write(&file, MINE).unwrap();
    let dir = temp_path("report-onto-site", "report");
    std::fs::create_dir_all(&dir).unwrap();
    let index = dir.join("index.html");
    std::fs::write(&index, MINE).unwrap();
    let cases = [
        (&file, &file, "is a file"),
        (&dir, &index, "not a tour report"),
    ];
    for (target, kept, expected) in cases {
        let output = tour(&["--step", "0", "--report", target.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let first_line = stderr.lines().next().unwrap_or_default();
        assert!(
            first_line.starts_with("error: ") && first_line.contains(expected),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "refused before anything runs");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), MINE, "{kept:?}");
    }
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every `<svg>…</svg>` in a page.
fn svg_documents(html: &str) -> Vec<String> {
    html.split("<svg")
        .skip(1)
        .map(|rest| format!("<svg{}</svg>", rest.split("</svg>").next().unwrap()))
        .collect()
}

fn unit_bars<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some("unit"))
        .collect()
}

/// (x, width) of each unit's bar, in unit order.
fn bars_by_unit(doc: &roxmltree::Document<'_>) -> Vec<(f64, f64)> {
    let mut bars: Vec<(usize, f64, f64)> = unit_bars(doc)
        .iter()
        .map(|bar| {
            let number = |name: &str| bar.attribute(name).unwrap().parse::<f64>().unwrap();
            let unit: usize = bar.attribute("data-unit").unwrap().parse().unwrap();
            (unit, number("x"), number("width"))
        })
        .collect();
    bars.sort_by_key(|bar| bar.0);
    bars.into_iter().map(|(_, x, width)| (x, width)).collect()
}

/// `--scale` runs every strategy at each size up to the limit, skips the sizes over the
/// budget, and with `--report` charts both: one line per strategy on each chart (an SVG
/// that parses as XML), and the skipped sizes said under it.
#[test]
fn scaling_charts_every_strategy_and_says_what_it_skipped() {
    let dir = temp_path("scale", "report");
    let args = [
        "--step",
        "0",
        "--units",
        "2",
        "--unit-ms",
        "1",
        "--scale",
        "--scale-up-to",
        "1000",
    ];
    let output = tour(
        &[
            &args[..],
            &["--budget-secs", "1", "--report", dir.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let points = stdout
        .lines()
        .filter(|line| line.starts_with("  step ") && line.contains(" at "));
    assert_eq!(points.count(), 15, "5 strategies at 10, 100 and 1000 units");
    for chart in ["scaling-wall.svg", "scaling-memory.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("the chart parses as XML");
        let lines = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("strategy"))
            .count();
        assert_eq!(lines, 5, "{chart}: one line per strategy");
        let skipped: Vec<&str> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("skipped"))
            .filter_map(|n| n.text())
            .collect();
        assert!(
            skipped
                .iter()
                .any(|note| note.starts_with("step 0 (sequential) skipped from 1000 units")),
            "{skipped:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Piped into a reader that stops early (`tour | head`), the tour ends quietly with
/// success instead of panicking on the closed pipe.
#[test]
fn a_closed_standard_output_ends_the_tour_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tour"))
        .args([
            "--step",
            "1",
            "--units",
            "40",
            "--unit-ms",
            "5",
            "--workers",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    assert!(
        first_line.starts_with("async-from-scratch tour"),
        "{first_line}"
    );
    // The reader is dropped here: every later line meets a closed pipe.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The tour's modules depend on each other one way only: each can be read before the
/// modules that use it, as the library's can (its `tests/module_graph.rs` checks the
/// same of it). A cycle means one concept living in two modules.
mod module_graph {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs;
    use std::path::{Path, PathBuf};

    /// Top-level module (`report`, `steps`, ...) → the top-level modules its code names.
    type Graph = BTreeMap<String, BTreeSet<String>>;

    /// Reads `src/`, builds the graph, and names the first cycle it finds.
    #[test]
    fn the_tours_modules_form_no_cycle() {
        let graph = tour_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        assert!(graph.contains_key("steps") && graph.contains_key("report"));
        if let Some(cycle) = find_cycle(&graph) {
            panic!("module cycle: {}\ngraph: {graph:#?}", cycle.join(" -> "));
        }
    }

    /// The checker sees a cycle, and reads both `crate::a::b` and a braced group
    /// `crate::{a, b::{c, d}}` spread over lines, as rustfmt writes a long one.
    #[test]
    fn the_checker_finds_a_cycle_in_grouped_imports() {
        let source = "// crate::commented_out\nuse crate::{\n    cli,\n    trace::{Span, x},\n};";
        assert_eq!(Vec::from_iter(modules_named(source)), ["cli", "trace"]);
        let graph = Graph::from([
            ("a".to_string(), BTreeSet::from(["b".to_string()])),
            ("b".to_string(), BTreeSet::from(["c".to_string()])),
            ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ]);
        assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    }

    /// The graph of the modules under `src`. `main.rs` is left out: as the crate root
    /// it declares every module, and names them without `crate::`.
    fn tour_graph(src: &Path) -> Graph {
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        for file in rust_files(src) {
            let top = file.strip_prefix(src).unwrap().components().next().unwrap();
            let module = top.as_os_str().to_string_lossy().replace(".rs", "");
            let text = fs::read_to_string(&file).unwrap();
            sources.entry(module).or_default().push_str(&text);
        }
        sources.remove("main");
        let known: BTreeSet<String> = sources.keys().cloned().collect();
        sources
            .iter()
            .map(|(module, text)| {
                let uses = modules_named(text)
                    .into_iter()
                    .filter(|other| other != module && known.contains(other))
                    .collect();
                (module.clone(), uses)
            })
            .collect()
    }

    fn rust_files(directory: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
        files
    }

    /// The first name of every path after `crate::` in `source`'s code. Comment lines
    /// are dropped first: a doc link is not a dependency.
    fn modules_named(source: &str) -> BTreeSet<String> {
        let code: Vec<&str> = source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect();
        let code = code.join("\n");
        let mut names = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(group) => names.extend(group_heads(group).filter_map(leading_name)),
                None => names.extend(leading_name(rest)),
            }
        }
        names
    }

    /// The paths of a braced group, up to its closing brace: `a, b::{c, d}}` gives
    /// `a` and `b::{c, d}`.
    fn group_heads(group: &str) -> impl Iterator<Item = &str> {
        let mut depth = 0;
        let mut paths = Vec::new();
        let mut start = 0;
        for (at, character) in group.char_indices() {
            match character {
                '{' => depth += 1,
                '}' if depth > 0 => depth -= 1,
                ',' | '}' if depth == 0 => {
                    paths.push(&group[start..at]);
                    start = at + 1;
                    if character == '}' {
                        break;
                    }
                }
                _ => {}
            }
        }
        paths.into_iter()
    }

    fn leading_name(path: &str) -> Option<String> {
        let name: String = path
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    }

    /// A cycle in `graph`, as the path that closes it (`a -> b -> a`), if there is one:
    /// a depth-first walk that meets a module already on its own path.
    fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
        fn walk(module: &str, graph: &Graph, path: &mut Vec<String>) -> Option<Vec<String>> {
            if let Some(first) = path.iter().position(|on_path| on_path == module) {
                return Some([&path[first..], &[module.to_string()]].concat());
            }
            path.push(module.to_string());
            let uses = graph.get(module).into_iter().flatten();
            let cycle = uses.into_iter().find_map(|next| walk(next, graph, path));
            path.pop();
            cycle
        }
        graph
            .keys()
            .find_map(|module| walk(module, graph, &mut Vec::new()))
    }
}

/// Step 7 runs its units on the work-stealing runtime, one worker per core: every
/// unit is done, on no more threads than workers, and the row says how the workers
/// shared them, in the table and in `--json`. (That `cpu` units gain from the cores is
/// the step's point, but a loaded machine may give the runtime one core: a speedup is
/// shown by running it, never asserted.)
#[test]
fn step_7_runs_on_the_runtimes_workers_and_counts_steals_and_parks() {
    for work in ["sleep", "cpu"] {
        let lines = tour_json(&[
            "--step",
            "7",
            "--units",
            "6",
            "--unit-ms",
            "5",
            "--work",
            work,
        ]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["step"], 7);
        assert_eq!(line["name"], "work-stealing");
        assert_eq!(line["units_done"], 6, "{line}");
        let workers = line["worker_threads"].as_u64().expect("worker_threads");
        assert!(workers >= 1, "{line}");
        let threads = line["threads"].as_u64().unwrap();
        assert!((1..=workers).contains(&threads), "{line}");
        assert!(line["steals"].is_u64() && line["parks"].is_u64(), "{line}");
    }
    let output = tour(&["--step", "7", "--units", "6", "--unit-ms", "5"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8(output.stdout).unwrap();
    let row = table
        .lines()
        .position(|line| line.starts_with("7 "))
        .expect("a row for step 7");
    let counts = table.lines().nth(row + 1).unwrap();
    assert!(
        counts.contains("steal") && counts.contains("park"),
        "{table}"
    );
}
