//! `--report DIR`: the tour as one HTML page a learner opens in a browser: the machine
//! it ran on, the workload, the table, and each step's timeline with a sentence on what
//! to see in it, then step 5's failure cases (each tried with threads and with
//! coroutines: what happened, and what the detector reported) and, with `--scale`, the
//! scaling charts. Self-contained: inline CSS and SVG, nothing fetched from anywhere,
//! so it opens from disk.

use crate::report::Baseline;
use crate::runner::Measured;
use crate::scaling::Point;
use crate::steps::step5::{Attempt, Case};
use crate::steps::{Step, Workload};
use crate::svg_scaling::{self, Metric};
use crate::svg_timeline::{self, escape, TimeScale};
use crate::words::{count, format_duration};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

/// A step that ran, with what it measured.
pub type StepResult<'a> = (&'a Step, &'a Measured);

/// What `--report DIR` found at DIR before writing.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// No report there yet (DIR is created if missing).
    New,
    /// A report the tour wrote before, to be replaced: regenerating a report is the
    /// usual case, as a build tool rewrites its output directory, so it needs no flag;
    /// the tour only says so.
    EarlierReport,
}

/// The page's title, in [`HEAD`]: also how [`prepare`] knows a page the tour wrote.
/// (If the two part, the tour refuses to replace its own report, which
/// `a_report_over_an_earlier_one_replaces_it_and_says_so` in tests/tour.rs catches.)
const TITLE: &str = "<title>async-from-scratch: the tour</title>";

/// Checks DIR and creates it if needed: called before anything runs, so that a bad
/// path fails fast. Refused, with what to do instead: a file where the directory should
/// be, and an `index.html` the tour did not write (someone's page, which replacing
/// would lose for good).
pub fn prepare(dir: &Path) -> Result<Destination, String> {
    if dir.is_file() {
        return Err(format!(
            "--report takes a directory, and {} is a file: name a directory (it is \
             created if missing)",
            dir.display()
        ));
    }
    let index = dir.join("index.html");
    let destination = match std::fs::read_to_string(&index) {
        Ok(page) if page.contains(TITLE) => Destination::EarlierReport,
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a tour report: name another directory for \
                 --report, or move that page away",
                index.display()
            ))
        }
        Err(_) => Destination::New,
    };
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot write the report to {}: {error}", dir.display()))?;
    Ok(destination)
}

/// What the page shows besides the table's steps.
pub struct Extras<'a> {
    /// Every timeline on one time scale, the slowest step's (`--report-same-axis`).
    pub same_axis: bool,
    /// Step 5's failure cases, if they ran.
    pub failures: &'a [Case],
    /// The scaling points, and the budget they were run under, with `--scale`.
    pub scaling: Option<(&'a [Point], Duration)>,
}

/// The time scale of every timeline: each step's own, or one for all.
fn time_scale(results: &[StepResult<'_>], same_axis: bool) -> TimeScale {
    let slowest = results
        .iter()
        .map(|(_, measured)| svg_timeline::end_of(measured))
        .max();
    match slowest {
        Some(end) if same_axis => TimeScale::Shared(end),
        _ => TimeScale::Own,
    }
}

/// Writes `dir/index.html`, and each step's timeline as `dir/stepN.svg` too (for
/// pages that embed one picture, such as the README).
pub fn write(
    dir: &Path,
    workload: &Workload,
    results: &[StepResult<'_>],
    baseline: Baseline,
    extras: &Extras<'_>,
) -> Result<(), String> {
    let scale = time_scale(results, extras.same_axis);
    let write_file = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|error| format!("cannot write the report to {}: {error}", path.display()))
    };
    for &(step, measured) in results {
        let svg = svg_timeline::render(step, measured, scale);
        write_file(format!("step{}.svg", step.file_label()), svg)?;
    }
    if let Some((points, budget)) = extras.scaling {
        write_file(
            "scaling-wall.svg".to_string(),
            svg_scaling::render(points, Metric::Wall, budget),
        )?;
        write_file(
            "scaling-memory.svg".to_string(),
            svg_scaling::render(points, Metric::PeakMemory, budget),
        )?;
    }
    write_file(
        "index.html".to_string(),
        page(workload, results, baseline, extras, scale),
    )
}

