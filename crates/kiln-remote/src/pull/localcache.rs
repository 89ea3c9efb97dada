//! Alternate local object sources (ostree's `localcache-repos`): before an
//! object is fetched, look for it in repositories on this machine — for
//! apps, the OS repository — and use it from there instead.
//!
//! A content object is **hardlinked** into the pulling repo when
//!
//! - both object files are on the same file system,
//! - the object file means the same thing in both repo modes: the metadata
//!   each mode reads from it (owner, mode, xattrs — or `user.ostreemeta` in
//!   `bare-user`) is identical, and, across modes, the file carries no
//!   xattrs at all (a `bare` object owned by 0:0 without xattrs is a valid
//!   `bare-user-only` object; `bare-user-only` refuses setuid, setgid and
//!   world-writable modes, as ostree does),
//! - only root or the pulling user can change the file (its owner is one
//!   of them, and it is not group- or world-writable): once linked, a
//!   change to it is a change to both repos, and
//! - the linked inode's metadata and bytes hash to the expected checksum.
//!   Nothing is trusted for being in the other repo: the check runs on the
//!   linked file under a private name in `tmp/`, which is renamed into
//!   `objects/XX/` only once it passed.
//!
//! An object that is present but not linkable (another file system,
//! different on-disk forms, another owner, `protected_hardlinks`, a
//! symlink) is copied through the store's verifying content writer
//! instead; it still is not downloaded. An object whose bytes do not match
//! is refused and fetched normally. Metadata objects (dirtree, dirmeta)
//! are read from the local repo and checked by the pull as if they had
//! been fetched. The pull skips from-scratch static deltas when it has
//! local sources (they would carry every object).

use super::walk::Source;
use crate::error::{Error, Result};
use kiln_store::object::FileMeta;
use kiln_store::{Checksum, ObjectType, Repo, RepoMode};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One local repository objects may come from.
struct CacheRepo {
    repo: Repo,
    /// Cleared after `EXDEV`/`EPERM`: copy from then on, don't try links.
    linkable: AtomicBool,
}

/// What the local caches gave a pull.
#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    /// Content objects hardlinked from a local repo.
    pub linked: AtomicU64,
    /// Their bytes (shared with the local repo, not written again).
    pub linked_bytes: AtomicU64,
    /// Content objects copied (verified) from a local repo.
    pub copied: AtomicU64,
    /// Metadata objects read from a local repo.
    pub metadata: AtomicU64,
    /// Objects present locally but refused: they did not hash to their
    /// checksum (they were fetched instead).
    pub refused: AtomicU64,
}

/// The local repos of one pull.
pub(crate) struct LocalCache {
    repos: Vec<CacheRepo>,
    /// `st_dev` of the pulling repo's `tmp/`.
    dest_dev: Option<u64>,
    pub counters: CacheCounters,
}

