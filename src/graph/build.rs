//! Replaying the loader's breadth-first load of each root.
//!
//! For each root: the program, then its interpreter (registered under its
//! `PT_INTERP` string and SONAME, as `rtld` does), for glibc the objects
//! `/etc/ld.so.preload` names (searched for by the program), then a FIFO walk over the
//! load list in which every `DT_NEEDED` of every object, in dynamic-section
//! order, is first matched against the objects already loaded (by the path
//! they were opened by, the names they were requested under, and their
//! SONAME), then searched for with that object as the requester; then the
//! program's audit modules, each in a namespace of its own. A file found
//! again under another path (same device and inode) is the same object. The
//! per-root results are merged into one [`DepGraph`], in root order, by
//! whichever pool thread finishes the trace the merge waits for, while the
//! other traces the roots after it;
//! symbol-version requirements are checked against the object each name
//! resolved to. Roots of one shape (see `template_key`) share the first
//! one's trace with themselves substituted as object 0, and are merged by
//! adding only what is their own. An included library is traced as a
//! plugin its host program opens (`Host`, `Included`): the program's
//! start-up objects are matched first, and its RPATH ends the chains; a
//! musl program's plugin is mapped by musl's loader, by musl's rules.
//!
//! Submodules: `audit` (the audit modules' namespaces), `runtime` (what is
//! loaded once the program runs) and `refusals` (objects the loader maps
//! and refuses: ISA levels, executable stacks, executables, `-z nodlopen`).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::shard::Padded;

use petgraph::stable_graph::NodeIndex;

use super::{
    AuditAnswer, AuditLoad, AuditStep, DepGraph, Dlopen, Edge, EdgeExtra, FailedSearch,
    MissingInfo, MissingVersion, Node, NodeKind, Refused, RefusedWhy, RuntimeFailure, RuntimeMiss,
    RuntimeStep,
};
use crate::elf::notes::Priority;
use crate::elf::{ElfInfo, NotElf, ParseError, VersionCheck, ET_EXEC};
use crate::error::{Error, Result};
use crate::observe::timings;
use crate::resolve::{dirname, ChainLink, Flavor, Found, Outcome, Request, Resolver, Target, Via};
use crate::util::show;

mod audit;
mod refusals;
mod runtime;

use audit::*;
use refusals::*;
use runtime::*;

/// Options of a build beyond the resolver's.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Follow `.note.dlopen` entries of at least this priority (None: ignore them).
    pub dlopen_priority: Option<Priority>,
    /// Only `.note.dlopen` entries of these features (empty: all).
    pub dlopen_features: Vec<String>,
    /// Load, as `dlopen` from the object, the library names spelled in
    /// the read-only data of each object that calls `dlopen`
    /// (`--dlopen-strings`; a heuristic, so a name not found is a warning).
    pub dlopen_strings: bool,
    /// NSS services named by the `/etc/nsswitch.conf` that will be staged.
    pub nss_services: Option<Vec<Vec<u8>>>,
    /// Add `libgcc_s.so.1` when the closure uses `pthread_cancel` & co.
    pub libgcc: bool,
    /// gconv modules to load (`--gconv`).
    pub gconv: Option<crate::runtime::GconvSpec>,
    /// Files from `--include` that are ELF or scripts: traced like roots
    /// after them (their nodes say `include`). Those that are libraries are
    /// plugins, as [`BuildOptions::plugin_roots`] are.
    pub include_roots: Vec<Vec<u8>>,
    /// Roots that are libraries some process loads at run time (`closure
    /// verify`'s libraries that no program loads): these and the included
    /// libraries are traced after the other roots, in the process of the
    /// first program root of their kind, whose start-up objects answer
    /// their names first and whose RPATH ends their chains; a name neither
    /// that nor a search finds is answered by an object another program
    /// root loads at start-up, or one of these or an included library,
    /// whose SONAME it is, with a warning (glibc answers a name with a
    /// loaded object of that SONAME).
    pub plugin_roots: Vec<Vec<u8>>,
    /// Paths searched for `#!/usr/bin/env NAME` (default: a container's usual `PATH`).
    pub script_path: Option<Vec<Vec<u8>>>,
    /// Keep every search record of names that were found (in
    /// [`DepGraph::searches`]), for `--verbose`.
    pub keep_search: bool,
    /// How many roots make the build use the thread pool (read-ahead on
    /// all cores, roots traced in parallel); `None`: [`PARALLEL_ROOTS`].
    /// The answer is the same either way.
    pub parallel_roots: Option<usize>,
}

/// The names an [`Obj`] was requested under: a boxed slice (most objects
/// have one; a second is rare, [`Obj::add_name`]).
type Names = Box<[Box<[u8]>]>;

/// One object in a root's load list: 64 bytes (the rare parts boxed, the
/// names a boxed slice), as the templates keep theirs for the whole build.
#[derive(Clone)]
struct Obj {
    /// Shared with the resolver's memo (cloning is a reference count).
    found: Arc<Found>,
    kind: NodeKind,
    /// Names this object was requested under (aliases, `l_libname`).
    names: Names,
    /// Whether the object's `l_name` (its path, `found.path`) takes part
    /// in name matching (not for the main program).
    l_name: bool,
    /// Index of the object that first loaded it.
    /// (Its index plus one: four bytes with the `None`.)
    loader: Option<std::num::NonZeroU32>,
    /// Other paths found by search that turned out to be this file (rare).
    also_opened: Option<Box<[Vec<u8>]>>,
    link: Arc<ChainLink>,
    /// An interpreter registered for name matching only (a library given
    /// as a root has no `PT_INTERP`): part of the closure only once some
    /// `DT_NEEDED` names it.
    latent: bool,
    /// One bit ([`name_bit`]) for each name [`find_loaded`] can match
    /// this object by: `l_name`, the names, the SONAME. A name whose bit is
    /// clear is none of them, so the "already loaded" scan compares
    /// strings only where the bit is set (set by [`Obj::linked`] and
    /// [`Obj::add_name`]).
    mask: u64,
}

impl Obj {
    /// A newly loaded object, [`Obj::mask`] made from its names.
    fn new(found: Arc<Found>, kind: NodeKind, names: Names, l_name: bool) -> Obj {
        let link = found.link();
        Obj::linked(found, kind, names, l_name, link)
    }

    /// [`Obj::new`] with a chain link of the caller's (the root's, whose
    /// origin is its own directory; a script's).
    fn linked(
        found: Arc<Found>,
        kind: NodeKind,
        names: Names,
        l_name: bool,
        link: Arc<ChainLink>,
    ) -> Obj {
        let mut o = Obj {
            found,
            kind,
            names,
            l_name,
            loader: None,
            also_opened: None,
            link,
            latent: false,
            mask: 0,
        };
        o.mask = o.names_mask();
        o
    }

    /// A library loaded under `name`, first by `loader`.
    fn library(found: Arc<Found>, name: Vec<u8>, loader: Option<usize>) -> Obj {
        Obj {
            loader: loader.and_then(|l| std::num::NonZeroU32::new(index32(l) + 1)),
            ..Obj::new(found, NodeKind::Library, Box::new([name.into()]), true)
        }
    }

    fn names_mask(&self) -> u64 {
        let mut m = self.names.iter().fold(0, |m, n| m | name_bit(n));
        if self.l_name && !self.found.path.is_empty() {
            m |= name_bit(&self.found.path);
        }
        if let Some(s) = &self.found.info.soname {
            m |= name_bit(s);
        }
        m
    }

    /// Records another path that led to this same file.
    fn add_also_opened(&mut self, path: Vec<u8>) {
        let mut all = self.also_opened.take().map(Vec::from).unwrap_or_default();
        all.push(path);
        self.also_opened = Some(all.into_boxed_slice());
    }

    /// Registers `name` as one this object was requested under.
    fn add_name(&mut self, name: Vec<u8>) {
        self.mask |= name_bit(&name);
        let mut names = std::mem::take(&mut self.names).into_vec();
        names.push(name.into_boxed_slice());
        self.names = names.into_boxed_slice();
    }
}

/// The bit of [`Obj::mask`] that stands for `name`: from its length and
/// its first and last eight bytes (the parts in which library names and
/// paths differ), a few instructions whatever its length.
fn name_bit(name: &[u8]) -> u64 {
    let word = |b: &[u8]| -> u64 {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let n = name.len();
    let (head, tail) = if n >= 8 {
        (word(&name[..8]), word(&name[n - 8..]))
    } else {
        (word(name), 0)
    };
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    1 << (h >> 58)
}

/// Where an edge leads in a root's trace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum To {
    Obj(usize),
    Missing(usize),
}

#[derive(Clone)]
struct RootTrace {
    objs: Vec<Obj>,
    missing: Vec<MissingInfo>,
    edges: Vec<TEdge>,
    /// (object index, index of the name in its `DT_NEEDED` list followed by
    /// its filters ([`needed_name`]), object it resolved to), for version
    /// checks: what each needed name resolved to.
    resolved_names: Vec<Triple>,
    /// (object, index of its `Verneed`, object that file name resolved
    /// to) for each version requirement against a library with version
    /// definitions: what the merge checks.
    version_links: Vec<Triple>,
    script: Option<Vec<u8>>,
    warnings: Vec<String>,
    /// How many of `warnings` (the first ones) are the root's own.
    root_warnings: usize,
    target: Option<Arc<Target>>,
    /// (requester index, name, search record) of names found by a search,
    /// kept only with `BuildOptions::keep_search`; a preload's search has
    /// [`PRELOAD_SEARCH`] for its requester.
    searches: Vec<(usize, Vec<u8>, Vec<crate::resolve::Searched>)>,
    /// Non-ELF files the run-time loads need (gconv configuration).
    extra_files: Vec<Vec<u8>>,
    /// For a plugin's trace, the program whose process it is traced in.
    host: Option<Arc<Host>>,
    /// Its audit modules' loads, kept only with `BuildOptions::keep_search`
    /// ([`DepGraph::audits`]).
    audits: Vec<AuditLoad>,
    /// `BuildOptions::keep_search`: the run-time loads keep their search
    /// records in [`Self::searches`] too, and their order in
    /// [`Self::runtime_log`].
    keep_search: bool,
    /// The run-time loads in the order the trace made them, and the
    /// `.note.dlopen` names no search found among them
    /// ([`DepGraph::runtime_log`]), kept only with `keep_search`.
    runtime_log: Vec<RtStep>,
    /// How many objects the start-up maps (the load list before the first
    /// run-time load; `usize::MAX` until the walk gets there).
    startup_objs: usize,
    /// Each run-time `dlopen` that mapped objects and did not fail: the
    /// object that opened it and the range of `objs` it mapped, the one
    /// opened first ([`DepGraph::dlopens`], for `--check-symbols`).
    dlopens: Vec<(usize, std::ops::Range<usize>)>,
}

/// One step of a trace's run-time loads ([`RootTrace::runtime_log`]).
#[derive(Debug, Clone)]
enum RtStep {
    /// An edge from the requester (index) under the name: found, already
    /// loaded, or missing; and whether a search found it (it may still be
    /// an object loaded before, by device and inode).
    Load(usize, Vec<u8>, bool),
    /// A `.note.dlopen` name no search found: requester, name, detail
    /// (priority, feature), the places tried, what follows
    /// ([`RuntimeMiss::outcome`]).
    Miss(
        usize,
        Vec<u8>,
        String,
        Vec<crate::resolve::Searched>,
        &'static str,
    ),
    /// A `dlopen` whose search found the file and which then failed: what
    /// the loader did, undone in the trace ([`RootTrace::undo`]).
    Failed(Box<RuntimeFailure>),
}

/// Where a trace stood before a run-time load ([`RootTrace::mark`]): what
/// [`RootTrace::undo`] cuts it back to when that `dlopen` fails.
struct Mark {
    objs: usize,
    missing: usize,
    edges: usize,
    resolved_names: usize,
    warnings: usize,
    searches: usize,
    runtime_log: usize,
    queue: usize,
    /// The objects registered for name matching only ([`Obj::latent`]).
    latent: Vec<usize>,
}

/// Three trace indices (requester, entry of a list, object), as `u32`s:
/// half the memory of `usize`s, and the templates keep theirs.
type Triple = (u32, u32, u32);

/// [`Triple`] from indices.
fn triple(a: usize, b: usize, c: usize) -> Triple {
    (index32(a), index32(b), index32(c))
}

/// Room a trace starts with, in objects (edges and resolutions: four
/// times as many): most programs load a dozen or two.
const TRACE_OBJS: usize = 16;

/// The requester of a preload's search in [`RootTrace::searches`]: the
/// loader preloads for no object, and the program may need the same name
/// itself (the graph keys it with an empty requester path,
/// [`DepGraph::searches`]).
const PRELOAD_SEARCH: usize = usize::MAX;

/// An edge of a trace. Most are named by an entry of the requester's
/// `DT_NEEDED` list, kept as its index: no copy of the name per edge (a
/// graph edge is made from it only when the merge adds one). 40 bytes:
/// indices as `u32` (a trace's load list is far shorter), the rare parts
/// boxed; the templates keep theirs for the whole build.
#[derive(Clone)]
struct TEdge {
    /// Index of the requester in the trace's objects.
    from: u32,
    /// [`To`], packed: the index, with [`TO_MISSING`] set for an entry of
    /// the trace's missing list.
    to: u32,
    via: Via,
    name: TName,
    /// Whose RPATH/RUNPATH, and the run-time detail (both rare).
    extra: Option<Box<EdgeExtra>>,
}

/// The bit of [`TEdge::to`] that marks a missing entry.
const TO_MISSING: u32 = 1 << 31;

/// The name of a [`TEdge`].
#[derive(Clone)]
enum TName {
    /// Entry `i` of the requester's `DT_NEEDED` list followed by its
    /// filters ([`needed_name`]).
    Needed(u32),
    Own(Box<[u8]>),
}

