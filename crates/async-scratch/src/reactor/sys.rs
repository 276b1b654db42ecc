//! The system layer: every call the reactor and [`net`](crate::net) make to the
//! operating system, behind one small surface, with the backend chosen here and
//! nowhere else.
//!
//! **Step 6.** Above this layer, the reactor speaks in tokens, interests and
//! readiness, and `net` in sockets that say `WouldBlock`; below it are the system
//! calls. The surface:
//!
//! - the poller, [`Epoll`]: add a descriptor (edge-triggered), delete it, wait;
//! - the waker descriptor, [`EventFd`]: notify, drain;
//! - the sockets: [`bind_listener`] (bind and listen), [`accept`], [`start_connect`]
//!   (a connect that does not wait), and on [`TcpStream`] std's own methods: `read`
//!   and `write` (through `&TcpStream`), `take_error` (`SO_ERROR`), `shutdown`,
//!   `set_nodelay`, `local_addr`, `peer_addr`; dropping one closes it.
//!
//! Two backends:
//!
//! | build | poller and waker | sockets |
//! |---|---|---|
//! | Linux | `epoll.rs` | `tcp.rs`: the kernel's TCP |
//! | Miri (`cfg(miri)`) | `epoll.rs` | `fake.rs`: an in-memory loopback network |
//!
//! Why only the sockets are faked: Miri interprets the program and answers its
//! system calls itself, and it has epoll, eventfd and Unix socket pairs, but no TCP.
//! So under Miri the poller is the same code as on Linux (its `unsafe` is checked
//! too), and only TCP is replaced, by sockets written in safe Rust that report their
//! readiness through an eventfd each. Everything above this file then runs under
//! Miri unchanged: `cargo +nightly miri test -p async-scratch --test net`.

pub(super) use super::epoll::{Epoll, EventFd, Events, Readiness};

#[cfg(test)]
pub(super) use super::epoll::nonblocking_socket_pair;

#[cfg(not(miri))]
pub(crate) use super::tcp::{
    accept, adopt_std, bind_listener, start_connect, TcpListener, TcpStream,
};

#[cfg(miri)]
pub(crate) use super::fake::{
    accept, adopt_std, bind_listener, start_connect, TcpListener, TcpStream,
};
