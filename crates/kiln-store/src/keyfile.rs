//! GLib key files (`GKeyFile`): the repo `config`, deployment `.origin`
//! files, flatpak `metadata` and `overrides`.
//!
//! Reading and writing follow GLib 2.74 loaded with `KEEP_COMMENTS |
//! KEEP_TRANSLATIONS`: comments and blank lines stay where they were, keys
//! keep their order, and [`KeyFile`]'s `Display` writes what
//! `g_key_file_to_data` writes (`[group]`, `key=value`, a blank line before
//! every group that does not already follow one, whitespace around `=`
//! dropped). Where GLib's behaviour is accidental, kiln differs:
//! - a new key goes after the last key of its group, not after the
//!   comments and blank lines that close the group (those introduce the
//!   next group), so setting a key in a file without comments gives what
//!   `ostree` writes;
//! - [`KeyFile::remove_key`] removes every line of a repeated key;
//! - every carriage return at the end of a line is dropped (GLib drops one
//!   before a newline), so that writing and reading again is stable.
//!
//! As in GLib, a repeated group continues the first one, and a repeated
//! key's last value wins.

use std::fmt;

/// A malformed key file or value. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("line {line}: Key file does not start with a group")]
    NoGroup { line: usize },
    #[error("line {line}: Key file contains line \u{201c}{text}\u{201d} which is not a key-value pair, group, or comment")]
    InvalidLine { line: usize, text: String },
    #[error("line {line}: Invalid group name: {name}")]
    InvalidGroupName { line: usize, name: String },
    #[error("line {line}: Invalid key name: {name}")]
    InvalidKeyName { line: usize, name: String },
    #[error("line {line}: Key file contains unsupported encoding \u{201c}{encoding}\u{201d}")]
    UnsupportedEncoding { line: usize, encoding: String },
    #[error("line {line}: Key file contains a NUL byte")]
    NulByte { line: usize },
    /// A value that is not what was asked for (a boolean, a string with
    /// valid escapes). `line` is 0 for a value set by the program.
    #[error(
        "{}key \u{201c}{key}\u{201d} in group \u{201c}{group}\u{201d} has a value that cannot be interpreted: {why}",
        at_line(*.line)
    )]
    InvalidValue {
        line: usize,
        group: String,
        key: String,
        why: String,
    },
    #[error("invalid group name: {0:?}")]
    BadGroupName(String),
    #[error("invalid key name: {0:?}")]
    BadKeyName(String),
}

fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}

/// A parsed key file that writes back what it read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFile {
    /// Comment and blank lines before the first group.
    preamble: Vec<String>,
    groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A comment or blank line, exactly as read.
    Comment(String),
    Pair(Pair),
}

#[derive(Debug, Clone)]
struct Pair {
    key: String,
    /// The value as written in the file, escapes and all.
    raw: String,
    /// `raw` unescaped (an invalid escape is kept as written).
    value: String,
    /// The first invalid escape sequence in `raw`, if any.
    bad_escape: Option<String>,
    /// Where it was read, or 0 when set by the program.
    line: usize,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.raw == other.raw
    }
}
impl Eq for Pair {}

impl Pair {
    fn new(key: &str, raw: String, line: usize) -> Pair {
        let (pieces, bad_escape) = unescape(&raw, false);
        let value = pieces.into_iter().next().unwrap_or_default();
        Pair {
            key: key.to_string(),
            raw,
            value,
            bad_escape,
            line,
        }
    }
}

/// `g_ascii_isspace`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

impl KeyFile {
    pub fn new() -> KeyFile {
        KeyFile::default()
    }

