//! `--explain --trace FILE`: the explained run's executor events, for a trace viewer.
//!
//! Every event is an instant event (`"ph": "i"`) carrying the line `--explain` printed
//! for it. Each poll is also a complete event from its start to its return, and each
//! park one from the park to the unpark, so that the time the thread spent in a task
//! and the time it slept both show. A flow arrow (`"ph": "s"` at the wake, `"ph": "f"`
//! at the poll, the same `id`) joins each wake to the poll it causes: the viewer draws
//! what `--explain` tells, that a poll comes only after a wake.
//!
//! One process, and a track for each of: the executor's loop (parks, timers, and the
//! wakes it makes), `block_on`'s future, and every task.

use super::{micros, write_events};
use crate::explain::Moment;
use async_scratch::diagnostics::TaskId;
use async_scratch::observe::{Event, BLOCK_ON};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The process of the explained run: after every row of the table's (1 to 8), so
/// that it could sit beside them without sharing one.
const EXPLAIN_PID: u32 = 9;

/// The track of the executor's own loop: parks, timers, and the wakes they make.
const LOOP_TID: u32 = 0;
/// The track of `block_on`'s future.
const BLOCK_ON_TID: u32 = 1;
/// Tasks' tracks come after those two, by the task's slot.
const FIRST_TASK_TID: u32 = 2;

/// Writes the trace of the explained run's `moments` to `path`.
pub fn write_explained(path: &Path, moments: &[Moment]) -> Result<(), String> {
    write_events(path, explained_events(moments))
}

fn explained_events(moments: &[Moment]) -> Vec<Value> {
    let mut events = track_names(moments);
    let mut polling: Option<(u32, Duration)> = None;
    let mut parked_at = None;
    let mut flows = 0;
    for (index, moment) in moments.iter().enumerate() {
        let track = track_of(&moment.event, polling.map(|(track, _)| track));
        events.push(instant(moment, track));
        match moment.event {
            Event::Polling { task } => polling = Some((tid(task), moment.at)),
            Event::Polled { .. } => {
                if let Some((track, began)) = polling.take() {
                    events.push(complete("poll", track, began, moment.at));
                }
            }
            Event::Parking { .. } => parked_at = Some(moment.at),
            Event::Unparked => {
                if let Some(began) = parked_at.take() {
                    events.push(complete("park", LOOP_TID, began, moment.at));
                }
            }
            Event::Woken { task } => {
                if let Some(poll) = next_poll_of(task, &moments[index + 1..]) {
                    flows += 1;
                    events.extend(wake_to_poll(flows, (track, moment.at), (tid(task), poll)));
                }
            }
            _ => {}
        }
    }
    events
}

/// The track an event goes on. A wake goes where it was made: in the poll under way
/// (a task waking another), or else in the executor's loop (a timer firing, a finished
/// task's `JoinHandle`).
fn track_of(event: &Event, polling: Option<u32>) -> u32 {
    match event {
        Event::Spawned { task } => tid(task.id),
        Event::Polling { task } | Event::Polled { task, .. } => tid(*task),
        Event::Woken { .. } => polling.unwrap_or(LOOP_TID),
        _ => LOOP_TID,
    }
}

/// The track of `task`.
fn tid(task: TaskId) -> u32 {
    if task == BLOCK_ON {
        BLOCK_ON_TID
    } else {
        FIRST_TASK_TID + task.index()
    }
}

/// When `task` is next polled, among `later` moments.
fn next_poll_of(task: TaskId, later: &[Moment]) -> Option<Duration> {
    later
        .iter()
        .find(|moment| moment.event == Event::Polling { task })
        .map(|moment| moment.at)
}

/// The process's and every track's name: tasks by the name they were spawned with.
fn track_names(moments: &[Moment]) -> Vec<Value> {
    let mut names = BTreeMap::from([
        (LOOP_TID, "executor loop".to_string()),
        (BLOCK_ON_TID, "block_on's future".to_string()),
    ]);
    for moment in moments {
        if let Event::Spawned { task } = &moment.event {
            let name = task.name.as_deref().unwrap_or("unnamed");
            names.insert(tid(task.id), format!("task '{name}'"));
        }
    }
    let process = json!({
        "name": "process_name", "ph": "M", "pid": EXPLAIN_PID,
        "args": { "name": "--explain: step 4's executor, event by event" },
    });
    let tracks = names.into_iter().map(|(tid, name)| {
        json!({ "name": "thread_name", "ph": "M", "pid": EXPLAIN_PID, "tid": tid, "args": { "name": name } })
    });
    std::iter::once(process).chain(tracks).collect()
}

/// The event as an instant on `track`, named as the library words it, with the line
/// `--explain` printed.
fn instant(moment: &Moment, track: u32) -> Value {
    json!({
        "name": moment.event.to_string(),
        "cat": "explain",
        "ph": "i",
        "s": "t",
        "pid": EXPLAIN_PID,
        "tid": track,
        "ts": micros(moment.at),
        "args": { "told": moment.told },
    })
}

/// A stretch of time on `track`, from `began` to `ended`.
fn complete(name: &str, track: u32, began: Duration, ended: Duration) -> Value {
    json!({
        "name": name,
        "cat": "explain",
        "ph": "X",
        "pid": EXPLAIN_PID,
        "tid": track,
        "ts": micros(began),
        "dur": micros(ended.saturating_sub(began)),
    })
}

/// The arrow `id` from a wake (its track and time) to the poll it causes. The finish
/// binds to the slice around it (`"bp": "e"`): the poll that starts there.
fn wake_to_poll(id: u64, wake: (u32, Duration), poll: (u32, Duration)) -> [Value; 2] {
    let end = |phase: &str, (track, at): (u32, Duration)| {
        json!({
            "name": "wake", "cat": "wake", "ph": phase, "id": id,
            "pid": EXPLAIN_PID, "tid": track, "ts": micros(at),
        })
    };
    let mut finish = end("f", poll);
    finish["bp"] = json!("e");
    [end("s", wake), finish]
}
