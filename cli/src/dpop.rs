//! The DPoP key on disk: PKCS#8 PEM or a private JWK, created on first
//! use with owner-only permissions.

use std::path::{Path, PathBuf};

use tokenkeeper::dpop::DpopKey;
use tokenkeeper_ureq::OsEntropy;

use crate::error::CliError;
use crate::file::{create_private_dir, write_private};

/// The default key file beside the session file: `<stem>-dpop-key.pem`.
pub fn default_key_path(session: &Path) -> PathBuf {
    let stem = session
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokenkeeper".into());
    session.with_file_name(format!("{stem}-dpop-key.pem"))
}

/// Whether `path` names a JWK file (`.json` or `.jwk`).
fn is_jwk_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("jwk"))
}

/// Reads the key at `path` (PEM, or JWK when the file starts with `{`).
///
/// # Errors
/// The file cannot be read or holds no ES256 private key.
pub fn load(path: &Path) -> Result<DpopKey, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("cannot read the DPoP key {}", path.display()), e))?;
    let key = if text.trim_start().starts_with('{') {
        DpopKey::from_jwk(&text)
    } else {
        DpopKey::from_pkcs8_pem(&text)
    };
    key.map_err(|e| {
        CliError::other(
            "invalid_dpop_key",
            format!(
                "{} is not a P-256 private key in PKCS#8 PEM or JWK form ({e})",
                path.display()
            ),
        )
    })
}

/// Reads the key at `path`, or creates one there (PKCS#8 PEM, or a JWK
/// for a `.json`/`.jwk` path) with owner-only permissions. The boolean
/// says whether it was created.
///
/// # Errors
/// As [`load`], or the key cannot be written.
pub fn load_or_create(path: &Path) -> Result<(DpopKey, bool), CliError> {
    if path.exists() {
        return load(path).map(|key| (key, false));
    }
    let key = DpopKey::generate(&mut OsEntropy)
        .map_err(|e| CliError::other("dpop_error", format!("cannot generate a key ({e})")))?;
    let text = if is_jwk_path(path) {
        key.to_jwk()
    } else {
        key.to_pkcs8_pem()
            .map_err(|e| CliError::other("dpop_error", format!("cannot encode the key ({e})")))?
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)
            .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    }
    write_private(path, text.as_bytes())
        .map_err(|e| CliError::io(format!("cannot write the DPoP key {}", path.display()), e))?;
    Ok((key, true))
}
