//! `pull`: fetch refs of a remote into a repo.
//!
//! summary (+ `summary.sig`, verified when `sign-verify-summary`) → resolve
//! the refs → fetch each commit (+ detached metadata; its ed25519 signature
//! verified when `sign-verify`, before anything is walked) → refuse
//! downgrades and unbound commits → `state/COMMIT.commitpartial` → a static
//! delta when the summary offers one from a commit we have, else walk the
//! trees fetching only missing objects, many at once, each verified →
//! `syncfs` → remove the commitpartial → write `refs/remotes/REMOTE/REF`.

mod delta;
mod localcache;
pub(crate) mod source;
pub(crate) mod walk;

use crate::error::{Error, Result};
use crate::fetch::{Fetcher, NetOptions};
use crate::remote::{self, Remote};
use crate::sign::{self, PublicKey};
use crate::summary::{self, Summary, MAX_SUMMARY_SIZE};
use kiln_store::gvariant::Value;
use kiln_store::object::Commit;
use kiln_store::refs::RefSpec;
use kiln_store::{failpoint, Checksum, ObjectType, Progress, Repo};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;
use walk::{Counters, Root, Source};

/// How to pull (ostree's `pull` flags).
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Parent commits to fetch too: 0 none, -1 all.
    pub depth: i32,
    /// Write refs to `refs/heads/` (and copy the summary) instead of
    /// `refs/remotes/REMOTE/`.
    pub mirror: bool,
    /// Fetch only the commit objects; they stay partial.
    pub commit_metadata_only: bool,
    /// Fetch only these paths of the tree (the commit stays partial).
    pub subpaths: Vec<String>,
    pub disable_static_deltas: bool,
    pub require_static_deltas: bool,
    /// Resolve and check, write nothing.
    pub dry_run: bool,
    /// Refuse a commit older than the local one even when asked for by
    /// checksum (`REF@COMMIT`).
    pub timestamp_check: bool,
    /// Accept a commit older than the local one.
    pub allow_downgrade: bool,
    /// Use this URL instead of the configured one.
    pub url_override: Option<String>,
    pub net: NetOptions,
    /// Local repositories to take objects from before fetching them
    /// (ostree's `localcache-repos`; for apps, the OS repository). A
    /// content object is hardlinked when both files are on one file system
    /// and mean the same in both repo modes, else copied; either way it is
    /// verified against its checksum first, and fetched when it does not
    /// match. See `pull/localcache.rs`.
    pub localcache_repos: Vec<PathBuf>,
}

/// One ref asked for: `REF` or `REF@COMMIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRequest {
    pub name: String,
    pub commit: Option<Checksum>,
}

