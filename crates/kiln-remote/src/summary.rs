//! The repository summary: `(a(s(taya{sv}))a{sv})`, refs sorted by name,
//! each with the commit's size, checksum and metadata
//! (`ostree.commit.timestamp` big-endian, `ostree.commit.version`), then the
//! summary metadata (`ostree.static-deltas`, `ostree.summary.*`).
//!
//! [`generate`] writes what `ostree summary -u` writes, byte for byte:
//! libostree builds its dictionaries with `GVariantDict`, so their order is
//! GLib's hash-table order, replayed by [`crate::ghash`].

use crate::error::{Error, Result};
use crate::ghash::gvariant_dict_order;
use kiln_store::gvariant::{self, Type, Value, VarDict};
use kiln_store::{Checksum, ObjectType, Repo};
use std::sync::OnceLock;

pub const STATIC_DELTAS: &str = "ostree.static-deltas";
pub const LAST_MODIFIED: &str = "ostree.summary.last-modified";
pub const EXPIRES: &str = "ostree.summary.expires";
pub const MODE: &str = "ostree.summary.mode";
pub const TOMBSTONE_COMMITS: &str = "ostree.summary.tombstone-commits";
pub const INDEXED_DELTAS: &str = "ostree.summary.indexed-deltas";
pub const COLLECTION_ID: &str = "ostree.summary.collection-id";
pub const COLLECTION_MAP: &str = "ostree.summary.collection-map";
pub const COMMIT_TIMESTAMP: &str = "ostree.commit.timestamp";
pub const COMMIT_VERSION: &str = "ostree.commit.version";

/// Largest summary (or summary.sig) kiln accepts, as libostree: 10 MiB.
pub const MAX_SUMMARY_SIZE: u64 = 10 * 1024 * 1024;

fn summary_type() -> &'static Type {
    static T: OnceLock<Type> = OnceLock::new();
    T.get_or_init(|| Type::parse("(a(s(taya{sv}))a{sv})").expect("static type"))
}

fn ref_entry_type() -> Type {
    Type::parse("(s(taya{sv}))").expect("static type")
}

/// Why summary bytes were refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid summary: {0}")]
pub struct SummaryError(pub String);

fn bad(why: impl Into<String>) -> SummaryError {
    SummaryError(why.into())
}

/// One ref of a summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SummaryRef {
    pub name: String,
    /// Size of the commit object in bytes.
    pub commit_size: u64,
    pub checksum: Checksum,
    #[serde(skip)]
    pub metadata: VarDict,
}

impl SummaryRef {
    /// `ostree.commit.timestamp`, if present.
    pub fn timestamp(&self) -> Option<u64> {
        match self.metadata.get(COMMIT_TIMESTAMP) {
            Some(Value::Uint64(t)) => Some(u64::from_be(*t)),
            _ => None,
        }
    }

    pub fn version(&self) -> Option<&str> {
        self.metadata.get_str(COMMIT_VERSION)
    }
}

/// A parsed summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub refs: Vec<SummaryRef>,
    pub metadata: VarDict,
}