impl LocalCache {
    /// Open the local repos (`paths`); the pulling repo itself is skipped.
    pub(crate) fn open(dest: &Repo, paths: &[PathBuf]) -> Result<LocalCache> {
        let dest_canon = std::fs::canonicalize(dest.path()).ok();
        let mut repos = Vec::new();
        for p in paths {
            let canon = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
            if Some(&canon) == dest_canon.as_ref() {
                continue;
            }
            repos.push(CacheRepo {
                repo: Repo::open(&canon)?,
                linkable: AtomicBool::new(true),
            });
        }
        let dest_dev = std::fs::metadata(dest.tmp_dir()).ok().map(|m| m.dev());
        Ok(LocalCache {
            repos,
            dest_dev,
            counters: CacheCounters::default(),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.repos.is_empty()
    }

    /// A metadata object from a local repo whose bytes hash to `csum`.
    fn meta_bytes(&self, csum: &Checksum, ty: ObjectType) -> Option<Vec<u8>> {
        for c in &self.repos {
            let p = c.repo.object_path(csum, ty);
            let Ok(st) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if !st.is_file() || st.len() > ty.max_meta_size() {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            if Checksum::of(&bytes) == *csum {
                self.counters.metadata.fetch_add(1, Ordering::Relaxed);
                return Some(bytes);
            }
            self.refuse(c, csum, ty, "checksum mismatch");
        }
        None
    }

    fn refuse(&self, c: &CacheRepo, csum: &Checksum, ty: ObjectType, why: &str) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "local object source {}: {csum}.{ty} not used: {why}",
            c.repo.path().display()
        );
    }

    /// Store content object `csum` in `dest` from a local repo. `Ok(true)`
    /// when it is now there; `Ok(false)` to fetch it normally. Errors are
    /// the pulling repo's own (its `tmp/` or `objects/`).
    fn store_content(&self, dest: &Repo, csum: &Checksum) -> Result<bool> {
        for c in &self.repos {
            match self.try_link(c, dest, csum)? {
                Linked::Yes => return Ok(true),
                Linked::Absent => continue,
                Linked::Refused => continue,
                Linked::NotLinkable => {}
            }
            if self.copy(c, dest, csum)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn try_link(&self, c: &CacheRepo, dest: &Repo, csum: &Checksum) -> Result<Linked> {
        let src = c.repo.object_path(csum, ObjectType::File);
        let st = match std::fs::symlink_metadata(&src) {
            Ok(st) => st,
            Err(_) => return Ok(Linked::Absent),
        };
        if !c.linkable.load(Ordering::Relaxed)
            || !st.file_type().is_file()
            || Some(st.dev()) != self.dest_dev
        {
            return Ok(Linked::NotLinkable);
        }
        let Ok(xattrs) = kiln_store::repo::read_xattrs_pub(&src) else {
            return Ok(Linked::NotLinkable);
        };
        if same_meaning(c.repo.mode(), dest.mode(), &st, &xattrs).is_none() || !safe_owner(&st) {
            return Ok(Linked::NotLinkable);
        }
        let tmp = dest
            .tmp_dir()
            .join(kiln_store::util::tmp_name("localcache-"));
        if let Err(e) = std::fs::hard_link(&src, &tmp) {
            if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EPERM)) {
                c.linkable.store(false, Ordering::Relaxed);
            }
            return Ok(Linked::NotLinkable);
        }
        let guard = TmpGuard(Some(tmp));
        let tmp = guard.path();
        // Check what was linked (the inode now pinned under our name), not
        // what was looked at before.
        match verify_linked(c.repo.mode(), dest.mode(), tmp, &st, csum) {
            Verified::Ok => {}
            Verified::Differs => return Ok(Linked::NotLinkable),
            Verified::Corrupt(why) => {
                self.refuse(c, csum, ObjectType::File, &why);
                return Ok(Linked::Refused);
            }
        }
        let dst = dest.object_path(csum, ObjectType::File);
        if let Some(dir) = dst.parent() {
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(dir, e))
                }
                _ => {}
            }
        }
        std::fs::rename(tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        guard.disarm();
        self.counters.linked.fetch_add(1, Ordering::Relaxed);
        self.counters
            .linked_bytes
            .fetch_add(st.len(), Ordering::Relaxed);
        Ok(Linked::Yes)
    }

    /// Copy through the verifying content writer. `Ok(false)` when the
    /// object cannot be read or does not verify.
    fn copy(&self, c: &CacheRepo, dest: &Repo, csum: &Checksum) -> Result<bool> {
        let Ok(obj) = c.repo.load_content(csum) else {
            return Ok(false);
        };
        let Ok(mut r) = obj.reader() else {
            return Ok(false);
        };
        let mut w = dest.content_writer(&obj.meta, obj.size)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => return Ok(false),
            };
            if w.write(&buf[..n]).is_err() {
                // More bytes than the object declares: not this object.
                self.refuse(c, csum, ObjectType::File, "size mismatch");
                return Ok(false);
            }
        }
        match w.finish(Some(*csum)) {
            Ok(_) => {
                self.counters.copied.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(e @ (kiln_store::Error::Io { .. } | kiln_store::Error::NoSpace { .. })) => {
                Err(Error::Store(e))
            }
            Err(e) => {
                self.refuse(c, csum, ObjectType::File, &e.to_string());
                Ok(false)
            }
        }
    }
}