impl TName {
    fn needed(i: usize) -> TName {
        TName::Needed(index32(i))
    }

    fn own(name: &[u8]) -> TName {
        TName::Own(name.into())
    }
}

/// A trace index as stored in a [`TEdge`], an [`Obj`]'s loader or a
/// [`Triple`]. Past 2^31 − 1 it panics, which no trace reaches: each entry
/// takes memory (40 bytes an edge at least), and a file names at most
/// 65,536 libraries (its dynamic section is read up to 1 MiB).
fn index32(i: usize) -> u32 {
    let i = u32::try_from(i).expect("a trace has fewer than 2^31 entries");
    assert!(i < TO_MISSING, "a trace has fewer than 2^31 entries");
    i
}

impl RootTrace {
    /// Adds an edge from object `from` to `to`, labelled as `e` (whose
    /// ends are set here).
    fn push_edge(&mut self, from: usize, to: To, mut e: TEdge) {
        e.from = index32(from);
        e.to = match to {
            To::Obj(j) => index32(j),
            To::Missing(j) => index32(j) | TO_MISSING,
        };
        self.edges.push(e);
    }
}

impl RootTrace {
    /// Where the trace stands, for [`Self::undo`].
    fn mark(&self, queue: &[usize]) -> Mark {
        Mark {
            objs: self.objs.len(),
            missing: self.missing.len(),
            edges: self.edges.len(),
            resolved_names: self.resolved_names.len(),
            warnings: self.warnings.len(),
            searches: self.searches.len(),
            runtime_log: self.runtime_log.len(),
            queue: queue.len(),
            latent: (self.objs.iter().enumerate())
                .filter(|(_, o)| o.latent)
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// Undoes a failed `dlopen` as the loader does (`_dl_close_worker`
    /// from `_dl_open`'s error path): everything it brought in since `m`
    /// (objects, edges, missing names, warnings) goes. What it did to the
    /// objects there before stays, as in the loader: a name they were
    /// found under (`add_name_to_object` is not undone). Returns its
    /// searches, in order, when they are kept (the name not found last).
    fn undo(&mut self, m: &Mark, queue: &mut Vec<usize>) -> Vec<FailedSearch> {
        let mut searches = Vec::new();
        if self.keep_search {
            let path = |objs: &[Obj], k: usize| match k {
                PRELOAD_SEARCH => Vec::new(),
                k => objs[k].found.path.clone(),
            };
            for (k, name, searched) in self.searches.drain(m.searches..) {
                searches.push(FailedSearch {
                    requester: path(&self.objs, k),
                    name,
                    searched,
                    found: true,
                });
            }
            for miss in &self.missing[m.missing..] {
                searches.push(FailedSearch {
                    requester: miss.needed_by.clone(),
                    name: miss.soname.clone(),
                    searched: miss.searched.clone(),
                    found: false,
                });
            }
        }
        self.objs.truncate(m.objs);
        self.missing.truncate(m.missing);
        self.edges.truncate(m.edges);
        self.resolved_names.truncate(m.resolved_names);
        self.warnings.truncate(m.warnings);
        self.searches.truncate(m.searches);
        self.runtime_log.truncate(m.runtime_log);
        queue.truncate(m.queue);
        for &i in &m.latent {
            self.objs[i].latent = true;
        }
        searches
    }

    /// The chain of object `i` ([`chain_into`]), ended, in a plugin's
    /// trace, by its host program.
    fn chain_into(&self, i: usize, v: &mut Vec<Arc<ChainLink>>) {
        chain_into(&self.objs, i, v);
        if let Some(h) = &self.host {
            v.push(h.link.clone());
        }
    }

    /// The chain a `dlopen` searches with, asked by object `i`: the
    /// caller's ([`Self::chain_into`]), or under musl, which searches as if
    /// the main program asked (`load_library(file, head)`), the program's:
    /// the host's in a plugin's trace.
    fn dlopen_chain_into(&self, target: &Target, i: usize, v: &mut Vec<Arc<ChainLink>>) {
        match (&self.host, target.flavor) {
            (Some(h), Flavor::Musl) => {
                v.clear();
                v.push(h.link.clone());
            }
            (None, Flavor::Musl) => self.chain_into(0, v),
            _ => self.chain_into(i, v),
        }
    }

    /// In a plugin's trace, the object the host program loaded at start-up
    /// that answers `name` (asked by object `cur`), placed in the trace,
    /// and how it was loaded (the edge's detail).
    fn host_loaded(
        &mut self,
        name: &[u8],
        cur: usize,
        queue: &mut Vec<usize>,
    ) -> Option<(usize, String)> {
        let h = self.host.clone()?;
        let k = find_loaded_for(&h.target, &h.objs, name)?;
        let (j, _) = self.place(&h.objs[k].found, name, cur, queue);
        Some((j, format!("by {} at start-up", show(&h.program))))
    }

    /// The object `f` (found for `name`, asked by object `cur`) is in the
    /// trace as: the one of the same file already there (the name added to
    /// it, and `f`'s path when it differs), else a new one queued for its
    /// own names, its parse warnings added. Returns its index and whether
    /// it was there.
    fn place(
        &mut self,
        f: &Arc<Found>,
        name: &[u8],
        cur: usize,
        queue: &mut Vec<usize>,
    ) -> (usize, bool) {
        if let Some(j) = same_file(&self.objs, f) {
            self.objs[j].add_name(name.to_vec());
            self.objs[j].latent = false;
            if f.path != self.objs[j].found.path {
                self.objs[j].add_also_opened(f.path.clone());
            }
            return (j, true);
        }
        let w = f
            .info
            .warnings
            .iter()
            .map(|w| format!("{}: {w}", show(&f.path)));
        self.warnings.extend(w);
        // Cloned only for a new object: the count is shared by every
        // thread's traces.
        self.objs
            .push(Obj::library(f.clone(), name.to_vec(), Some(cur)));
        queue.push(self.objs.len() - 1);
        (self.objs.len() - 1, false)
    }
}

impl TEdge {
    fn new(name: TName, via: Via, owner: Option<Vec<u8>>, detail: Option<String>) -> TEdge {
        let extra = (owner.is_some() || detail.is_some()).then(|| Box::new((owner, detail)));
        TEdge {
            from: 0,
            to: 0,
            via,
            name,
            extra,
        }
    }

    /// Index of the requester.
    fn from(&self) -> usize {
        self.from as usize
    }

    /// Where the edge leads.
    fn to(&self) -> To {
        let j = (self.to & !TO_MISSING) as usize;
        if self.to & TO_MISSING == 0 {
            To::Obj(j)
        } else {
            To::Missing(j)
        }
    }

    /// The name, given the trace's objects (the requester is [`TEdge::from`]).
    fn name<'a>(&'a self, objs: &'a [Obj]) -> &'a [u8] {
        match &self.name {
            TName::Needed(i) => needed_name(&objs[self.from()], *i as usize),
            TName::Own(n) => n,
        }
    }

    /// The graph's edge.
    fn edge(&self, name: &[u8]) -> Edge {
        Edge::with_extra(name, self.via, self.extra.clone())
    }
}

fn link_for(found: &Found, origin: Vec<u8>) -> Arc<ChainLink> {
    Arc::new(ChainLink {
        name: found.path.clone(),
        rpath: found.info.effective_rpath().map(<[u8]>::to_vec),
        runpath: found.info.effective_runpath().map(<[u8]>::to_vec),
        origin,
        nodeflib: found.info.nodeflib(),
    })
}

const DEFAULT_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Fewer roots than this (the usual run: one program) are traced on the
/// calling thread and the thread pool is never started: starting it, a
/// second allocator heap per thread and handing files between threads
/// cost more than parallel reads save. Measured on the bench machine
/// (2 cores, warm page cache): one root of 5 or of 91 objects, 4 and 16
/// roots were 10-20% faster on one thread; at 48 roots both were even;
/// at 128 roots and beyond the pool wins (the union of `/usr/bin`: 40%).
/// (With the first root's file on the disk, helper threads read ahead
/// while the calling thread traces: `Resolver::reading_ahead_from_disk`.)
pub const PARALLEL_ROOTS: usize = 32;

/// `rayon::join` when `parallel`, else both on the calling thread.
fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if parallel {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// A hash set with foldhash (SipHash showed in profiles).
type FastSet<T> = HashSet<T, foldhash::quality::RandomState>;

/// Builds the merged graph of `roots` (in-root paths, as given).
pub fn build(resolver: &Resolver<'_>, roots: &[Vec<u8>], opts: &BuildOptions) -> Result<DepGraph> {
    let mut g = DepGraph {
        cwd: resolver.options().cwd.clone(),
        ..DepGraph::default()
    };
    if let Some(p) = resolver.cache_problem() {
        g.warnings.push(p);
    }
    g.preloads = resolver.preloads().to_vec();
    let mut pending: Vec<(Vec<u8>, Via)> = roots.iter().map(|r| (r.clone(), Via::Root)).collect();
    pending.extend(opts.include_roots.iter().map(|r| (r.clone(), Via::Include)));
    // A small run is done on the calling thread alone: the pool is never
    // started (see `PARALLEL_ROOTS`).
    let parallel = pending.len() >= opts.parallel_roots.unwrap_or(PARALLEL_ROOTS);
    // The pool thread that read each of the first roots ahead.
    let mut read_by: Vec<Option<usize>> = Vec::new();
    if parallel {
        // Open and parse the roots, and transitively the libraries the
        // ld.so.cache names for them, on every core first: the traces
        // below then mostly find their files parsed.
        let prefetch: Vec<Vec<u8>> = pending.iter().map(|(p, _)| p.clone()).collect();
        read_by = resolver.prefetch_closure(&prefetch);
        timings::mark("read-ahead");
    }
    // Sized once from what was read ahead (grown by doubling, the node and
    // edge vectors touched twice their memory in page faults): a few
    // edges per object is what real closures have (3.5 on the union run).
    let objects = resolver.files_read() + pending.len();
    g.graph.reserve_nodes(objects);
    g.graph.reserve_edges(4 * objects);
    let mut script_edges: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Membership of `pending` and of the roots traced so far (many roots:
    // a linear scan per root would be quadratic).
    let mut queued: FastSet<Vec<u8>> = pending.iter().map(|(p, _)| p.clone()).collect();
    let mut traced: FastSet<Vec<u8>> = FastSet::default();
    traced.reserve(pending.len());
    let mut memo = MergeMemo::default();
    memo.nodes.reserve(objects);
    memo.roots.reserve(objects);
    let mut templates = Templates {
        included: Included::new(
            resolver,
            opts.include_roots.iter().chain(&opts.plugin_roots),
        ),
        ..Templates::default()
    };
    // The plugins (included libraries, `plugin_roots`) wait for the
    // programs, whose start-up objects may answer their names (`Included`);
    // those are collected while merging. Each keeps its place among the
    // others, and so does each root.
    let mut deferred: Vec<(Vec<u8>, Via)> = Vec::new();
    let mut deferred_read_by: Vec<Option<usize>> = Vec::new();
    if !templates.included.libraries.is_empty() {
        // `plugin_roots` are roots (`closure verify`'s); included files
        // that are also roots stay roots.
        let plugin = |(p, via): &(Vec<u8>, Via)| {
            templates.included.libraries.contains(p)
                && (*via == Via::Include || !opts.plugin_roots.is_empty())
        };
        if pending.iter().any(|e| !plugin(e)) {
            let mut kept = Vec::with_capacity(pending.len());
            let mut kept_read_by = Vec::with_capacity(read_by.len());
            for (k, e) in std::mem::take(&mut pending).into_iter().enumerate() {
                let hint = read_by.get(k).copied().flatten();
                if plugin(&e) {
                    deferred.push(e);
                    deferred_read_by.push(hint);
                } else {
                    kept.push(e);
                    kept_read_by.push(hint);
                }
            }
            pending = kept;
            read_by = kept_read_by;
        }
    }
    let collect = !deferred.is_empty();
    let mut offered: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut hosts: Vec<Host> = Vec::new();
    // Whether any root is a glibc program (they read /etc/ld.so.preload).
    let mut glibc = false;
    let mut i = 0;
    loop {
        while i < pending.len() {
            // The roots queued so far are traced on all cores, then merged one
            // by one in queue order: the graph is the same as a sequential
            // walk's. Roots a trace adds (script interpreters, hwcaps
            // variants) form the next batch.
            let mut batch: Vec<(Vec<u8>, Via)> = Vec::new();
            let mut batch_read_by: Vec<Option<usize>> = Vec::new();
            for (k, (root, via)) in pending.iter().enumerate().skip(i) {
                if traced.insert(root.clone()) {
                    batch.push((root.clone(), *via));
                    batch_read_by.push(read_by.get(k).copied().flatten());
                }
            }
            i = pending.len();
            // Each trace is merged as soon as it and those before it are done,
            // while the other roots are still being traced: the merge (serial)
            // overlaps the traces (parallel). The order of merging, and so the
            // graph, is the queue order whatever the timing.
            // Returns the merged trace for the caller to free.
            let mut merge_one =
                |(root, via): (Vec<u8>, Via), trace: Result<Traced>| -> Result<Traced> {
                    let mut trace = match trace? {
                        Traced::Own(t) => t,
                        Traced::Shared(mut sh) => {
                            note_target(&mut g, sh.template.target.as_deref());
                            glibc |= is_glibc(sh.template.target.as_deref());
                            for o in sh.template.objs[1..].iter().chain([&sh.root]) {
                                for v in &o.found.variants {
                                    if queued.insert(v.path.clone()) {
                                        pending.push((v.path.clone(), Via::Include));
                                    }
                                }
                            }
                            g.root_via.push(via);
                            g.root_musl.push(is_musl(sh.template.target.as_deref()));
                            g.root_rtld_alone
                                .push(rtld_alone(sh.template.target.as_deref()));
                            g.root_check_match_2_41
                                .push(check_match_2_41(sh.template.target.as_deref()));
                            if collect && via == Via::Root {
                                offer(&mut offered, &mut hosts, &root, &sh.root, &sh.template);
                            }
                            merge_shared(&mut g, root, &mut sh, &mut memo);
                            return Ok(Traced::Shared(sh));
                        }
                    };
                    // A script's interpreter (and for `env NAME`, NAME) is traced as a
                    // program of its own; one that cannot be found is a missing node.
                    if let Some(line) = trace.script.clone() {
                        for step in script_programs(resolver, &line, opts) {
                            match step {
                                Ok(prog) => {
                                    script_edges.push((root.clone(), prog.clone()));
                                    if queued.insert(prog.clone()) {
                                        pending.push((prog, via));
                                    }
                                }
                                Err((name, why)) if via == Via::Include => {
                                    // An included script is data the user asked for; its
                                    // interpreter being absent is worth a warning only.
                                    trace.warnings.push(format!("{}: {why}", show(&name)));
                                }
                                Err((name, why)) => {
                                    trace.missing.push(MissingInfo {
                                        soname: name.clone(),
                                        needed_by: root.clone(),
                                        searched: Vec::new(),
                                        notes: vec![why],
                                        fatal: None,
                                    });
                                    trace.push_edge(
                                        0,
                                        To::Missing(trace.missing.len() - 1),
                                        TEdge::new(TName::own(&name), Via::Interpreter, None, None),
                                    );
                                }
                            }
                        }
                    }
                    note_target(&mut g, trace.target.as_deref());
                    glibc |= is_glibc(trace.target.as_deref());
                    // A glibc-hwcaps variant replaces its baseline on a capable CPU, so
                    // its own dependencies must be there too: trace it like an
                    // included library.
                    for o in &trace.objs {
                        for v in &o.found.variants {
                            if queued.insert(v.path.clone()) {
                                pending.push((v.path.clone(), Via::Include));
                            }
                        }
                    }
                    g.root_via.push(via);
                    g.root_musl.push(is_musl(trace.target.as_deref()));
                    g.root_rtld_alone.push(rtld_alone(trace.target.as_deref()));
                    g.root_check_match_2_41
                        .push(check_match_2_41(trace.target.as_deref()));
                    if collect && via == Via::Root {
                        offer(&mut offered, &mut hosts, &root, &trace.objs[0], &trace);
                    }
                    merge(&mut g, root, &trace, &mut memo);
                    // Freed as soon as it is merged, by the thread that built it
                    // (`merge_ready`): later traces reuse its memory instead of
                    // touching fresh pages.
                    Ok(Traced::Own(trace))
                };
            if batch.len() < 2 || !parallel {
                // Not worth starting the thread pool for; helper threads read
                // ahead only when the files are on the disk.
                let batch_roots: Vec<Vec<u8>> = batch.iter().map(|(r, _)| r.clone()).collect();
                resolver.reading_ahead_from_disk(&batch_roots, || -> Result<()> {
                    for (root, via) in batch {
                        let trace = trace_root(resolver, &root, opts, &templates);
                        drop(merge_one((root, via), trace)?);
                    }
                    Ok(())
                })?;
            } else {
                // Each pool thread traces the roots it read ahead, in queue
                // order (their parses are in its caches: read by the other
                // thread, each went from core to core, line by line), then
                // takes the others' from the far end (ARCHITECTURE.md,
                // thirty-sixth stop).
                // The pool's first thread merges, after each trace it finishes,
                // every finished trace next in order; the calling thread merges
                // what is left once all are traced. So no thread waits for
                // traces, none is woken for each of them, and the graph and the
                // merge's memos stay in one core's cache: merged by whichever
                // thread finished, they went from core to core, line by line
                // (ARCHITECTURE.md, thirty-fifth stop).
                let ready = Mutex::new(Ready {
                    done: BTreeMap::new(),
                    next: 0,
                });
                let merger = Mutex::new(Merger {
                    merge: &mut merge_one,
                    result: Ok(()),
                });
                let merged: Merged = (0..rayon::current_num_threads())
                    .map(|_| Padded(Mutex::new(Vec::new())))
                    .collect();
                let shares: Shares = deal(&batch_read_by, rayon::current_num_threads())
                    .into_iter()
                    .map(|l| Padded(Mutex::new(l)))
                    .collect();
                rayon::in_place_scope(|s| {
                    let (templates, ready, merger, batch) = (&templates, &ready, &merger, &batch);
                    let (merged, shares) = (&merged, &shares);
                    // One taker per pool thread (a thread that runs two runs
                    // them one after the other; none waits for a given thread).
                    for _ in 0..shares.len() {
                        s.spawn(move |_| {
                            let me = rayon::current_thread_index().unwrap_or(0);
                            while let Some(i) = take(shares, me) {
                                if let Some(slot) = merged.get(me) {
                                    drop(std::mem::take(&mut *lock(slot)));
                                }
                                let trace = trace_root(resolver, &batch[i].0, opts, templates);
                                lock(ready).done.insert(i, (Some(me), trace));
                                if me == 0 {
                                    merge_ready(ready, merger, batch, merged);
                                }
                            }
                        });
                    }
                });
                merge_ready(&ready, &merger, &batch, &merged);
                debug_assert_eq!(lock(&ready).next, batch.len());
                rayon::spawn(move || drop(merged));
                let merged = merger
                    .into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .result;
                merged?;
            }
        }
        if deferred.is_empty() {
            break;
        }
        templates
            .included
            .offer_programs(std::mem::take(&mut offered), std::mem::take(&mut hosts));
        read_by.resize(pending.len(), None);
        read_by.append(&mut deferred_read_by);
        pending.append(&mut deferred);
    }
    timings::mark("traces and merge");
    memo.finish(&mut g, parallel);
    add_elsewhere_hints(resolver, &mut g);
    for (script, prog) in script_edges {
        if let (Some(&a), Some(&b)) = (g.index.get(&script), g.index.get(&prog)) {
            g.graph
                .add_edge(a, b, Edge::new(&prog, Via::Interpreter, None, None));
        }
    }
    if let Some(p) = resolver.cache_problem() {
        if !g.warnings.contains(&p) {
            g.warnings.push(p);
        }
    }
    for w in resolver.target_warnings() {
        if !g.warnings.contains(&w) {
            g.warnings.push(w);
        }
    }
    if glibc {
        g.warnings.extend(preload_warning(resolver));
    }

    g.missing_versions.sort();
    g.missing_versions.dedup();
    g.refused = g
        .graph
        .node_weights()
        .filter_map(|n| {
            Some(Refused {
                object: n.path.clone(),
                why: RefusedWhy::Verneed(n.info.as_ref()?.unsupported_verneed()?),
            })
        })
        .collect();
    let refused = isa_refusals(resolver, &g);
    g.refused.extend(refused);
    let warnings = isa_variant_warnings(resolver, &g);
    g.warnings.extend(warnings);
    g.refused.sort();
    g.refused.dedup();
    g.warnings.sort();
    g.warnings.dedup();
    // What only the build needed (templates, merge memo: thousands of small
    // values) is freed on the pool, not on the way to the report.
    if parallel {
        rayon::spawn(move || drop((templates, queued, traced, pending)));
    }
    timings::mark("graph");
    Ok(g)
}

/// Whether `t` is a glibc target.
fn is_glibc(t: Option<&Target>) -> bool {
    t.is_some_and(|t| t.flavor == Flavor::Glibc)
}

fn is_musl(t: Option<&Target>) -> bool {
    t.is_some_and(|t| t.flavor == Flavor::Musl)
}

fn rtld_alone(t: Option<&Target>) -> bool {
    t.is_some_and(|t| t.rtld_listed_alone)
}

fn check_match_2_41(t: Option<&Target>) -> bool {
    t.is_some_and(|t| t.check_match_2_41)
}

/// A warning when the root has an `/etc/ld.so.preload` that names
/// anything: glibc's loader loads those objects into every program, and
/// each glibc trace holds them ([`add_preloads`], by secure mode's rules
/// with `--secure`). A staged root gets no
/// `/etc/ld.so.preload`: its programs will not preload them.
fn preload_warning(resolver: &Resolver<'_>) -> Option<String> {
    let names = resolver.preloads();
    let in_file: Vec<String> = names
        .iter()
        .filter(|(_, from)| *from == crate::resolve::PRELOAD_FILE)
        .map(|(n, _)| show(n))
        .collect();
    if in_file.is_empty() {
        return None;
    }
    let list = in_file.join(", ");
    Some(format!(
        "/etc/ld.so.preload names {list}: glibc's loader preloads each into every program, \
         and the closure holds them (found via \"preload\"); the file itself is not staged, \
         and a container root should not ship it"
    ))
}

/// Records the first target seen (the graph's architecture) and every
/// target's system directories.
fn note_target(g: &mut DepGraph, t: Option<&Target>) {
    if let Some(t) = t {
        if g.goarch.is_none() {
            g.goarch = Some(t.arch.goarch);
            g.big_endian = t.ident.big_endian;
        }
        // Every root of one target names the same directories: cloned
        // only the first time (it was ≈ 2,600 clones dropped at once on
        // the union run).
        for d in &t.system_dirs {
            if !g.system_dirs.contains(d) {
                g.system_dirs.insert(d.clone());
            }
        }
    }
}

/// A program a script runs, or (name, why it cannot be used).
type ScriptStep = Result<Vec<u8>, (Vec<u8>, String)>;

/// The programs a `#!` line runs: the interpreter, and for
/// `/usr/bin/env NAME` also the first `NAME` on the search path inside the
/// sysroot. `Err((name, why))` for one that cannot be used.
fn script_programs(resolver: &Resolver<'_>, line: &[u8], opts: &BuildOptions) -> Vec<ScriptStep> {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let Some(interp) = words.next().map(<[u8]>::to_vec) else {
        return vec![Err((
            b"#!".to_vec(),
            "the #! line names no interpreter".into(),
        ))];
    };
    let mut out = vec![match resolver.load_path(&interp) {
        Ok(_) => Ok(interp.clone()),
        Err(why) => Err((
            interp.clone(),
            format!(
                "the script interpreter {} cannot be used: {why}",
                show(&interp)
            ),
        )),
    }];
    let base = interp.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if base != b"env" {
        return out;
    }
    let Some(name) = words.find(|w| !w.starts_with(b"-")) else {
        return out;
    };
    let path: Vec<Vec<u8>> = opts
        .script_path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.iter().map(|s| s.as_bytes().to_vec()).collect());
    let found = path.iter().find_map(|dir| {
        let mut cand = dir.clone();
        cand.push(b'/');
        cand.extend_from_slice(name);
        resolver.load_path(&cand).ok().map(|_| cand)
    });
    out.push(found.ok_or_else(|| {
        (
            name.to_vec(),
            format!(
                "{} (run through {}) is not on the search path {}",
                show(name),
                show(&interp),
                path.iter().map(|p| show(p)).collect::<Vec<_>>().join(":")
            ),
        )
    }));
    out
}

/// A root's trace: its own, or the trace of an earlier root of the same
/// shape with this root in place of that one.
enum Traced {
    Own(Box<RootTrace>),
    Shared(Shared),
}

/// A root traced by substitution into a template (see [`template_key`]).
struct Shared {
    /// This root, as index 0 of the template's load list.
    root: Obj,
    /// Its own warnings.
    root_warnings: Vec<String>,
    /// Version requirements paired up, with this root's own.
    version_links: Vec<Triple>,
    /// The trace of the first root of this shape (its `resolved_names`
    /// kept).
    template: Arc<RootTrace>,
}

/// What the traces of one build share: templates by shape
/// ([`template_key`]) and the included libraries' SONAMEs ([`Included`]).
#[derive(Default)]
struct Templates {
    map: Mutex<std::collections::HashMap<Vec<u8>, Arc<RootTrace>, foldhash::quality::RandomState>>,
    included: Included,
}

/// The libraries given with `--include` (and [`BuildOptions::plugin_roots`]),
/// as plugins a process loads at run time. Each is traced in the process
/// of its [`Host`] when there is one. glibc answers a `DT_NEEDED` name with
/// an object already loaded whose SONAME it is, before any search, and
/// plugins count on that: the JDK's launcher opens `lib/server/libjvm.so`
/// by path, and `lib/libjava.so`, `lib/libzip.so`, … then need
/// `libjvm.so`, which their search (`$ORIGIN`, the default directories)
/// never finds. So in the trace of an included library (no `PT_INTERP`)
/// of a glibc target, a name neither the host nor the search answers is
/// answered by an object with that SONAME that another program root
/// loads at start-up (the first such program, in queue order), else by
/// the first included library with it, with a warning that says which and
/// on what condition; everywhere else, and for a name some search finds,
/// nothing changes. The programs are traced first for this ([`build`]
/// defers the plugins).
#[derive(Default)]
struct Included {
    /// SONAME → the object that answers it.
    sonames: BTreeMap<Vec<u8>, Provider>,
    /// The included roots without `PT_INTERP` that are libraries (not
    /// static PIEs, which have none either).
    libraries: FastSet<Vec<u8>>,
    /// The program the plugins of each kind are traced in the process of
    /// ([`Host`]), the first of that kind in queue order.
    hosts: Vec<Arc<Host>>,
}

/// The process a plugin is opened in: the first program root of the
/// plugin's kind (class, byte order, machine) with its libc (musl's for a
/// plugin that needs `libc.so`, else glibc's; else the first of the kind),
/// whose loader maps the plugin. glibc's `_dl_map_object`
/// answers a name with an object already loaded before it searches
/// (`_dl_name_match_p`: a name it was loaded under, its path; else its
/// SONAME), so the program's start-up objects answer the plugin's names
/// first, whatever file a search would find; and when the requester has no
/// `DT_RUNPATH`, the search tries the main program's `DT_RPATH` after the
/// requester's chain (in any namespace), so the program ends every chain of
/// the plugin's trace. musl answers the names reserved for libc and the
/// names the program's objects were loaded under, and searches each
/// object's RPATH or RUNPATH up its `needed_by` chain to the program (the
/// one a `dlopen` is made for), so the same holds there; it answers no
/// name with a SONAME, so musl programs offer none.
struct Host {
    /// Its in-root path.
    program: Vec<u8>,
    /// Its chain link (its RPATH, RUNPATH and `$ORIGIN`).
    link: Arc<ChainLink>,
    /// What it loads at start-up, in load order, the program first: the
    /// loaded list a plugin's names are matched against.
    objs: Vec<Obj>,
    /// Class, byte order and machine.
    kind: (bool, bool, u16),
    /// Its loader: the one that maps its plugins.
    target: Arc<Target>,
}

/// Who answers a SONAME for the plugins.
enum Provider {
    /// An included library (in-root path).
    Included(Vec<u8>),
    /// An object (in-root path) a program root (`program`) loads at start-up.
    Program { path: Vec<u8>, program: Vec<u8> },
}

impl Provider {
    fn path(&self) -> &[u8] {
        match self {
            Provider::Included(p) | Provider::Program { path: p, .. } => p,
        }
    }
}

impl Included {
    fn new<'a>(resolver: &Resolver<'_>, roots: impl Iterator<Item = &'a Vec<u8>>) -> Included {
        let mut inc = Included::default();
        for r in roots {
            let Ok(f) = resolver.load_path(r) else {
                continue;
            };
            if let Some(s) = &f.info.soname {
                inc.sonames
                    .entry(s.clone())
                    .or_insert_with(|| Provider::Included(r.clone()));
            }
            // A static PIE has no `PT_INTERP` either, but is a program.
            let executable = f.info.pie() || f.info.ident.e_type == ET_EXEC;
            if f.info.interp.is_none() && f.info.is_dynamic() && !executable {
                inc.libraries.insert(r.clone());
            }
        }
        inc
    }

    /// Whether `root`'s trace is a plugin's: it may take names from a host
    /// or the providers.
    fn applies(&self, root: &[u8]) -> bool {
        !self.libraries.is_empty()
            && (!self.sonames.is_empty() || !self.hosts.is_empty())
            && self.libraries.contains(root)
    }

    /// The program whose process a plugin like `like` is traced in: the
    /// first of its kind with musl's loader when it needs musl's `libc.so`,
    /// else the first with glibc's, else the first of its kind.
    fn host_for(&self, like: &ElfInfo) -> Option<Arc<Host>> {
        let i = &like.ident;
        let kind = (i.is_64, i.big_endian, i.machine);
        let musl = like.needed.iter().any(|n| n.as_slice() == b"libc.so");
        let of = |flavor: Flavor| {
            (self.hosts.iter()).find(|h| h.kind == kind && h.target.flavor == flavor)
        };
        let preferred = if musl { Flavor::Musl } else { Flavor::Glibc };
        of(preferred)
            .or_else(|| self.hosts.iter().find(|h| h.kind == kind))
            .cloned()
    }

    /// Offers the start-up objects of the program roots (SONAME, path,
    /// program), first come first served, ahead of the included libraries,
    /// and the hosts.
    fn offer_programs(&mut self, offered: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>, hosts: Vec<Host>) {
        self.hosts = hosts.into_iter().map(Arc::new).collect();
        let mut taken: BTreeSet<Vec<u8>> = BTreeSet::new();
        for (soname, path, program) in offered {
            if taken.insert(soname.clone()) {
                self.sonames
                    .insert(soname, Provider::Program { path, program });
            }
        }
    }

    /// The object answering SONAME `name`, when it is an ELF file of
    /// `like`'s kind (class, byte order, machine) that can be loaded, and
    /// the warning that says so.
    fn answer(
        &self,
        resolver: &Resolver<'_>,
        name: &[u8],
        like: &ElfInfo,
    ) -> Option<(Found, String)> {
        let provider = self.sonames.get(name)?;
        let f = resolver.load_path(provider.path()).ok()?;
        let (a, b) = (&f.info.ident, &like.ident);
        if a.is_64 != b.is_64 || a.big_endian != b.big_endian || a.machine != b.machine {
            return None;
        }
        let head = format!(
            "{}: no search finds it for the plugins that need it (libraries loaded at run \
             time: included, or in `closure verify` loaded by no program); taken to be {}",
            show(name),
            show(provider.path())
        );
        let w = match provider {
            Provider::Program { program, .. } => format!(
                "{head}, which {} loads at start-up: it answers the name for the plugins that \
                 program opens",
                show(program)
            ),
            Provider::Included(_) => format!(
                "{head}, the plugin with that SONAME, which answers the name only once the \
                 process has loaded it (as the JDK's launcher loads libjvm.so by path)"
            ),
        };
        Some((
            Found {
                via: Via::Loaded,
                ..f
            },
            w,
        ))
    }
}

/// Adds what program root `root` (`main`, traced as `t`: a template's
/// trace has another root first) loads at start-up (a glibc program's,
/// not its run-time loads nor its audit modules' namespaces) to `offered`
/// as (SONAME, path, program), and the program to `hosts` when it is the
/// first of its kind, for [`Included::offer_programs`].
fn offer(
    offered: &mut Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    hosts: &mut Vec<Host>,
    root: &[u8],
    main: &Obj,
    t: &RootTrace,
) {
    let Some(target) = t.target.clone() else {
        return;
    };
    if main.found.info.interp.is_none() {
        return;
    }
    let glibc = target.flavor == Flavor::Glibc;
    // Objects some start-up edge leads to (not only run-time loads).
    let mut startup = vec![false; t.objs.len()];
    for e in &t.edges {
        if let To::Obj(j) = e.to() {
            if !e.via.outside_link_map() {
                startup[j] = true;
            }
        }
    }
    let loaded = || {
        t.objs
            .iter()
            .zip(startup.iter())
            .skip(1)
            .filter(|(o, s)| **s && !o.latent)
            .map(|(o, _)| o)
    };
    // (musl answers no name with a SONAME.)
    for o in loaded().filter(|_| glibc) {
        if let Some(soname) = &o.found.info.soname {
            offered.push((soname.clone(), o.found.path.clone(), root.to_vec()));
        }
    }
    let i = &main.found.info.ident;
    let kind = (i.is_64, i.big_endian, i.machine);
    if hosts
        .iter()
        .all(|h| h.kind != kind || h.target.flavor != target.flavor)
    {
        hosts.push(Host {
            program: root.to_vec(),
            link: main.link.clone(),
            objs: std::iter::once(main).chain(loaded()).cloned().collect(),
            kind,
            target,
        });
    }
}

/// One root's load list, with its version requirements paired up (on the
/// tracing core, not in the serial merge). A root of the same shape as one
/// traced before is not traced again: its trace is that one's with the
/// root swapped.
fn trace_root(
    resolver: &Resolver<'_>,
    root: &[u8],
    opts: &BuildOptions,
    templates: &Templates,
) -> Result<Traced> {
    if let Some(s) = shared_trace(resolver, root, opts, templates) {
        return Ok(Traced::Shared(s));
    }
    let mut t = load_list(resolver, root, opts, &templates.included)?;
    t.version_links = version_links(&t);
    let key = (t.script.is_none() && template_fits(&t) && !templates.included.applies(root))
        .then(|| template_key(resolver, &t.objs[0].found, opts))
        .flatten();
    let Some(key) = key else {
        t.resolved_names = Vec::new();
        return Ok(Traced::Own(Box::new(t)));
    };
    // A template lives as long as the build: no room left from growth.
    t.objs.shrink_to_fit();
    t.edges.shrink_to_fit();
    t.resolved_names.shrink_to_fit();
    let t = Arc::new(t);
    lock(&templates.map).entry(key).or_insert_with(|| t.clone());
    Ok(Traced::Shared(Shared {
        root: t.objs[0].clone(),
        root_warnings: t.warnings[..t.root_warnings].to_vec(),
        version_links: t.version_links.clone(),
        template: t,
    }))
}

/// Locks a mutex, ignoring poisoning (every insert is one call).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Finished traces not merged yet, by queue position (with the pool
/// thread that made each), and the position the merge takes next.
struct Ready {
    done: BTreeMap<usize, (Option<usize>, Result<Traced>)>,
    next: usize,
}

/// The merge of one batch and its first error.
struct Merger<'a, F> {
    merge: &'a mut F,
    result: Result<()>,
}

