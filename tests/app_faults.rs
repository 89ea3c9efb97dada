//! Bad input and crashes: a malformed `metadata`, an unknown permission, a
//! runtime no remote has, `xa.metadata` that differs from the tree's
//! `metadata`, a corrupt object on the server, and `kill -9` at every fail
//! point of install and update. Each time: a clear error, nothing
//! half-installed listed, the previous version still runs, and a retry
//! succeeds.

mod app_support;
mod common;
mod remote_support;

use app_support::*;
use std::path::Path;

/// Commit `tree` (with `metadata_file` as its metadata) to `repo` as `r`
/// with `xa.metadata` = `xa`, using ostree, then refresh the summary.
fn hand_commit(w: &World, repo: &Path, r: &str, metadata_file: &str, xa: &str) {
    let t = w.path().join(format!("hand-{}", r.replace('/', "_")));
    std::fs::create_dir_all(t.join("files/bin")).unwrap();
    std::fs::write(t.join("files/bin/demo"), v1()).unwrap();
    std::fs::write(t.join("metadata"), metadata_file).unwrap();
    common::run_ok(
        common::ostree_repo(repo, "commit")
            .arg(format!("--branch={r}"))
            .arg("--canonical-permissions")
            .arg(format!("--add-metadata-string=xa.metadata={xa}"))
            .arg(&t),
    );
    w.ok(&["build-update-repo", repo.to_str().unwrap()]);
}

fn setup() -> Option<World> {
    if !available() {
        return None;
    }
    let w = World::new();
    w.export_runtime(&w.repo);
    w.ok(&[
        "remote-add",
        "--no-gpg-verify",
        "local",
        &format!("file://{}", w.repo.display()),
    ]);
    Some(w)
}

#[test]
fn bad_metadata_and_missing_runtime_are_refused() {
    let Some(w) = setup() else { return };
    let good = "[Application]\nname=org.kiln.A\nruntime=org.kiln.Test/x86_64/1\ncommand=demo\n";

    // Malformed keyfile.
    let bad = "[Application\nname=org.kiln.A\n";
    hand_commit(&w, &w.repo, "app/org.kiln.A/x86_64/stable", bad, bad);
    let err = w.fail(&["install", "-y", "local", "app/org.kiln.A/x86_64/stable"]);
    assert!(err.contains("invalid metadata"), "{err}");

    // Unknown permission.
    let perm = "[Application]\nname=org.kiln.B\nruntime=org.kiln.Test/x86_64/1\n\n[Context]\nsockets=x11;teleport;\n";
    hand_commit(&w, &w.repo, "app/org.kiln.B/x86_64/stable", perm, perm);
    let err = w.fail(&["install", "-y", "local", "org.kiln.B"]);
    assert!(err.contains("teleport") && err.contains("wayland"), "{err}");

    // xa.metadata differs from the tree's metadata file (Flatpak's
    // security invariant).
    let other = good.replace("org.kiln.A", "org.kiln.C");
    let lying = other.replace(
        "command=demo",
        "command=demo\n\n[Context]\nfilesystems=home;",
    );
    hand_commit(&w, &w.repo, "app/org.kiln.C/x86_64/stable", &lying, &other);
    let err = w.fail(&["install", "-y", "local", "org.kiln.C"]);
    assert!(err.contains("does not match its metadata file"), "{err}");

    // A runtime that no remote has.
    let mut missing = good.replace("org.kiln.A", "org.kiln.D");
    missing = missing.replace("org.kiln.Test/x86_64/1", "org.kiln.Missing/x86_64/1");
    hand_commit(
        &w,
        &w.repo,
        "app/org.kiln.D/x86_64/stable",
        &missing,
        &missing,
    );
    let err = w.fail(&["install", "-y", "local", "org.kiln.D"]);
    assert!(
        err.contains("org.kiln.Missing/x86_64/1") && err.contains("no remote has it"),
        "{err}"
    );
    // An unknown name.
    let err = w.fail(&["install", "-y", "local", "org.kiln.Nope"]);
    assert!(err.contains("nothing matches"), "{err}");

    // Nothing half-installed is listed (the runtime of C may be: it is whole).
    for r in w.listed_refs() {
        assert!(r.starts_with("runtime/org.kiln.Test/"), "listed: {r}");
    }
    for id in ["org.kiln.A", "org.kiln.B", "org.kiln.C", "org.kiln.D"] {
        assert!(w.fail(&["run", id]).contains("not installed"));
    }
}

