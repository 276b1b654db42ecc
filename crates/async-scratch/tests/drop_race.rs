//! An executor dropped while another thread is halfway through waking one of its
//! tasks leaks nothing.
//!
//! A wake is two steps: the state word says "scheduled", then the task is pushed onto
//! the executor's ready queue. If the executor is dropped between the two, its drop has
//! emptied the queue already, and the late push would leave the task there for good:
//! the task holds the executor's shared half, which holds the queue, which holds the
//! task, a cycle of `Arc`s that nothing frees. The push must see that the executor is
//! closed and empty the queue itself.
//!
//! The observer is told of the wake between the two steps, on the waking thread, so a
//! blocking observer holds that thread exactly there while the executor is dropped: the
//! race is forced, in order, every run.

use async_scratch::executor::{yield_now, Executor};
use async_scratch::observe::Event;
use async_scratch::park::{Park, ThreadPark, Unpark};
use std::future::poll_fn;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};
use std::thread::{self, ThreadId};
use std::time::Instant;

/// The executor's unparker, watched: it lives as long as the executor's shared half.
struct WatchedUnpark(Arc<dyn Unpark>);

impl Unpark for WatchedUnpark {
    fn unpark(&self) {
        self.0.unpark();
    }
}

/// A thread park whose unparker can be watched through a `Weak`.
struct WatchedPark {
    park: ThreadPark,
    unparker: Arc<WatchedUnpark>,
}

impl Park for WatchedPark {
    fn park(&self, deadline: Option<Instant>) {
        self.park.park(deadline);
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.unparker.clone()
    }
}

/// An observer that, on a wake from any thread but `home`, says so and then waits
/// to be let go.
fn stop_wakes_from_elsewhere(
    home: ThreadId,
    in_wake: Sender<()>,
    go_on: Receiver<()>,
) -> impl Fn(&Event) + Send + Sync + 'static {
    let (in_wake, go_on) = (Mutex::new(in_wake), Mutex::new(go_on));
    move |event| {
        if matches!(event, Event::Woken { .. }) && thread::current().id() != home {
            in_wake.lock().unwrap().send(()).unwrap();
            go_on.lock().unwrap().recv().unwrap();
        }
    }
}

#[test]
fn a_wake_halfway_done_when_the_executor_is_dropped_leaks_nothing() {
    let park = ThreadPark::current();
    let unparker = Arc::new(WatchedUnpark(park.unparker()));
    let shared_half_alive: Weak<WatchedUnpark> = Arc::downgrade(&unparker);
    let (in_wake_tx, in_wake) = mpsc::channel();
    let (go_on, go_on_rx) = mpsc::channel();
    let executor = Executor::builder()
        .park(WatchedPark { park, unparker })
        .observe(stop_wakes_from_elsewhere(
            thread::current().id(),
            in_wake_tx,
            go_on_rx,
        ))
        .build();

    // A task that hands its waker to a thread and waits to be woken.
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let waiting = executor.spawn(poll_fn(move |cx| {
        let _ = waker_tx.send(cx.waker().clone());
        Poll::<()>::Pending
    }));
    drop(waiting); // detached: only the executor and the waker hold the task
    executor.block_on(yield_now()); // the task's first poll: the thread has its waker
    let waker = waker_rx.recv().unwrap();
    let waking = thread::spawn(move || waker.wake()); // stops halfway, in the observer
    in_wake.recv().unwrap();

    drop(executor); // empties the queue; the wake has not pushed yet
    go_on.send(()).unwrap(); // now it pushes, onto the queue of an executor now gone
    waking.join().unwrap();

    assert!(
        shared_half_alive.upgrade().is_none(),
        "the task was left on the dropped executor's queue: the shared half leaked"
    );
}
