//! The runtime's deadlock report: when every worker is idle, no timer is pending, no
//! socket is registered, no blocking job runs, and every pending task waits only on
//! other tasks of the runtime through our own primitives (a `JoinHandle`, the async
//! `Mutex`), nothing can ever wake any of them, and a worker reports
//! [`Diagnostic::Deadlock`], naming them. And never when something the runtime cannot
//! see may wake a task: a report is a claim of certainty.
//!
//! Ordered by channels and by the runtime's own count of the times it looked
//! (`RuntimeStats::deadlock_checks`): a "no report" test waits until a worker has
//! looked with the wait in place, so that its silence means something. Every wait is
//! bounded (20 s): a bound on a failure, never what a pass depends on.

mod common;

use std::future::{poll_fn, Future};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use async_scratch::diagnostics::{Deadlock, Diagnostic};
use async_scratch::mutex::Mutex;
use async_scratch::runtime::{JoinHandle, Runtime};
use common::runtime::reporting_runtime;
use common::{receive_or_give_up, GIVE_UP_AFTER};

/// The next deadlock report, skipping any other; fails after [`GIVE_UP_AFTER`].
fn next_deadlock(reported: &Receiver<Diagnostic>) -> Deadlock {
    let give_up = Instant::now() + GIVE_UP_AFTER;
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match reported.recv_timeout(left) {
            Ok(Diagnostic::Deadlock(deadlock)) => return deadlock,
            Ok(_) => continue,
            Err(error) => panic!("no deadlock report came ({error})"),
        }
    }
}

/// The deadlock reports delivered so far.
fn deadlocks_so_far(reported: &Receiver<Diagnostic>) -> Vec<Deadlock> {
    let reports = reported.try_iter();
    let deadlocks = reports.filter_map(|report| match report {
        Diagnostic::Deadlock(deadlock) => Some(deadlock),
        _ => None,
    });
    deadlocks.collect()
}

