//! GLib keyfile (minimal interim version; the full order-preserving parser
//! replaces this).

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct KeyFileError {
    pub line: usize,
    pub why: String,
}

#[derive(Debug, Clone, Default)]
pub struct KeyFile {
    groups: Vec<(String, Vec<(String, String)>)>,
}

impl KeyFile {
    pub fn parse(text: &str) -> Result<KeyFile, KeyFileError> {
        let mut kf = KeyFile::default();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(g) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                kf.groups.push((g.to_string(), Vec::new()));
            } else if let Some((k, v)) = l.split_once('=') {
                let g = kf.groups.last_mut().ok_or(KeyFileError {
                    line: i + 1,
                    why: "key outside group".into(),
                })?;
                g.1.push((k.trim().to_string(), v.trim().to_string()));
            } else {
                return Err(KeyFileError {
                    line: i + 1,
                    why: "not a key=value".into(),
                });
            }
        }
        Ok(kf)
    }

    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.0 == group)?
            .1
            .iter()
            .rev()
            .find(|k| k.0 == key)
            .map(|k| k.1.as_str())
    }

    pub fn remove_key(&mut self, group: &str, key: &str) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.0 == group) {
            g.1.retain(|k| k.0 != key);
        }
    }

    pub fn set(&mut self, group: &str, key: &str, value: &str) {
        if !self.groups.iter().any(|g| g.0 == group) {
            self.groups.push((group.to_string(), Vec::new()));
        }
        let g = self
            .groups
            .iter_mut()
            .find(|g| g.0 == group)
            .expect("just added");
        match g.1.iter_mut().find(|k| k.0 == key) {
            Some(k) => k.1 = value.to_string(),
            None => g.1.push((key.to_string(), value.to_string())),
        }
    }
}

impl std::fmt::Display for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (g, kvs)) in self.groups.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[{g}]")?;
            for (k, v) in kvs {
                writeln!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}
