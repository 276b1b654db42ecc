//! Medians and spread of several runs.
//!
//! The median, not the mean: one run slowed by another program on the machine moves
//! a mean, but not a median of five.

/// What several runs of one workload on one runtime came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The middle figure (the mean of the two middle ones, for an even count).
    pub median: f64,
    /// The smallest figure.
    pub min: f64,
    /// The largest figure.
    pub max: f64,
    /// How many figures there were.
    pub runs: usize,
}

impl Summary {
    /// The summary of `figures`, or `None` if there are none.
    pub fn of(figures: &[f64]) -> Option<Summary> {
        let mut sorted = figures.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Summary {
            median,
            min,
            max,
            runs: sorted.len(),
        })
    }

    /// The spread, max minus min, as a fraction of the median: 0.1 means the runs
    /// span 10% of the median. Zero for a median of zero.
    pub fn spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An odd count's median is its middle figure, whatever the order given; an
    /// outlier moves the max, not the median.
    #[test]
    fn the_median_of_an_odd_count_is_the_middle() {
        let summary = Summary::of(&[12.0, 10.0, 500.0, 11.0, 13.0]).unwrap();
        assert_eq!(summary.median, 12.0);
        assert_eq!((summary.min, summary.max, summary.runs), (10.0, 500.0, 5));
    }

    /// An even count (a failed run left four) takes the mean of the middle two.
    #[test]
    fn the_median_of_an_even_count_is_between_the_middle_two() {
        assert_eq!(Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
    }

    /// No figures, no summary.
    #[test]
    fn no_figures_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    /// The spread is relative to the median.
    #[test]
    fn the_spread_is_a_fraction_of_the_median() {
        let summary = Summary::of(&[90.0, 100.0, 110.0]).unwrap();
        assert!((summary.spread() - 0.2).abs() < 1e-12);
    }
}