impl RefRequest {
    pub fn parse(s: &str) -> Result<RefRequest> {
        let (name, commit) = match s.rsplit_once('@') {
            Some((n, c)) => (
                n,
                Some(
                    c.parse::<Checksum>()
                        .map_err(|e| Error::Invalid(e.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        kiln_store::refs::validate_ref(name)?;
        Ok(RefRequest {
            name: name.to_string(),
            commit,
        })
    }
}

/// How a ref's commit arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Already complete locally.
    Unchanged,
    Objects,
    StaticDelta,
    /// `--commit-metadata-only`, `--subpath`: the commit is partial.
    Partial,
    /// `--dry-run`: nothing written.
    DryRun,
}

/// What happened to one ref.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PulledRef {
    pub name: String,
    /// The local ref written (`REMOTE:REF`, or `REF` with `--mirror`).
    pub local_ref: String,
    pub previous: Option<Checksum>,
    pub commit: Checksum,
    pub via: Via,
    /// The static delta used, if any (`FROM-TO` or `TO`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
}

/// The `--json` summary of a pull.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PullResult {
    pub remote: String,
    pub url: String,
    pub refs: Vec<PulledRef>,
    pub metadata_objects: u64,
    pub content_objects: u64,
    pub delta_parts: u64,
    pub bytes_transferred: u64,
    pub requests: u64,
    pub elapsed_secs: f64,
    pub dry_run: bool,
    /// Content objects hardlinked from a `localcache_repos` repository
    /// (counted in `content_objects` too; nothing was transferred).
    pub linked_objects: u64,
    /// Their size: bytes shared with that repository, not stored again.
    pub linked_bytes: u64,
    /// Content objects copied (verified) from a `localcache_repos` repo.
    pub local_copied_objects: u64,
    /// Metadata objects read from a `localcache_repos` repo.
    pub local_metadata_objects: u64,
    /// Objects present in a `localcache_repos` repo that failed
    /// verification there, and were fetched instead.
    pub local_refused_objects: u64,
}

/// Signature verification a remote asks for.
#[derive(Debug, Default)]
struct Verifiers {
    commit: Option<Vec<PublicKey>>,
    summary: Option<Vec<PublicKey>>,
}

fn load_keys(r: &Remote) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    if let Some(f) = r.get("verification-ed25519-file") {
        keys.extend(PublicKey::from_file(std::path::Path::new(f)).map_err(|e| {
            Error::RemoteConfig {
                remote: r.name.clone(),
                why: format!("Failed loading 'ed25519' keys from '{f}': {e}"),
            }
        })?);
    }
    if let Some(k) = r.get("verification-ed25519-key") {
        keys.push(PublicKey::from_base64(k).map_err(|e| Error::RemoteConfig {
            remote: r.name.clone(),
            why: format!("Failed loading 'ed25519' keys from inline `verification-key`: {e}"),
        })?);
    }
    Ok(keys)
}

fn verifier_for(r: &Remote, key: &str) -> Result<Option<Vec<PublicKey>>> {
    let raw = r.get(key).map(str::trim).unwrap_or("");
    match raw {
        "" | "false" | "0" => Ok(None),
        "true" | "1" => Ok(Some(load_keys(r)?)),
        list => {
            for t in list
                .split([',', ';'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                if t != "ed25519" {
                    return Err(Error::Unsupported {
                        remote: r.name.clone(),
                        why: format!(
                            "{key}={list}: signature type {t:?} is not implemented (ed25519 is)"
                        ),
                    });
                }
            }
            let keys = load_keys(r)?;
            if keys.is_empty() {
                return Err(Error::RemoteConfig {
                    remote: r.name.clone(),
                    why: "No keys found for required signapi type ed25519".into(),
                });
            }
            Ok(Some(keys))
        }
    }
}

fn verifiers(r: &Remote) -> Result<Verifiers> {
    if r.get_bool("gpg-verify", true)? || r.get_bool("gpg-verify-summary", false)? {
        return Err(Error::Unsupported {
            remote: r.name.clone(),
            why: "GPG verification is enabled (gpg-verify defaults to true) but kiln does not implement GPG; \
                  verify with ed25519 (sign-verify=true, verification-ed25519-key=…) and set gpg-verify=false \
                  (remote add --no-gpg-verify)"
                .into(),
        });
    }
    Ok(Verifiers {
        commit: verifier_for(r, "sign-verify")?,
        summary: verifier_for(r, "sign-verify-summary")?,
    })
}

pub(crate) fn commitpartial_path(repo: &Repo, c: &Checksum) -> PathBuf {
    repo.path().join("state").join(format!("{c}.commitpartial"))
}

fn mark_partial(repo: &Repo, c: &Checksum) -> Result<()> {
    let p = commitpartial_path(repo, c);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(&p, b"").map_err(|e| Error::io(&p, e))
}

fn unmark_partial(repo: &Repo, c: &Checksum) -> Result<()> {
    let p = commitpartial_path(repo, c);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&p, e)),
        _ => Ok(()),
    }
}

/// Whether `c` is present and complete locally.
pub(crate) fn have_complete(repo: &Repo, c: &Checksum) -> bool {
    repo.has_object(c, ObjectType::Commit) && !commitpartial_path(repo, c).exists()
}

/// A commit checked and (unless dry-run) stored.
struct Fetched {
    commit: Commit,
    bytes: Vec<u8>,
    md: Option<kiln_store::gvariant::VarDict>,
}

