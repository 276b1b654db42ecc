//! Memory per sleeping task, in a sentence: spawns N tasks that each sleep 1 second on
//! one runtime, and reports how much the process's peak resident memory grew, per task.
//!
//! One runtime per process, so that each peak belongs to one runtime alone:
//!
//! ```text
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- async-scratch
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- async-scratch-no-diagnostics
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- tokio
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- smol
//! ```
//!
//! An optional second argument sets N (default 100,000). It is the `sleep-bytes`
//! workload with a task count of your choosing; `compare --workloads sleep-bytes`
//! runs that workload for every runtime, five times each, and takes the medians.
//! Linux only: it reads `/proc/self/status`.

use async_scratch_bench::rss::Baseline;
use async_scratch_bench::runtime::RuntimeName;
use async_scratch_bench::workload::{SLEEP, SLEEPERS};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let runtime: RuntimeName = match args.next().as_deref().unwrap_or("async-scratch").parse() {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&error),
    };
    let tasks: usize = match args.next().map(|n| n.parse()) {
        None => SLEEPERS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage_error("the task count must be a whole number above 0"),
    };
    let built = runtime.build();
    let growth = Baseline::now().and_then(|baseline| {
        built.sleep_many(tasks, SLEEP);
        baseline.peak_growth_bytes()
    });
    match growth {
        Ok(bytes) => {
            let per_task = bytes as f64 / tasks as f64;
            println!(
                "{runtime}: {tasks} sleeping tasks, peak RSS grew {} KiB: {per_task:.0} bytes per task",
                bytes / 1024
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A one-line error and exit code 2.
fn usage_error(error: &str) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(2)
}
