//! The reactor: one thread waits for many sockets at once, in `epoll_wait`, and wakes
//! the tasks whose socket became ready.
//!
//! **Step 6** introduces it. Up to step 5 a task could wait for a timer, a lock, or
//! another task, and the executor, with nothing to run, parked its thread (a
//! [`ThreadPark`](crate::park::ThreadPark)). A socket is different: nothing in our
//! program knows when its bytes arrive; the kernel does. So the executor now parks
//! *in the kernel*: [`Reactor`] implements [`Park`], and its `park` is one
//! `epoll_wait` that returns for a ready socket, for the earliest timer's deadline,
//! or for a wake from another thread, whichever comes first. The executor did not
//! change: it has waited through the [`Park`] seam since step 4.
//!
//! # The loop
//! ```text
//!   executor: nothing ready ──► Reactor::park(deadline)
//!                                   │
//!                                   ▼
//!                     epoll_wait(timeout = deadline, rounded up to a millisecond)
//!                                   │ ready events: (token, readable, writable)
//!                                   ▼
//!                     token ──► the socket's two waiting slots (read, write)
//!                                   │ take the waker of each ready direction
//!                                   ▼
//!                     waker.wake() ──► task queued ──► polled
//!                                                        │
//!                          read() / write() / accept() tries the system call
//!                                   │                            │
//!                             done: Ready                 WouldBlock: store the
//!                                                         waker in the slot again
//!                                                         (interest stays registered)
//!                                                         and return Pending ──┐
//!   ▲                                                                          │
//!   └──────────────────────────── back to the executor ◄──────────────────────┘
//! ```
//!
//! # Edge-triggered, registered once
//! epoll reports a descriptor in one of two ways:
//! - **level-triggered**: at every wait, for as long as it is readable. A task woken
//!   but not yet polled would be reported again at each wait, and the executor would
//!   spin; the cure is to switch the interest off after each report (`EPOLLONESHOT`)
//!   and on again before each wait: an `epoll_ctl` system call per wait per socket.
//! - **edge-triggered** (`EPOLLET`): once each time it *becomes* ready (new data, new
//!   buffer space), however long it stays ready.
//!
//! We use **edge-triggered**, registered once for both directions when the socket is
//! created, and never touched again until it is dropped: no `epoll_ctl` per wait. Its
//! price is a rule: *wait only after a system call said `WouldBlock`*, because an edge
//! that came before is not reported again. [`Registered::poll_io`] keeps that rule (it
//! always tries first), and closes the one gap left, an edge that comes between the
//! system call and the moment the waker is stored, with a flag per direction: the
//! reactor sets it at every edge; `poll_io` clears it just before each call, and if
//! it is set again after a `WouldBlock`, tries again instead of waiting. (tokio and
//! mio make the same choice; tokio's flag is a readiness bit with a tick.) One
//! exception to "try first", as in tokio: a read of a stream that returned fewer
//! bytes than asked emptied the kernel's buffer, so the next read waits for an edge
//! at once, without the call that could only say `WouldBlock`.
//!
//! Wakes may be spurious: an edge in one direction reports the socket's whole
//! readiness, so a writer waiting for buffer space may be woken by arriving data. It
//! tries its call, meets `WouldBlock` again, and waits again: a wasted poll, never a
//! lost one.
//!
//! # Finding the reactor: an explicit [`Handle`]
//! A socket must know which reactor to register with. Here it is told: [`Reactor`] is
//! given to the executor as its park, and a [`Handle`] (cloneable, `Send + Sync`) goes
//! to the code that makes sockets:
//!
//! ```
//! use async_scratch::executor::Executor;
//! use async_scratch::net::{TcpListener, TcpStream};
//! use async_scratch::reactor::Reactor;
//!
//! let reactor = Reactor::new()?;
//! let handle = reactor.handle();
//! let executor = Executor::builder().park(reactor).build();
//! let echoed = executor.block_on(async {
//!     let mut listener = TcpListener::bind(&handle, "127.0.0.1:0")?;
//!     let mut client = TcpStream::connect(&handle, listener.local_addr()?).await?;
//!     let (mut server, _) = listener.accept().await?;
//!     client.write_all(b"ping").await?;
//!     let mut echoed = [0; 4];
//!     server.read_exact(&mut echoed).await?;
//!     Ok::<_, std::io::Error>(echoed)
//! })?;
//! assert_eq!(&echoed, b"ping");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! tokio finds its reactor in a thread-local set while its runtime runs; ours would
//! need the executor to set one, and an explicit handle shows what is going on. Only
//! the thread whose executor parks in the reactor runs it: sockets of a reactor that
//! nobody parks in are never woken.
//!
//! Step 7's multi-threaded [`runtime`](crate::runtime) has one reactor for all its
//! workers, behind a lock: the worker about to park takes it and parks in it, one at
//! a time, and [`Runtime::reactor`](crate::runtime::Runtime::reactor) gives its
//! handle.
//!
//! # Waking it from another thread
//! A waker called on another thread queues its task and calls the executor's
//! [`Unpark`], which must end an `epoll_wait` in progress. The reactor registers an
//! *eventfd* (a kernel counter, readable while non-zero) and writes it. To keep a wake
//! cheap when the reactor is not in `epoll_wait` (most wakes: the executor is busy
//! running tasks), one atomic state says whether a write is needed. (`Wakeup`, in
//! the source, argues why no wake is lost.)
//!
//! # What the diagnostics see
//! A task waiting on a socket has given its waker to the reactor, which the executor
//! cannot follow: only the kernel knows when it fires. So the wait is never taken for
//! a deadlock, and, with the executor's diagnostics on, it is recorded as a wait on
//! I/O (the descriptor and what for: readable, writable, accept, connect), listed
//! in the reports of the tasks that wait ("waits on I/O: fd 7, readable"). The
//! record sits beside the stored waker and goes with it: taken at the edge that
//! wakes the task, replaced with a new waker, dropped with the socket. With the
//! diagnostics off nothing is recorded, and no lock is taken for it.
//!
//! *Teaching shortcuts:* a registration is found from its event by a token looked up
//! in a `HashMap` behind a lock; tokio stores a pointer in the event instead, and pays
//! with `unsafe` reference counting. One waker per direction: one task may wait to
//! read and one to write (the `&mut self` of the [`net`](crate::net) methods makes
//! that so); tokio keeps a list. And the executor runs the reactor only when it has
//! nothing else to do: a thread kept busy by ready tasks for a long time looks at its
//! sockets late (tokio also looks every 61 ticks).

