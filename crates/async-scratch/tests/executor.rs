//! The executor's promises, one scenario each: wakes are never lost and never cause
//! extra polls, panics stay in their task, abort and drop cancel, nothing leaks.

mod common;

use async_scratch::executor::JoinError;
use async_scratch::executor::{block_on, spawn, spawn_named, yield_now, Executor};
use common::futures::{gate, Counters};
use common::{quiet_deliberate_panics, DELIBERATE};
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::thread;

/// Runs `future` as a spawned task (not as `block_on`'s own future) and returns its
/// result.
fn run_as_task<F>(future: F) -> Result<F::Output, JoinError>
where
    F: Future + 'static,
    F::Output: Send,
{
    let executor = Executor::new();
    executor.block_on(executor.spawn(future))
}

/// A task's output comes back through its handle; tasks can spawn tasks.
#[test]
fn spawned_tasks_return_their_values() {
    let total = block_on(async {
        let outer = spawn(async { spawn(async { 20 }).await.unwrap() + 1 });
        outer.await.unwrap() * 2
    });
    assert_eq!(total, 42);
}

/// Tasks spawned on an executor before `block_on` run inside it.
#[test]
fn tasks_spawned_before_block_on_run_inside_it() {
    let executor = Executor::new();
    let handle = executor.spawn(async { "ran" });
    assert_eq!(executor.pending_tasks(), 1);
    assert!(!handle.is_finished());
    assert_eq!(executor.block_on(handle), Ok("ran"));
    assert_eq!(executor.pending_tasks(), 0);
}

/// The classic lost wake-up: another thread wakes the task *while* it is being polled,
/// before it has returned `Pending`. The wake must still cause another poll.
#[test]
fn a_wake_during_the_poll_is_not_lost() {
    let (waker_sender, waker_receiver) = mpsc::channel();
    let woken = Arc::new(Barrier::new(2));
    let waking_thread = {
        let woken = woken.clone();
        thread::spawn(move || {
            let waker: std::task::Waker = waker_receiver.recv().unwrap();
            waker.wake();
            woken.wait();
        })
    };
    let mut polls = 0;
    run_as_task(poll_fn(move |cx| {
        polls += 1;
        if polls == 1 {
            waker_sender.send(cx.waker().clone()).unwrap();
            woken.wait(); // the wake has happened; we have not returned yet
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }))
    .unwrap();
    waking_thread.join().unwrap();
}

/// A task woken from another thread, after it went to sleep, runs again.
#[test]
fn a_wake_from_another_thread_resumes_the_task() {
    let (gate, release, counters) = gate();
    let releaser = thread::spawn({
        let release = release.clone();
        move || {
            // Wait until the task has been polled and left its waker.
            while release.waker().is_none() {
                thread::yield_now();
            }
            release.open();
        }
    });
    run_as_task(gate).unwrap();
    releaser.join().unwrap();
    assert_eq!(counters.polls(), 2);
}

/// Eleven wakes before the next poll cause one poll, not eleven. After that poll the
/// task stays pending, its waker kept, so that a second queue entry would find it
/// still there and poll it again; the test looks at the count, and only then wakes it
/// to finish.
#[test]
fn many_wakes_before_a_poll_cause_one_poll() {
    let polls = Rc::new(Cell::new(0));
    let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
    let task = {
        let (polls, kept) = (polls.clone(), kept.clone());
        poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            match polls.get() {
                1 => {
                    for _ in 0..10 {
                        cx.waker().wake_by_ref();
                    }
                    #[allow(clippy::waker_clone_wake)] // a wake by value, on purpose
                    cx.waker().clone().wake();
                    Poll::Pending
                }
                2 => {
                    *kept.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        })
    };
    block_on(async {
        let handle = spawn(task);
        while kept.borrow().is_none() {
            yield_now().await; // until the poll that the eleven wakes asked for
        }
        for _ in 0..3 {
            yield_now().await; // turns in which a duplicate queue entry would run
        }
        assert_eq!(polls.get(), 2, "one poll for eleven wakes");
        let waker = kept.borrow_mut().take().unwrap();
        waker.wake();
        handle.await.unwrap();
    });
    assert_eq!(polls.get(), 3);
}

/// A wake for a task that then finishes polls no other task: the first task wakes
/// itself in its last poll (its id goes into the ready queue) and returns `Ready`; the
/// next task spawned takes its slot in the slab before that queue entry is taken. The
/// entry names the old task (slot and generation), so the new task is polled once, as
/// it should be, not twice. Later wakes of the finished task, from this thread or
/// another, do nothing either.
#[test]
fn a_wake_after_completion_is_harmless() {
    let executor = Executor::new();
    let finished_waker: Rc<RefCell<Option<Waker>>> = Rc::default();
    let second_polls = Rc::new(Cell::new(0));
    let second_waker: Rc<RefCell<Option<Waker>>> = Rc::default();
    let second = {
        let (polls, kept) = (second_polls.clone(), second_waker.clone());
        poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            if polls.get() == 1 {
                *kept.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(8)
            }
        })
    };
    let first = {
        let kept = finished_waker.clone();
        poll_fn(move |cx| {
            *kept.borrow_mut() = Some(cx.waker().clone());
            cx.waker().wake_by_ref(); // queued, and then the task finishes
            Poll::Ready(7)
        })
    };
    let outputs = executor.block_on(async {
        let first = spawn(first).await;
        let second = spawn(second); // into the slot the first task left
        for _ in 0..3 {
            yield_now().await; // the stale queue entry is taken in these turns
        }
        assert_eq!(second_polls.get(), 1, "only its own first poll");
        let stale = finished_waker.borrow_mut().take().unwrap();
        stale.wake_by_ref();
        let clone = stale.clone();
        thread::spawn(move || clone.wake()).join().unwrap();
        yield_now().await;
        assert_eq!(
            second_polls.get(),
            1,
            "nothing for the finished task's wakes"
        );
        let waker = second_waker.borrow_mut().take().unwrap();
        waker.wake();
        (first, second.await)
    });
    assert_eq!(outputs, (Ok(7), Ok(8)));
    assert_eq!(second_polls.get(), 2);
}

