//! Typed errors of static deltas.

use kiln_store::Checksum;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The superblock or a part is not what the format says.
    #[error("malformed static delta {what}: {why}")]
    Malformed { what: String, why: String },
    #[error("Checksum mismatch in static delta part {part}; expected={expected} actual={actual}")]
    PartChecksum {
        part: String,
        expected: Checksum,
        actual: Checksum,
    },
    #[error(
        "Corrupted {what} object in static delta; checksum expected='{expected}' actual='{actual}'"
    )]
    ObjectChecksum {
        what: &'static str,
        expected: Checksum,
        actual: Checksum,
    },
    #[error("Commit {0}, which is the delta source, is not in repository")]
    MissingSource(Checksum),
    #[error("Cannot execute delta offline: contains nonempty http fallback entries")]
    HasFallback,
    #[error("Delta part has too new version {0}")]
    TooNewVersion(u32),
    #[error("Can't find delta {0}")]
    NotFound(String),
    #[error("Invalid delta name {0:?}: expected FROM-TO or TO checksums")]
    BadName(String),
    #[error("Executing delta part {part}: {why}")]
    Exec { part: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = DeltaError> = std::result::Result<T, E>;

impl DeltaError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DeltaError {
        DeltaError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, why: impl Into<String>) -> DeltaError {
        DeltaError::Malformed {
            what: what.into(),
            why: why.into(),
        }
    }
}
