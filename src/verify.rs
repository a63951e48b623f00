//! Static checks that a directory works as a root filesystem on its own.
//!
//! Owns two questions, both answered by tracing inside a directory with the
//! same resolver and graph code as any other sysroot, never by running
//! anything:
//!
//! - [`verify_dir`] (`closure verify DIR`): does every ELF program and
//!   library in DIR resolve completely inside DIR — its own interpreter,
//!   every `DT_NEEDED`, every required symbol version (and, when asked,
//!   every symbol), and the run-time loads its [`Options::build`] asks
//!   for? Programs (static executables, and files with
//!   `PT_INTERP` but no `DT_SONAME`) are traced as the program run; a library that no program of DIR loads
//!   is traced on its own, as `ld.so --list` would; a library that some
//!   program loads was already checked in that program's context (where its
//!   loader's `DT_RPATH` applies) and is not traced again. Libraries traced
//!   on their own are taken as plugins a process loads at run time, as
//!   `--include` takes them ([`BuildOptions::plugin_roots`]): in the
//!   process of DIR's first program of their kind (by path), whose
//!   start-up objects answer their names first; a name their search does
//!   not find may be answered, with a warning, by an object another
//!   program of DIR loads at start-up, or one of them, whose SONAME it is.
//! - [`check_staged`] (run after staging): does the staged root load, for
//!   each root, exactly the files the sysroot loads, with no problem the
//!   sysroot does not have? Files are compared by canonical in-root path,
//!   so a library found through `/etc/ld.so.cache` in the sysroot and
//!   through a default directory in the staged root still counts as the
//!   same file.
//!
//! Problems are data ([`Verification`], [`Divergence`]); only a directory
//! that cannot be used at all is an `Err`. Nothing here prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::elf::{ET_DYN, ET_EXEC};
use crate::error::{Error, Result};
use crate::graph::{self, BuildOptions, DepGraph, MissingVersion, NodeKind, UndefinedSymbol};
use crate::resolve::{self, Resolver, Via};
use crate::rootfs::{EntryKind, RootFs};
use crate::util::show;

/// How to check a directory.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Search options (`--library-path`, `--platform`, …) the staged
    /// programs will run with.
    pub resolve: resolve::Options,
    /// Graph options (run-time dependencies to follow, …); for
    /// [`check_staged`] the same as the sysroot's graph was built with
    /// (its `include_roots` are taken from that graph instead).
    pub build: BuildOptions,
    /// Also check that every undefined symbol binds (`--check-symbols`).
    pub check_symbols: bool,
    /// Keep search records for `--verbose`.
    pub keep_search: bool,
}

/// A file of the directory that was not traced, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// In-root path.
    pub path: Vec<u8>,
    /// Why.
    pub reason: String,
}

/// The result of [`verify_dir`].
#[derive(Debug)]
pub struct Verification {
    /// The merged graph of every file traced (problems are in it).
    pub graph: DepGraph,
    /// Every ELF file found (in-root paths, sorted), traced or not.
    pub files: Vec<Vec<u8>>,
    /// ELF files the loader could not map at all (malformed, unreadable):
    /// problems.
    pub unloadable: Vec<Skipped>,
    /// ELF files that are neither programs nor shared libraries
    /// (relocatable objects, core dumps): not checked, not problems.
    pub ignored: Vec<Skipped>,
}

impl Verification {
    /// Whether everything resolves: no problem in the graph and no
    /// unloadable ELF file.
    pub fn is_clean(&self) -> bool {
        self.graph.is_clean() && self.unloadable.is_empty()
    }
}

/// Every ELF file in the root, as sorted in-root paths: regular files with
/// the ELF magic, and symlinks to such files when the file they lead to
/// is not itself among the regular files found (a link to a file already
/// listed adds nothing to check). Directories are walked on the root's file
/// system only, links to directories are not descended, and unreadable
/// directories are passed over.
pub fn elf_files(fs: &RootFs) -> Vec<Vec<u8>> {
    let mut regular: BTreeSet<PathBuf> = BTreeSet::new();
    let mut links: Vec<PathBuf> = Vec::new();
    let walk = crate::rootfs::TreeWalk {
        one_file_system: true,
        skip_unreadable: true,
        skip_vanished: true,
        limit: usize::MAX,
    };
    for (in_root, kind) in fs.walk_tree_with(Path::new("/"), walk).unwrap_or_default() {
        match kind {
            EntryKind::File if is_elf(fs, &in_root) => {
                regular.insert(in_root);
            }
            EntryKind::Symlink => links.push(in_root),
            _ => {}
        }
    }
    let mut out: BTreeSet<Vec<u8>> = regular
        .iter()
        .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
        .collect();
    for link in links {
        let Ok((resolved, meta)) = fs.metadata(&link) else {
            continue; // dangling or looping: nothing a loader could map
        };
        if meta.is_file() && !regular.contains(&resolved.canonical) && is_elf(fs, &link) {
            out.insert(link.as_os_str().as_encoded_bytes().to_vec());
        }
    }
    out.into_iter().collect()
}