#[cfg(not(target_os = "linux"))]
compile_error!(
    "async-scratch's reactor is written on epoll, which only Linux has: \
     build on Linux (or in a Linux container or VM)"
);

mod epoll;
#[cfg(any(miri, test))]
mod fake;
pub(crate) mod sys;
#[cfg(not(miri))]
mod tcp;

use crate::coop;
use crate::executor::waits::{register_wait, IoReadiness, IoWait, WaitRegistration, WaitTarget};
use crate::locking::lock;
use crate::park::{Park, Unpark};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Which way a socket is waited for. Each direction has its own waker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Waiting for data, an end of stream, or a connection to accept.
    Read,
    /// Waiting for buffer space, or for a connect to finish.
    Write,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }

    /// Its bit in [`IoState`]'s `edges`.
    fn bit(self) -> u8 {
        1 << self.index()
    }

    /// What a task waiting this way waits for, as the diagnostics say it.
    fn readiness(self) -> IoReadiness {
        match self {
            Direction::Read => IoReadiness::Readable,
            Direction::Write => IoReadiness::Writable,
        }
    }
}

/// The directions a descriptor is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    /// Reading only (a listener).
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writing only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Both directions (a stream).
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    /// Whether reading is of interest.
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// Whether writing is of interest.
    pub fn is_writable(self) -> bool {
        self.writable
    }

    fn includes(self, direction: Direction) -> bool {
        match direction {
            Direction::Read => self.readable,
            Direction::Write => self.writable,
        }
    }
}

/// The token the eventfd is registered with; a registration's tokens count up from 0
/// and never reach it.
const WAKEUP_TOKEN: u64 = u64::MAX;

/// An epoll reactor: give it to an executor as its park
/// ([`ExecutorBuilder::park`](crate::executor::ExecutorBuilder::park)), and its
/// [`handle`](Reactor::handle) to whatever makes sockets. See the [module
/// doc](self).
///
/// Parking runs on one thread only: the reactor is not `Sync`.
///
/// ```compile_fail
/// fn must_be_sync<T: Sync>() {}
/// must_be_sync::<async_scratch::reactor::Reactor>();
/// ```
pub struct Reactor {
    shared: Arc<Shared>,
    /// The buffer `epoll_wait` fills, kept from one park to the next.
    events: RefCell<sys::Events>,
    /// The wakers of one park's ready sockets, kept to reuse the allocation.
    woken: RefCell<Vec<Waker>>,
    /// The wait records of the woken tasks, withdrawn with their wakers, dropped once
    /// no lock is held (see [`IoState::record_edges`]); kept to reuse the allocation.
    withdrawn: RefCell<Vec<WaitRegistration>>,
}

