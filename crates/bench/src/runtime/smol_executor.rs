//! smol's `LocalExecutor`, the single-threaded one, driven by `smol::block_on`; sleeps
//! are `smol::Timer`s, sockets `smol::net`'s, read and written through
//! `smol::io`'s extension traits. `smol::block_on` drives smol's reactor whatever the
//! workload, so the network workloads run on the same executor as the others.

use super::{connect_batches, Runtime, ECHO_BUFFER, LOOPBACK};
use crate::ping_pong;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::LocalExecutor;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// A smol `LocalExecutor`.
///
/// In an `Rc` because a task of the chain spawns the next one on the executor it runs
/// on, so it must hold the executor, and a smol task must be `'static`. Each link
/// holds a clone only until it has spawned the next; a server task, until it is
/// cancelled.
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

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        let executor = &self.executor;
        smol::block_on(executor.run(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let spawner = Rc::clone(executor);
            let server = executor.spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    spawner.spawn(echo_back(stream)).detach();
                }
            });
            let clients: Vec<_> = (0..connections)
                .map(|_| executor.spawn(echo_client(address, messages, message_bytes)))
                .collect();
            for client in clients {
                client.await;
            }
            drop(server); // dropping a smol `Task` cancels it
        }))
    }

    fn idle_connections(&self, connections: usize) {
        let executor = &self.executor;
        smol::block_on(executor.run(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let (arrived, mut arrivals) = mpsc::unbounded();
            let spawner = Rc::clone(executor);
            let server = executor.spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    spawner.spawn(wait_idle(stream, arrived.clone())).detach();
                }
            });
            let mut clients = Vec::with_capacity(connections);
            for batch in connect_batches(connections) {
                for _ in 0..batch {
                    clients.push(TcpStream::connect(address).await.expect("connect"));
                }
                arrivals.by_ref().take(batch).count().await;
            }
            drop(server);
        }))
    }
}

/// The server side of `echo`: sends back what it reads until the client closes.
pub(super) async fn echo_back(mut stream: TcpStream) {
    stream.set_nodelay(true).expect("nodelay");
    let mut buffer = [0; ECHO_BUFFER];
    loop {
        match stream.read(&mut buffer).await.expect("the server's read") {
            0 => return,
            n => stream.write_all(&buffer[..n]).await.expect("the echo"),
        }
    }
}

/// A client of `echo`: `messages` round trips of `message_bytes` bytes, each checked.
pub(super) async fn echo_client(address: SocketAddr, messages: usize, message_bytes: usize) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut message, mut echoed) = (vec![0; message_bytes], vec![0; message_bytes]);
    for round in 0..messages {
        message.fill(round as u8);
        stream
            .write_all(&message)
            .await
            .expect("the client's write");
        stream.read_exact(&mut echoed).await.expect("the echo back");
        assert_eq!(echoed, message, "round {round} came back changed");
    }
}

/// The server side of an idle connection: says it has arrived, then waits in a read
/// that ends when the client closes (see ours, `wait_idle`, for why this order).
pub(super) async fn wait_idle(mut stream: TcpStream, arrived: mpsc::UnboundedSender<()>) {
    let _ = arrived.unbounded_send(());
    drop(arrived);
    let mut byte = [0; 1];
    let _ = stream.read(&mut byte).await;
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
