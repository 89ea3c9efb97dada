//! `kiln toolbox`: mutable development containers that feel like the host.
//!
//! An image (a Debian tree built by mmdebstrap, or an OCI image) is unpacked
//! once under the data directory and shared read-only by every container
//! made from it; each container owns only an overlayfs upper layer. kiln
//! enters containers itself (see [`engine`]): a user namespace mapped with
//! the user's subordinate ids, then mount, uts, ipc and pid namespaces, with
//! no *no_new_privs*, so `sudo` works inside.
//!
//! The library never prints; [`Event`]s report progress.
//!
//! `unsafe` lives in the private `sys` module only (fork, `_exit`,
//! `close_range`, `mount_setattr`, `unshare`).
#![deny(unsafe_code)]

pub mod debian;
pub mod engine;
pub mod error;
pub mod host;
pub mod idmap;
mod images;
pub mod layout;
pub mod oci;
mod sys;
mod timefmt;
pub mod unpack;
pub mod userns;

pub use engine::RunSpec;
pub use error::{Error, Result};
pub use host::HostUser;
pub use idmap::IdMapping;
pub use layout::{ContainerMeta, ImageMeta, ImageSource, Store};

use error::IoContext;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which image a new container is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageChoice {
    /// The default image, built with mmdebstrap.
    Debian { release: String },
    /// An OCI image layout directory, an archive of one, or a registry
    /// reference fetched with skopeo.
    Oci(String),
}

impl ImageChoice {
    /// The Toolbox-style default container name: `debian-toolbox-12`.
    pub fn default_container_name(&self) -> String {
        match self {
            Self::Debian { release } => {
                format!("debian-toolbox-{}", debian::release_version(release))
            }
            Self::Oci(reference) => {
                let base = reference
                    .trim_end_matches('/')
                    .rsplit(['/', ':'])
                    .find(|s| !s.is_empty())
                    .unwrap_or("oci");
                let clean: String = base
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                format!("{}-toolbox", clean.trim_matches('-'))
            }
        }
    }
}

/// Options of [`Toolbox::create`].
#[derive(Clone, Debug)]
pub struct CreateOptions {
    pub name: String,
    pub image: ImageChoice,
    /// An extra locale for the default image (the caller's `LANG`).
    pub locale: Option<String>,
    /// Let mmdebstrap and skopeo write to our stderr instead of a log.
    pub show_tool_output: bool,
    /// A named fail point at which to abort, for crash tests.
    pub failpoint: Option<String>,
}

/// Progress of long operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    BuildingImage { name: String, id: String },
    FetchingImage { reference: String },
    UnpackingLayer { index: usize, total: usize },
    ImageReady { id: String, size: u64 },
}

/// One container in `list --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    /// The image's name.
    pub image: String,
    pub image_id: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// Bytes of disk the container's own layer uses (not the shared image).
    pub size: u64,
    pub running: bool,
}

/// One image in `list --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: String,
    pub name: String,
    pub created: String,
    /// Bytes of disk the unpacked image uses (once, whatever the number of containers).
    pub size: u64,
    /// Names of the containers made from it.
    pub containers: Vec<String>,
}

/// `list --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOutput {
    pub images: Vec<ImageInfo>,
    pub containers: Vec<ContainerInfo>,
}

/// The toolbox of one user: their data directory and identity.
#[derive(Clone, Debug)]
pub struct Toolbox {
    store: Store,
    user: HostUser,
}

