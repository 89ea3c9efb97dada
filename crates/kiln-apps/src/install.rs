//! `install`, `update`, `rollback`, `uninstall`.
//!
//! Install: resolve the ref in the remote's summary → read its metadata
//! from `xa.cache` (permissions and runtime, before any download) → make
//! sure the runtime is installed (from the same remote, else any other) →
//! pull (every object verified) → check `xa.metadata` against the summary
//! and the tree's `metadata` → check out under a temporary name, rename →
//! flip `active`. Update keeps the replaced commit as `previous` until the
//! next successful update, so `rollback` needs no network.

use crate::appref::{default_arch, AppRef, Kind};
use crate::error::{Error, Result};
use crate::installation::{now, HistoryEntry, Installation};
use crate::metadata::Metadata;
use crate::remotes::{self, RemoteRef};
use kiln_store::{failpoint, Progress, Repo};

/// What happened (the `--json` of install/update/rollback/uninstall).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    #[serde(rename = "ref")]
    pub appref: AppRef,
    /// `install`, `update`, `rollback`, `uninstall`, `unchanged`.
    pub action: String,
    pub origin: Option<String>,
    pub commit: Option<String>,
    pub from: Option<String>,
    /// What the pull of this ref moved, when it pulled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
}

/// Bytes and objects of one pull (a subset of `kiln pull --json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Transfer {
    /// Bytes received from the remote.
    pub bytes_transferred: u64,
    /// Content objects stored (fetched, linked or copied).
    pub content_objects: u64,
    /// Content objects hardlinked from the OS repository…
    pub linked_objects: u64,
    /// …and their bytes, stored once for the OS and the apps.
    pub linked_bytes: u64,
    /// Content objects copied from the OS repository (not linkable there).
    pub copied_objects: u64,
    /// OS repository objects that failed verification (downloaded instead).
    pub refused_objects: u64,
}

/// Progress and messages for the CLI.
pub trait Events {
    fn message(&self, _text: &str) {}
    fn pull_started(&self, _what: &AppRef, _progress: &std::sync::Arc<Progress>) {}
    fn pull_finished(&self, _what: &AppRef) {}
}

/// No output.
pub struct Quiet;
impl Events for Quiet {}

#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub arch: Option<String>,
    /// Also install the runtime's `sdk=`? (not needed to run; off).
    pub no_deps: bool,
    pub reinstall: bool,
}

/// Pull `r` (at `commit`) into the installation's repo, taking objects
/// the OS repository has from there. Returns the commit and the transfer.
fn pull_one(
    inst: &Installation,
    repo: &Repo,
    remote: &str,
    r: &AppRef,
    commit: Option<&str>,
    events: &dyn Events,
) -> Result<(String, Transfer)> {
    let req = match commit {
        Some(c) => format!("{r}@{c}"),
        None => r.to_string(),
    };
    let opts = kiln_remote::PullOptions {
        allow_downgrade: true,
        localcache_repos: inst.os_repo.iter().cloned().collect(),
        ..Default::default()
    };
    let progress = std::sync::Arc::new(Progress::new());
    events.pull_started(r, &progress);
    let res = kiln_remote::pull(repo, remote, &[req], &opts, &progress);
    events.pull_finished(r);
    let res = res?;
    failpoint::hit("app:after-pull");
    let transfer = Transfer {
        bytes_transferred: res.bytes_transferred,
        content_objects: res.content_objects,
        linked_objects: res.linked_objects,
        linked_bytes: res.linked_bytes,
        copied_objects: res.local_copied_objects,
        refused_objects: res.local_refused_objects,
    };
    if let Some(os) = &inst.os_repo {
        if transfer.linked_objects + transfer.copied_objects > 0 {
            events.message(&format!(
                "{r}: {} objects ({}) shared with the OS repository {}, {} copied from it",
                transfer.linked_objects,
                kiln_store::util::format_size(transfer.linked_bytes),
                os.display(),
                transfer.copied_objects
            ));
        }
        if transfer.refused_objects > 0 {
            events.message(&format!(
                "{r}: {} objects of the OS repository {} failed verification; downloaded instead",
                transfer.refused_objects,
                os.display()
            ));
        }
    }
    let commit = res
        .refs
        .first()
        .map(|p| p.commit.to_hex())
        .ok_or_else(|| Error::Invalid(format!("pull of {r} returned nothing")))?;
    Ok((commit, transfer))
}

