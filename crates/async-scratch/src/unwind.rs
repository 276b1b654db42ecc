//! Catching a panic all the way: its payload's `Drop` is the panicking code's too.
//!
//! Not a step of the tour: a habit the pool, its tasks and the executor share, written
//! once.
//! `catch_unwind` stops a panic and hands back its *payload*, a `Box<dyn Any + Send>`
//! holding whatever the code passed to `panic!` or `std::panic::panic_any`. Dropping
//! that box runs the payload's own `Drop`, which is user code and may panic in turn.
//! That second panic is outside the `catch_unwind` that stopped the first: on a pool
//! worker it would end the thread, and the jobs queued behind it would never run. So a
//! caught payload is never just dropped; it goes through [`drop_payload`].
//!
//! (A `Drop` that panics *while* a panic unwinds through it aborts the process, and no
//! catching can help; this is about the payload, which is dropped after the unwinding.)

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What `catch_unwind` returns when the code it ran panicked.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Drops a caught panic's payload, catching a panic from the payload's `Drop`.
///
/// That second panic carries a payload of its own, whose `Drop` could panic again, and
/// so on without end. To stay bounded, the second payload is dropped only when it is
/// text (what `panic!` throws, whose drop cannot panic) and forgotten otherwise: a leak
/// of one allocation, for a payload whose `Drop` panics with a payload whose `Drop` may
/// panic, is a fair price for a worker that never dies of it.
pub(crate) fn drop_payload(payload: Payload) {
    // `AssertUnwindSafe`: the closure owns the payload and nothing else, and nothing of
    // a payload whose drop panicked is ever looked at again.
    let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) else {
        return;
    };
    if is_text(&*second) {
        drop(second);
    } else {
        std::mem::forget(second);
    }
}

/// The message of a caught panic, its payload then dropped through [`drop_payload`]:
/// what every catcher of user code wants, written once.
pub(crate) fn into_message(payload: Payload) -> String {
    let message = panic_message(&*payload);
    drop_payload(payload);
    message
}

/// The text of a panic: `panic!("literal")` carries a `&str`, `panic!("{x}")` a `String`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic with a non-string payload)".to_string()
    }
}

/// Whether `payload` is the text `panic!` throws: a `&'static str` for a literal
/// message, a `String` for a formatted one. Dropping either cannot panic.
fn is_text(payload: &(dyn Any + Send)) -> bool {
    payload.is::<&'static str>() || payload.is::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both shapes of panic payload give their text; anything else a placeholder.
    #[test]
    fn panic_messages_are_read_from_either_payload() {
        assert_eq!(panic_message(&"literal"), "literal");
        assert_eq!(panic_message(&String::from("formatted")), "formatted");
        assert_eq!(panic_message(&7_u8), "(a panic with a non-string payload)");
    }
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// How many `PanicsWithItselfWhenDropped` were dropped. Only the one test below
    /// makes any, so no other test disturbs the count.
    static CHAIN_DROPS: AtomicUsize = AtomicUsize::new(0);

    /// A payload whose `Drop` counts itself, then panics with a payload just like it:
    /// dropped naively, the chain of panics would never end. It has no fields, so its
    /// box allocates nothing and forgetting one leaks nothing (Miri checks leaks).
    struct PanicsWithItselfWhenDropped;

    impl Drop for PanicsWithItselfWhenDropped {
        fn drop(&mut self) {
            CHAIN_DROPS.fetch_add(1, Ordering::Relaxed);
            std::panic::panic_any(PanicsWithItselfWhenDropped);
        }
    }

    /// A payload whose drop panics with a payload whose drop would panic again: the
    /// first drop's panic is caught, the second payload is forgotten, not dropped (one
    /// drop in all), and `drop_payload` returns.
    #[test]
    fn a_chain_of_panicking_payloads_stops_after_the_first() {
        let outcome = catch_unwind(|| drop_payload(Box::new(PanicsWithItselfWhenDropped)));
        if let Err(escaped) = outcome {
            // Dropped, it would panic once more, in the test harness, which then never
            // reports this test: forgotten, the test fails with a message instead.
            std::mem::forget(escaped);
            panic!("a panic escaped `drop_payload`");
        }
        assert_eq!(CHAIN_DROPS.load(Ordering::Relaxed), 1);
    }

    /// A payload whose drop panics with a message: the message is dropped, not
    /// forgotten, so nothing leaks (Miri checks that). Text is told from other payloads.
    #[test]
    fn a_text_payload_from_a_panicking_drop_is_dropped() {
        struct PanicsWithTextWhenDropped;
        impl Drop for PanicsWithTextWhenDropped {
            fn drop(&mut self) {
                panic!("deliberate panic while dropping a panic payload");
            }
        }
        drop_payload(Box::new(PanicsWithTextWhenDropped));
        assert!(is_text(&"literal"));
        assert!(is_text(&String::from("formatted")));
        assert!(!is_text(&7_u8));
    }
}
