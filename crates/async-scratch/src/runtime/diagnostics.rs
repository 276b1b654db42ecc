//! The runtime's diagnostics: where its reports go, and the stall watchdog on many
//! workers.
//!
//! Step 7 introduces it; the reports are step 5's (see [`diagnostics`](crate::diagnostics)).
//! What changed from the one-thread executor:
//!
//! - a stall holds one worker, not the whole runtime: the others go on, and may steal
//!   the tasks queued behind it. So the report names the worker as well as the task
//!   ([`Diagnostic::Stall`]'s `worker`), and the watch keeps one slot per worker (the
//!   crate's `stall_watch`, shared with the executor): a worker's poll is recorded in
//!   its own slot, and the watchdog thread looks at every slot;
//! - reports go straight to the reporter, from the thread that found them (a worker,
//!   the watchdog, a thread dropping a `JoinHandle`): the runtime has no one thread to
//!   hand them to, so its reporter is called from many threads, never two reports
//!   interleaved by the runtime itself but possibly at the same time.
//!
//! - a lost task (pending, not queued, not being polled, and no waker left for it
//!   anywhere) is found by whoever drops its last waker, from the word that count's
//!   decrement returns: the task core's state word holds the count and the flags
//!   together, so the one thread that takes the count to zero sees, in the same step,
//!   whether anything could still wake the task, and reports it at once. The executor
//!   queues such a task to check it between polls, because its waits' books need its
//!   one thread; a runtime keeps no wait books (it cannot follow waits across workers
//!   yet), and needs no second look.
//!
//! Off, the watchdog costs one branch per poll: no clock read, no lock, no thread.
//! Not here yet: the deadlock report (a wait cycle needs the wait books) on many
//! workers.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::task::{Ran, Runnable};
use crate::diagnostics::{report_to as report, Diagnostic, Reporter};
use crate::stall_watch::{self, Stall, StallWatch};
use crate::time::Clock;
use crate::unwind::{into_message, Payload};

/// What a runtime's workers share of its diagnostics.
pub(crate) struct Diagnostics {
    reporter: Reporter,
    /// Whether lost tasks are reported (see [`Builder::diagnostics`](super::Builder::diagnostics)).
    pub(crate) lost_tasks: bool,
    /// The poll each worker is in, when the stall watchdog is on.
    watch: Option<Arc<StallWatch>>,
}

impl Diagnostics {
    /// `stall_threshold`: the watchdog's, if it is on (above zero: the builder checks).
    pub(crate) fn new(
        reporter: Reporter,
        stall_threshold: Option<Duration>,
        lost_tasks: bool,
        workers: usize,
    ) -> Diagnostics {
        let watch = stall_threshold
            .map(|threshold| Arc::new(StallWatch::new(threshold, Clock::Real, workers)));
        Diagnostics {
            reporter,
            lost_tasks,
            watch,
        }
    }

    /// Hands `diagnostic` to the reporter.
    pub(crate) fn report(&self, diagnostic: &Diagnostic) {
        report(&self.reporter, diagnostic);
    }

    /// Runs `task` on worker `worker`; with the watchdog on, records the poll in the
    /// worker's slot, and reports it if it held the worker past the threshold.
    pub(crate) fn run_watched(&self, worker: usize, task: &Runnable) -> Ran {
        let Some(watch) = &self.watch else {
            return task.run();
        };
        watch.poll_started(worker, task.info());
        let ran = task.run();
        if let Some(stall) = watch.poll_ended(worker) {
            report(&self.reporter, &stall_diagnostic(stall));
        }
        ran
    }

    /// Starts the watchdog thread, if the watchdog is on.
    pub(crate) fn start_watchdog(&self) -> io::Result<Option<JoinHandle<()>>> {
        let Some(watch) = &self.watch else {
            return Ok(None);
        };
        let reporter = self.reporter.clone();
        let report_stall = move |stall| report(&reporter, &stall_diagnostic(stall));
        stall_watch::start_watchdog(watch.clone(), report_stall).map(Some)
    }

    /// Stops the watchdog thread and joins it.
    pub(crate) fn stop_watchdog(&self, thread: JoinHandle<()>) {
        if let Some(watch) = &self.watch {
            stall_watch::stop_watchdog(watch, thread);
        }
    }

    /// Reports a panic in user code that nobody waits to be handed (a timer's waker,
    /// woken or dropped).
    pub(crate) fn caught_panic(&self, place: &'static str, payload: Payload) {
        let message = into_message(payload);
        let diagnostic = Diagnostic::CaughtPanic {
            task: None,
            place,
            message,
        };
        report(&self.reporter, &diagnostic);
    }
}

/// A stall as the runtime reports it: with its worker.
fn stall_diagnostic(stall: Stall) -> Diagnostic {
    Diagnostic::Stall {
        task: stall.task,
        held: stall.held,
        still_running: stall.still_running,
        worker: Some(stall.slot),
    }
}
