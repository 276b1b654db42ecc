//! The tour's steps. Each step is a short file that reads like the tutorial's step:
//! the machinery lives in the `async-scratch` library, the step only shows how it is
//! used. Every step runs the same [`Workload`] and records its units on a
//! [`Timeline`], which is all the runner needs to measure it.

use async_scratch::executor::JoinError;
use async_scratch::pool::PoolError;
use async_scratch::task::TaskError;
use async_scratch::timeline::{Span, Timeline};
use async_scratch::work::{Work, WorkKind};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::time::Duration;

pub mod step0;
pub mod step1;
pub mod step2;
pub mod step3;
pub mod step4;
pub mod step5;
pub mod step6;
pub mod step7;

/// What every step runs: `units` units of `work`, with `workers` threads where a step
/// uses a pool.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub units: usize,
    pub work: Work,
    pub workers: usize,
    /// How step 4 writes its unit: `--unit-future` picks the hand-written state machine.
    pub unit_form: UnitForm,
}

/// Step 4's unit of work, as written: the `async fn` or the state machine it compiles
/// into, written by hand. Both record the same spans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnitForm {
    /// `async_scratch::coroutine::run_unit`.
    #[default]
    AsyncFn,
    /// `async_scratch::coroutine::UnitFuture` (`--unit-future`).
    StateMachine,
}

impl UnitForm {
    /// The form's name in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            UnitForm::AsyncFn => "async-fn",
            UnitForm::StateMachine => "unit-future",
        }
    }
}

impl Workload {
    /// The time of every unit one after another: step 0's time, if nothing got in the way.
    pub fn sequential_time(&self) -> Duration {
        self.work
            .duration
            .saturating_mul(saturating_u32(self.units))
    }

    /// The cost of running every unit as a task, beyond the units' own time: `per_task`
    /// (spawning a task, its first poll, its timer, its span, its join: the step's own
    /// figure) times the unit count. A million units cost seconds however short each
    /// unit is, and an estimate without it let such a run past the budget.
    pub(crate) fn task_costs(&self, per_task: Duration) -> Duration {
        per_task.saturating_mul(saturating_u32(self.units))
    }

    /// The time of `units` spread over `lanes` lanes that truly run at once.
    pub(crate) fn spread_over(&self, lanes: usize) -> Duration {
        let rounds = self.units.div_ceil(lanes.max(1));
        self.work.duration.saturating_mul(saturating_u32(rounds))
    }

    /// The time of the units on the pool: waits overlap across every worker, but
    /// computation only across the cores the machine has.
    pub fn pool_time(&self, cores: usize) -> Duration {
        match self.work.kind {
            WorkKind::Sleep => self.spread_over(self.workers),
            WorkKind::Cpu => self.spread_over(self.workers.min(cores)),
        }
    }
}

fn saturating_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Why a step could not finish its run.
#[derive(Debug)]
pub enum StepError {
    Pool(PoolError),
    /// Step 7's runtime could not start its worker threads.
    Runtime(io::Error),
    Task(TaskError),
    Join(JoinError),
    /// Step 6 could not make or serve its connections: the server failed or would
    /// not stop, or the limit on open files is too low.
    Network(String),
    /// One of step 6's requests failed.
    Request {
        unit: usize,
        error: io::Error,
    },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Pool(error) => write!(f, "{error}"),
            StepError::Runtime(error) => write!(f, "the runtime's workers did not start: {error}"),
            StepError::Task(error) => write!(f, "{error}"),
            StepError::Join(error) => write!(f, "{error}"),
            StepError::Network(reason) => write!(f, "{reason}"),
            StepError::Request { unit, error } => write!(f, "the request of unit {unit}: {error}"),
        }
    }
}

impl From<PoolError> for StepError {
    fn from(error: PoolError) -> Self {
        StepError::Pool(error)
    }
}

impl From<JoinError> for StepError {
    fn from(error: JoinError) -> Self {
        StepError::Join(error)
    }
}

impl From<TaskError> for StepError {
    fn from(error: TaskError) -> Self {
        StepError::Task(error)
    }
}

/// What a lane of a step's pictures stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// One lane per OS thread (steps 0 to 3).
    Threads,
    /// One lane per task (steps 4 and 6: every unit is a task, all on one thread).
    Tasks,
}

/// Which of a step's rows: step 4 builds its executor in three versions, lettered a
/// to c; step 6 runs its requests two ways, a row each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// 4a: every future polled round and round.
    BusyPoll,
    /// 4b: wakers, and a thread that parks.
    Park,
    /// 4c: the library's executor.
    Executor,
    Threads,
    Coroutines,
}

impl Part {
    /// The letter of a version of step 4, which the table and `--step` use (`4b`).
    pub fn letter(self) -> Option<char> {
        match self {
            Part::BusyPoll => Some('a'),
            Part::Park => Some('b'),
            Part::Executor => Some('c'),
            Part::Threads | Part::Coroutines => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::BusyPoll => "busy-poll",
            Part::Park => "park",
            Part::Executor => "executor",
            Part::Threads => "threads",
            Part::Coroutines => "coroutines",
        }
    }
}