/// A panicking task gives `Panicked` with its message; its siblings finish normally.
#[test]
fn a_panicking_task_reports_and_the_others_carry_on() {
    quiet_deliberate_panics();
    let results = block_on(async {
        let handles: Vec<_> = (0..6)
            .map(|n| {
                spawn(async move {
                    yield_now().await;
                    if n == 3 {
                        panic!("{DELIBERATE}: task {n}");
                    }
                    n
                })
            })
            .collect();
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await);
        }
        results
    });
    for (n, result) in results.into_iter().enumerate() {
        if n == 3 {
            assert_eq!(
                result,
                Err(JoinError::Panicked(format!("{DELIBERATE}: task 3")))
            );
        } else {
            assert_eq!(result, Ok(n));
        }
    }
}

/// Dropping an executor drops every pending task's future (nothing leaks), and their
/// handles report `Cancelled`.
#[test]
fn dropping_the_executor_drops_pending_futures() {
    let executor = Executor::new();
    let mut counters: Vec<Arc<Counters>> = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..5 {
        let (gate, _release, counter) = gate();
        counters.push(counter);
        handles.push(executor.spawn(gate));
    }
    executor.block_on(yield_now()); // every task polled once, all pending
    assert!(counters.iter().all(|c| c.polls() == 1 && c.drops() == 0));
    drop(executor);
    assert!(counters.iter().all(|c| c.drops() == 1));
    for handle in handles {
        assert_eq!(block_on(handle), Err(JoinError::Cancelled));
    }
}

/// `abort` stops a task before its next poll, even though it was woken, and its
/// future is dropped.
#[test]
fn abort_stops_a_task_before_its_next_poll() {
    let (gate, release, counters) = gate();
    let result = block_on(async {
        let handle = spawn(gate);
        yield_now().await; // polled once: pending
        release.open(); // woken: would be polled again...
        handle.abort(); // ...but is aborted first
        handle.await
    });
    assert_eq!(result, Err(JoinError::Cancelled));
    assert_eq!(counters.polls(), 1);
    assert_eq!(counters.drops(), 1);
}

