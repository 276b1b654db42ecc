//! The command line. Every bound is checked by clap, so a bad option is refused before
//! anything runs: `error:` and what is wrong on the first line, a usage hint under it,
//! and exit code 2, never a panic.

use crate::steps::{table_steps, UnitForm, Workload, FAILURES_STEP, LAST_STEP, REQUESTS_STEP};
use async_scratch::work::{Work, WorkKind};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use std::fmt;
use std::time::Duration;

/// The whole numbers a numeric option accepts, both ends included. The one value is
/// what clap checks, what `--help` says and what a refusal says, so the three cannot
/// disagree. (The numeric options' help is set with `help = format!(..)` for that
/// reason, not with a doc comment, which could not name the bounds.)
#[derive(Clone, Copy, Debug)]
struct Bounds {
    low: u64,
    high: u64,
}

/// `--step`: the table's steps, step 5 (the failure cases) and step 6.
const STEP_NUMBERS: Bounds = Bounds {
    low: 0,
    high: LAST_STEP as u64,
};

/// The step `--step` names: a number, and for step 4 maybe a version's letter (`4b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepChoice {
    pub number: u8,
    /// `None`: every row of the step.
    pub letter: Option<char>,
}

/// The versions of step 4 that `--step` takes by letter.
const STEP_4_LETTERS: [char; 3] = ['a', 'b', 'c'];

impl StepChoice {
    /// `text` as a step: `0` to `6`, or `4a`, `4b`, `4c`; or why it is not one, in the
    /// words of [`Bounds::check`] with the lettered versions added.
    fn parse(text: &str) -> Result<StepChoice, String> {
        if let Some(&letter) = STEP_4_LETTERS.iter().find(|l| text == format!("4{l}")) {
            return Ok(StepChoice {
                number: 4,
                letter: Some(letter),
            });
        }
        let number = STEP_NUMBERS.parser::<u8>()(text)
            .map_err(|reason| format!("{reason}, or 4a, 4b or 4c for one version of step 4"))?;
        Ok(StepChoice {
            number,
            letter: None,
        })
    }

    /// Whether `step`, a row of the table, is one this choice runs.
    fn selects(self, step: &crate::steps::Step) -> bool {
        let version = step.part.and_then(crate::steps::Part::letter);
        step.number == self.number && self.letter.is_none_or(|letter| version == Some(letter))
    }
}

/// `--units`: up to a million, what the coroutine step is built to show; beyond that
/// the tour would mostly measure memory for spans.
const UNITS: Bounds = Bounds {
    low: 1,
    high: 1_000_000,
};

/// `--unit-ms`: up to a minute; longer units teach nothing more, only wait.
const UNIT_MS: Bounds = Bounds {
    low: 1,
    high: 60_000,
};

/// `--workers`: far past any speedup, still well under OS thread limits.
const WORKERS: Bounds = Bounds { low: 1, high: 1024 };

/// `--connections`: up to 20,000. Each connection takes a local port for its client
/// end, and Linux hands out about 28,000 (`ip_local_port_range`, 32768 to 60999):
/// this leaves the rest of the machine its share.
const CONNECTIONS: Bounds = Bounds {
    low: 1,
    high: 20_000,
};

/// `--budget-secs`: up to a day; a step that needs longer is a mistake, not a plan.
const BUDGET_SECS: Bounds = Bounds {
    low: 1,
    high: 86_400,
};

/// `--explain-units`: a few. Each unit adds about five lines to the story, all alike
/// past the first two or three; ten is already a screenful.
const EXPLAIN_UNITS: Bounds = Bounds { low: 1, high: 10 };

/// `--scale-up-to`: from the smallest size `--scale` runs to the largest `--units`.
const SCALE_UP_TO: Bounds = Bounds {
    low: crate::scaling::SIZES[0] as u64,
    high: UNITS.high,
};

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} to {}", self.low, self.high)
    }
}

