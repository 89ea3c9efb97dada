//! Crash safety, bad input, a small `/boot`, and the lock.
//!
//! Each fail point SIGKILLs kiln at a durable step of a deploy; afterwards
//! the boot entries must name only complete deployments (the old set or the
//! new one), `ostree admin status` and `ostree fsck` must pass, and running
//! the command again must complete.

#[path = "sysroot_support/mod.rs"]
mod support;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

const FAILPOINTS: &[&str] = &[
    "deploy:after-checkout",
    "deploy:after-etc-merge",
    "deploy:after-origin",
    "deploy:after-bls",
    "deploy:after-syncfs",
    "deploy:after-swap",
    "deploy:after-remove-old",
];

/// The commits the current entries boot, in entry order.
fn booted_set(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for (_, text) in entries(root) {
        let opts = text
            .lines()
            .find_map(|l| l.strip_prefix("options "))
            .expect("options line");
        let link = opts
            .split(' ')
            .find_map(|a| a.strip_prefix("ostree="))
            .expect("ostree= karg");
        let target = root.join(link.trim_start_matches('/'));
        let real = fs::canonicalize(&target)
            .unwrap_or_else(|e| panic!("entry points at missing {link}: {e}"));
        // A complete deployment: origin, /etc, sealed.
        let name = real.file_name().unwrap().to_string_lossy().to_string();
        assert!(real.join("etc").is_dir(), "{name}: no /etc");
        assert!(
            real.parent()
                .unwrap()
                .join(format!("{name}.origin"))
                .exists(),
            "{name}: no origin"
        );
        assert!(immutable(&real), "{name}: not sealed");
        v.push(name.split('.').next().unwrap().to_string());
    }
    v.sort();
    v
}

fn fsck(root: &Path) {
    ok(ostree()
        .arg("fsck")
        .arg(format!("--repo={}", s(&root.join("ostree/repo")))));
}

struct Setup {
    sc: Scratch,
    root: PathBuf,
    c: Vec<String>,
}

/// A kiln sysroot with v1 and v2 deployed and v3 committed.
fn setup() -> Setup {
    let sc = Scratch::new();
    let root = sc.path("s");
    init_sysroot(&root, Tool::Kiln);
    let tree = sc.path("t");
    let mut c = Vec::new();
    for (i, k) in ["A", "B", "C"].iter().enumerate() {
        let mut spec = TreeSpec::new(&(i + 1).to_string());
        spec.kernel = k.to_string();
        make_tree(&tree, &spec);
        c.push(commit(
            &root,
            &tree,
            &format!("v{}", i + 1),
            &(i + 1).to_string(),
        ));
    }
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v1", "--karg=root=LABEL=x"]));
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v2"]));
    Setup { sc, root, c }
}

#[test]
fn killed_at_each_failpoint_boots_old_or_new_and_recovers() {
    if !have_env() {
        return;
    }
    for fp in FAILPOINTS {
        let st = setup();
        let root = &st.root;
        let mut old = vec![st.c[0].clone(), st.c[1].clone()];
        old.sort();
        let mut new = vec![st.c[1].clone(), st.c[2].clone()];
        new.sort();
        let o = out(Tool::Kiln
            .admin(root, "deploy")
            .args(["--os=fakeos", "fakeos/v3"])
            .env("KILN_FAILPOINT", fp));
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{fp}: expected SIGKILL, got {:?}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        let set = booted_set(root);
        assert!(
            set == old || set == new,
            "{fp}: entries boot {set:?}, neither old {old:?} nor new {new:?}"
        );
        ok(Tool::Ostree.admin(root, "status"));
        fsck(root);
        // Running the command again completes.
        ok(Tool::Kiln
            .admin(root, "deploy")
            .args(["--os=fakeos", "fakeos/v3"]));
        let status = ok(Tool::Ostree.admin(root, "status"));
        assert!(
            status.lines().next().unwrap().contains(&st.c[2]),
            "{fp}: v3 is not the default:\n{status}"
        );
        fsck(root);
        // No debris: every deployment dir is one the entries use.
        assert_eq!(
            deployment_dirs(root).len(),
            entries(root).len(),
            "{fp}: debris left"
        );
        ok(Tool::Ostree.admin(root, "undeploy").arg("1"));
        drop(st.sc);
    }
}

