//! `init-fs` (the top-level directories and `ostree/repo`) and `os-init`
//! (a stateroot with its shared `/var`).

use crate::error::{Error, Result};
use crate::fsutil;
use crate::sysroot::Sysroot;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default)]
pub struct InitFsOptions {
    /// Only `boot/` and `ostree/`.
    pub modern: bool,
}

fn ensure_initialized(path: &Path) -> Result<()> {
    fsutil::mkdir_p(&path.join("ostree/repo"), 0o755)?;
    fsutil::mkdir_p(&path.join("ostree/deploy"), 0o755)?;
    kiln_store::Repo::init(&path.join("ostree/repo"), kiln_store::RepoMode::Bare)?;
    Ok(())
}

/// `ostree admin init-fs PATH`: PATH must exist.
pub fn init_fs(path: &Path, opts: InitFsOptions) -> Result<()> {
    if !path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::from_raw_os_error(libc::ENOENT),
        ));
    }
    fsutil::mkdir_p(&path.join("boot"), 0o755)?;
    if !opts.modern {
        for d in ["boot", "dev", "home", "proc", "run", "sys"] {
            fsutil::mkdir_p(&path.join(d), 0o755)?;
        }
        fsutil::mkdir_p(&path.join("root"), 0o700)?;
        let tmp = path.join("tmp");
        fsutil::mkdir_p(&tmp, 0o1777)?;
        rustix::fs::chmodat(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::Mode::from_raw_mode(0o1777),
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| Error::rio(&tmp, e))?;
    }
    ensure_initialized(path)
}

impl Sysroot {
    /// `ostree admin os-init OS`: fails if the stateroot exists.
    pub fn init_osname(&mut self, osname: &str) -> Result<()> {
        crate::deploy::validate_osname(osname)?;
        ensure_initialized(&self.opts.path)?;
        let dir = self.opts.path.join("ostree/deploy").join(osname);
        let mk = |p: &Path, mode: u32| -> Result<()> {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(p)
                .map_err(|e| Error::io(p, e))
        };
        match std::fs::DirBuilder::new().create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::StaterootExists(osname.to_string()))
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        let var = dir.join("var");
        mk(&var, 0o777)?;
        mk(&var.join("tmp"), 0o777)?;
        let tmp = var.join("tmp");
        rustix::fs::chmodat(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::Mode::from_raw_mode(0o1777),
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| Error::rio(&tmp, e))?;
        mk(&var.join("lib"), 0o777)?;
        mk(&var.join("log"), 0o755)?;
        std::os::unix::fs::symlink("../run", var.join("run"))
            .map_err(|e| Error::io(&var.join("run"), e))?;
        std::os::unix::fs::symlink("../run/lock", var.join("lock"))
            .map_err(|e| Error::io(&var.join("lock"), e))?;
        self.bump_mtime()
    }
}
