//! Static deltas during a pull: pick the best delta to the target commit
//! from the summary (or `delta-indexes/`), fetch its superblock (checked
//! against the summary's digest) and parts, and hand them to
//! [`crate::delta`], which verifies and executes them.

use super::source::RemoteSource;
use super::walk::{self, Source};
use crate::delta::{self as sd, PartCheck};
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::summary::{self, DeltaEntry, Summary};
use kiln_store::{Checksum, ObjectType, Progress, Repo};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Largest superblock accepted (inline deltas carry their parts).
const MAX_SUPERBLOCK: u64 = 256 << 20;
/// Largest part accepted.
const MAX_PART: u64 = 1 << 30;

/// The deltas the remote offers to `target`.
fn offered(
    fetcher: &Fetcher,
    summary: Option<&Summary>,
    target: &Checksum,
) -> Result<Vec<DeltaEntry>> {
    let Some(s) = summary else {
        return Ok(Vec::new());
    };
    let bad = |why: String| Error::Summary {
        remote: fetcher.remote().to_string(),
        why,
    };
    let mut all = s.static_deltas().map_err(|e| bad(e.to_string()))?;
    if all.is_empty() && s.indexed_deltas() {
        let rel = summary::delta_index_path(target);
        if let Some(b) = fetcher.get_opt(&rel, summary::MAX_SUMMARY_SIZE)? {
            let idx =
                kiln_store::object::decode_vardict(&b).map_err(|e| bad(format!("{rel}: {e}")))?;
            if let Some(v) = idx.get(summary::STATIC_DELTAS) {
                all = summary::parse_delta_dict(v).map_err(|e| bad(format!("{rel}: {e}")))?;
            }
        }
    }
    all.retain(|d| d.to == *target);
    Ok(all)
}

/// The delta to use for `target`: from the newest complete local commit a
/// delta starts at; else from scratch when there is no local ref yet.
pub(super) fn choose(
    repo: &Repo,
    fetcher: &Fetcher,
    summary: Option<&Summary>,
    target: &Checksum,
    previous: Option<&Checksum>,
) -> Result<Option<DeltaEntry>> {
    let deltas = offered(fetcher, summary, target)?;
    let mut best: Option<(u64, DeltaEntry)> = None;
    let mut scratch = None;
    for d in deltas {
        match d.from {
            None => scratch = Some(d),
            Some(f) => {
                if !super::have_complete(repo, &f) {
                    continue;
                }
                let ts = repo.read_commit(&f).map(|c| c.timestamp).unwrap_or(0);
                if best.as_ref().is_none_or(|(bts, _)| ts > *bts) {
                    best = Some((ts, d));
                }
            }
        }
    }
    Ok(best
        .map(|(_, d)| d)
        .or(if previous.is_none() { scratch } else { None }))
}

/// Fetch and apply one delta. Returns the number of parts applied.
pub(super) fn apply(
    repo: &Repo,
    fetcher: &Fetcher,
    entry: &DeltaEntry,
    progress: &Progress,
) -> Result<u64> {
    let remote = fetcher.remote().to_string();
    let name = entry.name();
    let derr = |why: String| Error::Delta {
        remote: remote.clone(),
        name: name.clone(),
        why,
    };
    let dir = summary::delta_dir(entry.from.as_ref(), &entry.to);
    let sb_bytes = fetcher.get(&format!("{dir}/superblock"), MAX_SUPERBLOCK)?;
    let actual = Checksum::of(&sb_bytes);
    if actual != entry.digest {
        return Err(derr(format!(
            "superblock checksum mismatch: expected={} actual={actual}",
            entry.digest
        )));
    }
    let sb = sd::parse_superblock(&sb_bytes).map_err(|e| derr(e.to_string()))?;
    if sb.to != entry.to || sb.from != entry.from {
        return Err(derr("superblock is for another delta".into()));
    }
    if let Some(f) = &sb.from {
        if !repo.has_object(f, ObjectType::Commit) {
            return Err(derr(format!(
                "Commit {f}, which is the delta source, is not in repository"
            )));
        }
    }
    let todo: Vec<usize> = (0..sb.parts.len())
        .filter(|&i| !sd::part_is_present(repo, &sb.parts[i]))
        .collect();
    progress.add_total(todo.len() as u64, sb.parts.iter().map(|p| p.size).sum());
    let next = AtomicUsize::new(0);
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    let workers = todo.len().clamp(1, 4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if first_err.lock().map(|g| g.is_some()).unwrap_or(true) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = todo.get(k) else { break };
                let header = &sb.parts[i];
                let label = i.to_string();
                let res = (|| -> Result<()> {
                    let bytes = match sb.inline_part(i) {
                        Some(b) => b,
                        None => fetcher.get(&format!("{dir}/{i}"), header.size.min(MAX_PART))?,
                    };
                    sd::apply_part(repo, header, &bytes, PartCheck::Verify, &label)
                        .map_err(|e| derr(format!("part {i}: {e}")))?;
                    progress.add_done(1, bytes.len() as u64);
                    Ok(())
                })();
                if let Err(e) = res {
                    if let Ok(mut g) = first_err.lock() {
                        g.get_or_insert(e);
                    }
                    break;
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // Objects too large for the delta are fetched on their own.
    let src = RemoteSource { fetcher };
    for f in &sb.fallback {
        if repo.has_object(&f.checksum, f.objtype) {
            continue;
        }
        if f.objtype == ObjectType::File {
            src.store_content(repo, &f.checksum)?;
        } else {
            walk::fetch_meta(repo, &src, &f.checksum, f.objtype)?;
        }
    }
    sd::write_commit(repo, &sb).map_err(|e| derr(e.to_string()))?;
    Ok(todo.len() as u64)
}