fn is_elf(fs: &RootFs, path: &Path) -> bool {
    fs.read_head(path, 4)
        .is_ok_and(|h| h.starts_with(b"\x7fELF"))
}

/// Checks that every ELF file in `dir` resolves completely inside `dir`
/// (see the module documentation for what is traced as what).
///
/// `Err` only when `dir` is not a usable directory or holds no ELF file.
pub fn verify_dir(dir: &Path, opts: &Options) -> Result<Verification> {
    let fs = RootFs::new(dir)?;
    let files = elf_files(&fs);
    if files.is_empty() {
        return Err(Error::Sysroot {
            path: dir.to_path_buf(),
            reason: "holds no ELF file to verify".into(),
        });
    }
    let resolver = Resolver::new(&fs, opts.resolve.clone());
    let mut programs = Vec::new();
    let mut libraries = Vec::new();
    let mut unloadable = Vec::new();
    let mut ignored = Vec::new();
    for f in &files {
        match resolver.load_path(f) {
            Err(reason) => unloadable.push(Skipped {
                path: f.clone(),
                reason,
            }),
            Ok(found) => {
                let info = &found.info;
                match info.ident.e_type {
                    ET_EXEC => programs.push(f.clone()),
                    // A PIE program: an interpreter and no SONAME (glibc's
                    // libc.so.6 has an interpreter too, but is a library).
                    ET_DYN if info.interp.is_some() && info.soname.is_none() => {
                        programs.push(f.clone())
                    }
                    ET_DYN => libraries.push((f.clone(), found.canonical.clone())),
                    other => ignored.push(Skipped {
                        path: f.clone(),
                        reason: format!(
                            "ELF type {} is neither a program nor a shared library",
                            type_name(other)
                        ),
                    }),
                }
            }
        }
    }
    let build_opts = BuildOptions {
        include_roots: Vec::new(),
        keep_search: opts.keep_search,
        ..opts.build.clone()
    };
    // Libraries some program loads were checked in that program's load.
    let loaded: BTreeSet<PathBuf> = if programs.is_empty() {
        BTreeSet::new()
    } else {
        let g = graph::build(&resolver, &programs, &build_opts)?;
        g.objects()
            .into_iter()
            .filter_map(|n| n.canonical.clone())
            .collect()
    };
    // The others are traced on their own, as the plugins they are: some
    // process loads them at run time, so a program's start-up object or
    // another of them may answer a name their search does not find (as
    // with `--include`).
    let alone: Vec<Vec<u8>> = libraries
        .into_iter()
        .filter(|(_, canonical)| !loaded.contains(canonical))
        .map(|(p, _)| p)
        .collect();
    let build_opts = BuildOptions {
        plugin_roots: alone.clone(),
        ..build_opts
    };
    let mut roots = programs;
    roots.extend(alone);
    let mut g = if roots.is_empty() {
        DepGraph::default()
    } else {
        graph::build(&resolver, &roots, &build_opts)?
    };
    if opts.check_symbols {
        graph::symbols::check(&fs, &mut g);
    } else {
        graph::symbols::plugin_failures(&fs, &mut g);
    }
    Ok(Verification {
        graph: g,
        files,
        unloadable,
        ignored,
    })
}

fn type_name(t: u16) -> String {
    match t {
        0 => "ET_NONE".into(),
        1 => "ET_REL (a relocatable object)".into(),
        4 => "ET_CORE (a core dump)".into(),
        other => format!("{other:#x}"),
    }
}

/// A way in which a staged root does not load what the sysroot loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// The sysroot loads this file for this root; the staged root does not.
    NotLoaded {
        /// The root (in-root path).
        root: Vec<u8>,
        /// Canonical in-root path of the file.
        file: PathBuf,
    },
    /// The staged root loads this file for this root; the sysroot does not.
    Extra {
        /// The root.
        root: Vec<u8>,
        /// Canonical in-root path of the file.
        file: PathBuf,
    },
    /// A library the staged root cannot find (or aborts on) although the
    /// sysroot can.
    Missing {
        /// The name sought.
        soname: Vec<u8>,
        /// The object that needs it.
        needed_by: Vec<u8>,
    },
    /// A root the staged root does not hold at all.
    RootAbsent {
        /// The root.
        root: Vec<u8>,
    },
    /// A required symbol version the staged library lacks.
    MissingVersion(MissingVersion),
    /// An undefined symbol in the staged root only (`--check-symbols`).
    UndefinedSymbol(UndefinedSymbol),
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Divergence::NotLoaded { root, file } => write!(
                f,
                "{} loads {} in the sysroot but not in the staged root",
                show(root),
                file.display()
            ),
            Divergence::Extra { root, file } => write!(
                f,
                "{} loads {} in the staged root but not in the sysroot",
                show(root),
                file.display()
            ),
            Divergence::Missing { soname, needed_by } => write!(
                f,
                "{} (needed by {}) is not found in the staged root",
                show(soname),
                show(needed_by)
            ),
            Divergence::RootAbsent { root } => {
                write!(f, "{} is not in the staged root", show(root))
            }
            Divergence::MissingVersion(v) => write!(
                f,
                "{} requires version {} of {} ({}), which the staged file does not define",
                show(&v.object),
                show(&v.version),
                show(&v.library),
                show(&v.library_path)
            ),
            Divergence::UndefinedSymbol(u) => write!(
                f,
                "undefined symbol {} (needed by {}{}) in the staged root only",
                show(&u.symbol),
                show(&u.object),
                match &u.loaded_by {
                    Some(p) => format!(", loaded at run time by {}", show(p)),
                    None => String::new(),
                }
            ),
        }
    }
}

