//! The config file: per-profile server settings and tokens, JSON, mode 0600 in a 0700 directory,
//! rewritten atomically (temp file, fsync, rename, fsync of the directory).
//!
//! Location: `--config PATH`, else `$FIO_CONFIG`, else `$XDG_CONFIG_HOME/fio/config.json`, else
//! `~/.config/fio/config.json`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One profile: the server it talks to, the unit's credentials, and its tokens.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_at: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FileData {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FIO_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("fio").join("config.json")
}

/// Reads the file (a missing file is empty). A file readable by others is made 0600 with a warning.
pub fn load(path: &Path) -> Result<FileData, String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileData::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!("fio: warning: {} had mode {mode:o} (it holds tokens); setting it to 600", path.display());
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
        }
    }
    serde_json::from_str(&text).map_err(|e| format!("{} is not a fio config file: {e}", path.display()))
}

/// Writes the file atomically with mode 0600 (its directory is created with mode 0700).
pub fn save(path: &Path, data: &FileData) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "config.json".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let text = serde_json::to_string_pretty(data).map_err(|e| e.to_string())? + "\n";
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Read-modify-write of one profile.
pub fn update(path: &Path, profile: &str, f: impl FnOnce(&mut Profile)) -> Result<(), String> {
    let mut data = load(path)?;
    f(data.profiles.entry(profile.to_string()).or_default());
    save(path, &data)
}

/// A new client id for this installation: stable once saved, unique per unit (c2c-api.md 1.6).
pub fn new_client_id() -> String {
    let mut b = [0u8; 8];
    let ok = File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).is_ok();
    if !ok {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = ((t as u64) ^ (std::process::id() as u64) << 32).to_le_bytes();
    }
    format!("fio-cli-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_is_0600_in_a_0700_dir_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("fio-store-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("config.json");
        update(&path, "default", |p| {
            p.base_url = Some("http://127.0.0.1:1".into());
            p.access_token = Some("a".into());
            p.expires_at = 7;
        })
        .unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let d = load(&path).unwrap();
        assert_eq!(d.profiles["default"].access_token.as_deref(), Some("a"));
        assert_eq!(d.profiles["default"].expires_at, 7);
        // an open file is closed again on load
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        load(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // no temp files left behind
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn client_ids_are_distinct() {
        let a = new_client_id();
        assert!(a.starts_with("fio-cli-") && a.len() == 8 + 16);
        assert_ne!(a, new_client_id());
    }
}
