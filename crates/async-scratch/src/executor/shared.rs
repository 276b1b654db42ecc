//! What an executor shares with other threads: the ready queue, the queues of
//! reports and suspects, and the handle that ends its park.
//!
//! Everything else of an executor stays on its thread (its `Core`); a waker, a timer
//! or another thread reaches the executor only through this.

use super::context::queue_here;
use super::schedule::Schedule;
use super::task::{Runnable, TaskHeader};
use crate::diagnostics::{report_to, Diagnostic, Reporter, TaskId};
use crate::locking::lock;
use crate::observe::{Event, Observer};
use crate::park::Unpark;
use crate::stall_watch::StallWatch;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What an executor shares with other threads.
pub(super) struct Shared {
    /// Tasks to poll, in the order they were woken (from other threads: a wake on the
    /// executor's own thread goes to its local queue).
    pub(super) ready: Mailbox<Runnable>,
    /// Ends the executor's park (see `park`): called by every wake.
    pub(super) unparker: Arc<dyn Unpark>,
    /// Diagnostics found on any thread, handed to the reporter on the executor's thread
    /// at its next turn.
    pub(super) reports: Mailbox<Diagnostic>,
    /// Tasks whose last waker went: the executor checks whether they are lost.
    pub(super) suspects: Mailbox<TaskId>,
    pub(super) reporter: Reporter,
    /// The poll in progress, for the stall watchdog; `None` when it is off.
    pub(super) watch: Option<Arc<StallWatch>>,
    /// Set when the executor is dropped: reports from then on go straight to the
    /// reporter (see `report_later`).
    pub(super) executor_gone: AtomicBool,
    /// Whether the books of lost tasks and waits are kept (see
    /// [`ExecutorBuilder::diagnostics`]).
    pub(super) keeps_books: bool,
    /// Told every spawn, poll, wake and park (see [`observe`](crate::observe)).
    pub(super) observer: Option<Observer>,
    /// Set while the executor is parked with nothing due and no deadlock it could
    /// claim, because some waker was held where it cannot see (a thread, a timer).
    /// A waker released meanwhile may be the one that made it undecided: the release
    /// then unparks it to look again, so that a deadlock is not left unreported (and
    /// `try_block_on` does not hang) because a count went down a moment too late.
    pub(super) parked_undecided: AtomicBool,
    /// Set by the executor's drop before it empties the ready queue; a wake that
    /// pushes a task after that (it raced the drop) empties the queue itself.
    pub(super) closed: AtomicBool,
}

impl Shared {
    /// Tells the observer, if there is one, of the event `event` makes (made only
    /// then: with no observer, this is one branch).
    ///
    /// The observer is user code, called in the middle of the executor's bookkeeping
    /// (between a poll's start and end, between a wake and its queueing): a panic in
    /// it is caught and reported, never let loose halfway through a step.
    ///
    /// Inlined, down to the one branch: every poll passes here twice, and a call that
    /// only finds no observer would cost more than the branch.
    #[inline]
    pub(super) fn observe(&self, event: impl FnOnce() -> Event) {
        if let Some(observer) = &self.observer {
            self.tell(observer, &event());
        }
    }

    /// Tells `observer` of `event`, catching its panic (see `observe`). Kept out of
    /// line: it is the rare path.
    #[inline(never)]
    fn tell(&self, observer: &Observer, event: &Event) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| observer(event))) {
            self.report_caught_panic(None, "the observer (ExecutorBuilder::observe)", payload);
        }
    }

    pub(super) fn suspect(&self, id: TaskId) {
        self.suspects.push(id);
        self.unparker.unpark();
    }

    pub(super) fn take_suspects(&self) -> Vec<TaskId> {
        self.suspects.take()
    }

    pub(super) fn report_later(&self, diagnostic: Diagnostic) {
        if self.executor_gone.load(Ordering::Acquire) {
            // Nobody will take the queue any more (say, a `JoinHandle` dropped on
            // another thread after its executor): report it here and now.
            self.report(&diagnostic);
            return;
        }
        self.reports.push(diagnostic);
        self.unparker.unpark();
    }

    /// Hands `diagnostic` to the reporter: user code, so a panic in it is caught (and
    /// said on standard error, the one place left), never let loose in the executor.
    pub(super) fn report(&self, diagnostic: &Diagnostic) {
        report_to(&self.reporter, diagnostic);
    }

    pub(super) fn deliver_reports(&self) {
        let reports = self.reports.take();
        for diagnostic in &reports {
            self.report(diagnostic);
        }
    }

    /// Unparks the executor if it parked undecided (see `parked_undecided`). `SeqCst`
    /// with the executor's store and its reads of the waker counts: either it saw the
    /// release, or the release sees that it parked.
    pub(super) fn look_again_if_undecided(&self) {
        if self.parked_undecided.load(Ordering::SeqCst) {
            self.unparker.unpark();
        }
    }

    pub(super) fn push_ready(&self, task: Runnable) {
        self.ready.push(task);
        if self.closed.load(Ordering::SeqCst) {
            // The executor is gone, or going, and has emptied the queue already: a task
            // left here would keep `Shared` alive through its header, and itself through
            // this queue, for good.
            drop(self.ready.drain());
            return;
        }
        // Cheap when the executor is not parked (an atomic swap); if it is about to
        // park, the token this leaves makes that park return at once.
        self.unparker.unpark();
    }
}

