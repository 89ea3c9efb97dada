//! Package layering on a scratch sysroot: `kiln install` of a package
//! with a dependency (conffile, /opt, /var/lib, a system user), a local
//! .deb, `--dry-run`, `uninstall` back to the base, `override remove` of
//! a base package, `upgrade` of the base keeping the layers, and an
//! upgrade whose layered package no longer resolves; `kiln diff` lists
//! the packages added and removed. The real `ostree` checks every sysroot
//! (`admin status`, `fsck`).

#[path = "layer_support/mod.rs"]
mod support;

use std::fs;
use support::*;

#[test]
fn install_dry_run_local_uninstall() {
    if !have_env() {
        return;
    }
    let e = Env::new("install");
    let base_dep = e.deployment(0);
    let before = e.deployments();

    // --dry-run resolves and changes nothing.
    let o = ok(&mut e.kiln(&["install", "--dry-run", "kiln-hello"]));
    assert!(
        o.contains("kiln-libhello 1.0") && o.contains("kiln-hello 1.0"),
        "{o}"
    );
    assert_eq!(e.deployments(), before);

    ok(&mut e.kiln(&["install", "-y", "kiln-hello"]));
    let st = e.status();
    let d0 = &st["deployments"][0];
    assert_eq!(d0["layered_packages"], serde_json::json!(["kiln-hello"]));
    assert_eq!(d0["base_checksum"].as_str(), Some(e.base.as_str()));
    assert_ne!(d0["checksum"].as_str(), Some(e.base.as_str()));
    assert_eq!(
        st["deployments"][1]["checksum"].as_str(),
        Some(e.base.as_str())
    );
    let dep = e.deployment(0);
    // The package, its dependency, its conffile (default and /etc copy).
    assert!(dep.join("usr/bin/kiln-hello").is_file());
    assert!(dep.join("usr/lib/kiln/libhello.txt").is_file());
    assert_eq!(
        fs::read_to_string(dep.join("usr/etc/kiln-hello.conf")).unwrap(),
        "greeting=hi\n"
    );
    assert_eq!(
        fs::read_to_string(dep.join("etc/kiln-hello.conf")).unwrap(),
        "greeting=hi\n"
    );
    // /opt content under /usr/lib/opt, linked from /var/opt at boot.
    assert_eq!(
        fs::read_to_string(dep.join("usr/lib/opt/kiln-hello/data")).unwrap(),
        "data\n"
    );
    let tl = fs::read_to_string(dep.join("usr/lib/tmpfiles.d/kiln-layer.conf")).unwrap();
    assert!(
        tl.contains("L /var/opt/kiln-hello - - - - /usr/lib/opt/kiln-hello"),
        "{tl}"
    );
    // /var/lib content: tmpfiles.d + factory copy; /var itself empty.
    let tv = fs::read_to_string(dep.join("usr/lib/tmpfiles.d/kiln-var.conf")).unwrap();
    assert!(tv.contains("C /var/lib/kiln-hello/state"), "{tv}");
    assert!(dep
        .join("usr/share/factory/var/lib/kiln-hello/state")
        .is_file());
    assert!(fs::read_dir(dep.join("var")).unwrap().next().is_none());
    // The system user made by the postinst, and its sysusers.d line.
    let su = fs::read_to_string(dep.join("usr/lib/sysusers.d/kiln-layer.conf")).unwrap();
    assert!(su.contains("u kilnhello "), "{su}");
    assert!(fs::read_to_string(dep.join("usr/etc/passwd"))
        .unwrap()
        .contains("kilnhello:"));
    // dpkg knows it, in the tree's database; no /etc symlink left.
    let status = fs::read_to_string(dep.join("usr/lib/sysimage/dpkg/status")).unwrap();
    assert!(status.contains("Package: kiln-hello\n"));
    assert!(fs::symlink_metadata(dep.join("etc")).unwrap().is_dir());
    // The base deployment is untouched.
    assert!(!base_dep.join("usr/bin/kiln-hello").exists());
    e.check_clean();
    // kiln diff (base -> layered): the files, then the packages with
    // their versions.
    let o = ok(&mut e.kiln(&["diff"]));
    assert!(o.contains("  A /usr/bin/kiln-hello\n"), "{o}");
    let pkgs = o.split_once("\nPackages:\n").map(|(_, p)| p).unwrap_or("");
    assert!(
        pkgs.starts_with("  Added:\n    kiln-hello 1.0\n    kiln-libhello 1.0\n"),
        "{o}"
    );
    assert!(
        pkgs.ends_with("2 added, 0 removed, 0 upgraded, 0 downgraded\n"),
        "{o}"
    );
    let d = diff_json(&e);
    assert_eq!(
        d["packages"]["added"],
        serde_json::json!([
            {"name": "kiln-hello", "version": "1.0", "arch": "all"},
            {"name": "kiln-libhello", "version": "1.0", "arch": "all"},
        ]),
        "{d}"
    );
    for k in ["removed", "upgraded", "downgraded"] {
        assert_eq!(d["packages"][k], serde_json::json!([]), "{k}: {d}");
    }
    let origin = fs::read_to_string(format!("{}.origin", dep.display())).unwrap();
    assert!(
        origin.contains("[kiln]") && origin.contains("packages=kiln-hello;"),
        "{origin}"
    );

    // Again: refused, or nothing with --idempotent.
    let err = fails(&mut e.kiln(&["install", "kiln-hello"]));
    assert!(err.contains("already requested"), "{err}");
    let o = ok(&mut e.kiln(&["install", "--idempotent", "kiln-hello"]));
    assert!(o.contains("No change"), "{o}");

    // A local .deb.
    let local = e.local("kiln-local_1.0_all.deb");
    ok(&mut e.kiln(&["install", local.to_str().unwrap()]));
    let dep = e.deployment(0);
    assert!(dep.join("usr/share/kiln-local/file").is_file());
    assert!(dep.join("usr/bin/kiln-hello").is_file());
    assert_eq!(
        e.status()["deployments"][0]["layered_packages"],
        serde_json::json!(["kiln-hello", "kiln-local"])
    );
    e.check_clean();

    // Uninstall both: back to the base commit itself.
    ok(&mut e.kiln(&["uninstall", "kiln-hello", "kiln-local"]));
    let st = e.status();
    assert_eq!(
        st["deployments"][0]["checksum"].as_str(),
        Some(e.base.as_str())
    );
    assert_eq!(
        st["deployments"][0]["layered_packages"],
        serde_json::json!([])
    );
    let dep = e.deployment(0);
    assert!(!dep.join("usr/bin/kiln-hello").exists());
    assert!(!dep.join("usr/share/kiln-local").exists());
    // kiln diff (layered -> base): all three removed.
    let d = diff_json(&e);
    assert_eq!(
        package_names(&d["packages"]["removed"]),
        ["kiln-hello", "kiln-libhello", "kiln-local"],
        "{d}"
    );
    assert_eq!(d["packages"]["added"], serde_json::json!([]), "{d}");
    let err = fails(&mut e.kiln(&["uninstall", "kiln-hello"]));
    assert!(err.contains("not layered"), "{err}");
    e.check_clean();
}