/// Per pool thread, the merged traces it made, for it to free when it
/// takes its next root. A block freed by a thread other than the one that
/// allocated it goes back to that thread's heap through an atomic list on
/// its page: ≈ 5,000 such frees on the union run when the merging thread
/// freed every trace, each moving a line between cores.
type Merged = Box<[Padded<Mutex<Vec<Traced>>>]>;

/// Per pool thread, the batch positions it traces first; a thread with
/// none left takes from the back of another's.
type Shares = Box<[Padded<Mutex<VecDeque<usize>>>]>;

/// Deals the positions of a batch to `threads` pool threads: each root to
/// the thread that read it ahead (`read_by`), the others in turn, every
/// share in queue order.
fn deal(read_by: &[Option<usize>], threads: usize) -> Vec<VecDeque<usize>> {
    let threads = threads.max(1);
    let mut shares = vec![VecDeque::new(); threads];
    let mut turn = 0;
    for (i, t) in read_by.iter().enumerate() {
        let t = match t {
            Some(t) => t % threads,
            None => {
                turn = (turn + 1) % threads;
                turn
            }
        };
        shares[t].push_back(i);
    }
    shares
}

/// The next position for thread `me`: the front of its own share, else
/// the back of the next share after it that has any (the positions its
/// owner would reach last).
fn take(shares: &[Padded<Mutex<VecDeque<usize>>>], me: usize) -> Option<usize> {
    let n = shares.len();
    // Its own share let go of first (the guard ends with the statement):
    // a thread that held it while it waited for another's could wait for
    // good on one doing the same.
    let own = lock(&shares[me % n]).pop_front();
    own.or_else(|| (1..n).find_map(|d| lock(&shares[(me + d) % n]).pop_back()))
}

