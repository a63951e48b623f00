//! An OCI image layout directory on disk: `oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`.
//!
//! Owns writing into the `--oci` directory. A blob is written under a
//! temporary name and renamed to its digest, so a blob file is never
//! partial; `index.json` is written last, the same way, so a reader sees
//! either the old image or the new one. An absent or empty directory becomes
//! a new layout; an existing layout is updated in place (the tag is moved,
//! other tagged manifests stay); anything else is refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::{self, Descriptor, Index};
use super::TempOut;
use crate::error::{Error, Result};

/// An image layout being written.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

fn out_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Layout {
    /// Opens `dir` for writing: creates it (its parent must exist) or
    /// accepts an empty directory or an existing image layout.
    pub fn open(dir: &Path) -> Result<Layout> {
        match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(dir).map_err(|e| Error::io(dir, e))?;
            }
            Err(e) => return Err(Error::io(dir, e)),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(out_err(
                    dir,
                    "is a symbolic link; refusing to write through it",
                ))
            }
            Ok(m) if !m.is_dir() => return Err(out_err(dir, "exists and is not a directory")),
            Ok(_) => {
                let empty = fs::read_dir(dir)
                    .map_err(|e| Error::io(dir, e))?
                    .next()
                    .is_none();
                if !empty && !dir.join("oci-layout").is_file() {
                    return Err(out_err(
                        dir,
                        "is neither empty nor an OCI image layout (no oci-layout file)",
                    ));
                }
            }
        }
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        let layout = dir.join("oci-layout");
        let mut t = TempOut::create(&layout)?;
        t.write_all(&config::layout_file())
            .map_err(|e| Error::io(&layout, e))?;
        t.commit()?;
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs").join("sha256").join(hex)
    }

    /// A temporary file in the blob directory, to stream a blob into.
    pub fn temp_blob(&self) -> Result<TempOut> {
        TempOut::create(&self.dir.join("blobs").join("sha256").join("incoming"))
    }

    /// Renames a streamed blob to its digest.
    pub fn commit_blob(&self, mut t: TempOut, digest: &str) -> Result<()> {
        t.dest = self.blob_path(digest);
        t.commit()
    }

    /// Stores `bytes` as a blob; returns its digest and size.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<(String, u64)> {
        let digest = super::sha256_digest(bytes);
        let path = self.blob_path(&digest);
        let mut t = TempOut::create(&path)?;
        t.write_all(bytes).map_err(|e| Error::io(&path, e))?;
        t.commit()?;
        Ok((digest, bytes.len() as u64))
    }

    /// Writes `index.json` with `manifest` (tagged through its annotation)
    /// and every manifest of an existing index that carries another tag.
    pub fn write_index(&self, manifest: Descriptor) -> Result<()> {
        let path = self.dir.join("index.json");
        let tag = manifest.annotations.get(config::REF_NAME).cloned();
        let mut kept: Vec<serde_json::Value> = Vec::new();
        if let Ok(bytes) = fs::read(&path) {
            let old: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| out_err(&path, format!("existing index is not JSON: {e}")))?;
            if let Some(list) = old.get("manifests").and_then(|m| m.as_array()) {
                for m in list {
                    let name = m
                        .get("annotations")
                        .and_then(|a| a.get(config::REF_NAME))
                        .and_then(|n| n.as_str());
                    if name.is_some() && name != tag.as_deref() {
                        kept.push(m.clone());
                    }
                }
            }
        }
        let bytes = if kept.is_empty() {
            config::to_bytes(&Index {
                schema_version: 2,
                media_type: config::MEDIA_INDEX.into(),
                manifests: vec![manifest],
            })
        } else {
            let mut all = kept;
            all.push(serde_json::to_value(&manifest).unwrap_or_default());
            let doc = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": config::MEDIA_INDEX,
                "manifests": all,
            });
            serde_json::to_vec(&doc).unwrap_or_default()
        };
        let mut t = TempOut::create(&path)?;
        t.write_all(&bytes).map_err(|e| Error::io(&path, e))?;
        t.commit()
    }
}
