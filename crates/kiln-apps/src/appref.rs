//! Flatpak refs: `app/ID/ARCH/BRANCH` and `runtime/ID/ARCH/BRANCH`, with
//! Flatpak's rules for names, arches and branches (`flatpak-ref-utils.c`).

use crate::error::{Error, Result};
use std::fmt;

/// An app or a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    App,
    Runtime,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Runtime => "runtime",
        }
    }
}

/// A parsed, validated ref.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppRef {
    pub kind: Kind,
    pub id: String,
    pub arch: String,
    pub branch: String,
}

fn bad(name: &str, why: impl Into<String>) -> Error {
    Error::InvalidRef {
        name: name.to_string(),
        why: why.into(),
    }
}

/// An app ID: ≤ 255 chars, ≥ 3 dot-separated segments of
/// `[A-Za-z_][A-Za-z0-9_]*`, `-` allowed only in the last one.
pub fn validate_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("name can't be empty".into());
    }
    if id.len() > 255 {
        return Err("name can't be longer than 255 characters".into());
    }
    let segs: Vec<&str> = id.split('.').collect();
    if segs.len() < 3 {
        return Err("names must contain at least 2 periods".into());
    }
    let last = segs.len() - 1;
    for (i, s) in segs.iter().enumerate() {
        let mut chars = s.chars();
        match chars.next() {
            None => return Err("name can't contain an empty segment (\"..\")".into()),
            Some(c) if c.is_ascii_alphabetic() || c == '_' || (i == last && c == '-') => {}
            Some(c) if c.is_ascii_digit() => {
                return Err("name segments can't start with a digit".into())
            }
            Some(c) => return Err(format!("name can't start a segment with {c:?}")),
        }
        for c in chars {
            let ok = c.is_ascii_alphanumeric() || c == '_' || (i == last && c == '-');
            if !ok {
                return Err(if c == '-' {
                    "only the last name segment can contain -".into()
                } else {
                    format!("name can't contain {c:?}")
                });
            }
        }
    }
    Ok(())
}

pub fn validate_arch(arch: &str) -> std::result::Result<(), String> {
    if arch.is_empty() {
        return Err("arch can't be empty".into());
    }
    if !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "arch can't contain characters other than [A-Za-z0-9_]: {arch:?}"
        ));
    }
    Ok(())
}

pub fn validate_branch(branch: &str) -> std::result::Result<(), String> {
    let mut chars = branch.chars();
    match chars.next() {
        None => return Err("branch can't be empty".into()),
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {}
        Some(_) => return Err("branch can't start with that character".into()),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(format!(
            "branch can't contain characters other than [A-Za-z0-9_.-]: {branch:?}"
        ));
    }
    Ok(())
}

/// The arch kiln installs for (Flatpak's arch names).
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i386",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

impl AppRef {
    pub fn new(kind: Kind, id: &str, arch: &str, branch: &str) -> Result<AppRef> {
        let full = format!("{}/{id}/{arch}/{branch}", kind.as_str());
        validate_id(id).map_err(|w| bad(&full, w))?;
        validate_arch(arch).map_err(|w| bad(&full, w))?;
        validate_branch(branch).map_err(|w| bad(&full, w))?;
        Ok(AppRef {
            kind,
            id: id.to_string(),
            arch: arch.to_string(),
            branch: branch.to_string(),
        })
    }

    /// Parse `app/ID/ARCH/BRANCH` or `runtime/ID/ARCH/BRANCH`.
    pub fn parse(s: &str) -> Result<AppRef> {
        let parts: Vec<&str> = s.split('/').collect();
        let [kind, id, arch, branch] = parts[..] else {
            return Err(bad(
                s,
                "expected app/ID/ARCH/BRANCH or runtime/ID/ARCH/BRANCH",
            ));
        };
        let kind = match kind {
            "app" => Kind::App,
            "runtime" => Kind::Runtime,
            _ => return Err(bad(s, "must start with app/ or runtime/")),
        };
        AppRef::new(kind, id, arch, branch)
    }

    /// Parse `ID/ARCH/BRANCH` (a metadata `runtime=` value) as `kind`.
    pub fn parse_triplet(kind: Kind, s: &str) -> Result<AppRef> {
        let parts: Vec<&str> = s.split('/').collect();
        let [id, arch, branch] = parts[..] else {
            return Err(bad(s, "expected ID/ARCH/BRANCH"));
        };
        AppRef::new(kind, id, arch, branch)
    }

    /// `ID/ARCH/BRANCH`.
    pub fn triplet(&self) -> String {
        format!("{}/{}/{}", self.id, self.arch, self.branch)
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.kind.as_str(),
            self.id,
            self.arch,
            self.branch
        )
    }
}

impl serde::Serialize for AppRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let r = AppRef::parse("app/org.kiln.Demo/x86_64/stable").unwrap();
        assert_eq!(r.kind, Kind::App);
        assert_eq!(r.to_string(), "app/org.kiln.Demo/x86_64/stable");
        assert_eq!(r.triplet(), "org.kiln.Demo/x86_64/stable");
        assert!(AppRef::parse("runtime/org.kiln.Test/x86_64/1").is_ok());
        assert!(AppRef::parse("app/org.kiln.my-app/x86_64/1.0").is_ok());
    }

    #[test]
    fn refuses_bad_refs() {
        for bad in [
            "app/org.kiln/x86_64/stable",
            "app/org..kiln.Demo/x86_64/stable",
            "app/org.1kiln.Demo/x86_64/stable",
            "app/org.ki-ln.Demo/x86_64/stable",
            "app/org.kiln.Demo/x86-64/stable",
            "app/org.kiln.Demo/x86_64/.stable",
            "app/org.kiln.Demo/x86_64/st/able",
            "app/org.kiln.Demo/x86_64",
            "foo/org.kiln.Demo/x86_64/stable",
            "app/org.kiln.Demo/x86_64/",
            "app/../x86_64/stable",
        ] {
            assert!(AppRef::parse(bad).is_err(), "{bad}");
        }
        let long = format!("app/org.kiln.{}/x86_64/1", "a".repeat(250));
        assert!(AppRef::parse(&long).is_err());
    }
}
