//! A busy-polling executor: step 4's first version of an executor, and a wrong one.
//!
//! **Step 4a** runs every unit of work as a future on one thread with the simplest
//! loop there is: poll every future that has not finished, then do it again, until
//! all have. Nothing tells the loop when a future may be ready, so it asks all of them,
//! all the time. The waker it hands them is a no-op, built here on a
//! [`RawWakerVTable`] whose four entries do nothing: a future's "poll me again" is
//! heard by nobody, and need not be, since the loop polls everything again anyway.
//!
//! What changed from step 3: no pool, no threads to wait in. A unit that waits
//! returns `Pending` instead of blocking, so every unit is in flight at once on one
//! thread, and the run takes about one unit's time, as the real executor's does.
//!
//! What it gets wrong: while the units wait, the loop spins, asking each one again and
//! again whether its timer is due. The thread burns a whole core to do nothing; the
//! tour's CPU column shows about a second of CPU for each second of waiting. Step 4b
//! ([`park_executor`](crate::park_executor)) fixes it with wakers that do something
//! and a thread that parks.
//!
//! Timers: [`sleep`](crate::time::sleep) needs a timer queue to register in, so the
//! loop installs one for its thread, but never fires it. It need not: a `Sleep` looks
//! at the clock each time it is polled, and this loop polls it again within
//! microseconds. (A due `Sleep` takes its own entry out of the queue.)
//!
//! ```
//! use async_scratch::busy_executor;
//! use async_scratch::coroutine::run_unit;
//! use async_scratch::timeline::Timeline;
//! use async_scratch::work::{Work, WorkKind};
//! use std::time::Duration;
//!
//! let work = Work::new(WorkKind::Sleep, Duration::from_millis(2));
//! let timeline = Timeline::new();
//! let units = (0..3).map(|unit| Box::pin(run_unit(work, unit, timeline.clone())) as _);
//! let run = busy_executor::run(units.collect());
//! assert_eq!(timeline.spans().len(), 3);
//! // Each unit was polled every round until its timer was due: on an idle machine,
//! // thousands of polls for three units (the module's tests count them exactly).
//! assert!(run.polls >= 3);
//! ```

use crate::time::{use_timers, Clock, TimerQueue};
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::Arc;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

/// A future as the loops of steps 4a and 4b hold it: boxed, so that futures of
/// different types share one list, and pinned in its box, since a future may not move
/// once polled. It returns nothing: a unit records its own span.
pub type UnitTask = Pin<Box<dyn Future<Output = ()>>>;

/// What a busy run did: the counts that show its cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusyRun {
    /// Polls of any future, in all.
    pub polls: u64,
    /// Times the loop went over every unfinished future.
    pub rounds: u64,
}

/// Runs every future to completion on this thread, polling them round and round, on
/// the real clock. Returns how many polls that took.
pub fn run(futures: Vec<UnitTask>) -> BusyRun {
    run_with_clock(Clock::Real, futures)
}

/// [`run`], with timers read from `clock`. Under a [`ManualClock`](crate::time::ManualClock)
/// the loop spins until something advances the clock: it does not jump the clock to the
/// next deadline, as the real executor does, because it never looks at deadlines.
pub fn run_with_clock(clock: Clock, futures: Vec<UnitTask>) -> BusyRun {
    let _timers = use_timers(clock, Arc::new(TimerQueue::default()));
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut unfinished = futures;
    let mut run = BusyRun::default();
    while !unfinished.is_empty() {
        run.rounds += 1;
        unfinished.retain_mut(|future| {
            run.polls += 1;
            future.as_mut().poll(&mut cx).is_pending() // a finished future is dropped
        });
    }
    run
}

/// A waker that does nothing, from a vtable of our own (the standard library has
/// `Waker::noop`; writing it out shows that a waker is only a pointer and four
/// functions, and that here none of them matter).
fn noop_waker() -> Waker {
    // SAFETY: every function of `NOOP_VTABLE` ignores the data pointer, so the null one
    // is never read; `clone` returns the same pointer with the same vtable, and doing
    // nothing is safe from any thread, as a `Waker` must be.
    unsafe { Waker::from_raw(noop_raw_waker()) }
}

fn noop_raw_waker() -> RawWaker {
    RawWaker::new(ptr::null(), &NOOP_VTABLE)
}

/// `clone` makes another no-op waker; `wake`, `wake_by_ref` and `drop` do nothing.
static NOOP_VTABLE: RawWakerVTable =
    RawWakerVTable::new(|_| noop_raw_waker(), do_nothing, do_nothing, do_nothing);

fn do_nothing(_data: *const ()) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{sleep, ManualClock};
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::Poll;
    use std::time::Duration;

    /// A future that is `Pending` for its first `pending_polls` polls and wakes
    /// nobody; counts its polls in `polls`.
    fn pending_for(pending_polls: u64, polls: Rc<Cell<u64>>) -> UnitTask {
        Box::pin(std::future::poll_fn(move |_cx| {
            polls.set(polls.get() + 1);
            if polls.get() > pending_polls {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }))
    }

    /// The busy loop needs no waker: a future that returns `Pending` without keeping
    /// one still completes, polled once a round.
    #[test]
    fn a_future_that_wakes_nobody_still_completes() {
        let polls = Rc::new(Cell::new(0));
        let run = run(vec![pending_for(9, polls.clone())]);
        assert_eq!(polls.get(), 10);
        assert_eq!(
            run,
            BusyRun {
                polls: 10,
                rounds: 10
            }
        );
    }

    /// While the units wait for their timers, each is polled every round: here the
    /// clock is manual and moves only at the first future's `ROUNDS`th poll, so each
    /// sleeping unit is polled exactly `ROUNDS` times, and every one completes.
    #[test]
    fn sleeping_units_are_polled_every_round_until_due() {
        const ROUNDS: u64 = 50;
        const UNITS: u64 = 4;
        let nap = Duration::from_secs(1);
        let clock = ManualClock::new();
        let advancer = clock.clone();
        let mut polls = 0;
        let clock_mover: UnitTask = Box::pin(std::future::poll_fn(move |_cx| {
            polls += 1;
            if polls == ROUNDS {
                advancer.advance(nap); // the units see it later in this same round
            }
            if polls > ROUNDS {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        let finished = Rc::new(Cell::new(0));
        let mut futures = vec![clock_mover];
        for _ in 0..UNITS {
            let finished = finished.clone();
            futures.push(Box::pin(async move {
                sleep(nap).await;
                finished.set(finished.get() + 1);
            }));
        }
        let run = run_with_clock(Clock::Manual(clock), futures);
        assert_eq!(finished.get(), UNITS);
        // The units: `ROUNDS` polls each; the clock mover: one more, to finish.
        assert_eq!(run.polls, UNITS * ROUNDS + ROUNDS + 1, "{run:?}");
    }
}