/// Waits until a worker has looked for a deadlock more than `since` times.
fn until_a_look_after(runtime: &Runtime, since: u64) {
    let give_up = Instant::now() + GIVE_UP_AFTER;
    while runtime.stats().deadlock_checks <= since {
        assert!(Instant::now() < give_up, "no worker looked for a deadlock");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Holds a task's poll at a point until the test thread has read the runtime's count
/// of looks (see [`pause`]).
struct Pause {
    reached: mpsc::Sender<()>,
    resume: Receiver<()>,
}

impl Pause {
    /// Called inside the poll that puts the wait under test in place, before it.
    fn here(&self) {
        self.reached.send(()).unwrap();
        self.resume.recv().unwrap();
    }
}

/// The test thread's side of a [`Pause`].
struct Paused {
    reached: Receiver<()>,
    resume: mpsc::Sender<()>,
}

/// A pause for a task, and the test thread's side of it. A look at the runtime is
/// counted only if every worker slept through it, so a look counted after the count
/// read during the pause began after that poll ended: it saw the wait in place.
fn pause() -> (Pause, Paused) {
    let (reached, is_reached) = mpsc::channel();
    let (resume, resumed) = mpsc::channel();
    let pause = Pause {
        reached,
        resume: resumed,
    };
    let paused = Paused {
        reached: is_reached,
        resume,
    };
    (pause, paused)
}

/// Waits for the task's pause, reads the count of looks, lets the poll go on (to put
/// the wait in place), waits for one more look, and asserts that nothing was
/// reported; then ends the wait with `end_the_wait`.
fn no_report_while(
    runtime: &Runtime,
    reported: &Receiver<Diagnostic>,
    paused: Paused,
    end_the_wait: impl FnOnce(),
) {
    receive_or_give_up(&paused.reached, "the task's pause");
    let looks = runtime.stats().deadlock_checks;
    paused.resume.send(()).unwrap();
    until_a_look_after(runtime, looks);
    let wolf = deadlocks_so_far(reported);
    assert!(wolf.is_empty(), "cried wolf: {}", wolf[0]);
    end_the_wait();
}

/// Spawns `future` detached, its output sent on the returned channel. A "no report"
/// test keeps no `JoinHandle`: one kept could abort its task, a possible wake that
/// would keep the runtime silent whatever the guard under test did.
fn detached<T: Send + 'static>(
    runtime: &Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> Receiver<T> {
    let (output, has_output) = mpsc::channel();
    drop(runtime.spawn(async move {
        let _ = output.send(future.await);
    }));
    has_output
}

/// A slot to hand a `JoinHandle` to a task that exists already: an async mutex the
/// test thread holds while it fills it (the task waits for the lock meanwhile, a lock
/// held outside any task, which is never a deadlock).
type HandleSlot = Arc<Mutex<Option<JoinHandle<()>>>>;

/// A task that takes a handle from `slot`, then awaits it.
async fn await_the_handle_in(slot: HandleSlot) {
    let handle = slot.lock().await.take().expect("the slot was filled");
    let _ = handle.await;
}

/// Where `line` in this file is, as a task's spawn location ends.
fn at_line(line: u32) -> String {
    format!("runtime_deadlock.rs:{line}:")
}

/// Two tasks, each awaiting the other's `JoinHandle`: a cycle of known waits, and
/// nothing else pending. The report names both (by where they were spawned), each
/// awaiting the other, and the cycle.
#[test]
fn two_tasks_awaiting_each_others_handles_are_reported() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let slot_a: HandleSlot = Arc::new(Mutex::new(None));
    let slot_b: HandleSlot = Arc::new(Mutex::new(None));
    let mut fill_a = slot_a.try_lock().unwrap();
    let mut fill_b = slot_b.try_lock().unwrap();
    let line_a = line!() + 1;
    let a = runtime.spawn(await_the_handle_in(slot_a.clone()));
    let line_b = line!() + 1;
    let b = runtime.spawn(await_the_handle_in(slot_b.clone()));
    *fill_a = Some(b);
    *fill_b = Some(a);
    drop((fill_a, fill_b)); // the tasks take the handles, and await them

    let deadlock = next_deadlock(&reported);
    let text = deadlock.to_string();
    assert_eq!(deadlock.tasks.len(), 2, "{text}");
    for line in [line_a, line_b] {
        let task = deadlock.tasks.iter().find(|stuck| {
            let at = stuck.task.spawned_at;
            at.line() == line && at.file().ends_with("runtime_deadlock.rs")
        });
        let task = task.unwrap_or_else(|| panic!("the task of line {line} is named: {text}"));
        let waits_for = task.waits_for.as_deref().unwrap_or_default();
        assert!(waits_for.contains("awaits the result of"), "{text}");
    }
    assert!(text.contains(&at_line(line_a)) && text.contains(&at_line(line_b)));
    assert_eq!(deadlock.cycles.len(), 1, "{text}");
    assert_eq!(deadlock.cycles[0].len(), 2, "{text}");
    // More work, and so more looks, while the two stay stuck: the same stuck spell,
    // not reported again.
    let looks = runtime.stats().deadlock_checks;
    assert_eq!(runtime.block_on(runtime.spawn(async { 7 })), Ok(7));
    until_a_look_after(&runtime, looks);
    assert!(deadlocks_so_far(&reported).is_empty(), "reported once");
    drop(runtime); // cancels both
}

/// Two tasks take one lock each, then each waits for the other's: a lock cycle on our
/// async `Mutex`, on a runtime of two workers. Reported, with both locks named.
#[test]
fn a_lock_cycle_between_two_tasks_is_reported() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let first = Arc::new(Mutex::named("first", ()));
    let second = Arc::new(Mutex::named("second", ()));
    // Held by the test thread until both tasks hold their own lock.
    let gate = Arc::new(Mutex::new(()));
    let closed = gate.try_lock().unwrap();
    let (holding, holds) = mpsc::channel();
    let locker = |mine: Arc<Mutex<()>>, theirs: Arc<Mutex<()>>| {
        let (gate, holding) = (gate.clone(), holding.clone());
        async move {
            let _mine = mine.lock().await;
            holding.send(()).unwrap();
            drop(gate.lock().await);
            let _theirs = theirs.lock().await;
        }
    };
    // Detached: a handle kept here could abort its task, a possible wake.
    drop(runtime.spawn(locker(first.clone(), second.clone())));
    drop(runtime.spawn(locker(second.clone(), first.clone())));
    receive_or_give_up(&holds, "the first lock taken");
    receive_or_give_up(&holds, "the second lock taken");
    drop(closed);

    let deadlock = next_deadlock(&reported);
    let text = deadlock.to_string();
    assert_eq!(deadlock.tasks.len(), 2, "{text}");
    assert!(text.contains("waits for mutex 'first', held by"), "{text}");
    assert!(text.contains("waits for mutex 'second', held by"), "{text}");
    assert_eq!(deadlock.cycles.len(), 1, "{text}");
    drop(runtime);
}

