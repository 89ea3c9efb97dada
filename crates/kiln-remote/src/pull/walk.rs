//! Fetching the objects of commits' trees, many at once.
//!
//! A coordinator walks dirtrees (read locally when present, fetched
//! otherwise) and hands every missing object to a pool of worker threads;
//! each worker fetches, verifies (checksum, strict decoding: dirtree names
//! are single path components) and stores one object. The first error stops
//! the pool and is returned; objects stored until then are kept, so a
//! re-run continues where this one stopped.

use crate::error::{Error, Result};
use kiln_store::object::{DirMeta, DirTree};
use kiln_store::{Checksum, ObjectType, Progress, Repo};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

/// Where objects come from: a remote over a transport, or a local repo.
pub(crate) trait Source: Sync {
    /// Name for errors (remote name or repo path).
    fn label(&self) -> &str;
    /// A metadata object's bytes, unverified; `None` when absent.
    fn meta_bytes(&self, csum: &Checksum, ty: ObjectType) -> Result<Option<Vec<u8>>>;
    /// Fetch, verify and store one content object; returns bytes moved.
    fn store_content(&self, repo: &Repo, csum: &Checksum) -> Result<u64>;
}

/// Counters of a pull.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub metadata: AtomicU64,
    pub content: AtomicU64,
}

/// Fetch a metadata object, check its checksum and shape, store it.
pub(crate) fn fetch_meta(
    repo: &Repo,
    src: &dyn Source,
    csum: &Checksum,
    ty: ObjectType,
) -> Result<Vec<u8>> {
    let bytes = src
        .meta_bytes(csum, ty)?
        .ok_or_else(|| Error::bad_object(src.label(), *csum, ty, "not found on the remote"))?;
    verify_meta(src.label(), csum, ty, &bytes)?;
    repo.write_meta_trusted(ty, csum, &bytes)?;
    Ok(bytes)
}

/// Checksum and strict decoding of a metadata object from outside.
pub(crate) fn verify_meta(
    label: &str,
    csum: &Checksum,
    ty: ObjectType,
    bytes: &[u8],
) -> Result<()> {
    if bytes.len() as u64 > ty.max_meta_size() {
        return Err(Error::bad_object(
            label,
            *csum,
            ty,
            format!("{} bytes exceeds the metadata limit", bytes.len()),
        ));
    }
    let actual = Checksum::of(bytes);
    if actual != *csum {
        return Err(Error::bad_object(
            label,
            *csum,
            ty,
            format!("Corrupted {ty} object; checksum expected='{csum}' actual='{actual}'"),
        ));
    }
    let shape = match ty {
        ObjectType::DirTree => DirTree::from_bytes(bytes).map(|_| ()),
        ObjectType::DirMeta => DirMeta::from_bytes(bytes).map(|_| ()),
        ObjectType::Commit => kiln_store::object::Commit::from_bytes(bytes).map(|_| ()),
        _ => Ok(()),
    };
    shape.map_err(|e| Error::bad_object(label, *csum, ty, e.to_string()))
}

/// One tree to walk: a commit's root, restricted to `subpaths` (empty = all).
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub tree: Checksum,
    pub meta: Checksum,
    pub subpaths: Vec<String>,
}

enum Job {
    Meta(Checksum, ObjectType),
    Content(Checksum),
}

enum Done {
    Tree(Checksum, Result<DirTree>),
    Other(Result<()>),
}

