//! Remotes in the repo `config`, as ostree keeps them: a `[remote "NAME"]`
//! group with `url=`, `branches=`, `gpg-verify=`, `sign-verify=`,
//! `verification-ed25519-key=`/`-file=` and any other option.

use crate::error::{Error, Result};
use kiln_store::refs::validate_remote_name;
use kiln_store::Repo;

/// The keyfile group of a remote.
pub fn group(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// A remote's configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Remote {
    pub name: String,
    pub url: String,
    /// Every key of the group, in file order (url included).
    pub options: Vec<(String, String)>,
}

impl Remote {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option as GKeyFile reads it (`true`/`1`, `false`/`0`).
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(str::trim) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(Error::RemoteConfig {
                remote: self.name.clone(),
                why: format!("{key}={v:?} is not a boolean"),
            }),
        }
    }

    /// `branches=a;b;` as a list.
    pub fn branches(&self) -> Vec<String> {
        self.get("branches")
            .map(|v| {
                v.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Names of the configured remotes, in config order.
pub fn list(repo: &Repo) -> Vec<String> {
    repo.config()
        .groups()
        .filter_map(|g| {
            g.strip_prefix("remote \"")
                .and_then(|r| r.strip_suffix('"'))
                .map(str::to_string)
        })
        .collect()
}

/// Load one remote.
pub fn get(repo: &Repo, name: &str) -> Result<Remote> {
    let g = group(name);
    let cfg = repo.config();
    if !cfg.has_group(&g) {
        return Err(Error::NoSuchRemote(name.to_string()));
    }
    let options: Vec<(String, String)> = cfg
        .keys(&g)
        .into_iter()
        .filter_map(|k| cfg.get(&g, k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    let url = options
        .iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Error::RemoteConfig {
            remote: name.to_string(),
            why: "no url= configured".into(),
        })?;
    Ok(Remote {
        name: name.to_string(),
        url,
        options,
    })
}

/// How `add` treats an existing remote of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    #[default]
    Fail,
    /// `--if-not-exists`: leave it as it is.
    Keep,
    /// `--force`: replace it.
    Replace,
}

/// What `remote add` writes.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub branches: Vec<String>,
    /// `--set=KEY=VALUE`, in order.
    pub set: Vec<(String, String)>,
    pub no_gpg_verify: bool,
    pub no_sign_verify: bool,
    /// `--sign-verify=ed25519=inline:KEY` / `ed25519=file:PATH`.
    pub sign_verify: Vec<String>,
    pub collection_id: Option<String>,
    pub if_exists: IfExists,
}

/// `remote add`: writes the group in the order ostree does (`url`,
/// `branches`, `--set` options, then the verification keys). Returns false
/// when `--if-not-exists` kept an existing remote.
pub fn add(repo: &mut Repo, name: &str, url: &str, opts: &AddOptions) -> Result<bool> {
    validate_remote_name(name)?;
    if url.is_empty() {
        return Err(Error::Invalid("Remote URL must not be empty".into()));
    }
    let g = group(name);
    let mut cfg = repo.config().clone();
    if cfg.has_group(&g) {
        match opts.if_exists {
            IfExists::Fail => return Err(Error::RemoteExists(name.to_string())),
            IfExists::Keep => return Ok(false),
            IfExists::Replace => {
                cfg.remove_group(&g);
            }
        }
    }
    if opts.no_sign_verify && !opts.sign_verify.is_empty() {
        return Err(Error::Invalid(
            "Cannot specify both --sign-verify and --no-sign-verify".into(),
        ));
    }
    if let Some(m) = url.strip_prefix("metalink=") {
        cfg.set(&g, "metalink", m);
    } else {
        cfg.set(&g, "url", url);
    }
    if !opts.branches.is_empty() {
        let mut v = opts.branches.join(";");
        v.push(';');
        cfg.set(&g, "branches", &v);
    }
    for (k, v) in &opts.set {
        cfg.set(&g, k, v);
    }
    if opts.no_gpg_verify || opts.no_sign_verify {
        cfg.set(&g, "gpg-verify", "false");
    }
    if opts.no_sign_verify {
        cfg.set(&g, "sign-verify", "false");
    }
    let mut types: Vec<String> = Vec::new();
    for spec in &opts.sign_verify {
        let (ty, rest) = spec.split_once('=').ok_or_else(|| {
            Error::Invalid(format!(
                "Failed to parse KEYTYPE=[inline|file]:DATA in {spec}"
            ))
        })?;
        if ty != "ed25519" {
            return Err(Error::Invalid(format!(
                "Requested signature type is not implemented: {ty}"
            )));
        }
        let (kind, data) = rest.split_once(':').ok_or_else(|| {
            Error::Invalid(format!(
                "Failed to parse KEYTYPE=[inline|file]:DATA in {spec}"
            ))
        })?;
        match kind {
            "inline" => {
                crate::sign::PublicKey::from_base64(data)?;
                cfg.set(&g, "verification-ed25519-key", data);
            }
            "file" => cfg.set(&g, "verification-ed25519-file", data),
            _ => {
                return Err(Error::Invalid(format!(
                    "Invalid key reference {kind}, expected inline|file"
                )))
            }
        }
        if !types.iter().any(|t| t == ty) {
            types.push(ty.to_string());
        }
    }
    if !types.is_empty() {
        cfg.set(&g, "sign-verify", &types.join(","));
    }
    if let Some(c) = &opts.collection_id {
        cfg.set(&g, "collection-id", c);
    }
    repo.write_config(cfg)?;
    Ok(true)
}

/// `remote delete`. With `if_exists`, a missing remote is not an error.
pub fn delete(repo: &mut Repo, name: &str, if_exists: bool) -> Result<()> {
    validate_remote_name(name)?;
    let g = group(name);
    let mut cfg = repo.config().clone();
    if !cfg.has_group(&g) {
        return if if_exists {
            Ok(())
        } else {
            Err(Error::NoSuchRemote(name.to_string()))
        };
    }
    cfg.remove_group(&g);
    repo.write_config(cfg)?;
    Ok(())
}
