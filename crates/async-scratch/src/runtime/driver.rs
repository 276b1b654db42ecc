//! The driver: the reactor of step 6, shared by the workers of a runtime. One worker
//! at a time waits in `epoll_wait`; the others park on their own parkers.
//!
//! Step 7 introduces it. On one thread, the executor parked *in* the reactor: nothing
//! to run meant one `epoll_wait`, which returned for a socket, a timer or a wake. With
//! many workers, one `epoll_wait` is enough for all the runtime's sockets, and two
//! would be a waste (each event would end both). So the reactor sits behind a lock,
//! and the worker about to park *tries* it:
//!
//! - it gets it: it is the driver. It parks in `epoll_wait`, no longer than the next
//!   timer's deadline, and the wakers of the sockets that became ready queue their
//!   tasks, as any wake on a worker does (its LIFO slot, its queue, and a sleeping
//!   worker woken to steal if none is searching);
//! - someone has it: it parks on its own parker, as before. Whoever holds the lock is
//!   either waiting in `epoll_wait` already, or awake and bound to come back to it
//!   (it parks through the driver again, or polls it while busy), so the runtime's
//!   sockets are always heard by someone.
//!
//! Waking the driver: a worker parked in `epoll_wait` does not hear its parker's
//! condition variable. Its [`Parker`] knows it is in the driver, and ends that park
//! through the reactor's unpark (an eventfd write), so a wake is never lost; `idle`
//! argues the order, and its loom model checks it.
//!
//! A worker that is always busy never parks, and so never drives: every 61st turn it
//! polls the reactor without blocking (`poll_events`, the one-thread executor's
//! habit), if no one else holds it.
//!
//! *Teaching shortcuts:* the driver is a `Mutex` around the reactor, tried with
//! `try_lock`. tokio keeps the driver in a slot that a parking worker takes and gives
//! back; the effect is the same: one waiter, the others on condition variables. And
//! the wakes that the driver runs are ordinary wakes on a worker that still counts as
//! sleeping, so the first one may choose the driver itself as the worker to wake:
//! that costs the reactor a stale token (its next `epoll_wait` returns at once), and
//! the other worker is woken a moment later, when the driver starts its first task
//! as the last searcher. tokio keeps such wakes quiet while it drives, and wakes
//! another worker once, after the park, if it brought more than one task.

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Instant;

use super::idle::Parker;
use crate::park::{Park, Unpark};
use crate::reactor::{self, Reactor};
use crate::unwind::drop_payload;

/// The runtime's one reactor, and the handles to it.
pub(crate) struct Driver {
    /// Held by the worker waiting in it (or polling it); a `std` mutex, only ever
    /// tried, so no worker blocks on it.
    reactor: Mutex<Reactor>,
    /// For the code that makes sockets on this runtime.
    handle: reactor::Handle,
    /// Ends the reactor's `epoll_wait` from any thread (its eventfd).
    unparker: Arc<dyn Unpark>,
}

impl Driver {
    pub(crate) fn new() -> io::Result<Driver> {
        let reactor = Reactor::new()?;
        let handle = reactor.handle();
        let unparker = reactor.unparker();
        Ok(Driver {
            reactor: Mutex::new(reactor),
            handle,
            unparker,
        })
    }

    /// The handle sockets register with.
    pub(crate) fn handle(&self) -> &reactor::Handle {
        &self.handle
    }

    /// What ends a park in the driver from any thread: the reactor's eventfd.
    pub(crate) fn unparker(&self) -> Arc<dyn Unpark> {
        Arc::clone(&self.unparker)
    }

    /// Parks the calling worker in the reactor until an event, `deadline`, or an
    /// unpark of `parker`; runs the ready sockets' wakers. `false`, at once, if
    /// another worker holds the reactor: the caller parks on `parker` instead.
    pub(crate) fn park(&self, parker: &Parker, deadline: Option<Instant>) -> bool {
        self.with_reactor(|reactor| {
            parker.park_in_driver(|| run_wakers(|| reactor.park(deadline)));
        })
        .is_some()
    }

    /// Delivers the events already waiting, without blocking, unless another worker
    /// holds the reactor (then it hears them), or no socket is registered: then there
    /// is nothing to hear (the reactor's own eventfd matters only to a worker parked
    /// in it), and a runtime that computes saves a system call every 61 turns.
    pub(crate) fn poll_events(&self) {
        if self.handle.registered() == 0 {
            return;
        }
        self.with_reactor(|reactor| run_wakers(|| reactor.poll_events()));
    }

    /// Runs `call` with the reactor, if no one else holds it.
    fn with_reactor<R>(&self, call: impl FnOnce(&Reactor) -> R) -> Option<R> {
        let reactor = match self.reactor.try_lock() {
            Ok(reactor) => reactor,
            // A panic is never let out while the lock is held (`run_wakers`).
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(call(&reactor))
    }
}

/// Runs a reactor call, which runs the ready sockets' wakers: a waker that panics is
/// code the runtime did not write, so its panic is caught and dropped (as a timer
/// waker's is), and the worker carries on.
fn run_wakers(call: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(call)) {
        drop_payload(payload);
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}
