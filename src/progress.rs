//! A progress bar for steps long enough to need one.

use crate::steps::Step;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Steps expected to finish sooner than this get no bar: it would only flicker.
const WORTH_A_BAR: Duration = Duration::from_secs(1);

/// A bar counting the step's units, drawn on standard error; a hidden bar (which counts
/// but draws nothing) when `allowed` is false or the step is short.
pub fn bar(step: &Step, units: usize, expected: Duration, allowed: bool) -> ProgressBar {
    if !allowed || expected < WORTH_A_BAR {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(units as u64);
    let template = format!(
        "step {} {{bar:40}} {{pos}}/{{len}} units, {{elapsed}} of about {}s",
        step.label(),
        expected.as_secs().max(1)
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