/// What the reactor, its handles and its unparker share.
struct Shared {
    epoll: sys::Epoll,
    wakeup: Wakeup,
    /// Each registered descriptor's waiting slots, by token. A `std` mutex: held only
    /// to insert, remove or look up, never while a waker runs.
    sources: Mutex<HashMap<u64, Arc<IoState>>>,
    /// The next registration's token. Tokens are never reused, so an event for a
    /// descriptor dropped meanwhile finds nothing rather than its successor.
    next_token: AtomicU64,
}

impl Reactor {
    /// A new epoll instance with its eventfd.
    ///
    /// # Errors
    /// If the kernel refuses a descriptor (the process is out of them).
    pub fn new() -> io::Result<Reactor> {
        let epoll = sys::Epoll::new()?;
        let eventfd = sys::EventFd::new()?;
        // Edge-triggered like the sockets: each write is an edge, kept on epoll's
        // ready list until a wait takes it.
        epoll.add_edge_triggered(eventfd.as_fd(), WAKEUP_TOKEN, Interest::READABLE)?;
        let shared = Shared {
            epoll,
            wakeup: Wakeup {
                state: AtomicU8::new(IDLE),
                eventfd,
            },
            sources: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
        };
        Ok(Reactor {
            shared: Arc::new(shared),
            events: RefCell::new(sys::Events::new()),
            woken: RefCell::new(Vec::new()),
            withdrawn: RefCell::new(Vec::new()),
        })
    }

    /// A handle for registering sockets with this reactor, from any thread.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Sets the flags of every direction that `epoll_wait` reported ready, and
    /// collects their wakers into `woken` (and their wait records into `withdrawn`).
    /// The eventfd's report drains it.
    fn collect_ready(
        &self,
        events: &sys::Events,
        woken: &mut Vec<Waker>,
        withdrawn: &mut Vec<WaitRegistration>,
    ) {
        let sources = lock(&self.shared.sources);
        for readiness in events.iter() {
            if readiness.token == WAKEUP_TOKEN {
                self.shared.wakeup.eventfd.drain();
                continue;
            }
            // Missing: dropped by another thread after this wait returned. Nobody is
            // left to wake.
            if let Some(state) = sources.get(&readiness.token) {
                state.record_edges(readiness, woken, withdrawn);
            }
        }
    }
}

impl Park for Reactor {
    /// Waits in `epoll_wait` until a socket is ready, `deadline` passes, or an
    /// [`Unpark`] comes (one since the last park counts: it returns at once), then
    /// wakes the tasks of the ready sockets. May return early (a signal, a stale
    /// eventfd write); never later than the deadline rounded up to a millisecond.
    ///
    /// # Panics
    /// If `epoll_wait` fails with anything but `EINTR` (only a bug can cause that:
    /// a bad descriptor or buffer). A waker that panics is run to the end with the
    /// others, then its panic goes on (to the executor, which catches and reports
    /// it, as it does a timer waker's).
    fn park(&self, deadline: Option<Instant>) {
        let timeout = if self.shared.wakeup.transition_to_parked() {
            deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO) // an unpark came: only look at the sockets
        };
        // Idle again before any waker runs: their unparks then cost no eventfd write.
        self.wait_then(timeout, || self.shared.wakeup.transition_to_idle());
    }

    /// Looks at the sockets without waiting, and wakes the tasks of the ready ones.
    /// The reactor stays "not parked", so an unpark meanwhile writes no eventfd.
    fn poll_events(&self) {
        self.wait_then(Some(Duration::ZERO), || {});
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.shared.clone()
    }
}

