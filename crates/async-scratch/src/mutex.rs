//! An async mutex: `lock().await` suspends the task instead of blocking the thread.
//!
//! **Step 5** introduces it, as the fix for its first failure. A `std::sync::Mutex`
//! held across an `.await` works on a thread pool (threads just take turns), but on a
//! single-threaded executor the next task that calls `lock()` blocks *the* thread, so
//! the task holding the lock can never resume to release it: a deadlock. Our `Mutex`
//! makes waiting a `Pending` like any other: the task is parked in the lock's queue,
//! the thread runs other tasks, and the guard's drop hands the lock to the next waiter.
//!
//! - **FIFO, with hand-over.** Waiters are served in the order they asked. Unlocking
//!   does not free the lock for whoever polls first; it grants it to the first waiter
//!   and wakes it, so no later task can barge in.
//! - **Cancellation-safe.** Dropping a `lock()` future leaves the queue; if the lock was
//!   already granted to it, it passes on to the next waiter.
//! - **Known to the executor.** Who holds the lock and who waits for it is recorded, so
//!   a cycle (A holds lock 1 and waits for lock 2, B holds 2 and waits for 1) is
//!   reported with the tasks spelled out (see [`diagnostics`](crate::diagnostics)).
//!
//! ```
//! use async_scratch::executor::{block_on, spawn, yield_now};
//! use async_scratch::join_all::join_all;
//! use async_scratch::mutex::Mutex;
//! use std::sync::Arc;
//!
//! let counter = Arc::new(Mutex::new(0));
//! block_on(async {
//!     let tasks = (0..10).map(|_| {
//!         let counter = counter.clone();
//!         spawn(async move {
//!             let mut value = counter.lock().await;
//!             yield_now().await; // held across an .await: fine with this mutex
//!             *value += 1;
//!         })
//!     });
//!     join_all(tasks.collect::<Vec<_>>()).await;
//! });
//! assert_eq!(*counter.try_lock().unwrap(), 10);
//! ```
//!
//! *Teaching shortcut:* the queue is a `VecDeque` behind a `std::sync::Mutex`, and a
//! cancelled waiter is found by a linear search. tokio's mutex is a semaphore over an
//! intrusive linked list of waiters: no allocation per waiter, O(1) removal.

use crate::coop;
use crate::executor::current_task;
use crate::executor::waits::{register_wait, LockRecord, WaitRegistration, WaitTarget};
use crate::locking::lock;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard};
use std::task::{ready, Context, Poll, Waker};

/// A mutual-exclusion lock for async code: waiting for it suspends the task, not the
/// thread.
pub struct Mutex<T> {
    queue: StdMutex<LockQueue>,
    /// Name and holder, as the executor's wait graph reads them.
    record: Arc<LockRecord>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and at most one guard exists at a
// time (the queue's `locked` flag, changed only under its lock, grants one). So sharing
// a `Mutex<T>` between threads shares `T` with one thread at a time: `T: Send` is what
// that needs, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for Mutex<T> {}

/// Who holds the lock, and who waits for it, in order.
#[derive(Default)]
struct LockQueue {
    locked: bool,
    waiters: VecDeque<Waiter>,
    next_ticket: u64,
}

struct Waiter {
    ticket: u64,
    waker: Waker,
    /// The lock has been handed to this waiter; it takes it at its next poll.
    granted: bool,
    /// The executor's record of this wait (when the waiter is one of its tasks).
    registration: Option<WaitRegistration>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex::build(None, value)
    }

    /// Like [`new`](Mutex::new), with a name that diagnostics will use.
    pub fn named(name: impl Into<String>, value: T) -> Mutex<T> {
        Mutex::build(Some(name.into().into_boxed_str()), value)
    }

    fn build(name: Option<Box<str>>, value: T) -> Mutex<T> {
        Mutex {
            queue: StdMutex::new(LockQueue::default()),
            record: Arc::new(LockRecord {
                name,
                holder: StdMutex::new(None),
            }),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock, then returns a guard that gives access to the value and
    /// unlocks when dropped. Waiters are served in the order they first polled.
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            ticket: None,
        }
    }