/// Store a checked commit, marked partial until its tree is complete.
fn store_commit(repo: &Repo, c: &Checksum, f: &Fetched) -> Result<()> {
    if !have_complete(repo, c) {
        mark_partial(repo, c)?;
        failpoint::hit("pull:after-commitpartial");
    }
    repo.write_meta_trusted(ObjectType::Commit, c, &f.bytes)?;
    if let Some(md) = &f.md {
        repo.write_commit_detached_metadata(c, Some(md))?;
    }
    Ok(())
}

/// Fetch (or read) commit `c` and its detached metadata, verify its
/// signature. Nothing is stored.
fn fetch_commit(
    repo: &Repo,
    src: &dyn Source,
    commitmeta: &dyn Fn(&Checksum) -> Result<Option<Vec<u8>>>,
    c: &Checksum,
    keys: Option<&[PublicKey]>,
) -> Result<Option<Fetched>> {
    let label = src.label();
    let local = repo.has_object(c, ObjectType::Commit);
    let bytes = if local {
        repo.read_meta(c, ObjectType::Commit)?
    } else {
        match src.meta_bytes(c, ObjectType::Commit)? {
            Some(b) => b,
            None => return Ok(None),
        }
    };
    walk::verify_meta(label, c, ObjectType::Commit, &bytes)?;
    let commit = Commit::from_bytes(&bytes)
        .map_err(|e| Error::bad_object(label, *c, ObjectType::Commit, e.to_string()))?;
    let md_bytes = commitmeta(c)?;
    let md = match &md_bytes {
        Some(b) => Some(
            kiln_store::object::decode_vardict(b)
                .map_err(|e| Error::bad_object(label, *c, ObjectType::CommitMeta, e.to_string()))?,
        ),
        None => None,
    };
    if let Some(keys) = keys {
        // Remote signatures first; a local copy counts too.
        let local_md = if md.is_none() {
            repo.read_commit_detached_metadata(c)?
        } else {
            None
        };
        sign::verify(&bytes, md.as_ref().or(local_md.as_ref()), keys).map_err(|f| {
            Error::Signature {
                remote: label.to_string(),
                what: format!("commit {c}"),
                why: f.to_string(),
            }
        })?;
    }
    Ok(Some(Fetched { commit, bytes, md }))
}

fn check_binding(remote: &str, name: &str, c: &Checksum, commit: &Commit) -> Result<()> {
    let Some(v) = commit.metadata.get("ostree.ref-binding") else {
        return Ok(());
    };
    let bound: Vec<String> = v
        .children()
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    if matches!(v, Value::Array(..)) && !bound.iter().any(|b| b == name) {
        return Err(Error::RefBinding {
            remote: remote.to_string(),
            name: name.to_string(),
            commit: *c,
            bound,
        });
    }
    Ok(())
}

