//! `--explain`: step 4's loop, one event at a time. A few of step 4's units run on
//! our executor with an observer installed, and every spawn, poll, wake and park is
//! told as it happens, one line each, in words a threads programmer knows.
//!
//! The table shows what coroutines achieve (every unit in flight on one thread); this
//! shows how: a task is polled, returns `Pending` leaving its waker with a timer, the
//! thread parks until the earliest deadline, the timer calls the waker, the task is
//! queued and polled again. The library only reports [`Event`]s; the words are the
//! tour's, in [`narration`].
//!
//! The units are spawned with names (`unit 0`, ...) so that the lines can name them;
//! otherwise they run as step 4 runs them: spawned from `block_on`'s future, which
//! awaits them all with `join_all`.

mod narration;

use crate::output::say;
use crate::steps::StepError;
use async_scratch::coroutine::run_unit;
use async_scratch::executor::{spawn_named, Executor};
use async_scratch::join_all::join_all;
use async_scratch::observe::Event;
use async_scratch::timeline::Timeline;
use async_scratch::work::Work;
use narration::Narrator;
use std::mem;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One event of the run, as it was told.
#[derive(Clone, Debug)]
pub struct Moment {
    /// When it happened, from the run's first event.
    pub at: Duration,
    /// What happened, as the library reported it.
    pub event: Event,
    /// The line `--explain` printed for it, without the time.
    pub told: String,
}

/// What the observer keeps between events. Behind one lock because the observer must
/// be `Sync` (a wake may come from any thread); it is held only while a line is worded
/// and stored, never while the executor is called.
struct Story {
    narrator: Narrator,
    moments: Vec<Moment>,
}

/// Runs `units` units of `work` as named tasks on a fresh executor, printing a line for
/// every event as it happens; returns the events, for `--trace`.
pub fn run(units: usize, work: Work) -> Result<Vec<Moment>, StepError> {
    let story = Arc::new(Mutex::new(Story {
        narrator: Narrator::new(work),
        moments: Vec::new(),
    }));
    let observer_story = story.clone();
    let executor = Executor::builder()
        .observe(move |event: &Event| tell(&observer_story, event))
        .build();
    let timeline = Timeline::new();
    let outcome = executor.block_on(async {
        let tasks: Vec<_> = (0..units)
            .map(|unit| {
                spawn_named(
                    format!("unit {unit}"),
                    run_unit(work, unit, timeline.clone()),
                )
            })
            .collect();
        for result in join_all(tasks).await {
            result?;
        }
        Ok(())
    });
    // Dropped before the story is locked: anything it still tells its observer must
    // not find the lock taken.
    drop(executor);
    let mut story = story.lock().unwrap_or_else(PoisonError::into_inner);
    outcome.map(|()| mem::take(&mut story.moments))
}

/// Words `event`, keeps it, and prints its line (after letting go of the lock).
fn tell(story: &Mutex<Story>, event: &Event) {
    let now = Instant::now();
    let line = {
        let mut story = story.lock().unwrap_or_else(PoisonError::into_inner);
        let moment = story.narrator.tell(now, event);
        let line = format!("{}  {}", narration::offset(moment.at), moment.told);
        story.moments.push(moment);
        line
    };
    say!("{line}");
}
