//! `run_all`: results in input order, every failure reported, no result lost.

mod common;

use async_scratch::pool::ThreadPool;
use async_scratch::run_all::run_all;
use async_scratch::task::TaskError;
use common::{quiet_deliberate_panics, DELIBERATE};
use std::sync::mpsc::{self, Receiver, Sender};

/// Jobs finish in reverse order (each waits for the one after it to finish first), yet
/// results come back in input order.
#[test]
fn results_keep_input_order_when_jobs_finish_in_reverse() {
    const JOBS: usize = 8;
    let pool = ThreadPool::new(JOBS).unwrap();
    let (finish_order_sender, finish_order) = mpsc::channel();
    // Job i waits for a signal from job i + 1, then signals job i - 1.
    let (senders, receivers): (Vec<Sender<()>>, Vec<Receiver<()>>) =
        (0..JOBS).map(|_| mpsc::channel()).unzip();
    let mut senders: Vec<Option<Sender<()>>> = senders.into_iter().map(Some).collect();
    let last_go = senders[JOBS - 1].take().unwrap();
    let jobs = receivers.into_iter().enumerate().map(|(index, my_turn)| {
        let next = if index == 0 {
            None
        } else {
            senders[index - 1].take()
        };
        let finish_order = finish_order_sender.clone();
        move || {
            my_turn.recv().unwrap();
            finish_order.send(index).unwrap();
            if let Some(next) = next {
                next.send(()).unwrap();
            }
            index * 10
        }
    });
    let jobs: Vec<_> = jobs.collect();
    last_go.send(()).unwrap();
    let results = run_all(&pool, jobs);
    drop(finish_order_sender);

    let finished: Vec<usize> = finish_order.iter().collect();
    assert_eq!(
        finished,
        (0..JOBS).rev().collect::<Vec<_>>(),
        "finished in reverse"
    );
    let values: Vec<usize> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        values,
        (0..JOBS).map(|index| index * 10).collect::<Vec<_>>()
    );
}

/// Successes and panics mixed: each result is in its place, each panic carries its own
/// message.
#[test]
fn mixed_successes_and_panics_are_all_reported() {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(3).unwrap();
    let jobs = (0..10).map(|n| {
        move || {
            if n % 3 == 0 {
                panic!("{DELIBERATE}: {n} is a multiple of 3");
            }
            n
        }
    });
    let results = run_all(&pool, jobs);
    for (n, result) in results.into_iter().enumerate() {
        if n % 3 == 0 {
            let message = format!("{DELIBERATE}: {n} is a multiple of 3");
            assert_eq!(result, Err(TaskError::Panicked(message)));
        } else {
            assert_eq!(result, Ok(n));
        }
    }
}

/// No jobs, no results, no waiting.
#[test]
fn no_jobs_gives_no_results() {
    let pool = ThreadPool::new(1).unwrap();
    let results = run_all(&pool, Vec::<fn() -> u8>::new());
    assert!(results.is_empty());
}
