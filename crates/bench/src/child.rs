//! One measured run in a fresh process: starts a `workload` binary as a child, waits
//! for it (up to a bound), and reads its figure from the JSON line it prints.
//!
//! Whatever the child does, a crash, a panic, a hang, garbage on its standard
//! output, the caller gets an error that says which, never a panic of its own.

use crate::result_line;
use crate::runtime::RuntimeName;
use crate::workload::Workload;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a run may take before it is taken for a hang and killed. The slowest
/// workload, the 1-second sleeps, takes a little over a second on an idle machine,
/// and ten times that on a busy one; a minute is a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How often a running child is checked on. The figure is timed inside the child,
/// so this only adds, at most, this much idle time between two runs.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Runs `program runtime workload` and returns the figure it printed.
pub fn run(program: &Path, runtime: RuntimeName, workload: Workload) -> Result<f64, String> {
    let mut child = Command::new(program)
        .args([runtime.as_str(), workload.as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("could not start {}: {error}", program.display()))?;
    // Read both pipes while the child runs: a child that fills a pipe nobody reads
    // would block for ever.
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = wait_or_kill(&mut child);
    let (stdout, stderr) = (joined(stdout), joined(stderr));
    match status? {
        status if status.success() => result_line::parse(&stdout, runtime.as_str(), workload),
        status => Err(match last_line(&stderr) {
            Some(last) => format!("{status}: {last}"),
            None => status.to_string(),
        }),
    }
}

/// The last line of `text` that is not blank: a failing child's last words, most
/// often the reason it failed.
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

/// Waits for `child` to exit; past [`TIMEOUT`], kills it and says so.
fn wait_or_kill(child: &mut Child) -> Result<ExitStatus, String> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() < TIMEOUT => thread::sleep(POLL_INTERVAL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait(); // reaped, so that it leaves no zombie
                return Err(format!("no result after {} s: killed", TIMEOUT.as_secs()));
            }
            Err(error) => return Err(format!("could not wait for it: {error}")),
        }
    }
}

/// A thread that reads `pipe` to its end, as text (invalid UTF-8 replaced).
fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// What a reader thread read; nothing if it panicked (it has no reason to).
fn joined(reader: JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}