/// The result of [`check_staged`].
#[derive(Debug)]
pub struct StagedCheck {
    /// The graph traced inside the staged root (same roots, same options).
    pub graph: DepGraph,
    /// Every difference from the sysroot's graph, sorted; empty when the
    /// staged root loads exactly what the sysroot loads.
    pub divergences: Vec<Divergence>,
}

/// Traces the roots of `sysroot_graph` again inside the staged root `out`
/// with the same options, and lists every difference: a file loaded on one
/// side only (per root, by canonical path), a missing library, symbol
/// version or (with `check_symbols`) symbol that the sysroot does not have.
pub fn check_staged(sysroot_graph: &DepGraph, out: &Path, opts: &Options) -> Result<StagedCheck> {
    let fs = RootFs::new(out)?;
    let resolver = Resolver::new(&fs, opts.resolve.clone());
    let mut roots = Vec::new();
    let mut include_roots = Vec::new();
    let mut absent = Vec::new();
    for (i, r) in sysroot_graph.roots.iter().enumerate() {
        if fs.kind(&resolve::bytes_path(r)).is_err() {
            absent.push(Divergence::RootAbsent { root: r.clone() });
            continue;
        }
        match sysroot_graph.root_via.get(i) {
            Some(Via::Include) => include_roots.push(r.clone()),
            _ => roots.push(r.clone()),
        }
    }
    let build_opts = BuildOptions {
        include_roots,
        keep_search: opts.keep_search,
        ..opts.build.clone()
    };
    let mut staged = if roots.is_empty() && build_opts.include_roots.is_empty() {
        DepGraph::default()
    } else {
        graph::build(&resolver, &roots, &build_opts)?
    };
    if opts.check_symbols {
        graph::symbols::check(&fs, &mut staged);
    } else {
        graph::symbols::plugin_failures(&fs, &mut staged);
    }
    let mut divergences = absent;
    let before = per_root_files(sysroot_graph);
    let after = per_root_files(&staged);
    for (root, files) in &before {
        let Some(staged_files) = after.get(root) else {
            continue; // absent: reported above
        };
        for f in files.difference(staged_files) {
            divergences.push(Divergence::NotLoaded {
                root: root.clone(),
                file: f.clone(),
            });
        }
        for f in staged_files.difference(files) {
            divergences.push(Divergence::Extra {
                root: root.clone(),
                file: f.clone(),
            });
        }
    }
    let missing_before = missing_keys(sysroot_graph);
    for key in missing_keys(&staged).difference(&missing_before) {
        divergences.push(Divergence::Missing {
            soname: key.0.clone(),
            needed_by: key.1.clone(),
        });
    }
    for v in &staged.missing_versions {
        let known = sysroot_graph
            .missing_versions
            .iter()
            .any(|w| w.version == v.version && w.library == v.library && w.object == v.object);
        if !known {
            divergences.push(Divergence::MissingVersion(v.clone()));
        }
    }
    if opts.check_symbols {
        for u in &staged.undefined_symbols {
            if !sysroot_graph.undefined_symbols.contains(u) {
                divergences.push(Divergence::UndefinedSymbol(u.clone()));
            }
        }
    }
    divergences.sort_by_key(|d| d.to_string());
    divergences.dedup();
    Ok(StagedCheck {
        graph: staged,
        divergences,
    })
}

/// Root path → canonical paths of the files its load maps.
fn per_root_files(g: &DepGraph) -> BTreeMap<Vec<u8>, BTreeSet<PathBuf>> {
    let mut out: BTreeMap<Vec<u8>, BTreeSet<PathBuf>> = g
        .roots
        .iter()
        .map(|r| (r.clone(), BTreeSet::new()))
        .collect();
    for n in g.graph.node_weights() {
        if n.kind == NodeKind::Missing {
            continue;
        }
        let Some(c) = &n.canonical else { continue };
        for &ri in &n.roots {
            if let Some(root) = g.roots.get(ri) {
                out.entry(root.clone()).or_default().insert(c.clone());
            }
        }
    }
    out
}

/// (name, requester) of every missing library.
fn missing_keys(g: &DepGraph) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    g.missing()
        .into_iter()
        .filter_map(|n| n.missing.as_ref())
        .map(|m| (m.soname.clone(), m.needed_by.clone()))
        .collect()
}
