//! Helpers of the compose/install tests (no VM): a small Debian-like root
//! file system with a fake kernel and initramfs, commands that must pass
//! or fail.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const KVER: &str = "6.1.0-99-amd64";

pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

pub fn kiln() -> Command {
    Command::new(kiln_bin())
}

/// Root (mounts, owners) is needed; skip unless KILN_CI=1.
pub fn have_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("KILN_CI").as_deref() == Ok("1") {
        panic!("these tests need root");
    }
    eprintln!("skipping: not root");
    false
}

pub fn have_tools(tools: &[&str]) -> bool {
    for t in tools {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            if std::env::var("KILN_CI").as_deref() == Ok("1") {
                panic!("{t} is not installed (see docs/boot.md)");
            }
            eprintln!("skipping: {t} is not installed");
            return false;
        }
    }
    true
}

pub fn out(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn ok(cmd: &mut Command) -> String {
    let o = out(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Must fail; returns stderr.
pub fn fails(cmd: &mut Command) -> String {
    let o = out(cmd);
    assert!(
        !o.status.success(),
        "{cmd:?} should have failed:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn w(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// A Debian-like root file system as mmdebstrap leaves it: kernel and
/// initrd in /boot, dpkg database in /var, /etc, /root with dotfiles.
pub fn debian_rootfs(root: &Path, version: &str, with_initrd: bool) {
    for d in [
        "usr/bin",
        "usr/lib/modules",
        "usr/local/bin",
        "var/lib/apt/lists",
        "var/log/apt",
        "var/cache/apt",
        "var/spool/cron",
        "home",
        "opt",
        "srv",
        "mnt",
        "media",
        "tmp",
        "dev",
        "proc",
        "sys",
        "run",
        "boot",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    w(root, "usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n");
    fs::create_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    w(root, "etc/hostname", "debian\n");
    w(root, "etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n");
    w(
        root,
        "usr/bin/hello",
        &format!("#!/bin/sh\necho hello {version}\n"),
    );
    fs::set_permissions(
        root.join("usr/bin/hello"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    w(
        root,
        &format!("boot/vmlinuz-{KVER}"),
        &format!("fake kernel {KVER}\n"),
    );
    if with_initrd {
        w(
            root,
            &format!("boot/initrd.img-{KVER}"),
            &format!("fake initramfs {KVER}\n"),
        );
    }
    w(root, &format!("boot/config-{KVER}"), "CONFIG_X=y\n");
    std::os::unix::fs::symlink(format!("boot/vmlinuz-{KVER}"), root.join("vmlinuz")).unwrap();
    w(
        root,
        "var/lib/dpkg/status",
        "Package: hello\nStatus: install ok installed\n",
    );
    w(root, "var/lib/dpkg/info/hello.list", "/usr/bin/hello\n");
    w(root, "var/log/apt/history.log", "log\n");
    w(root, "var/lib/apt/lists/x_Packages", "Package: x\n");
    std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
    fs::create_dir_all(root.join("root")).unwrap();
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    w(root, "root/.bashrc", "# bashrc\n");
    // A device node, as debootstrap leaves in /dev.
    let _ = Command::new("mknod")
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"])
        .status();
}

/// `kiln compose rootfs` a fresh Debian-like tree into `repo` at `branch`;
/// returns the commit.
pub fn compose_commit(
    work: &Path,
    repo: &Path,
    branch: &str,
    version: &str,
    with_initrd: bool,
) -> String {
    let tree = work.join(format!("rootfs-{version}"));
    let _ = fs::remove_dir_all(&tree);
    debian_rootfs(&tree, version, with_initrd);
    let o = ok(kiln()
        .args([
            "compose",
            "rootfs",
            "--json",
            "--set-version",
            version,
            "-b",
            branch,
        ])
        .arg("--repo")
        .arg(repo)
        .arg(&tree));
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    v["commit"].as_str().unwrap().to_string()
}
