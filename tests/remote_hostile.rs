//! Hostile servers and faults. A server misbehaves on purpose; each case
//! must end with one clear error naming the remote and the object (or URL),
//! the local ref unchanged, and a repo `ostree fsck` accepts. Interrupted
//! pulls resume.

mod common;
mod remote_support;

use common::*;
use kiln_remote::sign::SecretKey;
use kiln_store::object::{Commit, DirTree};
use kiln_store::{Checksum, ObjectType, Repo};
use remote_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A served archive repo with `main` at v1 (2021-01) then v2 (2021-02),
/// signed with KEY, summary signed; a client that already has v1.
struct World {
    dir: tempfile::TempDir,
    served: PathBuf,
    v1: String,
    v2: String,
    key: SecretKey,
}

fn world() -> World {
    let dir = scratch();
    let served = dir.path().join("served");
    run_ok(kiln_repo(&served, "init").arg("--mode=archive"));
    run_ok(
        kiln_repo(&served, "commit")
            .args(["-b", "main", "--timestamp=2021-01-01T00:00:00Z", "-s", "v1"])
            .arg(tricky_tree()),
    );
    let v1 = run_ok(kiln_repo(&served, "rev-parse").arg("main"))
        .trim()
        .to_string();
    let t2 = changed_tree(dir.path());
    run_ok(
        kiln_repo(&served, "commit")
            .args(["-b", "main", "--timestamp=2021-02-01T00:00:00Z", "-s", "v2"])
            .arg(&t2),
    );
    let v2 = run_ok(kiln_repo(&served, "rev-parse").arg("main"))
        .trim()
        .to_string();
    let key = SecretKey::from_seed([9; 32]);
    for c in [&v1, &v2] {
        run_ok(kiln_repo(&served, "sign").args([c, &key.to_base64()]));
    }
    run_ok(kiln_repo(&served, "summary").args(["-u", &format!("--sign={}", key.to_base64())]));
    World {
        dir,
        served,
        v1,
        v2,
        key,
    }
}

impl World {
    /// A bare-user client of `url` that already has v1 as origin:main.
    fn client(&self, name: &str, url: &str, signed: bool) -> PathBuf {
        let pk = format!(
            "--set=verification-ed25519-key={}",
            self.key.public().to_base64()
        );
        let extra: Vec<&str> = if signed {
            vec![
                "--set=sign-verify=true",
                "--set=sign-verify-summary=true",
                &pk,
            ]
        } else {
            vec![]
        };
        let repo = client(self.dir.path(), name, "bare-user", url, &extra);
        run_ok(
            kiln_repo(&repo, "pull-local")
                .arg(&self.served)
                .arg(format!("main@{}", self.v1))
                .arg("--remote=origin"),
        );
        assert_eq!(ref_of(&repo), self.v1);
        repo
    }

    /// Objects v2 adds, by relative path on the server.
    fn new_objects(&self, ext: &str) -> Vec<String> {
        let old = object_names(&self.served);
        let _ = old;
        let repo = Repo::open(&self.served).unwrap();
        let mut a = std::collections::BTreeSet::new();
        let mut b = std::collections::BTreeSet::new();
        repo.reachable_from_commit(&self.v1.parse().unwrap(), &mut a)
            .unwrap();
        repo.reachable_from_commit(&self.v2.parse().unwrap(), &mut b)
            .unwrap();
        b.difference(&a)
            .filter(|(_, t)| t.ext() == ext || (ext == "filez" && *t == ObjectType::File))
            .map(|(c, _)| rel(&c.to_string(), ext))
            .collect()
    }
}

fn rel(csum: &str, ext: &str) -> String {
    format!("objects/{}/{}.{ext}", &csum[..2], &csum[2..])
}