/// Merges the finished traces that are next in queue order, unless another
/// thread is merging: that thread looks again after it lets go of the
/// merge, so a trace finished meanwhile is not left behind.
fn merge_ready<F>(
    ready: &Mutex<Ready>,
    merger: &Mutex<Merger<'_, F>>,
    batch: &[(Vec<u8>, Via)],
    merged: &Merged,
) where
    F: FnMut((Vec<u8>, Via), Result<Traced>) -> Result<Traced>,
{
    loop {
        let mut m = match merger.try_lock() {
            Ok(m) => m,
            Err(std::sync::TryLockError::WouldBlock) => return,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        };
        loop {
            let taken = {
                let mut r = lock(ready);
                let n = r.next;
                let t = r.done.remove(&n);
                if t.is_some() {
                    r.next += 1;
                }
                t.map(|t| (n, t))
            };
            let Some((n, (maker, trace))) = taken else {
                break;
            };
            if m.result.is_ok() {
                match (m.merge)(batch[n].clone(), trace) {
                    Ok(t) => match maker.and_then(|k| merged.get(k)) {
                        Some(slot) if maker != rayon::current_thread_index() => lock(slot).push(t),
                        _ => drop(t),
                    },
                    Err(e) => m.result = Err(e),
                }
            }
        }
        drop(m);
        let r = lock(ready);
        if !r.done.contains_key(&r.next) {
            return;
        }
    }
}

/// The root's own warnings, as its trace lists them.
fn root_warnings(root: &[u8], info: &ElfInfo) -> Vec<String> {
    info.warnings
        .iter()
        .map(|w| format!("{}: {w}", show(root)))
        .collect()
}

/// The shape of a root whose trace depends on nothing of the root but
/// this: target (identity and interpreter), SONAME, `DT_NEEDED` and filter
/// lists. Two such roots load the same objects in the same order, by the
/// same searches, with the same run-time additions. `None` for a root
/// whose path can show up in its trace other than as object 0 and the
/// requester of its own names: a search path (RPATH/RUNPATH), `-z
/// nodefaultlib`, a name with `/`, `.note.dlopen` entries, library names
/// for `--dlopen-strings`, a use of the libgcc_s symbols, audit modules
/// (its `$ORIGIN` in an `LD_AUDIT` name), or an `LD_LIBRARY_PATH` (its
/// `$ORIGIN`); or a static
/// program. Its own version requirements are paired per root.
fn template_key(resolver: &Resolver<'_>, found: &Found, opts: &BuildOptions) -> Option<Vec<u8>> {
    let i = &found.info;
    let names = i.needed.iter().chain(&i.filters);
    if !(i.is_dynamic() || i.interp.is_some())
        || i.rpath.is_some()
        || i.runpath.is_some()
        || i.nodeflib()
        || i.audit.is_some()
        || resolver.options().audit.is_some()
        || !i.dlopen.is_empty()
        || resolver.options().library_path.is_some()
        || names.clone().any(|n| n.contains(&b'/'))
        || (opts.libgcc && found.unwind.is_some())
        || (opts.dlopen_strings && !resolver.dlopen_strings(found).is_empty())
    {
        return None;
    }
    let mut k = Vec::with_capacity(256);
    let push = |k: &mut Vec<u8>, b: &[u8]| {
        k.extend_from_slice(&(b.len() as u64).to_le_bytes());
        k.extend_from_slice(b);
    };
    let id = &i.ident;
    k.push(u8::from(id.is_64) | u8::from(id.big_endian) << 1 | u8::from(i.is_dynamic()) << 2);
    k.extend_from_slice(&[id.osabi, id.abiversion]);
    k.extend_from_slice(&id.e_type.to_le_bytes());
    k.extend_from_slice(&id.machine.to_le_bytes());
    k.extend_from_slice(&id.e_flags.to_le_bytes());
    k.push(u8::from(i.interp.is_some()));
    push(&mut k, i.interp.as_deref().unwrap_or_default());
    k.push(u8::from(i.soname.is_some()));
    push(&mut k, i.soname.as_deref().unwrap_or_default());
    k.extend_from_slice(&(i.needed.len() as u64).to_le_bytes());
    for n in names {
        push(&mut k, n);
    }
    Some(k)
}

