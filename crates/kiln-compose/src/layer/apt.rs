//! Resolving and downloading with the host's apt, pointed at the
//! deployment's `/etc/apt` and the base tree's dpkg database through an
//! `APT_CONFIG` file of our own (the host's apt configuration and sources
//! are not read).

use super::error::{io, Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where apt reads and writes for one layering run.
pub(crate) struct Apt {
    config: PathBuf,
    archives: PathBuf,
}

/// One package apt would install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inst {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// What `apt-get -s install` said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub install: Vec<Inst>,
    pub remove: Vec<String>,
}

fn quoted(p: &Path) -> Result<String> {
    let s = p.to_string_lossy();
    if s.contains(['"', '\n', '\\']) {
        return Err(Error::Invalid(format!(
            "{}: path not usable in an apt configuration",
            p.display()
        )));
    }
    Ok(format!("\"{s}\""))
}

fn tail(text: &str, n: usize) -> String {
    let v: Vec<&str> = text.trim_end().lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// `E:` lines of apt's output (its own explanation of a failure).
fn errors(text: &str) -> String {
    let e: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E:") || l.contains(" : Depends:") || l.contains("but it is not"))
        .collect();
    if e.is_empty() {
        tail(text, 10)
    } else {
        e.join("; ")
    }
}

impl Apt {
    /// Configure apt: `etc` is the deployment's `/etc/apt`, `status` the
    /// base's dpkg status file, `cache` kiln's cache directory.
    pub fn new(work: &Path, etc: &Path, status: &Path, cache: &Path) -> Result<Apt> {
        let state = work.join("apt-state");
        let archives = cache.join("debs");
        let lists = cache.join("apt-lists");
        for d in [
            state.clone(),
            archives.join("partial"),
            lists.join("partial"),
            work.join("apt-cache"),
            work.join("apt-log"),
        ] {
            io(&d, std::fs::create_dir_all(&d))?;
        }
        let text = format!(
            "Dir \"/\";\nDir::Etc {};\nDir::Etc::main \"apt.conf\";\nDir::Etc::parts \"apt.conf.d\";\n\
             Dir::State {};\nDir::State::Lists {};\nDir::State::status {};\n\
             Dir::Cache {};\nDir::Cache::archives {};\nDir::Log {};\n\
             Debug::NoLocking \"true\";\nAPT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\n\
             APT::Get::Assume-Yes \"true\";\nAcquire::Languages \"none\";\nAPT::Sandbox::User \"root\";\n\
             Dpkg::Use-Pty \"false\";\nquiet \"1\";\n",
            quoted(etc)?,
            quoted(&state)?,
            quoted(&lists)?,
            quoted(status)?,
            quoted(&work.join("apt-cache"))?,
            quoted(&archives)?,
            quoted(&work.join("apt-log"))?,
        );
        let config = work.join("apt.conf");
        io(&config, std::fs::write(&config, text))?;
        Ok(Apt { config, archives })
    }

    fn run(&self, args: &[String]) -> Result<(bool, String)> {
        let mut cmd = Command::new("apt-get");
        cmd.env("APT_CONFIG", &self.config)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C")
            .args(args)
            .stdin(Stdio::null());
        let out = cmd.output().map_err(|source| Error::Spawn {
            cmd: "apt-get".into(),
            source,
        })?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.status.success(), text))
    }

    /// `apt-get update` (a no-op without sources).
    pub fn update(&self) -> Result<()> {
        let (ok, text) = self.run(&["update".into()])?;
        if !ok {
            return Err(Error::Resolve {
                what: "the package lists".into(),
                detail: errors(&text),
            });
        }
        Ok(())
    }

    /// Simulate installing `targets` (names, `./x.deb` paths, `name-`).
    pub fn plan(&self, targets: &[String], what: &str) -> Result<Plan> {
        let mut args = vec!["-s".to_string(), "install".to_string()];
        args.extend(targets.iter().cloned());
        let (ok, text) = self.run(&args)?;
        if !ok {
            return Err(Error::Resolve {
                what: what.to_string(),
                detail: errors(&text),
            });
        }
        Ok(parse_plan(&text))
    }

    /// Download what `plan` installs from repositories; returns the files.
    pub fn download(
        &self,
        targets: &[String],
        plan: &Plan,
        local: &[String],
    ) -> Result<Vec<PathBuf>> {
        let need: Vec<&Inst> = plan
            .install
            .iter()
            .filter(|i| !local.contains(&i.name))
            .collect();
        if need.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["--download-only".to_string(), "install".to_string()];
        args.extend(targets.iter().cloned());
        let (ok, text) = self.run(&args)?;
        if !ok {
            return Err(Error::Resolve {
                what: "the packages' downloads".into(),
                detail: errors(&text),
            });
        }
        // file: repositories are used in place, not copied to archives.
        let mut args = vec!["--print-uris".to_string(), "install".to_string()];
        args.extend(targets.iter().cloned());
        let (_, uris) = self.run(&args)?;
        let mut files = Vec::new();
        for i in need {
            let fname = format!(
                "{}_{}_{}.deb",
                i.name,
                i.version.replace(':', "%3a"),
                i.arch
            );
            let f = self.archives.join(&fname);
            if !f.is_file() {
                let src = uris.lines().find_map(|l| {
                    let mut w = l.split_whitespace();
                    let uri = w.next()?.trim_matches('\'');
                    (w.next()? == fname).then(|| uri.strip_prefix("file:").map(str::to_string))?
                });
                if let Some(src) = src {
                    let src = PathBuf::from(src.replace("%3a", ":"));
                    let tmp = self.archives.join("partial").join(&fname);
                    io(&src, std::fs::copy(&src, &tmp))?;
                    io(&f, std::fs::rename(&tmp, &f))?;
                }
            }
            if !f.is_file() {
                return Err(Error::Resolve {
                    what: format!("package {} {}", i.name, i.version),
                    detail: format!("apt did not download {}", f.display()),
                });
            }
            files.push(f);
        }
        Ok(files)
    }
}

