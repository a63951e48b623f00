//! The dependency graph of one or more roots.
//!
//! Owns [`DepGraph`]: a `petgraph::StableGraph` whose nodes are the objects
//! the loader maps (keyed by the path string it opens them by), plus one
//! node per missing library and requester, and whose edges carry the
//! `DT_NEEDED` string and the search step that satisfied it. Building it
//! ([`build`](mod@build)) replays glibc's breadth-first load of each root separately —
//! its own `$ORIGIN`s, RPATH chains and "already loaded" table — and merges
//! the results. A missing library is a node, never an error: only a root
//! that cannot be read at all fails the build.

pub mod build;
pub mod symbols;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use petgraph::stable_graph::{NodeIndex, StableGraph};

use crate::elf::ElfInfo;
use crate::resolve::{Searched, Variant, Via};
use crate::rootfs::Hop;
use crate::util::show;

pub use build::{build, BuildOptions};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// A root given by the user.
    Root,
    /// A program's dynamic loader (`PT_INTERP`).
    Interpreter,
    /// A shared library the loader maps.
    Library,
    /// Something the loader cannot find (or aborts on).
    Missing,
}

/// Why a missing node is missing.
#[derive(Debug, Clone)]
pub struct MissingInfo {
    /// The `DT_NEEDED` string (or interpreter path).
    pub soname: Vec<u8>,
    /// The object that needs it.
    pub needed_by: Vec<u8>,
    /// Everything searched, in order.
    pub searched: Vec<Searched>,
    /// Explanations (RUNPATH not inherited, NODEFLIB, stale cache, …).
    pub notes: Vec<String>,
    /// Set when the loader would abort on a file rather than not find one.
    pub fatal: Option<(Vec<u8>, String)>,
}

/// One node of the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// Kind of node.
    pub kind: NodeKind,
    /// The path string the loader opens it by (missing: the name sought).
    pub path: Vec<u8>,
    /// Canonical in-root location of the file (None when missing).
    pub canonical: Option<PathBuf>,
    /// Symlinks on the way from `path` to `canonical`.
    pub hops: Vec<Hop>,
    /// File size in bytes.
    pub size: u64,
    /// How it was first found.
    pub via: Via,
    /// What the file says (None for missing nodes and non-ELF roots).
    pub info: Option<Arc<ElfInfo>>,
    /// glibc-hwcaps variants beside it.
    pub variants: Vec<Variant>,
    /// Indices (into [`DepGraph::roots`]) of the roots that load it.
    pub roots: BTreeSet<usize>,
    /// For missing nodes: why (boxed: most nodes are not missing, and a
    /// node of every object is kept for the whole run).
    pub missing: Option<Box<MissingInfo>>,
    /// For a root that is a `#!` script: its interpreter line.
    pub script: Option<Vec<u8>>,
    /// Other paths the loader opens and then recognises as this same file
    /// (same inode); a staged root needs them too.
    pub also_opened: BTreeSet<Vec<u8>>,
}

impl Node {
    /// A node of `kind` for `path` with nothing else known yet: no file,
    /// no roots, found by the default search.
    pub fn new(kind: NodeKind, path: Vec<u8>) -> Node {
        Node {
            kind,
            path,
            canonical: None,
            hops: Vec::new(),
            size: 0,
            via: Via::Default,
            info: None,
            variants: Vec::new(),
            roots: BTreeSet::new(),
            missing: None,
            script: None,
            also_opened: BTreeSet::new(),
        }
    }
}

/// One edge: `from` needs `to` under the name `name`. 32 bytes (its
/// owner and detail, both rare, boxed together): the graph has a few per
/// object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The `DT_NEEDED` string (or `PT_INTERP`).
    pub name: Box<[u8]>,
    /// The search step that satisfied it: `Loaded` only when, in every
    /// root's load that has the edge, the object was loaded already.
    pub via: Via,
    /// Whether in some root's load the object was loaded already when
    /// this edge asked for it (the merged graph has one edge for all
    /// roots; which root loads the object first through it is
    /// `report::tree`'s to work out, breadth-first).
    pub already_loaded: bool,
    /// [`Edge::owner`] and [`Edge::detail`], when either is set.
    extra: Option<Box<EdgeExtra>>,
}

