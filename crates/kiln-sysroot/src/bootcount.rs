//! Automatic boot assessment with GRUB's environment block.
//!
//! A new default deployment is a *trial*: `kiln_trial=CHECKSUM.SERIAL` and
//! `kiln_tries_left=N` go into `/boot/grub/grubenv` before the
//! `/boot/loader` swap. The generated `grub.cfg` (see
//! [`crate::bootloader_grub`]) decrements the counter before each boot of
//! that entry; when it is `0`, GRUB boots the second entry instead (the
//! deployment the machine ran before). Once the system is healthy
//! (`boot-complete.target`, which vendors extend with their own check
//! units), `kiln-boot-complete.service` runs `kiln boot mark-good`, which
//! clears the trial. `kiln status` reads the same block to say what
//! happened.
//!
//! The environment block is GRUB's format: exactly 1024 bytes, a header
//! line, `key=value` lines, `#` padding. It is rewritten in place (same
//! size, same blocks) because GRUB writes it through a block list.

use crate::error::{Error, Result};
use crate::sysroot::Sysroot;
use serde::Serialize;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const GRUBENV: &str = "boot/grub/grubenv";
const HEADER: &str = "# GRUB Environment Block\n";
const SIZE: usize = 1024;
/// Tries a new deployment gets unless the repo config says otherwise
/// (`[kiln] boot-tries=N`, 0 turns boot counting off).
pub const DEFAULT_TRIES: u32 = 3;
/// GRUB's script has no arithmetic: the generated config spells out each
/// step, up to this many.
pub const MAX_TRIES: u32 = 9;

/// The variables of an environment block, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrubEnv {
    pub vars: Vec<(String, String)>,
}

impl GrubEnv {
    pub fn parse(data: &[u8]) -> GrubEnv {
        let text = String::from_utf8_lossy(data);
        let mut vars = Vec::new();
        for line in text.split('\n') {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.push((k.to_string(), v.to_string()));
            }
        }
        GrubEnv { vars }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, k: &str, v: &str) {
        match self.vars.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => self.vars.push((k.to_string(), v.to_string())),
        }
    }

    pub fn unset(&mut self, k: &str) {
        self.vars.retain(|(key, _)| key != k);
    }

    /// The 1024-byte block.
    pub fn to_block(&self) -> Result<Vec<u8>> {
        let mut s = String::from(HEADER);
        for (k, v) in &self.vars {
            if k.contains(['=', '\n']) || v.contains('\n') {
                return Err(Error::invalid(format!("grubenv: bad variable {k:?}")));
            }
            s.push_str(&format!("{k}={v}\n"));
        }
        if s.len() > SIZE {
            return Err(Error::invalid(
                "grubenv: variables do not fit in 1024 bytes",
            ));
        }
        let mut b = s.into_bytes();
        b.resize(SIZE, b'#');
        Ok(b)
    }
}

pub fn grubenv_path(sysroot: &Path) -> PathBuf {
    sysroot.join(GRUBENV)
}