impl Reactor {
    /// One `epoll_wait` of at most `timeout`, then `after_wait`, then the wakes of the
    /// ready sockets.
    fn wait_then(&self, timeout: Option<Duration>, after_wait: impl FnOnce()) {
        let mut events = self.events.borrow_mut();
        let waited = self.shared.epoll.wait(&mut events, timeout);
        after_wait();
        if let Err(error) = waited {
            panic!("epoll_wait failed: {error}");
        }
        let mut woken = mem::take(&mut *self.woken.borrow_mut());
        let mut withdrawn = mem::take(&mut *self.withdrawn.borrow_mut());
        self.collect_ready(&events, &mut woken, &mut withdrawn);
        drop(events);
        // Outside every lock and borrow: a withdrawn record locks its task's waits, and
        // a waker may run any code, even drop a socket (which deregisters it, and takes
        // the `sources` lock). The records go first: until its task is woken, a wait
        // whose waker the reactor holds unrecorded is an "outside" one, which errs on
        // the side of claiming no deadlock.
        withdrawn.clear();
        wake_all(&mut woken);
        *self.woken.borrow_mut() = woken;
        *self.withdrawn.borrow_mut() = withdrawn;
    }
}

/// Wakes every waker in `woken`, emptying it. If some panic, all the others still
/// run, and then the first panic resumes.
fn wake_all(woken: &mut Vec<Waker>) {
    let mut first_panic = None;
    for waker in woken.drain(..) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

impl Unpark for Shared {
    fn unpark(&self) {
        self.wakeup.unpark();
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("registered", &lock(&self.sources).len())
            .field("wakeup", &self.wakeup)
            .finish_non_exhaustive()
    }
}

/// Nobody is in `epoll_wait`, and no unpark is waiting to be seen.
const IDLE: u8 = 0;
/// The reactor's thread is in `epoll_wait`, or about to be: an unpark must write the
/// eventfd to end the wait. Set only by the parking thread, as it parks.
const PARKED: u8 = 1;
/// An unpark came since the last park returned: the next park, or the one in
/// progress, returns at once (the token that `std::thread::park` has too). Set only by
/// an unpark; cleared by the parking thread as it leaves `epoll_wait`.
const NOTIFIED: u8 = 2;

/// How an unpark ends a park: the eventfd, written only when the reactor is parked.
///
/// # Why no wake is lost
/// The state changes only by `swap`s, read-modify-writes, which always read the
/// latest value, so they fall in one order; there is no load-then-store window. A
/// waker queues its task *before* it unparks. Three cases, by where the unpark's swap
/// falls among the parking thread's two:
/// 1. before `transition_to_parked`: that swap reads `NOTIFIED`, and the park does not
///    block (it still looks at the sockets, with a zero timeout);
/// 2. between the two: it reads `PARKED` and writes the eventfd; the write is an
///    edge that epoll keeps on its ready list until a wait takes it, so `epoll_wait`
///    returns whether it began before the write or after;
/// 3. after `transition_to_idle`: it leaves `NOTIFIED`, the token for the next park.
///
/// In each case the acquire side of the parking thread's swap pairs with the release
/// side of the unpark's, so the executor, looking at its queue after the park, sees
/// the task. The write of case 2 may land after the reactor left `epoll_wait`:
/// then the next park returns at once, spuriously, which a park may always do.
struct Wakeup {
    state: AtomicU8,
    eventfd: sys::EventFd,
}

impl Wakeup {
    /// Entering `epoll_wait`: `true` if it may block, `false` if an unpark came since
    /// the last park (consumed here: this park returns at once).
    fn transition_to_parked(&self) -> bool {
        let before = self.state.swap(PARKED, Ordering::AcqRel);
        debug_assert_ne!(before, PARKED, "two threads park in one reactor");
        before != NOTIFIED
    }

    /// Leaving `epoll_wait`: an unpark that came during it has been answered.
    fn transition_to_idle(&self) {
        self.state.swap(IDLE, Ordering::AcqRel);
    }

    /// From any thread: makes the park in progress, or the next one, return. A system
    /// call only if the reactor is parked; otherwise one atomic swap.
    fn unpark(&self) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED {
            self.eventfd.notify();
        }
    }
}

impl fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Relaxed) {
            IDLE => "idle",
            PARKED => "parked",
            NOTIFIED => "notified",
            _ => "invalid",
        };
        f.debug_struct("Wakeup").field("state", &state).finish()
    }
}

