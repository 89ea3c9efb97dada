//! Typed errors of remotes and pulls. Each names the remote and, where
//! there is one, the object, ref or URL involved.

use kiln_store::{Checksum, ObjectType};
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Remote \"{0}\" not found")]
    NoSuchRemote(String),
    #[error("Remote configuration for \"{0}\" already exists")]
    RemoteExists(String),
    #[error("remote {remote}: {why}")]
    RemoteConfig { remote: String, why: String },
    /// A transport failure (connection, timeout, HTTP status) after retries.
    #[error("remote {remote}: fetching {url}: {why}")]
    Fetch {
        remote: String,
        url: String,
        why: String,
    },
    /// The server answered 404 for something required.
    #[error("remote {remote}: {url}: not found (404)")]
    NotFound { remote: String, url: String },
    /// Bytes the server sent for an object are not that object.
    #[error("remote {remote}: object {csum}.{ty}: {why}")]
    BadObject {
        remote: String,
        csum: Checksum,
        ty: ObjectType,
        why: String,
    },
    #[error("remote {remote}: summary: {why}")]
    Summary { remote: String, why: String },
    #[error("remote {remote}: {what}: {why}")]
    Signature {
        remote: String,
        what: String,
        why: String,
    },
    #[error("remote {remote}: No such branch '{name}' in summary (or refs/heads)")]
    RefNotFound { remote: String, name: String },
    #[error("{0}")]
    Downgrade(Box<Downgrade>),
    #[error("remote {remote}: commit {commit} is not bound to ref {name} (ostree.ref-binding = {bound:?})")]
    RefBinding {
        remote: String,
        name: String,
        commit: Checksum,
        bound: Vec<String>,
    },
    #[error("remote {remote}: static delta {name}: {why}")]
    Delta {
        remote: String,
        name: String,
        why: String,
    },
    #[error("remote {remote}: {why}")]
    Unsupported { remote: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn bad_object(
        remote: &str,
        csum: Checksum,
        ty: ObjectType,
        why: impl Into<String>,
    ) -> Error {
        Error::BadObject {
            remote: remote.to_string(),
            csum,
            ty,
            why: why.into(),
        }
    }
}

/// A commit older than the local one (see [`Error::Downgrade`]).
#[derive(Debug)]
pub struct Downgrade {
    pub remote: String,
    pub name: String,
    pub old: Checksum,
    pub old_ts: u64,
    pub new: Checksum,
    pub new_ts: u64,
}

impl std::fmt::Display for Downgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "remote {}: ref {}: commit {} (timestamp {}) is older than the local commit {} (timestamp {}); \
             refusing to downgrade (use --allow-downgrade)",
            self.remote, self.name, self.new, self.new_ts, self.old, self.old_ts
        )
    }
}
