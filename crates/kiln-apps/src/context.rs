//! Permissions: Flatpak's `[Context]`, `[Session Bus Policy]`,
//! `[System Bus Policy]` and `[Environment]` groups.
//!
//! The same groups appear in an app's `metadata`, in a runtime's, in
//! `overrides/ID` and in `/.flatpak-info`. Lists are `;`-terminated GLib
//! lists; an item prefixed with `!` revokes (that is how overrides
//! subtract). Contexts merge in Flatpak's order (runtime → app → global
//! overrides → app overrides → command line): a later entry for the same
//! permission replaces an earlier one.
//!
//! Unknown values are refused with the list of valid ones, as Flatpak 1.14
//! does. Conditional permissions (`if:NAME:COND`, Flatpak main) are
//! accepted and ignored, as Flatpak 1.14 ignores them.

use crate::error::{Error, Result};
use kiln_sandbox::dbus::BusPolicy;
use kiln_store::keyfile::KeyFile;
use std::collections::{BTreeMap, BTreeSet};

pub const GROUP_CONTEXT: &str = "Context";
pub const GROUP_SESSION_BUS: &str = "Session Bus Policy";
pub const GROUP_SYSTEM_BUS: &str = "System Bus Policy";
pub const GROUP_ENVIRONMENT: &str = "Environment";

pub const SHARES: &[&str] = &["network", "ipc"];
pub const SOCKETS: &[&str] = &[
    "x11",
    "wayland",
    "pulseaudio",
    "session-bus",
    "system-bus",
    "fallback-x11",
    "ssh-auth",
    "pcsc",
    "cups",
    "gpg-agent",
    "inherit-wayland-socket",
];
pub const DEVICES: &[&str] = &["dri", "all", "kvm", "shm", "input", "usb"];
pub const FEATURES: &[&str] = &[
    "devel",
    "multiarch",
    "bluetooth",
    "canbus",
    "per-app-dev-shm",
];
/// `xdg-*` locations of `filesystems=`.
pub const XDG_DIRS: &[&str] = &[
    "xdg-desktop",
    "xdg-documents",
    "xdg-download",
    "xdg-music",
    "xdg-pictures",
    "xdg-public-share",
    "xdg-templates",
    "xdg-videos",
    "xdg-data",
    "xdg-cache",
    "xdg-config",
    "xdg-run",
];
const SPECIAL_FS: &[&str] = &["host", "host-os", "host-etc", "host-root", "home"];

/// How a `filesystems=` location is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsMode {
    ReadOnly,
    ReadWrite,
    /// Read-write, created if missing.
    Create,
    /// `!location`: revoked.
    Denied,
}

/// A set of permissions (one keyfile's worth, or a merge of several).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Context {
    /// `shared=`: name → granted (false: `!name`).
    pub shared: BTreeMap<String, bool>,
    pub sockets: BTreeMap<String, bool>,
    pub devices: BTreeMap<String, bool>,
    pub features: BTreeMap<String, bool>,
    /// Location (without `:ro`/`:rw`/`:create`) → mode.
    pub filesystems: BTreeMap<String, FsMode>,
    pub persistent: BTreeSet<String>,
    /// `[Environment]` (Some) and `unset-environment=` (None).
    pub env: BTreeMap<String, Option<String>>,
    #[serde(serialize_with = "ser_policy")]
    pub session_bus: BTreeMap<String, BusPolicy>,
    #[serde(serialize_with = "ser_policy")]
    pub system_bus: BTreeMap<String, BusPolicy>,
}

fn ser_policy<S: serde::Serializer>(
    m: &BTreeMap<String, BusPolicy>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        map.serialize_entry(k, v.as_str())?;
    }
    map.end()
}

fn unknown(kind: &'static str, value: &str, valid: &[&str]) -> Error {
    Error::UnknownPermission {
        kind,
        value: value.to_string(),
        valid: valid.join(", "),
    }
}

