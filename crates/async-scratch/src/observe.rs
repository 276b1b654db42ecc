//! Observing the executor: every spawn, poll, wake and park, as it happens.
//!
//! **Step 4**'s machinery is invisible from outside: a task is spawned, polled, returns
//! `Pending`, something keeps its waker, time passes, the waker is called, the task is
//! queued and polled again. An observer, installed with
//! [`ExecutorBuilder::observe`](crate::executor::ExecutorBuilder::observe), is told
//! each of those steps as an [`Event`], in the order they happen, so a program (the
//! tour's `--explain`, a test, a tracer) can show the loop at work. The library itself
//! prints nothing.
//!
//! It costs nothing when off: each place that would report an event looks at one
//! `Option` and moves on. When on, the observer runs inline, on whichever thread the
//! event happens: a wake may come from any thread, so the observer is `Send + Sync`,
//! and it should be quick (it runs inside the executor's loop, and inside wakers).
//!
//! ```
//! use async_scratch::executor::Executor;
//! use async_scratch::observe::Event;
//! use std::sync::{Arc, Mutex};
//!
//! let events = Arc::new(Mutex::new(Vec::new()));
//! let sink = events.clone();
//! let executor = Executor::builder()
//!     .observe(move |event: &Event| sink.lock().unwrap().push(event.clone()))
//!     .build();
//! executor.block_on(executor.spawn_named("hello", async {})).unwrap();
//! let events = events.lock().unwrap();
//! assert!(matches!(&events[0], Event::Spawned { task } if task.name.as_deref() == Some("hello")));
//! assert!(events.iter().any(|event| matches!(event, Event::Polled { ready: true, .. })));
//! ```

use crate::diagnostics::{TaskId, TaskInfo};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// One step of the executor's loop.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A task was spawned; it is queued, and runs at the executor's next turn.
    Spawned {
        /// Who it is, and where it was spawned.
        task: TaskInfo,
    },
    /// A poll of a task (or of `block_on`'s own future) is about to start.
    Polling {
        /// The task.
        task: TaskId,
    },
    /// A poll returned.
    Polled {
        /// The task.
        task: TaskId,
        /// `Ready` (the task is done) or `Pending` (it left its waker somewhere).
        ready: bool,
    },
    /// A waker was called and queued its task (a wake of a task already queued, or
    /// already done, changes nothing and is not reported). May come from any thread.
    Woken {
        /// The task.
        task: TaskId,
    },
    /// Timers were due, and their wakers called.
    TimersFired {
        /// How many.
        count: usize,
    },
    /// Nothing is ready: the executor waits, until `deadline` if a timer is pending,
    /// or until a wake.
    Parking {
        /// The earliest timer's deadline, if any.
        deadline: Option<Instant>,
    },
    /// The wait ended (a wake, a deadline, or spuriously): the executor looks again.
    Unparked,
}

/// The observer the executor calls with each [`Event`].
pub(crate) type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// `block_on`'s own future, as events name it.
pub const BLOCK_ON: TaskId = TaskId::new(u32::MAX, 0);

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |task: &TaskId| {
            if *task == BLOCK_ON {
                "block_on's future".to_string()
            } else {
                format!("task {}", task.index())
            }
        };
        match self {
            Event::Spawned { task } => write!(f, "spawn: {task}"),
            Event::Polling { task } => write!(f, "poll {}", name(task)),
            Event::Polled { task, ready: true } => write!(f, "{} -> Ready", name(task)),
            Event::Polled { task, ready: false } => write!(f, "{} -> Pending", name(task)),
            Event::Woken { task } => write!(f, "wake {} -> queued", name(task)),
            Event::TimersFired { count } => write!(f, "{count} timer(s) due: their wakers called"),
            Event::Parking { deadline: Some(_) } => f.write_str("park until the next timer"),
            Event::Parking { deadline: None } => f.write_str("park until a wake"),
            Event::Unparked => f.write_str("unparked"),
        }
    }
}
