//! An `abort` from another thread, racing the task's poll, is never lost.
//!
//! The window is a few instructions wide: the abort lands while the executor polls the
//! task, after the poll looked for an abort and before the task is marked idle. On a
//! real machine it takes many tries to hit; under Miri, which preempts threads at
//! random, each seed tries another interleaving. Run it with many seeds:
//!
//! ```text
//! MIRIFLAGS="-Zmiri-many-seeds=0..64" cargo +nightly miri test -p async-scratch --test abort_race
//! ```
//!
//! A lost abort cannot hang this test: the task waits on nothing anyone can wake, so
//! the executor's deadlock detector ends `block_on` with a panic instead.

use async_scratch::executor::JoinError;
use async_scratch::executor::{yield_now, Executor};
use std::future::pending;
use std::sync::mpsc;
use std::thread;

/// Spawns a task that waits forever, has another thread abort it while the executor
/// polls it, and awaits the handle the aborting thread sends back.
fn abort_while_polled() -> Result<(), JoinError> {
    let executor = Executor::new();
    executor.block_on(async {
        let task = async_scratch::executor::spawn(pending::<()>());
        let (back, returned) = mpsc::channel();
        let aborter = thread::spawn(move || {
            task.abort();
            back.send(task).expect("the test waits for the handle");
        });
        // Yield until the handle is back: the task's first poll runs meanwhile, and the
        // abort lands somewhere before, during or after it.
        let task = loop {
            match returned.try_recv() {
                Ok(task) => break task,
                Err(_) => yield_now().await,
            }
        };
        aborter.join().expect("the aborting thread does not panic");
        task.await
    })
}

#[test]
fn an_abort_racing_the_poll_is_never_lost() {
    let tries = if cfg!(miri) { 1 } else { 2_000 };
    for _ in 0..tries {
        assert_eq!(abort_while_polled(), Err(JoinError::Cancelled));
    }
}
