//! A loopback network in memory: the TCP of the [system layer](super::sys) under
//! Miri, which has no TCP of its own.
//!
//! **Step 6.** `tcp.rs` hands the kernel's sockets to `net`; this file hands it
//! sockets of the same shape (the same functions, and on [`TcpStream`] the same
//! methods as std's), written in safe Rust, so that everything above the layer runs
//! under Miri unchanged. It is one host: listeners are found by port alone.
//!
//! # What is modelled
//! - **Listeners by port.** Port 0 takes a free one; a port in use is
//!   `AddrInUse`. A connect to a port nobody listens on is `ConnectionRefused`, at
//!   once (as on Linux's loopback); so is one past the listener's backlog (where
//!   the kernel would drop the handshake and let the client retry).
//! - **A connection is two bounded byte buffers**, one per direction, of
//!   [`BUFFER_CAPACITY`] bytes: a write takes what fits and says how much, or
//!   `WouldBlock` when the buffer is full; a read takes what is there, or
//!   `WouldBlock` when it is empty.
//! - **The ends of a connection.** After the peer's `shutdown(Write)` or drop, a read
//!   returns what is left, then 0. A write after our own `shutdown(Write)`, or to a
//!   closed peer, is `BrokenPipe`. After our `shutdown(Read)`, reads return 0.
//! - **Reset**, as Linux does it: a socket dropped with bytes it never read resets
//!   the connection, and so does a listener dropped with connections it never
//!   accepted. The peer reads the bytes it had already received, then every read
//!   and write fails with `ConnectionReset`.
//!
//! # Readiness: an eventfd per socket
//! The poller is the real one (Miri runs epoll), so each fake socket owns an
//! *eventfd*: it is the socket's descriptor (what it registers with, what the
//! diagnostics print), and the fake writes it at each edge, which epoll reports as
//! readable and writable at once. The edges are those of edge-triggered epoll on a
//! TCP socket:
//!
//! | what happened | whose eventfd is written |
//! |---|---|
//! | a buffer went from empty to non-empty | its reader's |
//! | a buffer went from full to not full | its writer's |
//! | a peer shut down writing, closed, or reset | the other end's |
//! | a connection came to a listener with none waiting | the listener's |
//!
//! Reporting both directions for every edge wakes a task waiting the other way
//! too; the reactor takes that as a spurious wake (it tries its call, meets
//! `WouldBlock`, and waits again), as it must for the kernel's reports.
//!
//! *Not modelled:* a handshake that takes time (a connect is done at once, so
//! `SO_ERROR` is always empty), Nagle's algorithm (`set_nodelay` only remembers),
//! addresses beyond the port, and a std socket handed in ([`adopt_std`] refuses).

// Natively this file is compiled only for its own tests, which use part of it.
#![cfg_attr(not(miri), allow(dead_code))]

use super::epoll::EventFd;
use crate::locking::lock;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many bytes each direction of a connection holds. Small, so that a test
/// fills it with little data (each byte is many steps under Miri); the kernel's
/// buffers hold hundreds of KiB.
pub(crate) const BUFFER_CAPACITY: usize = 1024;

/// Where the ports the fake picks begin: Linux's default ephemeral range starts
/// near here (32768), and the IANA's at 49152. Any free port would do.
const FIRST_FREE_PORT: u16 = 49_152;

/// The one loopback network of the process, as the kernel's is. A `std` mutex: held
/// to bind, connect, accept and close a listener, never while a socket's own lock
/// is (that lock is taken alone).
static NETWORK: Mutex<Network> = Mutex::new(Network {
    listeners: BTreeMap::new(),
    next_port: FIRST_FREE_PORT,
});

/// The listeners, and the next port to try when one is asked for by 0.
struct Network {
    listeners: BTreeMap<u16, Listening>,
    next_port: u16,
}

/// One listener's side of the network: its backlog.
struct Listening {
    /// Connections made to it and not yet accepted, oldest first (the backlog).
    waiting: VecDeque<TcpStream>,
    /// How many may wait; more are refused.
    backlog: usize,
    /// The listener's eventfd, written when a connection comes to an empty backlog.
    signal: Arc<EventFd>,
}

