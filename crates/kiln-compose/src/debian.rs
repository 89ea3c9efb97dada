//! `kiln compose debian MANIFEST`: bootstrap Debian with mmdebstrap (cached
//! by the manifest's package-level inputs), add kiln's boot pieces, build
//! the initramfs with a prepare-root in it (cached by the pieces'
//! hash), add the manifest's files and units, transform, commit.
//!
//! Crash safety: caches are built in `*.partial-PID` and renamed into place
//! when complete; work trees live under `work/PID` and are removed by the
//! next run once their process is gone; the ref moves only after the whole
//! commit is written (kiln-store). Fail points: `compose:after-bootstrap`,
//! `compose:after-initramfs`, `compose:after-transform`,
//! `compose:before-commit`.

use crate::error::{Error, Result};
use crate::manifest::{Manifest, PrepareRoot};
use crate::pieces::{self, BootPieces};
use crate::run;
use crate::transform::{self, TransformReport};
use crate::Log;
use kiln_store::commit::{CommitOptions, TreeSource};
use kiln_store::gvariant::{Value, VarDict};
use kiln_store::{failpoint, Checksum, Progress, Repo};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// The repo to commit into (created as `archive` if missing? no: it
    /// must exist, as for `kiln repo commit`).
    pub repo: PathBuf,
    /// Overrides the manifest's `ref`.
    pub branch: Option<String>,
    /// Overrides the manifest's `version`.
    pub version: Option<String>,
    /// Root of the caches (`rootfs/`, `initramfs/`, `work/`).
    pub cache_dir: PathBuf,
    pub pieces: BootPieces,
    /// Overrides the manifest's and the machine's mirror.
    pub mirror: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComposeResult {
    pub commit: String,
    pub branch: String,
    pub version: Option<String>,
    pub rootfs_key: String,
    /// The bootstrapped root file system came from the cache.
    pub rootfs_cached: bool,
    pub initramfs_cached: bool,
    pub kernel: String,
    pub transform: TransformReport,
}

/// Debian sources of this machine: (uri, suites) of `deb` entries.
pub fn host_sources() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            if f.extension().is_some_and(|e| e == "sources") {
                out.extend(parse_deb822(&text));
            } else if f.extension().is_some_and(|e| e == "list") {
                out.extend(parse_one_line(&text));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        out.extend(parse_one_line(&text));
    }
    out
}

fn parse_deb822(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut enabled = true;
        for line in block.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let vals: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            match k.trim().to_ascii_lowercase().as_str() {
                "types" => types = vals,
                "uris" => uris = vals,
                "suites" => suites = vals,
                "enabled" => enabled = v.trim() != "no",
                _ => {}
            }
        }
        if enabled && types.iter().any(|t| t == "deb") {
            for u in uris {
                out.push((u, suites.clone()));
            }
        }
    }
    out
}

fn parse_one_line(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut w: Vec<&str> = line.split_whitespace().collect();
        if w.first() != Some(&"deb") {
            continue;
        }
        w.remove(0);
        if w.first().is_some_and(|x| x.starts_with('[')) {
            while let Some(x) = w.first() {
                let end = x.ends_with(']');
                w.remove(0);
                if end {
                    break;
                }
            }
        }
        if w.len() >= 2 {
            out.push((w[0].to_string(), vec![w[1].to_string()]));
        }
    }
    out
}

/// The machine's mirror for `suite` (the issue: "the Debian mirror the
/// machine is configured with").
pub fn host_mirror(suite: &str) -> Option<String> {
    let srcs = host_sources();
    srcs.iter()
        .find(|(_, s)| s.iter().any(|x| x == suite))
        .or_else(|| srcs.iter().find(|(u, _)| !u.contains("security")))
        .map(|(u, _)| u.clone())
}

