//! kiln-store: an OSTree-compatible content-addressed object store.
//!
//! This crate never prints; it returns typed errors and values.
#![forbid(unsafe_code)]

pub mod gvariant;
