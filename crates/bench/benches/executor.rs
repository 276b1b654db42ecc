//! Single-threaded executors side by side: ours, tokio's current-thread runtime and
//! smol's `LocalExecutor`, on the same four workloads, in the same run.
//!
//! - spawn 1,000,000 trivial tasks, then await every handle;
//! - a chain of 100,000 tasks, each spawning the next (the last one signals the end);
//! - 200 tasks, each yielding 1,000 times;
//! - 100,000 tasks sleeping 1 second each, at once (wall time).
//!
//! The workloads are the ones in `async_scratch_bench::runtime`, which the
//! comparison runner (`src/bin/compare.rs`) also runs. This benchmark loops in one
//! warm process, which reuses the memory earlier iterations grew; the runner starts a
//! fresh process for every run, as a real program starts, and its figures are the
//! ones to quote. Memory per task needs a process of its own too: see the runner's
//! `queued-bytes` and `sleep-bytes`.
//!
//! Run with `cargo bench -p async-scratch-bench --bench executor`; set
//! `EXECUTOR_BENCH` to part of a group's name to run only that group.

use async_scratch_bench::runtime::ours::{Diagnostics, Ours};
use async_scratch_bench::runtime::smol_executor::Smol;
use async_scratch_bench::runtime::tokio_runtime::Tokio;
use async_scratch_bench::workload::Workload;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use std::time::Duration;

/// One workload's group: every runtime is measured in it, side by side.
type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Criterion's floor: ten samples, enough for a median on workloads of 10 ms to 1 s.
const SAMPLES: usize = 10;

/// Warm-up per runtime: a second covers several iterations of all but the sleeps.
const WARM_UP: Duration = Duration::from_secs(1);

/// Measuring time per runtime: ten samples of the slowest workload but the sleeps.
const MEASUREMENT: Duration = Duration::from_secs(5);

/// Measuring time for the sleeps, ten samples of a little over one second each.
const SLEEP_MEASUREMENT: Duration = Duration::from_secs(12);

/// Adds one benchmark per runtime, each running `workload` once per iteration.
///
/// A new executor of ours, and of smol, for each iteration: each is a plain struct,
/// cheap to build, as a fresh `block_on` would get. tokio's runtime is built once, as
/// a tokio program builds one for its whole life. (The README's criterion figures were
/// measured this way.)
fn bench_runtimes(group: &mut Group<'_>, workload: Workload) {
    group.bench_function("async-scratch", |b| {
        b.iter(|| workload.drive(&Ours::new(Diagnostics::On)))
    });
    let tokio = Tokio::new();
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| workload.drive(&tokio))
    });
    group.bench_function("smol LocalExecutor", |b| {
        b.iter(|| workload.drive(&Smol::new()))
    });
}

fn executors(c: &mut Criterion) {
    let only = std::env::var("EXECUTOR_BENCH").unwrap_or_default();
    let groups = [
        ("spawn 1,000,000 tasks", Workload::Spawn),
        ("chain of 100,000 spawns", Workload::Chain),
        ("200 tasks x 1,000 yields", Workload::Yield),
        ("100,000 concurrent 1 s sleeps", Workload::Sleep),
    ];
    for (name, workload) in groups {
        if !only.is_empty() && !name.contains(&only) {
            continue;
        }
        let mut group = c.benchmark_group(name);
        group.sample_size(SAMPLES);
        group.warm_up_time(WARM_UP);
        group.measurement_time(if workload == Workload::Sleep {
            SLEEP_MEASUREMENT
        } else {
            MEASUREMENT
        });
        bench_runtimes(&mut group, workload);
        group.finish();
    }
}

criterion_group!(benches, executors);
criterion_main!(benches);