pub fn read_env(sysroot: &Path) -> Result<Option<GrubEnv>> {
    let p = grubenv_path(sysroot);
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(GrubEnv::parse(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Create the block (install time).
pub fn create_env(sysroot: &Path) -> Result<()> {
    let p = grubenv_path(sysroot);
    crate::fsutil::write_file(&p, &GrubEnv::default().to_block()?, 0o644)
}

/// Rewrite an existing block in place and flush it.
pub fn write_env(sysroot: &Path, env: &GrubEnv) -> Result<()> {
    let p = grubenv_path(sysroot);
    let block = env.to_block()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    let len = f.metadata().map_err(|e| Error::io(&p, e))?.len();
    if len != SIZE as u64 {
        return Err(Error::invalid(format!(
            "{}: {len} bytes, expected a 1024-byte GRUB environment block",
            p.display()
        )));
    }
    f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(&p, e))?;
    f.write_all(&block).map_err(|e| Error::io(&p, e))?;
    f.sync_all().map_err(|e| Error::io(&p, e))
}

/// What boot counting knows, for `kiln status` and `kiln boot status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BootHealth {
    /// GRUB's environment block exists (kiln installed the bootloader).
    pub enabled: bool,
    /// `CHECKSUM.SERIAL` of the deployment on trial, if any.
    pub trial: Option<String>,
    /// Boots it has left before GRUB falls back.
    pub tries_left: Option<u32>,
    /// The trial used up its tries without reaching boot-complete.target;
    /// GRUB boots the previous deployment instead.
    pub failed: Option<String>,
    /// The last deployment marked good.
    pub last_good: Option<String>,
}

impl BootHealth {
    /// One line for `kiln status`, when there is something to say.
    pub fn note(&self) -> Option<String> {
        if let Some(f) = &self.failed {
            return Some(format!(
                "Boot counting: deployment {f} did not reach boot-complete.target within its tries; the bootloader falls back to the previous deployment (remove it with `kiln cleanup -p` or `kiln rollback`)"
            ));
        }
        match (&self.trial, self.tries_left) {
            (Some(t), Some(n)) => Some(format!("Boot counting: deployment {t} is on trial, {n} boot(s) left to reach boot-complete.target")),
            _ => None,
        }
    }
}

fn tries_config(s: &Sysroot) -> u32 {
    s.repo()
        .config()
        .get("kiln", "boot-tries")
        .and_then(|v| v.trim().parse().ok())
        .map(|n: u32| n.min(MAX_TRIES))
        .unwrap_or(DEFAULT_TRIES)
}

impl Sysroot {
    /// Boot counting state from `/boot/grub/grubenv`.
    pub fn boot_health(&self) -> BootHealth {
        let Ok(Some(env)) = read_env(self.path()) else {
            return BootHealth::default();
        };
        // GRUB counts only while the trial is the default entry; a trial
        // left behind by a tool that does not know about it (`ostree admin
        // deploy`) is stale.
        let trial = env
            .get("kiln_trial")
            .filter(|v| !v.is_empty())
            .filter(|t| self.default_dirname().as_deref() == Some(*t))
            .map(str::to_string);
        let tries_left = trial
            .as_ref()
            .and_then(|_| env.get("kiln_tries_left"))
            .and_then(|v| v.parse().ok());
        let failed = match (&trial, tries_left) {
            (Some(t), Some(0)) => {
                let booted_it = self.booted_deployment().is_some_and(|b| &b.dirname() == t);
                (!booted_it).then(|| t.clone())
            }
            _ => None,
        };
        BootHealth {
            enabled: true,
            trial,
            tries_left,
            failed,
            last_good: env
                .get("kiln_last_good")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        }
    }

    /// `CHECKSUM.SERIAL` of the default (first non-staged) deployment.
    fn default_dirname(&self) -> Option<String> {
        self.deployments()
            .iter()
            .find(|d| !d.staged)
            .map(|d| d.dirname())
    }

    /// Boots left for a deployment on trial (`boot_counter` in status).
    pub fn boot_tries_left(&self, d: &crate::Deployment) -> Option<u32> {
        let h = self.boot_health();
        (h.trial.as_deref() == Some(d.dirname().as_str()))
            .then_some(h.tries_left)
            .flatten()
    }

    /// The running system is healthy: end the trial of the booted
    /// deployment (systemd's `boot-complete.target` reached). Returns
    /// what changed, `None` when there was nothing to do.
    pub fn mark_boot_good(&self) -> Result<Option<String>> {
        let booted = self.booted_deployment().ok_or(Error::NotBooted)?.dirname();
        let Some(mut env) = read_env(self.path())? else {
            return Ok(None);
        };
        let trial = env.get("kiln_trial").unwrap_or("").to_string();
        let stale = !trial.is_empty() && self.default_dirname().as_deref() != Some(trial.as_str());
        if stale {
            env.unset("kiln_trial");
            env.unset("kiln_tries_left");
        }
        if trial == booted && !stale {
            env.unset("kiln_trial");
            env.unset("kiln_tries_left");
            env.set("kiln_last_good", &booted);
            write_env(self.path(), &env)?;
            return Ok(Some(format!(
                "deployment {booted} booted healthy; boot counter cleared"
            )));
        }
        if stale || env.get("kiln_last_good") != Some(booted.as_str()) {
            env.set("kiln_last_good", &booted);
            write_env(self.path(), &env)?;
        }
        Ok(None)
    }
}

/// Called before the `/boot/loader` swap with the new list: arm a trial
/// when a deployment that was not in the old list becomes the default
/// (and there is one to fall back to); end a trial whose deployment is no
/// longer the default (a rollback or a cleanup replaced it).
pub(crate) fn on_new_list(s: &Sysroot, new: &[crate::Deployment]) -> Result<()> {
    let Some(mut env) = read_env(s.path())? else {
        return Ok(());
    };
    let before = env.clone();
    let Some(first) = new.first() else {
        return Ok(());
    };
    let id = first.dirname();
    let fresh = !s.deployments().iter().any(|d| d.same(first) && !d.staged);
    let tries = tries_config(s);
    if fresh && new.len() > 1 && tries > 0 {
        env.set("kiln_trial", &id);
        env.set("kiln_tries_left", &tries.to_string());
    } else if env.get("kiln_trial").is_some_and(|t| t != id) {
        env.unset("kiln_trial");
        env.unset("kiln_tries_left");
    }
    if env != before {
        write_env(s.path(), &env)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_roundtrip() {
        let mut e = GrubEnv::default();
        e.set("kiln_trial", "abc.0");
        e.set("kiln_tries_left", "3");
        let b = e.to_block().unwrap();
        assert_eq!(b.len(), 1024);
        assert!(b.starts_with(b"# GRUB Environment Block\nkiln_trial=abc.0\nkiln_tries_left=3\n#"));
        assert_eq!(GrubEnv::parse(&b), e);
        e.set("x", &"y".repeat(1100));
        assert!(e.to_block().is_err());
        assert!(GrubEnv {
            vars: vec![("a\n".into(), "b".into())]
        }
        .to_block()
        .is_err());
    }
}
