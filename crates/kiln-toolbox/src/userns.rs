//! Entering a user namespace whose maps come from `newuidmap`/`newgidmap`,
//! the way rootless podman does: root inside is a subordinate id and the
//! user keeps their own uid.

use crate::error::{Error, Result};
use crate::idmap::{IdMapping, IdRange};
use crate::sys::{self, UnshareFlags};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
    // namespace could not run the set-uid newuidmap. They wait for a line
    // on stdin, which we send once the namespace exists.
    let mut uid_helper = spawn_helper(NEWUIDMAP, &pid, uid_map)?;
    let mut gid_helper = match spawn_helper(NEWGIDMAP, &pid, gid_map) {
        Ok(h) => h,
        Err(e) => {
            let _ = uid_helper.kill();
            let _ = uid_helper.wait();
            return Err(e);
        }
    };
    let unshared = sys::unshare(UnshareFlags::NEWUSER);
    let go: &[u8] = if unshared.is_ok() { b"go\n" } else { b"" };
    let r1 = finish_helper(&mut uid_helper, go, NEWUIDMAP);
    let r2 = finish_helper(&mut gid_helper, go, NEWGIDMAP);
    unshared.map_err(crate::error::ns_err("unshare a user namespace"))?;
    r1?;
    r2?;
    Ok(())
}

fn spawn_helper(tool: &str, pid: &str, map: &[IdRange]) -> Result<Child> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"read go && exec "$0" "$@""#)
        .arg(tool)
        .arg(pid);
    for r in map {
        cmd.arg(r.inside.to_string())
            .arg(r.outside.to_string())
            .arg(r.count.to_string());
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Io {
            op: "run",
            path: tool.into(),
            source,
        })
}

fn finish_helper(child: &mut Child, go: &[u8], tool: &str) -> Result<()> {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(go);
    }
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|source| Error::Io {
        op: "wait for",
        path: tool.into(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            command: tool.into(),
            status: status.to_string(),
            detail: if err.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err.trim())
            },
        })
    }
}