    /// The lock, if it is free and nobody waits for it; never waits.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut queue = self.lock_queue();
        if queue.locked || !queue.waiters.is_empty() {
            return None;
        }
        queue.locked = true;
        drop(queue);
        Some(self.acquired())
    }

    /// The value, when the mutex is owned: no lock needed.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }

    fn lock_queue(&self) -> StdGuard<'_, LockQueue> {
        // Only flags and waiters are changed under this lock, never half-way.
        lock(&self.queue)
    }

    /// The guard of a lock just taken; records the holder for the wait graph.
    fn acquired(&self) -> MutexGuard<'_, T> {
        *lock(&self.record.holder) = current_task();
        MutexGuard { mutex: self }
    }

    /// Frees the lock, or hands it to the first waiter.
    fn release(&self) {
        *lock(&self.record.holder) = None;
        let handed_to = {
            let mut queue = self.lock_queue();
            hand_over(&mut queue)
        };
        if let Some((waker, registration)) = handed_to {
            waker.wake();
            drop(registration);
        }
    }
}

/// Grants the lock to the first waiter that has not got it, or frees it if there is
/// none; returns what to wake (outside the queue's lock).
fn hand_over(queue: &mut LockQueue) -> Option<(Waker, Option<WaitRegistration>)> {
    match queue.waiters.front_mut() {
        Some(first) => {
            first.granted = true;
            Some((first.waker.clone(), first.registration.take()))
        }
        None => {
            queue.locked = false;
            None
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = self.lock_queue();
        f.debug_struct("Mutex")
            .field("name", &self.record.name)
            .field("locked", &queue.locked)
            .field("waiters", &queue.waiters.len())
            .finish_non_exhaustive()
    }
}

/// The future of [`Mutex::lock`].
#[must_use = "a lock is only taken when awaited"]
#[derive(Debug)]
pub struct Lock<'a, T> {
    mutex: &'a Mutex<T>,
    /// Our place in the queue, once we have one.
    ticket: Option<u64>,
}

impl<'a, T> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MutexGuard<'a, T>> {
        // Taking a free lock costs one unit of the task's budget (see `coop`): a task
        // that locks and unlocks in a loop still lets the others run. A lock already
        // handed to this future (below) is taken whatever the budget.
        let unit = match self.ticket {
            None => Some(ready!(coop::poll_proceed(cx))),
            Some(_) => None,
        };
        let mutex = self.mutex;
        let mut queue = mutex.lock_queue();
        match self.ticket {
            None if !queue.locked && queue.waiters.is_empty() => {
                queue.locked = true;
                drop(queue);
                if let Some(unit) = unit {
                    unit.spend();
                }
                Poll::Ready(mutex.acquired())
            }
            None => {
                let ticket = queue.next_ticket;
                queue.next_ticket += 1;
                let registration =
                    register_wait(cx.waker(), WaitTarget::Lock(Arc::clone(&mutex.record)));
                queue.waiters.push_back(Waiter {
                    ticket,
                    waker: cx.waker().clone(),
                    granted: false,
                    registration,
                });
                self.ticket = Some(ticket);
                Poll::Pending
            }
            Some(ticket) => {
                let index = queue
                    .waiters
                    .iter()
                    .position(|waiter| waiter.ticket == ticket);
                let index = index.expect("a queued lock future is in the queue");
                if queue.waiters[index].granted {
                    let waiter = queue.waiters.remove(index);
                    drop(queue);
                    drop(waiter);
                    self.ticket = None;
                    return Poll::Ready(mutex.acquired());
                }
                if !queue.waiters[index].waker.will_wake(cx.waker()) {
                    queue.waiters[index].waker = cx.waker().clone();
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let (removed, handed_to) = {
            let mut queue = self.mutex.lock_queue();
            let index = queue
                .waiters
                .iter()
                .position(|waiter| waiter.ticket == ticket);
            let removed = index.and_then(|index| queue.waiters.remove(index));
            // Granted but never taken: pass the lock on, or nobody would ever get it.
            let handed_to = match &removed {
                Some(waiter) if waiter.granted => hand_over(&mut queue),
                _ => None,
            };
            (removed, handed_to)
        };
        drop(removed);
        if let Some((waker, registration)) = handed_to {
            waker.wake();
            drop(registration);
        }
    }
}

/// Access to a locked [`Mutex`]'s value; unlocks (or hands over) when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

// SAFETY: a shared `&MutexGuard` gives out only `&T`, so sharing the guard between
// threads shares `&T`: sound exactly when `T: Sync`. (Without this impl the guard would
// be `Sync` whenever `Mutex<T>` is, that is for any `T: Send`, which is too weak.)
unsafe impl<T: Sync> Sync for MutexGuard<'_, T> {}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a guard exists only while its mutex is locked, and the lock grants
        // one guard at a time; so no `&mut T` exists elsewhere while this `&T` lives.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only access through
        // the one guard there is.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.release();
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