/// Split `!name` into (name, granted).
fn negation(item: &str) -> (&str, bool) {
    match item.strip_prefix('!') {
        Some(rest) => (rest, false),
        None => (item, true),
    }
}

/// Validate a `filesystems=` item and split it into (location, mode).
pub fn parse_filesystem(item: &str) -> Result<(String, FsMode)> {
    let (body, granted) = negation(item);
    let (loc, mode) = match body.rsplit_once(':') {
        Some((l, "ro")) => (l, FsMode::ReadOnly),
        Some((l, "rw")) => (l, FsMode::ReadWrite),
        Some((l, "create")) => (l, FsMode::Create),
        _ => (body, FsMode::ReadWrite),
    };
    let valid_hint = "host, host-os, host-etc, host-root, home, xdg-*[/…], ~/dir, /dir";
    let bad = || Error::UnknownPermission {
        kind: "filesystem location",
        value: item.to_string(),
        valid: valid_hint.to_string(),
    };
    if loc == "host-reset" {
        if granted {
            return Err(Error::Invalid(
                "filesystem token \u{201c}host-reset\u{201d} is only valid as !host-reset".into(),
            ));
        }
    } else if SPECIAL_FS.contains(&loc) {
    } else if let Some(rest) = loc.strip_prefix("xdg-") {
        let (name, sub) = match rest.split_once('/') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !XDG_DIRS.contains(&format!("xdg-{name}").as_str()) {
            return Err(bad());
        }
        if let Some(s) = sub {
            check_rel(s).map_err(|_| bad())?;
        }
    } else if let Some(rest) = loc.strip_prefix("~/") {
        check_rel(rest).map_err(|_| bad())?;
    } else if loc == "~" {
    } else if loc.starts_with('/') {
        check_rel(loc.trim_start_matches('/')).map_err(|_| bad())?;
    } else {
        return Err(bad());
    }
    // No control characters in paths (fuzz: a trailing \r does not survive
    // a keyfile round trip, and no real path needs one).
    if loc.chars().any(char::is_control) {
        return Err(bad());
    }
    // Trailing slashes go, but `/` (or `//`) stays `/` (fuzz: `!//`).
    let loc = match loc.trim_end_matches('/') {
        "" => "/",
        t => t,
    };
    Ok((loc.to_string(), if granted { mode } else { FsMode::Denied }))
}

/// A relative path without `..` (empty and `.` components are dropped).
fn check_rel(p: &str) -> std::result::Result<(), ()> {
    if p.split('/').any(|c| c == "..") {
        return Err(());
    }
    Ok(())
}

/// A D-Bus well-known name or prefix (`org.foo.*`).
fn valid_bus_name(name: &str) -> bool {
    let n = name.strip_suffix(".*").unwrap_or(name);
    !n.is_empty()
        && n.len() <= 255
        && n.split('.').count() >= 2
        && n.split('.').all(|s| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Environment variable names as GLib/Flatpak accept them.
fn valid_env_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '=' | '[' | ']'))
}

