//! Round tick values for the pictures' axes: 1, 2 or 5 times a power of ten, as a
//! person would mark a ruler. An axis marked at a quarter of 437 ms (109 ms, 218 ms,
//! ...) makes the reader do arithmetic; one marked at 100 ms, 200 ms, ... does not.
//!
//! The timelines' linear time axes take their ticks from [`linear`]; the scaling
//! charts' log axes are marked at powers of ten, round by nature, and labelled with
//! [`duration_label`] as the timelines are.

use std::time::Duration;

/// The fewest ticks [`linear`] gives past zero, when the axis allows.
const MIN_TICKS: f64 = 3.0;

/// Round values from 0 up to `end`, spaced by the largest of 1, 2 or 5 times a power
/// of ten that still leaves at least [`MIN_TICKS`] of them past zero (so 3 to about 7).
///
/// ```text
/// linear(437.0) == [0, 100, 200, 300, 400]
/// linear(1.0)   == [0, 0.2, 0.4, 0.6, 0.8, 1]
/// ```
pub fn linear(end: f64) -> Vec<f64> {
    if end.is_nan() || end <= 0.0 {
        return vec![0.0];
    }
    let step = round_step(end / MIN_TICKS);
    let count = (end / step + 1e-9).floor() as usize;
    (0..=count).map(|n| n as f64 * step).collect()
}

/// The largest 1, 2 or 5 times a power of ten that is at most `most`.
fn round_step(most: f64) -> f64 {
    let power = 10f64.powf(most.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|mantissa| mantissa * power)
        .find(|&step| step <= most * (1.0 + 1e-9))
        .unwrap_or(power)
}

/// A tick's time in the unit that shows it shortest, without trailing zeros:
/// `0`, `250 µs`, `20 ms`, `1.5 s`.
pub fn duration_label(time: Duration) -> String {
    let seconds = time.as_secs_f64();
    let (value, unit) = if seconds == 0.0 {
        return "0".to_string();
    } else if seconds >= 1.0 {
        (seconds, "s")
    } else if seconds >= 1e-3 {
        (seconds * 1e3, "ms")
    } else {
        (seconds * 1e6, "µs")
    };
    format!("{} {unit}", trimmed(value))
}

/// `value` to at most three decimals, without trailing zeros: `1.5`, `20`.
pub fn trimmed(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `value` is 1, 2 or 5 times a power of ten.
    fn is_round(value: f64) -> bool {
        let mantissa = value / 10f64.powf(value.log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .any(|round| (mantissa - round).abs() < 1e-6)
    }

    /// Every tick past zero is round, evenly spaced, within the axis, and there are 3
    /// to 7 of them, over axes from microseconds to hours and of awkward lengths.
    #[test]
    fn ticks_are_round_evenly_spaced_and_few() {
        for end in [
            1e-6, 3.7e-5, 0.001, 0.0437, 0.1, 0.437, 0.999, 1.0, 1.2, 2.5, 7.0, 13.0, 99.0, 4321.0,
        ] {
            let ticks = linear(end);
            assert_eq!(ticks[0], 0.0, "{end}: {ticks:?}");
            assert!((4..=8).contains(&ticks.len()), "{end}: {ticks:?}");
            let step = ticks[1];
            assert!(is_round(step), "{end}: step {step}");
            for (n, tick) in ticks.iter().enumerate() {
                assert!(
                    (tick - n as f64 * step).abs() < step * 1e-6,
                    "{end}: {ticks:?}"
                );
                assert!(*tick <= end * (1.0 + 1e-9), "{end}: {ticks:?}");
            }
        }
        assert_eq!(linear(437.0), [0.0, 100.0, 200.0, 300.0, 400.0]);
        assert_eq!(linear(0.0), [0.0]);
    }

    /// Labels carry no arithmetic leftovers: 0.2 s is 200 ms, not 0.20 s or 199.99 ms.
    #[test]
    fn tick_labels_are_short() {
        let label = |seconds: f64| duration_label(Duration::from_secs_f64(seconds));
        assert_eq!(label(0.0), "0");
        assert_eq!(label(0.2), "200 ms");
        assert_eq!(label(0.6000000000000001), "600 ms");
        assert_eq!(label(1.5), "1.5 s");
        assert_eq!(label(2.0), "2 s");
        assert_eq!(label(0.00025), "250 µs");
    }
}
