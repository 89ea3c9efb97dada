//! Flatpak single-file bundles against the real Flatpak (Debian's 1.14):
//! `kiln app build-bundle` → `flatpak build-import-bundle` and
//! `flatpak install --bundle` (then `flatpak run`); `flatpak build-bundle`
//! → `kiln app build-import-bundle`; both ways the same commit and a
//! clean `ostree fsck`. Damaged bundles are refused and leave the repo as
//! it was. Needs root, flatpak, ostree, bwrap, nginx, gcc, apt-get.

mod app_support;
mod common;

use app_support::*;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes (the state of a repo).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && !p.ends_with(".lock") {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn flatpak_imports_and_installs_kiln_bundles() {
    if !have_flatpak() {
        return;
    }
    let w = World::new();
    let rt_commit = w.export_runtime(&w.repo);
    let c1 = w.export_app(&w.repo, APP, v1(), &["--share=network"]);

    let app_bundle = w.path().join("demo.flatpak");
    let out = w.ok(&[
        "build-bundle",
        "--json",
        s(&w.repo),
        s(&app_bundle),
        APP,
        "stable",
    ]);
    assert_eq!(json_commit(&out), c1);
    let head = std::fs::read(&app_bundle).unwrap();
    // Flatpak's header: the first metadata key is `flatpak`.
    assert!(head.windows(8).take(64).any(|x| x == b"flatpak\0"));

    // flatpak build-import-bundle into a fresh repo: same commit, fsck clean.
    let fresh = w.path().join("fresh");
    common::run_ok(common::ostree_repo(&fresh, "init").arg("--mode=archive-z2"));
    fp_ok(&w, &["build-import-bundle", s(&fresh), s(&app_bundle)]);
    assert_eq!(
        common::ostree_rev_parse(&fresh, "app/org.kiln.Demo/x86_64/stable"),
        c1
    );
    common::assert_ostree_fsck(&fresh, "flatpak build-import-bundle of kiln's bundle");

    // The runtime, too, and then flatpak install --bundle of both + run.
    let rt_bundle = w.path().join("rt.flatpak");
    let out = w.ok(&[
        "build-bundle",
        "--runtime",
        "--json",
        s(&w.repo),
        s(&rt_bundle),
        RUNTIME,
        "1",
    ]);
    assert_eq!(json_commit(&out), rt_commit);
    fp_ok(
        &w,
        &[
            "install",
            "-y",
            "--noninteractive",
            "--bundle",
            s(&rt_bundle),
        ],
    );
    fp_ok(
        &w,
        &[
            "install",
            "-y",
            "--noninteractive",
            "--bundle",
            s(&app_bundle),
        ],
    );
    let info = fp_ok(&w, &["info", "--show-commit", APP]);
    assert_eq!(info.trim(), c1);
    let mut c = flatpak(&w);
    c.args(["run", APP]);
    let o = c.output().unwrap();
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).as_ref()),
        (Some(3), "hello v1 from org.kiln.Demo\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let perms = fp_ok(&w, &["info", "--show-permissions", APP]);
    assert!(perms.contains("shared=network;"), "{perms}");
}

#[test]
fn kiln_imports_flatpak_bundles() {
    if !have_flatpak() {
        return;
    }
    let w = World::new();
    // A runtime exported by flatpak, and an app exported by kiln, both
    // bundled by flatpak.
    let fprepo = w.path().join("fprepo");
    common::run_ok(common::ostree_repo(&fprepo, "init").arg("--mode=archive-z2"));
    flatpak_export_runtime(&w, &fprepo);
    let rt_commit = common::ostree_rev_parse(&fprepo, "runtime/org.kiln.Test/x86_64/1");
    let c1 = w.export_app(&fprepo, APP, v1(), &[]);

    let rt_bundle = w.path().join("rt.flatpak");
    let app_bundle = w.path().join("demo.flatpak");
    fp_ok(
        &w,
        &[
            "build-bundle",
            "--runtime",
            s(&fprepo),
            s(&rt_bundle),
            RUNTIME,
            "1",
        ],
    );
    fp_ok(
        &w,
        &["build-bundle", s(&fprepo), s(&app_bundle), APP, "stable"],
    );

    let dst = w.path().join("dst");
    let out = w.ok(&["build-import-bundle", "--json", s(&dst), s(&rt_bundle)]);
    assert_eq!(json_commit(&out), rt_commit);
    let out = w.ok(&["build-import-bundle", "--json", s(&dst), s(&app_bundle)]);
    assert_eq!(json_commit(&out), c1);
    assert_eq!(
        common::ostree_rev_parse(&dst, "runtime/org.kiln.Test/x86_64/1"),
        rt_commit
    );
    assert_eq!(
        common::ostree_rev_parse(&dst, "app/org.kiln.Demo/x86_64/stable"),
        c1
    );
    common::assert_ostree_fsck(&dst, "kiln build-import-bundle of flatpak's bundles");

    // The imported repo serves kiln installs: install and run from it.
    let url = format!("file://{}", dst.display());
    w.ok(&["remote-add", "--no-gpg-verify", "b", &url]);
    w.ok(&["install", "-y", "b", APP]);
    let (code, out, err) = w.run(&[APP]);
    assert_eq!(
        (code, out.as_str()),
        (3, "hello v1 from org.kiln.Demo\n"),
        "{err}"
    );
}

#[test]
fn damaged_bundles_are_refused_and_change_nothing() {
    if !available() {
        return;
    }
    let w = World::new();
    w.export_runtime(&w.repo);
    w.export_app(&w.repo, APP, v1(), &[]);
    let bundle = w.path().join("demo.flatpak");
    w.ok(&["build-bundle", s(&w.repo), s(&bundle), APP, "stable"]);
    let good = std::fs::read(&bundle).unwrap();

    // A repo with something in it already.
    let dst = w.path().join("dst");
    w.export_runtime(&dst);
    let before = snapshot(&dst);

    let bad = w.path().join("bad.flatpak");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("empty", Vec::new()),
        ("not a bundle", b"[Flatpak Ref]\nName=x\n".to_vec()),
        ("a flipped byte in a part", {
            let mut b = good.clone();
            let at = b.len() / 2;
            b[at] ^= 0x55;
            b
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&bad, &bytes).unwrap();
        let err = w.fail(&["build-import-bundle", s(&dst), s(&bad)]);
        assert!(err.contains("not a valid Flatpak bundle"), "{what}: {err}");
        common::assert_one_error_line(&err, what);
        assert!(snapshot(&dst) == before, "{what}: the repo changed");
    }
    // A missing file is an I/O error naming it.
    let err = w.fail(&[
        "build-import-bundle",
        s(&dst),
        s(&w.path().join("nope.flatpak")),
    ]);
    assert!(err.contains("nope.flatpak"), "{err}");
    // And the good one still imports.
    std::fs::write(&bad, &good).unwrap();
    w.ok(&["build-import-bundle", s(&dst), s(&bad)]);
    common::assert_ostree_fsck(&dst, "after the refused bundles");
}
