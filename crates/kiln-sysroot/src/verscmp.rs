//! `strverscmp(3)`: ostree orders boot entries by their `version` key with it.

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
}
