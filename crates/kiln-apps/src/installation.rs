//! An installation, laid out like Flatpak's:
//!
//! ```text
//! BASE/repo/                              bare-user-only repo, [remote "X"] in repo/config
//! BASE/app/ID/current -> ARCH/BRANCH
//! BASE/app/ID/ARCH/BRANCH/active -> COMMIT          the one commit point of a switch
//! BASE/app/ID/ARCH/BRANCH/previous -> COMMIT        kiln: kept for `rollback`
//! BASE/app/ID/ARCH/BRANCH/COMMIT/{metadata,files/,export/,deploy}
//! BASE/runtime/ID/ARCH/BRANCH/{active,previous,COMMIT/}
//! BASE/exports/share/{applications,icons,…}        symlinks into app/ID/current/active/export
//! BASE/overrides/{global,ID}
//! BASE/history/ID                                   JSON lines: install, update, rollback, …
//! ```
//!
//! Commit directories are checked out under `.tmp-…` names and renamed
//! into place, so a `COMMIT/` directory is always complete; an app is
//! installed exactly when its `active` link names one.

use crate::appref::{AppRef, Kind};
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use kiln_store::failpoint;
use kiln_store::gvariant::{self, Type, Value, VarDict};
use kiln_store::{Repo, RepoMode};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Which installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    System,
    User,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::User => "user",
        }
    }
}

/// Default system installation.
pub const SYSTEM_DIR: &str = "/var/lib/kiln/apps";

/// Default user installation under `home`.
pub fn user_dir(home: &Path) -> PathBuf {
    home.join(".local/share/kiln/apps")
}

/// Per-app data, as Flatpak: `~/.var/app/ID`.
pub fn app_data_dir(home: &Path, id: &str) -> PathBuf {
    home.join(".var/app").join(id)
}

#[derive(Debug, Clone)]
pub struct Installation {
    pub base: PathBuf,
    pub scope: Scope,
    /// The OS repository (`/sysroot/ostree/repo`, `/ostree/repo`): content
    /// objects it already has are hardlinked (verified) into `repo/`
    /// instead of downloaded. `None`: always download. The caller chooses
    /// (the CLI: the first of those that opens).
    pub os_repo: Option<PathBuf>,
}

/// An installed app or runtime (the `list --json` schema).
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstalledRef {
    #[serde(rename = "ref")]
    pub appref: AppRef,
    pub kind: Kind,
    pub id: String,
    pub arch: String,
    pub branch: String,
    pub origin: String,
    pub commit: String,
    /// The commit `rollback` returns to, kept locally.
    pub previous_commit: Option<String>,
    pub installed_size: u64,
    /// `ID/ARCH/BRANCH` of the runtime (apps).
    pub runtime: Option<String>,
    pub installation: Scope,
    pub deploy_dir: PathBuf,
}

/// Flatpak's `deploy` file: `(ssasta{sv})` = origin, commit, subpaths,
/// installed size (big-endian), metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployData {
    pub origin: String,
    pub commit: String,
    pub installed_size: u64,
    pub timestamp: u64,
}

fn deploy_type() -> Type {
    Type::parse("(ssasta{sv})").expect("static type")
}

impl DeployData {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut md = VarDict::new();
        md.push("deploy-version", Value::Int32(4));
        md.push("timestamp", Value::Uint64(self.timestamp.to_be()));
        gvariant::encode(&Value::Tuple(vec![
            Value::str(self.origin.clone()),
            Value::str(self.commit.clone()),
            Value::Array(Type::String, vec![]),
            Value::Uint64(self.installed_size.to_be()),
            md.to_value(),
        ]))
    }

    pub fn from_bytes(b: &[u8]) -> Option<DeployData> {
        let v = gvariant::decode(&deploy_type(), b).ok()?;
        let [o, c, _, s, md] = v.children() else {
            return None;
        };
        let md = VarDict::from_value(md)?;
        Some(DeployData {
            origin: o.as_str()?.to_string(),
            commit: c.as_str()?.to_string(),
            installed_size: u64::from_be(s.as_u64()?),
            timestamp: md
                .get("timestamp")
                .and_then(|v| v.as_u64())
                .map(u64::from_be)
                .unwrap_or(0),
        })
    }
}

