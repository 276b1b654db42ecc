//! The stall watchdog: a thread that reports a poll holding the executor's thread too
//! long, while it still holds it.
//!
//! **Step 5** introduced it (a blocking call inside a task stalls every other task).
//! Off by default: see [`ExecutorBuilder::stall_watchdog`](super::ExecutorBuilder::stall_watchdog).

use super::shared::Shared;
use super::task::TaskHeader;
use crate::diagnostics::{Diagnostic, TaskInfo};
use crate::locking::lock;
use crate::time::Clock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle as ThreadHandle};
use std::time::{Duration, Instant};

/// What the stall watchdog sees of the executor: the poll in progress.
pub(super) struct StallWatch {
    pub(super) threshold: Duration,
    /// The executor's own clock: with a [`ManualClock`](crate::time::ManualClock), a
    /// poll lasts only the time a test advances the clock by inside it, so a test of
    /// healthy work is quiet however slow or busy the machine is.
    pub(super) clock: Clock,
    pub(super) current: Mutex<Option<PollRecord>>,
    /// Set when the executor is dropped: the watchdog thread then ends.
    pub(super) stop: AtomicBool,
}

pub(super) struct PollRecord {
    pub(super) task: TaskInfo,
    pub(super) started: Instant,
    /// The watchdog has reported this poll already.
    pub(super) reported: bool,
}

impl StallWatch {
    pub(super) fn lock(&self) -> MutexGuard<'_, Option<PollRecord>> {
        lock(&self.current)
    }

    /// How long the poll that started at `started` has held the thread, on the clock.
    pub(super) fn held_since(&self, started: Instant) -> Duration {
        self.clock.now().saturating_duration_since(started)
    }
}

impl Shared {
    /// Notes the start of a poll for the watchdog (when it is on).
    pub(super) fn poll_started(&self, header: &TaskHeader) {
        if let Some(watch) = &self.watch {
            *watch.lock() = Some(PollRecord {
                task: header.info(),
                started: watch.clock.now(),
                reported: false,
            });
        }
    }

    /// Notes the end of a poll; reports it if it held the thread too long.
    pub(super) fn poll_ended(&self) {
        let Some(watch) = &self.watch else { return };
        let Some(record) = watch.lock().take() else {
            return;
        };
        let held = watch.held_since(record.started);
        if held > watch.threshold {
            self.report(&Diagnostic::Stall {
                task: record.task,
                held,
                still_running: false,
            });
        }
    }
}

/// The watchdog thread: looks at the poll in progress every quarter threshold, and
/// reports one that has run past the threshold, once, while it still runs.
pub(super) fn start_watchdog(shared: &Arc<Shared>) -> ThreadHandle<()> {
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("async-scratch-watchdog".to_string())
        .spawn(move || {
            let Some(watch) = &shared.watch else { return };
            while !watch.stop.load(Ordering::Acquire) {
                thread::park_timeout(watch.threshold / 4);
                let stalled = {
                    let mut current = watch.lock();
                    match current.as_mut() {
                        Some(record) if !record.reported => {
                            let held = watch.held_since(record.started);
                            record.reported = held > watch.threshold;
                            record.reported.then(|| (record.task.clone(), held))
                        }
                        _ => None,
                    }
                };
                if let Some((task, held)) = stalled {
                    shared.report(&Diagnostic::Stall {
                        task,
                        held,
                        still_running: true,
                    });
                }
            }
        })
        .expect("cannot start the stall watchdog thread")
}
