//! Helpers shared by the scenario tests.
#![allow(dead_code)] // each test file uses its own subset

pub mod futures;
pub mod net;
pub mod runtime;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, Once};
use std::time::Duration;

/// Every panic a test provokes on purpose carries this word, so the hook can hide it.
pub const DELIBERATE: &str = "deliberate";

/// Keeps the output readable: panics whose message contains [`DELIBERATE`], or whose
/// payload is a [`PanicsWhenDropped`], are not printed; every other panic still is, by
/// the standard hook.
pub fn quiet_deliberate_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let standard = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let deliberate_payload = info.payload().is::<PanicsWhenDropped>();
            if !text.contains(DELIBERATE) && !deliberate_payload {
                standard(info);
            }
        }));
    });
}

/// How long a gate waits before giving up. It only matters when a test is already
/// failing: it turns "hangs forever" into "fails with a message". It is never a
/// measurement.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(20);

/// Receives from `receiver`, or fails the test (saying `what` never came) after
/// [`GIVE_UP_AFTER`], instead of hanging when the sender is stuck or gone.
pub fn receive_or_give_up<T>(receiver: &mpsc::Receiver<T>, what: &str) -> T {
    receiver
        .recv_timeout(GIVE_UP_AFTER)
        .unwrap_or_else(|error| panic!("{what} never came ({error})"))
}

/// Runs `body` on a thread of its own and gives its result, failing (not hanging)
/// after [`GIVE_UP_AFTER`].
pub fn bounded<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || done.send(body()));
    receive_or_give_up(&outcome, "the end of the run")
}

/// A panic payload whose own `Drop` panics, with a [`DELIBERATE`] message: thrown with
/// `std::panic::panic_any`, it checks that whoever catches a panic also catches the one
/// its payload throws when dropped. Each drop bumps the counter it was made with.
pub struct PanicsWhenDropped {
    drops: Arc<AtomicUsize>,
}

impl PanicsWhenDropped {
    pub fn new(drops: &Arc<AtomicUsize>) -> PanicsWhenDropped {
        PanicsWhenDropped {
            drops: Arc::clone(drops),
        }
    }
}

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        panic!("{DELIBERATE} panic while dropping a panic payload");
    }
}

/// A reusable barrier for `parties` threads that panics instead of waiting forever.
///
/// Passing it proves that `parties` threads were inside at the same moment.
pub struct Gate {
    parties: usize,
    state: Mutex<(usize, u64)>, // (arrived in this round, round number)
    all_here: Condvar,
}

impl Gate {
    pub fn new(parties: usize) -> Gate {
        Gate {
            parties,
            state: Mutex::new((0, 0)),
            all_here: Condvar::new(),
        }
    }

    pub fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        let round = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            *state = (0, round + 1);
            self.all_here.notify_all();
            return;
        }
        let (state, timeout) = self
            .all_here
            .wait_timeout_while(state, GIVE_UP_AFTER, |state| state.1 == round)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "only {} of {} parties ever arrived at the gate",
            state.0,
            self.parties
        );
    }
}

/// A reporter for `Executor::builder().on_diagnostic(..)` that keeps every diagnostic,
/// and the list it fills.
pub fn collect_diagnostics() -> (
    impl Fn(&async_scratch::diagnostics::Diagnostic) + Send + Sync + 'static,
    std::sync::Arc<Mutex<Vec<async_scratch::diagnostics::Diagnostic>>>,
) {
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let reporter = move |diagnostic: &async_scratch::diagnostics::Diagnostic| {
        sink.lock().unwrap().push(diagnostic.clone());
    };
    (reporter, seen)
}

/// Runs `test` on a thread of its own, and fails (with its panic, or with "never
/// came" after [`GIVE_UP_AFTER`]) instead of hanging.
pub fn within_give_up<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(test)));
    });
    match receive_or_give_up(&receiver, "the end of the test") {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Spawns, on the current executor, two tasks that each take one lock, then wait for
/// the other's: a cycle, named "one-way" and "other-way", over locks "first" and
/// "second".
pub fn spawn_lock_cycle() {
    let first = Arc::new(async_scratch::mutex::Mutex::named("first", ()));
    let second = Arc::new(async_scratch::mutex::Mutex::named("second", ()));
    let locks = [(first.clone(), second.clone()), (second, first)];
    for (name, (mine, theirs)) in ["one-way", "other-way"].into_iter().zip(locks) {
        // Detached: they stay stuck, and are dropped with the executor.
        drop(async_scratch::executor::spawn_named(name, async move {
            let _mine = mine.lock().await;
            async_scratch::executor::yield_now().await;
            let _theirs = theirs.lock().await;
        }));
    }
}
