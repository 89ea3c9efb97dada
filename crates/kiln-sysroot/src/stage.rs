//! Staged deployments: `/run/ostree/staged-deployment`, a GVariant `a{sv}`
//! in libostree's format (`target`, `merge-deployment` as `a{sv}` with
//! `name`, `osname`, `bootcsum`; `kargs` as `as`), so `ostree admin status`
//! sees what kiln staged and either tool can finalize it.

use crate::bootconfig::BootEntry;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::load::parse_deploy_name;
use kiln_store::gvariant::{self, Type, Value, VarDict};
use std::path::{Path, PathBuf};

pub(crate) const STAGED_FILE: &str = "ostree/staged-deployment";
pub(crate) const STAGED_LOCKED: &str = "ostree/staged-deployment-locked";
/// Written into /boot when finalization fails (read at next boot).
pub(crate) const FINALIZE_FAILURE: &str = "ostree-finalize-staged.failure";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedRef {
    pub osname: String,
    pub name: String,
    pub bootcsum: String,
}

impl StagedRef {
    pub fn of(d: &Deployment) -> StagedRef {
        StagedRef {
            osname: d.osname.clone(),
            name: d.dirname(),
            bootcsum: d.bootcsum.clone(),
        }
    }

    fn to_value(&self) -> Value {
        let mut d = VarDict::new();
        d.push("name", Value::str(&self.name));
        d.push("osname", Value::str(&self.osname));
        d.push("bootcsum", Value::str(&self.bootcsum));
        d.to_value()
    }

    fn from_value(v: &Value) -> Result<StagedRef> {
        let d =
            VarDict::from_value(v).ok_or_else(|| Error::Staged("malformed deployment".into()))?;
        let key = |k: &str| {
            d.get_str(k)
                .map(str::to_string)
                .ok_or_else(|| Error::Staged(format!("Missing key: {k}")))
        };
        Ok(StagedRef {
            name: key("name")?,
            osname: key("osname")?,
            bootcsum: key("bootcsum")?,
        })
    }

    pub fn matches(&self, d: &Deployment) -> bool {
        self.osname == d.osname && self.name == d.dirname()
    }
}

#[derive(Debug, Clone)]
pub struct StagedState {
    pub target: StagedRef,
    pub merge: Option<StagedRef>,
    pub kargs: Option<Vec<String>>,
    pub overlay_initrds: Option<Vec<String>>,
}

fn strv(v: &[String]) -> Value {
    Value::Array(Type::String, v.iter().map(Value::str).collect())
}

fn from_strv(v: &Value) -> Option<Vec<String>> {
    v.children()
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

impl StagedState {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(STAGED_FILE)
    }

    pub fn read(run_dir: &Path) -> Result<Option<StagedState>> {
        let path = Self::path(run_dir);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let ty = Type::parse("a{sv}").map_err(|e| Error::Staged(e.to_string()))?;
        let v = gvariant::decode(&ty, &data)
            .map_err(|e| Error::Staged(format!("{}: {e}", path.display())))?;
        let dict = VarDict::from_value(&v).ok_or_else(|| Error::Staged("not an a{sv}".into()))?;
        let Some(target) = dict.get("target") else {
            return Ok(None);
        };
        Ok(Some(StagedState {
            target: StagedRef::from_value(target)?,
            merge: dict
                .get("merge-deployment")
                .map(StagedRef::from_value)
                .transpose()?,
            kargs: dict.get("kargs").and_then(from_strv),
            overlay_initrds: dict.get("overlay-initrds").and_then(from_strv),
        }))
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let mut d = VarDict::new();
        d.push("target", self.target.to_value());
        if let Some(m) = &self.merge {
            d.push("merge-deployment", m.to_value());
        }
        if let Some(k) = &self.kargs {
            d.push("kargs", strv(k));
        }
        if let Some(o) = &self.overlay_initrds {
            d.push("overlay-initrds", strv(o));
        }
        let path = Self::path(run_dir);
        if let Some(parent) = path.parent() {
            crate::fsutil::mkdir_p(parent, 0o755)?;
        }
        crate::fsutil::write_file(&path, &gvariant::encode(&d.to_value()), 0o644)
    }

    /// The staged deployment as a list entry (index 0, not yet bootable).
    pub fn deployment(&self) -> Deployment {
        let (csum, serial) =
            parse_deploy_name(&self.target.name).unwrap_or((kiln_store::Checksum([0; 32]), 0));
        let options = self.kargs.as_ref().map(|k| k.join(" "));
        Deployment {
            index: 0,
            osname: self.target.osname.clone(),
            csum,
            serial,
            bootcsum: self.target.bootcsum.clone(),
            bootserial: 0,
            bootconfig: BootEntry::from_options(options.as_deref()),
            origin: None,
            staged: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let st = StagedState {
            target: StagedRef {
                osname: "os".into(),
                name: format!("{}.0", "ab".repeat(32)),
                bootcsum: "cd".repeat(32),
            },
            merge: None,
            kargs: Some(vec!["a=b".into(), "quiet".into()]),
            overlay_initrds: None,
        };
        st.write(dir.path()).unwrap();
        let back = StagedState::read(dir.path()).unwrap().unwrap();
        assert_eq!(back.target, st.target);
        assert_eq!(back.kargs, st.kargs);
        assert_eq!(
            back.deployment().bootconfig.get("options"),
            Some("a=b quiet")
        );
    }
}
