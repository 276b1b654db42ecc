//! The comparison's report: each runtime's median per workload, ours divided by the
//! faster peer, as a Markdown table or as JSON lines.
//!
//! A variant of ours (ours with its diagnostics off, another build) gets a column
//! after the peers, and one more for its median divided by ours; it never enters
//! "ours ÷ faster peer", which stays what a user gets: ours with the defaults.

use crate::runtime::RuntimeName;
use crate::stats::Summary;
use crate::workload::Workload;
use serde_json::json;
use std::env;
use std::fmt::Write;
use std::path::PathBuf;

/// A cell whose runs spread over more than this fraction of their median is named
/// under the table: on the README's VM, runs usually stay within ±10% of the median,
/// a spread of 20%; wider deserves a look.
const SPREAD_NOTE: f64 = 0.2;

/// What a column is to the ratios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Ours, from this build: the numerator of "ours ÷ faster peer", and the
    /// denominator of every variant's ratio.
    Ours,
    /// A peer runtime: ours is compared with the faster one.
    Peer,
    /// A variant of ours: compared with ours, in a column headed `ratio_label`
    /// right after its own.
    Variant {
        /// The heading of the column of its median ÷ ours.
        ratio_label: &'static str,
    },
}

/// One column: a runtime, as run by one build of the `workload` binary.
#[derive(Clone, Debug)]
pub struct Contender {
    /// The column's heading.
    pub label: String,
    /// The runtime the `workload` binary is asked to run.
    pub runtime: RuntimeName,
    /// The `workload` binary.
    pub program: PathBuf,
    /// What the column is to the ratios.
    pub role: Role,
}

impl Contender {
    /// Ours with its diagnostics off, run by `program`: what the diagnostics' books
    /// cost is this column's ratio to ours, whose diagnostics are on.
    pub fn diagnostics_off(program: PathBuf) -> Contender {
        Contender {
            label: "diagnostics off".to_string(),
            runtime: RuntimeName::AsyncScratchNoDiagnostics,
            program,
            role: Role::Variant {
                ratio_label: "off ÷ on",
            },
        }
    }

    /// Ours from another build of the `workload` binary at `program`, run as
    /// async-scratch (`--ours-also`): a before-and-after on the same machine.
    pub fn other_build(program: PathBuf) -> Contender {
        Contender {
            label: "other build".to_string(),
            runtime: RuntimeName::AsyncScratch,
            program,
            role: Role::Variant {
                ratio_label: "other ÷ ours",
            },
        }
    }
}

/// What one column's runs of one workload came to.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    /// `None` if no run gave a figure.
    pub summary: Option<Summary>,
    /// Runs that gave no figure.
    pub failed: u64,
}

impl Cell {
    /// The cell of `rounds` runs, of which those that gave a figure gave `figures`.
    pub fn of(figures: &[f64], rounds: u64) -> Cell {
        Cell {
            summary: Summary::of(figures),
            failed: rounds.saturating_sub(figures.len() as u64),
        }
    }
}

/// One workload's cells, in the order of the contenders.
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload measured.
    pub workload: Workload,
    /// One cell per contender, in the contenders' order.
    pub cells: Vec<Cell>,
}

/// A whole comparison: every row, the columns, and how many rounds were run.
pub struct Report<'a> {
    /// One row per workload.
    pub rows: &'a [Row],
    /// The columns.
    pub contenders: &'a [Contender],
    /// Runs per cell that were attempted.
    pub rounds: u64,
}

