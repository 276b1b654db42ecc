//! The runtimes compared: ours (with its diagnostics on, and off), tokio's
//! current-thread runtime and smol's `LocalExecutor`, each behind one trait with a
//! method per workload.
//!
//! One file per runtime, each written the way that runtime's users write it, so the
//! three can be read side by side: [`ours`], [`tokio_runtime`], [`smol_executor`].
//! The runtime is built by its constructor, not by the workload methods, so a caller
//! can time a workload without the runtime's construction.

pub mod ours;
pub mod smol_executor;
pub mod tokio_runtime;

use ours::{Diagnostics, Ours};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A single-threaded runtime, built and ready, that can run every workload.
///
/// Each method returns when its workload is done; tasks left queued (only
/// [`spawn_queued`](Runtime::spawn_queued) leaves any) are dropped with the runtime.
pub trait Runtime {
    /// Spawns `tasks` tasks that do nothing, then awaits every one.
    fn spawn_and_await(&self, tasks: usize);

    /// Spawns `tasks` tasks that do nothing, and returns without running them: they
    /// stay in the runtime's queue, each costing what a spawned task costs at rest.
    fn spawn_queued(&self, tasks: usize);

    /// Runs `pairs` ping-pong pairs (see [`ping_pong`](crate::ping_pong)), each
    /// passing `rounds` pings and pongs, and awaits them all.
    fn ping_pong(&self, pairs: usize, rounds: usize);

    /// Runs a chain of `length` tasks, each spawning the next and dropping its
    /// handle; returns when the last one has run.
    fn chain(&self, length: usize);

    /// Runs `tasks` tasks that each yield `yields` times, and awaits them all.
    fn yield_many(&self, tasks: usize, yields: usize);

    /// Runs `tasks` tasks that each sleep `duration`, all at once, and awaits them.
    fn sleep_many(&self, tasks: usize, duration: Duration);
}

/// The runtimes by name, as the command lines spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeName {
    /// Ours: `async_scratch::executor::Executor`, as a user gets it (diagnostics on).
    AsyncScratch,
    /// Ours with `diagnostics(false)`: what our executor costs without the books
    /// its diagnostics keep.
    AsyncScratchNoDiagnostics,
    /// tokio's current-thread runtime, with its timer enabled.
    Tokio,
    /// smol's `LocalExecutor`, with smol's `Timer`.
    Smol,
}

impl RuntimeName {
    /// Every runtime, ours first.
    pub const ALL: [RuntimeName; 4] = [
        RuntimeName::AsyncScratch,
        RuntimeName::AsyncScratchNoDiagnostics,
        RuntimeName::Tokio,
        RuntimeName::Smol,
    ];

    /// The name on the command line and in the JSON lines.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeName::AsyncScratch => "async-scratch",
            RuntimeName::AsyncScratchNoDiagnostics => "async-scratch-no-diagnostics",
            RuntimeName::Tokio => "tokio",
            RuntimeName::Smol => "smol",
        }
    }

    /// Builds a runtime of this kind.
    pub fn build(self) -> Box<dyn Runtime> {
        match self {
            RuntimeName::AsyncScratch => Box::new(Ours::new(Diagnostics::On)),
            RuntimeName::AsyncScratchNoDiagnostics => Box::new(Ours::new(Diagnostics::Off)),
            RuntimeName::Tokio => Box::new(tokio_runtime::Tokio::new()),
            RuntimeName::Smol => Box::new(smol_executor::Smol::new()),
        }
    }
}

/// Every runtime's name, comma-separated, for an error that lists them.
fn names() -> String {
    let names: Vec<&str> = RuntimeName::ALL
        .into_iter()
        .map(RuntimeName::as_str)
        .collect();
    names.join(", ")
}

impl fmt::Display for RuntimeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuntimeName {
    type Err = String;

    fn from_str(name: &str) -> Result<RuntimeName, String> {
        RuntimeName::ALL
            .into_iter()
            .find(|runtime| runtime.as_str() == name)
            .ok_or_else(|| format!("unknown runtime `{name}` (expected one of: {})", names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every runtime's name reads back as that runtime, and a wrong name is an error
    /// that lists the right ones.
    #[test]
    fn names_round_trip() {
        for runtime in RuntimeName::ALL {
            assert_eq!(runtime.as_str().parse(), Ok(runtime));
        }
        let error = "tokyo".parse::<RuntimeName>().unwrap_err();
        assert!(
            error.contains("`tokyo`")
                && error.contains("smol")
                && error.contains("async-scratch-no-diagnostics"),
            "{error}"
        );
    }
}
