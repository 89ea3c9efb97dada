//! Running instances (`ps`, `kill`).
//!
//! `run` execs bwrap in place of kiln, so bwrap keeps kiln's pid; before
//! that it records the instance in `DIR/PID` (a JSON file) with the pid's
//! start time, which tells a live instance from a recycled pid. Stale files
//! are removed when listed.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One running app (the `ps --json` schema).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Instance {
    /// The instance ID (the pid of its bwrap).
    pub instance: String,
    /// bwrap's pid on the host.
    pub pid: u32,
    /// The app's own pid on the host (bwrap's child), if found.
    pub child_pid: Option<u32>,
    pub app: String,
    #[serde(rename = "ref")]
    pub appref: String,
    pub commit: String,
    pub runtime: String,
    pub runtime_commit: String,
    /// Start time of `pid` in clock ticks since boot (`/proc/PID/stat`).
    pub start_time: u64,
}

/// Where instances are recorded: `$XDG_RUNTIME_DIR/.kiln/instances`, or
/// `/run/kiln/instances-UID` without one.
pub fn instances_dir(xdg_runtime_dir: Option<&Path>, uid: u32) -> PathBuf {
    match xdg_runtime_dir {
        Some(d) => d.join(".kiln/instances"),
        None => PathBuf::from(format!("/run/kiln/instances-{uid}")),
    }
}

/// Field 22 of `/proc/PID/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// Record an instance.
pub fn register(dir: &Path, inst: &Instance) -> Result<()> {
    let p = dir.join(inst.pid.to_string());
    let data = serde_json::to_vec(inst).map_err(|e| Error::Invalid(e.to_string()))?;
    // A runtime record (tmpfs): rename for atomicity, no fsync (it is on
    // the start-up path and need not survive a crash). The directory is
    // made only when the first write finds it missing.
    let tmp = dir.join(format!(".{}.tmp", inst.pid));
    match std::fs::write(&tmp, &data) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            std::fs::write(&tmp, &data)
        }
        r => r,
    }
    .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
    Ok(())
}

/// The live instances; stale records are removed.
pub fn list(dir: &Path) -> Vec<Instance> {
    let mut out = Vec::new();
    for name in crate::installation::read_names(dir) {
        let p = dir.join(&name);
        let inst: Option<Instance> = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match inst {
            Some(mut i) if start_time(i.pid) == Some(i.start_time) => {
                i.child_pid = children(i.pid).first().copied();
                out.push(i);
            }
            _ => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    out.sort_by_key(|i| i.pid);
    out
}

/// `kill INSTANCE|APP`: SIGKILL to each matching instance's bwrap (its
/// sandbox dies with it: `--die-with-parent`). Returns the killed ones.
pub fn kill(dir: &Path, what: &str) -> Result<Vec<Instance>> {
    let matches: Vec<Instance> = list(dir)
        .into_iter()
        .filter(|i| i.instance == what || i.app == what)
        .collect();
    if matches.is_empty() {
        return Err(Error::NoSuchInstance(what.to_string()));
    }
    for i in &matches {
        let Some(pid) = rustix::process::Pid::from_raw(i.pid as i32) else {
            continue;
        };
        // Pid reuse is ruled out by the start-time check in `list`.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let _ = std::fs::remove_file(dir.join(i.pid.to_string()));
    }
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_and_stale_records() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        let t = tempfile::tempdir().unwrap();
        let live = Instance {
            instance: me.to_string(),
            pid: me,
            child_pid: None,
            app: "org.kiln.Demo".into(),
            appref: "app/org.kiln.Demo/x86_64/stable".into(),
            commit: "c".into(),
            runtime: "r".into(),
            runtime_commit: "rc".into(),
            start_time: start_time(me).unwrap(),
        };
        register(t.path(), &live).unwrap();
        let stale = Instance {
            pid: me,
            start_time: 1,
            ..live.clone()
        };
        let p = t.path().join("999999999");
        std::fs::write(
            &p,
            serde_json::to_vec(&Instance {
                pid: 999_999_999,
                ..stale
            })
            .unwrap(),
        )
        .unwrap();
        let l = list(t.path());
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].pid, me);
        assert!(!p.exists());
    }
}
