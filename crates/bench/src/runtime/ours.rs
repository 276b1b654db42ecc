//! Ours: `async_scratch::executor::Executor`, with its diagnostics on (the default, what
//! a user gets) or off (`ExecutorBuilder::diagnostics(false)`), so that what the
//! diagnostics cost can be measured.

use super::Runtime;
use crate::ping_pong;
use async_scratch::executor::{spawn, yield_now, Executor};
use futures::channel::oneshot;
use std::future::Future;
use std::time::Duration;

/// Whether our executor keeps the books its diagnostics need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostics {
    /// Lost tasks, wait cycles and deadlocks reported: the default a user gets.
    On,
    /// None of that bookkeeping: the bare executor.
    Off,
}

/// Our single-threaded executor.
pub struct Ours {
    executor: Executor,
}

impl Ours {
    /// A new executor, with the default settings but for `diagnostics`.
    pub fn new(diagnostics: Diagnostics) -> Ours {
        let executor = Executor::builder()
            .diagnostics(diagnostics == Diagnostics::On)
            .build();
        Ours { executor }
    }

    /// Spawns every future of `tasks` as a task, then awaits them all.
    fn run_all<F>(&self, tasks: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + 'static,
    {
        self.executor.block_on(async {
            let handles: Vec<_> = tasks.into_iter().map(spawn).collect();
            for handle in handles {
                handle.await.expect("a workload task failed");
            }
        })
    }
}

impl Runtime for Ours {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        for _ in 0..tasks {
            drop(self.executor.spawn(async {})); // a dropped handle detaches its task
        }
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        self.executor.block_on(async {
            let (done, finished) = oneshot::channel();
            chain_link(length, done);
            finished.await.expect("the chain broke");
        })
    }

    fn yield_many(&self, tasks: usize, yields: usize) {
        self.run_all((0..tasks).map(|_| async move {
            for _ in 0..yields {
                yield_now().await;
            }
        }));
    }

    fn sleep_many(&self, tasks: usize, duration: Duration) {
        self.run_all((0..tasks).map(|_| async_scratch::time::sleep(duration)));
    }
}

/// Spawns the next link of a chain with `left` links to go; the last one signals `done`.
fn chain_link(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(spawn(async move { chain_link(left - 1, done) }));
    }
}
