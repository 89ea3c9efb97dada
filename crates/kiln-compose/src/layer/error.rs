//! Typed errors of package layering; each names the package, file or
//! command involved.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error(transparent)]
    Compose(#[from] crate::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot resolve {what}: {detail}")]
    Resolve { what: String, detail: String },
    #[error("{path}: not a usable Debian package: {why}")]
    BadDeb { path: PathBuf, why: String },
    #[error("{path}: package {package} is built for architecture {arch}, this system is {host}")]
    ForeignArch {
        path: PathBuf,
        package: String,
        arch: String,
        host: String,
    },
    #[error("installing would remove base package{} {} (remove {} explicitly with `kiln override remove`)", if .0.len() > 1 { "s" } else { "" }, .0.join(", "), if .0.len() > 1 { "them" } else { "it" })]
    WouldRemove(Vec<String>),
    #[error("package {0} is not installed in the base")]
    NotInBase(String),
    /// `summary`: dpkg's own error lines; `log`: the end of its output.
    #[error("dpkg failed in the new tree: {summary}\n{log}")]
    Dpkg { summary: String, log: String },
    #[error("`{cmd}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run `{cmd}`: {source} (is the package that provides it installed? see docs/layering.md)")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub(crate) fn io<T>(p: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Error::io(p, e))
}
