//! The multi-threaded runtimes, two workers each: ours (`async_scratch::runtime`),
//! tokio's multi-thread runtime, and smol's `Executor` run on two threads. The same
//! workloads as the single-threaded ones, written the way each runtime's users write
//! them; the tasks are `Send`.
//!
//! The network workloads are not measured here yet: our runtime has no reactor of its
//! own (step 6's reactor serves the one-thread executor), so `echo` and
//! `idle_connections` panic with that message on all three, and `compare
//! --multi-thread` reports them as failed.

use super::Runtime;
use crate::ping_pong;
use futures::channel::oneshot;
use std::future::Future;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How many worker threads each multi-threaded runtime runs.
pub const WORKERS: usize = 2;

const NO_NETWORK: &str =
    "the network workloads are not measured multi-threaded yet: our runtime has no reactor";

/// Ours: `async_scratch::runtime::Runtime` with two workers.
pub struct OursMulti {
    runtime: async_scratch::runtime::Runtime,
}

impl OursMulti {
    /// A runtime with [`WORKERS`] workers.
    ///
    /// # Panics
    /// If its threads cannot be started.
    pub fn new() -> OursMulti {
        let runtime = async_scratch::runtime::Runtime::builder()
            .worker_threads(WORKERS)
            .build()
            .expect("our multi-threaded runtime");
        OursMulti { runtime }
    }

    fn run_all<F>(&self, tasks: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        use async_scratch::runtime::spawn;
        self.runtime.block_on(async {
            let handles: Vec<_> = tasks.into_iter().map(spawn).collect();
            for handle in handles {
                handle.await.expect("a workload task failed");
            }
        })
    }
}

impl Default for OursMulti {
    fn default() -> OursMulti {
        OursMulti::new()
    }
}

fn ours_chain_link(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(async_scratch::runtime::spawn(async move {
            ours_chain_link(left - 1, done)
        }));
    }
}

async fn ours_yield() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

impl Runtime for OursMulti {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        for _ in 0..tasks {
            drop(self.runtime.spawn(async {}));
        }
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        self.runtime.block_on(async {
            let (done, finished) = oneshot::channel();
            ours_chain_link(length, done);
            finished.await.expect("the chain broke");
        })
    }

    fn yield_many(&self, tasks: usize, yields: usize) {
        self.run_all((0..tasks).map(|_| async move {
            for _ in 0..yields {
                ours_yield().await;
            }
        }));
    }

    fn sleep_many(&self, tasks: usize, duration: Duration) {
        self.run_all((0..tasks).map(|_| async_scratch::time::sleep(duration)));
    }

    fn echo(&self, _connections: usize, _messages: usize, _message_bytes: usize) {
        panic!("{NO_NETWORK}");
    }

    fn idle_connections(&self, _connections: usize) {
        panic!("{NO_NETWORK}");
    }
}

/// tokio's multi-thread runtime with two workers and its timer.
pub struct TokioMulti {
    runtime: tokio::runtime::Runtime,
}

impl TokioMulti {
    /// A runtime with [`WORKERS`] workers.
    ///
    /// # Panics
    /// If tokio cannot build it.
    pub fn new() -> TokioMulti {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .enable_time()
            .build()
            .expect("tokio's multi-thread runtime");
        TokioMulti { runtime }
    }

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

impl Default for TokioMulti {
    fn default() -> TokioMulti {
        TokioMulti::new()
    }
}

fn tokio_chain_link(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(tokio::spawn(
            async move { tokio_chain_link(left - 1, done) },
        ));
    }
}

impl Runtime for TokioMulti {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        let _entered = self.runtime.enter();
        for _ in 0..tasks {
            drop(tokio::spawn(async {}));
        }
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        self.runtime.block_on(async {
            let (done, finished) = oneshot::channel();
            tokio_chain_link(length, done);
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

    fn echo(&self, _connections: usize, _messages: usize, _message_bytes: usize) {
        panic!("{NO_NETWORK}");
    }

    fn idle_connections(&self, _connections: usize) {
        panic!("{NO_NETWORK}");
    }
}

/// smol's `Executor`, run by two threads until this is dropped.
pub struct SmolMulti {
    executor: Arc<smol::Executor<'static>>,
    stop: Option<smol::channel::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl SmolMulti {
    /// An executor and [`WORKERS`] threads running it.
    pub fn new() -> SmolMulti {
        let executor = Arc::new(smol::Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let threads = (0..WORKERS)
            .map(|_| {
                let (executor, stopped) = (executor.clone(), stopped.clone());
                thread::spawn(move || {
                    let _ = smol::block_on(executor.run(stopped.recv()));
                })
            })
            .collect();
        SmolMulti {
            executor,
            stop: Some(stop),
            threads,
        }
    }

    fn run_all<F>(&self, tasks: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handles: Vec<_> = tasks
            .into_iter()
            .map(|task| self.executor.spawn(task))
            .collect();
        smol::block_on(async {
            for handle in handles {
                handle.await;
            }
        })
    }
}

impl Default for SmolMulti {
    fn default() -> SmolMulti {
        SmolMulti::new()
    }
}

impl Drop for SmolMulti {
    fn drop(&mut self) {
        drop(self.stop.take()); // closes the channel: every `run` returns
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn smol_chain_link(executor: Arc<smol::Executor<'static>>, left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        let next = executor.clone();
        executor
            .spawn(async move { smol_chain_link(next, left - 1, done) })
            .detach();
    }
}

impl Runtime for SmolMulti {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        for _ in 0..tasks {
            self.executor.spawn(async {}).detach();
        }
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        let (done, finished) = oneshot::channel();
        smol_chain_link(self.executor.clone(), length, done);
        smol::block_on(finished).expect("the chain broke");
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

    fn echo(&self, _connections: usize, _messages: usize, _message_bytes: usize) {
        panic!("{NO_NETWORK}");
    }

    fn idle_connections(&self, _connections: usize) {
        panic!("{NO_NETWORK}");
    }
}
