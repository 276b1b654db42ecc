//! Step 6 with coroutines: every request a task on one executor, whose thread waits for
//! all their sockets at once in the reactor. A task waiting for its reply holds no
//! thread, only a stored waker, so every request is in flight at once, as every timer
//! was in step 4; but here what wakes a task is the kernel saying that its socket has
//! bytes to read.

use super::protocol::{self, MESSAGE_LEN};
use super::server::Server;
use super::{conclude, room_for_connections};
use crate::steps::{StepError, Workload};
use async_scratch::executor::JoinHandle;
use async_scratch::executor::{spawn, yield_now, Executor, DEFAULT_STALL_THRESHOLD};
use async_scratch::join_all::join_all;
use async_scratch::net::TcpStream;
use async_scratch::reactor::{Handle, Reactor};
use async_scratch::time::{self, timeout};
use async_scratch::timeline::{Lane, Span, Timeline};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Spawns between two yields, as in step 4: spawning is work too, and a long run of
/// it in one poll would hold the thread past the stall watchdog's threshold.
const SPAWNS_PER_TURN: usize = 4096;

pub fn run(workload: &Workload, timeline: &Timeline) -> Result<(), StepError> {
    check_room(workload.units)?;
    let server = Server::start(workload.work.duration).map_err(StepError::Network)?;
    let (executor, client) =
        runtime(server.address(), workload.work.duration).map_err(|error| {
            StepError::Network(format!("cannot start the client's reactor: {error}"))
        })?;
    let outcomes = executor.block_on(async {
        let tasks = spawn_each(workload.units, |unit| {
            client.clone().recorded(unit, timeline.clone())
        })
        .await;
        join_all(tasks).await
    });
    let clients = outcomes
        .into_iter()
        .enumerate()
        .try_for_each(|(unit, outcome)| {
            outcome?.map_err(|error| StepError::Request { unit, error })
        });
    conclude(server, clients)
}

/// Spawns `task(i)` for each `i` below `count`, in order, and returns their handles.
/// It yields now and then, as step 4 does, so that its own poll never holds the
/// thread long enough for the stall watchdog to report it.
pub async fn spawn_each<F>(
    count: usize,
    mut task: impl FnMut(usize) -> F,
) -> Vec<JoinHandle<F::Output>>
where
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        tasks.push(spawn(task(i)));
        if i % SPAWNS_PER_TURN == SPAWNS_PER_TURN - 1 {
            yield_now().await;
        }
    }
    tasks
}

/// Whether `units` connections, all open at once, fit under the limit on open files
/// (raised first): a clear refusal beats the `EMFILE` of the connection that does
/// not fit.
fn check_room(units: usize) -> Result<(), StepError> {
    let (room, open_files) = room_for_connections().map_err(StepError::Network)?;
    if units <= room {
        return Ok(());
    }
    Err(StepError::Network(format!(
        "every unit's connection is open at once, and {units} do not fit under the limit \
         on open files, {} (`ulimit -Hn`; each connection takes two descriptors, one per \
         end): {room} do; run fewer --units, or raise the hard limit",
        open_files.soft
    )))
}

/// The clients' side of the runtime: an executor that parks in a reactor of its own
/// (with the stall watchdog on, as in step 4), and a [`Client`] whose sockets register
/// with that reactor.
pub fn runtime(server: SocketAddr, unit: Duration) -> io::Result<(Executor, Client)> {
    let reactor = Reactor::new()?;
    let client = Client {
        server,
        handle: reactor.handle(),
        patience: protocol::patience(unit),
    };
    let executor = Executor::builder()
        .park(reactor)
        .stall_watchdog(DEFAULT_STALL_THRESHOLD)
        .build();
    Ok((executor, client))
}

/// What a coroutine client needs: where the server is, the reactor its sockets wait
/// in, and how long to wait for each half of an exchange.
#[derive(Clone)]
pub struct Client {
    server: SocketAddr,
    handle: Handle,
    patience: Duration,
}

impl Client {
    /// One exchange as unit `unit`, recorded on `timeline` from its first poll to
    /// the end of the server's reply.
    async fn recorded(self, unit: usize, timeline: Timeline) -> io::Result<()> {
        let start = timeline.at(time::now());
        let outcome = match self.send(unit).await {
            Ok(stream) => self.receive(stream, unit).await,
            Err(error) => Err(error),
        };
        record(&timeline, unit, start);
        outcome
    }

    /// The first half of an exchange: connects and sends the request.
    pub async fn send(&self, unit: usize) -> io::Result<TcpStream> {
        let sending = async {
            let mut stream = TcpStream::connect(&self.handle, self.server).await?;
            stream.write_all(&protocol::message(unit)).await?;
            Ok(stream)
        };
        within(self.patience, sending).await
    }

    /// The second half: reads the reply, and on to the end of the stream.
    pub async fn receive(&self, mut stream: TcpStream, unit: usize) -> io::Result<()> {
        let receiving = async {
            let mut reply = [0; MESSAGE_LEN];
            stream.read_exact(&mut reply).await?;
            protocol::check_reply(unit, reply)?;
            protocol::check_end(stream.read(&mut [0; 1]).await?)
        };
        within(self.patience, receiving).await
    }
}

/// `io` if it ends within `patience`, or a `TimedOut` error that says so.
async fn within<T>(
    patience: Duration,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    timeout(patience, io)
        .await
        .unwrap_or_else(|_elapsed| Err(protocol::no_answer(patience)))
}

/// The span of a unit that started at `start` and ends now, on the executor's clock
/// (as step 4's units record theirs).
pub fn record(timeline: &Timeline, unit: usize, start: Duration) {
    timeline.push(Span {
        unit,
        lane: Lane::current_thread(),
        start,
        end: timeline.at(time::now()),
    });
}
