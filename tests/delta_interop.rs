//! Static deltas against the real `ostree` 2022.7: kiln applies what ostree
//! generates and ostree applies what kiln generates, in every direction
//! (from→to with bsdiff, `--empty`, `--inline`, fallback objects, swapped
//! endianness), and corrupt deltas store nothing bad.
//!
//! Needs `ostree` on the PATH (skipped otherwise, failed when `KILN_CI=1`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

fn have_ostree() -> bool {
    let ok = Command::new("ostree")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var_os("KILN_CI").is_some() {
        panic!("ostree is required (KILN_CI=1)");
    }
    ok
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout)
        .trim_end()
        .to_string()
}

fn ostree(repo: &Path) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    c
}

fn kiln(repo: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.arg("repo")
        .arg(format!("--repo={}", repo.display()))
        .arg("static-delta");
    c
}

/// Deterministic pseudo-random bytes (incompressible).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Text-like bytes (compressible, bsdiff-friendly).
fn text(n: usize, seed: u64) -> Vec<u8> {
    let words = [
        "alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta ", "eta\n", "theta ",
    ];
    let r = noise(n / 4 + 8, seed);
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(words[(r[i % r.len()] % 8) as usize].as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

struct Fixture {
    _tmp: TempDir,
    dir: PathBuf,
    src: PathBuf,
    from: String,
    to: String,
}

fn write(path: &Path, data: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// An archive repo with two commits of `main`: the second changes a big
/// text file by a few bytes (bsdiff), adds files and a 2 MB incompressible
/// one (a fallback with `--min-fallback-size=1`), removes one.
fn fixture() -> Fixture {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_path_buf();
    let src = dir.join("src");
    run(Command::new("ostree")
        .arg("init")
        .arg(format!("--repo={}", src.display()))
        .arg("--mode=archive"));
    let t = dir.join("tree");
    let big_text = text(200_000, 1);
    write(&t.join("usr/lib/libfoo.so.1"), &big_text, 0o755);
    write(&t.join("usr/bin/tool"), &text(30_000, 2), 0o755);
    write(&t.join("usr/bin/setuid"), b"#!/bin/sh\n", 0o4755);
    write(&t.join("etc/hosts"), b"127.0.0.1 localhost\n", 0o644);
    write(&t.join("etc/empty"), b"", 0o600);
    write(&t.join("etc/old"), b"going away\n", 0o644);
    write(&t.join("usr/share/doc/readme.xz"), &noise(5000, 3), 0o644);
    std::os::unix::fs::symlink("../lib/libfoo.so.1", t.join("usr/bin/link")).unwrap();
    fs::create_dir_all(t.join("var/empty-dir")).unwrap();
    let commit = |subject: &str| {
        stdout(
            ostree(&src)
                .arg("commit")
                .arg("-b")
                .arg("main")
                .arg("--timestamp=2021-01-01T00:00:00Z")
                .arg("-s")
                .arg(subject)
                .arg(&t),
        )
    };
    let from = commit("one");
    let mut changed = big_text.clone();
    changed[1000..1010].copy_from_slice(b"CHANGED!!!");
    changed.extend_from_slice(b"tail\n");
    write(&t.join("usr/lib/libfoo.so.1"), &changed, 0o755);
    write(&t.join("usr/bin/tool"), &text(31_000, 2), 0o755);
    write(&t.join("usr/share/big.bin"), &noise(2_000_000, 4), 0o644);
    write(&t.join("etc/new"), b"new file\n", 0o640);
    fs::remove_file(t.join("etc/old")).unwrap();
    std::os::unix::fs::symlink("hosts", t.join("etc/hosts.link")).unwrap();
    let to = commit("two");
    Fixture {
        _tmp: tmp,
        dir,
        src,
        from,
        to,
    }
}

impl Fixture {
    /// A repo of `mode` holding the from-commit (or nothing).
    fn target(&self, name: &str, mode: &str, with_from: bool) -> PathBuf {
        let r = self.dir.join(name);
        run(Command::new("ostree")
            .arg("init")
            .arg(format!("--repo={}", r.display()))
            .arg(format!("--mode={mode}")));
        if with_from {
            run(ostree(&r).arg("pull-local").arg(&self.src).arg(&self.from));
        }
        r
    }

    /// ostree fsck passes and the to-commit's tree is complete and equal
    /// to the source's.
    fn check_complete(&self, repo: &Path) {
        let out = stdout(ostree(repo).arg("fsck"));
        assert!(out.contains("no errors found"), "{out}");
        let want = stdout(
            ostree(&self.src)
                .arg("ls")
                .arg("-R")
                .arg("-X")
                .arg("-C")
                .arg(&self.to),
        );
        let got = stdout(
            ostree(repo)
                .arg("ls")
                .arg("-R")
                .arg("-X")
                .arg("-C")
                .arg(&self.to),
        );
        assert_eq!(got, want);
        // every content object is readable (catches a missing object)
        run(ostree(repo)
            .arg("checkout")
            .arg("-U")
            .arg(&self.to)
            .arg(repo.with_extension("co")));
        fs::remove_dir_all(repo.with_extension("co")).unwrap();
    }

    fn delta_dir(&self, repo: &Path, empty: bool) -> PathBuf {
        let deltas = repo.join("deltas");
        for a in fs::read_dir(&deltas).unwrap() {
            for b in fs::read_dir(a.unwrap().path()).unwrap() {
                let p = b.unwrap().path();
                let is_empty = !p.file_name().unwrap().to_string_lossy().contains('-');
                if is_empty == empty {
                    return p;
                }
            }
        }
        panic!("no delta in {}", deltas.display());
    }
}

#[test]
fn kiln_applies_ostree_deltas() {
    if !have_ostree() {
        return;
    }
    let fx = fixture();
    let src = &fx.src;
    run(ostree(src)
        .arg("static-delta")
        .arg("generate")
        .arg(format!("--from={}", fx.from))
        .arg(format!("--to={}", fx.to)));
    run(ostree(src)
        .arg("static-delta")
        .arg("generate")
        .arg("--empty")
        .arg(format!("--to={}", fx.to)));
    let inline = fx.dir.join("inline.delta");
    run(ostree(src)
        .arg("static-delta")
        .arg("generate")
        .arg("--inline")
        .arg(format!("--filename={}", inline.display()))
        .arg(format!("--from={}", fx.from))
        .arg(format!("--to={}", fx.to)));
    // ostree used bsdiff for the changed files
    let show = stdout(
        ostree(src)
            .arg("static-delta")
            .arg("show")
            .arg(format!("{}-{}", fx.from, fx.to)),
    );
    assert!(!show.contains("bspatch=0"), "{show}");

    for mode in ["bare", "bare-user", "archive"] {
        let r = fx.target(&format!("fromto-{mode}"), mode, true);
        run(kiln(&r).arg("apply-offline").arg(fx.delta_dir(src, false)));
        fx.check_complete(&r);

        let r = fx.target(&format!("empty-{mode}"), mode, false);
        run(kiln(&r)
            .arg("apply-offline")
            .arg(fx.delta_dir(src, true).join("superblock")));
        fx.check_complete(&r);

        let r = fx.target(&format!("inline-{mode}"), mode, true);
        run(kiln(&r).arg("apply-offline").arg(&inline));
        fx.check_complete(&r);
    }
}

#[test]
fn ostree_applies_kiln_deltas() {
    if !have_ostree() {
        return;
    }
    let fx = fixture();
    let src = &fx.src;
    run(kiln(src)
        .arg("generate")
        .arg(format!("--from={}", fx.from))
        .arg(format!("--to={}", fx.to)));
    run(kiln(src).arg("generate").arg("--empty").arg(&fx.to));
    let show = stdout(
        ostree(src)
            .arg("static-delta")
            .arg("show")
            .arg(format!("{}-{}", fx.from, fx.to)),
    );
    assert!(
        show.contains("bspatch=2"),
        "kiln used bsdiff for the two changed files: {show}"
    );
    assert!(show.contains("Endianness: little"), "{show}");
    let listed = stdout(ostree(src).arg("static-delta").arg("list"));
    assert!(
        listed.contains(&format!("{}-{}", fx.from, fx.to)) && listed.contains(&fx.to),
        "{listed}"
    );

    // ostree can't run bsdiff ops into archive repos (it aborts); bare modes.
    for mode in ["bare", "bare-user"] {
        let r = fx.target(&format!("fromto-{mode}"), mode, true);
        run(ostree(&r)
            .arg("static-delta")
            .arg("apply-offline")
            .arg(fx.delta_dir(src, false)));
        fx.check_complete(&r);
    }
    for mode in ["bare", "bare-user", "archive"] {
        let r = fx.target(&format!("empty-{mode}"), mode, false);
        run(ostree(&r)
            .arg("static-delta")
            .arg("apply-offline")
            .arg(fx.delta_dir(src, true)));
        fx.check_complete(&r);
    }

    // --inline, --swap-endianness, --disable-bsdiff, small chunks: many parts.
    let inline = fx.dir.join("k-inline.delta");
    run(kiln(src)
        .arg("generate")
        .arg("--inline")
        .arg("--swap-endianness")
        .arg(format!("--filename={}", inline.display()))
        .arg(format!("--from={}", fx.from))
        .arg(format!("--to={}", fx.to)));
    let show = stdout(
        ostree(src)
            .arg("static-delta")
            .arg("show")
            .arg(inline.to_str().unwrap()),
    );
    assert!(show.contains("Endianness: big"), "{show}");
    let r = fx.target("inline-bare", "bare", true);
    run(ostree(&r)
        .arg("static-delta")
        .arg("apply-offline")
        .arg(&inline));
    fx.check_complete(&r);

    let out = fx.dir.join("chunks");
    fs::create_dir_all(&out).unwrap();
    run(kiln(src)
        .arg("generate")
        .arg("--empty")
        .arg("--disable-bsdiff")
        .arg("--max-chunk-size=1")
        .arg(format!("--filename={}", out.join("superblock").display()))
        .arg(&fx.to));
    assert!(out.join("2").exists(), "expected several parts");
    let r = fx.target("chunks-bare", "bare", false);
    run(ostree(&r)
        .arg("static-delta")
        .arg("apply-offline")
        .arg(&out));
    fx.check_complete(&r);
    // and kiln reads it back too
    let r = fx.target("chunks-kiln", "archive", false);
    run(kiln(&r).arg("apply-offline").arg(&out));
    fx.check_complete(&r);
}

#[test]
fn fallback_objects() {
    if !have_ostree() {
        return;
    }
    let fx = fixture();
    let src = &fx.src;
    let name = format!("{}-{}", fx.from, fx.to);
    // ostree's delta with a fallback: kiln shows it as ostree does, and
    // refuses it offline, unless told where the fallback objects are.
    run(ostree(src)
        .arg("static-delta")
        .arg("generate")
        .arg("--min-fallback-size=1")
        .arg(format!("--from={}", fx.from))
        .arg(&fx.to));
    let o = stdout(ostree(src).arg("static-delta").arg("show").arg(&name));
    let k = stdout(kiln(src).arg("show").arg(&name));
    assert_eq!(k, o);
    assert!(o.contains("Number of fallback entries: 1"), "{o}");
    let r = fx.target("fb", "bare", true);
    let out = kiln(&r)
        .arg("apply-offline")
        .arg(fx.delta_dir(src, false))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Cannot execute delta offline: contains nonempty http fallback entries"));
    run(kiln(&r)
        .arg("apply-offline")
        .arg(format!("--fallback-repo={}", src.display()))
        .arg(fx.delta_dir(src, false)));
    fx.check_complete(&r);

    // kiln's delta with a fallback, as ostree sees it.
    run(kiln(src).arg("delete").arg(&name));
    run(kiln(src)
        .arg("generate")
        .arg("--min-fallback-size=1")
        .arg(format!("--from={}", fx.from))
        .arg(&fx.to));
    let o = stdout(ostree(src).arg("static-delta").arg("show").arg(&name));
    assert!(o.contains("Number of fallback entries: 1"), "{o}");
    let r = fx.target("fb2", "bare", true);
    let out = ostree(&r)
        .arg("static-delta")
        .arg("apply-offline")
        .arg(fx.delta_dir(src, false))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nonempty http fallback"),
        "{out:?}"
    );
}

#[test]
fn show_list_delete_match_ostree() {
    if !have_ostree() {
        return;
    }
    let fx = fixture();
    let src = &fx.src;
    run(ostree(src)
        .arg("static-delta")
        .arg("generate")
        .arg(format!("--from={}", fx.from))
        .arg(&fx.to));
    run(ostree(src)
        .arg("static-delta")
        .arg("generate")
        .arg("--empty")
        .arg(&fx.to));
    for d in [format!("{}-{}", fx.from, fx.to), fx.to.clone()] {
        assert_eq!(
            stdout(kiln(src).arg("show").arg(&d)),
            stdout(ostree(src).arg("static-delta").arg("show").arg(&d))
        );
    }
    let mut o: Vec<String> = stdout(ostree(src).arg("static-delta").arg("list"))
        .lines()
        .map(String::from)
        .collect();
    o.sort();
    assert_eq!(stdout(kiln(src).arg("list")), o.join("\n"));
    run(kiln(src).arg("delete").arg(&fx.to));
    let out = kiln(src).arg("delete").arg(&fx.to).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("Can't find delta {}", fx.to)));
    assert_eq!(
        stdout(ostree(src).arg("static-delta").arg("list")),
        format!("{}-{}", fx.from, fx.to)
    );
    run(kiln(src)
        .arg("delete")
        .arg(format!("{}-{}", fx.from, fx.to)));
    assert_eq!(stdout(kiln(src).arg("list")), "(No static deltas)");
    assert_eq!(
        stdout(ostree(src).arg("static-delta").arg("list")),
        "(No static deltas)"
    );
}

