//! The scaling charts: wall time and peak memory against units, on log–log axes, one
//! line per strategy, with the sizes each strategy skipped said under the chart.
//!
//! Some strategies take the same time (step 2 is step 0's loop on a pool, step 3 is
//! step 1's pool), so their lines lie on each other. Each strategy has its own
//! [`LineStyle`]: the ones drawn first are wide and pale, the ones on top thin and
//! dashed, and every point has a marker of its own shape, so that every line shows
//! even where two coincide; the legend shows the same style.

use crate::scaling::{Point, PointOutcome, SIZES};
use crate::steps::STEPS;
use crate::svg_timeline::escape;
use crate::ticks;
use crate::words::format_duration;
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0; // room for the legend
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// How one strategy's line is drawn.
struct LineStyle {
    colour: &'static str,
    width: f64,
    opacity: f64,
    /// An SVG `stroke-dasharray`, empty for a solid line.
    dash: &'static str,
    marker: Marker,
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

/// Steps 0 to 4, in drawing order: 0 and 1 wide and pale underneath, 2 and 3 thin and
/// dashed on top of them (they coincide), 4 solid.
const STYLES: [LineStyle; 5] = [
    LineStyle {
        colour: "#d62728",
        width: 7.0,
        opacity: 0.45,
        dash: "",
        marker: Marker::Circle,
    },
    LineStyle {
        colour: "#1f77b4",
        width: 7.0,
        opacity: 0.45,
        dash: "",
        marker: Marker::Square,
    },
    LineStyle {
        colour: "#ff7f0e",
        width: 2.0,
        opacity: 1.0,
        dash: "6 4",
        marker: Marker::Triangle,
    },
    LineStyle {
        colour: "#2ca02c",
        width: 2.0,
        opacity: 1.0,
        dash: "2 3",
        marker: Marker::Diamond,
    },
    LineStyle {
        colour: "#9467bd",
        width: 2.0,
        opacity: 1.0,
        dash: "",
        marker: Marker::Cross,
    },
];

impl LineStyle {
    fn stroke(&self) -> String {
        let dash = if self.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, self.dash)
        };
        format!(
            r#"stroke="{}" stroke-width="{}" stroke-opacity="{}"{dash}"#,
            self.colour, self.width, self.opacity
        )
    }

    /// The marker at `(x, y)`, as SVG: larger on a wide line, so that a marker drawn
    /// on top of it at the same point leaves its edge showing.
    fn marker(&self, x: f64, y: f64) -> String {
        let r = if self.width > 3.0 { 6.0 } else { 4.0 };
        let colour = self.colour;
        match self.marker {
            Marker::Circle => format!(
                r#"<circle class="marker" cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{colour}"/>"#
            ),
            Marker::Square => format!(
                r#"<rect class="marker" x="{:.1}" y="{:.1}" width="{}" height="{}" fill="{colour}"/>"#,
                x - r,
                y - r,
                2.0 * r,
                2.0 * r
            ),
            Marker::Triangle => format!(
                r#"<polygon class="marker" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{colour}"/>"#,
                x,
                y - r - 1.0,
                x - r - 1.0,
                y + r,
                x + r + 1.0,
                y + r
            ),
            Marker::Diamond => format!(
                r#"<polygon class="marker" points="{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}" fill="white" stroke="{colour}" stroke-width="2"/>"#,
                y - r - 1.0,
                x + r + 1.0,
                y + r + 1.0,
                x - r - 1.0
            ),
            Marker::Cross => format!(
                r#"<path class="marker" d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}" stroke="{colour}" stroke-width="2"/>"#,
                x - r,
                y - r,
                x + r,
                y + r,
                x - r,
                y + r,
                x + r,
                y - r
            ),
        }
    }
}

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
            Metric::Wall => ticks::duration_label(std::time::Duration::from_secs_f64(value)),
            Metric::PeakMemory => format!("{} MiB", ticks::trimmed(value)),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::Wall => "Wall time against units of 10 ms (log–log)",
            Metric::PeakMemory => "Peak memory of the process against units (log–log)",
        }
    }
}

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
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.step.number == step.number)
            .filter_map(|p| metric.value(p).map(|v| (x(p.units), y(v))))
            .collect();
        let style = &STYLES[index % STYLES.len()];
        let _ = write!(
            svg,
            r#"<polyline class="strategy" data-step="{}" fill="none" {} stroke-linejoin="round" points="{}"/>"#,
            step.number,
            style.stroke(),
            line.iter()
                .map(|(px, py)| format!("{px:.1},{py:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for &(px, py) in &line {
            svg.push_str(&style.marker(px, py));
        }
        let legend_y = TOP + 10.0 + index as f64 * 22.0;
        let _ = write!(
            svg,
            r#"<line class="legend" data-step="{}" x1="{}" y1="{legend_y}" x2="{}" y2="{legend_y}" {}/>{}<text x="{}" y="{}">{}</text>"#,
            step.number,
            WIDTH - RIGHT + 12.0,
            WIDTH - RIGHT + 44.0,
            style.stroke(),
            style.marker(WIDTH - RIGHT + 28.0, legend_y),
            WIDTH - RIGHT + 50.0,
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
