//! A task's state in one atomic word: what the executor, the task's wakers and its
//! `JoinHandle` agree on, from any thread, without a lock.
//!
//! Until now a task had four loose flags (`scheduled`, `finished`, `reported_lost`,
//! `abort_requested`) and a waker count beside them. Each was right on its own; together
//! they were not. An `abort` stored its flag, then tried to queue the task; a poll read
//! the abort flag, then cleared `scheduled`. When the abort landed between the two, it
//! found the task still queued and queued nothing, and the poll then cleared the flag
//! it relied on: the abort was lost. Two flags, two atomic operations on each side, and
//! no order between them. In one word, every transition is one atomic read-modify-write,
//! and the word's history is one total order that every thread sees the same way.
//!
//! # The word
//!
//! | bits | name | set by | cleared by |
//! |---|---|---|---|
//! | 0 | `SCHEDULED` | a wake or an abort that finds it clear (that one queues the task); a new task | the poll that starts |
//! | 1 | `RUNNING` | the poll that starts | the poll that ends |
//! | 2 | `COMPLETE` | the poll that ends the task; the executor dropping it | never |
//! | 3 | `CANCELLED` | `JoinHandle::abort` | never |
//! | 4 | `LOST_REPORTED` | the first report of the task as lost | never |
//! | 5 | `HANDLE_LOOSE` | a new task (its `JoinHandle` exists); a handle awaited through no known wait | a handle awaited through a known wait; the handle dropped |
//! | 6 | `JOIN_INTEREST` | a new task (its `JoinHandle` exists) | the handle dropped: the outcome is dropped as it comes |
//! | 7 | `DELIVERED` | the task's end, once its outcome is in the slot | never |
//! | 8 | `JOIN_WAKER` | the handle, once it stored its awaiter's waker in the slot | the handle, to change the waker (only before `DELIVERED`); the task, once it woke it |
//! | 9 | `KEEPS_BOOKS` | a new task whose scheduler keeps the books of lost tasks and waits (see `schedule`) | never: it never changes, and lives here so that a waker's drop reads it in the same step |
//! | 10 | `OBSERVED` | a new task whose scheduler has an observer (see `schedule`) | never: like `KEEPS_BOOKS`, it lives here so that a wake reads it in the step it makes, and a task with no observer pays no call to say it was woken |
//! | 11..38 | waker count | an owning waker made (`+1`) | one dropped or consumed (`-1`) |
//! | 38..64 | reference count | a [`TaskRef`](super::task_ref::TaskRef) made: the executor's list, a queue entry, a waker, the `JoinHandle`, a wait record (`+1`) | one dropped (`-1`); the last frees the task |
//!
//! The word is 64 bits on every target: two counts of 27 and 26 bits, each stopped at
//! over 33 million, which a program reaching is a program leaking (both abort the process, as
//! `Arc`'s count does, rather than overflow into the flags).
//!
//! # Transitions
//!
//! | transition | from | to | the caller then |
//! |---|---|---|---|
//! | [`wake`](State::wake) | not `SCHEDULED`, not `COMPLETE`, not `RUNNING` | `SCHEDULED` | queues the task |
//! | | `RUNNING`, not `SCHEDULED` | `SCHEDULED` | nothing: the poll's end queues it |
//! | | `SCHEDULED` or `COMPLETE` | unchanged (`SCHEDULED` is meaningless once `COMPLETE`) | nothing |
//! | [`wake_by_waker`](State::wake_by_waker) | as `wake`, with a waker | as `wake`, one waker fewer | as `wake`, with the waker's reference |
//! | [`cancel`](State::cancel) | any | `CANCELLED`, and as `wake` | queues the task, as `wake` says |
//! | [`start_poll`](State::start_poll) | `SCHEDULED`, not `RUNNING`, not `COMPLETE` | `RUNNING` | polls, unless the word it got back says `CANCELLED` |
//! | [`end_poll`](State::end_poll) | `RUNNING` | not `RUNNING` | queues the task again if `SCHEDULED` (woken during the poll); else checks it is not lost (no waker) |
//! | [`complete`](State::complete) | any but `COMPLETE` | `COMPLETE`, not `RUNNING` | delivers the outcome |
//! | [`deliver`](State::deliver) | not `DELIVERED` | `DELIVERED` | drops the outcome if the word it got back has no `JOIN_INTEREST`; wakes the awaiter if it has `JOIN_WAKER` |
//! | [`set_join_waker`](State::set_join_waker) | not `JOIN_WAKER`, not `DELIVERED` | `JOIN_WAKER` | waits for the wake; if refused (`DELIVERED`), takes the outcome |
//! | [`unset_join_waker`](State::unset_join_waker) | `JOIN_WAKER`, not `DELIVERED` | not `JOIN_WAKER` | reads or changes the waker; if refused, takes the outcome |
//! | [`drop_join_interest`](State::drop_join_interest) | `JOIN_INTEREST` | not `JOIN_INTEREST`, not `HANDLE_LOOSE` | drops the outcome if the word it got back has `DELIVERED` |
//!
//! # Who may touch the outcome slot
//! The slot a task's outcome waits in has two cells, and no lock: the word says whose
//! each is at any moment.
//! - **The outcome** is the task's until `DELIVERED`, the handle's after. The task
//!   writes it, then sets `DELIVERED`; if the word it got back has no `JOIN_INTEREST`,
//!   the handle is gone, and the task drops the outcome itself. A handle that drops
//!   sees, in the word it got back from clearing `JOIN_INTEREST`, whether `DELIVERED`
//!   was there: if it was, the outcome is the handle's to drop; if not, the task's.
//!   One atomic order between the two operations, so exactly one side drops it.
//! - **The awaiter's waker** is the handle's while `JOIN_WAKER` is clear and the outcome
//!   not `DELIVERED` (a clear bit after `DELIVERED` may be the task's doing, as it drops
//!   the waker): it writes it, then sets the bit, unless `DELIVERED` came first (then
//!   it takes the waker back and the outcome with it). While the bit is set, only the task reads the waker (to
//!   wake it, after `DELIVERED`), and only the one that clears the bit may take it: the
//!   handle, only before `DELIVERED`; the task, after it woke it. The handle never
//!   reads the cell with the bit set, not even to compare wakers: the task may clear
//!   the bit and drop the waker at any moment after `DELIVERED`, and that read would
//!   race the drop. To compare, it clears the bit first, and sets it again if the
//!   waker is the same.
//!
//! Why an abort cannot be lost now: `cancel` sets `CANCELLED` and `SCHEDULED` in one
//! operation, and `start_poll` clears `SCHEDULED` and reads `CANCELLED` in one. If the
//! abort comes first, the poll sees `CANCELLED`. If the poll comes first, the abort
//! finds `SCHEDULED` clear: it queues the task again if the poll is over, and if the
//! poll is still running, `end_poll` finds `SCHEDULED` in the same atomic step that
//! ends the poll, and queues it. Either way the next poll sees `CANCELLED`. There is no
//! third order.
//!
//! Why a wake during a poll queues nothing: the task is in the executor's hands, which
//! hold a reference to it. Queueing it would take a second reference (an atomic
//! operation), which the first poll's end would then give back (another); and a task
//! that wakes itself (`yield_now`, a spent budget) does it at every poll. So the wake
//! only sets `SCHEDULED`, and the poll's end, seeing it, queues the task with the
//! reference it already holds. (tokio's task state does the same: a task notified
//! while running is rescheduled by the worker that ran it.) The loom model at the end of this file checks every interleaving
//! of a poll, a wake, an abort and a waker drop (`RUSTFLAGS="--cfg loom" cargo test -p
//! async-scratch --lib --release loom`).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, Ordering};
use std::fmt;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, Ordering};