/// One entry of `history`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// `install`, `update`, `rollback`, `uninstall`.
    pub action: String,
    #[serde(rename = "ref")]
    pub appref: String,
    pub commit: Option<String>,
    /// The commit it replaced.
    pub from: Option<String>,
    pub origin: Option<String>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Replace the symlink `link` with one pointing at `target`, atomically.
pub fn symlink_atomic(target: &Path, link: &Path) -> Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(kiln_store::util::tmp_name(".link"));
    std::os::unix::fs::symlink(target, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(link, e)
    })
}

fn read_link_name(p: &Path) -> Option<String> {
    std::fs::read_link(p)
        .ok()
        .and_then(|t| t.to_str().map(str::to_string))
        .filter(|s| !s.contains('/') && !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
}

fn remove_tree(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, e)),
        _ => Ok(()),
    }
}

/// An exclusive lock on an installation (held while it changes).
pub struct InstallationLock {
    _file: std::fs::File,
}

impl Installation {
    pub fn new(base: impl Into<PathBuf>, scope: Scope) -> Installation {
        Installation {
            base: base.into(),
            scope,
            os_repo: None,
        }
    }

    /// Take objects the OS repository at `os_repo` has from there.
    pub fn with_os_repo(mut self, os_repo: Option<PathBuf>) -> Installation {
        self.os_repo = os_repo;
        self
    }

    pub fn repo_path(&self) -> PathBuf {
        self.base.join("repo")
    }

