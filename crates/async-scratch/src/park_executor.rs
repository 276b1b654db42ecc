//! Wakers and park: step 4's second version of an executor, which waits instead of
//! spinning.
//!
//! **Step 4b** fixes what step 4a ([`busy_executor`](crate::busy_executor)) gets
//! wrong. Each future gets a waker of its own, which knows the future's place in the
//! list: waking it puts that index on a ready queue and unparks the executor's thread.
//! The loop polls only the futures on the ready queue. When the queue is empty, there
//! is nothing to do until a timer is due or a waker runs, so the thread parks until
//! the earliest deadline, or until a waker unparks it. A sleeping unit is polled
//! twice: once to start it and set its timer, once after the timer fires. The CPU
//! time of a run falls from a core's worth to about zero.
//!
//! What changed from 4a: the waker does something (a [`Wakeable`] on step 4's vtable,
//! [`waker`](crate::waker)); the loop polls what was woken, not everything; it fires
//! the due timers itself, which wakes their futures; and it parks.
//!
//! What it still lacks, which step 4c, the real [`executor`](crate::executor), adds: a
//! future cannot start another (`spawn`) nor wait for one's result (`JoinHandle`);
//! the clock is the real one only (a manual clock that jumps to the next deadline
//! belongs to the executor); and a future that returns `Pending` and leaves no waker
//! anywhere parks the loop for good, with nobody to say so (the executor finds such
//! a deadlock and reports it, step 5).
//!
//! No wake can be lost between the look at the queue and the park: a waker pushes its
//! index *then* unparks, and an unpark that comes before the park makes the park
//! return at once (the token of [`std::thread::park`]).
//!
//! ```
//! use async_scratch::coroutine::run_unit;
//! use async_scratch::park_executor;
//! use async_scratch::timeline::Timeline;
//! use async_scratch::work::{Work, WorkKind};
//! use std::time::Duration;
//!
//! let work = Work::new(WorkKind::Sleep, Duration::from_millis(2));
//! let timeline = Timeline::new();
//! let units = (0..3).map(|unit| Box::pin(run_unit(work, unit, timeline.clone())) as _);
//! let run = park_executor::run(units.collect());
//! assert_eq!(timeline.spans().len(), 3);
//! // Polled to start, and once its timer fired (once only, if the thread was kept
//! // away so long that the timer was due at the first poll).
//! assert!(run.polls <= 3 * 2);
//! ```

use crate::busy_executor::UnitTask;
use crate::locking::lock;
use crate::time::{use_timers, Clock, TimerQueue};
use crate::waker::{waker_from_arc, Wakeable};
use std::mem;
use std::panic::resume_unwind;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

/// What a run did: the counts that show it waited rather than spun.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParkRun {
    /// Polls of any future, in all.
    pub polls: u64,
    /// Times the loop went round: polled what was woken, fired the due timers, and
    /// parked if nothing was ready. About one per distinct deadline when it waits; a
    /// loop that spun instead would go round thousands of times.
    pub turns: u64,
}

/// The indices of the futures woken since the loop last looked, and the thread to
/// unpark. A `Mutex`, not a thread-local: a waker may run on any thread.
#[derive(Debug)]
struct ReadyQueue {
    woken: Mutex<Vec<usize>>,
    executor_thread: Thread,
}

/// One future's waker: it knows where its future is in the list.
#[derive(Debug)]
struct IndexWaker {
    index: usize,
    queue: Arc<ReadyQueue>,
}

impl Wakeable for IndexWaker {
    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.queue.woken).push(self.index);
        self.queue.executor_thread.unpark(); // after the push: see the module doc
    }
}

/// Runs every future to completion on this thread, polling each only when it was
/// woken and parking when none was. Returns how many polls and turns that took.
///
/// # Panics
/// If a future panics, or a waker's `wake` panics while a timer fires: the panic goes
/// on to the caller (the real executor catches it and reports it, step 5).
pub fn run(futures: Vec<UnitTask>) -> ParkRun {
    let timers = Arc::new(TimerQueue::default());
    let _timers = use_timers(Clock::Real, Arc::clone(&timers));
    let queue = Arc::new(ReadyQueue {
        woken: Mutex::new((0..futures.len()).collect()), // each is polled once to start
        executor_thread: thread::current(),
    });
    let wakers = index_wakers(futures.len(), &queue);
    let mut futures: Vec<Option<UnitTask>> = futures.into_iter().map(Some).collect();
    let mut unfinished = futures.len();
    let mut run = ParkRun::default();
    while unfinished > 0 {
        run.turns += 1;
        for index in mem::take(&mut *lock(&queue.woken)) {
            // `None`: woken again after it finished (a waker may outlive its future).
            let Some(future) = &mut futures[index] else {
                continue;
            };
            run.polls += 1;
            if future
                .as_mut()
                .poll(&mut Context::from_waker(&wakers[index]))
                .is_ready()
            {
                futures[index] = None;
                unfinished -= 1;
            }
        }
        timers.fire_due(Instant::now(), |_due| {}, |panic| resume_unwind(panic));
        if unfinished > 0 && lock(&queue.woken).is_empty() {
            park_until(timers.next_deadline());
        }
    }
    run
}

