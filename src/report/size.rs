//! `--format size`: what the closure weighs, and which root pulls in the most.
//!
//! One line per file of the closure (objects that are the same file under
//! two path strings count once, under the first path), largest first, then
//! a total with its share of the sysroot, then one line per root with the
//! bytes only that root loads (what dropping it would save) and the bytes
//! its whole load maps, heaviest first. Also owns [`sysroot_bytes`], the
//! size of a sysroot, used for the share here and after staging.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::graph::DepGraph;
use crate::rootfs::{EntryKind, RootFs, TreeWalk};
use crate::util::show;

/// One file of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSize {
    /// The object path the loader opens it by (the first, when several).
    pub path: Vec<u8>,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What one root pulls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSize {
    /// The root (in-root path).
    pub root: Vec<u8>,
    /// Bytes of the files only this root loads.
    pub exclusive: u64,
    /// Bytes of every file this root loads (itself included).
    pub total: u64,
}

/// The numbers of a size report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Files, largest first, then by path.
    pub files: Vec<FileSize>,
    /// Sum of `files`.
    pub total: u64,
    /// Roots, heaviest total first, then by exclusive bytes, then by path.
    pub roots: Vec<RootSize>,
}

/// Computes the sizes of `g`'s closure.
pub fn compute(g: &DepGraph) -> Sizes {
    // One entry per distinct file: canonical path → (first object path,
    // bytes, roots that load it).
    let mut files: BTreeMap<PathBuf, (Vec<u8>, u64, BTreeSet<usize>)> = BTreeMap::new();
    for n in g.objects() {
        let key = n
            .canonical
            .clone()
            .unwrap_or_else(|| crate::resolve::bytes_path(&n.path));
        let e = files
            .entry(key)
            .or_insert_with(|| (n.path.clone(), n.size, BTreeSet::new()));
        e.2.extend(n.roots.iter().copied());
    }
    let mut roots: Vec<RootSize> = g
        .roots
        .iter()
        .map(|r| RootSize {
            root: r.clone(),
            exclusive: 0,
            total: 0,
        })
        .collect();
    for (_, bytes, rs) in files.values() {
        for &ri in rs {
            if let Some(r) = roots.get_mut(ri) {
                r.total += bytes;
                if rs.len() == 1 {
                    r.exclusive += bytes;
                }
            }
        }
    }
    roots.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then(b.exclusive.cmp(&a.exclusive))
            .then(a.root.cmp(&b.root))
    });
    let mut list: Vec<FileSize> = files
        .into_values()
        .map(|(path, bytes, _)| FileSize { path, bytes })
        .collect();
    list.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    let total = list.iter().map(|f| f.bytes).sum();
    Sizes {
        files: list,
        total,
        roots,
    }
}

/// Writes the size report; `sysroot_bytes` (when known and non-zero) adds
/// the closure's share of the sysroot to the total line.
pub fn render(g: &DepGraph, sysroot_bytes: Option<u64>, out: &mut dyn Write) -> io::Result<()> {
    let s = compute(g);
    let w = digits(s.total).max("BYTES".len());
    writeln!(out, "{:>w$}  FILE", "BYTES")?;
    for f in &s.files {
        writeln!(out, "{:>w$}  {}", f.bytes, show(&f.path))?;
    }
    let files = if s.files.len() == 1 { "file" } else { "files" };
    write!(
        out,
        "{:>w$}  total: {} {files}, {}",
        s.total,
        s.files.len(),
        human(s.total)
    )?;
    match sysroot_bytes {
        Some(all) if all > 0 => writeln!(
            out,
            ", {} of the sysroot's {} bytes ({})",
            percent(s.total, all),
            all,
            human(all)
        )?,
        _ => writeln!(out)?,
    }
    if s.roots.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let rw = s
        .roots
        .iter()
        .map(|r| show(&r.root).chars().count())
        .max()
        .unwrap_or(0)
        .max("ROOT".len());
    let ew = digits(s.total).max("EXCLUSIVE".len());
    let tw = digits(s.total).max("TOTAL".len());
    writeln!(
        out,
        "{:<rw$}  {:>ew$}  {:>tw$}",
        "ROOT", "EXCLUSIVE", "TOTAL"
    )?;
    for r in &s.roots {
        writeln!(
            out,
            "{:<rw$}  {:>ew$}  {:>tw$}",
            show(&r.root),
            r.exclusive,
            r.total
        )?;
    }
    Ok(())
}

fn digits(n: u64) -> usize {
    n.to_string().len()
}

/// `part` as a percentage of `whole`, two decimals.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.00%".into();
    }
    format!("{:.2}%", part as f64 * 100.0 / whole as f64)
}

/// A byte count for people: `512 B`, `8.8 KiB`, `2.1 MiB`, `1.0 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Bytes of a sysroot: for the host's `/` the used bytes of its file
/// system (a walk of a whole host would take seconds), else the sizes of
/// all regular files below it on one file system, walked through
/// [`RootFs::visit_tree`]. Unreadable parts count as zero.
pub fn sysroot_bytes(fs: &RootFs) -> u64 {
    if fs.host_root() == Path::new("/") {
        return rustix::fs::statvfs("/")
            .map(|s| (s.f_blocks.saturating_sub(s.f_bfree)).saturating_mul(s.f_frsize))
            .unwrap_or(0);
    }
    let walk = TreeWalk {
        one_file_system: true,
        skip_unreadable: true,
        skip_vanished: true,
        ..TreeWalk::default()
    };
    let mut total = 0u64;
    let _ = fs.visit_tree(Path::new("/"), walk, &mut |e| {
        if e.kind == EntryKind::File {
            total = total.saturating_add(e.stat().map_or(0, |s| s.size));
        }
        Ok(())
    });
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysroot_bytes_sum_regular_files_inside_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        std::fs::write(root.join("a/one"), vec![0u8; 100]).unwrap();
        std::fs::write(root.join("a/b/two"), vec![0u8; 20]).unwrap();
        std::fs::write(t.path().join("outside/big"), vec![0u8; 5000]).unwrap();
        // Links are not followed: neither to a file nor to a directory.
        std::os::unix::fs::symlink("one", root.join("a/link")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), root.join("out")).unwrap();
        let fs = RootFs::new(&root).unwrap();
        assert_eq!(sysroot_bytes(&fs), 120);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(1, 4), "25.00%");
        assert_eq!(percent(1, 0), "0.00%");
    }
}