    /// Open the repo, creating the installation if needed.
    pub fn ensure_repo(&self) -> Result<Repo> {
        let rp = self.repo_path();
        if rp.join("config").exists() {
            return Ok(Repo::open(&rp)?);
        }
        std::fs::create_dir_all(&self.base).map_err(io(&self.base))?;
        let repo = Repo::init(&rp, RepoMode::BareUserOnly)?;
        for d in ["app", "runtime", "exports", "overrides", "history"] {
            let p = self.base.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(repo)
    }

    /// Open the repo if the installation exists.
    pub fn repo(&self) -> Result<Option<Repo>> {
        let rp = self.repo_path();
        if !rp.join("config").exists() {
            return Ok(None);
        }
        Ok(Some(Repo::open(&rp)?))
    }

    pub fn exists(&self) -> bool {
        self.repo_path().join("config").exists()
    }

    pub fn lock(&self) -> Result<InstallationLock> {
        std::fs::create_dir_all(&self.base).map_err(io(&self.base))?;
        let p = self.base.join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io(&p))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&p, e.into()))?;
        Ok(InstallationLock { _file: f })
    }

    /// `BASE/KIND/ID/ARCH/BRANCH`.
    pub fn ref_dir(&self, r: &AppRef) -> PathBuf {
        self.base
            .join(r.kind.as_str())
            .join(&r.id)
            .join(&r.arch)
            .join(&r.branch)
    }

    pub fn active_commit(&self, r: &AppRef) -> Option<String> {
        let d = self.ref_dir(r);
        read_link_name(&d.join("active")).filter(|c| d.join(c).join("files").is_dir())
    }

    pub fn previous_commit(&self, r: &AppRef) -> Option<String> {
        let d = self.ref_dir(r);
        read_link_name(&d.join("previous")).filter(|c| d.join(c).join("files").is_dir())
    }

    pub fn deploy_dir(&self, r: &AppRef, commit: &str) -> PathBuf {
        self.ref_dir(r).join(commit)
    }

    pub fn is_installed(&self, r: &AppRef) -> bool {
        self.active_commit(r).is_some()
    }

    /// Every installed ref (with an `active` commit), sorted.
    pub fn installed_refs(&self, kind: Option<Kind>) -> Vec<AppRef> {
        self.refs_with_id(kind, None)
    }

    /// The installed refs of `kind`, of one ID or (`None`) of all. With an
    /// ID only that ID's directory is read: `find` is on `run`'s path, and
    /// the cost must not grow with the number of installed apps.
    fn refs_with_id(&self, kind: Option<Kind>, only: Option<&str>) -> Vec<AppRef> {
        let mut out = Vec::new();
        for k in [Kind::App, Kind::Runtime] {
            if kind.is_some_and(|x| x != k) {
                continue;
            }
            let root = self.base.join(k.as_str());
            let ids = match only {
                // A name that is not a single path component is no ID.
                Some(id) if id.is_empty() || id.contains('/') || id == "." || id == ".." => {
                    continue
                }
                Some(id) => vec![id.to_string()],
                None => read_names(&root),
            };
            for id in ids {
                for arch in read_names(&root.join(&id)) {
                    for branch in read_names(&root.join(&id).join(&arch)) {
                        if let Ok(r) = AppRef::new(k, &id, &arch, &branch) {
                            if self.is_installed(&r) {
                                out.push(r);
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    pub fn describe(&self, r: &AppRef) -> Result<InstalledRef> {
        let commit = self
            .active_commit(r)
            .ok_or_else(|| Error::NotInstalled(r.to_string()))?;
        let dir = self.deploy_dir(r, &commit);
        let dd = std::fs::read(dir.join("deploy"))
            .ok()
            .and_then(|b| DeployData::from_bytes(&b));
        let md = self.deployed_metadata(r, &commit).ok();
        Ok(InstalledRef {
            kind: r.kind,
            id: r.id.clone(),
            arch: r.arch.clone(),
            branch: r.branch.clone(),
            origin: dd.as_ref().map(|d| d.origin.clone()).unwrap_or_default(),
            previous_commit: self.previous_commit(r),
            installed_size: dd.as_ref().map(|d| d.installed_size).unwrap_or(0),
            runtime: md.and_then(|m| m.runtime.map(|r| r.triplet())),
            installation: self.scope,
            deploy_dir: dir,
            commit,
            appref: r.clone(),
        })
    }

    pub fn deployed_metadata(&self, r: &AppRef, commit: &str) -> Result<Metadata> {
        let p = self.deploy_dir(r, commit).join("metadata");
        let b = std::fs::read(&p).map_err(io(&p))?;
        Metadata::parse_bytes(&b)
    }

    /// Find an installed ref by full ref, `ID`, `ID//BRANCH` or
    /// `ID/ARCH/BRANCH`.
    pub fn find(&self, name: &str, kind: Option<Kind>) -> Option<AppRef> {
        if let Ok(r) = AppRef::parse(name) {
            return self.is_installed(&r).then_some(r);
        }
        let (id, arch, branch) = split_partial(name);
        let mut cands: Vec<AppRef> = self
            .refs_with_id(kind, Some(id))
            .into_iter()
            .filter(|r| {
                r.id == id
                    && arch.is_none_or(|a| a == r.arch)
                    && branch.is_none_or(|b| b == r.branch)
            })
            .collect();
        // Apps before runtimes, as Flatpak prefers.
        cands.sort();
        cands.into_iter().next()
    }

    /// Check out `commit` of `r` from `repo` into `r`'s directory (no-op if
    /// it is there). The directory appears complete or not at all.
    pub fn deploy(&self, repo: &Repo, r: &AppRef, commit: &str, origin: &str) -> Result<PathBuf> {
        let dir = self.deploy_dir(r, commit);
        if dir.join("deploy").exists() {
            return Ok(dir);
        }
        let parent = self.ref_dir(r);
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let tmp = parent.join(kiln_store::util::tmp_name(".tmp-deploy"));
        let csum: kiln_store::Checksum = commit
            .parse()
            .map_err(|_| Error::Invalid(format!("bad commit checksum {commit}")))?;
        let opts = kiln_store::checkout::CheckoutOptions {
            mode: kiln_store::checkout::CheckoutMode::User,
            no_fsync: true,
            ..Default::default()
        };
        let res = (|| -> Result<()> {
            repo.checkout(&csum, &tmp, &opts, &kiln_store::Progress::new())?;
            failpoint::hit("app:during-deploy");
            // The tree must carry a metadata file equal to xa.metadata.
            let md_path = tmp.join("metadata");
            let md_bytes = std::fs::read(&md_path)
                .map_err(|_| Error::metadata(r.to_string(), "the commit has no metadata file"))?;
            let c = repo.read_commit(&csum)?;
            if let Some(xa) = c.metadata.get("xa.metadata") {
                if xa.as_str().map(str::as_bytes) != Some(md_bytes.as_slice()) {
                    return Err(Error::MetadataMismatch {
                        name: r.to_string(),
                        commit: commit.to_string(),
                    });
                }
            }
            let md = Metadata::parse_bytes(&md_bytes)?;
            if md.kind != r.kind || md.name != r.id {
                return Err(Error::metadata(
                    r.to_string(),
                    format!(
                        "the metadata describes {} {}, not {}",
                        md.kind.as_str(),
                        md.name,
                        r
                    ),
                ));
            }
            if !tmp.join("files").is_dir() {
                std::fs::create_dir(tmp.join("files")).map_err(io(&tmp))?;
            }
            if r.kind == Kind::App {
                crate::exports::rewrite_desktop_files(&tmp, &r.id)?;
            }
            let size = du(&tmp.join("files"));
            let dd = DeployData {
                origin: origin.to_string(),
                commit: commit.to_string(),
                installed_size: size,
                timestamp: now(),
            };
            let p = tmp.join("deploy");
            std::fs::write(&p, dd.to_bytes()).map_err(io(&p))?;
            kiln_store::util::syncfs(&tmp)?;
            std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
            Ok(())
        })();
        if res.is_err() {
            let _ = remove_tree(&tmp);
        }
        res?;
        failpoint::hit("app:after-deploy");
        Ok(dir)
    }

    /// Make `commit` the active one of `r`, keeping `previous` (or none)
    /// for rollback, then drop every other commit directory.
    /// The `active` symlink swap is the one commit point.
    pub fn activate(
        &self,
        repo: &Repo,
        r: &AppRef,
        commit: &str,
        previous: Option<&str>,
    ) -> Result<()> {
        let d = self.ref_dir(r);
        match previous {
            Some(p) if p != commit => {
                repo.set_ref(&pin_ref("kiln-previous", r), Some(&parse_csum(p)?))?;
                symlink_atomic(Path::new(p), &d.join("previous"))?;
            }
            _ => {
                remove_file_if_exists(&d.join("previous"))?;
                unset_ref(repo, &pin_ref("kiln-previous", r))?;
            }
        }
        repo.set_ref(&pin_ref("deploy", r), Some(&parse_csum(commit)?))?;
        kiln_store::util::syncfs(&d)?;
        failpoint::hit("app:before-activate");
        symlink_atomic(Path::new(commit), &d.join("active"))?;
        kiln_store::util::syncfs(&d)?;
        failpoint::hit("app:after-activate");
        if r.kind == Kind::App {
            let cur = self.base.join("app").join(&r.id).join("current");
            symlink_atomic(&Path::new(&r.arch).join(&r.branch), &cur)?;
        }
        self.cleanup_ref_dir(r)?;
        Ok(())
    }

    /// Remove commit directories of `r` that are neither active nor
    /// previous, and leftovers of interrupted deploys. Call with the
    /// installation lock held.
    pub fn cleanup_ref_dir(&self, r: &AppRef) -> Result<()> {
        let d = self.ref_dir(r);
        let keep: Vec<String> = [self.active_commit(r), self.previous_commit(r)]
            .into_iter()
            .flatten()
            .collect();
        for name in read_names(&d) {
            if keep.contains(&name) || name == "active" || name == "previous" {
                continue;
            }
            let p = d.join(&name);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                remove_tree(&p)?;
            } else if name.starts_with(".link") {
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(())
    }

    /// Forget `r`: `active` goes first (then it is no longer installed),
    /// then its directories and pins.
    pub fn undeploy_all(&self, repo: &Repo, r: &AppRef) -> Result<()> {
        let d = self.ref_dir(r);
        remove_file_if_exists(&d.join("active"))?;
        kiln_store::util::syncfs(&self.base)?;
        failpoint::hit("app:uninstall-after-unlink");
        remove_file_if_exists(&d.join("previous"))?;
        unset_ref(repo, &pin_ref("deploy", r))?;
        unset_ref(repo, &pin_ref("kiln-previous", r))?;
        remove_tree(&d)?;
        // Tidy empty parents and the app's `current` link.
        let id_dir = self.base.join(r.kind.as_str()).join(&r.id);
        let arch_dir = id_dir.join(&r.arch);
        let _ = std::fs::remove_dir(&arch_dir);
        if r.kind == Kind::App {
            let cur = id_dir.join("current");
            let still = std::fs::read_link(&cur)
                .ok()
                .is_some_and(|t| id_dir.join(t).join("active").exists());
            if !still {
                let _ = std::fs::remove_file(&cur);
            }
        }
        let _ = std::fs::remove_dir(&id_dir);
        Ok(())
    }

    pub fn history_path(&self, id: &str) -> PathBuf {
        self.base.join("history").join(id)
    }

    pub fn record(&self, e: &HistoryEntry) -> Result<()> {
        let id = e.appref.split('/').nth(1).unwrap_or("unknown");
        let p = self.history_path(id);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut line = serde_json::to_string(e).map_err(|e| Error::Invalid(e.to_string()))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io(&p))?;
        f.write_all(line.as_bytes()).map_err(io(&p))
    }

    pub fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        let p = self.history_path(id);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io(&p, e)),
        };
        // A line cut by a crash is skipped.
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    pub fn overrides_path(&self, id: Option<&str>) -> PathBuf {
        self.base.join("overrides").join(id.unwrap_or("global"))
    }
}

/// `deploy/app/ID/ARCH/BRANCH` style refs that keep commits from pruning.
pub fn pin_ref(prefix: &str, r: &AppRef) -> String {
    format!("{prefix}/{r}")
}

/// Delete a local ref if it exists.
pub fn unset_ref(repo: &Repo, name: &str) -> Result<()> {
    if repo.resolve_ref(name)?.is_some() {
        repo.set_ref(name, None)?;
    }
    Ok(())
}

fn parse_csum(c: &str) -> Result<kiln_store::Checksum> {
    c.parse()
        .map_err(|_| Error::Invalid(format!("bad commit checksum {c}")))
}

fn remove_file_if_exists(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, e)),
        _ => Ok(()),
    }
}

/// Names in a directory (empty if it is missing), sorted.
pub fn read_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `ID`, `ID//BRANCH`, `ID/ARCH`, `ID/ARCH/BRANCH`.
pub fn split_partial(name: &str) -> (&str, Option<&str>, Option<&str>) {
    let mut it = name.splitn(3, '/');
    let id = it.next().unwrap_or("");
    let arch = it.next().filter(|s| !s.is_empty());
    let branch = it.next().filter(|s| !s.is_empty());
    (id, arch, branch)
}

/// Bytes used by regular files under `p` (512-byte blocks, as Flatpak
/// counts installed size), hardlinks counted once.
pub fn du(p: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len().div_ceil(512) * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_data_roundtrip() {
        let d = DeployData {
            origin: "kiln-test".into(),
            commit: "ab".repeat(32),
            installed_size: 12345,
            timestamp: 1_700_000_000,
        };
        assert_eq!(DeployData::from_bytes(&d.to_bytes()), Some(d));
        assert_eq!(DeployData::from_bytes(b"junk"), None);
    }

    #[test]
    fn partial_names() {
        assert_eq!(split_partial("org.a.B"), ("org.a.B", None, None));
        assert_eq!(
            split_partial("org.a.B//stable"),
            ("org.a.B", None, Some("stable"))
        );
        assert_eq!(
            split_partial("org.a.B/x86_64/1"),
            ("org.a.B", Some("x86_64"), Some("1"))
        );
    }

    #[test]
    fn atomic_links_and_listing() {
        let t = tempfile::tempdir().unwrap();
        let inst = Installation::new(t.path(), Scope::User);
        let r = AppRef::parse("app/org.kiln.Demo/x86_64/stable").unwrap();
        let c = "aa".repeat(32);
        std::fs::create_dir_all(inst.deploy_dir(&r, &c).join("files")).unwrap();
        assert!(!inst.is_installed(&r));
        symlink_atomic(Path::new(&c), &inst.ref_dir(&r).join("active")).unwrap();
        assert!(inst.is_installed(&r));
        assert_eq!(inst.installed_refs(None), vec![r.clone()]);
        assert_eq!(inst.find("org.kiln.Demo", None), Some(r.clone()));
        assert_eq!(inst.find("org.kiln.Demo//stable", None), Some(r.clone()));
        assert_eq!(inst.find("org.kiln.Other", None), None);
        // An active link to a missing dir is not an install.
        symlink_atomic(
            Path::new(&"bb".repeat(32)),
            &inst.ref_dir(&r).join("active"),
        )
        .unwrap();
        assert!(!inst.is_installed(&r));
    }
}
