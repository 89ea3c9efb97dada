//! The README's first command: `kiln demo` runs kiln's main job on its
//! built-in tree, with nothing prepared, and succeeds.

use std::process::Command;

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["demo", "--dir"])
        .arg(&scratch)
        .output()
        .expect("run kiln demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kiln demo failed:\n{stdout}\n{stderr}"
    );
    // What a newcomer should see: both versions, the diff, a verified repo,
    // and a pull that moved version 2 onto the machine.
    for expected in [
        "Version: 1",
        "Version: 2",
        "M    /usr/bin/hello",
        "A    /usr/bin/goodbye",
        "D    /usr/share/doc/kiln/README",
        "no errors found",
        "hello from kiln v1",
        "(updated)",
        // deploy, upgrade, diff, rollback in the scratch sysroot
        "Bootloader updated",
        "demo:origin:demo/stable (rollback)",
        "1 added, 2 modified, 1 removed",
        "local change was merged into version 2",
        "to be first deployment",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    // The scratch directory holds the real artefacts the demo made.
    assert!(scratch.join("repo/config").exists());
    assert!(scratch
        .join("machine-repo/refs/remotes/origin/demo/stable")
        .exists());
}

#[test]
fn demo_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("precious"), "keep me").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run kiln demo");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious")).expect("read"),
        "keep me"
    );
}

/// A newcomer is usually not root: the demo must work for an ordinary
/// user too (its deployment part runs in a user namespace).
#[test]
fn demo_runs_for_an_unprivileged_user() {
    if !rustix_is_root() {
        eprintln!("skipping: creating the test user needs root");
        assert!(
            std::env::var_os("KILN_CI").is_none(),
            "CI runs the tests as root"
        );
        return;
    }
    let user = "kilndemo";
    if Command::new("id")
        .arg(user)
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        let ok = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/sh", user])
            .status()
            .expect("useradd")
            .success();
        assert!(ok, "useradd {user} failed");
    }
    // The user must be able to execute the binary and write the scratch dir.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let exe = dir.path().join("kiln");
    std::fs::copy(env!("CARGO_BIN_EXE_kiln"), &exe).expect("copy kiln");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let chown = Command::new("chown")
        .arg(user)
        .arg(&scratch)
        .status()
        .expect("chown");
    assert!(chown.success());
    let out = Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(&exe)
        .args(["demo", "--dir"])
        .arg(scratch.join("demo"))
        .env("TMPDIR", &scratch)
        .output()
        .expect("runuser");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kiln demo as {user} failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "user namespace",
        "(updated)",
        "demo:origin:demo/stable (rollback)",
        "to be first deployment",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
}

fn rustix_is_root() -> bool {
    // /proc/self is owned by the effective uid of this process.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
