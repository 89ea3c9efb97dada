//! Live apply (`kiln install --apply-live`, `kiln apply-live`) and
//! `kiln usroverlay`: changing the running system's `/usr` without a
//! reboot.
//!
//! Live apply switches the running `/usr` to a deployment that is already
//! the default (its BLS entries are written and synced first, so a crash at
//! any point boots the new deployment). The switch is one mount operation:
//! the new deployment's `usr` is bound read-only onto a staging point under
//! a private tmpfs in `/run/kiln` (so its parent mount is private:
//! `MS_MOVE` refuses a mount whose parent is shared, and systemd makes
//! every mount shared), then moved over `/usr`. Processes that had the old
//! `/usr` open keep their files; new ones see the new tree. A second live
//! apply stacks another mount on top.
//!
//! Policy ([`Sysroot::live_plan`], checked before anything is deployed):
//! only additions go live by default. A file of the base image that the
//! new tree changes or removes is refused unless `allow_replacement`;
//! files that only layered packages brought may change or go; package
//! manager state and kiln's generated files never count ([`is_generated`]).
//! A different kernel is always refused.
//!
//! After the switch: files new in `/usr/etc` are added to the running
//! `/etc` (an existing path is never overwritten), `systemd-sysusers` and
//! `systemd-tmpfiles --create` run for the layering snippets, and systemd
//! reloads its units. `/run/kiln/live-applied` records what is live.
//!
//! `usroverlay` mounts a writable overlayfs on `/usr` whose upper layer is
//! on a tmpfs under `/run/kiln`: discarded at reboot, like `ostree admin
//! unlock`.

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::sysroot::Sysroot;
use kiln_store::{failpoint, Checksum};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Under the run directory: what is live on `/usr` (JSON, [`LiveState`]).
pub const LIVE_STATE: &str = "kiln/live-applied";
/// Under the run directory: the tmpfs holding `usroverlay`'s upper layer.
pub const USR_OVERLAY_DIR: &str = "kiln/usr-overlay";
/// Commit metadata naming the base of a layered commit.
const META_BASE: &str = "kiln.layer.base";

/// Paths (prefixes ending in `/`, or exact paths) whose changes are
/// package-manager state, caches regenerated on every install, or files
/// kiln writes itself: they never count as replacing a base file.
pub const GENERATED: &[&str] = &[
    // dpkg's database (status, info/*.list, triggers, …).
    "/usr/lib/sysimage/dpkg/",
    // Configuration defaults: the running /etc is separate; new files are
    // added to it, changed ones (passwd, group, shadow, ld.so.cache, …)
    // only matter at the next /etc merge.
    "/usr/etc/",
    // kiln's layering snippets and compose's /var list.
    "/usr/lib/sysusers.d/kiln-layer.conf",
    "/usr/lib/tmpfiles.d/kiln-layer.conf",
    "/usr/lib/tmpfiles.d/kiln-var.conf",
    // Default /var content, copied only where /var lacks it.
    "/usr/share/factory/",
    // Caches rebuilt by dpkg triggers.
    "/usr/share/info/dir",
    "/usr/share/mime/",
    "/usr/share/glib-2.0/schemas/gschemas.compiled",
    "/usr/share/applications/mimeinfo.cache",
    "/usr/lib/locale/locale-archive",
];

/// Also generated: `icon-theme.cache` anywhere, the gio module and
/// gdk-pixbuf loader caches.
const GENERATED_SUFFIXES: &[&str] = &[
    "/icon-theme.cache",
    "/gio/modules/giomodule.cache",
    "/loaders.cache",
];

/// Is `path` (absolute, in a commit) package-manager state or a generated
/// cache? See [`GENERATED`].
pub fn is_generated(path: &str) -> bool {
    GENERATED.iter().any(|g| {
        if g.ends_with('/') {
            path.starts_with(g) || path == g.trim_end_matches('/')
        } else {
            path == *g
        }
    }) || GENERATED_SUFFIXES.iter().any(|s| path.ends_with(s))
}

/// Backup files of the user databases: never copied into `/etc` live.
const BACKUPS: &[&str] = &[
    "passwd-", "group-", "shadow-", "gshadow-", "subuid-", "subgid-",
];

