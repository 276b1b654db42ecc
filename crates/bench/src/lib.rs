//! # async-scratch-bench: our executor beside tokio and smol, on the same workloads
//!
//! Every single-threaded workload, the network ones (TCP echo, idle connections)
//! included, is written here once per runtime, and everything that measures them
//! runs this one copy: the criterion benchmark
//! (`benches/executor.rs`), which loops in one process, and the comparison runner,
//! which runs each workload once per fresh process, because a loop in one warm
//! process hides what a real program pays the first time: growing the allocator's
//! heap, and the page faults of touching new memory.
//!
//! # Layout
//!
//! | module | concept |
//! |---|---|
//! | [`runtime`] | the [`Runtime`](runtime::Runtime) trait, one method per workload, and its three implementations: ours (diagnostics on or off), tokio's current-thread runtime, smol's `LocalExecutor` |
//! | [`ping_pong`] | the two tasks of a ping-pong pair, the same futures on every runtime |
//! | [`workload`] | the workloads by name, their sizes, and running one measured: wall time, or memory per task or per connection |
//! | [`rss`] | the process's peak resident memory, from `/proc/self/status` |
//! | [`result_line`] | the one JSON line a measured run prints, and reading it back |
//! | [`child`] | one measured run in a fresh process, whatever becomes of it |
//! | [`stats`] | medians and spread of several runs |
//! | [`report`] | the comparison's table (Markdown) or JSON lines: ours ÷ the faster peer, and each variant of ours (diagnostics off, another build) ÷ ours |
//!
//! The binaries: `workload <runtime> <workload>` runs one workload once and prints
//! one JSON line; `compare` runs `workload` for every runtime, rounds interleaved,
//! and prints the medians as ratios; `sleep_memory` reports memory per sleeping task
//! in a sentence.
//!
//! ```text
//! cargo build --release -p async-scratch-bench
//! cargo run --release -p async-scratch-bench --bin compare -- --workloads spawn,chain
//! ```

#![warn(missing_docs)]

pub mod child;
pub mod ping_pong;
pub mod report;
pub mod result_line;
pub mod rss;
pub mod runtime;
pub mod stats;
pub mod workload;
