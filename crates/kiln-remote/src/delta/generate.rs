//! Generating deltas, compatible with `ostree static-delta generate`.
//!
//! Like ostree: the objects the to-commit reaches and the from-commit does
//! not; metadata first, then files bsdiff'ed against a similar file of the
//! from-commit (same or similar basename, size within 30%), then the other
//! regular files, then symlinks; regular files above the fallback size are
//! left out and listed to be fetched on their own. Unlike ostree (which
//! walks hash tables), files are ordered by extension and name, which
//! compresses better, bsdiff runs in parallel, and parts are xz-compressed
//! in parallel (several parts at once, or one part cut into blocks).

use super::bsdiff;
use super::compress;
use super::error::{DeltaError, Result};
use super::name;
use super::part::{self, COMPRESSION_NONE, COMPRESSION_XZ};
use super::superblock::{Endianness, FallbackEntry, PartHeader, Superblock};
use super::varint;
use kiln_store::gvariant::{Value, VarDict};
use kiln_store::object::{Commit, FileMeta, ObjectType, Xattrs};
use kiln_store::repo::LockKind;
use kiln_store::{Checksum, Repo};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Part compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
}

/// Options of [`generate`]; sizes in megabytes (10^6 bytes), as ostree.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Regular files larger than this are fallback objects; 0: never.
    pub min_fallback_size: u32,
    /// A part is closed once its payload would pass this size.
    pub max_chunk_size: u32,
    /// Files are bsdiff'ed only if old + new size is at most this.
    pub max_bsdiff_size: u32,
    pub bsdiff: bool,
    /// Put the parts inside the superblock: one self-contained file.
    pub inline: bool,
    /// Write the superblock here (parts beside it) instead of `deltas/`.
    pub filename: Option<PathBuf>,
    pub endianness: Endianness,
    /// Extra superblock metadata (written first, as ostree does).
    pub metadata: VarDict,
    pub compression: Compression,
    /// xz preset (ostree: 8).
    pub xz_preset: u32,
    /// Superblock timestamp; `None` means now.
    pub timestamp: Option<u64>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            min_fallback_size: 4,
            max_chunk_size: 32,
            max_bsdiff_size: 128,
            bsdiff: true,
            inline: false,
            filename: None,
            endianness: Endianness::host(),
            metadata: VarDict::new(),
            compression: Compression::Xz,
            xz_preset: 8,
            timestamp: None,
        }
    }
}

/// One generated part.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartInfo {
    pub objects: usize,
    pub size: u64,
    pub usize: u64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeltaInfo {
    pub name: String,
    pub from: Option<Checksum>,
    pub to: Checksum,
    /// The superblock file written.
    pub superblock: PathBuf,
    pub superblock_size: u64,
    pub parts: Vec<PartInfo>,
    pub fallback: Vec<FallbackEntry>,
    pub bsdiff_objects: usize,
    /// Superblock + part files.
    pub total_size: u64,
}

/// A new content object and what we know about it.
struct NewFile {
    csum: Checksum,
    meta: FileMeta,
    size: u64,
    /// Sort key: see [`order_key`].
    key: (String, String, String),
}

/// (new file index, source checksum, patch).
type Patched = (usize, Checksum, Vec<u8>);

enum Item {
    Meta(ObjectType, Checksum),
    File(usize),
    Patch {
        file: usize,
        src: Checksum,
        patch: Vec<u8>,
    },
}

/// Where a file goes in a part: by directory (a Python `__pycache__`
/// beside its sources), then extension, then name. Neighbours in a tree
/// are alike, so this compresses better than ostree's hash order, and
/// cutting the sequence into contiguous slices (one per core) loses little.
fn order_key(dir: &str, name: &str) -> (String, String, String) {
    let d = dir.strip_suffix("/__pycache__").unwrap_or(dir).to_string();
    (d, ext_of(name), name.to_string())
}

