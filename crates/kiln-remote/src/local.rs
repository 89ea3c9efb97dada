//! `pull-local SRC REF…`: copy refs between repos on this machine (any
//! modes), verifying every object as a remote pull does.

use crate::error::{Error, Result};
use crate::pull::walk::{self, Counters, Root, Source};
use crate::pull::{PullResult, PulledRef, Via};
use kiln_store::refs::RefSpec;
use kiln_store::{Checksum, ObjectType, Progress, Repo};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Objects read from a local repository.
pub(crate) struct LocalSource {
    repo: Repo,
    label: String,
}

impl LocalSource {
    pub(crate) fn open(path: &Path, label: &str) -> Result<LocalSource> {
        Ok(LocalSource {
            repo: Repo::open(path)?,
            label: label.to_string(),
        })
    }
}

impl Source for LocalSource {
    fn label(&self) -> &str {
        &self.label
    }

    fn meta_bytes(&self, csum: &Checksum, ty: ObjectType) -> Result<Option<Vec<u8>>> {
        let p = self.repo.object_path(csum, ty);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    fn store_content(&self, repo: &Repo, csum: &Checksum) -> Result<u64> {
        let obj = self.repo.load_content(csum).map_err(|e| match e {
            kiln_store::Error::MissingObject { .. } => Error::bad_object(
                &self.label,
                *csum,
                ObjectType::File,
                "not found in the source repo",
            ),
            other => Error::bad_object(&self.label, *csum, ObjectType::File, other.to_string()),
        })?;
        let mut r = obj.reader()?;
        let mut w = repo.content_writer(&obj.meta, obj.size)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(|e| {
                Error::bad_object(
                    &self.label,
                    *csum,
                    ObjectType::File,
                    format!("reading: {e}"),
                )
            })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            w.write(&buf[..n]).map_err(|e| {
                Error::bad_object(&self.label, *csum, ObjectType::File, e.to_string())
            })?;
        }
        w.finish(Some(*csum)).map_err(|e| match e {
            kiln_store::Error::Io { .. } => Error::Store(e),
            other => Error::bad_object(&self.label, *csum, ObjectType::File, other.to_string()),
        })?;
        Ok(total)
    }
}

/// Options of `pull-local`.
#[derive(Debug, Clone, Default)]
pub struct PullLocalOptions {
    /// Write `refs/remotes/REMOTE/REF` instead of `refs/heads/REF`.
    pub remote: Option<String>,
    /// Parent commits to copy too: 0 none, -1 all.
    pub depth: i32,
    pub commit_metadata_only: bool,
    pub workers: usize,
}

/// Copy `refs` (all refs of `src` when empty; `REF`, `REF@COMMIT` or a
/// checksum) from the repo at `src` into `repo`.
pub fn pull_local(
    repo: &Repo,
    src: &Path,
    refs: &[String],
    opts: &PullLocalOptions,
    progress: &Progress,
) -> Result<PullResult> {
    let start = std::time::Instant::now();
    let label = src.display().to_string();
    let source = LocalSource::open(src, &label)?;
    repo.lock(kiln_store::repo::LockKind::Shared)?;
    let mut wanted: Vec<(String, Checksum)> = Vec::new();
    if refs.is_empty() {
        wanted.extend(source.repo.list_refs()?);
    }
    for r in refs {
        let (name, rev) = match r.rsplit_once('@') {
            Some((n, c)) => (n.to_string(), c.to_string()),
            None => (r.clone(), r.clone()),
        };
        let csum = source.repo.resolve_rev(&rev)?;
        wanted.push((name, csum));
    }
    let counters = Counters::default();
    let mut roots = Vec::new();
    let mut completing = Vec::new();
    let mut results = Vec::new();
    for (name, target) in &wanted {
        let is_csum = Checksum::is_hex(name);
        let spec = RefSpec {
            remote: opts.remote.clone(),
            name: name.clone(),
        };
        let previous = if is_csum {
            None
        } else {
            repo.resolve_ref(&spec.to_string()).ok().flatten()
        };
        let was_complete = crate::pull::have_complete(repo, target);
        let mut cur = Some(*target);
        let mut left = opts.depth;
        let mut first = true;
        while let Some(c) = cur {
            if !first && left == 0 {
                break;
            }
            let done = crate::pull::have_complete(repo, &c);
            let commit = if done {
                repo.read_commit(&c)?
            } else {
                let Some(bytes) = source.meta_bytes(&c, ObjectType::Commit)? else {
                    if first {
                        return Err(Error::bad_object(
                            &label,
                            c,
                            ObjectType::Commit,
                            "not found in the source repo",
                        ));
                    }
                    break;
                };
                walk::verify_meta(&label, &c, ObjectType::Commit, &bytes)?;
                let md = source.repo.read_commit_detached_metadata(&c)?;
                let p = crate::pull::commitpartial_path(repo, &c);
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                }
                std::fs::write(&p, b"").map_err(|e| Error::io(&p, e))?;
                repo.write_meta_trusted(ObjectType::Commit, &c, &bytes)?;
                if let Some(md) = md {
                    repo.write_commit_detached_metadata(&c, Some(&md))?;
                }
                completing.push(c);
                kiln_store::object::Commit::from_bytes(&bytes)
                    .map_err(|e| Error::bad_object(&label, c, ObjectType::Commit, e.to_string()))?
            };
            if !done && !opts.commit_metadata_only {
                roots.push(Root {
                    tree: commit.root_tree,
                    meta: commit.root_meta,
                    subpaths: vec![],
                });
            }
            if !first {
                left -= 1;
            }
            first = false;
            cur = commit.parent;
        }
        let via = if was_complete {
            Via::Unchanged
        } else if opts.commit_metadata_only {
            Via::Partial
        } else {
            Via::Objects
        };
        results.push(PulledRef {
            name: name.clone(),
            local_ref: spec.to_string(),
            previous,
            commit: *target,
            via,
            delta: None,
        });
    }
    walk::fetch_trees(
        repo,
        &source,
        &roots,
        opts.workers.max(1),
        progress,
        &counters,
    )?;
    kiln_store::util::syncfs(repo.path())?;
    if !opts.commit_metadata_only {
        for c in &completing {
            let p = crate::pull::commitpartial_path(repo, c);
            let _ = std::fs::remove_file(p);
        }
    }
    for (r, (name, _)) in results.iter().zip(&wanted) {
        if Checksum::is_hex(name) {
            continue;
        }
        if r.previous != Some(r.commit) {
            repo.set_ref_spec(&RefSpec::parse(&r.local_ref)?, Some(&r.commit))?;
        }
    }
    Ok(PullResult {
        remote: label.clone(),
        url: format!("file://{label}"),
        refs: results,
        metadata_objects: counters.metadata.load(Ordering::Relaxed),
        content_objects: counters.content.load(Ordering::Relaxed),
        delta_parts: 0,
        bytes_transferred: 0,
        requests: 0,
        elapsed_secs: start.elapsed().as_secs_f64(),
        dry_run: false,
        linked_objects: 0,
        linked_bytes: 0,
        local_copied_objects: 0,
        local_metadata_objects: 0,
        local_refused_objects: 0,
    })
}
