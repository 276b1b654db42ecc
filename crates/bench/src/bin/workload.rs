//! `workload <runtime> <workload>`: runs one workload, once, in this fresh process,
//! and prints one JSON line with its figure.
//!
//! ```text
//! cargo run --release -p async-scratch-bench --bin workload -- tokio ping-pong
//! {"ms":29.675,"runtime":"tokio","tasks":2000,"workload":"ping-pong"}
//! ```
//!
//! Runtimes: `async-scratch`, `async-scratch-no-diagnostics` (ours with
//! `ExecutorBuilder::diagnostics(false)`), `tokio`, `smol`. Workloads: `spawn`,
//! `queued-bytes`, `ping-pong`, `chain`, `yield`, `sleep`, `sleep-bytes`, `echo`,
//! `idle-connections` (see
//! `async_scratch_bench::workload`). One run per process is the point: the run pays
//! for growing the heap and faulting in fresh pages, as a real program does, where a
//! loop in one process would reuse memory the earlier iterations left behind. The
//! `compare` binary runs this one many times and takes medians.
//!
//! A bad argument is a one-line error and exit code 2; a figure that cannot be read
//! (not Linux) is a one-line error and exit code 1.

use async_scratch_bench::result_line;
use async_scratch_bench::runtime::RuntimeName;
use async_scratch_bench::workload::Workload;
use std::process::ExitCode;

/// How to call this program, for the one-line error.
const USAGE: &str =
    "usage: workload <async-scratch|async-scratch-no-diagnostics|tokio|smol> <workload>";

fn main() -> ExitCode {
    let (runtime, workload) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let built = runtime.build();
    match workload.measure(built.as_ref()) {
        Ok(figure) => {
            println!(
                "{}",
                result_line::format(runtime.as_str(), workload, figure)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime and the workload, from exactly two arguments.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(RuntimeName, Workload), String> {
    let (Some(runtime), Some(workload), None) = (args.next(), args.next(), args.next()) else {
        return Err(format!("expected two arguments ({USAGE})"));
    };
    Ok((runtime.parse()?, workload.parse()?))
}
