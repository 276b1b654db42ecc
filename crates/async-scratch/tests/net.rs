//! Step 6's sockets and reactor, by scenario: round trips, partial reads and writes,
//! the ends of a connection (end of stream, refusal, reset), and the reactor's own
//! bookkeeping (a waker that changes, a socket dropped by its own waker, a wake from
//! another thread, a timeout that must not end early).
//!
//! Every test is ordered by channels, gates or the reactor's own state, never by
//! sleeping, and runs on a thread of its own that fails the test after
//! [`GIVE_UP_AFTER`] instead of hanging. Both ends of every connection are our own
//! sockets, and a peer's bytes are written when the test says (with `send_now`),
//! so the same tests run on the kernel's TCP and, under Miri, on the system layer's
//! in-memory network: `cargo +nightly miri test -p async-scratch --test net`. What
//! only the kernel has (socket options, its backlog) is set or tested natively only.
//!
//! The file-descriptor leak check is in `net_fds.rs`: it counts the whole process's
//! descriptors, which the parallel tests here would disturb.

mod common;

use async_scratch::executor::{spawn, yield_now, Executor};
use async_scratch::join_all::join_all;
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::park::Park;
use async_scratch::reactor::{Direction, Handle, Interest, Reactor};
use async_scratch::time::sleep;
use common::net::{connected_pair, drive, park_until, send_now, unix_socket_pair, CountingWaker};
use common::{within_give_up, GIVE_UP_AFTER};
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// Helpers

/// Runs the future `body` makes on an executor parked in a new reactor, with the
/// reactor's handle, bounded as [`within_give_up`].
fn on_reactor<T, F>(body: impl FnOnce(Handle) -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    within_give_up(move || {
        let reactor = Reactor::new().expect("a reactor");
        let handle = reactor.handle();
        let executor = Executor::builder().park(reactor).build();
        executor.block_on(body(handle))
    })
}

/// A future that counts how often `inner` returned `Pending`, and calls `on_pending`
/// each time (a test's way to act exactly when the future waits).
async fn counting_pendings<F: Future>(
    inner: F,
    pendings: &Cell<usize>,
    mut on_pending: impl FnMut(),
) -> F::Output {
    let mut inner = pin!(inner);
    poll_fn(|cx| match inner.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => {
            pendings.set(pendings.get() + 1);
            on_pending();
            Poll::Pending
        }
    })
    .await
}

/// Sets an integer socket option with `setsockopt` (std has no call for these).
/// Natively only: the fake network of Miri has no kernel options.
#[cfg(not(miri))]
fn set_socket_option<T>(socket: &impl std::os::fd::AsFd, level: i32, name: i32, value: T) {
    use std::os::fd::AsRawFd;
    // SAFETY: the pointer and length describe `value`, which lives across the call;
    // the socket is open (borrowed).
    let result = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            (&value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "setsockopt: {}", io::Error::last_os_error());
}

// ---------------------------------------------------------------------------------
// Round trips

/// Bytes go out and come back: a client task and a server task on one executor,
/// both waiting only in the reactor. Dropping both sockets deregisters them.
#[test]
fn echo_round_trip() {
    let (echoed, registered_after) = on_reactor(|handle| async move {
        let mut listener = TcpListener::bind(&handle, "127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut connection, _) = listener.accept().await.unwrap();
            let mut message = [0; 5];
            connection.read_exact(&mut message).await.unwrap();
            connection.write_all(&message).await.unwrap();
        });
        let mut client = TcpStream::connect(&handle, address).await.unwrap();
        assert_eq!(client.peer_addr().unwrap(), address);
        client.write_all(b"hello").await.unwrap();
        let mut echoed = [0; 5];
        client.read_exact(&mut echoed).await.unwrap();
        server.await.unwrap();
        drop(client);
        (echoed, handle.registered())
    });
    assert_eq!(&echoed, b"hello");
    assert_eq!(registered_after, 0, "a dropped socket stays registered");
}

