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
//!   interleaved by the runtime itself but possibly at the same time;
//! - a lost task (pending, not queued, not being polled, and no waker left for it
//!   anywhere) is found by whoever drops its last waker, from the word that count's
//!   decrement returns: the task core's state word holds the count and the flags
//!   together, so the one thread that takes the count to zero sees, in the same step,
//!   whether anything could still wake the task, and reports it at once. (The
//!   executor queues such a task to check it between polls, on its one thread.)
//! - a deadlock is looked for only when the whole runtime is idle, never after a
//!   single poll. Waits through our primitives are recorded for runtime tasks too
//!   (`executor::waits`), on whichever worker polls the waiting task; but the
//!   executor's per-poll cycle check reads the other tasks of a cycle one after
//!   another and trusts "idle" read a moment ago, which on many workers is not
//!   sound: another worker may be polling one of them meanwhile. So the runtime
//!   reports cycles from one place, the worker about to park (`worker`'s
//!   `look_for_deadlock`), and only when:
//!   - every worker is registered asleep, and none woke while the tasks were read
//!     (`Idle::all_asleep` marks the moment before and after): no task ran, so every
//!     change came from outside the workers, and each outside way to wake a task (a
//!     waker held elsewhere, a loose `JoinHandle`, a lock held by a plain thread) is
//!     one the task's own reading counts;
//!   - no task is queued (looked at after the tasks, as on the executor), no timer is
//!     pending, no socket is registered with the reactor, and no blocking job is
//!     queued or running;
//!   - every pending task, and the own future of every `block_on` running (a root
//!     task, as on the executor, so that a handle it awaits or a lock it holds is
//!     known), is stuck for good by the executor's rule (`waits::stuck_for_good`):
//!     not woken, not being polled, and every waker of it held by a known wait on
//!     another task of this runtime.
//!
//!   Then it reports [`Diagnostic::Deadlock`] with every stuck task and the cycles
//!   among them, once per stuck spell: a certain deadlock lasts for ever, so one
//!   with as many tasks as the last one reported is that one. Where it cannot tell, it
//!   says nothing; and a worker that parked undecided looks again when a waker or a
//!   handle goes, or a `block_on`'s poll ends pending, as the executor does.
//!   `block_on` itself does not panic on a deadlock, unlike the executor's: the proof
//!   is made on a worker, about tasks that other `block_on` threads may be waiting
//!   for too; the report is the answer, and the `block_on` waits on.
//!
//! Off, the watchdog costs one branch per poll: no clock read, no lock, no thread.
//! The deadlock check costs a parking worker one load when another worker is awake;
//! a task that never waits through our primitives pays nothing for it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::task::{Ran, Runnable};
use crate::diagnostics::{report_to as report, Deadlock, Diagnostic, Reporter};
use crate::executor::task::TaskHeader;
use crate::executor::waits::{distinct_cycles, stuck_for_good};
use crate::stall_watch::{self, Stall, StallWatch};
use crate::time::Clock;
use crate::unwind::{into_message, Payload};

/// What a runtime's workers share of its diagnostics.
pub(crate) struct Diagnostics {
    reporter: Reporter,
    /// Whether the books are kept: lost tasks reported, waits through our primitives
    /// recorded, deadlocks looked for (see
    /// [`Builder::diagnostics`](super::Builder::diagnostics)).
    pub(crate) keeps_books: bool,
    /// The poll each worker is in, when the stall watchdog is on.
    watch: Option<Arc<StallWatch>>,
    /// A worker parked, every other worker asleep, with tasks pending that it could
    /// not prove stuck: a waker (or handle) that goes may make the proof, and should
    /// send a worker to look again (see `look_again_if_undecided`).
    parked_undecided: AtomicBool,
    /// How many tasks the last deadlock reported held (`NO_SPELL` before the first).
    /// A certain deadlock lasts for ever: none of its tasks can go on, nor leave it
    /// (none has a handle left that could abort it). So a later look that finds as
    /// many stuck tasks finds the same ones: the same stuck spell, not reported again;
    /// one that finds more (a task or a `block_on` joined them) is reported anew.
    reported_spell: AtomicU64,
}

/// `reported_spell` before any deadlock.
const NO_SPELL: u64 = u64::MAX;

impl Diagnostics {
    /// `stall_threshold`: the watchdog's, if it is on (above zero: the builder checks).
    pub(crate) fn new(
        reporter: Reporter,
        stall_threshold: Option<Duration>,
        keeps_books: bool,
        workers: usize,
    ) -> Diagnostics {
        let watch = stall_threshold
            .map(|threshold| Arc::new(StallWatch::new(threshold, Clock::Real, workers)));
        Diagnostics {
            reporter,
            keeps_books,
            watch,
            parked_undecided: AtomicBool::new(false),
            reported_spell: AtomicU64::new(NO_SPELL),
        }
    }

    /// Says, before the pending tasks are read, that the worker looking will park
    /// undecided unless it proves a deadlock. Set before the reads, so that a waker
    /// released during them is not missed (it finds the flag, and a worker looks
    /// again), as the executor's `parked_undecided` is.
    pub(crate) fn about_to_read(&self) {
        self.parked_undecided.store(true, Ordering::SeqCst);
    }

    /// The worker that looked is awake again, or proved a deadlock: nobody waits
    /// undecided.
    pub(crate) fn decided(&self) {
        self.parked_undecided.store(false, Ordering::Relaxed);
    }

    /// Whether a worker parked undecided and should look again: at most once per
    /// undecided park (the flag is taken), so that a storm of waker drops wakes one
    /// worker. One load when no one parked undecided, the common case.
    pub(crate) fn should_look_again(&self) -> bool {
        self.parked_undecided.load(Ordering::SeqCst)
            && self.parked_undecided.swap(false, Ordering::SeqCst)
    }

    /// Reports `deadlock`, unless this stuck spell was reported already (see
    /// `reported_spell`).
    pub(crate) fn report_deadlock(&self, deadlock: Deadlock) {
        let spell = u64::try_from(deadlock.tasks.len()).unwrap_or(NO_SPELL);
        if self.reported_spell.swap(spell, Ordering::AcqRel) != spell {
            report(&self.reporter, &Diagnostic::Deadlock(deadlock));
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

/// Whether none of `tasks` can go on by anything but one another: each is idle (not
/// woken, not being polled, not over), and every waker of it (and its handle) is held
/// by a known wait on another task of this runtime (the executor's rule:
/// `waits::stuck_for_good`). Read one task after another: the caller makes sure that
/// no worker polled meanwhile. A `block_on`'s root, which its own thread polls, may
/// be in its poll, or over and about to go: either is a task that goes on.
pub(crate) fn all_stuck(tasks: &[Runnable]) -> bool {
    !tasks.is_empty() && tasks.iter().all(|task| stuck_for_good(task))
}

/// The deadlock of `tasks`, which [`all_stuck`] found stuck: each task and what it
/// waits for, and the wait cycles among them.
pub(crate) fn describe_deadlock(tasks: &[Runnable]) -> Deadlock {
    let headers: Vec<&TaskHeader> = tasks.iter().map(|task| task.header()).collect();
    Deadlock {
        tasks: headers.iter().map(|header| header.stuck()).collect(),
        cycles: distinct_cycles(&headers),
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