/// Whether a trace can serve other roots: nothing in it refers back to
/// the root (object 0) except as a requester.
fn template_fits(t: &RootTrace) -> bool {
    let root = &t.objs[0];
    root.names.is_empty()
        && root.also_opened.is_none()
        && !t.edges.iter().any(|e| e.to() == To::Obj(0))
}

/// The trace of `root` from a template of its shape, if one is ready.
fn shared_trace(
    resolver: &Resolver<'_>,
    root: &[u8],
    opts: &BuildOptions,
    templates: &Templates,
) -> Option<Shared> {
    if templates.included.applies(root) {
        return None;
    }
    let found = resolver.load_path(root).ok()?;
    let key = template_key(resolver, &found, opts)?;
    let template = lock(&templates.map).get(&key).cloned()?;
    // The root must be none of the template's other objects (it would be
    // found again under its own identity).
    if template.objs[1..]
        .iter()
        .any(|o| o.found.file_id == found.file_id)
    {
        return None;
    }
    let root_warnings = root_warnings(root, &found.info);
    let exe_origin = dirname(found.canonical.as_os_str().as_encoded_bytes());
    let link = link_for(&found, exe_origin);
    let obj = Obj::linked(
        Arc::new(found),
        NodeKind::Root,
        Names::default(),
        false,
        link,
    );
    let musl = template
        .target
        .as_ref()
        .is_some_and(|x| x.flavor == Flavor::Musl);
    let mut version_links = Vec::new();
    if !musl {
        let own = &template.resolved_names;
        let by_requester = ByRequester::new(own);
        links_of(
            0,
            &obj,
            own,
            &by_requester,
            &template.objs,
            &mut version_links,
        );
    }
    version_links.extend(template.version_links.iter().filter(|(k, _, _)| *k != 0));
    Some(Shared {
        root: obj,
        root_warnings,
        version_links,
        template,
    })
}

/// Each `Verneed` of each object paired with the object its file name
/// resolved to for that requester (else for any requester), when that
/// object has version definitions and lacks one of the versions (the
/// only pairs the merge has anything to report for). musl never checks
/// version names.
fn version_links(t: &RootTrace) -> Vec<Triple> {
    if t.target.as_ref().is_some_and(|x| x.flavor == Flavor::Musl) {
        return Vec::new();
    }
    let by_requester = ByRequester::new(&t.resolved_names);
    let mut out = Vec::new();
    for (k, o) in t.objs.iter().enumerate() {
        links_of(k, o, &t.resolved_names, &by_requester, &t.objs, &mut out);
    }
    out
}

/// A trace's resolutions grouped by requester (stable: each requester's
/// in trace order), so each object looks only at its own names first.
struct ByRequester(Vec<Triple>);

impl ByRequester {
    fn new(resolved: &[Triple]) -> Self {
        let mut v = resolved.to_vec();
        v.sort_by_key(|r| r.0);
        ByRequester(v)
    }

    /// The resolutions of requester `k`, in trace order.
    fn of(&self, k: usize) -> &[Triple] {
        let k = index32(k);
        let lo = self.0.partition_point(|r| r.0 < k);
        let hi = self.0.partition_point(|r| r.0 <= k);
        &self.0[lo..hi]
    }
}

/// [`version_links`] of object `k` (`o`), for the resolutions of a trace,
/// added to `out`.
fn links_of(
    k: usize,
    o: &Obj,
    resolved: &[Triple],
    by_requester: &ByRequester,
    objs: &[Obj],
    out: &mut Vec<Triple>,
) {
    let name = |from: u32, i: u32| needed_name(&objs[from as usize], i as usize);
    let own = by_requester.of(k);
    for (vn_index, vn) in o.found.info.verneed.iter().enumerate() {
        let Some(&(_, _, j)) = own
            .iter()
            .find(|&&(from, i, _)| name(from, i) == vn.file.as_slice())
            .or_else(|| {
                resolved
                    .iter()
                    .find(|&&(from, i, _)| name(from, i) == vn.file.as_slice())
            })
        else {
            continue; // the library itself is missing: reported already
        };
        let lib = &objs[j as usize].found;
        if lib.info.verdef.is_empty() {
            continue; // "no version information available": a warning only
        }
        // A requirement met in full is left out here, on the tracing core:
        // the serial merge checks only what can be missing.
        if o.found.requirement_met_by(vn_index, lib) {
            continue;
        }
        out.push(triple(k, vn_index, j as usize));
    }
}

/// Name `i` of `o`'s `DT_NEEDED` list followed by its filters.
fn needed_name(o: &Obj, i: usize) -> &[u8] {
    let info = &o.found.info;
    match info.needed.get(i) {
        Some(n) => n,
        None => &info.filters[i - info.needed.len()],
    }
}

fn load_list(
    resolver: &Resolver<'_>,
    root: &[u8],
    opts: &BuildOptions,
    included: &Included,
) -> Result<RootTrace> {
    let fs = resolver.fs();
    let root_path = crate::resolve::bytes_path(root);
    let found = match resolver.load_path(root) {
        Ok(f) => f,
        Err(msg) => {
            // A script or a non-ELF file is not an error when it exists.
            let file = fs.open(&root_path).map_err(|e| Error::BadRoot {
                path: root_path.clone(),
                reason: e.to_string(),
            })?;
            let parsed = crate::elf::parse_file(&file.file);
            return match parsed {
                Err(ParseError::NotElf(NotElf::Script(line))) => Ok(RootTrace {
                    objs: vec![Obj::linked(
                        Arc::new(Found {
                            path: root.to_vec(),
                            canonical: file.resolved.canonical,
                            hops: file.resolved.hops,
                            file_id: (0, 0),
                            size: file.meta.len(),
                            via: Via::Root,
                            owner: None,
                            info: Arc::new(empty_info()),
                            variants: Vec::new(),
                            link: std::sync::OnceLock::new(),
                            unwind: None,
                        }),
                        NodeKind::Root,
                        Names::default(),
                        false,
                        Arc::new(ChainLink {
                            name: root.to_vec(),
                            rpath: None,
                            runpath: None,
                            origin: Vec::new(),
                            nodeflib: false,
                        }),
                    )],
                    missing: Vec::new(),
                    edges: Vec::new(),
                    resolved_names: Vec::new(),
                    version_links: Vec::new(),
                    script: Some(line),
                    warnings: Vec::new(),
                    root_warnings: 0,
                    target: None,
                    extra_files: Vec::new(),
                    searches: Vec::new(),
                    host: None,
                    audits: Vec::new(),
                    keep_search: false,
                    runtime_log: Vec::new(),
                    startup_objs: 1,
                    dlopens: Vec::new(),
                }),
                _ => Err(Error::BadRoot {
                    path: root_path,
                    reason: msg,
                }),
            };
        }
    };
    let info = found.info.clone();
    let mut t = RootTrace {
        objs: Vec::with_capacity(TRACE_OBJS),
        missing: Vec::new(),
        edges: Vec::with_capacity(4 * TRACE_OBJS),
        resolved_names: Vec::with_capacity(4 * TRACE_OBJS),
        version_links: Vec::new(),
        script: None,
        target: None,
        extra_files: Vec::new(),
        searches: Vec::new(),
        warnings: root_warnings(root, &info),
        root_warnings: info.warnings.len(),
        host: None,
        audits: Vec::new(),
        keep_search: opts.keep_search,
        runtime_log: Vec::new(),
        startup_objs: usize::MAX,
        dlopens: Vec::new(),
    };
    let exe_origin = dirname(found.canonical.as_os_str().as_encoded_bytes());
    let link = link_for(&found, exe_origin);
    t.objs.push(Obj::linked(
        Arc::new(found),
        NodeKind::Root,
        Names::default(),
        false,
        link,
    ));
    if !info.is_dynamic() && info.interp.is_none() {
        return Ok(t); // static: nothing to resolve
    }
    // An included library is mapped by its host program's loader (musl's
    // for a musl program, whatever libc the library was built against).
    let host = (included.applies(root))
        .then(|| included.host_for(&info))
        .flatten();
    let target = match &host {
        Some(h) if h.target.flavor == Flavor::Musl => h.target.clone(),
        _ => resolver.shared_target(&info),
    };
    t.target = Some(target.clone());
    t.extra_files.extend(target.config_files.iter().cloned());

    // The interpreter: the program's own, or for a library given as a root
    // the architecture's usual one (what `ld.so --list lib.so` reports).
    let interp = (info.interp.clone())
        .or_else(|| target.interp.clone())
        .unwrap_or_else(|| target.arch.glibc_interp.as_bytes().to_vec());
    match resolver.load_interpreter(&interp) {
        Ok(f) => {
            let names: Names = match &f.info.soname {
                Some(s) => Box::new([interp.as_slice().into(), s.as_slice().into()]),
                None => Box::new([interp.as_slice().into()]),
            };
            let link = f.link();
            let latent = info.interp.is_none();
            if !latent {
                // The kernel maps the program's interpreter whatever it needs.
                t.push_edge(
                    0,
                    To::Obj(1),
                    TEdge::new(TName::own(&interp), Via::Interpreter, None, None),
                );
            }
            t.objs.push(Obj {
                latent,
                ..Obj::linked(f, NodeKind::Interpreter, names, true, link)
            });
        }
        Err(reason) if info.interp.is_some() => {
            t.missing.push(MissingInfo {
                soname: interp.clone(),
                needed_by: root.to_vec(),
                searched: Vec::new(),
                notes: vec![format!(
                    "the interpreter {} cannot be used: {reason}",
                    show(&interp)
                )],
                fatal: None,
            });
            t.push_edge(
                0,
                To::Missing(t.missing.len() - 1),
                TEdge::new(TName::own(&interp), Via::Interpreter, None, None),
            );
        }
        Err(_) => {}
    }

    // Breadth-first over the load list; then what the loader or libc only
    // loads at run time (dlopen notes, NSS, libgcc_s), whose own
    // dependencies go through the same walk.
    let mut q = 0;
    let mut queue = vec![0usize];
    add_preloads(resolver, &target, &mut t, &mut queue, opts.keep_search);
    let plugin = included.applies(root);
    t.host = host;
    // The requester's chain, refilled per requester.
    let mut chain: Vec<Arc<ChainLink>> = Vec::new();
    // Run-time loads one at a time: each `.note.dlopen` entry, then each
    // `--dlopen-strings` name, of each object in turn, then NSS, libgcc_s
    // and gconv, only once what the one before loaded is walked, as one
    // `dlopen` after another. A `dlopen` in flight (its mark, what it is)
    // stops at its first failure and is undone.
    let mut run_time = RunTimeLoads::default();
    let mut in_flight: Option<(Mark, Opening)> = None;
    let mut failed: Option<Failure> = None;
    // Whether the process's stack is executable once it has started.
    let mut stack_exec = None;
    loop {
        if failed.is_some() {
            q = queue.len();
        }
        if q >= queue.len() {
            if let Some((mark, op)) = in_flight.take() {
                let why = failed
                    .take()
                    .or_else(|| late_failure(resolver, &target, &t, mark.objs));
                if let Some(why) = why {
                    let searches = t.undo(&mark, &mut queue);
                    q = queue.len();
                    run_time.failed(&mut t, &op, &why, searches);
                } else {
                    t.dlopens.push((op.requester(), mark.objs..t.objs.len()));
                }
            }
            if t.startup_objs == usize::MAX {
                t.startup_objs = t.objs.len();
            }
            let mark = t.mark(&queue);
            let stack_exec = *stack_exec.get_or_insert_with(|| startup_stack_exec(&t));
            match run_time.step(
                Cx {
                    resolver,
                    target: &target,
                    opts,
                },
                &mut t,
                &mut queue,
            ) {
                Step::Done => {}
                Step::Other => continue,
                Step::Opened(op) => {
                    if t.objs.len() > mark.objs {
                        // (Not an object a plugin's host loaded at start-up:
                        // the loader maps nothing then.)
                        let o = &t.objs[mark.objs];
                        let host = t.host.as_ref().is_some_and(|h| {
                            h.objs.iter().any(|h| h.found.file_id == o.found.file_id)
                        });
                        if !host {
                            failed = mapped_refusal(&target, o, stack_exec);
                        }
                        in_flight = Some((mark, op));
                    }
                    continue;
                }
            }
            if q >= queue.len() {
                break;
            }
        }
        let cur = queue[q];
        q += 1;
        let info = t.objs[cur].found.info.clone();
        // The requester's chain does not change while its names are
        // resolved (objects are only appended).
        t.chain_into(cur, &mut chain);
        for (ni, name) in info.needed.iter().chain(&info.filters).enumerate() {
            if failed.is_some() {
                break;
            }
            // Loaded by the host program at start-up, before the plugin?
            if let Some((j, detail)) = t.host_loaded(name, cur, &mut queue) {
                t.push_edge(
                    cur,
                    To::Obj(j),
                    TEdge::new(TName::needed(ni), Via::Loaded, None, Some(detail)),
                );
                t.resolved_names.push(triple(cur, ni, j));
                continue;
            }
            // Already loaded under this name?
            if let Some(j) = find_loaded_for(&target, &t.objs, name) {
                t.objs[j].latent = false;
                t.push_edge(
                    cur,
                    To::Obj(j),
                    TEdge::new(TName::needed(ni), Via::Loaded, None, None),
                );
                t.resolved_names.push(triple(cur, ni, j));
                continue;
            }
            let res = resolver.resolve(
                &target,
                &Request {
                    name,
                    chain: &chain,
                    needed: true,
                    preload: false,
                    audit: false,
                },
            );
            if plugin && target.flavor == Flavor::Glibc && matches!(res.outcome, Outcome::Missing) {
                if let Some((f, w)) = included.answer(resolver, name, &t.objs[0].found.info) {
                    let (j, _) = t.place(&Arc::new(f), name, cur, &mut queue);
                    if !t.warnings.contains(&w) {
                        t.warnings.push(w);
                    }
                    t.push_edge(
                        cur,
                        To::Obj(j),
                        TEdge::new(
                            TName::needed(ni),
                            Via::Loaded,
                            None,
                            Some("by SONAME, when the process has loaded it".into()),
                        ),
                    );
                    if opts.keep_search {
                        t.searches.push((cur, name.clone(), res.searched.clone()));
                    }
                    t.resolved_names.push(triple(cur, ni, j));
                    continue;
                }
            }
            match &res.outcome {
                Outcome::Found(f) => {
                    let (j, existing) = t.place(f, name, cur, &mut queue);
                    if !existing && in_flight.is_some() {
                        let stack_exec = stack_exec.unwrap_or(true);
                        failed = mapped_refusal(&target, &t.objs[j], stack_exec);
                    }
                    let f = &t.objs[j].found;
                    let via = if existing && j != cur {
                        res.searched.last().map(|s| s.via).unwrap_or(Via::Loaded)
                    } else {
                        f.via
                    };
                    let owner = res.searched.last().and_then(|s| s.owner.clone());
                    t.push_edge(
                        cur,
                        To::Obj(j),
                        TEdge::new(TName::needed(ni), via, owner, None),
                    );
                    if opts.keep_search {
                        t.searches.push((cur, name.clone(), res.searched.clone()));
                    }
                    t.resolved_names.push(triple(cur, ni, j));
                }
                Outcome::Missing | Outcome::Fatal { .. } => {
                    let res = (*res).clone();
                    let fatal = match res.outcome {
                        Outcome::Fatal { path, reason } => Some((path, reason)),
                        _ => None,
                    };
                    let mut notes = res.notes;
                    notes.extend(hints(resolver, &target, name));
                    t.missing.push(MissingInfo {
                        soname: name.clone(),
                        needed_by: t.objs[cur].found.path.clone(),
                        searched: res.searched,
                        notes,
                        fatal,
                    });
                    t.push_edge(
                        cur,
                        To::Missing(t.missing.len() - 1),
                        TEdge::new(TName::needed(ni), Via::Default, None, None),
                    );
                    // A `dlopen` stops at the first name it cannot load.
                    if in_flight.is_some() {
                        failed = Some(not_loaded(&t.missing[t.missing.len() - 1]));
                    }
                }
                Outcome::Ignored(why) => t
                    .warnings
                    .push(format!("{}: {why}", show(&t.objs[cur].found.path))),
            }
        }
    }
    if plugin {
        plugin_refusals(resolver, &target, &mut t);
    }
    add_audit(resolver, &target, &mut t, opts.keep_search);
    Ok(t)
}

