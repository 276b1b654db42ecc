//! A small HTTP/1.1 server on our executor and reactor: `GET /` answers `hello`.
//!
//! ```text
//! cargo run --release -p async-scratch --example http                  # 127.0.0.1:8080
//! cargo run --release -p async-scratch --example http 127.0.0.1:9000
//! curl -i http://127.0.0.1:8080/
//! ```
//!
//! It prints the address it listens on. Each connection is a task that reads
//! requests and answers them in order, keeping the connection open between them
//! (keep-alive) until the client closes it or asks to (`Connection: close`). What a
//! request means and what to answer is decided in [`request`], which has no I/O and
//! is shared, file and all, with the same server on tokio and on smol
//! (`crates/bench/examples/http_tokio.rs`, `http_smol.rs`), so that `wrk` run against
//! the three measures their runtimes, not three parsers. This file is the part that
//! is ours: the sockets and the loop. Stop it with Ctrl-C.

mod request;

use async_scratch::executor::{spawn, Executor};
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::reactor::Reactor;
use request::Next;
use std::io;

/// Where to listen when no address is given.
const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";

/// How much one read may take: a page, which holds a typical request's head whole.
const CHUNK: usize = 4096;

fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
    let reactor = Reactor::new()?;
    let handle = reactor.handle();
    let executor = Executor::builder().park(reactor).build();
    executor.block_on(async {
        let mut listener = TcpListener::bind(&handle, address.as_str())?;
        println!(
            "http server listening on http://{}/",
            listener.local_addr()?
        );
        loop {
            let (connection, peer) = listener.accept().await?;
            // Detached: nobody waits for a connection to end; it reports its own error.
            let _detached = spawn(async move {
                if let Err(error) = serve(connection).await {
                    eprintln!("{peer}: {error}");
                }
            });
        }
    })
}

/// Answers the requests of one connection, in order, until it closes or should.
async fn serve(mut connection: TcpStream) -> io::Result<()> {
    // Nagle's algorithm would hold back a reply while an earlier one is unacknowledged.
    connection.set_nodelay(true)?;
    let mut buffered = Vec::with_capacity(CHUNK);
    let mut outgoing = Vec::new();
    let mut chunk = [0; CHUNK];
    loop {
        match request::next(&buffered) {
            Next::ReadMore => match connection.read(&mut chunk).await? {
                0 => return Ok(()), // the client closed (between requests, or mid-head)
                n => buffered.extend_from_slice(&chunk[..n]),
            },
            Next::Reply(reply) => {
                reply.encode(&mut outgoing);
                connection.write_all(&outgoing).await?;
                if reply.close {
                    return Ok(());
                }
                buffered.drain(..reply.consumed);
            }
        }
    }
}
