//! `kiln repo` against the real `ostree` 2022.7: what kiln writes must be what
//! ostree writes (same checksums, same objects, readable by ostree), and what
//! kiln prints about a repo ostree made must be what ostree prints.
//!
//! Every test walks the four repo modes and says which one failed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use tempfile::TempDir;

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// `-b BRANCH --timestamp=... -s SUBJECT`, the arguments most commits share.
fn commit_args(branch: &str, subject: &str) -> Vec<String> {
    vec![
        "-b".into(),
        branch.into(),
        format!("--timestamp={TIMESTAMP}"),
        "-s".into(),
        subject.into(),
    ]
}

/// Two fresh repos of one mode: `kiln` made by `kiln repo init`, `ostree` by
/// `ostree init`.
struct Pair {
    dir: TempDir,
    mode: &'static str,
    kiln: PathBuf,
    ostree: PathBuf,
}

impl Pair {
    fn new(mode: &'static str) -> Pair {
        let dir = scratch();
        let kiln = dir.path().join("kiln-repo");
        let ostree = dir.path().join("ostree-repo");
        run_ok(kiln_repo(&kiln, "init").arg(format!("--mode={mode}")));
        run_ok(ostree_repo(&ostree, "init").arg(format!("--mode={mode}")));
        Pair {
            dir,
            mode,
            kiln,
            ostree,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Commits with both tools, asserts both print the same (the checksum),
    /// and returns the checksum.
    fn commit<S: AsRef<str>>(&self, args: &[S]) -> String {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let theirs = run_ok(ostree_repo(&self.ostree, "commit").args(&args));
        let ours = run_ok(kiln_repo(&self.kiln, "commit").args(&args));
        assert_eq!(theirs.trim().len(), 64, "ostree printed {theirs:?}");
        assert!(
            ours == theirs,
            "mode {}: `commit {}` prints {ours:?}, ostree {theirs:?}\n{}",
            self.mode,
            args.join(" "),
            self.explain_mismatch(ours.trim(), theirs.trim())
        );
        theirs.trim().to_owned()
    }

    /// Where two commits that should be equal differ, as ostree reads them:
    /// their trees (`ls -R -X -C`) or else their commit objects (`show --raw`).
    fn explain_mismatch(&self, ours: &str, theirs: &str) -> String {
        let read = |repo: &Path, args: &[&str], rev: &str| {
            let out = run(ostree_repo(repo, args[0]).args(&args[1..]).arg(rev));
            if out.status.success() {
                Ok(out.stdout)
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        let ls = ["ls", "-R", "-X", "-C"];
        match (read(&self.kiln, &ls, ours), read(&self.ostree, &ls, theirs)) {
            (Err(e), _) => format!("ostree cannot list kiln's commit: {e}"),
            (Ok(k), Ok(o)) if k != o => {
                format!(
                    "the trees differ (`ostree ls -R -X -C`): {}",
                    describe_difference(&o, &k)
                )
            }
            _ => {
                let show = ["show", "--raw"];
                let k = read(&self.kiln, &show, ours).unwrap_or_else(|e| e.into_bytes());
                let o = read(&self.ostree, &show, theirs).unwrap_or_else(|e| e.into_bytes());
                format!(
                    "same trees; the commit objects differ (`ostree show --raw`): {}",
                    describe_difference(&o, &k)
                )
            }
        }
    }
}

/// `commit -b main --timestamp=... -s subject EXTRA... TREE` with both tools in
/// each mode; asserts the same checksum and that `main` points at it in kiln's
/// repo (as ostree reads it).
fn assert_commit_parity(extra: &[&str], tree: &Path) {
    for mode in MODES {
        let pair = Pair::new(mode);
        let mut args = commit_args("main", "subject");
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(s(tree).into());
        let checksum = pair.commit(&args);
        assert_eq!(
            ostree_rev_parse(&pair.kiln, "main"),
            checksum,
            "mode {mode}: kiln's commit did not move ref main"
        );
    }
}

#[test]
fn init_writes_the_same_core_mode() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let theirs =
            run_ok(
                ostree()
                    .arg(repo_arg(&pair.ostree))
                    .args(["config", "get", "core.mode"]),
            );
        // `--repo` before the verb, as ostree also accepts.
        let ours = run_ok(kiln().arg("repo").arg(repo_arg(&pair.ostree)).args([
            "config",
            "get",
            "core.mode",
        ]));
        assert_eq!(
            ours, theirs,
            "mode {mode}: `config get core.mode` on ostree's repo"
        );
        let read_by_ostree =
            run_ok(
                ostree()
                    .arg(repo_arg(&pair.kiln))
                    .args(["config", "get", "core.mode"]),
            );
        assert_eq!(
            read_by_ostree, theirs,
            "mode {mode}: ostree reads core.mode of kiln's repo"
        );
        let ours = run_ok(kiln().arg("repo").arg(repo_arg(&pair.kiln)).args([
            "config",
            "get",
            "core.mode",
        ]));
        assert_eq!(
            ours, theirs,
            "mode {mode}: `config get core.mode` on kiln's repo"
        );
    }
}

#[test]
fn commit_checksum_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    assert_commit_parity(&[], tricky_tree());
}

#[test]
fn commit_with_metadata_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    assert_commit_parity(
        &[
            "--add-metadata-string=version=1.0",
            "--add-metadata=n=42",
            "--add-metadata-string=kiln.test=x=y",
            "-m",
            "Body line one\n\nBody line three",
        ],
        tricky_tree(),
    );
}

