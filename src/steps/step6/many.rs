//! Step 6's last run: many connections at once, every one a coroutine on one thread.
//! Each makes its request (connect, send), then waits at a [`Gate`] until all have,
//! so that at one instant every connection is open; then each reads its reply. The
//! resident memory read at that instant, less the memory before, divided by the
//! connections, is what a connection costs.
//!
//! Both ends are in this process (the server is a thread of the tour), so each
//! connection takes two file descriptors, and the memory per connection is both
//! ends': the client's task and socket, and the server's. The kernel's socket buffers
//! are not resident memory of the process, and are not counted.

use super::coroutines::{record, runtime, spawn_each, Client};
use super::gate::Gate;
use super::server::Server;
use super::{room_for_connections, DESCRIPTORS_PER_CONNECTION};
use crate::fd_limit::OpenFiles;
use crate::memory;
use async_scratch::join_all::join_all;
use async_scratch::time;
use async_scratch::timeline::{peak_in_flight, threads_used, Timeline};
use std::io;
use std::time::{Duration, Instant};

/// What the many-connections run did and measured.
#[derive(Debug)]
pub struct ManyConnections {
    /// `--connections`: how many were asked for.
    pub asked: usize,
    /// How many ran: `asked`, or fewer if the limit on open files left less room.
    pub connections: usize,
    /// The limit on open files, after raising it to the hard limit.
    pub open_files: OpenFiles,
    pub wall: Duration,
    pub threads: usize,
    /// The most connections in flight at one instant, counted from their spans.
    pub peak_in_flight: usize,
    /// Resident memory with every connection open, less the memory before.
    pub rss_growth_kib: Option<u64>,
}

impl ManyConnections {
    /// The memory growth per connection, in bytes.
    pub fn bytes_per_connection(&self) -> Option<u64> {
        let growth = self.rss_growth_kib?;
        Some(growth * 1024 / self.connections.max(1) as u64)
    }

    /// Why fewer connections ran than were asked for, in words; `None` if all ran.
    pub fn limit_note(&self) -> Option<String> {
        (self.connections < self.asked).then(|| {
            format!(
                "the hard limit on open files is {} (`ulimit -Hn`), and each connection takes \
                 {DESCRIPTORS_PER_CONNECTION} (both ends are in this process): {} of the {} \
                 connections fit; raise the hard limit (as root) to run them all",
                self.open_files.hard, self.connections, self.asked
            )
        })
    }
}

/// Runs `asked` connections at once (or as many as the open-file limit allows), each
/// answered after `unit`.
pub fn run(asked: usize, unit: Duration) -> Result<ManyConnections, String> {
    let (room, open_files) = room_for_connections()?;
    let connections = asked.min(room);
    if connections == 0 {
        return Err(format!(
            "the limit on open files, {}, leaves no room for a connection (`ulimit -Hn`)",
            open_files.soft
        ));
    }
    let server = Server::start(unit)?;
    let (executor, client) = runtime(server.address(), unit)
        .map_err(|error| format!("cannot start the client's reactor: {error}"))?;
    let timeline = Timeline::new();
    let before = memory::rss_kib();
    let started = Instant::now();
    let (all_open, outcomes) = executor.block_on(async {
        let gate = Gate::new(connections + 1); // and this task, to read the memory
        let tasks = spawn_each(connections, |id| {
            held(client.clone(), id, gate.clone(), timeline.clone())
        })
        .await;
        gate.arrive().await;
        let all_open = memory::rss_kib();
        (all_open, join_all(tasks).await)
    });
    let wall = started.elapsed();
    let clients = outcomes
        .into_iter()
        .enumerate()
        .try_for_each(|(id, outcome)| {
            let error = match outcome {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => error.to_string(),
                Err(error) => error.to_string(),
            };
            Err(format!("connection {id} of {connections} failed: {error}"))
        });
    // The server's failure first: the clients' errors follow from it.
    server.stop().and(clients)?;
    let spans = timeline.spans();
    Ok(ManyConnections {
        asked,
        connections,
        open_files,
        wall,
        threads: threads_used(&spans),
        peak_in_flight: peak_in_flight(&spans),
        rss_growth_kib: before.zip(all_open).map(|(b, a)| a.saturating_sub(b)),
    })
}

/// One connection, held open at `gate` between its request and its reply, recorded
/// on `timeline` from its first poll to the end of the reply.
async fn held(client: Client, id: usize, gate: Gate, timeline: Timeline) -> io::Result<()> {
    let start = timeline.at(time::now());
    let sent = client.send(id).await;
    // Arrives even if sending failed: every other connection waits for all to arrive.
    gate.arrive().await;
    let outcome = match sent {
        Ok(stream) => client.receive(stream, id).await,
        Err(error) => Err(error),
    };
    record(&timeline, id, start);
    outcome
}
