//! kiln-store: an OSTree-compatible content-addressed object store.
//!
//! Objects, checksums and GVariant encodings byte for byte as libostree
//! writes them; the four repo modes; commit, checkout, refs, fsck, prune.
//! This crate never prints; it returns typed errors and values.
#![forbid(unsafe_code)]

pub mod checkout;
pub mod checksum;
pub mod commit;
mod commit_walk;
pub mod datetime;
pub mod diff;
pub mod error;
pub mod failpoint;
pub mod fsck;
pub mod gvariant;
pub mod keyfile;
pub mod mtree;
pub mod object;
pub mod progress;
pub mod prune;
pub mod refs;
pub mod repo;
mod tar_import;
pub mod util;
pub mod walk;

pub use checksum::Checksum;
pub use error::{Error, Result};
pub use object::ObjectType;
pub use progress::Progress;
pub use repo::{Repo, RepoMode};