fn host_arch() -> Option<String> {
    run::output(Command::new("dpkg").arg("--print-architecture"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Check every package name against this machine's apt lists, before
/// anything is built. Returns a note when it cannot check (another suite
/// or architecture than the machine's).
pub fn check_packages(m: &Manifest) -> Result<Option<String>> {
    if m.packages.is_empty() {
        return Ok(None);
    }
    let suites = host_sources();
    if !suites.iter().any(|(_, s)| s.iter().any(|x| x == &m.suite))
        || host_arch().as_deref() != Some(m.architecture.as_str())
    {
        return Ok(Some(format!(
            "package names not checked in advance: this machine's apt has no {}/{} lists",
            m.suite, m.architecture
        )));
    }
    let out = run::output(Command::new("apt-cache").arg("policy").args(&m.packages))?;
    let mut known = std::collections::HashSet::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            cur = Some(line.trim_end_matches(':').to_string());
        } else if let (Some(c), Some(cand)) = (&cur, line.trim().strip_prefix("Candidate:")) {
            if cand.trim() != "(none)" {
                known.insert(c.clone());
            }
        }
    }
    let unknown: Vec<String> = m
        .packages
        .iter()
        .filter(|p| !known.contains(*p))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Error::UnknownPackages {
            path: m.path.clone(),
            packages: unknown,
            suite: m.suite.clone(),
            arch: m.architecture.clone(),
        });
    }
    Ok(None)
}

fn pid_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// Remove `*.partial-PID` entries and `work/PID` trees of dead processes.
fn clean_stale(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = match name.rsplit_once(".partial-") {
            Some((_, pid)) => pid.to_string(),
            None if dir.ends_with("work") => name.clone(),
            None => continue,
        };
        if pid != std::process::id().to_string() && !pid_alive(&pid) {
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).map_err(|err| Error::io(&p, err))?;
            } else {
                std::fs::remove_file(&p).map_err(|err| Error::io(&p, err))?;
            }
        }
    }
    Ok(())
}

fn mkdirs(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))
}

fn bootstrap(m: &Manifest, mirror: &str, dest: &Path, logfile: &Path) -> Result<()> {
    let mut cmd = Command::new("mmdebstrap");
    cmd.arg("--mode=root")
        .arg(format!("--variant={}", m.variant))
        .arg(format!("--architectures={}", m.architecture));
    if !m.packages.is_empty() {
        cmd.arg(format!("--include={}", m.packages.join(",")));
    }
    if let Some(mods) = &m.initramfs_modules {
        // Before the kernel's postinst builds the first initramfs.
        let mut script = String::from("set -e; mkdir -p \"$1/etc/initramfs-tools/conf.d\" \"$1/usr/share/initramfs-tools/modules.d\"; printf 'MODULES=list\\n' > \"$1/etc/initramfs-tools/conf.d/kiln.conf\"; : > \"$1/usr/share/initramfs-tools/modules.d/kiln\"");
        for md in mods {
            script.push_str(&format!(
                "; echo {md} >> \"$1/usr/share/initramfs-tools/modules.d/kiln\""
            ));
        }
        // The same for dracut, when the tree uses it.
        script.push_str(&format!(
            "; mkdir -p \"$1/etc/dracut.conf.d\"; printf 'hostonly=\"no\"\\ndrivers=\"{}\"\\n' > \"$1/etc/dracut.conf.d/10-kiln.conf\"",
            mods.join(" ")
        ));
        cmd.arg(format!("--setup-hook={script}"));
    }
    if m.exclude_docs {
        for a in [
            "path-exclude=/usr/share/man/*",
            "path-exclude=/usr/share/locale/*",
            "path-include=/usr/share/locale/locale.alias",
            "path-exclude=/usr/share/doc/*",
            "path-include=/usr/share/doc/*/copyright",
            "path-exclude=/usr/share/info/*",
        ] {
            cmd.arg(format!("--dpkgopt={a}"));
        }
    }
    cmd.arg(&m.suite).arg(dest).arg(mirror);
    run::logged(&mut cmd, logfile)
}

