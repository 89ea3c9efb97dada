//! kiln-apps: Flatpak-compatible apps and runtimes.
#![forbid(unsafe_code)]
