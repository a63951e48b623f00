//! `--base DIR`: composing the staged root onto an unpacked base image.
//!
//! Owns three decisions about a base image root (read through its own
//! [`RootFs`], never written):
//!
//! - **Which libraries the base provides.** The closure is traced in the
//!   sysroot as usual. A library (or interpreter) of the closure is
//!   *provided* by the base when the path the loader opens it by leads, in
//!   the base, to a regular file that is either byte-identical to the
//!   sysroot's or an ELF object of the same class and machine with the same
//!   `SONAME`. A provided library is the one that will be loaded, so it is
//!   not staged (nor the symlinks on its path the base also has) — the base's
//!   glibc is never half-replaced by the sysroot's.
//! - **Whether that works** ([`check_versions`]): every symbol version the
//!   staged objects require from a provided library must be defined by the
//!   base's file, and every version the base's file requires from a library
//!   that is staged must be defined by the staged one ("built on bookworm,
//!   runs on an older base"). A lack is a [`MissingVersion`] in the graph:
//!   reported like any other, exit status 1.
//! - **The layout** ([`apply`]): every plan path is mapped through the
//!   base's directory links (when the base has `lib -> usr/lib`, a sysroot
//!   file `/lib/x/libz.so.1` is staged as `/usr/lib/x/libz.so.1` and no real
//!   `/lib` directory is staged); a file or link the base holds with identical
//!   content is dropped; a directory the base has keeps the base's mode and is
//!   staged only when something is staged below it; a link where the base has
//!   a directory is never staged (it would replace the directory).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::elf::{ElfInfo, VersionCheck};
use crate::error::Result;
use crate::graph::{DepGraph, MissingVersion, NodeKind};
use crate::rootfs::RootFs;
use crate::stage::{Item, Plan};

/// A library of the closure that the base provides.
#[derive(Debug, Clone)]
pub struct Provided {
    /// Its node in the graph.
    pub node: NodeIndex,
    /// The canonical path of the base's file, inside the base.
    pub base_path: PathBuf,
    /// Whether the base's file is byte-identical to the sysroot's.
    pub identical: bool,
    /// What the base's file says (None when identical: the sysroot's applies).
    pub info: Option<Arc<ElfInfo>>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Plan items dropped because the base provides them.
    pub dropped: usize,
    /// Things the user should know (a base file replaced, a link refused).
    pub warnings: Vec<String>,
}

