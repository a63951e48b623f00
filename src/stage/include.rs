//! `--include PATH|GLOB`: expanding include arguments to in-root paths.
//!
//! A plain path is kept as given (it may be a file, a symlink or a
//! directory). A pattern with glob characters is matched (globset, `*` not
//! crossing `/`) against every path below its longest literal directory
//! prefix, walked inside the sysroot in sorted order; a matching directory
//! is included whole and not descended further.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rootfs::RootFs;

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Expands include arguments; a pattern that matches nothing or a path that
/// does not exist is an error (a typo should not silently stage less).
pub fn expand(fs: &RootFs, args: &[String]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for arg in args {
        let abs = if arg.starts_with('/') {
            arg.clone()
        } else {
            format!("/{arg}")
        };
        if !is_glob(&abs) {
            fs.symlink_metadata(Path::new(&abs))
                .map_err(|e| Error::Lookup {
                    path: PathBuf::from(&abs),
                    source: e,
                })?;
            out.push(abs.into_bytes());
            continue;
        }
        let glob = globset::GlobBuilder::new(&abs)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Usage(format!("--include {arg}: {e}")))?
            .compile_matcher();
        // Longest directory prefix without glob characters.
        let mut base = PathBuf::from("/");
        for comp in Path::new(&abs).components().skip(1) {
            let c = comp.as_os_str().to_string_lossy();
            if is_glob(&c) {
                break;
            }
            base.push(comp);
        }
        if !fs.is_dir(&base) {
            base.pop();
        }
        let before = out.len();
        walk(fs, &base, &glob, &mut out)?;
        if out.len() == before {
            return Err(Error::Usage(format!(
                "--include {arg}: matches nothing in the sysroot"
            )));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(
    fs: &RootFs,
    dir: &Path,
    glob: &globset::GlobMatcher,
    out: &mut Vec<Vec<u8>>,
) -> Result<()> {
    let Ok((_, names)) = fs.read_dir(dir) else {
        return Ok(());
    };
    for name in names {
        let p = dir.join(&name);
        if glob.is_match(&p) {
            out.push(p.as_os_str().as_bytes().to_vec());
            continue;
        }
        let Ok((_, meta)) = fs.symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(fs, &p, glob, out)?;
        }
    }
    Ok(())
}
