//! Diagnostics: deadlocks, lost wakers, wait cycles and stalls, found by the executor
//! and explained in words.
//!
//! **Step 5** introduces it. A coroutine that can never be woken does not crash: it just
//! never runs again, and the program hangs without a word. Because the executor and
//! its wakers are ours, it can *see* that happen:
//!
//! - **Deadlock.** Nothing is ready, no timer is pending, and no waker of any pending
//!   task is held outside the executor's own primitives: nothing can ever wake anything.
//!   [`Executor::try_block_on`](crate::executor::Executor::try_block_on) returns a
//!   [`Deadlock`] naming every stuck task and what it waits for (and `block_on` panics
//!   with it), where other runtimes hang. Go's runtime does the same for goroutines
//!   ("all goroutines are asleep - deadlock!"). A [`Runtime`](crate::runtime::Runtime)
//!   of step 7 reports it as [`Diagnostic::Deadlock`], once every worker is idle.
//! - **Lost task.** Each task counts its live wakers (the waker vtable tells it of every
//!   clone and drop). A pending task whose last waker is dropped can never run again:
//!   reported at once, even while other tasks keep the executor busy.
//! - **Wait cycle.** Waits on our async [`Mutex`](crate::mutex::Mutex) and on
//!   `JoinHandle`s are recorded (task → lock holder, task → awaited task), so a cycle is
//!   reported with its tasks in order, the moment it closes, like a database's
//!   lock-wait graph.
//! - **Waits on I/O.** A task waiting on a socket ([step 6](crate::net)) is recorded
//!   as waiting on I/O, with the descriptor and the direction: listed in the reports
//!   ("waits on I/O: fd 7, readable"), and never called deadlocked, as the reactor
//!   holds its waker and the kernel decides when it fires.
//! - **Caught panic.** A panic in user code that nobody waits to be handed (a waker's
//!   `wake`, the `Drop` of a detached task's output) is caught and reported; the runtime
//!   carries on (see the executor's doc for where user code runs, and what catches it).
//! - **Stall.** With the watchdog on ([`ExecutorBuilder::stall_watchdog`]), a poll that
//!   holds the thread longer than a threshold is reported, by a watchdog thread if the
//!   poll never returns.
//! - **No wake in sight.** With the wait watchdog on
//!   ([`ExecutorBuilder::wait_watchdog`]), an executor parked longer than a threshold
//!   with no task ready and no timer pending, and no deadlock it can prove, says what
//!   it cannot see: the waits whose other side is beyond it (a task of another
//!   executor, a lock held outside any task) and the wakers held where it cannot
//!   follow them. Not a claim of deadlock: it cannot tell whether a wake will come,
//!   and says so, rather than hang in silence.
//!
//! Reports go to a [`Reporter`]; the default prints each on standard error.
//!
//! [`ExecutorBuilder::stall_watchdog`]: crate::executor::ExecutorBuilder::stall_watchdog
//! [`ExecutorBuilder::wait_watchdog`]: crate::executor::ExecutorBuilder::wait_watchdog

use crate::unwind::into_message;
use std::fmt;
use std::panic::Location;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Names a task in its executor: a slab index, and the generation of that slot, so a
/// stale id (a wake after the task ended and its slot was reused) matches nothing.
///
/// A task of the multi-threaded [`runtime`](crate::runtime) has no slot: its id is its
/// number among the runtime tasks spawned in the process, never reused (the index holds
/// its low 32 bits and the generation the high ones, zero for the first four billion).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl TaskId {
    pub(crate) const fn new(index: u32, generation: u32) -> TaskId {
        TaskId { index, generation }
    }

    /// A runtime task's id, from its number (see the type's doc).
    pub(crate) const fn from_runtime(number: u64) -> TaskId {
        // Truncations on purpose: the number split in its two halves.
        TaskId::new(number as u32, (number >> 32) as u32)
    }

    /// A runtime task's number, whole again (see `from_runtime`).
    pub(crate) const fn runtime_number(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// The task's slot in its executor (small numbers, reused after a task ends); for
    /// a runtime task, its number (low 32 bits).
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// Where a spawned task came from, for diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's id in its executor.
    pub id: TaskId,
    /// The name given with `spawn_named`, if any.
    pub name: Option<String>,
    /// Where `spawn` was called.
    pub spawned_at: &'static Location<'static>,
}