impl Summary {
    /// Strict parse of summary bytes from anywhere (a server, a file).
    pub fn parse(data: &[u8]) -> Result<Summary, SummaryError> {
        if data.len() as u64 > MAX_SUMMARY_SIZE {
            return Err(bad(format!(
                "{} bytes is larger than the limit of {MAX_SUMMARY_SIZE}",
                data.len()
            )));
        }
        let v = gvariant::decode(summary_type(), data).map_err(|e| bad(e.to_string()))?;
        let [refs, md] = v.children() else {
            return Err(bad("wrong shape"));
        };
        let mut out = Vec::new();
        for r in refs.children() {
            let [name, body] = r.children() else {
                return Err(bad("wrong shape"));
            };
            let [size, csum, rmd] = body.children() else {
                return Err(bad("wrong shape"));
            };
            let name = name.as_str().ok_or_else(|| bad("ref name"))?;
            kiln_store::refs::validate_ref(name)
                .map_err(|_| bad(format!("invalid ref name {name:?}")))?;
            let Value::Uint64(size) = size else {
                return Err(bad("commit size"));
            };
            let checksum = csum
                .as_bytes()
                .and_then(Checksum::from_bytes)
                .ok_or_else(|| bad(format!("ref {name}: checksum is not 32 bytes")))?;
            let metadata = VarDict::from_value(rmd).ok_or_else(|| bad("ref metadata"))?;
            out.push(SummaryRef {
                name: name.to_string(),
                commit_size: *size,
                checksum,
                metadata,
            });
        }
        if !out.windows(2).all(|w| w[0].name < w[1].name) {
            return Err(bad("refs are not sorted and unique"));
        }
        let metadata = VarDict::from_value(md).ok_or_else(|| bad("metadata"))?;
        let s = Summary {
            refs: out,
            metadata,
        };
        s.static_deltas()?;
        Ok(s)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let refs = Value::Array(
            ref_entry_type(),
            self.refs
                .iter()
                .map(|r| {
                    Value::Tuple(vec![
                        Value::str(r.name.clone()),
                        Value::Tuple(vec![
                            Value::Uint64(r.commit_size),
                            Value::Bytes(r.checksum.0.to_vec()),
                            r.metadata.to_value(),
                        ]),
                    ])
                })
                .collect(),
        );
        gvariant::encode(&Value::Tuple(vec![refs, self.metadata.to_value()]))
    }

    pub fn lookup(&self, name: &str) -> Option<&SummaryRef> {
        self.refs
            .binary_search_by(|r| r.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.refs[i])
    }

    /// `ostree.summary.mode`, e.g. `archive-z2`.
    pub fn mode(&self) -> Option<&str> {
        self.metadata.get_str(MODE)
    }

    pub fn indexed_deltas(&self) -> bool {
        matches!(self.metadata.get(INDEXED_DELTAS), Some(Value::Bool(true)))
    }

    pub fn last_modified(&self) -> Option<u64> {
        match self.metadata.get(LAST_MODIFIED) {
            Some(Value::Uint64(t)) => Some(u64::from_be(*t)),
            _ => None,
        }
    }

    /// The static deltas the summary lists: (from, to, superblock digest).
    pub fn static_deltas(&self) -> Result<Vec<DeltaEntry>, SummaryError> {
        match self.metadata.get(STATIC_DELTAS) {
            None => Ok(Vec::new()),
            Some(v) => parse_delta_dict(v),
        }
    }
}

/// A static delta offered by a summary or a delta index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeltaEntry {
    pub from: Option<Checksum>,
    pub to: Checksum,
    /// SHA-256 of the superblock file.
    pub digest: Checksum,
}

impl DeltaEntry {
    pub fn name(&self) -> String {
        delta_name(self.from.as_ref(), &self.to)
    }
}

/// `FROM-TO` or `TO`.
pub fn delta_name(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        Some(f) => format!("{f}-{to}"),
        None => to.to_string(),
    }
}

/// Parse `FROM-TO` or `TO`.
pub fn parse_delta_name(name: &str) -> Option<(Option<Checksum>, Checksum)> {
    match name.split_once('-') {
        Some((f, t)) => Some((Some(f.parse().ok()?), t.parse().ok()?)),
        None => Some((None, name.parse().ok()?)),
    }
}

/// Parse an `a{sv}` of delta name → `ay` digest.
pub fn parse_delta_dict(v: &Value) -> Result<Vec<DeltaEntry>, SummaryError> {
    let dict = VarDict::from_value(v).ok_or_else(|| bad("ostree.static-deltas is not an a{sv}"))?;
    let mut out = Vec::new();
    for (name, d) in &dict.0 {
        let (from, to) =
            parse_delta_name(name).ok_or_else(|| bad(format!("invalid delta name {name:?}")))?;
        let digest = d
            .as_bytes()
            .and_then(Checksum::from_bytes)
            .ok_or_else(|| bad(format!("delta {name}: digest is not a 32-byte ay")))?;
        out.push(DeltaEntry { from, to, digest });
    }
    Ok(out)
}

