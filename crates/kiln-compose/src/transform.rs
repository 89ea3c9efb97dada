//! Ordinary Debian root file system -> OSTree-ready OS tree.
//!
//! What moves and why (each step is reported, and a second run finds it
//! done and says so):
//! * kernel and initramfs -> `/usr/lib/modules/KVER/{vmlinuz,initramfs.img}`:
//!   the deploy code finds them there and copies them to `/boot` itself;
//!   `/boot` stays an empty mount point.
//! * `/var/lib/dpkg` -> `/usr/lib/sysimage/dpkg`: the package database is
//!   versioned with the tree; `/var/lib/dpkg` becomes a tmpfiles.d link.
//! * `/etc` -> `/usr/etc`: the defaults of this tree; deploying copies them
//!   to a writable `/etc` and merges local changes.
//! * `/home /root /opt /srv /mnt /media /usr/local` -> links into `/var`:
//!   they hold machine state, which lives in the shared `/var`.
//! * `/var` emptied: it is not part of a commit; directories and links are
//!   recreated at boot from `usr/lib/tmpfiles.d/kiln-var.conf`, files are
//!   kept under `/usr/share/factory/var` and copied when missing (logs,
//!   caches and apt lists are dropped).
//! * `dev proc sys run tmp` emptied (device nodes are not content).
//! * `/sysroot` and `/ostree -> sysroot/ostree` added (where the physical
//!   root appears in a booted system).

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Moved,
    Linked,
    Removed,
    Created,
    Kept,
    /// Found already transformed.
    AlreadyDone,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    /// Path in the tree (absolute, as in the booted system).
    pub path: String,
    pub to: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TransformReport {
    pub actions: Vec<Action>,
    /// Kernel versions found, newest last.
    pub kernels: Vec<String>,
}

impl TransformReport {
    fn push(&mut self, kind: ActionKind, path: &str, to: Option<&str>, why: &str) {
        self.actions.push(Action {
            kind,
            path: path.to_string(),
            to: to.map(str::to_string),
            why: why.to_string(),
        });
    }
    /// Nothing was changed (the tree was already transformed).
    pub fn unchanged(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a.kind, ActionKind::AlreadyDone | ActionKind::Kept))
    }
}

/// Where the directories that hold machine state go.
pub const STATE_LINKS: &[(&str, &str, &str)] = &[
    ("home", "var/home", "/var/home"),
    ("root", "var/roothome", "/var/roothome"),
    ("opt", "var/opt", "/var/opt"),
    ("srv", "var/srv", "/var/srv"),
    ("mnt", "var/mnt", "/var/mnt"),
    ("media", "var/media", "/var/media"),
    ("usr/local", "../var/usrlocal", "/var/usrlocal"),
];

const TMPFILES: &str = "usr/lib/tmpfiles.d/kiln-var.conf";
const FACTORY: &str = "usr/share/factory/var";
const DPKG: &str = "usr/lib/sysimage/dpkg";

fn io<T>(p: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Error::io(p, e))
}

fn lmeta(p: &Path) -> Option<std::fs::Metadata> {
    std::fs::symlink_metadata(p).ok()
}

fn is_real_dir(p: &Path) -> bool {
    lmeta(p).is_some_and(|m| m.file_type().is_dir())
}

fn mkdirs(p: &Path, mode: u32) -> Result<()> {
    if !is_real_dir(p) {
        io(p, std::fs::create_dir_all(p))?;
        io(
            p,
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)),
        )?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    match lmeta(p) {
        None => Ok(()),
        Some(m) if m.file_type().is_dir() => io(p, std::fs::remove_dir_all(p)),
        Some(_) => io(p, std::fs::remove_file(p)),
    }
}

fn empty_dir(p: &Path) -> Result<usize> {
    let mut n = 0;
    for e in io(p, std::fs::read_dir(p))? {
        let e = io(p, e)?;
        remove_any(&e.path())?;
        n += 1;
    }
    Ok(n)
}

