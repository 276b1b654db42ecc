//! TCP sockets whose waiting is done by the [reactor](crate::reactor): `accept`,
//! `connect`, `read` and `write` that return `Pending` instead of blocking the thread.
//!
//! **Step 6** introduces it, on top of the reactor. A socket here is a
//! `std::net` socket in non-blocking mode (under Miri, a socket of an in-memory
//! network of the same shape: the system calls all live in the reactor's system
//! layer, `reactor/sys.rs`), registered with a reactor through a [`Handle`]. Each
//! async method is the same three moves:
//!
//! 1. try the system call (std's `read`, `write`, `accept`);
//! 2. if it says `WouldBlock`, store the task's waker and return `Pending`;
//! 3. when the reactor sees the socket ready, it wakes the task, which tries again.
//!
//! Step 2 and the retry live in [`Registered::poll_io`]; this module adds the socket
//! calls and the usual loops (`read_exact`, `write_all`). So what a thread did with a
//! blocked system call (wait in the kernel, one thread per socket), a task does with a
//! stored waker: thousands of sockets on one thread.
//!
//! # Errors
//! Everything is an `io::Error`, as from std: `ConnectionRefused`,
//! `ConnectionReset`, `BrokenPipe` and so on. A read at the end of the stream returns
//! `Ok(0)`; `read_exact` then says `UnexpectedEof`. `WouldBlock` never comes out (it
//! is the "wait" signal), and `Interrupted` is retried.
//!
//! # Beside the futures and tokio traits
//! tokio and the `futures` crate read and write through traits (`AsyncRead`,
//! `AsyncWrite`) whose required method is a `poll_read`; `read`, `read_exact`,
//! `write_all` come from extension traits. We give plain inherent methods instead:
//! `async fn read(&mut self, buf)` and so on, plus [`TcpStream::poll_read`] and
//! [`TcpStream::poll_write`] for a hand-written future. It is one concept fewer (no
//! trait objects, no extension traits, no `ReadBuf`), at the price of not plugging
//! into code generic over those traits. Two more differences: `shutdown` is an
//! ordinary call (std's, it never waits) where `AsyncWrite` has `poll_shutdown`
//! (which also flushes, and we have no buffer to flush); and reads, writes and
//! `accept` take `&mut self`, so that one task at a time waits in each direction,
//! which is all the reactor's one waker per direction can serve. To read and write
//! at once from two futures, [`TcpStream::split`] the stream.
//!
//! The socket is closed when dropped, after it is deregistered from the reactor.
//!
//! *Teaching shortcut:* addresses are `SocketAddr`s, not names: resolving a name
//! (`"example.com:80"`) blocks in the C library, and an async resolver would be a step
//! of its own (tokio runs it on a blocking thread). `bind` takes any
//! `ToSocketAddrs`, as std's does, since a listener's address is almost always
//! written as a literal.

use crate::executor::waits::IoReadiness;
use crate::reactor::sys;
use crate::reactor::{Direction, Handle, Interest, Registered};
use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll};

/// A TCP listener: accepts connections without blocking the thread.
///
/// ```
/// use async_scratch::executor::Executor;
/// use async_scratch::net::TcpListener;
/// use async_scratch::reactor::Reactor;
///
/// let reactor = Reactor::new()?;
/// let listener = TcpListener::bind(&reactor.handle(), "127.0.0.1:0")?;
/// assert!(listener.local_addr()?.port() != 0); // the kernel chose one
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    listener: Registered<sys::TcpListener>,
}

impl TcpListener {
    /// How many connections may wait for `accept`. std listens with 128, which a burst
    /// of connections from one event loop overflows at once (the tour's 10,000 took
    /// 1.6 s instead of 0.6 s, the clients retrying); tokio's mio uses 1024 too. The
    /// kernel caps it at `net.core.somaxconn`.
    pub const BACKLOG: i32 = 1024;

    /// Binds to `address` and starts listening, registered with `handle`'s reactor.
    /// Port 0 asks the kernel for a free port: see [`local_addr`](Self::local_addr).
    ///
    /// Up to [`BACKLOG`](Self::BACKLOG) connections wait for `accept`; beyond that the
    /// kernel drops new handshakes, and each client retries a second later.
    ///
    /// # Errors
    /// As std's `bind`: the address is in use, not ours, or does not resolve.
    pub fn bind(handle: &Handle, address: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let listener = sys::bind_listener(address, Self::BACKLOG)?;
        Ok(TcpListener {
            listener: handle.register(listener, Interest::READABLE)?,
        })
    }

