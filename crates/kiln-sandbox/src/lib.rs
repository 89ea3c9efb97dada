//! kiln-sandbox: what `kiln app run` needs to confine an app.
//!
//! - [`seccomp`]: a classic-BPF seccomp filter generated in Rust (no
//!   libseccomp), with Flatpak's blocklist, handed to `bwrap --seccomp FD`.
//! - [`bwrap`]: the bubblewrap command line for a [`bwrap::SandboxSpec`]:
//!   runtime at `/usr`, app at `/app`, fresh `/proc`, minimal `/dev`,
//!   private `/tmp` and `/run/user/UID`, new namespaces, and only the host
//!   files, sockets and devices that were granted.
//! - [`dbus`]: the `xdg-dbus-proxy` arguments for a session-bus policy.
//!
//! This crate never prints, never reads the environment and never spawns
//! anything: it returns values; the caller runs them.
#![forbid(unsafe_code)]

pub mod bwrap;
pub mod dbus;
pub mod seccomp;

pub use bwrap::{Bind, BindMode, DataFile, SandboxSpec};
pub use seccomp::{SeccompOptions, SockFilter};