/// A queue that other threads hand things to, and that the executor empties at each
/// turn: a `Vec` behind a lock, and a flag that says, without the lock, whether it
/// may hold anything. Most turns find all three of the executor's mailboxes (ready
/// tasks, reports, suspects) empty, since a wake on the executor's own thread goes to
/// its local queue; those turns take no lock.
///
/// The flag may be read as clear a moment after an item went in (it is set after the
/// push, and read without the lock): that item waits one turn. Before it parks, the
/// executor asks [`is_empty`](Mailbox::is_empty), which takes the lock; and the thread
/// that pushed unparks it anyway.
pub(super) struct Mailbox<T> {
    items: Mutex<Vec<T>>,
    maybe_full: AtomicBool,
}

impl<T> Mailbox<T> {
    pub(super) fn new() -> Mailbox<T> {
        Mailbox {
            items: Mutex::new(Vec::new()),
            maybe_full: AtomicBool::new(false),
        }
    }

    pub(super) fn push(&self, item: T) {
        let mut items = lock(&self.items);
        items.push(item);
        self.maybe_full.store(true, Ordering::Release);
    }

    /// Moves what was handed over to the end of `into`; no lock if nothing was.
    pub(super) fn append_to(&self, into: &mut Vec<T>) {
        if self.maybe_full.load(Ordering::Acquire) {
            into.append(&mut self.lock_and_clear());
        }
    }

    /// What was handed over; no lock if nothing was.
    pub(super) fn take(&self) -> Vec<T> {
        if !self.maybe_full.load(Ordering::Acquire) {
            return Vec::new();
        }
        mem::take(&mut *self.lock_and_clear())
    }

    /// Everything, flag or not (for the executor's drop).
    pub(super) fn drain(&self) -> Vec<T> {
        mem::take(&mut *self.lock_and_clear())
    }

    /// Whether it is empty, exactly: takes the lock.
    pub(super) fn is_empty(&self) -> bool {
        lock(&self.items).is_empty()
    }

    /// The items, locked, with the flag cleared under the lock: a push after this sets
    /// it again.
    fn lock_and_clear(&self) -> MutexGuard<'_, Vec<T>> {
        // Only pushed to and emptied under this lock: never left half-done.
        let items = lock(&self.items);
        self.maybe_full.store(false, Ordering::Relaxed);
        items
    }
}

/// The executor as its tasks' scheduler (see `schedule`): each hook is the executor's
/// own method of that name.
impl Schedule for Shared {
    unsafe fn schedule(task: Runnable) {
        let Some(task) = queue_here(task) else {
            return; // queued on this thread's executor, its own
        };
        // From another thread, or another executor: through the ready queue. Which may
        // drop the task, its last reference and its owner with it, if the executor is
        // gone: the push holds a reference to `Shared` of its own.
        // SAFETY: the task's owner is a `Shared`, by this function's contract.
        let shared = unsafe { task.owner.arc::<Shared>() };
        shared.push_ready(task);
    }

    fn report(&self, diagnostic: &Diagnostic) {
        Shared::report(self, diagnostic);
    }

    fn keeps_books(&self) -> bool {
        self.keeps_books
    }

    fn follows_waits(&self) -> bool {
        self.keeps_books
    }

    /// One thread polls every task: between two polls, none runs.
    fn checks_cycles_after_polls(&self) -> bool {
        self.keeps_books
    }

    fn observed(&self) -> bool {
        self.observer.is_some()
    }

    fn suspect(&self, task: &TaskHeader) {
        Shared::suspect(self, task.id);
    }

    fn look_again_if_undecided(&self) {
        Shared::look_again_if_undecided(self);
    }

    fn report_later(&self, diagnostic: Diagnostic) {
        Shared::report_later(self, diagnostic);
    }

    fn woken(&self, task: TaskId) {
        Shared::observe(self, || Event::Woken { task });
    }

    #[inline]
    fn observe(&self, event: impl FnOnce() -> Event) {
        Shared::observe(self, event);
    }

    #[inline]
    fn poll_started(&self, task: &TaskHeader) {
        Shared::poll_started(self, task);
    }

    #[inline]
    fn poll_ended(&self) {
        Shared::poll_ended(self);
    }
}
