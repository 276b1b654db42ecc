//! The current executor: which executor's `block_on` runs on this thread, so that the
//! free functions ([`spawn`](super::spawn), [`block_on`](super::block_on)'s tasks) find
//! it, and so that a nested `block_on` on the same executor is refused.

use super::task::Runnable;
use super::Core;
use crate::time::{use_timers, TimersInUse};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

thread_local! {
    /// The executor whose `block_on` is running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Queues `task` on the executor running on this thread, if it is the task's own: a
/// wake from inside the executor (a task waking itself or another, a timer firing, a
/// reactor's ready socket) then needs no lock and no unpark, since the executor is
/// running right here. Gives the task back otherwise.
pub(super) fn queue_here(task: Runnable) -> Option<Runnable> {
    let mut task = Some(task);
    let _ = CURRENT.try_with(|current| {
        let Ok(current) = current.try_borrow() else {
            return;
        };
        let Some(core) = current.as_ref() else { return };
        if !task
            .as_ref()
            .is_some_and(|task| task.owner.is(&*core.shared))
        {
            return; // another executor's task
        }
        // A statement, not the closure's value: its borrow ends before `current`'s.
        let Ok(mut local) = core.spawned.try_borrow_mut() else {
            return;
        };
        local.extend(task.take());
    });
    task
}

pub(super) fn current() -> Option<Rc<Core>> {
    // `try_with`: during thread teardown the thread-local may be gone; that is "none".
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Marks an executor as running on this thread for as long as it lives, and restores
/// what was there before when dropped, even by a panic.
pub(super) struct RunGuard {
    pub(super) core: Rc<Core>,
    pub(super) previous: Option<Rc<Core>>,
    /// This executor's timers, in use by `sleep` and `timeout` on this thread.
    pub(super) _timers: TimersInUse,
}

impl RunGuard {
    pub(super) fn enter(core: &Rc<Core>) -> RunGuard {
        assert!(
            !core.running.get(),
            "Executor::block_on was called from inside one of its own tasks; \
             that would block the thread its tasks run on (await the future instead)"
        );
        core.running.set(true);
        let previous = CURRENT.with(|current| current.replace(Some(Rc::clone(core))));
        RunGuard {
            core: Rc::clone(core),
            previous,
            _timers: use_timers(core.clock.clone(), Arc::clone(&core.timers)),
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.core.running.set(false);
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}