/// [`Edge::owner`] and [`Edge::detail`] of an edge that has either.
pub(crate) type EdgeExtra = (Option<Vec<u8>>, Option<String>);

impl Edge {
    /// An edge named `name`, satisfied by step `via` (not loaded already),
    /// with the RPATH/RUNPATH owner and run-time detail if any.
    pub fn new(name: &[u8], via: Via, owner: Option<Vec<u8>>, detail: Option<String>) -> Edge {
        let extra = (owner.is_some() || detail.is_some()).then(|| Box::new((owner, detail)));
        Edge::with_extra(name, via, extra)
    }

    /// [`Edge::new`] with the rare parts as a build keeps them.
    pub(crate) fn with_extra(name: &[u8], via: Via, extra: Option<Box<EdgeExtra>>) -> Edge {
        Edge {
            name: name.into(),
            via,
            already_loaded: via == Via::Loaded,
            extra,
        }
    }

    /// Whose RPATH/RUNPATH supplied the directory.
    pub fn owner(&self) -> Option<&[u8]> {
        self.extra.as_ref()?.0.as_deref()
    }

    /// More about a run-time edge (dlopen priority and feature, the symbol
    /// that makes glibc load libgcc_s, …).
    pub fn detail(&self) -> Option<&str> {
        self.extra.as_ref()?.1.as_deref()
    }
}

/// A problem with a symbol version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MissingVersion {
    /// The version name.
    pub version: Vec<u8>,
    /// The library name as required (`vn_file`).
    pub library: Vec<u8>,
    /// The path the library was found at.
    pub library_path: Vec<u8>,
    /// The object that requires it.
    pub object: Vec<u8>,
    /// The highest version of the same family the library defines.
    pub highest: Option<Vec<u8>>,
    /// Set when the loader's walk of the library's definitions met a
    /// `Verdef` record of this format version (not 1) before a match: glibc
    /// then fails the requirement with "unsupported version N of Verdef
    /// record" instead of "version not found".
    pub unsupported_verdef: Option<u16>,
}

/// An object of the closure the loader refuses, so the program cannot run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Refused {
    /// The object's path (as its node's).
    pub object: Vec<u8>,
    /// Why.
    pub why: RefusedWhy,
}

/// Why the loader refuses an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefusedWhy {
    /// The first record of its version requirements has this format
    /// version (`vn_version`), not 1: glibc refuses to load it at all
    /// ("unsupported version N of Verneed record"; fatal even when
    /// tracing).
    Verneed(u16),
    /// It needs x86 ISA levels the modelled CPU lacks: glibc 2.33 and
    /// later stop the program with "CPU ISA level is lower than required"
    /// once everything is loaded (a trace, `ldd`, lists it as usual).
    IsaLevel {
        /// The object's `GNU_PROPERTY_X86_ISA_1_NEEDED` bits.
        needed: u32,
        /// The modelled CPU's ([`crate::resolve::target::Target::x86_isa`]).
        cpu: u32,
    },
    /// A position-independent executable (`DF_1_PIE`) that a program
    /// loads at start-up as a library: glibc 2.30 and later stop it when
    /// they map it, before anything else (also when tracing).
    Pie,
    /// An executable at a fixed address (`ET_EXEC`) that a program loads
    /// at start-up as a library: glibc stops it when it maps it (also
    /// when tracing).
    Executable,
}

impl RefusedWhy {
    /// The loader's words, and for an ISA level what the CPU lacks.
    pub fn describe(&self) -> String {
        match *self {
            RefusedWhy::Verneed(v) => format!("unsupported version {v} of Verneed record"),
            RefusedWhy::Pie => "cannot dynamically load position-independent executable".into(),
            RefusedWhy::Executable => "cannot dynamically load executable".into(),
            RefusedWhy::IsaLevel { needed, cpu } => {
                let has = crate::resolve::target::x86_isa_names(cpu);
                format!(
                    "CPU ISA level is lower than required: it needs {}, the CPU modelled has {} \
                     (--hwcaps names the CPU's levels)",
                    crate::resolve::target::x86_isa_names(needed & !cpu).join(", "),
                    if has.is_empty() {
                        "none".to_string()
                    } else {
                        has.join(", ")
                    }
                )
            }
        }
    }
}