fn diff_json(e: &Env) -> serde_json::Value {
    serde_json::from_str(&ok(&mut e.kiln(&["diff", "--json"]))).unwrap()
}

fn package_names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn override_remove_and_upgrade_keep_layers() {
    if !have_env() {
        return;
    }
    let e = Env::new("upgrade");
    assert!(e.deployment(0).join("usr/bin/less").exists());
    ok(&mut e.kiln(&["override", "remove", "less"]));
    let dep = e.deployment(0);
    assert!(!dep.join("usr/bin/less").exists());
    assert_eq!(
        e.status()["deployments"][0]["removed_packages"],
        serde_json::json!(["less"])
    );
    // kiln diff shows less removed, with the base's version.
    let d = diff_json(&e);
    assert_eq!(package_names(&d["packages"]["removed"]), ["less"], "{d}");
    let v = d["packages"]["removed"][0]["version"]
        .as_str()
        .unwrap_or("");
    let o = ok(&mut e.kiln(&["diff"]));
    assert!(
        !v.is_empty() && o.contains(&format!("  Removed:\n    less {v}\n")),
        "{o}"
    );
    let err = fails(&mut e.kiln(&["override", "remove", "no-such-base-pkg"]));
    assert!(
        err.contains("no-such-base-pkg is not installed in the base"),
        "{err}"
    );
    e.point_apt();
    ok(&mut e.kiln(&["install", "kiln-hello"]));
    e.check_clean();

    // A new base: the layers follow it.
    let v2 = commit_base(&e.sc, &e.sysroot, "2");
    let o = ok(&mut e.kiln(&["upgrade"]));
    assert!(o.contains("version 2"), "{o}");
    let st = e.status();
    let d0 = &st["deployments"][0];
    assert_eq!(d0["base_checksum"].as_str(), Some(v2.as_str()));
    assert_eq!(d0["layered_packages"], serde_json::json!(["kiln-hello"]));
    assert_eq!(d0["removed_packages"], serde_json::json!(["less"]));
    let dep = e.deployment(0);
    assert_eq!(
        fs::read_to_string(dep.join("usr/share/kiln-base-version")).unwrap(),
        "2\n"
    );
    assert!(dep.join("usr/bin/kiln-hello").is_file());
    assert!(!dep.join("usr/bin/less").exists());
    let o = ok(&mut e.kiln(&["upgrade"]));
    assert!(o.contains("No upgrade available"), "{o}");
    e.check_clean();

    // override reset brings less back, keeps kiln-hello.
    e.point_apt();
    ok(&mut e.kiln(&["override", "reset", "--all"]));
    let dep = e.deployment(0);
    assert!(dep.join("usr/bin/less").exists());
    assert!(dep.join("usr/bin/kiln-hello").is_file());

    // The package disappears from the repository; a new base: the
    // upgrade fails clearly and deploys nothing.
    make_apt_repo(&e.repo_dir, false);
    commit_base(&e.sc, &e.sysroot, "3");
    let before = e.deployments();
    let err = fails(&mut e.kiln(&["upgrade"]));
    assert!(
        err.contains("re-applying the layered packages") && err.contains("kiln-hello"),
        "{err}"
    );
    assert_eq!(e.deployments(), before);
    e.check_clean();
}
