//! Sockets give their file descriptors back: a thousand connections opened and
//! closed through the reactor leave the process with as many descriptors as before.
//!
//! A file of its own, so a test binary of its own: it counts the whole process's
//! descriptors (the entries of `/proc/self/fd`), which tests running in parallel
//! threads beside it would change.
#![cfg(not(miri))] // counts the kernel's descriptors in /proc, which Miri cannot read

mod common;

use async_scratch::executor::{spawn, Executor};
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::reactor::Reactor;
use common::receive_or_give_up;
use std::sync::mpsc;
use std::thread;

/// How many connect/accept/close cycles: enough that a leak of one descriptor per
/// cycle (or per side) could not hide in any noise.
const CYCLES: usize = 1_000;

/// The process's open file descriptors, as `/proc/self/fd` lists them (the listing's
/// own descriptor is counted in every reading alike).
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("Linux's /proc")
        .count()
}

/// Connects, accepts, exchanges a byte and closes, a thousand times, each side in its
/// own task; then the count of open descriptors is what it was after the first
/// cycle (which may open things once: the reactor's own descriptors, a lazily loaded
/// resolver), and only the listener is still registered.
#[test]
fn a_thousand_connections_leave_no_descriptor_behind() {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let reactor = Reactor::new().unwrap();
        let handle = reactor.handle();
        let executor = Executor::builder().park(reactor).build();
        let counts = executor.block_on(async move {
            let mut listener = TcpListener::bind(&handle, "127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let mut before = 0;
            for cycle in 0..CYCLES {
                let client = spawn({
                    let handle = handle.clone();
                    async move {
                        let mut client = TcpStream::connect(&handle, address).await.unwrap();
                        client.write_all(b"x").await.unwrap();
                    } // dropped: closed
                });
                let (mut server, _) = listener.accept().await.unwrap();
                let mut byte = [0; 1];
                server.read_exact(&mut byte).await.unwrap();
                client.await.unwrap();
                drop(server);
                if cycle == 0 {
                    before = open_descriptors();
                }
            }
            (before, open_descriptors(), handle.registered())
        });
        let _ = sender.send(counts);
    });
    let (before, after, registered) = receive_or_give_up(&receiver, "the end of the cycles");
    assert_eq!(after, before, "descriptors leaked over {CYCLES} cycles");
    assert_eq!(
        registered, 1,
        "only the listener should still be registered"
    );
}
