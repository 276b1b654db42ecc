//! The async mutex: exclusion under contention, FIFO waiters, cancelled waiters that
//! keep nothing from the next, and lock cycles reported as deadlocks.

mod common;

use async_scratch::diagnostics::Diagnostic;
use async_scratch::executor::{block_on, spawn, spawn_named, yield_now, Executor, JoinHandle};
use async_scratch::join_all::{join, join_all};
use async_scratch::mutex::Mutex;
use async_scratch::time::{sleep, Clock, ManualClock};
use common::collect_diagnostics;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Contending tasks (50; 5 under Miri, which interprets every step) each hold the
/// lock across two `.await`s while incrementing, 10 times: never two inside at once,
/// and no increment lost.
#[test]
fn mutual_exclusion_under_contention() {
    const TASKS: u32 = if cfg!(miri) { 5 } else { 50 };
    let counter = Arc::new(Mutex::new(0u32));
    let inside = Arc::new(AtomicUsize::new(0));
    let most_inside = Arc::new(AtomicUsize::new(0));
    block_on(async {
        let tasks = (0..TASKS).map(|_| {
            let (counter, inside, most_inside) =
                (counter.clone(), inside.clone(), most_inside.clone());
            spawn(async move {
                for _ in 0..10 {
                    let mut value = counter.lock().await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most_inside.fetch_max(now, Ordering::SeqCst);
                    let read = *value;
                    yield_now().await;
                    yield_now().await;
                    *value = read + 1;
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        });
        join_all(tasks.collect::<Vec<_>>()).await;
    });
    assert_eq!(most_inside.load(Ordering::SeqCst), 1);
    assert_eq!(
        Arc::try_unwrap(counter).ok().unwrap().into_inner(),
        TASKS * 10
    );
}

/// Waiters get the lock in the order they asked for it.
#[test]
fn waiters_are_served_in_fifo_order() {
    let mutex = Arc::new(Mutex::new(()));
    let order = Rc::new(RefCell::new(Vec::new()));
    block_on(async {
        let held = mutex.lock().await;
        let mut tasks = Vec::new();
        for n in 0..5 {
            let (mutex, order) = (mutex.clone(), order.clone());
            tasks.push(spawn(async move {
                let _guard = mutex.lock().await;
                order.borrow_mut().push(n);
            }));
            yield_now().await; // task n queues before task n + 1 is spawned
        }
        drop(held);
        join_all(tasks).await;
    });
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
}

/// A waiter cancelled while queued leaves the queue; one cancelled after the lock was
/// handed to it, but before it took it, passes the lock on. Either way the next waiter
/// gets the lock.
#[test]
fn cancelled_waiters_keep_nothing_from_the_next() {
    let mutex = Arc::new(Mutex::new(Vec::new()));
    block_on(async {
        let held = mutex.lock().await;
        let queued = spawn({
            let mutex = mutex.clone();
            async move { mutex.lock().await.push("cancelled while queued") }
        });
        let granted = spawn({
            let mutex = mutex.clone();
            async move { mutex.lock().await.push("cancelled once granted") }
        });
        let last = spawn({
            let mutex = mutex.clone();
            async move { mutex.lock().await.push("last") }
        });
        yield_now().await; // all three are queued
        queued.abort();
        yield_now().await; // its future is dropped: it leaves the queue
        drop(held); // the lock is handed to `granted`...
        granted.abort(); // ...which is cancelled before it can take it
        last.await.unwrap();
    });
    assert_eq!(*mutex.try_lock().unwrap(), ["last"]);
}

/// `try_lock` never waits: it fails while the lock is held or wanted.
#[test]
fn try_lock_fails_while_held() {
    let mutex = Mutex::new(5);
    let guard = mutex.try_lock().unwrap();
    assert!(mutex.try_lock().is_none());
    drop(guard);
    assert_eq!(*mutex.try_lock().unwrap(), 5);
}

/// Two tasks each hold one lock and wait for the other's: a deadlock, reported with
/// the cycle spelled out (both tasks, both locks), and a wait-cycle diagnostic the
/// moment the cycle closes.
#[test]
fn a_lock_cycle_is_reported_with_its_tasks() {
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder().on_diagnostic(reporter).build();
    let (one_way, other_way) = spawn_lock_cycle(&executor);
    let deadlock = executor.try_block_on(join(one_way, other_way)).unwrap_err();
    assert_eq!(deadlock.cycles.len(), 1);
    assert_eq!(deadlock.cycles[0].len(), 2, "both tasks are in the cycle");
    let report = deadlock.to_string();
    for text in [
        "task 'one-way'",
        "waits for mutex 'second', held by task 'other-way'",
        "waits for mutex 'first', held by task 'one-way'",
        "cycle",
    ] {
        assert!(report.contains(text), "missing `{text}` in:\n{report}");
    }
    let cycles = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|d| matches!(d, Diagnostic::WaitCycle { .. }))
        .count();
    assert_eq!(cycles, 1);
}

/// The same cycle, awaited through `join_all`, which gives each handle a waker of its
/// own (a child's) rather than the awaiting task's: the waits are still followed, and
/// the deadlock reported, rather than the executor parking forever. (Run on a thread
/// of its own, so that a hang fails the test instead of hanging it.)
#[test]
fn a_lock_cycle_awaited_through_join_all_is_reported() {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let executor = Executor::builder().on_diagnostic(|_| {}).build();
        let (one_way, other_way) = spawn_lock_cycle(&executor);
        let outcome = executor.try_block_on(join_all([one_way, other_way]));
        let _ = sender.send(outcome.map(drop).map_err(|deadlock| deadlock.cycles.len()));
    });
    let outcome = common::receive_or_give_up(&receiver, "the end of try_block_on");
    assert_eq!(outcome, Err(1), "one cycle, reported");
}

