//! Staging: what to copy (a [`Plan`]) and copying it ([`copy`]).
//!
//! Owns the translation of a dependency graph into a staged root: every path
//! the loader opens, every symlink hop on the way (including directory links
//! such as usrmerged `/lib -> usr/lib`), every directory the path passes
//! through, the final regular files with their modes, hard links for files
//! that are one inode in the sysroot, the sysroot's top-level directory
//! links, included files, generated files (`--base-files`, a fresh
//! `ld.so.cache`). The plan is pure data in a sorted map; [`copy`] is the
//! only code that writes, and only below the output directory.

pub mod copy;
pub mod include;
pub mod layer;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::graph::{DepGraph, NodeKind};
use crate::resolve::{bytes_path, ldcache, Via};
use crate::rootfs::{EntryKind, FileStat, RootFs};

/// One thing to create in the staged root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A directory with these permission bits.
    Dir {
        /// Mode bits (`0o7777` part).
        mode: u32,
    },
    /// A copy of a regular file of the sysroot.
    File {
        /// Canonical in-root source path.
        source: PathBuf,
        /// Mode bits.
        mode: u32,
        /// Size in bytes.
        size: u64,
    },
    /// A hard link to an earlier file of the plan (same inode in the sysroot).
    Hardlink {
        /// The plan path of the file it links to.
        to: PathBuf,
    },
    /// A symbolic link with this target, byte for byte.
    Symlink {
        /// The target as stored in the sysroot.
        target: PathBuf,
    },
    /// A file whose bytes the tool writes (`/etc/passwd`, `ld.so.cache`).
    Generated {
        /// Content.
        bytes: Vec<u8>,
        /// Mode bits.
        mode: u32,
    },
}

/// Everything to stage, keyed by in-root path; sorted, so parents come first.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Items by absolute in-root path.
    pub items: BTreeMap<PathBuf, Item>,
    /// `(st_dev, st_ino)` → plan paths of multiply-linked files.
    inodes: BTreeMap<(u64, u64), Vec<PathBuf>>,
}

/// Options of planning.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Write `/etc/passwd`, `/etc/group`, `/tmp`, CA bundle, nsswitch.conf.
    pub base_files: bool,
    /// Extra paths (already expanded) to stage as they are.
    pub includes: Vec<Vec<u8>>,
}

impl Plan {
    /// Totals of the plan: (regular files incl. generated, their bytes).
    pub fn totals(&self) -> (usize, u64) {
        let mut n = 0;
        let mut bytes = 0;
        for item in self.items.values() {
            match item {
                Item::File { size, .. } => {
                    n += 1;
                    bytes += size;
                }
                Item::Generated { bytes: b, .. } => {
                    n += 1;
                    bytes += b.len() as u64;
                }
                _ => {}
            }
        }
        (n, bytes)
    }

    /// Adds every directory from `/` down to `dir` (canonical), with the
    /// sysroot's modes.
    fn add_dirs(&mut self, fs: &RootFs, dir: &Path) -> Result<()> {
        // Directories are only added here and in `add_generated`, each with
        // every ancestor before it, and nothing is removed while planning:
        // a directory already planned has its ancestors. (Most calls are
        // for a directory planned before: one lookup instead of one per
        // component, each a component-wise path comparison.)
        if matches!(self.items.get(dir), Some(Item::Dir { .. })) {
            return Ok(());
        }
        let mut acc = PathBuf::from("/");
        for c in dir.components().skip(1) {
            acc.push(c);
            if self.items.contains_key(&acc) {
                continue;
            }
            let st = fs.stat_canonical(&acc).map_err(|e| Error::Lookup {
                path: acc.clone(),
                source: e,
            })?;
            self.items.insert(acc.clone(), Item::Dir { mode: st.mode });
        }
        Ok(())
    }

    /// Adds the path string `path` as the loader (or kernel) opens it: each
    /// symlink hop, each directory passed through, and the final file.
    pub fn add_path(&mut self, fs: &RootFs, path: &Path) -> Result<()> {
        let r = fs.resolve(path).map_err(|e| Error::Lookup {
            path: path.to_path_buf(),
            source: e,
        })?;
        for d in &r.dirs {
            self.add_dirs(fs, d)?;
        }
        for hop in &r.hops {
            if let Some(parent) = hop.link.parent() {
                self.add_dirs(fs, parent)?;
            }
            self.items.insert(
                hop.link.clone(),
                Item::Symlink {
                    target: hop.target.clone(),
                },
            );
        }
        let st = fs.stat_canonical(&r.canonical).map_err(|e| Error::Lookup {
            path: r.canonical.clone(),
            source: e,
        })?;
        if st.kind == EntryKind::Dir {
            return self.add_tree(fs, &r.canonical);
        }
        if let Some(parent) = r.canonical.parent() {
            self.add_dirs(fs, parent)?;
        }
        self.add_file(&r.canonical, &st);
        Ok(())
    }