    /// Parse key-file text, keeping comments, blank lines and order.
    pub fn parse(text: &str) -> Result<KeyFile, KeyFileError> {
        let mut kf = KeyFile::default();
        let mut current: Option<usize> = None;
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        for (i, line) in lines.into_iter().enumerate() {
            let n = i + 1;
            let line = line.trim_end_matches('\r');
            if line.contains('\0') {
                return Err(KeyFileError::NulByte { line: n });
            }
            let start = line.trim_start_matches(is_space);
            if start.is_empty() || start.starts_with('#') {
                let comment = Entry::Comment(line.to_string());
                match current {
                    Some(g) => kf.groups[g].entries.push(comment),
                    None => kf.preamble.push(line.to_string()),
                }
            } else if let Some(name) = group_header(start) {
                if !is_group_name(name) {
                    return Err(KeyFileError::InvalidGroupName {
                        line: n,
                        name: name.to_string(),
                    });
                }
                current = Some(kf.group_index_or_add(name));
            } else if let Some(eq) = start.find('=').filter(|&eq| eq > 0) {
                let g = current.ok_or(KeyFileError::NoGroup { line: n })?;
                let key = start[..eq].trim_end_matches(is_space);
                if !is_key_name(key) {
                    return Err(KeyFileError::InvalidKeyName {
                        line: n,
                        name: key.to_string(),
                    });
                }
                let raw = start[eq + 1..].trim_start_matches(is_space);
                if g == 0 && key == "Encoding" && !raw.eq_ignore_ascii_case("UTF-8") {
                    return Err(KeyFileError::UnsupportedEncoding {
                        line: n,
                        encoding: raw.to_string(),
                    });
                }
                kf.groups[g]
                    .entries
                    .push(Entry::Pair(Pair::new(key, raw.to_string(), n)));
            } else {
                return Err(KeyFileError::InvalidLine {
                    line: n,
                    text: line.to_string(),
                });
            }
        }
        Ok(kf)
    }

