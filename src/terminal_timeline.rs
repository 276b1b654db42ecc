//! A compact timeline of a step, drawn in the terminal under the table: time runs
//! across, one row per lane, each unit drawn in `█` or `▒` in turn (so that units
//! back to back still show as separate), `·` where the lane was idle. With more lanes
//! than fit (step 4's hundred tasks), one row of units in flight over time instead,
//! `▁` to `█` scaled to the peak.

use crate::steps::Step;
use async_scratch::timeline::Span;
use std::collections::BTreeMap;

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
    // The columns a span covers: at least one, so a short unit still shows.
    let cover = |span: &Span| {
        let at = |t: std::time::Duration| {
            (t.as_secs_f64() / total.as_secs_f64() * columns as f64) as usize
        };
        let first = at(span.start).min(columns - 1);
        (first, at(span.end).clamp(first + 1, columns))
    };
    let mut lanes: BTreeMap<usize, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        lanes.entry(step.lane_of(span)).or_default().push(span);
    }
    if lanes.len() <= MAX_LANE_ROWS {
        return lanes
            .iter_mut()
            .map(|(&lane, lane_spans)| {
                // Glyphs alternate along the lane, so neighbours always differ.
                lane_spans.sort_by_key(|span| span.start);
                let mut row = vec![None; columns];
                for (nth, span) in lane_spans.iter().enumerate() {
                    let (first, end) = cover(span);
                    row[first..end].fill(Some(nth));
                }
                let bar: String = row.into_iter().map(unit_glyph).collect();
                format!("{:>LABEL_WIDTH$} {bar}", step.lane_name(lane))
            })
            .collect();
    }
    let mut changes = vec![0i64; columns + 1];
    for span in spans {
        let (first, end) = cover(span);
        changes[first] += 1;
        changes[end] -= 1;
    }
    let in_flight = running(&changes);
    let peak = in_flight.iter().copied().max().unwrap_or(1).max(1);
    let bar: String = in_flight.iter().map(|&n| density_block(n, peak)).collect();
    vec![format!("{:>LABEL_WIDTH$} {bar}", "in flight")]
}

/// `█` and `▒` for the even and odd units of a lane, `·` for idle.
fn unit_glyph(nth_in_lane: Option<usize>) -> char {
    match nth_in_lane {
        Some(nth) if nth % 2 == 0 => '█',
        Some(_) => '▒',
        None => '·',
    }
}

/// Running sums of a difference array: how many units are in flight in each column.
fn running(changes: &[i64]) -> Vec<i64> {
    let mut now = 0;
    changes[..changes.len() - 1]
        .iter()
        .map(|change| {
            now += change;
            now
        })
        .collect()
}

/// `▁` for a few units in flight up to `█` at the peak; a space for none.
fn density_block(in_flight: i64, peak: i64) -> char {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if in_flight <= 0 {
        return ' ';
    }
    let level = ((in_flight * LEVELS.len() as i64 - 1) / peak) as usize;
    LEVELS[level.min(LEVELS.len() - 1)]
}
