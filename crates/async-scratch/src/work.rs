//! The unit of work: what every step runs, described once.
//!
//! **Step 0** runs it N times in a plain loop; that is the baseline every other step is
//! compared with. Each later step runs the *same* [`Work`] its own way (on a pool, as a
//! task, as a coroutine), so their wall times can be put side by side.
//!
//! Two kinds stand for the two reasons a program waits:
//! - [`WorkKind::Sleep`]: a blocking wait, standing for I/O (a disk read, a network
//!   call). The thread does nothing while it waits, so more threads help a lot.
//! - [`WorkKind::Cpu`]: real computation. A thread is busy all the way, so more threads
//!   help only up to the number of cores.
//!
//! ```
//! use async_scratch::timeline::Timeline;
//! use async_scratch::work::{Work, WorkKind};
//! use std::time::Duration;
//!
//! // Step 0 in three lines: the baseline loop.
//! let work = Work::new(WorkKind::Sleep, Duration::from_millis(1));
//! let timeline = Timeline::new();
//! for unit in 0..5 {
//!     work.run_recorded(unit, &timeline);
//! }
//! assert_eq!(timeline.spans().len(), 5);
//! ```

use crate::timeline::Timeline;
use std::fmt;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What kind of waiting a unit of work does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkKind {
    /// A blocking sleep: the thread waits and uses no CPU, like a thread blocked on I/O.
    Sleep,
    /// Computation calibrated to take about the unit's duration on one idle core.
    Cpu,
}

impl WorkKind {
    /// The name used on the command line and in JSON: `sleep` or `cpu`.
    pub fn name(self) -> &'static str {
        match self {
            WorkKind::Sleep => "sleep",
            WorkKind::Cpu => "cpu",
        }
    }
}

impl fmt::Display for WorkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a work kind that is neither `sleep` nor `cpu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWorkKind(pub String);

impl fmt::Display for UnknownWorkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown work kind `{}` (expected `sleep` or `cpu`)",
            self.0
        )
    }
}

impl std::error::Error for UnknownWorkKind {}

impl FromStr for WorkKind {
    type Err = UnknownWorkKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sleep" => Ok(WorkKind::Sleep),
            "cpu" => Ok(WorkKind::Cpu),
            other => Err(UnknownWorkKind(other.to_string())),
        }
    }
}

/// One unit of work: a kind and how long it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Work {
    /// What the unit does while it takes its time.
    pub kind: WorkKind,
    /// How long one unit takes when it has a core to itself.
    pub duration: Duration,
}

impl Work {
    /// A unit of the given kind and duration.
    pub fn new(kind: WorkKind, duration: Duration) -> Work {
        Work { kind, duration }
    }

    /// Runs the unit on the calling thread, blocking it until the unit is done.
    pub fn run(&self) {
        match self.kind {
            WorkKind::Sleep => std::thread::sleep(self.duration),
            WorkKind::Cpu => spin(rounds_for(self.duration)),
        }
    }

    /// Runs the unit and records its span on `timeline` as unit `unit`.
    pub fn run_recorded(&self, unit: usize, timeline: &Timeline) {
        timeline.record(unit, || self.run());
    }
}

/// Measures, once per process, how many rounds of the CPU kernel (a xorshift step) one millisecond holds.
///
/// CPU work must be a fixed *amount* of computation, not "spin until the clock says
/// 100 ms": with more threads than cores, a fixed amount takes longer per thread, which
/// is exactly what the `cpu` workload is there to show. Call it before timing anything
/// so the calibration is not counted in a step; later calls return the cached value.
pub fn calibrate_cpu() -> u64 {
    static ROUNDS_PER_MS: OnceLock<u64> = OnceLock::new();
    *ROUNDS_PER_MS.get_or_init(measure_rounds_per_ms)
}

/// How long the calibration measures: long enough to smooth out a timer tick, short
/// enough not to be noticed at start-up.
const CALIBRATION_TIME: Duration = Duration::from_millis(50);

/// Rounds between two looks at the clock while calibrating.
const CALIBRATION_BATCH: u64 = 10_000;

fn measure_rounds_per_ms() -> u64 {
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < CALIBRATION_TIME {
        spin(CALIBRATION_BATCH);
        rounds += CALIBRATION_BATCH;
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    (rounds as f64 / elapsed_ms).max(1.0) as u64
}

fn rounds_for(duration: Duration) -> u64 {
    let rounds = u128::from(calibrate_cpu()) * duration.as_micros() / 1000;
    u64::try_from(rounds).unwrap_or(u64::MAX)
}

/// `rounds` steps of a xorshift generator: real work the optimizer cannot remove.
fn spin(rounds: u64) {
    let mut state = black_box(0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..rounds {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    black_box(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work kinds round-trip through their names; anything else is a clear error.
    #[test]
    fn kind_names_round_trip() {
        for kind in [WorkKind::Sleep, WorkKind::Cpu] {
            assert_eq!(kind.name().parse::<WorkKind>(), Ok(kind));
        }
        let error = "io".parse::<WorkKind>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown work kind `io` (expected `sleep` or `cpu`)"
        );
    }

    /// Calibration is done once: the value is cached, positive, and fixes the amount.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "calibration computes for 50 ms, hours when interpreted"
    )]
    fn cpu_calibration_is_cached() {
        let first = calibrate_cpu();
        assert!(first > 0);
        assert_eq!(first, calibrate_cpu());
        assert_eq!(rounds_for(Duration::from_millis(2)), first * 2);
    }
}