impl Network {
    /// A port that no listener has, counting up from the last one given (so a port
    /// just freed is not given again soon, as the kernel avoids too).
    fn free_port(&mut self) -> io::Result<u16> {
        for _ in FIRST_FREE_PORT..=u16::MAX {
            let port = self.next_port;
            self.next_port = port.checked_add(1).unwrap_or(FIRST_FREE_PORT);
            if !self.listeners.contains_key(&port) {
                return Ok(port);
            }
        }
        Err(io::ErrorKind::AddrNotAvailable.into())
    }
}

/// A listening socket of the fake network.
pub(crate) struct TcpListener {
    address: SocketAddr,
    /// Its descriptor for the poller, shared with the network's [`Listening`].
    signal: Arc<EventFd>,
}

/// Binds `address` and listens, with `backlog` connections let wait for `accept`.
pub(crate) fn bind_listener(address: impl ToSocketAddrs, backlog: i32) -> io::Result<TcpListener> {
    let no_address = || io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    let asked = address.to_socket_addrs()?.next().ok_or_else(no_address)?;
    let signal = Arc::new(EventFd::new()?);
    let mut network = lock(&NETWORK);
    let port = match asked.port() {
        0 => network.free_port()?,
        taken if network.listeners.contains_key(&taken) => {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        free => free,
    };
    let address = SocketAddr::new(asked.ip(), port);
    let listening = Listening {
        waiting: VecDeque::new(),
        backlog: usize::try_from(backlog).unwrap_or(0).max(1),
        signal: Arc::clone(&signal),
    };
    network.listeners.insert(port, listening);
    Ok(TcpListener { address, signal })
}

/// Takes the oldest waiting connection, or says `WouldBlock`.
pub(crate) fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let mut network = lock(&NETWORK);
    let listening = network.listeners.get_mut(&listener.address.port());
    // The entry lives exactly as long as the listener: only its drop removes it.
    let listening = listening.expect("a listener's port is in the network");
    match listening.waiting.pop_front() {
        Some(stream) => {
            let peer = stream.peer;
            Ok((stream, peer))
        }
        None => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Connects to `address`: refused if nobody listens there (or its backlog is full),
/// else connected at once, the other end waiting in the listener's backlog.
pub(crate) fn start_connect(address: SocketAddr) -> io::Result<TcpStream> {
    let mut network = lock(&NETWORK);
    let local = SocketAddr::new(address.ip(), network.free_port()?);
    let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
    let listening = network.listeners.get_mut(&address.port());
    let listening = listening.ok_or_else(refused)?;
    if listening.waiting.len() >= listening.backlog {
        return Err(refused());
    }
    let (client, server) = TcpStream::pair(local, address)?;
    let was_empty = listening.waiting.is_empty();
    listening.waiting.push_back(server);
    if was_empty {
        listening.signal.notify(); // a connection to accept: the listener's edge
    }
    Ok(client)
}

/// A std socket cannot join the fake network.
pub(crate) fn adopt_std(_stream: std::net::TcpStream) -> io::Result<TcpStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the fake network (under Miri) has no std sockets",
    ))
}

impl TcpListener {
    /// The address it is bound to, with the port picked if 0 was asked.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.address)
    }
}

impl Drop for TcpListener {
    /// Leaves the network; the connections it never accepted are reset.
    fn drop(&mut self) {
        let listening = lock(&NETWORK).listeners.remove(&self.address.port());
        // After the network's lock: a stream's drop takes its connection's lock.
        for stream in listening
            .into_iter()
            .flat_map(|listening| listening.waiting)
        {
            stream.reset_peer();
        }
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.signal.as_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTcpListener")
            .field("address", &self.address)
            .field("fd", &self.signal.as_fd())
            .finish()
    }
}

/// The index of the connecting end in [`Connection::ends`].
const CLIENT: usize = 0;
/// The index of the accepted end.
const SERVER: usize = 1;

/// One end of a connection of the fake network.
pub(crate) struct TcpStream {
    connection: Arc<Mutex<Connection>>,
    /// Which of the connection's ends is this one: [`CLIENT`] or [`SERVER`].
    side: usize,
    /// Its descriptor for the poller, shared with its [`End`].
    signal: Arc<EventFd>,
    local: SocketAddr,
    peer: SocketAddr,
    /// What `set_nodelay` last said; nothing else reads it.
    nodelay: AtomicBool,
}

