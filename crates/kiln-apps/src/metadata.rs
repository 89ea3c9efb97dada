//! Flatpak's `metadata` keyfile: `[Application]` or `[Runtime]` (name,
//! runtime, sdk, command, tags, required-flatpak) plus the permission
//! groups ([`crate::context`]).
//!
//! The text is kept byte for byte: a commit's `xa.metadata` must be
//! identical to its `metadata` file, and Flatpak refuses an install when
//! they differ. Localized keys (`key[de]`) are read with
//! [`Metadata::get_locale`]. `[Extension …]` groups are kept in the text
//! but not acted upon.

use crate::appref::{validate_id, AppRef, Kind};
use crate::context::Context;
use crate::error::{Error, Result};
use kiln_store::keyfile::KeyFile;

/// Largest `metadata` accepted (Flatpak has no limit; 1 MiB is plenty).
pub const MAX_METADATA_SIZE: usize = 1 << 20;

/// A parsed, validated `metadata` file.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub kind: Kind,
    pub name: String,
    /// `runtime=ID/ARCH/BRANCH` (required for apps).
    pub runtime: Option<AppRef>,
    pub sdk: Option<String>,
    pub command: Option<String>,
    pub required_flatpak: Option<String>,
    pub tags: Vec<String>,
    pub context: Context,
    pub keyfile: KeyFile,
    /// The exact text.
    pub text: String,
}

impl Metadata {
    /// Parse bytes from anywhere (a commit, a file, a server): never panics;
    /// everything malformed is an error naming what is wrong.
    pub fn parse_bytes(data: &[u8]) -> Result<Metadata> {
        if data.len() > MAX_METADATA_SIZE {
            return Err(Error::metadata(
                "",
                format!("{} bytes is too large", data.len()),
            ));
        }
        let text = std::str::from_utf8(data).map_err(|_| Error::metadata("", "not valid UTF-8"))?;
        Metadata::parse(text)
    }

    pub fn parse(text: &str) -> Result<Metadata> {
        let kf = KeyFile::parse(text).map_err(|e| Error::metadata("", e.to_string()))?;
        let has_app = kf.has_group("Application");
        let has_rt = kf.has_group("Runtime");
        let (kind, group) = match (has_app, has_rt) {
            (true, false) => (Kind::App, "Application"),
            (false, true) => (Kind::Runtime, "Runtime"),
            (true, true) => {
                return Err(Error::metadata(
                    "",
                    "both [Application] and [Runtime] groups",
                ))
            }
            (false, false) => {
                return Err(Error::metadata("", "no [Application] or [Runtime] group"))
            }
        };
        let get = |key: &str| -> Result<Option<String>> {
            kf.get_checked(group, key)
                .map(|v| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
                .map_err(|e| Error::metadata(group, e.to_string()))
        };
        let name = get("name")?.ok_or_else(|| Error::metadata(group, "no name= key"))?;
        validate_id(&name)
            .map_err(|w| Error::metadata(format!("{group} name"), format!("{name:?}: {w}")))?;
        let runtime = match get("runtime")? {
            Some(r) => Some(
                AppRef::parse_triplet(Kind::Runtime, &r)
                    .map_err(|e| Error::metadata(format!("{group} runtime"), e.to_string()))?,
            ),
            None if kind == Kind::App => {
                return Err(Error::metadata("Application", "no runtime= key"))
            }
            None => None,
        };
        let sdk = get("sdk")?;
        if let Some(s) = &sdk {
            AppRef::parse_triplet(Kind::Runtime, s)
                .map_err(|e| Error::metadata(format!("{group} sdk"), e.to_string()))?;
        }
        let command = get("command")?;
        if let Some(c) = &command {
            if c.contains('\0') {
                return Err(Error::metadata("Application command", "contains NUL"));
            }
        }
        let context = Context::from_keyfile(&kf)?;
        Ok(Metadata {
            kind,
            runtime,
            sdk,
            command,
            required_flatpak: get("required-flatpak")?,
            tags: kf.get_list(group, "tags").unwrap_or_default(),
            name,
            context,
            keyfile: kf,
            text: text.to_string(),
        })
    }

    /// A localized key of the main group (`key[LOCALE]`, falling back).
    pub fn get_locale(&self, key: &str, locale: &str) -> Option<&str> {
        let group = match self.kind {
            Kind::App => "Application",
            Kind::Runtime => "Runtime",
        };
        self.keyfile.get_locale(group, key, locale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "[Application]\nname=org.kiln.Demo\nruntime=org.kiln.Test/x86_64/1\nsdk=org.kiln.Test/x86_64/1\ncommand=demo\ntags=a;b;\nx-title=Demo\nx-title[de]=Vorführung\n\n[Context]\nshared=network;\nfilesystems=xdg-download;\n";

    #[test]
    fn parses_app_metadata() {
        let m = Metadata::parse(APP).unwrap();
        assert_eq!(m.kind, Kind::App);
        assert_eq!(m.name, "org.kiln.Demo");
        assert_eq!(
            m.runtime.as_ref().unwrap().to_string(),
            "runtime/org.kiln.Test/x86_64/1"
        );
        assert_eq!(m.command.as_deref(), Some("demo"));
        assert_eq!(m.tags, vec!["a", "b"]);
        assert!(m.context.has_share("network"));
        assert_eq!(m.get_locale("x-title", "de_DE.UTF-8"), Some("Vorführung"));
        assert_eq!(m.get_locale("x-title", "fr"), Some("Demo"));
        assert_eq!(m.text, APP);
    }

    #[test]
    fn runtime_metadata() {
        let m = Metadata::parse("[Runtime]\nname=org.kiln.Test\nruntime=org.kiln.Test/x86_64/1\n")
            .unwrap();
        assert_eq!(m.kind, Kind::Runtime);
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "garbage",
            "[Application]\nruntime=org.kiln.Test/x86_64/1\n",
            "[Application]\nname=org.kiln.Demo\n",
            "[Application]\nname=demo\nruntime=org.kiln.Test/x86_64/1\n",
            "[Application]\nname=org.kiln.Demo\nruntime=org.kiln.Test/x86_64\n",
            "[Application]\nname=org.kiln.Demo\nruntime=org.kiln.Test/x86_64/1\n[Runtime]\nname=a.b.c\n",
            "[Application]\nname=org.kiln.Demo\nruntime=org.kiln.Test/x86_64/1\n[Context]\nsockets=x11;teleport;\n",
            "[Application]\nname=org.kiln.D\\qemo\nruntime=org.kiln.Test/x86_64/1\n",
        ] {
            assert!(Metadata::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Metadata::parse_bytes(b"[Application]\nname=\xff\n").is_err());
    }
}
