//! The [`Sysroot`] handle: where it is, whether it is the booted system, the
//! loaded deployment list, the lock, and the message sink.

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::lock::SysrootLock;
use crate::stage::StagedState;
use kiln_store::Repo;
use std::path::{Path, PathBuf};

/// Receives the lines `ostree admin` prints (e.g. `Bootloader updated; …`).
pub type MessageSink = Box<dyn Fn(&str) + Send + Sync>;

/// Where the sysroot is and how to tell whether it is booted. The CLI fills
/// this from its flags; tests point `root` and `run_dir` elsewhere.
#[derive(Debug, Clone)]
pub struct SysrootOptions {
    /// The physical root holding `ostree/` and `boot/` (`/` when booted:
    /// `/ostree` is a symlink to `sysroot/ostree` inside a deployment).
    pub path: PathBuf,
    /// The running system's root, compared with deployments to find the
    /// booted one (`/`).
    pub root: PathBuf,
    /// Runtime state: `ostree-booted`, `ostree/staged-deployment` (`/run`).
    pub run_dir: PathBuf,
}

impl Default for SysrootOptions {
    fn default() -> Self {
        SysrootOptions {
            path: PathBuf::from("/"),
            root: PathBuf::from("/"),
            run_dir: PathBuf::from("/run"),
        }
    }
}

impl SysrootOptions {
    pub fn at(path: impl Into<PathBuf>) -> SysrootOptions {
        SysrootOptions {
            path: path.into(),
            ..Default::default()
        }
    }
}

pub struct Sysroot {
    pub(crate) opts: SysrootOptions,
    pub(crate) repo: Repo,
    /// `/run/ostree-booted` exists and the sysroot is `/`.
    pub(crate) root_is_booted: bool,
    pub(crate) root_id: Option<(u64, u64)>,
    pub(crate) bootversion: u32,
    pub(crate) subbootversion: u32,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) booted: Option<usize>,
    pub(crate) staged: Option<StagedState>,
    pub(crate) lock: Option<SysrootLock>,
    pub(crate) sink: Option<MessageSink>,
}

impl std::fmt::Debug for Sysroot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sysroot")
            .field("path", &self.opts.path)
            .field("bootversion", &self.bootversion)
            .field("subbootversion", &self.subbootversion)
            .field("deployments", &self.deployments.len())
            .finish()
    }
}

impl Sysroot {
    /// Open and load a sysroot (no lock; see [`Sysroot::lock`]).
    pub fn open(opts: SysrootOptions) -> Result<Sysroot> {
        let repo_path = opts.path.join("ostree/repo");
        if !opts.path.is_dir() {
            return Err(Error::io(
                &opts.path,
                std::io::Error::from_raw_os_error(libc::ENOENT),
            ));
        }
        let repo = Repo::open(&repo_path).map_err(|e| match e {
            kiln_store::Error::NotARepo(_) => Error::NotASysroot(opts.path.clone()),
            e => Error::Store(e),
        })?;
        let mut s = Sysroot {
            opts,
            repo,
            root_is_booted: false,
            root_id: None,
            bootversion: 0,
            subbootversion: 0,
            deployments: Vec::new(),
            booted: None,
            staged: None,
            lock: None,
            sink: None,
        };
        s.detect_booted()?;
        s.load().map_err(|e| Error::Load(Box::new(e)))?;
        Ok(s)
    }

    /// Take `ostree/lock` (exclusive, compatible with libostree). `on_wait`
    /// runs once if another process holds it, before blocking. Reloads the
    /// deployment list afterwards.
    pub fn lock(&mut self, on_wait: impl FnOnce()) -> Result<()> {
        if self.lock.is_none() {
            self.lock = Some(SysrootLock::acquire(&self.opts.path, on_wait)?);
            self.load().map_err(|e| Error::Load(Box::new(e)))?;
        }
        Ok(())
    }

    pub fn set_message_sink(&mut self, sink: MessageSink) {
        self.sink = Some(sink);
    }

    pub(crate) fn message(&self, msg: &str) {
        if let Some(s) = &self.sink {
            s(msg);
        }
    }

    pub fn path(&self) -> &Path {
        &self.opts.path
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    pub fn repo_mut(&mut self) -> &mut Repo {
        &mut self.repo
    }

    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    pub fn bootversion(&self) -> u32 {
        self.bootversion
    }

    pub fn subbootversion(&self) -> u32 {
        self.subbootversion
    }

    /// Is this sysroot the running system?
    pub fn is_booted(&self) -> bool {
        self.root_is_booted
    }

    pub fn booted_deployment(&self) -> Option<&Deployment> {
        self.booted.and_then(|i| self.deployments.get(i))
    }

    pub fn staged_deployment(&self) -> Option<&Deployment> {
        self.deployments.first().filter(|d| d.staged)
    }

    /// Absolute path of a deployment's root.
    pub fn deployment_path(&self, d: &Deployment) -> PathBuf {
        self.opts.path.join(d.relpath())
    }

    pub fn deployment(&self, index: usize) -> Result<&Deployment> {
        self.deployments.get(index).ok_or(Error::IndexOutOfRange {
            index,
            len: self.deployments.len(),
        })
    }

    /// (pending, rollback) for a stateroot, relative to the booted
    /// deployment, as `ostree_sysroot_query_deployments_for` defines them.
    pub fn query_deployments_for(
        &self,
        osname: Option<&str>,
    ) -> (Option<&Deployment>, Option<&Deployment>) {
        let booted = self.booted_deployment();
        let Some(osname) = osname.or(booted.map(|b| b.osname.as_str())) else {
            return (None, None);
        };
        let mut found_booted = false;
        let (mut pending, mut rollback) = (None, None);
        for d in &self.deployments {
            if d.osname != osname {
                continue;
            }
            if booted.is_some_and(|b| b.same(d)) {
                found_booted = true;
                continue;
            }
            if !found_booted && pending.is_none() {
                pending = Some(d);
            } else if found_booted && rollback.is_none() {
                rollback = Some(d);
            }
        }
        (pending, rollback)
    }

    /// The deployment whose `/etc` and kernel arguments a new one inherits:
    /// the booted one for its own stateroot, else the first of `osname`.
    pub fn merge_deployment(&self, osname: Option<&str>) -> Option<&Deployment> {
        if let Some(b) = self.booted_deployment() {
            let same_os = match osname {
                None => true,
                Some(o) => o == b.osname,
            };
            if same_os {
                return Some(b);
            }
        }
        self.query_deployments_for(osname).0
    }

    /// Does `ostree/deploy/OS` exist?
    pub fn has_stateroot(&self, osname: &str) -> bool {
        self.opts
            .path
            .join("ostree/deploy")
            .join(osname)
            .join("var")
            .is_dir()
    }

    pub fn options(&self) -> &SysrootOptions {
        &self.opts
    }
}
