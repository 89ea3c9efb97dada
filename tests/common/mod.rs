//! Helpers shared by the integration tests that use the real `ostree` as oracle.
//!
//! Every test runs as root (owners, setuid bits, xattrs, mounts) with `ostree`
//! 2022.7 on the PATH; [`require_root_and_ostree`] skips a test when they are
//! missing, or fails it when `KILN_CI=1` (set by `scripts/test-all.sh`).
//!
//! `KILN_TEST_BIN=/path/to/binary` runs the suite against another binary than
//! the `kiln` just built: point it at a shim that runs `ostree "$@"` without the
//! leading `repo` to check that the suite's expectations hold for ostree itself.
#![allow(dead_code)]

use std::borrow::BorrowMut;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

/// The commit timestamp every test uses, so checksums are reproducible.
pub const TIMESTAMP: &str = "2021-01-01T00:00:00Z";

/// The repository modes of `init --mode=`, in the order tests walk them.
pub const MODES: [&str; 4] = ["bare", "bare-user", "bare-user-only", "archive"];

/// `kiln`, the binary under test (or `$KILN_TEST_BIN`).
pub fn kiln() -> Command {
    match std::env::var_os("KILN_TEST_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_kiln")),
    }
}

/// `kiln repo VERB --repo=REPO`: more arguments follow.
pub fn kiln_repo(repo: &Path, verb: &str) -> Command {
    let mut cmd = kiln();
    cmd.arg("repo").arg(verb).arg(repo_arg(repo));
    cmd
}

/// The oracle, `ostree`.
pub fn ostree() -> Command {
    Command::new("ostree")
}

/// `ostree VERB --repo=REPO`: more arguments follow.
pub fn ostree_repo(repo: &Path, verb: &str) -> Command {
    let mut cmd = ostree();
    cmd.arg(verb).arg(repo_arg(repo));
    cmd
}

/// `--repo=PATH`.
pub fn repo_arg(repo: &Path) -> String {
    format!("--repo={}", repo.display())
}

/// How long one command may run before it is killed and its test fails (a
/// hang, e.g. a commit that opened a fifo, must not stall the whole suite).
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Runs `cmd` with no stdin and returns its status and output, whatever they
/// are; kills it and panics if it runs longer than [`COMMAND_LIMIT`].
pub fn run(mut cmd: impl BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = rustix::process::Pid::from_child(&child);
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        let timed_out = finished.recv_timeout(COMMAND_LIMIT) == Err(RecvTimeoutError::Timeout);
        if timed_out {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        timed_out
    });
    let out = child.wait_with_output();
    let _ = done.send(());
    if watchdog.join().unwrap() {
        panic!("{cmd:?} did not finish within {COMMAND_LIMIT:?} and was killed");
    }
    out.unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"))
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "{cmd:?}\n  exit: {}\n  stdout: {}\n  stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// Runs `cmd`, panics with its command line, stdout and stderr unless it
/// succeeds, and returns its stdout as bytes.
pub fn run_ok_bytes(mut cmd: impl BorrowMut<Command>) -> Vec<u8> {
    let cmd = cmd.borrow_mut();
    let out = run(&mut *cmd);
    if !out.status.success() {
        panic!("command failed: {}", describe(cmd, &out));
    }
    out.stdout
}

/// Runs `cmd`, panics with its command line, stdout and stderr unless it
/// succeeds, and returns its stdout.
pub fn run_ok(cmd: impl BorrowMut<Command>) -> String {
    String::from_utf8_lossy(&run_ok_bytes(cmd)).into_owned()
}

/// Runs `cmd`, which must exit with a non-zero code (not succeed, not die by a
/// signal), and returns that code and its stderr.
pub fn run_fail(mut cmd: impl BorrowMut<Command>) -> (i32, String) {
    let cmd = cmd.borrow_mut();
    let out = run(&mut *cmd);
    match out.status.code() {
        Some(0) => panic!(
            "command succeeded but should have failed: {}",
            describe(cmd, &out)
        ),
        Some(code) => (code, String::from_utf8_lossy(&out.stderr).into_owned()),
        None => panic!(
            "command died by a signal instead of failing: {}",
            describe(cmd, &out)
        ),
    }
}