fn ext_of(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn not_delta_candidate(name: &str) -> bool {
    matches!(
        name.rsplit_once('.').map(|(_, e)| e),
        Some("xz") | Some("bz2")
    )
}

/// Walk a commit's tree: for every file, (basename, checksum) and its
/// directory, and every dirtree/dirmeta in walk order.
fn walk_names(
    repo: &Repo,
    commit: &Commit,
    files: &mut Vec<(String, Checksum)>,
    file_dirs: &mut Vec<std::sync::Arc<str>>,
    dirs: &mut Vec<(ObjectType, Checksum)>,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![(
        commit.root_tree,
        commit.root_meta,
        std::sync::Arc::<str>::from(""),
    )];
    while let Some((tree, meta, path)) = stack.pop() {
        if seen.insert((ObjectType::DirMeta, meta)) {
            dirs.push((ObjectType::DirMeta, meta));
        }
        if !seen.insert((ObjectType::DirTree, tree)) {
            continue;
        }
        dirs.push((ObjectType::DirTree, tree));
        let dt = repo.read_dirtree(&tree)?;
        for (n, c) in dt.files {
            files.push((n, c));
            file_dirs.push(path.clone());
        }
        for (n, t, m) in dt.dirs.into_iter().rev() {
            stack.push((t, m, format!("{path}/{n}").into()));
        }
    }
    Ok(())
}

/// Below this much payload a delta is one part (splitting by kind to use
/// several cores is not worth a worse ratio).
const PARALLEL_SPLIT_MIN: u64 = 4_000_000;

/// Generate a delta from `from` (`None`: from scratch) to `to`.
pub fn generate(
    repo: &Repo,
    from: Option<Checksum>,
    to: Checksum,
    opts: &GenerateOptions,
) -> Result<DeltaInfo> {
    repo.lock(LockKind::Shared)?;
    let to_bytes = repo.read_meta(&to, ObjectType::Commit)?;
    let to_commit = Commit::from_bytes(&to_bytes)
        .map_err(|e| DeltaError::malformed(format!("commit {to}"), e.to_string()))?;

    // What `from` already has.
    let mut from_objs = BTreeSet::new();
    let mut from_files = Vec::new();
    if let Some(f) = &from {
        let fc = repo.read_commit(f)?;
        let mut dirs = Vec::new();
        walk_names(repo, &fc, &mut from_files, &mut Vec::new(), &mut dirs)?;
        from_objs.extend(dirs);
        from_objs.extend(from_files.iter().map(|(_, c)| (ObjectType::File, *c)));
    }
    let mut to_files = Vec::new();
    let mut to_dirs = Vec::new();
    let mut to_file_dirs = Vec::new();
    walk_names(
        repo,
        &to_commit,
        &mut to_files,
        &mut to_file_dirs,
        &mut to_dirs,
    )?;

    let mut items: Vec<Item> = to_dirs
        .iter()
        .filter(|o| !from_objs.contains(*o))
        .map(|&(t, c)| Item::Meta(t, c))
        .collect();
    // Metadata: dirtrees then dirmetas, in walk order.
    items.sort_by_key(|i| match i {
        Item::Meta(ObjectType::DirTree, _) => 0,
        _ => 1,
    });

    // New content objects with their first basename.
    let mut new_files: Vec<NewFile> = Vec::new();
    // First path of each new object, in walk order.
    let mut first_seen: HashMap<Checksum, usize> = HashMap::new();
    for (i, (_, c)) in to_files.iter().enumerate() {
        if !from_objs.contains(&(ObjectType::File, *c)) {
            first_seen.entry(*c).or_insert(i);
        }
    }
    let mut uniq: Vec<(Checksum, usize)> = first_seen.into_iter().collect();
    uniq.sort_by_key(|a| a.0);
    let loaded: Vec<Result<NewFile>> = uniq
        .par_iter()
        .map(|&(c, i)| {
            let obj = repo.load_content(&c)?;
            let name = &to_files[i].0;
            Ok(NewFile {
                csum: c,
                meta: obj.meta,
                size: obj.size,
                key: order_key(&to_file_dirs[i], name),
            })
        })
        .collect();
    for l in loaded {
        new_files.push(l?);
    }
    let mut names: HashMap<Checksum, Vec<String>> = HashMap::new();
    for (n, c) in &to_files {
        names.entry(*c).or_default().push(n.clone());
    }

    // Similar files of the from-commit, for bsdiff.
    let mut patched: HashMap<usize, Checksum> = HashMap::new();
    if from.is_some() && opts.bsdiff {
        let mut by_name: HashMap<&str, Vec<Checksum>> = HashMap::new();
        let mut by_stem: HashMap<&str, Vec<Checksum>> = HashMap::new();
        for (n, c) in &from_files {
            if not_delta_candidate(n) {
                continue;
            }
            by_name.entry(n.as_str()).or_default().push(*c);
            if let Some((stem, _)) = n.split_once('.') {
                if !stem.is_empty() {
                    by_stem.entry(stem).or_default().push(*c);
                }
            }
        }
        let mut from_info: HashMap<Checksum, Option<u64>> = HashMap::new();
        let max_bsdiff = opts.max_bsdiff_size as u64 * 1_000_000;
        for (idx, f) in new_files.iter().enumerate() {
            if !f.meta.is_regular() || f.size == 0 {
                continue;
            }
            let fnames = names.get(&f.csum).cloned().unwrap_or_default();
            if fnames.iter().any(|n| not_delta_candidate(n)) {
                continue;
            }
            let (lo, hi) = ((f.size as f64 * 0.7) as u64, (f.size as f64 * 1.3) as u64);
            let mut best: Option<(u64, Checksum)> = None;
            for fuzzy in [false, true] {
                for n in &fnames {
                    let cands = if fuzzy {
                        n.split_once('.').and_then(|(s, _)| by_stem.get(s))
                    } else {
                        by_name.get(n.as_str())
                    };
                    for c in cands.into_iter().flatten() {
                        let size = *from_info.entry(*c).or_insert_with(|| {
                            // Only world-readable regular files: a bare-user
                            // client must be able to read the source.
                            repo.load_content(c)
                                .ok()
                                .filter(|o| o.meta.is_regular() && o.meta.mode & 0o004 != 0)
                                .map(|o| o.size)
                        });
                        let Some(size) = size else { continue };
                        if size == 0 || size < lo || size > hi || size + f.size > max_bsdiff {
                            continue;
                        }
                        let d = size.abs_diff(f.size);
                        if best.map(|b| d < b.0).unwrap_or(true) {
                            best = Some((d, *c));
                        }
                    }
                }
                if best.is_some() {
                    break;
                }
            }
            if let Some((_, c)) = best {
                patched.insert(idx, c);
            }
        }
    }
    let mut pairs: Vec<(usize, Checksum)> = patched.into_iter().collect();
    pairs.sort();
    let patches: Vec<Result<Option<Patched>>> = pairs
        .par_iter()
        .map(|&(idx, src)| {
            let old = repo.load_content(&src)?.read_verified()?;
            let new = repo.load_content(&new_files[idx].csum)?.read_verified()?;
            let p = bsdiff::bsdiff(&old, &new);
            // Keep the patch only if it beats shipping the file.
            Ok((bsdiff::patch_cost(&p) < new.len() as u64).then_some((idx, src, p)))
        })
        .collect();
    let mut is_patched = vec![false; new_files.len()];
    let mut bsdiff_objects = 0;
    for p in patches {
        if let Some((idx, src, patch)) = p? {
            is_patched[idx] = true;
            bsdiff_objects += 1;
            items.push(Item::Patch {
                file: idx,
                src,
                patch,
            });
        }
    }

    // Fallbacks, then plain regular files, then symlinks.
    let min_fallback = opts.min_fallback_size as u64 * 1_000_000;
    let mut fallback = Vec::new();
    let mut regular: Vec<usize> = Vec::new();
    let mut links: Vec<usize> = Vec::new();
    for (idx, f) in new_files.iter().enumerate() {
        if is_patched[idx] {
            continue;
        }
        if f.meta.is_symlink() {
            links.push(idx);
        } else if min_fallback > 0 && f.size > min_fallback {
            fallback.push(FallbackEntry {
                objtype: ObjectType::File,
                checksum: f.csum,
                size: repo.object_disk_size(&f.csum, ObjectType::File),
                usize: f.size,
            });
        } else {
            regular.push(idx);
        }
    }
    regular.sort_by(|&a, &b| {
        new_files[a]
            .key
            .cmp(&new_files[b].key)
            .then(new_files[a].size.cmp(&new_files[b].size))
    });
    links.sort_by(|&a, &b| new_files[a].key.cmp(&new_files[b].key));
    items.extend(regular.into_iter().map(Item::File));
    items.extend(links.into_iter().map(Item::File));

    // xz is the cost of a delta and runs on one core per stream. Blocks
    // of one stream lose the matches across blocks; contiguous slices of
    // the tree-ordered files lose little (see `order_key`), so with several
    // cores the regular files are cut into that many slices of equal size,
    // each its own part(s), compressed in parallel.
    let threads = rayon::current_num_threads().max(1);
    let item_size = |it: &Item| match it {
        Item::Meta(..) => 512,
        Item::File(i) => new_files[*i].size,
        Item::Patch { patch, .. } => patch.len() as u64,
    };
    let total: u64 = items.iter().map(item_size).sum();
    let bins = if threads > 1 && total > PARALLEL_SPLIT_MIN {
        threads
    } else {
        1
    };
    let mut binned: Vec<Vec<Item>> = (0..bins).map(|_| Vec::new()).collect();
    let slice = total.div_ceil(bins as u64).max(1);
    let mut acc = 0u64;
    for it in items {
        let b = ((acc / slice) as usize).min(bins - 1);
        acc += item_size(&it);
        binned[b].push(it);
    }

    // Cut each bin into parts by payload size.
    let max_chunk = opts.max_chunk_size.max(1) as u64 * 1_000_000;
    let mut plans: Vec<Vec<Item>> = Vec::new();
    for bin in binned.into_iter().filter(|b| !b.is_empty()) {
        plans.push(Vec::new());
        let mut cur = 0u64;
        for it in bin {
            let sz = item_size(&it);
            if plans.last().map(|p| !p.is_empty()).unwrap_or(false) && cur + sz > max_chunk {
                plans.push(Vec::new());
                cur = 0;
            }
            cur += sz;
            if let Some(p) = plans.last_mut() {
                p.push(it);
            }
        }
    }
    if plans.is_empty() {
        plans.push(Vec::new());
    }
    let per_part_threads = 1;
    let built: Vec<Result<(PartHeader, Vec<u8>)>> = plans
        .par_iter()
        .map(|plan| build_part(repo, plan, &new_files, opts, per_part_threads))
        .collect();
    let mut parts = Vec::new();
    for b in built {
        parts.push(b?);
    }

    // Where to write.
    let (dir, sb_path) = match &opts.filename {
        Some(f) => {
            let dir = f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            (dir, f.clone())
        }
        None => {
            let dir = repo.path().join(name::delta_dir(from.as_ref(), &to));
            std::fs::create_dir_all(&dir).map_err(|e| DeltaError::io(&dir, e))?;
            let sb = dir.join("superblock");
            (dir, sb)
        }
    };

    let mut metadata = opts.metadata.clone();
    metadata.push(
        "ostree.endianness",
        Value::Byte(if opts.endianness == Endianness::Big {
            b'B'
        } else {
            b'l'
        }),
    );
    let mut total_size = 0u64;
    let mut infos = Vec::new();
    let mut headers = Vec::new();
    for (i, (h, bytes)) in parts.into_iter().enumerate() {
        infos.push(PartInfo {
            objects: h.objects.len(),
            size: h.size,
            usize: h.usize,
        });
        if opts.inline {
            let (c, rest) = bytes
                .split_first()
                .map(|(c, r)| (*c, r.to_vec()))
                .unwrap_or((0, Vec::new()));
            metadata.push(
                name::delta_path(from.as_ref(), &to, &i.to_string()),
                Value::Tuple(vec![Value::Byte(c), Value::Bytes(rest)]),
            );
        } else {
            write_file(&dir.join(i.to_string()), &bytes)?;
            total_size += bytes.len() as u64;
        }
        headers.push(h);
    }
    if let Some(md) = repo.read_commit_detached_metadata(&to)? {
        metadata.push(
            name::delta_path(from.as_ref(), &to, "commitmeta"),
            md.to_value(),
        );
    }
    let timestamp = opts.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let sb = Superblock {
        metadata,
        timestamp,
        from,
        to,
        commit_bytes: to_bytes,
        commit: to_commit,
        dependencies: Vec::new(),
        parts: headers,
        fallback: fallback.clone(),
        endianness: opts.endianness,
        endianness_heuristic: false,
        signatures: None,
    };
    let sb_bytes = sb.to_bytes();
    write_file(&sb_path, &sb_bytes)?;
    total_size += sb_bytes.len() as u64;
    Ok(DeltaInfo {
        name: name::delta_name(from.as_ref(), &to),
        from,
        to,
        superblock: sb_path,
        superblock_size: sb_bytes.len() as u64,
        parts: infos,
        fallback,
        bsdiff_objects,
        total_size,
    })
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    kiln_store::util::write_file_atomic(path, data, 0o644).map_err(DeltaError::from)
}

/// Mode and xattr tables, deduplicated in first-use order.
#[derive(Default)]
struct Tables {
    modes: Vec<(u32, u32, u32)>,
    mode_idx: HashMap<(u32, u32, u32), u64>,
    xattrs: Vec<Xattrs>,
    xattr_idx: HashMap<Xattrs, u64>,
}

impl Tables {
    fn index(&mut self, m: &FileMeta) -> (u64, u64) {
        let key = (m.uid, m.gid, m.mode);
        let mi = *self.mode_idx.entry(key).or_insert_with(|| {
            self.modes.push(key);
            self.modes.len() as u64 - 1
        });
        let xi = match self.xattr_idx.get(&m.xattrs) {
            Some(i) => *i,
            None => {
                self.xattrs.push(m.xattrs.clone());
                let i = self.xattrs.len() as u64 - 1;
                self.xattr_idx.insert(m.xattrs.clone(), i);
                i
            }
        };
        (mi, xi)
    }
}

fn build_part(
    repo: &Repo,
    plan: &[Item],
    files: &[NewFile],
    opts: &GenerateOptions,
    threads: u32,
) -> Result<(PartHeader, Vec<u8>)> {
    let mut tables = Tables::default();
    let mut blob: Vec<u8> = Vec::new();
    let mut ops: Vec<u8> = Vec::new();
    let mut objects = Vec::with_capacity(plan.len());
    let mut usize_total = 0u64;
    for it in plan {
        match it {
            Item::Meta(ty, c) => {
                let data = repo.read_meta(c, *ty)?;
                objects.push((*ty, *c));
                usize_total += data.len() as u64;
                ops.push(super::ops::OP_OPEN_SPLICE_AND_CLOSE);
                varint::write(&mut ops, data.len() as u64);
                varint::write(&mut ops, blob.len() as u64);
                blob.extend_from_slice(&data);
            }
            Item::File(i) => {
                let f = &files[*i];
                objects.push((ObjectType::File, f.csum));
                let (mi, xi) = tables.index(&f.meta);
                let data = if f.meta.is_symlink() {
                    f.meta.symlink_target.as_bytes().to_vec()
                } else {
                    repo.load_content(&f.csum)?.read_verified()?
                };
                usize_total += f.size;
                ops.push(super::ops::OP_OPEN_SPLICE_AND_CLOSE);
                varint::write(&mut ops, mi);
                varint::write(&mut ops, xi);
                varint::write(&mut ops, data.len() as u64);
                varint::write(&mut ops, blob.len() as u64);
                blob.extend_from_slice(&data);
            }
            Item::Patch { file, src, patch } => {
                let f = &files[*file];
                objects.push((ObjectType::File, f.csum));
                let (mi, xi) = tables.index(&f.meta);
                usize_total += f.size;
                ops.push(super::ops::OP_SET_READ_SOURCE);
                varint::write(&mut ops, blob.len() as u64);
                blob.extend_from_slice(&src.0);
                ops.push(super::ops::OP_OPEN);
                varint::write(&mut ops, mi);
                varint::write(&mut ops, xi);
                varint::write(&mut ops, f.size);
                ops.push(super::ops::OP_BSPATCH);
                varint::write(&mut ops, blob.len() as u64);
                varint::write(&mut ops, patch.len() as u64);
                blob.extend_from_slice(patch);
                ops.push(super::ops::OP_CLOSE);
                ops.push(super::ops::OP_UNSET_READ_SOURCE);
            }
        }
    }
    let payload = part::encode_payload(&tables.modes, &tables.xattrs, &blob, &ops);
    drop(blob);
    let bytes = match opts.compression {
        Compression::None => {
            let mut b = Vec::with_capacity(payload.len() + 1);
            b.push(COMPRESSION_NONE);
            b.extend_from_slice(&payload);
            b
        }
        Compression::Xz => {
            let block = (payload.len() as u64).div_ceil(threads as u64).max(1 << 20);
            let z = compress::xz_compress(&payload, opts.xz_preset, threads, block)?;
            let mut b = Vec::with_capacity(z.len() + 1);
            b.push(COMPRESSION_XZ);
            b.extend_from_slice(&z);
            b
        }
    };
    let header = PartHeader {
        version: 0,
        checksum: Checksum::of(&bytes),
        size: bytes.len() as u64,
        usize: usize_total,
        objects,
    };
    Ok((header, bytes))
}