    /// Waits for a connection and returns it, registered with the same reactor, with
    /// the peer's address.
    ///
    /// # Errors
    /// As std's `accept`: for instance, the process is out of file descriptors.
    pub async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// [`accept`](Self::accept) as a poll: `Pending` until a connection is waiting.
    pub fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, peer) = std::task::ready!(self.listener.poll_io_for(
            cx,
            Direction::Read,
            IoReadiness::Accept,
            sys::accept
        ))?;
        let stream = TcpStream::register(self.listener.handle(), stream)?;
        Poll::Ready(Ok((stream, peer)))
    }

    /// The address the listener is bound to (with the port the kernel chose, if 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }
}

/// For socket options std has no call for (with `libc::setsockopt`). Closing it, or
/// making it blocking, would break the reactor's assumptions.
impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.get_ref().as_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("listener", &self.listener)
            .finish()
    }
}

/// A TCP connection: reads and writes that wait without blocking the thread.
///
/// ```
/// use async_scratch::executor::Executor;
/// use async_scratch::net::{TcpListener, TcpStream};
/// use async_scratch::reactor::Reactor;
///
/// let reactor = Reactor::new()?;
/// let handle = reactor.handle();
/// let executor = Executor::builder().park(reactor).build();
/// executor.block_on(async {
///     let mut listener = TcpListener::bind(&handle, "127.0.0.1:0")?;
///     let mut client = TcpStream::connect(&handle, listener.local_addr()?).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"hello").await?;
///     client.shutdown(std::net::Shutdown::Write)?; // the server's read then ends
///     let mut received = Vec::new();
///     let mut chunk = [0; 2];
///     loop {
///         match server.read(&mut chunk).await? {
///             0 => break, // end of stream
///             n => received.extend_from_slice(&chunk[..n]),
///         }
///     }
///     assert_eq!(received, b"hello");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A socket may move to another thread (a task of another executor): it stays
/// registered with its own reactor, whose wakes reach any thread, as long as some
/// executor still parks in that reactor.
///
/// ```
/// fn must_be_send<T: Send>() {}
/// must_be_send::<async_scratch::net::TcpStream>();
/// must_be_send::<async_scratch::net::TcpListener>();
/// ```
pub struct TcpStream {
    stream: Registered<sys::TcpStream>,
}

impl TcpStream {
    /// Connects to `address` without blocking the thread: starts the handshake, waits
    /// for the socket to become writable (the handshake ended), and then asks the
    /// socket whether it succeeded.
    ///
    /// # Errors
    /// `ConnectionRefused` if nothing listens there, and the other errors of a connect
    /// (unreachable network, a timeout of the kernel's own).
    pub async fn connect(handle: &Handle, address: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::register(handle, sys::start_connect(address)?)?;
        let connected = |cx: &mut Context<'_>| {
            let stream = &stream.stream;
            stream.poll_io_for(cx, Direction::Write, IoReadiness::Connect, connect_outcome)
        };
        poll_fn(connected).await?;
        Ok(stream)
    }

    /// Registers a std stream with `handle`'s reactor, switching it to non-blocking.
    ///
    /// # Errors
    /// As std's `set_nonblocking`, or the reactor's registration. Under Miri,
    /// always `Unsupported`: its sockets are the fake network's, not std's.
    pub fn from_std(handle: &Handle, stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::register(handle, sys::adopt_std(stream)?)
    }

    /// Registers a non-blocking socket of the system layer with `handle`'s reactor.
    fn register(handle: &Handle, stream: sys::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            stream: handle.register(stream, Interest::BOTH)?,
        })
    }

    /// Reads some bytes into `buf`, waiting until there is at least one: the count,
    /// or 0 at the end of the stream (or if `buf` is empty).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Writes some of `buf`, waiting until there is room for at least one byte: the
    /// count, which may be less than `buf.len()`.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Reads exactly `buf.len()` bytes.
    ///
    /// # Errors
    /// `UnexpectedEof` if the stream ends first (the bytes read so far are in
    /// `buf`, but how many is not said); any error of [`read`](Self::read).
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        read_exact_from(&self.stream, buf).await
    }

    /// Writes all of `buf`, in as many writes as it takes.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        write_all_to(&self.stream, buf).await
    }

    /// [`read`](Self::read) as a poll, for hand-written futures.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_read_from(&self.stream, cx, buf)
    }

    /// [`write`](Self::write) as a poll, for hand-written futures.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_write_to(&self.stream, cx, buf)
    }

    /// Shuts down reading, writing or both (std's call: it never waits). After
    /// `Shutdown::Write`, the peer's reads return the end of the stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.get_ref().shutdown(how)
    }

    /// Turns Nagle's algorithm off (`true`): small writes go out at once instead of
    /// being held back to be merged.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream.get_ref().set_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.stream.get_ref().nodelay()
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().peer_addr()
    }

    /// The address of this end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().local_addr()
    }

    /// The two directions as two values, each with its own `&mut` methods, so one
    /// future may read while another writes (each direction has its own waker).
    ///
    /// ```no_run
    /// # async fn relay(stream: &mut async_scratch::net::TcpStream) -> std::io::Result<()> {
    /// use async_scratch::join_all::join;
    ///
    /// let (mut reading, mut writing) = stream.split();
    /// let mut incoming = [0; 1024];
    /// let (read, written) = join(reading.read(&mut incoming), writing.write_all(b"hi")).await;
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (
            ReadHalf {
                stream: &self.stream,
            },
            WriteHalf {
                stream: &self.stream,
            },
        )
    }
}

