//! The scaling charts: wall time and peak memory against units, on log–log axes, one
//! line per strategy, with the sizes each strategy skipped said under the chart.

use crate::scaling::{Point, PointOutcome, SIZES};
use crate::steps::STEPS;
use crate::svg_timeline::escape;
use crate::words::format_duration;
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0; // room for the legend
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// One line colour per strategy (steps 0 to 4), told apart also by their legend order.
const COLOURS: [&str; 5] = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];

/// What a chart plots.
#[derive(Clone, Copy)]
pub enum Metric {
    Wall,
    PeakMemory,
}

impl Metric {
    fn value(self, point: &Point) -> Option<f64> {
        match (&point.outcome, self) {
            (PointOutcome::Ran { wall, .. }, Metric::Wall) => Some(wall.as_secs_f64()),
            (PointOutcome::Ran { peak_rss_kib, .. }, Metric::PeakMemory) => {
                peak_rss_kib.map(|kib| kib as f64 / 1024.0)
            }
            _ => None,
        }
    }

    fn label(self, value: f64) -> String {
        match self {
            Metric::Wall => format_duration(std::time::Duration::from_secs_f64(value)),
            Metric::PeakMemory => format!("{value:.0} MiB"),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::Wall => "Wall time against units of 10 ms (log–log)",
            Metric::PeakMemory => "Peak memory of the process against units (log–log)",
        }
    }
}

/// Steps drawn dashed: step 2 lies on step 0 and step 3 on step 1 (same times), and a
/// dashed line lets the one beneath show through.
const DASHED_STEPS: [u8; 2] = [2, 3];

/// Height of one line of notes under the chart.
const NOTE_HEIGHT: f64 = 16.0;

/// The chart of `metric` for `points`, as SVG, with a line under it for each
/// strategy that skipped sizes over `budget`.
pub fn render(points: &[Point], metric: Metric, budget: std::time::Duration) -> String {
    let notes = skipped_notes(points, budget);
    let full_height = HEIGHT + notes.len() as f64 * NOTE_HEIGHT;
    let values: Vec<f64> = points
        .iter()
        .filter_map(|p| metric.value(p))
        .filter(|v| *v > 0.0)
        .collect();
    let low = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-9)
        .log10()
        .floor();
    let high = values
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-9)
        .log10()
        .ceil()
        .max(low + 1.0);
    let x = |units: usize| {
        let span = (SIZES[SIZES.len() - 1] as f64).log10() - (SIZES[0] as f64).log10();
        LEFT + ((units as f64).log10() - (SIZES[0] as f64).log10()) / span * (WIDTH - LEFT - RIGHT)
    };
    let y = |value: f64| TOP + (high - value.log10()) / (high - low) * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="scaling" width="{WIDTH}" height="{full_height}" viewBox="0 0 {WIDTH} {full_height}" font-family="sans-serif" font-size="11"><text x="{LEFT}" y="22" font-size="14">{}</text>"#,
        metric.title()
    );
    for (index, note) in notes.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text class="skipped" x="{LEFT}" y="{:.1}">{}</text>"#,
            HEIGHT + 4.0 + index as f64 * NOTE_HEIGHT,
            escape(note)
        );
    }
    for units in SIZES {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1}" stroke="#ddd"/><text x="{0:.1}" y="{2}" text-anchor="middle">{units}</text>"##,
            x(units),
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 16.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">units</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 10.0
    );
    for decade in (low as i32)..=(high as i32) {
        let value = 10f64.powi(decade);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            y(value),
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(value) + 4.0,
            metric.label(value)
        );
    }
    for (index, step) in STEPS.iter().enumerate() {
        let line: Vec<String> = points
            .iter()
            .filter(|p| p.step.number == step.number)
            .filter_map(|p| {
                metric
                    .value(p)
                    .map(|v| format!("{:.1},{:.1}", x(p.units), y(v)))
            })
            .collect();
        let colour = COLOURS[index % COLOURS.len()];
        let dash = if DASHED_STEPS.contains(&step.number) {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<polyline class="strategy" data-step="{}" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            step.number,
            line.join(" ")
        );
        for point in &line {
            let (px, py) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                svg,
                r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#
            );
        }
        let legend_y = TOP + 10.0 + index as f64 * 18.0;
        let _ = write!(
            svg,
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{colour}" stroke-width="3"{dash}/><text x="{3}" y="{4}">{5}</text>"#,
            WIDTH - RIGHT + 15.0,
            legend_y,
            WIDTH - RIGHT + 35.0,
            WIDTH - RIGHT + 40.0,
            legend_y + 4.0,
            escape(&format!("step {}: {}", step.number, step.name))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One sentence per strategy that skipped sizes: from which size, and why.
pub fn skipped_notes(points: &[Point], budget: std::time::Duration) -> Vec<String> {
    STEPS
        .iter()
        .filter_map(|step| {
            let first = points.iter().find(|p| p.step.number == step.number && matches!(p.outcome, PointOutcome::Skipped(_)))?;
            let PointOutcome::Skipped(expected) = first.outcome else { return None };
            Some(format!(
                "step {} ({}) skipped from {} units: it would take about {} there, over the {} budget",
                step.number,
                step.name,
                first.units,
                format_duration(expected),
                format_duration(budget)
            ))
        })
        .collect()
}
