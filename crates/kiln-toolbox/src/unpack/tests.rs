use super::*;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

struct Layer {
    b: tar::Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
}

impl Layer {
    fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
            uid: u64::from(rustix::process::geteuid().as_raw()),
            gid: u64::from(rustix::process::getegid().as_raw()),
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    }

    fn dir(mut self, path: &str) -> Self {
        let mut h = self.header(tar::EntryType::Directory, 0o755, 0);
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    fn file(mut self, path: &str, data: &[u8]) -> Self {
        let mut h = self.header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    /// Write a raw path (the tar crate refuses `..` in append_data).
    fn raw_file(mut self, path: &[u8], data: &[u8]) -> Self {
        let mut h = self.header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(tar::EntryType::Link, 0o644, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }

    fn gz(self) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&self.bytes()).unwrap();
        e.finish().unwrap()
    }
}

fn setup() -> (tempfile::TempDir, PathBuf, OwnedFd) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    let fd = open_root(&root).unwrap();
    (dir, root, fd)
}

#[test]
fn layers_with_whiteouts_and_opaque_dirs() {
    let (_t, root, fd) = setup();
    let l1 = Layer::new()
        .dir("etc")
        .file("etc/keep", b"keep")
        .file("etc/gone", b"gone")
        .dir("opq")
        .file("opq/old", b"old")
        .dir("dir-gone")
        .file("dir-gone/x", b"x")
        .symlink("lib", "usr/lib")
        .dir("usr")
        .dir("usr/lib")
        .file("usr/lib/a", b"a")
        .hardlink("etc/keep-link", "etc/keep");
    unpack_layer(fd.as_fd(), l1.bytes().as_slice(), "l1").unwrap();
    let l2 = Layer::new()
        .file("etc/.wh.gone", b"")
        .file(".wh.dir-gone", b"")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new")
        .file("etc/keep", b"changed")
        // Through a relative symlink that stays inside: allowed.
        .file("lib/b", b"b");
    let stats = unpack_layer(fd.as_fd(), l2.gz().as_slice(), "l2").unwrap();
    assert_eq!(stats.whiteouts, 3);

    assert_eq!(std::fs::read(root.join("etc/keep")).unwrap(), b"changed");
    assert!(!root.join("etc/gone").exists());
    assert!(!root.join("dir-gone").exists());
    assert!(!root.join("opq/old").exists());
    assert_eq!(std::fs::read(root.join("opq/new")).unwrap(), b"new");
    assert_eq!(std::fs::read(root.join("usr/lib/b")).unwrap(), b"b");
    assert_eq!(
        std::fs::read_link(root.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    // The hard link kept the old content (a new file replaced etc/keep).
    assert_eq!(std::fs::read(root.join("etc/keep-link")).unwrap(), b"keep");
    let md = std::fs::metadata(root.join("usr/lib/a")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o644);
    assert_eq!(md.mtime(), 1_700_000_000);
}

#[test]
fn dot_dot_is_refused() {
    let (t, _root, fd) = setup();
    let l = Layer::new().raw_file(b"../escaped", b"evil");
    let err = unpack_layer(fd.as_fd(), l.bytes().as_slice(), "bad").unwrap_err();
    assert!(matches!(err, Error::UnsafeLayer { .. }), "{err}");
    assert!(!t.path().join("escaped").exists());
}

#[test]
fn absolute_symlink_escape_is_refused() {
    let (t, _root, fd) = setup();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let l = Layer::new()
        .symlink("evil", outside.to_str().unwrap())
        .file("evil/pwned", b"evil");
    let err = unpack_layer(fd.as_fd(), l.bytes().as_slice(), "bad").unwrap_err();
    assert!(err.to_string().contains("outside the image root"), "{err}");
    assert!(!outside.join("pwned").exists());
}

#[test]
fn relative_symlink_climbing_out_is_refused() {
    let (t, _root, fd) = setup();
    let l = Layer::new()
        .symlink("up", "../..")
        .file("up/pwned", b"evil");
    let err = unpack_layer(fd.as_fd(), l.bytes().as_slice(), "bad").unwrap_err();
    assert!(matches!(err, Error::UnsafeLayer { .. }), "{err}");
    assert!(!t.path().join("pwned").exists());
    assert!(!t.path().parent().unwrap().join("pwned").exists());
}

#[test]
fn hard_link_through_escaping_symlink_is_refused() {
    let (t, _root, fd) = setup();
    std::fs::write(t.path().join("secret"), b"s").unwrap();
    let l = Layer::new()
        .symlink("out", t.path().to_str().unwrap())
        .hardlink("stolen", "out/secret");
    let err = unpack_layer(fd.as_fd(), l.bytes().as_slice(), "bad").unwrap_err();
    assert!(matches!(err, Error::UnsafeLayer { .. }), "{err}");
}

#[test]
fn a_file_replaced_by_a_symlink_is_not_followed() {
    let (t, root, fd) = setup();
    let outside = t.path().join("target");
    std::fs::write(&outside, b"untouched").unwrap();
    let l = Layer::new()
        .symlink("f", outside.to_str().unwrap())
        .file("f", b"new");
    unpack_layer(fd.as_fd(), l.bytes().as_slice(), "l").unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"untouched");
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"new");
}
