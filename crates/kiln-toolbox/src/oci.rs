//! OCI image layouts (a directory with `oci-layout`, `index.json` and
//! `blobs/`) and archives of them. Every blob is checked against its digest
//! and size before it is used.

use crate::error::{Error, IoContext, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

const MAX_JSON: u64 = 4 << 20;

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: Option<u64>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// A resolved image: its manifest digest, a name and its layers in order.
#[derive(Debug)]
pub struct Image {
    pub layout: PathBuf,
    pub manifest_digest: String,
    pub name: Option<String>,
    layers: Vec<Descriptor>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidImage {
        path: path.into(),
        reason: reason.into(),
    }
}

/// `sha256:HEX` → the blob's path, refusing anything else.
fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        invalid(
            layout,
            format!("unsupported digest {digest:?} (only sha256)"),
        )
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid(layout, format!("malformed digest {digest:?}")));
    }
    Ok(layout.join("blobs").join("sha256").join(hex))
}

/// Check a blob's size and digest; returns its path.
fn verify_blob(layout: &Path, desc: &Descriptor) -> Result<PathBuf> {
    let path = blob_path(layout, &desc.digest)?;
    let mut file =
        File::open(&path).map_err(|e| invalid(layout, format!("blob {}: {e}", desc.digest)))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).ctx("read", &path)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    if let Some(size) = desc.size {
        if size != total {
            return Err(invalid(
                layout,
                format!(
                    "blob {} has {total} bytes, the descriptor says {size}",
                    desc.digest
                ),
            ));
        }
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != desc.digest {
        return Err(invalid(
            layout,
            format!("digest mismatch: blob {} hashes to {actual}", desc.digest),
        ));
    }
    Ok(path)
}

fn read_json_blob<T: serde::de::DeserializeOwned>(layout: &Path, desc: &Descriptor) -> Result<T> {
    if desc.size.is_some_and(|s| s > MAX_JSON) {
        return Err(invalid(layout, format!("{} is too large", desc.digest)));
    }
    let path = verify_blob(layout, desc)?;
    let bytes = std::fs::read(&path).ctx("read", &path)?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(layout, format!("{}: {e}", desc.digest)))
}

fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Pick the manifest for this machine from an index.
fn pick(manifests: Vec<Descriptor>, layout: &Path) -> Result<Descriptor> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut fallback = None;
    for m in manifests {
        match &m.platform {
            Some(p) if p.os == "linux" && p.architecture == arch => return Ok(m),
            Some(_) => {}
            None => {
                fallback.get_or_insert(m);
            }
        }
    }
    fallback.ok_or_else(|| invalid(layout, format!("no manifest for linux/{arch}")))
}

/// Read and verify the manifest of the layout at `layout`.
pub fn open(layout: &Path) -> Result<Image> {
    let marker = layout.join("oci-layout");
    if !marker.is_file() {
        return Err(invalid(
            layout,
            "not an OCI image layout (no oci-layout file)",
        ));
    }
    let index_path = layout.join("index.json");
    let bytes =
        std::fs::read(&index_path).map_err(|e| invalid(layout, format!("index.json: {e}")))?;
    let index: Index =
        serde_json::from_slice(&bytes).map_err(|e| invalid(layout, format!("index.json: {e}")))?;
    let mut desc = pick(index.manifests, layout)?;
    let mut name = desc
        .annotations
        .get("org.opencontainers.image.ref.name")
        .cloned();
    // Nested indexes (multi-arch images), bounded.
    for _ in 0..4 {
        if !is_index(&desc.media_type) {
            break;
        }
        let nested: Index = read_json_blob(layout, &desc)?;
        desc = pick(nested.manifests, layout)?;
        if name.is_none() {
            name = desc
                .annotations
                .get("org.opencontainers.image.ref.name")
                .cloned();
        }
    }
    let manifest: Manifest = read_json_blob(layout, &desc)?;
    verify_blob(layout, &manifest.config)?;
    for layer in &manifest.layers {
        if layer.media_type.contains("zstd") {
            return Err(Error::Unsupported(format!("zstd layer {}", layer.digest)));
        }
    }
    Ok(Image {
        layout: layout.into(),
        manifest_digest: desc.digest,
        name,
        layers: manifest.layers,
    })
}

impl Image {
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Verify every layer, then unpack them in order onto `root`.
    pub fn unpack(
        &self,
        root: std::os::fd::BorrowedFd<'_>,
        mut on_layer: impl FnMut(usize, usize),
    ) -> Result<()> {
        let mut paths = Vec::new();
        for layer in &self.layers {
            paths.push(verify_blob(&self.layout, layer)?);
        }
        for (i, (layer, path)) in self.layers.iter().zip(paths).enumerate() {
            on_layer(i + 1, self.layers.len());
            let file = File::open(&path).ctx("open", &path)?;
            crate::unpack::unpack_layer(root, file, &layer.digest)?;
        }
        Ok(())
    }
}

/// Extract an archive (tar, optionally gzip) of an OCI layout into `dest`,
/// accepting only plain files and directories, owned by the caller.
pub fn extract_archive(archive: &Path, dest: &Path) -> Result<()> {
    let file = File::open(archive).ctx("open", archive)?;
    std::fs::create_dir_all(dest).ctx("create", dest)?;
    let root = crate::unpack::open_root(dest)?;
    let opts = crate::unpack::Options {
        owner: Some((
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )),
        plain_only: true,
    };
    crate::unpack::unpack_layer_with(
        std::os::fd::AsFd::as_fd(&root),
        file,
        &archive.display().to_string(),
        &opts,
    )?;
    Ok(())
}
