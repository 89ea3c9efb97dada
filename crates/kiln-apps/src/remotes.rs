//! App remotes (`remote-add`, `remote-delete`, `remotes`, `remote-ls`) and
//! Flatpak's summary extensions.
//!
//! A Flatpak repo's summary carries, besides OSTree's refs, `xa.cache`: for
//! each app/runtime ref its installed size, download size and `metadata`
//! text (`a{s(tts)}`, sizes big-endian, sorted by ref, wrapped in a variant
//! twice "for historical reasons"), plus `xa.cache-version` and
//! `xa.sparse-cache`. Clients read permissions and the runtime from it
//! before downloading, and refuse a commit whose `xa.metadata` differs.

use crate::appref::{AppRef, Kind};
use crate::error::{Error, Result};
use crate::installation::Installation;
use kiln_remote::summary::Summary;
use kiln_store::gvariant::{Type, Value, VarDict};
use kiln_store::{Checksum, ObjectType, Repo};
use std::collections::BTreeMap;

/// One app or runtime offered by a remote (the `remote-ls --json` schema).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteRef {
    #[serde(rename = "ref")]
    pub appref: AppRef,
    pub commit: String,
    pub installed_size: Option<u64>,
    pub download_size: Option<u64>,
    /// Seconds since the epoch.
    pub timestamp: Option<u64>,
    #[serde(skip)]
    pub metadata: Option<String>,
}

/// A configured remote (the `remotes --json` schema).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteInfo {
    pub name: String,
    pub url: String,
    pub gpg_verify: bool,
    pub installation: crate::installation::Scope,
}

/// `xa.cache` entries of a summary: ref → (installed, download, metadata).
pub fn summary_cache(s: &Summary) -> BTreeMap<String, (u64, u64, String)> {
    let mut out = BTreeMap::new();
    let Some(v) = s.metadata.get("xa.cache") else {
        return out;
    };
    // v (from a{sv}) → variant → a{s(tts)}
    let inner = v.unvariant();
    for e in inner.children() {
        let Value::DictEntry(k, body) = e else {
            continue;
        };
        let (Some(k), [Value::Uint64(i), Value::Uint64(d), m]) = (k.as_str(), body.children())
        else {
            continue;
        };
        if let Some(m) = m.as_str() {
            out.insert(
                k.to_string(),
                (u64::from_be(*i), u64::from_be(*d), m.to_string()),
            );
        }
    }
    out
}

/// Fetch and parse a remote's summary.
pub fn fetch_summary(repo: &Repo, remote: &str) -> Result<Summary> {
    let r = kiln_remote::remote::get(repo, remote)?;
    fetch_summary_url(remote, &r.url)
}

fn fetch_summary_url(remote: &str, url: &str) -> Result<Summary> {
    let f = kiln_remote::fetch::Fetcher::new(remote, url, &kiln_remote::NetOptions::default())?;
    let b = f.get("summary", kiln_remote::summary::MAX_SUMMARY_SIZE)?;
    Summary::parse(&b).map_err(|e| {
        Error::Remote(kiln_remote::Error::Summary {
            remote: remote.to_string(),
            why: e.to_string(),
        })
    })
}

/// The app and runtime refs a summary offers.
pub fn remote_refs(s: &Summary) -> Vec<RemoteRef> {
    let cache = summary_cache(s);
    let mut out = Vec::new();
    for r in &s.refs {
        let Ok(appref) = AppRef::parse(&r.name) else {
            continue;
        };
        let c = cache.get(&r.name);
        out.push(RemoteRef {
            appref,
            commit: r.checksum.to_hex(),
            installed_size: c.map(|c| c.0),
            download_size: c.map(|c| c.1),
            timestamp: r.timestamp(),
            metadata: c.map(|c| c.2.clone()),
        });
    }
    out
}

/// `remote-ls`.
pub fn list_remote(
    inst: &Installation,
    remote: &str,
    kind: Option<Kind>,
) -> Result<Vec<RemoteRef>> {
    let repo = inst
        .repo()?
        .ok_or_else(|| Error::NoSuchRemote(remote.to_string()))?;
    let s = fetch_summary(&repo, remote)?;
    Ok(remote_refs(&s)
        .into_iter()
        .filter(|r| kind.is_none_or(|k| k == r.appref.kind))
        .collect())
}

