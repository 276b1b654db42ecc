//! A compact timeline of a step, drawn in the terminal under the table: time runs
//! across, one row per lane, each unit drawn in `█` or `▒` in turn (so that units
//! back to back still show as separate), `·` where the lane was idle. With more lanes
//! than fit (step 4's hundred tasks), one row of units in flight over time instead,
//! `▁` to `█` scaled to the peak. A step that ran an executor (step 4) gets a first
//! row for the executor's own thread: `█` busy, `▒` partly busy, `·` parked.

use crate::executor_lane::ExecutorLane;
use crate::in_flight::most_per_slice;
use crate::runner::Measured;
use crate::steps::Step;
use async_scratch::timeline::{slices_covered, Span};
use std::time::Duration;

/// The most lanes drawn one row each; past it, the density row.
const MAX_LANE_ROWS: usize = 8;

/// Width of the label in front of each row.
const LABEL_WIDTH: usize = 12;

/// The columns the pictures use: the terminal's width when standard output is one,
/// else `$COLUMNS` when set, else 100; never narrower than 40 nor wider than 200.
pub fn terminal_width() -> usize {
    let terminal = console::Term::stdout()
        .size_checked()
        .map(|(_rows, columns)| usize::from(columns));
    let columns = terminal.or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()));
    columns.unwrap_or(100).clamp(40, 200)
}

/// The rows of `step`'s timeline, `width` columns wide with their labels.
pub fn render(step: &Step, measured: &Measured, width: usize) -> Vec<String> {
    let total = crate::svg_timeline::end_of(measured);
    if total.is_zero() {
        return Vec::new();
    }
    let columns = width.saturating_sub(LABEL_WIDTH + 1).max(10);
    let mut rows: Vec<String> = measured
        .executor_lane
        .iter()
        .map(|lane| executor_row(lane, total, columns))
        .collect();
    rows.extend(unit_rows(step, &measured.spans, total, columns));
    rows
}

/// The executor thread's row: each column's share of busy time, as a glyph.
fn executor_row(lane: &ExecutorLane, total: Duration, columns: usize) -> String {
    let bar: String = (0..columns)
        .map(|column| {
            let from = total.mul_f64(column as f64 / columns as f64);
            let to = total.mul_f64((column + 1) as f64 / columns as f64);
            executor_glyph(busy_share_between(lane, from, to))
        })
        .collect();
    format!("{:>LABEL_WIDTH$} {bar}", "executor")
}

/// The share of `[from, to)` the lane was busy, from its slices (a slice partly inside
/// counts in proportion); 0 outside the lane.
fn busy_share_between(lane: &ExecutorLane, from: Duration, to: Duration) -> Option<f64> {
    let (from, to) = (from.max(lane.start), to.min(lane.end));
    if to <= from {
        return None;
    }
    let mut busy = 0.0;
    for index in lane.slices() {
        let slice_start = lane.slice * index as u32;
        let overlap = (slice_start + lane.slice)
            .min(to)
            .saturating_sub(slice_start.max(from));
        busy += lane.busy_share(index) * overlap.as_secs_f64();
    }
    Some(busy / (to - from).as_secs_f64())
}

/// `█` mostly busy, `▒` partly, `·` parked, a space outside the lane.
fn executor_glyph(busy_share: Option<f64>) -> char {
    match busy_share {
        None => ' ',
        Some(share) if share >= 0.5 => '█',
        Some(share) if share > 0.0 => '▒',
        Some(_) => '·',
    }
}

/// One row per lane, or past [`MAX_LANE_ROWS`] one row of units in flight.
fn unit_rows(step: &Step, spans: &[Span], total: Duration, columns: usize) -> Vec<String> {
    let lanes = step.spans_by_lane(spans);
    if lanes.len() > MAX_LANE_ROWS {
        let in_flight = most_per_slice(spans, total, columns);
        let peak = in_flight.iter().copied().max().unwrap_or(1).max(1);
        let bar: String = in_flight.iter().map(|&n| density_block(n, peak)).collect();
        return vec![format!("{:>LABEL_WIDTH$} {bar}", "in flight")];
    }
    lanes
        .iter()
        .map(|(&lane, lane_spans)| {
            // Glyphs alternate along the lane (in start order), so neighbours differ.
            let mut row = vec![None; columns];
            for (nth, span) in lane_spans.iter().enumerate() {
                row[slices_covered(span, total, columns)].fill(Some(nth));
            }
            let bar: String = row.into_iter().map(unit_glyph).collect();
            format!("{:>LABEL_WIDTH$} {bar}", step.lane_name(lane))
        })
        .collect()
}