fn ref_of(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("refs/remotes/origin/main"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Pull must fail with one error line containing all of `needles`, leave
/// the ref at `v1` and the repo valid.
fn refused(repo: &Path, w: &World, args: &[&str], needles: &[&str], case: &str) -> String {
    let start = Instant::now();
    let (_, err) = run_fail(
        kiln_repo(repo, "pull")
            .args(["--network-retries=1", "--network-timeout=3"])
            .args(args),
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{case}: took {:?}",
        start.elapsed()
    );
    assert_one_error_line(&err, case);
    for n in needles {
        assert!(
            err.contains(n),
            "{case}: error does not mention {n:?}:\n{err}"
        );
    }
    assert_eq!(ref_of(repo), w.v1, "{case}: ref moved");
    assert_ostree_fsck(repo, case);
    err
}

#[test]
fn wrong_truncated_oversized_and_missing_objects_are_refused() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    let srv = Hostile::start(&w.served);
    let file = w.new_objects("filez").into_iter().next().unwrap();
    let other = object_names(&w.served)
        .into_iter()
        .filter(|n| n.ends_with(".filez"))
        .map(|n| rel(&n[..64], "filez"))
        .find(|p| *p != file)
        .unwrap();
    let other_bytes = read(&w.served.join(&other));
    let dirtree = w.new_objects("dirtree").into_iter().next().unwrap();
    let csum_of = |p: &str| {
        p.replace("objects/", "")
            .replace('/', "")
            .split('.')
            .next()
            .unwrap()
            .to_string()
    };
    let cases: Vec<(&str, Action, String, Vec<String>)> = vec![
        (
            "wrong bytes",
            Action::Body(other_bytes),
            file.clone(),
            vec![csum_of(&file)],
        ),
        (
            "truncated",
            Action::Truncate(40),
            file.clone(),
            vec![csum_of(&file)],
        ),
        (
            "too large dirtree",
            Action::Body(vec![0u8; 11 << 20]),
            dirtree.clone(),
            vec![csum_of(&dirtree)],
        ),
        (
            "404",
            Action::Status(404),
            file.clone(),
            vec![csum_of(&file), "404".into()],
        ),
        (
            "500",
            Action::Status(500),
            file.clone(),
            vec![csum_of(&file), "500".into()],
        ),
    ];
    for (i, (case, action, path, needles)) in cases.into_iter().enumerate() {
        let repo = w.client(&format!("c{i}"), &srv.url, false);
        let target = path.clone();
        srv.set(move |p| {
            if p == target {
                action.clone()
            } else {
                Action::Serve
            }
        });
        let mut n: Vec<&str> = needles.iter().map(String::as_str).collect();
        n.push("origin");
        refused(
            &repo,
            &w,
            &["origin", "main", "--disable-static-deltas"],
            &n,
            case,
        );
        // The server behaves again: the pull completes.
        srv.set(|_| Action::Serve);
        run_ok(kiln_repo(&repo, "pull").args(["origin", "main", "--disable-static-deltas"]));
        assert_eq!(ref_of(&repo), w.v2, "{case}: after the fault");
        assert_ostree_fsck(&repo, case);
    }
}

#[test]
fn dirtree_with_bad_names_is_refused() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    let repo = Repo::open(&w.served).unwrap();
    let v2: Checksum = w.v2.parse().unwrap();
    let good = repo.read_commit(&v2).unwrap();
    let some_file = repo.read_dirtree(&good.root_tree).unwrap().files[0].1;
    for (i, bad) in ["..", "a/b", ""].iter().enumerate() {
        // A hostile commit whose checksums are all consistent.
        let dt = DirTree {
            files: vec![(bad.to_string(), some_file)],
            dirs: vec![],
        }
        .to_bytes();
        let tree = Checksum::of(&dt);
        let p = repo.object_path(&tree, ObjectType::DirTree);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &dt).unwrap();
        let c = Commit {
            root_tree: tree,
            timestamp: good.timestamp + 100 + i as u64,
            parent: None,
            metadata: kiln_store::gvariant::VarDict::new(),
            ..good.clone()
        };
        let cb = c.to_bytes();
        let cs = Checksum::of(&cb);
        let cp = repo.object_path(&cs, ObjectType::Commit);
        std::fs::create_dir_all(cp.parent().unwrap()).unwrap();
        std::fs::write(&cp, &cb).unwrap();
        repo.set_ref("evil", Some(&cs)).unwrap();
        run_ok(kiln_repo(&w.served, "summary").arg("-u"));
        let srv = kiln_serve(&w.served);
        let client_repo = w.client(&format!("c{i}"), &srv.url, false);
        let (_, err) = run_fail(kiln_repo(&client_repo, "pull").args(["origin", "evil"]));
        assert_one_error_line(&err, bad);
        assert!(
            err.contains("origin")
                && err.contains(&tree.to_string())
                && err.contains("single path component"),
            "{bad:?}: {err}"
        );
        assert!(!client_repo.join("refs/remotes/origin/evil").exists());
        assert!(
            !object_path(&client_repo, &tree.to_string(), "dirtree").exists(),
            "bad dirtree stored"
        );
        assert_ostree_fsck(&client_repo, bad);
    }
}

