//! The wait watchdog: says what the executor cannot see when it has been parked too
//! long with no deadlock it can prove.
//!
//! **Step 5** needs it. The deadlock detector is a claim of certainty: when a pending
//! task's waker is held where the executor cannot follow it (another thread, a task of
//! another executor, a lock held outside any task), a wake may still come, so it says
//! nothing. But a wait may also never end: a nested `block_on` waiting on a task of
//! the executor suspended beneath it on the same thread, a lock held by the very
//! thread that waits for it. Without this watch such a program hangs in silence. With
//! it ([`ExecutorBuilder::wait_watchdog`](super::ExecutorBuilder::wait_watchdog)), an
//! executor parked longer than the threshold with no timer pending reports
//! [`Diagnostic::NoWakeInSight`](crate::diagnostics::Diagnostic::NoWakeInSight), once
//! for each quiet spell: what it cannot see, and that it cannot tell.
//!
//! No thread is needed: the executor parks with the end of the threshold as its
//! deadline, and looks when it wakes. Time is the real clock's, whatever the
//! executor's clock: the wait is for another thread, which a manual clock does not move.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// One executor's wait watchdog, on its own thread.
pub(super) struct WaitWatch {
    threshold: Duration,
    /// When the current quiet spell began: the first undecided park since the last poll.
    quiet_since: Cell<Option<Instant>>,
    /// Whether this spell was reported already.
    reported: Cell<bool>,
}

impl WaitWatch {
    pub(super) fn new(threshold: Duration) -> WaitWatch {
        WaitWatch {
            threshold,
            quiet_since: Cell::new(None),
            reported: Cell::new(false),
        }
    }

    /// A task was polled: the quiet spell, if any, is over.
    pub(super) fn progress(&self) {
        self.quiet_since.set(None);
        self.reported.set(false);
    }

    /// The executor is about to park undecided at `now`: the deadline to park until,
    /// so that it wakes to report, or `None` once this spell was reported.
    pub(super) fn park_deadline(&self, now: Instant) -> Option<Instant> {
        let since = self.quiet_since.get().unwrap_or(now);
        self.quiet_since.set(Some(since));
        (!self.reported.get()).then(|| since + self.threshold)
    }

    /// The executor woke at `now` from an undecided park: how long the spell has
    /// lasted, if that is past the threshold and not reported yet (it is then counted
    /// as reported).
    pub(super) fn overdue(&self, now: Instant) -> Option<Duration> {
        let waited = now.duration_since(self.quiet_since.get()?);
        if self.reported.get() || waited < self.threshold {
            return None;
        }
        self.reported.set(true);
        Some(waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_spell_is_reported_once_after_the_threshold_and_again_after_progress() {
        let watch = WaitWatch::new(Duration::from_secs(1));
        let start = Instant::now();
        let deadline = watch.park_deadline(start);
        assert_eq!(deadline, Some(start + Duration::from_secs(1)));
        // A spurious wake before the threshold: not yet, and the spell keeps its start.
        assert_eq!(watch.overdue(start + Duration::from_millis(10)), None);
        assert_eq!(
            watch.park_deadline(start + Duration::from_millis(10)),
            deadline
        );
        let late = start + Duration::from_millis(1500);
        assert_eq!(watch.overdue(late), Some(Duration::from_millis(1500)));
        assert_eq!(watch.overdue(late), None, "once a spell");
        assert_eq!(
            watch.park_deadline(late),
            None,
            "reported: park with no deadline"
        );
        watch.progress();
        assert_eq!(watch.overdue(late), None, "no spell after a poll");
        assert_eq!(
            watch.park_deadline(late),
            Some(late + Duration::from_secs(1))
        );
    }
}
