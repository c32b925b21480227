//! Stopping a digest: the process-wide stop request that Ctrl-C sets.
//!
//! Ctrl-C (SIGINT) asks the run to stop: the paper being written stops at its next section
//! (the writer asks through `Observer::cancelled`), downloads not yet started are skipped,
//! papers already finished are kept (in the digest written on the way out and in the summary
//! cache, `digest::cache`), and the CLI says how to resume: the same command again, which finds
//! every finished paper in the summary cache. A second Ctrl-C exits at once; that is safe too,
//! because every file the tool writes is replaced atomically.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicU32 = AtomicU32::new(0);

/// Asks the running digest to stop at the next paper or section boundary.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Forgets a stop request (tests that run several digests in one process).
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// Installs the Ctrl-C handler: the first press requests a stop, the second exits with
/// status 130 at once.
pub fn install_ctrlc_handler() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
            request_stop();
            eprintln!(
                "\nstopping after the current section (finished papers are kept); \
                 press Ctrl-C again to quit at once"
            );
        } else {
            eprintln!("\nquitting");
            std::process::exit(130);
        }
    })
}