#[test]
fn commit_orphan_matches_ostree_and_writes_no_ref() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let args = [
            format!("--timestamp={TIMESTAMP}"),
            "-s".into(),
            "orphan".into(),
            "--orphan".into(),
            s(tricky_tree()).into(),
        ];
        let checksum = pair.commit(&args);
        assert_eq!(
            run_ok(ostree_repo(&pair.kiln, "refs")),
            "",
            "mode {mode}: --orphan wrote a ref"
        );
        assert!(
            object_path(&pair.kiln, &checksum, "commit").is_file(),
            "mode {mode}: --orphan commit object missing"
        );
    }
}

#[test]
fn commit_canonical_permissions_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    assert_commit_parity(&["--canonical-permissions"], tricky_tree());
}

#[test]
fn commit_owner_override_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    assert_commit_parity(&["--owner-uid=0", "--owner-gid=0"], tricky_tree());
    assert_commit_parity(&["--owner-uid=1000", "--owner-gid=123"], tricky_tree());
}

#[test]
fn commit_no_xattrs_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    assert_commit_parity(&["--no-xattrs"], tricky_tree());
}

#[test]
fn commit_layered_trees_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let overlay = pair.path("overlay");
        write_overlay_tree(&overlay);
        let mut args = commit_args("main", "layered");
        args.push(format!("--tree=dir={}", s(tricky_tree())));
        args.push(format!("--tree=dir={}", s(&overlay)));
        pair.commit(&args);
    }
}

#[test]
fn commit_tar_tree_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let tar = pair.path("tree.tar");
        run_ok(
            Command::new("tar")
                .args([
                    "--xattrs",
                    "--xattrs-include=*",
                    "--numeric-owner",
                    "--format=pax",
                    "--sort=name",
                    "-C",
                ])
                .arg(tricky_tree())
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        let mut args = commit_args("main", "from tar");
        args.push(format!("--tree=tar={}", s(&tar)));
        pair.commit(&args);
    }
}

#[test]
fn commit_statoverride_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        // ostree reads the modes as *decimal* numbers: 2048 = 04000 (added
        // with `|`), `=420` = 0644 (replaces the permission bits).
        let file = pair.path("statoverride");
        fs::write(
            &file,
            "2048 /modes/0755\n=420 /modes/0600\n=448 /owners/dir-1000\n",
        )
        .unwrap();
        let mut args = commit_args("main", "statoverride");
        args.push(format!("--statoverride={}", s(&file)));
        args.push(s(tricky_tree()).into());
        pair.commit(&args);
    }
}

