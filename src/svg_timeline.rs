//! A step's timeline as an SVG picture, written by hand: a few rectangles and lines need
//! no plotting crate, and hand-written SVG keeps each bar's position checkable against
//! its span (the tests parse it back).
//!
//! Time runs across; one lane per thread (steps 0–3) or per task (step 4); each unit a
//! bar (`<rect class="unit">`) from its start to its end, with a tooltip. Past
//! [`MAX_LANES`] lanes the bars would be thinner than a pixel, so the picture becomes a
//! density view: units in flight over time (`<polyline class="density">`), labelled
//! with the same peak as the table. A step that runs an executor (step 4) gets one
//! more lane on top, the executor's own thread (`<g class="executor-lane">`): dark
//! where it was busy polling, pale where it was parked, so that one thread is seen
//! idle while every task waits.
//!
//! The time axis runs from 0 to the step's own end, or, with `--report-same-axis`, to
//! the end of the slowest step, so that the pictures compare by eye.

use crate::executor_lane::ExecutorLane;
use crate::in_flight;
use crate::runner::Measured;
use crate::steps::Step;
use crate::ticks;
use async_scratch::timeline::Span;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// The most lanes drawn one bar-row each; past it, the density view.
pub const MAX_LANES: usize = 300;

const WIDTH: f64 = 900.0;
const LEFT: f64 = 100.0; // room for lane labels
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
/// A row above the density line for its caption, clear of the line's peaks.
const DENSITY_CAPTION_ROW: f64 = 18.0;
/// Time buckets of the density view: one per two pixels is as fine as the eye sees.
const DENSITY_BUCKETS: usize = 400;
/// The executor thread's lane, and the gap under it that sets it apart from the tasks.
const EXECUTOR_LANE_HEIGHT: f64 = 16.0;
const EXECUTOR_GAP: f64 = 10.0;
/// Shades of busy: a slice is drawn in one of these many steps from parked to busy,
/// and neighbouring slices of the same shade become one rectangle.
const BUSY_SHADES: f64 = 4.0;
const BUSY_COLOUR: &str = "#c0392b";
const PARKED_COLOUR: &str = "#f3e0dd";

/// Which time scale a timeline uses.
#[derive(Clone, Copy, Debug)]
pub enum TimeScale {
    /// From 0 to the end of the step's own last span.
    Own,
    /// From 0 to this time, the same for every step (`--report-same-axis`).
    Shared(Duration),
}

/// Where a step's picture ends in time: its last span, or its executor's last moment.
pub fn end_of(measured: &Measured) -> Duration {
    let spans_end = measured.spans.iter().map(|span| span.end).max();
    let lane_end = measured.executor_lane.as_ref().map(|lane| lane.end);
    spans_end.max(lane_end).unwrap_or_default()
}

/// The horizontal scale: where a time falls on the picture.
struct TimeAxis {
    total: f64,
}

impl TimeAxis {
    fn x(&self, t: Duration) -> f64 {
        LEFT + t.as_secs_f64() / self.total * (WIDTH - LEFT - RIGHT)
    }
}

