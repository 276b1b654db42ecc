//! The words of `--explain`: one line per executor event, told to someone who knows
//! threads. An [`Event`] says what happened; the narrator also remembers what came
//! before (names from spawns, which polls were first, whether timers just fired), so
//! that a line can say *why*: which timer keeps a waker, who called it.

use super::Moment;
use crate::words::{count, format_duration};
use async_scratch::diagnostics::TaskId;
use async_scratch::observe::{Event, BLOCK_ON};
use async_scratch::work::{Work, WorkKind};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// `+  12.345 ms`: a time from the start of the run, aligned for a column of them.
pub fn offset(at: Duration) -> String {
    format!("+{:>8.3} ms", at.as_secs_f64() * 1e3)
}

/// Tells events in order, remembering what later lines need.
pub struct Narrator {
    /// When the first event came: every time is told from it.
    start: Option<Instant>,
    /// What each unit does, to say what its first poll left waiting.
    work: Work,
    /// Names given at spawn.
    names: HashMap<TaskId, String>,
    /// Tasks polled at least once: a first poll runs a unit from its start, and a
    /// sleeping unit sets its timer there.
    polled: HashSet<TaskId>,
    /// When the poll under way began, if it is its task's first: a sleeping unit sets
    /// its timer in its first poll, for its duration from then.
    first_poll_began: Option<Duration>,
    /// Timers fired since the last poll: a wake now is one of theirs.
    timers_just_fired: bool,
    /// The last task to finish: a wake of `block_on`'s future right after is its
    /// `JoinHandle` calling the waiter.
    just_finished: Option<TaskId>,
}

impl Narrator {
    pub fn new(work: Work) -> Narrator {
        Narrator {
            start: None,
            work,
            names: HashMap::new(),
            polled: HashSet::new(),
            first_poll_began: None,
            timers_just_fired: false,
            just_finished: None,
        }
    }

    /// `event`, which happens `now`, told.
    pub fn tell(&mut self, now: Instant, event: &Event) -> Moment {
        let start = *self.start.get_or_insert(now);
        let at = now.saturating_duration_since(start);
        Moment {
            at,
            event: event.clone(),
            told: self.line(at, start, event),
        }
    }

    /// The line for `event`, which happens `at` from the `start` of the run.
    fn line(&mut self, at: Duration, start: Instant, event: &Event) -> String {
        match event {
            Event::Spawned { task } => {
                if let Some(name) = &task.name {
                    self.names.insert(task.id, format!("task '{name}'"));
                }
                format!(
                    "spawn {}: queued for the executor's next turn (no thread starts)",
                    self.name(task.id)
                )
            }
            Event::Polling { task } => self.polling(*task, at),
            Event::Polled { task, ready } => self.polled(*task, *ready),
            Event::Woken { task } => self.woken(*task),
            Event::TimersFired { count: due } => {
                self.timers_just_fired = true;
                let timers = count(*due, "timer");
                format!("{timers} due: the executor calls the waker each one keeps")
            }
            Event::Parking { deadline } => parking(*deadline, start),
            Event::Unparked => {
                "unpark: the thread looks for due timers and queued tasks".to_string()
            }
            // A kind of event added to the library after this was written.
            other => other.to_string(),
        }
    }

    fn polling(&mut self, task: TaskId, at: Duration) -> String {
        self.timers_just_fired = false;
        self.just_finished = None;
        let first = self.polled.insert(task);
        self.first_poll_began = first.then_some(at);
        let name = self.name(task);
        if first {
            format!("poll {name}: it runs on this thread until it ends or an .await must wait")
        } else {
            format!("poll {name} again: it resumes after that .await")
        }
    }

    fn polled(&mut self, task: TaskId, ready: bool) -> String {
        let first_poll_began = self.first_poll_began.take();
        let name = self.name(task);
        match (task == BLOCK_ON, ready) {
            (true, false) => {
                format!("{name} -> Pending: it awaits the units' JoinHandles, which keep its waker")
            }
            (true, true) => format!("{name} -> Ready: every unit is done; block_on returns"),
            (false, true) => {
                self.just_finished = Some(task);
                format!("{name} -> Ready: done; its JoinHandle holds the result")
            }
            (false, false) => {
                let keeper = match (self.work.kind, first_poll_began) {
                    (WorkKind::Sleep, Some(began)) => format!(
                        "in sleep({}), a timer at +{} keeps its waker",
                        format_duration(self.work.duration),
                        format_duration(began + self.work.duration),
                    ),
                    _ => "its waker is kept elsewhere".to_string(),
                };
                format!("{name} -> Pending: {keeper}")
            }
        }
    }

    fn woken(&mut self, task: TaskId) -> String {
        let name = self.name(task);
        let why = match self.just_finished.take() {
            Some(finished) if task == BLOCK_ON => format!(
                "{} is done, its JoinHandle calls the waker",
                self.name(finished)
            ),
            _ if self.timers_just_fired => "its timer called its waker".to_string(),
            _ => "its waker was called".to_string(),
        };
        format!("wake {name} -> queued: {why}")
    }

    /// How lines name `task`: its spawn name, or what it is.
    fn name(&self, task: TaskId) -> String {
        if task == BLOCK_ON {
            return "block_on's future".to_string();
        }
        self.names
            .get(&task)
            .cloned()
            .unwrap_or_else(|| format!("task #{}", task.index()))
    }
}

/// The line for a park: until the earliest deadline, told from `start`, or a wake.
fn parking(deadline: Option<Instant>, start: Instant) -> String {
    match deadline {
        Some(deadline) => format!(
            "park until +{}, the earliest deadline: nothing to run (like \
             Condvar::wait_timeout)",
            format_duration(deadline.saturating_duration_since(start))
        ),
        None => "park: nothing is queued and no timer is set; the thread sleeps until a wake"
            .to_string(),
    }
}
