//! `kiln app` for real: a runtime built from Debian packages and two app
//! versions served by nginx on 127.0.0.1; install (the runtime comes
//! along), run (output and exit code), update, rollback (offline),
//! `update --commit=`, history, overrides, ps/kill, uninstall; two apps
//! sharing one runtime. Needs root, bwrap, nginx, gcc, apt-get.

mod app_support;
mod common;
mod remote_support;

use app_support::*;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

#[test]
fn install_run_update_rollback_uninstall_over_http() {
    if !available() {
        return;
    }
    let w = World::new();
    let rt = w.export_runtime(&w.repo);
    let c1 = w.export_app(&w.repo, APP, v1(), &[]);
    let web = remote_support::nginx(&w.repo);

    w.ok(&["remote-add", "--no-gpg-verify", "web", &web.url]);
    let ls: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["remote-ls", "--json", "web"])).unwrap();
    assert_eq!(ls.len(), 2, "{ls:?}");
    assert!(ls.iter().all(|r| r["installed_size"].as_u64().unwrap() > 0));

    // Install pulls the runtime too.
    w.ok(&["install", "-y", "web", APP]);
    assert_eq!(
        w.listed_refs(),
        vec![
            "app/org.kiln.Demo/x86_64/stable",
            "runtime/org.kiln.Test/x86_64/1"
        ]
    );
    let list = w.list();
    assert_eq!(list[0]["commit"], c1.as_str());
    assert_eq!(list[0]["origin"], "web");
    assert_eq!(list[1]["commit"], rt.as_str());
    // Flatpak's layout.
    let appdir = w.sys.join("app/org.kiln.Demo/x86_64/stable");
    assert_eq!(
        std::fs::read_link(appdir.join("active")).unwrap().to_str(),
        Some(c1.as_str())
    );
    assert!(appdir.join(&c1).join("files/bin/demo").exists());
    assert!(appdir.join(&c1).join("metadata").exists());
    let desktop = w
        .sys
        .join("exports/share/applications/org.kiln.Demo.desktop");
    let text = std::fs::read_to_string(&desktop).unwrap();
    assert!(
        text.contains("Exec=kiln app run --command=demo org.kiln.Demo %U"),
        "{text}"
    );

    let (code, out, err) = w.run(&[APP]);
    assert_eq!(
        (code, out.as_str()),
        (3, "hello v1 from org.kiln.Demo\n"),
        "{err}"
    );
    let (code, out, _) = w.run(&[
        "--command=sh",
        APP,
        "-c",
        "echo args: \"$@\"; exit 7",
        "x",
        "--flag",
    ]);
    assert_eq!((code, out.as_str()), (7, "args: --flag\n"));
    // Data directory made on first run.
    assert!(w.home.join(".var/app/org.kiln.Demo/config").is_dir());

    // Nothing to update yet.
    let up: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["update", "-y", "--json"])).unwrap();
    assert!(up.iter().all(|c| c["action"] == "unchanged"), "{up:?}");

    // v2 on the server: update.
    let c2 = w.export_app(&w.repo, APP, v2(), &[]);
    let upd: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["remote-ls", "--updates", "--json", "web"])).unwrap();
    assert_eq!(upd.len(), 1);
    w.ok(&["update", "-y", APP]);
    let (code, out, _) = w.run(&[APP]);
    assert_eq!((code, out.as_str()), (4, "hello v2 from org.kiln.Demo\n"));
    let info: serde_json::Value = serde_json::from_str(&w.ok(&["info", "--json", APP])).unwrap();
    assert_eq!(info["commit"], c2.as_str());
    assert_eq!(info["previous_commit"], c1.as_str());

    // Rollback works offline: the server is gone.
    drop(web);
    w.ok(&["rollback", APP]);
    let (code, out, _) = w.run(&[APP]);
    assert_eq!((code, out.as_str()), (3, "hello v1 from org.kiln.Demo\n"));
    assert_eq!(w.ok(&["info", "--show-commit", APP]).trim(), c1);
    // …and back (the rolled-back-from commit is kept as previous).
    w.ok(&["rollback", APP]);
    assert_eq!(w.ok(&["info", "--show-commit", APP]).trim(), c2);
    // update --commit= of the kept previous commit: offline too.
    w.ok(&["update", &format!("--commit={}", &c1[..12]), APP]);
    assert_eq!(w.ok(&["info", "--show-commit", APP]).trim(), c1);

    // A third version; --commit= of an old commit fetched from the server.
    let web = remote_support::nginx(&w.repo);
    w.ok(&["remote-delete", "--force", "web"]);
    w.ok(&["remote-add", "--no-gpg-verify", "web", &web.url]);
    let c3 = w.export_app(&w.repo, APP, "#!/bin/sh\necho v3\n", &[]);
    w.ok(&["update", "-y", APP]);
    assert_eq!(w.ok(&["info", "--show-commit", APP]).trim(), c3);
    w.ok(&["update", &format!("--commit={c2}"), APP]);
    let (code, out, _) = w.run(&[APP]);
    assert_eq!((code, out.as_str()), (4, "hello v2 from org.kiln.Demo\n"));
    // Only the active and the previous commit directories are kept.
    let dirs: Vec<String> = std::fs::read_dir(&appdir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64)
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");

    let hist: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["history", "--json", APP])).unwrap();
    let actions: Vec<&str> = hist.iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["install", "update", "rollback", "rollback", "update", "update", "update"]
    );

    // Uninstall with its data; the runtime stays until --unused.
    w.ok(&["uninstall", "-y", "--delete-data", APP]);
    assert_eq!(w.listed_refs(), vec!["runtime/org.kiln.Test/x86_64/1"]);
    assert!(!w.home.join(".var/app/org.kiln.Demo").exists());
    assert!(!desktop.exists());
    assert!(w.fail(&["run", APP]).contains("not installed"));
    w.ok(&["uninstall", "-y", "--unused"]);
    assert!(w.listed_refs().is_empty());
    assert!(!w.sys.join("runtime/org.kiln.Test").exists());
}