/// Aborting a finished task keeps its result.
#[test]
fn abort_after_completion_keeps_the_result() {
    let result = block_on(async {
        let handle = spawn(async { 5 });
        yield_now().await;
        assert!(handle.is_finished());
        handle.abort();
        handle.await
    });
    assert_eq!(result, Ok(5));
}

/// A detached task (its handle dropped) still runs to the end.
#[test]
fn a_detached_task_still_runs() {
    let ran = Rc::new(RefCell::new(false));
    block_on({
        let ran = ran.clone();
        async move {
            drop(spawn(async move { *ran.borrow_mut() = true }));
            yield_now().await;
        }
    });
    assert!(*ran.borrow());
}

/// `yield_now` lets every other ready task run: three tasks yielding in turn interleave
/// round-robin.
#[test]
fn yield_now_interleaves_tasks_fairly() {
    let order = Rc::new(RefCell::new(Vec::new()));
    block_on({
        let order = order.clone();
        async move {
            let handles: Vec<_> = ["a", "b", "c"]
                .into_iter()
                .map(|name| {
                    let order = order.clone();
                    spawn(async move {
                        for round in 0..3 {
                            order.borrow_mut().push(format!("{name}{round}"));
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        }
    });
    let expected = ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"];
    assert_eq!(*order.borrow(), expected);
}

/// Names and spawn locations are kept for diagnostics.
#[test]
fn pending_tasks_know_their_name_and_spawn_location() {
    let executor = Executor::new();
    let line = line!() + 1;
    let _handle = executor.spawn_named("the listener", std::future::pending::<()>());
    let info = executor.pending_task_info();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].name.as_deref(), Some("the listener"));
    assert_eq!(info[0].spawned_at.file(), file!());
    assert_eq!(info[0].spawned_at.line(), line);
    executor.block_on(async {
        let named = spawn_named("inner", async { 1 });
        assert_eq!(named.await, Ok(1));
    });
}

/// `block_on` inside a task of the same executor is refused with a clear panic instead
/// of blocking the thread its tasks need.
#[test]
fn nested_block_on_on_the_same_executor_is_refused() {
    quiet_deliberate_panics();
    let executor = Rc::new(Executor::new());
    let inner = executor.clone();
    let result = executor.block_on(executor.spawn(async move {
        let refused =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.block_on(async {})))
                .expect_err("the nested block_on must panic");
        let message = refused
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| refused.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(
            message.contains("called from inside one of its own tasks"),
            "{message}"
        );
        "survived"
    }));
    assert_eq!(result, Ok("survived"));
}

/// Futures and combinators from the `futures` crate run on our executor: a channel
/// fed from another thread, `select`, and `join`.
#[test]
fn futures_from_other_crates_run_on_our_executor() {
    use futures::channel::{mpsc as async_mpsc, oneshot};
    use futures::{SinkExt, StreamExt};

    let (mut sender, receiver) = async_mpsc::channel::<u32>(4);
    let producer = thread::spawn(move || {
        futures::executor::block_on(async move {
            for n in 1..=10 {
                sender.send(n).await.unwrap();
            }
        })
    });
    let sum = block_on(async move {
        let summer = spawn(receiver.fold(0, |sum, n| async move { sum + n }));
        summer.await.unwrap()
    });
    producer.join().unwrap();
    assert_eq!(sum, 55);

    let (tell, told) = oneshot::channel();
    let result = block_on(async move {
        let first = futures::future::select(Box::pin(told), Box::pin(std::future::pending::<()>()));
        tell.send("first").unwrap();
        let (a, b) = futures::future::join(async { 1 }, async { 2 }).await;
        match first.await {
            futures::future::Either::Left((value, _)) => (value.unwrap(), a + b),
            futures::future::Either::Right(_) => unreachable!(),
        }
    });
    assert_eq!(result, ("first", 3));
}

/// A `JoinHandle` of a `Send` result can be awaited on another thread's executor. In
/// this order, the task has finished before the other thread polls its handle.
#[test]
fn a_join_handle_can_be_awaited_from_another_thread_after_the_task_ends() {
    let executor = Executor::new();
    let handle = executor.spawn(async { "done" });
    executor.block_on(async {
        while executor.pending_tasks() > 0 {
            yield_now().await;
        }
    });
    let awaiting = thread::spawn(move || block_on(handle));
    assert_eq!(awaiting.join().unwrap(), Ok("done"));
}

/// The other order: the other thread's `block_on` polls the handle (and waits) before
/// its task has run; a channel tells the test when it has, and only then is the task
/// let go and run. The waiting executor sees no ready task and no timer; the task it
/// waits for belongs to another executor, which it cannot see, so that is no deadlock
/// (it once was: a false "deadlock" panic).
#[test]
fn a_join_handle_can_be_awaited_from_another_thread_before_the_task_runs() {
    let executor = Executor::new();
    let (gate, release, _counters) = gate();
    let mut handle = executor.spawn(async move {
        gate.await;
        "done"
    });
    let (polled, first_poll_done) = mpsc::channel();
    let awaiting = thread::spawn(move || {
        let mut polled = Some(polled);
        block_on(poll_fn(move |cx| {
            let poll = Pin::new(&mut handle).poll(cx);
            if let Some(polled) = polled.take() {
                polled.send(()).unwrap();
            }
            poll
        }))
    });
    first_poll_done.recv().unwrap();
    release.open();
    executor.block_on(async {
        while executor.pending_tasks() > 0 {
            yield_now().await;
        }
    });
    assert_eq!(awaiting.join().unwrap(), Ok("done"));
}

struct CountPolls<'a>(&'a std::cell::Cell<usize>);

