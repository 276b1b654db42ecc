//! Timers: `sleep`, `sleep_until` and `timeout`, and the clock they read.
//!
//! **Step 4** introduces it. A thread waits for time with `std::thread::sleep`, and the
//! thread is gone for that long. A coroutine waits by registering a *deadline* and its
//! waker with the executor and returning `Pending`; when the executor has nothing ready
//! to run, it sleeps until the earliest deadline, fires the timers that are due (wakes
//! their tasks) and carries on. A million sleeping coroutines cost a million small
//! entries, not a million threads.
//!
//! # The timer queue
//! Pending timers live in a `BTreeMap` keyed by `(deadline, sequence number)`:
//! - the earliest deadline is the first key, so "how long may the executor sleep" is
//!   one lookup, and firing what is due walks keys in order;
//! - the sequence number, taken when the `Sleep` is created, breaks ties, so timers
//!   with equal deadlines fire in the order they were created;
//! - a `Sleep` dropped before its deadline removes its own entry, exactly: nothing is
//!   left behind to fire or to hold memory.
//!
//! *Teaching shortcut:* tokio uses a hierarchical timing wheel (constant time insert and
//! cancel, at millisecond resolution); a sorted map is O(log n) and exact, and at a
//! million timers still a few microseconds per operation.
//!
//! # The clock
//! Each executor owns a [`Clock`]. [`Clock::Real`] reads `Instant::now()`. A
//! [`ManualClock`] moves only when told to ([`ManualClock::advance`]), *and* jumps by
//! itself to the earliest deadline whenever the executor would otherwise wait: when
//! every task is asleep on a timer, time passes instantly. Timer tests and demos then
//! run in microseconds and give the same result every time.
//!
//! Mind what "would otherwise wait" means: the executor cannot see work running on
//! other threads, so it also jumps while a `spawn_blocking` job or a pool `Task` is
//! still running. Under the manual clock, `timeout(d, spawn_blocking(..))` elapses at
//! once. (tokio's paused clock holds back while blocking tasks run; ours does not yet.)
//!
//! ```
//! use async_scratch::executor::Executor;
//! use async_scratch::time::{self, sleep, Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let executor = Executor::with_clock(Clock::Manual(clock.clone()));
//! let started = clock.now();
//! executor.block_on(async {
//!     sleep(Duration::from_secs(3600)).await; // an hour, instantly
//! });
//! assert_eq!(clock.now() - started, Duration::from_secs(3600));
//! ```

use crate::coop;
use crate::locking::lock;
use crate::unwind::Payload;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Where an executor reads the time.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's monotonic clock, `Instant::now()`.
    #[default]
    Real,
    /// A clock that moves only when advanced, or when the executor jumps it to the next
    /// deadline because nothing else can happen first.
    Manual(ManualClock),
}

impl Clock {
    /// The current time on this clock.
    pub fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Manual(manual) => manual.now(),
        }
    }
}

/// A clock for tests and demos: it starts at the real time of its creation and then
/// moves only forward, only when told. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A manual clock reading the current real time.
    pub fn new() -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// The time this clock shows.
    pub fn now(&self) -> Instant {
        *lock(&self.now)
    }

    /// Moves the clock forward by `by`, or, if `by` goes past the latest `Instant` the
    /// platform can represent, to that latest `Instant` (it saturates). Timers that
    /// become due fire the next time the executor looks, which is before it waits.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now = saturating_add(*now, by);
    }

    /// Moves the clock to `to` if that is later; a clock never goes back.
    pub(crate) fn advance_to(&self, to: Instant) {
        let mut now = lock(&self.now);
        *now = (*now).max(to);
    }
}

