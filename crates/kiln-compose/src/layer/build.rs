//! Building a layered commit (see the module docs of [`super`]).

use super::apt::{host_arch, Apt};
use super::error::{io, Error, Result};
use super::merge::merge;
use super::post::{post_process, read_db};
use super::request::{LayerRequest, LocalDeb};
use super::sandbox::{prepare_upper, run_dpkg, Overlay};
use crate::Log;
use kiln_store::checkout::CheckoutOptions;
use kiln_store::commit::{CommitOptions, ParentSpec, TreeSource};
use kiln_store::{failpoint, Checksum, Progress, Repo};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const WORK_PREFIX: &str = "kiln-layer-";
const DPKG_STATUS: &str = "usr/lib/sysimage/dpkg/status";

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The sysroot's repo (bare).
    pub repo: PathBuf,
    pub base: Checksum,
    pub request: LayerRequest,
    /// The deployment's `/etc/apt` (sources, keys, preferences).
    pub apt_etc: PathBuf,
    /// kiln's cache (`/var/cache/kiln` of the stateroot): `debs/`,
    /// `apt-lists/`, `local/SHA256.deb`.
    pub cache_dir: PathBuf,
    /// Resolve only.
    pub dry_run: bool,
}

/// What apt decided.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Planned {
    /// `NAME VERSION` of each package installed (with dependencies).
    pub install: Vec<String>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    pub base: String,
    /// None with `dry_run`.
    pub commit: Option<String>,
    pub plan: Planned,
    pub new_users: Vec<String>,
    pub new_groups: Vec<String>,
    /// `/opt/NAME` and `/usr/local/NAME` moved under `/usr/lib`.
    pub relocated: Vec<String>,
}

/// Remove work directories of layering runs whose process is gone.
pub fn cleanup_stale(repo: &Path) {
    let Ok(rd) = std::fs::read_dir(repo.join("tmp")) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(WORK_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() || pid == std::process::id() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.len() <= 200
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Check a package name as given by a user.
pub fn check_name(n: &str) -> Result<()> {
    if valid_name(n) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{n:?} is not a Debian package name (lower case letters, digits, + - .)"
        )))
    }
}

