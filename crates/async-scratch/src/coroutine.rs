//! What an `async fn` compiles into: step 4's unit of work, written twice.
//!
//! **Step 4** runs each unit of work as a coroutine. In Rust, a coroutine is a value
//! the compiler builds from an `async fn`: an enum with one variant per place the
//! function can be suspended (each `.await`), holding the variables alive at that point,
//! and a `poll` method that resumes from the current variant. [`run_unit`] is the unit
//! as we write it; [`UnitFuture`] is the same unit written by hand the way the compiler
//! writes it. The two produce the same spans (a test checks it).
//!
//! | `async fn run_unit` | `UnitFuture` |
//! |---|---|
//! | called, not yet polled: the arguments are stored | `UnitState::Start { work, unit, timeline }` |
//! | first poll runs the body up to the first `.await` | `Start` arm: read the clock, make the `Sleep` |
//! | suspended at `sleep(..).await`, `start` is alive | `UnitState::Sleeping { sleep, start, .. }` |
//! | the `Sleep` returns `Pending`: so does the function | `Sleeping` arm, `Poll::Pending`: state kept |
//! | resumed when the timer's waker fires, body runs to the end | `Sleeping` arm, `Poll::Ready`: record the span |
//! | returned: polling again is a bug | `UnitState::Done`: panics |
//!
//! One difference the compiler has to care about and we do not: a generated future may
//! hold references into itself across an `.await` (a borrow of a local), so it must
//! never move once polled: that is why `Future::poll` takes `Pin<&mut Self>`. Ours
//! holds no such borrow, so it is `Unpin`, and moving it would be harmless.
//!
//! # Two awaits, and a borrow across them: why `Pin`
//!
//! Here `names` borrows `log`, and the borrow is alive across both `.await`s:
//!
//! ```
//! use async_scratch::executor::block_on;
//! use async_scratch::time::sleep;
//! use std::time::Duration;
//!
//! async fn two_naps() -> Vec<&'static str> {
//!     let mut log = Vec::new();
//!     let names = &mut log; // a borrow of a local...
//!     sleep(Duration::from_millis(1)).await; // ...alive across this await
//!     names.push("first");
//!     sleep(Duration::from_millis(1)).await; // ...and this one
//!     names.push("second");
//!     log
//! }
//!
//! assert_eq!(block_on(two_naps()), ["first", "second"]);
//! ```
//!
//! The compiler makes `two_naps()` an enum with a variant per `.await`, and `log` and
//! `names` both live in it: `names` holds the address of `log`, a field of the same
//! value. Were the future moved to another address after its first poll, `names`
//! would still point at the old one. So the compiler marks such a future `!Unpin`,
//! and `Pin` keeps it from moving: a `Pin<&mut F>` hands out `&F` freely, but `&mut F`
//! (which `mem::swap` or `mem::replace` would need to move it out) only when `F` is
//! `Unpin`. The executor holds every task pinned in its allocation for its whole life.
//! This does not compile, and that is the point:
//!
//! ```compile_fail
//! # use std::future::Future;
//! # use std::pin::pin;
//! # use std::task::{Context, Waker};
//! # async fn two_naps() -> Vec<&'static str> {
//! #     let mut log = Vec::new();
//! #     let names = &mut log;
//! #     async_scratch::time::sleep(std::time::Duration::from_millis(1)).await;
//! #     names.push("first");
//! #     log
//! # }
//! let mut pinned = pin!(two_naps());
//! let _ = pinned.as_mut().poll(&mut Context::from_waker(Waker::noop()));
//! // `log` and the borrow of it now live inside `pinned`. Moving the future out, to
//! // another address, would leave the borrow pointing at the old one:
//! let moved = std::mem::replace(&mut *pinned, two_naps()); // error: not `Unpin`
//! ```
//!
//! ```
//! use async_scratch::coroutine::{run_unit, UnitFuture};
//! use async_scratch::executor::block_on;
//! use async_scratch::timeline::Timeline;
//! use async_scratch::work::{Work, WorkKind};
//! use std::time::Duration;
//!
//! let work = Work::new(WorkKind::Sleep, Duration::from_millis(1));
//! let timeline = Timeline::new();
//! block_on(run_unit(work, 0, timeline.clone()));
//! block_on(UnitFuture::new(work, 1, timeline.clone()));
//! assert_eq!(timeline.spans().len(), 2);
//! ```

use crate::time::{self, sleep, Sleep};
use crate::timeline::{Lane, Span, Timeline};
use crate::work::{Work, WorkKind};
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// One unit of work as a coroutine, recorded on `timeline` as unit `unit`.
///
/// A `sleep` unit awaits a timer, so the thread is free for other units meanwhile. A
/// `cpu` unit cannot be suspended half-way through a computation: it holds the thread
/// for its whole duration, so coroutines on one thread run CPU units one at a time.
pub async fn run_unit(work: Work, unit: usize, timeline: Timeline) {
    let start = timeline.at(time::now());
    match work.kind {
        WorkKind::Sleep => sleep(work.duration).await,
        WorkKind::Cpu => work.run(),
    }
    record(&timeline, unit, start);
}

/// The span of a unit that started at `start` and ends now, on the executor's clock.
fn record(timeline: &Timeline, unit: usize, start: Duration) {
    let end = timeline.at(time::now());
    let lane = Lane::current_thread();
    timeline.push(Span {
        unit,
        lane,
        start,
        end,
    });
}

/// [`run_unit`], written out by hand as the state machine the compiler generates.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct UnitFuture {
    state: UnitState,
}

/// Where a `UnitFuture` is in the body of `run_unit`.
#[derive(Debug)]
enum UnitState {
    /// Created, not yet polled: only the arguments exist.
    Start {
        work: Work,
        unit: usize,
        timeline: Timeline,
    },
    /// Suspended at `sleep(..).await`, with the locals that live across it.
    Sleeping {
        sleep: Sleep,
        unit: usize,
        timeline: Timeline,
        start: Duration,
    },
    /// Returned.
    Done,
}

impl UnitFuture {
    /// The same as calling `run_unit(work, unit, timeline)`: nothing runs until polled.
    pub fn new(work: Work, unit: usize, timeline: Timeline) -> UnitFuture {
        UnitFuture {
            state: UnitState::Start {
                work,
                unit,
                timeline,
            },
        }
    }
}

impl Future for UnitFuture {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Each arm takes the state by value and leaves the next one: the state machine
        // steps through the body of `run_unit`.
        loop {
            match mem::replace(&mut self.state, UnitState::Done) {
                UnitState::Start {
                    work,
                    unit,
                    timeline,
                } => {
                    let start = timeline.at(time::now());
                    if work.kind == WorkKind::Cpu {
                        work.run(); // no `.await` on this path: straight to the end
                        record(&timeline, unit, start);
                        return Poll::Ready(());
                    }
                    let sleep = sleep(work.duration);
                    self.state = UnitState::Sleeping {
                        sleep,
                        unit,
                        timeline,
                        start,
                    };
                    // Carry on at once: `.await` polls the new future immediately.
                }
                UnitState::Sleeping {
                    mut sleep,
                    unit,
                    timeline,
                    start,
                } => {
                    if Pin::new(&mut sleep).poll(cx).is_pending() {
                        self.state = UnitState::Sleeping {
                            sleep,
                            unit,
                            timeline,
                            start,
                        };
                        return Poll::Pending;
                    }
                    record(&timeline, unit, start);
                    return Poll::Ready(());
                }
                UnitState::Done => panic!("a UnitFuture was polled after it completed"),
            }
        }
    }
}
