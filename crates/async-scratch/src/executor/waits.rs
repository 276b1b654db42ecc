//! The wait graph: which task waits for which, as far as the executor can know.
//!
//! **Step 5** introduced it. When a task waits on one of our own primitives (awaits a
//! `JoinHandle`, queues for an async `Mutex`), the primitive registers the wait in the
//! task's header, and withdraws it when the wait ends or is dropped: one record per
//! registration. From these records the executor names a wait cycle the moment it
//! closes, describes what each stuck task waits for, and tells a deadlock it can be
//! certain of from a wait whose other side it cannot see (a task of another executor,
//! a lock held by a plain thread): of those it says nothing rather than cry wolf.

use super::task::{current_task, TaskHandle, TaskHeader};
use crate::diagnostics::{Diagnostic, StuckTask, TaskId};
use crate::locking::lock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

impl TaskHeader {
    /// Wakers of this task held anywhere but in our own primitives' known waits.
    pub(super) fn outside_wakers(&self) -> u32 {
        let live = u32::try_from(self.state.load().wakers()).unwrap_or(u32::MAX);
        live.saturating_sub(self.internal_waits.load(Ordering::Acquire))
    }

    pub(super) fn lock_waits_on(&self) -> MutexGuard<'_, Vec<WaitRecord>> {
        lock(&self.waits_on)
    }

    /// The task and what it waits for, in words.
    pub(super) fn stuck(&self) -> StuckTask {
        let waits = self.lock_waits_on();
        let described: Vec<String> = waits.iter().map(|wait| wait.target.describe()).collect();
        StuckTask {
            task: self.info(),
            waits_for: (!described.is_empty()).then(|| described.join("; and ")),
        }
    }

    /// Whether this task waits on something that can end without any task of this
    /// executor running: a task of another executor, or a lock held outside this
    /// executor's tasks (by a plain thread, or a task of another executor). Such a
    /// wait is never part of a certain deadlock: the executor cannot see the other
    /// side, so it says nothing rather than cry wolf.
    pub(super) fn waits_beyond_this_executor(&self) -> bool {
        let waits = self.lock_waits_on();
        waits.iter().any(|wait| match wait.target.task() {
            Some(task) => !Arc::ptr_eq(&task.header().shared, &self.shared),
            None => true, // a lock held outside any task
        })
    }

    /// The task this one waits for, through its latest known wait (the one a wait
    /// cycle is followed through).
    pub(super) fn waits_for_task(&self) -> Option<Arc<dyn TaskHandle>> {
        self.lock_waits_on()
            .last()
            .and_then(|wait| wait.target.task())
    }
}

/// What a task waits for, when it waits on one of our own primitives.
pub(crate) enum WaitTarget {
    /// The outcome of another task (awaiting its `JoinHandle`).
    Task(Arc<dyn TaskHandle>),
    /// An async mutex, and through it whoever holds it.
    Lock(Arc<LockRecord>),
}

/// What the executor may know of an async mutex: its name, and which task holds it.
pub(crate) struct LockRecord {
    pub(crate) name: Option<Box<str>>,
    pub(crate) holder: Mutex<Option<Arc<dyn TaskHandle>>>,
}

impl LockRecord {
    pub(super) fn holder(&self) -> Option<Arc<dyn TaskHandle>> {
        lock(&self.holder).clone()
    }
}

impl WaitTarget {
    pub(super) fn task(&self) -> Option<Arc<dyn TaskHandle>> {
        match self {
            WaitTarget::Task(task) => Some(Arc::clone(task)),
            WaitTarget::Lock(lock) => lock.holder(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            WaitTarget::Task(task) => format!("awaits the result of {}", task.header().info()),
            WaitTarget::Lock(lock) => {
                let name = lock
                    .name
                    .as_deref()
                    .map_or("a mutex".to_string(), |n| format!("mutex '{n}'"));
                match lock.holder() {
                    Some(holder) => format!("waits for {name}, held by {}", holder.header().info()),
                    None => format!("waits for {name}, held outside any task"),
                }
            }
        }
    }
}

/// One known wait of a task, in its header.
pub(super) struct WaitRecord {
    /// Which registration made it, so that it alone is withdrawn.
    pub(super) registration: u64,
    pub(super) target: WaitTarget,
}

/// A known wait, registered while a task's waker sits in one of our primitives:
/// the task's wait record is there while it lives, and withdrawn when it is dropped.
pub(crate) struct WaitRegistration {
    pub(super) task: Arc<dyn TaskHandle>,
    pub(super) number: u64,
}

/// Registers that the current task waits on `target`, if `waker` is its own waker (a
/// wait behind another waker, such as a `join_all` child's, stays unknown: an "outside"
/// waker, so never taken for a deadlock). Reports a wait cycle if this closes one.
pub(crate) fn register_wait(waker: &Waker, target: WaitTarget) -> Option<WaitRegistration> {
    let task = current_task()?;
    if !task.is_own_waker(waker) || !task.header().shared.keeps_books {
        return None;
    }
    /// Numbers the registrations: unique, so a record names the one that made it.
    static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(0);
    let number = NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed);
    let header = task.header();
    header.internal_waits.fetch_add(1, Ordering::AcqRel);
    header.lock_waits_on().push(WaitRecord {
        registration: number,
        target,
    });
    if let Some(cycle) = wait_cycle_through(header) {
        header.shared.report_later(Diagnostic::WaitCycle { cycle });
    }
    Some(WaitRegistration { task, number })
}

impl Drop for WaitRegistration {
    fn drop(&mut self) {
        let header = self.task.header();
        // Taken out under the lock, dropped after it: a record holds `Arc`s of tasks.
        let withdrawn = {
            let mut waits = header.lock_waits_on();
            let mine = waits
                .iter()
                .position(|wait| wait.registration == self.number);
            mine.map(|index| waits.remove(index))
        };
        drop(withdrawn);
        header.internal_waits.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Follows "waits for" from `start`; if the chain comes back to it, returns the cycle.
/// The walk stops at the first task seen twice, so a cycle elsewhere on the chain (one
/// that `start` waits on but is not part of) ends it too; tasks are described only once
/// a cycle through `start` is found.
pub(super) fn wait_cycle_through(start: &TaskHeader) -> Option<Vec<StuckTask>> {
    let mut chain: Vec<Arc<dyn TaskHandle>> = Vec::new();
    let mut next = start.waits_for_task();
    while let Some(task) = next {
        let header = task.header();
        if std::ptr::eq(header, start) {
            let rest = chain.iter().map(|task| task.header().stuck());
            return Some(std::iter::once(start.stuck()).chain(rest).collect());
        }
        if chain.iter().any(|seen| std::ptr::eq(seen.header(), header)) {
            return None; // a cycle, but not through `start`
        }
        next = header.waits_for_task();
        chain.push(task);
    }
    None
}

/// Every wait cycle through `headers`, each once (whichever task it is found from).
pub(super) fn distinct_cycles(headers: &[&TaskHeader]) -> Vec<Vec<StuckTask>> {
    let mut seen: Vec<Vec<TaskId>> = Vec::new();
    let mut cycles = Vec::new();
    for header in headers {
        let Some(cycle) = wait_cycle_through(header) else {
            continue;
        };
        let mut members: Vec<TaskId> = cycle.iter().map(|stuck| stuck.task.id).collect();
        members.sort_by_key(|id| (id.index, id.generation));
        if !seen.contains(&members) {
            seen.push(members);
            cycles.push(cycle);
        }
    }
    cycles
}
