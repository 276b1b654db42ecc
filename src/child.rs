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

/// How long a child that owes a report may take to give it, on a machine busy enough
/// that starting a process and a 100 ms watchdog take longer than [`CHILD_BOUND`]. Past
/// this the child is stopped anyway, and the attempt shows no report: the tour never
/// hangs.
pub const REPORT_BOUND: Duration = Duration::from_secs(30);

/// How often the parent looks at the child.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// How a child run ended.
pub struct ChildRun {
    /// From start to exit, or to the moment it was stopped.
    pub wall: Duration,
    /// Whether it exited by itself (false: still running at the bound, killed).
    pub exited: bool,
    /// Every line it wrote to standard error, with when it arrived.
    pub lines: Vec<(Duration, String)>,
}

/// Runs `tour --failure-child CASE` and stops it after [`CHILD_BOUND`]. When the child
/// owes a report, a line containing `awaited_report`, it is stopped only once that line
/// has come (or after [`REPORT_BOUND`]), however slow the machine: what is shown does
/// not depend on how fast the child got going.
pub fn run_failure_child(case: &str, awaited_report: Option<&str>) -> Result<ChildRun, String> {
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
    let incoming = read_lines_as_they_come(child.stderr.take(), started);
    let mut lines = Vec::new();
    let mut exited = false;
    loop {
        lines.extend(incoming.try_iter());
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            exited = true;
            break;
        }
        let reported = awaited_report.is_none_or(|text| {
            lines
                .iter()
                .any(|(_, line): &(Duration, String)| line.contains(text))
        });
        let waited = started.elapsed();
        if (waited >= CHILD_BOUND && reported) || waited >= REPORT_BOUND {
            break;
        }
        thread::sleep(LOOK_EVERY);
    }
    let wall = started.elapsed();
    if !exited {
        child
            .kill()
            .map_err(|e| format!("cannot stop the child process: {e}"))?;
    }
    child.wait().map_err(|e| e.to_string())?;
    lines.extend(incoming.iter()); // ends when the child's standard error closes
    Ok(ChildRun {
        wall,
        exited,
        lines,
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
