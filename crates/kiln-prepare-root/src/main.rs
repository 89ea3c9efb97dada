//! `kiln-prepare-root [SYSROOT]`: run by the initramfs once the physical
//! root is mounted at SYSROOT (`/sysroot` for dracut, `/root` for
//! initramfs-tools). See the library for what it does. On failure it
//! prints one line with the reason and exits 1; the initramfs hook then
//! drops to an emergency shell.
#![forbid(unsafe_code)]

use kiln_prepare_root::{ostree_arg, plan, Plan, PrepareError};
use rustix::mount::{self, MountFlags, MountPropagationFlags};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn mnt(step: &'static str, path: &Path, r: rustix::io::Result<()>) -> Result<(), PrepareError> {
    r.map_err(|e| PrepareError::Mount {
        step,
        path: path.to_path_buf(),
        err: e.into(),
    })
}

fn run(sysroot: &Path) -> Result<Plan, PrepareError> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|err| PrepareError::Io {
        what: "reading",
        path: "/proc/cmdline".into(),
        err,
    })?;
    let arg = ostree_arg(&cmdline).ok_or(PrepareError::NoOstreeArg)?;
    let p = plan(sysroot, &arg)?;
    let dep = &p.deployment;
    // Mount events must not propagate back into the initramfs' peers.
    mnt(
        "making private",
        Path::new("/"),
        mount::mount_change(
            "/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        ),
    )?;
    mnt(
        "bind-mounting the deployment",
        dep,
        mount::mount_bind(dep, dep),
    )?;
    let var = dep.join("var");
    mnt(
        "bind-mounting the stateroot's /var on",
        &var,
        mount::mount_bind(&p.stateroot_var, &var),
    )?;
    let usr = dep.join("usr");
    mnt("bind-mounting", &usr, mount::mount_bind(&usr, &usr))?;
    mnt(
        "making read-only",
        &usr,
        mount::mount_remount(
            &usr,
            MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
            "",
        ),
    )?;
    // From here on paths relative to the deployment: it moves away from
    // under its absolute path.
    std::env::set_current_dir(dep).map_err(|err| PrepareError::Io {
        what: "entering",
        path: dep.clone(),
        err,
    })?;
    mnt(
        // A bind, not a move: the deployment's mount lives inside the
        // physical root, and a mount cannot move below itself.
        "bind-mounting the physical root on",
        &dep.join("sysroot"),
        mount::mount_bind_recursive(sysroot, "sysroot"),
    )?;
    mnt(
        "moving the deployment to",
        sysroot,
        mount::mount_move(".", sysroot),
    )?;
    std::env::set_current_dir("/").map_err(|err| PrepareError::Io {
        what: "entering",
        path: "/".into(),
        err,
    })?;
    let marker = Path::new("/run/ostree-booted");
    if let Err(err) = std::fs::write(marker, b"") {
        return Err(PrepareError::Io {
            what: "writing",
            path: marker.to_path_buf(),
            err,
        });
    }
    Ok(p)
}

fn main() -> ExitCode {
    let sysroot = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sysroot"));
    match run(&sysroot) {
        Ok(p) => {
            eprintln!("kiln-prepare-root: booting {} deployment {} (/usr read-only, /var from the stateroot)", p.osname, p.name);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kiln-prepare-root: error: {e}");
            ExitCode::from(1)
        }
    }
}
