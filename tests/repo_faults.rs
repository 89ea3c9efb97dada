//! `kiln repo` when things go wrong: corrupt objects, a full disk, and a crash
//! at each durable step of a commit. Whatever happens, the repo must stay one
//! that `ostree fsck` accepts, and kiln must say clearly what went wrong.
//!
//! Every test walks the four repo modes and says which one failed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use tempfile::TempDir;

/// A repo made by ostree with one commit of the tricky tree on `main`.
struct Fixture {
    dir: TempDir,
    mode: &'static str,
    repo: PathBuf,
}

impl Fixture {
    fn new(mode: &'static str) -> Fixture {
        let dir = scratch();
        let repo = dir.path().join("repo");
        run_ok(ostree_repo(&repo, "init").arg(format!("--mode={mode}")));
        run_ok(
            ostree_repo(&repo, "commit")
                .args([
                    "-b",
                    "main",
                    &format!("--timestamp={TIMESTAMP}"),
                    "-s",
                    "subject",
                ])
                .arg(tricky_tree()),
        );
        Fixture { dir, mode, repo }
    }
}

/// One corrupted object: its checksum and type (`file`, `dirtree`, `dirmeta`,
/// `commit`).
struct Corrupt {
    checksum: String,
    kind: &'static str,
}

/// Inverts the byte at `offset` of `path` in place.
fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(offset < bytes.len(), "{}: no byte {offset}", path.display());
    bytes[offset] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

fn flip_middle_byte(path: &Path) {
    let len = fs::metadata(path).unwrap().len() as usize;
    flip_byte(path, len / 2);
}

/// Corrupts the content object of file `path` of `main`.
fn corrupt_content(fx: &Fixture, path: &str) -> Corrupt {
    let checksum = ls_fields(&fx.repo, "main", path)[4].clone();
    let ext = if fx.mode == "archive" {
        "filez"
    } else {
        "file"
    };
    flip_middle_byte(&object_path(&fx.repo, &checksum, ext));
    Corrupt {
        checksum,
        kind: "file",
    }
}

/// Corrupts the dirtree (`field` 4) or dirmeta (`field` 5) of directory `path`.
fn corrupt_dir(fx: &Fixture, path: &str, field: usize) -> Corrupt {
    let checksum = ls_fields(&fx.repo, "main", path)[field].clone();
    let kind = if field == 4 { "dirtree" } else { "dirmeta" };
    flip_middle_byte(&object_path(&fx.repo, &checksum, kind));
    Corrupt { checksum, kind }
}

/// Corrupts one letter of the subject of the commit `main` points at.
fn corrupt_commit(fx: &Fixture) -> Corrupt {
    let checksum = ostree_rev_parse(&fx.repo, "main");
    let path = object_path(&fx.repo, &checksum, "commit");
    let bytes = fs::read(&path).unwrap();
    let at = bytes
        .windows(7)
        .position(|w| w == b"subject")
        .expect("subject in commit object");
    flip_byte(&path, at);
    Corrupt {
        checksum,
        kind: "commit",
    }
}

fn combined_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that `ostree fsck` and `kiln repo fsck` both fail on `fx`, and that
/// kiln names every object of `corrupt` with its type on one line.
fn assert_fsck_names(fx: &Fixture, corrupt: &[Corrupt]) {
    let context = format!("mode {}", fx.mode);
    let theirs = run(ostree_repo(&fx.repo, "fsck"));
    assert!(
        !theirs.status.success(),
        "{context}: the corruption is real: ostree fsck fails too"
    );
    let ours = run(kiln_repo(&fx.repo, "fsck"));
    let text = combined_output(&ours);
    assert!(
        ours.status.code().is_some_and(|c| c != 0),
        "{context}: `kiln repo fsck` must exit non-zero on a corrupt repo ({}):\n{text}",
        ours.status
    );
    for c in corrupt {
        assert!(
            text.lines()
                .any(|l| l.contains(&c.checksum) && l.contains(c.kind)),
            "{context}: `kiln repo fsck` does not name corrupt {} object {} on a line:\n{text}",
            c.kind,
            c.checksum
        );
    }
}

#[test]
fn fsck_names_a_corrupt_content_object() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let fx = Fixture::new(mode);
        let c = corrupt_content(&fx, "/sizes/65537");
        assert_fsck_names(&fx, &[c]);
    }
}

#[test]
fn fsck_names_a_corrupt_dirtree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let fx = Fixture::new(mode);
        let c = corrupt_dir(&fx, "/sizes", 4);
        assert_fsck_names(&fx, &[c]);
    }
}

#[test]
fn fsck_names_a_corrupt_dirmeta() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let fx = Fixture::new(mode);
        let c = corrupt_dir(&fx, "/xattrs/dir", 5);
        assert_fsck_names(&fx, &[c]);
    }
}

#[test]
fn fsck_names_a_corrupt_commit() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let fx = Fixture::new(mode);
        let c = corrupt_commit(&fx);
        assert_fsck_names(&fx, &[c]);
    }
}

#[test]
fn fsck_names_every_corrupt_object_not_just_the_first() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let fx = Fixture::new(mode);
        let a = corrupt_content(&fx, "/modes/0755");
        let b = corrupt_dir(&fx, "/links", 4);
        assert_fsck_names(&fx, &[a, b]);
    }
}

#[test]
fn copy_checkout_of_a_corrupt_file_is_refused() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let fx = Fixture::new(mode);
        corrupt_content(&fx, "/sizes/65537");
        let dest = fx.dir.path().join("checkout");
        let (_, stderr) = run_fail(
            kiln_repo(&fx.repo, "checkout")
                .arg("-C")
                .arg("main")
                .arg(&dest),
        );
        let context = format!("mode {mode}: checkout -C of a corrupt object");
        assert_one_error_line(&stderr, &context);
        let written = dest.join("sizes/65537");
        if written.exists() {
            let good = fs::read(tricky_tree().join("sizes/65537")).unwrap();
            assert!(
                fs::read(&written).unwrap() == good,
                "{context}: wrote the corrupt bytes to {}",
                written.display()
            );
        }
    }
}

