//! `join_all` and `join`: wait for several futures at once, on one task.
//!
//! **Step 4** introduces it: the coroutine counterpart of step 3's
//! [`run_all`](crate::run_all::run_all). `run_all` needs a thread per job running at
//! once; `join_all` polls all its futures from the one task that awaits it, so a
//! million of them run at once on one thread, and their outputs come back in input
//! order.
//!
//! Polling all the futures every time any one of them wakes would make a million
//! futures cost a million polls per wake. So each child gets **its own waker**: waking
//! it records the child's index in a shared list and wakes the parent task once; the
//! parent then polls only the children on the list, at most 4,096 per poll (a budget,
//! so that one poll never holds the thread for long).
//!
//! ```
//! use async_scratch::executor::block_on;
//! use async_scratch::join_all::{join, join_all};
//! use async_scratch::time::sleep;
//! use std::time::Duration;
//!
//! block_on(async {
//!     // The later deadline is first: outputs still come back in input order.
//!     let later_first = [30, 10, 20].map(|ms| async move {
//!         sleep(Duration::from_millis(ms)).await;
//!         ms
//!     });
//!     assert_eq!(join_all(later_first).await, [30, 10, 20]);
//!     assert_eq!(join(async { 'a' }, async { 1 }).await, ('a', 1));
//! });
//! ```

use crate::coop;
use crate::executor::waits::{register_wait, ChildPoll, ChildWakers, WaitRegistration, WaitTarget};
use crate::locking::lock;
use crate::waker::{waker_from_arc, Wakeable};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A future, then its output, then nothing once the output is taken.
enum MaybeDone<F: Future> {
    Pending(F),
    Done(F::Output),
    Taken,
}

impl<F: Future> MaybeDone<F> {
    /// Polls the future if it is still pending; true once the output is there.
    fn poll_done(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        // SAFETY: pin projection into the `Pending` variant. The future is never moved
        // while pinned: it is only dropped in place, by `Pin::set` below, when it is
        // replaced by its output.
        let future = match unsafe { self.as_mut().get_unchecked_mut() } {
            // SAFETY: as above: the future is pinned where it lies, never moved.
            MaybeDone::Pending(future) => unsafe { Pin::new_unchecked(future) },
            MaybeDone::Done(_) => return true,
            MaybeDone::Taken => panic!("a join future was polled after it completed"),
        };
        match future.poll(cx) {
            Poll::Ready(output) => {
                self.set(MaybeDone::Done(output));
                true
            }
            Poll::Pending => false,
        }
    }

    /// Takes the output out.
    ///
    /// # Panics
    /// If the output is not there.
    fn take_output(self: Pin<&mut Self>) -> F::Output {
        // SAFETY: only a `Done` is moved out of, and it holds an output, not the
        // pinned future: the variant is checked before anything is moved, so a
        // `Pending` future stays where it is (we panic instead).
        let this = unsafe { self.get_unchecked_mut() };
        assert!(
            matches!(this, MaybeDone::Done(_)),
            "join output taken before it was ready"
        );
        match mem::replace(this, MaybeDone::Taken) {
            MaybeDone::Done(output) => output,
            _ => unreachable!("checked above"),
        }
    }
}

/// The future of [`join`].
#[must_use = "futures do nothing unless awaited"]
pub struct Join<A: Future, B: Future> {
    a: MaybeDone<A>,
    b: MaybeDone<B>,
}

/// Runs two futures at once and waits for both; returns both outputs.
pub fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a: MaybeDone::Pending(a),
        b: MaybeDone::Pending(b),
    }
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: pin projection to both fields; neither is ever moved out of a pinned
        // `Join` (there is no `Drop` impl, and no method takes them by value).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let (mut a, mut b) = unsafe {
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        };
        let a_done = a.as_mut().poll_done(cx);
        let b_done = b.as_mut().poll_done(cx);
        if a_done && b_done {
            Poll::Ready((a.take_output(), b.take_output()))
        } else {
            Poll::Pending
        }
    }
}

