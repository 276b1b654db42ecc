//! The runtimes compared: ours (with its diagnostics on, and off), tokio's
//! current-thread runtime and smol's `LocalExecutor`, each behind one trait with a
//! method per workload.
//!
//! One file per runtime, each written the way that runtime's users write it, so the
//! three can be read side by side: [`ours`], [`tokio_runtime`], [`smol_executor`].
//! The runtime is built by its constructor, not by the workload methods, so a caller
//! can time a workload without the runtime's construction.
//!
//! The network workloads ([`echo`](Runtime::echo),
//! [`idle_connections`](Runtime::idle_connections)) run on loopback, server and
//! clients in the one process and on the one thread. Ours and tokio run them on a
//! second instance built with I/O (ours parked in a `Reactor`, tokio with its I/O
//! driver), so that the other workloads keep measuring the executor as they did
//! before sockets came: parked on a thread. smol's `block_on` always drives its
//! reactor, so smol needs no second instance.

pub mod multi_thread;
pub mod ours;
pub mod smol_executor;
pub mod tokio_runtime;

use ours::{Diagnostics, Ours};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A single-threaded runtime, built and ready, that can run every workload.
///
/// Each method returns when its workload is done; tasks left queued (only
/// [`spawn_queued`](Runtime::spawn_queued) leaves any) are dropped with the runtime.
pub trait Runtime {
    /// Spawns `tasks` tasks that do nothing, then awaits every one.
    fn spawn_and_await(&self, tasks: usize);

    /// Spawns `tasks` tasks that do nothing, and returns without running them: they
    /// stay in the runtime's queue, each costing what a spawned task costs at rest.
    fn spawn_queued(&self, tasks: usize);

    /// Runs `pairs` ping-pong pairs (see [`ping_pong`](crate::ping_pong)), each
    /// passing `rounds` pings and pongs, and awaits them all.
    fn ping_pong(&self, pairs: usize, rounds: usize);

    /// Runs a chain of `length` tasks, each spawning the next and dropping its
    /// handle; returns when the last one has run.
    fn chain(&self, length: usize);

    /// Runs `tasks` tasks that each yield `yields` times, and awaits them all.
    fn yield_many(&self, tasks: usize, yields: usize);

    /// Runs `tasks` tasks that each sleep `duration`, all at once, and awaits them.
    fn sleep_many(&self, tasks: usize, duration: Duration);

    /// TCP echo on loopback: a server task that accepts and spawns a task per
    /// connection, echoing what it reads, and `connections` client tasks, each sending
    /// `messages` messages of `message_bytes` bytes and reading each echo back (write,
    /// read exactly as much, check, again). Returns when every client is done.
    ///
    /// # Panics
    /// If a socket call fails, or an echo differs from what was sent.
    fn echo(&self, connections: usize, messages: usize, message_bytes: usize);

    /// Opens `connections` loopback connections and holds them idle: on the server
    /// side a task per connection waiting in a read, on the client side the socket
    /// alone, held by the main task. Returns once every server task has started its
    /// read, closing the connections.
    ///
    /// # Panics
    /// If a socket call fails.
    fn idle_connections(&self, connections: usize);
}

/// Where the network workloads listen: loopback, on a port the kernel picks.
pub const LOOPBACK: &str = "127.0.0.1:0";

/// How much an echo server task reads at once: a page, as a server would, more than a
/// message, so that one read takes whatever has arrived.
pub const ECHO_BUFFER: usize = 4096;

/// How many connections `idle_connections` opens before it waits for the server to
/// take them. Under std's listen backlog of 128 (ours and smol bind through std): a
/// client that connected faster than the server accepts would otherwise fill the
/// backlog, and the next connect would wait for the kernel to retry, a second later.
pub const CONNECT_BATCH: usize = 100;

/// `total` split into batches of at most [`CONNECT_BATCH`]: the sizes, in order.
pub fn connect_batches(total: usize) -> impl Iterator<Item = usize> {
    (0..total)
        .step_by(CONNECT_BATCH)
        .map(move |start| CONNECT_BATCH.min(total - start))
}

/// The runtimes by name, as the command lines spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeName {
    /// Ours: `async_scratch::executor::Executor`, as a user gets it (diagnostics on).
    AsyncScratch,
    /// Ours with `diagnostics(false)`: what our executor costs without the books
    /// its diagnostics keep.
    AsyncScratchNoDiagnostics,
    /// tokio's current-thread runtime, with its timer enabled.
    Tokio,
    /// smol's `LocalExecutor`, with smol's `Timer`.
    Smol,
    /// Ours, multi-threaded: `async_scratch::runtime::Runtime`, two workers.
    AsyncScratchMulti,
    /// tokio's multi-thread runtime, two workers.
    TokioMulti,
    /// smol's `Executor` run on two threads.
    SmolMulti,
}

