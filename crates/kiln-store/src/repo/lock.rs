//! Repository locks compatible with libostree: open-file-description locks
//! on `REPO/.lock` (shared for writers adding objects, exclusive for prune).

use crate::error::{Error, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::os::fd::OwnedFd;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// A held lock; released when dropped (the fd is closed).
#[derive(Debug)]
pub struct RepoLock {
    _fd: OwnedFd,
    kind: LockKind,
}

impl RepoLock {
    pub fn acquire(repo: &Path, kind: LockKind) -> Result<RepoLock> {
        let path = repo.join(".lock");
        let fd = rustix::fs::open(
            &path,
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o660),
        )
        .map_err(|e| Error::rio(&path, e))?;
        let op = match kind {
            LockKind::Shared => FlockOperation::LockShared,
            LockKind::Exclusive => FlockOperation::LockExclusive,
        };
        // rustix's fcntl_lock uses F_OFD_SETLKW, as libostree does.
        rustix::fs::fcntl_lock(&fd, op).map_err(|e| Error::rio(&path, e))?;
        Ok(RepoLock { _fd: fd, kind })
    }

    pub fn kind(&self) -> LockKind {
        self.kind
    }
}
