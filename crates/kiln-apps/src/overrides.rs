//! `override`: per-app (or global) permission changes in
//! `BASE/overrides/ID`, a keyfile with the `[Context]` groups; `!` items
//! revoke.

use crate::context::{Context, ContextArgs};
use crate::error::{Error, Result};
use crate::installation::Installation;
use kiln_store::keyfile::KeyFile;

fn load(inst: &Installation, id: Option<&str>) -> Result<(KeyFile, Context)> {
    let p = inst.overrides_path(id);
    let kf = match std::fs::read_to_string(&p) {
        Ok(t) => KeyFile::parse(&t)
            .map_err(|e| Error::metadata(p.display().to_string(), e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeyFile::new(),
        Err(e) => return Err(Error::io(&p, e)),
    };
    let c = Context::from_keyfile(&kf)?;
    Ok((kf, c))
}

/// The override of `id` (None: global).
pub fn show(inst: &Installation, id: Option<&str>) -> Result<Context> {
    Ok(load(inst, id)?.1)
}

/// Apply `args` to the override of `id` and write it.
pub fn set(inst: &Installation, id: Option<&str>, args: &ContextArgs) -> Result<Context> {
    if let Some(id) = id {
        crate::appref::validate_id(id).map_err(|w| Error::InvalidRef {
            name: id.into(),
            why: w,
        })?;
    }
    let (mut kf, mut c) = load(inst, id)?;
    c.apply_args(args)?;
    c.write_keyfile(&mut kf);
    let p = inst.overrides_path(id);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    kiln_store::util::write_file_atomic(&p, kf.to_string().as_bytes(), 0o644)?;
    Ok(c)
}

/// `--reset`: remove the override file.
pub fn reset(inst: &Installation, id: Option<&str>) -> Result<()> {
    let p = inst.overrides_path(id);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&p, e)),
        _ => Ok(()),
    }
}
