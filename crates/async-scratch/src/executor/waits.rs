//! The wait graph: which task waits for which, as far as the executor can know.
//!
//! **Step 5** introduced it. When a task waits on one of our own primitives (awaits a
//! `JoinHandle`, queues for an async `Mutex`), the primitive registers the wait in the
//! task's header, and withdraws it when the wait ends or is dropped: one record per
//! registration. From these records the executor names a wait cycle the moment it
//! closes, describes what each stuck task waits for, and tells a deadlock it can be
//! certain of from a wait whose other side it cannot see (a task of another executor,
//! a lock held by a plain thread): of those it says nothing rather than cry wolf.
//!
//! **Step 7** follows them on the runtime too: a record is made on the worker that
//! polls the waiting task, and withdrawn wherever the wait ends (the awaited task's
//! end on another worker, a lock released on any thread), under the record map's own
//! lock. What may be concluded from the records, and when, differs: the executor
//! looks for a cycle after every poll that ends `Pending` with a known wait, since
//! between two of its polls no task runs; a runtime's other workers may be polling
//! the other tasks of the cycle at that very moment, so the runtime reads the graph
//! only once every worker is idle (see `runtime::diagnostics`), and the per-poll
//! check is the executor's alone (`Schedule::checks_cycles_after_polls`).

use super::state::Snapshot;
use super::task::{current_task, TaskHeader};
use super::task_ref::TaskRef;
use crate::diagnostics::{Diagnostic, StuckTask, TaskId};
use crate::locking::lock;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

impl TaskHeader {
    /// Wakers of this task held anywhere but in our own primitives' known waits. The
    /// waker a `join_all` keeps to be woken by its children counts as known only while
    /// every child waker outside the `join_all` is itself held by a known wait.
    pub(super) fn outside_wakers(&self) -> u32 {
        self.outside_wakers_in(self.state.load())
    }

    /// `outside_wakers`, counted from `word`, one reading of the state word. A check
    /// that also asks whether the task is `SCHEDULED` must ask it of the same reading:
    /// a wake by a consumed waker sets `SCHEDULED` and takes the count down in one
    /// step, so two readings may see the flag still clear and then the count already
    /// down, which looks like a task nothing can wake. (Under load, a false "deadlock"
    /// came from exactly that: see `Core::find_deadlock`.)
    pub(super) fn outside_wakers_in(&self, word: Snapshot) -> u32 {
        let live = u32::try_from(word.wakers()).unwrap_or(u32::MAX);
        let combinators = {
            let waits = self.lock_waits_on();
            let known = |wait: &&WaitTarget| matches!(wait, WaitTarget::Children(books) if books.all_known());
            waits.values().filter(known).count()
        };
        let known = self.internal_waits.load(Ordering::Acquire) as usize + combinators;
        // A loose `JoinHandle` may abort the task from anywhere: a waker in all but name.
        let loose_handle = u32::from(word.handle_loose());
        (live + loose_handle).saturating_sub(u32::try_from(known).unwrap_or(u32::MAX))
    }

    /// Whether something this executor cannot rule out may still make the task go on:
    /// it is woken already, a waker of it is held outside, or it waits on something
    /// beyond this executor. Reads the state word once (see `outside_wakers_in`).
    pub(super) fn may_go_on(&self) -> bool {
        let word = self.state.load();
        word.is_scheduled() || self.outside_wakers_in(word) > 0 || self.waits_beyond_this_executor()
    }