#[test]
fn bad_input_changes_nothing() {
    if !have_env() {
        return;
    }
    let st = setup();
    let root = &st.root;
    let tree = st.sc.path("nokernel");
    make_tree(&tree, &TreeSpec::new("9"));
    fs::remove_dir_all(tree.join("usr/lib/modules")).unwrap();
    commit(root, &tree, "nokernel", "9");
    let before = listing(root);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--os=fakeos", "nosuch/ref"],
            "Refspec 'nosuch/ref' not found",
        ),
        (&["--os=fakeos", "fakeos/v1~1"], "Invalid refspec"),
        (&["--os=fakeos", &"0".repeat(64)], "No such metadata object"),
        (
            &["--os=fakeos", "fakeos/nokernel"],
            "Failed to find kernel in /usr/lib/modules, /usr/lib/ostree-boot or /boot",
        ),
        (
            &["--os=nosuchos", "fakeos/v1"],
            "stateroot 'nosuchos' does not exist",
        ),
        (
            &["--os=fakeos", "--stage", "fakeos/v1"],
            "Cannot stage deployment: Not currently booted into an OSTree system",
        ),
        (&["fakeos/v1"], "no --os= argument given"),
    ];
    for (args, msg) in cases {
        let e = fails(Tool::Kiln.admin(root, "deploy").args(*args));
        assert!(e.starts_with("error: ") && e.contains(msg), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert_eq!(before, listing(root), "{args:?} changed the sysroot");
    }
    for (verb, args, msg) in [
        (
            "undeploy",
            vec!["9"],
            "Out of range deployment index 9, expected < 2",
        ),
        ("pin", vec!["9"], "Out of range"),
        ("set-default", vec!["7"], "Out of range"),
    ] {
        let e = fails(Tool::Kiln.admin(root, verb).args(args));
        assert!(e.contains(msg), "{verb}: {e}");
        assert_eq!(before, listing(root));
    }
    // A malformed origin: every verb that loads the sysroot refuses.
    let d = deployment_dirs(root);
    let origin = root
        .join("ostree/deploy/fakeos/deploy")
        .join(format!("{}.origin", d[0]));
    let good = fs::read(&origin).unwrap();
    fs::write(&origin, "this is not a keyfile\n").unwrap();
    let before = listing(root);
    for verb in ["undeploy", "status"] {
        let mut c = Tool::Kiln.admin(root, verb);
        if verb == "undeploy" {
            c.arg("1");
        }
        let e = fails(c);
        assert!(
            e.contains("loading sysroot") && e.contains(".origin"),
            "{e}"
        );
    }
    let e = fails(
        Tool::Kiln
            .admin(root, "deploy")
            .args(["--os=fakeos", "fakeos/v3"]),
    );
    assert!(e.contains("Parsing"), "{e}");
    assert_eq!(before, listing(root));
    fs::write(&origin, good).unwrap();
    // Not a sysroot.
    let empty = st.sc.path("empty");
    fs::create_dir(&empty).unwrap();
    for verb in ["status", "deploy", "undeploy", "os-init"] {
        let mut c = Tool::Kiln.admin(&empty, verb);
        if verb == "deploy" {
            c.args(["--os=fakeos", "fakeos/v1"]);
        } else if verb == "undeploy" {
            c.arg("0");
        } else if verb == "os-init" {
            c.arg("fakeos");
        }
        let e = fails(c);
        assert!(e.contains("not an OSTree sysroot"), "{verb}: {e}");
    }
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
}

/// An 8 MiB ext4 mounted on SYSROOT/boot, unmounted on drop.
struct SmallBoot {
    mnt: PathBuf,
}

impl SmallBoot {
    fn new(img: &Path, mnt: &Path) -> Option<SmallBoot> {
        ok(Command::new("truncate").args(["-s", "8M"]).arg(img));
        ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(img));
        let o = out(Command::new("mount").args(["-o", "loop"]).arg(img).arg(mnt));
        if !o.status.success() {
            eprintln!(
                "skipping: cannot loop-mount: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        Some(SmallBoot {
            mnt: mnt.to_path_buf(),
        })
    }
}

impl Drop for SmallBoot {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn small_boot_is_refused_up_front() {
    if !have_env() {
        return;
    }
    let sc = Scratch::new();
    let root = sc.path("s");
    init_sysroot(&root, Tool::Kiln);
    let Some(_boot) = SmallBoot::new(&sc.path("boot.img"), &root.join("boot")) else {
        return;
    };
    let tree = sc.path("t");
    for (i, k) in ["A", "B", "C"].iter().enumerate() {
        let mut spec = TreeSpec::new(&(i + 1).to_string());
        spec.kernel = k.to_string();
        spec.kernel_size = 3 * 1024 * 1024;
        make_tree(&tree, &spec);
        commit(&root, &tree, &format!("v{}", i + 1), &(i + 1).to_string());
    }
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v1"]));
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v2"]));
    let before = listing(&root);
    let e = fails(
        Tool::Kiln
            .admin(&root, "deploy")
            .args(["--os=fakeos", "fakeos/v3"]),
    );
    assert!(
        e.contains("not enough space on /boot")
            && e.contains("needed")
            && e.contains("available")
            && e.contains("kiln cleanup"),
        "{e}"
    );
    assert_eq!(
        before,
        listing(&root),
        "a refused deploy changed the sysroot"
    );
    ok(Tool::Ostree.admin(&root, "status"));
    // Free the rollback kernel, then it fits.
    ok(kiln().args(["cleanup", "-r"]).arg(sysroot_arg(&root)));
    ok(Tool::Kiln
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v3"]));
    assert_eq!(entries(&root).len(), 2);
    fsck(&root);
}

#[test]
fn sysroot_lock_is_ostrees_lock() {
    if !have_env() {
        return;
    }
    let st = setup();
    let root = &st.root;
    // Hold ostree/lock the way libostree does (OFD write lock) for 2 s.
    let holder = r#"
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0))
print('locked', flush=True)
time.sleep(2)
"#;
    let mut h = Command::new("python3")
        .arg("-c")
        .arg(holder)
        .arg(root.join("ostree/lock"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(h.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let t = std::time::Instant::now();
    let o = ok(Tool::Kiln
        .admin(root, "deploy")
        .args(["--os=fakeos", "fakeos/v3"]));
    assert!(
        t.elapsed().as_millis() >= 1000,
        "kiln did not wait for the lock"
    );
    assert!(o.starts_with("Waiting for sysroot lock..."), "{o}");
    h.wait().unwrap();
    // Concurrent kiln commands serialize: both deploys complete.
    let a = Tool::Kiln
        .admin(root, "deploy")
        .args(["--os=fakeos", "--retain", "fakeos/v1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let b = Tool::Kiln
        .admin(root, "deploy")
        .args(["--os=fakeos", "--retain", "fakeos/v2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert_eq!(entries(root).len(), 4);
    ok(Tool::Ostree.admin(root, "status"));
    fsck(root);
}
