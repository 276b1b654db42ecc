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
//! | 4a | a busy-polling executor: every future polled round and round, a no-op waker; burns a core | [`busy_executor`] | `cargo run --release -- --step 4a` |
//! | 4b | wakers and park: poll only what was woken, park until the next deadline; CPU near zero | [`park_executor`] | `cargo run --release -- --step 4b` |
//! | 4 | wakers: how a waiting future asks to be polled again, on a vtable of our own | [`waker`] | `cargo run --release -- --step 4` |
//! | 4c | the executor: tasks on one thread, `block_on`, `spawn`, `yield_now` | [`executor`] | `cargo run --release -- --step 4c --units 1000000` |
//! | 4 | join handles: a task's value, panic or cancellation, awaited ([`JoinHandle`](executor::JoinHandle), [`JoinError`](executor::JoinError)) | [`executor`] | `cargo test -p async-scratch --test executor` |
//! | 4 | timers: `sleep`, `timeout`, a real or a manual clock | [`time`] | `cargo test -p async-scratch --test time` |
//! | 4 | the loop made visible: every spawn, poll, wake and park, told to an observer | [`observe`] | `cargo test -p async-scratch --test observe` |
//! | 4 | the park seam: how the executor waits when nothing is ready (a thread park; later, epoll) | [`park`] | `cargo test -p async-scratch --test executor park` |
//! | 4 | `join_all` and `join`: many futures awaited at once, outputs in order | [`join_all`](mod@join_all) | `cargo run --release -- --step 4` |
//! | 4 | what an `async fn` compiles into: the unit of work as a hand-written state machine | [`coroutine`] | `cargo test -p async-scratch --test coroutine` |
//! | 4 | from threads to coroutines: awaiting a pool [`Task`](task::Task), `spawn_blocking` | [`task`], [`blocking`] | `cargo test -p async-scratch --test task` |
//! | 5 | an async mutex: `lock().await` suspends, FIFO hand-over, cancellation-safe | [`mutex`] | `cargo run --release -- --step 5` (case 1) |
//! | 5 | diagnostics: deadlocks, lost tasks, wait cycles, stalls, found by the executor | [`diagnostics`], [`executor`] | `cargo run --release -- --step 5` |
//! | 5 | panics in user code (a `Drop`, a waker) caught where they happen; nothing lost | [`executor`] (its module doc has the rule) | `cargo test -p async-scratch --test panic` |
//! | 5 | a cooperative budget: a task that never meets a `Pending` still lets the others run | [`coop`] | `cargo test -p async-scratch --test coop` |
//! | 6 | the reactor: the executor parks in `epoll_wait`; ready sockets wake their tasks | [`reactor`] | `cargo test -p async-scratch --test net` |
//! | 6 | TCP sockets that wait by returning `Pending`: accept, connect, read, write | [`net`] | `cargo run -p async-scratch --example echo` |
//! | 7 | the multi-threaded runtime: workers, local queues, stealing, idle workers parked, a blocking pool, one reactor driven by the worker about to park | [`runtime`] | `cargo test -p async-scratch --test runtime`, `--test runtime_net` |
//! | 7 | one task core, two schedulers: the runtime's tasks are the executor's, behind the `Schedule` seam; lost tasks and deadlocks reported across workers | [`runtime`], [`executor`] | `cargo test -p async-scratch --test runtime_lost`, `--test runtime_deadlock` |
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
//!
//! // Step 4: the same units as coroutines, all at once, on this one thread. (On a
//! // manual clock, which jumps to each deadline: no real waiting, and the same
//! // answer on any machine, however busy.)
//! use async_scratch::coroutine::run_unit;
//! use async_scratch::executor::Executor;
//! use async_scratch::join_all::join_all;
//! use async_scratch::time::{Clock, ManualClock};
//!
//! let timeline = Timeline::new();
//! let executor = Executor::with_clock(Clock::Manual(ManualClock::new()));
//! executor.block_on(join_all((0..4).map(|unit| run_unit(work, unit, timeline.clone()))));
//! assert_eq!(peak_in_flight(&timeline.spans()), 4);
//! # Ok::<(), async_scratch::pool::PoolError>(())
//! ```
#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::undocumented_unsafe_blocks
)]

pub mod blocking;
pub mod busy_executor;
pub mod coop;
pub mod coroutine;
pub mod diagnostics;
pub mod executor;
pub mod join_all;
mod locking;
pub mod mutex;
pub mod net;
pub mod observe;
pub mod park;
pub mod park_executor;
pub mod pool;
pub mod reactor;
pub mod run_all;
pub mod runtime;
mod stall_watch;
pub mod task;
pub mod time;
pub mod timeline;
mod unwind;
pub mod waker;
pub mod work;