/// Runs `cmd`, which must be killed by a signal (a fail point), and returns
/// the signal number.
pub fn run_killed(mut cmd: impl BorrowMut<Command>) -> i32 {
    let cmd = cmd.borrow_mut();
    let out = run(&mut *cmd);
    match out.status.signal() {
        Some(signal) => signal,
        None => panic!(
            "command was expected to kill itself: {}",
            describe(cmd, &out)
        ),
    }
}

/// Asserts `stderr` is one line `error: ...`, the way ostree and kiln report.
pub fn assert_one_error_line(stderr: &str, context: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{context}: expected one `error: ...` line on stderr, got:\n{stderr}"
    );
}

/// How `actual` (kiln's output) differs from `expected` (ostree's): both in
/// full when short, else the lines only one of them printed (or, when only
/// the order differs, the first difference with context).
pub fn describe_difference(expected: &[u8], actual: &[u8]) -> String {
    let (Ok(e), Ok(a)) = (std::str::from_utf8(expected), std::str::from_utf8(actual)) else {
        let at = expected.iter().zip(actual).position(|(x, y)| x != y);
        return format!(
            "binary outputs differ: ostree {} bytes, kiln {} bytes, first difference at byte {}",
            expected.len(),
            actual.len(),
            at.unwrap_or(expected.len().min(actual.len()))
        );
    };
    if e.len() + a.len() < 3000 {
        return format!("--- ostree:\n{e}\n--- kiln:\n{a}");
    }
    let (el, al): (Vec<&str>, Vec<&str>) = (e.lines().collect(), a.lines().collect());
    let only = |these: &[&str], those: &[&str]| {
        let those: HashSet<&str> = those.iter().copied().collect();
        let lines: Vec<String> = these
            .iter()
            .filter(|l| !those.contains(*l))
            .map(|l| format!("  {l}\n"))
            .collect();
        let more = lines.len().saturating_sub(20);
        let mut shown: String = lines.into_iter().take(20).collect();
        if more > 0 {
            shown.push_str(&format!("  ... and {more} more\n"));
        }
        shown
    };
    let (only_e, only_a) = (only(&el, &al), only(&al, &el));
    if !only_e.is_empty() || !only_a.is_empty() {
        return format!(
            "ostree printed {} lines, kiln {}\n--- only in ostree's:\n{only_e}--- only in kiln's:\n{only_a}",
            el.len(),
            al.len()
        );
    }
    let at = el.iter().zip(&al).position(|(x, y)| x != y).unwrap_or(0);
    let around = |lines: &[&str]| {
        let to = (at + 3).min(lines.len());
        (at.saturating_sub(2)..to)
            .map(|i| format!("  line {}: {}\n", i + 1, lines[i]))
            .collect::<String>()
    };
    format!(
        "the same lines in another order, first at line {}\n--- ostree:\n{}--- kiln:\n{}",
        at + 1,
        around(&el),
        around(&al)
    )
}

/// A fresh scratch directory, removed when dropped. It lives under the
/// cargo target dir, on the same file system as the fixtures, so checkouts can
/// hardlink from repos made there.
pub fn scratch() -> TempDir {
    tempfile::Builder::new()
        .prefix("kiln-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create scratch dir")
}

/// The repository's source root (for fixtures).
pub fn source_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tricky tree of `tests/fixtures/make-tricky-tree.sh`, generated once per
/// test process. Tests must not modify it.
pub fn tricky_tree() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_trees(base);
        let dir = base.join(format!("tricky-tree-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove old tricky tree");
        }
        let script = source_root().join("tests/fixtures/make-tricky-tree.sh");
        run_ok(Command::new("bash").arg(script).arg(&dir));
        dir
    })
}

