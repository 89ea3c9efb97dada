//! Entering a user namespace whose maps come from `newuidmap`/`newgidmap`,
//! the way rootless podman does: root inside is a subordinate id and the
//! user keeps their own uid.

use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::idmap::{IdMapping, IdRange};
use crate::sys::{self, UnshareFlags};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

const NEWUIDMAP: &str = "/usr/bin/newuidmap";
const NEWGIDMAP: &str = "/usr/bin/newgidmap";

static ENTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// [`enter`], unless this process already did.
pub fn enter_once(mapping: &IdMapping) -> Result<()> {
    use std::sync::atomic::Ordering;
    if ENTERED.load(Ordering::SeqCst) {
        return Ok(());
    }
    enter(mapping)?;
    ENTERED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Move the calling (single-threaded) process into a new user namespace
/// with `mapping`. With [`IdMapping::Host`] this does nothing.
pub fn enter(mapping: &IdMapping) -> Result<()> {
    let IdMapping::User { uid_map, gid_map } = mapping else {
        return Ok(());
    };
    for tool in [NEWUIDMAP, NEWGIDMAP] {
        if !Path::new(tool).exists() {
            return Err(Error::MissingTool {
                tool: tool.into(),
                hint: "install the uidmap package",
            });
        }
    }
    let pid = rustix::process::getpid().as_raw_nonzero().get().to_string();
    // The helpers must start before we unshare: a process inside the new
    // namespace could not run the set-uid newuidmap. They are forked now
    // and wait for a byte on a pipe, sent once the namespace exists.
    let uid_helper = Helper::fork(NEWUIDMAP, &pid, uid_map)?;
    let gid_helper = match Helper::fork(NEWGIDMAP, &pid, gid_map) {
        Ok(h) => h,
        Err(e) => {
            let _ = uid_helper.finish(false);
            return Err(e);
        }
    };
    let unshared = sys::unshare(UnshareFlags::NEWUSER);
    if unshared.is_ok() {
        // Both at once: they write different files.
        uid_helper.go();
        gid_helper.go();
    }
    let r1 = uid_helper.finish(unshared.is_ok());
    let r2 = gid_helper.finish(unshared.is_ok());
    unshared.map_err(crate::error::ns_err("unshare a user namespace"))?;
    r1?;
    r2?;
    Ok(())
}

/// A forked child that runs newuidmap/newgidmap when told to.
struct Helper {
    tool: &'static str,
    pid: rustix::process::Pid,
    go: OwnedFd,
    stderr: OwnedFd,
}

impl Helper {
    fn fork(tool: &'static str, pid: &str, map: &[IdRange]) -> Result<Self> {
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(crate::error::ns_err("create a pipe"))
        };
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut cmd = Command::new(tool);
        cmd.arg(pid);
        for r in map {
            cmd.arg(r.inside.to_string())
                .arg(r.outside.to_string())
                .arg(r.count.to_string());
        }
        match sys::fork().map_err(crate::error::ns_err(format!("fork {tool}")))? {
            sys::Fork::Child => {
                // Keep only the go pipe (as stdin) and the error pipe (as
                // stderr): a copy of another helper's go pipe would keep
                // that helper waiting forever if we give up.
                if rustix::stdio::dup2_stdin(&go_r).is_err()
                    || rustix::stdio::dup2_stderr(&err_w).is_err()
                {
                    sys::exit_now(1);
                }
                std::mem::forget((go_r, go_w, err_r, err_w));
                sys::close_from(3);
                let mut b = [0u8; 1];
                let told = loop {
                    match rustix::io::read(rustix::stdio::stdin(), &mut b) {
                        Err(rustix::io::Errno::INTR) => continue,
                        Ok(1) => break true,
                        _ => break false,
                    }
                };
                if !told {
                    sys::exit_now(1);
                }
                let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).exec();
                sys::exit_now(127)
            }
            sys::Fork::Parent(child) => Ok(Self {
                tool,
                pid: child,
                go: go_w,
                stderr: err_r,
            }),
        }
    }

    /// Tell the helper to map the namespace.
    fn go(&self) {
        let _ = rustix::io::write(&self.go, b"g");
    }

    /// Wait for the helper; without [`Helper::go`] it gives up. `went`
    /// says whether it was told to go.
    fn finish(self, went: bool) -> Result<()> {
        drop(self.go);
        let mut err = String::new();
        let _ = std::fs::File::from(self.stderr).read_to_string(&mut err);
        let status = loop {
            match rustix::process::waitpid(Some(self.pid), rustix::process::WaitOptions::empty()) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(Some((_, st))) => break st,
                Ok(None) => continue,
                Err(e) => return Err(e).ctx("wait for", self.tool),
            }
        };
        if status.exit_status() == Some(0) {
            return Ok(());
        }
        if !went {
            return Ok(());
        }
        Err(Error::CommandFailed {
            command: self.tool.into(),
            status: match status.exit_status() {
                Some(c) => format!("exit status {c}"),
                None => "killed".into(),
            },
            detail: if err.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err.trim())
            },
        })
    }
}
