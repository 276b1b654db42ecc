//! The cooperative budget: a task that loops over futures that are always ready
//! (a timer already due, a lock nobody else wants, the handle of a finished task)
//! still gives the thread back, so tasks doing the same share it fairly.

mod common;

use async_scratch::coop::BUDGET_PER_POLL;
use async_scratch::executor::JoinHandle;
use async_scratch::executor::{spawn, Executor};
use async_scratch::join_all::{join, join_all};
use async_scratch::mutex::Mutex;
use async_scratch::time::{sleep, Clock, ManualClock};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Rounds each looping task makes: several budgets' worth.
const ROUNDS: usize = 4 * BUDGET_PER_POLL as usize;

/// Which task made each round, in the order the rounds happened.
type Log = Rc<RefCell<Vec<usize>>>;

/// Runs two tasks, each `ROUNDS` times awaiting a future from `ready_future` (always
/// ready), and returns the log of their rounds.
fn two_loops<F: Future + 'static>(ready_future: impl Fn() -> F + Clone + 'static) -> Vec<usize> {
    let executor = Executor::with_clock(Clock::Manual(ManualClock::new()));
    let log: Log = Rc::default();
    executor.block_on(async {
        let loops: Vec<JoinHandle<()>> = (0..2)
            .map(|task| {
                let (log, ready_future) = (log.clone(), ready_future.clone());
                spawn(async move {
                    for _ in 0..ROUNDS {
                        ready_future().await;
                        log.borrow_mut().push(task);
                    }
                })
            })
            .collect();
        for handle in loops {
            handle.await.unwrap();
        }
    });
    Rc::try_unwrap(log).unwrap().into_inner()
}

/// The longest run of rounds by one task without the other getting one in.
fn longest_run(log: &[usize]) -> usize {
    log.chunk_by(|a, b| a == b)
        .map(<[usize]>::len)
        .max()
        .unwrap_or(0)
}

fn assert_shared_fairly(log: &[usize]) {
    assert_eq!(log.len(), 2 * ROUNDS);
    let run = longest_run(log);
    assert!(
        run <= BUDGET_PER_POLL as usize,
        "one task ran {run} rounds in a row: it kept the thread"
    );
}

/// Timers already due (`sleep(ZERO)`) complete at once, each taking a unit of budget.
#[test]
fn loops_over_due_timers_share_the_thread() {
    assert_shared_fairly(&two_loops(|| sleep(Duration::ZERO)));
}

/// Due timers awaited through `join_all` and `join`, whose children are polled with
/// wakers of their own: the task's budget is lent to them, so these loops give the
/// thread back too.
#[test]
fn loops_over_join_all_of_ready_children_share_the_thread() {
    assert_shared_fairly(&two_loops(|| {
        join_all(vec![sleep(Duration::ZERO), sleep(Duration::ZERO)])
    }));
    assert_shared_fairly(&two_loops(|| join(sleep(Duration::ZERO), async {})));
}

/// A `join_all` nested in a `join_all`: the budget is lent down the nesting.
#[test]
fn loops_over_nested_join_alls_share_the_thread() {
    assert_shared_fairly(&two_loops(|| {
        join_all(vec![join_all(vec![sleep(Duration::ZERO)])])
    }));
}

/// A lock that only this task wants is free at every turn.
#[test]
fn loops_over_a_free_lock_share_the_thread() {
    let locks = Rc::new([Mutex::new(0), Mutex::new(0)]);
    let next = Rc::new(RefCell::new(0usize));
    // Each call locks one of two mutexes, so the two tasks never contend: the lock is
    // always free, and the guard is dropped at once.
    assert_shared_fairly(&two_loops(move || {
        let (locks, next) = (locks.clone(), next.clone());
        async move {
            let index = {
                let mut next = next.borrow_mut();
                *next += 1;
                *next % 2
            };
            *locks[index].lock().await += 1;
        }
    }));
}

/// The handle of a task that has finished is ready at once: each task spawns its
/// rounds' worth of tasks, lets them all finish, then awaits their handles in a row.
#[test]
fn loops_over_finished_handles_share_the_thread() {
    let executor = Executor::new();
    let log: Log = Rc::default();
    executor.block_on(async {
        let loops: Vec<JoinHandle<()>> = (0..2)
            .map(|task| {
                let log = log.clone();
                spawn(async move {
                    let finished: Vec<JoinHandle<()>> =
                        (0..ROUNDS).map(|_| spawn(async {})).collect();
                    async_scratch::executor::yield_now().await; // they all run and finish
                    for handle in finished {
                        assert!(handle.is_finished());
                        handle.await.unwrap();
                        log.borrow_mut().push(task);
                    }
                })
            })
            .collect();
        for handle in loops {
            handle.await.unwrap();
        }
    });
    assert_shared_fairly(&log.borrow());
}

/// Another executor nested in a task (`futures::executor::block_on` inside its `async`
/// block) polls our leaf futures with its own waker. The budget is the task's, not
/// theirs: were it applied, the nested executor would spin forever once it ran out,
/// each `Pending` waking it at once. The task runs on a thread of its own, so that such
/// a livelock fails the test (after a bound) instead of hanging it.
#[test]
fn another_executor_nested_in_a_task_is_not_held_to_its_budget() {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let total = async_scratch::executor::block_on(async {
            let lock = Mutex::new(0);
            futures::executor::block_on(async {
                for _ in 0..ROUNDS {
                    *lock.lock().await += 1;
                    sleep(Duration::ZERO).await;
                }
            });
            let total = *lock.lock().await;
            total
        });
        done.send(total).unwrap();
    });
    let total = common::receive_or_give_up(&outcome, "the nested executor's result");
    assert_eq!(total, ROUNDS);
}
