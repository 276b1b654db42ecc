//! The executor's own thread, over time: when it was running tasks and when it was
//! parked with nothing to do. Step 4's pictures draw it as a lane above the task
//! lanes, so that a learner sees the one thread idle while a hundred tasks wait.
//!
//! The task lanes come from the spans the units record; this lane comes from the
//! executor itself, through its observer hook ([`async_scratch::observe`]): a
//! `Parking` event starts an idle stretch, `Unparked` ends it, and everything else the
//! thread does in between (polls, spawns, timers) is busy time. The observer looks at
//! those two events only, so a million polls cost a million `match`es and no clock
//! reads.
//!
//! The lane must stay small whatever the run: a million units may park the executor
//! tens of thousands of times. So it is kept as busy time per slice of time, at most
//! [`MAX_SLICES`] slices; when a run outgrows them, neighbouring slices are merged in
//! pairs and each slice covers twice the time. The picture is 800 pixels wide, so
//! nothing the eye could see is lost.
//!
//! How it reaches the pictures: every step's `run` has the same signature, and only
//! step 4 has an executor to watch, so rather than widen that signature for one step,
//! the runner opens a collection around the run ([`collect`]) and step 4 hands its
//! executor builder to [`observed`], which installs the observer when a collection is
//! open on this thread (and nothing otherwise: off, it costs nothing).

use async_scratch::executor::ExecutorBuilder;
use async_scratch::observe::Event;
use async_scratch::timeline::Timeline;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most slices a lane keeps: a few per pixel of the picture.
pub const MAX_SLICES: usize = 1024;

/// The width of a slice when a run starts: fine enough for a run of milliseconds.
const FIRST_SLICE: Duration = Duration::from_micros(10);

/// The executor thread's busy time, slice by slice, from the timeline's origin.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorLane {
    /// How much time each slice covers; slice `i` is `[i * slice, (i + 1) * slice)`.
    pub slice: Duration,
    /// How long the thread was busy (not parked) in each slice.
    pub busy: Vec<Duration>,
    /// When the lane begins (the run started) and ends (the run returned).
    pub start: Duration,
    pub end: Duration,
    /// How many times the thread parked.
    pub parks: usize,
}

impl ExecutorLane {
    fn new(start: Duration) -> ExecutorLane {
        ExecutorLane {
            slice: FIRST_SLICE,
            busy: Vec::new(),
            start,
            end: start,
            parks: 0,
        }
    }

    /// Counts `[from, to)` as busy time.
    fn add_busy(&mut self, from: Duration, to: Duration) {
        self.make_room_for(to);
        let mut at = from;
        while at < to {
            let index = self.slice_of(at);
            let slice_end = self.slice * (index as u32 + 1);
            let until = slice_end.min(to);
            if self.busy.len() <= index {
                self.busy.resize(index + 1, Duration::ZERO);
            }
            self.busy[index] += until - at;
            at = until;
        }
    }

    fn slice_of(&self, at: Duration) -> usize {
        (at.as_nanos() / self.slice.as_nanos()) as usize
    }

    /// Coarsens the slices, two into one, until `until` falls within [`MAX_SLICES`].
    fn make_room_for(&mut self, until: Duration) {
        while self.slice_of(until) >= MAX_SLICES {
            self.busy = self.busy.chunks(2).map(|pair| pair.iter().sum()).collect();
            self.slice *= 2;
        }
    }

    /// The share of slice `index` the thread was busy, from 0 to 1 (a slice cut short
    /// by the lane's start or end counts only the time inside the lane).
    pub fn busy_share(&self, index: usize) -> f64 {
        let slice_start = self.slice * index as u32;
        let covered = (slice_start + self.slice)
            .min(self.end)
            .saturating_sub(slice_start.max(self.start));
        let busy = self.busy.get(index).copied().unwrap_or_default();
        if covered.is_zero() {
            return 0.0;
        }
        (busy.as_secs_f64() / covered.as_secs_f64()).min(1.0)
    }

    /// The slices the lane covers, from its start to its end.
    pub fn slices(&self) -> std::ops::Range<usize> {
        if self.end <= self.start {
            return 0..0;
        }
        self.slice_of(self.start)..self.slice_of(self.end - Duration::from_nanos(1)) + 1
    }

    /// All the time the thread was busy.
    pub fn total_busy(&self) -> Duration {
        self.busy.iter().sum()
    }
}

/// A lane being recorded: the lane so far, and since when the thread is busy (`None`
/// while it is parked).
struct Recording {
    timeline: Timeline,
    lane: ExecutorLane,
    busy_since: Option<Duration>,
}