#[test]
fn commit_skip_list_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let file = pair.path("skip-list");
        fs::write(&file, "/names/with space\n/deep\n/links/dangling\n").unwrap();
        let mut args = commit_args("main", "skip-list");
        args.push(format!("--skip-list={}", s(&file)));
        args.push(s(tricky_tree()).into());
        pair.commit(&args);
    }
}

#[test]
fn commit_parent_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let overlay = pair.path("overlay");
        write_overlay_tree(&overlay);
        let mut args = commit_args("main", "first");
        args.push(s(tricky_tree()).into());
        let first = pair.commit(&args);
        // The branch's current commit is the implicit parent.
        let mut args = commit_args("main", "second");
        args.push(s(&overlay).into());
        pair.commit(&args);
        assert_eq!(
            ostree_rev_parse(&pair.kiln, "main^"),
            first,
            "mode {mode}: implicit parent"
        );
        // An explicit --parent on a new branch.
        let mut args = commit_args("other", "explicit parent");
        args.push(format!("--parent={first}"));
        args.push(s(&overlay).into());
        pair.commit(&args);
        assert_eq!(
            ostree_rev_parse(&pair.kiln, "other^"),
            first,
            "mode {mode}: --parent"
        );
    }
}

/// Both repos of `pair` get the same history on `main`: the tricky tree with
/// metadata, then the overlay layered on it.
fn commit_history(pair: &Pair) {
    let overlay = pair.path("overlay");
    write_overlay_tree(&overlay);
    let mut args = commit_args("main", "first");
    args.extend([
        "--add-metadata-string=version=1.0".into(),
        s(tricky_tree()).into(),
    ]);
    pair.commit(&args);
    let mut args = commit_args("main", "second");
    args.push(format!("--tree=dir={}", s(tricky_tree())));
    args.push(format!("--tree=dir={}", s(&overlay)));
    pair.commit(&args);
}

#[test]
fn kiln_commits_pass_ostree_fsck() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        commit_history(&pair);
        assert_ostree_fsck(&pair.kiln, &format!("mode {mode}"));
    }
}

#[test]
fn kiln_commits_list_like_ostree_commits() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        commit_history(&pair);
        for rev in ["main", "main^"] {
            let theirs =
                run_ok_bytes(ostree_repo(&pair.ostree, "ls").args(["-R", "-X", "-C", rev]));
            let ours = run_ok_bytes(ostree_repo(&pair.kiln, "ls").args(["-R", "-X", "-C", rev]));
            assert!(
                ours == theirs,
                "mode {mode}: `ostree ls -R -X -C {rev}` on kiln's repo vs ostree's: {}",
                describe_difference(&theirs, &ours)
            );
        }
    }
}

#[test]
fn kiln_commits_store_the_same_objects() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        commit_history(&pair);
        assert_same_objects(
            &object_names(&pair.kiln),
            &object_names(&pair.ostree),
            &format!("mode {mode}"),
        );
    }
}

/// A repo made by ostree alone: `main` = first (the tricky tree, version 1.0,
/// a body) then second (the overlay layered on it, version 2.0);
/// `exampleos/x86_64/stable` = the overlay alone.
struct OstreeMade {
    dir: TempDir,
    mode: &'static str,
    repo: PathBuf,
}