/// A waker for each of `count` futures, each queueing its own index on `queue`. Made
/// once, up front: a future that keeps its waker clones it, which costs no allocation.
fn index_wakers(count: usize, queue: &Arc<ReadyQueue>) -> Vec<Waker> {
    let waker = |index| {
        let queue = Arc::clone(queue);
        waker_from_arc(Arc::new(IndexWaker { index, queue }))
    };
    (0..count).map(waker).collect()
}

/// Parks this thread until `deadline`, or for good if there is none, or until a waker
/// unparks it. May return early (spuriously): the loop looks again either way.
fn park_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => thread::park_timeout(deadline.saturating_duration_since(Instant::now())),
        None => thread::park(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coroutine::UnitFuture;
    use crate::time::sleep;
    use crate::timeline::Timeline;
    use crate::work::{Work, WorkKind};
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Poll;
    use std::time::Duration;

    /// Runs `test` on a thread of its own and returns what it returns; fails instead of
    /// hanging if it takes over a minute (a lost wake parks the loop for good).
    fn within_a_minute<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
        let (sender, receiver) = std::sync::mpsc::channel();
        let runner = thread::spawn(move || sender.send(test()));
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(result) => {
                runner.join().expect("the test thread ended").ok();
                result
            }
            Err(_) => panic!("the loop did not finish within a minute: a wake was lost"),
        }
    }

    /// `units` futures that sleep `nap`, twice that, three times that... and then count
    /// themselves in `finished`. (Deadlines apart, so that a loop polling more than
    /// what was woken would be seen to.)
    fn sleepers(units: usize, nap: Duration, finished: &Rc<Cell<usize>>) -> Vec<UnitTask> {
        (1..=units)
            .map(|times| {
                let finished = Rc::clone(finished);
                Box::pin(async move {
                    sleep(nap * times as u32).await;
                    finished.set(finished.get() + 1);
                }) as UnitTask
            })
            .collect()
    }

    /// Every sleeping unit completes, each polled at most twice: once to start it, once
    /// when its timer fired and woke it. (Once only, if the machine kept the thread away
    /// between making a unit's `Sleep` and polling it for longer than the nap: then it
    /// was due at once. Miri's clock, which runs with the instructions it interprets,
    /// does that every time.) Between the two polls, the thread parked: the loop went
    /// round about once per deadline (a spurious wakeup may add a turn, hence the
    /// room), where a spinning loop would go round thousands of times in the 10 ms the
    /// units wait.
    #[test]
    fn each_sleeping_unit_is_polled_at_most_twice_and_the_thread_parks() {
        const UNITS: usize = 5;
        let (run, finished) = within_a_minute(|| {
            let finished = Rc::new(Cell::new(0));
            let run = run(sleepers(UNITS, Duration::from_millis(2), &finished));
            (run, finished.get())
        });
        assert_eq!(finished, UNITS);
        assert!(run.polls <= 2 * UNITS as u64, "{run:?}");
        assert!(run.turns <= 4 * UNITS as u64, "{run:?}");
    }

    /// The hand-written state machine runs here as the `async fn` does: every unit
    /// records its span, each polled at most twice (its `Start` arm goes straight on to
    /// poll the new `Sleep`, as `.await` does; see above for "at most").
    #[test]
    fn the_hand_written_unit_future_runs_as_the_async_fn_does() {
        const UNITS: usize = 4;
        let (run, spans) = within_a_minute(|| {
            let work = Work::new(WorkKind::Sleep, Duration::from_millis(1));
            let timeline = Timeline::new();
            let units = (0..UNITS)
                .map(|unit| Box::pin(UnitFuture::new(work, unit, timeline.clone())) as UnitTask);
            (run(units.collect()), timeline.spans().len())
        });
        assert_eq!(spans, UNITS);
        assert!(run.polls <= 2 * UNITS as u64, "{run:?}");
    }

    /// A waker called from another thread unparks the loop and gets its future polled:
    /// the future hands its waker to a thread, which sets a flag and wakes it.
    #[test]
    fn a_wake_from_another_thread_gets_the_future_polled() {
        let run = within_a_minute(|| run(vec![woken_by_another_thread()]));
        assert_eq!(run.polls, 2, "{run:?}");
    }

    /// A future that, at its first poll, hands its waker to a new thread, which sets a
    /// flag and wakes it; it is ready once the flag is set.
    fn woken_by_another_thread() -> UnitTask {
        let done = Arc::new(AtomicBool::new(false));
        let mut helper: Option<thread::JoinHandle<()>> = None;
        Box::pin(std::future::poll_fn(move |cx| {
            if done.load(Ordering::Acquire) {
                if let Some(helper) = helper.take() {
                    helper.join().expect("the helper thread only wakes");
                }
                return Poll::Ready(());
            }
            if helper.is_none() {
                let (done, waker) = (Arc::clone(&done), cx.waker().clone());
                helper = Some(thread::spawn(move || {
                    done.store(true, Ordering::Release);
                    waker.wake();
                }));
            }
            Poll::Pending
        }))
    }
}
