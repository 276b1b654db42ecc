//! Locking the crate's `std::sync::Mutex`es, which never guard half-written data.
//!
//! Not a step of the tour: a habit every module shares, written once. Every std mutex
//! here is held only to move a value in or out, push or swap a queue, or flip a flag,
//! and never while user code runs (jobs, futures, wakers and reporters are all called
//! after the lock is released). So a panic on another thread while it held a lock
//! (which "poisons" a std mutex) cannot have left the data inconsistent: we take the
//! guard anyway instead of failing. A crate whose locks guard multi-step updates
//! should not copy this.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking the guard even if the lock is poisoned (see the module doc).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` with `guard`, as [`Condvar::wait`], poison taken as above. May
/// return spuriously: callers check their condition in a loop.
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}
