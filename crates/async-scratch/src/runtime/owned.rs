//! The runtime's list of every task not yet complete, so that dropping the runtime
//! can drop every pending future exactly once.
//!
//! Step 7 introduces it. On one thread, the executor owns its tasks' slab and drops
//! them when it is dropped. A runtime's task may be in no queue at all when the
//! runtime goes: idle, its waker held by a timer, a channel or nothing. Without this
//! list such a task (and the cycle from it to the runtime through its scheduler) would
//! leak. A task is added when spawned and removed when it completes; the runtime's
//! drop closes the list and shuts down whatever is still in it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::task::{lock, Runnable};

/// How many locks the list is split into, so that spawns on different workers seldom
/// meet on one.
const SHARDS: usize = 16;

/// Every pending task of one runtime, by id.
pub(crate) struct Owned {
    shards: [Mutex<Shard>; SHARDS],
}

/// Task ids are distinct counters already: the id is its own hash. (The default
/// hasher, built to resist chosen keys, was a tenth of the time of a million spawns.)
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Ids are spread over the shards by their low bits; the table uses the rest.
        self.0 = id / SHARDS as u64;
    }
}

#[derive(Default)]
struct Shard {
    tasks: HashMap<u64, Runnable, BuildHasherDefault<IdHasher>>,
    closed: bool,
}

impl Owned {
    pub(crate) fn new() -> Owned {
        Owned {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    fn shard(&self, id: u64) -> &Mutex<Shard> {
        &self.shards[(id % SHARDS as u64) as usize]
    }

    /// Adds a new task; gives it back if the runtime is shutting down.
    pub(crate) fn insert(&self, task: Runnable) -> Result<(), Runnable> {
        let id = task.id().runtime_number();
        let mut shard = lock(self.shard(id));
        if shard.closed {
            return Err(task);
        }
        shard.tasks.insert(id, task);
        Ok(())
    }

    /// Forgets a completed task.
    pub(crate) fn remove(&self, id: u64) {
        let removed = lock(self.shard(id)).tasks.remove(&id);
        drop(removed); // outside the lock: it may be the task's last reference
    }

    /// A reference to every task in the list now, for the deadlock check.
    pub(crate) fn snapshot(&self) -> Vec<Runnable> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(lock(shard).tasks.values().cloned());
        }
        all
    }

    /// Closes the list (no task is added after) and takes every task in it.
    pub(crate) fn close(&self) -> Vec<Runnable> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.closed = true;
            all.extend(shard.tasks.drain().map(|(_, task)| task));
        }
        all
    }
}