/// `block_on`'s own future holds our async mutex and awaits a task that waits for
/// it: the root is part of the wait graph (a lock it holds is held by it, a handle
/// it awaits is a known wait), so the deadlock is certain, and reported, naming it.
/// `block_on` does not panic (the report is the whole answer, see `Runtime::block_on`):
/// it hangs, on a thread of its own that this test leaves behind.
#[cfg(not(miri))] // the thread left behind would outlive the test
#[test]
fn block_on_awaiting_a_deadlocked_task_is_reported() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let runtime = Arc::new(runtime);
    let hangs = Arc::clone(&runtime);
    let line = line!() + 2;
    thread::spawn(move || {
        hangs.block_on(async {
            let lock = Arc::new(Mutex::named("the root's", ()));
            let _held = lock.lock().await;
            let waiter = async_scratch::runtime::spawn({
                let lock = lock.clone();
                async move { drop(lock.lock().await) }
            });
            let _ = waiter.await;
        })
    });
    let deadlock = next_deadlock(&reported);
    let text = deadlock.to_string();
    assert_eq!(deadlock.tasks.len(), 2, "{text}");
    let root = &deadlock.tasks[0];
    assert_eq!(
        root.task.name.as_deref(),
        Some("block_on's future"),
        "{text}"
    );
    assert_eq!(root.task.spawned_at.line(), line, "{text}");
    assert!(
        text.contains("waits for mutex 'the root's', held by task"),
        "{text}"
    );
    assert_eq!(deadlock.cycles.len(), 1, "{text}");
}

/// A task whose waker a plain thread holds, to wake it later: the runtime cannot know
/// whether it will, and says nothing. Woken, the task ends.
#[test]
fn no_report_for_a_waker_held_by_a_plain_thread() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let (wakers, waker_arrives) = mpsc::channel::<Waker>();
    let (pause, paused) = pause();
    let mut first = true;
    let task = detached(
        &runtime,
        poll_fn(move |cx| {
            if std::mem::take(&mut first) {
                pause.here();
                wakers.send(cx.waker().clone()).unwrap();
                return Poll::Pending;
            }
            Poll::Ready(())
        }),
    );
    let (go, gone) = mpsc::channel::<()>();
    let waking_thread = thread::spawn(move || {
        let waker = receive_or_give_up(&waker_arrives, "the waker");
        let _ = gone.recv();
        waker.wake();
    });
    no_report_while(&runtime, &reported, paused, || go.send(()).unwrap());
    waking_thread.join().unwrap();
    receive_or_give_up(&task, "the task's end");
}

/// A task waiting for a long sleep: its timer will wake it. (It ends with the
/// runtime.)
#[test]
fn no_report_for_a_task_awaiting_a_sleep() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let (pause, paused) = pause();
    let _never = detached(&runtime, async move {
        pause.here();
        async_scratch::time::sleep(Duration::from_secs(3600)).await;
    });
    no_report_while(&runtime, &reported, paused, || {});
}

/// A task reading a socket: the kernel decides when it becomes readable. Sent bytes,
/// it ends.
#[cfg(not(miri))] // no TCP for the runtime's reactor under Miri
#[test]
fn no_report_for_a_task_awaiting_a_socket_read() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let handle = runtime.reactor();
    let (pause, paused) = pause();
    let (clients, client_arrives) = mpsc::channel();
    let task = detached(&runtime, async move {
        let (client, mut server) = common::net::connected_pair(&handle).await;
        clients.send(client).unwrap();
        pause.here();
        let mut byte = [0];
        server.read_exact(&mut byte).await.unwrap();
        byte[0]
    });
    let mut client = receive_or_give_up(&client_arrives, "the client's end");
    no_report_while(&runtime, &reported, paused, || {
        common::net::send_now(&mut client, b"!");
    });
    assert_eq!(receive_or_give_up(&task, "the byte read"), b'!');
}

/// A task awaiting the `JoinHandle` of a task of another runtime: this runtime cannot
/// see what that task waits for (here, a lock the test thread holds), and says
/// nothing. Released, both end.
#[test]
fn no_report_for_a_task_awaiting_another_runtimes_task() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let (elsewhere, _elsewhere_reported) = reporting_runtime(Runtime::builder());
    let lock = Arc::new(Mutex::new(()));
    let held = lock.try_lock().unwrap();
    let other_task = elsewhere.spawn({
        let lock = lock.clone();
        async move { drop(lock.lock().await) }
    });
    let (pause, paused) = pause();
    let task = detached(&runtime, async move {
        pause.here();
        other_task.await
    });
    no_report_while(&runtime, &reported, paused, || drop(held));
    assert_eq!(receive_or_give_up(&task, "the task's end"), Ok(()));
}

