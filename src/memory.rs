//! The process's resident memory, as Linux reports it in `/proc/self/status`: what
//! the tour quotes for `--scale`'s points, the JSON lines, and step 6's memory per
//! connection. Every reader returns `None` where there is no `/proc`.

/// The process's peak resident memory so far, in KiB (`VmHWM`). For one step per
/// process, as `--scale` runs them, it is that step's peak.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// The process's resident memory now, in KiB (`VmRSS`).
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// The value of one `kB` line of `/proc/self/status`.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix(field))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}