    fn add_file(&mut self, canonical: &Path, st: &FileStat) {
        // One search of the map (paths compare component by component).
        let std::collections::btree_map::Entry::Vacant(slot) =
            self.items.entry(canonical.to_path_buf())
        else {
            return;
        };
        slot.insert(Item::File {
            source: canonical.to_path_buf(),
            mode: st.mode,
            size: st.size,
        });
        if st.nlink > 1 {
            self.inodes
                .entry((st.dev, st.ino))
                .or_default()
                .push(canonical.to_path_buf());
        }
    }

    /// Turns every file that shares its inode with a path sorting before it
    /// into a hard link to that first path (written first, since the plan
    /// is written in path order).
    fn link_shared_inodes(&mut self) {
        for paths in self.inodes.values() {
            let mut sorted = paths.clone();
            sorted.sort();
            sorted.dedup();
            let Some((first, rest)) = sorted.split_first() else {
                continue;
            };
            for p in rest {
                self.items
                    .insert(p.clone(), Item::Hardlink { to: first.clone() });
            }
        }
    }

    /// Adds a directory and everything below it (symlinks kept as links,
    /// special files skipped), sorted.
    pub fn add_tree(&mut self, fs: &RootFs, dir: &Path) -> Result<()> {
        self.add_dirs(fs, dir)?;
        let lookup = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Lookup { path, source }
        };
        for (in_root, kind) in fs.walk_tree(dir).map_err(lookup(dir))? {
            match kind {
                EntryKind::Dir => self.add_dirs(fs, &in_root)?,
                EntryKind::Symlink => {
                    let target = fs.read_link_canonical(&in_root).map_err(lookup(&in_root))?;
                    self.items.insert(in_root, Item::Symlink { target });
                }
                EntryKind::File => {
                    let st = fs.stat_canonical(&in_root).map_err(lookup(&in_root))?;
                    // Checked again: it may have changed since it was listed.
                    if st.kind == EntryKind::File {
                        self.add_file(&in_root, &st);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds a generated file (and its parent directories, mode 0755 when
    /// they do not exist in the sysroot).
    pub fn add_generated(&mut self, fs: &RootFs, path: &Path, bytes: Vec<u8>, mode: u32) {
        let mut acc = PathBuf::from("/");
        if let Some(parent) = path.parent() {
            for c in parent.components().skip(1) {
                acc.push(c);
                if !self.items.contains_key(&acc) {
                    let mode = fs
                        .metadata(&acc)
                        .map(|(_, m)| m.mode() & 0o7777)
                        .unwrap_or(0o755);
                    self.items.insert(acc.clone(), Item::Dir { mode });
                }
            }
        }
        self.items
            .insert(path.to_path_buf(), Item::Generated { bytes, mode });
    }

    /// Stages the sysroot's top-level directory symlinks (`/lib -> usr/lib`,
    /// `/bin`, `/sbin`, `/lib64` …) whose target directory holds staged
    /// content, so a usrmerged sysroot stays usrmerged.
    fn add_top_level_links(&mut self, fs: &RootFs) -> Result<()> {
        let Ok((_, names)) = fs.read_dir(Path::new("/")) else {
            return Ok(());
        };
        for name in names {
            let link = Path::new("/").join(&name);
            let Ok((r, meta)) = fs.symlink_metadata(&link) else {
                continue;
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            let Ok((target, tmeta)) = fs.metadata(&link) else {
                continue;
            };
            if !tmeta.is_dir() {
                continue;
            }
            let prefix = target.canonical.clone();
            let used = self
                .items
                .keys()
                .any(|k| k != &prefix && k.starts_with(&prefix));
            if used && !self.items.contains_key(&r.canonical) {
                let target = fs
                    .read_link_canonical(&r.canonical)
                    .map_err(|e| Error::Lookup {
                        path: link.clone(),
                        source: e,
                    })?;
                self.items.insert(r.canonical, Item::Symlink { target });
            }
        }
        Ok(())
    }
}

/// Builds the staging plan for a graph.
pub fn plan(fs: &RootFs, g: &DepGraph, opts: &PlanOptions) -> Result<Plan> {
    let mut p = Plan::default();
    let mut via_cache_outside_defaults = false;
    for n in g.objects() {
        p.add_path(fs, &g.in_root(&n.path))?;
        for v in &n.variants {
            p.add_path(fs, &g.in_root(&v.path))?;
            // A legacy variant is reached through its cache entry (a
            // directory search may spell its subdirectory otherwise:
            // `neon/vfp/`, not `vfp/neon/`).
            via_cache_outside_defaults |= v.via_cache;
        }
        for other in &n.also_opened {
            p.add_path(fs, &g.in_root(other))?;
        }
        // A preload's node says `Preload`, not the step that found it: it
        // may have come from the cache too (a reduced cache is written
        // then; it changes nothing for a name found elsewhere).
        if n.kind == NodeKind::Library && matches!(n.via, Via::Cache | Via::Preload | Via::Audit) {
            let dir = crate::resolve::dirname(&n.path);
            let default = g.system_dirs.iter().any(|d| d.as_slice() == dir.as_slice());
            if !default {
                via_cache_outside_defaults = true;
            }
        }
    }
    for extra in &g.extra_files {
        p.add_path(fs, &bytes_path(extra))?;
    }
    for inc in &opts.includes {
        p.add_path(fs, &bytes_path(inc))?;
    }
    if opts.base_files {
        add_base_files(&mut p, fs)?;
    }
    if via_cache_outside_defaults {
        if let Some(bytes) = staged_cache(fs, g, &p) {
            p.add_generated(fs, Path::new("/etc/ld.so.cache"), bytes, 0o644);
        }
    }
    p.add_top_level_links(fs)?;
    p.link_shared_inodes();
    Ok(p)
}

/// The sysroot's cache, reduced to the entries whose path is staged, in
/// its order. Entries for glibc-hwcaps variants and legacy hwcap
/// subdirectories stay, with their capability bits (a glibc-hwcaps entry's
/// index renumbered into the reduced name table), so the loader of the
/// staged root chooses among the staged files as the sysroot's does: an
/// entry it would take first is staged (it was loaded), and dropping
/// unstaged ones only removes entries it would not reach or could not open.
fn staged_cache(fs: &RootFs, g: &DepGraph, p: &Plan) -> Option<Vec<u8>> {
    let big = g.big_endian;
    let bytes = fs.read(Path::new("/etc/ld.so.cache"), 256 << 20).ok()?;
    let cache = ldcache::parse(&bytes, big).ok()?;
    // An entry may name its file through a link to a directory (a
    // directory of ld.so.conf reached through one): it stays when the file
    // and every link on its way are staged.
    let staged = |e: &&ldcache::CacheEntry| match fs.resolve(&bytes_path(&e.value)) {
        Ok(r) => {
            p.items.contains_key(&r.canonical)
                && r.hops.iter().all(|h| p.items.contains_key(&h.link))
        }
        Err(_) => false,
    };
    let name_of = |e: &ldcache::CacheEntry| {
        e.hwcaps_index()
            .and_then(|i| cache.hwcaps_names.get(i as usize))
    };
    let mut names: Vec<Vec<u8>> = cache
        .entries
        .iter()
        .filter(staged)
        .filter_map(|e| name_of(e).cloned())
        .collect();
    names.sort();
    names.dedup();
    let entries: Vec<ldcache::CacheEntry> = cache
        .entries
        .iter()
        .filter(staged)
        .filter_map(|e| {
            let mut e = e.clone();
            if e.hwcaps_index().is_some() {
                // An index past the name table: the loader cannot use it.
                let name = name_of(&e)?;
                let at = names.iter().position(|n| n == name)? as u64;
                e.hwcap = (e.hwcap & !0xffff_ffff) | at;
            }
            Some(e)
        })
        .collect();
    Some(ldcache::write_new_with_hwcaps(
        &entries,
        &names,
        big,
        Some(b"closure"),
    ))
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";

/// `/etc/passwd`, `/etc/group`, `/tmp` (1777), and the sysroot's CA bundle
/// and `/etc/nsswitch.conf` when present.
fn add_base_files(p: &mut Plan, fs: &RootFs) -> Result<()> {
    p.add_generated(
        fs,
        Path::new("/etc/passwd"),
        PASSWD.as_bytes().to_vec(),
        0o644,
    );
    p.add_generated(
        fs,
        Path::new("/etc/group"),
        GROUP.as_bytes().to_vec(),
        0o644,
    );
    p.items
        .insert(PathBuf::from("/tmp"), Item::Dir { mode: 0o1777 });
    for extra in ["/etc/ssl/certs/ca-certificates.crt", "/etc/nsswitch.conf"] {
        if fs.kind(Path::new(extra)).is_ok() {
            p.add_path(fs, Path::new(extra))?;
        }
    }
    Ok(())
}
