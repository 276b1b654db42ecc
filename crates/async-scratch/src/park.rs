//! The park seam: how an executor waits when it has nothing to run.
//!
//! **Step 4**'s executor parks its thread until a waker unparks it or the earliest
//! timer is due. That wait is the one place where a runtime meets the operating
//! system, and it is about to change: real I/O (step 6) waits in `epoll_wait`, which
//! wakes for a socket, a timer deadline, or another thread, all at once. So the
//! executor waits through one small trait, [`Park`], and knows nothing of how:
//!
//! - [`Park::park`] blocks until an [`Unpark::unpark`] (one that came earlier counts
//!   too: it leaves a token), until a deadline, or spuriously; the executor looks
//!   again after every return, so a spurious return costs a turn, never a lost wake;
//! - [`Park::unparker`] hands out the `Send + Sync` side, which every waker reaches.
//!
//! [`ThreadPark`] is the implementation for a thread, on `std::thread::park`; step 6's
//! epoll [`Reactor`](crate::reactor::Reactor) is the other.
//!
//! ```
//! use async_scratch::park::{Park, ThreadPark};
//! use std::time::{Duration, Instant};
//!
//! let park = ThreadPark::current();
//! let unparker = park.unparker();
//! std::thread::spawn(move || unparker.unpark()).join().unwrap();
//! park.park(None); // returns at once: the unpark left a token
//! park.park(Some(Instant::now() + Duration::from_millis(1))); // returns by the deadline
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Instant;

/// How an executor waits for work. Called only on the executor's own thread.
pub trait Park {
    /// Blocks until unparked (an unpark since the last park counts), until `deadline`
    /// if there is one, or spuriously.
    fn park(&self, deadline: Option<Instant>);

    /// Delivers the events that are already waiting (a socket that became ready),
    /// without blocking. The executor calls it now and then while it is too busy to
    /// park, so that tasks waiting on I/O are not starved by tasks that are always
    /// ready. A thread has no events of its own: the default does nothing.
    fn poll_events(&self) {}

    /// The handle that ends a `park` from any thread.
    fn unparker(&self) -> Arc<dyn Unpark>;
}

/// Ends a [`Park::park`], or makes the next one return at once.
pub trait Unpark: Send + Sync {
    /// Wakes the parked executor; cheap when it is not parked.
    fn unpark(&self);
}

/// [`Park`] for the thread that creates it: `std::thread::park`, whose token makes an
/// unpark that comes before the park count.
///
/// It stays on that thread: it is neither `Send` nor `Sync` (parking from another
/// thread would park that one, while unparks went to this one: a hang).
///
/// ```compile_fail
/// let park = async_scratch::park::ThreadPark::current();
/// std::thread::spawn(move || drop(park)); // not `Send`
/// ```
pub struct ThreadPark {
    thread: Arc<ThreadUnpark>,
    _this_thread: PhantomData<*const ()>,
}

impl ThreadPark {
    /// Parks the calling thread; only that thread may call [`Park::park`].
    pub fn current() -> ThreadPark {
        ThreadPark {
            thread: Arc::new(ThreadUnpark(thread::current())),
            _this_thread: PhantomData,
        }
    }
}

impl Park for ThreadPark {
    fn park(&self, deadline: Option<Instant>) {
        debug_assert_eq!(
            thread::current().id(),
            self.thread.0.id(),
            "parked off its thread"
        );
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if deadline > now {
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.thread.clone()
    }
}

impl fmt::Debug for ThreadPark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPark")
            .field("thread", &self.thread.0.id())
            .finish()
    }
}

/// The [`Unpark`] side of a [`ThreadPark`].
struct ThreadUnpark(Thread);

impl Unpark for ThreadUnpark {
    fn unpark(&self) {
        self.0.unpark();
    }
}
