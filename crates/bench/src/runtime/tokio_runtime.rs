//! tokio's current-thread runtime: every task on the thread that calls `block_on`,
//! the nearest of tokio's runtimes to ours. Its timer is enabled, for the sleeps.
//! The network workloads run on a second one with every driver enabled, as
//! `#[tokio::main(flavor = "current_thread")]` builds it.

use super::{connect_batches, Runtime, ECHO_BUFFER, LOOPBACK};
use crate::ping_pong;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime as TokioRuntime};

/// A tokio current-thread runtime.
pub struct Tokio {
    runtime: TokioRuntime,
    /// For the network workloads: the same with its I/O driver (see the
    /// [module doc](super) for why it is a second one).
    networked: TokioRuntime,
}

impl Tokio {
    /// A new current-thread runtime with its timer enabled, and its networked twin.
    ///
    /// # Panics
    /// If tokio cannot build them (it cannot create its drivers, say).
    pub fn new() -> Tokio {
        let runtime = Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio's current-thread runtime");
        let networked = Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio's current-thread runtime with I/O");
        Tokio { runtime, networked }
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

    fn echo(&self, connections: usize, messages: usize, message_bytes: usize) {
        echo_on(&self.networked, connections, messages, message_bytes);
    }

    fn idle_connections(&self, connections: usize) {
        idle_connections_on(&self.networked, connections);
    }
}

/// The echo workload on `runtime`, whichever flavour: the current-thread one here, the
/// multi-thread one in `multi_thread`.
pub(super) fn echo_on(
    runtime: &tokio::runtime::Runtime,
    connections: usize,
    messages: usize,
    message_bytes: usize,
) {
    runtime.block_on(async {
        let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
        let address = listener.local_addr().expect("the listener's address");
        let server = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                tokio::spawn(echo_back(stream)); // detached
            }
        });
        let clients: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(echo_client(address, messages, message_bytes)))
            .collect();
        for client in clients {
            client.await.expect("an echo client failed");
        }
        server.abort();
    })
}

/// The idle-connections workload on `runtime`, whichever flavour (see `echo_on`).
pub(super) fn idle_connections_on(runtime: &tokio::runtime::Runtime, connections: usize) {
    runtime.block_on(async {
        let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
        let address = listener.local_addr().expect("the listener's address");
        let (arrived, mut arrivals) = mpsc::unbounded();
        let server = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                tokio::spawn(wait_idle(stream, arrived.clone())); // detached
            }
        });
        let mut clients = Vec::with_capacity(connections);
        for batch in connect_batches(connections) {
            for _ in 0..batch {
                clients.push(TcpStream::connect(address).await.expect("connect"));
            }
            arrivals.by_ref().take(batch).count().await;
        }
        server.abort();
    })
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
fn chain_link(left: usize, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        drop(tokio::spawn(async move { chain_link(left - 1, done) }));
    }
}
