//! Sockets on the multi-threaded runtime (step 7): one reactor shared by the workers,
//! driven by the worker about to park, and polled now and then by busy ones.
//!
//! Every wait is bounded (the tests fail instead of hanging), and events are ordered
//! by channels and conditions, never by sleeping. The tests of this file run one at a
//! time (`ONE_AT_A_TIME`): one of them counts the process's file descriptors, which
//! the sockets of a test running beside it would change.
#![cfg(not(miri))] // Miri runs no epoll on TCP sockets

mod common;

use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::runtime::{self, Runtime};
use async_scratch::time::sleep;
use common::futures::yield_now;
use common::{receive_or_give_up, within_give_up, GIVE_UP_AFTER};

/// Serialises the tests of this file (see the file's doc).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

fn workers(count: usize) -> Runtime {
    Runtime::builder().worker_threads(count).build().unwrap()
}

/// Waits, yielding the core, until `condition` holds; fails after [`GIVE_UP_AFTER`].
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + GIVE_UP_AFTER;
    while !condition() {
        assert!(std::time::Instant::now() < give_up, "{what} never happened");
        thread::yield_now();
    }
}

/// Where the tasks of a test have run: set once any task resumed on another worker
/// than the one it ran on before.
#[derive(Default)]
struct Migrations {
    seen: AtomicBool,
}

impl Migrations {
    /// Called by a task after each await: `last` is where it ran before.
    fn note(&self, last: &mut Option<usize>) {
        let now = runtime::current_worker();
        if last.is_some() && now != *last {
            self.seen.store(true, Ordering::SeqCst);
        }
        *last = now;
    }

    fn seen(&self) -> bool {
        self.seen.load(Ordering::SeqCst)
    }
}

/// How many connections the echo test opens at once.
const CONNECTIONS: usize = 32;
/// How many messages each client sends at least.
const MESSAGES: usize = 200;
/// The size of a message.
const MESSAGE: usize = 64;

/// Echoes `stream` back until its peer closes it, noting where it runs.
async fn echo(mut stream: TcpStream, migrations: Arc<Migrations>) {
    let mut last = runtime::current_worker();
    let mut buffer = [0; MESSAGE];
    loop {
        match stream.read(&mut buffer).await.unwrap() {
            0 => return,
            read => stream.write_all(&buffer[..read]).await.unwrap(),
        }
        migrations.note(&mut last);
    }
}

/// Sends numbered messages and checks each echo, at least [`MESSAGES`] of them and
/// on until some task has migrated; returns how many it sent.
async fn client(mut stream: TcpStream, id: usize, migrations: Arc<Migrations>) -> usize {
    let mut last = runtime::current_worker();
    let mut sent = 0;
    while sent < MESSAGES || !migrations.seen() {
        let mut message = [0; MESSAGE];
        message[..8].copy_from_slice(&(id as u64).to_le_bytes());
        message[8..16].copy_from_slice(&(sent as u64).to_le_bytes());
        stream.write_all(&message).await.unwrap();
        let mut echoed = [0; MESSAGE];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message, "connection {id}, message {sent}");
        sent += 1;
        migrations.note(&mut last);
    }
    sent
}

/// TCP echo on two workers: a server task accepts [`CONNECTIONS`] connections and
/// spawns an echo task for each; a client task per connection sends numbered
/// messages and checks every echo. The tasks are woken by the one shared reactor,
/// whichever worker drives it, and run on either worker: the clients go on until
/// some task has resumed on another worker than before (a migration), and every
/// message comes back whole and in order.
#[test]
fn echo_over_tcp_on_two_workers_with_tasks_that_migrate() {
    let _serial = one_at_a_time();
    within_give_up(|| {
        let runtime = workers(2);
        let handle = runtime.reactor();
        let migrations = Arc::new(Migrations::default());
        let mut listener = TcpListener::bind(&handle, "127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = runtime.spawn({
            let migrations = migrations.clone();
            async move {
                let mut echoes = Vec::new();
                for _ in 0..CONNECTIONS {
                    let (stream, _) = listener.accept().await.unwrap();
                    echoes.push(runtime::spawn(echo(stream, migrations.clone())));
                }
                for echo in echoes {
                    echo.await.unwrap();
                }
            }
        });
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|id| {
                let migrations = migrations.clone();
                runtime.spawn(async move {
                    let stream = TcpStream::connect(&runtime::reactor(), address).await;
                    client(stream.unwrap(), id, migrations).await
                })
            })
            .collect();
        for client in clients {
            let sent = runtime.block_on(client).unwrap();
            assert!(sent >= MESSAGES);
        }
        runtime.block_on(server).unwrap();
        assert!(migrations.seen());
        let stats = runtime.stats();
        assert!(
            stats.polls_per_worker.iter().all(|&polls| polls > 0),
            "both workers ran tasks: {stats:?}"
        );
    });
}

