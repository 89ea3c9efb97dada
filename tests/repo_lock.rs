//! kiln and libostree serialize on the same repository lock: an
//! open-file-description lock on `REPO/.lock`, shared while adding objects,
//! exclusive while pruning.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

/// Holds an OFD lock on `repo/.lock` (as libostree takes it) until told to
/// let go. Prints "locked" once it holds the lock.
struct LockHolder {
    child: Child,
}

impl LockHolder {
    fn take(repo: &std::path::Path, exclusive: bool) -> LockHolder {
        let script = r#"
import fcntl, os, struct, sys
fd = os.open(sys.argv[1] + "/.lock", os.O_RDWR | os.O_CREAT, 0o660)
kind = fcntl.F_WRLCK if sys.argv[2] == "ex" else fcntl.F_RDLCK
fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack("hhqqi", kind, 0, 0, 0, 0))
print("locked", flush=True)
sys.stdin.readline()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(repo)
            .arg(if exclusive { "ex" } else { "sh" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked");
        LockHolder { child }
    }

    fn release(mut self) {
        let _ = self.child.stdin.as_mut().expect("stdin").write_all(b"\n");
        let _ = self.child.wait();
    }
}

fn commit_cmd(repo: &std::path::Path, tree: &std::path::Path) -> Command {
    let mut c = kiln_repo(repo, "commit");
    c.args(["-b", "main", "--timestamp=2021-01-01T00:00:00Z"])
        .arg(tree);
    c
}

#[test]
fn commit_waits_for_an_exclusive_lock_and_then_succeeds() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let repo = dir.path().join("repo");
    run_ok(ostree_repo(&repo, "init").arg("--mode=bare-user"));
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("f"), "x").expect("write");

    let holder = LockHolder::take(&repo, true);
    // While a prune-style exclusive lock is held, kiln cannot write: the
    // commit is still waiting when the time limit ends it.
    let cmd = commit_cmd(&repo, &tree);
    let out = Command::new("timeout")
        .arg("3")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .expect("timeout");
    assert_eq!(
        out.status.code(),
        Some(124),
        "kiln commit did not wait for the lock"
    );
    assert!(
        !repo.join("refs/heads/main").exists(),
        "ref written while the repo was locked"
    );
    holder.release();

    let csum = run_ok(commit_cmd(&repo, &tree));
    assert_eq!(csum.trim(), ostree_rev_parse(&repo, "main"));
    assert_ostree_fsck(&repo, "after a commit that waited for the lock");
}

#[test]
fn shared_locks_do_not_block_each_other() {
    if !require_root_and_ostree() {
        return;
    }
    let dir = scratch();
    let repo = dir.path().join("repo");
    run_ok(kiln_repo(&repo, "init").arg("--mode=archive"));
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("f"), "x").expect("write");
    // A shared holder (like an ostree transaction in progress) lets kiln
    // add objects at the same time.
    let holder = LockHolder::take(&repo, false);
    run_ok(commit_cmd(&repo, &tree));
    holder.release();
    assert_ostree_fsck(&repo, "after a commit beside a shared lock");
}

#[test]
fn ostree_prune_waits_on_the_lock_kiln_takes() {
    if !require_root_and_ostree() {
        return;
    }
    // The converse half of compatibility: `ostree prune` waits on an
    // exclusive OFD lock on `.lock`, the lock `RepoLock` takes (the holder
    // here is a stand-in process, so this checks ostree's side).
    let dir = scratch();
    let repo = dir.path().join("repo");
    run_ok(kiln_repo(&repo, "init").arg("--mode=bare-user"));
    let holder = LockHolder::take(&repo, true);
    let out = Command::new("timeout")
        .args(["3", "ostree", "prune", "--refs-only"])
        .arg(format!("--repo={}", repo.display()))
        .output()
        .expect("timeout");
    assert_eq!(
        out.status.code(),
        Some(124),
        "ostree prune did not wait for the lock"
    );
    holder.release();
    run_ok(ostree_repo(&repo, "prune").arg("--refs-only"));
}