const SCHEDULED: u64 = 1 << 0;
const RUNNING: u64 = 1 << 1;
const COMPLETE: u64 = 1 << 2;
const CANCELLED: u64 = 1 << 3;
const LOST_REPORTED: u64 = 1 << 4;
const HANDLE_LOOSE: u64 = 1 << 5;
const JOIN_INTEREST: u64 = 1 << 6;
const DELIVERED: u64 = 1 << 7;
const JOIN_WAKER: u64 = 1 << 8;
const KEEPS_BOOKS: u64 = 1 << 9;
const OBSERVED: u64 = 1 << 10;
/// The waker count lives above the flags; one waker is this much of the word.
const WAKER_SHIFT: u32 = 11;
const ONE_WAKER: u64 = 1 << WAKER_SHIFT;
/// The reference count lives above the waker count.
const REF_SHIFT: u32 = 38;
const ONE_REF: u64 = 1 << REF_SHIFT;
/// The most either count may reach: half the smaller field (the reference count's 26
/// bits), so that an increment past it is seen (and the process aborted) long before
/// it could carry into the next field.
const COUNT_LIMIT: u64 = 1 << 25;
const _: () =
    assert!(COUNT_LIMIT * 2 <= ONE_REF / ONE_WAKER && COUNT_LIMIT * 2 <= 1 << (64 - REF_SHIFT));