    pub(super) fn lock_waits_on(&self) -> LockedWaits<'_> {
        self.waits_on.lock()
    }

    /// The task and what it waits for, in words.
    pub(crate) fn stuck(&self) -> StuckTask {
        let waits = self.lock_waits_on();
        let described: Vec<String> = waits.values().map(WaitTarget::describe).collect();
        StuckTask {
            task: self.info(),
            waits_for: (!described.is_empty()).then(|| described.join("; and ")),
        }
    }

    /// Whether this task waits on something that can end without any task of this
    /// executor running: a task of another executor, or a lock held outside this
    /// executor's tasks (by a plain thread, or a task of another executor). Such a
    /// wait is never part of a certain deadlock: the executor cannot see the other
    /// side, so it says nothing rather than cry wolf.
    pub(super) fn waits_beyond_this_executor(&self) -> bool {
        let waits = self.lock_waits_on();
        let beyond = waits
            .values()
            .any(|wait| self.is_beyond_this_executor(wait));
        beyond
    }

    /// Whether the other side of `wait` is out of this executor's sight.
    fn is_beyond_this_executor(&self, wait: &WaitTarget) -> bool {
        match (wait, wait.task()) {
            (WaitTarget::Children(_), _) => false, // its children's waits are listed too
            // The reactor holds the waker, and only the kernel knows when it fires.
            (WaitTarget::Io(_), _) => true,
            // A task of another executor; or one that is over, whose lock guard
            // lives on elsewhere (it was returned, or sent to a thread).
            (_, Some(task)) => {
                let header = task.header();
                !header.owner.same_as(&self.owner) || header.is_complete()
            }
            (_, None) => true, // a lock held outside any task
        }
    }

    /// What the executor cannot see of this task's waits, if anything: each wait whose
    /// other side is beyond it, and the wakers held where it cannot follow them. `None`
    /// when it sees everything (the task could then be part of a certain deadlock).
    pub(super) fn unseen(&self) -> Option<StuckTask> {
        let mut unseen: Vec<String> = {
            let waits = self.lock_waits_on();
            let beyond = waits
                .values()
                .filter(|wait| self.is_beyond_this_executor(wait));
            beyond.map(WaitTarget::describe).collect()
        };
        let outside = self.outside_wakers();
        if outside > 0 {
            let (is, it) = if outside == 1 {
                ("is", "it")
            } else {
                ("are", "them")
            };
            unseen.push(format!(
                "{outside} of its wakers {is} held where the executor cannot follow {it} \
                 (another thread, a static, a pool task, another crate's primitive, a sleep \
                 that never ends, or a JoinHandle that may abort it)"
            ));
        }
        (!unseen.is_empty()).then(|| StuckTask {
            task: self.info(),
            waits_for: Some(unseen.join("; and ")),
        })
    }

    /// Whether the task has any known wait (cheap: one atomic load, no lock). Exact
    /// for the thread that polled the task, right after its poll (the only place its
    /// waits are registered); a wait withdrawn on another thread meanwhile may still
    /// be counted, which costs only a look at the records.
    pub(super) fn has_known_waits(&self) -> bool {
        self.wait_records.load(Ordering::Acquire) > 0
    }

    /// Every task this one waits for, through any of its known waits.
    pub(super) fn waits_for_tasks(&self) -> Vec<TaskRef> {
        let waits = self.lock_waits_on();
        waits.values().filter_map(WaitTarget::task).collect()
    }
}

/// What a task waits for, when it waits on one of our own primitives.
pub(crate) enum WaitTarget {
    /// The outcome of another task (awaiting its `JoinHandle`).
    Task(TaskRef),
    /// An async mutex, and through it whoever holds it.
    Lock(Arc<LockRecord>),
    /// The children of a `join_all` the task polls: their own waits are registered
    /// for the task as they are made; this record stands for the task's waker that
    /// the `join_all` keeps (see [`ChildWakers`]).
    Children(Arc<ChildWakers>),
    /// A socket, through the reactor, which holds the task's waker until the kernel
    /// says the socket is ready: a wait the executor cannot follow to any task, so
    /// never part of a deadlock or a cycle it claims, but listed in its reports.
    Io(IoWait),
}

/// A task's wait on a socket: which descriptor, and for what. Small (8 bytes), so
/// that it does not grow every wait record: a task's records sit in a map's node of
/// eleven, allocated whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IoWait {
    /// The socket's file descriptor, as `ls -l /proc/<pid>/fd` or `lsof` name it.
    pub(crate) fd: i32,
    /// What the task waits for.
    pub(crate) readiness: IoReadiness,
}

