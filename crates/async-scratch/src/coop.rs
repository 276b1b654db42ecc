//! The cooperative budget: how much a task may get done in one poll before it lets
//! the others run.
//!
//! **Step 5** needs it, as a failure point's fix. Coroutines share a thread by
//! *cooperating*: a task gives the thread back only when a future it awaits returns
//! `Pending`. A task that loops over futures that are always ready (a timer already
//! due, a lock nobody else wants, the handle of a task that has finished) never gets a
//! `Pending`, so it never gives the thread back, and every other task on it starves.
//!
//! So each poll of a task gets a budget of [`BUDGET_PER_POLL`] units. The library's
//! own leaf futures ([`Sleep`](crate::time::Sleep), the [`Mutex`](crate::mutex::Mutex)'s
//! lock, [`JoinHandle`](crate::join::JoinHandle)) spend one unit each time they are
//! ready; once the budget is spent, they return `Pending` instead, after waking their
//! task, which then runs again after the tasks already queued. A poll that returns
//! `Pending` spends nothing: it made no progress. Futures from other crates know
//! nothing of the budget and are never stopped by it. Outside a task of ours there is
//! no budget at all.
//!
//! The same idea as tokio's `coop` module (which also budgets 128 a poll). The cost is
//! a thread-local read and write per leaf poll.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Units a task may spend in one poll. Large enough that a task doing ordinary work
/// rarely meets it (each unit is a completed await), small enough that a loop over
/// ready futures gives the thread back within microseconds.
pub const BUDGET_PER_POLL: u32 = 128;

thread_local! {
    /// What the task being polled on this thread may still spend; `None` outside a poll.
    static BUDGET: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Runs `poll` (one poll of a task) with a fresh budget, and puts back the budget that
/// was there before: a `block_on` nested in another executor's task gets its own.
pub(crate) fn with_budget<T>(poll: impl FnOnce() -> T) -> T {
    /// Puts the previous budget back, even if `poll` unwinds.
    struct Restore(Option<u32>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = BUDGET.try_with(|budget| budget.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|budget| budget.replace(Some(BUDGET_PER_POLL))));
    poll()
}

/// Asks for one unit of the budget before a leaf future completes. `Pending` when the
/// budget is spent: the task has been woken, to run again after the others. Otherwise
/// a [`Unit`], which goes back into the budget unless it is [`spent`](Unit::spend).
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Unit> {
    let left = BUDGET.try_with(Cell::get).ok().flatten();
    match left {
        None => Poll::Ready(Unit { taken: false }),
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(left) => {
            BUDGET.with(|budget| budget.set(Some(left - 1)));
            Poll::Ready(Unit { taken: true })
        }
    }
}

/// One unit taken from the budget. Dropped, it goes back: the leaf future returned
/// `Pending`, and made no progress to pay for.
#[must_use = "a unit not spent goes back into the budget"]
pub(crate) struct Unit {
    taken: bool,
}

impl Unit {
    /// The leaf future completes: the unit stays spent.
    pub(crate) fn spend(mut self) {
        self.taken = false;
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        if self.taken {
            let _ = BUDGET.try_with(|budget| budget.set(budget.get().map(|left| left + 1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn proceed() -> Poll<Unit> {
        poll_proceed(&mut Context::from_waker(Waker::noop()))
    }

    /// Outside a poll there is no budget; inside, exactly `BUDGET_PER_POLL` units can be
    /// spent, and a unit not spent goes back.
    #[test]
    fn a_poll_spends_at_most_its_budget() {
        for _ in 0..(2 * BUDGET_PER_POLL) {
            let Poll::Ready(unit) = proceed() else {
                panic!("no budget outside a poll")
            };
            unit.spend();
        }
        with_budget(|| {
            drop(proceed()); // taken and given back
            for _ in 0..BUDGET_PER_POLL {
                let Poll::Ready(unit) = proceed() else {
                    panic!("budget spent too early")
                };
                unit.spend();
            }
            assert!(proceed().is_pending());
        });
        assert!(proceed().is_ready(), "the budget ends with the poll");
    }
}