/// Registers sockets (any non-blocking descriptor) with a [`Reactor`]. Cloneable,
/// `Send + Sync`: give one to every task or thread that makes sockets.
///
/// ```
/// fn must_be_send_and_sync<T: Send + Sync>() {}
/// must_be_send_and_sync::<async_scratch::reactor::Handle>();
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Registers `io` for `interest`, edge-triggered, and returns it wrapped: its
    /// [`poll_io`](Registered::poll_io) waits through this reactor, and dropping it
    /// deregisters it (before `io` is closed).
    ///
    /// `io` must be in non-blocking mode: a blocking call inside `poll_io` would stop
    /// the executor's thread, and every task on it.
    ///
    /// ```
    /// use async_scratch::reactor::{Interest, Reactor};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let reactor = Reactor::new()?;
    /// let (ours, _theirs) = UnixStream::pair()?;
    /// ours.set_nonblocking(true)?;
    /// let registered = reactor.handle().register(ours, Interest::BOTH)?;
    /// drop(registered); // deregistered, then closed
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// What `epoll_ctl` says: for instance, a descriptor that epoll cannot wait on
    /// (a regular file), or one already registered.
    pub fn register<T: AsFd>(&self, io: T, interest: Interest) -> io::Result<Registered<T>> {
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        debug_assert_ne!(token, WAKEUP_TOKEN, "2^64 registrations");
        let state = Arc::new(IoState::default());
        // Into the map first: the first event may come at once, on the parking thread.
        lock(&self.shared.sources).insert(token, Arc::clone(&state));
        let added = self
            .shared
            .epoll
            .add_edge_triggered(io.as_fd(), token, interest);
        if let Err(error) = added {
            lock(&self.shared.sources).remove(&token);
            return Err(error);
        }
        Ok(Registered {
            io,
            token,
            interest,
            state,
            handle: self.clone(),
        })
    }

    /// How many descriptors are registered now.
    pub fn registered(&self) -> usize {
        lock(&self.shared.sources).len()
    }

    /// Forgets `token`'s descriptor: first the kernel, so that no new event names it,
    /// then the map.
    fn deregister(&self, token: u64, io: std::os::fd::BorrowedFd<'_>) {
        // Fails only if the kernel already forgot it: nothing is left to undo.
        let _ = self.shared.epoll.delete(io);
        let state = lock(&self.shared.sources).remove(&token);
        drop(state); // after the lock: dropping it may drop wakers, which run code
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("registered", &self.registered())
            .field("wakeup", &self.shared.wakeup)
            .finish()
    }
}

/// An I/O object registered with a reactor: its system calls are tried, and when
/// they would block, the task waits for the reactor to see the descriptor ready.
///
/// Dropping it deregisters the descriptor, then drops (closes) the object.
pub struct Registered<T: AsFd> {
    io: T,
    token: u64,
    interest: Interest,
    /// Shared with the reactor's map, which sets its flags and takes its wakers.
    state: Arc<IoState>,
    handle: Handle,
}

impl<T: AsFd> Registered<T> {
    /// The I/O object, for calls that need no waiting (addresses, options).
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The reactor it is registered with.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Tries `attempt` (a non-blocking system call on the object) until it does
    /// something other than block: `Ready` with its result, or `Pending` with
    /// `cx`'s waker stored for `direction`, to be woken when the descriptor is next
    /// ready that way. `Interrupted` is retried; `WouldBlock` never comes out.
    ///
    /// One waker per direction: the one from the latest `Pending` poll replaces an
    /// earlier one (unless it [`will_wake`](Waker::will_wake) the same task), so a
    /// task polled with a new waker is still woken.
    ///
    /// Each completion spends a unit of the task's [cooperative budget](crate::coop),
    /// so a task reading from a socket that is always ready still lets others run.
    ///
    /// # Panics
    /// If the descriptor was not registered for `direction`.
    pub fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        attempt: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_for(cx, direction, direction.readiness(), attempt)
    }

    /// [`poll_io`](Self::poll_io), with what the task waits for named for the
    /// diagnostics (accept, connect) where the direction alone says too little.
    pub(crate) fn poll_io_for<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        readiness: IoReadiness,
        mut attempt: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        assert!(
            self.interest.includes(direction),
            "waiting to {direction:?} on a descriptor registered for {:?}",
            self.interest
        );
        let unit = ready!(coop::poll_proceed(cx));
        let fd = self.io.as_fd().as_raw_fd();
        let wait = IoWait { fd, readiness };
        // Drained by the last call, with no edge since: a call could only say
        // `WouldBlock`, so wait at once (the one exception to "try first").
        if self.state.take_drained(direction)
            && self.state.wait(direction, cx.waker(), wait) == Wait::Armed
        {
            return Poll::Pending; // the unit goes back: no progress
        }
        loop {
            // From here on, an edge is one the attempt may have missed.
            self.state.forget_edge(direction);
            match attempt(&self.io) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if self.state.wait(direction, cx.waker(), wait) == Wait::Armed {
                        return Poll::Pending; // the unit goes back: no progress
                    }
                    // An edge came since the attempt began: try again.
                }
                result => {
                    unit.spend();
                    return Poll::Ready(result);
                }
            }
        }
    }
}

