//! The scheduler seam: what a task knows of whoever runs it.
//!
//! A task's core (its header, state word, outcome slot and wakers; see `task`) does
//! not care which scheduler runs it. It needs to be told where to go when it is woken,
//! whom to tell what it saw, and whether anybody keeps the books of lost tasks and
//! waits. That is the [`Schedule`] trait. Two schedulers implement it:
//!
//! - the one-thread executor of step 4 (its `Shared`), which runs every task on its
//!   own thread, so that futures need not be `Send`;
//! - the multi-threaded runtime of step 7 (`runtime::Shared`, and its blocking pool),
//!   whose workers pass tasks between threads, so that its futures must be `Send`.
//!
//! A task holds its scheduler as an [`Owner`]: one counted pointer to the scheduler, 8
//! bytes in the header where an `Arc<dyn Schedule>` would take 16. What the scheduler's
//! type is, the task's vtable knows (it is made for the future's type and the
//! scheduler's together): the poll, which knows both types, calls the scheduler
//! directly; code that knows neither (a waker being dropped, the wait graph) reaches
//! it through [`TaskHeader::owner`](super::task::TaskHeader::owner), as a
//! `&dyn Schedule`.
//!
//! **Step 7** introduced this seam: until then the task's header held the executor's
//! `Arc<Shared>` itself.

use super::task::TaskHeader;
use super::task_ref::TaskRef;
use crate::diagnostics::{Diagnostic, TaskId, TaskInfo};
use crate::observe::Event;
use crate::unwind::{into_message, Payload};
use std::ptr::NonNull;
use std::sync::Arc;

/// A scheduler of tasks, as the task core sees it. Only `schedule` and `report` are
/// required; the rest are the diagnostics' hooks, which a scheduler that keeps no books
/// leaves as they are.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Queues `task`, which a wake or an abort just found idle (its `SCHEDULED` bit
    /// went on), with the reference given, on the scheduler that owns it. (Not a
    /// method: the task may be freed inside, by a queue that refuses it as its
    /// scheduler shuts down, and with it the task's reference to the scheduler, which
    /// a `&self` could not outlive. An implementation that needs the scheduler past
    /// that point takes an `Arc` of its own, with [`Owner::arc`].)
    ///
    /// # Safety
    /// `task`'s owner is a `Self` (its header's vtable was made for `Self`).
    unsafe fn schedule(task: TaskRef)
    where
        Self: Sized;

    /// Hands `diagnostic` to whoever reports for this scheduler.
    fn report(&self, diagnostic: &Diagnostic);

    /// Whether the books of lost tasks and of waits are kept: read once, when a task
    /// is made, into its state word (see `State::new_task`).
    fn keeps_books(&self) -> bool {
        false
    }

    /// Whether an observer is told of wakes ([`woken`](Schedule::woken)): read once,
    /// when a task is made, into its state word, so that a wake of a task nobody
    /// observes makes no call to find that out (see `task_waker::announce_wake`).
    fn observed(&self) -> bool {
        false
    }

    /// Whether waits through our own primitives (a `JoinHandle`, the async `Mutex`)
    /// are recorded, for wait cycles and deadlocks (see `waits`). The records may be
    /// made and withdrawn on any thread; what a scheduler may conclude from them, and
    /// when, is its own affair (see
    /// [`checks_cycles_after_polls`](Schedule::checks_cycles_after_polls)). Asked only
    /// when [`keeps_books`](Schedule::keeps_books).
    fn follows_waits(&self) -> bool {
        false
    }

    /// Whether a task's poll that ends `Pending` with known waits looks for a wait
    /// cycle through it at once (`waits::report_certain_cycle`). Only a scheduler that
    /// polls its tasks on one thread may: the check reads the other tasks of the cycle
    /// one after another, and takes "idle" read a moment ago for "idle" now, which
    /// holds only when no other task of the scheduler can be running meanwhile. A
    /// scheduler with many threads finds cycles when it is wholly idle instead (the
    /// runtime: `runtime::diagnostics`).
    fn checks_cycles_after_polls(&self) -> bool {
        false
    }

    /// A task's last waker went while the task was idle (only when books are kept):
    /// the task may be lost. The word that said so was read with the waker count's
    /// decrement, on the thread that dropped the waker.
    fn suspect(&self, _task: &TaskHeader) {}

    /// A waker (or a loose handle) went, which may turn "cannot tell" into a certain
    /// deadlock: a scheduler parked undecided looks again.
    fn look_again_if_undecided(&self) {}

    /// A report found on any thread (a wait cycle, a lost task), handed on later.
    fn report_later(&self, diagnostic: Diagnostic) {
        self.report(&diagnostic);
    }

    /// A wake that was news for `task`, for the observer. Called only for a task made
    /// while [`observed`](Schedule::observed) said yes.
    fn woken(&self, _task: TaskId) {}

    /// Tells the observer of the event `event` makes, if there is an observer. Only on
    /// the poll's path, where the scheduler's type is known.
    #[inline]
    fn observe(&self, _event: impl FnOnce() -> Event)
    where
        Self: Sized,
    {
    }

    /// A poll of `task` starts, and ends: for a stall watchdog.
    #[inline]
    fn poll_started(&self, _task: &TaskHeader)
    where
        Self: Sized,
    {
    }

    #[inline]
    fn poll_ended(&self)
    where
        Self: Sized,
    {
    }

    /// A panic in user code that nobody waits to be handed (a waker, a `Drop`):
    /// reported, and its payload dropped safely.
    fn report_caught_panic(&self, task: Option<TaskInfo>, place: &'static str, payload: Payload) {
        let message = into_message(payload);
        self.report_later(Diagnostic::CaughtPanic {
            task,
            place,
            message,
        });
    }
}