impl Report<'_> {
    /// The table in Markdown (the README's tables are pasted from it), then the
    /// machine, what the figures are, and any cell whose runs spread widely.
    pub fn table(&self) -> String {
        let mut header = vec!["workload".to_string()];
        header.extend(self.labels(Role::Ours).chain(self.labels(Role::Peer)));
        header.push("ours ÷ faster peer".to_string());
        for (variant, ratio_label) in self.variants() {
            header.push(variant.label.clone());
            header.push(ratio_label.to_string());
        }
        let lines: Vec<Vec<String>> = self.rows.iter().map(|row| self.line(row)).collect();
        let mut text = markdown(&header, &lines);
        text.push('\n');
        text.push_str(&self.notes());
        text
    }

    /// One JSON line per cell: the median under the unit's key (`ms`,
    /// `bytes_per_task` or `bytes_per_connection`; null if every run failed), min,
    /// max, how many runs gave a figure and how many failed.
    pub fn json_lines(&self) -> Vec<String> {
        let cores = cores();
        let mut lines = Vec::new();
        for row in self.rows {
            for (contender, cell) in self.contenders.iter().zip(&row.cells) {
                let summary = cell.summary;
                let mut line = json!({
                    "workload": row.workload.as_str(),
                    "column": contender.label,
                    "runtime": contender.runtime.as_str(),
                    "program": contender.program.display().to_string(),
                    "min": summary.map(|s| s.min),
                    "max": summary.map(|s| s.max),
                    "runs": summary.map_or(0, |s| s.runs),
                    "failed": cell.failed,
                    "cores": cores,
                });
                line[row.workload.unit().json_key()] = json!(summary.map(|s| s.median));
                lines.push(line.to_string());
            }
        }
        lines
    }

    /// The labels of the columns with role `role`.
    fn labels(&self, role: Role) -> impl Iterator<Item = String> + '_ {
        self.contenders
            .iter()
            .filter(move |c| c.role == role)
            .map(|c| c.label.clone())
    }

    /// The variants of ours, in the contenders' order, each with its ratio's label.
    fn variants(&self) -> impl Iterator<Item = (&Contender, &'static str)> {
        self.contenders.iter().filter_map(|c| match c.role {
            Role::Variant { ratio_label } => Some((c, ratio_label)),
            _ => None,
        })
    }

    /// One row of the table.
    fn line(&self, row: &Row) -> Vec<String> {
        let cells = |role: Role| {
            self.contenders
                .iter()
                .zip(&row.cells)
                .filter(move |(contender, _)| contender.role == role)
                .map(|(_, cell)| cell_text(row.workload, cell, self.rounds))
        };
        let mut line = vec![row.workload.description().to_string()];
        line.extend(cells(Role::Ours).chain(cells(Role::Peer)));
        line.push(match self.ratio_to_faster_peer(row) {
            Some((ratio, peer)) => format!("{ratio:.2} ({peer})"),
            None => ratio_text(None),
        });
        for (contender, cell) in self.contenders.iter().zip(&row.cells) {
            if let Role::Variant { .. } = contender.role {
                line.push(cell_text(row.workload, cell, self.rounds));
                line.push(ratio_text(self.ratio_to_ours(row, cell)));
            }
        }
        line
    }

    /// The median of ours, the (first) column with role [`Role::Ours`].
    fn ours_median(&self, row: &Row) -> Option<f64> {
        let index = self.contenders.iter().position(|c| c.role == Role::Ours)?;
        Some(row.cells[index].summary?.median)
    }

    /// A variant's median ÷ ours.
    fn ratio_to_ours(&self, row: &Row, variant: &Cell) -> Option<f64> {
        Some(variant.summary?.median / self.ours_median(row)?)
    }

    /// Ours ÷ the faster (or smaller) peer, with that peer's label.
    fn ratio_to_faster_peer(&self, row: &Row) -> Option<(f64, &str)> {
        let ours = self.ours_median(row)?;
        let (best, label) = self
            .contenders
            .iter()
            .zip(&row.cells)
            .filter(|(contender, _)| contender.role == Role::Peer)
            .filter_map(|(contender, cell)| Some((cell.summary?.median, contender.label.as_str())))
            .min_by(|a, b| a.0.total_cmp(&b.0))?;
        Some((ours / best, label))
    }

    /// The lines under the table.
    fn notes(&self) -> String {
        let mut notes = String::new();
        let (os, arch) = (env::consts::OS, env::consts::ARCH);
        let _ = writeln!(
            notes,
            "machine: {} cores (available_parallelism), {os} {arch}",
            cores()
        );
        let _ = writeln!(
            notes,
            "each figure: the median of {}, each in a fresh process; every round runs each \
             column once, a different one first each round",
            counted(self.rounds, "run")
        );
        let _ = writeln!(
            notes,
            "ours ÷ faster peer: below 1, ours is faster (or smaller)"
        );
        for (variant, ratio_label) in self.variants() {
            let _ = writeln!(
                notes,
                "{}: {} (run as {}); {ratio_label}: its median ÷ ours",
                variant.label,
                variant.program.display(),
                variant.runtime
            );
        }
        let wide = self.wide_spreads();
        if !wide.is_empty() {
            let percent = SPREAD_NOTE * 100.0;
            let _ = writeln!(
                notes,
                "runs spread over more than {percent:.0}% of their median: {}",
                wide.join("; ")
            );
        }
        notes
    }

    /// Every cell whose runs spread over more than [`SPREAD_NOTE`] of their median,
    /// with its smallest and largest figure.
    fn wide_spreads(&self) -> Vec<String> {
        let mut wide = Vec::new();
        for row in self.rows {
            let unit = row.workload.unit();
            for (contender, cell) in self.contenders.iter().zip(&row.cells) {
                let Some(summary) = cell.summary.filter(|s| s.spread() > SPREAD_NOTE) else {
                    continue;
                };
                let (min, max) = (unit.format(summary.min), unit.format(summary.max));
                wide.push(format!(
                    "{} on {}: {min} to {max}",
                    row.workload, contender.label
                ));
            }
        }
        wide
    }
}

