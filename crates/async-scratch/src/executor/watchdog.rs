//! The stall watchdog on the executor: a thread that reports a poll holding the
//! executor's thread too long, while it still holds it.
//!
//! **Step 5** introduced it (a blocking call inside a task stalls every other task).
//! Off by default: see [`ExecutorBuilder::stall_watchdog`](super::ExecutorBuilder::stall_watchdog).
//! The records and the watchdog thread are the crate's `stall_watch`, which the
//! runtime of step 7 uses too; here is what is the executor's own: its one thread is
//! slot 0, and a report goes to its reporter.

use super::shared::Shared;
use super::task::TaskHeader;
use crate::diagnostics::Diagnostic;
use crate::stall_watch::{self, Stall};
use std::sync::Arc;
use std::thread::JoinHandle as ThreadHandle;

/// The executor's one polling thread, in the watch's slots.
const EXECUTOR_SLOT: usize = 0;

impl Shared {
    /// Notes the start of a poll for the watchdog (when it is on). Inlined: with the
    /// watchdog off, which is the default, a poll should pay one branch, not a call.
    #[inline]
    pub(super) fn poll_started(&self, header: &TaskHeader) {
        if let Some(watch) = &self.watch {
            watch.poll_started(EXECUTOR_SLOT, header.info());
        }
    }

    /// Notes the end of a poll; reports it if it held the thread too long. Inlined, as
    /// `poll_started` is.
    #[inline]
    pub(super) fn poll_ended(&self) {
        let Some(watch) = &self.watch else { return };
        if let Some(stall) = watch.poll_ended(EXECUTOR_SLOT) {
            self.report(&stall_diagnostic(stall));
        }
    }
}

/// A stall as the executor reports it: the executor's thread, no worker.
fn stall_diagnostic(stall: Stall) -> Diagnostic {
    Diagnostic::Stall {
        task: stall.task,
        held: stall.held,
        still_running: stall.still_running,
        worker: None,
    }
}

/// The watchdog thread: looks at the poll in progress every quarter threshold, and
/// reports one that has run past the threshold, once, while it still runs.
pub(super) fn start_watchdog(shared: &Arc<Shared>) -> Option<ThreadHandle<()>> {
    let watch = shared.watch.clone()?;
    let shared = Arc::clone(shared);
    let thread = stall_watch::start_watchdog(watch, move |stall| {
        shared.report(&stall_diagnostic(stall));
    });
    Some(thread.expect("cannot start the stall watchdog thread"))
}
