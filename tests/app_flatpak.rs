//! Compatibility with the real Flatpak (Debian's 1.14): an app kiln
//! exported installs and runs with `flatpak`, and an app built with
//! `flatpak build-init/build-finish/build-export` installs and runs with
//! kiln; both over HTTP from nginx. Flatpak runs as root with a private
//! system installation (FLATPAK_SYSTEM_DIR). Needs root, flatpak, ostree,
//! bwrap, nginx, gcc, apt-get.

mod app_support;
mod common;
mod remote_support;

use app_support::*;

#[test]
fn flatpak_installs_and_runs_what_kiln_exported() {
    if !have_flatpak() {
        return;
    }
    let w = World::new();
    w.export_runtime(&w.repo);
    let c1 = w.export_app(&w.repo, APP, v1(), &["--share=network"]);
    let web = remote_support::nginx(&w.repo);
    fp_ok(&w, &["remote-add", "--no-gpg-verify", "kiln", &web.url]);
    fp_ok(
        &w,
        &[
            "install",
            "-y",
            "--noninteractive",
            "kiln",
            "app/org.kiln.Demo/x86_64/stable",
        ],
    );
    let mut c = flatpak(&w);
    c.args(["run", APP]);
    let o = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello v1 from org.kiln.Demo\n"
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let info = fp_ok(&w, &["info", "--show-commit", APP]);
    assert_eq!(info.trim(), c1);
    // flatpak sees the permissions kiln put in the commit.
    let perms = fp_ok(&w, &["info", "--show-permissions", APP]);
    assert!(perms.contains("shared=network;"), "{perms}");
    // …and updates from kiln's summary.
    let c2 = w.export_app(&w.repo, APP, v2(), &[]);
    fp_ok(&w, &["update", "-y", "--noninteractive", APP]);
    assert_eq!(fp_ok(&w, &["info", "--show-commit", APP]).trim(), c2);
}

#[test]
fn kiln_installs_and_runs_what_flatpak_built() {
    if !have_flatpak() {
        return;
    }
    let w = World::new();
    let repo = w.path().join("fprepo");
    common::run_ok(common::ostree_repo(&repo, "init").arg("--mode=archive-z2"));
    // Runtime: the same Debian-built tree, exported by flatpak.
    flatpak_export_runtime(&w, &repo);
    // flatpak build-init wants the SDK installed.
    let url = format!("file://{}", repo.display());
    fp_ok(&w, &["remote-add", "--no-gpg-verify", "local", &url]);
    fp_ok(
        &w,
        &[
            "install",
            "-y",
            "--noninteractive",
            "local",
            "runtime/org.kiln.Test/x86_64/1",
        ],
    );
    let app = w.path().join("fpapp");
    let a = app.to_str().unwrap();
    fp_ok(&w, &["build-init", a, "org.kiln.Fp", RUNTIME, RUNTIME, "1"]);
    std::fs::create_dir_all(app.join("files/bin")).unwrap();
    std::fs::write(
        app.join("files/bin/fpdemo"),
        "#!/bin/sh\necho \"built by flatpak: $FLATPAK_ID $1\"\nexit 5\n",
    )
    .unwrap();
    assert!(sh(&format!("chmod +x {a}/files/bin/fpdemo"))
        .status
        .success());
    fp_ok(
        &w,
        &[
            "build-finish",
            a,
            "--command=fpdemo",
            "--filesystem=xdg-download:ro",
        ],
    );
    fp_ok(&w, &["build-export", repo.to_str().unwrap(), a, "stable"]);
    let web = remote_support::nginx(&repo);

    w.ok(&["remote-add", "--no-gpg-verify", "fp", &web.url]);
    w.ok(&["install", "-y", "fp", "org.kiln.Fp"]);
    assert_eq!(
        w.listed_refs(),
        vec![
            "app/org.kiln.Fp/x86_64/stable",
            "runtime/org.kiln.Test/x86_64/1"
        ]
    );
    let (code, out, err) = w.run(&["org.kiln.Fp", "arg1"]);
    assert_eq!(
        (code, out.as_str()),
        (5, "built by flatpak: org.kiln.Fp arg1\n"),
        "{err}"
    );
    let perms = w.ok(&["info", "--show-permissions", "org.kiln.Fp"]);
    assert!(perms.contains("xdg-download:ro"), "{perms}");
    // The installed metadata is flatpak's, byte for byte.
    let expect = std::fs::read(app.join("metadata")).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&w.ok(&["info", "--json", "org.kiln.Fp"])).unwrap();
    let dir = std::path::PathBuf::from(info["deploy_dir"].as_str().unwrap());
    assert_eq!(std::fs::read(dir.join("metadata")).unwrap(), expect);
}