/// The preloaded objects ([`Resolver::preloads`]: the simulated
/// `LD_PRELOAD`, then `/etc/ld.so.preload`), loaded the way glibc's `rtld`
/// does (`do_preload`): after the program (and its interpreter), before
/// the breadth-first walk, which takes them after the program in order;
/// each searched as if the program needed it (the program is its loader,
/// so its own dependencies see its RPATH and then the program's). musl's
/// way differs (below). A name already loaded loads nothing; one that
/// cannot be loaded is ignored with a warning, as the loader ignores it.
/// In secure mode (checked against the loader) glibc ignores `LD_PRELOAD`
/// names with `/` or of 255 bytes or more, and searches a name without `/`
/// with no ld.so.cache, taking only set-user-ID files (`Request::preload`);
/// a path with `/` from `/etc/ld.so.preload` is opened as it is. musl
/// ignores `LD_PRELOAD` then, a set-user-ID library by name included (also
/// checked against the loader).
fn add_preloads(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &mut RootTrace,
    queue: &mut Vec<usize>,
    keep_search: bool,
) {
    let names = resolver.preloads();
    // musl reads only `LD_PRELOAD`, and loads each name for no requester:
    // `LD_LIBRARY_PATH`, then its path file or default directories (no
    // RPATH of the program), and the preload's own dependencies see its
    // search path alone (`load_preload`, `load_library(name, 0)`).
    let musl = target.flavor == Flavor::Musl;
    let edge = |name: &[u8], from: &str| {
        TEdge::new(
            TName::own(name),
            Via::Preload,
            None,
            Some(format!("from {from}")),
        )
    };
    let secure = resolver.options().secure;
    for (name, from) in names.iter() {
        if musl && *from != crate::resolve::PRELOAD_ENV {
            continue;
        }
        // Secure mode: musl ignores `LD_PRELOAD`; glibc takes from it only
        // names without `/`, shorter than `NAME_MAX` (`dso_name_valid_for_suid`;
        // `/etc/ld.so.preload` has no such rule). The loader says nothing.
        if secure && *from == crate::resolve::PRELOAD_ENV {
            let why = if musl {
                Some("musl ignores LD_PRELOAD in secure mode")
            } else if name.contains(&b'/') {
                Some("in secure mode glibc takes only names without '/' from LD_PRELOAD")
            } else if name.len() >= SECURE_NAME_LIMIT {
                Some("in secure mode glibc takes only names shorter than 255 bytes from LD_PRELOAD")
            } else {
                None
            };
            if let Some(why) = why {
                t.warnings.push(format!(
                    "object '{}' from {from} is ignored: {why}",
                    show(name)
                ));
                continue;
            }
        }
        let edge = |name: &[u8]| edge(name, from);
        if let Some(j) = find_loaded_for(target, &t.objs, name) {
            t.objs[j].latent = false;
            t.push_edge(0, To::Obj(j), edge(name));
            continue;
        }
        let chain = if musl {
            vec![Arc::new(ChainLink {
                name: name.clone(),
                rpath: None,
                runpath: None,
                origin: b"/".to_vec(),
                nodeflib: false,
            })]
        } else {
            chain_of(&t.objs, 0)
        };
        let res = resolver.resolve(
            target,
            &Request {
                name,
                chain: &chain,
                needed: false,
                preload: true,
                audit: false,
            },
        );
        let mut f = match &res.outcome {
            Outcome::Found(f) => {
                if keep_search {
                    t.searches
                        .push((PRELOAD_SEARCH, name.clone(), res.searched.clone()));
                }
                f.clone()
            }
            Outcome::Fatal { reason, .. } => {
                if keep_search {
                    t.searches
                        .push((PRELOAD_SEARCH, name.clone(), res.searched.clone()));
                }
                t.warnings.push(preload_ignored(name, from, reason));
                continue;
            }
            Outcome::Missing | Outcome::Ignored(_) => {
                if keep_search {
                    t.searches
                        .push((PRELOAD_SEARCH, name.clone(), res.searched.clone()));
                }
                t.warnings.push(preload_ignored(
                    name,
                    from,
                    "cannot open shared object file",
                ));
                continue;
            }
        };
        let j = match same_file(&t.objs, &f) {
            Some(j) => {
                t.objs[j].add_name(name.clone());
                j
            }
            None => {
                Arc::make_mut(&mut f).via = Via::Preload;
                t.objs
                    .push(Obj::library(f, name.clone(), (!musl).then_some(0)));
                queue.push(t.objs.len() - 1);
                t.objs.len() - 1
            }
        };
        t.push_edge(0, To::Obj(j), edge(name));
    }
}

/// glibc's `SECURE_NAME_LIMIT` (`NAME_MAX`): in secure mode an `LD_PRELOAD`
/// name this long or longer is ignored.
const SECURE_NAME_LIMIT: usize = 255;

/// The loader's message for a preload it ignores (the same for every
/// program: one warning however many roots).
fn preload_ignored(name: &[u8], from: &str, why: &str) -> String {
    format!(
        "object '{}' from {from} cannot be preloaded ({why}): ignored",
        show(name)
    )
}

fn empty_info() -> ElfInfo {
    ElfInfo {
        ident: crate::elf::Ident {
            is_64: false,
            big_endian: false,
            osabi: 0,
            abiversion: 0,
            e_type: 0,
            machine: 0,
            e_flags: 0,
        },
        interp: None,
        dynamic: false,
        soname: None,
        needed: Vec::new(),
        rpath: None,
        runpath: None,
        filters: Vec::new(),
        flags: 0,
        flags_1: 0,
        audit: None,
        verneed: Vec::new(),
        verdef: Vec::new(),
        warnings: Vec::new(),
        tables: crate::elf::DynTables::default(),
        dlopen: Vec::new(),
        x86_isa_needed: 0,
        exec_stack: false,
        verdef_index: Default::default(),
        verneed_met: Default::default(),
    }
}

/// The "already loaded" check of the target's loader.
fn find_loaded_for(target: &Target, objs: &[Obj], name: &[u8]) -> Option<usize> {
    if target.flavor == Flavor::Glibc {
        return find_loaded(objs, name);
    }
    // musl: names reserved for libc itself and the interpreter's own path
    // are the loader; otherwise only the exact short name used before.
    let interp = objs.iter().position(|o| o.kind == NodeKind::Interpreter);
    if is_musl_reserved(name) || target.interp.as_deref() == Some(name) {
        if let Some(i) = interp {
            return Some(i);
        }
    }
    objs.iter()
        .position(|o| o.names.iter().any(|n| **n == *name))
}

/// musl's reserved names: `lib` + one of c, pthread, rt, m, dl, util, xnet + `.`…
fn is_musl_reserved(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"lib") else {
        return false;
    };
    let stem = rest.split(|&b| b == b'.').next().unwrap_or_default();
    rest.len() > stem.len()
        && [&b"c"[..], b"pthread", b"rt", b"m", b"dl", b"util", b"xnet"].contains(&stem)
}

/// glibc's `_dl_name_match_p` plus the SONAME check of `_dl_map_object`.
fn find_loaded(objs: &[Obj], name: &[u8]) -> Option<usize> {
    let bit = name_bit(name);
    objs.iter().position(|o| {
        debug_assert_eq!(o.mask, o.names_mask(), "{}", show(&o.found.path));
        o.mask & bit != 0
            && ((o.l_name && !o.found.path.is_empty() && o.found.path == name)
                || o.names.iter().any(|n| **n == *name)
                || o.found.info.soname.as_deref() == Some(name))
    })
}

/// The object of `objs` that is `f`'s file (device and inode), which the
/// loader takes instead of mapping the file again: not the program (object
/// 0), whose file it maps again (checked against glibc: a PIE program
/// named by its own `DT_NEEDED` is refused as a PIE library).
fn same_file(objs: &[Obj], f: &Found) -> Option<usize> {
    objs.iter()
        .skip(1)
        .position(|o| o.found.file_id == f.file_id)
        .map(|j| j + 1)
}

/// The requester and its chain of first loaders up to the main program.
fn chain_of(objs: &[Obj], i: usize) -> Vec<Arc<ChainLink>> {
    let mut v = Vec::new();
    chain_into(objs, i, &mut v);
    v
}

/// [`chain_of`] into `v` (cleared first).
fn chain_into(objs: &[Obj], mut i: usize, v: &mut Vec<Arc<ChainLink>>) {
    v.clear();
    loop {
        v.push(objs[i].link.clone());
        match objs[i].loader {
            Some(l) if v.len() <= objs.len() => i = l.get() as usize - 1,
            _ => break,
        }
    }
    if i != 0 {
        v.push(objs[0].link.clone());
    }
}

/// Places in the sysroot where a missing name does exist, for hints.
fn hints(resolver: &Resolver<'_>, target: &Target, name: &[u8]) -> Vec<String> {
    if name.contains(&b'/') || target.flavor == Flavor::Musl {
        return Vec::new();
    }
    let mut out = Vec::new();
    let conf = resolver.ld_conf();
    for dir in &conf.dirs {
        let mut p = dir.as_os_str().as_encoded_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        if resolver.load_path(&p).is_ok() {
            out.push(format!(
                "{} exists in {}, which /etc/ld.so.conf lists, but /etc/ld.so.cache does not name it: the cache is stale or missing (run ldconfig in the root)",
                show(name),
                dir.display()
            ));
        }
    }
    out
}

/// Most directory entries looked at when searching the sysroot for a
/// missing library elsewhere.
const HINT_WALK_LIMIT: usize = 400_000;