/// `from + by`, or the latest `Instant` after `from` if that sum cannot be represented.
///
/// `Instant` does not say where its range ends (that is the platform's business), so
/// the end is found by trying: from `from`, take `step` forward while it fits, and halve
/// it when it does not. Before each halving the room left is under `step`, so every
/// step size fits at most twice: a few tries per bit of `by`, a few hundred at most for
/// `Duration::MAX`. The loop ends only when a one-nanosecond step does not fit, that is
/// exactly at the latest `Instant` there is.
fn saturating_add(from: Instant, by: Duration) -> Instant {
    if let Some(sum) = from.checked_add(by) {
        return sum;
    }
    let mut reached = from;
    let mut step = by;
    while !step.is_zero() {
        match reached.checked_add(step) {
            Some(later) => reached = later,
            None => step /= 2,
        }
    }
    reached
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

/// The time on the clock of the executor running the current task; the real time
/// outside any executor.
pub fn now() -> Instant {
    current_clock().map_or_else(Instant::now, |clock| clock.now())
}

thread_local! {
    /// The clock and timer queue of the executor running on this thread, if any: put
    /// here by the executor for as long as its `block_on` runs (see [`use_timers`]).
    /// The executor knows of timers; timers need not know of the executor.
    static CURRENT: RefCell<Option<(Clock, Arc<TimerQueue>)>> = const { RefCell::new(None) };
}

/// Makes `clock` and `timers` the ones that [`sleep`], [`timeout`] and [`now`] use on
/// this thread, until the returned guard is dropped (which puts back what was there).
pub(crate) fn use_timers(clock: Clock, timers: Arc<TimerQueue>) -> TimersInUse {
    let previous = CURRENT.with(|current| current.replace(Some((clock, timers))));
    TimersInUse { previous }
}

/// The guard of [`use_timers`].
pub(crate) struct TimersInUse {
    previous: Option<(Clock, Arc<TimerQueue>)>,
}

impl Drop for TimersInUse {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: during thread teardown the thread-local may be gone already.
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

fn current_timers() -> Option<(Clock, Arc<TimerQueue>)> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

fn current_clock() -> Option<Clock> {
    let clock =
        CURRENT.try_with(|current| current.borrow().as_ref().map(|(clock, _)| clock.clone()));
    clock.ok().flatten()
}

/// Identifies one pending timer: its deadline, then its creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey {
    deadline: Instant,
    sequence: u64,
}

/// An executor's pending timers. Shared (behind an `Arc`) with every registered
/// `Sleep`, so that a `Sleep` dropped anywhere can take its entry out.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    pending: Mutex<BTreeMap<TimerKey, Waker>>,
    /// How many timers `pending` holds, readable without its lock: the executor looks
    /// every turn, and reads the clock only when there is a timer to fire. Relaxed is
    /// enough: timers are added only on the executor's own thread (so it sees its own
    /// additions), and one removed elsewhere and not seen yet costs one clock read.
    count: AtomicUsize,
}

impl TimerQueue {
    /// Runs `change` on the pending timers, then updates their count.
    fn change<R>(&self, change: impl FnOnce(&mut BTreeMap<TimerKey, Waker>) -> R) -> R {
        let mut pending = lock(&self.pending);
        let result = change(&mut pending);
        self.count.store(pending.len(), Ordering::Relaxed);
        result
    }

    /// Whether no timer is pending (see `count`).
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// The earliest deadline of any pending timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        lock(&self.pending).keys().next().map(|key| key.deadline)
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Removes every timer due at `now` and wakes it, earliest first (equal deadlines
    /// in creation order); `on_due` is told how many first, before any waker runs.
    /// Returns how many fired. A waker's `wake` is user code: a panic in one is caught
    /// and handed to `on_panic`, and the later timers still fire.
    pub(crate) fn fire_due(
        &self,
        now: Instant,
        on_due: impl FnOnce(usize),
        mut on_panic: impl FnMut(Payload),
    ) -> usize {
        let first_not_due = TimerKey {
            deadline: now,
            sequence: u64::MAX,
        };
        let due = self.change(|pending| {
            let not_due = pending.split_off(&first_not_due);
            std::mem::replace(pending, not_due)
        });
        // Woken after the lock is released: a waker may run code of its own.
        let fired = due.len();
        if fired > 0 {
            on_due(fired);
        }
        for (_, waker) in due {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                on_panic(payload);
            }
        }
        fired
    }

    fn insert(&self, key: TimerKey, waker: Waker) {
        self.change(|pending| pending.insert(key, waker));
    }

    /// Replaces the waker of a pending timer, unless it would wake the same task.
    /// Returns false if the timer is no longer pending (it fired).
    fn refresh_waker(&self, key: &TimerKey, waker: &Waker) -> bool {
        match lock(&self.pending).get_mut(key) {
            Some(stored) => {
                if !stored.will_wake(waker) {
                    stored.clone_from(waker);
                }
                true
            }
            None => false,
        }
    }

    fn remove(&self, key: &TimerKey) {
        // Dropped outside the lock, in case the waker's drop does anything itself.
        let removed = self.change(|pending| pending.remove(key));
        drop(removed);
    }

    /// Removes every timer; their wakers are dropped, not woken.
    /// Drops every pending timer. A waker's `Drop` is user code: a panic in one goes
    /// to `on_panic`, and the others are still dropped.
    pub(crate) fn clear(&self, mut on_panic: impl FnMut(Payload)) {
        let all = self.change(std::mem::take);
        for (_, waker) in all {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(waker))) {
                on_panic(payload);
            }
        }
    }
}

/// Hands out the sequence numbers that order timers with equal deadlines.
fn next_sequence() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// When a [`Sleep`] is due.
#[derive(Clone, Debug)]
enum Deadline {
    /// A duration whose start is not fixed yet: it counts from the first poll (see
    /// [`sleep`]).
    After(Duration),
    At(Instant),
    /// Too far away to represent: never fires. It still keeps the waker of its last
    /// poll: its task waits (forever, as asked), and is not a task that lost its last
    /// waker, which the executor would report as lost, blaming the user's code.
    Never {
        waker: Option<Waker>,
    },
}

/// A future that completes at a deadline. Made by [`sleep`] and [`sleep_until`].
///
/// Dropping it before the deadline cancels it: its timer is removed at once.
#[derive(Debug)]
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Deadline,
    sequence: u64,
    /// The queue this sleep is registered in; `None` before the first `Pending`, and
    /// after the sleep is done. Its key there is `(deadline, sequence)`, rebuilt when
    /// needed rather than stored twice: a million sleeps make every byte count.
    registered_in: Option<Arc<TimerQueue>>,
}

