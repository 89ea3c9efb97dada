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
    /// The file system of the repo (where the tree is built) filled up.
    #[error("no space left on the file system of {} ({free} free after cleaning up): {source}", .repo.display())]
    NoSpace {
        repo: PathBuf,
        free: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the error, or one of its causes, is ENOSPC (raised by kiln
    /// or reported by dpkg, apt or a maintainer script).
    pub fn is_enospc(&self) -> bool {
        let enospc = rustix::io::Errno::NOSPC.raw_os_error();
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(x) = e {
            let io = x
                .downcast_ref::<std::io::Error>()
                .is_some_and(|i| i.raw_os_error() == Some(enospc));
            if io || x.to_string().contains("No space left on device") {
                return true;
            }
            e = x.source();
        }
        false
    }
}

pub(crate) fn io<T>(p: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Error::io(p, e))
}
