//! Which runtime, and which of its workers, the current thread belongs to.
//!
//! Step 7 introduces it: `runtime::spawn` needs a runtime without being handed one,
//! a wake needs to know whether it happens on a worker (its own queue) or elsewhere
//! (the injector), and `block_on` must refuse to run on a worker.

use std::cell::RefCell;
use std::sync::Arc;

use super::worker::Shared;

struct Current {
    shared: Arc<Shared>,
    worker: Option<usize>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Makes `shared` the current runtime on this thread (`worker`: which worker this
/// thread is, `None` inside `block_on`), until the guard is dropped.
pub(crate) fn enter(shared: Arc<Shared>, worker: Option<usize>) -> Entered {
    let previous = CURRENT.with(|current| current.replace(Some(Current { shared, worker })));
    Entered { previous }
}

/// The guard of [`enter`]: puts back what was current before.
pub(crate) struct Entered {
    previous: Option<Current>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let replaced = CURRENT.try_with(|current| current.replace(previous));
        drop(replaced);
    }
}

/// The current runtime, if any.
pub(crate) fn shared() -> Option<Arc<Shared>> {
    CURRENT
        .try_with(|current| current.borrow().as_ref().map(|c| c.shared.clone()))
        .ok()
        .flatten()
}

/// The current worker's index, whatever its runtime.
pub(crate) fn worker() -> Option<usize> {
    CURRENT
        .try_with(|current| current.borrow().as_ref().and_then(|c| c.worker))
        .ok()
        .flatten()
}

/// The current worker's index if it is one of `shared`'s workers.
pub(crate) fn worker_of(shared: &Shared) -> Option<usize> {
    CURRENT
        .try_with(|current| {
            current
                .borrow()
                .as_ref()
                .filter(|c| std::ptr::eq(Arc::as_ptr(&c.shared), shared))
                .and_then(|c| c.worker)
        })
        .ok()
        .flatten()
}