/// Both ends of a connection, under one lock: every call changes one end's state
/// and looks at the other's.
struct Connection {
    ends: [End; 2],
}

/// One end's state.
struct End {
    /// Bytes sent to this end and not yet read: at most [`BUFFER_CAPACITY`].
    received: VecDeque<u8>,
    /// This end sends no more (shut down for writing, or dropped): once the other
    /// end has read what it received, its reads return 0.
    done_sending: bool,
    /// This end was shut down for reading: its reads return 0.
    done_receiving: bool,
    /// This end was dropped.
    closed: bool,
    /// The peer reset the connection: once `received` is read, reads and writes
    /// fail with `ConnectionReset`.
    reset: bool,
    /// This end's eventfd, written at each of its edges.
    signal: Arc<EventFd>,
}

impl End {
    fn new(signal: Arc<EventFd>) -> End {
        End {
            received: VecDeque::new(),
            done_sending: false,
            done_receiving: false,
            closed: false,
            reset: false,
            signal,
        }
    }
}

impl Connection {
    /// `side`'s end and its peer's.
    fn ends(&mut self, side: usize) -> (&mut End, &mut End) {
        let [client, server] = &mut self.ends;
        if side == CLIENT {
            (client, server)
        } else {
            (server, client)
        }
    }
}

impl TcpStream {
    /// A new connection's two ends: the client's (at `client`) and the server's (at
    /// `server`).
    fn pair(client: SocketAddr, server: SocketAddr) -> io::Result<(TcpStream, TcpStream)> {
        let signals = [Arc::new(EventFd::new()?), Arc::new(EventFd::new()?)];
        let connection = Arc::new(Mutex::new(Connection {
            ends: signals.clone().map(End::new),
        }));
        let [client_signal, server_signal] = signals;
        let end = |side, signal, local, peer| TcpStream {
            connection: Arc::clone(&connection),
            side,
            signal,
            local,
            peer,
            nodelay: AtomicBool::new(false),
        };
        Ok((
            end(CLIENT, client_signal, client, server),
            end(SERVER, server_signal, server, client),
        ))
    }

