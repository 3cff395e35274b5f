//! Ctrl-C. The first press asks the run to stop after the current step; a second one also
//! asks the docker command that is running to stop, and a third kills it. Docker commands run
//! in their own process group, so the terminal's SIGINT reaches only this process and it
//! decides.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicUsize, Ordering};

static PRESSES: AtomicUsize = AtomicUsize::new(0);
/// The presses already answered: the run went back to the old server because of them.
static ANSWERED: AtomicUsize = AtomicUsize::new(0);

pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        PRESSES.fetch_add(1, Ordering::SeqCst);
    })
    .context("could not install the Ctrl-C handler")
}

/// Whether the operator asked to stop, since the last press that was answered.
pub fn requested() -> bool {
    PRESSES.load(Ordering::SeqCst) > ANSWERED.load(Ordering::SeqCst)
}

/// The presses so far are answered (the run goes back to the old server for them): only a
/// further one asks to stop.
pub fn answer() {
    ANSWERED.store(PRESSES.load(Ordering::SeqCst), Ordering::SeqCst);
}

/// Whether the operator asked twice: stop the running command too.
pub fn insisted() -> bool {
    PRESSES.load(Ordering::SeqCst) > 1
}

/// Whether the operator asked three times: kill the running command, don't wait for it.
pub fn pressed_thrice() -> bool {
    PRESSES.load(Ordering::SeqCst) > 2
}
