//! The multi-threaded runtimes, two workers each: ours (`async_scratch::runtime`),
//! tokio's multi-thread runtime, and smol's `Executor` run on two threads. The same
//! workloads as the single-threaded ones; the tasks are `Send`.
//!
//! The workloads that only spawn, await, yield and sleep are written once, over
//! [`Workers`]: what the three do differently (how a task is spawned from inside
//! another, how one yields or sleeps, how the main thread waits) is all a runtime
//! says. The network workloads differ in their sockets' types, so each runtime writes
//! its own, as its users would, with the server and client tasks of its
//! single-threaded file: ours registers sockets with the runtime's one reactor
//! (`Runtime::reactor`), tokio's runtime has its I/O driver enabled, and smol's
//! threads drive smol's reactor in `block_on`.

use super::{connect_batches, Runtime, LOOPBACK};
use super::{ours, smol_executor, tokio_runtime};
use crate::ping_pong;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How many worker threads each multi-threaded runtime runs.
pub const WORKERS: usize = 2;

/// What a multi-threaded runtime does its own way; every [`Workers`] is a
/// [`Runtime`], its workloads written once below.
pub trait Workers {
    /// What a task holds to spawn the next one from inside (the chain's links).
    type Spawner: Clone + Send + 'static;

    /// This runtime's spawner.
    fn spawner(&self) -> Self::Spawner;

    /// Spawns `task` from inside a task of this runtime, and lets it run detached.
    fn detach<F: Future<Output = ()> + Send + 'static>(spawner: &Self::Spawner, task: F);

    /// Spawns every task of `tasks`, then waits on this thread until all are done.
    fn run_all<F: Future<Output = ()> + Send + 'static>(&self, tasks: impl IntoIterator<Item = F>);

    /// Runs `future` to its end on this thread, the workers running what it spawns.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T;

    /// Spawns `tasks` tasks that do nothing, from outside, and does not run them.
    fn spawn_queued(&self, tasks: usize);

    /// Gives the worker back once.
    fn yield_now() -> impl Future<Output = ()> + Send + 'static;

    /// Sleeps `duration` on this runtime's timer.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// [`Runtime::echo`], with this runtime's sockets.
    fn echo(&self, connections: usize, messages: usize, message_bytes: usize);

    /// [`Runtime::idle_connections`], with this runtime's sockets.
    fn idle_connections(&self, connections: usize);
}

impl<W: Workers> Runtime for W {
    fn spawn_and_await(&self, tasks: usize) {
        self.run_all((0..tasks).map(|_| async {}));
    }

    fn spawn_queued(&self, tasks: usize) {
        Workers::spawn_queued(self, tasks);
    }

    fn ping_pong(&self, pairs: usize, rounds: usize) {
        self.run_all(ping_pong::players(pairs, rounds));
    }

    fn chain(&self, length: usize) {
        let spawner = self.spawner();
        self.block_on(async move {
            let (done, finished) = oneshot::channel();
            chain_link::<W>(spawner, length, done);
            finished.await.expect("the chain broke");
        })
    }

    fn yield_many(&self, tasks: usize, yields: usize) {
        self.run_all((0..tasks).map(|_| async move {
            for _ in 0..yields {
                W::yield_now().await;
            }
        }));
    }

    fn sleep_many(&self, tasks: usize, duration: Duration) {
        self.run_all((0..tasks).map(|_| W::sleep(duration)));
    }

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        Workers::echo(self, connections, messages, message_bytes);
    }

    fn idle_connections(&self, connections: usize) {
        Workers::idle_connections(self, connections);
    }
}

/// Spawns the next link of a chain with `left` links to go; the last one signals `done`.
fn chain_link<W: Workers>(spawner: W::Spawner, left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        let next = spawner.clone();
        W::detach(
            &spawner,
            async move { chain_link::<W>(next, left - 1, done) },
        );
    }
}

/// Opens `connections` connections to `address` with `connect`, in batches, waiting
/// after each batch for the server's tasks to say they arrived; returns the clients.
async fn connect_in_batches<S, C: Future<Output = S>>(
    connections: usize,
    arrivals: &mut mpsc::UnboundedReceiver<()>,
    mut connect: impl FnMut() -> C,
) -> Vec<S> {
    let mut clients = Vec::with_capacity(connections);
    for batch in connect_batches(connections) {
        for _ in 0..batch {
            clients.push(connect().await);
        }
        arrivals.by_ref().take(batch).count().await;
    }
    clients
}

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
}

impl Default for OursMulti {
    fn default() -> OursMulti {
        OursMulti::new()
    }
}

impl Workers for OursMulti {
    /// Nothing: inside a task, `runtime::spawn` finds the runtime it runs on.
    type Spawner = ();

    fn spawner(&self) {}

