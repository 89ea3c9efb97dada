//! ed25519 signatures as libostree stores them: a list (`aay`) of 64-byte
//! signatures under `ostree.sign.ed25519`, in a commit's detached metadata
//! (signing the commit object's bytes) or in `summary.sig` (signing the
//! summary's bytes). Public keys are base64 of 32 bytes; secret keys are
//! base64 of libsodium's 64-byte form (seed followed by the public key).

use crate::error::{Error, Result};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use kiln_store::gvariant::{Type, Value, VarDict};
use kiln_store::{Checksum, ObjectType, Repo};
use std::path::Path;

/// The detached-metadata key of ed25519 signatures.
pub const ED25519_KEY: &str = "ostree.sign.ed25519";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A public (verification) key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_base64(s: &str) -> Result<PublicKey> {
        let raw = b64()
            .decode(s.trim())
            .map_err(|e| Error::Invalid(format!("ed25519 public key is not base64: {e}")))?;
        let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
            Error::Invalid(format!(
                "Invalid public key length of {} bytes, expected 32",
                raw.len()
            ))
        })?;
        VerifyingKey::from_bytes(&arr)
            .map(PublicKey)
            .map_err(|e| Error::Invalid(format!("invalid ed25519 public key: {e}")))
    }

    pub fn to_base64(&self) -> String {
        b64().encode(self.0.as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Keys from a file of base64 keys, one a line (blank lines skipped).
    pub fn from_file(path: &Path) -> Result<Vec<PublicKey>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(PublicKey::from_base64)
            .collect()
    }
}

/// A secret (signing) key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public={})", self.public().to_base64())
    }
}

impl SecretKey {
    /// base64 of 64 bytes (seed + public key, as libsodium and
    /// `ostree sign` use) or of a bare 32-byte seed.
    pub fn from_base64(s: &str) -> Result<SecretKey> {
        let raw = b64()
            .decode(s.trim())
            .map_err(|e| Error::Invalid(format!("ed25519 secret key is not base64: {e}")))?;
        let seed: [u8; 32] = match raw.len() {
            64 | 32 => raw[..32]
                .try_into()
                .map_err(|_| Error::Invalid("bad secret key".into()))?,
            n => {
                return Err(Error::Invalid(format!(
                    "Invalid secret key length of {n} bytes, expected 64"
                )))
            }
        };
        let key = SigningKey::from_bytes(&seed);
        if raw.len() == 64 && key.verifying_key().as_bytes() != &raw[32..] {
            return Err(Error::Invalid(
                "ed25519 secret key: public half does not match the seed".into(),
            ));
        }
        Ok(SecretKey(key))
    }

    /// A key from a 32-byte seed (tests, key generation).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// The 64-byte libsodium form, base64.
    pub fn to_base64(&self) -> String {
        b64().encode(self.0.to_keypair_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, data: &[u8]) -> [u8; 64] {
        self.0.sign(data).to_bytes()
    }
}

/// Read the ed25519 signatures out of an `a{sv}` (detached metadata or
/// `summary.sig`). `None` when the key is absent.
pub fn signatures_of(md: &VarDict) -> Result<Option<Vec<Vec<u8>>>> {
    let Some(v) = md.get(ED25519_KEY) else {
        return Ok(None);
    };
    let ty = v.type_of();
    if ty.to_string() != "aay" {
        return Err(Error::Invalid(format!(
            "{ED25519_KEY} has type {ty}, expected aay"
        )));
    }
    Ok(Some(
        v.children()
            .iter()
            .filter_map(|c| c.as_bytes().map(<[u8]>::to_vec))
            .collect(),
    ))
}

/// Append a signature to `md` (keeping the position of an existing list).
pub fn append_signature(md: &mut VarDict, sig: &[u8]) -> Result<()> {
    let mut sigs = signatures_of(md)?.unwrap_or_default();
    sigs.push(sig.to_vec());
    let v = Value::Array(
        Type::Array(Box::new(Type::Byte)),
        sigs.into_iter().map(Value::Bytes).collect(),
    );
    md.insert(ED25519_KEY, v);
    Ok(())
}

/// Why no signature was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    NoSignatures,
    NoKeys,
    Invalid(String),
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyFailure::NoSignatures => f.write_str("No signatures found"),
            VerifyFailure::NoKeys => f.write_str("ed25519: no public keys configured"),
            VerifyFailure::Invalid(s) => f.write_str(s),
        }
    }
}

