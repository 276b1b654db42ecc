//! Memory per sleeping task: spawns N tasks that each sleep 1 second on one runtime,
//! and reports how much the process's peak resident memory grew, per task.
//!
//! One runtime per process, so that each peak belongs to one runtime alone:
//!
//! ```text
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- async-scratch
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- tokio
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- smol
//! ```
//!
//! An optional second argument sets N (default 100,000). Linux only: it reads
//! `/proc/self/status`.

use std::time::Duration;

const SLEEP: Duration = Duration::from_secs(1);

/// A field of `/proc/self/status` in KiB, such as `VmRSS` or `VmHWM` (the peak).
fn status_kib(field: &str) -> u64 {
    let status =
        std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn ours(tasks: usize) {
    use async_scratch::executor::{spawn, Executor};
    Executor::new().block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| spawn(async_scratch::time::sleep(SLEEP)))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

fn tokio(tasks: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| tokio::spawn(tokio::time::sleep(SLEEP)))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

fn smol(tasks: usize) {
    let executor = smol::LocalExecutor::new();
    smol::block_on(executor.run(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| executor.spawn(async { smol::Timer::after(SLEEP).await }))
            .collect();
        for handle in handles {
            handle.await;
        }
    }));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runtime = args.next().unwrap_or_else(|| "async-scratch".to_string());
    let tasks: usize = match args.next().map(|n| n.parse()) {
        None => 100_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("error: the task count must be a whole number above 0");
            std::process::exit(2);
        }
    };
    let run: fn(usize) = match runtime.as_str() {
        "async-scratch" => ours,
        "tokio" => tokio,
        "smol" => smol,
        other => {
            eprintln!("error: unknown runtime `{other}` (expected async-scratch, tokio or smol)");
            std::process::exit(2);
        }
    };
    let before = status_kib("VmRSS");
    run(tasks);
    let peak = status_kib("VmHWM");
    let per_task = (peak.saturating_sub(before) * 1024) as f64 / tasks as f64;
    println!(
        "{runtime}: {tasks} sleeping tasks, peak RSS grew {} KiB: {per_task:.0} bytes per task",
        peak - before
    );
}