/// Many connections at once on one thread (200; 10 under Miri, where each costs
/// seconds): every client sends its number and gets it back, and the echo tasks all
/// wait in one reactor.
#[test]
fn many_connections_on_one_thread() {
    const CONNECTIONS: u64 = if cfg!(miri) { 10 } else { 200 };
    let answers = on_reactor(|handle| async move {
        let mut listener = TcpListener::bind(&handle, "127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let _server = spawn(async move {
            loop {
                let (mut connection, _) = listener.accept().await.unwrap();
                let _echo = spawn(async move {
                    let mut number = [0; 8];
                    connection.read_exact(&mut number).await.unwrap();
                    connection.write_all(&number).await.unwrap();
                });
            }
        });
        let clients = (0..CONNECTIONS).map(|number| {
            let handle = handle.clone();
            spawn(async move {
                let mut client = TcpStream::connect(&handle, address).await.unwrap();
                client.set_nodelay(true).unwrap();
                client.write_all(&number.to_le_bytes()).await.unwrap();
                let mut answer = [0; 8];
                client.read_exact(&mut answer).await.unwrap();
                u64::from_le_bytes(answer)
            })
        });
        join_all(clients).await
    });
    let answers: Vec<u64> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, (0..CONNECTIONS).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------
// Partial reads and writes

/// A write larger than the buffers between us and the peer (natively: several
/// times, with our send buffer shrunk to the kernel's minimum and the peer's receive
/// buffer bounded; under Miri, where each byte read costs many steps: twice the fake
/// network's buffer of 1 KiB, and a byte), to a peer task that reads one byte at a
/// time: `write_all` has to wait (it returns `Pending` at least once) and resume
/// where it stopped; the peer receives every byte, in order.
#[test]
fn a_large_write_to_a_peer_reading_one_byte_at_a_time() {
    const SIZE: usize = if cfg!(miri) { 2 * 1024 + 1 } else { 256 * 1024 };
    let pattern: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let expected = pattern.clone();
    let (received, pendings) = on_reactor(move |handle| async move {
        let (mut ours, mut peer) = connected_pair(&handle).await;
        #[cfg(not(miri))]
        {
            // Asked for as 1 byte: the kernel rounds it up to its minimum (a few KiB).
            set_socket_option(&ours, libc::SOL_SOCKET, libc::SO_SNDBUF, 1);
            // Bounded (else the kernel grows it to megabytes), yet not so small that
            // TCP crawls (a window so small that every segment waits for an update).
            set_socket_option(&peer, libc::SOL_SOCKET, libc::SO_RCVBUF, 64 * 1024);
        }
        let reader = spawn(async move {
            let mut received = Vec::new();
            let mut byte = [0; 1];
            while peer.read(&mut byte).await.unwrap() == 1 {
                received.push(byte[0]);
            }
            received
        });
        let pendings = Cell::new(0);
        counting_pendings(ours.write_all(&pattern), &pendings, || {})
            .await
            .unwrap();
        ours.shutdown(Shutdown::Write).unwrap();
        (reader.await.unwrap(), pendings.get())
    });
    assert!(received == expected, "bytes lost or reordered");
    assert!(
        pendings > 0,
        "the write never had to wait: the test shows nothing"
    );
}

/// A peer that writes one byte each time our `read_exact` waits: every byte arrives
/// in a read of its own, and `read_exact` puts them together. The peer's writes are
/// triggered by our `Pending`s, so the number of waits is exact.
#[test]
fn read_exact_from_a_peer_writing_one_byte_at_a_time() {
    const SIZE: usize = 16;
    let (received, pendings) = on_reactor(|handle| async move {
        let (mut ours, mut peer) = connected_pair(&handle).await;
        let mut received = [0; SIZE];
        let pendings = Cell::new(0);
        let mut next_byte = 0;
        let send_one = || {
            if usize::from(next_byte) < SIZE {
                send_now(&mut peer, &[next_byte]);
                next_byte += 1;
            }
        };
        counting_pendings(ours.read_exact(&mut received), &pendings, send_one)
            .await
            .unwrap();
        (received, pendings.get())
    });
    assert_eq!(received.to_vec(), (0..SIZE as u8).collect::<Vec<_>>());
    assert_eq!(pendings, SIZE, "one wait per byte");
}