/// Removes the tricky trees of test processes that have exited.
fn remove_stale_trees(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("tricky-tree-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes a small tree at `dir` meant to be layered over the tricky tree: it
/// replaces a file's content, a directory's mode, a symlink's target and turns
/// a file into a symlink, and adds a new directory.
pub fn write_overlay_tree(dir: &Path) {
    let sizes = dir.join("sizes");
    fs::create_dir_all(&sizes).unwrap();
    fs::create_dir_all(dir.join("newdir")).unwrap();
    fs::create_dir_all(dir.join("links")).unwrap();
    fs::create_dir_all(dir.join("modes")).unwrap();
    fs::write(sizes.join("1"), "overlay\n").unwrap();
    fs::write(dir.join("newdir/file"), "new\n").unwrap();
    std::os::unix::fs::symlink("../newdir/file", dir.join("links/relative")).unwrap();
    std::os::unix::fs::symlink("0755", dir.join("modes/0644")).unwrap();
    chmod(&sizes.join("1"), 0o600);
    chmod(&sizes, 0o700);
    chmod(&dir.join("newdir"), 0o755);
    chmod(&dir.join("links"), 0o755);
    chmod(&dir.join("modes"), 0o755);
    chmod(dir, 0o755);
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The objects of a repo (`objects/XX/REST.TYPE`) as `XXREST.TYPE` names.
pub fn object_names(repo: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let objects = repo.join("objects");
    for dir in fs::read_dir(&objects).unwrap_or_else(|e| panic!("{}: {e}", objects.display())) {
        let dir = dir.unwrap();
        let prefix = dir.file_name().to_string_lossy().into_owned();
        for object in fs::read_dir(dir.path()).unwrap() {
            let object = object.unwrap();
            names.insert(format!("{prefix}{}", object.file_name().to_string_lossy()));
        }
    }
    names
}

/// Asserts two object sets are equal, printing only the differences.
pub fn assert_same_objects(ours: &BTreeSet<String>, theirs: &BTreeSet<String>, context: &str) {
    let only_ours: Vec<_> = ours.difference(theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "{context}: object sets differ\n  only in kiln's repo: {only_ours:?}\n  only in ostree's repo: {only_theirs:?}"
    );
}

/// The path of object `checksum.ext` (`ext`: file, filez, dirtree, dirmeta, commit).
pub fn object_path(repo: &Path, checksum: &str, ext: &str) -> PathBuf {
    repo.join("objects")
        .join(&checksum[..2])
        .join(format!("{}.{ext}", &checksum[2..]))
}

/// `true` when the test can run: euid 0 and a working `ostree`. When not, a
/// test is skipped (returns early) unless `KILN_CI=1`, where it fails.
pub fn require_root_and_ostree() -> bool {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() {
        missing.push("root (tests set owners, xattrs and mount file systems)");
    }
    let ostree_works = ostree()
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ostree_works {
        missing.push("the `ostree` binary (scripts/deps.sh installs it)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("this test needs {}", missing.join(" and "));
    if std::env::var("KILN_CI").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// What a tree compare looks at for one path (never times).
#[derive(Debug, PartialEq)]
struct Node {
    /// `d`, `-`, `l` or `?`.
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Regular files: the bytes.
    content: Vec<u8>,
    /// Symlinks: the target.
    target: Option<PathBuf>,
    /// Sorted by name.
    xattrs: Vec<(String, Vec<u8>)>,
    /// Regular files: shares its inode with a file of the repo (a hardlinked
    /// checkout).
    linked_to_repo: bool,
    /// Regular files: the first path (in walk order) of this tree with the
    /// same inode; equal to its own path when no other name shares it.
    link_group: Option<PathBuf>,
}

/// Everything under `root`, keyed by path relative to it (`""` is the root).
fn walk(root: &Path, repo_inodes: &HashSet<(u64, u64)>) -> BTreeMap<PathBuf, Node> {
    let mut nodes = BTreeMap::new();
    let mut first_name: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            '-'
        } else if ft.is_symlink() {
            'l'
        } else {
            '?'
        };
        let mut node = Node {
            kind,
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            content: Vec::new(),
            target: None,
            xattrs: read_xattrs(&path),
            linked_to_repo: false,
            link_group: None,
        };
        match kind {
            'd' => {
                let mut children: Vec<_> = fs::read_dir(&path)
                    .unwrap()
                    .map(|e| rel.join(e.unwrap().file_name()))
                    .collect();
                children.sort();
                children.reverse();
                stack.extend(children);
            }
            '-' => {
                node.content = fs::read(&path).unwrap();
                let inode = (meta.dev(), meta.ino());
                node.linked_to_repo = repo_inodes.contains(&inode);
                node.link_group = Some(
                    first_name
                        .entry(inode)
                        .or_insert_with(|| rel.clone())
                        .clone(),
                );
            }
            'l' => node.target = Some(fs::read_link(&path).unwrap()),
            _ => {}
        }
        nodes.insert(rel, node);
    }
    nodes
}

/// The xattrs of `path` (not following symlinks), sorted by name.
pub fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut list = vec![0u8; 64 * 1024];
    let len = match rustix::fs::llistxattr(path, &mut list[..]) {
        Ok(len) => len,
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(e) => panic!("llistxattr {}: {e}", path.display()),
    };
    let mut xattrs: Vec<(String, Vec<u8>)> = list[..len]
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 64 * 1024];
            let n = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..])
                .unwrap_or_else(|e| panic!("lgetxattr {} {name}: {e}", path.display()));
            value.truncate(n);
            (name, value)
        })
        .collect();
    xattrs.sort();
    xattrs
}

