//! A gate that opens when every expected party has arrived: an async barrier for the
//! tasks of one thread. The many-connections run holds every connection at it, so
//! that all of them are open at the same instant, which is what "10,000 connections
//! at once" claims; without it, the first replies could come back before the last
//! connections were made.
//!
//! Every party must arrive, or the others wait for good: a task whose connection
//! failed arrives all the same (see `many.rs`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A gate for a fixed number of parties; cloning gives another handle to the same
/// gate. `Rc`, not `Arc`: its parties are tasks of one single-threaded executor.
#[derive(Clone)]
pub struct Gate {
    state: Rc<RefCell<GateState>>,
}

struct GateState {
    /// Parties that have not arrived yet; the gate is open at 0.
    missing: usize,
    /// The wakers of the parties waiting at the gate, woken when it opens.
    waiting: Vec<Waker>,
}

impl Gate {
    /// A closed gate that opens when `parties` have arrived.
    pub fn new(parties: usize) -> Gate {
        Gate {
            state: Rc::new(RefCell::new(GateState {
                missing: parties,
                waiting: Vec::new(),
            })),
        }
    }

    /// Arrives at the gate, and waits until it opens.
    pub fn arrive(&self) -> Arrive {
        Arrive {
            gate: self.clone(),
            arrived: false,
        }
    }
}

/// One party's arrival; from [`Gate::arrive`].
#[must_use = "a party arrives when the future is polled"]
pub struct Arrive {
    gate: Gate,
    /// Whether this party has been counted: it counts once, at its first poll.
    arrived: bool,
}

impl Future for Arrive {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let first_poll = !std::mem::replace(&mut self.arrived, true);
        let mut state = self.gate.state.borrow_mut();
        if first_poll {
            state.missing = state.missing.saturating_sub(1);
            if state.missing == 0 {
                // The last party opens the gate for everyone.
                state.waiting.drain(..).for_each(Waker::wake);
            }
        }
        if state.missing == 0 {
            Poll::Ready(())
        } else {
            // A party polled again before the gate opened (a spurious wake) adds its
            // waker once more: harmless, the gate opens once and wakes each.
            state.waiting.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use async_scratch::executor::{block_on, spawn, yield_now};
    use std::cell::Cell;
    use std::rc::Rc;

    /// No party passes until the last one arrives, however many turns the others
    /// wait; then every one passes.
    #[test]
    fn the_gate_opens_when_the_last_party_arrives() {
        let passed = Rc::new(Cell::new(0));
        block_on(async {
            let gate = Gate::new(3);
            let early: Vec<_> = (0..2)
                .map(|_| {
                    let (gate, passed) = (gate.clone(), passed.clone());
                    spawn(async move {
                        gate.arrive().await;
                        passed.set(passed.get() + 1);
                    })
                })
                .collect();
            for _ in 0..10 {
                yield_now().await;
            }
            assert_eq!(passed.get(), 0, "nobody passes before the last arrives");
            gate.arrive().await;
            for task in early {
                task.await.unwrap();
            }
        });
        assert_eq!(passed.get(), 2);
    }
}
