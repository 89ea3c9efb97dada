//! Objects shared with the OS repository are stored once: an app install
//! hardlinks the content objects a (bare, sysroot-like) OS repository
//! already has instead of downloading them — after verifying them — and a
//! corrupted OS object is refused and downloaded instead. Needs root,
//! bwrap, nginx, gcc, apt-get and ostree.

mod app_support;
mod common;
mod remote_support;

use app_support::*;
use common::{assert_ostree_fsck, ostree_repo, run_ok};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Content objects (`.file`) of a repo: checksum → path.
fn content_objects(repo: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for d in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
        let prefix = d.file_name().to_string_lossy().into_owned();
        for o in std::fs::read_dir(d.path()).unwrap().flatten() {
            let name = o.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_suffix(".file") {
                out.insert(format!("{prefix}{rest}"), o.path());
            }
        }
    }
    out
}

/// `kiln app ARGS` with `env` set.
fn kiln_env(w: &World, env: &[(&str, &Path)], args: &[&str]) -> String {
    let mut c = w.kiln(args);
    for (k, v) in env {
        c.env(k, v);
    }
    run_ok(c)
}

/// Add remote `web` and `install -y --json` in the installation `at`
/// (`--user` or `--system`) given by `env`; the changes.
fn install(w: &World, env: &[(&str, &Path)], at: &str, url: &str) -> Vec<serde_json::Value> {
    kiln_env(w, env, &["remote-add", at, "--no-gpg-verify", "web", url]);
    let out = kiln_env(w, env, &["install", at, "-y", "--json", "web", APP]);
    serde_json::from_str(&out).unwrap()
}

fn transfer<'a>(changes: &'a [serde_json::Value], r: &str) -> &'a serde_json::Value {
    &changes
        .iter()
        .find(|c| c["ref"].as_str().is_some_and(|x| x.starts_with(r)))
        .unwrap_or_else(|| panic!("no change for {r}: {changes:?}"))["transfer"]
}

fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[test]
fn objects_shared_with_the_os_repo_are_stored_once() {
    if !available() || !common::require_root_and_ostree() {
        return;
    }
    let w = World::new();
    let rt = w.export_runtime(&w.repo);
    w.export_app(&w.repo, APP, v1(), &[]);
    let web = remote_support::nginx(&w.repo);

    // The OS repo: bare, as a sysroot's, holding the runtime's files as an
    // OS build would (root-owned, canonical permissions, no xattrs).
    let os = w.path().join("os-repo");
    run_ok(ostree_repo(&os, "init").arg("--mode=bare"));
    run_ok(
        ostree_repo(&os, "commit")
            .args([
                "-b",
                "os/base",
                "--owner-uid=0",
                "--owner-gid=0",
                "--canonical-permissions",
                "--no-xattrs",
                "-s",
                "os",
            ])
            .arg(runtime_files()),
    );
    // A copy with one object corrupted: busybox, the biggest shared file.
    let bad_os = w.path().join("os-repo-bad");
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&os)
            .arg(&bad_os),
    );
    let busybox = common::ls_fields(&os, "os/base", "/bin/busybox")[4].clone();
    let bad_obj = common::object_path(&bad_os, &busybox, "file");
    let mut bytes = std::fs::read(&bad_obj).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&bad_obj, &bytes).unwrap();

    // Without the OS repo (baseline), in its own user installation.
    let plain = w.path().join("plain");
    let base = install(
        &w,
        &[
            ("KILN_APPS_USER_DIR", &plain),
            ("KILN_APPS_OS_REPO", Path::new("none")),
        ],
        "--user",
        &web.url,
    );
    let base_rt = transfer(&base, "runtime/");
    assert_eq!(n(base_rt, "linked_objects"), 0);

    // With it: the system installation.
    let changes = install(&w, &[("KILN_APPS_OS_REPO", &os)], "--system", &web.url);
    let t = transfer(&changes, "runtime/");
    eprintln!("runtime pull without the OS repo: {base_rt}\nwith it: {t}");
    assert!(n(t, "linked_objects") > 0, "{t}");
    assert_eq!(n(t, "refused_objects"), 0, "{t}");
    // Deflate does not shrink binaries tenfold: what was linked is what
    // was not downloaded.
    assert!(
        n(t, "bytes_transferred") + n(t, "linked_bytes") / 10 < n(base_rt, "bytes_transferred"),
        "no fewer bytes downloaded: {t} vs {base_rt}"
    );

    // The shared objects are the OS repo's inodes.
    let app_repo = w.sys.join("repo");
    let ours = content_objects(&app_repo);
    let theirs = content_objects(&os);
    let mut linked = 0u64;
    let mut linked_bytes = 0u64;
    for (c, p) in &ours {
        let Some(q) = theirs.get(c) else { continue };
        let (a, b) = (
            std::fs::symlink_metadata(p).unwrap(),
            std::fs::symlink_metadata(q).unwrap(),
        );
        if !b.file_type().is_file() {
            continue; // symlink objects are recreated, not linked
        }
        assert_eq!((a.ino(), a.dev()), (b.ino(), b.dev()), "{c} not shared");
        assert!(a.nlink() >= 2, "{c}");
        linked += 1;
        linked_bytes += a.len();
    }
    assert!(ours.contains_key(&busybox));
    assert_eq!(
        linked,
        n(t, "linked_objects") + n(transfer(&changes, "app/"), "linked_objects")
    );
    assert_eq!(
        linked_bytes,
        n(t, "linked_bytes") + n(transfer(&changes, "app/"), "linked_bytes")
    );
    eprintln!(
        "{linked} objects ({linked_bytes} bytes) stored once for the OS and the runtime {rt}"
    );

    let (code, out, err) = w.run(&[APP]);
    assert_eq!(
        (code, out.as_str()),
        (3, "hello v1 from org.kiln.Demo\n"),
        "{err}"
    );
    assert_ostree_fsck(&os, "the OS repo");
    assert_ostree_fsck(&app_repo, "the app repo (shared objects)");

    // Uninstalling drops the app side's links only (the remote ref still
    // pins the objects in the app repo); the OS keeps its objects intact.
    let os_busybox = common::object_path(&os, &busybox, "file");
    let before = std::fs::metadata(&os_busybox).unwrap().nlink();
    assert!(before >= 3, "OS repo, app repo and the runtime checkout");
    w.ok(&["uninstall", "--system", "-y", APP]);
    w.ok(&["uninstall", "--system", "-y", "--unused"]);
    assert!(w.listed_refs().is_empty());
    assert!(std::fs::metadata(&os_busybox).unwrap().nlink() < before);
    assert_ostree_fsck(&os, "the OS repo after the apps were uninstalled");

    // A corrupted OS object is not linked: downloaded, and all is well.
    let other = w.path().join("other");
    let changes = install(
        &w,
        &[
            ("KILN_APPS_USER_DIR", &other),
            ("KILN_APPS_OS_REPO", &bad_os),
        ],
        "--user",
        &web.url,
    );
    let t = transfer(&changes, "runtime/");
    assert_eq!(n(t, "refused_objects"), 1, "{t}");
    assert!(n(t, "linked_objects") > 0, "{t}");
    let got =
        std::fs::metadata(common::object_path(&other.join("repo"), &busybox, "file")).unwrap();
    let bad = std::fs::metadata(&bad_obj).unwrap();
    assert_ne!((got.ino(), got.dev()), (bad.ino(), bad.dev()));
    let mut c = w.kiln(&["run", APP]);
    c.env("KILN_APPS_USER_DIR", &other);
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ostree_fsck(
        &other.join("repo"),
        "the app repo (corrupt OS object refused)",
    );
    // …and the downloaded busybox is the real one.
    assert_eq!(
        std::fs::read(common::object_path(&other.join("repo"), &busybox, "file")).unwrap(),
        std::fs::read(runtime_files().join("bin/busybox")).unwrap()
    );
}