/// A task waiting on a socket is woken while both workers are kept busy by tasks
/// that are always ready (so no worker ever parks, and none waits in `epoll_wait`):
/// the busy workers poll the reactor now and then, and hear the socket. No park
/// happens between the write and the wake: it was the poll that heard it.
#[test]
fn a_socket_is_heard_while_every_worker_is_busy() {
    let _serial = one_at_a_time();
    within_give_up(|| {
        let runtime = workers(2);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Where each busy task ran last (usize::MAX: not yet).
        let busy_on: Arc<[AtomicUsize; 2]> =
            Arc::new([usize::MAX, usize::MAX].map(AtomicUsize::new));
        let busy: Vec<_> = (0..2)
            .map(|index| {
                let (stop, busy_on) = (stop.clone(), busy_on.clone());
                runtime.spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let worker = runtime::current_worker().unwrap();
                        busy_on[index].store(worker, Ordering::SeqCst);
                        yield_now().await;
                    }
                })
            })
            .collect();
        let (connected, is_connected) = mpsc::channel();
        let reader = runtime.spawn(async move {
            let mut stream = TcpStream::connect(&runtime::reactor(), address)
                .await
                .unwrap();
            let mut byte = [0; 1];
            {
                let mut read = pin!(stream.read_exact(&mut byte));
                let mut told = false;
                poll_fn(|cx| {
                    let poll = read.as_mut().poll(cx);
                    // Pending: its waker is stored with the reactor. Only now may the
                    // byte come, so that it is heard, not found by the first attempt.
                    if poll.is_pending() && !told {
                        told = true;
                        connected.send(()).unwrap();
                    }
                    poll
                })
                .await
                .unwrap();
            }
            byte[0]
        });
        let (mut peer, _) = listener.accept().unwrap();
        receive_or_give_up(&is_connected, "the reader's wait on its socket");
        // Each worker runs one busy task: from now on neither has a reason to park.
        wait_until("one busy task on each worker", || {
            let [first, second] = [0, 1].map(|index| busy_on[index].load(Ordering::SeqCst));
            first != usize::MAX && second != usize::MAX && first != second
        });
        let parks = runtime.stats().parks;
        peer.write_all(b"!").unwrap();
        wait_until("the reader's wake", || reader.is_finished());
        let parks_meanwhile = runtime.stats().parks - parks;
        stop.store(true, Ordering::SeqCst);
        assert_eq!(runtime.block_on(reader), Ok(b'!'));
        for task in busy {
            runtime.block_on(task).unwrap();
        }
        assert_eq!(
            parks_meanwhile, 0,
            "a worker parked: the park heard it, not the poll"
        );
    });
}

/// With one worker, that worker parks in the reactor whenever it is idle: a spawn
/// from outside must end its `epoll_wait` (through the reactor's eventfd), not signal
/// a condition variable nobody waits on.
#[test]
fn a_spawn_from_outside_wakes_the_worker_parked_in_the_reactor() {
    let _serial = one_at_a_time();
    within_give_up(|| {
        let runtime = workers(1);
        let reactor = runtime.reactor();
        for round in 0..10 {
            wait_until("the worker parked in epoll_wait", || {
                format!("{reactor:?}").contains(r#""parked""#)
            });
            let (sender, receiver) = mpsc::channel();
            drop(runtime.spawn(async move { sender.send(round).unwrap() }));
            assert_eq!(
                receive_or_give_up(&receiver, "the spawned task's run"),
                round
            );
        }
    });
}

/// Counts the drops of the future it wraps.
struct CountDrops<F> {
    future: Pin<Box<F>>,
    drops: Arc<AtomicUsize>,
}

impl<F: Future> Future for CountDrops<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<F> Drop for CountDrops<F> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// The process's open file descriptors, as `/proc/self/fd` lists them.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("Linux's /proc")
        .count()
}

/// How many tasks wait on sockets when their runtime is dropped.
const WAITERS: usize = 16;