/// What a task waits for on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoReadiness {
    /// Data, or the end of the stream.
    Readable,
    /// Room in the send buffer.
    Writable,
    /// A connection to accept.
    Accept,
    /// Its own connect to finish.
    Connect,
}

impl IoReadiness {
    fn describe(self) -> &'static str {
        match self {
            IoReadiness::Readable => "readable",
            IoReadiness::Writable => "writable",
            IoReadiness::Accept => "accept",
            IoReadiness::Connect => "connect",
        }
    }
}

/// What the executor may know of an async mutex: its name, and which task holds it.
pub(crate) struct LockRecord {
    pub(crate) name: Option<Box<str>>,
    pub(crate) holder: Mutex<Option<TaskRef>>,
}

impl LockRecord {
    pub(super) fn holder(&self) -> Option<TaskRef> {
        lock(&self.holder).clone()
    }
}

impl WaitTarget {
    pub(super) fn task(&self) -> Option<TaskRef> {
        match self {
            WaitTarget::Task(task) => Some(task.clone()),
            WaitTarget::Lock(lock) => lock.holder(),
            WaitTarget::Children(_) | WaitTarget::Io(_) => None,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            WaitTarget::Task(task) => format!("awaits the result of {}", task.header().info()),
            WaitTarget::Children(books) if books.all_known() => {
                "awaits the children of a join_all (their waits are listed)".to_string()
            }
            WaitTarget::Children(_) => "awaits the children of a join_all, one of which \
                 waits on something the executor cannot see"
                .to_string(),
            WaitTarget::Io(io) => {
                format!("waits on I/O: fd {}, {}", io.fd, io.readiness.describe())
            }
            WaitTarget::Lock(lock) => {
                let name = lock
                    .name
                    .as_deref()
                    .map_or("a mutex".to_string(), |n| format!("mutex '{n}'"));
                match lock.holder() {
                    Some(holder) if holder.header().is_complete() => format!(
                        "waits for {name}, taken by {}, which has ended (its guard lives on)",
                        holder.header().info()
                    ),
                    Some(holder) => format!("waits for {name}, held by {}", holder.header().info()),
                    None => format!("waits for {name}, held outside any task"),
                }
            }
        }
    }
}

/// A task's known waits, in its header: each keyed by the number of the registration
/// that made it, so that it alone is withdrawn, in registration order. A map, not a
/// list: a `join_all` of a million handles has a million, withdrawn one by one.
///
/// The map and its lock are made at the first registration, and the header keeps one
/// pointer to them: most tasks never wait on our primitives while pending, and an
/// empty map behind a lock in every header would cost each task 32 bytes instead of 8.
pub(super) struct WaitRecords {
    /// Null until the first registration; then a `Box` of ours, freed in `drop`.
    map: AtomicPtr<Mutex<RecordMap>>,
}

type RecordMap = BTreeMap<u64, WaitTarget>;

impl WaitRecords {
    pub(super) fn new() -> WaitRecords {
        WaitRecords {
            map: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The records, locked (none if the task never registered a wait).
    pub(super) fn lock(&self) -> LockedWaits<'_> {
        // SAFETY: the pointer is null or a `Box` of ours, published by `make` with
        // `Release` (read here with `Acquire`) and freed only in `drop`, which `&self`
        // keeps from running.
        let map = unsafe { self.map.load(Ordering::Acquire).as_ref() };
        LockedWaits(map.map(lock))
    }

    pub(super) fn insert(&self, number: u64, target: WaitTarget) {
        lock(self.get_or_make()).insert(number, target);
    }

    /// The map, made if this is the first registration.
    fn get_or_make(&self) -> &Mutex<RecordMap> {
        let current = self.map.load(Ordering::Acquire);
        let map = if current.is_null() {
            let made = Box::into_raw(Box::default());
            let ordering = (Ordering::AcqRel, Ordering::Acquire);
            match (self.map).compare_exchange(current, made, ordering.0, ordering.1) {
                Ok(_) => made,
                Err(other) => {
                    // SAFETY: `made` lost the race, so it was never published: still ours.
                    drop(unsafe { Box::from_raw(made) });
                    other
                }
            }
        } else {
            current
        };
        // SAFETY: as in `lock`: a published `Box` of ours, alive while `&self` is.
        unsafe { &*map }
    }
}

impl Drop for WaitRecords {
    fn drop(&mut self) {
        let map = *self.map.get_mut();
        if !map.is_null() {
            // SAFETY: a `Box` of ours (see `get_or_make`), freed once, here.
            drop(unsafe { Box::from_raw(map) });
        }
    }
}

/// A task's wait records, locked; empty if it never had any.
pub(super) struct LockedWaits<'a>(Option<MutexGuard<'a, RecordMap>>);