impl Context {
    /// Read the permission groups of a keyfile.
    pub fn from_keyfile(kf: &KeyFile) -> Result<Context> {
        let mut c = Context::default();
        let g = GROUP_CONTEXT;
        let list = |key: &str| -> Result<Vec<String>> {
            // Refuse invalid escapes, as GLib does.
            kf.get_checked(g, key)
                .map_err(|e| Error::metadata("", e.to_string()))?;
            Ok(kf
                .get_list(g, key)
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && !s.starts_with("if:"))
                .collect())
        };
        for (key, valid, map, kind) in [
            ("shared", SHARES, &mut c.shared, "share type"),
            ("sockets", SOCKETS, &mut c.sockets, "socket type"),
            ("devices", DEVICES, &mut c.devices, "device type"),
            ("features", FEATURES, &mut c.features, "feature type"),
        ] {
            for item in list(key)? {
                let (name, granted) = negation(&item);
                if !valid.contains(&name) {
                    return Err(unknown(kind, name, valid));
                }
                map.insert(name.to_string(), granted);
            }
        }
        for item in list("filesystems")? {
            let (loc, mode) = parse_filesystem(&item)?;
            c.filesystems.insert(loc, mode);
        }
        for item in list("persistent")? {
            if item.starts_with('/')
                || check_rel(&item).is_err()
                || item.chars().any(char::is_control)
            {
                return Err(Error::metadata(
                    "persistent",
                    format!("\u{201c}{item}\u{201d} must be a path relative to the home directory, without \u{201c}..\u{201d}"),
                ));
            }
            c.persistent.insert(item);
        }
        for item in list("unset-environment")? {
            if !valid_env_name(&item) {
                return Err(Error::metadata(
                    "unset-environment",
                    format!("invalid variable name {item:?}"),
                ));
            }
            c.env.insert(item, None);
        }
        for k in kf.keys(GROUP_ENVIRONMENT) {
            if !valid_env_name(k) {
                return Err(Error::metadata(
                    "Environment",
                    format!("invalid variable name {k:?}"),
                ));
            }
            let v = kf
                .get_checked(GROUP_ENVIRONMENT, k)
                .map_err(|e| Error::metadata("Environment", e.to_string()))?
                .unwrap_or_default();
            c.env.insert(k.to_string(), Some(v.to_string()));
        }
        for (group, map) in [
            (GROUP_SESSION_BUS, &mut c.session_bus),
            (GROUP_SYSTEM_BUS, &mut c.system_bus),
        ] {
            for k in kf.keys(group) {
                if !valid_bus_name(k) {
                    return Err(Error::metadata(group, format!("invalid bus name {k:?}")));
                }
                let v = kf.get(group, k).unwrap_or_default().trim();
                let p = BusPolicy::parse(v)
                    .ok_or_else(|| unknown("bus policy", v, &["none", "see", "talk", "own"]))?;
                map.insert(k.to_string(), p);
            }
        }
        Ok(c)
    }

    /// Merge `other` over `self` (later wins per permission).
    pub fn merge(&mut self, other: &Context) {
        for (a, b) in [
            (&mut self.shared, &other.shared),
            (&mut self.sockets, &other.sockets),
            (&mut self.devices, &other.devices),
            (&mut self.features, &other.features),
        ] {
            for (k, v) in b {
                a.insert(k.clone(), *v);
            }
        }
        if other.filesystems.get("host-reset") == Some(&FsMode::Denied) {
            self.filesystems
                .retain(|k, _| !k.starts_with("host") || k == "host-reset");
        }
        for (k, v) in &other.filesystems {
            self.filesystems.insert(k.clone(), *v);
        }
        self.persistent.extend(other.persistent.iter().cloned());
        for (k, v) in &other.env {
            self.env.insert(k.clone(), v.clone());
        }
        for (k, v) in &other.session_bus {
            self.session_bus.insert(k.clone(), *v);
        }
        for (k, v) in &other.system_bus {
            self.system_bus.insert(k.clone(), *v);
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Context::default()
    }

    pub fn has_share(&self, s: &str) -> bool {
        self.shared.get(s) == Some(&true)
    }
    pub fn has_socket(&self, s: &str) -> bool {
        self.sockets.get(s) == Some(&true)
    }
    pub fn has_device(&self, s: &str) -> bool {
        self.devices.get(s) == Some(&true)
    }
    pub fn has_feature(&self, s: &str) -> bool {
        self.features.get(s) == Some(&true)
    }

    /// Write these permissions into `kf` (replacing what it had), as
    /// Flatpak writes overrides: `!` for revoked items.
    pub fn write_keyfile(&self, kf: &mut KeyFile) {
        let g = GROUP_CONTEXT;
        // In a new file, [Context] goes first: GLib reads an `Encoding` key
        // in the first group as the file's encoding, so [Environment] must
        // not lead (found by fuzzing).
        if kf.groups().next().is_none() {
            kf.set(g, "x", "");
            kf.remove_key(g, "x");
        }
        for key in [
            "shared",
            "sockets",
            "devices",
            "features",
            "filesystems",
            "persistent",
            "unset-environment",
        ] {
            kf.remove_key(g, key);
        }
        let bools = |m: &BTreeMap<String, bool>| -> Vec<String> {
            m.iter()
                .map(|(k, v)| if *v { k.clone() } else { format!("!{k}") })
                .collect()
        };
        let mut set = |key: &str, items: Vec<String>| {
            if !items.is_empty() {
                let _ = kf.set_list(g, key, &items);
            }
        };
        set("shared", bools(&self.shared));
        set("sockets", bools(&self.sockets));
        set("devices", bools(&self.devices));
        set("features", bools(&self.features));
        set(
            "filesystems",
            self.filesystems
                .iter()
                .map(|(k, m)| match m {
                    FsMode::ReadOnly => format!("{k}:ro"),
                    // `a:create` as a read-write location must keep its
                    // `:rw`, or it would read back as `a`, created (fuzz).
                    FsMode::ReadWrite if k.contains(':') => format!("{k}:rw"),
                    FsMode::ReadWrite => k.clone(),
                    FsMode::Create => format!("{k}:create"),
                    FsMode::Denied => format!("!{k}"),
                })
                .collect(),
        );
        set("persistent", self.persistent.iter().cloned().collect());
        set(
            "unset-environment",
            self.env
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.clone())
                .collect(),
        );
        kf.remove_group(GROUP_ENVIRONMENT);
        for (k, v) in &self.env {
            if let Some(v) = v {
                let _ = kf.try_set(GROUP_ENVIRONMENT, k, v);
            }
        }
        for (group, map) in [
            (GROUP_SESSION_BUS, &self.session_bus),
            (GROUP_SYSTEM_BUS, &self.system_bus),
        ] {
            kf.remove_group(group);
            for (k, v) in map {
                let _ = kf.try_set(group, k, v.as_str());
            }
        }
        if kf.keys(g).is_empty() && kf.groups().count() == 1 {
            kf.remove_group(g);
        }
    }

    /// Apply command-line permission options (`--share=`, `--nosocket=`,
    /// `--filesystem=`, `--env=`, …), as `flatpak run`, `build-finish`
    /// and `override` take them.
    pub fn apply_args(&mut self, a: &ContextArgs) -> Result<()> {
        for (items, field, grant) in [
            (&a.share, 0, true),
            (&a.unshare, 0, false),
            (&a.socket, 1, true),
            (&a.nosocket, 1, false),
            (&a.device, 2, true),
            (&a.nodevice, 2, false),
            (&a.allow, 3, true),
            (&a.disallow, 3, false),
        ] {
            let (valid, map, kind) = match field {
                0 => (SHARES, &mut self.shared, "share type"),
                1 => (SOCKETS, &mut self.sockets, "socket type"),
                2 => (DEVICES, &mut self.devices, "device type"),
                _ => (FEATURES, &mut self.features, "feature type"),
            };
            for item in items {
                if !valid.contains(&item.as_str()) {
                    return Err(unknown(kind, item, valid));
                }
                map.insert(item.clone(), grant);
            }
        }
        for f in &a.filesystem {
            let (loc, mode) = parse_filesystem(f)?;
            if loc == "host-reset" {
                self.filesystems.retain(|k, _| !k.starts_with("host"));
            }
            self.filesystems.insert(loc, mode);
        }
        for f in &a.nofilesystem {
            let (loc, _) = parse_filesystem(f)?;
            self.filesystems.insert(loc, FsMode::Denied);
        }
        for p in &a.persist {
            if p.starts_with('/') || check_rel(p).is_err() || p.chars().any(char::is_control) {
                return Err(Error::Invalid(format!(
                    "--persist={p}: must be relative to the home directory"
                )));
            }
            self.persistent.insert(p.clone());
        }
        for e in &a.env {
            let (k, v) = e
                .split_once('=')
                .ok_or_else(|| Error::Invalid(format!("--env={e}: expected VAR=VALUE")))?;
            if !valid_env_name(k) {
                return Err(Error::Invalid(format!("--env={e}: invalid variable name")));
            }
            self.env.insert(k.to_string(), Some(v.to_string()));
        }
        for k in &a.unset_env {
            if !valid_env_name(k) {
                return Err(Error::Invalid(format!(
                    "--unset-env={k}: invalid variable name"
                )));
            }
            self.env.insert(k.clone(), None);
        }
        for (items, system, pol) in [
            (&a.own_name, false, BusPolicy::Own),
            (&a.talk_name, false, BusPolicy::Talk),
            (&a.see_name, false, BusPolicy::See),
            (&a.no_talk_name, false, BusPolicy::None),
            (&a.system_own_name, true, BusPolicy::Own),
            (&a.system_talk_name, true, BusPolicy::Talk),
            (&a.system_no_talk_name, true, BusPolicy::None),
        ] {
            let map = if system {
                &mut self.system_bus
            } else {
                &mut self.session_bus
            };
            for n in items {
                if !valid_bus_name(n) {
                    return Err(Error::Invalid(format!("invalid D-Bus name {n:?}")));
                }
                map.insert(n.clone(), pol);
            }
        }
        Ok(())
    }

    /// Human-readable, one permission group per line (for `info
    /// --show-permissions` and `override --show`).
    pub fn to_keyfile_text(&self) -> String {
        let mut kf = KeyFile::new();
        self.write_keyfile(&mut kf);
        kf.to_string()
    }
}

