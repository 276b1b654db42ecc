//! The reactor and the executor together on a Unix socket pair: everything above the
//! system calls (wakers stored and taken at edges, the I/O wait records, the edge
//! flags, the drained mark) on descriptors that Miri can run, since it has epoll,
//! eventfd and socket pairs but no TCP. So `cargo +nightly miri test -p async-scratch
//! --test net_pair` checks that code for undefined behaviour and leaks on Miri's own
//! sockets, beside `tests/net.rs`, which Miri runs on the fake TCP of the reactor's
//! system layer.
//!
//! The ends are `File`s, whose `read` and `write` are the plain system calls Miri runs
//! on a socket pair (it has no `recv`/`send`, which `UnixStream` uses).

mod common;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::executor::{spawn_named, Executor};
use async_scratch::reactor::{Direction, Interest, Reactor, Registered};
use std::fs::File;
use std::future::poll_fn;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::net::unix_socket_pair;
use common::spawn_lock_cycle;

/// Messages each way: enough for many waits and wakes, few enough for Miri.
const MESSAGES: usize = if cfg!(miri) { 20 } else { 1_000 };

/// Reads exactly `buf.len()` bytes through the reactor.
async fn read_exact(socket: &Registered<File>, mut buf: &mut [u8]) {
    while !buf.is_empty() {
        let read = poll_fn(|cx| socket.poll_io(cx, Direction::Read, |mut f| f.read(buf))).await;
        match read.expect("read") {
            0 => panic!("the other end closed early"),
            n => buf = &mut buf[n..],
        }
    }
}

/// Writes all of `buf` through the reactor.
async fn write_all(socket: &Registered<File>, mut buf: &[u8]) {
    while !buf.is_empty() {
        let written = poll_fn(|cx| socket.poll_io(cx, Direction::Write, |mut f| f.write(buf)));
        buf = &buf[written.await.expect("write")..];
    }
}

/// Two tasks echo messages over a socket pair, each waiting on its socket between
/// messages (so each wait is recorded and withdrawn, with the diagnostics on): every
/// message comes back, and no report is raised, as no wait on I/O is a deadlock.
#[test]
fn an_echo_over_a_socket_pair_raises_no_report() {
    let reactor = Reactor::new().unwrap();
    let handle = reactor.handle();
    let (one, other) = unix_socket_pair();
    let client = handle.register(one, Interest::BOTH).unwrap();
    let server = handle.register(other, Interest::BOTH).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let executor = Executor::builder()
        .park(reactor)
        .on_diagnostic(move |report: &Diagnostic| sink.lock().unwrap().push(report.clone()))
        .build();
    let echoed = executor.try_block_on(async move {
        let echo = spawn_named("echo", async move {
            let mut message = [0; 8];
            for _ in 0..MESSAGES {
                read_exact(&server, &mut message).await;
                write_all(&server, &message).await;
            }
        });
        let mut echoed = 0;
        for number in 0..MESSAGES as u64 {
            write_all(&client, &number.to_le_bytes()).await;
            let mut back = [0; 8];
            read_exact(&client, &mut back).await;
            assert_eq!(u64::from_le_bytes(back), number);
            echoed += 1;
        }
        echo.await.unwrap();
        echoed
    });
    assert_eq!(echoed, Ok(MESSAGES));
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(handle.registered(), 0, "both sockets deregistered");
}

/// Two tasks deadlock on two locks while a third waits to read: the cycle is
/// reported, and the parked executor's report lists the read as a wait on I/O, not a
/// deadlock; that report writes the byte the reader waits for, and all ends well. (As
/// in `net_waits.rs`, here on descriptors Miri runs.)
#[test]
fn a_lock_cycle_beside_a_wait_on_a_socket_pair() {
    let reactor = Reactor::new().unwrap();
    let (ours, theirs) = unix_socket_pair();
    let fd = ours.as_raw_fd();
    let ours = reactor.handle().register(ours, Interest::READABLE).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let executor = Executor::builder()
        .park(reactor)
        .wait_watchdog(Duration::from_millis(20))
        .on_diagnostic(move |report: &Diagnostic| {
            if matches!(report, Diagnostic::NoWakeInSight { .. }) {
                (&theirs).write_all(b"!").unwrap(); // the reader goes on
            }
            sink.lock().unwrap().push(report.to_string());
        })
        .build();
    let outcome = executor.try_block_on(async move {
        spawn_lock_cycle();
        let reader = spawn_named("reader", async move {
            let mut byte = [0];
            read_exact(&ours, &mut byte).await;
            byte
        });
        reader.await.unwrap()
    });
    assert_eq!(
        outcome.expect("no deadlock: the socket could be written"),
        *b"!"
    );
    let reports = seen.lock().unwrap().join("\n");
    assert!(reports.contains("wait cycle"), "{reports}");
    let listed = "task 'reader' (spawned at";
    assert!(reports.contains(listed), "{reports}");
    let io_wait = format!("waits on I/O: fd {fd}, readable");
    assert!(reports.contains(&io_wait), "{reports}");
}