// ---------------------------------------------------------------------------------
// The ends of a connection

/// The peer sends 3 bytes and closes: a `read_exact` of 10 fails with
/// `UnexpectedEof`, and a plain `read` afterwards says end of stream, `Ok(0)`.
#[test]
fn end_of_stream_in_the_middle_of_read_exact() {
    let (exact, after) = on_reactor(|handle| async move {
        let (mut ours, mut peer) = connected_pair(&handle).await;
        send_now(&mut peer, b"abc");
        drop(peer);
        let mut buffer = [0; 10];
        let exact = ours.read_exact(&mut buffer).await.map_err(|e| e.kind());
        let after = ours.read(&mut buffer).await.map_err(|e| e.kind());
        (exact, after)
    });
    assert_eq!(exact, Err(io::ErrorKind::UnexpectedEof));
    assert_eq!(after, Ok(0));
}

/// Connecting to a port nobody listens on (one just freed) is `ConnectionRefused`,
/// whether the kernel says so at once or after the non-blocking connect waited.
#[test]
fn connecting_to_a_closed_port_is_refused() {
    let refused = on_reactor(|handle| async move {
        let closed = TcpListener::bind(&handle, "127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let outcome = TcpStream::connect(&handle, address).await;
        (outcome.map(drop).map_err(|e| e.kind()), handle.registered())
    });
    assert_eq!(refused, (Err(io::ErrorKind::ConnectionRefused), 0));
}

/// A peer that closes with bytes it never read resets the connection (Linux sends
/// a reset then, and the fake network does the same; natively the peer also sets
/// `SO_LINGER` 0, which resets whether or not the bytes arrived before the close):
/// our waiting read fails with `ConnectionReset`, and a write after it fails too
/// (reset or broken pipe), without killing the process with `SIGPIPE`.
#[test]
fn a_peer_reset_fails_read_and_write() {
    let (read, write) = on_reactor(|handle| async move {
        let (mut ours, peer) = connected_pair(&handle).await;
        send_now(&mut ours, b"never read");
        #[cfg(not(miri))]
        {
            let linger_zero = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            set_socket_option(&peer, libc::SOL_SOCKET, libc::SO_LINGER, linger_zero);
        }
        drop(peer); // resets
        let mut buffer = [0; 4];
        let read = ours.read(&mut buffer).await.map_err(|e| e.kind());
        let write = ours.write_all(b"late").await.map_err(|e| e.kind());
        (read, write)
    });
    assert_eq!(read, Err(io::ErrorKind::ConnectionReset));
    assert!(
        matches!(
            write,
            Err(io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
        ),
        "{write:?}"
    );
}

// ---------------------------------------------------------------------------------
// The reactor's bookkeeping, driven by hand: polls with our own wakers, and parks
// without an executor.

/// A read polled with one waker, then with another, then made ready: the second is
/// woken, and the first, replaced, is not.
#[test]
fn a_waker_that_changes_between_polls_is_the_one_woken() {
    let (first, second) = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let (mut ours, mut peer) = drive(&reactor, connected_pair(&reactor.handle()));
        let (first, second) = (
            Arc::new(CountingWaker::default()),
            Arc::new(CountingWaker::default()),
        );
        let mut buffer = [0; 8];
        for waker in [&first, &second] {
            let waker = Waker::from(Arc::clone(waker));
            let poll = ours.poll_read(&mut Context::from_waker(&waker), &mut buffer);
            assert!(poll.is_pending(), "nothing was sent yet");
        }
        send_now(&mut peer, b"x");
        park_until(&reactor, || second.wakes() > 0);
        (first.wakes(), second.wakes())
    });
    assert_eq!((first, second), (0, 1));
}