impl LockedWaits<'_> {
    pub(super) fn values(&self) -> impl Iterator<Item = &WaitTarget> {
        self.0.iter().flat_map(|records| records.values())
    }

    pub(super) fn remove(&mut self, number: u64) -> Option<WaitTarget> {
        self.0.as_mut()?.remove(&number)
    }
}

/// A known wait, registered while a task's waker sits in one of our primitives:
/// the task's wait record is there while it lives, and withdrawn when it is dropped.
pub(crate) struct WaitRegistration {
    pub(super) task: TaskRef,
    pub(super) number: u64,
    /// How the waker it holds is counted, to be uncounted when it goes.
    counted: Counted,
}

/// Whose books a registration's waker is counted in.
enum Counted {
    /// The task's own waker: one of the task's known waits (`internal_waits`).
    Task,
    /// A `join_all` child's waker: one of that `join_all`'s known child wakers.
    Child(Arc<ChildWakers>),
    /// Not counted by itself (a `Children` record: see `outside_wakers`).
    Nowhere,
}

/// Registers that the current task waits on `target`, if `waker` is its own waker or
/// the waker of a `join_all` child it is polling. A wait behind any other waker stays
/// unknown: an "outside" waker, so never taken for a deadlock. Reports a wait cycle if
/// this closes one.
pub(crate) fn register_wait(waker: &Waker, target: WaitTarget) -> Option<WaitRegistration> {
    let task = current_task()?;
    if !task.state.load().keeps_books() || !task.owner().follows_waits() {
        return None;
    }
    let counted = match (&target, task.is_own_waker(waker)) {
        (WaitTarget::Children(_), true) => Counted::Nowhere,
        // A `join_all` inside a `join_all`'s child: its waker is the outer child's,
        // and that nesting is not followed (its wakers stay "outside").
        (WaitTarget::Children(_), false) => return None,
        (_, true) => Counted::Task,
        (_, false) => Counted::Child(child_books_of(waker)?),
    };
    /// Numbers the registrations: unique, so a record names the one that made it.
    static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(0);
    let number = NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed);
    let header = task.header();
    match &counted {
        Counted::Task => drop(header.internal_waits.fetch_add(1, Ordering::AcqRel)),
        Counted::Child(books) => drop(books.registered.fetch_add(1, Ordering::AcqRel)),
        Counted::Nowhere => {}
    }
    header.waits_on.insert(number, target);
    header.wait_records.fetch_add(1, Ordering::Release);
    // A cycle this closes is looked for once the poll is over (`report_certain_cycle`):
    // now, the task is still running, and another of its branches may yet release
    // what this one waits for.
    Some(WaitRegistration {
        task,
        number,
        counted,
    })
}

impl Drop for WaitRegistration {
    fn drop(&mut self) {
        let header = self.task.header();
        // Taken out under the lock, dropped after it: a record holds `Arc`s of tasks.
        let withdrawn = header.lock_waits_on().remove(self.number);
        header.wait_records.fetch_sub(1, Ordering::Release);
        drop(withdrawn);
        match &self.counted {
            Counted::Task => drop(header.internal_waits.fetch_sub(1, Ordering::AcqRel)),
            Counted::Child(books) => drop(books.registered.fetch_sub(1, Ordering::AcqRel)),
            Counted::Nowhere => {}
        }
    }
}

