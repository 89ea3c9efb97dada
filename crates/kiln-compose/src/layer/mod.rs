//! Package layering (`kiln install PKG…`): a new OS tree made of a base
//! commit plus Debian packages (and minus removed base packages),
//! committed on top of the base and recorded so that an upgrade can apply
//! the same request to the next base.
//!
//! How a layered tree is built (see [`build`]):
//! 1. the base commit is checked out with hardlinks into the repo's
//!    `tmp/` (`lower`); it is only ever read, never written in place;
//! 2. apt, on the host, resolves the request against the deployment's
//!    `/etc/apt` and the base's dpkg database (`/usr/lib/sysimage/dpkg`)
//!    and downloads into the cache (`/var/cache/kiln/debs` of the
//!    stateroot);
//! 3. dpkg runs in bubblewrap with an overlay (`lower` read-only, a
//!    scratch `upper`) as `/`: no host `/etc`, `/var` or `/home`, no
//!    network; maintainer scripts see only the new tree;
//! 4. the upper layer is merged into the checkout by renames and unlinks
//!    only (a hardlinked repo object is replaced, never modified);
//! 5. post-processing as compose does (`/etc` → `/usr/etc`, `/var` →
//!    tmpfiles.d), plus `/opt` and `/usr/local` content moved under
//!    `/usr/lib` with links, new system users → `sysusers.d`;
//! 6. commit with the base as parent and `kiln.layer.*` metadata.
//!
//! Crash safety: the work directory is `tmp/kiln-layer-PID` of the repo,
//! removed at the end and by the next run once PID is gone; nothing
//! outside it changes until the commit (whose objects go through the
//! store's usual tmp + rename). Fail points: `layer:after-checkout`,
//! `layer:after-dpkg`, `layer:before-commit`.

mod apt;
mod build;
mod error;
mod merge;
mod post;
mod request;
mod sandbox;

pub use build::{
    build, check_name, cleanup_stale, import_local_deb, installed_packages, BuildOptions,
    BuildResult, Planned,
};
pub use error::{Error, Result};
pub use request::{base_of, LayerRequest, LocalDeb, META_BASE, ORIGIN_GROUP};
