//! Ctrl-C: SIGINT in, a process-wide flag out that `execute` polls to cancel running actions
//! and start nothing new.
//!
//! The handler only stores to an atomic, which is async-signal-safe; all real work (killing
//! process groups, reporting) happens on normal threads that poll the flag.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT handler. Actions run in their own process groups, so the terminal's
/// SIGINT reaches only forge, which then kills them itself.
pub fn install_interrupt_handler() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        // Restart interrupted system calls: the flag is polled, nothing needs EINTR.
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only performs an atomic store, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGINT, &action) }.map(drop)
}

/// The flag the handler sets; `execute` watches it.
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// Clears the flag (for a long-lived process that keeps building after an interruption).
pub fn clear_interrupt() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigint_sets_the_flag_instead_of_killing_us() -> nix::Result<()> {
        install_interrupt_handler()?;
        nix::sys::signal::raise(Signal::SIGINT)?;
        // `raise` delivers to this thread before returning.
        assert!(interrupt_flag().load(Ordering::SeqCst));
        clear_interrupt();
        assert!(!interrupt_flag().load(Ordering::SeqCst));
        Ok(())
    }
}
