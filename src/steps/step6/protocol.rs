//! What goes over the wire: one request and one reply per connection, each the unit's
//! id as 8 bytes. The reply echoes the id, so a client knows that the answer it read
//! is its own, not a neighbour's.
//!
//! One exchange, as both clients and the server run it:
//! 1. the client connects and writes its request;
//! 2. the server reads it, waits the unit's duration (the stand-in for the work a
//!    real server would do), writes the reply and closes the connection;
//! 3. the client reads the reply, then reads on until the end of the stream.
//!
//! Why the client waits for the server to close: the side that closes first keeps the
//! connection in `TIME_WAIT` for a minute, and so long its port pair cannot be used
//! again. On the server's side that costs nothing (its port is the listener's); on the
//! client's it would hold one of the ~28,000 ephemeral ports Linux hands out, and two
//! runs of 10,000 connections back to back could run out of them.

use std::io;
use std::time::Duration;

/// The length of a request and of a reply: a `u64`.
pub const MESSAGE_LEN: usize = 8;

/// A client's patience beyond the unit's own duration, for each exchange. Far above
/// any loopback round trip on a loaded machine; only a server that stopped answering
/// reaches it, and then the tour reports it instead of hanging.
const GRACE: Duration = Duration::from_secs(30);

/// How long a client waits for one exchange with a server that waits `unit` first.
pub fn patience(unit: Duration) -> Duration {
    unit.saturating_add(GRACE)
}

/// The error of a client that waited `patience` for the server in vain.
pub fn no_answer(patience: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer from the server within {} s", patience.as_secs()),
    )
}

/// The request (and the reply) for unit `unit`.
pub fn message(unit: usize) -> [u8; MESSAGE_LEN] {
    (unit as u64).to_le_bytes()
}

/// The unit a request names.
pub fn unit_of(request: [u8; MESSAGE_LEN]) -> u64 {
    u64::from_le_bytes(request)
}

/// Whether `reply` answers unit `unit`'s request.
pub fn check_reply(unit: usize, reply: [u8; MESSAGE_LEN]) -> io::Result<()> {
    if reply == message(unit) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the reply names unit {}", unit_of(reply)),
        ))
    }
}

/// What the read after the reply returned: 0 bytes, the end of the stream, is the
/// server closing as it should; anything more is a server that says too much.
pub fn check_end(read_after_reply: usize) -> io::Result<()> {
    match read_after_reply {
        0 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server sent more than the reply",
        )),
    }
}
