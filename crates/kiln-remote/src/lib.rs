//! kiln-remote: OSTree remotes — the `[remote "NAME"]` config, transports
//! (`http://`, `https://`, `file://`), the summary, ed25519 signatures,
//! `pull`/`pull-local`, static deltas and a small static HTTP server.
//!
//! HTTP is `ureq` (blocking HTTP/1.1): a pull runs N worker threads that
//! share one agent and its keep-alive connection pool, which keeps the
//! code synchronous like the store it writes into, with no async runtime;
//! TLS is rustls with the system CA store. This crate never prints.
//!
//! Entry points: [`pull()`], [`pull_local()`], [`remote`] (config),
//! [`summary`] (parse/generate/view), [`sign`] (ed25519), [`serve`].
#![forbid(unsafe_code)]

pub mod delta;
pub mod error;
pub mod fetch;
pub mod ghash;
pub mod local;
pub mod pull;
pub mod remote;
pub mod serve;
pub mod sign;
pub mod summary;

pub use error::{Error, Result};
pub use fetch::NetOptions;
pub use local::{pull_local, PullLocalOptions};
pub use pull::{pull, PullOptions, PullResult, PulledRef, RefRequest, Via};