/// ostree's modified base64 of a checksum (`/` → `_`, no padding).
pub fn checksum_b64(c: &Checksum) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(c.0)
        .replace('/', "_")
}

fn checksum_from_b64(s: &str) -> Option<Checksum> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.replace('_', "/"))
        .ok()?;
    Checksum::from_bytes(&raw)
}

/// `deltas/XX/REST` (scratch) or `deltas/FF/FROMREST-TO` directory of a delta.
pub fn delta_dir(from: Option<&Checksum>, to: &Checksum) -> String {
    let t = checksum_b64(to);
    match from {
        Some(f) => {
            let f = checksum_b64(f);
            format!("deltas/{}/{}-{}", &f[..2], &f[2..], t)
        }
        None => format!("deltas/{}/{}", &t[..2], &t[2..]),
    }
}

/// `delta-indexes/XX/REST.index` of deltas leading to `to`.
pub fn delta_index_path(to: &Checksum) -> String {
    let t = checksum_b64(to);
    format!("delta-indexes/{}/{}.index", &t[..2], &t[2..])
}

/// The deltas present in a repo's `deltas/`, in directory order (as
/// `ostree_repo_list_static_delta_names` returns them).
pub fn list_local_deltas(repo: &Repo) -> Result<Vec<(Option<Checksum>, Checksum)>> {
    let root = repo.path().join("deltas");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&root, e)),
    };
    for d in rd {
        let d = d.map_err(|e| Error::io(&root, e))?;
        if !d.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let first = d.file_name().to_string_lossy().to_string();
        let sub = d.path();
        let rd2 = std::fs::read_dir(&sub).map_err(|e| Error::io(&sub, e))?;
        for e in rd2 {
            let e = e.map_err(|err| Error::io(&sub, err))?;
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                || !e.path().join("superblock").exists()
            {
                continue;
            }
            let second = e.file_name().to_string_lossy().to_string();
            let joined = format!("{first}{second}");
            let parsed = match joined.split_once('-') {
                Some((f, t)) => checksum_from_b64(f)
                    .zip(checksum_from_b64(t))
                    .map(|(f, t)| (Some(f), t)),
                None => checksum_from_b64(&joined).map(|t| (None, t)),
            };
            if let Some(p) = parsed {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn superblock_digest(repo: &Repo, from: Option<&Checksum>, to: &Checksum) -> Result<Checksum> {
    let p = repo.path().join(delta_dir(from, to)).join("superblock");
    let data = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
    Ok(Checksum::of(&data))
}

fn be_u64(v: u64) -> Value {
    Value::Uint64(v.to_be())
}

fn dict_in_glib_order(entries: Vec<(String, Value)>) -> VarDict {
    VarDict(gvariant_dict_order(entries))
}

/// Build the summary of `repo` as `ostree summary -u` does, with
/// `additional` metadata (from `--add-metadata`) and `now` as
/// `ostree.summary.last-modified`. Also rewrites the delta indexes and sets
/// `core.indexed-deltas=true`, as libostree does.
pub fn generate(repo: &mut Repo, additional: &VarDict, now: u64) -> Result<Vec<u8>> {
    let mut refs = Vec::new();
    for (name, csum) in repo.list_refs()? {
        let data = repo.read_meta(&csum, ObjectType::Commit)?;
        let commit = kiln_store::object::Commit::from_bytes(&data)
            .map_err(|e| Error::Invalid(format!("commit {csum}: {e}")))?;
        let mut md = vec![(COMMIT_TIMESTAMP.to_string(), be_u64(commit.timestamp))];
        if let Some(v) = commit.version() {
            md.push((COMMIT_VERSION.to_string(), Value::str(v)));
        }
        refs.push(SummaryRef {
            name,
            commit_size: data.len() as u64,
            checksum: csum,
            metadata: dict_in_glib_order(md),
        });
    }
    refs.sort_by(|a, b| a.name.cmp(&b.name));

    let cfg = repo.config().clone();
    let mut md: Vec<(String, Value)> = additional.0.clone();
    let no_deltas = matches!(
        cfg.get("core", "no-deltas-in-summary"),
        Some("true") | Some("1")
    );
    let deltas = list_local_deltas(repo)?;
    if !no_deltas && !deltas.is_empty() {
        let mut d = Vec::new();
        for (from, to) in &deltas {
            let digest = superblock_digest(repo, from.as_ref(), to)?;
            d.push((
                delta_name(from.as_ref(), to),
                Value::Bytes(digest.0.to_vec()),
            ));
        }
        md.push((STATIC_DELTAS.to_string(), dict_in_glib_order(d).to_value()));
    }
    md.push((LAST_MODIFIED.to_string(), be_u64(now)));
    md.push((
        MODE.to_string(),
        Value::str(cfg.get("core", "mode").unwrap_or("bare")),
    ));
    let tomb = matches!(
        cfg.get("core", "tombstone-commits"),
        Some("true") | Some("1")
    );
    md.push((TOMBSTONE_COMMITS.to_string(), Value::Bool(tomb)));
    md.push((INDEXED_DELTAS.to_string(), Value::Bool(true)));
    if let Some(cid) = cfg.get("core", "collection-id") {
        md.push((COLLECTION_ID.to_string(), Value::str(cid)));
    }
    let summary = Summary {
        refs,
        metadata: dict_in_glib_order(md),
    };
    reindex_deltas(repo, &deltas)?;
    Ok(summary.to_bytes())
}

/// Regenerate `delta-indexes/` for every delta target (and remove stale
/// indexes), as `ostree_repo_static_delta_reindex` does.
pub fn reindex_deltas(repo: &mut Repo, deltas: &[(Option<Checksum>, Checksum)]) -> Result<()> {
    if !matches!(
        repo.config().get("core", "indexed-deltas"),
        Some("true") | Some("1")
    ) {
        let mut cfg = repo.config().clone();
        cfg.set("core", "indexed-deltas", "true");
        repo.write_config(cfg)?;
    }
    let mut by_to: std::collections::BTreeMap<Checksum, Vec<Option<Checksum>>> = Default::default();
    for (f, t) in deltas {
        by_to.entry(*t).or_default().push(*f);
    }
    // Remove indexes of targets that no longer have deltas.
    let idx_root = repo.path().join("delta-indexes");
    if let Ok(rd) = std::fs::read_dir(&idx_root) {
        for d in rd.flatten() {
            let Ok(rd2) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for e in rd2.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(stem) = name.strip_suffix(".index") else {
                    continue;
                };
                let first = d.file_name().to_string_lossy().to_string();
                if let Some(to) = checksum_from_b64(&format!("{first}{stem}")) {
                    if !by_to.contains_key(&to) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }
    for (to, mut froms) in by_to {
        froms.sort_by_key(|f| f.map(|c| c.to_hex()));
        let mut d = Vec::new();
        for f in &froms {
            let digest = superblock_digest(repo, f.as_ref(), &to)?;
            d.push((delta_name(f.as_ref(), &to), Value::Bytes(digest.0.to_vec())));
        }
        let index = dict_in_glib_order(vec![(
            STATIC_DELTAS.to_string(),
            dict_in_glib_order(d).to_value(),
        )]);
        let bytes = kiln_store::object::encode_vardict(&index);
        let path = repo.path().join(delta_index_path(&to));
        if std::fs::read(&path).ok().as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        kiln_store::util::write_file_atomic(&path, &bytes, 0o644)?;
    }
    Ok(())
}

/// `summary -u`: write `summary` and remove a stale `summary.sig`.
pub fn update(repo: &mut Repo, additional: &VarDict, now: u64) -> Result<Vec<u8>> {
    let _ = repo.lock(kiln_store::repo::LockKind::Shared);
    let bytes = generate(repo, additional, now)?;
    kiln_store::util::write_file_atomic(&repo.path().join("summary"), &bytes, 0o644)?;
    let sig = repo.path().join("summary.sig");
    match std::fs::remove_file(&sig) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&sig, e)),
        _ => {}
    }
    Ok(bytes)
}

/// `2021-01-01T00:00:00+00`, as GLib's `g_date_time_format_iso8601` in UTC.
fn iso8601(secs: u64) -> String {
    let s = kiln_store::datetime::format_iso(secs);
    format!("{}+00", s.trim_end_matches('Z'))
}

/// `summary --view`: the text `ostree summary --view` prints.
pub fn view(s: &Summary) -> String {
    let mut out = String::new();
    for r in &s.refs {
        out.push_str(&format!("* {}\n", r.name));
        out.push_str(&format!(
            "    Latest Commit ({} bytes):\n      {}\n",
            r.commit_size, r.checksum
        ));
        for (k, v) in &r.metadata.0 {
            match (k.as_str(), v) {
                (COMMIT_TIMESTAMP, Value::Uint64(t)) => out.push_str(&format!(
                    "    Timestamp ({k}): {}\n",
                    iso8601(u64::from_be(*t))
                )),
                (COMMIT_VERSION, Value::String(s)) => {
                    out.push_str(&format!("    Version ({k}): {s}\n"))
                }
                _ => out.push_str(&format!("    {k}: {}\n", gvariant::text::print(v, false))),
            }
        }
        out.push('\n');
    }
    for (k, v) in &s.metadata.0 {
        let line = match (k.as_str(), v) {
            (STATIC_DELTAS, _) => {
                format!("Static Deltas ({k}): {}", gvariant::text::print(v, false))
            }
            (LAST_MODIFIED, Value::Uint64(t)) => {
                format!("Last-Modified ({k}): {}", iso8601(u64::from_be(*t)))
            }
            (EXPIRES, Value::Uint64(t)) => format!("Expires ({k}): {}", iso8601(u64::from_be(*t))),
            (COLLECTION_ID, Value::String(s)) => format!("Collection ID ({k}): {s}"),
            (COLLECTION_MAP, _) => format!("Collection Map ({k}): (printed above)"),
            (MODE, Value::String(m)) => {
                if kiln_store::RepoMode::parse(m).is_some() {
                    format!("Repository Mode ({k}): {m}")
                } else {
                    format!("Repository Mode ({k}): Invalid (\u{2018}{m}\u{2019})")
                }
            }
            (TOMBSTONE_COMMITS, Value::Bool(b)) => {
                format!(
                    "Has Tombstone Commits ({k}): {}",
                    if *b { "Yes" } else { "No" }
                )
            }
            _ => format!("{k}: {}", gvariant::text::print(v, false)),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_paths() {
        let c: Checksum = "3cb8426b9b73b96719760f97a50f726933889d3253df2690e58e69551905f53b"
            .parse()
            .unwrap();
        let b = checksum_b64(&c);
        assert_eq!(b.len(), 43);
        assert_eq!(checksum_from_b64(&b), Some(c));
        assert!(delta_dir(None, &c).starts_with("deltas/PL/"));
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(Summary::parse(b"").is_ok() || Summary::parse(b"").is_err());
        assert!(Summary::parse(&[0xff; 64]).is_err());
        let s = Summary {
            refs: vec![],
            metadata: VarDict::new(),
        };
        assert_eq!(Summary::parse(&s.to_bytes()).unwrap(), s);
    }
}
