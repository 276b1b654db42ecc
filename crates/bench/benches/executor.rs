//! Single-threaded executors side by side: ours, tokio's current-thread runtime and
//! smol's `LocalExecutor`, on the same four workloads, in the same run.
//!
//! - spawn 1,000,000 trivial tasks, then await every handle;
//! - a chain of 100,000 tasks, each spawning the next (the last one signals the end);
//! - 200 tasks, each yielding 1,000 times;
//! - 100,000 tasks sleeping 1 second each, at once (wall time; for memory per sleeping
//!   task, see `src/bin/sleep_memory.rs`, which needs a process of its own).
//!
//! Run with `cargo bench -p async-scratch-bench --bench executor`.

use async_scratch::executor::{self as ours, Executor};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use futures::channel::oneshot;
use std::future::Future;
use std::time::Duration;

/// One workload's group: every runtime is measured in it, side by side.
type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// A workload: adds one benchmark per runtime to its group.
type Workload = fn(&mut Group<'_>);

const SPAWNS: usize = 1_000_000;
const CHAIN: usize = 100_000;
const YIELDERS: usize = 200;
const YIELDS: usize = 1_000;
const SLEEPERS: usize = 100_000;
const SLEEP: Duration = Duration::from_secs(1);

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Spawns `count` tasks made by `task` on a new executor of ours and awaits them all.
fn ours_all<F: Future<Output = ()> + 'static>(count: usize, task: impl Fn() -> F) {
    Executor::new().block_on(async {
        let handles: Vec<_> = (0..count).map(|_| ours::spawn(task())).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    })
}

/// The same on tokio's current-thread runtime.
fn tokio_all<F>(runtime: &tokio::runtime::Runtime, count: usize, task: impl Fn() -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime.block_on(async {
        let handles: Vec<_> = (0..count).map(|_| tokio::spawn(task())).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    })
}

/// The same on a new smol `LocalExecutor`.
fn smol_all<F: Future<Output = ()> + 'static>(count: usize, task: impl Fn() -> F) {
    let executor = smol::LocalExecutor::new();
    smol::block_on(executor.run(async {
        let handles: Vec<_> = (0..count).map(|_| executor.spawn(task())).collect();
        for handle in handles {
            handle.await;
        }
    }))
}

fn spawn_many(group: &mut Group<'_>) {
    group.bench_function("async-scratch", |b| {
        b.iter(|| ours_all(SPAWNS, || async {}))
    });
    let tokio = tokio_runtime();
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| tokio_all(&tokio, SPAWNS, || async {}))
    });
    group.bench_function("smol LocalExecutor", |b| {
        b.iter(|| smol_all(SPAWNS, || async {}))
    });
}

fn chain_ours(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(ours::spawn(async move { chain_ours(left - 1, done) }));
    }
}

fn chain_tokio(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(tokio::spawn(async move { chain_tokio(left - 1, done) }));
    }
}

fn chain_smol(
    executor: &'static smol::LocalExecutor<'static>,
    left: usize,
    done: oneshot::Sender<()>,
) {
    if left == 0 {
        let _ = done.send(());
    } else {
        executor
            .spawn(async move { chain_smol(executor, left - 1, done) })
            .detach();
    }
}

fn spawn_chain(group: &mut Group<'_>) {
    group.bench_function("async-scratch", |b| {
        b.iter(|| {
            Executor::new().block_on(async {
                let (done, finished) = oneshot::channel();
                chain_ours(CHAIN, done);
                finished.await.unwrap();
            })
        })
    });
    let tokio = tokio_runtime();
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let (done, finished) = oneshot::channel();
                chain_tokio(CHAIN, done);
                finished.await.unwrap();
            })
        })
    });
    // Leaked once (not per iteration): smol's detached tasks borrow the executor.
    let smol: &'static smol::LocalExecutor<'static> =
        Box::leak(Box::new(smol::LocalExecutor::new()));
    group.bench_function("smol LocalExecutor", |b| {
        b.iter(|| {
            smol::block_on(smol.run(async {
                let (done, finished) = oneshot::channel();
                chain_smol(smol, CHAIN, done);
                finished.await.unwrap();
            }))
        })
    });
}

fn yield_many(group: &mut Group<'_>) {
    let ours_yielder = || async {
        for _ in 0..YIELDS {
            ours::yield_now().await;
        }
    };
    group.bench_function("async-scratch", |b| {
        b.iter(|| ours_all(YIELDERS, ours_yielder))
    });
    let tokio = tokio_runtime();
    let tokio_yielder = || async {
        for _ in 0..YIELDS {
            tokio::task::yield_now().await;
        }
    };
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| tokio_all(&tokio, YIELDERS, tokio_yielder))
    });
    let smol_yielder = || async {
        for _ in 0..YIELDS {
            smol::future::yield_now().await;
        }
    };
    group.bench_function("smol LocalExecutor", |b| {
        b.iter(|| smol_all(YIELDERS, smol_yielder))
    });
}

fn sleep_many(group: &mut Group<'_>) {
    let ours_sleeper = || async_scratch::time::sleep(SLEEP);
    group.bench_function("async-scratch", |b| {
        b.iter(|| ours_all(SLEEPERS, ours_sleeper))
    });
    let tokio = tokio_runtime();
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| tokio_all(&tokio, SLEEPERS, || tokio::time::sleep(SLEEP)))
    });
    let smol_sleeper = || async {
        smol::Timer::after(SLEEP).await;
    };
    group.bench_function("smol LocalExecutor", |b| {
        b.iter(|| smol_all(SLEEPERS, smol_sleeper))
    });
}

fn executors(c: &mut Criterion) {
    let only = std::env::var("EXECUTOR_BENCH").unwrap_or_default();
    let workloads: [(&str, Workload); 4] = [
        ("spawn 1,000,000 tasks", spawn_many),
        ("chain of 100,000 spawns", spawn_chain),
        ("200 tasks x 1,000 yields", yield_many),
        ("100,000 concurrent 1 s sleeps", sleep_many),
    ];
    for (name, workload) in workloads {
        if !only.is_empty() && !name.contains(&only) {
            continue;
        }
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if name.contains("sleep") {
            12
        } else {
            5
        }));
        workload(&mut group);
        group.finish();
    }
}

criterion_group!(benches, executors);
criterion_main!(benches);