/// An undefined symbol no object in scope defines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UndefinedSymbol {
    /// The symbol name.
    pub symbol: Vec<u8>,
    /// The version required, if any.
    pub version: Option<Vec<u8>>,
    /// The object whose relocation needs it.
    pub object: Vec<u8>,
    /// When a `dlopen` maps that object (a run-time load, a plugin): the
    /// object that opens it, whose `dlopen` then fails. `None`: the
    /// program's start-up.
    pub loaded_by: Option<Vec<u8>>,
}

/// An undefined symbol of an object a plugin's `dlopen` maps that no object
/// of that `dlopen`'s scope defines, but objects other `dlopen`s of the
/// same program map do: it binds only if one of them was opened with
/// `RTLD_GLOBAL` (which puts it and its dependencies in the global scope),
/// as the JDK opens its AWT libraries. No file says which mode a program
/// passes, so this is a warning, not a problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlobalOnlySymbol {
    /// The symbol name.
    pub symbol: Vec<u8>,
    /// The version required, if any.
    pub version: Option<Vec<u8>>,
    /// The object whose relocation needs it.
    pub object: Vec<u8>,
    /// The program that opens that object.
    pub loaded_by: Vec<u8>,
    /// The objects outside the scope that would bind it, in load order.
    pub defined_by: Vec<Vec<u8>>,
}

impl GlobalOnlySymbol {
    /// The warnings, in words: one per object, opener and set of objects
    /// that would bind, naming every such symbol (in `symbols`' order).
    pub fn describe(symbols: &[GlobalOnlySymbol]) -> Vec<String> {
        type Key<'a> = (&'a [u8], &'a [u8], &'a [Vec<u8>]);
        let mut groups: BTreeMap<Key<'_>, Vec<String>> = BTreeMap::new();
        for u in symbols {
            let name = match &u.version {
                Some(v) => format!("{}@{}", show(&u.symbol), show(v)),
                None => show(&u.symbol),
            };
            (groups.entry((&u.object, &u.loaded_by, &u.defined_by)))
                .or_default()
                .push(name);
        }
        (groups.into_iter())
            .map(|((object, by, defined_by), names)| {
                let defs: Vec<String> = defined_by.iter().map(|d| show(d)).collect();
                let (these, bind, none) = match names.len() {
                    1 => ("symbol", "binds", "it"),
                    _ => ("symbols", "bind", "any of them"),
                };
                format!(
                    "{}: {these} {} {bind} only if {} opened {} with RTLD_GLOBAL (nothing in \
                     the scope of the dlopen that maps it defines {none}; with RTLD_LOCAL that \
                     dlopen fails)",
                    show(object),
                    names.join(", "),
                    show(by),
                    match defs.len() {
                        1 => defs[0].clone(),
                        _ => format!("one of {}", defs.join(", ")),
                    }
                )
            })
            .collect()
    }
}

/// One audit module's load, as `--verbose` replays it: glibc's rtld opens
/// it in a namespace of its own and searches its dependencies there.
#[derive(Debug, Clone)]
pub struct AuditLoad {
    /// Where the name comes from: `LD_AUDIT`, `DT_AUDIT` or `DT_DEPAUDIT`.
    pub tag: &'static str,
    /// The module's name, as given.
    pub name: Vec<u8>,
    /// The names looked up for it, in the loader's order: the module's own
    /// first, then its namespace's `DT_NEEDED` names, breadth-first.
    pub steps: Vec<AuditStep>,
    /// Why the loader ignores the module, when it does (its words).
    pub ignored: Option<String>,
}

/// One name looked up in an audit module's namespace.
#[derive(Debug, Clone)]
pub struct AuditStep {
    /// The object that needs the name; `None` for the module itself.
    pub requester: Option<Vec<u8>>,
    /// The name.
    pub name: Vec<u8>,
    /// The places tried, in order (none when an object of the namespace
    /// answered the name).
    pub searched: Vec<Searched>,
    /// What it came to.
    pub answer: AuditAnswer,
}

