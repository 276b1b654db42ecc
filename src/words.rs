//! The tour's words for a person: how it writes a duration (`1.23 s`), a count with
//! its noun (`8 units`) and a paragraph wrapped to a terminal's width.
//!
//! The bottom of the tour's modules: the steps, the runner and every report write
//! with it, and it uses none of them, so that no two of those need each other for a
//! few words.

use std::time::Duration;

/// `1.23 s` for a second or more, `456 ms` or `0.456 ms` below.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 0.001 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{:.3} ms", seconds * 1000.0)
    }
}

/// `n` and `noun`, in the singular for 1: "1 unit", "8 units". For the tour's nouns
/// (unit, worker, core), whose plural only adds an s.
pub fn count(n: usize, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{plural}")
}

/// Where text is wrapped: fits a 100-column terminal with the indents the tour uses.
const TEXT_WIDTH: usize = 88;

/// Wraps `text` at [`TEXT_WIDTH`], continuing lines with `indent`.
pub fn wrap(text: &str, indent: &str) -> String {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("starts with one line");
        if !line.is_empty() && line.len() + 1 + word.len() > TEXT_WIDTH - indent.len() {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.join(&format!("\n{indent}"))
}

#[cfg(test)]
mod tests {
    use super::count;

    /// One takes the singular; zero and more the plural ("0 units", as English has it).
    #[test]
    fn a_count_of_one_is_singular() {
        assert_eq!(count(1, "core"), "1 core");
        assert_eq!(count(0, "unit"), "0 units");
        assert_eq!(count(2, "worker"), "2 workers");
    }
}