/// What `/run/kiln/live-applied` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveState {
    /// `CHECKSUM.SERIAL` of the booted deployment (its `/etc` runs).
    pub booted: String,
    /// `CHECKSUM.SERIAL` of the deployment whose `/usr` is mounted.
    pub deployment: String,
    /// Its commit.
    pub commit: String,
    /// When it was applied (seconds since the epoch, and ISO 8601).
    pub time: u64,
    pub time_iso: String,
    /// Every deployment mounted on `/usr` since boot, oldest first (each
    /// live apply stacks a mount; the last is `deployment`). All of them
    /// are kept until reboot: a covered mount's root is a mount point.
    pub stack: Vec<String>,
    /// Base files changed or removed by this apply (`--allow-replacement`).
    pub replaced: Vec<String>,
}

/// What a live apply would change, decided before deploying.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LivePlan {
    /// The commit live on `/usr` now.
    pub from: String,
    pub to: String,
    /// New paths under `/usr`.
    pub added: Vec<String>,
    /// Files of layered packages changed or removed (allowed).
    pub layered_changed: Vec<String>,
    /// Files of the base image changed or removed (needs
    /// `allow_replacement`).
    pub replaced: Vec<String>,
    /// Package-manager state and generated files (not counted).
    pub generated: Vec<String>,
    /// Changes outside `/usr` (they take effect at the next boot only).
    pub outside_usr: Vec<String>,
}

impl LivePlan {
    /// Modified and removed paths of every kind: what running programs
    /// may still use from the old tree.
    pub fn changed(&self) -> impl Iterator<Item = &String> {
        self.layered_changed.iter().chain(self.replaced.iter())
    }
}

/// A running process using files the live apply replaced or removed.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessUse {
    pub pid: u32,
    pub command: String,
    pub files: Vec<String>,
}

/// What a live apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveReport {
    /// `CHECKSUM.SERIAL` now live.
    pub deployment: String,
    /// Files copied into the running `/etc` (new in `/usr/etc`).
    pub etc_added: Vec<String>,
    /// New in `/usr/etc` but already present in `/etc`: kept as they are.
    pub etc_kept: Vec<String>,
    /// Commands run (sysusers, tmpfiles, daemon-reload).
    pub ran: Vec<String>,
    /// Things that could not be done and happen at the next boot instead.
    pub warnings: Vec<String>,
    /// Processes mapping replaced or removed files (restart them).
    pub processes: Vec<ProcessUse>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mount_err(what: &str, path: &Path, e: rustix::io::Errno) -> Error {
    Error::LiveMount {
        what: what.to_string(),
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    }
}

/// One mount of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

/// `\040`-style escapes of mountinfo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &s[i + 1..i + 4];
            if oct.len() == 3 && oct.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                if let Ok(v) = u8::from_str_radix(oct, 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text (in mount order: later entries are on top).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                mount_point: unescape_mountinfo(f.get(4)?),
                options: f.get(5)?.to_string(),
                fs_type: r.first()?.to_string(),
            })
        })
        .collect()
}

/// The top mount at `path` in this process's mount namespace.
fn top_mount(path: &Path) -> Option<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy();
    parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == want)
}

/// The running system's `/usr` (the booted root's).
fn running_usr(root: &Path) -> PathBuf {
    root.join("usr")
}

impl Sysroot {
    fn live_state_path(&self) -> PathBuf {
        self.opts.run_dir.join(LIVE_STATE)
    }

    /// What is live on `/usr`, when a live apply happened since boot (and
    /// it belongs to the booted deployment).
    pub fn live_state(&self) -> Option<LiveState> {
        let booted = self.booted_deployment()?;
        let text = std::fs::read_to_string(self.live_state_path()).ok()?;
        let st: LiveState = serde_json::from_str(&text).ok()?;
        (st.booted == booted.dirname()).then_some(st)
    }

    /// The deployment whose `/usr` is live (when not the booted one).
    pub fn live_deployment(&self) -> Option<&Deployment> {
        let st = self.live_state()?;
        self.deployments
            .iter()
            .find(|d| !d.staged && d.dirname() == st.deployment)
    }

    /// Every deployment mounted on `/usr` since boot (kept until reboot).
    pub fn live_stack(&self) -> Vec<&Deployment> {
        let Some(st) = self.live_state() else {
            return Vec::new();
        };
        self.deployments
            .iter()
            .filter(|d| !d.staged && st.stack.contains(&d.dirname()))
            .collect()
    }

