//! Arguments for `xdg-dbus-proxy`, which gives the sandbox a filtered view
//! of the session bus (`[Session Bus Policy]`: `NAME=see|talk|own`).
//!
//! As in Flatpak, the app may own its own ID (and `ID.*`), talk to the
//! portals, and nothing else unless its policy says so.

use std::ffi::OsString;
use std::path::Path;

/// One `[Session Bus Policy]` entry level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BusPolicy {
    None,
    See,
    Talk,
    Own,
}

impl BusPolicy {
    pub fn parse(s: &str) -> Option<BusPolicy> {
        Some(match s {
            "none" => BusPolicy::None,
            "see" => BusPolicy::See,
            "talk" => BusPolicy::Talk,
            "own" => BusPolicy::Own,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BusPolicy::None => "none",
            BusPolicy::See => "see",
            BusPolicy::Talk => "talk",
            BusPolicy::Own => "own",
        }
    }
}

/// `xdg-dbus-proxy ADDRESS SOCKET --filter …` (without the program name).
/// `sync_fd` is the fd the proxy writes one byte to when it is ready and
/// watches to exit when the sandbox is gone.
pub fn proxy_args(
    bus_address: &str,
    socket: &Path,
    app_id: &str,
    policy: &[(String, BusPolicy)],
    sync_fd: i32,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        format!("--fd={sync_fd}").into(),
        bus_address.into(),
        socket.as_os_str().to_owned(),
        "--filter".into(),
        format!("--own={app_id}").into(),
        format!("--own={app_id}.*").into(),
        "--talk=org.freedesktop.portal.*".into(),
        "--call=org.freedesktop.portal.*=*".into(),
        "--broadcast=org.freedesktop.portal.*=@/org/freedesktop/portal/*".into(),
    ];
    for (name, p) in policy {
        if *p != BusPolicy::None {
            a.push(format!("--{}={name}", p.as_str()).into());
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_args() {
        let a = proxy_args(
            "unix:path=/run/user/1/bus",
            Path::new("/run/user/1/.kiln/x/bus"),
            "org.kiln.Demo",
            &[
                ("org.freedesktop.Notifications".into(), BusPolicy::Talk),
                ("org.example.Hidden".into(), BusPolicy::None),
            ],
            7,
        );
        let s: Vec<String> = a.iter().map(|x| x.to_string_lossy().into()).collect();
        assert_eq!(s[0], "--fd=7");
        assert!(s.contains(&"--filter".to_string()));
        assert!(s.contains(&"--own=org.kiln.Demo".to_string()));
        assert!(s.contains(&"--talk=org.freedesktop.Notifications".to_string()));
        assert!(!s.iter().any(|x| x.contains("Hidden")));
    }
}