/// For each missing name, the places in the sysroot where a file of that
/// name exists outside every directory searched (a hint where it is).
fn add_elsewhere_hints(resolver: &Resolver<'_>, g: &mut DepGraph) {
    let wanted: BTreeSet<Vec<u8>> = g
        .missing()
        .into_iter()
        .filter_map(|n| n.missing.as_ref())
        .filter(|m| m.fatal.is_none() && !m.soname.contains(&b'/'))
        .map(|m| m.soname.clone())
        .collect();
    if wanted.is_empty() {
        return;
    }
    let fs = resolver.fs();
    let mut hits: Vec<(Vec<u8>, std::path::PathBuf)> = Vec::new();
    let walk = crate::rootfs::TreeWalk {
        one_file_system: true,
        skip_unreadable: true,
        skip_vanished: true,
        limit: HINT_WALK_LIMIT,
    };
    let entries = fs
        .walk_tree_with(std::path::Path::new("/"), walk)
        .unwrap_or_default();
    for (p, kind) in entries {
        let name = p.file_name().map_or(&b""[..], |n| n.as_encoded_bytes());
        if wanted.contains(name) && kind != crate::rootfs::EntryKind::Dir {
            hits.push((name.to_vec(), p));
        }
    }
    let ids: Vec<_> = g.index.values().copied().collect();
    for i in ids {
        let Some(m) = g.graph[i].missing.as_mut() else {
            continue;
        };
        for (name, p) in &hits {
            if *name != m.soname {
                continue;
            }
            let dir = p
                .parent()
                .map(|d| d.as_os_str().as_encoded_bytes().to_vec());
            // (A file the search tried is no news: a run-time load's
            // first alternative found, whose `dlopen` failed, say.)
            let file = p.as_os_str().as_encoded_bytes();
            let searched = m.searched.iter().any(|s| {
                Some(&s.dir) == dir.as_ref() || s.candidates.iter().any(|(c, _)| c == file)
            });
            // In secure mode the RUNPATH may well name the directory: the
            // loader dropped it (a note above says so).
            let dropped = resolver.options().secure
                && m.notes
                    .iter()
                    .any(|n| n.contains("is not searched: in secure mode"));
            let advice = if dropped {
                "secure mode drops the $ORIGIN search path that would lead there: use an absolute RUNPATH, or list the directory in ld.so.conf and run ldconfig"
            } else {
                "add its directory to the RUNPATH, or to ld.so.conf and run ldconfig"
            };
            if !searched {
                m.notes.push(format!(
                    "{} exists at {}, which is not searched for {}: {advice}",
                    show(name),
                    p.display(),
                    show(&m.needed_by)
                ));
            }
        }
    }
}

fn node_for(found: &Found, kind: NodeKind) -> Node {
    Node {
        canonical: Some(found.canonical.clone()),
        hops: found.hops.clone(),
        size: found.size,
        via: found.via,
        info: Some(found.info.clone()),
        variants: found.variants.clone(),
        ..Node::new(kind, found.path.clone())
    }
}

/// What merging remembers from root to root (hash lookups instead of the
/// graph's ordered maps and sets, which stay the output's order).
#[derive(Default)]
struct MergeMemo {
    /// (object, requirement index, library) whose version needs were
    /// checked: the answer is the same under every root.
    versions_checked: FastSet<(NodeIndex, usize, NodeIndex)>,
    /// Node by path (or missing-entry key): `g.index`, hashed; it becomes
    /// `g.index` at the end.
    nodes: std::collections::HashMap<Vec<u8>, NodeIndex, foldhash::quality::RandomState>,
    /// The roots of each node (by node index), in merge order: ascending,
    /// so they become each node's ordered set in one go at the end.
    roots: Vec<Vec<usize>>,
    /// Templates merged once, by address (the `Arc` kept so the address
    /// is not reused), with the nodes of their objects.
    templates: std::collections::HashMap<
        usize,
        (Arc<RootTrace>, Arc<TemplateNodes>),
        foldhash::quality::RandomState,
    >,
}

impl MergeMemo {
    fn add_root(&mut self, node: NodeIndex, root: usize) {
        let i = node.index();
        if self.roots.len() <= i {
            self.roots.resize_with(i + 1, Vec::new);
        }
        if self.roots[i].last() != Some(&root) {
            self.roots[i].push(root);
        }
    }

    /// Moves what was collected into the graph: each node's roots and the
    /// index, built beside each other on the pool when `parallel`. Every
    /// set is built from sorted input in one go.
    fn finish(self, g: &mut DepGraph, parallel: bool) {
        let MergeMemo {
            versions_checked,
            nodes,
            roots,
            templates,
        } = self;
        let (index, roots) = join(
            parallel,
            || nodes.into_iter().collect::<BTreeMap<Vec<u8>, NodeIndex>>(),
            || {
                roots
                    .into_iter()
                    .map(|r| r.into_iter().collect::<BTreeSet<usize>>())
                    .collect::<Vec<_>>()
            },
        );
        for (i, roots) in roots.into_iter().enumerate() {
            if let Some(n) = g.graph.node_weight_mut(NodeIndex::new(i)) {
                if n.roots.is_empty() {
                    n.roots = roots;
                } else {
                    n.roots.extend(roots);
                }
            }
        }
        if g.index.is_empty() {
            g.index = index;
        } else {
            g.index.extend(index);
        }
        let garbage = (templates, versions_checked);
        if parallel {
            rayon::spawn(move || drop(garbage));
        }
    }
}

/// Merges one root's trace; returns the nodes of its objects and of its
/// missing entries (by index), for later roots of the same template.
fn merge(g: &mut DepGraph, root: Vec<u8>, t: &RootTrace, memo: &mut MergeMemo) -> TemplateNodes {
    let root_idx = g.roots.len();
    g.roots.push(root);
    g.warnings.extend(t.warnings.iter().cloned());
    g.extra_files.extend(t.extra_files.iter().cloned());
    for (k, name, searched) in &t.searches {
        let requester = match *k {
            PRELOAD_SEARCH => Vec::new(),
            k => t.objs[k].found.path.clone(),
        };
        g.searches
            .insert((root_idx, requester, name.clone()), searched.clone());
    }
    if !t.audits.is_empty() {
        g.audits.insert(root_idx, t.audits.clone());
    }
    if !t.runtime_log.is_empty() {
        let path = |k: usize| t.objs[k].found.path.clone();
        g.runtime_log.insert(
            root_idx,
            t.runtime_log
                .iter()
                .map(|step| match step {
                    RtStep::Load(k, name, searched) => RuntimeStep::Load {
                        requester: path(*k),
                        name: name.clone(),
                        searched: *searched,
                    },
                    RtStep::Failed(f) => RuntimeStep::Failed((**f).clone()),
                    RtStep::Miss(k, name, detail, searched, outcome) => {
                        RuntimeStep::Miss(RuntimeMiss {
                            requester: path(*k),
                            name: name.clone(),
                            via: Via::DlopenNote,
                            detail: detail.clone(),
                            searched: searched.clone(),
                            outcome,
                        })
                    }
                })
                .collect(),
        );
    }
    let mut obj_nodes: Vec<Option<NodeIndex>> = Vec::with_capacity(t.objs.len());
    for (k, o) in t.objs.iter().enumerate() {
        if o.latent {
            obj_nodes.push(None);
            continue;
        }
        let idx = obj_node(g, memo, o, root_idx, t.script.as_ref());
        if k == 0 {
            g.root_nodes.push(idx);
        }
        obj_nodes.push(Some(idx));
    }
    let missing_nodes: Vec<NodeIndex> = t
        .missing
        .iter()
        .map(|m| missing_node(g, memo, m, root_idx))
        .collect();
    for edge in &t.edges {
        let (Some(a), Some(b)) = (
            obj_nodes[edge.from()],
            match edge.to() {
                To::Obj(j) => obj_nodes[j],
                To::Missing(j) => Some(missing_nodes[j]),
            },
        ) else {
            continue;
        };
        add_edge(g, a, b, edge.name(&t.objs), edge);
    }
    // Symbol versions: each Verneed names a DT_NEEDED string; check it
    // against the object that string resolved to for this requester.
    for &(k, vn_index, j) in &t.version_links {
        let (k, vn_index, j) = (k as usize, vn_index as usize, j as usize);
        check_versions(
            g,
            memo,
            (&t.objs[k], obj_nodes[k]),
            vn_index,
            (&t.objs[j], obj_nodes[j]),
        );
    }
    add_dlopens(g, root_idx, t, &obj_nodes, None);
    TemplateNodes {
        objs: obj_nodes,
        missing: missing_nodes,
    }
}

/// Records the `dlopen`s of root `root_idx`'s trace `t` that map objects
/// outside its start-up ([`DepGraph::dlopens`]), with `nodes` the nodes of
/// its objects; `renamed` gives the root's own node and object when the
/// trace is another root's template. In a plugin's trace, the plugin's own
/// load is one (what its start-up part maps), and objects its host program
/// loaded at start-up are not mapped again.
fn add_dlopens(
    g: &mut DepGraph,
    root_idx: usize,
    t: &RootTrace,
    nodes: &[Option<NodeIndex>],
    renamed: Option<(NodeIndex, &Obj)>,
) {
    if t.dlopens.is_empty() && t.host.is_none() {
        return;
    }
    let node = |k: usize| match (k, renamed) {
        (0, Some((n, _))) => Some(n),
        _ => nodes[k],
    };
    let obj = |k: usize| match (k, renamed) {
        (0, Some((_, o))) => o,
        _ => &t.objs[k],
    };
    let path = |k: usize| obj(k).found.path.clone();
    // (Objects its host program loaded at start-up, in a plugin's trace.)
    let hosts = |k: usize| {
        let id = obj(k).found.file_id;
        (t.host.as_ref()).is_some_and(|h| h.objs.iter().any(|o| o.found.file_id == id))
    };
    let push = |g: &mut DepGraph, by: Vec<u8>, range: std::ops::Range<usize>| {
        if range.is_empty() || hosts(range.start) {
            return;
        }
        let mapped: Vec<NodeIndex> = range.filter(|&k| !hosts(k)).filter_map(node).collect();
        if !mapped.is_empty() {
            g.dlopens.push(Dlopen {
                root: root_idx,
                by,
                mapped,
            });
        }
    };
    if let Some(h) = &t.host {
        g.plugin_hosts.insert(root_idx, h.program.clone());
        push(g, h.program.clone(), 0..t.startup_objs.min(t.objs.len()));
    }
    for (from, range) in &t.dlopens {
        push(g, path(*from), range.clone());
    }
}

/// Nodes a template's first merge gave its objects and missing entries.
struct TemplateNodes {
    objs: Vec<Option<NodeIndex>>,
    missing: Vec<NodeIndex>,
}

/// Merges a root traced by substitution. The first root of a template is
/// merged in full; later ones add only what involves the root itself (its
/// node, its edges, its missing names, its version requirements) and join
/// the template's other nodes: the rest of the template is in the graph
/// already, exactly as a full merge would put it (edges,
/// version checks and warnings are sets or deduplicated).
fn merge_shared(g: &mut DepGraph, root: Vec<u8>, sh: &mut Shared, memo: &mut MergeMemo) {
    let key = Arc::as_ptr(&sh.template) as usize;
    let t = &*sh.template;
    let Some(nodes) = memo.templates.get(&key).map(|(_, n)| n.clone()) else {
        let nodes = if Arc::ptr_eq(&sh.root.found, &t.objs[0].found) {
            merge(g, root, t, memo)
        } else {
            let full = substitute(sh);
            merge(g, root, &full, memo)
        };
        memo.templates
            .insert(key, (sh.template.clone(), Arc::new(nodes)));
        return;
    };
    let root_idx = g.roots.len();
    g.roots.push(root);
    g.warnings.extend(std::mem::take(&mut sh.root_warnings));
    let old_root = &t.objs[0].found.path;
    let new_root = &sh.root.found.path;
    for (k, name, searched) in &t.searches {
        let requester = match *k {
            PRELOAD_SEARCH => Vec::new(),
            0 => new_root.clone(),
            k => t.objs[k].found.path.clone(),
        };
        g.searches
            .insert((root_idx, requester, name.clone()), searched.clone());
    }
    let a = obj_node(g, memo, &sh.root, root_idx, None);
    g.root_nodes.push(a);
    let objs = &nodes.objs;
    let mut missing: Vec<Option<NodeIndex>> = vec![None; t.missing.len()];
    for (i, m) in t.missing.iter().enumerate() {
        missing[i] = Some(if m.needed_by == *old_root {
            let mut m = m.clone();
            m.needed_by = new_root.clone();
            missing_node(g, memo, &m, root_idx)
        } else {
            let n = nodes.missing[i];
            memo.add_root(n, root_idx);
            n
        });
    }
    for n in objs.iter().skip(1).flatten() {
        memo.add_root(*n, root_idx);
    }
    for edge in t.edges.iter().filter(|e| e.from == 0) {
        let b = match edge.to() {
            To::Obj(j) => objs[j],
            To::Missing(j) => missing[j],
        };
        if let Some(b) = b {
            // The template's root has this root's `DT_NEEDED` list.
            add_edge(g, a, b, edge.name(&t.objs), edge);
        }
    }
    for &(_, vn_index, j) in sh.version_links.iter().filter(|(k, _, _)| *k == 0) {
        let (vn_index, j) = (vn_index as usize, j as usize);
        check_versions(
            g,
            memo,
            (&sh.root, Some(a)),
            vn_index,
            (&t.objs[j], objs[j]),
        );
    }
    add_dlopens(g, root_idx, t, objs, Some((a, &sh.root)));
}

/// The full trace a [`Shared`] one stands for.
fn substitute(sh: &Shared) -> RootTrace {
    let t = &*sh.template;
    let old_root = &t.objs[0].found.path;
    let mut full = RootTrace {
        objs: t.objs.clone(),
        missing: t.missing.clone(),
        edges: t.edges.clone(),
        resolved_names: Vec::new(),
        version_links: sh.version_links.clone(),
        script: None,
        warnings: sh.root_warnings.clone(),
        root_warnings: sh.root_warnings.len(),
        target: t.target.clone(),
        searches: t.searches.clone(),
        extra_files: t.extra_files.clone(),
        host: t.host.clone(),
        audits: t.audits.clone(),
        keep_search: t.keep_search,
        runtime_log: t.runtime_log.clone(),
        startup_objs: t.startup_objs,
        dlopens: t.dlopens.clone(),
    };
    full.objs[0] = sh.root.clone();
    full.warnings
        .extend(t.warnings[t.root_warnings..].iter().cloned());
    for m in &mut full.missing {
        if m.needed_by == *old_root {
            m.needed_by = sh.root.found.path.clone();
        }
    }
    full
}

