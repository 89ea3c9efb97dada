//! Layering with bad input and crashes: each fails with one clear error
//! line, deploys nothing, and leaves nothing behind once the next command
//! has run (`ostree admin status` and `ostree fsck` pass).

#[path = "layer_support/mod.rs"]
mod support;

use std::os::unix::process::ExitStatusExt;
use support::*;

#[test]
fn bad_input_deploys_nothing() {
    if !have_env() {
        return;
    }
    let e = Env::new("faults");
    let before = e.deployments();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["no-such-package".into()],
            "Unable to locate package no-such-package",
        ),
        (
            vec!["kiln-needs-missing".into()],
            "kiln-needs-missing : Depends: kiln-nonexistent",
        ),
        (vec!["Bad_Name".into()], "is not a Debian package name"),
        (vec!["less".into()], "less is already installed in the base"),
        (
            vec![e.local("corrupt.deb").to_string_lossy().into_owned()],
            "not a usable Debian package",
        ),
        (
            vec![e
                .local("kiln-arm_1.0_arm64.deb")
                .to_string_lossy()
                .into_owned()],
            "is built for architecture arm64",
        ),
        (
            vec![e.local("missing.deb").to_string_lossy().into_owned()],
            "missing.deb",
        ),
        (
            vec!["kiln-broken".into()],
            "kiln-broken package post-installation script subprocess returned error exit status 1",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["install"];
        a.extend(args.iter().map(String::as_str));
        let err = fails(&mut e.kiln(&a));
        assert!(
            err.contains(want),
            "kiln install {args:?}: want {want:?} in {err:?}"
        );
        assert_eq!(e.deployments(), before, "kiln install {args:?} deployed");
        e.check_clean();
    }
    let err = fails(&mut e.kiln(&["uninstall", "kiln-hello"]));
    assert!(err.contains("not layered"), "{err}");
    let err = fails(&mut e.kiln(&["override", "reset", "less"]));
    assert!(err.contains("no override for package less"), "{err}");
    assert_eq!(e.deployments(), before);
}

#[test]
fn kill_at_every_layer_fail_point() {
    if !have_env() {
        return;
    }
    let e = Env::new("kill");
    let before = e.deployments();
    for fp in [
        "layer:after-checkout",
        "layer:after-dpkg",
        "layer:before-commit",
    ] {
        let o = out(e.kiln(&["install", "kiln-hello"]).env("KILN_FAILPOINT", fp));
        assert_eq!(o.status.signal(), Some(9), "{fp}: {o:?}");
        assert_eq!(e.deployments(), before, "{fp}");
        ok(std::process::Command::new("ostree")
            .arg("fsck")
            .arg(format!(
                "--repo={}",
                e.sysroot.join("ostree/repo").display()
            )));
    }
    // The next command cleans up and succeeds.
    ok(&mut e.kiln(&["install", "kiln-hello"]));
    assert!(e.deployment(0).join("usr/bin/kiln-hello").is_file());
    e.check_clean();
}