enum Linked {
    Yes,
    Absent,
    NotLinkable,
    Refused,
}

enum Verified {
    Ok,
    /// The on-disk forms differ (or changed): not linkable, maybe copyable.
    Differs,
    Corrupt(String),
}

/// Removes a temporary link unless disarmed.
struct TmpGuard(Option<PathBuf>);

impl TmpGuard {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Whether nobody but root and us can change the inode once it is shared:
/// owned by root or by this process's user, not group- or world-writable.
fn safe_owner(st: &std::fs::Metadata) -> bool {
    let me = rustix::process::geteuid().as_raw();
    (st.uid() == 0 || st.uid() == me) && st.mode() & 0o022 == 0
}

/// The metadata repo mode `mode` reads from a regular object file with
/// this stat and these xattrs (`None` when it is no valid object there).
fn meta_in_mode(
    mode: RepoMode,
    st: &std::fs::Metadata,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> Option<FileMeta> {
    let reg = |uid, gid, mode, xattrs| FileMeta {
        uid,
        gid,
        mode,
        rdev: 0,
        symlink_target: String::new(),
        xattrs,
    };
    match mode {
        RepoMode::Bare => Some(reg(st.uid(), st.gid(), st.mode(), xattrs.to_vec())),
        RepoMode::BareUserOnly => {
            // ostree's `_ostree_validate_bareuseronly_mode`.
            if st.mode() & (libc::S_ISUID | libc::S_ISGID | libc::S_IWOTH) != 0 {
                return None;
            }
            Some(reg(0, 0, st.mode(), vec![]))
        }
        RepoMode::BareUser => {
            let raw = xattrs
                .iter()
                .find(|(k, _)| k.as_slice() == b"user.ostreemeta")
                .map(|(_, v)| v)?;
            let (uid, gid, mode, x) = FileMeta::from_ostreemeta(raw).ok()?;
            let m = reg(uid, gid, mode, x);
            m.is_regular().then_some(m)
        }
        RepoMode::Archive => None,
    }
}

/// The metadata both modes read from the file, when they read the same.
fn same_meaning(
    src: RepoMode,
    dest: RepoMode,
    st: &std::fs::Metadata,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> Option<FileMeta> {
    if src != dest && !xattrs.is_empty() {
        return None;
    }
    let a = meta_in_mode(src, st, xattrs)?;
    let b = meta_in_mode(dest, st, xattrs)?;
    (a == b && a.is_regular()).then_some(b)
}

/// Check the linked file at `tmp`: the inode looked at, the same meaning
/// in both modes, and its metadata and bytes hashing to `csum`.
fn verify_linked(
    src: RepoMode,
    dest: RepoMode,
    tmp: &Path,
    before: &std::fs::Metadata,
    csum: &Checksum,
) -> Verified {
    let mut f = match std::fs::File::open(tmp) {
        Ok(f) => f,
        Err(e) => return Verified::Corrupt(format!("opening: {e}")),
    };
    let st = match f.metadata() {
        Ok(st) => st,
        Err(e) => return Verified::Corrupt(format!("stat: {e}")),
    };
    if st.ino() != before.ino() || st.dev() != before.dev() {
        return Verified::Differs;
    }
    let Ok(xattrs) = kiln_store::repo::read_xattrs_pub(tmp) else {
        return Verified::Differs;
    };
    let Some(meta) = same_meaning(src, dest, &st, &xattrs).filter(|_| safe_owner(&st)) else {
        return Verified::Differs;
    };
    let mut h = kiln_store::object::content_checksum_start(&meta);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                h.update(&buf[..n]);
            }
            Err(e) => return Verified::Corrupt(format!("reading: {e}")),
        }
    }
    let actual = h.finish();
    if actual != *csum || total != st.len() {
        return Verified::Corrupt(format!(
            "Corrupted file object; checksum expected='{csum}' actual='{actual}'"
        ));
    }
    Verified::Ok
}

/// A [`Source`] that asks the local caches first.
pub(crate) struct WithCache<'a> {
    pub inner: &'a dyn Source,
    pub cache: &'a LocalCache,
}

