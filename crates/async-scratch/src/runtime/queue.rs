//! A worker's local run queue: a bounded ring buffer that its owner pushes to and pops
//! from without a lock, and that other workers steal half of at once.
//!
//! Step 7 introduces it. The owner pushes the tasks its own tasks spawn or wake and
//! pops them in order; a worker with nothing to do steals half of another worker's
//! queue in one go, so that one steal balances the load instead of one task per steal.
//! When full, the owner moves the older half to the injector.
//!
//! # The ring
//!
//! `CAPACITY` slots, and three positions that only grow (wrapping at `u32::MAX`):
//! `tail`, where the owner pushes next (only the owner writes it), and in one atomic
//! word `head`, two positions: `real`, the next task to pop or steal, and `steal`, the
//! first slot a thief is still copying out. Outside a steal the two are equal.
//!
//! - **push** (owner): if `tail - steal` leaves room, writes the slot, then publishes
//!   it by storing `tail + 1` (release).
//! - **pop** (owner): moves `real` by one with a compare-and-swap (and `steal` with it
//!   when no steal is under way); the winner of the swap owns the slot.
//! - **steal** (thief): moves `real` forward by half of what is queued, leaving
//!   `steal` behind: those slots are now the thief's, and no push may reuse them. It
//!   copies them into its own ring, then moves `steal` up to `real`: the slots are free.
//!   Only one thief at a time: a thief that finds `steal != real` gives up.
//!
//! Pop and steal race through one word, so a task is taken exactly once; a push
//! never overwrites a slot a thief is reading, because it counts room from `steal`.
//! The loom model at the end of this file checks push, pop and steal racing.

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::mem::MaybeUninit;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::injector::Injector;
use super::task::Runnable;

/// How many tasks a local queue holds before half of them go to the injector.
pub(crate) const CAPACITY: u32 = 256;

/// One slot: written by the owner's push, moved out by a pop or a steal.
#[cfg(not(loom))]
struct Slot<T>(std::cell::UnsafeCell<MaybeUninit<T>>);

#[cfg(not(loom))]
impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot(std::cell::UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// # Safety
    /// The caller owns the slot (see the module doc) and it is empty.
    unsafe fn write(&self, value: T) {
        // SAFETY: the caller owns the slot: no other thread reads or writes it now.
        unsafe { (*self.0.get()).write(value) };
    }

    /// # Safety
    /// The caller owns the slot and it holds a value, which it moves out.
    unsafe fn read(&self) -> T {
        // SAFETY: as the caller promises: owned, initialised, and read only once.
        unsafe { (*self.0.get()).assume_init_read() }
    }
}

#[cfg(loom)]
struct Slot<T>(loom::cell::UnsafeCell<MaybeUninit<T>>);

#[cfg(loom)]
impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot(loom::cell::UnsafeCell::new(MaybeUninit::uninit()))
    }

    unsafe fn write(&self, value: T) {
        // SAFETY: as in the std version; loom checks the accesses do not race.
        self.0.with_mut(|slot| unsafe { (*slot).write(value) });
    }

    unsafe fn read(&self) -> T {
        // SAFETY: as in the std version; loom checks the accesses do not race.
        self.0.with(|slot| unsafe { (*slot).assume_init_read() })
    }
}

