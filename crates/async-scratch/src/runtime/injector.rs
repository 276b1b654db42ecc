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

use super::task::{lock, Runnable};

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