/// Spawns two tasks that take the locks "first" and "second" in opposite orders, each
/// yielding in between: a lock-order deadlock.
fn spawn_lock_cycle(executor: &Executor) -> (JoinHandle<()>, JoinHandle<()>) {
    let first = Arc::new(Mutex::named("first", ()));
    let second = Arc::new(Mutex::named("second", ()));
    let one_way = {
        let (a, b) = (first.clone(), second.clone());
        executor.spawn_named("one-way", async move {
            let _a = a.lock().await;
            yield_now().await;
            let _b = b.lock().await;
        })
    };
    let other_way = {
        let (a, b) = (first.clone(), second.clone());
        executor.spawn_named("other-way", async move {
            let _b = b.lock().await;
            yield_now().await;
            let _a = a.lock().await;
        })
    };
    (one_way, other_way)
}

/// Two tasks awaiting each other's handle: a cycle through `JoinHandle`s.
#[test]
fn tasks_awaiting_each_other_are_a_cycle() {
    let (reporter, _seen) = collect_diagnostics();
    let executor = Executor::builder().on_diagnostic(reporter).build();
    let slot_for_a = Rc::new(RefCell::new(None));
    let slot_for_b = Rc::new(RefCell::new(None));
    let a = executor.spawn_named("a", {
        let slot = slot_for_a.clone();
        async move {
            yield_now().await;
            let b = slot.borrow_mut().take().unwrap();
            let _: Result<(), _> = b.await;
        }
    });
    let b = executor.spawn_named("b", {
        let slot = slot_for_b.clone();
        async move {
            yield_now().await;
            let a = slot.borrow_mut().take().unwrap();
            let _: Result<(), _> = a.await;
        }
    });
    *slot_for_a.borrow_mut() = Some(b);
    *slot_for_b.borrow_mut() = Some(a);
    let deadlock = executor
        .try_block_on(async { spawn_named("watcher", std::future::pending::<()>()).await })
        .unwrap_err();
    let report = deadlock.to_string();
    assert_eq!(deadlock.cycles.len(), 1, "{report}");
    assert!(report.contains("awaits the result of task 'b'"), "{report}");
    assert!(report.contains("awaits the result of task 'a'"), "{report}");
}

/// Waits for a lock that something outside this executor holds, and tells `waiting`
/// once the lock future has registered (its first poll returned `Pending`).
async fn lock_after_saying_so(lock: &Mutex<u32>, waiting: mpsc::Sender<()>) -> u32 {
    let mut locking = std::pin::pin!(lock.lock());
    let mut told = Some(waiting);
    let mut guard = std::future::poll_fn(|cx| {
        let poll = std::future::Future::poll(locking.as_mut(), cx);
        if let Some(waiting) = told.take() {
            assert!(poll.is_pending(), "the lock is held elsewhere");
            waiting.send(()).unwrap();
        }
        poll
    })
    .await;
    *guard += 1;
    *guard
}

/// Runs `hold` on a thread of its own with a lock named `name`: it takes the lock, says
/// so on `held`, and lets it go once told on `release`, which comes when `block_on` on
/// this thread waits for the lock. Returns what `block_on` got.
fn await_a_lock_held_elsewhere(
    name: &str,
    hold: impl FnOnce(Arc<Mutex<u32>>, mpsc::Sender<()>, mpsc::Receiver<()>) + Send + 'static,
) -> u32 {
    let lock = Arc::new(Mutex::named(name, 0));
    let (waiting, release) = mpsc::channel();
    let (held, is_held) = mpsc::channel();
    let holder = std::thread::spawn({
        let lock = lock.clone();
        move || hold(lock, held, release)
    });
    is_held.recv().unwrap();
    let value = Executor::new().block_on(lock_after_saying_so(&lock, waiting));
    holder.join().unwrap();
    value
}