/// Compare a pulled commit's `xa.metadata` with what the summary said.
fn check_commit_metadata(
    repo: &Repo,
    r: &AppRef,
    commit: &str,
    expected: Option<&str>,
) -> Result<Metadata> {
    let c = repo.read_commit(
        &commit
            .parse()
            .map_err(|_| Error::Invalid(format!("bad checksum {commit}")))?,
    )?;
    let Some(xa) = c.metadata.get_str("xa.metadata") else {
        return Err(Error::metadata(
            r.to_string(),
            format!("commit {commit} has no xa.metadata (not a Flatpak/kiln app commit)"),
        ));
    };
    if let Some(e) = expected {
        if e != xa {
            return Err(Error::SummaryMismatch {
                name: r.to_string(),
                commit: commit.to_string(),
            });
        }
    }
    let md = Metadata::parse(xa)?;
    Ok(md)
}

/// Find `runtime` in `first` or any other remote.
fn find_runtime(repo: &Repo, first: &str, runtime: &AppRef) -> Result<(String, RemoteRef)> {
    let mut order = vec![first.to_string()];
    for r in kiln_remote::remote::list(repo) {
        if r != first {
            order.push(r);
        }
    }
    let mut searched = Vec::new();
    for remote in &order {
        searched.push(remote.clone());
        let Ok(s) = remotes::fetch_summary(repo, remote) else {
            continue;
        };
        if let Some(x) = remotes::remote_refs(&s)
            .into_iter()
            .find(|x| x.appref == *runtime)
        {
            return Ok((remote.clone(), x));
        }
    }
    Err(Error::RuntimeNotFound {
        runtime: runtime.triplet(),
        app: String::new(),
        searched: searched.join(", "),
    })
}

/// Pull and activate one ref (no dependency handling).
fn install_ref(
    inst: &Installation,
    repo: &Repo,
    remote: &str,
    r: &AppRef,
    commit: Option<&str>,
    expected_md: Option<&str>,
    events: &dyn Events,
) -> Result<Change> {
    let previous = inst.active_commit(r);
    let (new, transfer) = pull_one(inst, repo, remote, r, commit, events)?;
    check_commit_metadata(repo, r, &new, expected_md)?;
    let action = if previous.as_deref() == Some(new.as_str()) {
        "unchanged"
    } else if previous.is_some() {
        "update"
    } else {
        "install"
    };
    if action != "unchanged" {
        inst.deploy(repo, r, &new, remote)?;
        inst.activate(repo, r, &new, previous.as_deref())?;
        inst.record(&HistoryEntry {
            time: now(),
            action: action.into(),
            appref: r.to_string(),
            commit: Some(new.clone()),
            from: previous.clone(),
            origin: Some(remote.into()),
        })?;
    }
    Ok(Change {
        appref: r.clone(),
        action: action.into(),
        origin: Some(remote.into()),
        commit: Some(new),
        from: previous,
        transfer: Some(transfer),
    })
}

/// Make sure the runtime `md` needs is installed.
fn ensure_runtime(
    inst: &Installation,
    repo: &Repo,
    remote: &str,
    app: &AppRef,
    md: &Metadata,
    events: &dyn Events,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let Some(rt) = &md.runtime else {
        return Ok(());
    };
    if md.kind != Kind::App || inst.is_installed(rt) {
        return Ok(());
    }
    let (rt_remote, info) = find_runtime(repo, remote, rt).map_err(|e| match e {
        Error::RuntimeNotFound {
            runtime, searched, ..
        } => Error::RuntimeNotFound {
            runtime,
            app: app.to_string(),
            searched,
        },
        e => e,
    })?;
    events.message(&format!("Installing runtime {rt} from {rt_remote}"));
    changes.push(install_ref(
        inst,
        repo,
        &rt_remote,
        rt,
        Some(&info.commit),
        info.metadata.as_deref(),
        events,
    )?);
    Ok(())
}

/// `install REMOTE REF`: the ref and the runtime it needs.
pub fn install(
    inst: &Installation,
    remote: &str,
    name: &str,
    opts: &InstallOptions,
    events: &dyn Events,
) -> Result<Vec<Change>> {
    let repo = inst.ensure_repo()?;
    let _lock = inst.lock()?;
    let summary = remotes::fetch_summary(&repo, remote)?;
    let refs = remotes::remote_refs(&summary);
    let arch = opts.arch.as_deref().unwrap_or(default_arch());
    let target = remotes::resolve(&refs, name, remote, arch)?.clone();
    let r = target.appref.clone();
    if inst.is_installed(&r) && !opts.reinstall {
        return Err(Error::AlreadyInstalled(r.to_string()));
    }
    let mut changes = Vec::new();
    // Permissions and runtime are known before anything is downloaded
    // when the summary has Flatpak's cache.
    let cached_md = match &target.metadata {
        Some(text) => Some(Metadata::parse(text)?),
        None => None,
    };
    if let (Some(md), false) = (&cached_md, opts.no_deps) {
        ensure_runtime(inst, &repo, remote, &r, md, events, &mut changes)?;
    }
    let (commit, transfer) = pull_one(inst, &repo, remote, &r, Some(&target.commit), events)?;
    let md = check_commit_metadata(&repo, &r, &commit, target.metadata.as_deref())?;
    if cached_md.is_none() && !opts.no_deps {
        ensure_runtime(inst, &repo, remote, &r, &md, events, &mut changes)?;
    }
    let previous = inst.active_commit(&r);
    inst.deploy(&repo, &r, &commit, remote)?;
    inst.activate(&repo, &r, &commit, previous.as_deref())?;
    inst.record(&HistoryEntry {
        time: now(),
        action: "install".into(),
        appref: r.to_string(),
        commit: Some(commit.clone()),
        from: previous.clone(),
        origin: Some(remote.into()),
    })?;
    crate::exports::update_exports(inst)?;
    changes.push(Change {
        appref: r,
        action: "install".into(),
        origin: Some(remote.into()),
        commit: Some(commit),
        from: previous,
        transfer: Some(transfer),
    });
    Ok(changes)
}

