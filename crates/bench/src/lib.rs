//! # async-scratch-bench: our executor beside tokio and smol, on the same workloads
//!
//! Every single-threaded workload is written here once per runtime, and everything
//! that measures them runs this one copy: the criterion benchmark
//! (`benches/executor.rs`), which loops in one process, and `sleep_memory`, which
//! needs a process of its own for each runtime, so that each peak of memory belongs
//! to one runtime alone.
//!
//! # Layout
//!
//! | module | concept |
//! |---|---|
//! | [`runtime`] | the [`Runtime`](runtime::Runtime) trait, one method per workload, and its three implementations: ours, tokio's current-thread runtime, smol's `LocalExecutor` |
//! | [`ping_pong`] | the two tasks of a ping-pong pair, the same futures on every runtime |
//! | [`workload`] | the workloads by name, their sizes, and running one measured: wall time or memory per task |
//! | [`rss`] | the process's peak resident memory, from `/proc/self/status` |
//!
//! The binary `sleep_memory` reports memory per sleeping task, one runtime per
//! process:
//!
//! ```text
//! cargo run --release -p async-scratch-bench --bin sleep_memory -- tokio
//! ```

#![warn(missing_docs)]

pub mod ping_pong;
pub mod rss;
pub mod runtime;
pub mod workload;
