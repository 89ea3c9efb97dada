//! Typed errors of the store. Each carries the path, object or ref involved.

use crate::checksum::Checksum;
use crate::object::{ObjectError, ObjectType};
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not an OSTree repository (no config, objects/ or refs/)")]
    NotARepo(PathBuf),
    #[error("{path}: malformed config: {why}")]
    Config { path: PathBuf, why: String },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("No such metadata object {csum}.{ty}")]
    MissingObject { csum: Checksum, ty: ObjectType },
    #[error("Corrupted {ty} object {csum}: {why}")]
    Corrupt {
        csum: Checksum,
        ty: ObjectType,
        why: String,
    },
    #[error("Refspec '{0}' not found")]
    RefNotFound(String),
    #[error("Invalid refspec {0}")]
    BadRef(String),
    #[error("Commit {0} has no parent")]
    NoParent(Checksum),
    #[error("Not a regular file or symlink: {0}")]
    UnsupportedFileType(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("No such file or directory: {0}")]
    NoSuchPath(String),
    #[error("{path}: not enough space: {needed}")]
    NoSpace { path: PathBuf, needed: String },
    #[error("{0}")]
    Object(#[from] ObjectError),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("No space left on device"),
            };
        }
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn rio(path: &Path, source: rustix::io::Errno) -> Error {
        Error::io(path, std::io::Error::from(source))
    }

    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }

    pub fn corrupt(csum: Checksum, ty: ObjectType, why: impl Into<String>) -> Error {
        Error::Corrupt {
            csum,
            ty,
            why: why.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Error::MissingObject { .. } | Error::RefNotFound(_) => true,
            _ => false,
        }
    }
}
