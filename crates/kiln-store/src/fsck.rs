//! Verifying a repository: every object reachable from the refs (or every
//! commit with `all`) is read and its checksum recomputed. Unlike ostree,
//! every problem is reported, not only the first.

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::object::ObjectType;
use crate::progress::Progress;
use crate::repo::{LockKind, Repo};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct FsckOptions {
    /// Check every commit object, not only those refs reach.
    pub all: bool,
    /// Delete corrupt objects (and mark their commits partial).
    pub delete: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FsckProblem {
    pub object: Checksum,
    #[serde(rename = "type")]
    pub ty: ObjectType,
    /// Commits whose trees reach the object.
    pub commits: Vec<Checksum>,
    pub message: String,
    pub missing: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FsckReport {
    pub commits: u64,
    pub objects: u64,
    pub partial_commits: u64,
    pub problems: Vec<FsckProblem>,
}

impl Repo {
    pub fn fsck(&self, opts: &FsckOptions, progress: &Progress) -> Result<FsckReport> {
        self.lock(if opts.delete {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        })?;
        let mut commits: BTreeSet<Checksum> = BTreeSet::new();
        for (_, c) in self.all_ref_targets()? {
            commits.insert(c);
        }
        if opts.all {
            for o in self.list_objects()? {
                if o.ty == ObjectType::Commit {
                    commits.insert(o.csum);
                }
            }
        }
        let mut report = FsckReport {
            commits: commits.len() as u64,
            ..Default::default()
        };
        // object -> commits reaching it
        let mut owners: BTreeMap<(Checksum, ObjectType), Vec<Checksum>> = BTreeMap::new();
        let mut problems: Vec<FsckProblem> = Vec::new();
        for c in &commits {
            let partial = self
                .path()
                .join("state")
                .join(format!("{c}.commitpartial"))
                .exists();
            if partial {
                report.partial_commits += 1;
            }
            let mut reach = BTreeSet::new();
            if let Err(e) = self.collect_reachable_lenient(c, &mut reach, &mut problems, partial) {
                problems.push(problem_of(&e, *c, ObjectType::Commit, vec![*c]));
            }
            for o in reach {
                owners.entry(o).or_default().push(*c);
            }
        }
        let files: Vec<_> = owners
            .iter()
            .filter(|((_, t), _)| *t == ObjectType::File)
            .collect();
        progress.add_total(files.len() as u64, 0);
        report.objects = owners.len() as u64;
        let file_problems: Vec<FsckProblem> = io_pool().install(|| {
            files
                .par_iter()
                .filter_map(|((csum, _), cs)| {
                    let r = self
                        .load_content(csum)
                        .and_then(|obj| obj.copy_verified(&mut std::io::sink()));
                    progress.add_done(1, 0);
                    match r {
                        Ok(()) => None,
                        Err(e) if e.is_not_found() && cs.iter().all(|c| self.is_partial(c)) => None,
                        Err(e) => Some(problem_of(&e, *csum, ObjectType::File, (*cs).clone())),
                    }
                })
                .collect()
        });
        problems.extend(file_problems);
        // Attribute commits to metadata problems found during the walk.
        for p in problems.iter_mut() {
            if let Some(cs) = owners.get(&(p.object, p.ty)) {
                p.commits = cs.clone();
            }
        }
        problems.sort_by_key(|p| (p.ty, p.object));
        problems.dedup_by(|a, b| a.object == b.object && a.ty == b.ty);
        if opts.delete {
            for p in &problems {
                if !p.missing {
                    self.delete_object(&p.object, p.ty)?;
                }
                for c in &p.commits {
                    let path = self.path().join("state").join(format!("{c}.commitpartial"));
                    crate::util::write_file_atomic(&path, b"", 0o644)?;
                }
            }
        }
        report.problems = problems;
        Ok(report)
    }

    pub fn is_partial(&self, c: &Checksum) -> bool {
        self.path()
            .join("state")
            .join(format!("{c}.commitpartial"))
            .exists()
    }

    /// Walk a commit's metadata, recording corrupt or missing metadata
    /// objects instead of stopping at the first.
    fn collect_reachable_lenient(
        &self,
        commit: &Checksum,
        out: &mut BTreeSet<(Checksum, ObjectType)>,
        problems: &mut Vec<FsckProblem>,
        partial: bool,
    ) -> Result<()> {
        out.insert((*commit, ObjectType::Commit));
        let c = self.read_commit(commit)?;
        // Breadth first, each level read in parallel: on a cold cache the
        // dirtree reads are disk seeks, and several in flight are faster.
        let mut level = vec![(c.root_tree, c.root_meta)];
        while !level.is_empty() {
            let mut todo = Vec::new();
            for (t, m) in level {
                let new_meta = out.insert((m, ObjectType::DirMeta));
                if out.insert((t, ObjectType::DirTree)) || new_meta {
                    todo.push((t, m, new_meta));
                }
            }
            let read: Vec<_> = io_pool().install(|| {
                todo.par_iter()
                    .map(|(t, m, new_meta)| {
                        let meta_err = if *new_meta {
                            self.read_dirmeta(m).err()
                        } else {
                            None
                        };
                        (*t, *m, meta_err, self.read_dirtree(t))
                    })
                    .collect()
            });
            let mut next = Vec::new();
            for (t, m, meta_err, tree) in read {
                if let Some(e) = meta_err {
                    if !(partial && e.is_not_found()) {
                        problems.push(problem_of(&e, m, ObjectType::DirMeta, vec![*commit]));
                    }
                }
                match tree {
                    Ok(dt) => {
                        for (_, f) in dt.files {
                            out.insert((f, ObjectType::File));
                        }
                        next.extend(dt.dirs.into_iter().map(|(_, st, sm)| (st, sm)));
                    }
                    Err(e) => {
                        if !(partial && e.is_not_found()) {
                            problems.push(problem_of(&e, t, ObjectType::DirTree, vec![*commit]));
                        }
                    }
                }
            }
            level = next;
        }
        Ok(())
    }
}

/// A pool for I/O-bound verification: more threads than cores, so that
/// reads of a cold repository overlap.
fn io_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        rayon::ThreadPoolBuilder::new()
            .num_threads((n * 4).clamp(4, 16))
            .build()
            .unwrap_or_else(|_| {
                rayon::ThreadPoolBuilder::new()
                    .build()
                    .expect("a rayon pool")
            })
    })
}

fn problem_of(e: &Error, object: Checksum, ty: ObjectType, commits: Vec<Checksum>) -> FsckProblem {
    let (object, ty, missing) = match e {
        Error::Corrupt { csum, ty, .. } => (*csum, *ty, false),
        Error::MissingObject { csum, ty } => (*csum, *ty, true),
        _ => (object, ty, e.is_not_found()),
    };
    let message = match e {
        Error::Corrupt { why, .. } => why.clone(),
        other => other.to_string(),
    };
    FsckProblem {
        object,
        ty,
        commits,
        message,
        missing,
    }
}