fn pack(steal: u32, real: u32) -> u64 {
    (u64::from(steal) << 32) | u64::from(real)
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

/// The lock-free ring; generic so that the loom model can fill it with numbers.
pub(crate) struct Ring<T> {
    /// `steal` (high half) and `real` (low half).
    head: AtomicU64,
    tail: AtomicU32,
    slots: Box<[Slot<T>]>,
    mask: u32,
}

// SAFETY: the ring hands each value from the pushing thread to exactly one popping or
// stealing thread (the protocol in the module doc), so it is `Send` and `Sync` when
// the values may move between threads.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `capacity` slots, a power of two.
    pub(crate) fn new(capacity: u32) -> Ring<T> {
        assert!(capacity.is_power_of_two());
        Ring {
            head: AtomicU64::new(0),
            tail: AtomicU32::new(0),
            slots: (0..capacity).map(|_| Slot::new()).collect(),
            mask: capacity - 1,
        }
    }

    fn slot(&self, position: u32) -> &Slot<T> {
        &self.slots[(position & self.mask) as usize]
    }

    /// How many values are queued (a hint from any thread).
    pub(crate) fn len(&self) -> u32 {
        let (_, real) = unpack(self.head.load(Ordering::Acquire));
        self.tail.load(Ordering::Acquire).wrapping_sub(real)
    }

    /// Pushes `value` at the back; gives it back if the ring is full.
    ///
    /// # Safety
    /// Only the ring's owner pushes and pops (one thread at a time).
    pub(crate) unsafe fn push(&self, value: T) -> Result<(), T> {
        let tail = self.tail.load(Ordering::Relaxed); // only the owner writes it
        let (steal, _) = unpack(self.head.load(Ordering::Acquire));
        if tail.wrapping_sub(steal) > self.mask {
            return Err(value);
        }
        // SAFETY: the slot at `tail` is beyond every pop and steal (they stop at
        // `tail`), and less than `CAPACITY` from `steal`: no thread but us owns it.
        unsafe { self.slot(tail).write(value) };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Takes the older half, when full, to move it elsewhere; nothing if a steal is
    /// under way (it is making room anyway).
    ///
    /// # Safety
    /// Only the owner.
    pub(crate) unsafe fn take_half(&self) -> Vec<T> {
        let head = self.head.load(Ordering::Acquire);
        let (steal, real) = unpack(head);
        let half = self.tail.load(Ordering::Relaxed).wrapping_sub(real) / 2;
        if steal != real || half == 0 {
            return Vec::new();
        }
        let moved = real.wrapping_add(half);
        let swapped = self.head.compare_exchange(
            head,
            pack(moved, moved),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if swapped.is_err() {
            return Vec::new();
        }
        // SAFETY: the swap made the slots `real..moved` ours: pops and steals start
        // after them, and pushes do not reach them before we return.
        (0..half)
            .map(|i| unsafe { self.slot(real.wrapping_add(i)).read() })
            .collect()
    }

    /// Pops the oldest value.
    ///
    /// # Safety
    /// Only the owner.
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (steal, real) = unpack(head);
            if real == self.tail.load(Ordering::Relaxed) {
                return None;
            }
            let next = real.wrapping_add(1);
            // During a steal, `steal` stays where the thief left it.
            let next_steal = if steal == real { next } else { steal };
            match self.head.compare_exchange(
                head,
                pack(next_steal, next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: the swap moved `real` past this slot: it is ours alone.
                Ok(_) => return Some(unsafe { self.slot(real).read() }),
                Err(now) => head = now,
            }
        }
    }

    /// Steals half of this ring (rounded up) into `into`, and returns one of the
    /// stolen values to use at once.
    ///
    /// # Safety
    /// The caller is `into`'s owner; `into` is not `self`.
    pub(crate) unsafe fn steal_into(&self, into: &Ring<T>) -> Option<T> {
        let into_tail = into.tail.load(Ordering::Relaxed);
        let (into_steal, _) = unpack(into.head.load(Ordering::Acquire));
        let room = into.mask + 1 - into_tail.wrapping_sub(into_steal);
        let mut head = self.head.load(Ordering::Acquire);
        let (first, count) = loop {
            let (steal, real) = unpack(head);
            if steal != real {
                return None; // another thief is at work here
            }
            let queued = self.tail.load(Ordering::Acquire).wrapping_sub(real);
            let count = (queued - queued / 2).min(room + 1);
            if count == 0 {
                return None;
            }
            match self.head.compare_exchange(
                head,
                pack(steal, real.wrapping_add(count)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break (real, count),
                Err(now) => head = now,
            }
        };
        for i in 0..count - 1 {
            // SAFETY: the claim made `first..first + count` ours; the slot at
            // `into_tail + i` is within `into`'s room, and we are `into`'s owner.
            unsafe {
                let value = self.slot(first.wrapping_add(i)).read();
                into.slot(into_tail.wrapping_add(i)).write(value);
            }
        }
        // SAFETY: the last claimed slot, ours as the others.
        let last = unsafe { self.slot(first.wrapping_add(count - 1)).read() };
        // The copies are done: `steal` catches up with `real`, and the slots are free.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (_, real) = unpack(head);
            match self.head.compare_exchange(
                head,
                pack(real, real),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        into.tail
            .store(into_tail.wrapping_add(count - 1), Ordering::Release);
        Some(last)
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread uses the ring; we act as its owner.
        while let Some(value) = unsafe { self.pop() } {
            drop(value);
        }
    }
}

/// One worker's queue of tasks.
pub(crate) struct LocalQueue {
    ring: Ring<Runnable>,
}

impl LocalQueue {
    pub(crate) fn new() -> LocalQueue {
        LocalQueue {
            ring: Ring::new(CAPACITY),
        }
    }

    /// Queues `task` at the back; when full, moves the older half to `overflow`. Gives
    /// back the tasks the injector refused (it is closed).
    ///
    /// # Safety
    /// Only this queue's worker (see `Ring::push`).
    pub(crate) unsafe fn push(&self, task: Runnable, overflow: &Injector) -> Vec<Runnable> {
        // SAFETY: the caller is the owner.
        let Err(task) = (unsafe { self.ring.push(task) }) else {
            return Vec::new();
        };
        // SAFETY: the caller is the owner.
        let mut batch = unsafe { self.ring.take_half() };
        batch.push(task);
        overflow.push_batch(batch.into_iter())
    }

    /// Takes the oldest task.
    ///
    /// # Safety
    /// Only this queue's worker.
    pub(crate) unsafe fn pop(&self) -> Option<Runnable> {
        // SAFETY: the caller is the owner.
        unsafe { self.ring.pop() }
    }

    /// Moves half of this queue (rounded up) into `into`, and returns one of the
    /// stolen tasks to run at once.
    ///
    /// # Safety
    /// The caller is `into`'s worker, and `into` is not `self`.
    pub(crate) unsafe fn steal_half_into(&self, into: &LocalQueue) -> Option<Runnable> {
        // SAFETY: as the caller promises.
        unsafe { self.ring.steal_into(&into.ring) }
    }

    /// Whether the queue is empty (a hint: it may change at once).
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.len() == 0
    }

    /// Empties the queue (at shutdown, once its worker has stopped).
    ///
    /// # Safety
    /// No worker uses the queue any more.
    pub(crate) unsafe fn drain(&self) -> Vec<Runnable> {
        // SAFETY: the caller stands in for the stopped owner.
        std::iter::from_fn(|| unsafe { self.ring.pop() }).collect()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_ring_pops_in_order_and_overflows_half() {
        let ring = Ring::new(4);
        // SAFETY: one thread: it is the owner.
        unsafe {
            for n in 0..4 {
                assert!(ring.push(n).is_ok());
            }
            assert_eq!(ring.push(4), Err(4));
            assert_eq!(ring.take_half(), vec![0, 1]);
            assert!(ring.push(4).is_ok());
            assert_eq!(ring.pop(), Some(2));
            let thief = Ring::new(4);
            // Two queued: the thief takes half, rounded up: one, the oldest.
            assert_eq!(ring.steal_into(&thief), Some(3));
            assert_eq!(thief.pop(), None);
            assert_eq!(ring.pop(), Some(4));
            assert_eq!(ring.pop(), None);
        }
    }

    #[test]
    fn positions_wrap_around_u32() {
        let ring = Ring::new(4);
        ring.head
            .store(pack(u32::MAX - 1, u32::MAX - 1), Ordering::SeqCst);
        ring.tail.store(u32::MAX - 1, Ordering::SeqCst);
        // SAFETY: one thread: it is the owner.
        unsafe {
            for n in 0..4 {
                assert!(ring.push(n).is_ok());
            }
            let thief = Ring::new(4);
            assert_eq!(ring.steal_into(&thief), Some(1));
            assert_eq!(thief.pop(), Some(0));
            assert_eq!(ring.pop(), Some(2));
            assert_eq!(ring.pop(), Some(3));
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The owner fills its ring, pops and pushes again (overflowing half when full),
    /// while a thief steals and pops what it stole: every value is taken exactly
    /// once, and no push writes a slot a thief is still reading (loom checks the
    /// slots' accesses).
    #[test]
    fn loom_local_queue_push_pop_steal() {
        loom::model(|| {
            let ring = Arc::new(Ring::<u32>::new(2));
            let thief = {
                let ring = ring.clone();
                thread::spawn(move || {
                    let own = Ring::new(2);
                    let mut taken = Vec::new();
                    // SAFETY: this thread owns `own`.
                    unsafe {
                        if let Some(value) = ring.steal_into(&own) {
                            taken.push(value);
                        }
                        while let Some(value) = own.pop() {
                            taken.push(value);
                        }
                    }
                    taken
                })
            };
            let mut taken = Vec::new();
            // SAFETY: this thread owns `ring`.
            unsafe {
                let push = |value, taken: &mut Vec<u32>| {
                    if let Err(value) = ring.push(value) {
                        taken.extend(ring.take_half());
                        taken.push(value); // to the "injector"
                    }
                };
                push(0, &mut taken);
                push(1, &mut taken);
                taken.extend(ring.pop());
                push(2, &mut taken);
                push(3, &mut taken);
            }
            taken.extend(thief.join().unwrap());
            // SAFETY: the thief is gone: this thread is the only user.
            while let Some(value) = unsafe { ring.pop() } {
                taken.push(value);
            }
            taken.sort_unstable();
            assert_eq!(taken, [0, 1, 2, 3]);
        });
    }
}