impl Future for CountPolls<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.0.set(self.0.get() + 1);
        Poll::Ready(())
    }
}

/// `block_on` takes futures that borrow from the caller's stack.
#[test]
fn block_on_accepts_borrowing_futures() {
    let polls = std::cell::Cell::new(0);
    block_on(CountPolls(&polls));
    assert_eq!(polls.get(), 1);
}

/// The event a future waits for may happen before that future is polled at all: a
/// task that finishes before anyone polls its handle, a pool job that finishes before
/// the coroutine first polls its `Task`. No waker is registered yet at that moment;
/// the outcome must still be there at the first poll.
#[test]
fn an_outcome_ready_before_the_first_poll_is_not_lost() {
    use async_scratch::pool::ThreadPool;
    let pool = ThreadPool::new(1).unwrap();
    let pool_task = pool.spawn(|| "pool job");
    drop(pool); // joins the worker: the job has finished, nobody has polled its task
    let results = block_on(async move {
        let handle = spawn(async { "task" });
        yield_now().await; // the task runs and finishes; its handle is not polled yet
        assert!(handle.is_finished());
        (handle.await, pool_task.await)
    });
    assert_eq!(results, (Ok("task"), Ok("pool job")));
}

/// Ordinary async code keeps a `&mut` to its own local across `.await`s. While such a
/// task is suspended, the executor looks at it three ways: `pending_task_info`, the
/// lost-task check (a clone of the task's waker was dropped), and the deadlock check
/// while it parks (the task waits for another thread). None of them may make a
/// reference to the task's future, or the task's own `&mut` is invalid when it resumes:
/// under Miri this test fails on a header read through the future.
#[test]
fn a_task_may_borrow_its_own_state_across_awaits() {
    let executor = Rc::new(Executor::new());
    let (gate, release, _counters) = gate();
    let borrower = executor.spawn(async move {
        let mut count = 0;
        let counter = &mut count;
        poll_fn(|cx| {
            drop(cx.waker().clone()); // the last clone goes: the task is checked for loss
            Poll::Ready(())
        })
        .await;
        yield_now().await;
        *counter += 1;
        gate.await; // suspended while the executor parks and checks for a deadlock
        *counter += 1;
        count
    });
    let releaser = thread::spawn(move || {
        while release.waker().is_none() {
            thread::yield_now();
        }
        release.open();
    });
    let inner = executor.clone();
    let count = executor.block_on(async move {
        yield_now().await;
        assert_eq!(inner.pending_task_info().len(), 1);
        borrower.await
    });
    releaser.join().unwrap();
    assert_eq!(count, Ok(2));
}

