//! The injector: the runtime's one shared queue, for tasks spawned or woken from
//! outside the workers, and for the overflow of a full local queue.
//!
//! Step 7 introduces it. Every worker looks here when its own queue is empty (and
//! every 61st turn in any case, so that a busy worker does not starve what came from
//! outside). Once the runtime is shut down the injector is closed: a task scheduled
//! after that is not queued (its future is dropped by the shutdown itself).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::queue::CAPACITY;
use super::task::{lock, Runnable};

/// The most tasks a worker takes from the injector at once, besides the one it runs:
/// a quarter of its own queue, so that they fit, with room for what they spawn.
pub(crate) const MAX_SHARE: usize = CAPACITY as usize / 4;

/// A FIFO queue shared by every worker, behind a lock.
pub(crate) struct Injector {
    queue: Mutex<Queue>,
    /// How many tasks `queue` holds, readable without the lock: an idle worker looks
    /// at every queue before it parks.
    len: AtomicUsize,
}

struct Queue {
    tasks: VecDeque<Runnable>,
    closed: bool,
}

impl Injector {
    pub(crate) fn new() -> Injector {
        Injector {
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Queues `task`; gives it back if the injector is closed.
    pub(crate) fn push(&self, task: Runnable) -> Result<(), Runnable> {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return Err(task);
        }
        queue.tasks.push_back(task);
        self.len.store(queue.tasks.len(), Ordering::SeqCst);
        Ok(())
    }

    /// Queues a batch (a local queue's overflow).
    pub(crate) fn push_batch(&self, tasks: impl Iterator<Item = Runnable>) -> Vec<Runnable> {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return tasks.collect();
        }
        queue.tasks.extend(tasks);
        self.len.store(queue.tasks.len(), Ordering::SeqCst);
        Vec::new()
    }

    /// Takes the oldest task.
    pub(crate) fn pop(&self) -> Option<Runnable> {
        if self.is_empty() {
            return None;
        }
        let mut queue = lock(&self.queue);
        let task = queue.tasks.pop_front();
        self.len.store(queue.tasks.len(), Ordering::SeqCst);
        task
    }

    /// Takes the oldest task, and moves this worker's share of the rest (at most
    /// [`MAX_SHARE`]) into `share`: a worker whose own queue ran dry takes many tasks
    /// for one lock, instead of coming back for each. (A million tasks spawned from a
    /// `block_on` thread all come through here, and two workers taking them one at a
    /// time spent a sixth of their time on this lock.)
    pub(crate) fn pop_share(&self, workers: usize, share: &mut Vec<Runnable>) -> Option<Runnable> {
        if self.is_empty() {
            return None;
        }
        let mut queue = lock(&self.queue);
        let first = queue.tasks.pop_front();
        let count = (queue.tasks.len() / workers.max(1)).min(MAX_SHARE);
        share.extend(queue.tasks.drain(..count));
        self.len.store(queue.tasks.len(), Ordering::SeqCst);
        first
    }

    /// Whether no task waits here (a hint: it may change at once).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    /// Closes the injector and returns what it held.
    pub(crate) fn close(&self) -> VecDeque<Runnable> {
        let mut queue = lock(&self.queue);
        queue.closed = true;
        self.len.store(0, Ordering::SeqCst);
        std::mem::take(&mut queue.tasks)
    }
}