impl OstreeMade {
    fn new(mode: &'static str) -> OstreeMade {
        let dir = scratch();
        let repo = dir.path().join("repo");
        let overlay = dir.path().join("overlay");
        write_overlay_tree(&overlay);
        run_ok(ostree_repo(&repo, "init").arg(format!("--mode={mode}")));
        run_ok(ostree_repo(&repo, "commit").args([
            "-b",
            "main",
            &format!("--timestamp={TIMESTAMP}"),
            "-s",
            "First commit",
            "-m",
            "Body line one\n\nBody line three",
            "--add-metadata-string=version=1.0",
            s(tricky_tree()),
        ]));
        run_ok(ostree_repo(&repo, "commit").args([
            "-b",
            "main",
            "--timestamp=2021-01-02T03:04:05Z",
            "-s",
            "Second commit",
            "--add-metadata-string=version=2.0",
            &format!("--tree=dir={}", s(tricky_tree())),
            &format!("--tree=dir={}", s(&overlay)),
        ]));
        run_ok(ostree_repo(&repo, "commit").args([
            "-b",
            "exampleos/x86_64/stable",
            "--timestamp=2021-01-03T00:00:00Z",
            "-s",
            "Stable",
            s(&overlay),
        ]));
        OstreeMade { dir, mode, repo }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Asserts `kiln repo VERB ARGS` prints what `ostree VERB ARGS` prints.
    fn assert_same_output(&self, verb: &str, args: &[&str]) {
        let theirs = run_ok_bytes(ostree_repo(&self.repo, verb).args(args));
        let ours = run_ok_bytes(kiln_repo(&self.repo, verb).args(args));
        assert!(
            ours == theirs,
            "mode {}: `{verb} {}` prints differently: {}",
            self.mode,
            args.join(" "),
            describe_difference(&theirs, &ours)
        );
    }

    /// Asserts `kiln repo VERB ARGS` fails like `ostree VERB ARGS`: same exit
    /// code, one `error:` line. Returns (ostree's stderr, kiln's stderr).
    fn assert_same_failure(&self, verb: &str, args: &[&str]) -> (String, String) {
        let context = format!("mode {}: `{verb} {}`", self.mode, args.join(" "));
        let (their_code, theirs) = run_fail(ostree_repo(&self.repo, verb).args(args));
        let (our_code, ours) = run_fail(kiln_repo(&self.repo, verb).args(args));
        assert_eq!(
            our_code, their_code,
            "{context}: exit code (ostree said {theirs:?}, kiln {ours:?})"
        );
        assert_one_error_line(&ours, &context);
        (theirs, ours)
    }
}

#[test]
fn ls_of_ostree_repo_matches() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        made.assert_same_output("ls", &["-R", "-X", "-C", "main"]);
        made.assert_same_output("ls", &["-R", "main^"]);
        made.assert_same_output("ls", &["-R", "-C", "exampleos/x86_64/stable"]);
        made.assert_same_output("ls", &["main", "/modes", "/links"]);
    }
}

#[test]
fn log_of_ostree_repo_matches() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        made.assert_same_output("log", &["main"]);
        made.assert_same_output("log", &["exampleos/x86_64/stable"]);
    }
}

#[test]
fn show_of_ostree_repo_matches() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        made.assert_same_output("show", &["main"]);
        made.assert_same_output("show", &["main^"]);
        made.assert_same_output("show", &["exampleos/x86_64/stable"]);
    }
}

#[test]
fn cat_of_ostree_repo_matches() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        for path in [
            "/sizes/3MiB",
            "/sizes/0",
            "/sizes/65537",
            "/names/ünïcødé",
            "/modes/setuid",
            "/xattrs/binary",
        ] {
            made.assert_same_output("cat", &["main", path]);
        }
        made.assert_same_output("cat", &["main^", "/sizes/1"]);
        // ostree names the first missing component (`/no` for `/no/such/file`).
        let (_, ours) = made.assert_same_failure("cat", &["main", "/sizes/no-such-file"]);
        assert!(
            ours.contains("/sizes/no-such-file"),
            "mode {mode}: the error names the path: {ours}"
        );
    }
}