/// Which tool builds the tree's initramfs, and with which prepare-root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitramfsTool {
    /// Debian's default; kiln-prepare-root runs from its init-bottom hook.
    InitramfsTools,
    /// dracut with kiln's `50kiln` or ostree's `98ostree` module.
    Dracut,
}

fn initramfs_tool(root: &Path, m: &Manifest) -> Result<InitramfsTool> {
    let has = |p: &str| root.join(p).exists();
    let tool = if has("usr/sbin/mkinitramfs") {
        InitramfsTool::InitramfsTools
    } else if has("usr/bin/dracut") {
        InitramfsTool::Dracut
    } else {
        return Err(Error::Invalid(
            "the tree has neither initramfs-tools nor dracut: add one of them to the packages"
                .into(),
        ));
    };
    if m.prepare_root == PrepareRoot::Ostree {
        if tool != InitramfsTool::Dracut {
            return Err(Error::Invalid("prepare-root = \"ostree\" needs dracut (Debian's ostree-boot ships only a dracut module): use packages dracut and ostree-boot instead of initramfs-tools".into()));
        }
        if !has("usr/lib/dracut/modules.d/98ostree") {
            return Err(Error::Invalid(
                "prepare-root = \"ostree\" needs the package ostree-boot in the tree".into(),
            ));
        }
    }
    Ok(tool)
}

