//! One deployment: a checkout `ostree/deploy/OS/deploy/CHECKSUM.SERIAL`, its
//! `.origin` keyfile and its boot entry.

use crate::bootconfig::BootEntry;
use kiln_store::keyfile::KeyFile;
use kiln_store::Checksum;

/// The group ostree keeps pins in (never copied to a new deployment).
pub const TRANSIENT_GROUP: &str = "libostree-transient";

/// What names a deployment: stateroot, commit, serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DeploymentId {
    pub osname: String,
    pub checksum: Checksum,
    pub serial: u32,
}

impl std::fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.checksum, self.serial)
    }
}

#[derive(Debug, Clone)]
pub struct Deployment {
    /// Position in the deployment list (0 = default, the next boot).
    pub index: usize,
    pub osname: String,
    pub csum: Checksum,
    pub serial: u32,
    /// sha256 of kernel + initramfs (+ devicetree): names the boot dir.
    pub bootcsum: String,
    /// Counts deployments sharing a bootcsum, in list order.
    pub bootserial: u32,
    pub bootconfig: BootEntry,
    pub origin: Option<KeyFile>,
    /// Staged: checked out, finished at shutdown by finalize-staged.
    pub staged: bool,
}

impl Deployment {
    pub fn id(&self) -> DeploymentId {
        DeploymentId {
            osname: self.osname.clone(),
            checksum: self.csum,
            serial: self.serial,
        }
    }

    pub fn same(&self, other: &Deployment) -> bool {
        self.osname == other.osname && self.csum == other.csum && self.serial == other.serial
    }

    /// `CHECKSUM.SERIAL`
    pub fn dirname(&self) -> String {
        format!("{}.{}", self.csum, self.serial)
    }

    /// Relative to the sysroot.
    pub fn relpath(&self) -> String {
        format!("ostree/deploy/{}/deploy/{}", self.osname, self.dirname())
    }

    pub fn origin_relpath(&self) -> String {
        format!("{}.origin", self.relpath())
    }

    pub fn is_pinned(&self) -> bool {
        self.origin
            .as_ref()
            .and_then(|o| o.get(TRANSIENT_GROUP, "pinned"))
            .is_some_and(|v| matches!(v.trim(), "true" | "1"))
    }

    pub fn origin_refspec(&self) -> Option<&str> {
        self.origin.as_ref()?.get("origin", "refspec")
    }

    /// The kernel arguments of its boot entry (with `ostree=`).
    pub fn options(&self) -> Option<&str> {
        self.bootconfig.get("options")
    }
}