/// The state word of one task. Every method is one atomic operation (or, for the rare
/// `complete`, one loop of them), `AcqRel`: whoever sees a transition also sees what
/// its thread did before it (the outcome written before `COMPLETE`, say). The four
/// that every poll makes (`load`, `start_poll`, `wake`, `end_poll`) are `#[inline]`:
/// a poll runs in the task's vtable, made in the crate that spawned the task, which
/// could not inline them otherwise, and would pay a call for each atomic step.
pub(crate) struct State(AtomicU64);

/// One reading of the word: what a transition found, or what `load` saw.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u64);

impl State {
    /// A new task: queued at once, with no waker yet, and one reference (its
    /// creator's).
    pub(crate) fn new_scheduled() -> State {
        State(AtomicU64::new(
            SCHEDULED | HANDLE_LOOSE | JOIN_INTEREST | ONE_REF,
        ))
    }

    /// A new task, as [`new_scheduled`](State::new_scheduled), whose scheduler keeps
    /// the books of lost tasks and waits if `keeps_books`, and has an observer if
    /// `observed`.
    pub(crate) fn new_task(keeps_books: bool, observed: bool) -> State {
        let state = State::new_scheduled();
        if keeps_books {
            state.0.fetch_or(KEEPS_BOOKS, Ordering::Relaxed);
        }
        if observed {
            state.0.fetch_or(OBSERVED, Ordering::Relaxed);
        }
        state
    }

    /// One more reference to the task. `Relaxed`, as for `Arc`: a reference is made
    /// from one its maker holds, so the task cannot be freed meanwhile, and nothing is
    /// published by it.
    pub(crate) fn ref_inc(&self) {
        let before = Snapshot(self.0.fetch_add(ONE_REF, Ordering::Relaxed));
        abort_past_limit(before.refs());
    }

    /// One reference fewer; returns whether it was the last, and the caller must free
    /// the task. `AcqRel`, as for `Arc`: every use of the task through other references
    /// happens before the free.
    pub(crate) fn ref_dec(&self) -> bool {
        let before = Snapshot(self.0.fetch_sub(ONE_REF, Ordering::AcqRel));
        assert!(
            before.refs() > 0,
            "a task reference released twice: {before:?}"
        );
        before.refs() == 1
    }

    /// Whether the task's `JoinHandle` is "loose": alive, and not awaited through a
    /// wait the executor knows. Whoever holds a loose handle may `abort` it, which
    /// wakes the task: it counts as a waker held outside. Returns the word as it is.
    pub(crate) fn set_handle_loose(&self, loose: bool) -> Snapshot {
        let before = if loose {
            self.0.fetch_or(HANDLE_LOOSE, Ordering::SeqCst)
        } else {
            self.0.fetch_and(!HANDLE_LOOSE, Ordering::SeqCst)
        };
        Snapshot(if loose {
            before | HANDLE_LOOSE
        } else {
            before & !HANDLE_LOOSE
        })
    }

    /// The task's `JoinHandle` was dropped: nobody will take the outcome, and the handle
    /// can abort nothing any more (it is no longer loose). Returns the word as it was:
    /// with `DELIVERED`, the outcome is the handle's to drop (see the module doc).
    pub(crate) fn drop_join_interest(&self) -> Snapshot {
        let gone = JOIN_INTEREST | HANDLE_LOOSE;
        let before = Snapshot(self.0.fetch_and(!gone, Ordering::SeqCst));
        assert!(
            before.has_join_interest(),
            "a JoinHandle dropped twice: {before:?}"
        );
        before
    }

    /// The task's outcome is in the slot. Returns the word as it was: without
    /// `JOIN_INTEREST`, the caller drops the outcome; with `JOIN_WAKER`, it wakes the
    /// awaiter, then calls [`release_join_waker`](State::release_join_waker).
    pub(crate) fn deliver(&self) -> Snapshot {
        let before = Snapshot(self.0.fetch_or(DELIVERED, Ordering::AcqRel));
        assert!(
            !before.is_delivered(),
            "an outcome delivered twice: {before:?}"
        );
        before
    }

    /// After `deliver`, the task is done with the awaiter's waker: clears `JOIN_WAKER`,
    /// and the waker is the task's to drop.
    pub(crate) fn release_join_waker(&self) {
        let before = Snapshot(self.0.fetch_and(!JOIN_WAKER, Ordering::AcqRel));
        assert!(
            before.is_delivered() && before.has_join_waker(),
            "release_join_waker on a task that is {before:?}"
        );
    }