/// The (device, inode) of every regular file under `repo`: what a hardlinked
/// checkout shares its files with.
pub fn repo_inodes(repo: &Path) -> HashSet<(u64, u64)> {
    let mut inodes = HashSet::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                inodes.insert((meta.dev(), meta.ino()));
            }
        }
    }
    inodes
}

fn describe_node(path: &Path, node: &Node) -> String {
    let mut s = format!("{}{:o} {}:{}", node.kind, node.mode, node.uid, node.gid);
    if node.kind == '-' {
        s.push_str(&format!(" {} bytes", node.content.len()));
        if node.linked_to_repo {
            s.push_str(" hardlinked-to-repo");
        }
        if let Some(group) = node.link_group.as_deref().filter(|g| *g != path) {
            s.push_str(&format!(" same-inode-as={}", group.display()));
        }
    }
    if let Some(target) = &node.target {
        s.push_str(&format!(" -> {}", target.display()));
    }
    for (name, value) in &node.xattrs {
        s.push_str(&format!(" {name}={}", value.escape_ascii()));
    }
    s
}

/// The differences between trees `expected` and `actual`, each checked out
/// from `repo`: type, mode, owner, content, symlink target, xattrs, whether a
/// file is hardlinked to a repo object, and which names share an inode.
/// Empty when the trees are the same.
pub fn tree_differences(expected: &Path, actual: &Path, repo: &Path) -> Vec<String> {
    let inodes = repo_inodes(repo);
    let a = walk(expected, &inodes);
    let b = walk(actual, &inodes);
    let mut diffs = Vec::new();
    for (path, node) in &a {
        match b.get(path) {
            None => diffs.push(format!(
                "/{}: missing ({})",
                path.display(),
                describe_node(path, node)
            )),
            Some(other) if other != node => {
                let what = if node.content != other.content {
                    " (content differs)"
                } else {
                    ""
                };
                diffs.push(format!(
                    "/{}{what}:\n      expected {}\n      actual   {}",
                    path.display(),
                    describe_node(path, node),
                    describe_node(path, other)
                ));
            }
            Some(_) => {}
        }
    }
    for (path, node) in &b {
        if !a.contains_key(path) {
            diffs.push(format!(
                "/{}: unexpected ({})",
                path.display(),
                describe_node(path, node)
            ));
        }
    }
    diffs
}

/// Asserts [`tree_differences`] is empty.
pub fn assert_same_tree(expected: &Path, actual: &Path, repo: &Path, context: &str) {
    let diffs = tree_differences(expected, actual, repo);
    assert!(
        diffs.is_empty(),
        "{context}: trees differ (expected = ostree's, actual = kiln's):\n  {}",
        diffs.join("\n  ")
    );
}

/// The whitespace-separated fields of `ostree ls -C`'s single line for `path`
/// (`ls -d` for directories): for a file, field 4 is its content checksum; for
/// a directory, fields 4 and 5 are its dirtree and dirmeta checksums.
pub fn ls_fields(repo: &Path, rev: &str, path: &str) -> Vec<String> {
    let out = run_ok(ostree_repo(repo, "ls").args(["-d", "-C", rev, path]));
    out.split_whitespace().map(str::to_owned).collect()
}

/// `ostree rev-parse REV`, trimmed.
pub fn ostree_rev_parse(repo: &Path, rev: &str) -> String {
    run_ok(ostree_repo(repo, "rev-parse").arg(rev))
        .trim()
        .to_owned()
}

/// Asserts `ostree fsck` passes on `repo`.
pub fn assert_ostree_fsck(repo: &Path, context: &str) {
    let out = run(ostree_repo(repo, "fsck").arg("-a"));
    assert!(
        out.status.success(),
        "{context}: `ostree fsck` fails on {}:\n{}{}",
        repo.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a fifo at `path` (commits must refuse it).
pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
    assert!(fs::symlink_metadata(path).unwrap().file_type().is_fifo());
}