#[test]
fn signatures_are_required_when_configured() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    let srv = Hostile::start(&w.served);
    let (d, f) = w.v2.split_at(2);
    let commitmeta = format!("objects/{d}/{f}.commitmeta");
    let other_key = SecretKey::from_seed([3; 32]);
    // Signatures by another key.
    let mut md = kiln_store::gvariant::VarDict::new();
    kiln_remote::sign::append_signature(
        &mut md,
        &other_key.sign(&read(&w.served.join(format!("objects/{d}/{f}.commit")))),
    )
    .unwrap();
    let forged_meta = kiln_store::object::encode_vardict(&md);
    let mut smd = kiln_store::gvariant::VarDict::new();
    kiln_remote::sign::append_signature(
        &mut smd,
        &other_key.sign(&read(&w.served.join("summary"))),
    )
    .unwrap();
    let forged_sig = kiln_store::object::encode_vardict(&smd);
    let cases: Vec<(&str, String, Action, &str)> = vec![
        (
            "commit unsigned",
            commitmeta.clone(),
            Action::Status(404),
            "No signatures found",
        ),
        (
            "commit signed by another key",
            commitmeta.clone(),
            Action::Body(forged_meta),
            "couldn't be verified",
        ),
        (
            "summary.sig missing",
            "summary.sig".into(),
            Action::Status(404),
            "no summary.sig",
        ),
        (
            "summary.sig by another key",
            "summary.sig".into(),
            Action::Body(forged_sig),
            "couldn't be verified",
        ),
    ];
    for (i, (case, path, action, needle)) in cases.into_iter().enumerate() {
        let repo = w.client(&format!("s{i}"), &srv.url, true);
        srv.set(move |p| {
            if p == path {
                action.clone()
            } else {
                Action::Serve
            }
        });
        refused(&repo, &w, &["origin", "main"], &["origin", needle], case);
        assert!(
            !object_path(&repo, &w.v2, "commit").exists(),
            "{case}: unverified commit stored"
        );
    }
    srv.set(|_| Action::Serve);
    let repo = w.client("ok", &srv.url, true);
    run_ok(kiln_repo(&repo, "pull").args(["origin", "main"]));
    assert_eq!(ref_of(&repo), w.v2);
}

#[test]
fn downgrades_are_refused_unless_allowed() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    let srv = kiln_serve(&w.served);
    let repo = w.client("c", &srv.url, false);
    run_ok(kiln_repo(&repo, "pull").args(["origin", "main"]));
    assert_eq!(ref_of(&repo), w.v2);
    // The server goes back to v1.
    run_ok(kiln_repo(&w.served, "reset").args(["main", &w.v1]));
    run_ok(kiln_repo(&w.served, "summary").arg("-u"));
    let (_, err) = run_fail(kiln_repo(&repo, "pull").args(["origin", "main"]));
    assert_one_error_line(&err, "downgrade");
    assert!(
        err.contains("origin") && err.contains("downgrade") && err.contains(&w.v1),
        "{err}"
    );
    assert_eq!(ref_of(&repo), w.v2);
    let (_, err) = run_fail(kiln_repo(&repo, "pull").args([
        "origin",
        &format!("main@{}", w.v1),
        "--timestamp-check",
    ]));
    assert!(err.contains("downgrade"), "{err}");
    run_ok(kiln_repo(&repo, "pull").args(["origin", "main", "--allow-downgrade"]));
    assert_eq!(ref_of(&repo), w.v1);
    assert_ostree_fsck(&repo, "downgrade");
}