/// A lock held by a plain thread (`try_lock`), awaited by `block_on`: the executor sees
/// nothing ready and no timer, but the holder is outside its tasks, so it cannot know
/// that nothing will unlock: no deadlock, and the wait ends when the thread unlocks.
#[test]
fn a_lock_held_by_a_plain_thread_is_no_deadlock() {
    let value = await_a_lock_held_elsewhere("held by a thread", |lock, held, release| {
        let guard = lock.try_lock().unwrap();
        held.send(()).unwrap();
        release.recv().unwrap(); // the executor waits on the lock now
        drop(guard);
    });
    assert_eq!(value, 1);
}

/// The same with a task of another executor, on another thread, holding the lock.
#[test]
fn a_lock_held_by_another_executors_task_is_no_deadlock() {
    let value = await_a_lock_held_elsewhere("held by another executor", |lock, held, release| {
        let executor = Executor::new();
        let task = executor.spawn(async move {
            let guard = lock.lock().await;
            held.send(()).unwrap();
            release.recv().unwrap(); // blocks this executor: fine, it is alone
            drop(guard);
        });
        executor.block_on(task).unwrap();
    });
    assert_eq!(value, 1);
}

/// A `Park` that says on a channel when it begins a wait with no deadline.
struct SaysWhenIdle {
    inner: async_scratch::park::ThreadPark,
    idle: std::sync::mpsc::Sender<()>,
}

impl async_scratch::park::Park for SaysWhenIdle {
    fn park(&self, deadline: Option<std::time::Instant>) {
        if deadline.is_none() {
            let _ = self.idle.send(());
        }
        self.inner.park(deadline);
    }

    fn unparker(&self) -> Arc<dyn async_scratch::park::Unpark> {
        self.inner.unparker()
    }
}

/// A task waits on two things at once: a handle, and a lock a plain thread holds. The
/// handle's task ends first, and withdrawing that wait must not erase the other (one
/// record per registration): the executor, idle, stays quiet (it was a false
/// "deadlock", the lock wait forgotten), and the thread unlocks once it is idle.
#[test]
fn one_wait_ending_leaves_the_other_on_record() {
    let lock = Arc::new(Mutex::named("held by a thread", 0));
    let (idle, executor_idle) = std::sync::mpsc::channel();
    let (held, is_held) = std::sync::mpsc::channel();
    let holder = std::thread::spawn({
        let lock = lock.clone();
        move || {
            let guard = lock.try_lock().unwrap();
            held.send(()).unwrap();
            let _ = executor_idle.recv(); // the executor has nothing left but to wait
            drop(guard);
        }
    });
    is_held.recv().unwrap();
    let executor = Executor::builder()
        .park(SaysWhenIdle {
            inner: async_scratch::park::ThreadPark::current(),
            idle,
        })
        .build();
    let total = executor.block_on(async {
        let quick = spawn(async {
            yield_now().await;
            5
        });
        let (quick, locked) = join(quick, async { *lock.lock().await + 1 }).await;
        quick.unwrap() + locked
    });
    holder.join().unwrap();
    assert_eq!(total, 6);
}

/// Branches of one task contending for one lock, through `join_all` and through
/// `join`: one branch holds it across a sleep while the others wait. The task waits on
/// a lock held by itself, but there is no deadlock: the sleeping branch lets go when
/// its timer fires. Nothing is reported, and everything finishes.
#[test]
fn branches_of_one_task_sharing_a_lock_are_no_cycle() {
    let (reporter, seen) = collect_diagnostics();
    let executor = Executor::builder()
        .clock(Clock::Manual(ManualClock::new()))
        .on_diagnostic(reporter)
        .build();
    let lock = Rc::new(Mutex::named("shared", 0));
    let hold_then_count = || {
        let lock = lock.clone();
        async move {
            let mut held = lock.lock().await;
            sleep(Duration::from_millis(10)).await; // holds it meanwhile
            *held += 1;
        }
    };
    executor.block_on(async {
        join_all((0..3).map(|_| hold_then_count())).await;
        join(hold_then_count(), hold_then_count()).await;
    });
    assert_eq!(*lock.try_lock().unwrap(), 5);
    let seen = seen.lock().unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}
