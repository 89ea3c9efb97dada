//! `kiln serve`: a small, safe static HTTP/1.1 server for archive repos
//! (tests, demos, small sites). GET and HEAD only, single byte ranges,
//! keep-alive; files are opened with `openat2(RESOLVE_BENEATH)` so no path
//! or symlink leaves the served directory; only regular files are served,
//! never listings. Fleets serve the same files from nginx or a CDN.

use crate::error::{Error, Result};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub root: PathBuf,
    pub addr: SocketAddr,
    /// Connections served at once; more get 503.
    pub max_connections: usize,
    /// A connection idle this long is closed.
    pub idle_timeout: Duration,
}

/// A bound server.
pub struct Server {
    listener: TcpListener,
    root: Arc<OwnedFd>,
    opts: ServeOptions,
    active: Arc<AtomicUsize>,
}

const MAX_HEAD: usize = 16 * 1024;

impl Server {
    pub fn bind(opts: ServeOptions) -> Result<Server> {
        let root = rustix::fs::open(
            &opts.root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(&opts.root, e.into()))?;
        let listener = TcpListener::bind(opts.addr)
            .map_err(|e| Error::io(format!("listen {}", opts.addr), e))?;
        Ok(Server {
            listener,
            root: Arc::new(root),
            opts,
            active: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("listener", e))
    }

    /// Serve until the process ends.
    pub fn run(&self) -> Result<()> {
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            let n = self.active.fetch_add(1, Ordering::SeqCst);
            if n >= self.opts.max_connections {
                self.active.fetch_sub(1, Ordering::SeqCst);
                let mut s = stream;
                let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            let (root, active, idle) = (
                self.root.clone(),
                self.active.clone(),
                self.opts.idle_timeout,
            );
            std::thread::spawn(move || {
                let _ = handle(stream, &root, idle);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
        Ok(())
    }
}

struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    range: Option<String>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r
            .by_ref()
            .take((MAX_HEAD - head.len().min(MAX_HEAD)) as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.len() + line.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let blank = line == b"\r\n" || line == b"\n";
        if blank && head.is_empty() {
            continue; // tolerate stray CRLF between requests
        }
        head.extend_from_slice(&line);
        if blank {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("HTTP/1.0");
    let mut keep_alive = version == "HTTP/1.1";
    let mut range = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            "range" => range = Some(v.to_string()),
            _ => {}
        }
    }
    Ok(Some(Request {
        method,
        path: target,
        keep_alive,
        range,
    }))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The relative path a request names, or None if it is not a plain path
/// below the root.
fn safe_path(target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    if !path.starts_with('/') {
        return None;
    }
    let raw = percent_decode(path)?;
    let s = String::from_utf8(raw).ok()?;
    let mut out = PathBuf::new();
    for c in s.split('/') {
        match c {
            "" | "." => continue,
            ".." => return None,
            c if c.contains('\0') => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn open_beneath(root: &OwnedFd, rel: &Path) -> std::io::Result<std::fs::File> {
    if rel.as_os_str().is_empty() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(std::fs::File::from(fd))
}

/// Parse a single `bytes=` range against a file of `len` bytes.
fn parse_range(spec: &str, len: u64) -> Option<std::result::Result<(u64, u64), ()>> {
    let r = spec.trim().strip_prefix("bytes=")?;
    if r.contains(',') {
        return None; // multiple ranges: serve the whole file
    }
    let (a, b) = r.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if len == 0 || range.0 >= len || range.0 > range.1 {
        return Some(Err(()));
    }
    Some(Ok(range))
}

fn respond(
    w: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nServer: kiln\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    w.write_all(head.as_bytes())
}

fn handle(stream: TcpStream, root: &OwnedFd, idle: Duration) -> std::io::Result<()> {
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(idle))?;
    let _ = stream.set_nodelay(true);
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    loop {
        let req = match read_request(&mut r) {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(_) => {
                let _ = respond(
                    &mut w,
                    "400 Bad Request",
                    &[("Content-Length", "0".into())],
                    false,
                );
                return Ok(());
            }
        };
        let head_only = req.method == "HEAD";
        if req.method != "GET" && !head_only {
            respond(
                &mut w,
                "405 Method Not Allowed",
                &[
                    ("Allow", "GET, HEAD".into()),
                    ("Content-Length", "0".into()),
                ],
                req.keep_alive,
            )?;
        } else {
            let file = safe_path(&req.path)
                .ok_or(std::io::ErrorKind::NotFound.into())
                .and_then(|p| open_beneath(root, &p));
            let file = file.and_then(|f| {
                let md = f.metadata()?;
                if md.is_file() {
                    Ok((f, md.len()))
                } else {
                    Err(std::io::ErrorKind::NotFound.into())
                }
            });
            match file {
                Err(_) => {
                    respond(
                        &mut w,
                        "404 Not Found",
                        &[("Content-Length", "0".into())],
                        req.keep_alive,
                    )?;
                }
                Ok((mut f, len)) => match req.range.as_deref().and_then(|s| parse_range(s, len)) {
                    Some(Err(())) => {
                        respond(
                            &mut w,
                            "416 Range Not Satisfiable",
                            &[
                                ("Content-Range", format!("bytes */{len}")),
                                ("Content-Length", "0".into()),
                            ],
                            req.keep_alive,
                        )?;
                    }
                    Some(Ok((a, b))) => {
                        let n = b - a + 1;
                        respond(
                            &mut w,
                            "206 Partial Content",
                            &[
                                ("Content-Type", "application/octet-stream".into()),
                                ("Accept-Ranges", "bytes".into()),
                                ("Content-Range", format!("bytes {a}-{b}/{len}")),
                                ("Content-Length", n.to_string()),
                            ],
                            req.keep_alive,
                        )?;
                        if !head_only {
                            f.seek(SeekFrom::Start(a))?;
                            std::io::copy(&mut (&mut f).take(n), &mut w)?;
                        }
                    }
                    None => {
                        respond(
                            &mut w,
                            "200 OK",
                            &[
                                ("Content-Type", "application/octet-stream".into()),
                                ("Accept-Ranges", "bytes".into()),
                                ("Content-Length", len.to_string()),
                            ],
                            req.keep_alive,
                        )?;
                        if !head_only {
                            std::io::copy(&mut f, &mut w)?;
                        }
                    }
                },
            }
        }
        w.flush()?;
        if !req.keep_alive {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_root() {
        assert_eq!(
            safe_path("/objects/ab/cd.filez"),
            Some(PathBuf::from("objects/ab/cd.filez"))
        );
        assert_eq!(safe_path("/a/./b?x=1"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_path("/../etc/passwd"), None);
        assert_eq!(safe_path("/a/%2e%2e/b"), None);
        assert_eq!(safe_path("/a%00b"), None);
        assert_eq!(safe_path("relative"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
    }
}
