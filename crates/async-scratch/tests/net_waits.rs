//! A task waiting on a socket, as the diagnostics see it: a wait on I/O, whose waker
//! the reactor holds, listed with its descriptor and direction, never taken for a
//! deadlock, and withdrawn when the waiting is over or the socket is gone.
//!
//! Ordered by the executor's own events (its reports, its parking), never by
//! sleeping: the wait watchdog's threshold only decides *when* a report comes, and
//! each report is what moves the test on. Every test fails after [`GIVE_UP_AFTER`]
//! instead of hanging.
//!
//! Both ends of each connection are our own sockets, so these run under Miri too,
//! on the system layer's in-memory network.

mod common;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::executor::{spawn_named, Executor};
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::observe::Event;
use async_scratch::reactor::Reactor;
use common::net::{connected_pair, drive, send_now};
use common::{spawn_lock_cycle, within_give_up};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// How long the executor may sit parked before its wait watchdog says what it cannot
/// see. Short, as the report is what moves each test on; on a slow machine a report
/// only comes later, never wrongly.
const QUIET_SPELL: Duration = Duration::from_millis(20);

/// Connects to `address` from a thread of its own, on a reactor of its own, and
/// keeps the connection until the end of that thread.
fn connect_from_another_thread(address: SocketAddr) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let reactor = Reactor::new().unwrap();
        let handle = reactor.handle();
        let executor = Executor::builder().park(reactor).build();
        let connected = executor.block_on(TcpStream::connect(&handle, address));
        connected.expect("the client connects");
    })
}

/// The description of `name` among a report's tasks, if it is listed.
fn waits_of(tasks: &[async_scratch::diagnostics::StuckTask], name: &str) -> Option<String> {
    let task = tasks
        .iter()
        .find(|stuck| stuck.task.name.as_deref() == Some(name))?;
    Some(task.waits_for.clone().unwrap_or_default())
}

/// Two tasks deadlock on two locks while a third waits to read a socket. The cycle
/// is reported when it closes; the executor, parked, cannot prove a deadlock (the
/// socket may yet be written), and its report lists the socket wait with its
/// descriptor and direction, the reader out of any cycle. The report is what writes
/// the byte the reader waits for, and the program then ends normally.
#[test]
fn a_lock_cycle_beside_a_socket_wait_names_both() {
    let (reports, fd) = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let (mut ours, peer) = drive(&reactor, connected_pair(&reactor.handle()));
        let fd = ours.as_fd().as_raw_fd();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let peer = Mutex::new(peer);
        let executor = Executor::builder()
            .park(reactor)
            .wait_watchdog(QUIET_SPELL)
            .on_diagnostic(move |report: &Diagnostic| {
                if matches!(report, Diagnostic::NoWakeInSight { .. }) {
                    send_now(&mut peer.lock().unwrap(), b"!"); // the reader goes on
                }
                sink.lock().unwrap().push(report.clone());
            })
            .build();
        let outcome = executor.try_block_on(async move {
            spawn_lock_cycle();
            let reader = spawn_named("reader", async move {
                let mut byte = [0];
                ours.read_exact(&mut byte).await.unwrap();
                byte
            });
            reader.await.unwrap()
        });
        assert_eq!(
            outcome.expect("no deadlock: the socket could be written"),
            *b"!"
        );
        let reports = seen.lock().unwrap().clone();
        (reports, fd)
    });
    let cycle = reports.iter().find_map(|report| match report {
        Diagnostic::WaitCycle { cycle } => Some(cycle),
        _ => None,
    });
    let cycle = cycle.expect("the lock cycle is reported");
    let names: Vec<_> = cycle.iter().map(|s| s.task.name.as_deref()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        !names.contains(&Some("reader")),
        "the reader is in no cycle"
    );
    let unseen = reports.iter().find_map(|report| match report {
        Diagnostic::NoWakeInSight { tasks, .. } => Some(tasks),
        _ => None,
    });
    let unseen = unseen.expect("the parked executor says what it cannot see");
    let reader = waits_of(unseen, "reader").expect("the reader is listed");
    assert_eq!(reader, format!("waits on I/O: fd {fd}, readable"));
    assert!(
        waits_of(unseen, "one-way").is_none(),
        "the cycle is seen, not unseen"
    );
}

