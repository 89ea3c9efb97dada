//! Make the host user exist inside the container, with passwordless sudo.
//! Runs after `pivot_root`, so every path here is the container's.

use crate::error::{IoContext, Result};
use crate::host::HostUser;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The shell to give the user inside: theirs if the image has it.
pub(crate) fn shell_inside(user: &HostUser) -> &Path {
    for candidate in [
        user.shell.as_path(),
        Path::new("/bin/bash"),
        Path::new("/bin/sh"),
    ] {
        if candidate.is_absolute() && candidate.exists() {
            return candidate;
        }
    }
    Path::new("/bin/sh")
}

/// Idempotent: adds only what is missing.
pub(crate) fn prepare(user: &HostUser, container: &str) -> Result<()> {
    fs::create_dir_all("/etc").ctx("create", "/etc")?;
    if user.uid != 0 {
        let shell = shell_inside(user).display().to_string();
        ensure_line(
            Path::new("/etc/passwd"),
            |l| l.split(':').next() == Some(user.name.as_str()),
            &format!(
                "{n}:x:{u}:{g}:{n}:{h}:{shell}",
                n = user.name,
                u = user.uid,
                g = user.gid,
                h = user.home.display()
            ),
            "root:x:0:0:root:/root:/bin/sh\n",
            0o644,
        )?;
        let gid = user.gid.to_string();
        ensure_line(
            Path::new("/etc/group"),
            |l| l.split(':').nth(2) == Some(gid.as_str()),
            &format!("{}:x:{}:", user.name, user.gid),
            "root:x:0:\n",
            0o644,
        )?;
        if Path::new("/etc/shadow").exists() {
            ensure_line(
                Path::new("/etc/shadow"),
                |l| l.split(':').next() == Some(user.name.as_str()),
                &format!("{}:*:19000:0:99999:7:::", user.name),
                "",
                0o640,
            )?;
        }
        fs::create_dir_all("/etc/sudoers.d").ctx("create", "/etc/sudoers.d")?;
        let sudoers = Path::new("/etc/sudoers.d/kiln-toolbox");
        let rule = format!(
            "# Written by kiln toolbox.\n{} ALL=(ALL:ALL) NOPASSWD: ALL\n",
            user.name
        );
        if fs::read_to_string(sudoers).ok().as_deref() != Some(rule.as_str()) {
            write_root_file(sudoers, rule.as_bytes(), 0o440)?;
        }
    }
    // Debian's bashrc puts this in the prompt: "(NAME)user@host".
    let chroot = Path::new("/etc/debian_chroot");
    if fs::read_to_string(chroot).ok().as_deref().map(str::trim) != Some(container) {
        write_root_file(chroot, format!("{container}\n").as_bytes(), 0o644)?;
    }
    // Markers other tools use to notice a toolbox.
    fs::create_dir_all("/run").ctx("create", "/run")?;
    for marker in ["/run/.containerenv", "/run/.toolboxenv"] {
        if !Path::new(marker).exists() {
            write_root_file(Path::new(marker), b"", 0o644)?;
        }
    }
    Ok(())
}

/// Append `line` to `path` unless a line matches `present`. A missing file
/// is created with `initial` first.
fn ensure_line(
    path: &Path,
    present: impl Fn(&str) -> bool,
    line: &str,
    initial: &str,
    mode: u32,
) -> Result<()> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_root_file(path, initial.as_bytes(), mode)?;
            initial.to_string()
        }
        Err(e) => return Err(e).ctx("read", path),
    };
    if text.lines().any(present) {
        return Ok(());
    }
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .ctx("open", path)?;
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{line}\n").as_bytes())
        .ctx("write", path)
}

/// Write a file owned by root inside, via a temporary file and rename.
fn write_root_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("kiln-tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .ctx("create", &tmp)?;
    f.write_all(data).ctx("write", &tmp)?;
    rustix::fs::fchown(&f, Some(rustix::fs::Uid::ROOT), Some(rustix::fs::Gid::ROOT))
        .ctx("chown", &tmp)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .ctx("chmod", &tmp)?;
    drop(f);
    fs::rename(&tmp, path).ctx("rename", path)
}
