//! dpkg confined to the new tree: a private mount namespace (util-linux
//! `unshare`) mounts an overlay of the base checkout (read-only lower) and
//! a scratch upper directory, and bubblewrap runs dpkg with that overlay
//! as `/`: fresh `/proc`, `/dev`, `/tmp`, `/run`, no network, nothing of
//! the host's `/etc`, `/var` or `/home`. The mounts vanish with the
//! processes; `setpriv --pdeathsig` and `--die-with-parent` end them if
//! kiln dies.

use super::error::{io, Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) struct Overlay {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

fn plain(p: &Path) -> Result<String> {
    let s = p.to_string_lossy().into_owned();
    if s.contains([',', ':', '\n', '"', '\'', '\\', ' ']) {
        return Err(Error::Invalid(format!(
            "{s}: the layering work directory must not contain , : quotes, blanks or backslashes"
        )));
    }
    Ok(s)
}

/// Prepare `upper` so that dpkg finds what a booted system has: the dpkg
/// database at `/var/lib/dpkg`, `/etc` (the tree keeps it in `/usr/etc`),
/// and the `/var` directories that `/opt`, `/usr/local`… link to.
pub(crate) fn prepare_upper(o: &Overlay) -> Result<()> {
    let lower = &o.lower;
    let upper = &o.upper;
    let lmeta = |p: &str| std::fs::symlink_metadata(lower.join(p)).ok();
    if lmeta("usr/lib/sysimage/dpkg").is_some_and(|m| m.is_dir()) && lmeta("var/lib/dpkg").is_none()
    {
        let d = upper.join("var/lib");
        io(&d, std::fs::create_dir_all(&d))?;
        let l = d.join("dpkg");
        io(
            &l,
            std::os::unix::fs::symlink("../../usr/lib/sysimage/dpkg", &l),
        )?;
    }
    let log = upper.join("var/log");
    io(&log, std::fs::create_dir_all(&log))?;
    if lmeta("etc").is_none() && lmeta("usr/etc").is_some_and(|m| m.is_dir()) {
        let l = upper.join("etc");
        io(&l, std::os::unix::fs::symlink("usr/etc", &l))?;
    }
    for name in ["opt", "usr/local", "srv", "home", "root", "mnt", "media"] {
        let p = lower.join(name);
        let Ok(target) = std::fs::read_link(&p) else {
            continue;
        };
        let t = target.to_string_lossy();
        let rel = t.trim_start_matches("../");
        if let Some(sub) = rel.strip_prefix("var/") {
            if !sub.is_empty() && !sub.contains("..") {
                let d = upper.join("var").join(sub);
                io(&d, std::fs::create_dir_all(&d))?;
            }
        }
    }
    Ok(())
}

fn tail(text: &str, n: usize) -> String {
    let v: Vec<&str> = text.trim_end().lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// Run `dpkg --purge REMOVE…` then `dpkg --install DEBS…` in the overlay.
/// `debs` are files of `deb_dir`, seen as `/tmp/kiln-debs/NAME` inside.
pub(crate) fn run_dpkg(
    o: &Overlay,
    deb_dir: &Path,
    debs: &[String],
    remove: &[String],
    log: &Path,
) -> Result<()> {
    for d in [&o.upper, &o.work, &o.merged] {
        io(d, std::fs::create_dir_all(d))?;
    }
    let script = r#"set -e
remove="$1"; shift
if [ -n "$remove" ]; then dpkg --force-unsafe-io --purge $remove; fi
if [ $# -gt 0 ]; then dpkg --force-unsafe-io --force-confold --install "$@"; fi
"#;
    // pdeathsig is set once setpriv runs: if kiln died before that, the
    // parent is no longer kiln and nothing may run.
    let mount = r#"[ "$PPID" = "$1" ] || exit 1; shift; mount -t overlay kiln-layer -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && shift 3 && m="$1" && shift && exec "$@""#;
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--pdeathsig",
        "KILL",
        "--",
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        mount,
        "sh",
    ])
    .arg(std::process::id().to_string())
    .arg(plain(&o.lower)?)
    .arg(plain(&o.upper)?)
    .arg(plain(&o.work)?)
    .arg(plain(&o.merged)?)
    .args([
        "bwrap",
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--bind",
    ])
    .arg(&o.merged)
    .args([
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "--ro-bind",
    ])
    .arg(deb_dir)
    .args([
        "/tmp/kiln-debs",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--setenv",
        "DEBIAN_FRONTEND",
        "noninteractive",
        "--setenv",
        "LC_ALL",
        "C",
        "--setenv",
        "HOME",
        "/",
        "--chdir",
        "/",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
    ])
    .arg(remove.join(" "))
    .args(debs.iter().map(|d| format!("/tmp/kiln-debs/{d}")));
    let f = io(log, std::fs::File::create(log))?;
    let f2 = io(log, f.try_clone())?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .status()
        .map_err(|source| Error::Spawn {
            cmd: "setpriv/unshare/bwrap".into(),
            source,
        })?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // The line(s) saying what failed first, then the end of the log.
        let mut summary: Vec<String> = Vec::new();
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            if l.starts_with("dpkg: error") || l.starts_with("dpkg-deb: error") {
                let mut s = l.trim_end_matches(':').to_string();
                if let Some(next) = lines.peek().filter(|n| n.starts_with(' ')) {
                    s.push_str(": ");
                    s.push_str(next.trim());
                }
                summary.push(s);
            }
        }
        if summary.is_empty() {
            summary.push(status.to_string());
        }
        return Err(Error::Dpkg {
            summary: summary.join("; "),
            log: tail(&text, 12),
        });
    }
    Ok(())
}