#[test]
fn rev_parse_of_ostree_repo_matches() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        let main = ostree_rev_parse(&made.repo, "main");
        for rev in ["main", "main^", main.as_str(), "exampleos/x86_64/stable"] {
            made.assert_same_output("rev-parse", &[rev]);
        }
    }
}

#[test]
fn refs_of_ostree_repo_match() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        // ostree prints refs in hash-table order: compare them sorted.
        let sorted = |out: String| {
            let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let theirs = sorted(run_ok(ostree_repo(&made.repo, "refs")));
        let ours = sorted(run_ok(kiln_repo(&made.repo, "refs")));
        assert_eq!(ours, theirs, "mode {mode}: refs");
    }
}

#[test]
fn diff_of_ostree_repo_matches() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        made.assert_same_output("diff", &["main^", "main"]);
        made.assert_same_output("diff", &["main", "exampleos/x86_64/stable"]);
    }
}

/// Checks out `rev` with `flags` into a new directory with each tool. When
/// ostree refuses, kiln must refuse with the same exit code; otherwise the two
/// trees must be the same.
fn assert_same_checkout(made: &OstreeMade, flags: &[&str], rev: &str, name: &str) {
    let theirs = made.path(&format!("{name}-ostree"));
    let ours = made.path(&format!("{name}-kiln"));
    let context = format!("mode {}: `checkout {} {rev}`", made.mode, flags.join(" "));
    let out = run(ostree_repo(&made.repo, "checkout")
        .args(flags)
        .arg(rev)
        .arg(&theirs));
    let mut kiln_checkout = kiln_repo(&made.repo, "checkout");
    kiln_checkout.args(flags).arg(rev).arg(&ours);
    if out.status.success() {
        run_ok(&mut kiln_checkout);
        assert_same_tree(&theirs, &ours, &made.repo, &context);
    } else {
        let (code, stderr) = run_fail(&mut kiln_checkout);
        assert_eq!(
            Some(code),
            out.status.code(),
            "{context}: ostree refuses with {:?}, kiln said {stderr:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_one_error_line(&stderr, &context);
    }
}

#[test]
fn checkout_matches_ostree_for_each_mode_and_flags() {
    if !require_root_and_ostree() {
        return;
    }
    let flag_sets: [&[&str]; 5] = [&[], &["-U"], &["-H"], &["-C"], &["-U", "-H"]];
    for mode in MODES {
        let made = OstreeMade::new(mode);
        for (i, flags) in flag_sets.iter().enumerate() {
            assert_same_checkout(&made, flags, "main", &format!("co{i}"));
        }
    }
}

#[test]
fn checkout_subpath_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        assert_same_checkout(&made, &["--subpath=/modes"], "main", "modes");
        assert_same_checkout(&made, &["-U", "--subpath=/owners"], "main", "owners");
        assert_same_checkout(&made, &["--subpath=/xattrs/dir"], "main^", "xattrs");
    }
}

#[test]
fn checkout_union_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        let theirs = made.path("union-ostree");
        let ours = made.path("union-kiln");
        for (rev, union) in [
            ("main^", None),
            ("exampleos/x86_64/stable", Some("--union")),
        ] {
            run_ok(
                ostree_repo(&made.repo, "checkout")
                    .args(union)
                    .arg(rev)
                    .arg(&theirs),
            );
            run_ok(
                kiln_repo(&made.repo, "checkout")
                    .args(union)
                    .arg(rev)
                    .arg(&ours),
            );
        }
        assert_same_tree(
            &theirs,
            &ours,
            &made.repo,
            &format!("mode {mode}: checkout main^ then --union stable"),
        );
    }
}

#[test]
fn hardlink_checkout_of_bare_user_repo_is_refused_like_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    let made = OstreeMade::new("bare-user");
    let (their_code, theirs) = run_fail(
        ostree_repo(&made.repo, "checkout")
            .args(["-H", "main"])
            .arg(made.path("co-ostree")),
    );
    let (our_code, ours) = run_fail(
        kiln_repo(&made.repo, "checkout")
            .args(["-H", "main"])
            .arg(made.path("co-kiln")),
    );
    assert_eq!(our_code, their_code, "exit code");
    assert_eq!(ours, theirs, "the refusal reads like ostree's");
}