/// The SVG of `step`'s run, on `scale`.
pub fn render(step: &Step, measured: &Measured, scale: TimeScale) -> String {
    let spans = &measured.spans;
    let end = match scale {
        TimeScale::Own => end_of(measured),
        TimeScale::Shared(end) => end,
    };
    let axis = TimeAxis {
        total: end.as_secs_f64().max(1e-9),
    };
    let mut body = String::new();
    let mut plot_top = TOP;
    if let Some(lane) = &measured.executor_lane {
        body.push_str(&executor_lane(lane, &axis));
        plot_top += EXECUTOR_LANE_HEIGHT + EXECUTOR_GAP;
    }
    let lanes = step.spans_by_lane(spans);
    let plot_height = if lanes.len() <= MAX_LANES {
        bars(&mut body, step, &lanes, &axis, plot_top)
    } else {
        density(&mut body, spans, measured.peak_in_flight, &axis, plot_top);
        DENSITY_CAPTION_ROW + DENSITY_HEIGHT
    };
    let height = plot_top + plot_height + BOTTOM;
    let title = format!(
        "Step {}: {} (wall {}, peak in flight {}, {})",
        step.label(),
        step.what,
        crate::words::format_duration(measured.wall),
        measured.peak_in_flight,
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
    svg.push_str(&time_axis(&axis, end, plot_top + plot_height));
    svg.push_str("</svg>");
    svg
}

/// The executor thread's lane: pale over the whole run (parked), darker where it was
/// busy, in [`BUSY_SHADES`] steps; with its label and a key.
fn executor_lane(lane: &ExecutorLane, axis: &TimeAxis) -> String {
    let y = TOP;
    let mut svg = format!(
        r##"<g class="executor-lane"><text x="{}" y="{}" text-anchor="end" font-weight="bold">executor thread</text><rect class="executor-parked" x="{:.3}" y="{y}" width="{:.3}" height="{EXECUTOR_LANE_HEIGHT}" fill="{PARKED_COLOUR}"><title>parked: nothing to poll</title></rect>"##,
        LEFT - 6.0,
        y + EXECUTOR_LANE_HEIGHT - 4.0,
        axis.x(lane.start),
        (axis.x(lane.end) - axis.x(lane.start)).max(0.0),
    );
    let shade = |index: usize| (lane.busy_share(index) * BUSY_SHADES).ceil() / BUSY_SHADES;
    let slices: Vec<usize> = lane.slices().collect();
    let mut run_start = 0;
    while run_start < slices.len() {
        let level = shade(slices[run_start]);
        let mut run_end = run_start + 1;
        while run_end < slices.len() && shade(slices[run_end]) == level {
            run_end += 1;
        }
        if level > 0.0 {
            let from = (lane.slice * slices[run_start] as u32).max(lane.start);
            let to = (lane.slice * (slices[run_end - 1] as u32 + 1)).min(lane.end);
            let _ = write!(
                svg,
                r#"<rect class="executor-busy" x="{:.3}" y="{y}" width="{:.3}" height="{EXECUTOR_LANE_HEIGHT}" fill="{BUSY_COLOUR}" fill-opacity="{level}"><title>busy polling: {:.0}% of {:.1}–{:.1} ms</title></rect>"#,
                axis.x(from),
                (axis.x(to) - axis.x(from)).max(0.5),
                level * 100.0,
                from.as_secs_f64() * 1e3,
                to.as_secs_f64() * 1e3,
            );
        }
        run_start = run_end;
    }
    let key_x = WIDTH - RIGHT - 250.0;
    let _ = write!(
        svg,
        r##"<rect x="{key_x}" y="27" width="10" height="10" fill="{BUSY_COLOUR}"/><text x="{}" y="36">busy (polling)</text><rect x="{}" y="27" width="10" height="10" fill="{PARKED_COLOUR}" stroke="#999"/><text x="{}" y="36">parked (waiting)</text><text x="{}" y="36">busy {}</text></g>"##,
        key_x + 14.0,
        key_x + 100.0,
        key_x + 114.0,
        LEFT,
        escape(&busy_words(lane)),
    );
    svg
}

/// "1.2 ms of 105 ms (1%)": how long the thread was busy, of the lane's time.
fn busy_words(lane: &ExecutorLane) -> String {
    let total = lane.end.saturating_sub(lane.start);
    let busy = lane.total_busy();
    let share = busy.as_secs_f64() / total.as_secs_f64().max(1e-9) * 100.0;
    format!(
        "{} of {} ({share:.0}%)",
        crate::words::format_duration(busy),
        crate::words::format_duration(total)
    )
}

/// One row per lane from `top`, one bar per unit, into `svg`; returns the plot's height.
fn bars(
    svg: &mut String,
    step: &Step,
    lanes: &BTreeMap<usize, Vec<&Span>>,
    axis: &TimeAxis,
    top: f64,
) -> f64 {
    let lane_height = (PLOT_HEIGHT / lanes.len() as f64).clamp(MIN_LANE_HEIGHT, LANE_HEIGHT);
    let label_every = lanes.len().div_ceil(20).max(1); // at most ~20 labels
    for (row, (&lane, lane_spans)) in lanes.iter().enumerate() {
        let y = top + row as f64 * lane_height;
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
    lanes.len() as f64 * lane_height
}

/// Units in flight over time from `top`, as one line into `svg`, scaled to `peak`, the
/// table's peak in flight: the line's highest point is that peak (see [`in_flight`]).
/// The caption, from the same peak, goes in a row of its own above the line.
fn density(svg: &mut String, spans: &[Span], peak: usize, axis: &TimeAxis, caption_top: f64) {
    let top = caption_top + DENSITY_CAPTION_ROW;
    let until = Duration::from_secs_f64(axis.total);
    let counts = in_flight::most_per_slice(spans, until, DENSITY_BUCKETS);
    let scale = peak.max(1) as f64;
    let points: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(bucket, &count)| {
            let x = LEFT + (bucket as f64 + 0.5) / DENSITY_BUCKETS as f64 * (WIDTH - LEFT - RIGHT);
            let y = top + DENSITY_HEIGHT - count as f64 / scale * (DENSITY_HEIGHT - 4.0);
            format!("{x:.2},{y:.2}")
        })
        .collect();
    let _ = write!(
        svg,
        r##"<text class="density-peak" x="{}" y="{}" text-anchor="end">{peak} in flight</text><text x="{}" y="{}" text-anchor="end">0</text><polyline class="density" fill="none" stroke="#3b6ea8" stroke-width="1.5" points="{}"/><text class="density-caption" x="{}" y="{}">{}</text>"##,
        LEFT - 6.0,
        top + 8.0,
        LEFT - 6.0,
        top + DENSITY_HEIGHT,
        points.join(" "),
        LEFT,
        caption_top + 12.0,
        escape(&in_flight::caption(peak, spans.len())),
    );
}

/// Round ticks (see [`ticks`]) from 0 to `end`.
fn time_axis(axis: &TimeAxis, end: Duration, y: f64) -> String {
    let mut svg = format!(
        r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#444"/>"##,
        WIDTH - RIGHT
    );
    for tick in ticks::linear(end.as_secs_f64()) {
        let t = Duration::from_secs_f64(tick);
        let x = axis.x(t);
        let _ = write!(
            svg,
            r##"<line class="tick" x1="{x:.2}" y1="{y}" x2="{x:.2}" y2="{}" stroke="#444"/><text class="tick" x="{x:.2}" y="{}" text-anchor="middle">{}</text>"##,
            y + 4.0,
            y + 16.0,
            ticks::duration_label(t)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::STEPS;
    use async_scratch::timeline::Lane;

    const MS: Duration = Duration::from_millis(1);

    fn span(unit: usize, start_ms: u32, end_ms: u32) -> Span {
        Span {
            unit,
            lane: Lane(0),
            start: MS * start_ms,
            end: MS * end_ms,
        }
    }

    fn measured(spans: Vec<Span>, executor_lane: Option<ExecutorLane>) -> Measured {
        Measured::from_spans(spans, executor_lane)
    }

    /// A lane busy for the first and last 2 ms of 20, parked in between.
    fn lane_busy_at_both_ends() -> ExecutorLane {
        let slice = MS;
        let mut busy = vec![Duration::ZERO; 20];
        for index in [0, 1, 18, 19] {
            busy[index] = slice;
        }
        ExecutorLane {
            slice,
            busy,
            start: Duration::ZERO,
            end: MS * 20,
            parks: 1,
        }
    }

    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::to_string))
            .collect()
    }

    /// The executor's thread is a lane of its own above the tasks: parked over the
    /// whole run, busy (full shade) where it polled, and nothing busy in between.
    #[test]
    fn the_executor_thread_is_drawn_above_the_tasks() {
        let spans: Vec<Span> = (0..5).map(|n| span(n, 2, 18)).collect();
        let svg = render(
            &STEPS[4],
            &measured(spans.clone(), Some(lane_busy_at_both_ends())),
            TimeScale::Own,
        );
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let class = |name: &str| {
            doc.descendants()
                .filter(|n| n.attribute("class") == Some(name))
                .collect::<Vec<_>>()
        };
        assert_eq!(class("executor-parked").len(), 1);
        let busy = class("executor-busy");
        assert_eq!(busy.len(), 2, "{svg}");
        let axis = TimeAxis { total: 0.020 };
        let x =
            |node: &roxmltree::Node, name| node.attribute(name).unwrap().parse::<f64>().unwrap();
        assert!((x(&busy[0], "x") - axis.x(Duration::ZERO)).abs() < 0.01);
        assert!((x(&busy[0], "width") - (axis.x(MS * 2) - axis.x(Duration::ZERO))).abs() < 0.01);
        assert!((x(&busy[1], "x") - axis.x(MS * 18)).abs() < 0.01);
        let lane_y = x(&busy[0], "y");
        for bar in class("unit") {
            assert!(
                x(&bar, "y") > lane_y + EXECUTOR_LANE_HEIGHT,
                "tasks under the lane"
            );
        }
        assert!(texts(&svg).contains(&"executor thread".to_string()));

        let without = render(&STEPS[4], &measured(spans, None), TimeScale::Own);
        assert!(!without.contains("executor"), "no lane, no executor row");
    }

    /// The density view's label is the table's peak, and its caption says "all" only
    /// when every unit was in flight at once: here 74 of 100 overlap at most.
    #[test]
    fn the_density_view_says_what_the_data_says() {
        let spans: Vec<Span> = (0..400u32)
            .map(|n| span(n as usize, n / 4, n / 4 + 19))
            .collect();
        let data = measured(spans, None);
        let svg = render(&STEPS[4], &data, TimeScale::Own);
        let texts = texts(&svg);
        assert!(data.peak_in_flight < 400);
        let label = format!("{} in flight", data.peak_in_flight);
        assert!(texts.contains(&label), "{texts:?}");
        let caption = in_flight::caption(data.peak_in_flight, 400);
        assert!(texts.contains(&caption), "{texts:?}");
        assert!(!caption.contains("all"), "{caption}");
    }

    /// Units one after another were never two in flight, and the label says 1 even
    /// where a slice of the picture holds the end of one and the start of the next.
    #[test]
    fn units_back_to_back_are_labelled_one_in_flight() {
        let spans: Vec<Span> = (0..401u32)
            .map(|n| span(n as usize, n * 3, n * 3 + 3))
            .collect();
        let data = measured(spans, None);
        assert_eq!(data.peak_in_flight, 1);
        let texts = texts(&render(&STEPS[4], &data, TimeScale::Own));
        assert!(texts.contains(&"1 in flight".to_string()), "{texts:?}");
    }

    /// On a shared scale the axis runs to the shared end, past the step's own, and its
    /// ticks are the round ones of that end.
    #[test]
    fn a_shared_scale_runs_the_axis_to_its_end() {
        let data = measured(vec![span(0, 0, 10)], None);
        let own = texts(&render(&STEPS[0], &data, TimeScale::Own));
        assert!(own.contains(&"10 ms".to_string()), "{own:?}");
        let shared = texts(&render(&STEPS[0], &data, TimeScale::Shared(MS * 1000)));
        assert!(shared.contains(&"1 s".to_string()), "{shared:?}");
        assert!(!shared.contains(&"10 ms".to_string()), "{shared:?}");
    }
}
