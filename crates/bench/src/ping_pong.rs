//! The ping-pong workload's two tasks, written once for every runtime.
//!
//! A pair passes a message back and forth: the pinger sends a ping, the ponger answers
//! with a pong, `rounds` times. Every message travels over a new
//! `futures::channel::oneshot`, whatever the runtime, so the channel costs the same
//! everywhere and what differs is the runtime: waking the receiver, queueing it, and
//! polling it again.
//!
//! A oneshot carries one message, so each message brings the sender for the answer:
//! a [`Ping`] holds where to send the pong, a [`Pong`] where to send the next ping.

use futures::channel::oneshot;
use futures::future::Either;
use std::future::Future;

/// A ping: the pinger waits for its answer on the other end of `reply`.
pub struct Ping {
    reply: oneshot::Sender<Pong>,
}

/// A pong: the ponger waits for the next ping on the other end of `next`.
pub struct Pong {
    next: oneshot::Sender<Ping>,
}

/// The futures of `pairs` pairs, pinger then ponger, ready to spawn.
///
/// Each item is an [`Either`] so that both players are one type and can go through one
/// `spawn` loop; `Either` is an enum, not a box, so it adds no allocation.
pub fn players(
    pairs: usize,
    rounds: usize,
) -> impl Iterator<Item = impl Future<Output = ()> + Send + 'static> {
    (0..pairs).flat_map(move |_| {
        let (to_ponger, from_pinger) = oneshot::channel();
        [
            Either::Left(pinger(to_ponger, rounds)),
            Either::Right(ponger(from_pinger, rounds)),
        ]
    })
}

/// Sends a ping and waits for its pong, `rounds` times.
async fn pinger(mut to_ponger: oneshot::Sender<Ping>, rounds: usize) {
    for _ in 0..rounds {
        let (reply, answer) = oneshot::channel();
        let sent = to_ponger.send(Ping { reply }).is_ok();
        assert!(sent, "the ponger stopped before the last round");
        let pong = answer.await.expect("the ponger dropped a ping unanswered");
        to_ponger = pong.next;
    }
}

/// Waits for a ping and answers it, `rounds` times.
async fn ponger(mut from_pinger: oneshot::Receiver<Ping>, rounds: usize) {
    for _ in 0..rounds {
        let ping = from_pinger
            .await
            .expect("the pinger stopped before the last round");
        let (next, following) = oneshot::channel();
        let sent = ping.reply.send(Pong { next }).is_ok();
        assert!(sent, "the pinger stopped waiting for its pong");
        from_pinger = following;
    }
}
