//! The sysroot lock, compatible with libostree: an open-file-description
//! write lock (`F_OFD_SETLK[W]`) on `ostree/lock`, created 0600 and
//! unlinked by the holder when it releases it (so a waiter that opened the
//! old inode re-opens).

use crate::error::{Error, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct SysrootLock {
    path: PathBuf,
    fd: Option<OwnedFd>,
}

impl SysrootLock {
    pub fn acquire(sysroot: &Path, on_wait: impl FnOnce()) -> Result<SysrootLock> {
        let path = sysroot.join("ostree/lock");
        let lerr = |e: rustix::io::Errno| Error::Lock {
            path: path.clone(),
            source: e.into(),
        };
        let mut on_wait = Some(on_wait);
        loop {
            let fd = rustix::fs::open(
                &path,
                OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::from_raw_mode(0o600),
            )
            .map_err(lerr)?;
            match rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    if let Some(w) = on_wait.take() {
                        w();
                    }
                    rustix::fs::fcntl_lock(&fd, FlockOperation::LockExclusive).map_err(lerr)?;
                }
                Err(e) => return Err(lerr(e)),
            }
            // The previous holder may have unlinked the file between our
            // open and our lock: then we hold a lock nobody else sees.
            let st = rustix::fs::fstat(&fd).map_err(lerr)?;
            if st.st_nlink > 0 {
                return Ok(SysrootLock { path, fd: Some(fd) });
            }
        }
    }
}

impl Drop for SysrootLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.fd.take();
    }
}
