//! A worker's local run queue: bounded, FIFO for its owner, and open to thieves, who
//! take half of it at once.
//!
//! Step 7 introduces it. The owner pushes the tasks its own tasks spawn or wake and
//! pops them in order; a worker with nothing to do steals half of another worker's
//! queue in one go, so that one steal balances the load instead of one task per steal.
//! When full, the owner moves half of its queue to the injector.
//!
//! This version keeps the tasks in a `VecDeque` behind a lock: simple and plainly
//! correct, the lock held only for a push, a pop or a steal.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::injector::Injector;
use super::task::{lock, Runnable};

/// How many tasks a local queue holds before half of them go to the injector.
pub(crate) const CAPACITY: usize = 256;

/// One worker's queue.
pub(crate) struct LocalQueue {
    tasks: Mutex<VecDeque<Runnable>>,
    len: AtomicUsize,
}

impl LocalQueue {
    pub(crate) fn new() -> LocalQueue {
        LocalQueue {
            tasks: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            len: AtomicUsize::new(0),
        }
    }

    /// Queues `task` at the back; when full, moves the older half to `overflow`. Gives
    /// back the tasks the injector refused (it is closed).
    pub(crate) fn push(&self, task: Runnable, overflow: &Injector) -> Vec<Runnable> {
        let mut tasks = lock(&self.tasks);
        let mut refused = Vec::new();
        if tasks.len() >= CAPACITY {
            let half: Vec<Runnable> = tasks.drain(..CAPACITY / 2).collect();
            refused = overflow.push_batch(half.into_iter());
        }
        tasks.push_back(task);
        self.len.store(tasks.len(), Ordering::SeqCst);
        refused
    }

    /// Takes the oldest task.
    pub(crate) fn pop(&self) -> Option<Runnable> {
        if self.is_empty() {
            return None;
        }
        let mut tasks = lock(&self.tasks);
        let task = tasks.pop_front();
        self.len.store(tasks.len(), Ordering::SeqCst);
        task
    }

    /// Moves half of this queue (rounded up) into `into`, and returns one of the
    /// stolen tasks to run at once. `into` is the thief's own queue, empty.
    pub(crate) fn steal_half_into(&self, into: &LocalQueue) -> Option<Runnable> {
        if self.is_empty() {
            return None;
        }
        let stolen: Vec<Runnable> = {
            let mut tasks = lock(&self.tasks);
            let count = tasks.len().div_ceil(2);
            let stolen = tasks.drain(..count).collect();
            self.len.store(tasks.len(), Ordering::SeqCst);
            stolen
        };
        let mut stolen = stolen.into_iter();
        let first = stolen.next()?;
        let mut own = lock(&into.tasks);
        own.extend(stolen);
        into.len.store(own.len(), Ordering::SeqCst);
        Some(first)
    }

    /// Whether the queue is empty (a hint: it may change at once).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    /// Empties the queue (at shutdown).
    pub(crate) fn drain(&self) -> VecDeque<Runnable> {
        let mut tasks = lock(&self.tasks);
        self.len.store(0, Ordering::SeqCst);
        std::mem::take(&mut *tasks)
    }
}
