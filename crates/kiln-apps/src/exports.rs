//! What the desktop sees: `.desktop` files and icons of installed apps,
//! linked from `BASE/exports/share/…` into `app/ID/current/active/export/`,
//! with `Exec=` rewritten to start the app through kiln (as Flatpak
//! rewrites it to `flatpak run`). Only files named after the app ID are
//! exported, as Flatpak requires.

use crate::appref::Kind;
use crate::error::{Error, Result};
use crate::installation::{read_names, Installation};
use kiln_store::keyfile::KeyFile;
use std::path::{Path, PathBuf};

/// Quote one word for a desktop-file `Exec=` line.
fn exec_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%".contains(c))
    {
        s.to_string()
    } else {
        let mut out = String::from("\"");
        for c in s.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

/// Rewrite `Exec=CMD ARGS` into `Exec=kiln app run --command=CMD ID ARGS`.
pub fn rewrite_exec(exec: &str, id: &str) -> String {
    let exec = exec.trim();
    let (cmd, rest) = match exec.strip_prefix('"').and_then(|e| e.split_once('"')) {
        Some((c, r)) => (c, r.trim_start()),
        None => match exec.split_once(char::is_whitespace) {
            Some((c, r)) => (c, r.trim_start()),
            None => (exec, ""),
        },
    };
    let mut out = format!("kiln app run --command={} {id}", exec_quote(cmd));
    if !rest.is_empty() {
        out.push(' ');
        out.push_str(rest);
    }
    out
}

/// In a freshly checked-out deploy directory, rewrite the exported
/// `.desktop` files. Files are replaced (new inodes), never edited in
/// place: they are hardlinks to repo objects.
pub fn rewrite_desktop_files(deploy: &Path, id: &str) -> Result<()> {
    let dir = deploy.join("export/share/applications");
    for name in read_names(&dir) {
        if !name.ends_with(".desktop") {
            continue;
        }
        let p = dir.join(&name);
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(mut kf) = KeyFile::parse(&text) else {
            // Not a valid desktop file: do not export it.
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            continue;
        };
        let groups: Vec<String> = kf.groups().map(str::to_string).collect();
        for g in groups {
            if g != "Desktop Entry" && !g.starts_with("Desktop Action ") {
                continue;
            }
            kf.remove_key(&g, "TryExec");
            if let Some(exec) = kf.get(&g, "Exec").map(str::to_string) {
                kf.set(&g, "Exec", &rewrite_exec(&exec, id));
            }
            if g == "Desktop Entry" {
                kf.set(&g, "X-Flatpak", id);
            }
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, kf.to_string()).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

fn walk_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for name in read_names(&root.join(rel)) {
        let r = rel.join(&name);
        match std::fs::symlink_metadata(root.join(&r)) {
            Ok(m) if m.is_dir() => walk_files(root, &r, out),
            Ok(_) => out.push(r),
            Err(_) => {}
        }
    }
}

/// Rebuild `BASE/exports` from the installed apps and swap it in.
pub fn update_exports(inst: &Installation) -> Result<()> {
    let base = &inst.base;
    let new = base.join(".exports.new");
    let _ = std::fs::remove_dir_all(&new);
    std::fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
    for r in inst.installed_refs(Some(Kind::App)) {
        let export = base.join("app").join(&r.id).join("current/active/export");
        let mut files = Vec::new();
        walk_files(&export, Path::new(""), &mut files);
        for rel in files {
            let fname = rel.file_name().and_then(|f| f.to_str()).unwrap_or("");
            if !fname.starts_with(&r.id) {
                continue;
            }
            let dest = new.join(&rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let depth = rel.components().count();
            let mut target = PathBuf::new();
            for _ in 0..depth {
                target.push("..");
            }
            target.push("app");
            target.push(&r.id);
            target.push("current/active/export");
            target.push(&rel);
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(&target, &dest).map_err(|e| Error::io(&dest, e))?;
        }
    }
    let cur = base.join("exports");
    if cur.exists() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &new,
            rustix::fs::CWD,
            &cur,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| Error::io(&cur, e.into()))?;
        let _ = std::fs::remove_dir_all(&new);
    } else {
        std::fs::rename(&new, &cur).map_err(|e| Error::io(&cur, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_rewrite() {
        assert_eq!(
            rewrite_exec("demo %U", "org.kiln.Demo"),
            "kiln app run --command=demo org.kiln.Demo %U"
        );
        assert_eq!(
            rewrite_exec("\"my tool\"", "org.kiln.Demo"),
            "kiln app run --command=\"my tool\" org.kiln.Demo"
        );
    }
}
