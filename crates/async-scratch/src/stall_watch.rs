//! The stall watchdog's core: which poll each polling thread is in and since when, and
//! a thread that looks at them every quarter threshold.
//!
//! Not a step of its own: **step 5** introduced the stall watchdog on the one-thread
//! executor (one thread that polls: one slot), and **step 7** puts it on the runtime
//! (one slot per worker, so that a report names the worker). What is the same in both
//! is here, written once: the records, the threshold test, the "reported once while
//! it runs" mark, and the watchdog thread. What differs (what a task's info is, where
//! a report goes) stays with each of them (`executor::watchdog`, `runtime::watchdog`).

use crate::diagnostics::TaskInfo;
use crate::locking::lock;
use crate::time::Clock;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The poll each polling thread is in, for the watchdog thread to look at.
pub(crate) struct StallWatch {
    threshold: Duration,
    /// The poller's clock: with a [`ManualClock`](crate::time::ManualClock), a poll
    /// lasts only the time a test advances the clock by inside it, so a test of healthy
    /// work is quiet however slow or busy the machine is.
    clock: Clock,
    /// One slot per polling thread (the executor's one, or each worker's, by index).
    slots: Box<[Mutex<Option<PollRecord>>]>,
    /// Set when the owner goes: the watchdog thread then ends.
    stop: AtomicBool,
}

struct PollRecord {
    task: TaskInfo,
    started: Instant,
    /// The watchdog has reported this poll already.
    reported: bool,
}

/// A poll that held its thread longer than the threshold.
pub(crate) struct Stall {
    /// Which slot: the executor's 0, or the worker's index.
    pub(crate) slot: usize,
    pub(crate) task: TaskInfo,
    pub(crate) held: Duration,
    /// Found by the watchdog while the poll had not returned yet.
    pub(crate) still_running: bool,
}

impl StallWatch {
    /// A watch over `slots` polling threads; `threshold` is above zero (the builders
    /// refuse zero: the watchdog thread would spin).
    pub(crate) fn new(threshold: Duration, clock: Clock, slots: usize) -> StallWatch {
        debug_assert!(
            !threshold.is_zero(),
            "a zero threshold makes the watchdog spin"
        );
        StallWatch {
            threshold,
            clock,
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
            stop: AtomicBool::new(false),
        }
    }

    /// Notes that the thread of `slot` starts polling `task`.
    pub(crate) fn poll_started(&self, slot: usize, task: TaskInfo) {
        *lock(&self.slots[slot]) = Some(PollRecord {
            task,
            started: self.clock.now(),
            reported: false,
        });
    }

    /// Notes that the poll in `slot` returned; gives it back as a stall if it held its
    /// thread longer than the threshold (whether or not the watchdog said so already:
    /// this report has the whole time).
    pub(crate) fn poll_ended(&self, slot: usize) -> Option<Stall> {
        let record = lock(&self.slots[slot]).take()?;
        let held = self.held_since(record.started);
        (held > self.threshold).then_some(Stall {
            slot,
            task: record.task,
            held,
            still_running: false,
        })
    }

    /// How long the poll that started at `started` has held its thread, on the clock.
    fn held_since(&self, started: Instant) -> Duration {
        self.clock.now().saturating_duration_since(started)
    }

    /// The polls still running past the threshold and not reported yet; each is marked
    /// reported, so that the watchdog says it once per poll.
    fn overdue(&self) -> Vec<Stall> {
        let mut stalls = Vec::new();
        for (slot, current) in self.slots.iter().enumerate() {
            let mut current = lock(current);
            let Some(record) = current.as_mut().filter(|record| !record.reported) else {
                continue;
            };
            let held = self.held_since(record.started);
            record.reported = held > self.threshold;
            if record.reported {
                stalls.push(Stall {
                    slot,
                    task: record.task.clone(),
                    held,
                    still_running: true,
                });
            }
        }
        stalls
    }
}

/// The least time between two looks of the watchdog. A threshold of a few nanoseconds
/// is allowed (only zero is refused), and a quarter of it rounds to zero: without a
/// floor the watchdog would spin, taking a core (a third of one, measured on the 2-core
/// VM with a 1 ns threshold and an idle runtime). A millisecond keeps the reports of
/// such a threshold prompt, and costs nothing to any threshold over 4 ms.
const MIN_LOOK_INTERVAL: Duration = Duration::from_millis(1);

/// How long the watchdog waits between two looks: a quarter threshold, so that a stall
/// is reported at most a quarter late, but never less than [`MIN_LOOK_INTERVAL`].
fn look_interval(threshold: Duration) -> Duration {
    (threshold / 4).max(MIN_LOOK_INTERVAL)
}

/// Starts the watchdog thread: every quarter threshold (see [`look_interval`]) it looks
/// at every slot of `watch`, and hands each poll running past the threshold to
/// `report`, once, outside the slots' locks. It runs until [`stop_watchdog`].
pub(crate) fn start_watchdog(
    watch: Arc<StallWatch>,
    report: impl Fn(Stall) + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("async-scratch-watchdog".to_string())
        .spawn(move || {
            while !watch.stop.load(Ordering::Acquire) {
                thread::park_timeout(look_interval(watch.threshold));
                for stall in watch.overdue() {
                    report(stall);
                }
            }
        })
}

/// Stops the watchdog thread of `watch` and joins it.
pub(crate) fn stop_watchdog(watch: &StallWatch, thread: JoinHandle<()>) {
    watch.stop.store(true, Ordering::Release);
    thread.thread().unpark();
    // The reporter's panics are caught by the report functions: a panic here is the
    // watchdog's own bug, and the owner's drop must not panic in its turn.
    let _ = thread.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A threshold of a few nanoseconds would make the watchdog look without pause; a
    /// usual one keeps its quarter.
    #[test]
    fn the_watchdog_never_looks_without_a_pause() {
        assert_eq!(look_interval(Duration::from_nanos(1)), MIN_LOOK_INTERVAL);
        assert_eq!(look_interval(Duration::from_nanos(3)), MIN_LOOK_INTERVAL);
        assert_eq!(
            look_interval(Duration::from_millis(100)),
            Duration::from_millis(25)
        );
        assert_eq!(look_interval(Duration::MAX), Duration::MAX / 4);
    }
}