/// An edge that comes after the system call said `WouldBlock` but before the waker
/// is stored is not lost: `poll_io` tries again instead of waiting for an edge that
/// will never be reported again. The attempt itself makes the peer write and lets
/// the reactor see the edge (a park, on this same thread), which is exactly that gap.
#[test]
fn an_edge_before_the_waker_is_stored_is_not_lost() {
    let (poll, attempts) = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let (ours, mut theirs) = unix_socket_pair();
        let ours = reactor.handle().register(ours, Interest::READABLE).unwrap();
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut attempts = 0;
        let mut byte = [0; 1];
        let poll = ours.poll_io(
            &mut Context::from_waker(&waker),
            Direction::Read,
            |mut socket| {
                attempts += 1;
                let result = socket.read(&mut byte);
                if attempts == 1 {
                    assert_eq!(
                        result.as_ref().map_err(io::Error::kind).err(),
                        Some(io::ErrorKind::WouldBlock)
                    );
                    theirs.write_all(b"x").unwrap();
                    reactor.park(Some(Instant::now() + GIVE_UP_AFTER)); // sees the edge
                }
                result
            },
        );
        (poll.map(|read| read.map_err(|e| e.kind())), attempts)
    });
    assert_eq!(poll, Poll::Ready(Ok(1)));
    assert_eq!(attempts, 2);
}

/// A waker that, when the reactor wakes it, drops the very socket it waits on. The
/// reactor must not hold its lock (nor anything else the drop needs) while it wakes:
/// otherwise this deadlocks. The socket is then deregistered.
#[test]
fn a_socket_dropped_by_its_own_waker() {
    /// Holds the socket; its wake drops it.
    struct DropsTheSocket {
        socket: Mutex<Option<TcpStream>>,
        woken: AtomicBool,
    }
    impl Wake for DropsTheSocket {
        fn wake(self: Arc<Self>) {
            drop(self.socket.lock().unwrap().take());
            self.woken.store(true, Ordering::SeqCst);
        }
    }

    let registered_after = within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        let handle = reactor.handle();
        let (ours, mut peer) = drive(&reactor, connected_pair(&handle));
        let waiter = Arc::new(DropsTheSocket {
            socket: Mutex::new(Some(ours)),
            woken: AtomicBool::new(false),
        });
        let waker = Waker::from(Arc::clone(&waiter));
        {
            let mut socket = waiter.socket.lock().unwrap();
            let ours = socket.as_mut().unwrap();
            let poll = ours.poll_read(&mut Context::from_waker(&waker), &mut [0; 8]);
            assert!(poll.is_pending());
        }
        drop(waker); // the reactor holds the only other one
        send_now(&mut peer, b"x");
        park_until(&reactor, || waiter.woken.load(Ordering::SeqCst));
        assert!(waiter.socket.lock().unwrap().is_none());
        drop(peer);
        handle.registered()
    });
    assert_eq!(registered_after, 0);
}

/// A task woken from another thread while the executor waits in `epoll_wait`: the
/// eventfd ends the wait. The waking thread waits until the reactor's state says
/// "parked" (its `Debug`), so the wake takes the eventfd path, not the token path.
#[test]
fn a_wake_from_another_thread_ends_epoll_wait() {
    let opened = on_reactor(|handle| async move {
        let (gate, release, counters) = common::futures::gate();
        let opener = thread::spawn(move || {
            let give_up = Instant::now() + GIVE_UP_AFTER;
            while !format!("{handle:?}").contains("\"parked\"") {
                assert!(Instant::now() < give_up, "the reactor never parked");
                thread::yield_now();
            }
            release.open();
        });
        gate.await;
        opener.join().unwrap();
        counters.polls()
    });
    assert_eq!(opened, 2, "polled once before the wake and once after");
}

