//! Content (file) objects in each repo mode: reading, verifying, writing.

use super::objects::set_mtime_zero;
use super::{Repo, RepoMode};
use crate::checksum::{Checksum, Hasher};
use crate::error::{Error, Result};
use crate::object::{self, FileMeta, ObjectType, Xattrs};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest content object kiln accepts from outside (64 GiB).
pub const MAX_CONTENT_SIZE: u64 = 64 << 30;

/// Where a content object's bytes are.
#[derive(Debug, Clone)]
pub enum ContentData {
    /// A symlink: no bytes.
    None,
    /// The object file itself holds the bytes.
    Raw(PathBuf),
    /// Raw-deflate stream starting at `offset` in an archive `.filez`.
    Zlib { path: PathBuf, offset: u64 },
}

/// A loaded content object: its metadata and a way to its bytes.
#[derive(Debug, Clone)]
pub struct ContentObject {
    pub csum: Checksum,
    pub meta: FileMeta,
    pub size: u64,
    pub data: ContentData,
}

impl ContentObject {
    /// A reader of the uncompressed content (empty for symlinks).
    pub fn reader(&self) -> Result<Box<dyn Read + Send>> {
        Ok(match &self.data {
            ContentData::None => Box::new(std::io::empty()),
            ContentData::Raw(p) => Box::new(File::open(p).map_err(|e| Error::io(p, e))?),
            ContentData::Zlib { path, offset } => {
                use std::io::{Seek, SeekFrom};
                let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
                f.seek(SeekFrom::Start(*offset))
                    .map_err(|e| Error::io(path, e))?;
                Box::new(
                    flate2::read::DeflateDecoder::new(std::io::BufReader::with_capacity(
                        64 * 1024,
                        f,
                    ))
                    .take(self.size),
                )
            }
        })
    }

    /// Read all bytes, verifying the checksum.
    pub fn read_verified(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(self.size.min(1 << 26) as usize);
        self.reader()?
            .read_to_end(&mut buf)
            .map_err(|e| self.read_err(e))?;
        self.verify_bytes(&buf)?;
        Ok(buf)
    }

    /// The metadata orderings the checksum may have been computed with.
    /// Bare repos keep xattrs on the object file, and the file system's
    /// listing order need not be the order ostree hashed (sorted for trees
    /// read from disk, libarchive's last-first order for tarballs).
    fn candidate_metas(&self) -> Vec<FileMeta> {
        let mut out = vec![self.meta.clone()];
        if self.meta.xattrs.len() > 1 {
            let mut sorted = self.meta.clone();
            sorted.xattrs.sort_by(|a, b| a.0.cmp(&b.0));
            let mut rev = sorted.clone();
            rev.xattrs.reverse();
            for m in [sorted, rev] {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    fn read_err(&self, e: std::io::Error) -> Error {
        Error::corrupt(self.csum, ObjectType::File, format!("reading content: {e}"))
    }

    pub fn verify_bytes(&self, buf: &[u8]) -> Result<()> {
        let actual = self
            .candidate_metas()
            .iter()
            .map(|m| content_checksum(m, buf))
            .find(|c| *c == self.csum)
            .unwrap_or_else(|| content_checksum(&self.meta, buf));
        if actual != self.csum || buf.len() as u64 != self.size {
            return Err(Error::corrupt(
                self.csum,
                ObjectType::File,
                format!(
                    "Corrupted file object; checksum expected='{}' actual='{actual}'",
                    self.csum
                ),
            ));
        }
        Ok(())
    }

    /// Stream the content through `sink`, verifying the checksum at the end.
    /// The caller must discard what it wrote if this fails.
    pub fn copy_verified(&self, sink: &mut dyn Write) -> Result<()> {
        let metas = self.candidate_metas();
        let mut hs: Vec<_> = metas.iter().map(object::content_checksum_start).collect();
        let mut r = self.reader()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(|e| self.read_err(e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            for h in hs.iter_mut() {
                h.update(&buf[..n]);
            }
            sink.write_all(&buf[..n])
                .map_err(|e| Error::io(Path::new("(checkout)"), e))?;
        }
        let sums: Vec<Checksum> = hs.into_iter().map(|h| h.finish()).collect();
        let actual = sums
            .iter()
            .copied()
            .find(|c| *c == self.csum)
            .unwrap_or(sums[0]);
        if actual != self.csum || total != self.size {
            return Err(Error::corrupt(
                self.csum,
                ObjectType::File,
                format!(
                    "Corrupted file object; checksum expected='{}' actual='{actual}'",
                    self.csum
                ),
            ));
        }
        Ok(())
    }
}

/// Checksum of a content object from its metadata and bytes.
pub fn content_checksum(meta: &FileMeta, data: &[u8]) -> Checksum {
    let mut h = object::content_checksum_start(meta);
    if meta.is_regular() {
        h.update(data);
    }
    h.finish()
}

fn get_xattrs_path(path: &Path) -> std::io::Result<Xattrs> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let cname = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
        let mut val = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, cname.as_c_str(), &mut val) {
                Ok(l) => break l,
                Err(rustix::io::Errno::RANGE) => val.resize(val.len() * 4, 0),
                Err(e) => return Err(e.into()),
            }
        };
        val.truncate(len);
        out.push((name.to_vec(), val));
    }
    Ok(out)
}