impl Bounds {
    /// A clap value parser for these bounds. It takes `-1` as a number, too (with
    /// `allow_negative_numbers` on the option, clap passes it on rather than read it as
    /// an option), so that a user who typed one hears what is wrong with the number.
    fn parser<T: TryFrom<u64>>(
        self,
    ) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
        move |text| {
            let number = self.check(text)?;
            T::try_from(number).map_err(|_| format!("must be {self}"))
        }
    }

    /// `text` as a number within the bounds, or why it is not one, in words that
    /// follow clap's `invalid value '-1' for '--units <UNITS>': `.
    fn check(self, text: &str) -> Result<u64, String> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(format!("must be a whole number {self}"));
        }
        // Too many digits for a u64 is out of bounds too: no range here reaches that far.
        let number = digits.parse::<u64>().ok().filter(|&n| !negative || n == 0);
        match number {
            Some(n) if (self.low..=self.high).contains(&n) => Ok(n),
            _ if negative && self.low > 0 => Err(format!("must be positive, {self}")),
            _ if negative => Err(format!("must not be negative, {self}")),
            _ => Err(format!("must be {self}")),
        }
    }
}

/// Threads, tasks and coroutines, built from scratch and run side by side.
///
/// Runs each step of the tutorial on the same workload and prints one table: wall
/// time, speedup over step 0, threads used, and the most units in flight at once.
#[derive(Parser, Debug)]
#[command(name = "tour", version)]
pub struct Cli {
    #[arg(
        long,
        help = format!(
            "Run only this step, {STEP_NUMBERS}, or one version of step 4's executor: 4a, 4b \
             or 4c (default: every step)"
        ),
        allow_negative_numbers = true,
        value_parser = StepChoice::parse,
    )]
    pub step: Option<StepChoice>,

    #[arg(
        long,
        help = format!("How many units of work each step runs, {UNITS}"),
        default_value_t = 100,
        allow_negative_numbers = true,
        value_parser = UNITS.parser::<usize>(),
    )]
    pub units: usize,

    #[arg(
        long,
        help = format!("How long one unit takes, in milliseconds, {UNIT_MS}"),
        default_value_t = 100,
        allow_negative_numbers = true,
        value_parser = UNIT_MS.parser::<u64>(),
    )]
    pub unit_ms: u64,

    #[arg(
        long,
        help = format!("Worker threads for the steps that use a thread pool, {WORKERS}"),
        default_value_t = 8,
        allow_negative_numbers = true,
        value_parser = WORKERS.parser::<usize>(),
    )]
    pub workers: usize,

    /// What a unit does: `sleep` (a blocking wait, like I/O) or `cpu` (computation).
    #[arg(
        long,
        default_value = "sleep",
        value_parser = PossibleValuesParser::new(["sleep", "cpu"])
            .try_map(|name| name.parse::<WorkKind>()),
    )]
    pub work: WorkKind,

    #[arg(
        long,
        help = format!("Skip a step expected to run longer than this many seconds, {BUDGET_SECS}"),
        default_value_t = 60,
        allow_negative_numbers = true,
        value_parser = BUDGET_SECS.parser::<u64>(),
    )]
    pub budget_secs: u64,

    #[arg(
        long,
        help = format!(
            "Connections step 6 holds open at once on one thread, {CONNECTIONS} \
             (fewer if the limit on open files is lower: the tour says so)"
        ),
        default_value_t = 10_000,
        allow_negative_numbers = true,
        value_parser = CONNECTIONS.parser::<usize>(),
    )]
    pub connections: usize,

    /// Run step 4 on `UnitFuture`, the state machine an `async fn` compiles into, written
    /// by hand, instead of on the `async fn run_unit`: the same table, from the other form.
    #[arg(long, conflicts_with = "explain")]
    pub unit_future: bool,

    /// Print one JSON object per step and line, for scripts, instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Also write every span as Chrome trace-event JSON to FILE (open it in Perfetto
    /// or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,

    /// Also write DIR/index.html: the table and every step's timeline, for a browser.
    /// DIR is created if missing; an earlier report there is replaced (the tour says
    /// so), and an index.html the tour did not write is refused, not overwritten.
    #[arg(long, value_name = "DIR")]
    pub report: Option<std::path::PathBuf>,

    /// With --report: draw every step's timeline on one time scale, the slowest step's,
    /// so that their lengths compare by eye (by default each step fills the width).
    #[arg(long, requires = "report")]
    pub report_same_axis: bool,

    /// Also run each strategy (steps 0-4) at 10, 100, ... units of 10 ms, each in a
    /// process of its own, for wall time and peak memory against size (charted with
    /// --report). Sizes over --budget-secs are skipped.
    #[arg(long)]
    pub scale: bool,

    #[arg(
        long,
        value_name = "UNITS",
        help = format!("The largest size --scale runs, {SCALE_UP_TO} (only with --scale)"),
        requires = "scale",
        default_value_t = 1_000_000,
        allow_negative_numbers = true,
        value_parser = SCALE_UP_TO.parser::<usize>(),
    )]
    pub scale_up_to: usize,

    /// Instead of the table, run a few of step 4's units on the executor and tell every
    /// spawn, poll, wake and park as it happens, one line each (with --trace, also as
    /// events in the trace). --unit-ms and --work apply.
    #[arg(long, conflicts_with_all = ["step", "json", "report", "scale"])]
    pub explain: bool,

    #[arg(
        long,
        value_name = "UNITS",
        help = format!("How many units --explain runs, {EXPLAIN_UNITS} (only with --explain)"),
        requires = "explain",
        default_value_t = 3,
        allow_negative_numbers = true,
        value_parser = EXPLAIN_UNITS.parser::<usize>(),
    )]
    pub explain_units: usize,

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
        if self.trace.is_some() && self.only_step(FAILURES_STEP) {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--trace records the units of steps 0 to 4 and 6, and step 5 has none \
                 (its failure cases run apart, most in child processes): drop --trace, \
                 or choose another step",
            ));
        }
        if self.unit_future && self.step.is_some_and(|step| step.number != 4) {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--unit-future changes how step 4 writes its unit, and the chosen step is \
                 not step 4: drop --unit-future, or choose step 4 (or 4a, 4b, 4c)",
            ));
        }
        Ok(())
    }

    pub fn workload(&self) -> Workload {
        Workload {
            units: self.units,
            work: Work::new(self.work, Duration::from_millis(self.unit_ms)),
            workers: self.workers,
            unit_form: if self.unit_future {
                UnitForm::StateMachine
            } else {
                UnitForm::AsyncFn
            },
        }
    }

    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.budget_secs)
    }

    /// Whether `--step` asked for step `number`, and only it.
    fn only_step(&self, number: u8) -> bool {
        self.step.is_some_and(|step| step.number == number)
    }

    /// Whether step 5, the failure cases, is to run.
    pub fn runs_failures(&self) -> bool {
        self.step.is_none() || self.only_step(FAILURES_STEP)
    }

    /// Whether step 6's many-connections run is to run.
    pub fn runs_many_connections(&self) -> bool {
        self.step.is_none() || self.only_step(REQUESTS_STEP)
    }

    /// The table's rows to run: every one, or those of `--step` (`--step 4` runs all
    /// three versions of step 4, `--step 4b` the one).
    pub fn selected_steps(&self) -> impl Iterator<Item = &'static crate::steps::Step> {
        let only = self.step;
        table_steps().filter(move |step| only.is_none_or(|choice| choice.selects(step)))
    }
}

