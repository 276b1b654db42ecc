//! An echo server on our executor and reactor: every byte a client sends comes back.
//!
//! ```text
//! cargo run -p async-scratch --example echo               # 127.0.0.1, a free port
//! cargo run -p async-scratch --example echo 127.0.0.1:7000
//! ```
//!
//! It prints the address it listens on; try it with `nc 127.0.0.1 PORT`. One thread
//! serves every connection: each is a task, which waits by returning `Pending` while
//! its socket has nothing to read, and the executor waits in `epoll_wait` for all of
//! them at once. Stop it with Ctrl-C.

use async_scratch::executor::{spawn, Executor};
use async_scratch::net::{TcpListener, TcpStream};
use async_scratch::reactor::Reactor;
use std::io;

/// Where to listen when no address is given: port 0 lets the kernel pick a free one.
const DEFAULT_ADDRESS: &str = "127.0.0.1:0";

/// How much one read may take: a typical page, large enough for a line of text or a
/// burst of a few packets.
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
        println!("echo server listening on {}", listener.local_addr()?);
        loop {
            let (connection, peer) = listener.accept().await?;
            // Detached: nobody waits for a connection to end; it reports its own error.
            let _detached = spawn(async move {
                if let Err(error) = echo(connection).await {
                    eprintln!("{peer}: {error}");
                }
            });
        }
    })
}

/// Sends back everything `connection` receives, until the client closes its side.
async fn echo(mut connection: TcpStream) -> io::Result<()> {
    let mut buffer = [0; CHUNK];
    loop {
        match connection.read(&mut buffer).await? {
            0 => return Ok(()), // the client is done
            n => connection.write_all(&buffer[..n]).await?,
        }
    }
}
