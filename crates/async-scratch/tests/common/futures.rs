//! Hand-made futures that count what happens to them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Counts polls and drops, shared with the test.
#[derive(Default)]
pub struct Counters {
    pub polls: AtomicUsize,
    pub drops: AtomicUsize,
}

impl Counters {
    pub fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }
    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
}

/// Pending until released through its `Release` handle; counts polls and its drop,
/// and keeps the last waker it was given.
pub struct Gate {
    counters: Arc<Counters>,
    shared: Arc<Mutex<GateState>>,
}

#[derive(Default)]
struct GateState {
    open: bool,
    waker: Option<Waker>,
}

/// Opens a [`Gate`] from anywhere, and hands out the waker it holds.
#[derive(Clone)]
pub struct Release(Arc<Mutex<GateState>>);

impl Release {
    pub fn open(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.open = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn waker(&self) -> Option<Waker> {
        self.0.lock().unwrap().waker.clone()
    }
}

pub fn gate() -> (Gate, Release, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Mutex::new(GateState::default()));
    let gate = Gate {
        counters: counters.clone(),
        shared: shared.clone(),
    };
    (gate, Release(shared), counters)
}

impl Future for Gate {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.counters.polls.fetch_add(1, Ordering::SeqCst);
        let mut state = self.shared.lock().unwrap();
        if state.open {
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.counters.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Gives the thread back once (a `Pending` with an immediate wake), on any executor or
/// runtime: the runtime has no `yield_now` of its own.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
