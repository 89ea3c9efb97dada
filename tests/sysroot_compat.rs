//! `kiln admin` against `ostree admin` 2022.7: the same verbs on the same
//! commits must leave the same sysroot (tree, modes, links, BLS entries,
//! origins, bootlinks, refs, objects), print the same lines, and each tool
//! must keep working on a sysroot the other made.

#[path = "sysroot_support/mod.rs"]
mod support;

use std::fs;
use support::*;

#[test]
fn init_and_os_init_match() {
    if !have_env() {
        return;
    }
    let p = Pair::new();
    p.assert_same("init-fs + os-init");
    // A second os-init fails and changes nothing.
    let before = listing(&p.k);
    let e = fails(Tool::Kiln.admin(&p.k, "os-init").arg("fakeos"));
    assert!(
        e.contains("Creating ostree/deploy/fakeos: File exists"),
        "{e}"
    );
    assert_eq!(before, listing(&p.k));
    // init-fs needs an existing directory.
    let e = fails(
        kiln()
            .args(["admin", "init-fs"])
            .arg(p.scratch.path("nope")),
    );
    assert!(e.contains("No such file"), "{e}");
}

#[test]
fn deploy_upgrade_pin_undeploy_match() {
    if !have_env() {
        return;
    }
    let p = Pair::new();
    p.commit("v1", &TreeSpec::new("1"));
    let mut v2 = TreeSpec::new("2");
    v2.kernel = "B".into();
    p.commit("v2", &v2);
    let mut v3 = TreeSpec::new("3");
    v3.pretty_name = None;
    p.commit("v3", &v3);

    let (a, b) = p.both(
        "deploy",
        &[
            "--os=fakeos",
            "fakeos/v1",
            "--karg=root=LABEL=x",
            "--karg=quiet",
        ],
    );
    assert_eq!(a, b);
    p.assert_same("first deploy");
    let k = &p.k;
    let d = deployment_dirs(k);
    assert_eq!(d.len(), 1);
    assert!(immutable(
        &k.join("ostree/deploy/fakeos/deploy").join(&d[0])
    ));
    assert_eq!(
        fs::read_link(k.join("boot/loader")).unwrap().to_str(),
        Some("loader.1")
    );
    assert_eq!(
        fs::read_link(k.join("boot/boot")).unwrap().to_str(),
        Some(".")
    );

    let (a, b) = p.both("deploy", &["--os=fakeos", "fakeos/v2"]);
    assert_eq!(a, b);
    p.assert_same("second deploy (other kernel)");

    let (a, b) = p.both("pin", &["1"]);
    assert_eq!(a, b);
    p.assert_same("pin");
    let (a, b) = p.both(
        "deploy",
        &[
            "--os=fakeos",
            "fakeos/v3",
            "--karg-append=console=ttyS0",
            "--karg-append=console=tty0",
            "--karg-delete=quiet",
        ],
    );
    assert_eq!(a, b);
    p.assert_same("third deploy keeps the pinned one");
    let (a, b) = p.both("status", &[]);
    assert_eq!(a, b, "status text");

    let (a, b) = p.both("pin", &["--unpin", "2"]);
    assert_eq!(a, b);
    p.assert_same("unpin leaves the empty group");
    let (a, b) = p.both("undeploy", &["2"]);
    assert_eq!(a, b);
    p.assert_same("undeploy");
    let e = fails(Tool::Kiln.admin(k, "undeploy").arg("9"));
    assert!(
        e.contains("Out of range deployment index 9, expected < 2"),
        "{e}"
    );

    // Same deployments, no version change: the subbootversion swap.
    let (a, b) = p.both("deploy", &["--os=fakeos", "--retain", "fakeos/v3"]);
    assert_eq!(a, b);
    p.assert_same("redeploy of the same commit");
    let (a, b) = p.both("cleanup", &[]);
    assert_eq!(a, b);
    p.assert_same("cleanup");
}

#[test]
fn deploy_flags_match() {
    if !have_env() {
        return;
    }
    let p = Pair::new();
    p.commit("v1", &TreeSpec::new("1"));
    p.commit("v2", &TreeSpec::new("2"));
    let steps: &[&[&str]] = &[
        &["--os=fakeos", "fakeos/v1", "--karg=root=LABEL=x"],
        &["--os=fakeos", "fakeos/v2", "--not-as-default"],
        &["--os=fakeos", "fakeos/v1", "--retain"],
        &["--os=fakeos", "fakeos/v2", "--karg-none"],
        &[
            "--os=fakeos",
            "fakeos/v1",
            "--no-merge",
            "--karg=root=LABEL=y",
        ],
        &["--os=fakeos", "fakeos/v2", "--no-prune"],
    ];
    for args in steps {
        let (a, b) = p.both("deploy", args);
        assert_eq!(a, b, "{args:?}");
        p.assert_same(&format!("deploy {args:?}"));
    }
    // Deploy by checksum: the origin names the checksum.
    let c = ok(ostree()
        .arg("rev-parse")
        .arg(format!("--repo={}", s(&p.k.join("ostree/repo"))))
        .arg("fakeos/v1"))
    .trim()
    .to_string();
    let (a, b) = p.both("deploy", &["--os=fakeos", &c]);
    assert_eq!(a, b);
    p.assert_same("deploy by checksum");
}

