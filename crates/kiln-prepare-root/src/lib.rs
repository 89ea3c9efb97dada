//! kiln-prepare-root: the part of booting an OSTree deployment that runs in
//! the initramfs, after the physical root file system is mounted.
//!
//! It reads `ostree=/ostree/boot.N/OS/BOOTCSUM/SERIAL` from the kernel
//! command line, follows those links (inside the physical root) to
//! `/ostree/deploy/OS/deploy/CHECKSUM.SERIAL`, and turns that directory
//! into the root the initramfs hands over to systemd:
//!
//! * the deployment is bind-mounted on itself (so it can be moved),
//! * `/var` is bound from the stateroot's `ostree/deploy/OS/var`,
//! * `/usr` is bound on itself and made read-only,
//! * the physical root is bound (recursively) at `/sysroot` inside it,
//! * the deployment moves to where the physical root was,
//! * `/run/ostree-booted` is created (tools test it).
//!
//! `/etc` stays writable: it is the deployment's own directory.
//!
//! The layout and the names are those of libostree, so sysroots written by
//! `ostree admin` boot with this too. The plan is computed first (pure,
//! tested below) and then carried out by `main.rs`.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Why the deployment cannot be prepared. Each message names what was
/// looked for, so the console shows a reason rather than a blank hang.
#[derive(Debug)]
pub enum PrepareError {
    NoOstreeArg,
    BadOstreeArg(String),
    Resolve {
        path: PathBuf,
        err: std::io::Error,
    },
    NotInSysroot {
        resolved: PathBuf,
        sysroot: PathBuf,
    },
    NotADeployment(PathBuf),
    Missing {
        what: &'static str,
        path: PathBuf,
    },
    Mount {
        step: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::NoOstreeArg => write!(f, "no ostree= argument on the kernel command line (is this a kiln/OSTree boot entry?)"),
            PrepareError::BadOstreeArg(v) => write!(f, "ostree={v}: expected an absolute path like /ostree/boot.1/OS/BOOTCSUM/0"),
            PrepareError::Resolve { path, err } => write!(f, "cannot resolve {}: {err} (the boot entry names a deployment that is not on this disk)", path.display()),
            PrepareError::NotInSysroot { resolved, sysroot } => {
                write!(f, "ostree= leads to {} which is outside the root file system {}", resolved.display(), sysroot.display())
            }
            PrepareError::NotADeployment(p) => write!(f, "{} is not a deployment (expected ostree/deploy/OS/deploy/CHECKSUM.SERIAL)", p.display()),
            PrepareError::Missing { what, path } => write!(f, "the deployment has no {what}: {} is missing", path.display()),
            PrepareError::Mount { step, path, err } => write!(f, "{step} {}: {err}", path.display()),
            PrepareError::Io { what, path, err } => write!(f, "{what} {}: {err}", path.display()),
        }
    }
}

impl std::error::Error for PrepareError {}

/// The value of the last `ostree=` argument of a kernel command line
/// (quotes as the kernel allows them: `ostree="/x y"`).
pub fn ostree_arg(cmdline: &str) -> Option<String> {
    let mut found = None;
    for arg in split_cmdline(cmdline) {
        if let Some(v) = arg.strip_prefix("ostree=") {
            found = Some(v.to_string());
        }
    }
    found
}

/// Split a kernel command line into arguments: whitespace separates,
/// double quotes group (and are removed), as the kernel's `next_arg` does.
pub fn split_cmdline(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                any = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// What will be mounted where, all absolute paths in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where the physical root is mounted (`/root` or `/sysroot`).
    pub sysroot: PathBuf,
    /// The deployment directory (resolved, inside `sysroot`).
    pub deployment: PathBuf,
    /// `ostree/deploy/OS/var` of the deployment's stateroot.
    pub stateroot_var: PathBuf,
    /// `OS` and `CHECKSUM.SERIAL`, for messages.
    pub osname: String,
    pub name: String,
}

