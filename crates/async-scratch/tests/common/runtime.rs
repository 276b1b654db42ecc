//! Helpers for the tests of the runtime's reports.

use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::runtime::{Builder, Runtime};

/// A runtime from `builder`, on two workers, whose reports arrive on the returned
/// channel.
pub fn reporting_runtime(builder: Builder) -> (Runtime, Receiver<Diagnostic>) {
    let (reports, reported) = mpsc::channel();
    let reports = Mutex::new(reports);
    let runtime = builder
        .worker_threads(2)
        .on_diagnostic(move |diagnostic: &Diagnostic| {
            let _ = reports.lock().unwrap().send(diagnostic.clone());
        })
        .build()
        .unwrap();
    (runtime, reported)
}

/// The lost-task reports received so far.
pub fn lost_reports(reported: &Receiver<Diagnostic>) -> Vec<Diagnostic> {
    reported
        .try_iter()
        .filter(|report| matches!(report, Diagnostic::LostTask { .. }))
        .collect()
}
