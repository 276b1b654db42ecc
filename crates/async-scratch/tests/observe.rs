//! The observer sees the executor's loop as it runs: spawn, poll, Pending, the timer
//! firing, the wake, the poll that finishes, and the wake of whoever awaited it.

use async_scratch::executor::Executor;
use async_scratch::observe::{Event, BLOCK_ON};
use async_scratch::time::{sleep, Clock, ManualClock};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs one task that sleeps 100 ms (on a manual clock: the same on any machine) and
/// returns every event, as text.
fn events_of_one_sleeping_task() -> Vec<String> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let executor = Executor::builder()
        .clock(Clock::Manual(ManualClock::new()))
        .observe(move |event: &Event| sink.lock().unwrap().push(event.to_string()))
        .build();
    let sleeper = executor.spawn_named("sleeper", sleep(Duration::from_millis(100)));
    executor.block_on(sleeper).unwrap();
    let events = events.lock().unwrap();
    events.clone()
}

#[test]
fn one_sleeping_task_in_order() {
    let events = events_of_one_sleeping_task();
    let spawn = &events[0];
    assert!(spawn.starts_with("spawn: task 'sleeper'"), "{spawn}");
    assert_eq!(
        events[1..],
        [
            "poll block_on's future",
            "block_on's future -> Pending", // awaits the handle: leaves its waker there
            "poll task 0",
            "task 0 -> Pending", // its timer keeps its waker
            "1 timer(s) due: their wakers called",
            "wake task 0 -> queued",
            "poll task 0",
            "task 0 -> Ready",
            "wake block_on's future -> queued", // the handle's waiter
            "poll block_on's future",
            "block_on's future -> Ready",
        ]
    );
}

#[test]
fn block_on_is_named_in_events() {
    assert_eq!(
        Event::Polling { task: BLOCK_ON }.to_string(),
        "poll block_on's future"
    );
}
