//! Version orderings: `strverscmp(3)` (ostree orders boot entries by their
//! `version` key with it) and dpkg's (`kiln diff` says whether a package
//! was upgraded or downgraded).

use std::cmp::Ordering;

/// Compare like glibc's `strverscmp` (digit runs compare as numbers; runs
/// with leading zeros compare as fractions).
pub fn strverscmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let si = i;
                while a.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                let sj = j;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                let (ra, rb) = (&a[si..i], &b[sj..j]);
                let frac = ra[0] == b'0' || rb[0] == b'0';
                let ord = if frac {
                    // Fractional parts: plain lexicographic, shorter-is-greater ties.
                    match ra.cmp(rb) {
                        Ordering::Equal => Ordering::Equal,
                        o => {
                            let n = ra.len().min(rb.len());
                            if ra[..n] == rb[..n] {
                                rb.len().cmp(&ra.len())
                            } else {
                                o
                            }
                        }
                    }
                } else {
                    ra.len().cmp(&rb.len()).then(ra.cmp(rb))
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                i += 1;
                j += 1;
            }
        }
    }
}

/// dpkg's weight of a character in the non-digit part of a version:
/// `~` sorts before everything (even the end), letters before the rest.
fn order(c: u8) -> i32 {
    match c {
        0 => 0,
        b'~' => -1,
        c if c.is_ascii_digit() => 0,
        c if c.is_ascii_alphabetic() => i32::from(c),
        c => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit parts (by [`order`]) and
/// digit parts (as numbers of any length).
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (x, y) = (order(at(a, i)), order(at(b, j)));
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == b'0' {
            i += 1;
        }
        while at(b, j) == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while at(a, i).is_ascii_digit() && at(b, j).is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if at(a, i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if at(b, j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// `[EPOCH:]UPSTREAM[-REVISION]`: the epoch is what precedes the first
/// `:` (0 when absent), the revision what follows the last `-`.
fn split_version(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((up, rev)) => (epoch, up, rev),
        None => (epoch, rest, ""),
    }
}

/// Compare two Debian package versions as `dpkg --compare-versions` does
/// (epoch, then upstream version, then Debian revision).
pub fn debian_version_cmp(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_version(a);
    let (eb, ub, rb) = split_version(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(strverscmp("10", "9"), Ordering::Greater);
        assert_eq!(strverscmp("2", "2"), Ordering::Equal);
        assert_eq!(strverscmp("a1", "a2"), Ordering::Less);
        assert_eq!(strverscmp("1.10", "1.9"), Ordering::Greater);
    }

    #[test]
    fn debian_versions() {
        use Ordering::*;
        let cases = [
            // Epochs win over everything; a missing epoch is 0.
            ("1:1.0", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("1:1.0-1", "1:1.0-1", Equal),
            ("2:0.1", "10:0.1", Less),
            // ~ sorts before the end of the string, even before nothing.
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("590-2.1~deb12u2", "590-2.1", Less),
            ("590-2.1~deb12u2", "590-2.1~deb12u1", Greater),
            // Revisions: after the last '-'; absent equals "0".
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0", "1.0-0", Equal),
            ("1.0-1-2", "1.0-1-10", Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            // Digit runs are numbers: leading zeros do not count.
            ("1.10", "1.9", Greater),
            ("1.001", "1.1", Equal),
            ("1.0", "1.00", Equal),
            ("18446744073709551616", "18446744073709551615", Greater),
            // Letters sort before other characters; '+' and '.' after.
            ("1.0a", "1.0+", Less),
            ("1.0+b1", "1.0", Greater),
            ("1.0.1", "1.0a", Greater),
            ("1a", "1.", Less),
            ("1.2.3", "1.2.3", Equal),
            ("2:2.36-9+deb12u1", "2.36-9+deb12u1", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(debian_version_cmp(a, b), want, "{a} vs {b}");
            assert_eq!(debian_version_cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