/// Transform the tree at `root` in place.
pub fn transform(root: &Path) -> Result<TransformReport> {
    if !is_real_dir(root) {
        return Err(Error::NotARootfs(
            root.to_path_buf(),
            "not a directory".into(),
        ));
    }
    if !is_real_dir(&root.join("usr")) {
        return Err(Error::NotARootfs(
            root.to_path_buf(),
            "no /usr directory".into(),
        ));
    }
    if !is_real_dir(&root.join("etc")) && !is_real_dir(&root.join("usr/etc")) {
        return Err(Error::NotARootfs(
            root.to_path_buf(),
            "neither /etc nor /usr/etc".into(),
        ));
    }
    let mut r = TransformReport::default();
    kernels(root, &mut r)?;
    os_release(root, &mut r)?;
    dpkg(root, &mut r)?;
    etc(root, &mut r)?;
    let mut tmpfiles = read_tmpfiles(root)?;
    state_links(root, &mut r, &mut tmpfiles)?;
    var(root, &mut r, &mut tmpfiles)?;
    write_tmpfiles(root, &tmpfiles, &mut r)?;
    api_dirs(root, &mut r)?;
    sysroot_link(root, &mut r)?;
    Ok(r)
}

fn kernels(root: &Path, r: &mut TransformReport) -> Result<()> {
    let boot = root.join("boot");
    let mut moved_any = false;
    if is_real_dir(&boot) {
        let mut names: Vec<String> = io(&boot, std::fs::read_dir(&boot))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // Check before changing anything: every kernel needs its initramfs.
        for name in &names {
            let Some(kver) = name.strip_prefix("vmlinuz-") else {
                continue;
            };
            let has = |p: PathBuf| lmeta(&p).is_some_and(|m| m.file_type().is_file());
            if has(boot.join(name))
                && !has(boot.join(format!("initrd.img-{kver}")))
                && !has(root
                    .join("usr/lib/modules")
                    .join(kver)
                    .join("initramfs.img"))
            {
                return Err(Error::NoInitramfs {
                    path: root.to_path_buf(),
                    kver: kver.to_string(),
                });
            }
        }
        if !names.iter().any(|n| n.starts_with("vmlinuz-")) && !has_module_kernel(root) {
            return Err(Error::NoKernel {
                path: root.to_path_buf(),
            });
        }
        for name in &names {
            let Some(kver) = name.strip_prefix("vmlinuz-") else {
                continue;
            };
            let src = boot.join(name);
            if !lmeta(&src).is_some_and(|m| m.file_type().is_file()) {
                continue;
            }
            let moddir = root.join("usr/lib/modules").join(kver);
            mkdirs(&moddir, 0o755)?;
            io(&src, std::fs::rename(&src, moddir.join("vmlinuz")))?;
            r.push(
                ActionKind::Moved,
                &format!("/boot/{name}"),
                Some(&format!("/usr/lib/modules/{kver}/vmlinuz")),
                "deployments take the kernel from the tree; /boot is managed by the deploy code",
            );
            moved_any = true;
            for (prefix, dest) in [
                ("initrd.img-", "initramfs.img"),
                ("config-", "config"),
                ("System.map-", "System.map"),
            ] {
                let p = boot.join(format!("{prefix}{kver}"));
                if lmeta(&p).is_some_and(|m| m.file_type().is_file()) {
                    io(&p, std::fs::rename(&p, moddir.join(dest)))?;
                    r.push(
                        ActionKind::Moved,
                        &format!("/boot/{prefix}{kver}"),
                        Some(&format!("/usr/lib/modules/{kver}/{dest}")),
                        "kept beside its kernel",
                    );
                }
            }
        }
        let left = empty_dir(&boot)?;
        if left > 0 {
            r.push(
                ActionKind::Removed,
                "/boot/*",
                None,
                &format!("{left} leftover entries; /boot is an empty mount point in an OS tree"),
            );
        }
    } else {
        mkdirs(&boot, 0o755)?;
    }
    for link in ["vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"] {
        let p = root.join(link);
        if lmeta(&p).is_some_and(|m| m.file_type().is_symlink()) {
            io(&p, std::fs::remove_file(&p))?;
            r.push(
                ActionKind::Removed,
                &format!("/{link}"),
                None,
                "Debian's kernel links point into /boot, which the tree no longer has",
            );
        }
    }
    let modules = root.join("usr/lib/modules");
    let mut kvers = Vec::new();
    if is_real_dir(&modules) {
        for e in io(&modules, std::fs::read_dir(&modules))? {
            let e = io(&modules, e)?;
            if lmeta(&e.path().join("vmlinuz")).is_some_and(|m| m.file_type().is_file()) {
                kvers.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    kvers.sort();
    let Some(newest) = kvers.last() else {
        return Err(Error::NoKernel {
            path: root.to_path_buf(),
        });
    };
    for k in &kvers {
        if !lmeta(&modules.join(k).join("initramfs.img")).is_some_and(|m| m.file_type().is_file()) {
            return Err(Error::NoInitramfs {
                path: root.to_path_buf(),
                kver: k.clone(),
            });
        }
    }
    if !moved_any {
        r.push(
            ActionKind::AlreadyDone,
            &format!("/usr/lib/modules/{newest}/vmlinuz"),
            None,
            "kernel and initramfs already in /usr/lib/modules",
        );
    }
    r.kernels = kvers;
    Ok(())
}

fn has_module_kernel(root: &Path) -> bool {
    std::fs::read_dir(root.join("usr/lib/modules"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| lmeta(&e.path().join("vmlinuz")).is_some_and(|m| m.file_type().is_file()))
        })
        .unwrap_or(false)
}

fn os_release(root: &Path, r: &mut TransformReport) -> Result<()> {
    let lib = root.join("usr/lib/os-release");
    if lmeta(&lib).is_some_and(|m| m.file_type().is_file()) {
        r.push(
            ActionKind::Kept,
            "/usr/lib/os-release",
            None,
            "names the OS in boot entries and status",
        );
        return Ok(());
    }
    for cand in ["etc/os-release", "usr/etc/os-release"] {
        let p = root.join(cand);
        if lmeta(&p).is_some_and(|m| m.file_type().is_file()) {
            io(&lib, std::fs::copy(&p, &lib))?;
            r.push(
                ActionKind::Created,
                "/usr/lib/os-release",
                None,
                &format!("copied from /{cand}: boot entries read it from /usr"),
            );
            return Ok(());
        }
    }
    Err(Error::NotARootfs(
        root.to_path_buf(),
        "no os-release in /usr/lib or /etc".into(),
    ))
}

fn dpkg(root: &Path, r: &mut TransformReport) -> Result<()> {
    let var_dpkg = root.join("var/lib/dpkg");
    let dest = root.join(DPKG);
    if is_real_dir(&var_dpkg) {
        if lmeta(&dest).is_some() {
            if is_real_dir(&dest) && io(&dest, std::fs::read_dir(&dest))?.next().is_none() {
                io(&dest, std::fs::remove_dir(&dest))?;
            } else {
                return Err(Error::Invalid(format!(
                    "both /var/lib/dpkg and /{DPKG} exist in {}; remove one",
                    root.display()
                )));
            }
        }
        mkdirs(dest.parent().unwrap_or(root), 0o755)?;
        io(&var_dpkg, std::fs::rename(&var_dpkg, &dest))?;
        r.push(ActionKind::Moved, "/var/lib/dpkg", Some("/usr/lib/sysimage/dpkg"), "the package database belongs to the tree (layering reads it); /var/lib/dpkg becomes a tmpfiles.d link");
    } else if is_real_dir(&dest) {
        r.push(
            ActionKind::AlreadyDone,
            "/usr/lib/sysimage/dpkg",
            None,
            "dpkg database already under /usr",
        );
    }
    Ok(())
}

fn etc(root: &Path, r: &mut TransformReport) -> Result<()> {
    let etc = root.join("etc");
    let usr_etc = root.join("usr/etc");
    match (is_real_dir(&etc), lmeta(&usr_etc).is_some()) {
        (true, false) => {
            io(&etc, std::fs::rename(&etc, &usr_etc))?;
            r.push(ActionKind::Moved, "/etc", Some("/usr/etc"), "the tree's configuration defaults; deploy copies them to a writable /etc and merges local changes");
        }
        (false, true) => r.push(
            ActionKind::AlreadyDone,
            "/usr/etc",
            None,
            "/etc already moved to /usr/etc",
        ),
        (true, true) => {
            return Err(Error::Invalid(format!(
            "both /etc and /usr/etc exist in {}; a half-transformed tree? remove /etc or /usr/etc",
            root.display()
        )))
        }
        (false, false) => return Err(Error::NotARootfs(root.to_path_buf(), "no /etc".into())),
    }
    Ok(())
}

/// tmpfiles.d lines by path (one per path; kept sorted).
type Tmpfiles = BTreeMap<String, String>;

fn read_tmpfiles(root: &Path) -> Result<Tmpfiles> {
    let p = root.join(TMPFILES);
    let mut m = Tmpfiles::new();
    match std::fs::read_to_string(&p) {
        Ok(t) => {
            for line in t.lines() {
                let mut it = line.split_whitespace();
                if let (Some(ty), Some(path)) = (it.next(), it.next()) {
                    if !ty.starts_with('#') {
                        m.insert(format!("{path}\0{ty}"), line.to_string());
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&p, e)),
    }
    Ok(m)
}

fn add_tmp(t: &mut Tmpfiles, ty: &str, path: &str, line: String) {
    t.insert(format!("{path}\0{ty}"), line);
}

fn state_links(root: &Path, r: &mut TransformReport, t: &mut Tmpfiles) -> Result<()> {
    for (name, target, varpath) in STATE_LINKS {
        let p = root.join(name);
        let m = lmeta(&p);
        let mode = m
            .as_ref()
            .filter(|m| m.file_type().is_dir())
            .map(|m| m.mode() & 0o7777)
            .unwrap_or(if *name == "root" { 0o700 } else { 0o755 });
        t.entry(format!("{varpath}\0d"))
            .or_insert_with(|| format!("d {varpath} {mode:04o} root root -"));
        match m {
            Some(m) if m.file_type().is_symlink() => {
                let cur = io(&p, std::fs::read_link(&p))?;
                if cur == Path::new(target) {
                    r.push(
                        ActionKind::AlreadyDone,
                        &format!("/{name}"),
                        Some(varpath),
                        "already a link into /var",
                    );
                    continue;
                }
                io(&p, std::fs::remove_file(&p))?;
            }
            Some(m) if m.file_type().is_dir() => {
                // Contents move to /var, whence `var()` keeps them as
                // factory defaults.
                let dest = root.join("var").join(varpath.trim_start_matches("/var/"));
                let mut n = 0;
                for e in io(&p, std::fs::read_dir(&p))? {
                    let e = io(&p, e)?;
                    mkdirs(&dest, mode)?;
                    let to = dest.join(e.file_name());
                    remove_any(&to)?;
                    io(&e.path(), std::fs::rename(e.path(), &to))?;
                    n += 1;
                }
                io(&p, std::fs::remove_dir(&p))?;
                if n > 0 {
                    r.push(
                        ActionKind::Moved,
                        &format!("/{name}/*"),
                        Some(varpath),
                        &format!("{n} entries become defaults copied into {varpath} at boot"),
                    );
                }
            }
            Some(_) => io(&p, std::fs::remove_file(&p))?,
            None => {}
        }
        io(&p, std::os::unix::fs::symlink(target, &p))?;
        r.push(
            ActionKind::Linked,
            &format!("/{name}"),
            Some(target),
            "machine state lives in the shared /var, not in the read-only tree",
        );
    }
    Ok(())
}

/// Paths under /var whose files are not worth keeping.
fn droppable(rel: &str) -> bool {
    ["log/", "cache/", "lib/apt/lists/", "tmp/", "backups/"]
        .iter()
        .any(|p| rel.starts_with(p))
}

fn var(root: &Path, r: &mut TransformReport, t: &mut Tmpfiles) -> Result<()> {
    let var = root.join("var");
    mkdirs(&var, 0o755)?;
    add_tmp(
        t,
        "L",
        "/var/lib/dpkg",
        "L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg".into(),
    );
    let (mut dirs, mut links, mut kept, mut dropped) = (0, 0, 0, 0);
    let mut stack = vec![(var.clone(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in io(&dir, std::fs::read_dir(&dir))? {
            let e = io(&dir, e)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(char::is_whitespace) || name.contains('\\') {
                dropped += 1;
                continue;
            }
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let p = e.path();
            let m = io(&p, std::fs::symlink_metadata(&p))?;
            let vp = format!("/var/{rel}");
            let ft = m.file_type();
            if ft.is_dir() {
                add_tmp(
                    t,
                    "d",
                    &vp,
                    format!("d {vp} {:04o} {} {} -", m.mode() & 0o7777, m.uid(), m.gid()),
                );
                dirs += 1;
                stack.push((p, rel));
            } else if ft.is_symlink() {
                let target = io(&p, std::fs::read_link(&p))?;
                add_tmp(t, "L", &vp, format!("L {vp} - - - - {}", target.display()));
                links += 1;
            } else if ft.is_file() && !droppable(&format!("{rel}/")) && !droppable(&rel) {
                let dest = root.join(FACTORY).join(&rel);
                mkdirs(dest.parent().unwrap_or(root), 0o755)?;
                remove_any(&dest)?;
                io(&p, std::fs::rename(&p, &dest))?;
                add_tmp(t, "C", &vp, format!("C {vp} - - - - /{FACTORY}/{rel}"));
                kept += 1;
            } else {
                dropped += 1;
            }
        }
    }
    let n = empty_dir(&var)?;
    if n == 0 && dirs + links + kept == 0 {
        r.push(
            ActionKind::AlreadyDone,
            "/var",
            None,
            "already empty; recreated at boot from tmpfiles.d",
        );
    } else {
        r.push(
            ActionKind::Removed,
            "/var/*",
            Some(&format!("/{TMPFILES}")),
            &format!("/var is not part of a commit: {dirs} directories and {links} links recreated at boot by tmpfiles.d, {kept} files kept as defaults under /{FACTORY}, {dropped} logs/caches dropped"),
        );
    }
    Ok(())
}

fn write_tmpfiles(root: &Path, t: &Tmpfiles, r: &mut TransformReport) -> Result<()> {
    let p = root.join(TMPFILES);
    let mut text = String::from(
        "# Written by kiln compose: what /var held in the root file system it was made from.\n",
    );
    for line in t.values() {
        text.push_str(line);
        text.push('\n');
    }
    let old = std::fs::read_to_string(&p).ok();
    if old.as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    mkdirs(p.parent().unwrap_or(root), 0o755)?;
    let tmp = p.with_extension("conf.tmp");
    io(&tmp, std::fs::write(&tmp, &text))?;
    io(&p, std::fs::rename(&tmp, &p))?;
    r.push(
        ActionKind::Created,
        &format!("/{TMPFILES}"),
        None,
        &format!("{} entries that recreate /var at boot", t.len()),
    );
    Ok(())
}

fn api_dirs(root: &Path, r: &mut TransformReport) -> Result<()> {
    for (d, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("sysroot", 0o755),
    ] {
        let p = root.join(d);
        if lmeta(&p).is_some_and(|m| !m.file_type().is_dir()) {
            remove_any(&p)?;
        }
        if !is_real_dir(&p) {
            mkdirs(&p, mode)?;
            r.push(ActionKind::Created, &format!("/{d}"), None, "mount point");
            continue;
        }
        let n = empty_dir(&p)?;
        io(
            &p,
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)),
        )?;
        if n > 0 {
            r.push(ActionKind::Removed, &format!("/{d}/*"), None, &format!("{n} entries: a mount point is empty in a commit (device nodes are not content)"));
        }
    }
    Ok(())
}

fn sysroot_link(root: &Path, r: &mut TransformReport) -> Result<()> {
    let p = root.join("ostree");
    if let Some(m) = lmeta(&p) {
        if m.file_type().is_symlink()
            && io(&p, std::fs::read_link(&p))? == Path::new("sysroot/ostree")
        {
            return Ok(());
        }
        remove_any(&p)?;
    }
    io(&p, std::os::unix::fs::symlink("sysroot/ostree", &p))?;
    r.push(
        ActionKind::Linked,
        "/ostree",
        Some("sysroot/ostree"),
        "the booted system reaches its repo and deployments at /ostree",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn debian_like(d: &Path) {
        for p in [
            "usr/bin",
            "usr/lib",
            "etc/systemd",
            "var/lib/dpkg/info",
            "var/log/apt",
            "var/lib/pam",
            "var/spool",
            "root",
            "home",
            "opt",
            "srv",
            "mnt",
            "media",
            "usr/local/bin",
            "boot",
            "dev",
            "tmp",
        ] {
            fs::create_dir_all(d.join(p)).unwrap();
        }
        fs::write(
            d.join("usr/lib/os-release"),
            "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", d.join("etc/os-release")).unwrap();
        fs::write(d.join("etc/hostname"), "x\n").unwrap();
        fs::write(d.join("boot/vmlinuz-6.1.0-1-amd64"), "kernel").unwrap();
        fs::write(d.join("boot/initrd.img-6.1.0-1-amd64"), "initrd").unwrap();
        fs::write(d.join("boot/config-6.1.0-1-amd64"), "cfg").unwrap();
        std::os::unix::fs::symlink("boot/vmlinuz-6.1.0-1-amd64", d.join("vmlinuz")).unwrap();
        fs::write(d.join("var/lib/dpkg/status"), "Package: x\n").unwrap();
        fs::write(d.join("var/lib/pam/seen"), "a\n").unwrap();
        fs::write(d.join("var/log/apt/history.log"), "log\n").unwrap();
        std::os::unix::fs::symlink("/run", d.join("var/run")).unwrap();
        fs::write(d.join("root/.bashrc"), "bash\n").unwrap();
        fs::set_permissions(d.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(d.join("dev/null-ish"), "").unwrap();
    }

    #[test]
    fn transforms_and_is_idempotent() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        debian_like(d);
        let r = transform(d).unwrap();
        assert_eq!(r.kernels, vec!["6.1.0-1-amd64"]);
        assert_eq!(
            fs::read(d.join("usr/lib/modules/6.1.0-1-amd64/vmlinuz")).unwrap(),
            b"kernel"
        );
        assert_eq!(
            fs::read(d.join("usr/lib/modules/6.1.0-1-amd64/initramfs.img")).unwrap(),
            b"initrd"
        );
        assert!(fs::read_dir(d.join("boot")).unwrap().next().is_none());
        assert!(!d.join("vmlinuz").exists());
        assert!(!d.join("etc").exists());
        assert_eq!(fs::read(d.join("usr/etc/hostname")).unwrap(), b"x\n");
        assert_eq!(
            fs::read(d.join("usr/lib/sysimage/dpkg/status")).unwrap(),
            b"Package: x\n"
        );
        assert!(fs::read_dir(d.join("var")).unwrap().next().is_none());
        assert_eq!(
            fs::read_link(d.join("home")).unwrap(),
            Path::new("var/home")
        );
        assert_eq!(
            fs::read_link(d.join("root")).unwrap(),
            Path::new("var/roothome")
        );
        assert_eq!(
            fs::read_link(d.join("usr/local")).unwrap(),
            Path::new("../var/usrlocal")
        );
        assert_eq!(
            fs::read_link(d.join("ostree")).unwrap(),
            Path::new("sysroot/ostree")
        );
        assert_eq!(
            fs::read(d.join("usr/share/factory/var/roothome/.bashrc")).unwrap(),
            b"bash\n"
        );
        assert!(!d.join("usr/share/factory/var/log").exists());
        let tf = fs::read_to_string(d.join(TMPFILES)).unwrap();
        for want in [
            "L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg",
            "d /var/roothome 0700",
            "C /var/roothome/.bashrc - - - - /usr/share/factory/var/roothome/.bashrc",
            "L /var/run - - - - /run",
            "C /var/lib/pam/seen",
            "d /var/spool 0755 0 0 -",
        ] {
            assert!(tf.contains(want), "missing {want:?} in\n{tf}");
        }
        assert!(!tf.contains("history.log"));
        assert!(fs::read_dir(d.join("dev")).unwrap().next().is_none());
        assert!(d.join("sysroot").is_dir());
        let again = transform(d).unwrap();
        assert!(again.unchanged(), "{:?}", again.actions);
        assert_eq!(fs::read_to_string(d.join(TMPFILES)).unwrap(), tf);
    }

    #[test]
    fn refuses_without_kernel_or_initramfs() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        debian_like(d);
        fs::remove_file(d.join("boot/initrd.img-6.1.0-1-amd64")).unwrap();
        assert!(matches!(transform(d), Err(Error::NoInitramfs { .. })));
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("usr")).unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        assert!(matches!(transform(t.path()), Err(Error::NoKernel { .. })));
        assert!(matches!(
            transform(&t.path().join("nope")),
            Err(Error::NotARootfs(..))
        ));
    }
}
