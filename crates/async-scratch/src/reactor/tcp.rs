//! The kernel's TCP: the socket calls the [system layer](super::sys) makes on Linux.
//!
//! **Step 6.** The sockets are std's, in non-blocking mode; this file adds the few
//! calls std lacks or makes blocking, through `libc`:
//!
//! - [`bind_listener`]: std's `bind`, then a `listen` with a longer backlog;
//! - [`start_connect`]: a TCP connect that does not block, which std lacks (its
//!   `TcpStream::connect` waits for the handshake);
//! - [`accept`] and [`adopt_std`]: std's sockets, switched to non-blocking mode.
//!
//! Reads, writes, `shutdown`, `set_nodelay`, the addresses and `SO_ERROR` are std's
//! own methods on [`TcpStream`], which `fake.rs` gives its sockets too.

use super::epoll::check;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(crate) use std::net::{TcpListener, TcpStream};

/// Binds to `address` and listens, non-blocking, with `backlog` connections let wait
/// for `accept`. Binding and listening never wait, so std's blocking calls are fine.
pub(crate) fn bind_listener(address: impl ToSocketAddrs, backlog: i32) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    set_backlog(&listener, backlog)?;
    Ok(listener)
}

/// Takes a waiting connection, or says `WouldBlock`. The accepted socket does not
/// inherit the listener's non-blocking mode, so it is switched here.
pub(crate) fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept()?;
    stream.set_nonblocking(true)?;
    Ok((stream, peer))
}

/// A std stream made ready for the reactor: non-blocking.
pub(crate) fn adopt_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Sets the queue of connections a listening socket keeps waiting for `accept` (its
/// backlog). Linux takes a second `listen` on a listening socket as just that.
fn set_backlog(listener: &impl AsRawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: `listen` takes no pointers; the descriptor is open for the borrow.
    check(unsafe { libc::listen(listener.as_raw_fd(), backlog) }).map(drop)
}

/// Starts connecting a new non-blocking TCP socket to `address`, and returns it at
/// once, while the handshake goes on. The socket becomes writable when the handshake
/// ends; its `SO_ERROR` (std's `take_error`) then says whether it succeeded.
pub(crate) fn start_connect(address: SocketAddr) -> io::Result<std::net::TcpStream> {
    let raw = RawAddress::from(address);
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers; a non-negative result is a new descriptor that
    // nothing else owns.
    let fd = check(unsafe { libc::socket(raw.family(), flags, 0) })?;
    // SAFETY: as above, `fd` is fresh and ours alone (closed on every path from here).
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the pointer and length describe `raw`'s address struct, which lives
    // across the call; the socket is open.
    let result = check(unsafe { libc::connect(socket.as_raw_fd(), raw.as_ptr(), raw.len()) });
    match result {
        Ok(_) => {} // connected at once (it happens on loopback)
        // The usual case: the handshake goes on without us. An interrupted
        // non-blocking connect also goes on (POSIX), so it is the same case.
        Err(error)
            if error.raw_os_error() == Some(libc::EINPROGRESS)
                || error.kind() == io::ErrorKind::Interrupted => {}
        Err(error) => return Err(error),
    }
    Ok(std::net::TcpStream::from(socket))
}

/// A socket address in the kernel's layout, built field by field from std's.
enum RawAddress {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl From<SocketAddr> for RawAddress {
    fn from(address: SocketAddr) -> RawAddress {
        match address {
            SocketAddr::V4(v4) => RawAddress::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                // The octets are already in network order: keep their bytes as they are.
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(v6) => RawAddress::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            }),
        }
    }
}

impl RawAddress {
    fn family(&self) -> libc::c_int {
        match self {
            RawAddress::V4(_) => libc::AF_INET,
            RawAddress::V6(_) => libc::AF_INET6,
        }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawAddress::V4(v4) => (v4 as *const libc::sockaddr_in).cast(),
            RawAddress::V6(v6) => (v6 as *const libc::sockaddr_in6).cast(),
        }
    }

    fn len(&self) -> libc::socklen_t {
        let len = match self {
            RawAddress::V4(_) => size_of::<libc::sockaddr_in>(),
            RawAddress::V6(_) => size_of::<libc::sockaddr_in6>(),
        };
        len as libc::socklen_t // a few dozen bytes
    }
}