/// Something the executor noticed while running.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// A poll held the executor's thread for `held` (and, if `still_running`, had not
    /// returned yet when reported).
    Stall {
        /// The task whose poll it was.
        task: TaskInfo,
        /// How long the poll had held the thread.
        held: Duration,
        /// True when reported by the watchdog while the poll was still running.
        still_running: bool,
        /// The runtime worker whose thread the poll held (by index, as
        /// [`current_worker`](crate::runtime::current_worker) says); `None` on the
        /// one-thread executor.
        worker: Option<usize>,
    },
    /// A pending task lost its last waker: nothing can ever wake it again.
    LostTask {
        /// The task.
        task: TaskInfo,
    },
    /// Tasks wait on each other in a cycle (through our async mutex or join handles).
    WaitCycle {
        /// Each task of the cycle and what it waits for; the last waits for the first.
        cycle: Vec<StuckTask>,
    },
    /// User code panicked where no one waits to be handed the panic (a waker's `wake`,
    /// the `Drop` of an output nobody will take): the runtime caught it and went on.
    CaughtPanic {
        /// The task it concerns, when there is one.
        task: Option<TaskInfo>,
        /// Where the panic happened, in words: "a waker's wake", …
        place: &'static str,
        /// The panic's message.
        message: String,
    },
    /// A runtime found every worker idle, no timer pending, no socket registered, no
    /// blocking job running, and every pending task stuck for good: no waker of any of
    /// them is held anywhere but in waits on each other. (The one-thread executor
    /// returns the same [`Deadlock`] from `try_block_on` instead.) Reported once for
    /// each stuck spell.
    Deadlock(Deadlock),
    /// The executor has been parked for `waited` with no task ready and no timer
    /// pending, and cannot prove a deadlock: the tasks in `tasks` wait on something it
    /// cannot see. Not a deadlock report: it cannot tell whether a wake will come.
    NoWakeInSight {
        /// How long the executor had been parked when it reported.
        waited: Duration,
        /// Each pending task with a wait the executor cannot see, `block_on`'s own
        /// future first; `waits_for` says what it cannot see.
        tasks: Vec<StuckTask>,
    },
}

/// A task that waits, and on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckTask {
    /// The task.
    pub task: TaskInfo,
    /// What it waits for, in words, when the executor knows (a mutex, another task).
    pub waits_for: Option<String>,
}

/// Every pending task when the executor found that nothing could ever wake any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlock {
    /// Every pending task, `block_on`'s own future first.
    pub tasks: Vec<StuckTask>,
    /// The wait cycles among them, if any.
    pub cycles: Vec<Vec<StuckTask>>,
}

impl std::error::Error for Deadlock {}

/// Where diagnostics go: called on the executor's thread, or on the watchdog's for a
/// poll that does not return.
pub type Reporter = Arc<dyn Fn(&Diagnostic) + Send + Sync>;

/// Hands `diagnostic` to `reporter`: user code, so a panic in it is caught (and said
/// on standard error, the one place left), never let loose in the executor or a
/// runtime worker.
pub(crate) fn report_to(reporter: &Reporter, diagnostic: &Diagnostic) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| reporter(diagnostic))) {
        eprintln!(
            "async-scratch: the diagnostic reporter panicked ('{}') on: {diagnostic}",
            into_message(payload)
        );
    }
}

