//! The command line. Every bound is checked by clap, so a bad option is a one-line
//! message and exit code 2, never a panic.

use crate::steps::{Workload, FAILURES_STEP, LAST_STEP, STEPS};
use async_scratch::work::{Work, WorkKind};
use clap::builder::{PossibleValuesParser, RangedU64ValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use std::time::Duration;

/// The largest `--units`: a million units is what the coroutine step is built to
/// show; beyond that the tour would mostly measure memory for spans.
const MAX_UNITS: u64 = 1_000_000;

/// The largest `--workers`: far past any speedup, still well under OS thread limits.
const MAX_WORKERS: u64 = 1024;

/// The longest unit, one minute: longer ones teach nothing more, only wait.
const MAX_UNIT_MS: u64 = 60_000;

/// Threads, tasks and coroutines, built from scratch and run side by side.
///
/// Runs each step of the tutorial on the same workload and prints one table: wall
/// time, speedup over step 0, threads used, and the most units in flight at once.
#[derive(Parser, Debug)]
#[command(name = "tour", version)]
pub struct Cli {
    /// Run only this step (default: every step).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=i64::from(LAST_STEP)))]
    pub step: Option<u8>,

    /// How many units of work each step runs.
    #[arg(long, default_value_t = 100, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_UNITS))]
    pub units: usize,

    /// How long one unit takes, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=MAX_UNIT_MS))]
    pub unit_ms: u64,

    /// Worker threads for the steps that use a thread pool.
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_WORKERS))]
    pub workers: usize,

    /// What a unit does: `sleep` (a blocking wait, like I/O) or `cpu` (computation).
    #[arg(
        long,
        default_value = "sleep",
        value_parser = PossibleValuesParser::new(["sleep", "cpu"])
            .try_map(|name| name.parse::<WorkKind>()),
    )]
    pub work: WorkKind,

    /// Skip a step expected to run longer than this many seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub budget_secs: u64,

    /// Print one JSON object per step and line, for scripts, instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Also write every span as Chrome trace-event JSON to FILE (open it in Perfetto
    /// or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,

    /// Also write DIR/index.html: the table and every step's timeline, for a browser.
    #[arg(long, value_name = "DIR")]
    pub report: Option<std::path::PathBuf>,

    /// Also run each strategy (steps 0-4) at 10, 100, ... units of 10 ms, each in a
    /// process of its own, for wall time and peak memory against size (charted with
    /// --report). Sizes over --budget-secs are skipped.
    #[arg(long)]
    pub scale: bool,

    /// The largest size --scale runs (only with --scale).
    #[arg(long, value_name = "UNITS", requires = "scale", default_value_t = 1_000_000, value_parser = RangedU64ValueParser::<usize>::new().range(10..=MAX_UNITS))]
    pub scale_up_to: usize,

    /// Internal: run one failing case of step 5 (the tour starts itself with this, in
    /// a child process it can stop).
    #[arg(long, hide = true)]
    pub failure_child: Option<String>,
}

impl Cli {
    /// The command line, parsed and checked: a bad option, or a combination of options
    /// that cannot work, ends the program here with clap's message and code 2.
    pub fn parse_checked() -> Cli {
        let cli = Cli::parse();
        if let Err(error) = cli.check_combinations() {
            error.exit();
        }
        cli
    }

    /// What each option accepts alone, clap checks; these are the combinations it
    /// cannot see are wrong.
    fn check_combinations(&self) -> Result<(), clap::Error> {
        if self.trace.is_some() && self.step == Some(FAILURES_STEP) {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--trace records the units of steps 0 to 4, and step 5 has none (its \
                 failure cases run apart, most in child processes): drop --trace, or \
                 choose a step from 0 to 4",
            ));
        }
        Ok(())
    }

    pub fn workload(&self) -> Workload {
        Workload {
            units: self.units,
            work: Work::new(self.work, Duration::from_millis(self.unit_ms)),
            workers: self.workers,
        }
    }

    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.budget_secs)
    }

    /// Whether step 5, the failure cases, is to run.
    pub fn runs_failures(&self) -> bool {
        self.step.is_none_or(|n| n == FAILURES_STEP)
    }

    pub fn selected_steps(&self) -> impl Iterator<Item = &'static crate::steps::Step> {
        let only = self.step;
        STEPS
            .iter()
            .filter(move |step| only.is_none_or(|n| n == step.number))
    }
}