/// Verify `data` against the signatures in `md` with any of `keys`. On
/// success returns ostree's message naming the key.
pub fn verify(
    data: &[u8],
    md: Option<&VarDict>,
    keys: &[PublicKey],
) -> Result<String, VerifyFailure> {
    if keys.is_empty() {
        return Err(VerifyFailure::NoKeys);
    }
    let sigs = match md.map(signatures_of) {
        Some(Ok(Some(s))) => s,
        Some(Err(e)) => return Err(VerifyFailure::Invalid(e.to_string())),
        _ => return Err(VerifyFailure::NoSignatures),
    };
    if sigs.is_empty() {
        return Err(VerifyFailure::NoSignatures);
    }
    let mut tried = Vec::new();
    for s in &sigs {
        let Ok(arr) = <[u8; 64]>::try_from(s.as_slice()) else {
            return Err(VerifyFailure::Invalid(format!(
                "Invalid signature length of {} bytes, expected 64",
                s.len()
            )));
        };
        let sig = Signature::from_bytes(&arr);
        for k in keys {
            if k.0.verify(data, &sig).is_ok() {
                return Ok(format!(
                    "ed25519: Signature verified successfully with key '{}'",
                    k.to_hex()
                ));
            }
            tried.push(format!("key '{}'", k.to_hex()));
        }
    }
    Err(VerifyFailure::Invalid(format!(
        "ed25519: Signature couldn't be verified; tried: {}",
        tried.join("; ")
    )))
}

/// `ostree sign COMMIT KEY`: append a signature of the commit object to its
/// detached metadata.
pub fn sign_commit(repo: &Repo, commit: &Checksum, key: &SecretKey) -> Result<()> {
    let data = repo.read_meta(commit, ObjectType::Commit)?;
    let mut md = repo
        .read_commit_detached_metadata(commit)?
        .unwrap_or_default();
    append_signature(&mut md, &key.sign(&data))?;
    repo.write_commit_detached_metadata(commit, Some(&md))?;
    Ok(())
}

/// `ostree sign --verify COMMIT KEY…`.
pub fn verify_commit(
    repo: &Repo,
    commit: &Checksum,
    keys: &[PublicKey],
) -> Result<String, VerifyFailure> {
    let data = repo
        .read_meta(commit, ObjectType::Commit)
        .map_err(|e| VerifyFailure::Invalid(e.to_string()))?;
    let md = repo
        .read_commit_detached_metadata(commit)
        .map_err(|e| VerifyFailure::Invalid(e.to_string()))?;
    verify(&data, md.as_ref(), keys)
}

/// `summary -u --sign=KEY`: (re)sign the repo's `summary` into
/// `summary.sig`, appending to signatures already there.
pub fn sign_summary(repo: &Repo, keys: &[SecretKey]) -> Result<()> {
    if keys.is_empty() {
        return Err(Error::Invalid("No keys passed for signing summary".into()));
    }
    let path = repo.path().join("summary");
    let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let sig_path = repo.path().join("summary.sig");
    let mut md = match std::fs::read(&sig_path) {
        Ok(b) => kiln_store::object::decode_vardict(&b)
            .map_err(|e| Error::Invalid(format!("{}: {e}", sig_path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => VarDict::new(),
        Err(e) => return Err(Error::io(&sig_path, e)),
    };
    for k in keys {
        append_signature(&mut md, &k.sign(&data))?;
    }
    kiln_store::util::write_file_atomic(
        &sig_path,
        &kiln_store::object::encode_vardict(&md),
        0o644,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let sk = SecretKey::from_seed([7; 32]);
        let sk2 = SecretKey::from_base64(&sk.to_base64()).unwrap();
        assert_eq!(sk.public(), sk2.public());
        let pk = PublicKey::from_base64(&sk.public().to_base64()).unwrap();
        let mut md = VarDict::new();
        append_signature(&mut md, &sk.sign(b"hello")).unwrap();
        assert!(verify(b"hello", Some(&md), std::slice::from_ref(&pk)).is_ok());
        assert!(matches!(
            verify(b"hellO", Some(&md), std::slice::from_ref(&pk)),
            Err(VerifyFailure::Invalid(_))
        ));
        assert_eq!(
            verify(b"hello", None, &[pk]),
            Err(VerifyFailure::NoSignatures)
        );
        // The stored form is aay.
        let bytes = kiln_store::object::encode_vardict(&md);
        let back = kiln_store::object::decode_vardict(&bytes).unwrap();
        assert_eq!(signatures_of(&back).unwrap().unwrap().len(), 1);
    }
}
