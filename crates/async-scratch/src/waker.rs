//! Wakers, built by hand: how a sleeping future gets its task polled again.
//!
//! **Step 4** introduces it. Threads wait by blocking; a coroutine (a `Future`) waits by
//! returning `Poll::Pending` and leaving behind a [`Waker`]: a handle that whoever
//! finishes the awaited thing (a timer, another thread, another task) calls to say
//! "poll me again". The executor decides what waking *means*; for ours, it puts the
//! task back on the ready queue and unparks the executor's thread.
//!
//! A `Waker` is a data pointer plus a table of four functions, a [`RawWakerVTable`]:
//!
//! | entry | called when | must |
//! |---|---|---|
//! | `clone` | a future keeps the waker (`cx.waker().clone()`) | return a new `RawWaker` for the same task |
//! | `wake` | `waker.wake()`, which consumes the waker | wake the task, then release this waker |
//! | `wake_by_ref` | `waker.wake_by_ref()` | wake the task, keep this waker |
//! | `drop` | a waker is dropped | release this waker |
//!
//! The contract (from the documentation of [`RawWaker`] and [`Waker`]): a waker may be
//! cloned, woken and dropped from **any thread**, any number of times, even after its
//! task has finished; waking must be cheap and must not poll the task in place. So the
//! data behind the pointer must be thread-safe, and must live as long as any waker
//! still points at it.
//!
//! Ours keeps that data in an [`Arc`]: the data pointer is `Arc::into_raw`, `clone`
//! adds a reference, `drop` takes one away, and the last one frees it. Anything that
//! implements [`Wakeable`] can be turned into a `Waker` that way by
//! [`waker_from_arc`]. (The standard library offers the same in safe form as
//! `std::task::Wake`; we build the vtable ourselves because seeing it is the lesson,
//! and because step 5 will count the live wakers of each task in it.)
//!
//! ```
//! use async_scratch::waker::{waker_from_arc, Wakeable};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! struct CountWakes(AtomicUsize);
//!
//! impl Wakeable for CountWakes {
//!     fn wake_by_ref(self: &Arc<Self>) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let counter = Arc::new(CountWakes(AtomicUsize::new(0)));
//! let waker = waker_from_arc(counter.clone());
//! waker.wake_by_ref();
//! let copy = waker.clone();
//! std::thread::spawn(move || copy.wake()).join().unwrap(); // from another thread
//! drop(waker);
//! assert_eq!(counter.0.load(Ordering::Relaxed), 2);
//! assert_eq!(Arc::strong_count(&counter), 1); // every waker gave its reference back
//! ```

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// Something a [`Waker`] can wake: the thread-safe half of a task.
pub trait Wakeable: Send + Sync + 'static {
    /// Makes the task runnable again. Called from any thread, possibly many times,
    /// possibly after the task finished; it must be cheap and must not poll the task.
    fn wake_by_ref(self: &Arc<Self>);

    /// Called when an owning waker comes into being: made by [`waker_from_arc`], or
    /// cloned. Does nothing unless overridden; our executor counts live wakers with it
    /// (step 5: a pending task with no waker left can never run again).
    fn waker_created(&self) {}

    /// Called when an owning waker goes away: dropped, or consumed by `wake` (after the
    /// wake, so that a task is queued before its last waker is gone; also when the wake
    /// panics, since the waker is consumed all the same).
    fn waker_released(&self) {}
}

/// Turns an `Arc` of a [`Wakeable`] into a [`Waker`] that owns one reference to it.
pub fn waker_from_arc<W: Wakeable>(wakeable: Arc<W>) -> Waker {
    wakeable.waker_created();
    let raw = raw_waker::<W>(Arc::into_raw(wakeable));
    // SAFETY: `raw` carries a pointer from `Arc::into_raw` that owns one strong
    // reference, and the vtable of `W`, whose four functions keep the `RawWaker`
    // contract for exactly such a pointer (see each function's comment). `W` is
    // `Send + Sync`, so using the waker from any thread is sound.
    unsafe { Waker::from_raw(raw) }
}