#[cfg(test)]
mod tests {
    use super::{StepChoice, STEP_NUMBERS, UNITS};

    /// Both ends are in; each way a number can miss gets its own words, and a number
    /// too long for any integer type is out of bounds, not "not a number".
    #[test]
    fn bounds_say_why_a_number_is_refused() {
        let refused = |reason: &str| Err(reason.to_string());
        assert_eq!(UNITS.check("1"), Ok(1));
        assert_eq!(UNITS.check("1000000"), Ok(1_000_000));
        assert_eq!(UNITS.check("0"), refused("must be from 1 to 1000000"));
        assert_eq!(
            UNITS.check("99999999999999999999999"),
            refused("must be from 1 to 1000000")
        );
        assert_eq!(
            UNITS.check("-1"),
            refused("must be positive, from 1 to 1000000")
        );
        assert_eq!(
            UNITS.check("-0"),
            refused("must be positive, from 1 to 1000000")
        );
        assert_eq!(STEP_NUMBERS.check("-0"), Ok(0));
        assert_eq!(
            STEP_NUMBERS.check("-1"),
            refused("must not be negative, from 0 to 7")
        );
        let step = |number, letter| Ok(StepChoice { number, letter });
        assert_eq!(StepChoice::parse("4"), step(4, None));
        assert_eq!(StepChoice::parse("4b"), step(4, Some('b')));
        for not_a_step in ["4d", "3a", "4B", "a", "44a", "é"] {
            let reason = StepChoice::parse(not_a_step).unwrap_err();
            assert!(
                reason.ends_with("or 4a, 4b or 4c for one version of step 4"),
                "{reason}"
            );
        }
        for not_whole in ["", "-", "1.5", "+5", "ten"] {
            assert_eq!(
                UNITS.check(not_whole),
                refused("must be a whole number from 1 to 1000000"),
                "{not_whole:?}"
            );
        }
    }
}
