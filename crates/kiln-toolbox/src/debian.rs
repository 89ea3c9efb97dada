//! The default image: a Debian root filesystem built by `mmdebstrap` from
//! the machine's configured Debian mirror, cached under a key of its inputs.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Packages on top of `--variant=apt` (essential + apt).
pub const DEFAULT_PACKAGES: &[&str] = &[
    "sudo",
    "locales",
    "bash-completion",
    "ca-certificates",
    "less",
    "procps",
    "vim-tiny",
    "passwd",
    "iproute2",
    "curl",
];

/// Bumped whenever the build recipe changes, so cached images are rebuilt.
const RECIPE: u32 = 1;

const CODENAMES: &[(&str, &str)] = &[
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("sid", "unstable"),
];

/// The version Toolbox-style default names use: `debian-toolbox-12`.
pub fn release_version(release: &str) -> &str {
    CODENAMES
        .iter()
        .find(|(c, _)| *c == release)
        .map(|(_, v)| *v)
        .unwrap_or(release)
}

/// What the default image is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    pub release: String,
    /// Full `deb URI SUITE COMPONENTS` lines.
    pub mirrors: Vec<String>,
    pub packages: Vec<String>,
    /// Locales to generate, e.g. `en_US.UTF-8`.
    pub locales: Vec<String>,
}

impl Recipe {
    /// The recipe for `release`, with mirrors from the host's apt sources.
    pub fn new(release: &str, extra_locale: Option<&str>) -> Result<Self> {
        if !release
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || release.is_empty()
        {
            return Err(Error::Unsupported(format!("Debian release {release:?}")));
        }
        let sources = read_sources(Path::new("/etc/apt"));
        let mut locales = vec!["en_US.UTF-8".to_string()];
        if let Some(l) = extra_locale {
            let l = l.split('@').next().unwrap_or(l);
            let ok = l.ends_with(".UTF-8")
                && !l.starts_with("C.")
                && l.len() < 40
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if ok && !locales.iter().any(|x| x == l) {
                locales.push(l.to_string());
            }
        }
        Ok(Self {
            release: release.into(),
            mirrors: mirrors_for(release, &sources),
            packages: DEFAULT_PACKAGES.iter().map(|s| s.to_string()).collect(),
            locales,
        })
    }

    /// Image id: `debian-RELEASE-` + a hash of the inputs and id mapping.
    pub fn image_id(&self, idmap_fingerprint: &str) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "recipe={RECIPE}\nrelease={}\nmirrors={:?}\npackages={:?}\nlocales={:?}\nidmap={idmap_fingerprint}\narch={}\n",
            self.release,
            self.mirrors,
            self.packages,
            self.locales,
            std::env::consts::ARCH
        ));
        format!(
            "debian-{}-{}",
            self.release,
            &hex::encode(h.finalize())[..12]
        )
    }

    /// The mmdebstrap arguments that write a tarball to stdout.
    pub fn mmdebstrap_args(&self) -> Vec<String> {
        let gen: String = self
            .locales
            .iter()
            .map(|l| format!("echo '{l} UTF-8' >> \"$1/etc/locale.gen\"; "))
            .collect();
        let mut args = vec![
            "--variant=apt".to_string(),
            "--format=tar".to_string(),
            format!("--include={}", self.packages.join(",")),
            // Keep the package lists so `sudo apt-get install` works at once.
            "--skip=cleanup/apt/lists".to_string(),
            format!("--customize-hook={gen}chroot \"$1\" locale-gen >/dev/null"),
            self.release.clone(),
            "-".to_string(),
        ];
        args.extend(self.mirrors.iter().cloned());
        args
    }
}

/// One `deb` source: URI and suites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    uri: String,
    suites: Vec<String>,
}

/// Read `sources.list`, `sources.list.d/*.list` and `*.sources` (deb822).
pub(crate) fn read_sources(apt: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(apt.join("sources.list")) {
        out.extend(parse_one_line(&text));
    }
    if let Ok(rd) = std::fs::read_dir(apt.join("sources.list.d")) {
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            match f.extension().and_then(|e| e.to_str()) {
                Some("list") => out.extend(parse_one_line(&text)),
                Some("sources") => out.extend(parse_deb822(&text)),
                _ => {}
            }
        }
    }
    out
}