/// A [`Waker`] borrowed from an `Arc` for as long as the borrow lasts: made without
/// touching the reference count, and never dropped. An executor polls a task with one,
/// so that polling costs no atomic operation; a future that keeps the waker clones it,
/// and the clone owns a reference as usual.
///
/// ```
/// use async_scratch::waker::{waker_ref, Wakeable};
/// use std::sync::Arc;
///
/// struct Nothing;
/// impl Wakeable for Nothing {
///     fn wake_by_ref(self: &Arc<Self>) {}
/// }
///
/// let task = Arc::new(Nothing);
/// let borrowed = waker_ref(&task);
/// assert_eq!(Arc::strong_count(&task), 1); // borrowing took no reference
/// let kept = borrowed.clone();
/// assert_eq!(Arc::strong_count(&task), 2); // keeping one does
/// drop(kept);
/// ```
#[derive(Debug)]
pub struct WakerRef<'a> {
    waker: ManuallyDrop<Waker>,
    _borrow: PhantomData<&'a ()>,
}

impl Deref for WakerRef<'_> {
    type Target = Waker;

    fn deref(&self) -> &Waker {
        &self.waker
    }
}

/// Borrows a [`Waker`] from `wakeable`; see [`WakerRef`].
pub fn waker_ref<W: Wakeable>(wakeable: &Arc<W>) -> WakerRef<'_> {
    let raw = raw_waker::<W>(Arc::as_ptr(wakeable));
    // SAFETY: the pointer is the live `Arc`'s, and stays valid for `'a`, the borrow of
    // `wakeable`, which `WakerRef<'a>` cannot outlive; the vtable of `W` keeps the
    // `RawWaker` contract for it.
    unsafe { borrowed_waker(raw) }
}

/// Wraps `raw` as a [`WakerRef`]: a waker that owns no reference, so it must never
/// release one. It is never dropped (`ManuallyDrop`) and never woken by value (only
/// `&Waker` is handed out, and `wake` takes `self`); clones made from it go through
/// the vtable's `clone`, which takes a reference of their own.
///
/// # Safety
/// `raw`'s data pointer must stay valid for `'a`, and its vtable must keep the
/// `RawWaker` contract for that pointer (as for [`Waker::from_raw`]).
pub(crate) unsafe fn borrowed_waker<'a>(raw: RawWaker) -> WakerRef<'a> {
    // SAFETY: the caller's contract is `Waker::from_raw`'s, for `'a`.
    let waker = unsafe { Waker::from_raw(raw) };
    WakerRef {
        waker: ManuallyDrop::new(waker),
        _borrow: PhantomData,
    }
}

fn raw_waker<W: Wakeable>(data: *const W) -> RawWaker {
    RawWaker::new(data.cast::<()>(), vtable::<W>())
}

/// One vtable per `Wakeable` type, built at compile time (a `&'static` to a constant).
fn vtable<W: Wakeable>() -> &'static RawWakerVTable {
    &RawWakerVTable::new(clone::<W>, wake::<W>, wake_by_ref::<W>, drop_waker::<W>)
}

/// # Safety
/// `data` must come from `Arc::<W>::into_raw` and still own a strong reference (it
/// does for as long as the waker that holds it is alive).
unsafe fn clone<W: Wakeable>(data: *const ()) -> RawWaker {
    // SAFETY: by this function's contract `data` is a live `Arc<W>` pointer; the new
    // `RawWaker` gets a strong reference of its own.
    unsafe { Arc::increment_strong_count(data.cast::<W>()) };
    // SAFETY: the same live pointer, now with one more reference.
    unsafe { &*data.cast::<W>() }.waker_created();
    raw_waker::<W>(data.cast::<W>())
}

/// # Safety
/// As for [`clone`]; the reference this waker owned is consumed.
unsafe fn wake<W: Wakeable>(data: *const ()) {
    // SAFETY: `wake` consumes the waker, so taking back the reference it owned (and
    // dropping it after waking) keeps the count right.
    let wakeable = unsafe { Arc::from_raw(data.cast::<W>()) };
    // The guard reports the release when it goes: after the wake, or while a panicking
    // `wake_by_ref` unwinds, since the waker is consumed either way.
    let consumed = ReleasedOnDrop { wakeable };
    consumed.wakeable.wake_by_ref();
}

