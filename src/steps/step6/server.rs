//! The loopback server step 6's clients talk to, on our own runtime: a reactor and an
//! executor on a thread of their own, one task per connection, each answering its
//! request after the unit's duration (see [`protocol`](super::protocol)).
//!
//! It stands for a remote machine, so it lives apart from the clients: its own
//! thread, its own executor, its own reactor. The tour must never hang on it, so
//! [`Server::stop`] asks it to stop from the outside (a [`StopSignal`] its accept loop
//! watches) and waits a bounded time; a server that failed says why, and a server
//! that does not stop in time is left behind with a message, never waited for.

use super::protocol::MESSAGE_LEN;
use async_scratch::executor::{spawn, Executor};
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::reactor::Reactor;
use async_scratch::time::sleep;
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How many connections the kernel may hold completed but not yet accepted. std
/// listens with 128, and a burst of 10,000 connects overflows that: the kernel then
/// drops the handshakes it has no room for, and each client resends its own after a
/// second, which would be most of the many-connections run's time. 4,096 is Linux's
/// default ceiling (`net.core.somaxconn`), to which a larger request is cut down.
const BACKLOG: libc::c_int = 4096;

/// How long [`Server::stop`] waits for the server's thread: ending the accept loop
/// and dropping the connections takes microseconds, so this is only reached if the
/// server is stuck, and then the tour goes on without it.
const STOP_BOUND: Duration = Duration::from_secs(5);

/// A running server; stop it with [`Server::stop`] (dropping it stops it too, without
/// a report).
pub struct Server {
    address: SocketAddr,
    stop: Arc<StopSignal>,
    /// What the server's thread sends as its last act: how serving ended.
    finished: mpsc::Receiver<Result<(), String>>,
    /// `None` once stopped, or left behind.
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1, answering each request after
    /// `reply_after`.
    ///
    /// # Errors
    /// If the thread, the reactor or the listening socket cannot be made.
    pub fn start(reply_after: Duration) -> Result<Server, String> {
        let (listening, address) = mpsc::channel();
        let (finish, finished) = mpsc::channel();
        let stop = Arc::new(StopSignal::default());
        let stop_seen = stop.clone();
        let thread = thread::Builder::new()
            .name("step6-server".to_string())
            .spawn(move || {
                let outcome = serve(reply_after, &stop_seen, &listening);
                let _ = finish.send(outcome); // the tour may have stopped listening
            })
            .map_err(|error| format!("cannot start the server's thread: {error}"))?;
        // The thread answers at once: binding never waits. If it panicked first, the
        // channel closes and `recv` returns.
        let address = match address.recv() {
            Ok(Ok(address)) => address,
            Ok(Err(error)) => return Err(format!("the server cannot listen: {error}")),
            Err(_) => return Err("the server's thread ended before listening".to_string()),
        };
        Ok(Server {
            address,
            stop,
            finished,
            thread: Some(thread),
        })
    }

    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the server and says how serving went: `Err` if it failed, or if it did
    /// not stop within [`STOP_BOUND`] (it is then left running, detached).
    pub fn stop(mut self) -> Result<(), String> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), String> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.stop.stop();
        match self.finished.recv_timeout(STOP_BOUND) {
            Ok(outcome) => {
                let _ = thread.join(); // it has sent its last word: it ends now
                outcome
            }
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "the server did not stop within {} s; the tour left it behind",
                STOP_BOUND.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                Err("the server's thread panicked".to_string())
            }
        }
    }
}