/// A runtime dropped while its tasks wait on sockets (clients reading what never
/// comes, a server waiting for a connection that never comes) drops every future
/// exactly once, and gives back every descriptor: the sockets', the reactor's epoll
/// and eventfd (nothing keeps the reactor alive in a cycle through a stored waker).
#[test]
fn a_runtime_dropped_while_tasks_wait_on_sockets_drops_each_once_and_closes_all() {
    let _serial = one_at_a_time();
    within_give_up(|| {
        let before = open_descriptors();
        let runtime = workers(2);
        let mut listener = TcpListener::bind(&runtime.reactor(), "127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let drops: Vec<_> = (0..=WAITERS)
            .map(|_| Arc::new(AtomicUsize::new(0)))
            .collect();
        let (waiting, is_waiting) = mpsc::channel();
        let server = {
            let waiting = waiting.clone();
            CountDrops {
                future: Box::pin(async move {
                    let mut accepted = Vec::new();
                    for _ in 0..WAITERS {
                        accepted.push(listener.accept().await.unwrap().0);
                    }
                    waiting.send(()).unwrap();
                    let _never = listener.accept().await;
                    drop(accepted);
                }),
                drops: drops[WAITERS].clone(),
            }
        };
        let mut handles = vec![runtime.spawn(server)];
        for counter in &drops[..WAITERS] {
            let waiting = waiting.clone();
            let client = async move {
                let mut stream = TcpStream::connect(&runtime::reactor(), address)
                    .await
                    .unwrap();
                waiting.send(()).unwrap();
                let mut byte = [0; 1];
                let _never = stream.read(&mut byte).await;
            };
            handles.push(runtime.spawn(CountDrops {
                future: Box::pin(client),
                drops: counter.clone(),
            }));
        }
        for _ in 0..=WAITERS {
            receive_or_give_up(&is_waiting, "a task's wait on its socket");
        }
        assert!(
            open_descriptors() > before + 2 * WAITERS,
            "the sockets are open"
        );
        drop(runtime);
        for handle in &handles {
            assert!(handle.is_finished(), "its JoinHandle says cancelled");
        }
        drop(handles);
        let dropped: Vec<usize> = drops.iter().map(|d| d.load(Ordering::SeqCst)).collect();
        assert_eq!(dropped, vec![1; WAITERS + 1], "each future dropped once");
        assert_eq!(open_descriptors(), before, "descriptors left open");
    });
}

/// Timers and sockets on one reactor: with one worker, which parks in `epoll_wait`
/// and must wake for the next timer's deadline as well as for sockets. Tasks sleep
/// before they write; their readers wait on the sockets; a reader that also sleeps
/// in between reads both ways.
#[test]
fn timers_and_sockets_wake_tasks_on_the_same_reactor() {
    let _serial = one_at_a_time();
    within_give_up(|| {
        for worker_count in [1, 2] {
            let runtime = workers(worker_count);
            let mut listener = TcpListener::bind(&runtime.reactor(), "127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            const PAIRS: usize = 8;
            let writers: Vec<_> = (0..PAIRS)
                .map(|pair| {
                    runtime.spawn(async move {
                        let reactor = runtime::reactor();
                        let mut stream = TcpStream::connect(&reactor, address).await.unwrap();
                        for round in 0..3u8 {
                            sleep(Duration::from_millis(1 + pair as u64)).await;
                            stream.write_all(&[round]).await.unwrap();
                        }
                    })
                })
                .collect();
            let readers = runtime.spawn(async move {
                let mut seen = HashSet::new();
                let mut readers = Vec::new();
                for _ in 0..PAIRS {
                    let (mut stream, peer) = listener.accept().await.unwrap();
                    seen.insert(peer);
                    readers.push(runtime::spawn(async move {
                        let mut rounds = Vec::new();
                        for _ in 0..3 {
                            let mut byte = [0; 1];
                            stream.read_exact(&mut byte).await.unwrap();
                            rounds.push(byte[0]);
                            sleep(Duration::from_millis(1)).await;
                        }
                        rounds
                    }));
                }
                let mut all = Vec::new();
                for reader in readers {
                    all.push(reader.await.unwrap());
                }
                (seen.len(), all)
            });
            for writer in writers {
                runtime.block_on(writer).unwrap();
            }
            let (peers, rounds) = runtime.block_on(readers).unwrap();
            assert_eq!(peers, PAIRS);
            assert!(rounds.iter().all(|r| r == &[0, 1, 2]), "{rounds:?}");
        }
    });
}

/// A blocking std client, for symmetry with the async ones: the runtime's sockets
/// talk to ordinary ones.
#[test]
fn a_runtime_server_answers_a_blocking_client() {
    let _serial = one_at_a_time();
    within_give_up(|| {
        let runtime = workers(2);
        let mut listener = TcpListener::bind(&runtime.reactor(), "127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let migrations = Arc::new(Migrations::default());
        let server = runtime.spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            echo(stream, migrations).await;
        });
        let mut client = std::net::TcpStream::connect(address).unwrap();
        client.set_read_timeout(Some(GIVE_UP_AFTER)).unwrap();
        for message in [&b"one"[..], b"two", b"three"] {
            client.write_all(message).unwrap();
            let mut echoed = vec![0; message.len()];
            client.read_exact(&mut echoed).unwrap();
            assert_eq!(echoed, message);
        }
        drop(client);
        runtime.block_on(server).unwrap();
    });
}