/// Permission flags as the CLI collects them.
#[derive(Debug, Clone, Default)]
pub struct ContextArgs {
    pub share: Vec<String>,
    pub unshare: Vec<String>,
    pub socket: Vec<String>,
    pub nosocket: Vec<String>,
    pub device: Vec<String>,
    pub nodevice: Vec<String>,
    pub allow: Vec<String>,
    pub disallow: Vec<String>,
    pub filesystem: Vec<String>,
    pub nofilesystem: Vec<String>,
    pub persist: Vec<String>,
    pub env: Vec<String>,
    pub unset_env: Vec<String>,
    pub own_name: Vec<String>,
    pub talk_name: Vec<String>,
    pub see_name: Vec<String>,
    pub no_talk_name: Vec<String>,
    pub system_own_name: Vec<String>,
    pub system_talk_name: Vec<String>,
    pub system_no_talk_name: Vec<String>,
}

impl ContextArgs {
    pub fn is_empty(&self) -> bool {
        let mut c = Context::default();
        // Empty args change nothing; cheap to check by applying.
        c.apply_args(self).is_ok() && c.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(text: &str) -> Result<Context> {
        Context::from_keyfile(&KeyFile::parse(text).expect("keyfile"))
    }

    #[test]
    fn parses_flatpak_context() {
        let c = ctx("[Context]\nshared=network;ipc;\nsockets=x11;wayland;!pulseaudio;\ndevices=dri;\nfilesystems=xdg-download:ro;home;~/Games:create;/opt/data;!host;\npersistent=.mozilla;\n\n[Session Bus Policy]\norg.freedesktop.Notifications=talk\n\n[Environment]\nFOO=bar baz\n").unwrap();
        assert!(c.has_share("network") && c.has_share("ipc"));
        assert!(c.has_socket("x11") && !c.has_socket("pulseaudio"));
        assert_eq!(c.sockets.get("pulseaudio"), Some(&false));
        assert_eq!(c.filesystems.get("xdg-download"), Some(&FsMode::ReadOnly));
        assert_eq!(c.filesystems.get("home"), Some(&FsMode::ReadWrite));
        assert_eq!(c.filesystems.get("~/Games"), Some(&FsMode::Create));
        assert_eq!(c.filesystems.get("/opt/data"), Some(&FsMode::ReadWrite));
        assert_eq!(c.filesystems.get("host"), Some(&FsMode::Denied));
        assert!(c.persistent.contains(".mozilla"));
        assert_eq!(c.env.get("FOO"), Some(&Some("bar baz".to_string())));
        assert_eq!(
            c.session_bus.get("org.freedesktop.Notifications"),
            Some(&BusPolicy::Talk)
        );
    }

    #[test]
    fn unknown_permissions_are_refused() {
        for bad in [
            "[Context]\nshared=telepathy;\n",
            "[Context]\nsockets=x12;\n",
            "[Context]\ndevices=gpu;\n",
            "[Context]\nfilesystems=xdg-nowhere;\n",
            "[Context]\nfilesystems=relative/path;\n",
            "[Context]\nfilesystems=~/../etc;\n",
            "[Context]\npersistent=/abs;\n",
            "[Session Bus Policy]\norg.foo.Bar=shout\n",
            "[Session Bus Policy]\nnodots=talk\n",
        ] {
            let e = ctx(bad).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
        let e = ctx("[Context]\nshared=telepathy;\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("telepathy") && e.contains("network, ipc"), "{e}");
    }

    #[test]
    fn conditional_permissions_are_ignored() {
        let c = ctx("[Context]\nsockets=if:wayland:has-wayland;x11;\n").unwrap();
        assert_eq!(c.sockets.len(), 1);
        // Control characters in a variable name are refused (found by fuzzing).
        assert!(ctx("[Environment]\n\u{1}Op=x\n").is_err());
        // A variable called Encoding must not end up in the first group.
        let enc = ctx("[Context]\nshared=network;\n[Environment]\nEncoding=de\n").unwrap();
        let mut only_env = enc.clone();
        only_env.shared.clear();
        assert_eq!(ctx(&only_env.to_keyfile_text()).unwrap(), only_env);
        assert!(ctx("[Context]\nfilesystems=/a\x1d;\n").is_err());
        let root = ctx("[Context]\nfilesystems=!//;~//;\n").unwrap();
        assert_eq!(ctx(&root.to_keyfile_text()).unwrap(), root);
        let colon = ctx("[Context]\nfilesystems=~/G:create:rw;/x:ro:ro;\n").unwrap();
        assert_eq!(ctx(&colon.to_keyfile_text()).unwrap(), colon);
        assert_eq!(c.sockets.len(), 1);
    }

    #[test]
    fn merge_and_negation() {
        let mut app = ctx("[Context]\nshared=network;\nfilesystems=home;host;\n").unwrap();
        let ov = ctx("[Context]\nshared=!network;\nfilesystems=!home;\n").unwrap();
        app.merge(&ov);
        assert!(!app.has_share("network"));
        assert_eq!(app.filesystems.get("home"), Some(&FsMode::Denied));
        let reset = ctx("[Context]\nfilesystems=!host-reset;\n").unwrap();
        app.merge(&reset);
        assert!(!app.filesystems.contains_key("host"));
    }

    #[test]
    fn roundtrip_keyfile() {
        let text = "[Context]\nshared=network;\nsockets=!x11;wayland;\nfilesystems=/srv:ro;xdg-download;\n\n[Environment]\nA=1\n";
        let c = ctx(text).unwrap();
        let again = ctx(&c.to_keyfile_text()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn args() {
        let mut c = Context::default();
        c.apply_args(&ContextArgs {
            share: vec!["network".into()],
            nosocket: vec!["x11".into()],
            filesystem: vec!["home:ro".into()],
            env: vec!["K=V=W".into()],
            talk_name: vec!["org.a.B".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(c.has_share("network"));
        assert_eq!(c.env.get("K"), Some(&Some("V=W".into())));
        assert_eq!(c.filesystems.get("home"), Some(&FsMode::ReadOnly));
        let err = c
            .apply_args(&ContextArgs {
                socket: vec!["smoke-signal".into()],
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("smoke-signal"));
    }
}