impl<T: AsFd> Registered<T> {
    /// Says that the last call in `direction` emptied the kernel's buffer: a read of
    /// a stream socket that returned fewer bytes than asked for, which it does only
    /// when no more were there. The next [`poll_io`](Self::poll_io) that way then
    /// waits for an edge without a call first, unless an edge came meanwhile: it
    /// saves the `WouldBlock` call a request-response protocol otherwise makes per
    /// message (tokio does the same). Not for datagrams, nor for a call that may
    /// stop short for another reason.
    pub(crate) fn note_drained(&self, direction: Direction) {
        self.state
            .drained
            .fetch_or(direction.bit(), Ordering::Relaxed);
    }
}

impl<T: AsFd> Drop for Registered<T> {
    fn drop(&mut self) {
        // `io` is still open here; it closes after this, as the fields drop.
        self.handle.deregister(self.token, self.io.as_fd());
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Registered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("io", &self.io)
            .field("token", &self.token)
            .field("interest", &self.interest)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A registered descriptor's two waiting slots, indexed by [`Direction::index`]. A
/// `std` mutex: the reactor and a poll touch it for a few instructions each, and
/// never run a waker while holding it.
#[derive(Default)]
struct IoState {
    /// One bit per direction ([`Direction::bit`]): set by the reactor at each edge
    /// (the descriptor became ready that way), cleared by a poll just before each
    /// attempt. Set after a `WouldBlock` then means: an edge came after the system
    /// call began, and may have been missed by it, so look again instead of waiting.
    ///
    /// Outside the lock so that the clearing costs no lock: a successful attempt
    /// takes none. (It used to be cleared only after a `WouldBlock`, so the edge
    /// that woke a task was still set at its *next* wait, and cost a second,
    /// useless `WouldBlock` call per message: 3 reads per message in the echo
    /// benchmark, where tokio makes 1.5.) Set and tested under the lock, so that an
    /// edge either finds the waker stored or is seen by the poll that stores it.
    edges: AtomicU8,
    /// One bit per direction: the last call that way emptied the kernel's buffer
    /// (see [`Registered::note_drained`]). Only the one poller of a direction sets
    /// and clears its bit, so no ordering is needed beyond its own.
    drained: AtomicU8,
    directions: Mutex<[Waiting; 2]>,
}

/// One direction of a registered descriptor.
#[derive(Default)]
struct Waiting {
    /// Who to wake at the next edge. Taken by the reactor when it wakes it.
    waker: Option<Waker>,
    /// The task's wait on this socket, as its executor's diagnostics record it (when
    /// they are on, and `waker` is a task's own): there exactly while `waker` is, so
    /// one record per stored waker, withdrawn when the reactor takes the waker to
    /// wake it, when another waker replaces it, or when the socket is dropped.
    /// Boxed: a pointer when it is absent, not 40 bytes per direction of every
    /// socket (with the diagnostics off, it is always absent).
    record: Option<Box<WaitRegistration>>,
}

/// What [`IoState::wait`] did.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    /// The waker is stored; the next edge wakes it.
    Armed,
    /// An edge came since the last look: nothing stored, try the call again.
    EdgeMissed,
}

impl IoState {
    /// Clears `direction`'s edge, if set: called just before each attempt (see `edges`).
    /// The load first, so that a clear flag, the common case, costs no write.
    fn forget_edge(&self, direction: Direction) {
        if self.edges.load(Ordering::Relaxed) & direction.bit() != 0 {
            self.edges.fetch_and(!direction.bit(), Ordering::SeqCst);
        }
    }

    /// Whether the last call in `direction` drained the socket; clears the mark.
    fn take_drained(&self, direction: Direction) -> bool {
        let drained = self.drained.load(Ordering::Relaxed) & direction.bit() != 0;
        if drained {
            self.drained.fetch_and(!direction.bit(), Ordering::Relaxed);
        }
        drained
    }

