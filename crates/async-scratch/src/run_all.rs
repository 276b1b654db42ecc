//! `run_all`: start many jobs at once, then wait for all of them.
//!
//! **Step 3** introduces it. Step 2 waited for each task before spawning the next, so
//! only one job was ever running. `run_all` spawns *every* job first and only then waits,
//! so the pool's workers are all busy, and the results come back in the order the jobs
//! were given, whatever order they finish in. It is the thread counterpart of the
//! coroutine `join_all` that step 4 builds.
//!
//! ```
//! use async_scratch::pool::ThreadPool;
//! use async_scratch::run_all::run_all;
//!
//! let pool = ThreadPool::new(4)?;
//! let squares = run_all(&pool, (1..=5).map(|n| move || n * n));
//! let squares: Vec<i32> = squares.into_iter().map(Result::unwrap).collect();
//! assert_eq!(squares, [1, 4, 9, 16, 25]);
//! # Ok::<(), async_scratch::pool::PoolError>(())
//! ```

use crate::pool::ThreadPool;
use crate::task::{Task, TaskError};

/// Runs every job on `pool` and waits for all of them.
///
/// Returns one result per job, in the order of `jobs`. A job that panics gives
/// `Err(TaskError::Panicked(message))` in its place and costs none of the other results.
pub fn run_all<T, F>(
    pool: &ThreadPool,
    jobs: impl IntoIterator<Item = F>,
) -> Vec<Result<T, TaskError>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Spawn everything before waiting for anything: this line is all of step 3.
    let tasks: Vec<Task<T>> = jobs.into_iter().map(|job| pool.spawn(job)).collect();
    tasks.into_iter().map(Task::wait).collect()
}
