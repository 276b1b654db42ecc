//! The timeline: where every unit of work writes down when it ran, and on which thread.
//!
//! **Step 0** introduces it, and every later step uses it unchanged. Concurrency is
//! something we *count* from the timeline rather than something we claim: each unit
//! records a [`Span`] (unit id, lane, start, end), and [`peak_in_flight`] sweeps the
//! spans to find how many units were running at the same instant.
//!
//! A lane is the OS thread a unit ran on, numbered in the order threads first record
//! a span ([`Lane::current_thread`]). Counting distinct lanes gives "threads used".
//!
//! ```
//! use async_scratch::timeline::{peak_in_flight, Timeline};
//! use std::time::Duration;
//!
//! let timeline = Timeline::new();
//! for unit in 0..3 {
//!     timeline.record(unit, || std::thread::sleep(Duration::from_millis(1))); // the work
//! }
//! let spans = timeline.spans();
//! assert_eq!(spans.len(), 3);
//! assert_eq!(peak_in_flight(&spans), 1); // one after another
//! ```

use crate::locking::lock;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a unit ran: the OS thread, numbered from 0 in the order threads first ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane(pub usize);

impl Lane {
    /// The lane of the calling thread. The same thread always gets the same lane.
    pub fn current_thread() -> Lane {
        static NEXT_LANE: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            // `usize::MAX` means "not numbered yet"; numbers are handed out lazily
            // so that threads that never record a span take no number.
            static THIS_LANE: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        THIS_LANE.with(|lane| {
            if lane.get() == usize::MAX {
                lane.set(NEXT_LANE.fetch_add(1, Ordering::Relaxed));
            }
            Lane(lane.get())
        })
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread #{}", self.0)
    }
}

/// One unit of work as it happened: which unit, where, and from when to when.
///
/// Times are measured from the timeline's origin (the moment it was created), so
/// spans from different threads can be compared directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The unit's id, as given to [`Timeline::record`].
    pub unit: usize,
    /// The thread the unit ran on.
    pub lane: Lane,
    /// When the unit started, since the timeline's origin.
    pub start: Duration,
    /// When the unit ended, since the timeline's origin.
    pub end: Duration,
}

/// Called with every span as it is recorded, for example to move a progress bar.
type Observer = Box<dyn Fn(&Span) + Send + Sync>;

/// A shared, append-only record of spans. Cloning it gives another handle to the same
/// record, so it can be moved into jobs running on other threads.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Instant,
    // A plain `Mutex<Vec>`: a unit takes milliseconds, pushing a span nanoseconds,
    // so contention on this lock is not what any step measures.
    spans: Mutex<Vec<Span>>,
    observer: Option<Observer>,
}

impl Timeline {
    /// An empty timeline whose origin is now.
    pub fn new() -> Timeline {
        Timeline::build(None)
    }

    /// An empty timeline that also calls `observer` with each span as it is recorded.
    ///
    /// ```
    /// use async_scratch::timeline::Timeline;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let counter = seen.clone();
    /// let timeline = Timeline::with_observer(move |_span| {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    /// });
    /// timeline.record(0, || ());
    /// assert_eq!(seen.load(Ordering::Relaxed), 1);
    /// ```
    pub fn with_observer(observer: impl Fn(&Span) + Send + Sync + 'static) -> Timeline {
        Timeline::build(Some(Box::new(observer)))
    }

    fn build(observer: Option<Observer>) -> Timeline {
        let inner = Inner {
            origin: Instant::now(),
            spans: Mutex::new(Vec::new()),
            observer,
        };
        Timeline {
            inner: Arc::new(inner),
        }
    }

    /// Runs `work` on the calling thread and records its span as unit `unit`.
    pub fn record<R>(&self, unit: usize, work: impl FnOnce() -> R) -> R {
        let start = self.now();
        let result = work();
        let end = self.now();
        self.push(Span {
            unit,
            lane: Lane::current_thread(),
            start,
            end,
        });
        result
    }

    /// Time since the timeline's origin.
    pub fn now(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    /// Where `instant` falls on this timeline (zero if before its origin). For times
    /// read from another clock than the real one, such as an executor's
    /// [`Clock`](crate::time::Clock).
    pub fn at(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.inner.origin)
    }

    /// Adds a span measured elsewhere (for work that is not a single closure call).
    pub fn push(&self, span: Span) {
        // A panic while holding this lock cannot leave the Vec half-written, so a
        // poisoned lock still holds good data: take it rather than lose the record.
        let mut spans = lock(&self.inner.spans);
        spans.push(span);
        drop(spans);
        if let Some(observer) = &self.inner.observer {
            observer(&span);
        }
    }

    /// A copy of every span recorded so far, in the order they were recorded.
    pub fn spans(&self) -> Vec<Span> {
        let spans = lock(&self.inner.spans);
        spans.clone()
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spans = lock(&self.inner.spans);
        f.debug_struct("Timeline")
            .field("spans", &spans.len())
            .field("observed", &self.inner.observer.is_some())
            .finish()
    }
}