#[test]
fn corrupt_or_misplaced_deltas_store_nothing_bad() {
    if !have_ostree() {
        return;
    }
    let fx = fixture();
    let src = &fx.src;
    run(kiln(src)
        .arg("generate")
        .arg(format!("--from={}", fx.from))
        .arg(&fx.to));
    let dir = fx.delta_dir(src, false);

    // The from-commit must be there, with ostree's message.
    let r = fx.target("nosrc", "bare", false);
    let out = kiln(&r).arg("apply-offline").arg(&dir).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "Commit {}, which is the delta source, is not in repository",
            fx.from
        )),
        "{out:?}"
    );

    // A flipped byte in a part: refused before anything is written.
    let bad = fx.dir.join("bad");
    fs::create_dir_all(&bad).unwrap();
    for f in fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), bad.join(f.file_name())).unwrap();
    }
    let mut part = fs::read(bad.join("0")).unwrap();
    let mid = part.len() / 2;
    part[mid] ^= 0x40;
    fs::write(bad.join("0"), &part).unwrap();
    let r = fx.target("corrupt", "bare", true);
    let before = stdout(
        Command::new("find")
            .arg(r.join("objects"))
            .arg("-type")
            .arg("f"),
    )
    .lines()
    .count();
    let out = kiln(&r).arg("apply-offline").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Checksum mismatch in static delta part 0"),
        "{out:?}"
    );
    let after = stdout(
        Command::new("find")
            .arg(r.join("objects"))
            .arg("-type")
            .arg("f"),
    )
    .lines()
    .count();
    assert_eq!(before, after);
    assert!(stdout(ostree(&r).arg("fsck")).contains("no errors found"));

    // A corrupt inline delta (the part checksum is verified inline too).
    let inline = fx.dir.join("i.delta");
    run(kiln(src)
        .arg("generate")
        .arg("--inline")
        .arg("--disable-bsdiff")
        .arg(format!("--filename={}", inline.display()))
        .arg("--empty")
        .arg(&fx.to));
    let mut b = fs::read(&inline).unwrap();
    let at = b.len() / 3;
    b[at] ^= 1;
    fs::write(&inline, &b).unwrap();
    let r = fx.target("corrupt-inline", "archive", false);
    let out = kiln(&r).arg("apply-offline").arg(&inline).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(!r
        .join("objects")
        .join(&fx.to[..2])
        .join(format!("{}.commit", &fx.to[2..]))
        .exists());
    assert!(stdout(ostree(&r).arg("fsck")).contains("no errors found"));

    // Truncated superblock: a clear error, no panic.
    let sb = fs::read(dir.join("superblock")).unwrap();
    let cut = fx.dir.join("cut");
    fs::create_dir_all(&cut).unwrap();
    fs::write(cut.join("superblock"), &sb[..sb.len() / 2]).unwrap();
    let out = kiln(&r).arg("apply-offline").arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: "),
        "{out:?}"
    );
}