/// A task's scheduler: an `Arc<S>` made into one thin pointer, whose `S` only the
/// task's vtable knows (see the module doc). It counts one reference to the scheduler,
/// given back by the vtable's `drop_owner` when the task's header goes.
pub(crate) struct Owner {
    scheduler: NonNull<()>,
}

impl Owner {
    /// Holds one reference to `scheduler`.
    pub(crate) fn new<S: Schedule>(scheduler: &Arc<S>) -> Owner {
        let raw = Arc::into_raw(Arc::clone(scheduler)).cast_mut();
        Owner {
            // `Arc::into_raw` never gives null.
            scheduler: NonNull::new(raw).expect("an Arc's pointer").cast(),
        }
    }

    /// Whether this is `scheduler`: the same executor, the same runtime.
    pub(crate) fn is<S>(&self, scheduler: &S) -> bool {
        std::ptr::eq(
            self.scheduler.as_ptr().cast_const(),
            (scheduler as *const S).cast(),
        )
    }

    /// Whether two tasks have the same scheduler.
    pub(crate) fn same_as(&self, other: &Owner) -> bool {
        self.scheduler == other.scheduler
    }

    /// The scheduler, as the type it is.
    ///
    /// # Safety
    /// This owner was made by `Owner::new::<S>`, with this `S`.
    pub(crate) unsafe fn get<S>(&self) -> &S {
        // SAFETY: by the contract above, the pointer is an `Arc<S>`'s, and this owner
        // keeps that `Arc`'s reference until it is dropped (through `release`), so the
        // scheduler lives at least as long as the borrow of `self`.
        unsafe { self.scheduler.cast::<S>().as_ref() }
    }

    /// One more reference to the scheduler, as an `Arc` of its own.
    ///
    /// # Safety
    /// As for [`get`](Owner::get).
    pub(crate) unsafe fn arc<S>(&self) -> Arc<S> {
        let raw = self.scheduler.cast::<S>().as_ptr().cast_const();
        // SAFETY: by the contract above, an `Arc<S>`'s pointer, kept alive by this
        // owner's reference while the count goes up; the new reference is the new
        // `Arc`'s.
        unsafe {
            Arc::increment_strong_count(raw);
            Arc::from_raw(raw)
        }
    }

    /// Gives back the reference to the scheduler.
    ///
    /// # Safety
    /// As for [`get`](Owner::get); and it is called once, as the owner goes.
    pub(crate) unsafe fn release<S>(&self) {
        // SAFETY: by the contract above, the one reference `new` took, given back once.
        drop(unsafe { Arc::from_raw(self.scheduler.cast::<S>().as_ptr()) });
    }
}

// SAFETY: an `Owner` is an `Arc<S>` with its type forgotten, and every `S` is
// `Schedule`, so `Send + Sync`; sending or sharing the pointer is sending or sharing
// that `Arc`.
unsafe impl Send for Owner {}
// SAFETY: as for `Send`.
unsafe impl Sync for Owner {}

/// The hooks a `&dyn Schedule` gives, from an `Owner` whose type is `S`: the entry the
/// task's vtable keeps for code that knows neither the future's type nor `S`.
///
/// # Safety
/// `owner` was made by `Owner::new::<S>`.
pub(crate) unsafe fn owner_as_dyn<S: Schedule>(owner: &Owner) -> &dyn Schedule {
    // SAFETY: by the contract above.
    unsafe { owner.get::<S>() }
}