/// A tmpfs mounted for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let data = std::ffi::CString::new(format!("size={size},mode=0755")).unwrap();
        rustix::mount::mount(
            "tmpfs",
            path,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", path.display()));
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Everything under `dir` that is not a directory.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found
}

/// A small tree with one file of `content`.
fn small_tree(at: &Path, content: &str) -> PathBuf {
    fs::create_dir_all(at.join("etc")).unwrap();
    fs::write(at.join("etc/motd"), content).unwrap();
    at.to_path_buf()
}

fn commit_cmd(repo: &Path, tree: &Path) -> std::process::Command {
    let mut cmd = kiln_repo(repo, "commit");
    cmd.args([
        "-b",
        "main",
        &format!("--timestamp={TIMESTAMP}"),
        "-s",
        "subject",
    ])
    .arg(tree);
    cmd
}

#[test]
fn commit_on_a_full_disk_fails_cleanly() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let context = format!("mode {mode}: commit of 3.4 MiB onto a 2 MiB tmpfs");
        let dir = scratch();
        let small = small_tree(&dir.path().join("small"), "small\n");
        let other = small_tree(&dir.path().join("other"), "other\n");
        let mount = Tmpfs::mount(&dir.path().join("mnt"), "2m");
        let repo = mount.0.join("repo");
        run_ok(kiln_repo(&repo, "init").arg(format!("--mode={mode}")));
        let before = run_ok(&mut commit_cmd(&repo, &small)).trim().to_owned();

        let (_, stderr) = run_fail(&mut commit_cmd(&repo, tricky_tree()));
        assert_one_error_line(&stderr, &context);
        assert!(
            stderr.to_lowercase().contains("space"),
            "{context}: the error should say the disk is full: {stderr}"
        );
        assert_eq!(
            ostree_rev_parse(&repo, "main"),
            before,
            "{context}: ref main moved"
        );

        // The next command works and leaves no partial object behind in tmp/.
        let after = run_ok(&mut commit_cmd(&repo, &other)).trim().to_owned();
        assert_eq!(
            ostree_rev_parse(&repo, "main"),
            after,
            "{context}: the next commit moved main"
        );
        let garbage = files_under(&repo.join("tmp"));
        assert!(
            garbage.is_empty(),
            "{context}: left in tmp/ after the next commit: {garbage:?}"
        );
        assert_ostree_fsck(&repo, &context);
    }
}

/// The checksum ostree gives to `second` committed on top of `first` on
/// `main`, in a fresh `mode` repo; also returns its checksum of `first`.
fn ostree_checksums(dir: &Path, mode: &str, first: &Path, second: &Path) -> (String, String) {
    let repo = dir.join("oracle");
    run_ok(ostree_repo(&repo, "init").arg(format!("--mode={mode}")));
    let commit = |tree: &Path| {
        run_ok(
            ostree_repo(&repo, "commit")
                .args([
                    "-b",
                    "main",
                    &format!("--timestamp={TIMESTAMP}"),
                    "-s",
                    "subject",
                ])
                .arg(tree),
        )
        .trim()
        .to_owned()
    };
    (commit(first), commit(second))
}

/// Kills kiln at fail point `name` while it commits the tricky tree on top of
/// a small commit; the repo must pass `ostree fsck`, `main` must be the old or
/// the new commit, and the next commit must work.
fn assert_survives_crash_at(name: &str) {
    for mode in MODES {
        let context = format!("mode {mode}: KILN_FAILPOINT={name}");
        let dir = scratch();
        let small = small_tree(&dir.path().join("small"), "small\n");
        let (want_first, want_second) = ostree_checksums(dir.path(), mode, &small, tricky_tree());
        let repo = dir.path().join("repo");
        run_ok(kiln_repo(&repo, "init").arg(format!("--mode={mode}")));
        let first = run_ok(&mut commit_cmd(&repo, &small)).trim().to_owned();
        assert_eq!(
            first, want_first,
            "{context}: kiln's first commit differs from ostree's (see repo_compat)"
        );

        run_killed(commit_cmd(&repo, tricky_tree()).env("KILN_FAILPOINT", name));
        assert_ostree_fsck(&repo, &format!("{context}, after the crash"));
        let main = ostree_rev_parse(&repo, "main");
        assert!(
            main == first || main == want_second,
            "{context}: main is {main}, neither the old commit {first} nor the new {want_second}"
        );

        let next = run_ok(&mut commit_cmd(&repo, tricky_tree()))
            .trim()
            .to_owned();
        if main == first {
            assert_eq!(next, want_second, "{context}: the commit after the crash");
        }
        assert_eq!(
            ostree_rev_parse(&repo, "main"),
            next,
            "{context}: the commit after the crash moved main"
        );
        assert_ostree_fsck(&repo, &format!("{context}, after the next commit"));
    }
}

#[test]
fn crash_after_objects_keeps_the_repo_sound() {
    if !require_root_and_ostree() {
        return;
    }
    assert_survives_crash_at("commit:after-objects");
}

#[test]
fn crash_after_syncfs_keeps_the_repo_sound() {
    if !require_root_and_ostree() {
        return;
    }
    assert_survives_crash_at("commit:after-syncfs");
}

#[test]
fn crash_before_ref_keeps_the_repo_sound() {
    if !require_root_and_ostree() {
        return;
    }
    assert_survives_crash_at("commit:before-ref");
}