/// What a name looked up in an audit module's namespace came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditAnswer {
    /// A file a search found, and how.
    Found(Vec<u8>, Via),
    /// An object the namespace had loaded already.
    Loaded(Vec<u8>),
    /// Nothing, or a fatal error: the module is ignored
    /// ([`AuditLoad::ignored`]).
    NotFound,
    /// The loader ignores the name (a warning says why).
    Skipped,
}

/// A `.note.dlopen` name that no search found ([`DepGraph::runtime_log`]).
#[derive(Debug, Clone)]
pub struct RuntimeMiss {
    /// The object that would open it.
    pub requester: Vec<u8>,
    /// The name.
    pub name: Vec<u8>,
    /// How it would be loaded (the edge's `Via`).
    pub via: Via,
    /// Why (its priority, its feature).
    pub detail: String,
    /// The places tried, in order.
    pub searched: Vec<Searched>,
    /// What follows: the entry's next alternative is tried, the program
    /// goes on without it (optional), or it is missing (required).
    pub outcome: &'static str,
}

/// A run-time load whose `dlopen` failed after its search found the file
/// ([`RuntimeStep::Failed`]): a dependency found nowhere (or a file the
/// loader stops at), an object the loader refuses to map in `dlopen` mode,
/// a symbol version missing or an x86 ISA level the CPU lacks. The loader
/// unloads every object that `dlopen` brought in.
#[derive(Debug, Clone)]
pub struct RuntimeFailure {
    /// The object that opens it.
    pub requester: Vec<u8>,
    /// The name opened.
    pub name: Vec<u8>,
    /// How it was loaded (the edge's `Via`).
    pub via: Via,
    /// Why (its priority, its feature; the NSS service, …).
    pub detail: String,
    /// The searches the `dlopen` made, in order (kept with
    /// `BuildOptions::keep_search`): the name itself, then its
    /// dependencies', up to the failure.
    pub searches: Vec<FailedSearch>,
    /// The object at fault and the loader's reason.
    pub why: String,
    /// What follows (as [`RuntimeMiss::outcome`]).
    pub outcome: &'static str,
}

/// One search of a failed `dlopen` ([`RuntimeFailure::searches`]).
#[derive(Debug, Clone)]
pub struct FailedSearch {
    /// The object whose name it is.
    pub requester: Vec<u8>,
    /// The name.
    pub name: Vec<u8>,
    /// The places tried, in order.
    pub searched: Vec<Searched>,
    /// Whether it found a file (the candidate marked used).
    pub found: bool,
}

/// One run-time load of a root's trace, in the order `dlopen` makes them
/// ([`DepGraph::runtime_log`]).
#[derive(Debug, Clone)]
pub enum RuntimeStep {
    /// The edge from `requester` under `name` (found, already loaded, or
    /// missing): its search is in [`DepGraph::searches`], its object's own
    /// dependencies follow it.
    Load {
        /// The object that opens it.
        requester: Vec<u8>,
        /// The name opened.
        name: Vec<u8>,
        /// Whether a search found it: an object loaded before may be what
        /// the search found (by device and inode), not matched by name.
        searched: bool,
    },
    /// A `.note.dlopen` name no search found (no edge).
    Miss(RuntimeMiss),
    /// A load whose search found a file and whose `dlopen` then failed:
    /// the loader unloads what it brought in, and the graph has none of it.
    Failed(RuntimeFailure),
}

/// Objects one `dlopen` maps outside its root's start-up: a run-time load
/// that brought in objects not loaded before, or the load of a plugin (an
/// `--include`d library) by its host program. `--check-symbols`
/// ([`symbols`]) checks them in the scope the loader relocates them in: the
/// global scope (the start-up objects of the root, or of a plugin's host),
/// then the opened object's own dependencies, breadth first.
#[derive(Debug, Clone)]
pub struct Dlopen {
    /// The root whose trace made it (index into [`DepGraph::roots`]).
    pub root: usize,
    /// The object that opens it (in-root path); a plugin's host program.
    pub by: Vec<u8>,
    /// The objects it maps, in load order, the one opened first.
    pub mapped: Vec<NodeIndex>,
}

