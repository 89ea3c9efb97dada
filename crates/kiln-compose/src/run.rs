//! Running the external tools compose and install need (mmdebstrap,
//! sfdisk, mkfs, mtools, grub-mkstandalone): one place that turns a failed
//! command into an error that names it and shows the end of its stderr.

use crate::error::{Error, Result};
use std::process::{Command, Stdio};

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if s.len() > 300 {
        s.truncate(300);
        s.push('…');
    }
    s
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let v: Vec<&str> = text.trim_end().lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Run, capture stdout; a non-zero exit is an error with stderr's tail.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let desc = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: desc.clone(),
            source,
        })?;
    if !out.status.success() {
        let mut err = tail(&out.stderr, 15);
        if err.is_empty() {
            err = tail(&out.stdout, 15);
        }
        return Err(Error::Command {
            cmd: desc,
            status: out.status.to_string(),
            stderr: err,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run with stdout and stderr going to `log` (a file); on failure the
/// error carries the log's tail.
pub(crate) fn logged(cmd: &mut Command, log: &std::path::Path) -> Result<()> {
    let desc = describe(cmd);
    let f = std::fs::File::create(log).map_err(|e| Error::io(log, e))?;
    let f2 = f.try_clone().map_err(|e| Error::io(log, e))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .status()
        .map_err(|source| Error::Spawn {
            cmd: desc.clone(),
            source,
        })?;
    if !status.success() {
        let text = std::fs::read(log).unwrap_or_default();
        return Err(Error::Command {
            cmd: desc,
            status: status.to_string(),
            stderr: format!("{}\n(full log: {})", tail(&text, 25), log.display()),
        });
    }
    Ok(())
}