/// For socket options std has no call for (with `libc::setsockopt`). Closing it, or
/// making it blocking, would break the reactor's assumptions.
impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.get_ref().as_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("stream", &self.stream)
            .finish()
    }
}

/// The reading side of a [`TcpStream`], from [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a> {
    stream: &'a Registered<sys::TcpStream>,
}

impl ReadHalf<'_> {
    /// As [`TcpStream::read`].
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| poll_read_from(self.stream, cx, buf)).await
    }

    /// As [`TcpStream::read_exact`].
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        read_exact_from(self.stream, buf).await
    }
}

/// The writing side of a [`TcpStream`], from [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a> {
    stream: &'a Registered<sys::TcpStream>,
}

impl WriteHalf<'_> {
    /// As [`TcpStream::write`].
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| poll_write_to(self.stream, cx, buf)).await
    }

    /// As [`TcpStream::write_all`].
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        write_all_to(self.stream, buf).await
    }
}

// The shared bodies. std implements `Read` and `Write` for `&TcpStream` (a read does
// not change the `TcpStream` value, only the kernel's socket), which is what lets
// both halves call them through a shared reference.

fn poll_read_from(
    stream: &Registered<sys::TcpStream>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let wanted = buf.len();
    let read = stream.poll_io(cx, Direction::Read, |mut socket| socket.read(buf));
    // A stream socket's read stops short only when the kernel had no more.
    if matches!(read, Poll::Ready(Ok(n)) if n > 0 && n < wanted) {
        stream.note_drained(Direction::Read);
    }
    read
}

fn poll_write_to(
    stream: &Registered<sys::TcpStream>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    stream.poll_io(cx, Direction::Write, |mut socket| socket.write(buf))
}

async fn read_exact_from(
    stream: &Registered<sys::TcpStream>,
    mut buf: &mut [u8],
) -> io::Result<()> {
    while !buf.is_empty() {
        match poll_fn(|cx| poll_read_from(stream, cx, buf)).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

async fn write_all_to(stream: &Registered<sys::TcpStream>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match poll_fn(|cx| poll_write_to(stream, cx, buf)).await? {
            // A write of 0 bytes from a non-empty buffer: the socket takes no more.
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Whether a connect begun by `sys::start_connect` has ended: `WouldBlock` while the
/// handshake goes on, the connect's error if it failed, `Ok` once connected.
fn connect_outcome(socket: &sys::TcpStream) -> io::Result<()> {
    // `SO_ERROR`: the failure of the handshake, if it failed (read once, it clears).
    if let Some(error) = socket.take_error()? {
        return Err(error);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(()),
        // Not connected, and no error yet: still shaking hands.
        Err(error) if error.kind() == io::ErrorKind::NotConnected => {
            Err(io::ErrorKind::WouldBlock.into())
        }
        Err(error) => Err(error),
    }
}
