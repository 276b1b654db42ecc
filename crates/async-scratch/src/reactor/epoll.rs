//! The Linux poller: epoll, and the eventfd that interrupts it.
//!
//! **Step 6.** One of the files behind the [system layer](super::sys), and the one
//! that waits: the rest of the reactor speaks in tokens, interests and readiness, so
//! a kqueue or IOCP backend would be another file with the same few functions (the
//! shape the `polling` crate has, one backend per file). What is here:
//!
//! - [`Epoll`]: `epoll_create1`, `epoll_ctl` (add, delete) and `epoll_wait`;
//! - [`EventFd`]: a counter the kernel can wait on, written to interrupt a wait from
//!   another thread.
//!
//! The TCP calls are in `tcp.rs` (the kernel's) and `fake.rs` (Miri's stand-in).
//! This file is the same in both builds: Miri runs epoll and eventfd itself.
//!
//! Every function retries `EINTR` itself or reports it as "nothing happened": a
//! signal arriving is never an error the reactor's callers see.

use super::Interest;
#[cfg(test)]
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An epoll instance: the kernel's set of file descriptors we wait on.
#[derive(Debug)]
pub(super) struct Epoll {
    fd: OwnedFd,
}

/// What `epoll_wait` said about one registered descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Readiness {
    /// The token the descriptor was added with.
    pub(super) token: u64,
    /// A read may now make progress: data, end of stream, a pending connection, or an
    /// error (the read will return it).
    pub(super) readable: bool,
    /// A write may now make progress: buffer space, a finished connect, or an error.
    pub(super) writable: bool,
}

/// How many events one `epoll_wait` returns at most. More ready descriptors than this
/// are not lost: the kernel keeps them and returns them on the next wait. So the
/// number bounds a buffer, not correctness; 1024 covers a busy server's batch.
const EVENTS_PER_WAIT: usize = 1024;

/// The buffer `epoll_wait` fills, reused from one wait to the next.
pub(super) struct Events {
    list: Vec<libc::epoll_event>,
    /// How many entries of `list` the last wait filled.
    filled: usize,
}

impl Events {
    pub(super) fn new() -> Events {
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Events {
            list: vec![empty; EVENTS_PER_WAIT],
            filled: 0,
        }
    }

    /// The readiness the last wait reported, decoded from the kernel's bits.
    pub(super) fn iter(&self) -> impl Iterator<Item = Readiness> + '_ {
        self.list[..self.filled].iter().map(|event| {
            // Copies out of the (packed, on x86-64) struct: no reference to a field.
            let (bits, token) = (event.events, event.u64);
            let has = |flag: libc::c_int| bits & flag as u32 != 0;
            // An error or a hang-up wakes both directions: each one's next system
            // call returns the error (or the end of stream) to whoever waits there.
            let broken = has(libc::EPOLLERR) || has(libc::EPOLLHUP);
            Readiness {
                token,
                readable: broken || has(libc::EPOLLIN) || has(libc::EPOLLRDHUP),
                writable: broken || has(libc::EPOLLOUT),
            }
        })
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Epoll {
    pub(super) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new
        // descriptor that nothing else owns, so `OwnedFd` may take it.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: as above, `fd` is fresh and ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Adds `fd`, edge-triggered, for `interest`; its events will carry `token`.
    pub(super) fn add_edge_triggered(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        interest: Interest,
    ) -> io::Result<()> {
        let mut bits = libc::EPOLLET;
        if interest.is_readable() {
            bits |= libc::EPOLLIN | libc::EPOLLRDHUP;
        }
        if interest.is_writable() {
            bits |= libc::EPOLLOUT;
        }
        self.control(libc::EPOLL_CTL_ADD, fd.as_raw_fd(), bits, token)
    }

    /// Removes `fd`. Must happen before `fd` is closed: the kernel forgets a closed
    /// descriptor only once *every* copy of it (a `dup`, a forked child's) is closed.
    pub(super) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0, 0)
    }

    fn control(&self, op: libc::c_int, fd: RawFd, bits: libc::c_int, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: bits as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event that lives across the call (the
        // kernel copies it); both descriptors are open (borrowed or owned by us).
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    /// Waits until a registered descriptor is ready or `timeout` has passed (`None`:
    /// no limit), and fills `events`. A signal ends the wait with no events (the
    /// caller treats that as a spurious wake, as it must any early return).
    ///
    /// The timeout is rounded *up* to whole milliseconds, the unit of `epoll_wait`:
    /// rounding down would return before a timer's deadline, and the executor would
    /// find the timer not yet due and wait again, a wasted turn each time.
    pub(super) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let timeout_ms = match timeout {
            None => -1, // epoll_wait's "forever"
            Some(timeout) => {
                let ms = timeout.as_nanos().div_ceil(1_000_000);
                // Beyond ~24 days: wake then, spuriously, and wait again.
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        let capacity = libc::c_int::try_from(events.list.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the pointer and capacity describe `events.list`, which is borrowed
        // mutably for the call; the kernel writes at most `capacity` entries.
        let filled = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.list.as_mut_ptr(),
                capacity,
                timeout_ms,
            )
        };
        events.filled = match check(filled) {
            Ok(filled) => filled as usize, // non-negative, at most `capacity`
            Err(error) if error.kind() == io::ErrorKind::Interrupted => 0,
            Err(error) => {
                events.filled = 0;
                return Err(error);
            }
        };
        Ok(())
    }
}

/// A kernel counter: a write adds to it, a read takes it back to zero, and it is
/// readable (so `epoll_wait` returns) while it is not zero.
#[derive(Debug)]
pub(super) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(super) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: as above, `fd` is fresh and ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    pub(super) fn as_fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// Makes the counter non-zero, so a wait on it returns.
    pub(super) fn notify(&self) {
        let one: u64 = 1;
        loop {
            // SAFETY: writes the 8 bytes of `one`, which lives across the call, to a
            // descriptor we own.
            let written = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    size_of::<u64>(),
                )
            };
            match check_size(written) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // `WouldBlock` means the counter is about to overflow: it is far from
                // zero, so the wait returns anyway. Nothing else can fail on an
                // eventfd we own with a valid buffer.
                _ => return,
            }
        }
    }

    /// Takes the counter back to zero. Not needed for the next write to be reported
    /// (registered edge-triggered, each write is an edge), but it keeps the counter
    /// from growing for as long as the reactor lives.
    pub(super) fn drain(&self) {
        let mut count: u64 = 0;
        loop {
            // SAFETY: reads at most 8 bytes into `count`, which is borrowed mutably
            // for the call, from a descriptor we own.
            let read = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    size_of::<u64>(),
                )
            };
            match check_size(read) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // Read: now zero. `WouldBlock`: it was zero already (a spurious report).
                _ => return,
            }
        }
    }
}

/// The C convention, `-1` and `errno`, as a `Result`.
pub(super) fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// [`check`] for the calls that return a byte count.
fn check_size(result: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(result).map_err(|_| io::Error::last_os_error())
}

/// A connected pair of Unix stream sockets, both non-blocking from the start (one
/// `socketpair` call, which Miri runs, unlike std's `set_nonblocking`, an `ioctl`).
/// As `File`s, whose `read` and `write` are the plain system calls, which Miri
/// also runs on a socket pair (`UnixStream`'s `recv` and `send` it does not).
#[cfg(test)]
pub(super) fn nonblocking_socket_pair() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors the call writes, and is borrowed
    // mutably for the call.
    check(unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) })?;
    // SAFETY: on success both descriptors are new and ours alone.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(pair.0), File::from(pair.1)))
}
