//! The workloads by name, their sizes, and running one measured.
//!
//! A workload is measured either in wall time (the milliseconds its
//! [`Runtime`] method takes, the runtime already built) or in memory per task or per
//! connection (how far the process's peak resident memory rose above a baseline taken
//! just before, divided by the number of tasks or connections; see [`crate::rss`]).

use crate::rss;
use crate::runtime::Runtime;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Trivial tasks spawned by `spawn` and `queued-bytes`: at a million, the cost per
/// task dwarfs the fixed costs, and the runtime's task storage grows through some
/// twenty doublings, as a program's does on its way to that many tasks.
pub const SPAWNS: usize = 1_000_000;

/// Pairs in `ping-pong`: 2,000 tasks, more than fit in a CPU cache with their
/// channels, so the runtime's queue is exercised, not just a hot loop of two tasks.
pub const PING_PONG_PAIRS: usize = 1_000;

/// Round trips per pair in `ping-pong`: 1,000 pairs × 100 make 200,000 wake-ups,
/// enough to time to well under a percent.
pub const PING_PONG_ROUNDS: usize = 100;

/// Links in `chain`: each task spawns the next, so only one task exists at a time
/// and the cost measured is spawning, not storage; 100,000 takes tens of ms.
pub const CHAIN: usize = 100_000;

/// Tasks in `yield`: enough that a yield goes to the back of a real queue.
pub const YIELDERS: usize = 200;

/// Yields per task in `yield`: 200 × 1,000 make 200,000 reschedules.
pub const YIELDS: usize = 1_000;

/// Tasks asleep at once in `sleep` and `sleep-bytes`: a timer store of 100,000
/// entries, the scale of a server's idle connections.
pub const SLEEPERS: usize = 100_000;

/// How long each sleeper sleeps. Spawning 100,000 sleepers takes tens of ms, so at 1
/// second they are all asleep together before the first one wakes, and the peak
/// memory holds every one of them.
pub const SLEEP: Duration = Duration::from_secs(1);

/// Client connections in `echo`: each is a client task and a server task, so 100
/// tasks take turns, more than a runtime's fast path for a single ready task.
pub const ECHO_CONNECTIONS: usize = 50;

/// Round trips per connection in `echo`: 50 × 1,000 make 50,000 echoes, each a write
/// and a read on both sides; about a second on the README's VM.
pub const ECHO_MESSAGES: usize = 1_000;

/// Bytes per echoed message: small, so that the time is the runtime's and the
/// system calls', not the copying.
pub const ECHO_MESSAGE_BYTES: usize = 64;

/// Connections held open in `idle-connections`: enough that the fixed costs (the
/// listener, the runtime's first allocations) vanish in the figure per connection.
/// Each is two sockets in the process, client and server side, so it needs a limit
/// of some 2,100 open files: more than the 1,024 some systems set by default
/// (`ulimit -n 4096` raises it; a connect beyond the limit fails, and says so).
pub const IDLE_CONNECTIONS: usize = 1_000;

/// One workload, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Spawn 1,000,000 trivial tasks and await them all (ms).
    Spawn,
    /// Spawn 1,000,000 trivial tasks without running them (bytes per task).
    QueuedBytes,
    /// 1,000 pairs, each 100 ping-pongs over `futures` oneshot channels (ms).
    PingPong,
    /// A chain of 100,000 tasks, each spawning the next (ms).
    Chain,
    /// 200 tasks × 1,000 `yield_now` each (ms).
    Yield,
    /// 100,000 tasks sleeping 1 s at once (ms, wall).
    Sleep,
    /// 100,000 tasks sleeping 1 s at once (bytes per task).
    SleepBytes,
    /// TCP echo on loopback, 50 connections × 1,000 echoes of 64 B (ms).
    Echo,
    /// 1,000 idle loopback connections, both ends in the process (bytes per
    /// connection).
    IdleConnections,
}

/// What a workload's figure measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Wall time of the workload, in milliseconds.
    Millis,
    /// Peak resident memory growth divided by the number of tasks, in bytes.
    BytesPerTask,
    /// Peak resident memory growth divided by the number of connections, in bytes.
    BytesPerConnection,
}

impl Unit {
    /// The key of this unit's figure in a JSON result line.
    pub fn json_key(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::BytesPerTask => "bytes_per_task",
            Unit::BytesPerConnection => "bytes_per_connection",
        }
    }

    /// A figure for a person: `184 ms`, `15.2 ms`, `1.023 s`, `385 B`.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::BytesPerTask | Unit::BytesPerConnection => format!("{value:.0} B"),
            Unit::Millis if value >= 1000.0 => format!("{:.3} s", value / 1000.0),
            Unit::Millis if value >= 100.0 => format!("{value:.0} ms"),
            Unit::Millis if value >= 10.0 => format!("{value:.1} ms"),
            Unit::Millis => format!("{value:.2} ms"),
        }
    }
}

impl Workload {
    /// Every workload, in the order the comparison runs them.
    pub const ALL: [Workload; 9] = [
        Workload::Spawn,
        Workload::QueuedBytes,
        Workload::PingPong,
        Workload::Chain,
        Workload::Yield,
        Workload::Sleep,
        Workload::SleepBytes,
        Workload::Echo,
        Workload::IdleConnections,
    ];

