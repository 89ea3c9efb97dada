//! bsdiff/bspatch in the stream form ostree embeds in deltas.
//!
//! ostree calls the library entry points of mendsley's bsdiff, which write
//! no header and no compression: the patch is a sequence of records, each
//! three 8-byte sign-magnitude little-endian integers (`diff_len`,
//! `extra_len`, `seek`), then `diff_len` bytes to add to the old bytes,
//! then `extra_len` new bytes. The new size comes from the delta opcode.
//! The generator is Colin Percival's algorithm over a suffix array of the
//! old file.

use std::cmp::Ordering;

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bsdiff patch failed: {0}")]
pub struct PatchError(pub &'static str);

fn offtin(b: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[..8]);
    let neg = raw[7] & 0x80 != 0;
    raw[7] &= 0x7f;
    let v = u64::from_le_bytes(raw) as i64;
    if neg {
        -v
    } else {
        v
    }
}

fn offtout(v: i64, out: &mut Vec<u8>) {
    let mut raw = v.unsigned_abs().to_le_bytes();
    if v < 0 {
        raw[7] |= 0x80;
    }
    out.extend_from_slice(&raw);
}

/// Largest object kiln patches in memory.
pub const MAX_PATCH_OUTPUT: u64 = 4 << 30;

/// Apply `patch` to `old`, producing exactly `new_size` bytes.
pub fn bspatch(old: &[u8], patch: &[u8], new_size: u64) -> Result<Vec<u8>, PatchError> {
    if new_size > MAX_PATCH_OUTPUT {
        return Err(PatchError("output too large"));
    }
    let new_size = new_size as usize;
    let mut new = Vec::new();
    new.try_reserve_exact(new_size)
        .map_err(|_| PatchError("out of memory"))?;
    new.resize(new_size, 0);
    let (mut oldpos, mut newpos, mut p) = (0i64, 0usize, 0usize);
    while newpos < new_size {
        let ctrl = patch
            .get(p..p + 24)
            .ok_or(PatchError("truncated control record"))?;
        p += 24;
        let (diff, extra, seek) = (
            offtin(&ctrl[0..8]),
            offtin(&ctrl[8..16]),
            offtin(&ctrl[16..24]),
        );
        if !(0..=i32::MAX as i64).contains(&diff) || !(0..=i32::MAX as i64).contains(&extra) {
            return Err(PatchError("bad control record"));
        }
        let (diff, extra) = (diff as usize, extra as usize);
        if newpos + diff > new_size {
            return Err(PatchError("diff runs past the end"));
        }
        let src = patch
            .get(p..p + diff)
            .ok_or(PatchError("truncated diff data"))?;
        p += diff;
        let dst = &mut new[newpos..newpos + diff];
        dst.copy_from_slice(src);
        // Add the old bytes that exist under [oldpos, oldpos+diff).
        let lo = oldpos.max(0);
        let hi = (oldpos + diff as i64).min(old.len() as i64);
        if lo < hi {
            let d = &mut dst[(lo - oldpos) as usize..(hi - oldpos) as usize];
            for (a, b) in d.iter_mut().zip(&old[lo as usize..hi as usize]) {
                *a = a.wrapping_add(*b);
            }
        }
        newpos += diff;
        oldpos = oldpos
            .checked_add(diff as i64)
            .ok_or(PatchError("offset overflow"))?;
        if newpos + extra > new_size {
            return Err(PatchError("extra runs past the end"));
        }
        let src = patch
            .get(p..p + extra)
            .ok_or(PatchError("truncated extra data"))?;
        p += extra;
        new[newpos..newpos + extra].copy_from_slice(src);
        newpos += extra;
        oldpos = oldpos
            .checked_add(seek)
            .ok_or(PatchError("offset overflow"))?;
    }
    Ok(new)
}

/// A rough measure of what a patch costs once compressed: control
/// records, extra bytes and non-zero diff bytes (runs of zeros in the
/// diff compress to almost nothing).
pub fn patch_cost(patch: &[u8]) -> u64 {
    let mut p = 0usize;
    let mut cost = 0u64;
    while let Some(ctrl) = patch.get(p..p + 24) {
        let (diff, extra) = (
            offtin(&ctrl[0..8]).max(0) as usize,
            offtin(&ctrl[8..16]).max(0) as usize,
        );
        p += 24;
        let d = patch.get(p..p.saturating_add(diff)).unwrap_or_default();
        cost += 24 + d.iter().filter(|&&b| b != 0).count() as u64 + extra as u64;
        p = p.saturating_add(diff).saturating_add(extra);
    }
    cost
}

