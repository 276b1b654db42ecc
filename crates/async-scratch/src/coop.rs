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
//! lock, [`JoinHandle`](crate::executor::JoinHandle)) spend one unit each time they are
//! ready; once the budget is spent, they return `Pending` instead, after waking their
//! task, which then runs again after the tasks already queued. A poll that returns
//! `Pending` spends nothing: it made no progress. Futures from other crates know
//! nothing of the budget and are never stopped by it.
//!
//! The budget belongs to the task being polled, and counts only for leaf futures
//! polled with that task's own waker. Outside a task of ours there is no budget; nor
//! is there for a leaf polled with another waker: by another executor nested in the
//! task (`futures::executor::block_on` inside an `async` block), which would otherwise
//! poll a spent budget forever, each `Pending` waking it at once. The one exception is
//! our own [`join_all`](crate::join_all): it polls each child with a waker of the
//! child's own, and *lends* it the task's budget while it does (`lend_budget`), so a
//! loop over `join_all`s of ready futures is stopped like any other; a child stopped
//! by the budget wakes its own waker, and is polled again at the next turn.
//!
//! The same idea as tokio's `coop` module (which also budgets 128 a poll). The cost is
//! a thread-local read and write per leaf poll.

use std::cell::Cell;
use std::task::{Context, Poll, Waker};

/// Units a task may spend in one poll. Large enough that a task doing ordinary work
/// rarely meets it (each unit is a completed await), small enough that a loop over
/// ready futures gives the thread back within microseconds.
pub const BUDGET_PER_POLL: u32 = 128;

/// The budget of the task being polled on this thread.
#[derive(Clone, Copy)]
struct Budget {
    /// The data pointer of the task's own waker: only leaves polled with it spend.
    owner: *const (),
    /// The data pointer of a combinator child's waker the budget is lent to (see
    /// [`lend_budget`]); leaves polled with it spend too.
    lent_to: *const (),
    left: u32,
}

thread_local! {
    /// The budget of the task being polled on this thread; `None` outside a poll.
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// Runs `poll` (one poll of the task whose own waker is `own_waker`) with a fresh
/// budget, and puts back the budget that was there before: a `block_on` of ours nested
/// in a task gets its own.
#[inline]
pub(crate) fn with_budget<T>(own_waker: &Waker, poll: impl FnOnce() -> T) -> T {
    /// Puts the previous budget back, even if `poll` unwinds.
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        // Inlined with `with_budget`, into the poll of a task whose type another crate
        // made: without it, every poll pays a call to put back a few words.
        #[inline]
        fn drop(&mut self) {
            let _ = BUDGET.try_with(|budget| budget.set(self.0));
        }
    }
    let fresh = Budget {
        owner: own_waker.data(),
        lent_to: std::ptr::null(),
        left: BUDGET_PER_POLL,
    };
    let _restore = Restore(BUDGET.with(|budget| budget.replace(Some(fresh))));
    poll()
}

/// Asks for one unit of the budget before a leaf future completes. `Pending` when the
/// budget is spent: the task has been woken, to run again after the others. Otherwise
/// a [`Unit`], which goes back into the budget unless it is [`spent`](Unit::spend).
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Unit> {
    let budget = BUDGET.try_with(Cell::get).ok().flatten();
    match budget {
        Some(budget) if budget.spends_for(cx.waker()) => {
            if budget.left == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            set_left(budget.left - 1);
            Poll::Ready(Unit { taken: true })
        }
        _ => Poll::Ready(Unit { taken: false }), // not a leaf of the task being polled
    }
}

impl Budget {
    /// Whether a leaf polled with `waker` spends this budget: the task's own waker, or
    /// the child waker it is lent to.
    fn spends_for(&self, waker: &Waker) -> bool {
        let data = waker.data();
        data == self.owner || data == self.lent_to
    }
}

/// Whether the budget that leaves polled with `waker` spend is used up: a combinator
/// then stops polling children, since none of them could complete in this poll.
pub(crate) fn budget_spent(waker: &Waker) -> bool {
    let budget = BUDGET.try_with(Cell::get).ok().flatten();
    budget.is_some_and(|budget| budget.spends_for(waker) && budget.left == 0)
}

/// While the returned guard lives, leaves polled with `child` spend the budget of the
/// task being polled, if `parent` (the waker the combinator was polled with) spends it
/// itself: our `join_all` lends it to each child it polls, nested ones included.
pub(crate) fn lend_budget(parent: &Waker, child: &Waker) -> Lent {
    let lent = BUDGET.try_with(|cell| {
        let budget = cell.get().filter(|budget| budget.spends_for(parent))?;
        cell.set(Some(Budget {
            lent_to: child.data(),
            ..budget
        }));
        Some(budget.lent_to)
    });
    Lent {
        previous: lent.ok().flatten(),
    }
}

/// A lent budget; dropped, the budget is no longer lent to that child.
pub(crate) struct Lent {
    /// Who the budget was lent to before, if this guard lent it.
    previous: Option<*const ()>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(lent_to) = self.previous {
            let _ = BUDGET.try_with(|cell| {
                cell.set(cell.get().map(|budget| Budget { lent_to, ..budget }));
            });
        }
    }
}

fn set_left(left: u32) {
    let _ = BUDGET.try_with(|cell| cell.set(cell.get().map(|budget| Budget { left, ..budget })));
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
        if let (true, Ok(Some(budget))) = (self.taken, BUDGET.try_with(Cell::get)) {
            set_left(budget.left + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        with_budget(Waker::noop(), || {
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
