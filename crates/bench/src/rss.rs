//! The process's resident memory, read from `/proc/self/status` (Linux only).
//!
//! The kernel keeps two figures there: `VmRSS`, resident now, and `VmHWM`, the
//! high-water mark, the most that was ever resident. Memory per task is the peak's
//! growth over a baseline taken just before the tasks are spawned, divided by their
//! number: the peak, not the memory at the end, because the end comes after the
//! tasks are gone.

use std::fs;

/// Where the kernel reports this process's memory.
const STATUS: &str = "/proc/self/status";

/// Writing this to `/proc/self/clear_refs` resets `VmHWM` to the current `VmRSS`
/// (Linux 4.0 and later; see `proc(5)`).
const RESET_PEAK: &str = "5";

/// Resident memory when a measurement started.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    resident_kib: u64,
}

impl Baseline {
    /// Takes the baseline: resets the high-water mark where the kernel allows it, so
    /// that a peak reached before (building the runtime, say) is not taken for the
    /// workload's, and reads the memory resident now.
    pub fn now() -> Result<Baseline, String> {
        // Without the reset (an old kernel), a peak from before can only hide growth,
        // never invent it, and nothing before the baseline allocates much.
        let _ = fs::write("/proc/self/clear_refs", RESET_PEAK);
        Ok(Baseline {
            resident_kib: status_kib("VmRSS")?,
        })
    }

    /// How many bytes the peak resident memory has grown since the baseline.
    pub fn peak_growth_bytes(&self) -> Result<u64, String> {
        let peak_kib = status_kib("VmHWM")?;
        Ok(peak_kib.saturating_sub(self.resident_kib) * 1024)
    }
}

/// A field of `/proc/self/status` in KiB, such as `VmRSS` or `VmHWM`.
fn status_kib(field: &str) -> Result<u64, String> {
    let status = fs::read_to_string(STATUS)
        .map_err(|error| format!("cannot read {STATUS} (Linux only): {error}"))?;
    parse_kib(&status, field).ok_or_else(|| format!("no {field} in {STATUS}"))
}

/// `field`'s value in the text of a status file, whose lines read `VmHWM:   1234 kB`.
fn parse_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix(" kB")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field is found by its exact name: `VmHWM` is not mistaken for a field that
    /// merely starts the same way, and its unit is stripped.
    #[test]
    fn reads_a_field_by_its_exact_name() {
        let status = "VmHWMx:\t 1 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_kib(status, "VmHWM"), Some(2048));
        assert_eq!(parse_kib(status, "VmRSS"), Some(1024));
        assert_eq!(parse_kib(status, "VmSwap"), None);
    }

    /// This process's own status has both fields, and the peak is never below the
    /// memory resident now.
    #[test]
    fn the_peak_is_at_least_what_is_resident() {
        let resident = status_kib("VmRSS").unwrap();
        let peak = status_kib("VmHWM").unwrap();
        assert!(peak >= resident, "VmHWM {peak} < VmRSS {resident}");
    }
}
