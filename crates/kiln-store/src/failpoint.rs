//! Named fail points for crash tests.
//!
//! The CLI reads `KILN_FAILPOINT` (a comma-separated list of names) and
//! calls [`set`]; when execution reaches a named point, the process kills
//! itself with SIGKILL, as a power cut or `kill -9` would, leaving whatever
//! is on disk at that instant.

use std::sync::OnceLock;

static ACTIVE: OnceLock<Vec<String>> = OnceLock::new();

/// Arm fail points (first call wins).
pub fn set(names: &str) {
    let _ = ACTIVE.set(
        names
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    );
}

/// Die here if `name` is armed.
pub fn hit(name: &str) {
    if let Some(active) = ACTIVE.get() {
        if active.iter().any(|a| a == name) {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
            // SIGKILL cannot be caught; we never get here.
            std::process::abort();
        }
    }
}
