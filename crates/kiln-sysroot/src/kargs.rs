//! Kernel arguments with libostree's semantics: an ordered list of
//! `key[=value]`; `replace` keeps the position of the first entry with that
//! key, `append` always adds, `delete` removes one value.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelArgs {
    args: Vec<(String, Option<String>)>,
}

fn split(arg: &str) -> (String, Option<String>) {
    match arg.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (arg.to_string(), None),
    }
}

impl KernelArgs {
    pub fn new() -> KernelArgs {
        KernelArgs::default()
    }

    /// Split on single spaces, like `ostree_kernel_args_from_string`.
    pub fn parse(options: &str) -> KernelArgs {
        let mut k = KernelArgs::new();
        // g_strsplit("") yields no element at all.
        if !options.is_empty() {
            k.append_all(options.split(' '));
        }
        k
    }

    pub fn append(&mut self, arg: &str) {
        self.args.push(split(arg));
    }

    pub fn append_all<'a>(&mut self, args: impl IntoIterator<Item = &'a str>) {
        for a in args {
            self.append(a);
        }
    }

    /// Replace every `key=` entry by this one, at the first one's position;
    /// append when the key is new.
    pub fn replace(&mut self, arg: &str) {
        let (key, val) = split(arg);
        match self.args.iter().position(|(k, _)| *k == key) {
            Some(pos) => {
                self.args.retain(|(k, _)| *k != key);
                self.args.insert(pos, (key, val));
            }
            None => self.args.push((key, val)),
        }
    }

    pub fn replace_all<'a>(&mut self, args: impl IntoIterator<Item = &'a str>) {
        for a in args {
            self.replace(a);
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        let (key, _) = split(key);
        self.args.iter().any(|(k, _)| *k == key)
    }

    /// Append unless an argument with the same key exists (what ostree's
    /// `append_if_missing` does).
    pub fn append_if_missing(&mut self, arg: &str) {
        if !self.contains_key(arg) {
            self.append(arg);
        }
    }

    /// Delete one argument: `key` when it has a single value, or `key=value`.
    pub fn delete(&mut self, arg: &str) -> Result<()> {
        let (key, val) = split(arg);
        let positions: Vec<usize> = self
            .args
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| *k == key)
            .map(|(i, _)| i)
            .collect();
        if positions.is_empty() {
            return Err(Error::Kargs(format!("No key '{key}' found")));
        }
        if positions.len() == 1 {
            let i = positions[0];
            if val.is_some() && self.args[i].1 != val {
                return Err(Error::Kargs(format!(
                    "No karg '{key}={}' found",
                    val.unwrap_or_default()
                )));
            }
            self.args.remove(i);
            return Ok(());
        }
        match positions.iter().find(|&&i| self.args[i].1 == val) {
            Some(&i) => {
                self.args.remove(i);
                Ok(())
            }
            None if val.is_none() => Err(Error::Kargs(format!(
                "Multiple values for key '{arg}' found"
            ))),
            None => Err(Error::Kargs(format!("No karg '{arg}' found"))),
        }
    }

    /// Delete every argument with this key; true if one was there.
    pub fn delete_key(&mut self, key: &str) -> bool {
        let n = self.args.len();
        self.args.retain(|(k, _)| k != key);
        n != self.args.len()
    }

    pub fn get_last(&self, key: &str) -> Option<Option<&str>> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

impl std::fmt::Display for KernelArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_vec().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_position() {
        let mut k = KernelArgs::parse("root=LABEL=x ostree=/a foo=bar");
        k.replace("ostree=/b");
        assert_eq!(k.to_string(), "root=LABEL=x ostree=/b foo=bar");
        k.replace("quiet");
        assert_eq!(k.to_string(), "root=LABEL=x ostree=/b foo=bar quiet");
    }

    #[test]
    fn delete_rules() {
        let mut k = KernelArgs::parse("console=ttyS0 console=tty0 quiet");
        assert!(k.delete("console").is_err());
        k.delete("console=tty0").unwrap();
        k.delete("quiet").unwrap();
        assert_eq!(k.to_string(), "console=ttyS0");
        assert!(k.delete("nope").is_err());
        assert!(k.delete("console=x").is_err());
    }

    #[test]
    fn append_if_missing_by_key() {
        let mut k = KernelArgs::parse("foo=bar");
        k.append_if_missing("foo=baz");
        k.append_if_missing("x=1");
        assert_eq!(k.to_string(), "foo=bar x=1");
    }
}
