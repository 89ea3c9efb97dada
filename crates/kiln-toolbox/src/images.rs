//! Getting images: building the default Debian image with mmdebstrap,
//! unpacking OCI images, and committing them under `images/`.

use crate::error::{Error, IoContext, Result};
use crate::idmap::IdMapping;
use crate::layout::{self, ImageMeta, ImageSource};
use crate::{debian, oci, timefmt, unpack, userns};
use crate::{failpoint, find_tool, CreateOptions, Event, Toolbox};
use std::path::Path;
use std::process::{Command, Stdio};

impl Toolbox {
    pub(crate) fn debian_image(
        &self,
        release: &str,
        opts: &CreateOptions,
        mapping: &IdMapping,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<ImageMeta> {
        let recipe = debian::Recipe::new(release, opts.locale.as_deref())?;
        let id = recipe.image_id(&mapping.fingerprint());
        if let Ok(image) = self.store.load_image(&id) {
            return Ok(image);
        }
        let mmdebstrap = find_tool("mmdebstrap").ok_or(Error::MissingTool {
            tool: "mmdebstrap".into(),
            hint: "install the mmdebstrap package to build the default image",
        })?;
        let name = format!("debian:{release}");
        on_event(Event::BuildingImage {
            name: name.clone(),
            id: id.clone(),
        });
        let tmp = self.store.new_tmp("img")?;
        let log_path = tmp.path.join("mmdebstrap.log");
        let stderr = if opts.show_tool_output {
            Stdio::inherit()
        } else {
            Stdio::from(std::fs::File::create(&log_path).ctx("create", &log_path)?)
        };
        // mmdebstrap starts before we enter the user namespace: it runs
        // newuidmap itself and must do so from the host.
        let mut child = Command::new(&mmdebstrap)
            .args(recipe.mmdebstrap_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .current_dir(&tmp.path)
            .spawn()
            .ctx("run", &mmdebstrap)?;
        let stdout = child.stdout.take();
        let unpacked = (|| -> Result<u64> {
            userns::enter_once(mapping)?;
            let image_dir = tmp.path.join("image");
            let rootfs = image_dir.join("rootfs");
            std::fs::create_dir_all(&rootfs).ctx("create", &rootfs)?;
            let root = unpack::open_root(&rootfs)?;
            let stdout = stdout.ok_or_else(|| Error::Unsupported("no mmdebstrap output".into()))?;
            unpack::unpack_layer(std::os::fd::AsFd::as_fd(&root), stdout, "mmdebstrap output")?;
            failpoint(opts, "toolbox:image-before-commit");
            Ok(layout::disk_usage(&rootfs))
        })();
        if unpacked.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().ctx("wait for", &mmdebstrap)?;
        if !status.success() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(Error::CommandFailed {
                command: "mmdebstrap".into(),
                status: status.to_string(),
                detail: if tail.is_empty() {
                    String::new()
                } else {
                    format!(":\n{}", tail.join("\n"))
                },
            });
        }
        let size = unpacked?;
        let meta = ImageMeta {
            id: id.clone(),
            name,
            source: ImageSource::Mmdebstrap {
                distro: "debian".into(),
                release: release.into(),
                mirrors: recipe.mirrors.clone(),
                packages: recipe.packages.clone(),
            },
            created: timefmt::now_rfc3339(),
            size,
            idmap: mapping.fingerprint(),
        };
        self.commit_image(&tmp, meta, on_event)
    }

    fn commit_image(
        &self,
        tmp: &layout::TmpDir,
        meta: ImageMeta,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<ImageMeta> {
        let image_dir = tmp.path.join("image");
        layout::write_json(&image_dir.join("image.json"), &meta)?;
        let target = self.store.image_dir(&meta.id);
        if !layout::rename_noreplace(&image_dir, &target)? {
            // Built concurrently by someone else: theirs is as good.
            let _ = layout::remove_tree(&tmp.path);
            return self.store.load_image(&meta.id);
        }
        let _ = layout::remove_tree(&tmp.path);
        on_event(Event::ImageReady {
            id: meta.id.clone(),
            size: meta.size,
        });
        Ok(meta)
    }

    pub(crate) fn oci_image(
        &self,
        reference: &str,
        opts: &CreateOptions,
        mapping: &IdMapping,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<ImageMeta> {
        let tmp = self.store.new_tmp("img")?;
        let path = Path::new(reference);
        let (layout_dir, name) = if path.is_dir() {
            let canon = std::fs::canonicalize(path).ctx("resolve", path)?;
            (canon.clone(), canon.display().to_string())
        } else if path.is_file() {
            let canon = std::fs::canonicalize(path).ctx("resolve", path)?;
            let dest = tmp.path.join("layout");
            oci::extract_archive(&canon, &dest)?;
            (dest, canon.display().to_string())
        } else {
            let skopeo = find_tool("skopeo").ok_or(Error::MissingTool {
                tool: "skopeo".into(),
                hint: "needed to fetch an image from a registry; or pass an OCI layout directory or archive",
            })?;
            on_event(Event::FetchingImage {
                reference: reference.into(),
            });
            let src = if reference.contains("://") || reference.starts_with("oci:") {
                reference.to_string()
            } else {
                format!("docker://{reference}")
            };
            let dest = tmp.path.join("layout");
            let out = Command::new(&skopeo)
                .arg("copy")
                .arg(&src)
                .arg(format!("oci:{}:latest", dest.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(if opts.show_tool_output {
                    Stdio::inherit()
                } else {
                    Stdio::piped()
                })
                .output()
                .ctx("run", &skopeo)?;
            if !out.status.success() {
                return Err(Error::CommandFailed {
                    command: format!("skopeo copy {src}"),
                    status: out.status.to_string(),
                    detail: format!(": {}", String::from_utf8_lossy(&out.stderr).trim()),
                });
            }
            (dest, reference.to_string())
        };
        let image = oci::open(&layout_dir)?;
        use sha2::Digest;
        let key = sha2::Sha256::digest(format!(
            "{}\n{}",
            image.manifest_digest,
            mapping.fingerprint()
        ));
        let id = format!("oci-{}", &hex::encode(key)[..12]);
        if let Ok(existing) = self.store.load_image(&id) {
            let _ = layout::remove_tree(&tmp.path);
            return Ok(existing);
        }
        userns::enter_once(mapping)?;
        let rootfs = tmp.path.join("image").join("rootfs");
        std::fs::create_dir_all(&rootfs).ctx("create", &rootfs)?;
        let root = unpack::open_root(&rootfs)?;
        let unpacked = image.unpack(std::os::fd::AsFd::as_fd(&root), |index, total| {
            on_event(Event::UnpackingLayer { index, total });
            failpoint(opts, "toolbox:unpack-layer");
        });
        if let Err(e) = unpacked {
            let _ = layout::remove_tree(&tmp.path);
            return Err(e);
        }
        let meta = ImageMeta {
            id,
            name: image
                .name
                .clone()
                .map(|n| format!("{name}:{n}"))
                .unwrap_or(name),
            source: ImageSource::Oci {
                reference: reference.into(),
                manifest_digest: image.manifest_digest.clone(),
            },
            created: timefmt::now_rfc3339(),
            size: layout::disk_usage(&rootfs),
            idmap: mapping.fingerprint(),
        };
        self.commit_image(&tmp, meta, on_event)
    }
}