/// A task waits to read while the executor parks with nothing else to do: not a
/// deadlock (the kernel holds the other side), so no report at all; the first park
/// is what writes the byte it waits for.
#[test]
fn a_healthy_socket_wait_raises_no_report() {
    let (outcome, reports) = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let (mut ours, peer) = drive(&reactor, connected_pair(&reactor.handle()));
        let peer = Mutex::new(peer);
        let (reporter, seen) = common::collect_diagnostics();
        let written = AtomicBool::new(false);
        let executor = Executor::builder()
            .park(reactor)
            .on_diagnostic(reporter)
            .observe(move |event: &Event| {
                if matches!(event, Event::Parking { .. }) && !written.swap(true, Ordering::Relaxed)
                {
                    send_now(&mut peer.lock().unwrap(), b"?");
                }
            })
            .build();
        let outcome = executor.try_block_on(async move {
            let mut byte = [0];
            ours.read_exact(&mut byte).await.map(|()| byte)
        });
        let reports = seen.lock().unwrap().clone();
        (outcome.map(Result::unwrap), reports)
    });
    assert_eq!(outcome, Ok(*b"?"));
    assert!(reports.is_empty(), "{reports:?}");
}

/// The record lives as long as the reactor holds the task's waker for the socket:
/// listed once however often the read is polled again with the same waker, and gone
/// once the stream is dropped, though the task still waits (on a waker the test
/// holds, which the report then names instead).
#[test]
fn a_dropped_stream_takes_its_wait_record_with_it() {
    let (reports, fd) = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let (ours, _peer) = drive(&reactor, connected_pair(&reactor.handle()));
        let fd = ours.as_fd().as_raw_fd();
        let stashed: Arc<Mutex<Option<Waker>>> = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (sink, waker) = (Arc::clone(&seen), Arc::clone(&stashed));
        let executor = Executor::builder()
            .park(reactor)
            .wait_watchdog(QUIET_SPELL)
            .on_diagnostic(move |report: &Diagnostic| {
                if let Diagnostic::NoWakeInSight { tasks, .. } = report {
                    sink.lock().unwrap().push(waits_of(tasks, "reader"));
                    let next_step = waker.lock().unwrap().take();
                    next_step.expect("the reader stashed its waker").wake();
                }
            })
            .build();
        executor.block_on(async move {
            let reader = spawn_named("reader", read_twice_then_drop(ours, stashed));
            reader.await.unwrap();
        });
        let reports = seen.lock().unwrap().clone();
        (reports, fd)
    });
    let io_wait = format!("waits on I/O: fd {fd}, readable");
    let io_waits =
        |report: &Option<String>| report.as_deref().unwrap_or("").matches(&io_wait).count();
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(io_waits(&reports[0]), 1, "{reports:?}");
    assert_eq!(io_waits(&reports[1]), 1, "polled again: {reports:?}");
    assert_eq!(io_waits(&reports[2]), 0, "the stream is gone: {reports:?}");
    let held = "1 of its wakers is held where the executor cannot follow it";
    assert!(
        reports[2].as_deref().unwrap_or("").contains(held),
        "{reports:?}"
    );
}

/// Polls a read on `stream` twice (each `Pending`, with its waker also stashed for the
/// test to wake), then drops the stream and waits once more on the stash alone.
async fn read_twice_then_drop(stream: TcpStream, stash: Arc<Mutex<Option<Waker>>>) {
    let mut stream = Some(stream);
    let mut polls = 0;
    poll_fn(|cx| {
        polls += 1;
        match polls {
            1 | 2 => {
                let mut buf = [0];
                let read = stream.as_mut().unwrap().poll_read(cx, &mut buf);
                assert!(read.is_pending(), "the peer never writes");
            }
            3 => drop(stream.take()),
            _ => return Poll::Ready(()),
        }
        *stash.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
}

/// A listener's wait is named for what it is: an accept, not a read. The report is
/// what connects the client it waits for.
#[test]
fn an_accept_wait_is_named_as_one() {
    let (reports, fd) = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let mut listener = TcpListener::bind(&reactor.handle(), "127.0.0.1:0").unwrap();
        let (fd, address) = (listener.as_fd().as_raw_fd(), listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let client = Arc::new(Mutex::new(None));
        let client_slot = Arc::clone(&client);
        let executor = Executor::builder()
            .park(reactor)
            .wait_watchdog(QUIET_SPELL)
            .on_diagnostic(move |report: &Diagnostic| {
                if let Diagnostic::NoWakeInSight { tasks, .. } = report {
                    sink.lock().unwrap().push(waits_of(tasks, "acceptor"));
                    *client_slot.lock().unwrap() = Some(connect_from_another_thread(address));
                }
            })
            .build();
        executor.block_on(async move {
            let acceptor =
                spawn_named("acceptor", async move { listener.accept().await.map(drop) });
            acceptor.await.unwrap().unwrap();
        });
        let client = client
            .lock()
            .unwrap()
            .take()
            .expect("the report connected a client");
        client.join().unwrap();
        let reports = seen.lock().unwrap().clone();
        (reports, fd)
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0], Some(format!("waits on I/O: fd {fd}, accept")));
}
