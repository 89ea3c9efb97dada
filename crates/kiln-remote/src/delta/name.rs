//! Delta names and paths: ostree's "modified base64" of checksums.
//!
//! A delta from `FROM` to `TO` lives in `deltas/F1F2/FROMREST-TOB64/`, a
//! from-scratch delta in `deltas/T1T2/TOREST/`, where each checksum is
//! written as 43 characters of base64 (`_` instead of `/`, no padding).

use kiln_store::Checksum;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_";

/// The 43-character modified base64 form of a checksum.
pub fn b64_encode(c: &Checksum) -> String {
    let b = &c.0;
    let mut out = String::with_capacity(44);
    for chunk in b.chunks(3) {
        let n = match chunk.len() {
            3 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8 | chunk[2] as u32,
            2 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8,
            _ => (chunk[0] as u32) << 16,
        };
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parse the 43-character modified base64 form; `None` if malformed.
pub fn b64_decode(s: &str) -> Option<Checksum> {
    let s = s.as_bytes();
    if s.len() != 43 {
        return None;
    }
    let val = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32);
    let mut out = [0u8; 32];
    let mut o = 0;
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        for i in 0..bytes {
            out[o] = (n >> (16 - 8 * i)) as u8;
            o += 1;
        }
        // The unused low bits of the last character must be zero
        // (canonical encoding), otherwise two names map to one checksum.
        if chunk.len() < 4 && n & ((1 << (8 * (3 - bytes))) - 1) != 0 {
            return None;
        }
    }
    (o == 32).then_some(Checksum(out))
}

/// `FROM-TO` or `TO`, as `ostree static-delta list` prints it.
pub fn delta_name(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        Some(f) => format!("{f}-{to}"),
        None => to.to_string(),
    }
}

/// Parse `FROM-TO` or `TO`.
pub fn parse_delta_name(name: &str) -> Option<(Option<Checksum>, Checksum)> {
    match name.split_once('-') {
        Some((f, t)) => Some((Some(f.parse().ok()?), t.parse().ok()?)),
        None => Some((None, name.parse().ok()?)),
    }
}

/// The delta's directory relative to the repo: `deltas/XX/REST[-TO]`.
pub fn delta_dir(from: Option<&Checksum>, to: &Checksum) -> String {
    base("deltas/", from, to)
}

/// `deltas/…/NAME` (`superblock`, a part number, `commitmeta`).
pub fn delta_path(from: Option<&Checksum>, to: &Checksum, target: &str) -> String {
    format!("{}/{target}", delta_dir(from, to))
}

/// `delta-indexes/XX/REST.index`.
pub fn index_path(to: &Checksum) -> String {
    format!("{}.index", base("delta-indexes/", None, to))
}

fn base(dir: &str, from: Option<&Checksum>, to: &Checksum) -> String {
    let t = b64_encode(to);
    match from {
        Some(f) => {
            let f = b64_encode(f);
            format!("{dir}{}/{}-{t}", &f[..2], &f[2..])
        }
        None => format!("{dir}{}/{}", &t[..2], &t[2..]),
    }
}

/// Parse the two directory levels under `deltas/` back into a delta.
pub fn parse_delta_dir(first: &str, second: &str) -> Option<(Option<Checksum>, Checksum)> {
    let whole = format!("{first}{second}");
    match whole.split_once('-') {
        Some((f, t)) => Some((Some(b64_decode(f)?), b64_decode(t)?)),
        None => Some((None, b64_decode(&whole)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ostree_layout() {
        // Observed with ostree 2022.7.
        let from: Checksum = "c641a0467589d26aba4d776b265bfd11aeaff43adeaf4ce9320240bc05eec8d7"
            .parse()
            .unwrap();
        let to: Checksum = "1863ec6aea7f8d1a027b08b1573927eb8f51a1bdb10b609dfc701940e5e4eda7"
            .parse()
            .unwrap();
        assert_eq!(
            delta_dir(None, &to),
            "deltas/GG/Psaup_jRoCewixVzkn649Rob2xC2Cd_HAZQOXk7ac"
        );
        assert_eq!(
            delta_dir(Some(&from), &to),
            "deltas/xk/GgRnWJ0mq6TXdrJlv9Ea6v9Drer0zpMgJAvAXuyNc-GGPsaup_jRoCewixVzkn649Rob2xC2Cd_HAZQOXk7ac"
        );
        assert_eq!(b64_decode(&b64_encode(&from)), Some(from));
        assert_eq!(
            parse_delta_dir("GG", "Psaup_jRoCewixVzkn649Rob2xC2Cd_HAZQOXk7ac"),
            Some((None, to))
        );
        assert_eq!(
            parse_delta_dir("xk", "GgRnWJ0mq6TXdrJlv9Ea6v9Drer0zpMgJAvAXuyNc-GGPsaup_jRoCewixVzkn649Rob2xC2Cd_HAZQOXk7ac"),
            Some((Some(from), to))
        );
    }

    #[test]
    fn rejects_bad_b64() {
        assert_eq!(b64_decode("short"), None);
        assert_eq!(b64_decode(&"/".repeat(43)), None);
        // non-canonical trailing bits
        let mut s = b64_encode(&Checksum([0; 32]));
        s.pop();
        s.push('B');
        assert_eq!(b64_decode(&s), None);
    }
}