    /// After a `WouldBlock` in `direction` (or a call that drained the socket):
    /// stores `waker` (and records the task's wait on the socket, `io`), or says an
    /// edge came.
    fn wait(&self, direction: Direction, waker: &Waker, io: IoWait) -> Wait {
        let mut directions = lock(&self.directions);
        if self.edges.load(Ordering::SeqCst) & direction.bit() != 0 {
            return Wait::EdgeMissed;
        }
        let slot = &mut directions[direction.index()];
        let replaced = match &slot.waker {
            Some(stored) if stored.will_wake(waker) => None, // same task: no clone
            _ => {
                // A new waker: its wait is recorded (nothing is, with diagnostics off).
                let record = register_wait(waker, WaitTarget::Io(io)).map(Box::new);
                let old_record = mem::replace(&mut slot.record, record);
                Some((slot.waker.replace(waker.clone()), old_record))
            }
        };
        drop(directions);
        drop(replaced); // after the lock: a waker's drop runs its owner's code
        Wait::Armed
    }

    /// The reactor saw `readiness`: sets the flags of its directions and takes their
    /// wakers into `woken`, and their wait records into `withdrawn` (to be dropped by
    /// the caller once it holds no lock: dropping one locks its task's waits).
    fn record_edges(
        &self,
        readiness: sys::Readiness,
        woken: &mut Vec<Waker>,
        withdrawn: &mut Vec<WaitRegistration>,
    ) {
        let mut directions = lock(&self.directions);
        let edges = [
            (Direction::Read, readiness.readable),
            (Direction::Write, readiness.writable),
        ];
        for (direction, edge) in edges {
            if edge {
                self.edges.fetch_or(direction.bit(), Ordering::SeqCst);
                let slot = &mut directions[direction.index()];
                woken.extend(slot.waker.take());
                withdrawn.extend(slot.record.take().map(|record| *record));
            }
        }
    }
}

impl fmt::Debug for IoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let directions = lock(&self.directions);
        let edges = self.edges.load(Ordering::SeqCst);
        let describe = |direction: Direction| {
            let waiting = &directions[direction.index()];
            format!(
                "edge_seen: {}, waker: {}, recorded: {}",
                edges & direction.bit() != 0,
                waiting.waker.is_some(),
                waiting.record.is_some()
            )
        };
        f.debug_struct("IoState")
            .field("read", &describe(Direction::Read))
            .field("write", &describe(Direction::Write))
            .finish()
    }
}