    /// The handle stored its awaiter's waker: sets `JOIN_WAKER`, unless the outcome was
    /// delivered meanwhile (then `Err`, and the waker is still the handle's).
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        self.join_waker_update(|word| {
            assert!(word & JOIN_WAKER == 0, "set_join_waker: already set");
            word | JOIN_WAKER
        })
    }

    /// The handle takes its awaiter's waker back, to read or change it: clears `JOIN_WAKER`,
    /// unless the outcome was delivered meanwhile (then `Err`, and the waker is the
    /// task's).
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        self.join_waker_update(|word| {
            assert!(word & JOIN_WAKER != 0, "unset_join_waker: not set");
            word & !JOIN_WAKER
        })
    }

    /// Applies `change` to the word, unless it has `DELIVERED`.
    fn join_waker_update(&self, change: impl Fn(u64) -> u64) -> Result<(), Snapshot> {
        let update = |word: u64| (word & DELIVERED == 0).then(|| change(word));
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, update)
            .map(drop)
            .map_err(Snapshot)
    }

    /// `SeqCst`, like `waker_released`: the executor reads waker counts before it
    /// parks, a thread releases a waker and then looks whether the executor parked,
    /// and one of the two must see the other (see `Shared::parked_undecided`). On
    /// x86 and ARM this costs what `Acquire` costs.
    #[inline]
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::SeqCst))
    }

    /// A wake. Returns the word as it was, which says whether the wake is news
    /// ([`Snapshot::is_news`]) and whether the caller must queue the task
    /// ([`Snapshot::needs_queueing`]). Many wakes before a poll queue it once, and a
    /// wake during a poll queues nothing: the poll's end does (see `end_poll`).
    #[inline]
    pub(crate) fn wake(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(SCHEDULED, Ordering::AcqRel))
    }

    /// A wake by an owning waker that is consumed by it (`Waker::wake`): `wake`, and
    /// one waker fewer, in one atomic step. Returns the word as it was, as `wake` does.
    /// No check for a lost task is needed after it: the task is woken (or over, or
    /// woken already), so it will be polled, and every poll is checked.
    pub(crate) fn wake_by_waker(&self) -> Snapshot {
        let update = |word: u64| {
            assert!(Snapshot(word).wakers() > 0, "a waker consumed twice");
            Some((word | SCHEDULED) - ONE_WAKER)
        };
        let before = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, update);
        Snapshot(before.unwrap_or_else(|word| word))
    }

    /// An abort: marks the task cancelled and wakes it, in one step (see the module
    /// doc for why it must be one). Returns the word as it was, as `wake` does.
    pub(crate) fn cancel(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(CANCELLED | SCHEDULED, Ordering::AcqRel))
    }

    /// The executor starts polling the task: clears `SCHEDULED` (a wake from now on
    /// queues it again) and sets `RUNNING`. Returns the word as it was, which says
    /// whether the task was cancelled.
    ///
    /// # Panics
    /// If the task was not queued, is being polled, or is complete: the executor would
    /// have polled a task twice at once, or one that ended.
    #[inline]
    pub(crate) fn start_poll(&self) -> Snapshot {
        let before = Snapshot(self.0.fetch_xor(SCHEDULED | RUNNING, Ordering::AcqRel));
        assert!(
            before.is_scheduled() && !before.is_running() && !before.is_complete(),
            "start_poll on a task that is {before:?}"
        );
        before
    }

    /// The poll returned `Pending`: clears `RUNNING`. Returns the word as it is now:
    /// with `SCHEDULED`, the task was woken during the poll, and the caller queues it
    /// again, with the reference it polled it through (that wake queued nothing).
    ///
    /// # Panics
    /// If the task was not being polled.
    #[inline]
    pub(crate) fn end_poll(&self) -> Snapshot {
        let before = Snapshot(self.0.fetch_and(!RUNNING, Ordering::AcqRel));
        assert!(before.is_running(), "end_poll on a task that is {before:?}");
        Snapshot(before.0 & !RUNNING)
    }

    /// The task is over (its poll returned `Ready`, it was cancelled, or its executor
    /// drops it): sets `COMPLETE`, clears `RUNNING`. Once only; returns whether this
    /// call was the one.
    pub(crate) fn complete(&self) -> bool {
        let update = |word: u64| (word & COMPLETE == 0).then_some((word | COMPLETE) & !RUNNING);
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, update)
            .is_ok()
    }

    /// An owning waker was made, with the reference it owns: one atomic step for
    /// both counts. (Dropping a waker takes two, see `TaskRef`.)
    pub(crate) fn waker_created(&self) {
        let before = Snapshot(self.0.fetch_add(ONE_WAKER | ONE_REF, Ordering::AcqRel));
        abort_past_limit(before.wakers());
        abort_past_limit(before.refs());
    }

    /// An owning waker went. Returns the word as it is now: with no waker left and the
    /// task not queued, the task may be lost. The waker's reference is still held: the
    /// caller reads the header after this (to report a lost task), then gives the
    /// reference back.
    pub(crate) fn waker_released(&self) -> Snapshot {
        let before = Snapshot(self.0.fetch_sub(ONE_WAKER, Ordering::SeqCst));
        assert!(before.wakers() > 0, "a waker released twice: {before:?}");
        Snapshot(before.0 - ONE_WAKER)
    }

    /// Marks the task as reported lost; returns whether it was not already, so that a
    /// task is reported once.
    pub(crate) fn mark_lost_reported(&self) -> bool {
        let before = self.0.fetch_or(LOST_REPORTED, Ordering::AcqRel);
        before & LOST_REPORTED == 0
    }
}

