//! Remotes against the real tools: kiln pulls what `ostree` made and serves
//! (through nginx and `kiln serve`) exactly as `ostree pull` does, and
//! `ostree pull` takes what kiln made. Summaries are byte-identical.

mod common;
mod remote_support;

use common::*;
use remote_support::*;
use std::path::Path;

fn pull_json(repo: &Path, args: &[&str]) -> serde_json::Value {
    let out = run_ok(kiln_repo(repo, "pull").args(args).arg("--json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Last-modified of a summary (to regenerate it at the same instant).
fn last_modified(summary: &[u8]) -> u64 {
    let key = b"ostree.summary.last-modified\0";
    let i = summary
        .windows(key.len())
        .position(|w| w == key)
        .expect("last-modified key");
    let at = (i + key.len() + 7) & !7;
    u64::from_be_bytes(summary[at..at + 8].try_into().unwrap())
}

#[test]
fn summary_and_delta_indexes_are_byte_identical_to_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let (repo, _v1, v2) = ostree_archive(dir.path());
    run_ok(ostree_repo(&repo, "summary").args([
        "-u",
        "--add-metadata=kiln.test='hello'",
        "-m",
        "n=42",
    ]));
    let theirs = read(&repo.join("summary"));
    let index_rel = run_ok(
        std::process::Command::new("find")
            .arg(repo.join("delta-indexes"))
            .args(["-type", "f"]),
    );
    let index_theirs = read(Path::new(index_rel.trim()));
    std::fs::remove_file(index_rel.trim()).unwrap();
    let ts = last_modified(&theirs);
    run_ok(
        kiln_repo(&repo, "summary")
            .args(["-u", "--add-metadata=kiln.test='hello'", "-m", "n=42"])
            .env("SOURCE_DATE_EPOCH", ts.to_string()),
    );
    let ours = read(&repo.join("summary"));
    assert!(
        ours == theirs,
        "summary differs:\n{}",
        describe_difference(&theirs, &ours)
    );
    assert_eq!(
        read(Path::new(index_rel.trim())),
        index_theirs,
        "delta index differs"
    );
    let view_k = run_ok(kiln_repo(&repo, "summary").arg("--view"));
    let view_o = run_ok(ostree_repo(&repo, "summary").arg("--view"));
    assert_eq!(view_k, view_o);
    assert!(view_k.contains(&v2));
}

#[test]
fn kiln_pulls_from_nginx_what_ostree_pulls() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let (served, v1, v2) = ostree_archive(dir.path());
    let web = nginx(&served);
    for mode in ["bare-user", "archive", "bare"] {
        let k = client(dir.path(), &format!("kiln-{mode}"), mode, &web.url, &[]);
        let o = dir.path().join(format!("ostree-{mode}"));
        run_ok(ostree_repo(&o, "init").arg(format!("--mode={mode}")));
        run_ok(ostree_repo(&o, "remote").args(["add", "--no-gpg-verify", "origin", &web.url]));
        // v1 first (by checksum), then main (v2) through the v1→v2 delta.
        let first = pull_json(&k, &["origin", &format!("main@{v1}")]);
        assert_eq!(first["refs"][0]["commit"], v1.as_str(), "{mode}");
        let second = pull_json(&k, &["origin", "main", "other"]);
        assert_eq!(second["refs"][0]["via"], "static-delta", "{mode}: {second}");
        assert_eq!(second["refs"][0]["commit"], v2.as_str());
        run_ok(ostree_repo(&o, "pull").args(["origin", &format!("main@{v1}")]));
        run_ok(ostree_repo(&o, "pull").args(["origin", "main", "other"]));
        assert_same_objects(&object_names(&k), &object_names(&o), mode);
        assert_eq!(refs_of(&k), refs_of(&o), "{mode}: refs");
        assert_ostree_fsck(&k, mode);
        assert!(
            !k.join("state").read_dir().unwrap().any(|_| true),
            "{mode}: commitpartial left"
        );
    }
    // Objects only, no delta, many at once: same result.
    let k = client(dir.path(), "kiln-objects", "bare-user", &web.url, &[]);
    let res = pull_json(&k, &["origin", "main", "--disable-static-deltas"]);
    assert_eq!(res["refs"][0]["via"], "objects");
    assert!(res["content_objects"].as_u64().unwrap() > 10, "{res}");
    assert_ostree_fsck(&k, "objects");
    let o = dir.path().join("ostree-bare-user");
    assert_same_objects(
        &object_names(&k)
            .into_iter()
            .filter(|n| !n.contains(&v1[2..]))
            .collect(),
        &{
            // ostree's repo also holds v1 and `other`; compare what main@v2 reaches
            let mut reach = object_names(&o);
            reach.retain(|n| object_names(&k).contains(n));
            reach
        },
        "objects-only",
    );
    // Tree checked out from kiln's pull equals the source tree.
    let co = dir.path().join("co");
    run_ok(
        ostree_repo(&k, "checkout")
            .args(["-U", "origin:main"])
            .arg(&co),
    );
    assert!(co.join("added-in-v2").exists());
}

#[test]
fn ostree_pulls_from_kiln_serve_what_kiln_made() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let served = dir.path().join("served");
    run_ok(kiln_repo(&served, "init").arg("--mode=archive"));
    run_ok(
        kiln_repo(&served, "commit")
            .args(["-b", "main", &format!("--timestamp={TIMESTAMP}"), "-s", "s"])
            .arg(tricky_tree()),
    );
    let t2 = changed_tree(dir.path());
    run_ok(
        kiln_repo(&served, "commit")
            .args(["-b", "main", "--timestamp=2021-03-01T00:00:00Z", "-s", "s2"])
            .arg(&t2),
    );
    let v2 = run_ok(kiln_repo(&served, "rev-parse").arg("main"))
        .trim()
        .to_string();
    run_ok(kiln_repo(&served, "static-delta").args(["generate", "--empty", "--to", &v2]));
    let key = kiln_remote::sign::SecretKey::from_seed([42; 32]);
    run_ok(kiln_repo(&served, "sign").args([&v2, &key.to_base64()]));
    run_ok(kiln_repo(&served, "summary").args(["-u", &format!("--sign={}", key.to_base64())]));
    // ostree can read what kiln wrote.
    let view = run_ok(ostree_repo(&served, "summary").arg("--view"));
    assert!(
        view.contains(&v2) && view.contains("Static Deltas"),
        "{view}"
    );
    let md = run_ok(
        ostree_repo(&served, "show")
            .args(["--print-detached-metadata-key=ostree.sign.ed25519", &v2]),
    );
    assert!(
        md.trim().starts_with("[[byte") || md.contains("@aay") || md.starts_with("[<"),
        "{md}"
    );
    assert_ostree_fsck(&served, "kiln-made archive");
    for (label, web) in [
        ("kiln serve", kiln_serve(&served)),
        ("nginx", nginx(&served)),
    ] {
        let o = dir.path().join(format!("o-{}", label.replace(' ', "-")));
        run_ok(ostree_repo(&o, "init").arg("--mode=bare-user"));
        run_ok(ostree_repo(&o, "remote").args(["add", "--no-gpg-verify", "origin", &web.url]));
        run_ok(ostree_repo(&o, "pull").args(["origin", "main"]));
        assert_eq!(ostree_rev_parse(&o, "origin:main"), v2, "{label}");
        assert_ostree_fsck(&o, label);
        // kiln pulls the same, verifying the ed25519 signatures.
        let k = client(
            dir.path(),
            &format!("k-{}", label.replace(' ', "-")),
            "bare-user",
            &web.url,
            &[
                "--set=sign-verify=true",
                "--set=sign-verify-summary=true",
                &format!(
                    "--set=verification-ed25519-key={}",
                    key.public().to_base64()
                ),
            ],
        );
        let res = pull_json(&k, &["origin", "main"]);
        assert_eq!(res["refs"][0]["via"], "static-delta", "{label}: {res}");
        let ko: std::collections::BTreeSet<_> = object_names(&k).into_iter().collect();
        assert_same_objects(&ko, &object_names(&o), label);
        assert_ostree_fsck(&k, label);
    }
}