#[test]
fn set_origin_and_kargs_edit_in_place_match() {
    if !have_env() {
        return;
    }
    let p = Pair::new();
    p.commit("v1", &TreeSpec::new("1"));
    p.commit("v2", &TreeSpec::new("2"));
    p.both("deploy", &["--os=fakeos", "fakeos/v1", "--karg=quiet"]);
    p.both("deploy", &["--os=fakeos", "fakeos/v2"]);
    let (a, b) = p.both(
        "set-origin",
        &[
            "--index=1",
            "--set=gpg-verify=false",
            "myremote",
            "http://example.com/repo",
            "fakeos/v9",
        ],
    );
    assert_eq!(a, b);
    p.assert_same("set-origin");
    assert_eq!(
        fs::read(p.k.join("ostree/repo/config")).unwrap(),
        fs::read(p.o.join("ostree/repo/config")).unwrap()
    );
    let (a, b) = p.both(
        "kargs",
        &[
            "edit-in-place",
            "--append-if-missing=foo=bar",
            "--append-if-missing=quiet",
        ],
    );
    assert_eq!(a, b);
    p.assert_same("kargs edit-in-place");
}

#[test]
fn each_tool_continues_the_other() {
    if !have_env() {
        return;
    }
    let p = Pair::new();
    p.commit("v1", &TreeSpec::new("1"));
    p.commit("v2", &TreeSpec::new("2"));
    let mut v3 = TreeSpec::new("3");
    v3.kernel = "C".into();
    p.commit("v3", &v3);
    // kiln made k, ostree made o; now swap tools and keep going.
    p.both(
        "deploy",
        &["--os=fakeos", "fakeos/v1", "--karg=root=LABEL=x"],
    );
    ok(Tool::Ostree
        .admin(&p.k, "deploy")
        .args(["--os=fakeos", "fakeos/v2"]));
    ok(Tool::Kiln
        .admin(&p.o, "deploy")
        .args(["--os=fakeos", "fakeos/v2"]));
    p.assert_same("cross deploy");
    ok(Tool::Ostree.admin(&p.k, "pin").arg("1"));
    ok(Tool::Kiln.admin(&p.o, "pin").arg("1"));
    ok(Tool::Ostree
        .admin(&p.k, "deploy")
        .args(["--os=fakeos", "fakeos/v3"]));
    ok(Tool::Kiln
        .admin(&p.o, "deploy")
        .args(["--os=fakeos", "fakeos/v3"]));
    p.assert_same("cross deploy with pin");
    // Status of each by the other tool reads the same.
    let a = ok(Tool::Kiln.admin(&p.o, "status"));
    let b = ok(Tool::Ostree.admin(&p.k, "status"));
    assert_eq!(a, b);
    ok(Tool::Ostree.admin(&p.k, "undeploy").arg("2"));
    ok(Tool::Kiln.admin(&p.o, "undeploy").arg("2"));
    ok(Tool::Ostree.admin(&p.k, "cleanup"));
    ok(Tool::Kiln.admin(&p.o, "cleanup"));
    p.assert_same("cross undeploy + cleanup");
    for r in [&p.k, &p.o] {
        ok(ostree()
            .arg("fsck")
            .arg(format!("--repo={}", s(&r.join("ostree/repo")))));
    }
}

#[test]
fn rollback_and_set_default_reorder() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let k = sc.path("s");
    init_sysroot(&k, Tool::Kiln);
    let tree = sc.path("t1");
    make_tree(&tree, &TreeSpec::new("1"));
    let c1 = commit(&k, &tree, "v1", "1");
    make_tree(&tree, &TreeSpec::new("2"));
    let c2 = commit(&k, &tree, "v2", "2");
    ok(Tool::Kiln
        .admin(&k, "deploy")
        .args(["--os=fakeos", "fakeos/v1"]));
    ok(Tool::Kiln
        .admin(&k, "deploy")
        .args(["--os=fakeos", "fakeos/v2"]));
    let first = |k: &std::path::Path| {
        ok(Tool::Ostree.admin(k, "status"))
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert!(first(&k).contains(&c2));
    ok(Tool::Kiln.admin(&k, "rollback"));
    assert!(first(&k).contains(&c1), "rollback makes v1 the default");
    assert_eq!(deployment_dirs(&k).len(), 2, "nothing deleted");
    ok(Tool::Kiln.admin(&k, "set-default").arg("1"));
    assert!(first(&k).contains(&c2));
    let e = fails(Tool::Kiln.admin(&k, "set-default").arg("5"));
    assert!(e.contains("Out of range"), "{e}");
    // ostree still works on it.
    ok(Tool::Ostree.admin(&k, "undeploy").arg("1"));
    ok(ostree()
        .arg("fsck")
        .arg(format!("--repo={}", s(&k.join("ostree/repo")))));
}

#[test]
fn sysroot_flag_before_or_after_the_verb() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let k = sc.path("s");
    init_sysroot(&k, Tool::Kiln);
    let a = ok(kiln().arg("admin").arg(sysroot_arg(&k)).arg("status"));
    let b = ok(kiln().arg("admin").arg("status").arg(sysroot_arg(&k)));
    assert_eq!(a, b);
    assert_eq!(a, "No deployments.\n");
}