    fn detach<F: Future<Output = ()> + Send + 'static>(_: &(), task: F) {
        drop(async_scratch::runtime::spawn(task));
    }

    fn run_all<F: Future<Output = ()> + Send + 'static>(&self, tasks: impl IntoIterator<Item = F>) {
        use async_scratch::runtime::spawn;
        self.runtime.block_on(async {
            let handles: Vec<_> = tasks.into_iter().map(spawn).collect();
            for handle in handles {
                handle.await.expect("a workload task failed");
            }
        })
    }

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn spawn_queued(&self, tasks: usize) {
        for _ in 0..tasks {
            drop(self.runtime.spawn(async {}));
        }
    }

    /// Written by hand: the one-thread executor's `yield_now` is that executor's.
    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
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
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        async_scratch::time::sleep(duration)
    }

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        use async_scratch::net::TcpListener;
        use async_scratch::runtime::spawn;
        let reactor = self.runtime.reactor();
        self.runtime.block_on(async {
            let mut listener = TcpListener::bind(&reactor, LOOPBACK).expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let server = spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    drop(spawn(ours::echo_back(stream))); // detached
                }
            });
            let clients: Vec<_> = (0..connections)
                .map(|_| {
                    let client =
                        ours::echo_client(reactor.clone(), address, messages, message_bytes);
                    spawn(client)
                })
                .collect();
            for client in clients {
                client.await.expect("an echo client failed");
            }
            server.abort();
        })
    }

    fn idle_connections(&self, connections: usize) {
        use async_scratch::net::{TcpListener, TcpStream};
        use async_scratch::runtime::spawn;
        let reactor = self.runtime.reactor();
        self.runtime.block_on(async {
            let mut listener = TcpListener::bind(&reactor, LOOPBACK).expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let (arrived, mut arrivals) = mpsc::unbounded();
            let server = spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    drop(spawn(ours::wait_idle(stream, arrived.clone()))); // detached
                }
            });
            let connect = || async {
                let client = TcpStream::connect(&reactor, address).await;
                client.expect("connect")
            };
            drop(connect_in_batches(connections, &mut arrivals, connect).await);
            server.abort();
        })
    }
}

/// tokio's multi-thread runtime with two workers and every driver (timer and I/O),
/// as `#[tokio::main]` builds it.
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
            .enable_all()
            .build()
            .expect("tokio's multi-thread runtime");
        TokioMulti { runtime }
    }
}

impl Default for TokioMulti {
    fn default() -> TokioMulti {
        TokioMulti::new()
    }
}

impl Workers for TokioMulti {
    /// Nothing: inside a task, `tokio::spawn` finds the runtime it runs on.
    type Spawner = ();

    fn spawner(&self) {}

    fn detach<F: Future<Output = ()> + Send + 'static>(_: &(), task: F) {
        drop(tokio::spawn(task));
    }

    fn run_all<F: Future<Output = ()> + Send + 'static>(&self, tasks: impl IntoIterator<Item = F>) {
        self.runtime.block_on(async {
            let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
            for handle in handles {
                handle.await.expect("a workload task failed");
            }
        })
    }

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn spawn_queued(&self, tasks: usize) {
        let _entered = self.runtime.enter();
        for _ in 0..tasks {
            drop(tokio::spawn(async {}));
        }
    }

    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        tokio::task::yield_now()
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep(duration)
    }

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        tokio_runtime::echo_on(&self.runtime, connections, messages, message_bytes);
    }

    fn idle_connections(&self, connections: usize) {
        tokio_runtime::idle_connections_on(&self.runtime, connections);
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

impl Workers for SmolMulti {
    /// The executor: a smol task spawns on the executor it is handed.
    type Spawner = Arc<smol::Executor<'static>>;

    fn spawner(&self) -> Self::Spawner {
        self.executor.clone()
    }

    fn detach<F: Future<Output = ()> + Send + 'static>(executor: &Self::Spawner, task: F) {
        executor.spawn(task).detach();
    }

    fn run_all<F: Future<Output = ()> + Send + 'static>(&self, tasks: impl IntoIterator<Item = F>) {
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

    /// The executor's own threads run its tasks; this one only waits.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        smol::block_on(future)
    }

    fn spawn_queued(&self, tasks: usize) {
        for _ in 0..tasks {
            self.executor.spawn(async {}).detach();
        }
    }

    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        smol::future::yield_now()
    }

    async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        use smol::net::TcpListener;
        let executor = &self.executor;
        smol::block_on(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let spawner = executor.clone();
            let server = executor.spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    spawner.spawn(smol_executor::echo_back(stream)).detach();
                }
            });
            let clients: Vec<_> = (0..connections)
                .map(|_| {
                    let client = smol_executor::echo_client(address, messages, message_bytes);
                    executor.spawn(client)
                })
                .collect();
            for client in clients {
                client.await;
            }
            drop(server); // dropping a smol `Task` cancels it
        })
    }

    fn idle_connections(&self, connections: usize) {
        use smol::net::{TcpListener, TcpStream};
        let executor = &self.executor;
        smol::block_on(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let (arrived, mut arrivals) = mpsc::unbounded();
            let spawner = executor.clone();
            let server = executor.spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    let idle = smol_executor::wait_idle(stream, arrived.clone());
                    spawner.spawn(idle).detach();
                }
            });
            let connect = || async { TcpStream::connect(address).await.expect("connect") };
            drop(connect_in_batches(connections, &mut arrivals, connect).await);
            drop(server);
        })
    }
}
