//! Per-worker data kept apart in memory, so that workers do not share cache lines.
//!
//! Step 7 introduces it. A core does not read or write memory a byte at a time but a
//! cache line at a time (64 bytes here), and a line written by one core must travel
//! to any other core that uses it. Two workers writing *different* variables that sit
//! on the same line (worker 0's queue tail and worker 1's, next to each other in a
//! slice) make that line bounce between their cores at every write, as if they shared
//! one variable: false sharing. The one-thread executor never met this; a runtime's
//! per-worker queues, LIFO slots and counters are written at every poll.
//!
//! [`Padded`] aligns a value to 128 bytes, so that no two of them share a line, nor a
//! pair of lines (x86 cores fetch lines in adjacent pairs).

use std::ops::Deref;

/// A value alone on its cache lines (see the module doc).
#[repr(align(128))]
pub(crate) struct Padded<T>(T);

impl<T> Padded<T> {
    pub(crate) fn new(value: T) -> Padded<T> {
        Padded(value)
    }
}

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Padded;

    #[test]
    fn padded_values_in_a_slice_are_two_cache_lines_apart() {
        let values: Box<[Padded<u8>]> = (0..3).map(Padded::new).collect();
        let addresses: Vec<usize> = values.iter().map(|v| &**v as *const u8 as usize).collect();
        assert!(addresses.windows(2).all(|pair| pair[1] - pair[0] == 128));
        assert_eq!(*values[2], 2);
    }
}
