//! `spawn_blocking`: run work that blocks on a thread pool, and await it from a
//! coroutine.
//!
//! **Step 4** introduces it. A coroutine must never block its thread: every other task
//! on the executor would stall with it (step 5 shows this happen). Work that can only
//! block, such as a blocking file read, a library without async support, or a long
//! computation, goes to a pool thread instead, and the coroutine awaits the resulting
//! [`Task`] (step 2's task, which is also a `Future`).
//!
//! The pool is shared by the whole process and started on first use, with
//! [`BLOCKING_WORKERS`] threads; its jobs queue when all are busy.
//!
//! ```
//! use async_scratch::blocking::spawn_blocking;
//! use async_scratch::executor::block_on;
//!
//! let sum = block_on(async {
//!     spawn_blocking(|| (1..=100u32).sum::<u32>()).await
//! });
//! assert_eq!(sum, Ok(5050));
//! ```
//!
//! *Teaching shortcut:* the pool has a fixed size. tokio's blocking pool grows on
//! demand (up to 512 threads) and retires idle threads.

use crate::pool::ThreadPool;
use crate::task::Task;
use std::sync::OnceLock;

/// Threads in the shared blocking pool. Blocking work mostly waits rather than
/// computes, so more threads than cores pay off; 8 matches the tour's default pool.
pub const BLOCKING_WORKERS: usize = 8;

/// Runs `job` on the shared blocking pool; await the returned [`Task`] (or `wait` for
/// it) to get its result, or the panic's message as a
/// [`TaskError`](crate::task::TaskError).
///
/// # Panics
/// If the operating system refuses to start the pool's threads, the first time.
pub fn spawn_blocking<T, F>(job: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    blocking_pool().spawn(job)
}

fn blocking_pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        ThreadPool::new(BLOCKING_WORKERS)
            .unwrap_or_else(|error| panic!("cannot start the blocking pool: {error}"))
    })
}
