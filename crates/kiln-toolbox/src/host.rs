//! Who is running kiln, from `/etc/passwd`.

use crate::error::{Error, IoContext, Result};
use std::path::PathBuf;

/// The user kiln runs as on the host, mirrored inside containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl HostUser {
    /// The calling user (real uid), looked up in `/etc/passwd`.
    pub fn current() -> Result<Self> {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").ctx("read", "/etc/passwd")?;
        Ok(parse_passwd(&passwd, uid).unwrap_or_else(|| HostUser {
            // Not in passwd (e.g. a uid from a directory service): still usable.
            name: if uid == 0 {
                "root".into()
            } else {
                format!("u{uid}")
            },
            uid,
            gid,
            home: if uid == 0 { "/root".into() } else { "/".into() },
            shell: "/bin/sh".into(),
        }))
    }
}

pub(crate) fn parse_passwd(text: &str, uid: u32) -> Option<HostUser> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[2].parse::<u32>().ok()? != uid {
            return None;
        }
        Some(HostUser {
            name: f[0].to_string(),
            uid,
            gid: f[3].parse().ok()?,
            home: PathBuf::from(f[5]),
            shell: PathBuf::from(f[6]),
        })
    })
}

/// Validate a container name: it becomes a directory name and a hostname.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let text =
            "root:x:0:0:root:/root:/bin/bash\ndev:x:1000:1001:Dev,,,:/home/dev:/usr/bin/zsh\n";
        let u = parse_passwd(text, 1000).unwrap();
        assert_eq!(u.name, "dev");
        assert_eq!(u.gid, 1001);
        assert_eq!(u.home, PathBuf::from("/home/dev"));
        assert!(parse_passwd(text, 5).is_none());
    }

    #[test]
    fn names() {
        for good in ["debian-toolbox-12", "a", "x.y_z"] {
            check_name(good).unwrap();
        }
        for bad in ["", "-a", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