/// Build the initramfs of `kver` inside `root` (a private mount namespace,
/// so a kill leaves no mounts behind) and return its path inside `root`.
fn build_initramfs(
    root: &Path,
    kver: &str,
    tool: InitramfsTool,
    m: &Manifest,
    logfile: &Path,
) -> Result<PathBuf> {
    let build = match tool {
        InitramfsTool::InitramfsTools => {
            "chroot \"$r\" mkinitramfs -o /tmp/kiln-initramfs.img \"$k\"".to_string()
        }
        InitramfsTool::Dracut => {
            let module = match m.prepare_root {
                PrepareRoot::Kiln => "kiln",
                PrepareRoot::Ostree => "ostree",
            };
            let drivers = m
                .initramfs_modules
                .as_ref()
                .map(|d| format!(" --drivers '{}'", d.join(" ")))
                .unwrap_or_default();
            format!("chroot \"$r\" dracut --quiet --force --no-hostonly --add '{module}'{drivers} /tmp/kiln-initramfs.img \"$k\"")
        }
    };
    let script = format!(
        "set -eu; r=$1; k=$2; mount -t proc proc \"$r/proc\"; mount -t sysfs sysfs \"$r/sys\"; mount --rbind /dev \"$r/dev\"; {build}"
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .arg(root)
    .arg(kver);
    run::logged(&mut cmd, logfile)?;
    Ok(root.join("tmp/kiln-initramfs.img"))
}

fn newest_kernel(root: &Path) -> Result<String> {
    let boot = root.join("boot");
    let mut k: Vec<String> = std::fs::read_dir(&boot)
        .map_err(|e| Error::io(&boot, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("vmlinuz-")
                .map(str::to_string)
        })
        .collect();
    k.sort();
    k.pop().ok_or_else(|| Error::NoKernel {
        path: root.to_path_buf(),
    })
}

fn add_files(m: &Manifest, root: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for f in &m.files {
        let p = root.join(f.path.trim_start_matches('/'));
        let data = match (&f.content, &f.source) {
            (Some(c), _) => c.clone().into_bytes(),
            (None, Some(s)) => {
                let sp = m.source_path(s);
                std::fs::read(&sp).map_err(|e| Error::io(&sp, e))?
            }
            (None, None) => Vec::new(),
        };
        if let Some(parent) = p.parent() {
            // Refuse to write through a symlinked directory of the tree.
            let mut cur = root.to_path_buf();
            for c in parent
                .strip_prefix(root)
                .unwrap_or(Path::new(""))
                .components()
            {
                cur.push(c);
                if std::fs::symlink_metadata(&cur).is_ok_and(|md| md.file_type().is_symlink()) {
                    return Err(Error::Invalid(format!(
                        "file {}: /{} is a symlink in the tree; give the real path",
                        f.path,
                        cur.strip_prefix(root).unwrap_or(&cur).display()
                    )));
                }
            }
            mkdirs(parent)?;
        }
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, data).map_err(|e| Error::io(&p, e))?;
        let mode = f
            .mode
            .as_deref()
            .and_then(|s| u32::from_str_radix(s, 8).ok())
            .unwrap_or(0o644);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

fn systemctl(root: &Path, verb: &str, units: &[String]) -> Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    run::output(
        Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .arg(verb)
            .args(units),
    )
    .map(|_| ())
}

/// Commit a transformed tree to `branch` with `version` in its metadata.
pub fn commit_tree(
    repo: &Path,
    tree: &Path,
    branch: &str,
    version: Option<&str>,
    subject: &str,
) -> Result<Checksum> {
    let repo = Repo::open(repo)?;
    let mut metadata = VarDict::new();
    if let Some(v) = version {
        metadata.push("version", Value::str(v));
    }
    let opts = CommitOptions {
        branch: Some(branch.to_string()),
        subject: subject.to_string(),
        metadata,
        sources: vec![TreeSource::Dir(tree.to_path_buf())],
        ..Default::default()
    };
    failpoint::hit("compose:before-commit");
    let r = repo.commit(&opts, &Progress::new())?;
    Ok(r.commit)
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

pub fn compose(m: &Manifest, opts: &ComposeOptions, log: Log) -> Result<ComposeResult> {
    // Everything that can be checked is checked before anything is built.
    opts.pieces.check()?;
    Repo::open(&opts.repo)?;
    let branch = opts.branch.clone().unwrap_or_else(|| m.ref_.clone());
    kiln_store::refs::RefSpec::parse(&branch)?;
    let version = opts.version.clone().or_else(|| m.version.clone());
    if let Some(note) = check_packages(m)? {
        log(&note);
    }
    let mirror = opts
        .mirror
        .clone()
        .or_else(|| m.mirror.clone())
        .or_else(|| host_mirror(&m.suite))
        .ok_or_else(|| {
            Error::Invalid(
                "no Debian mirror: set `mirror` in the manifest (none found in /etc/apt/sources*)"
                    .into(),
            )
        })?;
    let key = m.rootfs_key(&mirror);
    let rootfs_dir = opts.cache_dir.join("rootfs");
    let initramfs_dir = opts.cache_dir.join("initramfs");
    let work_dir = opts.cache_dir.join("work");
    for d in [&rootfs_dir, &initramfs_dir, &work_dir] {
        mkdirs(d)?;
        clean_stale(d)?;
    }
    let pid = std::process::id();
    let cached = rootfs_dir.join(&key);
    let rootfs_cached = cached.join("tree").is_dir();
    if rootfs_cached {
        log(&format!("root file system: cached ({})", cached.display()));
    } else {
        let partial = rootfs_dir.join(format!("{key}.partial-{pid}"));
        mkdirs(&partial)?;
        log(&format!(
            "bootstrapping Debian {} {} from {mirror} with mmdebstrap ({} packages)…",
            m.suite,
            m.architecture,
            m.packages.len()
        ));
        bootstrap(
            m,
            &mirror,
            &partial.join("tree"),
            &partial.join("mmdebstrap.log"),
        )?;
        failpoint::hit("compose:after-bootstrap");
        let inputs = serde_json::json!({"suite": m.suite, "architecture": m.architecture, "mirror": mirror, "variant": m.variant, "packages": m.packages, "initramfs-modules": m.initramfs_modules});
        std::fs::write(partial.join("inputs.json"), inputs.to_string())
            .map_err(|e| Error::io(&partial, e))?;
        if let Err(e) = std::fs::rename(&partial, &cached) {
            // Another compose finished the same tree first: use it.
            if !cached.join("tree").is_dir() {
                return Err(Error::io(&cached, e));
            }
            let _ = std::fs::remove_dir_all(&partial);
        }
        log(&format!(
            "root file system: built and cached ({})",
            cached.display()
        ));
    }
    let work = work_dir.join(pid.to_string());
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    }
    mkdirs(&work)?;
    let result = (|| -> Result<ComposeResult> {
        let tree = work.join("tree");
        run::output(
            Command::new("cp")
                .arg("-a")
                .arg("--reflink=auto")
                .arg(cached.join("tree"))
                .arg(&tree),
        )?;
        let kver = newest_kernel(&tree)?;
        opts.pieces.install(&tree)?;
        let tool = initramfs_tool(&tree, m)?;
        let ikey = sha(&[
            &key,
            &opts.pieces.initramfs_hash()?,
            &kver,
            &format!("{tool:?}/{:?}", m.prepare_root),
        ]);
        let icache = initramfs_dir.join(format!("{ikey}.img"));
        let initramfs_cached = icache.is_file();
        if initramfs_cached {
            log(&format!(
                "initramfs ({tool:?}, {:?} prepare-root): cached",
                m.prepare_root
            ));
        } else {
            log(&format!(
                "building the initramfs of {kver} ({tool:?}, {:?} prepare-root)…",
                m.prepare_root
            ));
            let built = build_initramfs(&tree, &kver, tool, m, &work.join("mkinitramfs.log"))?;
            let partial = initramfs_dir.join(format!("{ikey}.img.partial-{pid}"));
            std::fs::copy(&built, &partial).map_err(|e| Error::io(&partial, e))?;
            std::fs::rename(&partial, &icache).map_err(|e| Error::io(&icache, e))?;
            let _ = std::fs::remove_file(&built);
        }
        let dest = tree.join(format!("boot/initrd.img-{kver}"));
        let _ = std::fs::remove_file(&dest);
        std::fs::copy(&icache, &dest).map_err(|e| Error::io(&dest, e))?;
        // dracut writes 0600; the tree's other boot files are 0644.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| Error::io(&dest, e))?;
        }
        failpoint::hit("compose:after-initramfs");
        add_files(m, &tree)?;
        let mut units: Vec<String> = pieces::UNITS.iter().map(|s| s.to_string()).collect();
        units.extend(m.units.iter().cloned());
        systemctl(&tree, "enable", &units)?;
        systemctl(&tree, "mask", &m.mask_units)?;
        let report = transform::transform(&tree)?;
        failpoint::hit("compose:after-transform");
        let subject = m.subject.clone().unwrap_or_else(|| {
            format!(
                "kiln compose {branch}{}",
                version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            )
        });
        log(&format!("committing to {branch}…"));
        let commit = commit_tree(&opts.repo, &tree, &branch, version.as_deref(), &subject)?;
        Ok(ComposeResult {
            commit: commit.to_string(),
            branch: branch.clone(),
            version: version.clone(),
            rootfs_key: key.clone(),
            rootfs_cached,
            initramfs_cached,
            kernel: kver,
            transform: report,
        })
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let d = parse_deb822("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb-src\nURIs: http://x\nSuites: bookworm\n");
        assert_eq!(
            d,
            vec![(
                "http://deb.debian.org/debian".to_string(),
                vec!["bookworm".to_string(), "bookworm-updates".to_string()]
            )]
        );
        let l = parse_one_line("# c\ndeb [arch=amd64 signed-by=/k] http://m/debian bookworm main\ndeb http://s bookworm-security main\n");
        assert_eq!(
            l[0],
            ("http://m/debian".to_string(), vec!["bookworm".to_string()])
        );
        assert_eq!(l.len(), 2);
    }
}