impl Drop for Server {
    /// A server not stopped by [`Server::stop`] (a client failed first, and `?` left
    /// early) is stopped here, its report dropped: the client's error is the one to
    /// tell.
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// The server's thread: listens, tells the tour where, and serves until stopped.
fn serve(
    reply_after: Duration,
    stop: &StopSignal,
    listening: &mpsc::Sender<io::Result<SocketAddr>>,
) -> Result<(), String> {
    let (executor, listener) = match listen() {
        Ok(ready) => ready,
        Err(error) => {
            let _ = listening.send(Err(error));
            return Ok(()); // `start` reports it
        }
    };
    let _ = listening.send(listener.local_addr());
    executor.block_on(accept_until_stopped(listener, reply_after, stop))
}

/// The server's executor, parked in its reactor, and its listening socket.
fn listen() -> io::Result<(Executor, TcpListener)> {
    let reactor = Reactor::new()?;
    let handle = reactor.handle();
    // No diagnostics: the server stands in for another machine, so its books are not
    // what step 6 measures, and they would count in the memory per connection.
    let executor = Executor::builder().park(reactor).diagnostics(false).build();
    let listener = TcpListener::bind(&handle, "127.0.0.1:0")?;
    lengthen_backlog(&listener)?;
    Ok((executor, listener))
}

/// Gives `listener` a backlog of [`BACKLOG`]. Our `bind`, as std's, listens with 128
/// and takes no backlog, but Linux lets a listening socket call `listen` again, and
/// the second call only changes the backlog.
fn lengthen_backlog(listener: &TcpListener) -> io::Result<()> {
    // SAFETY: `listen` takes a descriptor and an integer, and touches no memory of
    // ours; the descriptor is the listener's, open for as long as `listener` lives.
    if unsafe { libc::listen(listener.as_fd().as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Accepts connections, each answered by a task of its own, until `stop`. When it
/// returns, `block_on` returns and the executor, dropped, drops every task still
/// answering, closing its connection.
async fn accept_until_stopped(
    mut listener: TcpListener,
    reply_after: Duration,
    stop: &StopSignal,
) -> Result<(), String> {
    let first_error: Rc<RefCell<Option<String>>> = Rc::default();
    loop {
        let accepted = poll_fn(|cx| {
            if stop.poll_stopped(cx).is_ready() {
                return Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        })
        .await;
        let connection = match accepted {
            None => break,
            Some(Ok((connection, _peer))) => connection,
            Some(Err(error)) => return Err(format!("the server cannot accept: {error}")),
        };
        let first_error = first_error.clone();
        // Detached: nobody waits for an answer to be sent; a failure is kept instead.
        let _detached = spawn(async move {
            if let Err(error) = answer(connection, reply_after).await {
                first_error.borrow_mut().get_or_insert(error.to_string());
            }
        });
    }
    let first_error = first_error.borrow_mut().take();
    match first_error {
        Some(error) => Err(format!("the server failed to answer a request: {error}")),
        None => Ok(()),
    }
}

/// One connection: reads the request, waits the unit's duration, echoes the request
/// as the reply, and closes (by dropping the connection).
async fn answer(mut connection: TcpStream, reply_after: Duration) -> io::Result<()> {
    let mut request = [0; MESSAGE_LEN];
    connection.read_exact(&mut request).await?;
    sleep(reply_after).await;
    connection.write_all(&request).await
}

/// A stop request that crosses threads: [`stop`](StopSignal::stop) from any thread,
/// seen by the task that polls [`poll_stopped`](StopSignal::poll_stopped), which is
/// woken for it. (tokio would use a `oneshot` channel or a `CancellationToken`; this
/// is the least of one: a flag and one waker.)
#[derive(Default)]
struct StopSignal {
    /// The flag and the waker under one lock, so that a stop cannot fall between the
    /// poll's look at the flag and its storing the waker, and be missed.
    state: Mutex<StopState>,
}

#[derive(Default)]
struct StopState {
    stopped: bool,
    waker: Option<Waker>,
}

impl StopSignal {
    fn stop(&self) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.stopped = true;
            state.waker.take()
        };
        // Woken outside the lock: a wake may run code that polls this signal.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// `Ready` once stopped; otherwise keeps `cx`'s waker for the stop.
    fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.stopped {
            return Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::Server;
    use crate::steps::step6::protocol::{self, MESSAGE_LEN};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// A request is answered with its own id, then the server closes; stopped after,
    /// the server reports nothing wrong.
    #[test]
    fn a_request_is_echoed_then_closed() {
        let server = Server::start(Duration::from_millis(1)).unwrap();
        let mut client = TcpStream::connect(server.address()).unwrap();
        client.write_all(&protocol::message(42)).unwrap();
        let mut reply = [0; MESSAGE_LEN];
        client.read_exact(&mut reply).unwrap();
        protocol::check_reply(42, reply).unwrap();
        assert_eq!(
            client.read(&mut [0; 1]).unwrap(),
            0,
            "closed after the reply"
        );
        assert_eq!(server.stop(), Ok(()));
    }

    /// Stopping does not wait for an answer still due: a server asked to stop an hour
    /// before its reply stops at once, and the waiting client reads the end of the
    /// stream instead of hanging. (The bound asserted is far above the microseconds
    /// a stop takes, and far below the hour, so a loaded machine cannot fail it.)
    #[test]
    fn stopping_drops_the_answers_still_due() {
        let server = Server::start(Duration::from_secs(3600)).unwrap();
        let mut client = TcpStream::connect(server.address()).unwrap();
        client.write_all(&protocol::message(7)).unwrap();
        let started = Instant::now();
        assert_eq!(server.stop(), Ok(()));
        let mut reply = [0; MESSAGE_LEN];
        let read = client.read_exact(&mut reply);
        assert!(read.is_err(), "no reply: the connection was closed");
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