#[test]
fn corrupt_delta_part_is_refused() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    run_ok(kiln_repo(&w.served, "static-delta").args([
        "generate",
        &format!("--from={}", w.v1),
        &format!("--to={}", w.v2),
    ]));
    run_ok(kiln_repo(&w.served, "summary").args(["-u", &format!("--sign={}", w.key.to_base64())]));
    let srv = Hostile::start(&w.served);
    let part = run_ok(
        std::process::Command::new("find")
            .arg(w.served.join("deltas"))
            .args(["-name", "0"]),
    );
    let part = PathBuf::from(part.trim());
    let mut bytes = read(&part);
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    srv.set(move |p| {
        if p.starts_with("deltas/") && p.ends_with("/0") {
            Action::Body(bytes.clone())
        } else {
            Action::Serve
        }
    });
    let repo = w.client("c", &srv.url, false);
    refused(
        &repo,
        &w,
        &["origin", "main"],
        &["origin", "static delta", "part 0"],
        "corrupt delta part",
    );
    srv.set(|_| Action::Serve);
    let out = run_ok(kiln_repo(&repo, "pull").args(["origin", "main", "--json"]));
    assert!(out.contains("static-delta"), "{out}");
    assert_eq!(ref_of(&repo), w.v2);
    assert_ostree_fsck(&repo, "delta after fault");
}

#[test]
fn dropped_connection_resumes_and_stall_times_out() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    let srv = Hostile::start(&w.served);
    let files = w.new_objects("filez");
    let big = files
        .iter()
        .max_by_key(|p| std::fs::metadata(w.served.join(p)).unwrap().len())
        .unwrap()
        .clone();
    let repo = w.client("c", &srv.url, false);
    let b = big.clone();
    srv.set(move |p| {
        if p == b {
            Action::Drop(20)
        } else {
            Action::Serve
        }
    });
    refused(
        &repo,
        &w,
        &["origin", "main", "--disable-static-deltas"],
        &["origin", &big],
        "dropped connection",
    );
    assert!(repo.join("state").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".commitpartial")));
    // Re-run: only what is missing is fetched again.
    let before: std::collections::BTreeMap<String, usize> = srv.hits.lock().unwrap().clone();
    srv.set(|_| Action::Serve);
    run_ok(kiln_repo(&repo, "pull").args(["origin", "main", "--disable-static-deltas"]));
    assert_eq!(ref_of(&repo), w.v2);
    let after = srv.hits.lock().unwrap().clone();
    let refetched: Vec<_> = files
        .iter()
        .filter(|f| {
            *f != &big
                && before.get(*f).copied().unwrap_or(0) > 0
                && after.get(*f) != before.get(*f)
        })
        .collect();
    assert!(
        refetched.is_empty(),
        "objects fetched again after resume: {refetched:?}"
    );
    assert!(
        !repo.join("state").read_dir().unwrap().any(|_| true),
        "commitpartial left"
    );
    assert_ostree_fsck(&repo, "resumed");

    // A server that accepts and never answers: a timeout, not a hang.
    let repo = w.client("stall", &srv.url, false);
    srv.set(|p| {
        if p.ends_with(".filez") {
            Action::Stall
        } else {
            Action::Serve
        }
    });
    refused(
        &repo,
        &w,
        &["origin", "main", "--disable-static-deltas"],
        &["origin", "objects/"],
        "stall",
    );
}

#[test]
fn kill_during_pull_leaves_a_valid_repo_and_the_next_pull_completes() {
    if !require_root_and_ostree() {
        return;
    }
    let w = world();
    let srv = kiln_serve(&w.served);
    for fp in [
        "pull:after-commitpartial",
        "object:before-rename",
        "pull:after-syncfs",
    ] {
        let repo = w.client(&fp.replace(':', "-"), &srv.url, false);
        let sig = run_killed(
            kiln_repo(&repo, "pull")
                .args(["origin", "main", "--disable-static-deltas"])
                .env("KILN_FAILPOINT", fp),
        );
        assert_eq!(sig, 9, "{fp}");
        assert_eq!(
            ref_of(&repo),
            w.v1,
            "{fp}: ref moved before the pull completed"
        );
        assert_ostree_fsck(&repo, fp);
        run_ok(kiln_repo(&repo, "pull").args(["origin", "main", "--disable-static-deltas"]));
        assert_eq!(ref_of(&repo), w.v2, "{fp}");
        assert_ostree_fsck(&repo, fp);
    }
}