/// The reference of a waker consumed by `wake`, which calls [`Wakeable::waker_released`]
/// when it goes, then gives the reference back, as `drop_waker` does: on every way out
/// of `wake`, the panicking one too.
struct ReleasedOnDrop<W: Wakeable> {
    wakeable: Arc<W>,
}

impl<W: Wakeable> Drop for ReleasedOnDrop<W> {
    fn drop(&mut self) {
        self.wakeable.waker_released();
        // `wakeable`, and with it the reference, is dropped right after this.
    }
}

/// # Safety
/// As for [`clone`]; the waker keeps its reference.
unsafe fn wake_by_ref<W: Wakeable>(data: *const ()) {
    // SAFETY: the waker is still alive and keeps its reference: borrow the `Arc`
    // without taking that reference over, hence `ManuallyDrop`.
    let wakeable = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<W>()) });
    wakeable.wake_by_ref();
}

/// # Safety
/// As for [`clone`]; the reference this waker owned is released.
unsafe fn drop_waker<W: Wakeable>(data: *const ()) {
    // SAFETY: the waker is alive until the end of this function, so its pointer is.
    unsafe { &*data.cast::<W>() }.waker_released();
    // SAFETY: the waker is being dropped, so its reference is released exactly once.
    unsafe { Arc::decrement_strong_count(data.cast::<W>()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counter {
        wakes: AtomicUsize,
    }

    impl Wakeable for Counter {
        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every path through the vtable keeps the reference count right: clones add one,
    /// `wake` and drop give one back, `wake_by_ref` leaves it alone.
    #[test]
    fn reference_counts_balance_on_every_path() {
        let counter = Arc::new(Counter::default());
        let waker = waker_from_arc(counter.clone());
        assert_eq!(Arc::strong_count(&counter), 2);
        let clones: Vec<Waker> = (0..3).map(|_| waker.clone()).collect();
        assert_eq!(Arc::strong_count(&counter), 5);
        waker.wake_by_ref();
        assert_eq!(Arc::strong_count(&counter), 5);
        for clone in clones {
            clone.wake();
        }
        assert_eq!(Arc::strong_count(&counter), 2);
        drop(waker);
        assert_eq!(Arc::strong_count(&counter), 1);
        assert_eq!(counter.wakes.load(Ordering::Relaxed), 4);
    }

    /// Counts the wakers made and released for it; its wake always panics.
    #[derive(Default)]
    struct PanicsOnWake {
        created: AtomicUsize,
        released: AtomicUsize,
    }

    impl Wakeable for PanicsOnWake {
        fn wake_by_ref(self: &Arc<Self>) {
            panic!("deliberate panic in wake");
        }
        fn waker_created(&self) {
            self.created.fetch_add(1, Ordering::Relaxed);
        }
        fn waker_released(&self) {
            self.released.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A waker consumed by a `wake` that panics is still released, as `Wakeable`'s
    /// contract says, and gives its reference back: counted after each step.
    #[test]
    fn a_waker_consumed_by_a_panicking_wake_is_released() {
        let wakeable = Arc::new(PanicsOnWake::default());
        let waker = waker_from_arc(wakeable.clone());
        let clone = waker.clone();
        assert_eq!(wakeable.created.load(Ordering::Relaxed), 2);
        assert_eq!(wakeable.released.load(Ordering::Relaxed), 0);
        let woken = std::panic::catch_unwind(AssertUnwindSafe(|| clone.wake()));
        assert!(woken.is_err(), "the wake panicked");
        assert_eq!(wakeable.released.load(Ordering::Relaxed), 1);
        assert_eq!(Arc::strong_count(&wakeable), 2, "reference given back");
        drop(waker);
        let created = wakeable.created.load(Ordering::Relaxed);
        assert_eq!(wakeable.released.load(Ordering::Relaxed), created);
        assert_eq!(Arc::strong_count(&wakeable), 1);
    }

    /// Wakers made from the same `Arc` are recognised as waking the same task.
    #[test]
    fn clones_will_wake_the_same_task() {
        let waker = waker_from_arc(Arc::new(Counter::default()));
        assert!(waker.will_wake(&waker.clone()));
        let other = waker_from_arc(Arc::new(Counter::default()));
        assert!(!waker.will_wake(&other));
    }
}