#[test]
fn remote_verbs_write_what_ostree_writes() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let k = dir.path().join("k");
    let o = dir.path().join("o");
    run_ok(kiln_repo(&k, "init").arg("--mode=archive"));
    run_ok(ostree_repo(&o, "init").arg("--mode=archive"));
    let adds: [&[&str]; 3] = [
        &[
            "add",
            "origin",
            "http://127.0.0.1:1/",
            "main",
            "other",
            "--set=foo=bar",
            "--no-gpg-verify",
        ],
        &["add", "--if-not-exists", "origin", "http://x/"],
        &["add", "second", "file:///srv/repo"],
    ];
    for a in adds {
        run_ok(kiln_repo(&k, "remote").args(a));
        run_ok(ostree_repo(&o, "remote").args(a));
    }
    assert_eq!(
        std::fs::read_to_string(k.join("config")).unwrap(),
        std::fs::read_to_string(o.join("config")).unwrap()
    );
    for v in [&["list"][..], &["list", "-u"], &["show-url", "origin"]] {
        assert_eq!(
            run_ok(kiln_repo(&k, "remote").args(v)),
            run_ok(ostree_repo(&o, "remote").args(v)),
            "{v:?}"
        );
    }
    let (_, err) = run_fail(kiln_repo(&k, "remote").args(["add", "origin", "http://y/"]));
    assert_one_error_line(&err, "add twice");
    assert!(
        err.contains("origin") && err.contains("already exists"),
        "{err}"
    );
    let (_, err) = run_fail(kiln_repo(&k, "remote").args(["delete", "nope"]));
    assert!(err.contains("Remote \"nope\" not found"), "{err}");
    run_ok(kiln_repo(&k, "remote").args(["delete", "--if-exists", "nope"]));
    run_ok(kiln_repo(&k, "remote").args(["delete", "second"]));
    run_ok(ostree_repo(&o, "remote").args(["delete", "second"]));
    assert_eq!(
        run_ok(kiln_repo(&k, "remote").arg("list")),
        run_ok(ostree_repo(&o, "remote").arg("list"))
    );
    // ed25519 keys
    let key = kiln_remote::sign::SecretKey::from_seed([1; 32]);
    let pk = key.public().to_base64();
    run_ok(kiln_repo(&k, "remote").args([
        "add",
        "signed",
        "http://z/",
        &format!("--sign-verify=ed25519=inline:{pk}"),
    ]));
    let cfg = std::fs::read_to_string(k.join("config")).unwrap();
    assert!(
        cfg.contains(&format!("verification-ed25519-key={pk}"))
            && cfg.contains("sign-verify=ed25519"),
        "{cfg}"
    );
}

#[test]
fn pull_local_copies_refs_between_modes() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let (served, _v1, v2) = ostree_archive(dir.path());
    for mode in ["bare-user", "bare"] {
        let k = dir.path().join(format!("k-{mode}"));
        let o = dir.path().join(format!("o-{mode}"));
        run_ok(kiln_repo(&k, "init").arg(format!("--mode={mode}")));
        run_ok(ostree_repo(&o, "init").arg(format!("--mode={mode}")));
        run_ok(kiln_repo(&k, "pull-local").arg(&served).arg("main"));
        run_ok(ostree_repo(&o, "pull-local").arg(&served).arg("main"));
        assert_eq!(ostree_rev_parse(&k, "main"), v2);
        assert_same_objects(&object_names(&k), &object_names(&o), mode);
        assert_ostree_fsck(&k, mode);
    }
}