#[test]
fn corrupt_object_on_the_server_keeps_the_old_version() {
    let Some(w) = setup() else { return };
    w.export_app(&w.repo, APP, v1(), &[]);
    w.ok(&["install", "-y", "local", APP]);
    w.export_app(&w.repo, APP, v2(), &[]);
    // Corrupt the new demo script's object.
    let ls = common::run_ok(
        common::ostree_repo(&w.repo, "ls")
            .arg("-C")
            .arg("app/org.kiln.Demo/x86_64/stable")
            .arg("/files/bin/demo"),
    );
    let csum = ls.split_whitespace().nth(4).unwrap().to_string();
    let obj = common::object_path(&w.repo, &csum, "filez");
    let len = std::fs::metadata(&obj).unwrap().len() as usize;
    std::fs::write(&obj, vec![b'X'; len]).unwrap();
    let err = w.fail(&["update", "-y", APP]);
    assert!(
        err.contains(&csum[..16]) || err.contains("checksum") || err.contains("corrupt"),
        "{err}"
    );
    let (code, out, _) = w.run(&[APP]);
    assert_eq!((code, out.as_str()), (3, "hello v1 from org.kiln.Demo\n"));
    assert_eq!(w.listed_refs().len(), 2);
}

#[test]
fn killed_install_and_update_at_every_fail_point() {
    let Some(w) = setup() else { return };
    w.export_app(&w.repo, APP, v1(), &[]);
    let install_points = [
        "pull:after-commitpartial",
        "app:after-pull",
        "app:during-deploy",
        "app:after-deploy",
        "app:before-activate",
        "app:after-activate",
    ];
    for fp in install_points {
        let mut c = w.kiln(&["install", "-y", "local", APP]);
        c.env("KILN_FAILPOINT", fp);
        common::run_killed(c);
        // Whatever is listed runs.
        for r in w.listed_refs() {
            if r.starts_with("app/") {
                let (code, _, err) = w.run(&[APP]);
                assert_eq!(code, 3, "{fp}: listed but broken: {err}");
            }
        }
        // Retry: install, or it was already complete.
        let o = w.kiln(&["install", "-y", "local", APP]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("already installed"),
            "{fp}: {err}"
        );
        let (code, out, _) = w.run(&[APP]);
        assert_eq!(
            (code, out.as_str()),
            (3, "hello v1 from org.kiln.Demo\n"),
            "{fp}"
        );
        w.ok(&["uninstall", "-y", APP]);
    }
    w.ok(&["install", "-y", "local", APP]);

    let update_points = [
        "pull:after-commitpartial",
        "app:after-pull",
        "app:during-deploy",
        "app:after-deploy",
        "app:before-activate",
        "app:after-activate",
        "app:before-prune",
    ];
    let mut current = "hello v1 from org.kiln.Demo\n".to_string();
    for (i, fp) in update_points.iter().enumerate() {
        let next = format!("version {}\n", i + 2);
        w.export_app(
            &w.repo,
            APP,
            &format!(
                "#!/bin/sh\nprintf '{}'\n",
                next.trim_end().to_string() + "\\n"
            ),
            &[],
        );
        let mut c = w.kiln(&["update", "-y", APP]);
        c.env("KILN_FAILPOINT", fp);
        common::run_killed(c);
        let (_, out, err) = w.run(&[APP]);
        assert!(
            out == current || out == next,
            "{fp}: after the crash the app printed {out:?} {err}"
        );
        assert_eq!(w.listed_refs().len(), 2, "{fp}");
        w.ok(&["update", "-y", APP]);
        let (_, out, _) = w.run(&[APP]);
        assert_eq!(out, next, "{fp}: retry");
        current = next;
    }
}