fn parse_one_line(text: &str) -> Vec<Source> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let mut words = line.split_whitespace().peekable();
            if words.next()? != "deb" {
                return None;
            }
            if words.peek()?.starts_with('[') {
                // Skip options: "[a=b c=d]".
                for w in words.by_ref() {
                    if w.ends_with(']') {
                        break;
                    }
                }
            }
            let uri = words.next()?.to_string();
            let suite = words.next()?.to_string();
            Some(Source {
                uri,
                suites: vec![suite],
            })
        })
        .collect()
}

fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields = std::collections::HashMap::new();
        for line in stanza.lines() {
            if line.starts_with('#') || line.starts_with(' ') || line.starts_with('\t') {
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let words = |k: &str| -> Vec<String> {
            fields
                .get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        if !words("types").iter().any(|t| t == "deb")
            || fields.get("enabled").is_some_and(|v| v == "no")
        {
            continue;
        }
        for uri in words("uris") {
            out.push(Source {
                uri,
                suites: words("suites"),
            });
        }
    }
    out
}

fn is_debian_suite(suite: &str) -> bool {
    let base = suite.split('-').next().unwrap_or(suite);
    CODENAMES.iter().any(|(c, _)| *c == base)
        || ["stable", "testing", "unstable", "oldstable"].contains(&base)
}

/// Mirror lines for `release`: the host's entries for it (main, -updates,
/// -security) when it has them, else the host's Debian mirrors with the
/// suite replaced, else deb.debian.org.
pub(crate) fn mirrors_for(release: &str, sources: &[Source]) -> Vec<String> {
    let wanted = [
        release.to_string(),
        format!("{release}-updates"),
        format!("{release}-security"),
    ];
    let mut lines = Vec::new();
    for w in &wanted {
        if let Some(s) = sources.iter().find(|s| s.suites.iter().any(|x| x == w)) {
            lines.push(format!("deb {} {w} main", s.uri));
        }
    }
    if lines
        .iter()
        .any(|l| l.split_whitespace().nth(2) == Some(release))
    {
        return lines;
    }
    let mut lines = Vec::new();
    let main = sources.iter().find(|s| {
        s.suites
            .iter()
            .any(|x| is_debian_suite(x) && !x.contains('-'))
    });
    let security = sources.iter().find(|s| {
        s.suites
            .iter()
            .any(|x| x.ends_with("-security") && is_debian_suite(x))
    });
    let uri = main.map_or("http://deb.debian.org/debian", |s| s.uri.as_str());
    lines.push(format!("deb {uri} {release} main"));
    if release != "sid" && release != "unstable" {
        lines.push(format!("deb {uri} {release}-updates main"));
        if let Some(s) = security {
            lines.push(format!("deb {} {release}-security main", s.uri));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";

    #[test]
    fn host_mirrors_for_the_host_release() {
        let mut s = parse_deb822(DEB822);
        s.extend(parse_one_line(
            "deb [arch=amd64] https://other.example/apt cloud-sdk-bookworm main\n",
        ));
        assert_eq!(
            mirrors_for("bookworm", &s),
            vec![
                "deb http://mirror.example/debian bookworm main",
                "deb http://mirror.example/debian bookworm-updates main",
                "deb http://mirror.example/debian-security bookworm-security main",
            ]
        );
        // Another release on the same mirrors.
        assert_eq!(
            mirrors_for("trixie", &s),
            vec![
                "deb http://mirror.example/debian trixie main",
                "deb http://mirror.example/debian trixie-updates main",
                "deb http://mirror.example/debian-security trixie-security main",
            ]
        );
        assert_eq!(
            mirrors_for("bookworm", &[]),
            vec![
                "deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
            ]
        );
    }

    #[test]
    fn image_id_depends_on_inputs() {
        let r = Recipe {
            release: "bookworm".into(),
            mirrors: vec!["deb http://a/debian bookworm main".into()],
            packages: vec!["sudo".into()],
            locales: vec!["en_US.UTF-8".into()],
        };
        let mut r2 = r.clone();
        r2.mirrors[0] = "deb http://b/debian bookworm main".into();
        assert_ne!(r.image_id("host"), r2.image_id("host"));
        assert_ne!(r.image_id("host"), r.image_id("u0:1:2"));
        assert!(r.image_id("host").starts_with("debian-bookworm-"));
        assert_eq!(release_version("bookworm"), "12");
    }
}
