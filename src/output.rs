//! Standard output that may be closed: `cargo run --release | head` closes it after ten
//! lines, and `println!` would then panic with a backtrace. Every line the tour prints
//! goes through [`line`](fn@line) instead, which ends the program quietly when nobody reads on.

use std::fmt;
use std::io::{self, ErrorKind, Write};

/// Writes one line to standard output; if the reader has gone (a broken pipe), exits
/// at once with success, since whoever closed the pipe has what they wanted. Any other
/// write error is reported on standard error and ends the program with code 1.
pub fn line(text: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        if error.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// `println!` for the tour, through [`line`](fn@line).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;
