//! Typed errors of the sysroot. Texts follow `ostree admin` where it has
//! one, so scripts and people see the same words; each carries the path,
//! deployment or index involved.

use std::path::{Path, PathBuf};

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
    #[error("{0}: not an OSTree sysroot (no ostree/repo; see `kiln admin init-fs`)")]
    NotASysroot(PathBuf),
    #[error("loading sysroot: {0}")]
    Load(#[source] Box<Error>),
    #[error("Parsing deployment {bootlink} in stateroot '{osname}'")]
    ParseDeployment {
        bootlink: String,
        osname: String,
        #[source]
        source: Box<Error>,
    },
    #[error("Parsing {path}: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("Invalid ostree= argument '{0}', expected ostree=/ostree/boot.BOOTVERSION/OSNAME/BOOTCSUM/TREESERIAL")]
    BadBootlink(String),
    #[error("{0}: No ostree= kernel argument found")]
    NoOstreeKarg(PathBuf),
    #[error("Invalid deploy name '{0}', expected CHECKSUM.TREESERIAL")]
    BadDeployName(String),
    #[error("Invalid target '{target}' in {path}")]
    BadLink { path: PathBuf, target: String },
    #[error("Failed to find kernel in /usr/lib/modules, /usr/lib/ostree-boot or /boot")]
    NoKernel { deployment: PathBuf },
    #[error("No PRETTY_NAME or ID in {0}")]
    NoOsName(PathBuf),
    #[error("Out of range deployment index {index}, expected < {len}")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("Not currently booted into an OSTree system")]
    NotBooted,
    #[error("Cannot stage deployment: Not currently booted into an OSTree system")]
    CannotStage,
    #[error("Not currently booted into an OSTree system and no --os= argument given")]
    NoOsname,
    #[error("stateroot '{osname}' does not exist ({path}: No such file or directory); create it with `kiln admin os-init {osname}`")]
    NoStateroot { osname: String, path: PathBuf },
    #[error("Creating ostree/deploy/{0}: File exists")]
    StaterootExists(String),
    #[error("invalid stateroot name '{0}'")]
    BadOsname(String),
    #[error("Cannot undeploy currently booted deployment {0}")]
    UndeployBooted(usize),
    #[error("Attempting to remove booted deployment {0}")]
    RemovesBooted(String),
    #[error(
        "Attempting to remove deployment {0}, whose /usr is live (kiln apply-live); reboot first"
    )]
    RemovesLive(String),
    #[error("Cannot pin staged deployment")]
    PinStaged,
    #[error("Unable to find a deployment in sysroot")]
    NoDeployments,
    #[error("{0}")]
    Kargs(String),
    #[error("Tree contains both /etc and /usr/etc: {0}")]
    BothEtc(PathBuf),
    #[error("During /etc merge: {path}: {why}")]
    EtcMerge { path: PathBuf, why: String },
    #[error("not enough space on {fs} ({path}): {needed} needed, {available} available; {hint}")]
    NoSpace {
        fs: &'static str,
        path: PathBuf,
        needed: String,
        available: String,
        hint: String,
    },
    #[error("locking {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("Loading staged deployment: {0}")]
    Staged(String),
    #[error(
        "{0} is not the booted system: a live apply needs the running system (nothing to apply to)"
    )]
    LiveNotBooted(PathBuf),
    #[error(
        "/usr is unlocked (kiln usroverlay): a live apply would hide its changes; reboot first"
    )]
    LiveUnlocked,
    #[error("/usr is already unlocked (transient overlay until reboot)")]
    AlreadyUnlocked,
    #[error("refusing to apply live: the kernel changes ({}); nothing was changed (without --apply-live the change is deployed for the next boot)", .0.join(", "))]
    LiveKernel(Vec<String>),
    #[error("refusing to apply live: {} file(s) of the base image would change or disappear: {}; use --allow-replacement (running programs keep the old files until restarted); nothing was changed (without --apply-live the change is deployed for the next boot)", .0.len(), .0.join(" "))]
    LiveReplaces(Vec<String>),
    #[error("{what} {path}: {source}")]
    LiveMount {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("deployment {deployment} is the default (the next boot runs it) but the running system was not switched to it; `kiln apply-live` retries")]
    LiveSwitch {
        deployment: String,
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

    pub fn rio(path: &Path, e: rustix::io::Errno) -> Error {
        Error::io(path, std::io::Error::from(e))
    }

    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    /// True when the error means "no such file".
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Error::Store(e) => e.is_not_found(),
            _ => false,
        }
    }
}
