//! smol's `LocalExecutor`, the single-threaded one, driven by `smol::block_on`; sleeps
//! are `smol::Timer`s.

use super::Runtime;
use crate::ping_pong;
use futures::channel::oneshot;
use smol::LocalExecutor;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// A smol `LocalExecutor`.
///
/// In an `Rc` because a task of the chain spawns the next one on the executor it runs
/// on, so it must hold the executor, and a smol task must be `'static`. Each link
/// holds a clone only until it has spawned the next.
#[derive(Default)]
pub struct Smol {
    executor: Rc<LocalExecutor<'static>>,
}

impl Smol {
    /// A new, empty `LocalExecutor`.
    pub fn new() -> Smol {
        Smol::default()
    }

    /// Spawns every future of `tasks` as a task, then awaits them all.
    fn run_all<F>(&self, tasks: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + 'static,
    {
        let executor = &self.executor;
        smol::block_on(executor.run(async {
            let handles: Vec<_> = tasks.into_iter().map(|task| executor.spawn(task)).collect();
            for handle in handles {
                handle.await;
            }
        }))
    }
}

impl Runtime for Smol {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        for _ in 0..tasks {
            // Detached: dropping a smol `Task` would cancel it.
            self.executor.spawn(async {}).detach();
        }
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        smol::block_on(self.executor.run(async {
            let (done, finished) = oneshot::channel();
            chain_link(&self.executor, length, done);
            finished.await.expect("the chain broke");
        }))
    }

    fn yield_many(&self, tasks: usize, yields: usize) {
        self.run_all((0..tasks).map(|_| async move {
            for _ in 0..yields {
                smol::future::yield_now().await;
            }
        }));
    }

    fn sleep_many(&self, tasks: usize, duration: Duration) {
        self.run_all((0..tasks).map(|_| async move {
            smol::Timer::after(duration).await;
        }));
    }
}

/// Spawns the next link of a chain with `left` links to go; the last one signals `done`.
fn chain_link(executor: &Rc<LocalExecutor<'static>>, left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        let next = Rc::clone(executor);
        executor
            .spawn(async move { chain_link(&next, left - 1, done) })
            .detach();
    }
}
