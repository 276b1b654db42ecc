//! Step 6 with threads: every request a job on step 1's pool, each job a blocking
//! client. While a worker waits for its reply, in `read`, the kernel holds the worker
//! thread; so the pool has as many requests in flight as it has workers, as in step 1.

use super::conclude;
use super::protocol::{self, MESSAGE_LEN};
use super::server::Server;
use crate::steps::{StepError, Workload};
use async_scratch::pool::ThreadPool;
use async_scratch::run_all::run_all;
use async_scratch::timeline::Timeline;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    let server = Server::start(workload.work.duration).map_err(StepError::Network)?;
    let pool = ThreadPool::new(workload.workers)?;
    let (address, patience) = (server.address(), protocol::patience(workload.work.duration));
    let jobs = (0..workload.units).map(|unit| {
        let timeline = timeline.clone();
        move || timeline.record(unit, || request(address, unit, patience))
    });
    let outcomes = run_all(&pool, jobs);
    let clients = outcomes
        .into_iter()
        .enumerate()
        .try_for_each(|(unit, outcome)| {
            outcome?.map_err(|error| StepError::Request { unit, error })
        });
    conclude(server, clients)
}

/// One exchange with the server, blocking the calling thread at each step; every
/// wait bounded by `patience`.
fn request(server: SocketAddr, unit: usize, patience: Duration) -> io::Result<()> {
    // A socket timeout comes out as `WouldBlock` ("resource temporarily
    // unavailable"): said here in words instead.
    exchange(server, unit, patience).map_err(|error| match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => protocol::no_answer(patience),
        _ => error,
    })
}

fn exchange(server: SocketAddr, unit: usize, patience: Duration) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&server, patience)?;
    stream.set_read_timeout(Some(patience))?;
    stream.set_write_timeout(Some(patience))?;
    stream.write_all(&protocol::message(unit))?;
    let mut reply = [0; MESSAGE_LEN];
    stream.read_exact(&mut reply)?;
    protocol::check_reply(unit, reply)?;
    protocol::check_end(stream.read(&mut [0; 1])?)
}
