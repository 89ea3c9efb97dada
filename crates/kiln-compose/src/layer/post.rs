//! After dpkg: make the merged tree an OS tree again, as compose does, and
//! move what packages put where a deployment cannot keep it.

use super::error::{io, Result};
use std::collections::BTreeMap;
use std::path::Path;

const LAYER_TMPFILES: &str = "usr/lib/tmpfiles.d/kiln-layer.conf";
const LAYER_SYSUSERS: &str = "usr/lib/sysusers.d/kiln-layer.conf";

/// `name -> line` of a passwd or group file.
pub(crate) fn read_db(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Some((l.split(':').next()?.to_string(), l.to_string())))
        .filter(|(n, _)| !n.is_empty() && !n.starts_with('#'))
        .collect()
}

/// What post-processing did.
#[derive(Debug, Default, Clone)]
pub(crate) struct PostReport {
    pub new_users: Vec<String>,
    pub new_groups: Vec<String>,
    pub relocated: Vec<String>,
}

/// `base_passwd`/`base_group`: the base tree's databases, read before the
/// merge.
pub(crate) fn post_process(
    root: &Path,
    base_passwd: &BTreeMap<String, String>,
    base_group: &BTreeMap<String, String>,
) -> Result<PostReport> {
    let mut r = PostReport::default();
    // The links the sandbox needed.
    let etc = root.join("etc");
    if std::fs::read_link(&etc).is_ok_and(|t| t == Path::new("usr/etc")) {
        io(&etc, std::fs::remove_file(&etc))?;
    }
    let dpkg = root.join("var/lib/dpkg");
    if std::fs::read_link(&dpkg).is_ok() {
        io(&dpkg, std::fs::remove_file(&dpkg))?;
    }
    let mut tmpfiles: Vec<String> = Vec::new();
    // /opt and /usr/local content belongs to the packages: it moves under
    // /usr/lib, and /var/opt/NAME etc. become links to it at boot.
    for (link, dest) in [("opt", "usr/lib/opt"), ("usr/local", "usr/lib/usrlocal")] {
        let Ok(target) = std::fs::read_link(root.join(link)) else {
            continue;
        };
        let t = target.to_string_lossy().into_owned();
        let Some(sub) = t.trim_start_matches("../").strip_prefix("var/") else {
            continue;
        };
        let src = root.join("var").join(sub);
        let Ok(rd) = std::fs::read_dir(&src) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if n.contains(char::is_whitespace) {
                continue;
            }
            let d = root.join(dest);
            io(&d, std::fs::create_dir_all(&d))?;
            let to = d.join(&n);
            if std::fs::symlink_metadata(&to).is_ok() {
                io(&to, std::fs::remove_dir_all(&to))?;
            }
            io(&src, std::fs::rename(src.join(&n), &to))?;
            tmpfiles.push(format!("L /var/{sub}/{n} - - - - /{dest}/{n}"));
            r.relocated.push(format!("/{link}/{n}"));
        }
    }
    // New system users and groups: sysusers.d creates them on machines
    // whose /etc/passwd was changed locally (a changed /etc keeps its own).
    let passwd = read_db(&root.join("usr/etc/passwd"));
    let group = read_db(&root.join("usr/etc/group"));
    let mut sysusers = Vec::new();
    for (name, line) in &group {
        if base_group.contains_key(name) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if let Some(gid) = f.get(2) {
            sysusers.push(format!("g {name} {gid}"));
            r.new_groups.push(name.clone());
        }
    }
    for (name, line) in &passwd {
        if base_passwd.contains_key(name) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            continue;
        }
        let gecos = f[4].split(',').next().unwrap_or_default().replace('"', "");
        let gecos = if gecos.is_empty() {
            "-".to_string()
        } else {
            format!("\"{gecos}\"")
        };
        sysusers.push(format!(
            "u {name} {}:{} {gecos} {} {}",
            f[2], f[3], f[5], f[6]
        ));
        r.new_users.push(name.clone());
    }
    crate::transform::transform(root)?;
    write(
        root,
        LAYER_TMPFILES,
        "# Written by kiln install: package content relocated under /usr/lib.\n",
        &tmpfiles,
    )?;
    write(
        root,
        LAYER_SYSUSERS,
        "# Written by kiln install: system users and groups of layered packages.\n",
        &sysusers,
    )?;
    Ok(r)
}

fn write(root: &Path, rel: &str, header: &str, lines: &[String]) -> Result<()> {
    let p = root.join(rel);
    if std::fs::symlink_metadata(&p).is_ok() {
        io(&p, std::fs::remove_file(&p))?;
    }
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = header.to_string();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    if let Some(d) = p.parent() {
        io(d, std::fs::create_dir_all(d))?;
    }
    io(&p, std::fs::write(&p, text))
}
