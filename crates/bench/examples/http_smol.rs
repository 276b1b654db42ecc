//! The HTTP server of `crates/async-scratch/examples/http`, on smol's `LocalExecutor`,
//! for `wrk` to compare with ours: same requests, same replies, same parsing (its
//! `request.rs` is included below, file and all), one thread.
//!
//! ```text
//! cargo run --release -p async-scratch-bench --example http_smol             # 127.0.0.1:8082
//! cargo run --release -p async-scratch-bench --example http_smol 127.0.0.1:9002
//! ```
//!
//! Written as a smol user writes it: `smol::net` sockets, reads and writes through
//! `smol::io`'s extension traits, a detached task per connection on a
//! `LocalExecutor` run by `smol::block_on` (which also drives smol's reactor).

#[path = "../../async-scratch/examples/http/request.rs"]
mod request;

use request::Next;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::LocalExecutor;
use std::io;

/// Where to listen when no address is given: next to ours (8080) and tokio's (8081),
/// so that all three servers can run at once.
const DEFAULT_ADDRESS: &str = "127.0.0.1:8082";

/// How much one read may take, as in ours.
const CHUNK: usize = 4096;

fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
    let executor = LocalExecutor::new();
    smol::block_on(executor.run(async {
        let listener = TcpListener::bind(address.as_str()).await?;
        println!(
            "http server (smol) listening on http://{}/",
            listener.local_addr()?
        );
        loop {
            let (connection, peer) = listener.accept().await?;
            // Detached: dropping a smol `Task` would cancel it.
            executor
                .spawn(async move {
                    if let Err(error) = serve(connection).await {
                        eprintln!("{peer}: {error}");
                    }
                })
                .detach();
        }
    }))
}

/// Answers the requests of one connection, in order, until it closes or should.
async fn serve(mut connection: TcpStream) -> io::Result<()> {
    connection.set_nodelay(true)?;
    let mut buffered = Vec::with_capacity(CHUNK);
    let mut outgoing = Vec::new();
    let mut chunk = [0; CHUNK];
    loop {
        match request::next(&buffered) {
            Next::ReadMore => match connection.read(&mut chunk).await? {
                0 => return Ok(()),
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