    /// Always `None`: a connect is done at once, so no handshake failed.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// Ends reading, writing or both. Ending writing is an edge for the peer (its
    /// reads will return 0); ending reading one for this end's own reader.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let mut connection = lock(&self.connection);
        let (mine, theirs) = connection.ends(self.side);
        if mine.reset {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) && !mine.done_receiving {
            mine.done_receiving = true;
            mine.signal.notify();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) && !mine.done_sending {
            mine.done_sending = true;
            theirs.signal.notify();
        }
        Ok(())
    }

    /// Remembers the choice; the fake sends every write at once anyway.
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.nodelay.store(nodelay, Ordering::Relaxed);
        Ok(())
    }

    /// What [`set_nodelay`](Self::set_nodelay) last said.
    pub(crate) fn nodelay(&self) -> io::Result<bool> {
        Ok(self.nodelay.load(Ordering::Relaxed))
    }

    /// The other end's address.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    /// This end's address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Resets the connection from this end, as a listener closing does to the
    /// connections it never accepted; then drops this end.
    fn reset_peer(self) {
        let mut connection = lock(&self.connection);
        let (_, theirs) = connection.ends(self.side);
        theirs.reset = true;
        theirs.signal.notify();
    }

    /// The read of `Read for &TcpStream`, under the connection's lock.
    fn read_locked(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut connection = lock(&self.connection);
        let (mine, theirs) = connection.ends(self.side);
        if buf.is_empty() || mine.done_receiving {
            return Ok(0);
        }
        if !mine.received.is_empty() {
            let was_full = mine.received.len() == BUFFER_CAPACITY;
            let count = buf.len().min(mine.received.len());
            for (slot, byte) in buf.iter_mut().zip(mine.received.drain(..count)) {
                *slot = byte;
            }
            if was_full {
                theirs.signal.notify(); // room again: the writer's edge
            }
            return Ok(count);
        }
        if mine.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if theirs.done_sending {
            return Ok(0); // the end of the stream
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// The write of `Write for &TcpStream`, under the connection's lock.
    fn write_locked(&self, buf: &[u8]) -> io::Result<usize> {
        let mut connection = lock(&self.connection);
        let (mine, theirs) = connection.ends(self.side);
        if mine.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if mine.done_sending || theirs.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = BUFFER_CAPACITY - theirs.received.len();
        if buf.is_empty() {
            return Ok(0);
        }
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let count = buf.len().min(room);
        let was_empty = theirs.received.is_empty();
        theirs.received.extend(&buf[..count]);
        if was_empty {
            theirs.signal.notify(); // data: the reader's edge
        }
        Ok(count)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_locked(buf)
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_locked(buf)
    }

    /// Nothing to flush: a write is in the peer's buffer when it returns.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TcpStream {
    /// Closes this end: the peer's reads end after what it has, or, if this end
    /// leaves bytes unread, the connection is reset (as Linux does).
    fn drop(&mut self) {
        let mut connection = lock(&self.connection);
        let (mine, theirs) = connection.ends(self.side);
        mine.closed = true;
        mine.done_sending = true;
        if !theirs.closed {
            if !mine.received.is_empty() {
                theirs.reset = true;
            }
            theirs.signal.notify();
        }
        mine.received = VecDeque::new();
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.signal.as_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTcpStream")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("fd", &self.signal.as_fd())
            .finish()
    }
}

/// The fake network's promises, each checked with the poller the reactor uses: an
/// edge for each transition and none without one, refusal, the end of a stream, and
/// the resets. Run natively and under Miri (`cargo +nightly miri test -p
/// async-scratch --lib fake`).
#[cfg(test)]
mod tests {
    use super::super::epoll::{Epoll, Events};
    use super::*;
    use crate::reactor::Interest;
    use std::time::Duration;

    /// Sockets' eventfds as the reactor watches them: edge-triggered epoll.
    struct Edges {
        epoll: Epoll,
        events: Events,
    }

    impl Edges {
        /// Watches `sockets`, each with its index as token, and forgets the first
        /// report epoll makes of a descriptor added while writable.
        fn watching(sockets: &[&dyn AsFd]) -> Edges {
            let mut edges = Edges {
                epoll: Epoll::new().unwrap(),
                events: Events::new(),
            };
            for (token, socket) in (0..).zip(sockets) {
                let added = edges
                    .epoll
                    .add_edge_triggered(socket.as_fd(), token, Interest::BOTH);
                added.unwrap();
            }
            edges.since_last_look();
            edges
        }

        /// The tokens of the sockets with an edge since the last look, in order.
        fn since_last_look(&mut self) -> Vec<u64> {
            self.epoll
                .wait(&mut self.events, Some(Duration::ZERO))
                .unwrap();
            let mut tokens: Vec<u64> = self.events.iter().map(|ready| ready.token).collect();
            tokens.sort_unstable();
            tokens
        }
    }

    const CLIENT_TOKEN: u64 = 0;
    const SERVER_TOKEN: u64 = 1;

    /// A listener and a connection to it, accepted; the addresses agree.
    fn connected() -> (TcpListener, TcpStream, TcpStream) {
        let listener = bind_listener("127.0.0.1:0", 8).unwrap();
        let client = start_connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = accept(&listener).unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.local_addr().unwrap(), client.peer_addr().unwrap());
        (listener, client, server)
    }

    fn kind<T: fmt::Debug>(result: io::Result<T>) -> io::ErrorKind {
        result.expect_err("an error").kind()
    }

    #[test]
    fn data_into_an_empty_buffer_is_one_edge_for_the_reader() {
        let (_listener, client, server) = connected();
        let mut edges = Edges::watching(&[&client, &server]);
        assert_eq!((&client).write(b"ab").unwrap(), 2);
        assert_eq!(edges.since_last_look(), [SERVER_TOKEN]);
        assert_eq!((&client).write(b"c").unwrap(), 1);
        assert_eq!(edges.since_last_look(), [], "the buffer was not empty");
        let mut read = [0; 8];
        assert_eq!((&server).read(&mut read).unwrap(), 3);
        assert_eq!(&read[..3], b"abc");
        assert_eq!(edges.since_last_look(), [], "the buffer was not full");
        assert_eq!(kind((&server).read(&mut read)), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn room_in_a_full_buffer_is_one_edge_for_the_writer() {
        let (_listener, client, server) = connected();
        let mut edges = Edges::watching(&[&client, &server]);
        let more_than_fits = vec![7; BUFFER_CAPACITY + 10];
        assert_eq!((&client).write(&more_than_fits).unwrap(), BUFFER_CAPACITY);
        assert_eq!(kind((&client).write(b"x")), io::ErrorKind::WouldBlock);
        assert_eq!(edges.since_last_look(), [SERVER_TOKEN]);
        let mut byte = [0; 1];
        (&server).read_exact(&mut byte).unwrap();
        assert_eq!(edges.since_last_look(), [CLIENT_TOKEN]);
        (&server).read_exact(&mut byte).unwrap();
        assert_eq!(edges.since_last_look(), [], "the buffer was not full");
    }

    #[test]
    fn a_connection_is_an_edge_for_a_listener_with_none_waiting() {
        let listener = bind_listener("127.0.0.1:0", 8).unwrap();
        let mut edges = Edges::watching(&[&listener]);
        let address = listener.local_addr().unwrap();
        let _first = start_connect(address).unwrap();
        assert_eq!(edges.since_last_look(), [0]);
        let _second = start_connect(address).unwrap();
        assert_eq!(edges.since_last_look(), [], "one was already waiting");
        accept(&listener).unwrap();
        accept(&listener).unwrap();
        assert_eq!(kind(accept(&listener)), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_port_nobody_listens_on_or_a_full_backlog_refuses() {
        let listener = bind_listener("127.0.0.1:0", 1).unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(kind(bind_listener(address, 1)), io::ErrorKind::AddrInUse);
        let _waiting = start_connect(address).unwrap();
        let refused = io::ErrorKind::ConnectionRefused;
        assert_eq!(kind(start_connect(address)), refused, "past the backlog");
        drop(listener);
        assert_eq!(kind(start_connect(address)), refused, "nobody listens");
    }

    #[test]
    fn shutdown_and_drop_end_the_stream_after_its_bytes() {
        let (_listener, client, server) = connected();
        let mut edges = Edges::watching(&[&client, &server]);
        (&client).write_all(b"hi").unwrap();
        edges.since_last_look();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(edges.since_last_look(), [SERVER_TOKEN]);
        let mut read = [0; 8];
        assert_eq!((&server).read(&mut read).unwrap(), 2);
        assert_eq!(
            (&server).read(&mut read).unwrap(),
            0,
            "the end of the stream"
        );
        assert_eq!(kind((&client).write(b"x")), io::ErrorKind::BrokenPipe);

        drop(server); // nothing left unread: a close, not a reset
        assert_eq!(edges.since_last_look(), [CLIENT_TOKEN]);
        assert_eq!((&client).read(&mut read).unwrap(), 0);
    }

    #[test]
    fn a_socket_dropped_with_unread_bytes_resets_its_peer() {
        let (_listener, client, server) = connected();
        let mut edges = Edges::watching(&[&client, &server]);
        (&client).write_all(b"never read").unwrap();
        (&server).write_all(b"yz").unwrap();
        edges.since_last_look();
        drop(server);
        assert_eq!(edges.since_last_look(), [CLIENT_TOKEN]);
        let mut read = [0; 8];
        assert_eq!((&client).read(&mut read).unwrap(), 2, "what came first");
        let reset = io::ErrorKind::ConnectionReset;
        assert_eq!(kind((&client).read(&mut read)), reset);
        assert_eq!(kind((&client).write(b"x")), reset);
    }

    #[test]
    fn a_listener_dropped_resets_what_it_never_accepted() {
        let listener = bind_listener("127.0.0.1:0", 8).unwrap();
        let address = listener.local_addr().unwrap();
        let client = start_connect(address).unwrap();
        drop(listener);
        let reset = io::ErrorKind::ConnectionReset;
        assert_eq!(kind((&client).read(&mut [0; 1])), reset);
        let again = bind_listener(address, 8).unwrap();
        assert_eq!(
            again.local_addr().unwrap(),
            address,
            "the port is free again"
        );
    }
}