    /// The name on the command line and in the JSON lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Spawn => "spawn",
            Workload::QueuedBytes => "queued-bytes",
            Workload::PingPong => "ping-pong",
            Workload::Chain => "chain",
            Workload::Yield => "yield",
            Workload::Sleep => "sleep",
            Workload::SleepBytes => "sleep-bytes",
            Workload::Echo => "echo",
            Workload::IdleConnections => "idle-connections",
        }
    }

    /// What it does, for a table's first column.
    pub fn description(self) -> &'static str {
        match self {
            Workload::Spawn => "spawn 1,000,000 trivial tasks, await all",
            Workload::QueuedBytes => "memory per queued task (1,000,000 spawned, not run)",
            Workload::PingPong => "1,000 pairs × 100 ping-pongs over oneshot channels",
            Workload::Chain => "chain of 100,000 tasks, each spawning the next",
            Workload::Yield => "200 tasks × 1,000 `yield_now`",
            Workload::Sleep => "100,000 tasks sleeping 1 s at once (wall time)",
            Workload::SleepBytes => "memory per sleeping task (100,000 asleep)",
            Workload::Echo => "TCP echo, 50 connections × 1,000 echoes of 64 B",
            Workload::IdleConnections => {
                "memory per idle TCP connection (1,000; both ends in the process)"
            }
        }
    }

    /// What its figure measures.
    pub fn unit(self) -> Unit {
        match self {
            Workload::QueuedBytes | Workload::SleepBytes => Unit::BytesPerTask,
            Workload::IdleConnections => Unit::BytesPerConnection,
            _ => Unit::Millis,
        }
    }

    /// How many tasks it spawns in all: for the network workloads, the server's
    /// (one accepting, one per connection) and the clients'.
    pub fn tasks(self) -> usize {
        match self {
            Workload::Spawn | Workload::QueuedBytes => SPAWNS,
            Workload::PingPong => 2 * PING_PONG_PAIRS,
            Workload::Chain => CHAIN,
            Workload::Yield => YIELDERS,
            Workload::Sleep | Workload::SleepBytes => SLEEPERS,
            Workload::Echo => 1 + 2 * ECHO_CONNECTIONS,
            Workload::IdleConnections => 1 + IDLE_CONNECTIONS,
        }
    }

    /// What a memory figure is divided by: its tasks, or its connections.
    fn memory_divisor(self) -> usize {
        match self.unit() {
            Unit::BytesPerConnection => IDLE_CONNECTIONS,
            _ => self.tasks(),
        }
    }

    /// Runs it once on `runtime`, unmeasured (criterion does its own timing).
    pub fn drive(self, runtime: &dyn Runtime) {
        match self {
            Workload::Spawn => runtime.spawn_and_await(SPAWNS),
            Workload::QueuedBytes => runtime.spawn_queued(SPAWNS),
            Workload::PingPong => runtime.ping_pong(PING_PONG_PAIRS, PING_PONG_ROUNDS),
            Workload::Chain => runtime.chain(CHAIN),
            Workload::Yield => runtime.yield_many(YIELDERS, YIELDS),
            Workload::Sleep | Workload::SleepBytes => runtime.sleep_many(SLEEPERS, SLEEP),
            Workload::Echo => runtime.echo(ECHO_CONNECTIONS, ECHO_MESSAGES, ECHO_MESSAGE_BYTES),
            Workload::IdleConnections => runtime.idle_connections(IDLE_CONNECTIONS),
        }
    }

    /// Runs it once on `runtime` and measures it in its [`unit`](Workload::unit).
    ///
    /// Fails only if the memory figures cannot be read (not Linux).
    pub fn measure(self, runtime: &dyn Runtime) -> Result<f64, String> {
        match self.unit() {
            Unit::Millis => {
                let start = Instant::now();
                self.drive(runtime);
                Ok(start.elapsed().as_secs_f64() * 1000.0)
            }
            Unit::BytesPerTask | Unit::BytesPerConnection => {
                let baseline = rss::Baseline::now()?;
                self.drive(runtime);
                let growth = baseline.peak_growth_bytes()?;
                Ok(growth as f64 / self.memory_divisor() as f64)
            }
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(name: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|workload| workload.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Workload::ALL.iter().map(|w| w.as_str()).collect();
                format!(
                    "unknown workload `{name}` (expected one of {})",
                    known.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload's name reads back as that workload; a wrong one is an error
    /// that lists them all.
    #[test]
    fn names_round_trip() {
        for workload in Workload::ALL {
            assert_eq!(workload.as_str().parse(), Ok(workload));
        }
        let error = "spwan".parse::<Workload>().unwrap_err();
        assert!(
            error.contains("`spwan`") && error.contains("sleep-bytes"),
            "{error}"
        );
    }

    /// Figures keep three significant digits or so, whatever their size.
    #[test]
    fn figures_are_formatted_for_their_size() {
        assert_eq!(Unit::Millis.format(1023.4), "1.023 s");
        assert_eq!(Unit::Millis.format(184.4), "184 ms");
        assert_eq!(Unit::Millis.format(15.24), "15.2 ms");
        assert_eq!(Unit::Millis.format(7.216), "7.22 ms");
        assert_eq!(Unit::BytesPerTask.format(384.6), "385 B");
        assert_eq!(Unit::BytesPerConnection.format(1999.5), "2000 B");
    }

    /// Idle connections are counted per connection, not per task: the accepting
    /// task is not a connection.
    #[test]
    fn idle_connections_are_divided_by_connections() {
        let idle = Workload::IdleConnections;
        assert_eq!(idle.unit(), Unit::BytesPerConnection);
        assert_eq!(idle.memory_divisor(), IDLE_CONNECTIONS);
        assert_eq!(Workload::SleepBytes.memory_divisor(), SLEEPERS);
    }
}