impl Recording {
    /// Closes the busy stretch under way, if any, at this moment.
    fn end_busy(&mut self) {
        let now = self.timeline.now();
        if let Some(since) = self.busy_since.take() {
            self.lane.add_busy(since, now);
        }
    }

    fn park(&mut self) {
        self.lane.parks += 1;
        self.end_busy();
    }

    fn unpark(&mut self) {
        self.busy_since.get_or_insert(self.timeline.now());
    }
}

thread_local! {
    /// The collection open on this thread, if any (see [`collect`]).
    static OPEN: RefCell<Option<Arc<Mutex<Recording>>>> = const { RefCell::new(None) };
}

/// Runs `run` with a collection open on this thread, and returns its result and the
/// executor thread's lane, if an executor built with [`observed`] ran inside.
/// Times are on `timeline`, as the units' spans are. The thread counts as busy from
/// here: building the executor and spawning are work too.
pub fn collect<R>(timeline: &Timeline, run: impl FnOnce() -> R) -> (R, Option<ExecutorLane>) {
    let start = timeline.now();
    let recording = Arc::new(Mutex::new(Recording {
        timeline: timeline.clone(),
        lane: ExecutorLane::new(start),
        busy_since: Some(start),
    }));
    OPEN.with(|open| *open.borrow_mut() = Some(recording.clone()));
    let result = run();
    let was_observed = OPEN.with(|open| open.borrow_mut().take()).is_none();
    let mut recording = recording
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let end = recording.timeline.now();
    recording.end_busy();
    recording.lane.end = end;
    (result, was_observed.then(|| recording.lane.clone()))
}

/// `builder`, with an observer that records the lane when a collection is open on this
/// thread; `builder` unchanged otherwise. The executor must run on this thread (as
/// `block_on` does), since the lane is this thread's.
pub fn observed(builder: ExecutorBuilder) -> ExecutorBuilder {
    // Taken, not cloned: the collection is marked as used, and a second executor in the
    // same run (which would mix two threads' lanes) records nothing.
    let Some(recording) = OPEN.with(|open| open.borrow_mut().take()) else {
        return builder;
    };
    builder.observe(move |event: &Event| {
        let lock = || recording.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Parking { .. } => lock().park(),
            Event::Unparked => lock().unpark(),
            _ => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_scratch::executor::Executor;
    use async_scratch::time::sleep;

    const MS: Duration = Duration::from_millis(1);

    /// Busy time lands in the slices it covers, split at their edges; a run longer than
    /// [`MAX_SLICES`] slices merges them in pairs and keeps every nanosecond of it.
    #[test]
    fn busy_time_is_kept_per_slice_and_coarsened_without_loss() {
        let mut lane = ExecutorLane::new(Duration::ZERO);
        lane.add_busy(FIRST_SLICE / 2, FIRST_SLICE * 2);
        assert_eq!(lane.busy, [FIRST_SLICE / 2, FIRST_SLICE]);
        lane.end = FIRST_SLICE * 4;
        assert_eq!(lane.busy_share(0), 0.5);
        assert_eq!(lane.busy_share(1), 1.0);
        assert_eq!(lane.busy_share(2), 0.0);

        let far = FIRST_SLICE * (MAX_SLICES as u32 * 3);
        lane.add_busy(far - MS, far);
        assert!(lane.busy.len() <= MAX_SLICES, "{}", lane.busy.len());
        assert_eq!(lane.slice, FIRST_SLICE * 4);
        assert_eq!(lane.total_busy(), FIRST_SLICE / 2 + FIRST_SLICE + MS);
    }

    /// An executor handed to [`observed`] inside [`collect`] reports its parks: a task
    /// waiting for its timer parks the thread at least once. Outside a collection the
    /// builder is left alone, and a run with no observed executor has no lane.
    #[test]
    fn a_collected_executor_records_its_parks() {
        let timeline = Timeline::new();
        let ((), lane) = collect(&timeline, || {
            observed(Executor::builder()).build().block_on(sleep(MS))
        });
        let lane = lane.expect("the executor was observed");
        assert!(lane.parks >= 1, "{lane:?}");
        assert!(
            lane.end >= lane.start + MS,
            "the run lasts the timer: {lane:?}"
        );

        let ((), none) = collect(&timeline, || ());
        assert_eq!(none, None);
        // No collection open: nothing recorded, nothing panics.
        observed(Executor::builder()).build().block_on(sleep(MS));
    }
}