    fn group_index_or_add(&mut self, name: &str) -> usize {
        match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                self.groups.len() - 1
            }
        }
    }

    fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The last line that sets `key` in `group` (the one GLib reads).
    fn pair(&self, group: &str, key: &str) -> Option<&Pair> {
        self.group(group)?
            .entries
            .iter()
            .rev()
            .find_map(|e| match e {
                Entry::Pair(p) if p.key == key => Some(p),
                _ => None,
            })
    }

    /// Group names, in file order.
    pub fn groups(&self) -> impl Iterator<Item = &str> + '_ {
        self.groups.iter().map(|g| g.name.as_str())
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.group(group).is_some()
    }

    pub fn has_key(&self, group: &str, key: &str) -> bool {
        self.pair(group, key).is_some()
    }

    /// Keys of `group` in file order, each once (translations such as
    /// `Name[de]` are keys of their own).
    pub fn keys(&self, group: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in self
            .group(group)
            .map(|g| g.entries.as_slice())
            .unwrap_or_default()
        {
            if let Entry::Pair(p) = e {
                if !out.contains(&p.key.as_str()) {
                    out.push(&p.key);
                }
            }
        }
        out
    }

    /// The value as written in the file, escapes included
    /// (`g_key_file_get_value`).
    pub fn get_raw(&self, group: &str, key: &str) -> Option<&str> {
        self.pair(group, key).map(|p| p.raw.as_str())
    }

    /// The value with `\s \n \t \r \\` unescaped (`g_key_file_get_string`).
    /// An invalid escape, which GLib refuses, is returned as written; use
    /// [`KeyFile::get_checked`] to refuse it.
    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        self.pair(group, key).map(|p| p.value.as_str())
    }

    /// Like [`KeyFile::get`], but an invalid escape sequence is an error.
    pub fn get_checked(&self, group: &str, key: &str) -> Result<Option<&str>, KeyFileError> {
        let Some(p) = self.pair(group, key) else {
            return Ok(None);
        };
        match &p.bad_escape {
            None => Ok(Some(&p.value)),
            Some(seq) => Err(invalid(
                p,
                group,
                format!("invalid escape sequence \u{201c}{seq}\u{201d}"),
            )),
        }
    }

    /// A boolean: `true`/`1` or `false`/`0`, trailing blanks ignored
    /// (`g_key_file_get_boolean`).
    pub fn get_bool(&self, group: &str, key: &str) -> Result<Option<bool>, KeyFileError> {
        let Some(p) = self.pair(group, key) else {
            return Ok(None);
        };
        match p.raw.trim_end_matches(is_space) {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(invalid(
                p,
                group,
                format!("\u{201c}{}\u{201d} is not a boolean", p.raw),
            )),
        }
    }

    /// A `;`-separated list; `\;` is a literal `;` and a final `;` is
    /// optional (`g_key_file_get_string_list`).
    pub fn get_list(&self, group: &str, key: &str) -> Option<Vec<String>> {
        self.pair(group, key).map(|p| unescape(&p.raw, true).0)
    }

    /// The translation of `key` for `locale` (such as `de_DE.UTF-8`): the
    /// most specific of `key[de_DE.UTF-8]`, `key[de_DE]`, `key[de.UTF-8]`,
    /// `key[de]`, … that exists, else `key` itself
    /// (`g_key_file_get_locale_string`).
    pub fn get_locale(&self, group: &str, key: &str, locale: &str) -> Option<&str> {
        locale_variants(locale)
            .iter()
            .find_map(|l| self.get(group, &format!("{key}[{l}]")))
            .or_else(|| self.get(group, key))
    }

    /// Set `key` in `group` to `value`, escaped as `g_key_file_set_string`
    /// does. The group is added at the end if missing; an existing key is
    /// replaced where it stands; a new key goes after the group's last key.
    /// Invalid group or key names are ignored, as GLib ignores them; use
    /// [`KeyFile::try_set`] to get an error instead.
    pub fn set(&mut self, group: &str, key: &str, value: &str) {
        let _ = self.try_set(group, key, value);
    }

    /// [`KeyFile::set`], refusing invalid group and key names.
    pub fn try_set(&mut self, group: &str, key: &str, value: &str) -> Result<(), KeyFileError> {
        self.set_raw(group, key, escape(value, false))
    }

    /// Set a boolean (`true` or `false`).
    pub fn set_bool(&mut self, group: &str, key: &str, value: bool) -> Result<(), KeyFileError> {
        self.set_raw(group, key, value.to_string())
    }

    /// Set a list, written as `a;b;c;` (`g_key_file_set_string_list`).
    pub fn set_list<S: AsRef<str>>(
        &mut self,
        group: &str,
        key: &str,
        items: &[S],
    ) -> Result<(), KeyFileError> {
        let mut raw = String::new();
        for item in items {
            raw.push_str(&escape(item.as_ref(), true));
            raw.push(';');
        }
        self.set_raw(group, key, raw)
    }

    fn set_raw(&mut self, group: &str, key: &str, raw: String) -> Result<(), KeyFileError> {
        if !is_group_name(group) {
            return Err(KeyFileError::BadGroupName(group.to_string()));
        }
        if !is_writable_key_name(key) {
            return Err(KeyFileError::BadKeyName(key.to_string()));
        }
        let g = self.group_index_or_add(group);
        let entries = &mut self.groups[g].entries;
        let existing = entries.iter_mut().rev().find_map(|e| match e {
            Entry::Pair(p) if p.key == key => Some(p),
            _ => None,
        });
        match existing {
            Some(p) => *p = Pair::new(key, raw, 0),
            None => {
                let at = entries
                    .iter()
                    .rposition(|e| matches!(e, Entry::Pair(_)))
                    .map_or(0, |i| i + 1);
                entries.insert(at, Entry::Pair(Pair::new(key, raw, 0)));
            }
        }
        Ok(())
    }

    /// Remove every line setting `key` in `group`; false if there was none.
    pub fn remove_key(&mut self, group: &str, key: &str) -> bool {
        let Some(g) = self.groups.iter_mut().find(|g| g.name == group) else {
            return false;
        };
        let before = g.entries.len();
        g.entries
            .retain(|e| !matches!(e, Entry::Pair(p) if p.key == key));
        g.entries.len() != before
    }

    /// Remove `group` with its keys and the comments inside it.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|g| g.name != group);
        self.groups.len() != before
    }
}

fn invalid(p: &Pair, group: &str, why: String) -> KeyFileError {
    KeyFileError::InvalidValue {
        line: p.line,
        group: group.to_string(),
        key: p.key.clone(),
        why,
    }
}

/// `g_key_file_to_data`.
impl fmt::Display for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for line in &self.preamble {
            out.push_str(line);
            out.push('\n');
        }
        for g in &self.groups {
            // Groups are separated by at least one blank line.
            if out.len() >= 2 && out.as_bytes()[out.len() - 2] != b'\n' {
                out.push('\n');
            }
            out.push('[');
            out.push_str(&g.name);
            out.push_str("]\n");
            for e in &g.entries {
                match e {
                    Entry::Comment(line) => out.push_str(line),
                    Entry::Pair(p) => {
                        out.push_str(&p.key);
                        out.push('=');
                        out.push_str(&p.raw);
                    }
                }
                out.push('\n');
            }
        }
        f.write_str(&out)
    }
}

/// The name of a `[group]` line: text up to the first `]`, followed only
/// by blanks.
fn group_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (name, after) = rest.split_once(']')?;
    after.chars().all(|c| c == ' ' || c == '\t').then_some(name)
}