#[test]
fn rev_parse_past_the_root_commit_fails_like_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        let (theirs, ours) = made.assert_same_failure("rev-parse", &["main^^"]);
        assert_eq!(ours, theirs, "mode {mode}: the error reads like ostree's");
    }
}

#[test]
fn commit_of_a_fifo_fails_cleanly() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let pair = Pair::new(mode);
        let good = pair.path("good");
        fs::create_dir_all(good.join("sub")).unwrap();
        fs::write(good.join("sub/file"), "content\n").unwrap();
        let mut args = commit_args("main", "good");
        args.push(s(&good).into());
        let before = pair.commit(&args);

        let bad = pair.path("bad");
        fs::create_dir_all(bad.join("sub")).unwrap();
        fs::write(bad.join("sub/file"), "other content\n").unwrap();
        mkfifo(&bad.join("sub/pipe"));
        let mut args = commit_args("main", "bad");
        args.push(s(&bad).into());
        let (their_code, _) = run_fail(ostree_repo(&pair.ostree, "commit").args(&args));
        let (our_code, stderr) = run_fail(kiln_repo(&pair.kiln, "commit").args(&args));
        let context = format!("mode {mode}: commit of a tree with a fifo");
        assert_eq!(our_code, their_code, "{context}: exit code");
        assert_one_error_line(&stderr, &context);
        assert!(
            stderr.contains("pipe"),
            "{context}: the error names the fifo: {stderr}"
        );
        assert_eq!(
            ostree_rev_parse(&pair.kiln, "main"),
            before,
            "{context}: ref main moved"
        );
        assert_ostree_fsck(&pair.kiln, &context);
    }
}

#[test]
fn prune_refs_only_leaves_what_ostree_leaves() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        let before = object_names(&made.repo);
        let theirs = made.path("pruned-by-ostree");
        let ours = made.path("pruned-by-kiln");
        for copy in [&theirs, &ours] {
            run_ok(Command::new("cp").arg("-a").arg(&made.repo).arg(copy));
        }
        let args = ["--refs-only", "--depth=0"];
        run_ok(ostree_repo(&theirs, "prune").args(args));
        run_ok(kiln_repo(&ours, "prune").args(args));
        let left = object_names(&theirs);
        assert!(
            left.len() < before.len(),
            "mode {mode}: the fixture gives prune something to delete"
        );
        assert_same_objects(
            &object_names(&ours),
            &left,
            &format!("mode {mode}: after prune --refs-only --depth=0"),
        );
        assert_ostree_fsck(&ours, &format!("mode {mode}: after kiln's prune"));
    }
}

#[test]
fn fsck_of_clean_repos_passes() {
    if !require_root_and_ostree() {
        return;
    }
    for mode in MODES {
        let made = OstreeMade::new(mode);
        run_ok(kiln_repo(&made.repo, "fsck"));
        let pair = Pair::new(mode);
        commit_history(&pair);
        run_ok(kiln_repo(&pair.kiln, "fsck"));
    }
}

#[test]
fn checksum_matches_ostree() {
    if !require_root_and_ostree() {
        return;
    }
    let tree = tricky_tree();
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in [
        "sizes",
        "modes",
        "links",
        "owners",
        "xattrs",
        "names",
        "hardlinks",
    ] {
        for entry in fs::read_dir(tree.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if !fs::symlink_metadata(&path).unwrap().is_dir() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    for path in paths {
        let theirs = run_ok(ostree().arg("checksum").arg(&path));
        let ours = run_ok(kiln().args(["repo", "checksum"]).arg(&path));
        assert_eq!(ours, theirs, "`checksum {}`", path.display());
    }
}