/// The largest number of spans that were running at the same instant.
///
/// Spans are half-open, `[start, end)`: one that ends exactly when another starts
/// does not overlap it, so work done strictly one after another counts as 1. A span
/// that starts and ends at the same instant (work too short for the clock to see) is
/// empty, and never in flight.
///
/// ```
/// use async_scratch::timeline::{peak_in_flight, Lane, Span};
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let span = |unit, start, end| Span { unit, lane: Lane(0), start: ms(start), end: ms(end) };
/// // 0..10 and 5..15 overlap; 15..20 starts when the second ends.
/// let spans = [span(0, 0, 10), span(1, 5, 15), span(2, 15, 20)];
/// assert_eq!(peak_in_flight(&spans), 2);
/// ```
pub fn peak_in_flight(spans: &[Span]) -> usize {
    // A sweep over start (+1) and end (-1) events in time order. At equal times the
    // ends sort first (`false < true`), which is what makes spans half-open.
    let mut events: Vec<(Duration, bool)> = spans
        .iter()
        .filter(|span| span.start < span.end) // an empty span's end would sort first
        .flat_map(|span| [(span.start, true), (span.end, false)])
        .collect();
    events.sort_unstable();
    let mut in_flight = 0usize;
    let mut peak = 0;
    for (_, is_start) in events {
        if is_start {
            in_flight += 1;
            peak = peak.max(in_flight);
        } else {
            in_flight -= 1;
        }
    }
    peak
}

/// The slices of time a span covers, when the time from the origin to `until` is cut
/// into `slices` equal slices, numbered from 0: from the slice its start falls in, up
/// to the one its end falls in (half-open, as spans are), but always at least one, so
/// that a unit shorter than a slice still shows in a picture.
///
/// ```
/// use async_scratch::timeline::{slices_covered, Lane, Span};
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let span = Span { unit: 0, lane: Lane(0), start: ms(5), end: ms(15) };
/// assert_eq!(slices_covered(&span, ms(20), 4), 1..3); // slices [5, 10) and [10, 15)
/// let blink = Span { unit: 1, lane: Lane(0), start: ms(6), end: ms(7) };
/// assert_eq!(slices_covered(&blink, ms(20), 4), 1..2);
/// ```
pub fn slices_covered(span: &Span, until: Duration, slices: usize) -> Range<usize> {
    if slices == 0 {
        return 0..0;
    }
    let slice_of = |t: Duration| {
        let fraction = t.as_secs_f64() / until.as_secs_f64().max(f64::MIN_POSITIVE);
        (fraction * slices as f64) as usize
    };
    let first = slice_of(span.start).min(slices - 1);
    first..slice_of(span.end).clamp(first + 1, slices)
}

/// How many spans are in flight in each of `slices` equal slices of time, from the
/// origin to the end of the latest span (a span counts in every slice it covers, see
/// [`slices_covered`]). What a picture draws when there are too many lanes for a row
/// each.
///
/// ```
/// use async_scratch::timeline::{in_flight_over_time, Lane, Span};
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let span = |unit, start, end| Span { unit, lane: Lane(0), start: ms(start), end: ms(end) };
/// let spans = [span(0, 0, 10), span(1, 5, 15), span(2, 15, 20)];
/// assert_eq!(in_flight_over_time(&spans, 4), [1, 2, 1, 1]); // slices of 5 ms
/// ```
pub fn in_flight_over_time(spans: &[Span], slices: usize) -> Vec<usize> {
    let until = spans.iter().map(|span| span.end).max().unwrap_or_default();
    // A difference array: +1 where a span's slices begin, -1 just after they end.
    let mut changes = vec![0isize; slices + 1];
    for span in spans {
        let covered = slices_covered(span, until, slices);
        changes[covered.start] += 1;
        changes[covered.end] -= 1;
    }
    let mut in_flight = 0isize;
    changes[..slices]
        .iter()
        .map(|change| {
            in_flight += change;
            in_flight as usize
        })
        .collect()
}

/// How many distinct threads ran at least one span.
pub fn threads_used(spans: &[Span]) -> usize {
    spans
        .iter()
        .map(|span| span.lane)
        .collect::<HashSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(unit: usize, start_ms: u64, end_ms: u64) -> Span {
        Span {
            unit,
            lane: Lane(unit % 2),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
        }
    }

    /// Back-to-back spans never overlap; nested and staggered ones do.
    #[test]
    fn peak_counts_overlaps_not_touches() {
        assert_eq!(peak_in_flight(&[]), 0);
        assert_eq!(peak_in_flight(&[span(0, 0, 1), span(1, 1, 2)]), 1);
        assert_eq!(
            peak_in_flight(&[span(0, 0, 10), span(1, 2, 3), span(2, 2, 4)]),
            3
        );
        assert_eq!(
            threads_used(&[span(0, 0, 1), span(1, 0, 1), span(2, 0, 1)]),
            2
        );
    }

    /// A span too short for the clock to see is empty: it counts for nothing, and its
    /// end (at the same instant as its start) never takes the count below zero.
    #[test]
    fn an_empty_span_is_never_in_flight() {
        assert_eq!(peak_in_flight(&[span(0, 5, 5)]), 0);
        assert_eq!(
            peak_in_flight(&[span(0, 5, 5), span(1, 5, 9), span(2, 7, 7)]),
            1
        );
    }

    /// A thread keeps its lane; another thread gets another one.
    #[test]
    fn lanes_are_per_thread() {
        let here = Lane::current_thread();
        assert_eq!(here, Lane::current_thread());
        let there = std::thread::spawn(Lane::current_thread).join().unwrap();
        assert_ne!(here, there);
    }
}
