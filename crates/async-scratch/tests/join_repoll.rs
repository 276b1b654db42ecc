//! A `JoinHandle` polled on another thread while its task ends there on the executor's
//! thread: the handle and the task share the waker cell without a lock, and neither
//! touches it while the other may.
//!
//! The handle, polled again while it waits, compares the new waker with the one it
//! left. It once read the cell for that with only `JOIN_WAKER` set; but a task that
//! has delivered its outcome clears that bit and drops the waker at any moment, so the
//! read raced the drop. Miri's race detector sees such a race whenever nothing orders
//! the two accesses, however far apart they run; so here nothing does: the handle
//! tells the task to end through a `Relaxed` flag, which orders nothing, and the race
//! is found at every seed. Natively the test checks only that the outcome arrives and
//! every waker and output is dropped once.
//!
//! ```text
//! MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p async-scratch --test join_repoll
//! ```

use async_scratch::executor::{spawn, yield_now, Executor, JoinHandle};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

/// Rounds: each one a new executor, task and handle.
const ROUNDS: usize = if cfg!(miri) { 3 } else { 500 };

/// A waker that wakes nothing: the handle's thread polls in a loop anyway.
struct Ignored;

impl Wake for Ignored {
    fn wake(self: Arc<Self>) {}
}

/// An output that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An executor on a thread of its own, whose one task yields until `end` is set, then
/// returns a `Counted`; the test holds the task's handle. The executor stops once
/// `stop` is set.
struct TaskElsewhere {
    handle: JoinHandle<Counted>,
    end: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    drops: Arc<AtomicUsize>,
    executor_thread: thread::JoinHandle<()>,
}

impl TaskElsewhere {
    fn start() -> TaskElsewhere {
        let end = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicUsize::new(0));
        let (send_handle, handle) = mpsc::channel();
        let (task_end, task_stop, output) = (end.clone(), stop.clone(), drops.clone());
        let executor_thread = thread::spawn(move || {
            Executor::new().block_on(async move {
                let task = spawn(async move {
                    while !task_end.load(Ordering::Relaxed) {
                        yield_now().await;
                    }
                    Counted(output)
                });
                send_handle
                    .send(task)
                    .expect("the test waits for the handle");
                while !task_stop.load(Ordering::SeqCst) {
                    yield_now().await;
                }
            });
        });
        let handle = handle
            .recv()
            .expect("the executor's thread sends the handle");
        TaskElsewhere {
            handle,
            end,
            stop,
            drops,
            executor_thread,
        }
    }

    /// Lets the task end, with nothing ordering that with what the test does next.
    fn let_end(&self) {
        self.end.store(true, Ordering::Relaxed); // orders nothing: see the module doc
    }

    /// Stops the executor, and checks the output was dropped once.
    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.executor_thread
            .join()
            .expect("the executor's thread ends");
        drop(self.handle);
        assert_eq!(
            self.drops.load(Ordering::SeqCst),
            1,
            "the output dropped once"
        );
    }
}

fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// The handle is polled twice with the same waker (the second poll compares it with
/// the one stored), then the task is let go to end, with nothing ordering the two; the
/// handle polls on until the outcome is there.
#[test]
fn a_handle_polled_again_while_its_task_ends_on_another_thread() {
    for _ in 0..ROUNDS {
        let mut elsewhere = TaskElsewhere::start();
        let handle = &mut elsewhere.handle;
        let waiter = Arc::new(Ignored);
        let waker = Waker::from(Arc::clone(&waiter));
        assert!(
            poll(handle, &waker).is_pending(),
            "the task waits for `end`"
        );
        assert!(poll(handle, &waker).is_pending(), "the same waker, again");
        elsewhere.let_end();
        let output = loop {
            if let Poll::Ready(outcome) = poll(&mut elsewhere.handle, &waker) {
                break outcome.expect("the task returns");
            }
            thread::yield_now();
        };
        drop(output);
        elsewhere.finish();
        drop(waker);
        assert_eq!(Arc::strong_count(&waiter), 1, "every waker clone dropped");
    }
}

/// The handle is polled with a new waker each time while the task ends. The task, as it
/// ends, clears `JOIN_WAKER` and drops the waker it found; a handle that then read the
/// bit as clear once took the cell for its own and wrote its new waker there, racing
/// that drop (Miri found it at seed 5 of `-Zmiri-many-seeds`). A clear bit after
/// `DELIVERED` is the task's doing: the handle takes the outcome instead.
#[test]
fn a_handle_polled_with_new_wakers_while_its_task_ends_on_another_thread() {
    for _ in 0..ROUNDS {
        let mut elsewhere = TaskElsewhere::start();
        let waiters: Vec<Arc<Ignored>> = (0..64).map(|_| Arc::new(Ignored)).collect();
        let mut waiter = waiters.iter().cycle();
        let mut poll_new = |handle: &mut JoinHandle<Counted>| {
            let waiter = Arc::clone(waiter.next().expect("a cycle has no end"));
            poll(handle, &Waker::from(waiter))
        };
        let first = poll_new(&mut elsewhere.handle);
        assert!(first.is_pending(), "the task waits for `end`");
        elsewhere.let_end();
        let output = loop {
            if let Poll::Ready(outcome) = poll_new(&mut elsewhere.handle) {
                break outcome.expect("the task returns");
            }
            thread::yield_now();
        };
        drop(output);
        elsewhere.finish();
        let kept = waiters.iter().filter(|w| Arc::strong_count(w) > 1).count();
        assert_eq!(kept, 0, "every waker clone dropped");
    }
}