/// A `Park` that says on a channel when it starts each wait, and with what deadline.
struct ReportingPark {
    inner: async_scratch::park::ThreadPark,
    waits: mpsc::Sender<Option<std::time::Instant>>,
}

impl async_scratch::park::Park for ReportingPark {
    fn park(&self, deadline: Option<std::time::Instant>) {
        let _ = self.waits.send(deadline);
        self.inner.park(deadline);
    }

    fn unparker(&self) -> Arc<dyn async_scratch::park::Unpark> {
        self.inner.unparker()
    }
}

/// The executor waits through the `Park` it is built with: until the earliest
/// deadline when a timer is pending (a task sleeps for an hour), and with no deadline
/// when only a wake from elsewhere can help. Each wait is ended by a wake from another
/// thread, sent once that wait has begun: nothing here depends on how fast anything
/// runs.
#[test]
fn the_executor_waits_through_its_park() {
    use async_scratch::park::ThreadPark;
    let (waits, wait_begun) = mpsc::channel();
    let executor = Executor::builder()
        .park(ReportingPark {
            inner: ThreadPark::current(),
            waits,
        })
        .build();
    let (first_gate, first_release, _) = gate();
    let (second_gate, second_release, _) = gate();
    // Each gate opens once its wait has begun, or after the common bound, so that an
    // executor that does not wait through its park fails the test instead of hanging.
    let next_wait = move || wait_begun.recv_timeout(common::GIVE_UP_AFTER).ok();
    let waker = thread::spawn(move || {
        let first = next_wait(); // a wait while the hour-long sleep is set
        first_release.open();
        let mut second = next_wait();
        while let Some(Some(_)) = second {
            second = next_wait(); // (a wait left over from the first)
        }
        second_release.open();
        (first, second)
    });
    let hour = executor.block_on(async {
        let nap = async_scratch::time::sleep(std::time::Duration::from_secs(3600));
        let hour = nap.deadline().unwrap();
        let sleeper = spawn(nap);
        first_gate.await;
        sleeper.abort(); // its timer goes at the next turn
        hour
    });
    executor.block_on(second_gate);
    let (first, second) = waker.join().unwrap();
    assert_eq!(first, Some(Some(hour)), "a wait until the sleep's deadline");
    assert_eq!(second, Some(None), "a wait with no deadline");
}

/// A task's waker and its clones are one waker to `will_wake`, in every build: a
/// future that keeps a waker can tell it need not clone it again. (The vtable is one
/// `static`; as a constant, release builds once had a copy of it per codegen unit,
/// and a waker was not `will_wake` of its own clone.)
#[test]
fn a_task_waker_will_wake_its_own_clones() {
    fn check(cx: &mut Context<'_>) -> Poll<()> {
        let kept = cx.waker().clone();
        assert!(
            kept.will_wake(cx.waker()),
            "a clone of the waker polled with"
        );
        assert!(cx.waker().will_wake(&kept));
        assert!(kept.clone().will_wake(&kept), "a clone of a clone");
        Poll::Ready(())
    }
    block_on(async {
        poll_fn(check).await; // block_on's own future
        spawn(poll_fn(check)).await.unwrap(); // a spawned task
        let first = spawn(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let second = spawn(poll_fn(|cx| Poll::Ready(cx.waker().clone())));
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert!(!first.will_wake(&second), "two tasks, two wakers");
    });
}

/// A task's output need not be `Send`: an `Rc` comes back through its handle, though
/// the task's waker went to another thread and woke it from there meanwhile.
#[test]
fn an_output_that_is_not_send_comes_back_through_its_handle() {
    let count = block_on(async {
        let handle = spawn(async {
            let mut woken_from_afar = false;
            poll_fn(|cx| {
                if woken_from_afar {
                    return Poll::Ready(());
                }
                woken_from_afar = true;
                let waker = cx.waker().clone();
                thread::spawn(move || waker.wake());
                Poll::Pending
            })
            .await;
            Rc::new(Cell::new(41))
        });
        let shared = handle.await.unwrap();
        shared.set(shared.get() + 1);
        Rc::strong_count(&shared) + shared.get() as usize
    });
    assert_eq!(count, 43);
}