/// The default [`Reporter`]: one paragraph on standard error per diagnostic.
pub fn print_to_stderr() -> Reporter {
    Arc::new(|diagnostic: &Diagnostic| eprintln!("async-scratch: {diagnostic}"))
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "task '{name}'")?,
            None => write!(f, "task #{}", self.id.index())?,
        }
        write!(f, " (spawned at {})", self.spawned_at)
    }
}

impl fmt::Display for StuckTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.task)?;
        match &self.waits_for {
            Some(waits_for) => write!(f, ": {waits_for}"),
            None => write!(f, ": waits on something no waker is left for"),
        }
    }
}

fn write_cycle(f: &mut fmt::Formatter<'_>, cycle: &[StuckTask]) -> fmt::Result {
    for stuck in cycle {
        writeln!(f, "    {stuck}")?;
    }
    if let Some(first) = cycle.first() {
        writeln!(f, "    ... and so back to {}", first.task)?;
    }
    Ok(())
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::Stall {
                task,
                held,
                still_running: true,
                worker: None,
            } => write!(
                f,
                "stall: {task} has held the executor's thread for {} and has not returned; \
                 every other task on this thread is stopped meanwhile (a blocking call in async code?)",
                Millis(*held)
            ),
            Diagnostic::Stall {
                task,
                held,
                worker: None,
                ..
            } => write!(
                f,
                "stall: {task} held the executor's thread for {} in one poll; \
                 every other task on this thread waited meanwhile (a blocking call in async code?)",
                Millis(*held)
            ),
            Diagnostic::Stall {
                task,
                held,
                still_running: true,
                worker: Some(worker),
            } => write!(
                f,
                "stall: {task} has held runtime worker {worker}'s thread for {} and has not \
                 returned; the tasks queued on that worker wait meanwhile, unless another \
                 worker steals them (a blocking call in async code? use spawn_blocking)",
                Millis(*held)
            ),
            Diagnostic::Stall {
                task,
                held,
                worker: Some(worker),
                ..
            } => write!(
                f,
                "stall: {task} held runtime worker {worker}'s thread for {} in one poll; \
                 the tasks queued on that worker waited meanwhile, unless another worker \
                 stole them (a blocking call in async code? use spawn_blocking)",
                Millis(*held)
            ),
            Diagnostic::LostTask { task } => write!(
                f,
                "lost task: {task} is pending, and the last waker for it was just dropped; \
                 nothing can ever wake it (a future returned Pending without keeping its waker?)"
            ),
            Diagnostic::WaitCycle { cycle } => {
                writeln!(f, "wait cycle: these tasks wait on each other and none can go on:")?;
                write_cycle(f, cycle)
            }
            Diagnostic::CaughtPanic {
                task,
                place,
                message,
            } => {
                write!(f, "caught panic: '{message}' in {place}")?;
                if let Some(task) = task {
                    write!(f, ", for {task}")?;
                }
                write!(f, "; the runtime caught it and carried on")
            }
            Diagnostic::Deadlock(deadlock) => write!(f, "{deadlock}"),
            Diagnostic::NoWakeInSight { waited, tasks } => {
                writeln!(
                    f,
                    "no wake in sight: parked for {} with no task ready and no timer pending; \
                     not a proven deadlock, for the executor cannot see what would wake:",
                    Millis(*waited)
                )?;
                for stuck in tasks {
                    writeln!(f, "  {stuck}")?;
                }
                write!(f, "  (it cannot tell whether a wake will come; if none does, this hangs)")
            }
        }
    }
}

/// A duration as people read a stall: `100.4 ms`.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} ms", self.0.as_secs_f64() * 1000.0)
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "deadlock: all {} tasks are asleep, no timer is pending, and no waker for any of them \
             is held anywhere else; nothing can ever wake them:",
            self.tasks.len()
        )?;
        for stuck in &self.tasks {
            writeln!(f, "  {stuck}")?;
        }
        for cycle in &self.cycles {
            writeln!(f, "  they wait on each other in a cycle:")?;
            write_cycle(f, cycle)?;
        }
        Ok(())
    }
}