/// Whether two readable regular files have the same bytes.
fn same_bytes(fs: &RootFs, a: &Path, base: &RootFs, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (fs.open(a), base.open(b)) else {
        return false;
    };
    if fa.meta.len() != fb.meta.len() {
        return false;
    }
    let (mut ra, mut rb) = (&fa.file, &fb.file);
    let mut ba = vec![0u8; 1 << 16];
    let mut bb = vec![0u8; 1 << 16];
    loop {
        let n = match read_full(&mut ra, &mut ba) {
            Ok(n) => n,
            Err(_) => return false,
        };
        let m = match read_full(&mut rb, &mut bb[..n.max(1)]) {
            Ok(m) => m,
            Err(_) => return false,
        };
        if n == 0 {
            return m == 0;
        }
        if n != m || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Reads until `buf` is full or the end of the file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// The libraries and interpreters of `g` that `base` provides.
pub fn provided(fs: &RootFs, base: &RootFs, g: &DepGraph) -> Vec<Provided> {
    let mut out = Vec::new();
    for &idx in g.index.values() {
        let n = &g.graph[idx];
        if !matches!(n.kind, NodeKind::Library | NodeKind::Interpreter) {
            continue;
        }
        let (Some(canonical), Some(ours)) = (&n.canonical, &n.info) else {
            continue;
        };
        let Ok((r, meta)) = base.metadata(&g.in_root(&n.path)) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if same_bytes(fs, canonical, base, &r.canonical) {
            out.push(Provided {
                node: idx,
                base_path: r.canonical,
                identical: true,
                info: None,
            });
            continue;
        }
        let Ok(f) = base.open(&r.canonical) else {
            continue;
        };
        let Ok(theirs) = crate::elf::parse_file(&f.file) else {
            continue;
        };
        let same_kind = theirs.ident.machine == ours.ident.machine
            && theirs.ident.is_64 == ours.ident.is_64
            && theirs.ident.big_endian == ours.ident.big_endian
            && theirs.soname == ours.soname
            && theirs.is_dynamic();
        if same_kind {
            out.push(Provided {
                node: idx,
                base_path: r.canonical,
                identical: false,
                info: Some(Arc::new(theirs)),
            });
        }
    }
    out
}

/// The versions `required` (one `Verneed` list of names) that `defs`
/// does not meet, each with the `vd_version` of the unreadable record the
/// loader's walk stopped at, if that is why; nothing when `defs` defines no
/// versions at all (the loader only warns then).
fn lacking<'a>(
    required: &'a [crate::elf::VerNeedAux],
    defs: &ElfInfo,
) -> Vec<(&'a crate::elf::VerNeedAux, Option<u16>)> {
    if defs.verdef.is_empty() {
        return Vec::new();
    }
    required
        .iter()
        .filter_map(|a| match defs.check_version(a) {
            VersionCheck::Met => None,
            VersionCheck::Missing => Some((a, None)),
            VersionCheck::Unsupported(v) => Some((a, Some(v))),
        })
        .collect()
}

fn family(version: &[u8]) -> Vec<u8> {
    version
        .iter()
        .take_while(|c| !c.is_ascii_digit())
        .copied()
        .collect()
}

/// Checks the symbol versions between the staged objects and the libraries
/// `base` provides (both directions); adds each lack to
/// `g.missing_versions`.
pub fn check_versions(fs: &RootFs, base: &RootFs, g: &mut DepGraph) {
    let prov = provided(fs, base, g);
    let by_node: BTreeMap<NodeIndex, &Provided> = prov.iter().map(|p| (p.node, p)).collect();
    let where_ = |p: &Provided| {
        format!(
            "{} in --base {}",
            p.base_path.display(),
            base.host_root().display()
        )
        .into_bytes()
    };
    let mut found = Vec::new();
    for p in &prov {
        let Some(theirs) = &p.info else {
            continue;
        };
        // Staged objects that need the provided library.
        for e in g.graph.edges_directed(p.node, Direction::Incoming) {
            let from = e.source();
            if by_node.contains_key(&from) {
                continue; // the base's own object is loaded there
            }
            let Some(req) = &g.graph[from].info else {
                continue;
            };
            for vn in req.verneed.iter().filter(|v| *v.file == *e.weight().name) {
                for (aux, unsupported_verdef) in lacking(&vn.versions, theirs) {
                    found.push(MissingVersion {
                        version: aux.name.to_vec(),
                        library: vn.file.clone(),
                        library_path: where_(p),
                        object: g.graph[from].path.clone(),
                        highest: theirs
                            .highest_version(&family(&aux.name))
                            .map(<[u8]>::to_vec),
                        unsupported_verdef,
                    });
                }
            }
        }
        // Staged libraries the provided one needs.
        for e in g.graph.edges_directed(p.node, Direction::Outgoing) {
            let to = e.target();
            if by_node.contains_key(&to) {
                continue;
            }
            let Some(defs) = &g.graph[to].info else {
                continue;
            };
            for vn in theirs
                .verneed
                .iter()
                .filter(|v| *v.file == *e.weight().name)
            {
                for (aux, unsupported_verdef) in lacking(&vn.versions, defs) {
                    found.push(MissingVersion {
                        version: aux.name.to_vec(),
                        library: vn.file.clone(),
                        library_path: g.graph[to].path.clone(),
                        object: where_(p),
                        highest: defs.highest_version(&family(&aux.name)).map(<[u8]>::to_vec),
                        unsupported_verdef,
                    });
                }
            }
        }
    }
    g.missing_versions.extend(found);
    g.missing_versions.sort();
    g.missing_versions.dedup();
}

/// Maps an in-root path through the base's links to directories: each
/// directory component that is a symlink to a directory in the base is
/// replaced by the base's canonical directory. The final component is kept.
pub fn map_path(base: &RootFs, p: &Path) -> PathBuf {
    let comps: Vec<_> = p
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    let mut acc = PathBuf::from("/");
    let Some((last, dirs)) = comps.split_last() else {
        return acc;
    };
    for c in dirs {
        let next = acc.join(c);
        acc = match base.symlink_metadata(&next) {
            Ok((_, m)) if m.file_type().is_symlink() => match base.metadata(&next) {
                Ok((r, m2)) if m2.is_dir() => r.canonical,
                _ => next,
            },
            _ => next,
        };
    }
    acc.join(last)
}

/// What the base has at a (mapped) path, not following a final link.
enum AtBase {
    Nothing,
    Dir(u32),
    LinkToDir(PathBuf),
    Link(PathBuf),
    File(PathBuf),
    Other,
}

fn at_base(base: &RootFs, p: &Path) -> AtBase {
    use std::os::unix::fs::MetadataExt;
    let Ok((r, m)) = base.symlink_metadata(p) else {
        return AtBase::Nothing;
    };
    let ft = m.file_type();
    if ft.is_dir() {
        AtBase::Dir(m.mode() & 0o7777)
    } else if ft.is_symlink() {
        let target = base.read_link_canonical(&r.canonical).unwrap_or_default();
        if base.is_dir(p) {
            AtBase::LinkToDir(target)
        } else {
            AtBase::Link(target)
        }
    } else if ft.is_file() {
        AtBase::File(r.canonical)
    } else {
        AtBase::Other
    }
}

/// Rewrites `plan` for composing onto `base` (see the module docs).
pub fn apply(fs: &RootFs, base: &RootFs, g: &DepGraph, plan: &mut Plan) -> Result<Applied> {
    let mut applied = Applied::default();
    // Plan paths of provided libraries: their files and every link on the
    // path the loader opens them by.
    let mut base_owned: BTreeSet<PathBuf> = BTreeSet::new();
    // glibc-hwcaps variants of a provided library: never staged, or the
    // loader could pick the sysroot's variant over the base's library.
    let mut variants: BTreeSet<PathBuf> = BTreeSet::new();
    for p in provided(fs, base, g) {
        let n = &g.graph[p.node];
        if let Some(c) = &n.canonical {
            base_owned.insert(c.clone());
        }
        for hop in &n.hops {
            base_owned.insert(hop.link.clone());
        }
        for other in &n.also_opened {
            if let Ok(r) = fs.resolve(&g.in_root(other)) {
                base_owned.insert(r.canonical);
                base_owned.extend(r.hops.into_iter().map(|h| h.link));
            }
        }
        for v in &n.variants {
            if let Ok(r) = fs.resolve(&g.in_root(&v.path)) {
                variants.insert(r.canonical);
                variants.extend(r.hops.into_iter().map(|h| h.link));
            }
        }
    }
    let before = plan.items.len();
    let old = std::mem::take(&mut plan.items);
    let mut mapped_of: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut items: BTreeMap<PathBuf, Item> = BTreeMap::new();
    let mut dropped_files: BTreeMap<PathBuf, Item> = BTreeMap::new();
    for (path, item) in &old {
        let mapped = map_path(base, path);
        mapped_of.insert(path.clone(), mapped.clone());
        let here = at_base(base, &mapped);
        let is_dir = matches!(item, Item::Dir { .. });
        let keep = if variants.contains(path) && !is_dir {
            false
        } else if base_owned.contains(path) && !is_dir {
            // The base has its own file or link on the provided library's
            // path; a path it lacks is harmless to stage.
            matches!(here, AtBase::Nothing)
        } else {
            match (item, &here) {
                (_, AtBase::Nothing) => true,
                (Item::Dir { .. }, AtBase::LinkToDir(_)) => false,
                (Item::Dir { .. }, _) => true,
                (Item::Symlink { target }, AtBase::Link(t) | AtBase::LinkToDir(t)) => {
                    if t != target {
                        applied.warnings.push(format!(
                            "{}: replaces the base's link (-> {}) with -> {}",
                            mapped.display(),
                            t.display(),
                            target.display()
                        ));
                    }
                    t != target
                }
                (Item::Symlink { .. }, AtBase::Dir(_)) => {
                    applied.warnings.push(format!(
                        "{}: the base has a directory here; the sysroot's symbolic link is not staged",
                        mapped.display()
                    ));
                    false
                }
                (Item::File { source, .. }, AtBase::File(b)) => {
                    let same = same_bytes(fs, source, base, b);
                    if !same {
                        applied.warnings.push(format!(
                            "{}: replaces a different file of the base",
                            mapped.display()
                        ));
                    }
                    !same
                }
                (Item::Generated { bytes, .. }, AtBase::File(b)) => {
                    base.read(b, bytes.len() as u64 + 1).ok().as_ref() != Some(bytes)
                }
                _ => true,
            }
        };
        if !keep {
            if matches!(item, Item::File { .. } | Item::Generated { .. }) {
                dropped_files.insert(path.clone(), item.clone());
            }
            continue;
        }
        let item = match (item, &here) {
            (Item::Dir { .. }, AtBase::Dir(mode)) => Item::Dir { mode: *mode },
            _ => item.clone(),
        };
        if let Some(prev) = items.get(&mapped) {
            if *prev != item && !matches!(prev, Item::Dir { .. }) {
                applied.warnings.push(format!(
                    "{} and another sysroot path are the same path in the base; the first is staged",
                    mapped.display()
                ));
            }
            continue;
        }
        items.insert(mapped, item);
    }

    // Hard links: follow their file to its mapped path; a link whose file
    // was dropped becomes the file (or is dropped too when the base has the
    // same bytes at the link's path).
    let mut promoted: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let links: Vec<(PathBuf, PathBuf)> = items
        .iter()
        .filter_map(|(p, i)| match i {
            Item::Hardlink { to } => Some((p.clone(), to.clone())),
            _ => None,
        })
        .collect();
    for (p, to) in links {
        let to_mapped = mapped_of.get(&to).cloned().unwrap_or_else(|| to.clone());
        if matches!(
            items.get(&to_mapped),
            Some(Item::File { .. } | Item::Generated { .. })
        ) {
            items.insert(p, Item::Hardlink { to: to_mapped });
            continue;
        }
        if let Some(first) = promoted.get(&to) {
            items.insert(p, Item::Hardlink { to: first.clone() });
            continue;
        }
        let Some(content) = dropped_files.get(&to).or_else(|| old.get(&to)).cloned() else {
            items.remove(&p);
            continue;
        };
        let same_at_base = match (&content, at_base(base, &p)) {
            (Item::File { source, .. }, AtBase::File(b)) => same_bytes(fs, source, base, &b),
            _ => false,
        };
        if same_at_base {
            items.remove(&p);
        } else {
            items.insert(p.clone(), content);
            promoted.insert(to, p);
        }
    }

    // Every ancestor of a staged item is a directory item; a directory the
    // base already has is kept only when something is staged below it.
    let mut needed: BTreeSet<PathBuf> = BTreeSet::new();
    for (p, i) in &items {
        let keep_self = match i {
            Item::Dir { .. } => matches!(at_base(base, p), AtBase::Nothing),
            _ => true,
        };
        if keep_self {
            let mut a = p.parent();
            while let Some(d) = a {
                if d == Path::new("/") {
                    break;
                }
                needed.insert(d.to_path_buf());
                a = d.parent();
            }
            if matches!(i, Item::Dir { .. }) {
                needed.insert(p.clone());
            }
        }
    }
    items.retain(|p, i| !matches!(i, Item::Dir { .. }) || needed.contains(p));
    for d in needed {
        if let std::collections::btree_map::Entry::Vacant(slot) = items.entry(d) {
            let d = slot.key();
            let mode = match at_base(base, d) {
                AtBase::Dir(m) => m,
                _ => match old.get(d) {
                    Some(Item::Dir { mode }) => *mode,
                    _ => 0o755,
                },
            };
            slot.insert(Item::Dir { mode });
        }
    }
    plan.items = items;
    applied.dropped = before.saturating_sub(plan.items.len());
    applied.warnings.sort();
    applied.warnings.dedup();
    Ok(applied)
}

/// Gives every planned directory the base also has the base's mode (for
/// items added after [`apply`], such as provenance entries).
pub fn adopt_dirs(base: &RootFs, plan: &mut Plan) {
    for (p, i) in plan.items.iter_mut() {
        if let Item::Dir { mode } = i {
            if let AtBase::Dir(m) = at_base(base, p) {
                *mode = m;
            }
        }
    }
}
