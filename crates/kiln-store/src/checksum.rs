//! SHA-256 object checksums.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 object checksum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(pub [u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid checksum {0:?}: expected 64 lowercase hex digits")]
pub struct BadChecksum(pub String);

impl Checksum {
    pub fn from_bytes(b: &[u8]) -> Option<Checksum> {
        Some(Checksum(b.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `objects/XX/` directory name and file stem.
    pub fn split_hex(&self) -> (String, String) {
        let h = self.to_hex();
        (h[..2].to_string(), h[2..].to_string())
    }

    pub fn of(data: &[u8]) -> Checksum {
        use sha2::Digest;
        Checksum(sha2::Sha256::digest(data).into())
    }

    /// True if `s` looks like a full checksum.
    pub fn is_hex(s: &str) -> bool {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl FromStr for Checksum {
    type Err = BadChecksum;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !Checksum::is_hex(s) {
            return Err(BadChecksum(s.to_string()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadChecksum(s.to_string()))?;
        Ok(Checksum(out))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_hex())
    }
}

impl serde::Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Incremental SHA-256.
#[derive(Clone, Default)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        self.0.update(data);
    }
    pub fn finish(self) -> Checksum {
        use sha2::Digest;
        Checksum(self.0.finalize().into())
    }
}