/// Pull `refs` (`REF` or `REF@COMMIT`; none = the remote's `branches=`, or
/// with `mirror` every ref of the summary) from `remote` into `repo`.
pub fn pull(
    repo: &Repo,
    remote_name: &str,
    refs: &[String],
    opts: &PullOptions,
    progress: &Progress,
) -> Result<PullResult> {
    let start = Instant::now();
    let remote = remote::get(repo, remote_name)?;
    let url = opts
        .url_override
        .clone()
        .unwrap_or_else(|| remote.url.clone());
    let verify = verifiers(&remote)?;
    let fetcher = Fetcher::new(remote_name, &url, &opts.net)?;
    if !opts.dry_run {
        repo.lock(kiln_store::repo::LockKind::Shared)?;
    }

    // Summary and its signature.
    let summary_bytes = fetcher.get_opt("summary", MAX_SUMMARY_SIZE)?;
    let sig_bytes = if verify.summary.is_some() || opts.mirror {
        fetcher.get_opt("summary.sig", MAX_SUMMARY_SIZE)?
    } else {
        None
    };
    if let Some(keys) = &verify.summary {
        let sig_err = |why: String| Error::Signature {
            remote: remote_name.to_string(),
            what: "summary".into(),
            why,
        };
        let sb = summary_bytes.as_ref().ok_or_else(|| {
            sig_err("Signature verification enabled, but no summary found".into())
        })?;
        let sig = sig_bytes.as_ref().ok_or_else(|| {
            sig_err("Signatures verification enabled, but no summary.sig found (use sign-verify-summary=false in remote config to disable)".into())
        })?;
        let md = kiln_store::object::decode_vardict(sig)
            .map_err(|e| sig_err(format!("summary.sig: {e}")))?;
        sign::verify(sb, Some(&md), keys).map_err(|f| sig_err(f.to_string()))?;
    }
    let summary = match &summary_bytes {
        Some(b) => Some(Summary::parse(b).map_err(|e| Error::Summary {
            remote: remote_name.to_string(),
            why: e.to_string(),
        })?),
        None => None,
    };

    // The remote's mode: archive over any transport; other modes via file://.
    let mode = match summary.as_ref().and_then(|s| s.mode().map(str::to_string)) {
        Some(m) => m,
        None => match fetcher.get_opt("config", 1 << 20)? {
            Some(b) => {
                let text = String::from_utf8_lossy(&b).to_string();
                kiln_store::keyfile::KeyFile::parse(&text)
                    .ok()
                    .and_then(|k| k.get("core", "mode").map(str::to_string))
                    .unwrap_or_else(|| "bare".into())
            }
            None => "archive-z2".into(),
        },
    };
    let local_src;
    let remote_src;
    let src: &dyn Source = if matches!(mode.as_str(), "archive-z2" | "archive") {
        remote_src = source::RemoteSource { fetcher: &fetcher };
        &remote_src
    } else if let Some(path) = url.strip_prefix("file://") {
        local_src = crate::local::LocalSource::open(std::path::Path::new(path), remote_name)?;
        &local_src
    } else {
        return Err(Error::Unsupported {
            remote: remote_name.to_string(),
            why: format!(
                "remote repository mode {mode:?}: only archive repos can be pulled over HTTP"
            ),
        });
    };
    let commitmeta =
        |c: &Checksum| -> Result<Option<Vec<u8>>> { src.meta_bytes(c, ObjectType::CommitMeta) };

    // Which refs.
    let mut reqs: Vec<RefRequest> = refs
        .iter()
        .map(|r| RefRequest::parse(r))
        .collect::<Result<_>>()?;
    if reqs.is_empty() {
        reqs = remote
            .branches()
            .into_iter()
            .map(|name| RefRequest { name, commit: None })
            .collect();
        if reqs.is_empty() && opts.mirror {
            if let Some(s) = &summary {
                reqs = s
                    .refs
                    .iter()
                    .map(|r| RefRequest {
                        name: r.name.clone(),
                        commit: None,
                    })
                    .collect();
            }
        }
        if reqs.is_empty() {
            return Err(Error::RemoteConfig {
                remote: remote_name.into(),
                why: "No configured branches for remote".into(),
            });
        }
    }

    let counters = Counters::default();
    let mut results = Vec::new();
    let mut roots: Vec<Root> = Vec::new();
    // commits to unmark once complete
    let mut completing: Vec<Checksum> = Vec::new();
    let mut delta_parts = 0u64;
    for req in &reqs {
        let target =
            match req.commit {
                Some(c) => c,
                None => match &summary {
                    Some(s) => s.lookup(&req.name).map(|r| r.checksum).ok_or_else(|| {
                        Error::RefNotFound {
                            remote: remote_name.into(),
                            name: req.name.clone(),
                        }
                    })?,
                    None => {
                        let b = fetcher
                            .get_opt(&format!("refs/heads/{}", req.name), 1024)?
                            .ok_or_else(|| Error::RefNotFound {
                                remote: remote_name.into(),
                                name: req.name.clone(),
                            })?;
                        String::from_utf8_lossy(&b)
                            .trim()
                            .parse::<Checksum>()
                            .map_err(|_| Error::Summary {
                                remote: remote_name.into(),
                                why: format!("refs/heads/{}: not a checksum", req.name),
                            })?
                    }
                },
            };
        let spec = RefSpec {
            remote: if opts.mirror {
                None
            } else {
                Some(remote_name.to_string())
            },
            name: req.name.clone(),
        };
        let previous = repo.resolve_ref(&spec.to_string()).ok().flatten();
        let was_complete = have_complete(repo, &target);
        let fetched = fetch_commit(repo, src, &commitmeta, &target, verify.commit.as_deref())?
            .ok_or_else(|| {
                Error::bad_object(
                    remote_name,
                    target,
                    ObjectType::Commit,
                    "not found on the remote",
                )
            })?;
        check_binding(remote_name, &req.name, &target, &fetched.commit)?;
        if let Some(prev) = previous.filter(|p| *p != target) {
            if let Ok(old) = repo.read_commit(&prev) {
                let explicit = req.commit.is_some() && !opts.timestamp_check;
                if fetched.commit.timestamp < old.timestamp && !opts.allow_downgrade && !explicit {
                    return Err(Error::Downgrade(Box::new(crate::error::Downgrade {
                        remote: remote_name.into(),
                        name: req.name.clone(),
                        old: prev,
                        old_ts: old.timestamp,
                        new: target,
                        new_ts: fetched.commit.timestamp,
                    })));
                }
            }
        }
        if !opts.dry_run {
            store_commit(repo, &target, &fetched)?;
        }
        let partial = opts.commit_metadata_only || !opts.subpaths.is_empty();
        let mut via = if opts.dry_run {
            Via::DryRun
        } else if partial {
            Via::Partial
        } else if was_complete {
            Via::Unchanged
        } else {
            Via::Objects
        };
        let mut delta_name = None;
        if !opts.dry_run && !was_complete && !partial {
            if !opts.disable_static_deltas {
                // A from-scratch delta carries every object: with local
                // object sources, walk the tree instead (unless required).
                let chosen =
                    delta::choose(repo, &fetcher, summary.as_ref(), &target, previous.as_ref())?
                        .filter(|d| {
                            d.from.is_some()
                                || opts.localcache_repos.is_empty()
                                || opts.require_static_deltas
                        });
                if let Some(entry) = chosen {
                    let n = delta::apply(repo, &fetcher, &entry, progress)?;
                    delta_parts += n;
                    via = Via::StaticDelta;
                    delta_name = Some(entry.name());
                } else if opts.require_static_deltas {
                    return Err(Error::Delta {
                        remote: remote_name.into(),
                        name: summary::delta_name(previous.as_ref(), &target),
                        why: format!("Static deltas required, but none found for {}", req.name),
                    });
                }
            }
            completing.push(target);
        }
        if !opts.dry_run
            && !opts.commit_metadata_only
            && (!was_complete || !opts.subpaths.is_empty())
        {
            roots.push(Root {
                tree: fetched.commit.root_tree,
                meta: fetched.commit.root_meta,
                subpaths: opts.subpaths.clone(),
            });
        }
        // History.
        if !opts.dry_run && opts.depth != 0 {
            let mut cur = fetched.commit.parent;
            let mut left = opts.depth;
            while let (Some(p), true) = (cur, left != 0) {
                let pc = if have_complete(repo, &p) {
                    repo.read_commit(&p).ok()
                } else {
                    match fetch_commit(repo, src, &commitmeta, &p, None)? {
                        Some(f) => {
                            store_commit(repo, &p, &f)?;
                            if !opts.commit_metadata_only {
                                roots.push(Root {
                                    tree: f.commit.root_tree,
                                    meta: f.commit.root_meta,
                                    subpaths: opts.subpaths.clone(),
                                });
                                if opts.subpaths.is_empty() {
                                    completing.push(p);
                                }
                            }
                            Some(f.commit)
                        }
                        None => None,
                    }
                };
                cur = pc.and_then(|c| c.parent);
                left -= 1;
            }
        }
        results.push(PulledRef {
            name: req.name.clone(),
            local_ref: spec.to_string(),
            previous,
            commit: target,
            via,
            delta: delta_name,
        });
    }

    let cache = if !roots.is_empty() && !opts.localcache_repos.is_empty() {
        Some(localcache::LocalCache::open(repo, &opts.localcache_repos)?)
    } else {
        None
    };
    if !roots.is_empty() {
        let cached;
        let src: &dyn Source = match &cache {
            Some(c) if !c.is_empty() => {
                cached = localcache::WithCache {
                    inner: src,
                    cache: c,
                };
                &cached
            }
            _ => src,
        };
        walk::fetch_trees(repo, src, &roots, opts.net.workers, progress, &counters)?;
    }
    if !opts.dry_run {
        kiln_store::util::syncfs(repo.path())?;
        failpoint::hit("pull:after-syncfs");
        if !opts.commit_metadata_only && opts.subpaths.is_empty() {
            for c in &completing {
                unmark_partial(repo, c)?;
            }
        }
        for r in &results {
            let spec = RefSpec::parse(&r.local_ref)?;
            if r.previous != Some(r.commit) {
                repo.set_ref_spec(&spec, Some(&r.commit))?;
            }
        }
        failpoint::hit("pull:after-refs");
        if opts.mirror && refs.is_empty() {
            if let Some(b) = &summary_bytes {
                kiln_store::util::write_file_atomic(&repo.path().join("summary"), b, 0o644)?;
                let sig = repo.path().join("summary.sig");
                match &sig_bytes {
                    Some(s) => kiln_store::util::write_file_atomic(&sig, s, 0o644)?,
                    None => {
                        let _ = std::fs::remove_file(&sig);
                    }
                }
            }
        }
    }
    Ok(PullResult {
        remote: remote_name.to_string(),
        url,
        refs: results,
        metadata_objects: counters.metadata.load(Ordering::Relaxed),
        content_objects: counters.content.load(Ordering::Relaxed),
        delta_parts,
        bytes_transferred: fetcher.bytes.load(Ordering::Relaxed),
        requests: fetcher.requests.load(Ordering::Relaxed),
        elapsed_secs: start.elapsed().as_secs_f64(),
        dry_run: opts.dry_run,
        linked_objects: local(&cache, |c| &c.linked),
        linked_bytes: local(&cache, |c| &c.linked_bytes),
        local_copied_objects: local(&cache, |c| &c.copied),
        local_metadata_objects: local(&cache, |c| &c.metadata),
        local_refused_objects: local(&cache, |c| &c.refused),
    })
}

