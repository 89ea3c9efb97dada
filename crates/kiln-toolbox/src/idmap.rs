//! User and group id mappings: `/etc/subuid`, `/etc/subgid` and the
//! "keep-id" layout (root inside → first subordinate id, the user → itself).

use crate::error::{Error, IoContext, Result};
use crate::host::HostUser;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One line of a `uid_map`/`gid_map`: `inside outside count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// How the container's ids relate to the host's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdMapping {
    /// kiln runs as root: no user namespace, ids are the host's.
    Host,
    /// An unprivileged user: a user namespace with these maps.
    User {
        uid_map: Vec<IdRange>,
        gid_map: Vec<IdRange>,
    },
}

impl IdMapping {
    /// The mapping for `user`, read from `/etc/subuid` and `/etc/subgid`.
    pub fn for_user(user: &HostUser) -> Result<Self> {
        Self::for_user_from(user, Path::new("/etc/subuid"), Path::new("/etc/subgid"))
    }

    pub(crate) fn for_user_from(user: &HostUser, subuid: &Path, subgid: &Path) -> Result<Self> {
        if user.uid == 0 {
            return Ok(Self::Host);
        }
        let uid_text = read_optional(subuid)?;
        let gid_text = read_optional(subgid)?;
        let uid_sub = parse_subid(&uid_text, &user.name, user.uid);
        let gid_sub = parse_subid(&gid_text, &user.name, user.uid);
        let missing = |kind, file| {
            let start = suggest_start(&uid_text, &gid_text);
            Error::NoSubordinateIds {
                user: user.name.clone(),
                uid: user.uid,
                kind,
                file,
                start,
                end: start + 65535,
            }
        };
        if uid_sub.is_empty() {
            return Err(missing("uid", "/etc/subuid"));
        }
        if gid_sub.is_empty() {
            return Err(missing("gid", "/etc/subgid"));
        }
        Ok(Self::User {
            uid_map: keep_id(user.uid, &uid_sub),
            gid_map: keep_id(user.gid, &gid_sub),
        })
    }

    /// The host uid that owns files owned by root inside.
    pub fn root_outside(&self) -> u32 {
        match self {
            Self::Host => 0,
            Self::User { uid_map, .. } => to_outside(uid_map, 0).unwrap_or(u32::MAX),
        }
    }

    /// A short fingerprint of the mapping, part of cache keys of images whose
    /// files carry mapped owners.
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Host => "host".into(),
            Self::User { uid_map, gid_map } => {
                let fmt = |m: &[IdRange]| {
                    m.iter()
                        .map(|r| format!("{}:{}:{}", r.inside, r.outside, r.count))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                format!("u{};g{}", fmt(uid_map), fmt(gid_map))
            }
        }
    }
}

fn read_optional(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).ctx("read", path),
    }
}

/// Subordinate ranges `(start, count)` of a user, by name or numeric uid.
pub(crate) fn parse_subid(text: &str, name: &str, uid: u32) -> Vec<(u32, u32)> {
    let uid_str = uid.to_string();
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut it = line.split(':');
            let who = it.next()?;
            let start: u32 = it.next()?.trim().parse().ok()?;
            let count: u32 = it.next()?.trim().parse().ok()?;
            ((who == name || who == uid_str) && count > 0).then_some((start, count))
        })
        .collect()
}

/// A start for a new 65536-id range that overlaps none in either file.
fn suggest_start(subuid: &str, subgid: &str) -> u64 {
    let mut start = 100_000u64;
    for line in subuid.lines().chain(subgid.lines()) {
        let mut it = line.split(':').skip(1);
        if let (Some(Ok(s)), Some(Ok(c))) = (
            it.next().map(|s| s.trim().parse::<u64>()),
            it.next().map(|c| c.trim().parse::<u64>()),
        ) {
            start = start.max(s + c);
        }
    }
    start
}

/// Build a keep-id map: inside ids `0..` come from the subordinate ranges in
/// order, except `own`, which maps to itself.
pub(crate) fn keep_id(own: u32, sub: &[(u32, u32)]) -> Vec<IdRange> {
    let mut map = Vec::new();
    let mut inside: u32 = 0;
    let mut own_done = false;
    for &(mut outside, mut count) in sub {
        while count > 0 {
            if !own_done && inside == own {
                map.push(IdRange {
                    inside: own,
                    outside: own,
                    count: 1,
                });
                own_done = true;
                inside += 1;
                continue;
            }
            // How many fit before reaching `own`?
            let room = if !own_done && inside < own {
                own - inside
            } else {
                u32::MAX - inside
            };
            let n = count.min(room);
            if n == 0 {
                break;
            }
            map.push(IdRange {
                inside,
                outside,
                count: n,
            });
            inside = inside.saturating_add(n);
            outside = outside.saturating_add(n);
            count -= n;
        }
    }
    if !own_done {
        map.push(IdRange {
            inside: own,
            outside: own,
            count: 1,
        });
    }
    map
}

fn to_outside(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter()
        .find(|r| id >= r.inside && id - r.inside < r.count)
        .map(|r| r.outside + (id - r.inside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_id_splits_around_own_uid() {
        let map = keep_id(1000, &[(100_000, 65536)]);
        assert_eq!(
            map,
            vec![
                IdRange {
                    inside: 0,
                    outside: 100_000,
                    count: 1000
                },
                IdRange {
                    inside: 1000,
                    outside: 1000,
                    count: 1
                },
                IdRange {
                    inside: 1001,
                    outside: 101_000,
                    count: 64536
                },
            ]
        );
    }

    #[test]
    fn keep_id_small_range() {
        let map = keep_id(1000, &[(100_000, 10)]);
        assert_eq!(
            map,
            vec![
                IdRange {
                    inside: 0,
                    outside: 100_000,
                    count: 10
                },
                IdRange {
                    inside: 1000,
                    outside: 1000,
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn parse_by_name_and_uid() {
        let text = "# c\nalice:100000:65536\n1001:200000:100\nbob:x:1\n";
        assert_eq!(parse_subid(text, "alice", 1000), vec![(100_000, 65536)]);
        assert_eq!(parse_subid(text, "carol", 1001), vec![(200_000, 100)]);
        assert!(parse_subid(text, "bob", 7).is_empty());
    }

    #[test]
    fn missing_ranges_say_what_to_add() {
        let dir = tempfile::tempdir().unwrap();
        let su = dir.path().join("subuid");
        let sg = dir.path().join("subgid");
        std::fs::write(&su, "other:100000:65536\n").unwrap();
        std::fs::write(&sg, "").unwrap();
        let user = HostUser {
            name: "dev".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/dev".into(),
            shell: "/bin/bash".into(),
        };
        let err = IdMapping::for_user_from(&user, &su, &sg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"dev:165536:65536\""), "{err}");
        assert!(err.contains("/etc/subuid and /etc/subgid"), "{err}");
    }
}
