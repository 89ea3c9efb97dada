//! kiln-sysroot: deployments of an OSTree sysroot, byte for byte as
//! `ostree admin` 2022.7 lays them out.
//!
//! A [`Sysroot`] is loaded from the bootloader entries of the current
//! `/boot/loader` (the source of truth, as in libostree). Changing the set
//! of deployments writes the other `loader.N`, syncs, and swaps the
//! `/boot/loader` symlink: that rename is the one commit point.
//!
//! This crate never prints: messages that `ostree admin` prints are handed
//! to the caller's [`MessageSink`]; errors are typed ([`Error`]).
#![forbid(unsafe_code)]

pub mod bootconfig;
pub mod bootcount;
pub mod bootloader_grub;
mod cleanup;
mod deploy;
pub mod deployment;
pub mod diff;
pub mod du;
mod error;
mod etc_merge;
mod fsutil;
mod init;
pub mod kargs;
mod kernel;
pub mod live;
mod load;
mod lock;
pub mod space;
mod stage;
pub mod status;
mod sysroot;
mod verscmp;
mod write;

pub use cleanup::CleanupReport;
pub use deploy::{DeployOptions, WriteFlags};
pub use deployment::{Deployment, DeploymentId};
pub use error::{Error, Result};
pub use init::{init_fs, InitFsOptions};
pub use kargs::KernelArgs;
pub use kernel::KernelLayout;
pub use sysroot::{MessageSink, Sysroot, SysrootOptions};
pub use write::WriteOutcome;
