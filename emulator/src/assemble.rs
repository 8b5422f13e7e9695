//! Completing a multipart upload without a copy at the end (section 14.3).
//!
//! s3s-fs completes by copying every part into the object when the last part arrives: for a 375 MB
//! recording that took 1.5-1.9 s on this machine (a plain `cp` of 375 MB in tmpfs takes 1.5 s too), and
//! the whole of it sat between the camera's last byte and "uploaded". Real S3 completes in about the
//! same time whatever the size. So the emulator assembles as parts arrive: a part whose number follows
//! the assembled ones is appended to the asset's assembly file off the request path, and completion only
//! appends what is left (usually the final part) and moves the file into s3s-fs's place for the object.
//!
//! Parts may arrive, be registered or be uploaded again in any order (gaps are allowed): anything the
//! fast path cannot take is assembled at completion from the assembly file's segments and the part
//! files, in part-number order, so the object is always the parts in number order.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::state::App;

/// The bytes assembled so far for one upload.
#[derive(Default)]
pub struct Assembly {
    /// Bytes in the assembly file.
    len: u64,
    /// Part number -> (offset, size) of the part's bytes in the assembly file, appended in number
    /// order. A segment dropped because its part was stored again leaves a hole: completion rebuilds.
    segments: BTreeMap<u32, (u64, u64)>,
    /// Completed or aborted: nothing is appended any more.
    closed: bool,
}

impl Assembly {
    /// Forgets part `n`'s segment if S3 stored the part again since it was appended: a file at the
    /// part's path is newer than anything taken from it.
    fn drop_if_replaced(&mut self, app: &App, upload_id: &str, n: u32) {
        if self.segments.contains_key(&n) && part_path(app, upload_id, n).exists() {
            self.segments.remove(&n);
        }
    }
}

pub type Shared = Arc<tokio::sync::Mutex<Assembly>>;

fn part_path(app: &App, upload_id: &str, n: u32) -> PathBuf {
    app.data_dir.join(format!(".upload_id-{upload_id}.part-{n}"))
}

fn assembly_path(app: &App, upload_id: &str) -> PathBuf {
    // ".upload" prefix: the control API's reset removes it with the rest of the pending uploads
    app.data_dir.join(format!(".upload_id-{upload_id}.fio-assembly"))
}

fn taken_path(app: &App, upload_id: &str, n: u32) -> PathBuf {
    app.data_dir.join(format!(".upload_id-{upload_id}.fio-taken-{n}"))
}

fn shared(app: &App, upload_id: &str) -> Shared {
    app.lock().assemblies.entry(upload_id.to_string()).or_default().clone()
}

/// Writes `src` at `offset` of `dst`, cutting `dst` to `offset` first (a failed earlier append leaves
/// no junk behind). File-to-file `io::copy` is copy_file_range on Linux.
fn write_at(dst: &Path, offset: u64, src: &mut File) -> io::Result<u64> {
    let mut out = OpenOptions::new().create(true).write(true).truncate(false).open(dst)?;
    out.set_len(offset)?;
    out.seek(SeekFrom::Start(offset))?;
    io::copy(src, &mut out)
}

/// Called after S3 stored part `n` of `upload_id`: drops a segment the new bytes replace, then appends
/// every part that now follows the assembled ones (in the background; the caller does not wait).
pub async fn part_stored(app: &Arc<App>, asset_id: &str, upload_id: &str, n: u32) {
    let asm = shared(app, upload_id);
    asm.lock().await.drop_if_replaced(app, upload_id, n);
    let (app, asset_id, upload_id) = (app.clone(), asset_id.to_string(), upload_id.to_string());
    tokio::spawn(async move {
        let mut g = asm.lock().await;
        while let Some((n, size)) = next_to_append(&app, &asset_id, &g) {
            if take(&app, &upload_id, n, size, &mut g).await.is_err() {
                break; // completion assembles from the part files
            }
        }
    });
}

/// The part that follows the assembled ones, if S3 has all its bytes: the lowest registered part above
/// the last segment, provided every registered part below it is assembled (else order is broken and
/// completion sorts it out).
fn next_to_append(app: &App, asset_id: &str, g: &Assembly) -> Option<(u32, u64)> {
    if g.closed {
        return None;
    }
    let st = app.lock();
    let a = st.assets.get(asset_id)?;
    let last = g.segments.keys().next_back().copied().unwrap_or(0);
    if a.parts.range(..=last).any(|(n, _)| !g.segments.contains_key(n)) {
        return None;
    }
    let (n, p) = a.parts.range(last + 1..).next()?;
    (p.uploaded == Some(p.size)).then_some((*n, p.size))
}

/// Moves part `n`'s file out of s3s-fs's name (a PUT of the same part again writes a new file there),
/// appends it, and records the segment.
async fn take(app: &Arc<App>, upload_id: &str, n: u32, size: u64, g: &mut Assembly) -> io::Result<()> {
    let (from, taken, dst, offset) =
        (part_path(app, upload_id, n), taken_path(app, upload_id, n), assembly_path(app, upload_id), g.len);
    let wrote = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        std::fs::rename(&from, &taken)?;
        let wrote = write_at(&dst, offset, &mut File::open(&taken)?);
        match wrote {
            Ok(w) if w == size => {
                std::fs::remove_file(&taken)?;
                Ok(w)
            }
            other => {
                // keep the bytes where completion looks for them
                let _ = std::fs::rename(&taken, &from);
                other.and_then(|w| Err(io::Error::other(format!("part {n}: appended {w} bytes of {size}"))))
            }
        }
    })
    .await
    .map_err(io::Error::other)??;
    g.segments.insert(n, (offset, wrote));
    g.len += wrote;
    Ok(())
}

