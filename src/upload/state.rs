//! The resume state file: JSON, written atomically (temporary file, fsync, rename, fsync of the
//! folder) whenever the part table changes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::PlanConfig;
use super::transport::AssetSpec;

pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartState {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub is_final: bool,
    pub done: bool,
    /// File source: fingerprint of the part's bytes once uploaded; resume checks the file still has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub first_part_size: u64,
    pub growth_divisor: u64,
    pub max_part_size: u64,
}

impl From<PlanConfig> for SavedPlan {
    fn from(p: PlanConfig) -> Self {
        SavedPlan {
            first_part_size: p.first_part_size,
            growth_divisor: p.growth_divisor,
            max_part_size: p.max_part_size,
        }
    }
}

impl From<&SavedPlan> for PlanConfig {
    fn from(p: &SavedPlan) -> Self {
        PlanConfig {
            first_part_size: p.first_part_size,
            growth_divisor: p.growth_divisor,
            max_part_size: p.max_part_size,
        }
    }
}

/// Everything needed to continue an upload after the process died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedUpload {
    pub version: u32,
    pub asset_id: String,
    pub asset: AssetSpec,
    /// "file" (a file on disk, `path`) or "bytes" (pushed by the caller).
    pub source: String,
    pub path: Option<PathBuf>,
    pub plan: SavedPlan,
    /// Set once the recording ended: the size of the whole file.
    pub final_size: Option<u64>,
    pub parts: Vec<PartState>,
}

impl SavedUpload {
    pub fn load(path: &Path) -> Result<SavedUpload, String> {
        let text = fs::read(path).map_err(|e| format!("cannot read state file {}: {e}", path.display()))?;
        let s: SavedUpload =
            serde_json::from_slice(&text).map_err(|e| format!("state file {} is malformed: {e}", path.display()))?;
        if s.version != STATE_VERSION {
            return Err(format!("state file version {} is not {STATE_VERSION}", s.version));
        }
        let mut off = 0u64;
        for (i, p) in s.parts.iter().enumerate() {
            if p.number as usize != i + 1 || p.offset != off {
                return Err("state file part table is not contiguous".into());
            }
            // a corrupted file must not overflow (a panic in debug builds) or put a final part mid-table
            off = off.checked_add(p.size).ok_or("state file part sizes overflow")?;
            if p.is_final && i + 1 != s.parts.len() {
                return Err("state file has a final part before the last one".into());
            }
        }
        // the engine saves final_size and the final part together: one without the other (or sizes that
        // do not add up) would leave finish() waiting for a part that never comes
        let last_final = s.parts.last().is_some_and(|p| p.is_final);
        if last_final != s.final_size.is_some() || (last_final && s.final_size != Some(off)) {
            return Err("state file final size and final part disagree".into());
        }
        Ok(s)
    }

    /// Writes the state atomically: readers see the old or the new file, never a torn one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = std::env::temp_dir().join(format!("fio-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("u.json");
        let mut s = SavedUpload {
            version: STATE_VERSION,
            asset_id: "a".into(),
            asset: AssetSpec { name: Some("x.mp4".into()), filetype: "video/mp4".into(), ..Default::default() },
            source: "file".into(),
            path: Some("/tmp/x.mp4".into()),
            plan: PlanConfig::default().into(),
            final_size: None,
            parts: vec![PartState { number: 1, offset: 0, size: 10, is_final: false, done: true, sample: None }],
        };
        s.save(&p).unwrap();
        assert_eq!(SavedUpload::load(&p).unwrap(), s);
        s.parts.push(PartState { number: 2, offset: 10, size: 3, is_final: true, done: false, sample: None });
        s.final_size = Some(13);
        s.save(&p).unwrap();
        assert_eq!(SavedUpload::load(&p).unwrap(), s);
        assert!(!dir.join("u.json.tmp").exists());
        s.parts[1].offset = 11;
        s.save(&p).unwrap();
        assert!(SavedUpload::load(&p).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
