//! The system verbs on a sysroot that is not booted (`--sysroot`): status
//! (text and `--json`), upgrade, deploy VERSION, rebase (pulling from a
//! `file://` remote), diff, rollback, kargs, pin, cleanup, df. The first
//! test is the sequence `docs/demo-sysroot.md` describes.

#[path = "sysroot_support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

fn sys(verb: &str, root: &Path) -> std::process::Command {
    let mut c = kiln();
    c.arg(verb).arg(sysroot_arg(root));
    c
}

fn json(cmd: impl std::borrow::BorrowMut<std::process::Command>) -> Value {
    serde_json::from_str(&ok(cmd)).expect("valid JSON")
}

#[test]
fn demo_sequence() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let root = sc.path("sysroot");
    let repo = format!("--repo={}", s(&root.join("ostree/repo")));
    // kiln only: init, commit v1, deploy, commit v2 on the same branch, upgrade.
    std::fs::create_dir_all(&root).unwrap();
    ok(kiln().args(["admin", "init-fs"]).arg(&root));
    ok(kiln()
        .args(["admin", "os-init", "fakeos"])
        .arg(sysroot_arg(&root)));
    let tree = sc.path("tree");
    make_tree(&tree, &TreeSpec::new("1"));
    let c1 = ok(kiln()
        .args([
            "repo",
            "commit",
            &repo,
            "-b",
            "fakeos/stable",
            TS,
            "-s",
            "v1",
            "--add-metadata-string=version=1",
        ])
        .arg(&tree))
    .trim()
    .to_string();
    ok(kiln()
        .args([
            "admin",
            "deploy",
            "--os=fakeos",
            "fakeos/stable",
            "--karg=root=LABEL=root",
        ])
        .arg(sysroot_arg(&root)));
    let mut v2 = TreeSpec::new("2");
    v2.share = vec![("new-data".into(), 1000)];
    make_tree(&tree, &v2);
    let c2 = ok(kiln()
        .args([
            "repo",
            "commit",
            &repo,
            "-b",
            "fakeos/stable",
            TS,
            "-s",
            "v2",
            "--add-metadata-string=version=2",
        ])
        .arg(&tree))
    .trim()
    .to_string();

    let o = out(sys("upgrade", &root).arg("--check"));
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&c2));
    let o = ok(sys("upgrade", &root));
    assert!(o.contains(&format!("Deployed {c2}.0 (version 2)")), "{o}");
    let o = out(sys("upgrade", &root).arg("--check"));
    assert_eq!(o.status.code(), Some(77), "no update: exit 77");

    let st = json(sys("status", &root).arg("--json"));
    assert_eq!(st["schema"], 1);
    assert_eq!(st["booted"], false);
    let d = st["deployments"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["checksum"], c2.as_str());
    assert_eq!(d[0]["version"], "2");
    assert_eq!(d[0]["origin"], "fakeos/stable");
    assert_eq!(d[1]["checksum"], c1.as_str());
    assert_eq!(d[1]["rollback"], true);
    assert!(d[0]["kargs"]
        .as_str()
        .unwrap()
        .starts_with("root=LABEL=root ostree=/ostree/boot."));
    let text = ok(sys("status", &root));
    assert!(
        text.contains("fakeos:fakeos/stable (default)")
            && text.contains("Version: 2 (2021-01-01T00:00:00Z)"),
        "{text}"
    );

    let diff = json(sys("diff", &root).arg("--json"));
    assert_eq!(diff["from"]["checksum"], c1.as_str());
    assert_eq!(diff["to"]["checksum"], c2.as_str());
    assert!(
        diff["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/usr/share/new-data"),
        "{diff}"
    );
    assert!(
        diff["modified"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/usr/bin/tool"),
        "{diff}"
    );
    let text = ok(sys("diff", &root));
    assert!(text.contains("A /usr/share/new-data"), "{text}");

    let o = ok(sys("rollback", &root));
    assert!(
        o.contains(&format!("Moving '{c1}.0' to be first deployment")),
        "{o}"
    );
    let st = json(sys("status", &root).arg("--json"));
    assert_eq!(st["deployments"][0]["checksum"], c1.as_str());
    assert_eq!(st["deployments"][1]["checksum"], c2.as_str());
    assert_eq!(
        st["deployments"].as_array().unwrap().len(),
        2,
        "rollback deletes nothing"
    );
    ok(Tool::Ostree.admin(&root, "status"));
    ok(ostree().arg("fsck").arg(&repo));
}

