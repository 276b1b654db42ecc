//! Running a failure that blocks a thread forever, where it can be stopped: in a child
//! process (the tour itself, with a hidden flag), killed after a bound.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a child gets before it is stopped. The failures it runs hang at once (or
/// report within a watchdog threshold, 100 ms); a second shows the hang is real
/// without making the tour wait.
pub const CHILD_BOUND: Duration = Duration::from_secs(1);

/// How a child run ended.
pub struct ChildRun {
    /// From start to exit, or to the moment it was stopped.
    pub wall: Duration,
    /// Whether it exited by itself (false: still running at the bound, killed).
    pub exited: bool,
    /// Every line it wrote to standard error, with when it arrived.
    pub lines: Vec<(Duration, String)>,
}

/// Runs `tour --failure-child CASE`, stops it after [`CHILD_BOUND`].
pub fn run_failure_child(case: &str) -> Result<ChildRun, String> {
    let executable =
        std::env::current_exe().map_err(|e| format!("cannot find the tour executable: {e}"))?;
    let started = Instant::now();
    let mut child = Command::new(executable)
        .args(["--failure-child", case])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child process: {e}"))?;
    let lines = read_lines_as_they_come(child.stderr.take(), started);
    let mut exited = false;
    while started.elapsed() < CHILD_BOUND {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            exited = true;
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed();
    if !exited {
        child
            .kill()
            .map_err(|e| format!("cannot stop the child process: {e}"))?;
    }
    child.wait().map_err(|e| e.to_string())?;
    Ok(ChildRun {
        wall,
        exited,
        lines: lines.iter().collect(),
    })
}

/// A reader thread that timestamps each line of `stream`; the receiver ends when the
/// stream closes (when the child exits or is killed).
fn read_lines_as_they_come(
    stream: Option<std::process::ChildStderr>,
    started: Instant,
) -> mpsc::Receiver<(Duration, String)> {
    let (sender, receiver) = mpsc::channel();
    if let Some(stream) = stream {
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if sender.send((started.elapsed(), line)).is_err() {
                    break;
                }
            }
        });
    }
    receiver
}