/// `Inst NAME [OLD] (VERSION ORIGIN [ARCH])` and `Remv NAME [VERSION]` lines.
pub(crate) fn parse_plan(text: &str) -> Plan {
    let mut p = Plan::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            let name = rest.split_whitespace().next().unwrap_or_default();
            let Some(open) = rest.find('(') else { continue };
            let inner = &rest[open + 1..];
            let inner = inner.split(')').next().unwrap_or_default();
            let version = inner.split_whitespace().next().unwrap_or_default();
            let arch = inner
                .rsplit('[')
                .next()
                .map(|a| a.trim_end_matches(']').trim())
                .unwrap_or_default();
            if !name.is_empty() && !version.is_empty() {
                p.install.push(Inst {
                    name: name.split(':').next().unwrap_or(name).to_string(),
                    version: version.to_string(),
                    arch: arch.to_string(),
                });
            }
        } else if let Some(rest) = line.strip_prefix("Remv ") {
            if let Some(name) = rest.split_whitespace().next() {
                p.remove
                    .push(name.split(':').next().unwrap_or(name).to_string());
            }
        }
    }
    p
}

/// The host's dpkg architecture.
pub(crate) fn host_arch() -> Result<String> {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: "dpkg --print-architecture".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simulation() {
        let text = "NOTE: This is only a simulation!\n\
Remv less [590-2.1~deb12u2]\n\
Inst libfoo (1.0-1 local:stable [amd64])\n\
Inst libc6 [2.36-9] (2:2.36-9+deb12u1 Debian:12 [amd64]) []\n\
Inst kiln-hello:amd64 (1.0 /tmp/x.deb [amd64])\n\
Conf libfoo (1.0-1 local:stable [amd64])\n";
        let p = parse_plan(text);
        assert_eq!(p.remove, vec!["less"]);
        assert_eq!(p.install.len(), 3);
        assert_eq!(p.install[1].version, "2:2.36-9+deb12u1");
        assert_eq!(p.install[1].arch, "amd64");
        assert_eq!(p.install[2].name, "kiln-hello");
    }
}
