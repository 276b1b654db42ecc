//! Step 6: the unit of work becomes a real request. A server on our own runtime (a
//! reactor and an executor, on a thread of its own) answers each request over
//! loopback TCP after the unit's duration; the same units then run as requests, first
//! from blocking clients on step 1's pool, then from coroutines on one thread, whose
//! sockets wait in a reactor. Two rows of the table, side by side with steps 1 and 4:
//! the wait is now the kernel's, not a timer's, and the result is the same.
//!
//! Last, [`many`] holds many connections open at once on one thread, and measures
//! what one costs in memory.
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | the request and reply on the wire, and how long a client waits |
//! | [`server`] | the loopback server, and how it is stopped |
//! | [`threads`] | the blocking client, one per pool worker |
//! | [`coroutines`] | the async client, every request a task |
//! | [`gate`] | an async barrier, to have every connection open at one instant |
//! | [`many`] | the many-connections run and its memory per connection |

use super::{Lanes, Part, Step, StepError, Workload};
use crate::fd_limit::{self, OpenFiles};
use async_scratch::work::WorkKind;
use server::Server;

pub mod coroutines;
pub mod gate;
pub mod many;
pub mod protocol;
pub mod server;
pub mod threads;

/// Step 6's two rows of the table.
pub const ROWS: [Step; 2] = [
    Step {
        number: 6,
        part: Some(Part::Threads),
        look_for: "One lane per worker, as in step 1: each worker blocked in a socket read until its reply comes, so as many requests at a time as there are workers.",
        lanes: Lanes::Threads,
        name: "requests-threads",
        what: "every unit a request: blocking, on a pool",
        run: threads::run,
        // The server waits, whatever `--work` says: every worker overlaps.
        expected_time: |workload, _cores| workload.spread_over(workload.workers),
        note: sleep_only_note,
    },
    Step {
        number: 6,
        part: Some(Part::Coroutines),
        look_for: "One lane per task, all on one thread, as in step 4: every request in flight at once, each task woken by the reactor when its reply arrives.",
        lanes: Lanes::Tasks,
        name: "requests-coroutines",
        what: "every unit a request: coroutines, 1 thread",
        run: coroutines::run,
        expected_time: |workload, _cores| workload.work.duration,
        note: |_| None, // said once, before the first row

    },
];

/// File descriptors per connection: the client's socket and the server's, both in
/// this process.
const DESCRIPTORS_PER_CONNECTION: u64 = 2;

/// Descriptors kept free of connections: those the tour holds already (the standard
/// streams, a few more under a test harness), the two reactors' own (an epoll and an
/// eventfd each), and the listener, with room to spare.
const DESCRIPTORS_KEPT: u64 = 64;

/// Raises the limit on open files as far as it goes, and returns it with how many
/// connections it leaves room for.
fn room_for_connections() -> Result<(usize, OpenFiles), String> {
    let open_files = fd_limit::raise_to_hard_limit()
        .map_err(|error| format!("cannot read or raise the limit on open files: {error}"))?;
    let free = open_files.soft.saturating_sub(DESCRIPTORS_KEPT);
    let room = usize::try_from(free / DESCRIPTORS_PER_CONNECTION).unwrap_or(usize::MAX);
    Ok((room, open_files))
}

/// A row's outcome, once its clients are done: the server's failure comes first,
/// since the clients' errors follow from it (a server that stops closes every
/// connection, and each client then reads an early end of stream).
fn conclude(server: Server, clients: Result<(), StepError>) -> Result<(), StepError> {
    server.stop().map_err(StepError::Network).and(clients)
}

/// On `cpu` work, that step 6 still waits: its unit is the server's answer, and the
/// server waits the unit's duration whatever `--work` says (a server's work happens
/// elsewhere, and what the client does meanwhile is wait).
fn sleep_only_note(workload: &Workload) -> Option<String> {
    (workload.work.kind == WorkKind::Cpu).then(|| {
        "note: step 6's unit is a request, which the server answers after the unit's \
         time: the client waits, whatever --work says"
            .to_string()
    })
}
