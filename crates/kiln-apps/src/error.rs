//! Typed errors of kiln-apps; each carries the ref, app, path or remote.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error(transparent)]
    Remote(#[from] kiln_remote::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid metadata{}: {why}", at(.what))]
    Metadata { what: String, why: String },
    #[error("unknown {kind} \u{201c}{value}\u{201d}, valid {kind}s are: {valid}")]
    UnknownPermission {
        kind: &'static str,
        value: String,
        valid: String,
    },
    #[error("invalid ref \u{201c}{name}\u{201d}: {why}")]
    InvalidRef { name: String, why: String },
    #[error("{0} is not installed")]
    NotInstalled(String),
    #[error("{0} is already installed")]
    AlreadyInstalled(String),
    #[error("nothing matches \u{201c}{name}\u{201d} in remote {remote}")]
    RefNotFound { name: String, remote: String },
    #[error("\u{201c}{name}\u{201d} matches several refs in remote {remote}: {candidates} (give the full ref)")]
    Ambiguous {
        name: String,
        remote: String,
        candidates: String,
    },
    #[error("runtime {runtime}, needed by {app}, is not installed and no remote has it (searched: {searched})")]
    RuntimeNotFound {
        runtime: String,
        app: String,
        searched: String,
    },
    #[error(
        "{app}: no previous commit is kept locally (rollback needs one earlier install or update)"
    )]
    NoPrevious { app: String },
    #[error(
        "commit {commit} of {name}: its xa.metadata does not match its metadata file; refusing it"
    )]
    MetadataMismatch { name: String, commit: String },
    #[error("commit {commit} of {name}: the metadata in the remote's summary differs from the commit's; refusing it")]
    SummaryMismatch { name: String, commit: String },
    #[error("remote {0} does not exist")]
    NoSuchRemote(String),
    #[error("remote {0} already exists")]
    RemoteExists(String),
    #[error("{0} is needed by installed apps: {1}")]
    RuntimeInUse(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error("no running instance {0}")]
    NoSuchInstance(String),
}

fn at(what: &str) -> String {
    if what.is_empty() {
        String::new()
    } else {
        format!(" ({what})")
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn metadata(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Metadata {
            what: what.into(),
            why: why.into(),
        }
    }
}
