//! A step's timeline as an SVG picture, written by hand: a few rectangles and lines need
//! no plotting crate, and hand-written SVG keeps each bar's position checkable against
//! its span (the tests parse it back).
//!
//! Time runs across; one lane per thread (steps 0–3) or per task (step 4); each unit a
//! bar (`<rect class="unit">`) from its start to its end, with a tooltip. Past
//! [`MAX_LANES`] lanes the bars would be thinner than a pixel, so the picture becomes a
//! density view: units in flight over time (`<polyline class="density">`).

use crate::steps::Step;
use async_scratch::timeline::{in_flight_over_time, peak_in_flight, Span};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// The most lanes drawn one bar-row each; past it, the density view.
pub const MAX_LANES: usize = 300;

const WIDTH: f64 = 900.0;
const LEFT: f64 = 90.0; // room for lane labels
const RIGHT: f64 = 20.0;
const TOP: f64 = 44.0; // room for the title
const BOTTOM: f64 = 34.0; // room for the time axis
/// A lane's height while lanes are few; with many, they share [`PLOT_HEIGHT`].
const LANE_HEIGHT: f64 = 14.0;
/// The most a plot of many lanes grows to: a hundred lanes of 14 px would be a scroll.
const PLOT_HEIGHT: f64 = 400.0;
/// The thinnest lane drawn, still a visible bar.
const MIN_LANE_HEIGHT: f64 = 1.0;
const DENSITY_HEIGHT: f64 = 160.0;
/// Time buckets of the density view: one per two pixels is as fine as the eye sees.
const DENSITY_BUCKETS: usize = 400;

/// The horizontal scale: where a time falls on the picture.
struct TimeAxis {
    total: f64,
}

impl TimeAxis {
    fn x(&self, t: Duration) -> f64 {
        LEFT + t.as_secs_f64() / self.total * (WIDTH - LEFT - RIGHT)
    }
}

/// The SVG of `step`'s spans, which took `wall` in all.
pub fn render(step: &Step, spans: &[Span], wall: Duration) -> String {
    let end = spans.iter().map(|span| span.end).max().unwrap_or_default();
    let axis = TimeAxis {
        total: end.as_secs_f64().max(1e-9),
    };
    let lanes = step.spans_by_lane(spans);
    let (body, plot_height) = if lanes.len() <= MAX_LANES {
        bars(step, &lanes, &axis)
    } else {
        (density(spans), DENSITY_HEIGHT)
    };
    let height = TOP + plot_height + BOTTOM;
    let title = format!(
        "Step {}: {} (wall {}, peak in flight {}, {})",
        step.label(),
        step.what,
        crate::words::format_duration(wall),
        peak_in_flight(spans),
        crate::words::count(spans.len(), "unit")
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" data-step="{}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#,
        step.number
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="14">{}</text>"#,
        escape(&title)
    );
    svg.push_str(&body);
    svg.push_str(&time_axis(&axis, end, TOP + plot_height));
    svg.push_str("</svg>");
    svg
}

/// One row per lane, one bar per unit; returns the SVG and the plot's height.
fn bars(step: &Step, lanes: &BTreeMap<usize, Vec<&Span>>, axis: &TimeAxis) -> (String, f64) {
    let mut svg = String::new();
    let lane_height = (PLOT_HEIGHT / lanes.len() as f64).clamp(MIN_LANE_HEIGHT, LANE_HEIGHT);
    let label_every = lanes.len().div_ceil(20).max(1); // at most ~20 labels
    for (row, (&lane, lane_spans)) in lanes.iter().enumerate() {
        let y = TOP + row as f64 * lane_height;
        if row % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + lane_height.max(10.0) - 3.0,
                escape(&step.lane_name(lane))
            );
        }
        for (nth, span) in lane_spans.iter().enumerate() {
            let (x, end_x) = (axis.x(span.start), axis.x(span.end));
            let fill = if nth % 2 == 0 { "#3b6ea8" } else { "#7aa6d6" };
            let _ = write!(
                svg,
                r#"<rect class="unit" data-unit="{}" x="{x:.3}" y="{:.3}" width="{:.3}" height="{:.3}" fill="{fill}"><title>unit {}: {:.1}–{:.1} ms</title></rect>"#,
                span.unit,
                y + lane_height * 0.1,
                (end_x - x).max(0.0),
                lane_height * 0.8,
                span.unit,
                span.start.as_secs_f64() * 1e3,
                span.end.as_secs_f64() * 1e3,
            );
        }
    }
    (svg, lanes.len() as f64 * lane_height)
}

/// Units in flight over time, as one line, scaled to the peak.
fn density(spans: &[Span]) -> String {
    let counts = in_flight_over_time(spans, DENSITY_BUCKETS);
    let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let points: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(bucket, &count)| {
            let x = LEFT + (bucket as f64 + 0.5) / DENSITY_BUCKETS as f64 * (WIDTH - LEFT - RIGHT);
            let y = TOP + DENSITY_HEIGHT - count as f64 / peak * (DENSITY_HEIGHT - 4.0);
            format!("{x:.2},{y:.2}")
        })
        .collect();
    format!(
        r##"<text x="{}" y="{}" text-anchor="end">{peak} in flight</text><text x="{}" y="{}" text-anchor="end">0</text><polyline class="density" fill="none" stroke="#3b6ea8" stroke-width="1.5" points="{}"/>"##,
        LEFT - 6.0,
        TOP + 8.0,
        LEFT - 6.0,
        TOP + DENSITY_HEIGHT,
        points.join(" ")
    )
}

/// Five ticks from 0 to the end of the last span.
fn time_axis(axis: &TimeAxis, end: Duration, y: f64) -> String {
    let mut svg = format!(
        r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#444"/>"##,
        WIDTH - RIGHT
    );
    for tick in 0..=4 {
        let t = end.mul_f64(f64::from(tick) / 4.0);
        let x = axis.x(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.2}" y1="{y}" x2="{x:.2}" y2="{}" stroke="#444"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"##,
            y + 4.0,
            y + 16.0,
            if tick == 0 {
                "0".to_string()
            } else {
                crate::words::format_duration(t)
            }
        );
    }
    svg
}

/// Escapes text for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