/// Work out the plan: validate `ostree=`, resolve its links inside the
/// physical root and check the deployment has what booting needs.
pub fn plan(sysroot: &Path, ostree: &str) -> Result<Plan, PrepareError> {
    let rel = ostree
        .strip_prefix('/')
        .ok_or_else(|| PrepareError::BadOstreeArg(ostree.to_string()))?;
    if rel.is_empty()
        || Path::new(rel)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(PrepareError::BadOstreeArg(ostree.to_string()));
    }
    let sysroot_real = std::fs::canonicalize(sysroot).map_err(|err| PrepareError::Resolve {
        path: sysroot.to_path_buf(),
        err,
    })?;
    let start = sysroot_real.join(rel);
    let resolved = std::fs::canonicalize(&start).map_err(|err| PrepareError::Resolve {
        path: start.clone(),
        err,
    })?;
    let inner = resolved
        .strip_prefix(&sysroot_real)
        .map_err(|_| PrepareError::NotInSysroot {
            resolved: resolved.clone(),
            sysroot: sysroot_real.clone(),
        })?
        .to_path_buf();
    // ostree/deploy/OS/deploy/CHECKSUM.SERIAL
    let parts: Vec<String> = inner
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let ok = parts.len() == 5
        && parts[0] == "ostree"
        && parts[1] == "deploy"
        && parts[3] == "deploy"
        && is_deploy_name(&parts[4]);
    if !ok || !resolved.is_dir() {
        return Err(PrepareError::NotADeployment(resolved));
    }
    let stateroot_var = sysroot_real
        .join("ostree/deploy")
        .join(&parts[2])
        .join("var");
    for (what, p) in [
        ("/usr directory", resolved.join("usr")),
        ("/etc directory", resolved.join("etc")),
        ("/var mount point", resolved.join("var")),
        ("/sysroot mount point", resolved.join("sysroot")),
        ("stateroot /var", stateroot_var.clone()),
    ] {
        if !p.is_dir() {
            return Err(PrepareError::Missing { what, path: p });
        }
    }
    Ok(Plan {
        sysroot: sysroot.to_path_buf(),
        deployment: resolved,
        stateroot_var,
        osname: parts[2].clone(),
        name: parts[4].clone(),
    })
}

/// `CHECKSUM.SERIAL`: 64 lowercase hex digits, a dot, a decimal number.
fn is_deploy_name(s: &str) -> bool {
    match s.split_once('.') {
        Some((c, n)) => {
            c.len() == 64
                && c.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline() {
        assert_eq!(
            ostree_arg("root=UUID=x rw ostree=/ostree/boot.1/debian/abc/0 quiet"),
            Some("/ostree/boot.1/debian/abc/0".into())
        );
        assert_eq!(ostree_arg("ostree=/a ostree=/b"), Some("/b".into()));
        assert_eq!(ostree_arg("root=/dev/vda rw"), None);
        assert_eq!(
            split_cmdline("a \"b c\" d=\"e f\"\n"),
            vec!["a", "b c", "d=e f"]
        );
    }

    fn fake_sysroot() -> tempfile_lite::Dir {
        let d = tempfile_lite::Dir::new();
        let c = "a".repeat(64);
        let dep = d.0.join(format!("ostree/deploy/os/deploy/{c}.0"));
        for s in ["usr", "etc", "var", "sysroot"] {
            std::fs::create_dir_all(dep.join(s)).unwrap();
        }
        std::fs::create_dir_all(d.0.join("ostree/deploy/os/var")).unwrap();
        std::fs::create_dir_all(d.0.join("ostree/boot.1.1/os/bc")).unwrap();
        std::os::unix::fs::symlink("boot.1.1", d.0.join("ostree/boot.1")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../../deploy/os/deploy/{c}.0"),
            d.0.join("ostree/boot.1.1/os/bc/0"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/", d.0.join("ostree/boot.1.1/os/bc/1")).unwrap();
        d
    }

    #[test]
    fn plans() {
        let d = fake_sysroot();
        let p = plan(&d.0, "/ostree/boot.1/os/bc/0").unwrap();
        assert_eq!(p.osname, "os");
        assert!(p
            .deployment
            .ends_with(format!("deploy/{}.0", "a".repeat(64))));
        assert!(p.stateroot_var.ends_with("ostree/deploy/os/var"));
        assert!(matches!(
            plan(&d.0, "/ostree/boot.1/os/bc/1"),
            Err(PrepareError::NotInSysroot { .. })
        ));
        assert!(matches!(
            plan(&d.0, "/ostree/boot.1/os/bc/2"),
            Err(PrepareError::Resolve { .. })
        ));
        assert!(matches!(
            plan(&d.0, "ostree/boot.1"),
            Err(PrepareError::BadOstreeArg(_))
        ));
        assert!(matches!(
            plan(&d.0, "/ostree/../x"),
            Err(PrepareError::BadOstreeArg(_))
        ));
        assert!(matches!(
            plan(&d.0, "/ostree/deploy/os"),
            Err(PrepareError::NotADeployment(_))
        ));
        let msg = plan(&d.0, "/ostree/boot.1/os/bc/2")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not on this disk"), "{msg}");
    }

    /// A scratch directory without a dev-dependency (this crate stays tiny).
    mod tempfile_lite {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "kiln-prepare-root-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                let _ = std::fs::remove_dir_all(&p);
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