/// The machine's cores, as the standard library counts them (0 if it cannot).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// A cell for a person: the median, with how many runs gave it if some failed.
fn cell_text(workload: Workload, cell: &Cell, rounds: u64) -> String {
    match cell.summary {
        None => "failed".to_string(),
        Some(summary) if cell.failed > 0 => format!(
            "{} ({} of {rounds})",
            workload.unit().format(summary.median),
            summary.runs
        ),
        Some(summary) => workload.unit().format(summary.median),
    }
}

/// A ratio for a person: two decimals, or a dash when a median is missing.
fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or("—".to_string(), |ratio| format!("{ratio:.2}"))
}

/// `1 run`, `5 runs`.
pub fn counted(count: u64, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// A Markdown table, its columns padded to line up in a terminal too.
fn markdown(header: &[String], lines: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            std::iter::once(header)
                .chain(lines.iter().map(Vec::as_slice))
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let rule: Vec<String> = widths.iter().map(|&width| "-".repeat(width)).collect();
    let mut text = line(header);
    text.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for cells in lines {
        text.push_str(&line(cells));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contender(label: &str, runtime: RuntimeName, role: Role) -> Contender {
        Contender {
            label: label.to_string(),
            runtime,
            program: PathBuf::from("workload"),
            role,
        }
    }

    /// Ours, tokio, smol, ours with diagnostics off and another build of ours, as
    /// `compare --ours-also` has them.
    fn five_columns() -> Vec<Contender> {
        vec![
            contender("async-scratch", RuntimeName::AsyncScratch, Role::Ours),
            contender("tokio", RuntimeName::Tokio, Role::Peer),
            contender("smol", RuntimeName::Smol, Role::Peer),
            Contender::diagnostics_off(PathBuf::from("workload")),
            Contender::other_build(PathBuf::from("old/workload")),
        ]
    }

    /// The table line of the workload named `workload` in `table`.
    fn line_of(table: &str, workload: Workload) -> &str {
        let description = workload.description();
        table
            .lines()
            .find(|line| line.contains(description))
            .unwrap_or_else(|| panic!("no line for {description} in\n{table}"))
    }

    /// One row of `workload`, one run per cell, the cells' figures in `figures`.
    fn one_run_each(workload: Workload, figures: &[f64]) -> Row {
        Row {
            workload,
            cells: figures.iter().map(|&f| Cell::of(&[f], 1)).collect(),
        }
    }

    /// Ours is divided by the faster of the peers, whichever column it is in, and
    /// each variant by ours, in a column after its own.
    #[test]
    fn ours_is_divided_by_the_faster_peer() {
        let contenders = five_columns();
        let rows = [one_run_each(
            Workload::Chain,
            &[30.0, 20.0, 10.0, 24.0, 33.0],
        )];
        let report = Report {
            rows: &rows,
            contenders: &contenders,
            rounds: 1,
        };
        let line = line_of(&report.table(), Workload::Chain).replace(' ', "");
        assert!(line.contains("|3.00(smol)|"), "{line}");
        assert!(line.ends_with("|24.0ms|0.80|33.0ms|1.10|"), "{line}");
    }

    /// Ours with diagnostics off comes after the peers, with its ratio to ours
    /// beside it; faster than every peer here, it still does not stand in for ours
    /// nor for the faster peer in "ours ÷ faster peer".
    #[test]
    fn diagnostics_off_is_compared_with_ours_not_with_the_peers() {
        let contenders = five_columns()[..4].to_vec();
        let rows = [one_run_each(Workload::Chain, &[30.0, 20.0, 10.0, 6.0])];
        let report = Report {
            rows: &rows,
            contenders: &contenders,
            rounds: 1,
        };
        let table = report.table();
        let header = table.lines().next().unwrap().replace(' ', "");
        assert_eq!(
            header,
            "|workload|async-scratch|tokio|smol|ours÷fasterpeer|diagnosticsoff|off÷on|"
        );
        let line = line_of(&table, Workload::Chain).replace(' ', "");
        assert!(line.ends_with("|3.00(smol)|6.00ms|0.20|"), "{line}");
        assert!(
            table.contains("diagnostics off: workload (run as async-scratch-no-diagnostics)"),
            "{table}"
        );
    }

    /// A column none of whose runs gave a figure shows `failed`, and a ratio that
    /// needs it a dash; one with some failed runs shows how many gave its median.
    #[test]
    fn failed_runs_are_shown_not_hidden() {
        let contenders = five_columns();
        let rows = [Row {
            workload: Workload::Spawn,
            cells: vec![
                Cell::of(&[], 3),
                Cell::of(&[200.0, 220.0], 3),
                Cell::of(&[150.0, 150.0, 150.0], 3),
                Cell::of(&[120.0, 120.0, 120.0], 3),
                Cell::of(&[180.0, 180.0, 180.0], 3),
            ],
        }];
        let report = Report {
            rows: &rows,
            contenders: &contenders,
            rounds: 3,
        };
        let line = line_of(&report.table(), Workload::Spawn).replace(' ', "");
        assert!(
            line.contains("|failed|210ms(2of3)|150ms|—|120ms|—|180ms|—|"),
            "{line}"
        );
    }

    /// Only a cell whose runs spread over the threshold is named under the table.
    #[test]
    fn only_wide_spreads_are_noted() {
        let contenders = five_columns()[..3].to_vec();
        let rows = [Row {
            workload: Workload::Yield,
            cells: vec![
                Cell::of(&[10.0, 10.5, 11.0], 3),
                Cell::of(&[8.0, 10.0, 14.0], 3),
                Cell::of(&[20.0, 20.0, 20.0], 3),
            ],
        }];
        let report = Report {
            rows: &rows,
            contenders: &contenders,
            rounds: 3,
        };
        let table = report.table();
        let note = table
            .lines()
            .find(|l| l.starts_with("runs spread"))
            .unwrap();
        assert_eq!(
            note,
            "runs spread over more than 20% of their median: yield on tokio: 8.00 ms to 14.0 ms"
        );
    }

    /// A JSON line per cell, the median under the unit's key, null when it failed;
    /// each says which runtime its column ran.
    #[test]
    fn json_lines_carry_the_median_under_the_units_key() {
        let contenders = [five_columns().remove(0), five_columns().remove(3)];
        let rows = [Row {
            workload: Workload::SleepBytes,
            cells: vec![Cell::of(&[384.0, 386.0], 2), Cell::of(&[], 2)],
        }];
        let report = Report {
            rows: &rows,
            contenders: &contenders,
            rounds: 2,
        };
        let lines: Vec<serde_json::Value> = report
            .json_lines()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines[0]["bytes_per_task"], 385.0);
        assert_eq!(lines[0]["column"], "async-scratch");
        assert!(lines[1]["bytes_per_task"].is_null());
        assert_eq!(lines[1]["failed"], 2);
        assert_eq!(lines[1]["column"], "diagnostics off");
        assert_eq!(lines[1]["runtime"], "async-scratch-no-diagnostics");
    }
}
