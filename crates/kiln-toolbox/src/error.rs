//! Typed errors of the toolbox library.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in `kiln toolbox`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such toolbox container: {0}")]
    NoSuchContainer(String),

    #[error("no such toolbox image: {0}")]
    NoSuchImage(String),

    #[error("{name} names several images ({ids}); give an id")]
    AmbiguousImage { name: String, ids: String },

    #[error("toolbox container {0} already exists")]
    ContainerExists(String),

    #[error(
        "invalid container name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidName(String),

    #[error("image {image} is used by container(s) {containers}; remove them first")]
    ImageInUse { image: String, containers: String },

    #[error("toolbox container {0} is running; use rm -f to stop and remove it")]
    ContainerRunning(String),

    #[error(
        "user {user} (uid {uid}) has no subordinate {kind} range in {file}; as root, add the line \
         \"{user}:{start}:65536\" to both /etc/subuid and /etc/subgid \
         (or run: usermod --add-subuids {start}-{end} --add-subgids {start}-{end} {user})"
    )]
    NoSubordinateIds {
        user: String,
        uid: u32,
        kind: &'static str,
        file: &'static str,
        start: u64,
        end: u64,
    },

    #[error("{tool} is not installed ({hint})")]
    MissingTool { tool: String, hint: &'static str },

    #[error("{command} failed ({status}){detail}")]
    CommandFailed {
        command: String,
        status: String,
        detail: String,
    },

    #[error("invalid OCI image {path}: {reason}")]
    InvalidImage { path: PathBuf, reason: String },

    #[error("refusing layer {layer}: entry {entry:?} {reason}")]
    UnsafeLayer {
        layer: String,
        entry: String,
        reason: String,
    },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("corrupt metadata {path}: {source}")]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot set up the container ({step}): {source}")]
    Namespace {
        step: String,
        #[source]
        source: io::Error,
    },

    #[error("command {command} not found in container {container}")]
    CommandNotFound { command: String, container: String },

    #[error("unsupported: {0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach an operation and a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            op,
            path: path.into(),
            source: e.into(),
        })
    }
}

/// A namespace or mount step failed.
pub(crate) fn ns_err(step: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> Error {
    let step = step.into();
    move |e| Error::Namespace {
        step,
        source: e.into(),
    }
}