fn failpoint(opts: &CreateOptions, name: &str) {
    if opts.failpoint.as_deref() == Some(name) {
        // A crash at a chosen step, for tests: no cleanup runs (and no
        // core file is left behind).
        let mut limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        limit.current = Some(0);
        let _ = rustix::process::setrlimit(rustix::process::Resource::Core, limit);
        std::process::abort();
    }
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl Toolbox {
    /// `data_dir` is `$XDG_DATA_HOME/kiln/toolbox` for users,
    /// `/var/lib/kiln/toolbox` for root.
    pub fn new(data_dir: impl Into<PathBuf>, user: HostUser) -> Self {
        Self {
            store: Store::new(data_dir),
            user,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn user(&self) -> &HostUser {
        &self.user
    }

    fn mapping(&self) -> Result<IdMapping> {
        IdMapping::for_user(&self.user)
    }

    /// Create a container (building or unpacking its image first if needed).
    /// Enters the user namespace: call once per process.
    pub fn create(
        &self,
        opts: &CreateOptions,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<ContainerMeta> {
        host::check_name(&opts.name)?;
        if self.store.container_dir(&opts.name).exists() {
            return Err(Error::ContainerExists(opts.name.clone()));
        }
        let mapping = self.mapping()?;
        self.store.ensure()?;
        let image = match &opts.image {
            ImageChoice::Debian { release } => {
                self.debian_image(release, opts, &mapping, on_event)?
            }
            ImageChoice::Oci(reference) => self.oci_image(reference, opts, &mapping, on_event)?,
        };
        userns::enter_once(&mapping)?;
        self.store.clean_stale_tmp();

        let tmp = self.store.new_tmp("ctr")?;
        let dir = tmp.path.join("container");
        for sub in ["upper", "work", "merged", "state"] {
            std::fs::create_dir_all(dir.join(sub)).ctx("create", dir.join(sub))?;
        }
        // The container's root directory belongs to root inside, like the image's.
        let rootfs = self.store.image_dir(&image.id).join("rootfs");
        let md = std::fs::metadata(&rootfs).ctx("stat", &rootfs)?;
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let upper = dir.join("upper");
        rustix::fs::chown(
            &upper,
            Some(rustix::fs::Uid::ROOT),
            Some(rustix::fs::Gid::ROOT),
        )
        .ctx("chown", &upper)?;
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .ctx("chmod", &upper)?;
        let meta = ContainerMeta {
            name: opts.name.clone(),
            image_id: image.id.clone(),
            image_name: image.name.clone(),
            created: timefmt::now_rfc3339(),
        };
        layout::write_json(&dir.join("container.json"), &meta)?;
        failpoint(opts, "toolbox:create-before-commit");
        let committed = layout::rename_noreplace(&dir, &self.store.container_dir(&opts.name))?;
        let _ = layout::remove_tree(&tmp.path);
        if committed {
            Ok(meta)
        } else {
            Err(Error::ContainerExists(opts.name.clone()))
        }
    }

    /// Images and containers with their sizes. Enters the user namespace
    /// when it can, to measure layers that only mapped ids can read.
    pub fn list(&self) -> Result<ListOutput> {
        let containers = self.store.containers()?;
        let images = self.store.images()?;
        if !containers.is_empty() {
            if let Ok(mapping) = self.mapping() {
                let _ = userns::enter_once(&mapping);
            }
        }
        let containers: Vec<ContainerInfo> = containers
            .into_iter()
            .map(|c| {
                let dir = self.store.container_dir(&c.name);
                let size = ["upper", "work", "state", "container.json"]
                    .iter()
                    .map(|s| layout::disk_usage(&dir.join(s)))
                    .sum();
                ContainerInfo {
                    running: engine::running(&dir).is_some(),
                    name: c.name,
                    image: c.image_name,
                    image_id: c.image_id,
                    created: c.created,
                    size,
                }
            })
            .collect();
        let images = images
            .into_iter()
            .map(|i| ImageInfo {
                containers: containers
                    .iter()
                    .filter(|c| c.image_id == i.id)
                    .map(|c| c.name.clone())
                    .collect(),
                id: i.id,
                name: i.name,
                created: i.created,
                size: i.size,
            })
            .collect();
        Ok(ListOutput { images, containers })
    }

    /// Run a command (or the login shell) in a container; returns its exit
    /// code. The process stays in the container's namespaces afterwards.
    pub fn run(&self, name: &str, spec: &RunSpec) -> Result<i32> {
        let meta = self.store.load_container(name)?;
        let image = self.store.load_image(&meta.image_id).map_err(|_| {
            Error::NoSuchImage(format!("{} (of container {name})", meta.image_name))
        })?;
        let mapping = self.mapping()?;
        let paths = engine::ContainerPaths {
            name: name.into(),
            lower: self.store.image_dir(&image.id).join("rootfs"),
            dir: self.store.container_dir(name),
        };
        let mut user = self.user.clone();
        if let Some((_, home)) = spec.env.iter().find(|(k, _)| k == "HOME") {
            let home = PathBuf::from(home);
            if home.is_absolute() {
                user.home = home;
            }
        }
        engine::run(&paths, &user, &mapping, spec)
    }

    /// Stop a running container. Ok(false) if it was not running.
    pub fn stop(&self, name: &str) -> Result<bool> {
        self.store.load_container(name)?;
        engine::stop(&self.store.container_dir(name))
    }

    /// Remove a container; `force` stops it first if it runs.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        self.store.load_container(name)?;
        let dir = self.store.container_dir(name);
        if engine::running(&dir).is_some() {
            if !force {
                return Err(Error::ContainerRunning(name.into()));
            }
            engine::stop(&dir)?;
        }
        userns::enter_once(&self.mapping()?)?;
        let tmp = self.store.new_tmp("rm")?;
        let doomed = tmp.path.join("container");
        std::fs::rename(&dir, &doomed).ctx("remove", &dir)?;
        layout::remove_tree(&tmp.path)
    }

    /// Remove an image no container uses.
    pub fn remove_image(&self, what: &str) -> Result<ImageMeta> {
        let image = self.store.resolve_image(what)?;
        let users: Vec<String> = self
            .store
            .containers()?
            .into_iter()
            .filter(|c| c.image_id == image.id)
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::ImageInUse {
                image: image.name.clone(),
                containers: users.join(", "),
            });
        }
        userns::enter_once(&self.mapping()?)?;
        let tmp = self.store.new_tmp("rmi")?;
        let dir = self.store.image_dir(&image.id);
        std::fs::rename(&dir, tmp.path.join("image")).ctx("remove", &dir)?;
        layout::remove_tree(&tmp.path)?;
        Ok(image)
    }
}