    /// Is the running `/usr` a `usroverlay` (writable, transient)?
    pub fn usr_unlocked(&self) -> bool {
        if !self.root_is_booted {
            return false;
        }
        top_mount(&running_usr(&self.opts.root)).is_some_and(|m| m.fs_type == "overlay")
    }

    /// Refuse a live apply before anything is built or deployed: the
    /// sysroot must be the running system, `/usr` not unlocked.
    pub fn live_preflight(&self) -> Result<()> {
        if !self.root_is_booted || self.booted_deployment().is_none() {
            return Err(Error::LiveNotBooted(self.opts.path.clone()));
        }
        if self.usr_unlocked() {
            return Err(Error::LiveUnlocked);
        }
        Ok(())
    }

    /// The commit live on `/usr` now.
    fn live_commit(&self) -> Result<Checksum> {
        if let Some(st) = self.live_state() {
            if let Ok(c) = st.commit.parse::<Checksum>() {
                if self.repo.read_commit(&c).is_ok() {
                    return Ok(c);
                }
            }
        }
        self.booted_deployment()
            .map(|b| b.csum)
            .ok_or_else(|| Error::LiveNotBooted(self.opts.path.clone()))
    }

    fn has_path(&self, commit: &Checksum, path: &str) -> Result<bool> {
        match self.repo.resolve_path(commit, path) {
            Ok(_) => Ok(true),
            Err(kiln_store::Error::NoSuchPath(_) | kiln_store::Error::Invalid { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Decide whether `new` may go live (see the module docs). Errors:
    /// not booted, `/usr` unlocked, another kernel, base files replaced
    /// without `allow_replacement`. Changes nothing.
    pub fn live_plan(&self, new: &Checksum, allow_replacement: bool) -> Result<LivePlan> {
        self.live_preflight()?;
        let from = self.live_commit()?;
        let diff = self.repo.diff_commits(&from, new)?;
        let base = self
            .repo
            .read_commit(&from)?
            .metadata
            .get_str(META_BASE)
            .and_then(|s| s.parse::<Checksum>().ok())
            .unwrap_or(from);
        let mut plan = LivePlan {
            from: from.to_string(),
            to: new.to_string(),
            ..Default::default()
        };
        // Kernel: never live.
        let mut kernel: Vec<String> = diff
            .added
            .iter()
            .chain(&diff.modified)
            .chain(&diff.removed)
            .filter(|p| is_kernel_path(p))
            .cloned()
            .collect();
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        let running = format!("/usr/lib/modules/{release}");
        if self.has_path(&from, &running)? && !self.has_path(new, &running)? {
            kernel.push(format!("{running} (the running kernel's modules) removed"));
        }
        if !kernel.is_empty() {
            return Err(Error::LiveKernel(kernel));
        }
        for p in &diff.added {
            if p.starts_with("/usr/") {
                plan.added.push(p.clone());
            } else {
                plan.outside_usr.push(p.clone());
            }
        }
        for p in diff.modified.iter().chain(&diff.removed) {
            if !p.starts_with("/usr/") {
                plan.outside_usr.push(p.clone());
            } else if is_generated(p) {
                plan.generated.push(p.clone());
            } else if self.has_path(&base, p)? {
                plan.replaced.push(p.clone());
            } else {
                plan.layered_changed.push(p.clone());
            }
        }
        plan.replaced.sort();
        if !plan.replaced.is_empty() && !allow_replacement {
            return Err(Error::LiveReplaces(plan.replaced.clone()));
        }
        Ok(plan)
    }

    /// Switch the running `/usr` to `d` (the default deployment, already
    /// written) and bring `/etc`, users, tmpfiles and systemd along.
    /// `plan` comes from [`Sysroot::live_plan`]. An error says that `d`
    /// boots next anyway.
    pub fn live_apply(&mut self, d: &Deployment, plan: &LivePlan) -> Result<LiveReport> {
        failpoint::hit("live:after-deploy");
        let wrap = |e: Error| Error::LiveSwitch {
            deployment: d.dirname(),
            source: Box::new(e),
        };
        self.live_preflight().map_err(wrap)?;
        let booted = self
            .booted_deployment()
            .cloned()
            .ok_or_else(|| wrap(Error::LiveNotBooted(self.opts.path.clone())))?;
        let new_root = self.deployment_path(d);
        let usr = running_usr(&self.opts.root);
        // The state first (the new deployment is kept from then on), the
        // mount second; a failed mount puts the old state back.
        let previous = self.live_state();
        let mut stack = previous
            .as_ref()
            .map(|p| p.stack.clone())
            .unwrap_or_default();
        stack.push(d.dirname());
        let t = now();
        let st = LiveState {
            booted: booted.dirname(),
            deployment: d.dirname(),
            commit: d.csum.to_string(),
            time: t,
            time_iso: kiln_store::datetime::format_iso(t),
            stack,
            replaced: plan.replaced.clone(),
        };
        self.write_live_state(Some(&st)).map_err(wrap)?;
        if let Err(e) = self.switch_usr(&new_root.join("usr"), &usr) {
            let _ = self.write_live_state(previous.as_ref());
            return Err(wrap(e));
        }
        failpoint::hit("live:after-mount");
        let mut report = LiveReport {
            deployment: d.dirname(),
            ..Default::default()
        };
        self.add_etc_files(&new_root, plan, &mut report)
            .map_err(wrap)?;
        self.run_snippets(&mut report);
        if !plan.replaced.is_empty() || !plan.layered_changed.is_empty() {
            report.processes = processes_using(plan.changed());
        }
        Ok(report)
    }

    fn write_live_state(&self, st: Option<&LiveState>) -> Result<()> {
        let path = self.live_state_path();
        let Some(st) = st else {
            return fsutil::rm_rf(&path);
        };
        let json = serde_json::to_string_pretty(st)
            .map_err(|e| Error::invalid(format!("live state: {e}")))?;
        if let Some(dir) = path.parent() {
            fsutil::mkdir_p(dir, 0o755)?;
        }
        kiln_store::util::write_file_atomic(&path, format!("{json}\n").as_bytes(), 0o644)?;
        Ok(())
    }

    /// Bind `new_usr` read-only at a private staging point, then move it
    /// over `usr`: one atomic step for everyone looking at `/usr`.
    fn switch_usr(&self, new_usr: &Path, usr: &Path) -> Result<()> {
        if !new_usr.is_dir() {
            return Err(Error::io(
                new_usr,
                std::io::Error::from_raw_os_error(libc::ENOENT),
            ));
        }
        let kdir = self.opts.run_dir.join("kiln");
        fsutil::mkdir_p(&kdir, 0o755)?;
        let stage = kdir.join(format!("live-stage.{}", std::process::id()));
        fsutil::mkdir_p(&stage, 0o700)?;
        let res = (|| -> Result<()> {
            rustix::mount::mount(
                "kiln-live",
                &stage,
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                c"mode=0700",
            )
            .map_err(|e| mount_err("mounting a staging tmpfs on", &stage, e))?;
            rustix::mount::mount_change(&stage, MountPropagationFlags::PRIVATE)
                .map_err(|e| mount_err("making private", &stage, e))?;
            let point = stage.join("usr");
            fsutil::mkdir_p(&point, 0o755)?;
            rustix::mount::mount_bind(new_usr, &point)
                .map_err(|e| mount_err(&format!("binding {} on", new_usr.display()), &point, e))?;
            rustix::mount::mount_change(&point, MountPropagationFlags::PRIVATE)
                .map_err(|e| mount_err("making private", &point, e))?;
            rustix::mount::mount_remount(&point, MountFlags::BIND | MountFlags::RDONLY, "")
                .map_err(|e| mount_err("making read-only", &point, e))?;
            // The switch.
            rustix::mount::mount_move(&point, usr)
                .map_err(|e| mount_err(&format!("moving {} over", point.display()), usr, e))?;
            Ok(())
        })();
        let _ = rustix::mount::unmount(&stage, UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(stage.join("usr"));
        let _ = std::fs::remove_dir(&stage);
        res
    }

    /// Paths new in `/usr/etc` go to the running `/etc` unless something
    /// is there already (a local change always wins).
    fn add_etc_files(&self, new_root: &Path, plan: &LivePlan, r: &mut LiveReport) -> Result<()> {
        let etc = self.opts.root.join("etc");
        let mut skipped_dirs: Vec<String> = Vec::new();
        for p in &plan.added {
            let Some(rel) = p.strip_prefix("/usr/etc/") else {
                continue;
            };
            if rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                continue;
            }
            // Backups the shadow tools leave (`passwd-`, `shadow-`, …).
            if BACKUPS.contains(&rel) {
                continue;
            }
            if skipped_dirs
                .iter()
                .any(|d| rel.starts_with(d.as_str()) && rel[d.len()..].starts_with('/'))
            {
                continue;
            }
            let src = new_root.join("usr/etc").join(rel);
            let dest = etc.join(rel);
            // The parent must be a real directory of /etc (never follow a
            // link the admin put there).
            let parent_ok = dest
                .parent()
                .and_then(|pp| std::fs::symlink_metadata(pp).ok())
                .is_some_and(|m| m.is_dir());
            let Ok(meta) = std::fs::symlink_metadata(&src) else {
                continue;
            };
            if !parent_ok || fsutil::exists_nofollow(&dest) {
                r.etc_kept.push(format!("/etc/{rel}"));
                if meta.is_dir() {
                    skipped_dirs.push(rel.to_string());
                }
                continue;
            }
            if meta.is_dir() {
                std::fs::create_dir(&dest).map_err(|e| Error::io(&dest, e))?;
                fsutil::copy_dir_attrs(&src, &dest)?;
            } else {
                fsutil::copy_file(&src, &dest)?;
            }
            r.etc_added.push(format!("/etc/{rel}"));
        }
        Ok(())
    }

    /// sysusers and tmpfiles for the layering snippets, then systemd's
    /// daemon-reload when it is PID 1. A missing tool is a warning: the
    /// next boot does it.
    fn run_snippets(&self, r: &mut LiveReport) {
        let root = &self.opts.root;
        let usr = root.join("usr/lib");
        let rootarg = (root != Path::new("/")).then(|| format!("--root={}", root.display()));
        let sysusers = usr.join("sysusers.d/kiln-layer.conf");
        if sysusers.is_file() {
            let mut args: Vec<String> = rootarg.iter().cloned().collect();
            args.push("/usr/lib/sysusers.d/kiln-layer.conf".into());
            run_tool("systemd-sysusers", &args, r);
        }
        let tmpfiles: Vec<&str> = [
            "/usr/lib/tmpfiles.d/kiln-var.conf",
            "/usr/lib/tmpfiles.d/kiln-layer.conf",
        ]
        .into_iter()
        .filter(|p| root.join(p.trim_start_matches('/')).is_file())
        .collect();
        if !tmpfiles.is_empty() {
            let mut args: Vec<String> = vec!["--create".into()];
            args.extend(rootarg.iter().cloned());
            args.extend(tmpfiles.iter().map(|s| s.to_string()));
            run_tool("systemd-tmpfiles", &args, r);
        }
        let systemd_pid1 = root.join("run/systemd/system").is_dir()
            && std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd");
        if systemd_pid1 {
            run_tool("systemctl", &["daemon-reload".to_string()], r);
        }
    }

    /// `kiln usroverlay`: a writable overlay on the running `/usr`, its
    /// upper layer on a tmpfs under `/run/kiln` (gone at reboot). Returns
    /// the upper directory.
    pub fn usr_overlay(&self) -> Result<PathBuf> {
        if !self.root_is_booted || self.booted_deployment().is_none() {
            return Err(Error::NotBooted);
        }
        if self.usr_unlocked() {
            return Err(Error::AlreadyUnlocked);
        }
        let dir = self.opts.run_dir.join(USR_OVERLAY_DIR);
        fsutil::mkdir_p(&dir, 0o755)?;
        // A fresh tmpfs (a stale one from an unmounted overlay is replaced).
        rustix::mount::mount(
            "kiln-usr-overlay",
            &dir,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=0755",
        )
        .map_err(|e| mount_err("mounting a tmpfs on", &dir, e))?;
        let res = (|| -> Result<PathBuf> {
            rustix::mount::mount_change(&dir, MountPropagationFlags::PRIVATE)
                .map_err(|e| mount_err("making private", &dir, e))?;
            let (upper, work) = (dir.join("upper"), dir.join("work"));
            fsutil::mkdir_p(&upper, 0o755)?;
            fsutil::mkdir_p(&work, 0o755)?;
            let usr = running_usr(&self.opts.root);
            fsutil::copy_dir_attrs(&usr, &upper)?;
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                usr.display(),
                upper.display(),
                work.display()
            );
            let data = std::ffi::CString::new(data)
                .map_err(|_| Error::invalid("NUL in an overlay path"))?;
            rustix::mount::mount("overlay", &usr, "overlay", MountFlags::empty(), &*data)
                .map_err(|e| mount_err("mounting an overlay on", &usr, e))?;
            Ok(upper)
        })();
        if res.is_err() {
            let _ = rustix::mount::unmount(&dir, UnmountFlags::DETACH);
        }
        res
    }
}

fn run_tool(tool: &str, args: &[String], r: &mut LiveReport) {
    let line = format!("{tool} {}", args.join(" "));
    match std::process::Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => r.ran.push(line),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            r.warnings.push(format!(
                "{line} failed ({}): {}",
                o.status,
                err.lines().last().unwrap_or("").trim()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.warnings.push(format!(
            "{tool} not found: the next boot does this ({line})"
        )),
        Err(e) => r.warnings.push(format!("{line}: {e}")),
    }
}

/// Kernel, initramfs and boot files: a live apply never changes them.
fn is_kernel_path(p: &str) -> bool {
    if p.starts_with("/boot/") || p == "/boot" || p.starts_with("/usr/lib/ostree-boot") {
        return true;
    }
    let Some(rest) = p.strip_prefix("/usr/lib/modules/") else {
        return false;
    };
    let mut it = rest.split('/');
    let _kver = it.next();
    match (it.next(), it.next()) {
        (Some(name), None) => {
            name.starts_with("vmlinuz")
                || name.starts_with("initramfs")
                || name == "devicetree"
                || name == "dtb"
        }
        _ => false,
    }
}

/// Processes whose executable or memory maps are among `paths`, from
/// `/proc/*/exe` and `/proc/*/maps` (kiln itself excluded).
pub fn processes_using<'a>(paths: impl Iterator<Item = &'a String>) -> Vec<ProcessUse> {
    let wanted: BTreeSet<&str> = paths.map(String::as_str).collect();
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut pids: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|p| *p != me)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let mut files = BTreeSet::new();
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
            let e = exe.to_string_lossy();
            let e = e.trim_end_matches(" (deleted)");
            if wanted.contains(e) {
                files.insert(e.to_string());
            }
        }
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for l in maps.lines() {
                let Some(i) = l.find('/') else {
                    continue;
                };
                let p = l[i..].trim_end_matches(" (deleted)");
                if wanted.contains(p) {
                    files.insert(p.to_string());
                }
            }
        }
        if !files.is_empty() {
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            out.push(ProcessUse {
                pid,
                command,
                files: files.into_iter().collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_paths() {
        assert!(is_generated("/usr/lib/sysimage/dpkg/status"));
        assert!(is_generated("/usr/lib/sysimage/dpkg"));
        assert!(is_generated("/usr/etc/passwd"));
        assert!(is_generated("/usr/etc/ld.so.cache"));
        assert!(is_generated("/usr/share/icons/hicolor/icon-theme.cache"));
        assert!(is_generated("/usr/lib/tmpfiles.d/kiln-layer.conf"));
        assert!(!is_generated("/usr/bin/less"));
        assert!(!is_generated("/usr/lib/tmpfiles.d/other.conf"));
        assert!(!is_generated("/usr/etcetera"));
    }

    #[test]
    fn kernel_paths() {
        assert!(is_kernel_path("/usr/lib/modules/6.1.0-9-amd64/vmlinuz"));
        assert!(is_kernel_path(
            "/usr/lib/modules/6.1.0-9-amd64/initramfs.img"
        ));
        assert!(is_kernel_path("/boot/vmlinuz-6.1"));
        assert!(!is_kernel_path("/usr/lib/modules/6.1.0-9-amd64/extra/x.ko"));
        assert!(!is_kernel_path("/usr/lib/modules/6.1.0-9-amd64"));
    }

    #[test]
    fn mountinfo() {
        let t = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda2 rw\n\
                 30 22 0:21 /ostree/deploy/d/usr /usr ro,relatime shared:2 - ext4 /dev/vda2 rw\n\
                 31 30 0:40 / /usr rw,relatime - overlay overlay rw,lowerdir=/usr\n\
                 32 22 0:41 / /a\\040b rw - tmpfs tmpfs rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].options, "ro,relatime");
        assert_eq!(m[2].fs_type, "overlay");
        assert_eq!(m[3].mount_point, "/a b");
        let top = m.iter().rev().find(|x| x.mount_point == "/usr").unwrap();
        assert_eq!(top.fs_type, "overlay");
    }
}
