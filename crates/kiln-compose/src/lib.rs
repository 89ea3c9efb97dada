//! kiln-compose: turn a Debian root file system into an OSTree OS tree and
//! commit it ([`transform`], [`debian`]), and install a sysroot onto a
//! disk or image with a bootloader ([`install`]).
//!
//! This crate never prints: steps are reported through a [`Log`] callback
//! and results are returned as values.
#![forbid(unsafe_code)]

pub mod debian;
mod error;
pub mod install;
pub mod layer;
pub mod manifest;
pub mod pieces;
mod run;
pub mod transform;

pub use error::{Error, Result};
pub use manifest::Manifest;
pub use transform::{transform, TransformReport};

/// Receives one line per step (the CLI prints them).
pub type Log<'a> = &'a dyn Fn(&str);