fn origin_of(inst: &Installation, r: &AppRef) -> Result<String> {
    let d = inst.describe(r)?;
    if d.origin.is_empty() {
        return Err(Error::Invalid(format!("{r}: its origin remote is unknown")));
    }
    Ok(d.origin)
}

/// `update [APP] [--commit=C]`: every installed ref (or one) to the
/// remote's commit (or `commit`, which may be older; if it is the kept
/// previous commit no network is needed).
pub fn update(
    inst: &Installation,
    name: Option<&str>,
    commit: Option<&str>,
    events: &dyn Events,
) -> Result<Vec<Change>> {
    let Some(repo) = inst.repo()? else {
        return Ok(vec![]);
    };
    let _lock = inst.lock()?;
    let targets: Vec<AppRef> = match name {
        Some(n) => vec![inst
            .find(n, None)
            .ok_or_else(|| Error::NotInstalled(n.to_string()))?],
        None => {
            if commit.is_some() {
                return Err(Error::Invalid("--commit needs an APP".into()));
            }
            inst.installed_refs(None)
        }
    };
    let mut changes = Vec::new();
    for r in targets {
        let current = inst.active_commit(&r);
        // --commit=PREVIOUS: switch locally.
        if let (Some(c), Some(prev)) = (commit, inst.previous_commit(&r)) {
            if prev.starts_with(c) && c.len() >= 8 {
                let origin = origin_of(inst, &r)?;
                inst.activate(&repo, &r, &prev, current.as_deref())?;
                inst.record(&HistoryEntry {
                    time: now(),
                    action: "update".into(),
                    appref: r.to_string(),
                    commit: Some(prev.clone()),
                    from: current.clone(),
                    origin: Some(origin.clone()),
                })?;
                changes.push(Change {
                    appref: r.clone(),
                    action: "update".into(),
                    origin: Some(origin),
                    commit: Some(prev),
                    from: current,
                    transfer: None,
                });
                continue;
            }
        }
        if let Some(c) = commit {
            if c.len() != 64 || !c.chars().all(|x| x.is_ascii_hexdigit()) {
                return Err(Error::Invalid(format!(
                    "--commit={c}: give the full 64-character checksum (or a prefix of the kept previous commit)"
                )));
            }
        }
        let origin = origin_of(inst, &r)?;
        let summary = remotes::fetch_summary(&repo, &origin)?;
        let info = remotes::remote_refs(&summary)
            .into_iter()
            .find(|x| x.appref == r);
        let want = match (commit, &info) {
            (Some(c), _) => c.to_string(),
            (None, Some(i)) => i.commit.clone(),
            (None, None) => {
                return Err(Error::RefNotFound {
                    name: r.to_string(),
                    remote: origin,
                })
            }
        };
        if current.as_deref() == Some(want.as_str()) {
            changes.push(Change {
                appref: r.clone(),
                action: "unchanged".into(),
                origin: Some(origin),
                commit: current.clone(),
                from: current,
                transfer: None,
            });
            continue;
        }
        // The summary's metadata describes the head commit only.
        let expected = if commit.is_none() {
            info.as_ref().and_then(|i| i.metadata.clone())
        } else {
            None
        };
        if let Some(text) = &expected {
            let md = Metadata::parse(text)?;
            ensure_runtime(inst, &repo, &origin, &r, &md, events, &mut changes)?;
        }
        let mut ch = install_ref(
            inst,
            &repo,
            &origin,
            &r,
            Some(&want),
            expected.as_deref(),
            events,
        )?;
        if let Ok(md) = inst.deployed_metadata(&r, &want) {
            ensure_runtime(inst, &repo, &origin, &r, &md, events, &mut changes)?;
        }
        ch.action = "update".into();
        changes.push(ch);
    }
    crate::exports::update_exports(inst)?;
    failpoint::hit("app:before-prune");
    prune(&repo)?;
    Ok(changes)
}

