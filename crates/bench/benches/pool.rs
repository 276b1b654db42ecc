//! Thread pools side by side: 1,000,000 tiny jobs on 2 workers, ours beside the
//! `threadpool` crate and rayon, in the same run.
//!
//! Every pool gets the same jobs and the same way of knowing they are done (a
//! countdown latch the last job opens), so the only difference measured is the pool:
//! queueing a job, handing it to a worker, and running it.
//!
//! Run with `cargo bench -p async-scratch-bench --bench pool`.

use async_scratch::pool::ThreadPool;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const JOBS: usize = 1_000_000;
const WORKERS: usize = 2;

/// Opens when `count` jobs have each called `count_down` once.
struct Latch {
    remaining: AtomicUsize,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    fn new(count: usize) -> Arc<Latch> {
        Arc::new(Latch {
            remaining: AtomicUsize::new(count),
            open: Mutex::new(false),
            opened: Condvar::new(),
        })
    }

    fn count_down(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    fn wait(&self) {
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
    }
}

/// Submits `JOBS` tiny jobs through `submit` and waits until all have run.
fn million_tiny_jobs(submit: impl Fn(Box<dyn FnOnce() + Send>)) {
    let latch = Latch::new(JOBS);
    for job in 0..JOBS {
        let latch = latch.clone();
        submit(Box::new(move || {
            black_box(job);
            latch.count_down();
        }));
    }
    latch.wait();
}

fn pools(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool: 1,000,000 tiny jobs on 2 workers");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    let ours = ThreadPool::new(WORKERS).unwrap();
    group.bench_function("async-scratch ThreadPool", |b| {
        b.iter(|| million_tiny_jobs(|job| ours.execute(job)))
    });

    let peer = threadpool::ThreadPool::new(WORKERS);
    group.bench_function("threadpool crate", |b| {
        b.iter(|| million_tiny_jobs(|job| peer.execute(job)))
    });

    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    group.bench_function("rayon ThreadPool::spawn", |b| {
        b.iter(|| million_tiny_jobs(|job| rayon.spawn(job)))
    });
    group.finish();
}

criterion_group!(benches, pools);
criterion_main!(benches);