/// Completes the upload: the parts `parts` (number and size, ascending numbers) become the object `key`,
/// and s3s-fs's records of the multipart upload are removed as its own completion would.
pub async fn complete(app: &Arc<App>, key: &str, upload_id: &str, parts: &[(u32, u64)]) -> Result<(), String> {
    let asm = shared(app, upload_id);
    let mut g = asm.lock().await;
    for (n, _) in parts {
        g.drop_if_replaced(app, upload_id, *n);
    }
    for (n, _) in parts {
        if !g.segments.contains_key(n) && !part_path(app, upload_id, *n).exists() {
            return Err(format!("part {n} is missing from storage"));
        }
    }
    // Fast path: the segments are the first parts, in order, without holes; append the rest.
    let prefix = g.segments.len();
    let mut at = 0;
    let in_order = g.segments.iter().zip(parts).all(|((n, (off, len)), (m, _))| {
        let ok = n == m && *off == at;
        at += len;
        ok
    }) && prefix <= parts.len()
        && at == g.len;
    if in_order {
        for &(n, size) in &parts[prefix..] {
            take(app, upload_id, n, size, &mut g).await.map_err(|e| format!("assembling part {n}: {e}"))?;
        }
    } else {
        rebuild(app, upload_id, parts, &mut g).await?;
    }
    g.closed = true;
    let app2 = app.clone();
    let (upload_id2, key2) = (upload_id.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || publish(&app2, &upload_id2, &key2))
        .await
        .map_err(|e| format!("complete: {e}"))?
        .map_err(|e| format!("complete: {e}"))?;
    app.lock().assemblies.remove(upload_id);
    Ok(())
}

/// Slow path: a new assembly file with every part in number order, each from its segment of the old
/// file or from its part file.
async fn rebuild(app: &Arc<App>, upload_id: &str, parts: &[(u32, u64)], g: &mut Assembly) -> Result<(), String> {
    let old = assembly_path(app, upload_id);
    let new = app.data_dir.join(format!(".upload_id-{upload_id}.fio-rebuild"));
    let plan: Vec<(u32, Option<(u64, u64)>)> = parts.iter().map(|(n, _)| (*n, g.segments.get(n).copied())).collect();
    let parts: Vec<(u32, PathBuf)> = parts.iter().map(|(n, _)| (*n, part_path(app, upload_id, *n))).collect();
    let segments = tokio::task::spawn_blocking(move || -> io::Result<(BTreeMap<u32, (u64, u64)>, u64)> {
        let mut out = File::create(&new)?;
        let mut segs = BTreeMap::new();
        let mut at = 0u64;
        for ((n, seg), (_, part)) in plan.iter().zip(&parts) {
            let wrote = match seg {
                Some((off, len)) => {
                    let mut f = File::open(&old)?;
                    f.seek(SeekFrom::Start(*off))?;
                    io::copy(&mut io::Read::take(f, *len), &mut out)?
                }
                None => io::copy(&mut File::open(part)?, &mut out)?,
            };
            segs.insert(*n, (at, wrote));
            at += wrote;
        }
        drop(out);
        std::fs::rename(&new, &old)?;
        for (_, part) in &parts {
            let _ = std::fs::remove_file(part);
        }
        Ok((segs, at))
    })
    .await
    .map_err(|e| format!("assembling: {e}"))?
    .map_err(|e| format!("assembling: {e}"))?;
    g.segments = segments.0;
    g.len = segments.1;
    Ok(())
}

/// Moves the assembly file to the object's path and retires the multipart upload the way s3s-fs's
/// CompleteMultipartUpload does (its attributes become the object's; the upload id is forgotten).
/// No stored ETag: s3s-fs then serves the object's MD5.
fn publish(app: &App, upload_id: &str, key: &str) -> io::Result<()> {
    let obj = crate::s3::object_path(app, key);
    if let Some(dir) = obj.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let asm = assembly_path(app, upload_id);
    if !asm.exists() {
        File::create(&asm)?; // an object of no bytes
    }
    std::fs::rename(&asm, &obj)?;
    let b64 = |s: &str| base64_url_no_pad(s.as_bytes());
    let meta =
        |u: &str| app.data_dir.join(format!(".bucket-{}.object-{}{u}.metadata.json", b64(&app.bucket_name), b64(key)));
    let upload_meta = meta(&format!(".upload-{upload_id}"));
    if upload_meta.exists() {
        std::fs::rename(upload_meta, meta(""))?;
    } else {
        let _ = std::fs::remove_file(meta(""));
    }
    // a stale ETag of an earlier object under this key would be wrong now
    let _ = std::fs::remove_file(app.data_dir.join(format!(
        ".bucket-{}.object-{}.internal.json",
        b64(&app.bucket_name),
        b64(key)
    )));
    let _ = std::fs::remove_file(app.data_dir.join(format!(".upload-{upload_id}.json")));
    Ok(())
}

/// Forgets the assembly of an aborted upload.
pub async fn discard(app: &Arc<App>, upload_id: &str) {
    let asm = app.lock().assemblies.remove(upload_id);
    if let Some(asm) = asm {
        asm.lock().await.closed = true;
    }
    let _ = tokio::fs::remove_file(assembly_path(app, upload_id)).await;
}

/// URL-safe base64 without padding: how s3s-fs names its metadata files.
fn base64_url_no_pad(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=c.len() {
            out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_url_alphabet() {
        let f = super::base64_url_no_pad;
        assert_eq!(f(b""), "");
        assert_eq!(f(b"f"), "Zg");
        assert_eq!(f(b"fo"), "Zm8");
        assert_eq!(f(b"foo"), "Zm9v");
        assert_eq!(f(b"foob"), "Zm9vYg");
        assert_eq!(f(&[0xfb, 0xff]), "-_8");
    }
}
