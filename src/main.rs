//! `tour`: runs each step of async-from-scratch on the same workload and puts the
//! results side by side. `cargo run --release` runs it with the default workload;
//! `cargo run --release -- --help` lists the options.

mod child;
mod cli;
mod executor_lane;
mod explain;
mod fd_limit;
mod html_report;
mod in_flight;
mod memory;
mod output;
mod progress;
mod report;
mod runner;
mod scaling;
mod steps;
mod svg_scaling;
mod svg_timeline;
mod terminal_timeline;
mod ticks;
mod trace;
mod words;

use async_scratch::work::WorkKind;
use output::say;
use report::Baseline;
use runner::{Outcome, Settings};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_checked(); // a bad option exits here, with code 2
    if let Some(case) = &cli.failure_child {
        return steps::step5::child_main(case);
    }
    if let Some(path) = &cli.trace {
        // Checked before anything runs: a typo should not cost a 25-second tour.
        if let Err(error) = std::fs::File::create(path) {
            eprintln!(
                "error: cannot write the trace to {}: {error}",
                path.display()
            );
            return ExitCode::from(2);
        }
    }
    if cli.explain {
        return run_explain(&cli);
    }
    if let Some(dir) = &cli.report {
        match html_report::prepare(dir) {
            Ok(html_report::Destination::New) => {}
            Ok(html_report::Destination::EarlierReport) => {
                eprintln!("note: replacing the earlier report in {}", dir.display());
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let mut any_failed = false;
    let table = cli
        .selected_steps()
        .next()
        .is_some()
        .then(|| run_table(&cli));
    let scale = cli.scale.then(|| run_scaling(&cli));
    if let Some(table) = &table {
        any_failed |= table.any_failed;
    }
    // Before the report is written, which shows them too.
    let failures = if cli.runs_failures() {
        run_failures(cli.json)
    } else {
        Vec::new()
    };
    if let Some(dir) = &cli.report {
        let results: Vec<html_report::StepResult<'_>> = match &table {
            Some(table) => table.ran.iter().map(|(step, m)| (*step, m)).collect(),
            None => Vec::new(),
        };
        let baseline = table
            .as_ref()
            .map_or(Baseline::Nominal(cli.workload().sequential_time()), |t| {
                t.baseline
            });
        let extras = html_report::Extras {
            same_axis: cli.report_same_axis,
            failures: &failures,
            scaling: scale.as_deref().map(|points| (points, cli.budget())),
        };
        if let Err(error) = html_report::write(dir, &cli.workload(), &results, baseline, &extras) {
            eprintln!("error: {error}");
            any_failed = true;
        }
    }
    if cli.runs_many_connections() {
        any_failed |= !run_many_connections(&cli);
    }
    if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--explain`: a few of step 4's units, every event told as it happens; and, with
/// `--trace`, the same events in the trace.
fn run_explain(cli: &cli::Cli) -> ExitCode {
    let work = cli.workload().work;
    if work.kind == WorkKind::Cpu {
        // As for the table: a cpu unit computes for its time only once calibrated.
        async_scratch::work::calibrate_cpu();
    }
    say!(
        "Step 4, explained: {} of {} {}, each a task on one thread. Each line is one event",
        words::count(cli.explain_units, "unit"),
        work.kind,
        words::format_duration(work.duration),
    );
    say!("of the executor's loop, told as it happens, timed from the first:");
    let moments = match explain::run(cli.explain_units, work) {
        Ok(moments) => moments,
        Err(error) => {
            eprintln!("error: step 4's units failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.trace {
        if let Err(error) = trace::write_explained(path, &moments) {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// What the table's run left for the report.
struct TableRun {
    ran: Vec<(&'static steps::Step, runner::Measured)>,
    baseline: Baseline,
    any_failed: bool,
}

/// The table: steps 0 to 4 and step 6's two rows, side by side.
fn run_table(cli: &cli::Cli) -> TableRun {
    let workload = cli.workload();
    let cores = runner::machine_cores();
    let settings = Settings {
        budget: cli.budget(),
        cores,
        progress: !cli.json && std::io::stderr().is_terminal(),
    };
    if workload.work.kind == WorkKind::Cpu {
        // Measured once, up front, so that no step's wall time includes it.
        async_scratch::work::calibrate_cpu();
    }
    if !cli.json {
        say!("{}", report::header(&workload, cores));
    }
    let mut baseline = Baseline::Nominal(workload.sequential_time());
    let mut any_failed = false;
    let mut ran = Vec::new();
    for step in cli.selected_steps() {
        if let Some(note) = (step.note)(&workload) {
            eprintln!("{note}");
        }
        let outcome = runner::run_step(step, &workload, &settings);
        if let (0, Outcome::Ran(measured)) = (step.number, &outcome) {
            baseline = Baseline::Measured(measured.wall);
        }
        any_failed |= matches!(outcome, Outcome::Failed(_));
        if cli.json {
            say!("{}", report::json_line(step, &workload, &outcome, baseline));
        } else {
            say!("{}", report::row(step, &outcome, baseline));
        }
        if let Outcome::Ran(measured) = outcome {
            ran.push((step, measured));
        }
    }
    let spans: Vec<trace::StepSpans<'_>> = ran
        .iter()
        .map(|(step, m)| (*step, m.spans.as_slice()))
        .collect();
    if !cli.json {
        say!("{}", report::footer(baseline));
        print_timelines(&ran);
    }
    if let Some(path) = &cli.trace {
        if let Err(error) = trace::write_trace(path, &spans) {
            eprintln!("error: {error}");
            any_failed = true;
        }
    }
    TableRun {
        ran,
        baseline,
        any_failed,
    }
}

/// `--scale`: every strategy at every size, each point printed as it is measured.
fn run_scaling(cli: &cli::Cli) -> Vec<scaling::Point> {
    let cores = runner::machine_cores();
    if !cli.json {
        say!(
            "\nScaling: each strategy at 10 to {} units of 10 ms, each run in a process of its own",
            cli.scale_up_to
        );
    }
    let points = scaling::run(
        &cli.workload(),
        cli.budget(),
        cores,
        cli.scale_up_to,
        |point| {
            if cli.json {
                say!("{}", report::scale_json(point));
            } else {
                say!("{}", report::scale_row(point));
            }
        },
    );
    if !cli.json {
        for note in svg_scaling::skipped_notes(&points, cli.budget()) {
            say!("  {note}");
        }
    }
    points
}

/// Each step's timeline in Unicode blocks, under the table.
fn print_timelines(ran: &[(&steps::Step, runner::Measured)]) {
    let width = terminal_timeline::terminal_width();
    say!("\ntimelines: time runs across each step's own wall time, one row per lane");
    say!("(a thread, or a task in steps 4 and 6); each unit in █ or ▒ in turn, · where idle;");
    say!("past 8 lanes, one row of units in flight instead; in step 4, the executor's own");
    say!("thread on top: █ where it was busy polling, ▒ partly, · parked:");
    for (step, measured) in ran {
        say!("step {}", step.label());
        for row in terminal_timeline::render(step, measured, width) {
            say!("{row}");
        }
    }
}

/// Step 5: each failure case, printed as soon as it has run; the cases, for the report.
fn run_failures(json: bool) -> Vec<steps::step5::Case> {
    if !json {
        say!("\n{}", report::failures_header());
    }
    let mut cases = Vec::new();
    for case in steps::step5::run_cases() {
        if json {
            say!("{}", report::failure_json(&case));
        } else {
            say!("{}", report::failure_text(&case));
        }
        cases.push(case);
    }
    cases
}

/// Step 6's many connections, printed when they have run; whether they ran.
fn run_many_connections(cli: &cli::Cli) -> bool {
    if !cli.json {
        say!("\n{}", report::many_connections_header(cli.connections));
    }
    let unit = cli.workload().work.duration;
    let outcome = steps::step6::many::run(cli.connections, unit);
    if cli.json {
        say!(
            "{}",
            report::many_connections_json(cli.connections, &outcome)
        );
    } else {
        say!("{}", report::many_connections_text(&outcome));
    }
    outcome.is_ok()
}
