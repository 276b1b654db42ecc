//! `join_all` and `join`: input order, only woken children polled, empty input.

mod common;

use async_scratch::executor::{block_on, spawn, yield_now, Executor};
use async_scratch::join_all::{join, join_all};
use async_scratch::time::{sleep, Clock, ManualClock};
use common::futures::gate;
use std::time::Duration;

/// Outputs come back in input order, whatever order the futures finish in.
#[test]
fn outputs_keep_input_order() {
    let executor = Executor::with_clock(Clock::Manual(ManualClock::new()));
    let outputs = executor.block_on(join_all((0..10u64).map(|n| async move {
        sleep(Duration::from_millis(100 - n * 10)).await; // the last finishes first
        n
    })));
    assert_eq!(outputs, (0..10).collect::<Vec<_>>());
}

/// When one child of a thousand wakes, only that child is polled again.
#[test]
fn only_woken_children_are_polled_again() {
    let mut gates = Vec::new();
    let mut releases = Vec::new();
    let mut counters = Vec::new();
    for _ in 0..1000 {
        let (gate, release, counter) = gate();
        gates.push(gate);
        releases.push(release);
        counters.push(counter);
    }
    block_on(async {
        let all = spawn(join_all(gates));
        yield_now().await;
        assert!(counters.iter().all(|c| c.polls() == 1));
        releases[500].open();
        yield_now().await;
        yield_now().await;
        let polled_twice: Vec<usize> = (0..1000).filter(|&i| counters[i].polls() == 2).collect();
        assert_eq!(polled_twice, [500]);
        assert!(counters.iter().all(|c| c.polls() <= 2));
        for release in &releases {
            release.open();
        }
        all.await.unwrap();
    });
}

/// No futures: an empty result at once.
#[test]
fn no_futures_give_an_empty_result() {
    let outputs: Vec<u8> = block_on(join_all(Vec::<std::future::Ready<u8>>::new()));
    assert!(outputs.is_empty());
}

/// `join` waits for both and returns both outputs.
#[test]
fn join_waits_for_both() {
    let (gate, release, _counters) = gate();
    let result = block_on(async {
        let opener = async {
            yield_now().await;
            release.open();
            "opened"
        };
        join(gate, opener).await
    });
    assert_eq!(result, ((), "opened"));
}
