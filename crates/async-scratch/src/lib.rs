//! # async-scratch: async/await built from nothing
//!
//! This crate is the library half of *async-from-scratch*: every piece that the tour's
//! steps need, written on the standard library only. Each module is one concept; each
//! concept is introduced by one step of the tutorial and used unchanged by the steps
//! after it.
//!
//! # Map
//!
//! | step | concept | module | see it run |
//! |---|---|---|---|
//! | 0 | a unit of work, run N times in a loop; every unit records a span | [`work`], [`timeline`] | `cargo run --release -- --step 0` |
//! | 1 | a thread pool: workers, a job queue, shutdown, panic isolation | [`pool`] | `cargo run --release -- --step 1` |
//! | 2 | tasks: a handle to wait for a result that arrives later | [`task`] | `cargo run --release -- --step 2` |
//! | 3 | run all: start every job, then wait for all, results in order | [`run_all`](mod@run_all) | `cargo run --release -- --step 3` |
//!
//! # The whole story in one example
//!
//! ```
//! use async_scratch::pool::ThreadPool;
//! use async_scratch::run_all::run_all;
//! use async_scratch::timeline::{peak_in_flight, Timeline};
//! use async_scratch::work::{Work, WorkKind};
//! use std::time::Duration;
//!
//! let work = Work::new(WorkKind::Sleep, Duration::from_millis(5));
//!
//! // Step 0: one after another.
//! let timeline = Timeline::new();
//! for unit in 0..4 {
//!     work.run_recorded(unit, &timeline);
//! }
//! assert_eq!(peak_in_flight(&timeline.spans()), 1);
//!
//! // Step 3: the same units on a pool, all started at once, all waited for.
//! let pool = ThreadPool::new(4)?;
//! let timeline = Timeline::new();
//! let jobs = (0..4).map(|unit| {
//!     let timeline = timeline.clone();
//!     move || work.run_recorded(unit, &timeline)
//! });
//! let results = run_all(&pool, jobs);
//! assert!(results.iter().all(Result::is_ok));
//! assert_eq!(timeline.spans().len(), 4);
//! # Ok::<(), async_scratch::pool::PoolError>(())
//! ```
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod blocking;
pub mod coroutine;
pub mod executor;
pub mod join;
pub mod join_all;
pub mod pool;
pub mod run_all;
pub mod task;
pub mod time;
pub mod timeline;
pub mod waker;
pub mod work;