impl Source for WithCache<'_> {
    fn label(&self) -> &str {
        self.inner.label()
    }

    fn meta_bytes(&self, csum: &Checksum, ty: ObjectType) -> Result<Option<Vec<u8>>> {
        if matches!(ty, ObjectType::DirTree | ObjectType::DirMeta) {
            if let Some(b) = self.cache.meta_bytes(csum, ty) {
                return Ok(Some(b));
            }
        }
        self.inner.meta_bytes(csum, ty)
    }

    fn store_content(&self, repo: &Repo, csum: &Checksum) -> Result<u64> {
        if self.cache.store_content(repo, csum)? {
            return Ok(0);
        }
        self.inner.store_content(repo, csum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::object::FileMeta;

    fn meta(mode: u32) -> FileMeta {
        FileMeta {
            uid: 0,
            gid: 0,
            mode,
            rdev: 0,
            symlink_target: String::new(),
            xattrs: vec![],
        }
    }

    fn world() -> (tempfile::TempDir, Repo, Repo) {
        let t = tempfile::tempdir().unwrap();
        let os = Repo::init(&t.path().join("os"), RepoMode::BareUserOnly).unwrap();
        let app = Repo::init(&t.path().join("app"), RepoMode::BareUserOnly).unwrap();
        (t, os, app)
    }

    #[test]
    fn links_a_verified_object_and_refuses_a_corrupt_one() {
        let (_t, os, app) = world();
        let (good, _) = os.write_content(&meta(0o100644), b"shared bytes").unwrap();
        let (bad, _) = os.write_content(&meta(0o100644), b"other bytes!").unwrap();
        // Flip a byte of the object file in place.
        std::fs::write(os.object_path(&bad, ObjectType::File), b"other bytes?").unwrap();

        let cache = LocalCache::open(&app, &[os.path().to_path_buf()]).unwrap();
        assert!(cache.store_content(&app, &good).unwrap());
        let a = std::fs::metadata(app.object_path(&good, ObjectType::File)).unwrap();
        let o = std::fs::metadata(os.object_path(&good, ObjectType::File)).unwrap();
        assert_eq!((a.ino(), a.dev()), (o.ino(), o.dev()));
        assert_eq!(cache.counters.linked.load(Ordering::Relaxed), 1);
        app.load_content(&good).unwrap().read_verified().unwrap();

        assert!(!cache.store_content(&app, &bad).unwrap());
        assert!(!app.has_object(&bad, ObjectType::File));
        assert_eq!(cache.counters.refused.load(Ordering::Relaxed), 1);
        // No temporary links left behind.
        let left: Vec<_> = std::fs::read_dir(app.tmp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("localcache-"))
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn a_file_someone_else_may_change_is_copied_not_linked() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (_t, os, app) = world();
        let (c, _) = os.write_content(&meta(0o100644), b"theirs").unwrap();
        let p = os.object_path(&c, ObjectType::File);
        rustix::fs::chown(&p, Some(rustix::fs::Uid::from_raw(4321)), None).unwrap();
        let cache = LocalCache::open(&app, &[os.path().to_path_buf()]).unwrap();
        assert!(cache.store_content(&app, &c).unwrap());
        assert_eq!(cache.counters.linked.load(Ordering::Relaxed), 0);
        assert_eq!(cache.counters.copied.load(Ordering::Relaxed), 1);
        let a = std::fs::metadata(app.object_path(&c, ObjectType::File)).unwrap();
        assert_ne!(a.ino(), std::fs::metadata(&p).unwrap().ino());
        app.load_content(&c).unwrap().read_verified().unwrap();
    }

    #[test]
    fn modes_that_read_differently_are_not_linked() {
        let (_t, os, app) = world();
        // World-writable: ostree refuses it in bare-user-only.
        let (c, _) = os.write_content(&meta(0o100666), b"ww").unwrap();
        let cache = LocalCache::open(&app, &[os.path().to_path_buf()]).unwrap();
        let Ok(Linked::NotLinkable) = cache.try_link(&cache.repos[0], &app, &c) else {
            panic!("linked a world-writable object");
        };
    }
}