impl Snapshot {
    pub(crate) fn is_scheduled(self) -> bool {
        self.0 & SCHEDULED != 0
    }

    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }

    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }

    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }

    /// Owning wakers alive anywhere.
    pub(crate) fn wakers(self) -> u64 {
        (self.0 >> WAKER_SHIFT) & (ONE_REF / ONE_WAKER - 1)
    }

    /// References to the task alive anywhere (wakers' included).
    pub(crate) fn refs(self) -> u64 {
        self.0 >> REF_SHIFT
    }

    /// Whether the outcome is in the slot (or was, and was taken).
    pub(crate) fn is_delivered(self) -> bool {
        self.0 & DELIVERED != 0
    }

    /// Whether the handle's awaiter's waker is in the slot (see the module doc).
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }

    /// Whether the task's `JoinHandle` is alive, to take the outcome.
    pub(crate) fn has_join_interest(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }

    /// Whether a loose `JoinHandle` (see `set_handle_loose`) could still abort it.
    pub(crate) fn handle_loose(self) -> bool {
        self.0 & HANDLE_LOOSE != 0
    }

    /// Pending, not queued, not being polled, and no waker left: nothing can ever wake
    /// the task to go on (an abort through a loose `JoinHandle` could still end it,
    /// which is no help to a future that forgot its waker: the report of a lost task
    /// stands). A task being polled may still make a waker: its poll's end decides.
    pub(crate) fn looks_lost(self) -> bool {
        self.wakers() == 0 && self.0 & (SCHEDULED | COMPLETE | RUNNING) == 0
    }

    /// Whether the task's scheduler keeps the books of lost tasks and waits.
    pub(crate) fn keeps_books(self) -> bool {
        self.0 & KEEPS_BOOKS != 0
    }

    /// Whether the task's scheduler has an observer, to be told of its wakes.
    pub(crate) fn is_observed(self) -> bool {
        self.0 & OBSERVED != 0
    }

    /// Whether a wake that found this word woke the task: it was neither woken already
    /// nor over.
    pub(crate) fn is_news(self) -> bool {
        self.0 & (SCHEDULED | COMPLETE) == 0
    }

    /// Whether a wake that found this word must queue the task: news, and the task is
    /// not being polled (then the poll's end queues it: see `end_poll`).
    pub(crate) fn needs_queueing(self) -> bool {
        self.0 & (SCHEDULED | COMPLETE | RUNNING) == 0
    }
}

/// Decodes the word: `Snapshot(SCHEDULED | RUNNING, 2 wakers)`.
impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (SCHEDULED, "SCHEDULED"),
            (RUNNING, "RUNNING"),
            (COMPLETE, "COMPLETE"),
            (CANCELLED, "CANCELLED"),
            (LOST_REPORTED, "LOST_REPORTED"),
            (HANDLE_LOOSE, "HANDLE_LOOSE"),
            (JOIN_INTEREST, "JOIN_INTEREST"),
            (DELIVERED, "DELIVERED"),
            (JOIN_WAKER, "JOIN_WAKER"),
            (KEEPS_BOOKS, "KEEPS_BOOKS"),
            (OBSERVED, "OBSERVED"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| *name)
            .collect();
        let flags = if set.is_empty() {
            "IDLE".to_string()
        } else {
            set.join(" | ")
        };
        let (wakers, refs) = (self.wakers(), self.refs());
        write!(f, "Snapshot({flags}, {wakers} wakers, {refs} refs)")
    }
}

