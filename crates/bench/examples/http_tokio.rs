//! The HTTP server of `crates/async-scratch/examples/http`, on tokio's current-thread
//! runtime, for `wrk` to compare with ours: same requests, same replies, same
//! parsing (its `request.rs` is included below, file and all), one thread.
//!
//! ```text
//! cargo run --release -p async-scratch-bench --example http_tokio             # 127.0.0.1:8081
//! cargo run --release -p async-scratch-bench --example http_tokio 127.0.0.1:9001
//! ```
//!
//! Written as a tokio user writes it: `TcpListener` and `TcpStream` from `tokio::net`,
//! reads and writes through `AsyncReadExt` and `AsyncWriteExt`, a task per
//! connection with `tokio::spawn`. (The runtime is built by hand, not by
//! `#[tokio::main]`, which needs tokio's `macros` feature; it builds the same thing.)

#[path = "../../async-scratch/examples/http/request.rs"]
mod request;

use request::Next;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where to listen when no address is given: next to ours (8080), so that all three
/// servers can run at once.
const DEFAULT_ADDRESS: &str = "127.0.0.1:8081";

/// How much one read may take, as in ours.
const CHUNK: usize = 4096;

fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(address.as_str()).await?;
        println!(
            "http server (tokio) listening on http://{}/",
            listener.local_addr()?
        );
        loop {
            let (connection, peer) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(error) = serve(connection).await {
                    eprintln!("{peer}: {error}");
                }
            });
        }
    })
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
