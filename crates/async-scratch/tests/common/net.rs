//! Helpers for the socket tests: connections whose both ends are our own sockets,
//! and a peer's bytes sent at the moment a test chooses. Nothing here needs the
//! kernel's TCP, so the tests that use them run under Miri too, on the system
//! layer's in-memory network.

use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::park::Park;
use async_scratch::reactor::{Handle, Reactor};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use super::GIVE_UP_AFTER;

/// A connection on loopback, both ends ours and registered with `handle`: the
/// connecting end first, then the accepted one.
pub async fn connected_pair(handle: &Handle) -> (TcpStream, TcpStream) {
    let mut listener = TcpListener::bind(handle, "127.0.0.1:0").unwrap();
    let client = TcpStream::connect(handle, listener.local_addr().unwrap());
    let client = client.await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Runs `future` to its end without an executor, parking in `reactor` while it
/// waits: for the tests that drive the reactor by hand, or that need sockets before
/// the reactor goes to an executor.
pub fn drive<F: Future>(reactor: &Reactor, future: F) -> F::Output {
    let mut future = pin!(future);
    let woken = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&woken));
    loop {
        let wakes_before = woken.wakes();
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        park_until(reactor, || woken.wakes() > wakes_before);
    }
}

/// Writes all of `bytes` at once, or fails the test: for a peer whose bytes must be
/// sent at a moment the test chooses, with no waiting (they fit the buffers).
pub fn send_now(stream: &mut TcpStream, mut bytes: &[u8]) {
    let mut cx = Context::from_waker(Waker::noop());
    while !bytes.is_empty() {
        match stream.poll_write(&mut cx, bytes) {
            Poll::Ready(Ok(written)) if written > 0 => bytes = &bytes[written..],
            other => panic!("the peer could not send at once: {other:?}"),
        }
    }
}

/// Parks in `reactor` until `done()`, failing after [`GIVE_UP_AFTER`].
pub fn park_until(reactor: &Reactor, done: impl Fn() -> bool) {
    let give_up = Instant::now() + GIVE_UP_AFTER;
    while !done() {
        assert!(Instant::now() < give_up, "the reactor never woke the waker");
        reactor.park(Some(give_up));
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A connected, non-blocking pair of Unix stream sockets, as `File`s (whose `read`
/// and `write` are the plain system calls, which Miri runs on a socket pair).
pub fn unix_socket_pair() -> (File, File) {
    let mut fds = [0; 2];
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors the call writes.
    let made = unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) };
    assert_eq!(made, 0, "socketpair: {}", io::Error::last_os_error());
    // SAFETY: on success both descriptors are new and ours alone.
    let (one, other) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (File::from(one), File::from(other))
}