/// The node of a loaded object (added the first time its path is seen).
fn obj_node(
    g: &mut DepGraph,
    memo: &mut MergeMemo,
    o: &Obj,
    root_idx: usize,
    script: Option<&Vec<u8>>,
) -> NodeIndex {
    let idx = match memo.nodes.get(&o.found.path) {
        Some(&i) => {
            let n = &mut g.graph[i];
            if o.kind < n.kind {
                n.kind = o.kind;
                n.via = o.found.via;
            }
            i
        }
        None => {
            let mut n = node_for(&o.found, o.kind);
            if o.kind == NodeKind::Root {
                n.via = g.root_via.get(root_idx).copied().unwrap_or(Via::Root);
                n.script = script.cloned();
                if script.is_some() {
                    n.info = None;
                }
            }
            let i = g.graph.add_node(n);
            memo.nodes.insert(o.found.path.clone(), i);
            i
        }
    };
    memo.add_root(idx, root_idx);
    g.graph[idx]
        .also_opened
        .extend(o.also_opened.iter().flat_map(|v| v.iter().cloned()));
    idx
}

/// The node of a missing name (one per name and requester).
fn missing_node(
    g: &mut DepGraph,
    memo: &mut MergeMemo,
    m: &MissingInfo,
    root_idx: usize,
) -> NodeIndex {
    let mut key = m.soname.clone();
    key.push(0);
    key.extend_from_slice(&m.needed_by);
    let idx = match memo.nodes.get(&key) {
        Some(&i) => i,
        None => {
            let n = Node {
                missing: Some(Box::new(m.clone())),
                ..Node::new(NodeKind::Missing, m.soname.clone())
            };
            let i = g.graph.add_node(n);
            memo.nodes.insert(key, i);
            i
        }
    };
    memo.add_root(idx, root_idx);
    idx
}

/// Adds the edge `a → b` named like `edge` unless the graph has it.
fn add_edge(g: &mut DepGraph, a: NodeIndex, b: NodeIndex, name: &[u8], edge: &TEdge) {
    let existing = g
        .graph
        .edges_connecting(a, b)
        .find(|e| *e.weight().name == *name)
        .map(|e| petgraph::visit::EdgeRef::id(&e));
    match existing {
        None => {
            g.graph.add_edge(a, b, edge.edge(name));
        }
        // Another root's load took the same edge: it keeps the search
        // step if any load searched, and whether any found it loaded.
        Some(id) if edge.via == Via::Loaded => g.graph[id].already_loaded = true,
        Some(id) if g.graph[id].via == Via::Loaded => {
            g.graph[id] = Edge {
                already_loaded: true,
                ..edge.edge(name)
            };
        }
        Some(_) => {}
    }
}

/// Checks one `Verneed` of `obj` against the version definitions of the
/// library its file name resolved to (once per node triple).
fn check_versions(
    g: &mut DepGraph,
    memo: &mut MergeMemo,
    (o, a): (&Obj, Option<NodeIndex>),
    vn_index: usize,
    (lib_obj, b): (&Obj, Option<NodeIndex>),
) {
    let vn = &o.found.info.verneed[vn_index];
    let lib = &lib_obj.found.info;
    // Nodes are paths: the same object, requirement and library
    // (objects not loaded have no node and are checked each time).
    if let (Some(a), Some(b)) = (a, b) {
        if !memo.versions_checked.insert((a, vn_index, b)) {
            return; // same pair under an earlier root: same answer
        }
    }
    for aux in &vn.versions {
        let unsupported = match lib.check_version(aux) {
            VersionCheck::Met => continue,
            VersionCheck::Missing => None,
            VersionCheck::Unsupported(v) => Some(v),
        };
        let family: Vec<u8> = aux
            .name
            .iter()
            .take_while(|c| !c.is_ascii_digit())
            .copied()
            .collect();
        g.missing_versions.push(MissingVersion {
            version: aux.name.to_vec(),
            library: vn.file.clone(),
            library_path: lib_obj.found.path.clone(),
            object: o.found.path.clone(),
            highest: lib.highest_version(&family).map(<[u8]>::to_vec),
            unsupported_verdef: unsupported,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{VerDef, VerNeed, VerNeedAux};

    /// Each root goes to the thread that read it ahead (modulo the pool's
    /// size), the others in turn, every share in queue order; a thread
    /// takes the front of its own share, then the back of another's, and
    /// every position exactly once.
    #[test]
    fn roots_are_dealt_to_their_readers_and_taken_from_the_far_end() {
        let read_by = [Some(1), Some(0), None, Some(1), None, Some(0), Some(3)];
        let dealt = deal(&read_by, 2);
        assert_eq!(
            dealt,
            [VecDeque::from([1, 4, 5]), VecDeque::from([0, 2, 3, 6])]
        );
        assert_eq!(deal(&read_by, 0), [VecDeque::from_iter(0..7)]);
        let shares: Shares = dealt.into_iter().map(|l| Padded(Mutex::new(l))).collect();
        let order: Vec<Option<usize>> = [0, 0, 0, 0, 1, 1, 0, 0, 1]
            .into_iter()
            .map(|me| take(&shares, me))
            .collect();
        let want = [1, 4, 5, 6, 0, 2, 3].map(Some);
        assert_eq!(order[..7], want);
        assert_eq!(order[7..], [None, None]);
    }

    /// A thread whose own share is empty lets go of it before it locks
    /// another's: two threads whose shares ran out at once, each holding
    /// its own while waiting for the other's, hung the union run (1 in
    /// about 6,000 runs).
    #[test]
    fn a_taker_holds_no_share_while_it_waits_for_another() {
        let shares: Shares = [VecDeque::new(), VecDeque::from([7])]
            .into_iter()
            .map(|l| Padded(Mutex::new(l)))
            .collect();
        // Thread 1 is inside `take`, holding its own share.
        let held = lock(&shares[1]);
        let (own_free, waited, taken) = std::thread::scope(|s| {
            let taker = s.spawn(|| take(&shares, 0));
            std::thread::sleep(std::time::Duration::from_millis(100));
            let waited = !taker.is_finished();
            let own_free = shares[0].try_lock().is_ok();
            drop(held);
            (own_free, waited, taker.join().unwrap())
        });
        assert!(waited, "the taker did not wait for the other share");
        assert!(own_free, "the taker held its own share while it waited");
        assert_eq!(taken, Some(7));
    }

    /// A library found at `path`, with file identity `id`.
    fn found(path: &str, id: u64, info: ElfInfo) -> Arc<Found> {
        Arc::new(Found {
            path: path.as_bytes().to_vec(),
            canonical: std::path::PathBuf::from(path),
            hops: Vec::new(),
            file_id: (7, id),
            size: 0,
            via: Via::Default,
            owner: None,
            info: Arc::new(info),
            variants: Vec::new(),
            link: std::sync::OnceLock::new(),
            unwind: None,
        })
    }

    /// An object of a load list, as `load_list` registers it.
    fn obj(found: Arc<Found>, names: &[&str], l_name: bool) -> Obj {
        let names = names.iter().map(|n| n.as_bytes().into()).collect();
        Obj::new(found, NodeKind::Library, names, l_name)
    }

    #[test]
    fn already_loaded_objects_are_found_by_each_name_and_only_those() {
        let so = |soname: &str| ElfInfo {
            soname: Some(soname.as_bytes().to_vec()),
            ..empty_info()
        };
        let mut objs = vec![
            obj(found("/bin/prog", 1, empty_info()), &[], false),
            obj(
                found("/lib/liba.so.1", 2, so("liba.so.1")),
                &["liba.so.1"],
                true,
            ),
            obj(
                found("/opt/libb.so.2.0", 3, so("libb.so.2")),
                &["libb.so"],
                true,
            ),
        ];
        // A name added later (a second DT_NEEDED spelling of the same file).
        objs[2].add_name(b"../opt/libb.so.2.0".to_vec());
        let at = |objs: &[Obj], name: &str| find_loaded(objs, name.as_bytes());
        assert_eq!(at(&objs, "liba.so.1"), Some(1));
        assert_eq!(at(&objs, "/lib/liba.so.1"), Some(1), "l_name");
        assert_eq!(at(&objs, "libb.so.2"), Some(2), "SONAME");
        assert_eq!(at(&objs, "libb.so"), Some(2));
        assert_eq!(at(&objs, "../opt/libb.so.2.0"), Some(2), "added name");
        assert_eq!(at(&objs, "/opt/libb.so.2.0"), Some(2));
        // The program's own path is not a name it is loaded under.
        assert_eq!(at(&objs, "/bin/prog"), None);
        for other in ["liba.so", "libb.so.2.0", "libc.so.6", "", "liba.so.1 "] {
            assert_eq!(at(&objs, other), None, "{other:?}");
        }
        // The first object in load order wins when two answer to a name.
        objs.push(obj(
            found("/usr/lib/liba.so.1", 4, so("liba.so.1")),
            &[],
            true,
        ));
        assert_eq!(at(&objs, "liba.so.1"), Some(1));
        // Every name of every object sets its bit: no name is filtered out
        // by the mask wrongly, whatever bits its neighbours have.
        for o in &objs {
            let mut all: Vec<&[u8]> = o.names.iter().map(|n| &**n).collect();
            all.extend(o.found.info.soname.as_deref());
            if o.l_name {
                all.push(&o.found.path);
            }
            for n in all {
                assert_ne!(o.mask & name_bit(n), 0, "{}", show(n));
            }
        }
    }

    /// The templates keep their load lists and edges for the whole
    /// build (188 of them, ≈ 9,000 objects and edges, on a whole-`/usr/bin`
    /// run): a field added to these should be weighed against that.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn trace_records_stay_small() {
        let (edge, obj) = (std::mem::size_of::<TEdge>(), std::mem::size_of::<Obj>());
        assert!(edge <= 40, "a trace edge takes {edge} bytes");
        assert!(obj <= 64, "a load-list object takes {obj} bytes");
        assert_eq!(std::mem::size_of::<Triple>(), 12);
    }

    /// An edge keeps its ends (object or missing entry) and its name (an
    /// entry of the requester's list, or its own) through the packing.
    /// Fails if the missing bit is lost or leaks into the index.
    #[test]
    fn a_trace_edge_keeps_its_ends_and_name() {
        let prog = ElfInfo {
            needed: vec![b"liba.so.1".to_vec(), b"libb.so.2".to_vec()],
            filters: vec![b"libf.so".to_vec()],
            ..empty_info()
        };
        let mut t = RootTrace {
            objs: vec![
                obj(found("/bin/prog", 1, prog), &[], false),
                obj(
                    found("/lib/liba.so.1", 2, empty_info()),
                    &["liba.so.1"],
                    true,
                ),
            ],
            missing: Vec::new(),
            edges: Vec::new(),
            resolved_names: Vec::new(),
            version_links: Vec::new(),
            script: None,
            warnings: Vec::new(),
            root_warnings: 0,
            target: None,
            searches: Vec::new(),
            extra_files: Vec::new(),
            host: None,
            audits: Vec::new(),
            keep_search: false,
            runtime_log: Vec::new(),
            startup_objs: usize::MAX,
            dlopens: Vec::new(),
        };
        let e = |name| TEdge::new(name, Via::Default, None, None);
        t.push_edge(0, To::Obj(1), e(TName::needed(0)));
        t.push_edge(0, To::Missing(0), e(TName::needed(2)));
        t.push_edge(1, To::Missing(7), e(TName::own(b"libz.so")));
        t.push_edge(1, To::Obj(0), e(TName::own(b"/bin/prog")));
        let got: Vec<(usize, To, &[u8])> = t
            .edges
            .iter()
            .map(|e| (e.from(), e.to(), e.name(&t.objs)))
            .collect();
        assert_eq!(
            got,
            [
                (0, To::Obj(1), &b"liba.so.1"[..]),
                (0, To::Missing(0), b"libf.so"),
                (1, To::Missing(7), b"libz.so"),
                (1, To::Obj(0), b"/bin/prog"),
            ]
        );
        assert!(!template_fits(&t), "an edge leads back to the root");
    }

    #[test]
    fn requirement_answers_are_kept_per_record_and_library() {
        let need = |v: &str| VerNeedAux {
            name: v.as_bytes().into(),
            hash: 1,
            flags: 0,
            other: 2,
        };
        let def = |v: &str| VerDef {
            version: 1,
            name: v.as_bytes().to_vec(),
            hash: 1,
            flags: 0,
            index: 2,
        };
        let prog = found(
            "/bin/prog",
            1,
            ElfInfo {
                verneed: vec![VerNeed {
                    version: 1,
                    file: b"libx.so.1".to_vec(),
                    versions: vec![need("X_1")],
                }],
                ..empty_info()
            },
        );
        let lib = |id: u64, v: &str| {
            found(
                "/lib/libx.so.1",
                id,
                ElfInfo {
                    verdef: vec![def(v)],
                    ..empty_info()
                },
            )
        };
        let (x1, x2) = (lib(5, "X_1"), lib(6, "X_2"));
        assert!(prog.requirement_met_by(0, &x1));
        assert!(!prog.requirement_met_by(0, &x2));
        assert!(prog.requirement_met_by(0, &x1));
        // The answer is kept with the identity first asked: within one
        // build an identity stands for one file, so another file under it
        // is not looked at again.
        assert!(prog.requirement_met_by(0, &lib(5, "X_2")));
        // A weak requirement is met whether or not it is defined.
        let weak = found(
            "/bin/weak",
            2,
            ElfInfo {
                verneed: vec![VerNeed {
                    version: 1,
                    file: b"libx.so.1".to_vec(),
                    versions: vec![VerNeedAux {
                        flags: crate::elf::VER_FLG_WEAK,
                        ..need("X_1")
                    }],
                }],
                ..empty_info()
            },
        );
        assert!(weak.requirement_met_by(0, &x2));
        // A record the object does not have is not met.
        assert!(!prog.requirement_met_by(1, &x1));
    }
}