#[test]
fn kargs_pin_cleanup_df_deploy_version() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let root = sc.path("s");
    init_sysroot(&root, Tool::Kiln);
    let tree = sc.path("t");
    let repo = format!("--repo={}", s(&root.join("ostree/repo")));
    let mut commits = Vec::new();
    for v in ["1", "2", "3"] {
        make_tree(&tree, &TreeSpec::new(v));
        commits.push(
            ok(ostree()
                .args(["commit", &repo, "-b", "fakeos/stable", TS, "-s", v])
                .arg(format!("--add-metadata-string=version={v}"))
                .arg(&tree))
            .trim()
            .to_string(),
        ); // Its own ref keeps it through prune (depth 0, like ostree).
        ok(ostree()
            .args(["refs", &repo, &format!("--create=fakeos/v{v}")])
            .arg(commits.last().unwrap()));
    }
    // Deploy version 1 of the branch's history, then upgrade to the head.
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "--karg=quiet", &commits[0]]));
    ok(Tool::Kiln.admin(&root, "set-origin").args([
        "--index=0",
        "--set=gpg-verify=false",
        "local",
        "file:///nonexistent",
        "fakeos/stable",
    ]));
    // set-origin made it local:fakeos/stable; go back to a local ref.
    let mut origin = kiln_origin(&root);
    origin = origin.replace("local:fakeos/stable", "fakeos/stable");
    write_origin(&root, &origin);
    let o = ok(sys("deploy", &root).arg("2"));
    assert!(o.contains(&commits[1]), "{o}");
    let st = json(sys("status", &root).arg("--json"));
    assert_eq!(st["deployments"][0]["version"], "2");

    // kargs: show, append, replace, delete; a new bootversion each time.
    assert!(ok(sys("kargs", &root)).starts_with("quiet ostree=/ostree/boot."));
    ok(sys("kargs", &root).args(["--append=console=ttyS0", "--append=foo=1"]));
    ok(sys("kargs", &root).args(["--replace=foo=2", "--delete=quiet"]));
    let k = ok(sys("kargs", &root));
    assert!(
        k.starts_with("ostree=/ostree/boot.") && k.trim_end().ends_with("console=ttyS0 foo=2"),
        "{k}"
    );
    let e = fails(sys("kargs", &root).arg("--delete=nope"));
    assert!(e.contains("No key 'nope' found"), "{e}");
    ok(Tool::Ostree.admin(&root, "status"));

    // pin the rollback; cleanup -r keeps it; unpin; cleanup -r drops it.
    ok(sys("pin", &root).arg("1"));
    ok(sys("cleanup", &root).arg("-r"));
    assert_eq!(
        json(sys("status", &root).arg("--json"))["deployments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    ok(sys("pin", &root).args(["1", "--unpin"]));
    ok(sys("cleanup", &root).args(["-r", "-b", "-m"]));
    assert_eq!(
        json(sys("status", &root).arg("--json"))["deployments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let e = fails(sys("cleanup", &root));
    assert!(e.contains("At least one cleanup option"), "{e}");

    let df = json(sys("df", &root).arg("--json"));
    assert!(df["repo_bytes"].as_u64().unwrap() > 0);
    let d = &df["deployments"][0];
    assert!(
        d["shared_bytes"].as_u64().unwrap() > 0,
        "hardlinked /usr counts as shared: {df}"
    );
    assert!(
        d["exclusive_bytes"].as_u64().unwrap() > 0,
        "the /etc copy is its own: {df}"
    );
    assert!(df["total_bytes"].as_u64().unwrap() >= df["repo_bytes"].as_u64().unwrap());
    ok(sys("df", &root));
    ok(ostree().arg("fsck").arg(&repo));
}

#[test]
fn rebase_pulls_from_a_remote() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let root = sc.path("s");
    init_sysroot(&root, Tool::Kiln);
    let tree = sc.path("t");
    make_tree(&tree, &TreeSpec::new("1"));
    commit(&root, &tree, "v1", "1");
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v1"]));
    // A served archive repo with another branch.
    let served = sc.path("served");
    ok(ostree()
        .args(["init", "--mode=archive"])
        .arg(format!("--repo={}", s(&served))));
    let mut v9 = TreeSpec::new("9");
    v9.kernel = "Z".into();
    make_tree(&tree, &v9);
    let c9 = ok(ostree()
        .args([
            "commit",
            "-b",
            "fakeos/next",
            TS,
            "-s",
            "v9",
            "--add-metadata-string=version=9",
        ])
        .arg(format!("--repo={}", s(&served)))
        .arg(&tree))
    .trim()
    .to_string();
    ok(ostree()
        .args(["remote", "add", "--no-gpg-verify", "upstream"])
        .arg(format!("file://{}", s(&served)))
        .arg(format!("--repo={}", s(&root.join("ostree/repo")))));
    let o = ok(sys("rebase", &root).arg("upstream:fakeos/next"));
    assert!(o.contains(&c9), "{o}");
    let st = json(sys("status", &root).arg("--json"));
    assert_eq!(st["deployments"][0]["origin"], "upstream:fakeos/next");
    assert_eq!(st["deployments"][0]["checksum"], c9.as_str());
    // Nothing new upstream: upgrade has nothing to do.
    let o = out(sys("upgrade", &root).arg("--check"));
    assert_eq!(
        o.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(Tool::Ostree.admin(&root, "status"));
}

fn origin_path(root: &Path) -> std::path::PathBuf {
    let first = ok(Tool::Ostree.admin(root, "status"))
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    root.join("ostree/deploy/fakeos/deploy")
        .join(format!("{first}.origin"))
}

fn kiln_origin(root: &Path) -> String {
    std::fs::read_to_string(origin_path(root)).unwrap()
}

fn write_origin(root: &Path, text: &str) {
    std::fs::write(origin_path(root), text).unwrap();
}

/// `kiln status | head -1`: when the reader has gone, kiln ends quietly
/// (status 141, as a tool killed by SIGPIPE) instead of panicking. The
/// pipe's read end is closed before kiln starts, so its first write fails.
#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let root = sc.path("sysroot");
    std::fs::create_dir_all(&root).unwrap();
    ok(kiln().args(["admin", "init-fs"]).arg(&root));
    ok(kiln()
        .args(["admin", "os-init", "fakeos"])
        .arg(sysroot_arg(&root)));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = sys("status", &root)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