fn page(
    workload: &Workload,
    results: &[StepResult<'_>],
    baseline: Baseline,
    extras: &Extras<'_>,
    scale: TimeScale,
) -> String {
    let mut html = String::from(HEAD);
    let _ = write!(
        html,
        "<h1>async-from-scratch: the tour</h1>\n<p class=\"machine\">Ran on {}.</p>\n<p>Workload: {} of {} ({}), {}.</p>\n",
        escape(&machine()),
        count(workload.units, "unit"),
        format_duration(workload.work.duration),
        workload.work.kind,
        count(workload.workers, "pool worker")
    );
    html.push_str(&table(results, baseline));
    if let TimeScale::Shared(end) = scale {
        let _ = writeln!(
            html,
            "<p>Every timeline below runs from 0 to {}, the slowest step's end \
             (<code>--report-same-axis</code>): their lengths compare by eye.</p>",
            format_duration(end)
        );
    }
    for &(step, measured) in results {
        let svg = svg_timeline::render(step, measured, scale);
        let _ = write!(
            html,
            "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
            caption(step, measured)
        );
    }
    if !extras.failures.is_empty() {
        html.push_str(&failures_section(extras.failures));
    }
    if let Some((points, budget)) = extras.scaling {
        html.push_str(&scaling_section(points, budget));
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// What was measured, in words made from the data, then what the step shows.
fn caption(step: &Step, measured: &Measured) -> String {
    let mut measured_words =
        crate::in_flight::caption(measured.peak_in_flight, measured.units_done);
    if let Some(lane) = &measured.executor_lane {
        let run = lane.end.saturating_sub(lane.start);
        let rest = if lane.parks == 0 {
            "and never parked: there was always a task to poll or a timer due"
        } else {
            "parked the rest"
        };
        let _ = write!(
            measured_words,
            "; the executor's one thread was busy {} of {}, {rest}",
            format_duration(lane.total_busy()),
            format_duration(run)
        );
    }
    if let Some(counts) = &measured.scheduler {
        let _ = write!(
            measured_words,
            "; {}",
            crate::report::scheduler_words(counts)
        );
    }
    format!(
        "<b>Measured:</b> {}. <b>Look for:</b> {}",
        escape(&measured_words),
        escape(step.look_for)
    )
}

/// Step 5: each failure case, its attempts side by side (threads, coroutines, fixes),
/// each with its outcome and the detector's report as it was given.
fn failures_section(cases: &[Case]) -> String {
    let mut html = String::from(
        "<h2 id=\"step-5\">Step 5: failure points, with threads and with coroutines</h2>\n",
    );
    for case in cases {
        let _ = writeln!(
            html,
            "<section class=\"failure\" data-case=\"{}\">\n<h3>{}. {}</h3>\n<table class=\"attempts\">\n<tr><th>attempt</th><th>what it runs</th><th>outcome</th><th>what the detector reported</th></tr>",
            case.number,
            case.number,
            escape(case.title)
        );
        for attempt in &case.attempts {
            html.push_str(&attempt_row(attempt));
        }
        let _ = writeln!(
            html,
            "</table>\n<p><b>Why:</b> {}</p>\n</section>",
            escape(case.why)
        );
    }
    html
}

fn attempt_row(attempt: &Attempt) -> String {
    let outcome = if attempt.completed {
        format!("completed in {}", format_duration(attempt.wall))
    } else {
        format!(
            "<b>did not complete</b>: stopped after {}",
            format_duration(attempt.wall)
        )
    };
    let report = match (attempt.report.is_empty(), attempt.completed) {
        (true, true) => "none".to_string(),
        (true, false) => "<i>nothing: it hung silently</i>".to_string(),
        (false, _) => {
            let first = attempt
                .reported_after
                .map(|after| format!("first report after {}:\n", format_duration(after)))
                .unwrap_or_default();
            format!(
                "<pre>{}{}</pre>",
                escape(&first),
                escape(&attempt.report.join("\n"))
            )
        }
    };
    format!(
        "<tr class=\"attempt\" data-label=\"{}\"><td>{}</td><td>{}</td><td>{outcome}</td><td>{report}</td></tr>\n",
        attempt.label,
        attempt.label,
        escape(&attempt.what)
    )
}

fn scaling_section(points: &[Point], budget: Duration) -> String {
    let mut html = String::from("<h2>How each strategy scales</h2>\n");
    for metric in [Metric::Wall, Metric::PeakMemory] {
        let svg = svg_scaling::render(points, metric, budget);
        let _ = writeln!(html, "<figure>\n{svg}\n</figure>");
    }
    html.push_str(
        "<p>What to see: the loop (step 0) and the tasks awaited one by one (step 2) grow in \
         proportion to the units, a line of slope 1; the pool (steps 1 and 3) is lower by its \
         number of workers, and no more. The coroutines (step 4) stay near one unit's time \
         until starting the units costs more than a unit lasts, then grow with the units too. \
         Memory: the pool steps stay nearly flat, since their threads are fixed however many \
         units wait in the queue; the coroutines grow by a few hundred bytes a unit, every \
         unit being a live task at once.</p>\n",
    );
    html
}

const HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>async-from-scratch: the tour</title>\n<style>\nbody { font-family: sans-serif; max-width: 960px; margin: 2em auto; color: #222; }\ntable { border-collapse: collapse; margin: 1em 0 2em; }\nth, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }\nth:nth-child(2), td:nth-child(2) { text-align: left; }\nfigure { margin: 0 0 2em; }\nfigcaption { color: #444; margin-top: 4px; }\ntable.attempts th, table.attempts td { text-align: left; vertical-align: top; }\ntable.attempts pre { white-space: pre-wrap; margin: 0; font-size: 12px; }\nsection.failure { margin-bottom: 2em; }\n.machine { color: #555; }\n</style>\n</head>\n<body>\n";

fn table(results: &[StepResult<'_>], baseline: Baseline) -> String {
    let mut html = String::from(
        "<table>\n<tr><th>step</th><th>what it does</th><th>wall</th><th>cpu</th><th>speedup</th><th>threads</th><th>peak in flight</th></tr>\n",
    );
    for &(step, measured) in results {
        let speedup = baseline.speedup(measured);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{speedup:.1}×</td><td>{}</td><td>{}</td></tr>",
            step.label(),
            escape(step.what),
            format_duration(measured.wall),
            format_duration(measured.cpu),
            measured.threads,
            measured.peak_in_flight
        );
    }
    html.push_str("</table>\n");
    html
}

/// The machine, in words: CPU model (from /proc/cpuinfo on Linux), cores, OS.
fn machine() -> String {
    let cores = crate::runner::machine_cores();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(|m| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "an unknown CPU".to_string());
    format!(
        "{model}, {}, {} {}",
        count(cores, "core"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