/// All xattrs of a path (not following symlinks).
pub fn read_xattrs(path: &Path) -> std::io::Result<Xattrs> {
    get_xattrs_path(path)
}

impl Repo {
    /// Load a content object's metadata (no content verification yet).
    pub fn load_content(&self, csum: &Checksum) -> Result<ContentObject> {
        let path = self.object_path(csum, ObjectType::File);
        let st = match std::fs::symlink_metadata(&path) {
            Ok(st) => st,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingObject {
                    csum: *csum,
                    ty: ObjectType::File,
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |why: String| Error::corrupt(*csum, ObjectType::File, why);
        match self.mode() {
            RepoMode::Archive => {
                let mut f = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let mut head = [0u8; 8];
                f.read_exact(&mut head)
                    .map_err(|e| bad(format!("truncated header: {e}")))?;
                let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
                if len > 1 << 20 {
                    return Err(bad(format!("header length {len} is absurd")));
                }
                let mut hdr = vec![0u8; len];
                f.read_exact(&mut hdr)
                    .map_err(|e| bad(format!("truncated header: {e}")))?;
                let (meta, size) =
                    FileMeta::from_zlib_header(&hdr).map_err(|e| bad(e.to_string()))?;
                if size > MAX_CONTENT_SIZE {
                    return Err(bad(format!("size {size} is absurd")));
                }
                let data = if meta.is_symlink() {
                    ContentData::None
                } else {
                    ContentData::Zlib {
                        path,
                        offset: 8 + len as u64,
                    }
                };
                Ok(ContentObject {
                    csum: *csum,
                    meta,
                    size: if data_is_none(&data) { 0 } else { size },
                    data,
                })
            }
            RepoMode::Bare => {
                let ft = st.file_type();
                let (target, data) = if ft.is_symlink() {
                    let t = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
                    (
                        t.to_str()
                            .ok_or_else(|| bad("symlink target not UTF-8".into()))?
                            .to_string(),
                        ContentData::None,
                    )
                } else if ft.is_file() {
                    (String::new(), ContentData::Raw(path.clone()))
                } else {
                    return Err(bad("object is neither a file nor a symlink".into()));
                };
                let xattrs = get_xattrs_path(&path).map_err(|e| Error::io(&path, e))?;
                let size = if ft.is_symlink() { 0 } else { st.len() };
                let meta = FileMeta {
                    uid: st.uid(),
                    gid: st.gid(),
                    mode: st.mode(),
                    rdev: 0,
                    symlink_target: target,
                    xattrs,
                };
                Ok(ContentObject {
                    csum: *csum,
                    meta,
                    size,
                    data,
                })
            }
            RepoMode::BareUser => {
                if !st.file_type().is_file() {
                    return Err(bad("bare-user object is not a regular file".into()));
                }
                let meta_bytes = read_one_xattr(&path, "user.ostreemeta")
                    .map_err(|e| Error::io(&path, e))?
                    .ok_or_else(|| bad("missing user.ostreemeta xattr".into()))?;
                let (uid, gid, mode, xattrs) =
                    FileMeta::from_ostreemeta(&meta_bytes).map_err(|e| bad(e.to_string()))?;
                let mut meta = FileMeta {
                    uid,
                    gid,
                    mode,
                    rdev: 0,
                    symlink_target: String::new(),
                    xattrs,
                };
                if meta.is_symlink() {
                    let mut t = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                    // ostree stores the target NUL-terminated
                    if t.last() == Some(&0) {
                        t.pop();
                    }
                    meta.symlink_target =
                        String::from_utf8(t).map_err(|_| bad("symlink target not UTF-8".into()))?;
                    meta.validate().map_err(|e| bad(e.to_string()))?;
                    return Ok(ContentObject {
                        csum: *csum,
                        meta,
                        size: 0,
                        data: ContentData::None,
                    });
                }
                meta.validate().map_err(|e| bad(e.to_string()))?;
                Ok(ContentObject {
                    csum: *csum,
                    meta,
                    size: st.len(),
                    data: ContentData::Raw(path),
                })
            }
            RepoMode::BareUserOnly => {
                let ft = st.file_type();
                if ft.is_symlink() {
                    let t = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
                    let target = t
                        .to_str()
                        .ok_or_else(|| bad("symlink target not UTF-8".into()))?
                        .to_string();
                    let meta = FileMeta {
                        uid: 0,
                        gid: 0,
                        mode: libc::S_IFLNK | 0o777,
                        rdev: 0,
                        symlink_target: target,
                        xattrs: vec![],
                    };
                    return Ok(ContentObject {
                        csum: *csum,
                        meta,
                        size: 0,
                        data: ContentData::None,
                    });
                }
                let meta = FileMeta {
                    uid: 0,
                    gid: 0,
                    mode: st.mode(),
                    rdev: 0,
                    symlink_target: String::new(),
                    xattrs: vec![],
                };
                Ok(ContentObject {
                    csum: *csum,
                    meta,
                    size: st.len(),
                    data: ContentData::Raw(path),
                })
            }
        }
    }

    /// Write a content object held in memory. Returns its checksum and
    /// whether it was new.
    pub fn write_content(&self, meta: &FileMeta, data: &[u8]) -> Result<(Checksum, bool)> {
        let csum = content_checksum(meta, data);
        if self.has_object(&csum, ObjectType::File) {
            return Ok((csum, false));
        }
        self.write_content_trusted(&csum, meta, data)?;
        Ok((csum, true))
    }

    /// Write a content object whose checksum is known to match.
    pub fn write_content_trusted(
        &self,
        csum: &Checksum,
        meta: &FileMeta,
        data: &[u8],
    ) -> Result<()> {
        if self.has_object(csum, ObjectType::File) {
            return Ok(());
        }
        // The checksum is already known: don't hash the bytes a second time.
        let mut w = self.content_writer(meta, data.len() as u64)?;
        w.trusted = Some(*csum);
        w.write(data)?;
        w.finish(Some(*csum)).map(|_| ())
    }

    /// Start streaming a content object of `size` bytes.
    pub fn content_writer(&self, meta: &FileMeta, size: u64) -> Result<ContentWriter<'_>> {
        ContentWriter::new(self, meta.clone(), size)
    }
}

fn data_is_none(d: &ContentData) -> bool {
    matches!(d, ContentData::None)
}

fn read_one_xattr(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let cname = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    let mut val = vec![0u8; 512];
    loop {
        match rustix::fs::lgetxattr(path, cname.as_c_str(), &mut val) {
            Ok(l) => {
                val.truncate(l);
                return Ok(Some(val));
            }
            Err(rustix::io::Errno::RANGE) => val.resize(val.len() * 4, 0),
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

enum Sink {
    None,
    Raw(File),
    Zlib(Box<flate2::write::DeflateEncoder<std::io::BufWriter<File>>>),
}

/// Streams one content object into `tmp/`, hashing as it goes, then moves
/// it into place.
pub struct ContentWriter<'r> {
    repo: &'r Repo,
    meta: FileMeta,
    size: u64,
    written: u64,
    hasher: Hasher,
    tmp: Option<PathBuf>,
    sink: Sink,
    /// Set when the caller has already verified the bytes' checksum.
    trusted: Option<Checksum>,
}

impl<'r> ContentWriter<'r> {
    fn new(repo: &'r Repo, meta: FileMeta, size: u64) -> Result<Self> {
        repo.reserve_space(size + 4096)?;
        let hasher = object::content_checksum_start(&meta);
        let mut w = ContentWriter {
            repo,
            meta,
            size,
            written: 0,
            hasher,
            tmp: None,
            sink: Sink::None,
            trusted: None,
        };
        let needs_file =
            w.meta.is_regular() || matches!(repo.mode(), RepoMode::BareUser | RepoMode::Archive);
        if needs_file {
            let tmp = repo.tmp_dir().join(crate::util::tmp_name("obj-"));
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)
                .map_err(|e| Error::io(&tmp, e))?;
            w.tmp = Some(tmp);
            w.sink = match repo.mode() {
                RepoMode::Archive => {
                    let mut bw = std::io::BufWriter::with_capacity(128 * 1024, f);
                    let hdr = object::size_prefixed(&w.meta.zlib_header_bytes(size));
                    bw.write_all(&hdr).map_err(|e| w.err(e))?;
                    Sink::Zlib(Box::new(flate2::write::DeflateEncoder::new(
                        bw,
                        flate2::Compression::new(repo.zlib_level),
                    )))
                }
                RepoMode::BareUser if w.meta.is_symlink() => {
                    let mut f = f;
                    // NUL-terminated, as ostree writes it
                    f.write_all(w.meta.symlink_target.as_bytes())
                        .map_err(|e| w.err(e))?;
                    f.write_all(&[0]).map_err(|e| w.err(e))?;
                    Sink::Raw(f)
                }
                _ => Sink::Raw(f),
            };
        }
        Ok(w)
    }

    fn err(&self, e: std::io::Error) -> Error {
        Error::io(
            self.tmp.as_deref().unwrap_or(self.repo.tmp_dir().as_path()),
            e,
        )
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if !self.meta.is_regular() {
            return Ok(());
        }
        self.written += data.len() as u64;
        if self.written > self.size {
            return Err(Error::invalid(
                "content",
                format!("more bytes than the declared size {}", self.size),
            ));
        }
        if self.trusted.is_none() {
            self.hasher.update(data);
        }
        let r = match &mut self.sink {
            Sink::None => Ok(()),
            Sink::Raw(f) => f.write_all(data),
            Sink::Zlib(z) => z.write_all(data),
        };
        r.map_err(|e| self.err(e))
    }

    /// Finish: verify against `expected` (if given), then install the object
    /// unless it already exists. Returns the checksum.
    pub fn finish(self, expected: Option<Checksum>) -> Result<Checksum> {
        self.finish_new(expected).map(|(c, _)| c)
    }

    /// Like [`finish`](Self::finish), also saying whether the object was
    /// new (false when the repo already had it).
    pub fn finish_new(mut self, expected: Option<Checksum>) -> Result<(Checksum, bool)> {
        let res = self.finish_inner(expected);
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
        res
    }

    fn finish_inner(&mut self, expected: Option<Checksum>) -> Result<(Checksum, bool)> {
        if self.meta.is_regular() && self.written != self.size {
            return Err(Error::invalid(
                "content",
                format!("expected {} bytes, got {}", self.size, self.written),
            ));
        }
        let csum = match self.trusted {
            Some(c) => c,
            None => std::mem::take(&mut self.hasher).finish(),
        };
        if let Some(exp) = expected {
            if exp != csum {
                return Err(Error::corrupt(
                    exp,
                    ObjectType::File,
                    format!("Corrupted file object; checksum expected='{exp}' actual='{csum}'"),
                ));
            }
        }
        if self.repo.has_object(&csum, ObjectType::File) {
            return Ok((csum, false));
        }
        let sink = std::mem::replace(&mut self.sink, Sink::None);
        let file = match sink {
            Sink::None => None,
            Sink::Raw(f) => Some(f),
            Sink::Zlib(z) => {
                let bw = z.finish().map_err(|e| self.err(e))?;
                Some(bw.into_inner().map_err(|e| self.err(e.into_error()))?)
            }
        };
        let mode = self.repo.mode();
        let m = &self.meta;
        match (&file, mode) {
            (Some(f), RepoMode::Bare) => {
                rustix::fs::fchown(f, Some(uid(m.uid)), Some(gid(m.gid)))
                    .map_err(|e| self.err(e.into()))?;
                rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(m.mode & 0o7777))
                    .map_err(|e| self.err(e.into()))?;
                for (k, v) in &m.xattrs {
                    let name = std::ffi::CString::new(k.clone())
                        .map_err(|e| self.err(std::io::Error::other(e)))?;
                    rustix::fs::fsetxattr(f, name.as_c_str(), v, rustix::fs::XattrFlags::empty())
                        .map_err(|e| self.err(e.into()))?;
                }
                set_mtime_zero(f).map_err(|e| self.err(e))?;
            }
            (Some(f), RepoMode::BareUser) => {
                rustix::fs::fsetxattr(
                    f,
                    c"user.ostreemeta",
                    &m.to_ostreemeta(),
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| self.err(e.into()))?;
                if m.is_regular() {
                    let cm = (m.mode & 0o775) | 0o400;
                    rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(cm))
                        .map_err(|e| self.err(e.into()))?;
                }
                set_mtime_zero(f).map_err(|e| self.err(e))?;
            }
            (Some(f), RepoMode::BareUserOnly) => {
                rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(m.mode & 0o7777))
                    .map_err(|e| self.err(e.into()))?;
                set_mtime_zero(f).map_err(|e| self.err(e))?;
            }
            (Some(_), RepoMode::Archive) => {}
            (None, _) => {
                // A symlink in bare or bare-user-only mode: a real symlink.
                let tmp = self.repo.tmp_dir().join(crate::util::tmp_name("lnk-"));
                std::os::unix::fs::symlink(&m.symlink_target, &tmp)
                    .map_err(|e| Error::io(&tmp, e))?;
                self.tmp = Some(tmp.clone());
                if mode == RepoMode::Bare {
                    rustix::fs::chownat(
                        rustix::fs::CWD,
                        &tmp,
                        Some(uid(m.uid)),
                        Some(gid(m.gid)),
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| Error::rio(&tmp, e))?;
                    for (k, v) in &m.xattrs {
                        let name = std::ffi::CString::new(k.clone())
                            .map_err(|e| Error::io(&tmp, std::io::Error::other(e)))?;
                        rustix::fs::lsetxattr(
                            &tmp,
                            name.as_c_str(),
                            v,
                            rustix::fs::XattrFlags::empty(),
                        )
                        .map_err(|e| Error::rio(&tmp, e))?;
                    }
                }
                let ts = rustix::fs::Timestamps {
                    last_access: rustix::fs::Timespec {
                        tv_sec: 0,
                        tv_nsec: rustix::fs::UTIME_OMIT,
                    },
                    last_modification: rustix::fs::Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                };
                let _ = rustix::fs::utimensat(
                    rustix::fs::CWD,
                    &tmp,
                    &ts,
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                );
            }
        }
        drop(file);
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| Error::invalid("content", "no temporary file"))?;
        self.repo.install_tmp(&tmp, &csum, ObjectType::File)?;
        Ok((csum, true))
    }
}

impl Drop for ContentWriter<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}
fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}