fn local(
    cache: &Option<localcache::LocalCache>,
    f: impl Fn(&localcache::CacheCounters) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    cache
        .as_ref()
        .map_or(0, |c| f(&c.counters).load(Ordering::Relaxed))
}

/// The bytes of a remote's `summary` and `summary.sig`, if present.
pub type SummaryAndSig = (Option<Vec<u8>>, Option<Vec<u8>>);

/// `remote summary` / `remote refs`: fetch a remote's summary (verified
/// when `sign-verify-summary` asks for it) and its signature.
pub fn remote_summary(repo: &Repo, remote_name: &str, net: &NetOptions) -> Result<SummaryAndSig> {
    let remote = remote::get(repo, remote_name)?;
    let verify = verify_summary_only(&remote)?;
    let fetcher = Fetcher::new(remote_name, &remote.url, net)?;
    let summary = fetcher.get_opt("summary", MAX_SUMMARY_SIZE)?;
    let sig = fetcher.get_opt("summary.sig", MAX_SUMMARY_SIZE)?;
    if let Some(keys) = verify {
        let sig_err = |why: String| Error::Signature {
            remote: remote_name.to_string(),
            what: "summary".into(),
            why,
        };
        let sb = summary
            .as_ref()
            .ok_or_else(|| sig_err("no summary found".into()))?;
        let s = sig.as_ref().ok_or_else(|| {
            sig_err("Signatures verification enabled, but no summary.sig found".into())
        })?;
        let md = kiln_store::object::decode_vardict(s)
            .map_err(|e| sig_err(format!("summary.sig: {e}")))?;
        sign::verify(sb, Some(&md), &keys).map_err(|f| sig_err(f.to_string()))?;
    }
    if let Some(b) = &summary {
        Summary::parse(b).map_err(|e| Error::Summary {
            remote: remote_name.to_string(),
            why: e.to_string(),
        })?;
    }
    Ok((summary, sig))
}

fn verify_summary_only(r: &Remote) -> Result<Option<Vec<PublicKey>>> {
    verifier_for(r, "sign-verify-summary")
}
