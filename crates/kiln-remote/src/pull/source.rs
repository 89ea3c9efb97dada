//! Objects from an archive remote over a [`Fetcher`]: metadata objects as
//! they are, content objects as `.filez` (size-prefixed header + raw
//! deflate), inflated and stored in the local repo's mode through the
//! store's verifying content writer.

use super::walk::Source;
use crate::error::{Error, Result};
use crate::fetch::{Attempt, Body, Fetcher};
use kiln_store::object::FileMeta;
use kiln_store::{Checksum, ObjectType, Repo};
use std::io::Read;

/// Largest `.filez` header accepted (the GVariant of owner, mode, target
/// and xattrs).
const MAX_HEADER: usize = 1 << 20;

/// Largest content object accepted from a remote (as the store: 64 GiB).
pub(crate) const MAX_CONTENT_SIZE: u64 = 64 << 30;

pub(crate) fn object_rel(csum: &Checksum, ty: ObjectType, archive: bool) -> String {
    let (d, f) = csum.split_hex();
    let ext = if ty == ObjectType::File && archive {
        "filez"
    } else {
        ty.ext()
    };
    format!("objects/{d}/{f}.{ext}")
}

/// An archive-mode remote.
pub(crate) struct RemoteSource<'f> {
    pub fetcher: &'f Fetcher,
}

impl Source for RemoteSource<'_> {
    fn label(&self) -> &str {
        self.fetcher.remote()
    }

    fn meta_bytes(&self, csum: &Checksum, ty: ObjectType) -> Result<Option<Vec<u8>>> {
        self.fetcher
            .get_opt(&object_rel(csum, ty, true), ty.max_meta_size())
            .map_err(|e| self.name_object(e, csum, ty))
    }

    fn store_content(&self, repo: &Repo, csum: &Checksum) -> Result<u64> {
        let rel = object_rel(csum, ObjectType::File, true);
        let remote = self.fetcher.remote();
        let r = self
            .fetcher
            .with_body(&rel, |body, len| store_filez(repo, remote, csum, body, len));
        match r {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(Error::bad_object(
                remote,
                *csum,
                ObjectType::File,
                format!("{}: not found (404)", self.fetcher.url_of(&rel)),
            )),
            Err(e) => Err(self.name_object(e, csum, ObjectType::File)),
        }
    }
}

impl RemoteSource<'_> {
    /// Transport errors name the URL; say which object it is too.
    fn name_object(&self, e: Error, csum: &Checksum, ty: ObjectType) -> Error {
        match e {
            Error::Fetch { remote, url, why } => Error::Fetch {
                remote,
                url,
                why: format!("{why} (object {csum}.{ty})"),
            },
            other => other,
        }
    }
}

fn bad(remote: &str, csum: &Checksum, why: impl Into<String>) -> Error {
    Error::bad_object(remote, *csum, ObjectType::File, why)
}

fn store_err(remote: &str, csum: &Checksum, e: kiln_store::Error) -> Attempt {
    match e {
        kiln_store::Error::Io { .. } | kiln_store::Error::NoSpace { .. } => {
            Attempt::Fatal(Error::Store(e))
        }
        other => Attempt::Fatal(bad(remote, csum, other.to_string())),
    }
}

/// Stream one `.filez` body into the repo. Returns the bytes received.
pub(crate) fn store_filez(
    repo: &Repo,
    remote: &str,
    csum: &Checksum,
    body: &mut Body<'_>,
    len: Option<u64>,
) -> std::result::Result<u64, Attempt> {
    let mut prefix = [0u8; 8];
    if let Err(e) = body.read_exact(&mut prefix) {
        return Err(body.classify(|| bad(remote, csum, format!("truncated header: {e}"))));
    }
    let hlen = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if hlen > MAX_HEADER {
        return Err(Attempt::Fatal(bad(
            remote,
            csum,
            format!("header of {hlen} bytes exceeds the limit of {MAX_HEADER}"),
        )));
    }
    let mut hdr = vec![0u8; hlen];
    if let Err(e) = body.read_exact(&mut hdr) {
        return Err(body.classify(|| bad(remote, csum, format!("truncated header: {e}"))));
    }
    let (meta, size) = FileMeta::from_zlib_header(&hdr)
        .map_err(|e| Attempt::Fatal(bad(remote, csum, e.to_string())))?;
    if size > MAX_CONTENT_SIZE {
        return Err(Attempt::Fatal(bad(
            remote,
            csum,
            format!("declares {size} bytes, more than the limit of {MAX_CONTENT_SIZE}"),
        )));
    }
    let size = if meta.is_regular() { size } else { 0 };
    // Deflate never grows data by more than a few bytes per 16 KiB block.
    let max_compressed = size + size / 64 + 64 * 1024;
    if let Some(l) = len {
        if l > 8 + hlen as u64 + max_compressed {
            return Err(Attempt::Fatal(bad(
                remote,
                csum,
                format!("{l} bytes is far more than an object of {size} bytes can take"),
            )));
        }
    }
    let mut w = repo
        .content_writer(&meta, size)
        .map_err(|e| store_err(remote, csum, e))?;
    if meta.is_regular() {
        let limited = (&mut *body).take(max_compressed);
        let mut dec = flate2::read::DeflateDecoder::new(limited);
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = match dec.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    drop(dec);
                    return Err(body.classify(|| bad(remote, csum, format!("inflating: {e}"))));
                }
            };
            total += n as u64;
            if total > size {
                return Err(Attempt::Fatal(bad(
                    remote,
                    csum,
                    format!("inflates to more than the declared {size} bytes"),
                )));
            }
            w.write(&buf[..n]).map_err(|e| store_err(remote, csum, e))?;
        }
        drop(dec);
        if let Some(e) = &body.transport_error {
            return Err(Attempt::Retry(e.clone()));
        }
        if total < size {
            if let Some(l) = len {
                if body.read < l {
                    return Err(Attempt::Retry(format!(
                        "connection closed after {} of {l} bytes",
                        body.read
                    )));
                }
            }
            return Err(Attempt::Fatal(bad(
                remote,
                csum,
                format!("truncated: {total} of {size} bytes"),
            )));
        }
    }
    w.finish(Some(*csum))
        .map_err(|e| store_err(remote, csum, e))?;
    // Drain what is left so the connection can be reused.
    let _ = std::io::copy(&mut (&mut *body).take(64 * 1024), &mut std::io::sink());
    Ok(body.read)
}