/// Waits for `duration`, without blocking the thread: other tasks run meanwhile.
///
/// The duration counts from now when called inside an executor (on that executor's
/// clock), and from the first poll when called outside one. `Duration::ZERO` completes
/// at the first poll; a duration too long to represent never completes (and never
/// overflows).
///
/// # Panics
/// When polled outside an async-scratch executor (there is no timer queue to wait in).
pub fn sleep(duration: Duration) -> Sleep {
    let deadline = match current_clock() {
        Some(clock) => deadline_after(clock.now(), duration),
        None => Deadline::After(duration),
    };
    Sleep::new(deadline)
}

/// Waits until the clock of the executor shows `deadline` or later. A deadline in the
/// past completes at the first poll.
///
/// # Panics
/// When polled outside an async-scratch executor.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(Deadline::At(deadline))
}

fn deadline_after(now: Instant, duration: Duration) -> Deadline {
    now.checked_add(duration)
        .map_or(Deadline::Never { waker: None }, Deadline::At)
}

impl Sleep {
    fn new(deadline: Deadline) -> Sleep {
        Sleep {
            deadline,
            sequence: next_sequence(),
            registered_in: None,
        }
    }

    /// The instant this sleep completes at; `None` if its duration has not started
    /// counting yet, or if it never completes.
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline {
            Deadline::At(deadline) => Some(deadline),
            Deadline::After(_) | Deadline::Never { .. } => None,
        }
    }

    /// This sleep's key in a timer queue, once its deadline is fixed.
    fn key(&self) -> Option<TimerKey> {
        let deadline = self.deadline()?;
        Some(TimerKey {
            deadline,
            sequence: self.sequence,
        })
    }

    fn unregister(&mut self) {
        if let (Some(queue), Some(key)) = (self.registered_in.take(), self.key()) {
            queue.remove(&key);
        }
    }

    /// Makes sure `queue` holds this sleep's timer with `waker`.
    fn register(&mut self, queue: &Arc<TimerQueue>, key: TimerKey, waker: &Waker) {
        if let Some(registered_in) = &self.registered_in {
            if Arc::ptr_eq(registered_in, queue) && queue.refresh_waker(&key, waker) {
                return;
            }
        }
        // The first poll, or polled by another executor than before: (re-)register.
        self.unregister();
        queue.insert(key, waker.clone());
        self.registered_in = Some(Arc::clone(queue));
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut(); // `Sleep` is `Unpin`: it holds no self-references
        let Some((clock, queue)) = current_timers() else {
            panic!(
                "`sleep` was polled outside an async-scratch executor; run it inside `block_on`"
            );
        };
        let now = clock.now();
        if let Deadline::After(duration) = this.deadline {
            this.deadline = deadline_after(now, duration);
        }
        match &mut this.deadline {
            &mut Deadline::At(deadline) if deadline <= now => {
                // Due: one unit of the task's budget (see `coop`), or a turn to wait.
                let unit = ready!(coop::poll_proceed(cx));
                this.unregister();
                unit.spend();
                Poll::Ready(())
            }
            &mut Deadline::At(deadline) => {
                let key = TimerKey {
                    deadline,
                    sequence: this.sequence,
                };
                this.register(&queue, key, cx.waker());
                Poll::Pending
            }
            // Never due: nothing to register; the waker is kept (see `Deadline::Never`).
            Deadline::Never { waker } => {
                if !waker
                    .as_ref()
                    .is_some_and(|kept| kept.will_wake(cx.waker()))
                {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Deadline::After(_) => unreachable!("a deadline is fixed at the first poll"),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The error of a [`timeout`] whose time ran out before its future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the timeout elapsed before the future completed")
    }
}

impl std::error::Error for Elapsed {}

/// A future that runs `future` for at most `duration`. Made by [`timeout`].
#[derive(Debug)]
#[must_use = "a Timeout does nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

/// Runs `future`, giving up after `duration`: `Ok(output)` if it finished in time,
/// `Err(Elapsed)` if not. On timeout the future is dropped (cancelled) with the
/// `Timeout`. The future is polled before the timer, so one that is ready at the
/// deadline still counts as in time.
///
/// ```
/// use async_scratch::executor::block_on;
/// use async_scratch::time::{sleep, timeout, Elapsed};
/// use std::time::Duration;
///
/// block_on(async {
///     let quick = timeout(Duration::from_secs(1), async { 7 }).await;
///     assert_eq!(quick, Ok(7));
///     let slow = timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await;
///     assert_eq!(slow, Err(Elapsed));
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: pin projection. `future` is never moved out of a pinned `Timeout`
        // (no method takes it by value, and `Timeout` has no `Drop` impl that could),
        // so pinning it in place here is sound. `sleep` is `Unpin`, so a plain
        // `&mut` to it is fine.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above: `this.future` stays where it is for as long as it lives.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut this.sleep).poll(cx).map(|()| Err(Elapsed))
    }
}
