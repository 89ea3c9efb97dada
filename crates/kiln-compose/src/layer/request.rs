//! What a layered deployment asks for, as kept in its origin (`[kiln]`)
//! and in the layered commit's metadata (`kiln.layer.*`).

use kiln_store::gvariant::{Type, Value, VarDict};
use kiln_store::keyfile::KeyFile;
use kiln_store::{Checksum, Repo};
use serde::Serialize;
use std::collections::BTreeSet;

/// The origin group kiln keeps its layering request in.
pub const ORIGIN_GROUP: &str = "kiln";
/// Commit metadata: the base commit a layered commit was built on.
pub const META_BASE: &str = "kiln.layer.base";
const META_PACKAGES: &str = "kiln.layer.packages";
const META_LOCAL: &str = "kiln.layer.local-packages";
const META_REMOVED: &str = "kiln.layer.removed";

/// A local `.deb` kept in the cache under its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LocalDeb {
    pub name: String,
    pub sha256: String,
}

impl LocalDeb {
    /// `NAME:SHA256`, as stored in origins and metadata.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.name, self.sha256)
    }

    fn parse(s: &str) -> Option<LocalDeb> {
        let (name, sha) = s.rsplit_once(':')?;
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        (valid_name && sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit())).then(|| {
            LocalDeb {
                name: name.to_string(),
                sha256: sha.to_ascii_lowercase(),
            }
        })
    }
}

/// Packages added from repositories, local packages, base packages removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LayerRequest {
    pub packages: BTreeSet<String>,
    pub local: BTreeSet<LocalDeb>,
    pub removed: BTreeSet<String>,
}

impl LayerRequest {
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.local.is_empty() && self.removed.is_empty()
    }

    /// The request recorded in an origin (empty when there is none).
    pub fn from_origin(o: Option<&KeyFile>) -> LayerRequest {
        let Some(o) = o else {
            return LayerRequest::default();
        };
        let list = |k: &str| -> Vec<String> {
            o.get_list(ORIGIN_GROUP, k)
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        LayerRequest {
            packages: list("packages").into_iter().collect(),
            local: list("local-packages")
                .iter()
                .filter_map(|s| LocalDeb::parse(s))
                .collect(),
            removed: list("removed-packages").into_iter().collect(),
        }
    }

    /// Write the request into `o`'s `[kiln]` group (removed when empty).
    pub fn write_origin(&self, o: &mut KeyFile, base: &Checksum) {
        o.remove_group(ORIGIN_GROUP);
        if self.is_empty() {
            return;
        }
        let set = |o: &mut KeyFile, k: &str, v: Vec<String>| {
            if !v.is_empty() {
                let _ = o.set_list(ORIGIN_GROUP, k, &v);
            }
        };
        o.set(ORIGIN_GROUP, "base-checksum", &base.to_string());
        set(o, "packages", self.packages.iter().cloned().collect());
        set(
            o,
            "local-packages",
            self.local.iter().map(LocalDeb::spec).collect(),
        );
        set(
            o,
            "removed-packages",
            self.removed.iter().cloned().collect(),
        );
    }

    /// `kiln.layer.*` entries for the layered commit.
    pub fn metadata(&self, base: &Checksum, into: &mut VarDict) {
        let strs =
            |v: Vec<String>| Value::Array(Type::String, v.into_iter().map(Value::str).collect());
        into.insert(META_BASE, Value::str(base.to_string()));
        into.insert(META_PACKAGES, strs(self.packages.iter().cloned().collect()));
        into.insert(
            META_LOCAL,
            strs(self.local.iter().map(LocalDeb::spec).collect()),
        );
        into.insert(META_REMOVED, strs(self.removed.iter().cloned().collect()));
    }

    /// Every package name the request installs.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.packages.iter().cloned().collect();
        v.extend(self.local.iter().map(|l| l.name.clone()));
        v
    }
}

/// The base of a commit: its `kiln.layer.base`, else itself.
pub fn base_of(repo: &Repo, csum: &Checksum) -> Checksum {
    repo.read_commit(csum)
        .ok()
        .and_then(|c| c.metadata.get_str(META_BASE).and_then(|s| s.parse().ok()))
        .unwrap_or(*csum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_round_trip() {
        let mut r = LayerRequest::default();
        r.packages.insert("hello".into());
        r.local.insert(LocalDeb {
            name: "foo".into(),
            sha256: "a".repeat(64),
        });
        r.removed.insert("less".into());
        let mut o = KeyFile::parse("[origin]\nrefspec=os/v1\n").unwrap();
        let base: Checksum = "b".repeat(64).parse().unwrap();
        r.write_origin(&mut o, &base);
        let text = o.to_string();
        assert!(text.contains("[kiln]\nbase-checksum="), "{text}");
        assert!(text.contains("packages=hello;"), "{text}");
        let back = LayerRequest::from_origin(Some(&KeyFile::parse(&text).unwrap()));
        assert_eq!(back, r);
        LayerRequest::default().write_origin(&mut o, &base);
        assert!(!o.has_group(ORIGIN_GROUP));
        assert_eq!(o.get("origin", "refspec"), Some("os/v1"));
    }

    #[test]
    fn bad_local_specs_are_ignored() {
        let o = KeyFile::parse("[kiln]\nlocal-packages=x:12;../y:;z:zz;\n").unwrap();
        assert!(LayerRequest::from_origin(Some(&o)).local.is_empty());
    }
}