/// Check a local `.deb` (readable, this architecture) and keep it in the
/// cache under its SHA-256.
pub fn import_local_deb(cache_dir: &Path, path: &Path) -> Result<LocalDeb> {
    let data = io(path, std::fs::read(path))?;
    let fields = std::process::Command::new("dpkg-deb")
        .arg("--field")
        .arg(path)
        .args(["Package", "Architecture"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: "dpkg-deb".into(),
            source,
        })?;
    if !fields.status.success() {
        let err = String::from_utf8_lossy(&fields.stderr);
        return Err(Error::BadDeb {
            path: path.to_path_buf(),
            why: err
                .lines()
                .next()
                .unwrap_or("dpkg-deb failed")
                .trim()
                .to_string(),
        });
    }
    let text = String::from_utf8_lossy(&fields.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let (name, arch) = (field("Package"), field("Architecture"));
    if !valid_name(&name) {
        return Err(Error::BadDeb {
            path: path.to_path_buf(),
            why: format!("invalid package name {name:?}"),
        });
    }
    let host = host_arch()?;
    if arch != "all" && arch != host {
        return Err(Error::ForeignArch {
            path: path.to_path_buf(),
            package: name,
            arch,
            host,
        });
    }
    let sha = hex::encode(Sha256::digest(&data));
    let dir = cache_dir.join("local");
    io(&dir, std::fs::create_dir_all(&dir))?;
    let dest = dir.join(format!("{sha}.deb"));
    if !dest.is_file() {
        let tmp = dir.join(format!(".{sha}.{}", std::process::id()));
        io(&tmp, std::fs::write(&tmp, &data))?;
        io(&dest, std::fs::rename(&tmp, &dest))?;
    }
    Ok(LocalDeb { name, sha256: sha })
}

/// Packages installed in a dpkg status file.
pub fn installed_packages(status: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(status).unwrap_or_default();
    let mut out = BTreeSet::new();
    for para in text.split("\n\n") {
        let mut name = None;
        let mut installed = false;
        for l in para.lines() {
            if let Some(v) = l.strip_prefix("Package:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("Status:") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), true) = (name, installed) {
            out.insert(n);
        }
    }
    out
}

/// Removes the work directory when the build ends (error or not).
struct Work(PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        io(to, std::fs::copy(from, to).map(|_| ()))?;
    }
    Ok(())
}

/// Build the layered commit of `opts.request` on `opts.base`. The work
/// directory is removed whatever happens; an error caused by a full file
/// system names the repo's file system and its free space.
pub fn build(opts: &BuildOptions, log: Log) -> Result<BuildResult> {
    build_in_work_dir(opts, log).map_err(|e| {
        if !e.is_enospc() {
            return e;
        }
        let free = rustix::fs::statvfs(&opts.repo)
            .map(|st| kiln_store::util::format_size(st.f_bavail.saturating_mul(st.f_frsize)))
            .unwrap_or_else(|_| "unknown".into());
        Error::NoSpace {
            repo: std::fs::canonicalize(&opts.repo).unwrap_or_else(|_| opts.repo.clone()),
            free,
            source: Box::new(e),
        }
    })
}

fn build_in_work_dir(opts: &BuildOptions, log: Log) -> Result<BuildResult> {
    // Absolute paths: apt and the sandbox run elsewhere.
    io(&opts.cache_dir, std::fs::create_dir_all(&opts.cache_dir))?;
    let abs = |p: &Path| io(p, std::fs::canonicalize(p));
    let opts = &BuildOptions {
        repo: abs(&opts.repo)?,
        cache_dir: abs(&opts.cache_dir)?,
        apt_etc: abs(&opts.apt_etc).unwrap_or_else(|_| opts.apt_etc.clone()),
        ..opts.clone()
    };
    let repo = Repo::open(&opts.repo)?;
    cleanup_stale(&opts.repo);
    let base_commit = repo.read_commit(&opts.base)?;
    let req = &opts.request;
    for n in req.packages.iter().chain(req.removed.iter()) {
        check_name(n)?;
    }
    let work = Work(
        opts.repo
            .join("tmp")
            .join(format!("{WORK_PREFIX}{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&work.0);
    io(&work.0, std::fs::create_dir_all(&work.0))?;
    let lower = work.0.join("tree");
    log(&format!("Checking out base {}", opts.base));
    repo.checkout(
        &opts.base,
        &lower,
        &CheckoutOptions {
            require_hardlinks: true,
            no_fsync: true,
            ..Default::default()
        },
        &Progress::new(),
    )?;
    failpoint::hit("layer:after-checkout");
    let status = lower.join(DPKG_STATUS);
    if !status.is_file() {
        return Err(Error::Invalid(format!(
            "base {} has no dpkg database at /{DPKG_STATUS} (was it made by kiln compose?)",
            opts.base
        )));
    }
    let base_pkgs = installed_packages(&status);
    for r in &req.removed {
        if !base_pkgs.contains(r) {
            return Err(Error::NotInBase(r.clone()));
        }
    }
    for p in &req.packages {
        if base_pkgs.contains(p) {
            return Err(Error::Invalid(format!(
                "package {p} is already installed in the base"
            )));
        }
    }
    let mut local_paths = Vec::new();
    for l in &req.local {
        let p = opts
            .cache_dir
            .join("local")
            .join(format!("{}.deb", l.sha256));
        if !p.is_file() {
            return Err(Error::Resolve {
                what: format!("local package {}", l.name),
                detail: format!(
                    "{} is no longer in the cache; install the .deb again",
                    p.display()
                ),
            });
        }
        local_paths.push(p);
    }
    let apt = Apt::new(&work.0, &opts.apt_etc, &status, &opts.cache_dir)?;
    let mut targets: Vec<String> = req.packages.iter().cloned().collect();
    targets.extend(local_paths.iter().map(|p| p.to_string_lossy().into_owned()));
    targets.extend(req.removed.iter().map(|r| format!("{r}-")));
    let what = if req.names().is_empty() {
        "the removal".to_string()
    } else {
        format!(
            "package{} {}",
            if req.names().len() > 1 { "s" } else { "" },
            req.names().join(", ")
        )
    };
    log("Resolving with apt");
    apt.update()?;
    let plan = apt.plan(&targets, &what)?;
    let extra: Vec<String> = plan
        .remove
        .iter()
        .filter(|r| !req.removed.contains(*r))
        .cloned()
        .collect();
    if !extra.is_empty() {
        return Err(Error::WouldRemove(extra));
    }
    let planned = Planned {
        install: plan
            .install
            .iter()
            .map(|i| format!("{} {}", i.name, i.version))
            .collect(),
        remove: plan.remove.clone(),
    };
    let mut result = BuildResult {
        base: opts.base.to_string(),
        commit: None,
        plan: planned,
        new_users: Vec::new(),
        new_groups: Vec::new(),
        relocated: Vec::new(),
    };
    if opts.dry_run {
        return Ok(result);
    }
    let local_names: Vec<String> = req.local.iter().map(|l| l.name.clone()).collect();
    let files = apt.download(&targets, &plan, &local_names)?;
    let deb_dir = work.0.join("debs");
    io(&deb_dir, std::fs::create_dir_all(&deb_dir))?;
    let mut debs = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        link_or_copy(f, &deb_dir.join(&name))?;
        debs.push(name);
    }
    for (l, p) in req.local.iter().zip(&local_paths) {
        let name = format!("{}_{}.deb", l.name, &l.sha256[..16]);
        link_or_copy(p, &deb_dir.join(&name))?;
        debs.push(name);
    }
    let removed: Vec<String> = req.removed.iter().cloned().collect();
    let ov = Overlay {
        lower: lower.clone(),
        upper: work.0.join("upper"),
        work: work.0.join("ovl-work"),
        merged: work.0.join("merged"),
    };
    io(&ov.upper, std::fs::create_dir_all(&ov.upper))?;
    prepare_upper(&ov)?;
    log(&format!(
        "Running dpkg in the new tree ({} to install, {} to remove)",
        debs.len(),
        removed.len()
    ));
    run_dpkg(&ov, &deb_dir, &debs, &removed, &work.0.join("dpkg.log"))?;
    failpoint::hit("layer:after-dpkg");
    let base_passwd = read_db(&lower.join("usr/etc/passwd"));
    let base_group = read_db(&lower.join("usr/etc/group"));
    merge(&ov.upper, &lower)?;
    let post = post_process(&lower, &base_passwd, &base_group)?;
    result.new_users = post.new_users;
    result.new_groups = post.new_groups;
    result.relocated = post.relocated;
    let mut metadata = base_commit.metadata.clone();
    for k in ["ostree.ref-binding", "ostree.collection-binding"] {
        metadata.remove(k);
    }
    req.metadata(&opts.base, &mut metadata);
    let subject = format!("kiln install on {}", &opts.base.to_string()[..12]);
    failpoint::hit("layer:before-commit");
    log("Committing");
    let r = repo.commit(
        &CommitOptions {
            branch: None,
            orphan: true,
            no_bindings: true,
            subject,
            parent: ParentSpec::Rev(opts.base.to_string()),
            metadata,
            link_checkout_speedup: true,
            sources: vec![TreeSource::Dir(lower.clone())],
            ..Default::default()
        },
        &Progress::new(),
    )?;
    result.commit = Some(r.commit.to_string());
    Ok(result)
}