/// Which children were woken since the parent last looked, and how to wake the parent.
struct WokenList {
    state: Mutex<Woken>,
    /// Per child: already on the list? Keeps a child that is woken many times from
    /// being listed (and polled) many times.
    listed: Box<[AtomicBool]>,
    /// The executor's books on the child wakers (see `executor::waits::ChildWakers`):
    /// how many are alive, and where, so that a wait a child registers for the task
    /// can be told apart from a waker held by, say, another thread.
    books: Arc<ChildWakers>,
}

struct Woken {
    indices: VecDeque<usize>,
    parent: Option<Waker>,
}

impl WokenList {
    fn lock(&self) -> MutexGuard<'_, Woken> {
        // Only indices and a waker are moved under this lock: never half-written.
        lock(&self.state)
    }
}

/// The waker of one child: waking it lists the child and wakes the parent.
struct ChildWaker {
    index: usize,
    list: Arc<WokenList>,
}

impl Wakeable for ChildWaker {
    fn wake_by_ref(self: &Arc<Self>) {
        if self.list.listed[self.index].swap(true, Ordering::AcqRel) {
            return; // listed already, and the parent woken already
        }
        let parent = {
            let mut woken = self.list.lock();
            woken.indices.push_back(self.index);
            // Only the first child listed since the parent last looked wakes it.
            if woken.indices.len() == 1 {
                woken.parent.clone()
            } else {
                None
            }
        };
        if let Some(parent) = parent {
            parent.wake();
        }
    }

    fn waker_created(&self) {
        self.list.books.waker_created();
    }

    fn waker_released(&self) {
        if self.list.books.waker_released() {
            // The executor decides between "deadlock" and "cannot tell" only when it
            // looks; a wake of the task makes it look again (a spare poll at worst).
            let parent = self.list.lock().parent.clone();
            if let Some(parent) = parent {
                parent.wake();
            }
        }
    }
}

/// The most children one poll of a `JoinAll` polls. A million children polled in one
/// go would hold the thread long enough for the stall watchdog to say so (rightly:
/// every other task waits meanwhile); past this budget the `JoinAll` wakes itself and
/// carries on at its next poll, after the other ready tasks have had their turn. tokio
/// budgets every task the same way (128 operations a turn).
const CHILDREN_PER_POLL: usize = 4096;

impl<A: Future, B: Future> fmt::Debug for Join<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("a_done", &!matches!(self.a, MaybeDone::Pending(_)))
            .field("b_done", &!matches!(self.b, MaybeDone::Pending(_)))
            .finish()
    }
}

impl<F: Future> fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("children", &self.children.len())
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// The future of [`join_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAll<F: Future> {
    /// Pinned as one boxed slice: children never move once polled.
    children: Pin<Box<[MaybeDone<F>]>>,
    /// One waker per child, made at the child's first poll (children are first
    /// polled in input order, so this is also how many have been), and dropped when
    /// the child is done: a million children free theirs as they finish, not all in
    /// the last poll.
    wakers: Vec<Option<Waker>>,
    /// How many of `wakers` are still held.
    wakers_held: usize,
    list: Arc<WokenList>,
    remaining: usize,
    /// The executor's record that the task waits on these children, made when the
    /// task's waker is stored (see `WaitTarget::Children`).
    parent_wait: Option<WaitRegistration>,
}

/// Runs every future at once and waits for all of them; returns their outputs in the
/// order of `futures`, whatever order they finish in.
pub fn join_all<I>(futures: I) -> JoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let children: Box<[MaybeDone<I::Item>]> = futures.into_iter().map(MaybeDone::Pending).collect();
    let count = children.len();
    JoinAll {
        children: Box::into_pin(children),
        wakers: Vec::new(),
        wakers_held: 0,
        list: Arc::new(WokenList {
            state: Mutex::new(Woken {
                indices: VecDeque::new(),
                parent: None,
            }),
            listed: (0..count).map(|_| AtomicBool::new(false)).collect(),
            books: Arc::default(),
        }),
        remaining: count,
        parent_wait: None,
    }
}

impl WokenList {
    /// Lists again, first in line, children taken for a poll but not polled in it.
    /// Under the list's lock, so that no wake lists one of them a second time.
    fn put_back(&self, children: &[usize]) {
        let mut woken = self.lock();
        for &index in children {
            self.listed[index].swap(true, Ordering::AcqRel);
        }
        for &index in children.iter().rev() {
            woken.indices.push_front(index);
        }
    }
}