/// One step of the tour, as the runner sees it.
pub struct Step {
    pub number: u8,
    /// Which row of its step this is, for a step with more than one (step 6).
    pub part: Option<Part>,
    /// What a learner should see in this step's timeline, one sentence.
    pub look_for: &'static str,
    /// What a lane is in this step's pictures.
    pub lanes: Lanes,
    /// A short name, for the table and for `--json`.
    pub name: &'static str,
    /// What the step does, in a few words, for the table.
    pub what: &'static str,
    /// Runs the workload, recording every unit on the timeline.
    pub run: fn(&Workload, &Timeline) -> Result<(), StepError>,
    /// About how long `run` takes on a machine with this many cores; used to skip a
    /// step that would run for hours, and to decide whether a progress bar is worth it.
    pub expected_time: fn(&Workload, usize) -> Duration,
    /// What a learner should know before this step runs on a workload, if anything:
    /// printed on standard error, before the diagnostics it explains.
    pub note: fn(&Workload) -> Option<String>,
}

impl Step {
    /// The lane `span` is drawn in.
    pub fn lane_of(&self, span: &Span) -> usize {
        match self.lanes {
            Lanes::Threads => span.lane.0,
            Lanes::Tasks => span.unit,
        }
    }

    /// `spans` grouped by lane, lanes in order, each lane's spans in start order.
    pub fn spans_by_lane<'a>(&self, spans: &'a [Span]) -> BTreeMap<usize, Vec<&'a Span>> {
        let mut lanes: BTreeMap<usize, Vec<&Span>> = BTreeMap::new();
        for span in spans {
            lanes.entry(self.lane_of(span)).or_default().push(span);
        }
        for lane_spans in lanes.values_mut() {
            lane_spans.sort_by_key(|span| span.start);
        }
        lanes
    }

    /// The step's number, and its version's letter if it has one: `3`, `4a`, `6`. The
    /// table's first column, and what `--step` takes.
    pub fn short_label(&self) -> String {
        match self.part.and_then(Part::letter) {
            Some(letter) => format!("{}{letter}", self.number),
            None => self.number.to_string(),
        }
    }

    /// The step's number, and its part if it has one: `3`, `4a`, `6 threads`. How the
    /// timelines and pictures name a row.
    pub fn label(&self) -> String {
        match self.part {
            Some(part) if part.letter().is_none() => format!("{} {}", self.number, part.name()),
            _ => self.short_label(),
        }
    }

    /// The label as a file name's part: `4a`, `6-threads`.
    pub fn file_label(&self) -> String {
        self.label().replace(' ', "-")
    }

    /// How a lane is named in pictures and traces.
    pub fn lane_name(&self, lane: usize) -> String {
        match self.lanes {
            Lanes::Threads => format!("thread #{lane}"),
            Lanes::Tasks => format!("task {lane}"),
        }
    }
}

/// The strategies, on the simulated unit of work, in tour order: what `--scale`
/// compares, with step 4 as its executor, 4c. The table also has 4a and 4b, the
/// executor's first versions, and step 6's rows, the same strategies on a real request
/// (see [`table_steps`]).
pub const STEPS: [Step; 5] = [
    step0::STEP,
    step1::STEP,
    step2::STEP,
    step3::STEP,
    step4::executor::STEP,
];

/// Every row of the table, in tour order: steps 0 to 3, step 4's three versions,
/// step 6's two, then step 7.
pub fn table_steps() -> impl Iterator<Item = &'static Step> {
    STEPS[..4]
        .iter()
        .chain(step4::ROWS.iter())
        .chain(step6::ROWS.iter())
        .chain(std::iter::once(&step7::STEP))
}

/// Where `step` comes in the table, from 0: what tells rows apart in a trace.
pub fn table_position(step: &Step) -> usize {
    table_steps()
        .position(|row| row.number == step.number && row.part == step.part)
        .unwrap_or(0)
}

/// Step 5 is not a row of the table: it runs failure cases, each with its own report.
pub const FAILURES_STEP: u8 = 5;

/// Step 6: two rows of the table, and then the many-connections run.
pub const REQUESTS_STEP: u8 = 6;

/// Step 7: many cores, on the work-stealing runtime.
pub const CORES_STEP: u8 = 7;

/// The highest step number, for validating `--step`.
pub const LAST_STEP: u8 = CORES_STEP;

/// What step 7's runtime counted while its units ran: how its workers shared them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerCounts {
    pub workers: usize,
    /// Times an idle worker stole half of another worker's queue.
    pub steals: u64,
    /// Times a worker found nothing to run or steal, and parked.
    pub parks: u64,
}

thread_local! {
    /// Step 7's counts, from its run to the runner, which takes them (see
    /// [`take_scheduler_counts`]): the steps' `run` returns only success or failure.
    static SCHEDULER_COUNTS: std::cell::Cell<Option<SchedulerCounts>> =
        const { std::cell::Cell::new(None) };
}

/// Keeps a step's scheduler counts for the runner.
pub fn record_scheduler_counts(counts: SchedulerCounts) {
    SCHEDULER_COUNTS.with(|cell| cell.set(Some(counts)));
}

/// The counts the step just run recorded, if it ran a runtime.
pub fn take_scheduler_counts() -> Option<SchedulerCounts> {
    SCHEDULER_COUNTS.with(std::cell::Cell::take)
}