impl RuntimeName {
    /// Every runtime, ours first.
    pub const ALL: [RuntimeName; 4] = [
        RuntimeName::AsyncScratch,
        RuntimeName::AsyncScratchNoDiagnostics,
        RuntimeName::Tokio,
        RuntimeName::Smol,
    ];

    /// The multi-threaded runtimes (`compare --multi-thread`), ours first. Not in
    /// [`ALL`](RuntimeName::ALL): they are compared with one another, not with the
    /// single-threaded ones.
    pub const MULTI_THREAD: [RuntimeName; 3] = [
        RuntimeName::AsyncScratchMulti,
        RuntimeName::TokioMulti,
        RuntimeName::SmolMulti,
    ];

    /// The name on the command line and in the JSON lines.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeName::AsyncScratch => "async-scratch",
            RuntimeName::AsyncScratchNoDiagnostics => "async-scratch-no-diagnostics",
            RuntimeName::Tokio => "tokio",
            RuntimeName::Smol => "smol",
            RuntimeName::AsyncScratchMulti => "async-scratch-mt",
            RuntimeName::TokioMulti => "tokio-mt",
            RuntimeName::SmolMulti => "smol-mt",
        }
    }

    /// Builds a runtime of this kind.
    pub fn build(self) -> Box<dyn Runtime> {
        match self {
            RuntimeName::AsyncScratch => Box::new(Ours::new(Diagnostics::On)),
            RuntimeName::AsyncScratchNoDiagnostics => Box::new(Ours::new(Diagnostics::Off)),
            RuntimeName::Tokio => Box::new(tokio_runtime::Tokio::new()),
            RuntimeName::Smol => Box::new(smol_executor::Smol::new()),
            RuntimeName::AsyncScratchMulti => Box::new(multi_thread::OursMulti::new()),
            RuntimeName::TokioMulti => Box::new(multi_thread::TokioMulti::new()),
            RuntimeName::SmolMulti => Box::new(multi_thread::SmolMulti::new()),
        }
    }
}

/// Every runtime's name, comma-separated, for an error that lists them.
fn names() -> String {
    let names: Vec<&str> = RuntimeName::ALL
        .into_iter()
        .chain(RuntimeName::MULTI_THREAD)
        .map(RuntimeName::as_str)
        .collect();
    names.join(", ")
}

impl fmt::Display for RuntimeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuntimeName {
    type Err = String;

    fn from_str(name: &str) -> Result<RuntimeName, String> {
        RuntimeName::ALL
            .into_iter()
            .chain(RuntimeName::MULTI_THREAD)
            .find(|runtime| runtime.as_str() == name)
            .ok_or_else(|| format!("unknown runtime `{name}` (expected one of: {})", names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every runtime's name reads back as that runtime, and a wrong name is an error
    /// that lists the right ones.
    #[test]
    fn names_round_trip() {
        for runtime in RuntimeName::ALL
            .into_iter()
            .chain(RuntimeName::MULTI_THREAD)
        {
            assert_eq!(runtime.as_str().parse(), Ok(runtime));
        }
        let error = "tokyo".parse::<RuntimeName>().unwrap_err();
        assert!(
            error.contains("`tokyo`")
                && error.contains("smol")
                && error.contains("async-scratch-no-diagnostics"),
            "{error}"
        );
    }

    /// Batches add up to the total, none above the batch size, the last one the rest.
    #[test]
    fn connections_are_opened_in_batches() {
        let batches: Vec<usize> = connect_batches(2 * CONNECT_BATCH + 7).collect();
        assert_eq!(batches, [CONNECT_BATCH, CONNECT_BATCH, 7]);
        assert_eq!(connect_batches(0).count(), 0);
    }

    /// Every runtime, multi-threaded ones too, echoes every message (a wrong echo
    /// panics inside `echo`), and holds idle connections and lets them go, on small
    /// sizes.
    #[test]
    fn every_runtime_runs_the_network_workloads() {
        for runtime in RuntimeName::ALL
            .into_iter()
            .chain(RuntimeName::MULTI_THREAD)
        {
            let built = runtime.build();
            built.echo(3, 20, 64);
            built.idle_connections(CONNECT_BATCH + 5); // two batches
        }
    }
}
