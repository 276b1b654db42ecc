//! `compare`: every workload on every runtime, each run in a fresh process, and the
//! medians side by side as ratios.
//!
//! A loop inside one process (criterion's) reuses the heap and the pages that its
//! earlier iterations grew and faulted in, costs a real program pays on every start.
//! So each run here is a child process, the `workload` binary next to this one, that
//! runs one workload once and prints its figure. For each workload, each round runs
//! every runtime once, in turn, starting with a different one each round, so that
//! a machine that slows down for a while slows all of them, and none always goes
//! first. The table shows the median of the rounds.
//!
//! ```text
//! cargo build --release -p async-scratch-bench
//! cargo run --release -p async-scratch-bench --bin compare
//! cargo run --release -p async-scratch-bench --bin compare -- --workloads spawn,chain --rounds 3
//! cargo run --release -p async-scratch-bench --bin compare -- --ours-also /tmp/old/workload
//! ```
//!
//! Ours is run twice each round: as a user gets it, diagnostics on (the column
//! `async-scratch`, the one "ours ÷ faster peer" divides), and with
//! `ExecutorBuilder::diagnostics(false)` (the column `diagnostics off`, after the
//! peers, with "off ÷ on", its median ÷ ours): what the diagnostics' books cost,
//! measured in the same rounds as everything else.
//!
//! `--ours-also PATH` adds another build of the `workload` binary (built from an older
//! commit, say) as one more column, run as async-scratch in the same rounds as the
//! others, with "other ÷ ours", so two versions of ours meet the same machine at the
//! same moments.
//!
//! A child that fails or prints garbage is reported on standard error, with the
//! workload, the column and the round, and the run goes on; a cell none of whose runs
//! gave a figure shows `failed`, and the exit code is then 1.

use async_scratch_bench::child;
use async_scratch_bench::report::{counted, Cell, Contender, Report, Role, Row};
use async_scratch_bench::runtime::RuntimeName;
use async_scratch_bench::workload::Workload;
use clap::Parser;
use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The most rounds: a hundred rounds of everything take well over an hour on two
/// cores, so more is a typo.
const MAX_ROUNDS: u64 = 100;

/// Every workload on every runtime, each run in a fresh process; medians as ratios.
#[derive(Parser, Debug)]
#[command(name = "compare", version)]
struct Cli {
    /// Runs of each workload on each runtime; the table shows their median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=MAX_ROUNDS))]
    rounds: u64,

    /// Only these workloads, comma-separated (default: all of spawn, queued-bytes,
    /// ping-pong, chain, yield, sleep, sleep-bytes, echo, idle-connections).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    workloads: Vec<Workload>,

    /// Another build of the `workload` binary, run as async-scratch beside the others:
    /// a column of its own, and its ratio to ours.
    #[arg(long, value_name = "PATH")]
    ours_also: Option<PathBuf>,

    /// The multi-threaded runtimes instead, two workers each: ours, tokio's
    /// multi-thread runtime and smol's `Executor` on two threads.
    #[arg(long)]
    multi_thread: bool,