/// `█` and `▒` for the even and odd units of a lane, `·` for idle.
fn unit_glyph(nth_in_lane: Option<usize>) -> char {
    match nth_in_lane {
        Some(nth) if nth % 2 == 0 => '█',
        Some(_) => '▒',
        None => '·',
    }
}

/// `▁` for a few units in flight up to `█` at the peak; a space for none.
fn density_block(in_flight: usize, peak: usize) -> char {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if in_flight == 0 {
        return ' ';
    }
    let level = (in_flight * LEVELS.len() - 1) / peak;
    LEVELS[level.min(LEVELS.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::STEPS;
    use async_scratch::timeline::Lane;
    use std::time::Duration;

    fn span(unit: usize, lane: usize, start_ms: u64, end_ms: u64) -> Span {
        Span {
            unit,
            lane: Lane(lane),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
        }
    }

    fn measured(spans: &[Span], executor_lane: Option<ExecutorLane>) -> Measured {
        Measured::from_spans(spans.to_vec(), executor_lane)
    }

    /// The bar of a row, after its label.
    fn bar(row: &str) -> &str {
        &row[LABEL_WIDTH + 1..]
    }

    /// Units back to back on one lane alternate glyphs, each over its share of the
    /// columns, and a gap between units is drawn idle.
    #[test]
    fn units_in_a_lane_alternate_glyphs_and_gaps_are_idle() {
        let spans = [span(0, 0, 0, 10), span(1, 0, 10, 20), span(2, 0, 30, 40)];
        let rows = render(&STEPS[0], &measured(&spans, None), LABEL_WIDTH + 1 + 40);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            bar(&rows[0]),
            format!(
                "{}{}{}{}",
                "█".repeat(10),
                "▒".repeat(10),
                "·".repeat(10),
                "█".repeat(10)
            )
        );
    }

    /// One row per lane, up to the limit; past it, one row of units in flight.
    #[test]
    fn many_lanes_become_one_row_in_flight() {
        let lanes = |count: usize| -> Vec<Span> {
            (0..count).map(|lane| span(lane, lane, 0, 10)).collect()
        };
        assert_eq!(
            render(&STEPS[1], &measured(&lanes(MAX_LANE_ROWS), None), 60).len(),
            MAX_LANE_ROWS
        );
        let rows = render(&STEPS[1], &measured(&lanes(MAX_LANE_ROWS + 1), None), 60);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].trim_start().starts_with("in flight"), "{rows:?}");
        assert!(
            bar(&rows[0]).chars().all(|c| c == '█'),
            "all in flight all the time"
        );
    }

    /// The executor's thread is the first row: busy where its slices were busy,
    /// parked between, over the same columns as the units.
    #[test]
    fn the_executor_thread_is_the_first_row() {
        let ms = Duration::from_millis(1);
        let mut busy = vec![Duration::ZERO; 40];
        for index in [0, 1, 2, 3, 38, 39] {
            busy[index] = ms;
        }
        busy[20] = ms / 4;
        let lane = ExecutorLane {
            slice: ms,
            busy,
            start: Duration::ZERO,
            end: ms * 40,
            parks: 2,
        };
        let spans: Vec<Span> = (0..2).map(|unit| span(unit, 0, 4, 38)).collect();
        let rows = render(
            &STEPS[4],
            &measured(&spans, Some(lane)),
            LABEL_WIDTH + 1 + 40,
        );
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(rows[0].trim_start().starts_with("executor"), "{rows:?}");
        let expected = format!(
            "{}{}▒{}{}",
            "█".repeat(4),
            "·".repeat(16),
            "·".repeat(17),
            "█".repeat(2)
        );
        assert_eq!(bar(&rows[0]), expected);
    }
}
