//! Typed errors of composing and installing; each names the path, command
//! or setting involved.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error(transparent)]
    Sysroot(#[from] kiln_sysroot::Error),
    #[error(transparent)]
    Remote(#[from] kiln_remote::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {path}: {why}")]
    Manifest { path: PathBuf, why: String },
    #[error("manifest {path}: unknown package{} {} in {suite}/{arch} (checked with apt-cache before building; fix the name or the suite)", if .packages.len() > 1 { "s" } else { "" }, .packages.join(", "))]
    UnknownPackages {
        path: PathBuf,
        packages: Vec<String>,
        suite: String,
        arch: String,
    },
    #[error("`{cmd}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run `{cmd}`: {source} (is the package that provides it installed? see docs/boot.md)")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a root file system ({1})")]
    NotARootfs(PathBuf, String),
    #[error("{path}: no kernel found (looked for boot/vmlinuz-* and usr/lib/modules/*/vmlinuz)")]
    NoKernel { path: PathBuf },
    #[error("{path}: kernel {kver} has no initramfs (looked for boot/initrd.img-{kver} and usr/lib/modules/{kver}/initramfs.img)")]
    NoInitramfs { path: PathBuf, kver: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{target}: {why}")]
    Target { target: PathBuf, why: String },
    #[error("{target} is too small: {size} bytes, the installation needs at least {needed} bytes ({detail})")]
    TooSmall {
        target: PathBuf,
        size: u64,
        needed: u64,
        detail: String,
    },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn rio(path: &Path, e: rustix::io::Errno) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}
