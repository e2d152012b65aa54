//! Cooperative cancellation of long operations.
//!
//! A step can take seconds (a Gram product of a 512² trajectory with 4096 units takes a
//! minute on two cores). Whoever runs it hands the method a [`CancelToken`]; another thread
//! sets it when the step's result is no longer wanted (a parameter changed, the image changed,
//! the user paused or closed the window). Long operations check it between their chunks and
//! give up with [`Cancelled`]; a method whose step was cancelled is left as it was before the
//! step (see [`crate::methods::Method::step`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

#[derive(Debug)]
struct Flag {
    cancelled: AtomicBool,
    /// Checks left before the token cancels itself (negative: never), for tests that cancel
    /// a step at every point it checks.
    checks_left: AtomicI64,
}

/// A shared flag: set once by whoever no longer wants the result, read by the computation.
#[derive(Clone, Debug)]
pub struct CancelToken(Arc<Flag>);

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken(Arc::new(Flag {
            cancelled: AtomicBool::new(false),
            checks_left: AtomicI64::new(-1),
        }))
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop at its next check.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// Clears the flag so the same run can go on (after a pause, for instance).
    pub fn reset(&self) {
        self.0.checks_left.store(-1, Ordering::Relaxed);
        self.0.cancelled.store(false, Ordering::Relaxed);
    }

    /// Cancels itself at the `checks`-th check from now (0: the next one).
    #[cfg(feature = "testing")]
    pub fn cancel_after_checks(&self, checks: i64) {
        self.0.checks_left.store(checks, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        if self.0.cancelled.load(Ordering::Relaxed) {
            return true;
        }
        if self.0.checks_left.load(Ordering::Relaxed) >= 0
            && self.0.checks_left.fetch_sub(1, Ordering::Relaxed) == 0
        {
            self.cancel();
            return true;
        }
        false
    }

    /// `Err(Cancelled)` once cancelled: `token.check()?` between chunks.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A computation stopped because its [`CancelToken`] was set. Travels inside `anyhow::Error`
/// through method steps; [`is_cancelled_error`] recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// Whether a step's error is a cancellation rather than a failure.
pub fn is_cancelled_error(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Cancelled>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_sees_the_cancellation_and_reset_clears_it() {
        let token = CancelToken::new();
        let held = token.clone();
        assert!(held.check().is_ok());
        token.cancel();
        assert_eq!(held.check(), Err(Cancelled));
        let error = anyhow::Error::from(Cancelled);
        assert!(is_cancelled_error(&error));
        assert!(!is_cancelled_error(&anyhow::anyhow!("boom")));
        token.reset();
        assert!(!held.is_cancelled());
    }
}