/// Aborts the process if a count read before an increment was already at its limit:
/// a count that wrapped would free a task still in use (see the module doc).
fn abort_past_limit(count: u64) {
    if count >= COUNT_LIMIT {
        eprintln!("a task's waker or reference count passed {COUNT_LIMIT}: aborting");
        std::process::abort();
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.load().fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn many_wakes_queue_once_and_a_poll_rearms() {
        let state = State::new_scheduled();
        assert!(!state.wake().is_news(), "a new task is queued already");
        assert!(!state.start_poll().is_cancelled());
        let during = state.wake();
        assert!(
            during.is_news() && !during.needs_queueing(),
            "the poll's end queues"
        );
        assert!(!state.wake().is_news());
        assert!(
            state.end_poll().is_scheduled(),
            "so the poll's end queues it again"
        );
        state.start_poll();
        state.end_poll();
        assert!(
            state.wake().needs_queueing(),
            "between polls, a wake queues"
        );
    }

    #[test]
    fn an_abort_during_a_poll_queues_the_task_again() {
        let state = State::new_scheduled();
        state.start_poll();
        assert!(
            !state.cancel().needs_queueing(),
            "during the poll, the abort leaves the queueing to the poll's end"
        );
        assert!(state.end_poll().is_scheduled());
        assert!(state.start_poll().is_cancelled());
    }

    #[test]
    fn nothing_queues_a_complete_task() {
        let state = State::new_scheduled();
        state.start_poll();
        assert!(state.complete());
        assert!(!state.complete(), "complete once");
        assert!(!state.wake().needs_queueing());
        assert!(!state.cancel().needs_queueing());
        assert!(!state.load().is_running());
    }

    #[test]
    fn the_last_waker_gone_from_an_idle_task_looks_lost() {
        let state = State::new_scheduled();
        state.waker_created();
        state.start_poll();
        assert!(!state.end_poll().looks_lost(), "a waker is left");
        assert!(state.waker_released().looks_lost());
        assert!(state.mark_lost_reported());
        assert!(!state.mark_lost_reported(), "reported once");
    }

    #[test]
    fn the_last_reference_is_told_it_is_the_last() {
        let state = State::new_scheduled();
        state.ref_inc();
        state.waker_created();
        assert_eq!((state.load().refs(), state.load().wakers()), (3, 1));
        state.waker_released();
        assert_eq!(
            state.load().refs(),
            3,
            "the waker's reference is given back apart"
        );
        assert!(!state.ref_dec());
        assert!(!state.ref_dec());
        assert!(state.ref_dec(), "the third was the last");
    }

    #[test]
    #[should_panic(expected = "start_poll on a task that is")]
    fn polling_a_task_that_is_not_queued_is_refused() {
        let state = State::new_scheduled();
        state.start_poll();
        state.end_poll();
        state.start_poll();
    }

    #[test]
    fn debug_names_the_flags_and_counts_the_wakers() {
        let state = State::new_scheduled();
        state.waker_created();
        state.waker_created();
        state.start_poll();
        assert_eq!(
            format!("{state:?}"),
            "Snapshot(RUNNING | HANDLE_LOOSE | JOIN_INTEREST, 2 wakers, 3 refs)"
        );
        state.cancel();
        assert_eq!(
            format!("{:?}", state.load()),
            "Snapshot(SCHEDULED | RUNNING | CANCELLED | HANDLE_LOOSE | JOIN_INTEREST, 2 wakers, 3 refs)"
        );
    }
}

/// Every interleaving of the executor's poll loop with wakes, aborts and waker drops
/// from other threads, checked by loom. The executor is modelled by what it does with
/// the word: it polls once per queue entry; a poll that finds `CANCELLED` ends the task.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Task {
        state: State,
        /// Queue entries for this task: each `true` from `wake`/`cancel` adds one.
        queued: Mutex<usize>,
    }

    impl Task {
        fn new() -> Arc<Task> {
            Arc::new(Task {
                state: State::new_scheduled(),
                queued: Mutex::new(1), // a new task is queued
            })
        }

        fn queue_if(&self, needed: bool) {
            if needed {
                let mut queued = self.queued.lock().unwrap();
                *queued += 1;
                assert_eq!(*queued, 1, "a task is never in the queue twice");
            }
        }

        fn take_entry(&self) -> bool {
            let mut queued = self.queued.lock().unwrap();
            let had = *queued > 0;
            *queued = queued.saturating_sub(1);
            had
        }

        /// The executor's turn: polls once per queue entry. Returns whether the task
        /// ended (by finding `CANCELLED`). An entry left by a wake during the last poll
        /// finds the task complete and is skipped, as the executor skips an id whose
        /// slot is gone.
        fn run_queued(&self) -> bool {
            while self.take_entry() {
                if self.state.load().is_complete() {
                    continue;
                }
                if self.state.start_poll().is_cancelled() {
                    assert!(self.state.complete());
                    return true;
                }
                // Woken during the poll: queued again by the poll's end.
                self.queue_if(self.state.end_poll().is_scheduled());
            }
            self.state.load().is_complete()
        }
    }

    #[test]
    fn an_abort_racing_a_poll_is_never_lost() {
        loom::model(|| {
            let task = Task::new();
            let aborter = {
                let task = Arc::clone(&task);
                thread::spawn(move || task.queue_if(task.state.cancel().needs_queueing()))
            };
            task.run_queued();
            aborter.join().unwrap();
            assert!(task.run_queued(), "the abort reached the task");
        });
    }

    #[test]
    fn wakes_aborts_and_waker_drops_together_lose_nothing() {
        loom::model(|| {
            let task = Task::new();
            task.state.waker_created(); // the waker the other thread holds
            let waker_thread = {
                let task = Arc::clone(&task);
                // `Waker::wake` consumes the waker: the wake and the count in one step.
                thread::spawn(move || task.queue_if(task.state.wake_by_waker().needs_queueing()))
            };
            let aborter = {
                let task = Arc::clone(&task);
                thread::spawn(move || task.queue_if(task.state.cancel().needs_queueing()))
            };
            task.run_queued();
            waker_thread.join().unwrap();
            aborter.join().unwrap();
            assert!(task.run_queued(), "the abort reached the task");
            let end = task.state.load();
            assert_eq!(end.wakers(), 0);
            assert!(!end.looks_lost());
        });
    }

    /// References dropped on two threads at once, one a waker's (two steps: its count,
    /// then its reference): exactly one of them is the last, and it sees the word
    /// with nothing else in it.
    #[test]
    fn exactly_one_reference_is_the_last() {
        loom::model(|| {
            let task = Task::new();
            task.state.waker_created();
            let frees = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
            let waker_thread = {
                let (task, frees) = (Arc::clone(&task), Arc::clone(&frees));
                thread::spawn(move || {
                    task.state.waker_released();
                    if task.state.ref_dec() {
                        frees.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            if task.state.ref_dec() {
                frees.fetch_add(1, Ordering::Relaxed);
            }
            waker_thread.join().unwrap();
            assert_eq!(frees.load(Ordering::Relaxed), 1);
            assert_eq!(task.state.load().refs(), 0);
            assert_eq!(task.state.load().wakers(), 0);
        });
    }

    /// The outcome slot's protocol (see "Who may touch the outcome slot"), as
    /// `JoinSlot` follows it, with loom's `UnsafeCell`, which fails the model on any
    /// access the word did not grant. The outcome and the waker are counters of drops.
    struct Slot {
        state: State,
        outcome: loom::cell::UnsafeCell<Option<Arc<()>>>,
        joiner: loom::cell::UnsafeCell<Option<Arc<loom::sync::atomic::AtomicBool>>>,
    }

    impl Slot {
        fn new() -> Arc<Slot> {
            Arc::new(Slot {
                state: State::new_scheduled(),
                outcome: loom::cell::UnsafeCell::new(None),
                joiner: loom::cell::UnsafeCell::new(None),
            })
        }

        /// `JoinSlot::finish`.
        fn finish(&self, outcome: Arc<()>) {
            self.outcome
                .with_mut(|cell| unsafe { *cell = Some(outcome) });
            let before = self.state.deliver();
            if !before.has_join_interest() {
                self.outcome.with_mut(|cell| unsafe { (*cell).take() });
            }
            if before.has_join_waker() {
                self.joiner.with(|cell| unsafe {
                    let waker = (*cell).as_ref().unwrap();
                    waker.store(true, Ordering::Release);
                });
                self.state.release_join_waker();
                self.joiner.with_mut(|cell| unsafe { (*cell).take() });
            }
        }

        /// `JoinHandle::poll`'s first look and `store_joiner`, for an awaiter that has
        /// not waited before: `Some` if it got the outcome.
        fn poll(&self, waker: &Arc<loom::sync::atomic::AtomicBool>) -> Option<Arc<()>> {
            if self.state.load().is_delivered() {
                return self.outcome.with_mut(|cell| unsafe { (*cell).take() });
            }
            self.joiner
                .with_mut(|cell| unsafe { *cell = Some(Arc::clone(waker)) });
            match self.state.set_join_waker() {
                Ok(()) => None,
                Err(_) => {
                    self.joiner.with_mut(|cell| unsafe { (*cell).take() });
                    self.outcome.with_mut(|cell| unsafe { (*cell).take() })
                }
            }
        }

        /// `JoinHandle::poll` again, with the same waker: `store_joiner`'s path for a
        /// handle that left a waker before. `Some` if it got the outcome.
        fn poll_again(&self, waker: &Arc<loom::sync::atomic::AtomicBool>) -> Option<Arc<()>> {
            let word = self.state.load();
            if word.is_delivered() || self.state.unset_join_waker().is_err() {
                return self.outcome.with_mut(|cell| unsafe { (*cell).take() });
            }
            // The cell is the handle's again: compare, then hand it back.
            let same = self.joiner.with(|cell| unsafe {
                (*cell)
                    .as_ref()
                    .is_some_and(|stored| Arc::ptr_eq(stored, waker))
            });
            assert!(same, "the same waker was stored");
            match self.state.set_join_waker() {
                Ok(()) => None,
                Err(_) => {
                    self.joiner.with_mut(|cell| unsafe { (*cell).take() });
                    self.outcome.with_mut(|cell| unsafe { (*cell).take() })
                }
            }
        }

        /// `JoinHandle::drop`.
        fn drop_handle(&self) {
            let before = self.state.drop_join_interest();
            if before.is_delivered() {
                self.outcome.with_mut(|cell| unsafe { (*cell).take() });
            } else if !before.has_join_waker() || self.state.unset_join_waker().is_ok() {
                self.joiner.with_mut(|cell| unsafe { (*cell).take() });
            }
        }
    }

    /// The task delivering while the handle, awaited once, is dropped: the outcome and
    /// the waker are each dropped exactly once, by whichever side the word says.
    #[test]
    fn a_delivery_racing_a_handle_drop_drops_everything_once() {
        loom::model(|| {
            let slot = Slot::new();
            let outcome = Arc::new(());
            let waker = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let got = slot.poll(&waker);
            assert!(got.is_none(), "nothing was delivered yet");
            let task = {
                let (slot, outcome) = (Arc::clone(&slot), Arc::clone(&outcome));
                thread::spawn(move || slot.finish(outcome))
            };
            slot.drop_handle();
            task.join().unwrap();
            assert_eq!(
                Arc::strong_count(&outcome),
                1,
                "the outcome was dropped once"
            );
            assert_eq!(Arc::strong_count(&waker), 1, "the waker was dropped once");
        });
    }

    /// The task delivering while the handle is polled: the handle gets the outcome at
    /// once, or its waker is woken; never neither.
    #[test]
    fn a_delivery_racing_a_poll_is_never_missed() {
        loom::model(|| {
            let slot = Slot::new();
            let waker = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let task = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.finish(Arc::new(())))
            };
            let got = slot.poll(&waker);
            task.join().unwrap();
            assert!(
                got.is_some() || waker.load(Ordering::Acquire),
                "a wake was lost"
            );
            if got.is_none() {
                assert!(
                    slot.poll(&waker).is_some(),
                    "woken, the handle finds the outcome"
                );
            }
            slot.drop_handle();
        });
    }

    /// The handle polled again (it compares wakers) while the task delivers: it never
    /// reads the waker cell while the task may be taking it (the attack found that
    /// read, when it was done with `JOIN_WAKER` set), and the outcome is not missed.
    #[test]
    fn a_delivery_racing_a_second_poll_is_never_missed() {
        loom::model(|| {
            let slot = Slot::new();
            let waker = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            assert!(slot.poll(&waker).is_none(), "nothing was delivered yet");
            let task = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.finish(Arc::new(())))
            };
            let got = slot.poll_again(&waker);
            task.join().unwrap();
            assert!(
                got.is_some() || waker.load(Ordering::Acquire),
                "a wake was lost"
            );
            if got.is_none() {
                assert!(slot.poll_again(&waker).is_some());
            }
            slot.drop_handle();
            assert_eq!(Arc::strong_count(&waker), 1, "the stored waker was dropped");
        });
    }

    /// Without an abort: what a thread did before its wake is seen by a poll that
    /// starts after the wake, whichever way the wake and the poll interleave.
    #[test]
    fn a_wake_racing_a_poll_is_never_lost() {
        loom::model(|| {
            let task = Task::new();
            let message = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let waker_thread = {
                let (task, message) = (Arc::clone(&task), Arc::clone(&message));
                thread::spawn(move || {
                    message.store(true, Ordering::Relaxed);
                    task.queue_if(task.state.wake().needs_queueing());
                })
            };
            let mut seen = false;
            let mut poll_all = || {
                while task.take_entry() {
                    task.state.start_poll();
                    seen = message.load(Ordering::Relaxed);
                    task.queue_if(task.state.end_poll().is_scheduled());
                }
            };
            poll_all();
            waker_thread.join().unwrap();
            poll_all();
            assert!(seen, "the last poll saw what the wake announced");
        });
    }
}