#[test]
fn two_apps_share_one_runtime() {
    if !available() {
        return;
    }
    let w = World::new();
    w.export_runtime(&w.repo);
    w.export_app(&w.repo, APP, v1(), &[]);
    w.export_app(&w.repo, "org.kiln.Other", "#!/bin/sh\necho other\n", &[]);
    let url = format!("file://{}", w.repo.display());
    w.ok(&["remote-add", "--no-gpg-verify", "local", &url]);
    w.ok(&["install", "-y", "local", APP]);
    let before = du_bytes(&w.sys);
    w.ok(&["install", "-y", "local", "org.kiln.Other"]);
    let after = du_bytes(&w.sys);
    assert_eq!(w.listed_refs().len(), 3);
    // The second app costs its own files only, not a second runtime.
    let rt_size = du_bytes(&w.sys.join("runtime"));
    assert!(
        after - before < rt_size / 10,
        "second app added {} bytes (runtime is {rt_size})",
        after - before
    );
    assert_eq!(w.run(&["org.kiln.Other"]).1, "other\n");
    // Checkouts are hardlinks to the repo's objects.
    let busybox = std::fs::read_dir(w.sys.join("runtime/org.kiln.Test/x86_64/1"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().len() == 64)
        .unwrap()
        .path()
        .join("files/bin/busybox");
    assert!(std::fs::metadata(&busybox).unwrap().nlink() >= 2);
    eprintln!(
        "disk: runtime {} bytes; two apps + runtime {} bytes (second app added {})",
        rt_size,
        after,
        after - before
    );
}

fn du_bytes(p: &std::path::Path) -> u64 {
    let o = sh(&format!("du -s -B1 {}", p.display()));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn overrides_permissions_ps_and_kill() {
    if !available() {
        return;
    }
    let w = World::new();
    w.export_runtime(&w.repo);
    w.export_app(
        &w.repo,
        APP,
        "#!/bin/sh\nexec sleep 600\n",
        &["--share=network", "--filesystem=xdg-download:ro"],
    );
    w.ok(&[
        "remote-add",
        "--no-gpg-verify",
        "local",
        &format!("file://{}", w.repo.display()),
    ]);
    w.ok(&["install", "-y", "local", APP]);

    let perms = w.ok(&["info", "--show-permissions", APP]);
    assert!(perms.contains("shared=network;"), "{perms}");
    assert!(perms.contains("filesystems=xdg-download:ro;"), "{perms}");
    w.ok(&[
        "override",
        "--unshare=network",
        "--filesystem=home:ro",
        "--env=FOO=bar",
        APP,
    ]);
    let show = w.ok(&["override", "--show", APP]);
    assert!(show.contains("shared=!network;"), "{show}");
    let perms = w.ok(&["permissions", APP]);
    assert!(
        perms.contains("shared=!network;") && perms.contains("home:ro"),
        "{perms}"
    );
    let (_, out, _) = w.run(&["--command=sh", APP, "-c", "echo $FOO"]);
    assert_eq!(out, "bar\n");
    // An unknown permission is refused with the valid ones listed.
    let err = w.fail(&["override", "--socket=telepathy", APP]);
    assert!(
        err.contains("telepathy") && err.contains("wayland"),
        "{err}"
    );
    w.ok(&["override", "--reset", APP]);
    assert!(w.ok(&["override", "--show", APP]).trim().is_empty());

    // ps / kill.
    let rt = w.path().join("xdg");
    std::fs::create_dir_all(&rt).unwrap();
    let mut child = w
        .kiln(&["run", APP])
        .env("XDG_RUNTIME_DIR", &rt)
        .spawn()
        .unwrap();
    let ps = |w: &World| -> Vec<serde_json::Value> {
        let mut c = w.kiln(&["ps", "--json"]);
        c.env("XDG_RUNTIME_DIR", &rt);
        serde_json::from_str(&common::run_ok(c)).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let l = ps(&w);
        if l.iter().any(|i| i["child_pid"].is_number()) || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["app"], APP);
    assert_eq!(listed[0]["pid"].as_u64(), Some(u64::from(child.id())));
    let mut c = w.kiln(&["kill", APP]);
    c.env("XDG_RUNTIME_DIR", &rt);
    common::run_ok(c);
    let st = child.wait().unwrap();
    assert!(!st.success());
    assert!(ps(&w).is_empty());
}