/// The merged dependency graph of all roots.
#[derive(Debug, Default)]
pub struct DepGraph {
    /// The graph itself.
    pub graph: StableGraph<Node, Edge>,
    /// Node lookup by key (path string; missing nodes: `name\0needed_by`).
    pub index: BTreeMap<Vec<u8>, NodeIndex>,
    /// The roots, in the order given, as in-root paths.
    pub roots: Vec<Vec<u8>>,
    /// Node of each root.
    pub root_nodes: Vec<NodeIndex>,
    /// Required symbol versions that the found library does not define.
    pub missing_versions: Vec<MissingVersion>,
    /// Objects of the closure the loader refuses to load, by path.
    pub refused: Vec<Refused>,
    /// Non-ELF files run-time loads need (gconv configuration), to stage.
    pub extra_files: BTreeSet<Vec<u8>>,
    /// Undefined symbols (filled by `--check-symbols`).
    pub undefined_symbols: Vec<UndefinedSymbol>,
    /// Plugins' undefined symbols that only an `RTLD_GLOBAL` open of
    /// another plugin binds (filled by `--check-symbols`; warnings).
    pub global_only_symbols: Vec<GlobalOnlySymbol>,
    /// The `dlopen`s that map objects outside their root's start-up, in
    /// root order, each root's in the order its trace made them.
    pub dlopens: Vec<Dlopen>,
    /// The host program (in-root path) of each root traced as a plugin
    /// (an `--include`d library a `--root` program opens): its global scope
    /// is the host's start-up objects, not its own.
    pub plugin_hosts: BTreeMap<usize, Vec<u8>>,
    /// Warnings that are not problems (unusable cache, odd ELF fields, …).
    pub warnings: Vec<String>,
    /// How each root entered (`Root` for `--root`, `Include` for included ELF files).
    pub root_via: Vec<Via>,
    /// Whether each root is a musl program (its loader lists what it loads
    /// in musl's own way: `report::ldd`).
    pub root_musl: Vec<bool>,
    /// Whether each root's loader lists itself first when no `DT_NEEDED`
    /// names it (glibc 2.41: `report::load_order`).
    pub root_rtld_alone: Vec<bool>,
    /// Whether each root's loader looks symbols up by glibc 2.41's rules
    /// (`Target::check_match_2_41`: `graph::symbols`).
    pub root_check_match_2_41: Vec<bool>,
    /// Default directories of every target seen.
    pub system_dirs: BTreeSet<Vec<u8>>,
    /// Byte order of the first dynamic root's target.
    pub big_endian: bool,
    /// OCI architecture name of the first dynamic root's target.
    pub goarch: Option<&'static str>,
    /// Search records of names found by a search, keyed by (root index,
    /// requester path, `DT_NEEDED` name); a preload's search (found or not)
    /// has an empty requester path, apart from a `DT_NEEDED` of the program
    /// with the same name (which the loader may match to another object
    /// without searching). Filled only with [`BuildOptions::keep_search`]
    /// (`--verbose`).
    pub searches: BTreeMap<(usize, Vec<u8>, Vec<u8>), Vec<Searched>>,
    /// Each root's audit modules, in the order the loader loads them (before
    /// the preloads and the program's own names), with the searches made in
    /// each module's namespace. Filled only with
    /// [`BuildOptions::keep_search`] (`--verbose`), for roots that have any.
    pub audits: BTreeMap<usize, Vec<AuditLoad>>,
    /// Each root's run-time loads in the order the trace made them, one
    /// `dlopen` after another, with the `.note.dlopen` names no search
    /// found among them (each alternative of an entry that was tried).
    /// Filled only with [`BuildOptions::keep_search`] (`--verbose`).
    pub runtime_log: BTreeMap<usize, Vec<RuntimeStep>>,
    /// The names preloaded into every program (`LD_PRELOAD`, then
    /// `/etc/ld.so.preload`), in the order the loader takes them, with
    /// where each comes from. A preload that cannot be loaded has no edge;
    /// with [`BuildOptions::keep_search`] its search is in
    /// [`Self::searches`] under the root.
    pub preloads: Vec<(Vec<u8>, &'static str)>,
    /// The working directory (`--cwd`) that relative paths are taken
    /// from: a node's `path` is the string the loader opens, relative when
    /// a search-path element was.
    pub cwd: Vec<u8>,
}

impl DepGraph {
    /// The in-root path the loader's system calls reach for `path` (a
    /// node's, a variant's or an also-opened path): an absolute one as it
    /// is, a relative one taken from [`Self::cwd`] (its `.` and empty
    /// components dropped; `..` stays, as a link may come before it).
    pub fn in_root(&self, path: &[u8]) -> std::path::PathBuf {
        crate::resolve::bytes_path(&self.in_root_bytes(path))
    }