/// `block_on`'s own future holds our async mutex, which a task waits for, and waits
/// for a wake from a plain thread: the runtime cannot see when that comes, and says
/// nothing. (Were the root left out of the picture, the task would look stuck on a
/// lock held by a task that never goes on.) Woken, the root lets the lock go, and the
/// task ends.
#[test]
fn no_report_while_block_on_holds_a_lock_and_waits_on_a_thread() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let runtime = Arc::new(runtime);
    let (pause, paused) = pause();
    let (wakers, waker_arrives) = mpsc::channel::<Waker>();
    let helper = thread::spawn({
        let runtime = Arc::clone(&runtime);
        move || {
            receive_or_give_up(&paused.reached, "the task's pause");
            let looks = runtime.stats().deadlock_checks;
            paused.resume.send(()).unwrap();
            let waker = receive_or_give_up(&waker_arrives, "the root's waker");
            until_a_look_after(&runtime, looks);
            waker.wake();
        }
    });
    let task_done = runtime.block_on(async {
        let lock = Arc::new(Mutex::named("the root's", ()));
        let held = lock.lock().await;
        let task_done = detached(&runtime, {
            let lock = Arc::clone(&lock);
            async move {
                pause.here();
                drop(lock.lock().await);
            }
        });
        let mut first = true;
        poll_fn(|cx| {
            if std::mem::take(&mut first) {
                wakers.send(cx.waker().clone()).unwrap();
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        drop(held);
        task_done
    });
    helper.join().unwrap();
    receive_or_give_up(&task_done, "the task's end");
    let wolf = deadlocks_so_far(&reported);
    assert!(wolf.is_empty(), "cried wolf: {}", wolf[0]);
}

/// A task waiting for our async mutex, which a plain thread holds: the runtime cannot
/// see when the thread lets it go, and says nothing. Released, the task ends.
#[test]
fn no_report_for_a_lock_held_by_a_plain_thread() {
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let lock = Arc::new(Mutex::named("held by a thread", ()));
    let (taken, is_taken) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let holder = thread::spawn({
        let lock = lock.clone();
        move || {
            let guard = lock.try_lock().unwrap();
            taken.send(()).unwrap();
            let _ = released.recv();
            drop(guard);
        }
    });
    receive_or_give_up(&is_taken, "the lock taken by the thread");
    let (pause, paused) = pause();
    let task = detached(&runtime, async move {
        pause.here();
        drop(lock.lock().await);
    });
    no_report_while(&runtime, &reported, paused, || release.send(()).unwrap());
    holder.join().unwrap();
    receive_or_give_up(&task, "the task's end");
}

/// Rounds of tasks that wait on one another's handles in chains, and on a lock, while
/// a plain thread holds the waker of each chain's first task. In every other round
/// the thread wakes it only after a worker has looked at the whole chain waiting (a
/// waker outside: no claim); in the others at once, racing the workers. Every wait
/// ends, so never a report, however the workers interleave.
#[test]
fn tasks_that_wait_on_each_other_and_end_are_never_reported() {
    const ROUNDS: usize = if cfg!(miri) { 4 } else { 200 };
    const CHAIN: usize = if cfg!(miri) { 3 } else { 8 };
    let (runtime, reported) = reporting_runtime(Runtime::builder());
    let runtime = Arc::new(runtime);
    // Each first task's waker, and whether to wait for a look before waking it.
    let (wakers, to_wake) = mpsc::channel::<(Waker, Option<Paused>)>();
    let waking_thread = thread::spawn({
        let runtime = Arc::clone(&runtime);
        move || {
            for (waker, paused) in to_wake {
                if let Some(paused) = paused {
                    receive_or_give_up(&paused.reached, "the first task's pause");
                    let looks = runtime.stats().deadlock_checks;
                    paused.resume.send(()).unwrap();
                    until_a_look_after(&runtime, looks);
                }
                waker.wake();
            }
        }
    });
    let lock = Arc::new(Mutex::new(0usize));
    for round in 0..ROUNDS {
        let wakers = wakers.clone();
        let mut woken = false;
        let mut previous: JoinHandle<usize> = runtime.spawn(poll_fn(move |cx| {
            if std::mem::replace(&mut woken, true) {
                return Poll::Ready(0);
            }
            if round % 2 == 0 {
                let (pause, paused) = pause();
                wakers.send((cx.waker().clone(), Some(paused))).unwrap();
                pause.here();
            } else {
                wakers.send((cx.waker().clone(), None)).unwrap();
            }
            Poll::Pending
        }));
        for _ in 1..CHAIN {
            let lock = lock.clone();
            previous = runtime.spawn(async move {
                let before = previous.await.unwrap();
                *lock.lock().await += 1;
                before + 1
            });
        }
        assert_eq!(runtime.block_on(previous), Ok(CHAIN - 1));
    }
    drop(wakers);
    waking_thread.join().unwrap();
    let wolf = deadlocks_so_far(&reported);
    assert!(wolf.is_empty(), "cried wolf: {}", wolf[0]);
}
