//! Units in flight over time, as the pictures' density views draw it, and the words
//! that say how many were in flight at once, both made from the same spans as the
//! table's "peak in flight", so that the picture, its label and the table agree.
//!
//! Each slice of time holds the most units in flight at any one instant inside it
//! (not every unit that touched the slice: a slice where one unit ends and the next
//! begins would then count two where there was never more than one). So the highest
//! slice is exactly the table's peak.

use async_scratch::timeline::Span;
use std::time::Duration;

/// The most spans in flight at one instant within each of `slices` equal slices of
/// `[0, until)`. Spans are half-open, as for `peak_in_flight`.
pub fn most_per_slice(spans: &[Span], until: Duration, slices: usize) -> Vec<usize> {
    let mut most = vec![0usize; slices];
    if slices == 0 || until.is_zero() {
        return most;
    }
    let slice_of = |t: Duration| {
        let fraction = t.as_secs_f64() / until.as_secs_f64();
        ((fraction * slices as f64) as usize).min(slices - 1)
    };
    // A sweep over starts (+1) and ends (-1) in time order, ends first at equal times.
    let mut events: Vec<(Duration, bool)> = spans
        .iter()
        .filter(|span| span.start < span.end)
        .flat_map(|span| [(span.start, true), (span.end, false)])
        .collect();
    events.sort_unstable();
    let mut in_flight = 0usize;
    let mut slice = 0;
    for (at, is_start) in events {
        // The count so far held from the previous event up to this one.
        let now = slice_of(at);
        for held in &mut most[slice..=now] {
            *held = (*held).max(in_flight);
        }
        slice = now;
        if is_start {
            in_flight += 1;
            most[now] = most[now].max(in_flight);
        } else {
            in_flight -= 1;
        }
    }
    most
}

/// How many of `units` were in flight at once, at the peak, in words made from the
/// measured `peak`: "all 100 units were in flight at once" only when all were.
pub fn caption(peak: usize, units: usize) -> String {
    if units > 0 && peak == units {
        if units == 1 {
            return "the 1 unit was in flight alone".to_string();
        }
        return format!("all {units} units were in flight at once");
    }
    let share = if units == 0 {
        0.0
    } else {
        peak as f64 * 100.0 / units as f64
    };
    format!("at most {peak} of {units} units ({share:.0}%) were in flight at once")
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_scratch::timeline::{peak_in_flight, Lane};

    fn span(unit: usize, start_ms: u64, end_ms: u64) -> Span {
        Span {
            unit,
            lane: Lane(0),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
        }
    }

    /// Units back to back never count two, even in the slice where one hands over to
    /// the next; overlapping ones do, in the slices where they overlap.
    #[test]
    fn a_slice_holds_the_most_at_one_instant() {
        let back_to_back = [span(0, 0, 15), span(1, 15, 30)];
        assert_eq!(
            most_per_slice(&back_to_back, Duration::from_millis(30), 3),
            [1, 1, 1]
        );
        let overlapping = [span(0, 0, 12), span(1, 8, 30)];
        assert_eq!(
            most_per_slice(&overlapping, Duration::from_millis(30), 3),
            [2, 2, 1]
        );
    }

    /// The highest slice is the table's peak, for a synthetic run where 74 of 100
    /// units overlap: starting the units took longer than a unit lasts.
    #[test]
    fn the_highest_slice_is_the_tables_peak() {
        let spans: Vec<Span> = (0..100).map(|n| span(n, n as u64, n as u64 + 74)).collect();
        let peak = peak_in_flight(&spans);
        assert_eq!(peak, 74);
        let most = most_per_slice(&spans, Duration::from_millis(174), 400);
        assert_eq!(most.iter().max(), Some(&peak));
    }

    /// The caption says "all" only when all were, and otherwise the measured share.
    #[test]
    fn the_caption_is_made_from_the_peak() {
        assert_eq!(caption(100, 100), "all 100 units were in flight at once");
        let partial = caption(74, 100);
        assert!(!partial.contains("all"), "{partial}");
        assert_eq!(
            partial,
            "at most 74 of 100 units (74%) were in flight at once"
        );
    }
}