/// `g_key_file_is_group_name`: not empty, no brackets or control characters.
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '[' || c == ']' || c.is_ascii_control())
}

/// `g_key_file_is_key_name`: no `=`, brackets only around a locale suffix
/// (`Name[de_DE.UTF-8@euro]`), no space at either end.
fn is_key_name(key: &str) -> bool {
    let base_len = key.find(['=', '[', ']']).unwrap_or(key.len());
    let base = &key[..base_len];
    if base.is_empty() || base.starts_with(' ') || base.ends_with(' ') {
        return false;
    }
    let rest = &key[base_len..];
    if rest.is_empty() {
        return true;
    }
    let Some(locale) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    locale
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// A key that reads back as itself once written: a GLib key name that
/// also does not start a comment or hold control characters or blanks at
/// its ends.
fn is_writable_key_name(key: &str) -> bool {
    is_key_name(key)
        && !key.starts_with('#')
        && !key.chars().any(|c| c.is_control())
        && !key.starts_with(is_space)
        && !key.ends_with(is_space)
}

/// `g_key_file_parse_string_as_value`: blanks at the start and line
/// breaks and backslashes anywhere are escaped; in list items, `;` too.
/// Text after a NUL is dropped, as C would.
fn escape(value: &str, list_item: bool) -> String {
    let value = value.split('\0').next().unwrap_or("");
    let mut out = String::with_capacity(value.len());
    let mut leading = true;
    for c in value.chars() {
        match c {
            ' ' if leading => out.push_str("\\s"),
            '\t' if leading => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            ';' if list_item => out.push_str("\\;"),
            c => {
                out.push(c);
                leading = false;
            }
        }
    }
    out
}

/// `g_key_file_parse_value_as_string`: unescape `raw`, split at unescaped
/// `;` when `list` (an empty last item is dropped). Returns the pieces and
/// the first invalid escape sequence, which is kept as written.
fn unescape(raw: &str, list: bool) -> (Vec<String>, Option<String>) {
    let mut pieces = Vec::new();
    let mut cur = String::with_capacity(raw.len());
    let mut bad = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('s') => cur.push(' '),
                Some('n') => cur.push('\n'),
                Some('t') => cur.push('\t'),
                Some('r') => cur.push('\r'),
                Some('\\') => cur.push('\\'),
                Some(';') if list => cur.push(';'),
                Some(other) => {
                    cur.push('\\');
                    cur.push(other);
                    bad.get_or_insert_with(|| format!("\\{other}"));
                }
                None => {
                    cur.push('\\');
                    bad.get_or_insert_with(|| "\\".to_string());
                }
            },
            ';' if list => pieces.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !list || !cur.is_empty() {
        pieces.push(cur);
    }
    (pieces, bad)
}

/// `g_get_locale_variants`: `lang_COUNTRY.CODESET@MODIFIER` and the
/// variants with parts left out, most specific first.
fn locale_variants(locale: &str) -> Vec<String> {
    let uscore = locale.find('_');
    let dot = locale[uscore.unwrap_or(0)..]
        .find('.')
        .map(|i| i + uscore.unwrap_or(0));
    let at_from = dot.or(uscore).unwrap_or(0);
    let at = locale[at_from..].find('@').map(|i| i + at_from);
    let modifier = at.map(|a| &locale[a..]);
    let at = at.unwrap_or(locale.len());
    let codeset = dot.map(|d| &locale[d..at]);
    let dot = dot.unwrap_or(at);
    let territory = uscore.map(|u| &locale[u..dot]);
    let lang = &locale[..uscore.unwrap_or(dot)];
    // GLib's order: every subset of the parts present, from all down to
    // none, counting codeset as 1, territory as 2 and modifier as 4.
    let mut out = Vec::new();
    for mask in (0..8u8).rev() {
        let parts = [(1, codeset), (2, territory), (4, modifier)];
        if parts.iter().any(|(bit, p)| mask & bit != 0 && p.is_none()) {
            continue;
        }
        let mut v = lang.to_string();
        for (bit, part) in [(2, territory), (1, codeset), (4, modifier)] {
            if mask & bit != 0 {
                v.push_str(part.unwrap_or(""));
            }
        }
        out.push(v);
    }
    out
}

#[cfg(test)]
#[path = "keyfile_tests.rs"]
mod tests;