    /// [`Self::in_root`] as bytes.
    pub fn in_root_bytes(&self, path: &[u8]) -> Vec<u8> {
        if path.first() == Some(&b'/') {
            return path.to_vec();
        }
        let mut out = self.cwd.clone();
        for c in path.split(|&b| b == b'/') {
            if c.is_empty() || c == b"." {
                continue;
            }
            if !out.ends_with(b"/") {
                out.push(b'/');
            }
            out.extend_from_slice(c);
        }
        out
    }

    /// Every node except missing ones, sorted by path.
    pub fn objects(&self) -> Vec<&Node> {
        let mut v: Vec<&Node> = self
            .index
            .values()
            .map(|&i| &self.graph[i])
            .filter(|n| n.kind != NodeKind::Missing)
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// The objects that need `n`, by path, sorted and unique: the sources
    /// of its incoming edges (every edge of the graph is a need). Worked
    /// out when asked: only some reports print it, and keeping a set per
    /// node during the merge was ≈ 5% of a whole-`/usr/bin` run.
    pub fn needed_by(&self, n: NodeIndex) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = self
            .graph
            .neighbors_directed(n, petgraph::Direction::Incoming)
            .map(|a| self.graph[a].path.as_slice())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every missing node, sorted by (name, requester).
    pub fn missing(&self) -> Vec<&Node> {
        self.index
            .values()
            .map(|&i| &self.graph[i])
            .filter(|n| n.kind == NodeKind::Missing)
            .collect()
    }

    /// The objects root `ri` (its node `root`) maps at start-up: the root
    /// and, breadth-first, every object its start-up edges lead to
    /// (preloads and `DT_NEEDED`, not run-time loads nor its `PT_INTERP`),
    /// each once; missing ones left out. With `run_time`, also what its
    /// run-time loads (`dlopen`) lead to. Never what its audit modules'
    /// namespaces hold ([`Via::Audit`]).
    pub fn startup_objects(&self, root: NodeIndex, ri: usize, run_time: bool) -> Vec<NodeIndex> {
        let mut seen = BTreeSet::from([root]);
        let mut order = vec![root];
        let mut q = std::collections::VecDeque::from([root]);
        while let Some(n) = q.pop_front() {
            for (child, e) in self.children(n) {
                let node = &self.graph[child];
                if !node.roots.contains(&ri)
                    || e.via == Via::Interpreter
                    || e.via == Via::Audit
                    || (e.via.is_runtime() && !run_time)
                    || node.kind == NodeKind::Missing
                    || !seen.insert(child)
                {
                    continue;
                }
                order.push(child);
                q.push_back(child);
            }
        }
        order
    }

    /// Whether the closure is complete and consistent.
    pub fn is_clean(&self) -> bool {
        self.missing().is_empty()
            && self.missing_versions.is_empty()
            && self.refused.is_empty()
            && self.undefined_symbols.is_empty()
    }

    /// Outgoing edges of a node in the order a load takes them: the
    /// interpreter and preloads, then `DT_NEEDED` (and filter) order, then
    /// run-time loads; within each, insertion order. (Insertion order alone
    /// is not enough: another root's load can add an edge for the same
    /// name, resolved elsewhere, after the node's other edges.)
    pub fn children(&self, n: NodeIndex) -> Vec<(NodeIndex, &Edge)> {
        let info = self.graph[n].info.as_deref();
        let rank = |e: &Edge| -> (u8, usize) {
            if matches!(e.via, Via::Interpreter | Via::Preload) {
                return (0, 0);
            }
            let listed = info.filter(|_| !e.via.is_runtime()).and_then(|i| {
                i.needed
                    .iter()
                    .chain(&i.filters)
                    .position(|x| **x == *e.name)
            });
            listed.map_or((2, 0), |p| (1, p))
        };
        let mut v: Vec<(NodeIndex, &Edge, (u8, usize), usize)> = self
            .graph
            .edges(n)
            .map(|e| {
                use petgraph::visit::EdgeRef;
                (e.target(), e.weight(), rank(e.weight()), e.id().index())
            })
            .collect();
        v.sort_by_key(|&(_, _, rank, id)| (rank, id));
        v.into_iter().map(|(t, e, _, _)| (t, e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{DepGraph, Edge, Node, NodeKind};
    use crate::resolve::Via;

    fn node(path: &str) -> Node {
        Node::new(NodeKind::Library, path.as_bytes().to_vec())
    }

    fn edge(name: &str) -> Edge {
        Edge::new(name.as_bytes(), Via::Default, None, None)
    }

    /// The graph has a few edges per object, each kept for the whole run:
    /// 32 bytes (the rare owner and detail boxed together). Fails if a
    /// field added makes it larger; weigh that first.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_edge_stays_small_and_keeps_its_rare_parts() {
        let size = std::mem::size_of::<Edge>();
        assert!(size <= 32, "an edge takes {size} bytes");
        let plain = edge("libx.so.1");
        assert_eq!((plain.owner(), plain.detail()), (None, None));
        assert!(!plain.already_loaded);
        let e = Edge::new(b"liby.so", Via::Rpath, Some(b"/bin/prog".to_vec()), None);
        assert_eq!(e.owner(), Some(&b"/bin/prog"[..]));
        assert_eq!(e.detail(), None);
        let e = Edge::new(b"libz.so", Via::DlopenNote, None, Some("required".into()));
        assert_eq!((e.owner(), e.detail()), (None, Some("required")));
        assert!(Edge::new(b"libc.so.6", Via::Loaded, None, None).already_loaded);
    }

    #[test]
    fn needed_by_lists_each_requester_once_in_path_order() {
        let mut g = DepGraph::default();
        let [z, a, lib, leaf] = ["/z/prog", "/a/prog", "/lib/libx.so.1", "/lib/liby.so.1"]
            .map(|p| g.graph.add_node(node(p)));
        // Two names of one requester (a DT_NEEDED entry and a filter), and
        // requesters added out of path order.
        g.graph.add_edge(z, lib, edge("libx.so.1"));
        g.graph.add_edge(a, lib, edge("libx.so.1"));
        g.graph.add_edge(z, lib, edge("/lib/libx.so.1"));
        g.graph.add_edge(lib, leaf, edge("liby.so.1"));
        let show = |v: Vec<&[u8]>| -> Vec<String> {
            v.iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        };
        assert_eq!(show(g.needed_by(lib)), ["/a/prog", "/z/prog"]);
        assert_eq!(show(g.needed_by(leaf)), ["/lib/libx.so.1"]);
        assert!(g.needed_by(z).is_empty());
    }

    fn at(cwd: &str) -> DepGraph {
        DepGraph {
            cwd: cwd.as_bytes().to_vec(),
            ..DepGraph::default()
        }
    }

    #[test]
    fn relative_paths_are_taken_from_the_working_directory() {
        let cases = [
            ("/opt", "./tls/libx.so.1", "/opt/tls/libx.so.1"),
            ("/opt", "l//haswell/./libp.so.1", "/opt/l/haswell/libp.so.1"),
            ("/opt/a", "../b/libx.so.1", "/opt/a/../b/libx.so.1"),
            ("/", "lib/libx.so.1", "/lib/libx.so.1"),
            ("/", "libx.so.1", "/libx.so.1"),
            ("/app/", "libx.so.1", "/app/libx.so.1"),
            ("/opt", "/usr/lib/libx.so.1", "/usr/lib/libx.so.1"),
            ("/opt", "/usr/./lib//libx.so.1", "/usr/./lib//libx.so.1"),
        ];
        for (cwd, path, want) in cases {
            let got = at(cwd).in_root_bytes(path.as_bytes());
            assert_eq!(String::from_utf8_lossy(&got), want, "{path} from {cwd}");
        }
    }
}
