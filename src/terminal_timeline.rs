//! A compact timeline of a step, drawn in the terminal under the table: time runs
//! across, one row per lane, each unit drawn in `█` or `▒` in turn (so that units
//! back to back still show as separate), `·` where the lane was idle. With more lanes
//! than fit (step 4's hundred tasks), one row of units in flight over time instead,
//! `▁` to `█` scaled to the peak.

use crate::steps::Step;
use async_scratch::timeline::{in_flight_over_time, slices_covered, Span};

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
pub fn render(step: &Step, spans: &[Span], width: usize) -> Vec<String> {
    let Some(total) = spans
        .iter()
        .map(|span| span.end)
        .max()
        .filter(|t| !t.is_zero())
    else {
        return Vec::new();
    };
    let columns = width.saturating_sub(LABEL_WIDTH + 1).max(10);
    let lanes = step.spans_by_lane(spans);
    if lanes.len() > MAX_LANE_ROWS {
        let in_flight = in_flight_over_time(spans, columns);
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

    /// The bar of a row, after its label.
    fn bar(row: &str) -> &str {
        &row[LABEL_WIDTH + 1..]
    }

    /// Units back to back on one lane alternate glyphs, each over its share of the
    /// columns, and a gap between units is drawn idle.
    #[test]
    fn units_in_a_lane_alternate_glyphs_and_gaps_are_idle() {
        let spans = [span(0, 0, 0, 10), span(1, 0, 10, 20), span(2, 0, 30, 40)];
        let rows = render(&STEPS[0], &spans, LABEL_WIDTH + 1 + 40);
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
            render(&STEPS[1], &lanes(MAX_LANE_ROWS), 60).len(),
            MAX_LANE_ROWS
        );
        let rows = render(&STEPS[1], &lanes(MAX_LANE_ROWS + 1), 60);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].trim_start().starts_with("in flight"), "{rows:?}");
        assert!(
            bar(&rows[0]).chars().all(|c| c == '█'),
            "all in flight all the time"
        );
    }
}
