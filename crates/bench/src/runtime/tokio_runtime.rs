//! tokio's current-thread runtime: every task on the thread that calls `block_on`,
//! the nearest of tokio's runtimes to ours. Its timer is enabled, for the sleeps.

use super::Runtime;
use crate::ping_pong;
use futures::channel::oneshot;
use std::future::Future;
use std::time::Duration;
use tokio::runtime::{Builder, Runtime as TokioRuntime};

/// A tokio current-thread runtime.
pub struct Tokio {
    runtime: TokioRuntime,
}

impl Tokio {
    /// A new current-thread runtime with its timer enabled.
    ///
    /// # Panics
    /// If tokio cannot build it (it cannot create its timer driver, say).
    pub fn new() -> Tokio {
        let runtime = Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio's current-thread runtime");
        Tokio { runtime }
    }

    /// Spawns every future of `tasks` as a task, then awaits them all.
    fn run_all<F>(&self, tasks: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.runtime.block_on(async {
            let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
            for handle in handles {
                handle.await.expect("a workload task failed");
            }
        })
    }
}

impl Default for Tokio {
    fn default() -> Tokio {
        Tokio::new()
    }
}

impl Runtime for Tokio {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        // Entering the runtime lets `tokio::spawn` find it without running it.
        let _entered = self.runtime.enter();
        for _ in 0..tasks {
            drop(tokio::spawn(async {})); // a dropped handle detaches its task
        }
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        self.runtime.block_on(async {
            let (done, finished) = oneshot::channel();
            chain_link(length, done);
            finished.await.expect("the chain broke");
        })
    }

    fn yield_many(&self, tasks: usize, yields: usize) {
        self.run_all((0..tasks).map(|_| async move {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
        }));
    }

    fn sleep_many(&self, tasks: usize, duration: Duration) {
        self.run_all((0..tasks).map(|_| tokio::time::sleep(duration)));
    }
}

/// Spawns the next link of a chain with `left` links to go; the last one signals `done`.
fn chain_link(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(tokio::spawn(async move { chain_link(left - 1, done) }));
    }
}
