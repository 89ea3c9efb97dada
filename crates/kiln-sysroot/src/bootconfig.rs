//! Boot Loader Specification entries (`/boot/loader.N/entries/*.conf`) as
//! libostree reads and writes them: `key value` lines, the known keys
//! written first in a fixed order, extra `initrd` lines kept as overlays.

/// The keys ostree writes first, in this order.
const ORDER: [&str; 6] = [
    "title",
    "version",
    "options",
    "devicetree",
    "linux",
    "initrd",
];

/// One BLS entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootEntry {
    keys: Vec<(String, String)>,
    overlay_initrds: Vec<String>,
}

impl BootEntry {
    /// Parse an entry. Lines that do not start with a letter, or have no
    /// separator, are ignored (as libostree does).
    pub fn parse(text: &str) -> BootEntry {
        let mut e = BootEntry::default();
        for line in text.split('\n') {
            if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
                continue;
            }
            let Some(pos) = line.find([' ', '\t']) else {
                continue;
            };
            let (k, v) = (&line[..pos], &line[pos + 1..]);
            if k == "initrd" && e.get("initrd").is_some() {
                e.overlay_initrds.push(v.to_string());
            } else {
                e.set(k, v);
            }
        }
        e
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Set a key, keeping the position of an existing one.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.keys.push((key.to_string(), value.to_string())),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.keys.retain(|(k, _)| k != key);
    }

    /// Extra initrds (all `initrd` lines after the first).
    pub fn overlay_initrds(&self) -> &[String] {
        &self.overlay_initrds
    }

    /// Keep only the kernel arguments (a fresh entry for a new deployment).
    pub fn from_options(options: Option<&str>) -> BootEntry {
        let mut e = BootEntry::default();
        if let Some(o) = options {
            e.set("options", o);
        }
        e
    }

    /// The file text, as `ostree_bootconfig_parser_write` lays it out.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for key in ORDER {
            if let Some(v) = self.get(key) {
                out.push_str(&format!("{key} {v}\n"));
            }
        }
        if self.get("initrd").is_some() {
            for i in &self.overlay_initrds {
                out.push_str(&format!("initrd {i}\n"));
            }
        }
        for (k, v) in &self.keys {
            if !ORDER.contains(&k.as_str()) {
                out.push_str(&format!("{k} {v}\n"));
            }
        }
        out
    }

    /// The value of the `ostree=` kernel argument.
    pub fn ostree_karg(&self) -> Option<&str> {
        self.get("options")?
            .split(' ')
            .find_map(|a| a.strip_prefix("ostree="))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_in_ostree_order() {
        let text = "linux /vmlinuz\nfoo bar\ntitle T (ostree:0)\noptions a=b ostree=/ostree/boot.1/os/c/0\nversion 2\ninitrd /i\ninitrd /o\n";
        let e = BootEntry::parse(text);
        assert_eq!(e.ostree_karg(), Some("/ostree/boot.1/os/c/0"));
        assert_eq!(
            e.to_text(),
            "title T (ostree:0)\nversion 2\noptions a=b ostree=/ostree/boot.1/os/c/0\nlinux /vmlinuz\ninitrd /i\ninitrd /o\nfoo bar\n"
        );
    }

    #[test]
    fn ignores_junk() {
        let e = BootEntry::parse("# comment\n\n  indented x\nnoval\n1abc x\n");
        assert_eq!(e.to_text(), "");
    }
}
