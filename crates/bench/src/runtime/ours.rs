//! Ours: `async_scratch::executor::Executor`, with its diagnostics on (the default, what
//! a user gets) or off (`ExecutorBuilder::diagnostics(false)`), so that what the
//! diagnostics cost can be measured.
//!
//! The network workloads run on a second executor, parked in a step 6 `Reactor`, with
//! sockets registered through its `Handle`, as the `echo` example does.

use super::{connect_batches, Runtime, ECHO_BUFFER, LOOPBACK};
use crate::ping_pong;
use async_scratch::executor::{spawn, yield_now, Executor};
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::reactor::{Handle, Reactor};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use std::future::Future;
use std::net::SocketAddr;
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
    /// For the network workloads: an executor parked in a reactor (see the
    /// [module doc](super) for why it is a second one).
    networked: Executor,
    /// Registers sockets with `networked`'s reactor.
    reactor: Handle,
}

impl Ours {
    /// A new executor, with the default settings but for `diagnostics`, and its
    /// networked twin, the same but parked in a reactor.
    ///
    /// # Panics
    /// If the reactor cannot be created (the process is out of file descriptors).
    pub fn new(diagnostics: Diagnostics) -> Ours {
        let on = diagnostics == Diagnostics::On;
        let executor = Executor::builder().diagnostics(on).build();
        let reactor = Reactor::new().expect("a reactor");
        let handle = reactor.handle();
        let networked = Executor::builder().diagnostics(on).park(reactor).build();
        Ours {
            executor,
            networked,
            reactor: handle,
        }
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

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        let reactor = &self.reactor;
        self.networked.block_on(async {
            let mut listener = TcpListener::bind(reactor, LOOPBACK).expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let server = spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    drop(spawn(echo_back(stream))); // detached
                }
            });
            let clients: Vec<_> = (0..connections)
                .map(|_| {
                    spawn(echo_client(
                        reactor.clone(),
                        address,
                        messages,
                        message_bytes,
                    ))
                })
                .collect();
            for client in clients {
                client.await.expect("an echo client failed");
            }
            server.abort();
        })
    }

    fn idle_connections(&self, connections: usize) {
        let reactor = &self.reactor;
        self.networked.block_on(async {
            let mut listener = TcpListener::bind(reactor, LOOPBACK).expect("bind");
            let address = listener.local_addr().expect("the listener's address");
            let (arrived, mut arrivals) = mpsc::unbounded();
            let server = spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    drop(spawn(wait_idle(stream, arrived.clone()))); // detached
                }
            });
            let mut clients = Vec::with_capacity(connections);
            for batch in connect_batches(connections) {
                for _ in 0..batch {
                    let client = TcpStream::connect(reactor, address).await;
                    clients.push(client.expect("connect"));
                }
                arrivals.by_ref().take(batch).count().await;
            }
            server.abort();
        })
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
pub(super) async fn echo_client(
    reactor: Handle,
    address: SocketAddr,
    messages: usize,
    message_bytes: usize,
) {
    let mut stream = TcpStream::connect(&reactor, address)
        .await
        .expect("connect");
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
/// that ends when the client closes. The arrival is sent in the same poll as the
/// read's first try, so once it is received the read is waiting.
///
/// The buffer is one byte, so that the figure is what the runtime keeps per
/// connection, not a buffer size chosen here.
pub(super) async fn wait_idle(mut stream: TcpStream, arrived: mpsc::UnboundedSender<()>) {
    let _ = arrived.unbounded_send(());
    drop(arrived);
    let mut byte = [0; 1];
    let _ = stream.read(&mut byte).await;
}

/// Spawns the next link of a chain with `left` links to go; the last one signals `done`.
fn chain_link(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(spawn(async move { chain_link(left - 1, done) }));
    }
}
