//! Protobuf-style unsigned varints, as ostree's delta opcodes use them.

/// Read one varint from the front of `buf`: (value, bytes used).
pub fn read(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let bits = (b & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return None; // more than 64 bits
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

pub fn write(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 21, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            super::write(&mut b, v);
            assert_eq!(super::read(&b), Some((v, b.len())));
        }
        assert_eq!(super::read(&[0x80]), None);
        assert_eq!(super::read(&[0xff; 11]), None);
    }
}