fn matchlen(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Longest prefix of `new` found in `old`, by binary search in the
/// suffix array `sa` of `old`: (length, position in old).
fn search(sa: &[i32], old: &[u8], new: &[u8]) -> (usize, usize) {
    let (mut st, mut en) = (0usize, sa.len() - 1);
    while en - st >= 2 {
        let x = st + (en - st) / 2;
        let o = &old[sa[x] as usize..];
        let n = o.len().min(new.len());
        if o[..n].cmp(&new[..n]) == Ordering::Less {
            st = x;
        } else {
            en = x;
        }
    }
    let (ps, pe) = (sa[st] as usize, sa[en] as usize);
    let (x, y) = (matchlen(&old[ps..], new), matchlen(&old[pe..], new));
    if x > y {
        (x, ps)
    } else {
        (y, pe)
    }
}

/// Produce a patch turning `old` into `new`.
pub fn bsdiff(old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(new.len() / 8 + 64);
    if old.is_empty() || old.len() > i32::MAX as usize - 1 {
        offtout(0, &mut out);
        offtout(new.len() as i64, &mut out);
        offtout(0, &mut out);
        out.extend_from_slice(new);
        return out;
    }
    let mut sa = vec![0i32; old.len()];
    divsufsort::sort_in_place(old, &mut sa);

    let (oldsize, newsize) = (old.len() as i64, new.len() as i64);
    let (mut scan, mut len, mut pos) = (0i64, 0i64, 0i64);
    let (mut lastscan, mut lastpos, mut lastoffset) = (0i64, 0i64, 0i64);
    let at_old = |i: i64| old[i as usize];
    let at_new = |i: i64| new[i as usize];
    while scan < newsize {
        let mut oldscore = 0i64;
        scan += len;
        let mut scsc = scan;
        while scan < newsize {
            let (l, p) = search(&sa, old, &new[scan as usize..]);
            len = l as i64;
            pos = p as i64;
            while scsc < scan + len {
                if scsc + lastoffset < oldsize
                    && scsc + lastoffset >= 0
                    && at_old(scsc + lastoffset) == at_new(scsc)
                {
                    oldscore += 1;
                }
                scsc += 1;
            }
            if (len == oldscore && len != 0) || len > oldscore + 8 {
                break;
            }
            if scan + lastoffset < oldsize
                && scan + lastoffset >= 0
                && at_old(scan + lastoffset) == at_new(scan)
            {
                oldscore -= 1;
            }
            scan += 1;
        }
        if len != oldscore || scan == newsize {
            let (mut s, mut sf, mut lenf) = (0i64, 0i64, 0i64);
            let mut i = 0i64;
            while lastscan + i < scan && lastpos + i < oldsize {
                if at_old(lastpos + i) == at_new(lastscan + i) {
                    s += 1;
                }
                i += 1;
                if s * 2 - i > sf * 2 - lenf {
                    sf = s;
                    lenf = i;
                }
            }
            let mut lenb = 0i64;
            if scan < newsize {
                let (mut s, mut sb) = (0i64, 0i64);
                let mut i = 1i64;
                while scan >= lastscan + i && pos >= i {
                    if at_old(pos - i) == at_new(scan - i) {
                        s += 1;
                    }
                    if s * 2 - i > sb * 2 - lenb {
                        sb = s;
                        lenb = i;
                    }
                    i += 1;
                }
            }
            if lastscan + lenf > scan - lenb {
                let overlap = (lastscan + lenf) - (scan - lenb);
                let (mut s, mut ss, mut lens) = (0i64, 0i64, 0i64);
                for i in 0..overlap {
                    if at_new(lastscan + lenf - overlap + i) == at_old(lastpos + lenf - overlap + i)
                    {
                        s += 1;
                    }
                    if at_new(scan - lenb + i) == at_old(pos - lenb + i) {
                        s -= 1;
                    }
                    if s > ss {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf += lens - overlap;
                lenb -= lens;
            }
            let extra = (scan - lenb) - (lastscan + lenf);
            offtout(lenf, &mut out);
            offtout(extra, &mut out);
            offtout((pos - lenb) - (lastpos + lenf), &mut out);
            let (ls, lp) = (lastscan as usize, lastpos as usize);
            out.extend(
                new[ls..ls + lenf as usize]
                    .iter()
                    .zip(&old[lp..lp + lenf as usize])
                    .map(|(n, o)| n.wrapping_sub(*o)),
            );
            let e0 = (lastscan + lenf) as usize;
            out.extend_from_slice(&new[e0..e0 + extra as usize]);
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos - scan;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn round_trips() {
        let old = pseudo(50_000, 1);
        let mut new = old.clone();
        new[100] ^= 1;
        new.splice(2000..2010, b"inserted bytes here".iter().copied());
        new.extend_from_slice(&pseudo(3000, 2));
        new.drain(30_000..31_000);
        let p = bsdiff(&old, &new);
        assert!(patch_cost(&p) < 5_000, "patch cost {}", patch_cost(&p));
        assert_eq!(bspatch(&old, &p, new.len() as u64).unwrap(), new);
        for (o, n) in [
            (&b""[..], &b"abc"[..]),
            (b"abc", b""),
            (b"a", b"a"),
            (b"hello world", b"hello, world!"),
        ] {
            let p = bsdiff(o, n);
            assert_eq!(bspatch(o, &p, n.len() as u64).unwrap(), n);
        }
    }

    #[test]
    fn hostile_patches_fail_cleanly() {
        let old = b"some old bytes";
        assert!(bspatch(old, &[], 5).is_err());
        let mut p = Vec::new();
        offtout(-1, &mut p);
        offtout(0, &mut p);
        offtout(0, &mut p);
        assert!(bspatch(old, &p, 5).is_err());
        let mut p = Vec::new();
        offtout(3, &mut p);
        offtout(0, &mut p);
        offtout(i64::MAX, &mut p);
        p.extend_from_slice(b"abc");
        offtout(2, &mut p);
        offtout(0, &mut p);
        offtout(0, &mut p);
        p.extend_from_slice(b"de");
        assert!(bspatch(old, &p, 5).is_err());
        assert!(bspatch(old, &p, u64::MAX).is_err());
    }
}