/// Resolve what the user typed (`ID`, `ID//BRANCH`, `ID/ARCH/BRANCH` or a
/// full ref) against a remote's refs for `arch`.
pub fn resolve<'a>(
    refs: &'a [RemoteRef],
    name: &str,
    remote: &str,
    arch: &str,
) -> Result<&'a RemoteRef> {
    if let Ok(r) = AppRef::parse(name) {
        return refs
            .iter()
            .find(|x| x.appref == r)
            .ok_or_else(|| Error::RefNotFound {
                name: name.to_string(),
                remote: remote.to_string(),
            });
    }
    let (id, a, b) = crate::installation::split_partial(name);
    let arch = a.unwrap_or(arch);
    let cands: Vec<&RemoteRef> = refs
        .iter()
        .filter(|x| {
            x.appref.id == id && x.appref.arch == arch && b.is_none_or(|b| b == x.appref.branch)
        })
        .collect();
    // Apps win over runtimes of the same ID.
    let apps: Vec<&&RemoteRef> = cands
        .iter()
        .filter(|x| x.appref.kind == Kind::App)
        .collect();
    let pick: Vec<&RemoteRef> = if apps.is_empty() {
        cands.clone()
    } else {
        apps.into_iter().copied().collect()
    };
    match pick.len() {
        0 => Err(Error::RefNotFound {
            name: name.to_string(),
            remote: remote.to_string(),
        }),
        1 => Ok(pick[0]),
        _ => Err(Error::Ambiguous {
            name: name.to_string(),
            remote: remote.to_string(),
            candidates: pick
                .iter()
                .map(|x| x.appref.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// `remote-add`. The summary is fetched first: a URL with no repo leaves
/// nothing configured (unlike `flatpak remote-add`).
pub fn add_remote(
    inst: &Installation,
    name: &str,
    url: &str,
    if_not_exists: bool,
    no_gpg_verify: bool,
) -> Result<bool> {
    if !no_gpg_verify {
        return Err(Error::Invalid(format!(
            "remote {name}: kiln does not implement GPG verification; add the remote with --no-gpg-verify \
             (commits are still verified against their checksums)"
        )));
    }
    let mut repo = inst.ensure_repo()?;
    let _lock = inst.lock()?;
    if kiln_remote::remote::list(&repo).iter().any(|r| r == name) {
        if if_not_exists {
            return Ok(false);
        }
        return Err(Error::RemoteExists(name.to_string()));
    }
    kiln_store::refs::validate_remote_name(name)?;
    fetch_summary_url(name, url)?;
    let opts = kiln_remote::remote::AddOptions {
        no_gpg_verify: true,
        ..Default::default()
    };
    Ok(kiln_remote::remote::add(&mut repo, name, url, &opts)?)
}

/// `remote-delete`: refused while something installed came from it,
/// unless `force`.
pub fn delete_remote(inst: &Installation, name: &str, force: bool) -> Result<()> {
    let mut repo = inst
        .repo()?
        .ok_or_else(|| Error::NoSuchRemote(name.to_string()))?;
    let _lock = inst.lock()?;
    if !kiln_remote::remote::list(&repo).iter().any(|r| r == name) {
        return Err(Error::NoSuchRemote(name.to_string()));
    }
    let users: Vec<String> = inst
        .installed_refs(None)
        .iter()
        .filter_map(|r| inst.describe(r).ok())
        .filter(|d| d.origin == name)
        .map(|d| d.appref.to_string())
        .collect();
    if !users.is_empty() && !force {
        return Err(Error::Invalid(format!(
            "can't remove remote {name} with installed refs: {} (use --force)",
            users.join(", ")
        )));
    }
    kiln_remote::remote::delete(&mut repo, name, false)?;
    // Its remote refs go too.
    for (r, _) in repo.list_remote_refs(Some(name))? {
        let _ = repo.set_ref(&format!("{name}:{r}"), None);
    }
    Ok(())
}

pub fn list_remotes(inst: &Installation) -> Result<Vec<RemoteInfo>> {
    let Some(repo) = inst.repo()? else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for name in kiln_remote::remote::list(&repo) {
        let r = kiln_remote::remote::get(&repo, &name)?;
        out.push(RemoteInfo {
            gpg_verify: r.get_bool("gpg-verify", true).unwrap_or(true),
            name,
            url: r.url,
            installation: inst.scope,
        });
    }
    Ok(out)
}

/// Installed size (512-byte blocks of regular files) and download size
/// (object files in this repo) of a commit, as `flatpak build-export`
/// computes them.
pub fn commit_sizes(repo: &Repo, commit: &Checksum) -> Result<(u64, u64)> {
    let c = repo.read_commit(commit)?;
    let mut installed = 0u64;
    let mut download = 0u64;
    let mut stack = vec![c.root_tree];
    let mut seen = std::collections::HashSet::new();
    while let Some(t) = stack.pop() {
        let dt = repo.read_dirtree(&t)?;
        for (_, f) in &dt.files {
            let obj = repo.load_content(f)?;
            if obj.meta.is_regular() {
                installed += obj.size.div_ceil(512) * 512;
            }
            if seen.insert(*f) {
                download += repo.object_disk_size(f, ObjectType::File);
            }
        }
        for (_, sub, _) in &dt.dirs {
            stack.push(*sub);
        }
    }
    Ok((installed, download))
}

/// Update a repo's summary the way `flatpak build-update-repo` does: the
/// OSTree summary plus `xa.cache`, `xa.sparse-cache` and
/// `xa.cache-version`. The indexed `summary.idx`/`summaries/` (which
/// Flatpak clients would prefer, and which would go stale) are removed.
pub fn update_repo_summary(repo: &mut Repo) -> Result<()> {
    let bytes = kiln_remote::summary::generate(repo, &VarDict::new(), crate::installation::now())?;
    let mut s = Summary::parse(&bytes).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut cache: Vec<(String, Value)> = Vec::new();
    for r in &s.refs {
        if AppRef::parse(&r.name).is_err() {
            continue;
        }
        let c = repo.read_commit(&r.checksum)?;
        let Some(md) = c.metadata.get_str("xa.metadata") else {
            continue;
        };
        let size = |k: &str| match c.metadata.get(k) {
            Some(Value::Uint64(v)) => u64::from_be(*v),
            _ => 0,
        };
        let (inst, dl) = match (
            c.metadata.get("xa.installed-size"),
            c.metadata.get("xa.download-size"),
        ) {
            (Some(_), Some(_)) => (size("xa.installed-size"), size("xa.download-size")),
            _ => commit_sizes(repo, &r.checksum)?,
        };
        cache.push((
            r.name.clone(),
            Value::Tuple(vec![
                Value::Uint64(inst.to_be()),
                Value::Uint64(dl.to_be()),
                Value::str(md),
            ]),
        ));
    }
    cache.sort_by(|a, b| a.0.cmp(&b.0));
    let entry_t = Type::DictEntry(
        Box::new(Type::String),
        Box::new(Type::parse("(tts)").expect("static type")),
    );
    let cache_v = Value::Array(
        entry_t,
        cache
            .into_iter()
            .map(|(k, v)| Value::DictEntry(Box::new(Value::str(k)), Box::new(v)))
            .collect(),
    );
    s.metadata
        .push("xa.cache-version", Value::Uint32(2u32.to_le()));
    s.metadata
        .push("xa.cache", Value::Variant(Box::new(cache_v)));
    let sparse_t = Type::DictEntry(
        Box::new(Type::String),
        Box::new(Type::parse("a{sv}").expect("static type")),
    );
    s.metadata
        .push("xa.sparse-cache", Value::Array(sparse_t, vec![]));
    let out = s.to_bytes();
    let root = repo.path().to_path_buf();
    kiln_store::util::write_file_atomic(&root.join("summary"), &out, 0o644)?;
    for f in ["summary.sig", "summary.idx", "summary.idx.sig"] {
        let _ = std::fs::remove_file(root.join(f));
    }
    let _ = std::fs::remove_dir_all(root.join("summaries"));
    Ok(())
}
