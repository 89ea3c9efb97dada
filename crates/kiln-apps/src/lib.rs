//! kiln-apps: Flatpak-compatible apps and runtimes.
//!
//! - [`appref`]: `app/ID/ARCH/BRANCH` and `runtime/…` refs;
//! - [`metadata`] and [`context`]: the `metadata` keyfile and permissions
//!   (with `!` negation, localized keys, unknown values refused);
//! - [`installation`]: the on-disk layout (Flatpak's), atomic `active`
//!   switches, the kept previous commit, history;
//! - [`remotes`], [`install`]: remotes, install/update/rollback/uninstall;
//! - [`build`]: `build-init`, `build-finish`, `build-export`,
//!   `build-update-repo` (Flatpak's commit metadata and summary cache);
//! - [`bundle`]: Flatpak single-file bundles (`build-bundle`,
//!   `build-import-bundle`);
//! - [`launch`]: the sandbox for `run` and `build` (via kiln-sandbox);
//! - [`overrides`], [`instances`], [`exports`].
//!
//! This crate never prints and reads no environment variables: the CLI
//! passes a [`launch::HostEnv`].
#![forbid(unsafe_code)]

pub mod appref;
pub mod build;
pub mod bundle;
pub mod context;
pub mod error;
pub mod exports;
pub mod install;
pub mod installation;
pub mod instances;
pub mod launch;
pub mod metadata;
pub mod overrides;
pub mod remotes;

pub use appref::{AppRef, Kind};
pub use error::{Error, Result};
pub use installation::{Installation, Scope};
pub use metadata::Metadata;