fn join(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// Whether `path` (a dir when `dir`) is wanted under these subpaths.
fn wanted(subpaths: &[String], path: &str, dir: bool) -> bool {
    if subpaths.is_empty() {
        return true;
    }
    subpaths.iter().any(|s| {
        let s = s.trim_end_matches('/');
        let s = if s.is_empty() { "/" } else { s };
        // inside the subpath, or (for dirs) on the way to it
        s == "/"
            || path == s
            || path.starts_with(&format!("{s}/"))
            || (dir && s.starts_with(&format!("{path}/")))
    })
}

/// Walk `roots`, fetching every object the repo lacks.
pub(crate) fn fetch_trees(
    repo: &Repo,
    src: &dyn Source,
    roots: &[Root],
    workers: usize,
    progress: &Progress,
    counters: &Counters,
) -> Result<()> {
    let abort = AtomicBool::new(false);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            let done_tx = done_tx.clone();
            let (job_rx, abort) = (&job_rx, &abort);
            s.spawn(move || loop {
                let job = {
                    let rx = job_rx.lock().unwrap_or_else(|p| p.into_inner());
                    rx.recv()
                };
                let Ok(job) = job else { break };
                let done = match job {
                    Job::Meta(c, ty) if abort.load(Ordering::Relaxed) => {
                        if ty == ObjectType::DirTree {
                            Done::Tree(c, Err(Error::Invalid("aborted".into())))
                        } else {
                            Done::Other(Err(Error::Invalid("aborted".into())))
                        }
                    }
                    Job::Content(_) if abort.load(Ordering::Relaxed) => {
                        Done::Other(Err(Error::Invalid("aborted".into())))
                    }
                    Job::Meta(c, ObjectType::DirTree) => {
                        let r = fetch_meta(repo, src, &c, ObjectType::DirTree).and_then(|b| {
                            DirTree::from_bytes(&b).map_err(|e| {
                                Error::bad_object(
                                    src.label(),
                                    c,
                                    ObjectType::DirTree,
                                    e.to_string(),
                                )
                            })
                        });
                        if r.is_ok() {
                            counters.metadata.fetch_add(1, Ordering::Relaxed);
                            progress.add_done(1, 0);
                        }
                        Done::Tree(c, r)
                    }
                    Job::Meta(c, ty) => {
                        let r = fetch_meta(repo, src, &c, ty).map(|_| ());
                        if r.is_ok() {
                            counters.metadata.fetch_add(1, Ordering::Relaxed);
                            progress.add_done(1, 0);
                        }
                        Done::Other(r)
                    }
                    Job::Content(c) => {
                        let r = src.store_content(repo, &c).map(|n| {
                            counters.content.fetch_add(1, Ordering::Relaxed);
                            progress.add_done(1, n);
                        });
                        Done::Other(r)
                    }
                };
                if done_tx.send(done).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let res = coordinate(repo, roots, &job_tx, &done_rx, progress, &abort);
        drop(job_tx);
        res
    })
}

fn coordinate(
    repo: &Repo,
    roots: &[Root],
    job_tx: &mpsc::Sender<Job>,
    done_rx: &mpsc::Receiver<Done>,
    progress: &Progress,
    abort: &AtomicBool,
) -> Result<()> {
    let mut requested: HashSet<(Checksum, ObjectType)> = HashSet::new();
    // dirtrees being fetched → (path, subpaths) that wait for them
    let mut waiting: HashMap<Checksum, Vec<(String, usize)>> = HashMap::new();
    // trees to list: (path, tree, root index)
    let mut stack: Vec<(String, DirTree, usize)> = Vec::new();
    let mut pending = 0usize;
    let mut first_err: Option<Error> = None;
    // (path, dirtree, dirmeta, root index)
    let mut visit: Vec<(String, Checksum, Checksum, usize)> = roots
        .iter()
        .enumerate()
        .map(|(i, r)| ("/".to_string(), r.tree, r.meta, i))
        .collect();
    let mut seen_local: HashSet<(Checksum, String)> = HashSet::new();
    loop {
        while first_err.is_none() && (!visit.is_empty() || !stack.is_empty()) {
            if let Some((path, tree, meta, ri)) = visit.pop() {
                if !repo.has_object(&meta, ObjectType::DirMeta)
                    && requested.insert((meta, ObjectType::DirMeta))
                {
                    progress.add_total(1, 0);
                    pending += 1;
                    let _ = job_tx.send(Job::Meta(meta, ObjectType::DirMeta));
                }
                if repo.has_object(&tree, ObjectType::DirTree) {
                    // Walk present trees too: a resumed pull may lack their children.
                    let key = if roots[ri].subpaths.is_empty() {
                        String::new()
                    } else {
                        path.clone()
                    };
                    if seen_local.insert((tree, key)) {
                        match repo.read_dirtree(&tree) {
                            Ok(dt) => stack.push((path, dt, ri)),
                            Err(e) => first_err = Some(e.into()),
                        }
                    }
                } else {
                    let w = waiting.entry(tree).or_default();
                    let first = w.is_empty();
                    w.push((path, ri));
                    if first && requested.insert((tree, ObjectType::DirTree)) {
                        progress.add_total(1, 0);
                        pending += 1;
                        let _ = job_tx.send(Job::Meta(tree, ObjectType::DirTree));
                    }
                }
                continue;
            }
            if let Some((path, dt, ri)) = stack.pop() {
                let subs = &roots[ri].subpaths;
                for (name, c) in &dt.files {
                    if !subs.is_empty() && !wanted(subs, &join(&path, name), false) {
                        continue;
                    }
                    if !repo.has_object(c, ObjectType::File)
                        && requested.insert((*c, ObjectType::File))
                    {
                        progress.add_total(1, 0);
                        pending += 1;
                        let _ = job_tx.send(Job::Content(*c));
                    }
                }
                for (name, t, m) in &dt.dirs {
                    let p = join(&path, name);
                    if subs.is_empty() || wanted(subs, &p, true) {
                        visit.push((p, *t, *m, ri));
                    }
                }
            }
        }
        if pending == 0 {
            break;
        }
        let Ok(done) = done_rx.recv() else { break };
        pending -= 1;
        match done {
            Done::Tree(c, Ok(dt)) => {
                for (path, ri) in waiting.remove(&c).unwrap_or_default() {
                    stack.push((path, dt.clone(), ri));
                }
            }
            Done::Tree(_, Err(e)) | Done::Other(Err(e)) => {
                if first_err.is_none() {
                    abort.store(true, Ordering::Relaxed);
                    first_err = Some(e);
                }
            }
            Done::Other(Ok(())) => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::wanted;

    #[test]
    fn subpath_filter() {
        let s = vec!["/usr/share".to_string()];
        assert!(wanted(&s, "/usr", true));
        assert!(wanted(&s, "/usr/share", true));
        assert!(wanted(&s, "/usr/share/x", false));
        assert!(!wanted(&s, "/usr/lib", true));
        assert!(!wanted(&s, "/usr/sharex", true));
        assert!(!wanted(&s, "/etc/a", false));
    }
}