/// The books a `join_all` keeps on the wakers it made for its children, so that the
/// executor can tell whether the task's waker it holds is held for known waits only.
///
/// A child's waker wakes the `join_all`'s task; where a child awaits a `JoinHandle`
/// or one of our locks, the wait is registered for that task (through the child's
/// waker, while the child is polled: see [`ChildPoll`]). The task's own waker, kept
/// by the `join_all`, then stands only for those waits, unless some child waker is
/// held elsewhere (a timer, another thread): then it is an "outside" waker, and no
/// deadlock is claimed.
#[derive(Debug, Default)]
pub(crate) struct ChildWakers {
    /// Child wakers alive, the `join_all`'s own ones included.
    alive: AtomicUsize,
    /// Those the `join_all` holds itself, one per child it has polled.
    own: AtomicUsize,
    /// Those held by a registered wait.
    registered: AtomicUsize,
    /// The `join_all` is gone: its wakers' releases ask for nothing any more.
    retired: AtomicBool,
}

impl ChildWakers {
    pub(crate) fn waker_created(&self) {
        self.alive.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a child waker gone. Returns whether the executor must look at the task
    /// again: this may have made every child waker outside the `join_all` a known one
    /// (or left none), and a deadlock the executor could not claim before may now be
    /// certain. (A task's own wakers have the same rule: see `waker_released`.)
    #[must_use]
    pub(crate) fn waker_released(&self) -> bool {
        self.alive.fetch_sub(1, Ordering::AcqRel);
        !self.retired.load(Ordering::Acquire) && self.all_known()
    }

    /// The `join_all` is being dropped, its own wakers with it: no need to look again.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// The `join_all` now holds `count` child wakers itself.
    pub(crate) fn set_own(&self, count: usize) {
        self.own.store(count, Ordering::Release);
    }

    /// Whether every child waker not held by the `join_all` is held by a known wait.
    fn all_known(&self) -> bool {
        let alive = self.alive.load(Ordering::Acquire);
        let elsewhere = alive.saturating_sub(self.own.load(Ordering::Acquire));
        elsewhere <= self.registered.load(Ordering::Acquire)
    }
}

thread_local! {
    /// The `join_all` children being polled on this thread, innermost last: each
    /// child's waker (its data pointer) and its `join_all`'s books.
    static CHILD_POLLS: RefCell<Vec<(*const (), Arc<ChildWakers>)>> =
        const { RefCell::new(Vec::new()) };
}

/// Marks a `join_all` child as being polled with `waker`, until dropped: a wait it
/// registers through that waker is the polling task's.
#[derive(Debug)]
pub(crate) struct ChildPoll {
    _not_send: PhantomData<*const ()>,
}

impl ChildPoll {
    pub(crate) fn enter(waker: &Waker, books: &Arc<ChildWakers>) -> ChildPoll {
        CHILD_POLLS.with(|polls| polls.borrow_mut().push((waker.data(), Arc::clone(books))));
        ChildPoll {
            _not_send: PhantomData,
        }
    }
}

impl Drop for ChildPoll {
    fn drop(&mut self) {
        let _ = CHILD_POLLS.try_with(|polls| polls.borrow_mut().pop());
    }
}

/// The books of the `join_all` whose child is being polled with `waker` (or a clone
/// of it), if any.
fn child_books_of(waker: &Waker) -> Option<Arc<ChildWakers>> {
    CHILD_POLLS.with(|polls| {
        let polls = polls.borrow();
        let child = polls.iter().rev().find(|(data, _)| *data == waker.data());
        child.map(|(_, books)| Arc::clone(books))
    })
}

/// Reports the wait cycle through `task`, if there is one and it is certain; called
/// after `task`'s poll returned `Pending`, between polls, when it has known waits.
///
/// A cycle of waits alone is no proof. A task may poll several branches (`join`,
/// `join_all`), and one branch may hold the lock another waits for, to release it when
/// a timer or another thread wakes it: a cycle of the task with itself, and no
/// deadlock at all. So the cycle is reported only when every task it can reach,
/// through any of their waits, is idle, and no waker of any of them is held anywhere
/// but in those waits: then nothing can ever wake one of them. (Until then, the
/// deadlock check, once the whole executor is idle, still finds the cycle if there is
/// one.)
pub(super) fn report_certain_cycle(task: &TaskHeader) {
    // The task is in its own cycle, so it must be stuck too: checked first, as it is
    // cheap, and a task that woke itself (a spent budget, a yield) is not. A `join_all`
    // of a million handles polled a budget at a time would otherwise walk a million
    // waits after each of its thousands of polls.
    if !stuck_for_good(task) {
        return;
    }
    let Some(cycle) = wait_cycle_through(task) else {
        return;
    };
    if reachable_from(task)
        .iter()
        .all(|reached| stuck_for_good(reached.header()))
    {
        task.owner().report_later(Diagnostic::WaitCycle { cycle });
    }
}

/// Every task `start` waits on, and those they wait on, and so on (not `start`
/// itself, unless a cycle comes back to it).
fn reachable_from(start: &TaskHeader) -> Vec<TaskRef> {
    let mut seen: HashSet<*const TaskHeader> = HashSet::new();
    let mut reached = Vec::new();
    let mut next = start.waits_for_tasks();
    while let Some(task) = next.pop() {
        if seen.insert(task.header()) {
            next.extend(task.header().waits_for_tasks());
            reached.push(task);
        }
    }
    reached
}

/// A task that nothing outside the executor's known waits can wake: not queued, not
/// running, not done, no waker held but by a known wait, and no wait on something
/// the executor cannot see.
pub(crate) fn stuck_for_good(task: &TaskHeader) -> bool {
    let state = task.state.load();
    let idle = !state.is_scheduled() && !state.is_running() && !state.is_complete();
    // The count from the same reading as the flags (see `outside_wakers_in`).
    idle && task.outside_wakers_in(state) == 0 && !task.waits_beyond_this_executor()
}

/// The wait cycle through `start`, if any: follows "waits for" through every known
/// wait, depth first, from the tasks `start` waits on; if some path comes back to
/// `start`, returns that cycle, `start` first. Each task is looked at once, and
/// described only once a cycle is found.
pub(super) fn wait_cycle_through(start: &TaskHeader) -> Option<Vec<StuckTask>> {
    let first = start.waits_for_tasks();
    /// A task on the path (`None` for `start`), and the tasks it waits on still to try.
    type Step = (Option<TaskRef>, Vec<TaskRef>);
    let mut seen: HashSet<*const TaskHeader> = HashSet::new();
    let mut path: Vec<Step> = vec![(None, first)];
    while let Some((_, untried)) = path.last_mut() {
        let Some(task) = untried.pop() else {
            path.pop();
            continue;
        };
        let header = task.header();
        if std::ptr::eq(header, start) {
            let on_path = path.iter().filter_map(|(task, _)| task.as_ref());
            let rest = on_path.map(|task| task.header().stuck());
            return Some(std::iter::once(start.stuck()).chain(rest).collect());
        }
        if seen.insert(header) {
            let next = header.waits_for_tasks();
            path.push((Some(task), next));
        }
    }
    None
}

/// Every wait cycle through `headers`, each once (whichever task it is found from).
pub(crate) fn distinct_cycles(headers: &[&TaskHeader]) -> Vec<Vec<StuckTask>> {
    let mut seen: Vec<Vec<TaskId>> = Vec::new();
    let mut cycles = Vec::new();
    for header in headers {
        let Some(cycle) = wait_cycle_through(header) else {
            continue;
        };
        let mut members: Vec<TaskId> = cycle.iter().map(|stuck| stuck.task.id).collect();
        members.sort_by_key(|id| (id.index, id.generation));
        if !seen.contains(&members) {
            seen.push(members);
            cycles.push(cycle);
        }
    }
    cycles
}