impl<F: Future> JoinAll<F> {
    /// Drops the waker of a child that is done: it will never be polled again.
    fn drop_waker(&mut self, index: usize) {
        let waker = self.wakers[index].take();
        self.wakers_held -= 1;
        self.list.books.set_own(self.wakers_held);
        drop(waker); // after the books say the join_all no longer holds it
    }

    /// The children to poll now: all of them the first time, then those woken since.
    fn children_to_poll(&mut self, parent: &Waker) -> (Vec<usize>, bool) {
        let mut woken = self.list.lock();
        if !woken
            .parent
            .as_ref()
            .is_some_and(|stored| stored.will_wake(parent))
        {
            woken.parent = Some(parent.clone());
            let books = WaitTarget::Children(Arc::clone(&self.list.books));
            // Replaced outside the lock: dropping a registration takes the task's.
            let new_wait = register_wait(parent, books);
            drop(woken);
            self.parent_wait = new_wait;
            woken = self.list.lock();
        }
        // Children never polled yet, in input order, a budget's worth at a time; then
        // as many woken ones as the budget leaves room for.
        let never_polled = self.wakers.len()
            ..self
                .children
                .len()
                .min(self.wakers.len() + CHILDREN_PER_POLL);
        let room = CHILDREN_PER_POLL - never_polled.len();
        let take = woken.indices.len().min(room);
        let mut batch: Vec<usize> = woken.indices.drain(..take).collect();
        let more_left = !woken.indices.is_empty() || never_polled.end < self.children.len();
        drop(woken);
        for index in never_polled.clone() {
            let list = Arc::clone(&self.list);
            self.wakers
                .push(Some(waker_from_arc(Arc::new(ChildWaker { index, list }))));
        }
        self.wakers_held += never_polled.len();
        self.list.books.set_own(self.wakers_held);
        batch.extend(never_polled);
        (batch, more_left)
    }
}

/// The children's wakers go with it: their releases need not wake anyone.
impl<F: Future> Drop for JoinAll<F> {
    fn drop(&mut self) {
        self.list.books.retire();
    }
}

/// One child of the pinned slice, pinned.
fn child<F: Future>(
    children: &mut Pin<Box<[MaybeDone<F>]>>,
    index: usize,
) -> Pin<&mut MaybeDone<F>> {
    // SAFETY: pin projection from the pinned slice to one element; elements are never
    // moved out of the slice (only replaced in place through `Pin::set`, or emptied of
    // an output by `take_output`).
    unsafe {
        children
            .as_mut()
            .map_unchecked_mut(|children| &mut children[index])
    }
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut(); // `JoinAll` is `Unpin`: its children are boxed
        let (batch, mut more_left) = this.children_to_poll(cx.waker());
        for (position, &index) in batch.iter().enumerate() {
            if coop::budget_spent(cx.waker()) {
                // No child could complete now: the rest wait for the next poll.
                this.list.put_back(&batch[position..]);
                more_left = true;
                break;
            }
            // A swap, not a store: a store could become visible only after the child's
            // poll has read its state, while a wake on another thread sees the flag
            // still set and queues nothing: a lost wake (the store-buffer pattern).
            // Both sides being read-modify-writes of the flag, one always sees the other.
            this.list.listed[index].swap(false, Ordering::AcqRel);
            let Some(child_waker) = &this.wakers[index] else {
                continue; // done already: a late wake listed it
            };
            let mut child_cx = Context::from_waker(child_waker);
            let done = {
                // A wait the child registers through its waker is this task's.
                let _polling = ChildPoll::enter(child_waker, &this.list.books);
                // So is the budget: a loop over ready children gives the thread back.
                let _lent = coop::lend_budget(cx.waker(), child_waker);
                child(&mut this.children, index).poll_done(&mut child_cx)
            };
            if done {
                this.remaining -= 1;
                this.drop_waker(index);
            }
        }
        if this.remaining > 0 {
            if more_left {
                cx.waker().wake_by_ref(); // over budget: carry on at the next poll
            }
            return Poll::Pending;
        }
        let outputs = (0..this.children.len())
            .map(|index| child(&mut this.children, index).take_output())
            .collect();
        Poll::Ready(outputs)
    }
}