/// `rollback APP`: back to the kept previous commit, offline. The commit
/// rolled back from becomes the previous one (a second rollback undoes).
pub fn rollback(inst: &Installation, name: &str) -> Result<Change> {
    let repo = inst
        .repo()?
        .ok_or_else(|| Error::NotInstalled(name.to_string()))?;
    let _lock = inst.lock()?;
    let r = inst
        .find(name, None)
        .ok_or_else(|| Error::NotInstalled(name.to_string()))?;
    let current = inst
        .active_commit(&r)
        .ok_or_else(|| Error::NotInstalled(r.to_string()))?;
    let prev = inst
        .previous_commit(&r)
        .ok_or_else(|| Error::NoPrevious { app: r.to_string() })?;
    inst.activate(&repo, &r, &prev, Some(&current))?;
    crate::exports::update_exports(inst)?;
    let origin = inst.describe(&r).ok().map(|d| d.origin);
    inst.record(&HistoryEntry {
        time: now(),
        action: "rollback".into(),
        appref: r.to_string(),
        commit: Some(prev.clone()),
        from: Some(current.clone()),
        origin: origin.clone(),
    })?;
    Ok(Change {
        appref: r,
        action: "rollback".into(),
        origin,
        commit: Some(prev),
        from: Some(current),
        transfer: None,
    })
}

#[derive(Debug, Clone, Default)]
pub struct UninstallOptions {
    pub unused: bool,
    pub delete_data: bool,
    pub force: bool,
}

/// Runtimes no installed app uses.
pub fn unused_runtimes(inst: &Installation) -> Vec<AppRef> {
    let used: Vec<String> = inst
        .installed_refs(Some(Kind::App))
        .iter()
        .filter_map(|r| inst.describe(r).ok().and_then(|d| d.runtime))
        .collect();
    inst.installed_refs(Some(Kind::Runtime))
        .into_iter()
        .filter(|r| !used.contains(&r.triplet()))
        .collect()
}

/// `uninstall APP…` / `uninstall --unused`. Returns the removed refs.
/// `data_dir_of` maps an app ID to its `~/.var/app/ID` (for
/// `--delete-data`).
pub fn uninstall(
    inst: &Installation,
    names: &[String],
    opts: &UninstallOptions,
    data_dir_of: &dyn Fn(&str) -> std::path::PathBuf,
) -> Result<Vec<Change>> {
    let Some(repo) = inst.repo()? else {
        if let Some(n) = names.first() {
            return Err(Error::NotInstalled(n.clone()));
        }
        return Ok(vec![]);
    };
    let _lock = inst.lock()?;
    let mut targets = Vec::new();
    for n in names {
        targets.push(
            inst.find(n, None)
                .ok_or_else(|| Error::NotInstalled(n.clone()))?,
        );
    }
    // Refuse to remove a runtime an app (not being removed) needs.
    for r in targets.iter().filter(|r| r.kind == Kind::Runtime) {
        let users: Vec<String> = inst
            .installed_refs(Some(Kind::App))
            .into_iter()
            .filter(|a| !targets.contains(a))
            .filter(|a| inst.describe(a).ok().and_then(|d| d.runtime) == Some(r.triplet()))
            .map(|a| a.to_string())
            .collect();
        if !users.is_empty() && !opts.force {
            return Err(Error::RuntimeInUse(r.to_string(), users.join(", ")));
        }
    }
    let mut changes = Vec::new();
    let remove = |r: &AppRef, changes: &mut Vec<Change>| -> Result<()> {
        let d = inst.describe(r).ok();
        inst.undeploy_all(&repo, r)?;
        inst.record(&HistoryEntry {
            time: now(),
            action: "uninstall".into(),
            appref: r.to_string(),
            commit: None,
            from: d.as_ref().map(|d| d.commit.clone()),
            origin: d.as_ref().map(|d| d.origin.clone()),
        })?;
        if opts.delete_data && r.kind == Kind::App {
            let p = data_dir_of(&r.id);
            match std::fs::remove_dir_all(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
                _ => {}
            }
        }
        changes.push(Change {
            appref: r.clone(),
            action: "uninstall".into(),
            origin: d.as_ref().map(|d| d.origin.clone()),
            commit: None,
            from: d.map(|d| d.commit),
            transfer: None,
        });
        Ok(())
    };
    for r in &targets {
        remove(r, &mut changes)?;
    }
    if opts.unused {
        for r in unused_runtimes(inst) {
            remove(&r, &mut changes)?;
        }
    }
    crate::exports::update_exports(inst)?;
    prune(&repo)?;
    Ok(changes)
}

/// Drop objects no ref needs (deploy pins, kept previous commits and
/// remote refs are refs).
fn prune(repo: &Repo) -> Result<()> {
    repo.prune(&kiln_store::prune::PruneOptions {
        refs_only: true,
        depth: 0,
        ..Default::default()
    })?;
    Ok(())
}