/// A park whose only way out is its deadline never returns before it: epoll counts
/// whole milliseconds, and a deadline between two must be rounded up, not down.
#[test]
fn a_park_never_ends_before_its_deadline() {
    within_give_up(|| {
        let reactor = Reactor::new().unwrap();
        for micros in [1, 100, 500, 999, 1_001, 1_500, 2_999] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            reactor.park(Some(deadline));
            let now = Instant::now();
            assert!(now >= deadline, "woke {:?} early", deadline - now);
        }
    });
}

/// Timers still work on the reactor's park: a `sleep` ends (the executor passes the
/// deadline to `epoll_wait`), and not before its time.
#[test]
fn sleep_on_the_reactor() {
    let slept = on_reactor(|_handle| async {
        let started = Instant::now();
        sleep(Duration::from_micros(1_500)).await;
        started.elapsed()
    });
    assert!(slept >= Duration::from_micros(1_500));
}

/// A task that reads a socket whose peer keeps it always readable still lets another
/// task run: each completed read spends the cooperative budget.
#[test]
fn an_always_ready_socket_does_not_starve_other_tasks() {
    let other_ran = on_reactor(|handle| async move {
        let (mut ours, mut peer) = connected_pair(&handle).await;
        // Far more one-byte reads than one poll's budget, and within every buffer.
        const BYTES: usize = 1024;
        send_now(&mut peer, &[7; BYTES]);
        let other_ran = Rc::new(Cell::new(false));
        let flag = other_ran.clone();
        let _other = spawn(async move { flag.set(true) });
        let mut seen_before_the_other = 0;
        let mut byte = [0; 1];
        while !other_ran.get() {
            assert_eq!(ours.read(&mut byte).await.unwrap(), 1);
            seen_before_the_other += 1;
            assert!(seen_before_the_other < BYTES, "the other task never ran");
        }
        other_ran.get()
    });
    assert!(other_ran);
}

/// Tasks that are always ready do not starve a task waiting on a socket: the executor
/// never parks while it has ready tasks, and parking is where the reactor delivers
/// events, so it asks the reactor for them every so many busy turns.
#[test]
fn a_socket_is_heard_while_other_tasks_are_always_ready() {
    on_reactor(|handle| async move {
        let (mut ours, mut peer) = connected_pair(&handle).await;
        let heard = Rc::new(Cell::new(false));
        let flag = heard.clone();
        let reader = spawn(async move {
            let mut byte = [0; 1];
            assert_eq!(ours.read(&mut byte).await.unwrap(), 1);
            flag.set(true);
        });
        yield_now().await; // the reader's first poll: nothing yet, it waits
        send_now(&mut peer, b"x");
        // From here this task is always ready, so the executor is never idle.
        let mut yields = 0;
        while !heard.get() {
            yield_now().await;
            yields += 1;
            assert!(yields < 100_000, "the socket was never heard");
        }
        reader.await.unwrap();
    });
}

/// Three hundred connections wait for `accept` at once and are all taken: std's
/// backlog of 128 would have the kernel drop the handshakes past it (each client
/// then retrying only after a second, past this test's bound for a connect).
#[test]
#[cfg_attr(
    miri,
    ignore = "the kernel's backlog: the fake network has none to overflow"
)]
fn a_burst_of_connections_fits_the_backlog() {
    let address = on_reactor(|handle| async move {
        let listener = TcpListener::bind(&handle, "127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Nobody accepts while the clients connect: the backlog holds them all.
        let clients: Vec<_> = (0..300)
            .map(|_| std::net::TcpStream::connect_timeout(&address, Duration::from_millis(900)))
            .collect();
        let refused = clients.iter().filter(|client| client.is_err()).count();
        assert_eq!(refused, 0, "connections past the backlog");
        drop(listener);
        address
    });
    assert_ne!(address.port(), 0);
}
