//! What an executor shares with other threads: the ready queue, the queues of
//! reports and suspects, and the handle that ends its park.
//!
//! Everything else of an executor stays on its thread (its `Core`); a waker, a timer
//! or another thread reaches the executor only through this.

use super::task::Runnable;
use crate::diagnostics::{report_to, Diagnostic, Reporter, TaskId, TaskInfo};
use crate::locking::lock;
use crate::observe::{Event, Observer};
use crate::park::Unpark;
use crate::stall_watch::StallWatch;
use crate::unwind::{into_message, Payload};
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What an executor shares with other threads.
pub(super) struct Shared {
    /// Tasks to poll, in the order they were woken.
    pub(super) ready: Mutex<Vec<Runnable>>,
    /// Ends the executor's park (see `park`): called by every wake.
    pub(super) unparker: Arc<dyn Unpark>,
    /// Diagnostics found on any thread, handed to the reporter on the executor's thread
    /// at its next turn.
    pub(super) reports: Mutex<Vec<Diagnostic>>,
    /// Tasks whose last waker went: the executor checks whether they are lost.
    pub(super) suspects: Mutex<Vec<TaskId>>,
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
    pub(super) fn observe(&self, event: impl FnOnce() -> Event) {
        if let Some(observer) = &self.observer {
            let event = event();
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| observer(&event))) {
                self.report_caught_panic(None, "the observer (ExecutorBuilder::observe)", payload);
            }
        }
    }

    pub(super) fn suspect(&self, id: TaskId) {
        self.hand_over(&self.suspects, id);
    }

    pub(super) fn take_suspects(&self) -> Vec<TaskId> {
        drain(&self.suspects)
    }

    pub(super) fn report_later(&self, diagnostic: Diagnostic) {
        if self.executor_gone.load(Ordering::Acquire) {
            // Nobody will take the queue any more (say, a `JoinHandle` dropped on
            // another thread after its executor): report it here and now.
            self.report(&diagnostic);
            return;
        }
        self.hand_over(&self.reports, diagnostic);
    }

    /// Reports a panic in user code that nobody waits to be handed.
    pub(super) fn report_caught_panic(
        &self,
        task: Option<TaskInfo>,
        place: &'static str,
        payload: Payload,
    ) {
        let message = into_message(payload);
        self.report_later(Diagnostic::CaughtPanic {
            task,
            place,
            message,
        });
    }

    /// Hands `diagnostic` to the reporter: user code, so a panic in it is caught (and
    /// said on standard error, the one place left), never let loose in the executor.
    pub(super) fn report(&self, diagnostic: &Diagnostic) {
        report_to(&self.reporter, diagnostic);
    }

    /// Adds `item` to a queue the executor empties at its next turn, and wakes it up
    /// for that turn (it may be parked, and the item may come from another thread).
    pub(super) fn hand_over<T>(&self, queue: &Mutex<Vec<T>>, item: T) {
        lock(queue).push(item);
        self.unparker.unpark();
    }

    pub(super) fn deliver_reports(&self) {
        let reports = drain(&self.reports);
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

    pub(super) fn lock_ready(&self) -> MutexGuard<'_, Vec<Runnable>> {
        // Only tasks are pushed and swapped under this lock: never left half-done.
        lock(&self.ready)
    }

    pub(super) fn push_ready(&self, task: Runnable) {
        self.lock_ready().push(task);
        if self.closed.load(Ordering::SeqCst) {
            // The executor is gone, or going, and has emptied the queue already: a task
            // left here would keep `Shared` alive through its header, and itself through
            // this queue, for good. Taken out under the lock, dropped after it.
            drop(mem::take(&mut *self.lock_ready()));
            return;
        }
        // Cheap when the executor is not parked (an atomic swap); if it is about to
        // park, the token this leaves makes that park return at once.
        self.unparker.unpark();
    }
}

/// Empties one of the queues handed to the executor (see `Shared::hand_over`).
pub(super) fn drain<T>(queue: &Mutex<Vec<T>>) -> Vec<T> {
    mem::take(&mut *lock(queue))
}