/// The reactor's bookkeeping on a Unix socket pair, without an executor: small
/// enough for Miri, which runs epoll, eventfd and socket pairs (but no TCP), and so
/// checks the `unsafe` of the backend too:
/// `cargo +nightly miri test -p async-scratch --lib reactor`.
#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Far longer than any of these parks takes; a park that reaches it has missed
    /// its wake, and the test says so instead of hanging.
    const GIVE_UP_AFTER: Duration = Duration::from_secs(20);

    #[derive(Default)]
    struct CountingWaker {
        wakes: AtomicUsize,
    }

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One end of the socket pair; its `Debug` (unlike `File`'s) does not look up the
    /// descriptor's path, which Miri, isolated from the file system, cannot.
    struct Socket(File);

    impl AsFd for Socket {
        fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.0.as_fd()
        }
    }

    impl fmt::Debug for Socket {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Socket")
        }
    }

    /// Parks once, and fails if the park lasted until the give-up deadline.
    fn park_expecting_a_wake(reactor: &Reactor) {
        let give_up = Instant::now() + GIVE_UP_AFTER;
        reactor.park(Some(give_up));
        assert!(Instant::now() < give_up, "the park was never woken");
    }

    /// The edge that woke a reader is spent by the read it woke: the next wait makes
    /// one system call (its `WouldBlock`), not a second one for an edge it already
    /// used (which cost the echo benchmark a third of its reads).
    #[test]
    fn the_edge_that_woke_a_read_costs_the_next_wait_no_call() {
        let reactor = Reactor::new().unwrap();
        let (ours, mut theirs) = sys::nonblocking_socket_pair().unwrap();
        let ours = reactor.handle().register(Socket(ours), Interest::READABLE);
        let ours = ours.unwrap();
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut cx = Context::from_waker(&waker);
        let calls = std::cell::Cell::new(0);
        let mut byte = [0; 1];
        let mut read = |socket: &Socket| {
            calls.set(calls.get() + 1);
            (&socket.0).read(&mut byte)
        };
        let first = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(first.is_pending(), "nothing was sent yet: {first:?}");
        theirs.write_all(b"x").unwrap();
        park_expecting_a_wake(&reactor);
        let poll = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(matches!(poll, Poll::Ready(Ok(1))), "{poll:?}");

        calls.set(0);
        let next = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(next.is_pending(), "nothing more was sent: {next:?}");
        assert_eq!(calls.get(), 1, "one call, its WouldBlock, and the wait");
    }

    /// After a call that drained the socket, the next wait makes no call at all;
    /// but an edge that came since the drain is not lost: that wait calls again.
    #[test]
    fn a_drained_socket_waits_without_a_call_unless_an_edge_came() {
        let reactor = Reactor::new().unwrap();
        let (ours, mut theirs) = sys::nonblocking_socket_pair().unwrap();
        let ours = reactor.handle().register(Socket(ours), Interest::READABLE);
        let ours = ours.unwrap();
        let reader = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&reader));
        let mut cx = Context::from_waker(&waker);
        let calls = std::cell::Cell::new(0);
        let mut byte = [0; 1];
        let mut read = |socket: &Socket| {
            calls.set(calls.get() + 1);
            (&socket.0).read(&mut byte)
        };

        ours.note_drained(Direction::Read);
        let waited = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(waited.is_pending(), "nothing was sent: {waited:?}");
        assert_eq!(calls.get(), 0, "drained: no call before the wait");
        theirs.write_all(b"x").unwrap();
        park_expecting_a_wake(&reactor);
        assert_eq!(reader.wakes.load(Ordering::SeqCst), 1);
        let poll = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(matches!(poll, Poll::Ready(Ok(1))), "{poll:?}");

        // Drained again, then an edge before the next poll: it must call, not wait.
        ours.note_drained(Direction::Read);
        theirs.write_all(b"y").unwrap();
        park_expecting_a_wake(&reactor); // ends for the edge; no waker is stored
        calls.set(0);
        let poll = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(
            matches!(poll, Poll::Ready(Ok(1))),
            "the edge was lost: {poll:?}"
        );
        assert_eq!(calls.get(), 1);
    }

    /// A read that would block stores its waker in the read slot; the peer's write
    /// wakes it through one park; the read then succeeds; dropping the socket
    /// deregisters it.
    #[test]
    fn a_ready_socket_wakes_its_reader_and_a_dropped_one_is_forgotten() {
        let reactor = Reactor::new().unwrap();
        let handle = reactor.handle();
        let (ours, mut theirs) = sys::nonblocking_socket_pair().unwrap();
        let ours = handle.register(Socket(ours), Interest::READABLE).unwrap();
        assert_eq!(handle.registered(), 1);

        let reader = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&reader));
        let mut cx = Context::from_waker(&waker);
        let mut byte = [0; 1];
        let mut read = |socket: &Socket| (&socket.0).read(&mut byte);
        let poll = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(poll.is_pending(), "nothing was sent yet: {poll:?}");
        let state = format!("{ours:?}");
        assert!(
            state.contains(r#"read: "edge_seen: false, waker: true, recorded: false""#),
            "{state}"
        );

        theirs.write_all(b"x").unwrap();
        park_expecting_a_wake(&reactor);
        assert_eq!(reader.wakes.load(Ordering::SeqCst), 1);
        let poll = ours.poll_io(&mut cx, Direction::Read, &mut read);
        assert!(matches!(poll, Poll::Ready(Ok(1))), "{poll:?}");

        drop(ours);
        assert_eq!(handle.registered(), 0);
    }

    /// An unpark before the park is kept as a token: the park returns at once, and
    /// the state is back to idle after it.
    #[test]
    fn an_unpark_before_the_park_is_not_lost() {
        let reactor = Reactor::new().unwrap();
        reactor.unparker().unpark();
        park_expecting_a_wake(&reactor);
        assert!(format!("{reactor:?}").contains(r#""idle""#));
    }

    /// An unpark from another thread once the reactor is parked writes the eventfd,
    /// which ends the wait; the next park drains it and waits again (here, until a
    /// deadline already passed).
    #[test]
    fn an_unpark_while_parked_ends_the_wait() {
        let reactor = Reactor::new().unwrap();
        let handle = reactor.handle();
        let unparker = reactor.unparker();
        let waker = std::thread::spawn(move || {
            while !format!("{handle:?}").contains(r#""parked""#) {
                std::thread::yield_now();
            }
            unparker.unpark();
        });
        park_expecting_a_wake(&reactor);
        waker.join().unwrap();
        reactor.park(Some(Instant::now())); // drains a late write, if there was one
        assert!(format!("{reactor:?}").contains(r#""idle""#));
    }
}