    /// Print each cell's median (with min, max and run counts) as a JSON line instead
    /// of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // a bad option exits here, with code 2
    let contenders = match contenders(&cli) {
        Ok(contenders) => contenders,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let workloads = if cli.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        cli.workloads.clone()
    };
    let rows: Vec<Row> = workloads
        .into_iter()
        .map(|workload| measure(workload, &contenders, cli.rounds))
        .collect();
    let report = Report {
        rows: &rows,
        contenders: &contenders,
        rounds: cli.rounds,
    };
    if cli.json {
        report
            .json_lines()
            .iter()
            .for_each(|line| println!("{line}"));
    } else {
        print!("{}", report.table());
    }
    let any_failed = rows.iter().flat_map(|row| &row.cells).any(|c| c.failed > 0);
    if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The columns: ours, tokio, smol and ours with diagnostics off, run by the
/// `workload` binary next to this one, and with `--ours-also`, ours from another
/// build.
fn contenders(cli: &Cli) -> Result<Vec<Contender>, String> {
    let program = workload_program()?;
    let column = |runtime: RuntimeName, role| Contender {
        label: runtime.as_str().to_string(),
        runtime,
        program: program.clone(),
        role,
    };
    if cli.multi_thread {
        if cli.ours_also.is_some() {
            return Err("--ours-also compares the single-threaded executor only".into());
        }
        return Ok(vec![
            column(RuntimeName::AsyncScratchMulti, Role::Ours),
            column(RuntimeName::TokioMulti, Role::Peer),
            column(RuntimeName::SmolMulti, Role::Peer),
        ]);
    }
    let mut contenders = vec![
        column(RuntimeName::AsyncScratch, Role::Ours),
        column(RuntimeName::Tokio, Role::Peer),
        column(RuntimeName::Smol, Role::Peer),
        Contender::diagnostics_off(program.clone()),
    ];
    if let Some(other) = &cli.ours_also {
        if !other.is_file() {
            return Err(format!("--ours-also: no such file: {}", other.display()));
        }
        contenders.push(Contender::other_build(other.clone()));
    }
    Ok(contenders)
}

/// The `workload` binary beside this one, built first when this one runs under
/// `cargo run`.
fn workload_program() -> Result<PathBuf, String> {
    let me = env::current_exe().map_err(|error| format!("where am I? {error}"))?;
    let program = me.with_file_name(format!("workload{}", env::consts::EXE_SUFFIX));
    build_under_cargo(&me)?;
    if !program.is_file() {
        return Err(format!(
            "no {} (build it with `cargo build --release -p async-scratch-bench`)",
            program.display()
        ));
    }
    Ok(program)
}

/// Under `cargo run`, builds `workload` with the same cargo, profile and target
/// directory as this binary (a no-op when it is up to date). `cargo run --bin compare`
/// builds only `compare`: without this, a changed library would be measured through
/// a `workload` built before the change, and nothing would say so.
fn build_under_cargo(me: &Path) -> Result<(), String> {
    let (Some(cargo), Some(package)) = (env::var_os("CARGO"), env::var_os("CARGO_MANIFEST_DIR"))
    else {
        return Ok(()); // not run by cargo: whoever built this built `workload` too
    };
    let profile_dir = me.parent().ok_or("this binary is in no directory")?;
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev", // cargo's dev profile builds into `debug`
        Some(name) => name,
        None => return Err(format!("no profile in {}", profile_dir.display())),
    };
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--bin",
            "workload",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--manifest-path")
        .arg(Path::new(&package).join("Cargo.toml"))
        .status()
        .map_err(|error| format!("could not run cargo to build `workload`: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building `workload` failed ({status})"))
    }
}

/// Runs `workload` for every contender, `rounds` times, interleaved: each round runs
/// every contender once, starting one further along than the round before.
fn measure(workload: Workload, contenders: &[Contender], rounds: u64) -> Row {
    eprintln!(
        "compare: {workload}, {} of {} runs",
        counted(rounds, "round"),
        contenders.len()
    );
    let mut figures = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for index in turn_order(contenders.len(), round) {
            let contender = &contenders[index];
            match child::run(&contender.program, contender.runtime, workload) {
                Ok(figure) => figures[index].push(figure),
                Err(error) => eprintln!(
                    "compare: {workload} on {}, round {}: {error}",
                    contender.label,
                    round + 1
                ),
            }
        }
    }
    let cells = figures.iter().map(|f| Cell::of(f, rounds)).collect();
    Row { workload, cells }
}

/// The order of the `count` contenders in round `round`: rotated by one each round,
/// so that each goes first as often as the others.
fn turn_order(count: usize, round: u64) -> impl Iterator<Item = usize> {
    let shift = (round % count as u64) as usize;
    (0..count).map(move |index| (index + shift) % count)
}
