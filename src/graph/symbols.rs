//! `--check-symbols`: every symbol a relocation needs must bind somewhere.
//!
//! Owns the static equivalent of `LD_BIND_NOW=1 LD_WARN=yes` tracing (what
//! `ldd -r` shows): for each root, the global scope is the set of objects
//! its load brings in (the program first, so it can provide symbols to its
//! libraries); every undefined, non-weak symbol that a relocation of an
//! object in that scope uses (and a weak one whose lookup would reach a
//! definition in the library its version names, built without version
//! information: glibc's assertion) is looked up by name across the scope with
//! glibc's `check_match`/`do_lookup_x` rules — allowed symbol types, no
//! zero-valued definitions, PLT relocations not satisfied by another
//! object's PLT stub, exact version match or a non-hidden unversioned
//! definition, unversioned references taking version index ≤ 2 or the one
//! versioned candidate of an object. Which definition wins does not matter
//! here, only whether one binds before the lookup reaches the library a
//! version names built without version information (the assertion of glibc
//! 2.40 and earlier), so the objects are asked in scope order and the first
//! that binds or stops the loader decides. Each root is checked by its own
//! loader's rules (`Rules`: glibc 2.41 changed two of them; musl has its
//! own: `musl_binds`).
//!
//! What a `dlopen` maps is looked up in the global scope, then the opened
//! object's search list (`RTLD_LOCAL`). A plugin's reference left unbound
//! there that an object another `dlopen` of the same host maps would bind
//! is a [`GlobalOnlySymbol`] (a warning: the host may have opened that one
//! `RTLD_GLOBAL`), not an [`UndefinedSymbol`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::{DepGraph, GlobalOnlySymbol, NodeKind, UndefinedSymbol};
use crate::elf::symbols::{
    self, Symbols, VersionName, SHN_ABS, SHN_UNDEF, STB_GLOBAL, STB_GNU_UNIQUE, STB_WEAK, STT_TLS,
};
use crate::resolve::Via;
use crate::rootfs::RootFs;
use crate::util::show;

/// Types a definition may have (`ALLOWED_STT`).
fn allowed_type(kind: u8) -> bool {
    matches!(kind, 0 | 1 | 2 | 5 | 6 | 10)
}

/// Whether an object `load` maps needs a library its root's load does not
/// find (a `DT_NEEDED` edge to a missing node of that root).
fn maps_a_missing_library(g: &DepGraph, load: &Load) -> bool {
    load.relocated.iter().any(|&x| {
        g.children(x).into_iter().any(|(c, e)| {
            e.via != Via::Interpreter
                && !e.via.outside_link_map()
                && g.graph[c].kind == NodeKind::Missing
                && g.graph[c].roots.contains(&load.root)
        })
    })
}

/// The objects one root's load brings into its global scope.
fn scope(g: &DepGraph, root: NodeIndex, ri: usize) -> Vec<NodeIndex> {
    let mut seen = BTreeSet::from([root]);
    let mut order = vec![root];
    let mut q = VecDeque::from([root]);
    while let Some(n) = q.pop_front() {
        for (c, e) in g.children(n) {
            // The program's interpreter edge and run-time loads (dlopen'd
            // objects are not in the global scope) do not count.
            // (Only this root's edges: another root's load may have found
            // the same name elsewhere.)
            if e.via == Via::Interpreter
                || e.via.outside_link_map()
                || g.graph[c].kind == NodeKind::Missing
                || !g.graph[c].roots.contains(&ri)
            {
                continue;
            }
            if seen.insert(c) {
                order.push(c);
                q.push_back(c);
            }
        }
    }
    order
}

/// Objects the loader relocates together, in one scope: a root's start-up
/// (the global scope, every member relocated), or one `dlopen`
/// ([`super::Dlopen`]: the global scope, then the opened object's own
/// dependencies breadth first, as glibc's `l_scope` of an object loaded
/// with `RTLD_LOCAL`; only what it maps is relocated).
struct Load {
    /// The root whose loader's rules and missing names count.
    root: usize,
    /// The lookup scope, in order, each object once.
    scope: Vec<NodeIndex>,
    /// The objects relocated in it (a `dlopen`'s: those it maps).
    relocated: Vec<NodeIndex>,
    /// The object that opens them (a `dlopen`'s).
    by: Option<Vec<u8>>,
    /// The program's loader (musl looks the large-file aliases up there).
    loader: Option<NodeIndex>,
}

/// The loader of the program whose process a load is in: its
/// interpreter, or for a library root the interpreter object its scope
/// holds (musl's `libc.so`).
fn loader_of(g: &DepGraph, program: NodeIndex, scope: &[NodeIndex]) -> Option<NodeIndex> {
    (g.children(program).into_iter())
        .find(|(_, e)| e.via == Via::Interpreter)
        .map(|(c, _)| c)
        .filter(|&c| g.graph[c].kind != NodeKind::Missing)
        .or_else(|| (scope.iter().copied()).find(|&n| g.graph[n].kind == NodeKind::Interpreter))
}

/// Every root's relocations: its start-up (not for a plugin, which its
/// host's start-up holds instead), then its `dlopen`s.
fn loads(g: &DepGraph) -> Vec<Load> {
    let mut global: BTreeMap<usize, Vec<NodeIndex>> = BTreeMap::new();
    let mut out = Vec::new();
    for (ri, &root) in g.root_nodes.iter().enumerate() {
        if g.plugin_hosts.contains_key(&ri) {
            continue;
        }
        let s = scope(g, root, ri);
        global.insert(ri, s.clone());
        out.push(Load {
            root: ri,
            relocated: s.clone(),
            loader: loader_of(g, root, &s),
            scope: s,
            by: None,
        });
    }
    for d in &g.dlopens {
        // A plugin's global scope is its host program's start-up.
        let host = g.plugin_hosts.get(&d.root).and_then(|p| {
            (0..g.roots.len()).find(|&i| g.roots[i] == *p && !g.plugin_hosts.contains_key(&i))
        });
        let mut order = match host.or(Some(d.root)).and_then(|i| global.get(&i)) {
            Some(s) => s.clone(),
            None => Vec::new(),
        };
        let seen: BTreeSet<NodeIndex> = order.iter().copied().collect();
        let local = scope(g, d.mapped[0], d.root);
        order.extend(local.into_iter().filter(|n| !seen.contains(n)));
        let program = g.root_nodes[host.unwrap_or(d.root)];
        out.push(Load {
            root: d.root,
            loader: loader_of(g, program, &order),
            scope: order,
            relocated: d.mapped.clone(),
            by: Some(d.by.clone()),
        });
    }
    out
}

/// Fills `g.undefined_symbols`.
///
/// Every object's table is read once and indexed once (name → the
/// definitions of every object); each load then filters a name's
/// definitions by its own scope. (Building a name map per root made the
/// union of 662 roots take 1.8 s, most of it comparing names.)
pub fn check(fs: &RootFs, g: &mut DepGraph) {
    bind(fs, g, Mode::Check);
}

/// Without `--check-symbols`: warns of each included plugin whose own
/// `dlopen` fails in every mode (what its host maps for it, relocated from
/// the last back: a reference of a relocation made at once, or any of an
/// object linked `-z now`, that binds nowhere in the host's global scope
/// and the plugin's search list, nor in what another plugin of the host
/// maps, which an `RTLD_GLOBAL` open would have made global). For a musl
/// host, by musl's rules: its objects relocated from the first on, and
/// only what its `RTLD_LAZY` does not defer (`Reference::musl_eager`).
/// A plugin whose `dlopen` maps an object needing a library the trace did
/// not find fails at that library, before any relocation: no warning (the
/// missing library is a problem already). Run-time loads the trace finds
/// are undone by the trace itself; a plugin was asked for, so it stays,
/// with the warning.
pub fn plugin_failures(fs: &RootFs, g: &mut DepGraph) {
    if !g.plugin_hosts.is_empty() {
        bind(fs, g, Mode::PluginFailures);
    }
}

/// What [`bind`] does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every reference of every load: `undefined_symbols`.
    Check,
    /// The first reference that fails a plugin's own load in every mode:
    /// a warning.
    PluginFailures,
}

/// `DT_FLAGS`' `DF_BIND_NOW`.
const DF_BIND_NOW: u32 = 0x8;
/// `DT_FLAGS_1`'s `DF_1_NOW`.
const DF_1_NOW: u32 = 0x1;

fn bind(fs: &RootFs, g: &mut DepGraph, mode: Mode) {
    let mut loads = loads(g);
    if mode == Mode::PluginFailures {
        // A plugin's own load: its host's `dlopen` of it (the plugin
        // mapped first). One that cannot map a library it needs fails
        // there, before it relocates anything: the missing library is the
        // answer (a problem already), not a symbol.
        loads.retain(|l| {
            l.by.is_some()
                && g.plugin_hosts.contains_key(&l.root)
                && l.relocated.first() == g.root_nodes.get(l.root)
                && !maps_a_missing_library(g, l)
        });
    }
    let mut failures: Vec<String> = Vec::new();
    // Every object in some scope, read once (on all cores: a read is a few
    // system calls and a copy of the tables).
    let members: BTreeSet<NodeIndex> = (loads.iter())
        .flat_map(|l| l.scope.iter().chain(&l.relocated).chain(&l.loader))
        .copied()
        .collect();
    let read = |m: &NodeIndex| {
        let node = &g.graph[*m];
        let syms = match (&node.canonical, &node.info) {
            (Some(c), Some(info)) => match fs.open(c) {
                Ok(f) => symbols::read(&f.file, info),
                Err(_) => Symbols::default(),
            },
            _ => Symbols::default(),
        };
        (*m, Arc::new(syms))
    };
    let tables: BTreeMap<NodeIndex, Arc<Symbols>> = {
        use rayon::prelude::*;
        let all: Vec<NodeIndex> = members.into_iter().collect();
        let read: Vec<(NodeIndex, Arc<Symbols>)> = all.par_iter().map(read).collect();
        read.into_iter().collect()
    };
    // Name → every symbol that can define it, in any object read; only
    // names some reference looks up (most exports are never asked for).
    type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;
    let mut defs: Map<&[u8], Vec<(NodeIndex, usize)>> = Map::default();
    // (A musl load looks up what an object defines itself, too.)
    let musl = loads
        .iter()
        .any(|l| g.root_musl.get(l.root).copied().unwrap_or(false));
    for t in tables.values() {
        let own = t.own_refs.iter().filter(|_| musl);
        for r in t.refs.iter().chain(own) {
            defs.entry(t.syms[r.index].name.as_slice()).or_default();
        }
    }
    for (&m, t) in &tables {
        for (i, s) in t.syms.iter().enumerate() {
            if i == 0 || s.name.is_empty() {
                continue;
            }
            if matches!(s.bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE) {
                if let Some(v) = defs.get_mut(s.name.as_slice()) {
                    v.push((m, i));
                }
            }
        }
    }
    let mut found: BTreeSet<UndefinedSymbol> = BTreeSet::new();
    let mut global_only: BTreeSet<GlobalOnlySymbol> = BTreeSet::new();
    let bound = petgraph::visit::NodeIndexable::node_bound(&g.graph);
    // Each object's place in this load's scope, from 1 (0: not in it).
    let mut place = vec![0u32; bound];
    // For a plugin's `dlopen`: each object another `dlopen` of its host
    // maps, outside this scope, by its place in load order, from 1.
    let mut elsewhere = vec![0u32; bound];
    let mut others: Vec<NodeIndex> = Vec::new();
    let mut cands: Vec<(NodeIndex, usize)> = Vec::new();
    // Names each root's load does not find, by root.
    let mut stubs_of: BTreeMap<usize, BTreeSet<&[u8]>> = BTreeMap::new();
    for load in &loads {
        let ri = load.root;
        let rules = if g.root_musl.get(ri).copied().unwrap_or(false) {
            Rules::Musl
        } else if g.root_check_match_2_41.get(ri).copied().unwrap_or(false) {
            Rules::Glibc2_41
        } else {
            Rules::Glibc2_36
        };
        for (k, &m) in load.scope.iter().enumerate() {
            place[m.index()] = k as u32 + 1;
        }
        // A plugin's host program is code `closure` does not read: any of
        // its `dlopen`s may have been `RTLD_GLOBAL`, which adds what it
        // maps to the global scope (glibc's `add_to_global`).
        others.clear();
        if let (Some(_), Some(host)) = (&load.by, g.plugin_hosts.get(&ri)) {
            let same_host = |l: &&Load| l.by.is_some() && g.plugin_hosts.get(&l.root) == Some(host);
            for m in loads.iter().filter(same_host).flat_map(|l| &l.relocated) {
                if place[m.index()] == 0 && elsewhere[m.index()] == 0 {
                    others.push(*m);
                    elsewhere[m.index()] = others.len() as u32;
                }
            }
        }
        // Names this root's load does not find: the loader (tracing) stands
        // a stub object in for each.
        let stubs = stubs_of.entry(ri).or_insert_with(|| {
            g.graph
                .node_indices()
                .filter(|&n| g.graph[n].kind == NodeKind::Missing && g.graph[n].roots.contains(&ri))
                .filter_map(|n| g.graph[n].missing.as_ref().map(|m| m.soname.as_slice()))
                .collect()
        });
        // (glibc relocates what a `dlopen` maps from the last back, musl
        // from the first on.)
        let relocated: Vec<NodeIndex> = match mode {
            Mode::PluginFailures if rules != Rules::Musl => {
                load.relocated.iter().rev().copied().collect()
            }
            _ => load.relocated.clone(),
        };
        let mut failed = false;
        for &x in &relocated {
            let Some(xs) = tables.get(&x) else {
                continue;
            };
            if failed {
                break;
            }
            let kept = kept_versions(g.graph[x].info.as_deref(), stubs);
            let bind_now = (g.graph[x].info.as_deref())
                .is_some_and(|i| i.flags & DF_BIND_NOW != 0 || i.flags_1 & DF_1_NOW != 0);
            // musl looks up the symbols an object defines itself as it
            // looks up the others (its own definition may not do), and an
            // unbound one is an error even if weak.
            let own = xs.own_refs.iter().filter(|_| rules == Rules::Musl);
            let mut all: Vec<(&symbols::Reference, bool)> = (xs.refs.iter().map(|r| (r, false)))
                .chain(own.map(|r| (r, true)))
                .collect();
            if mode == Mode::PluginFailures {
                // What fails the `dlopen` in every mode: glibc's `RTLD_LAZY`
                // leaves a PLT call to its first use, musl's a PLT or GOT
                // relocation (not a word of data holding an address);
                // neither does for an object linked `-z now`. musl's
                // message names the first in its relocation order.
                if rules == Rules::Musl {
                    all.retain(|(r, _)| bind_now || r.musl_eager.is_some());
                    all.sort_by_key(|(r, _)| {
                        if bind_now {
                            r.order
                        } else {
                            r.musl_eager.unwrap_or(u32::MAX)
                        }
                    });
                } else {
                    all.retain(|(r, _)| bind_now || !r.plt_only);
                    all.sort_by_key(|(r, _)| r.glibc_order);
                }
            }
            for (r, defined) in all {
                let s = &xs.syms[r.index];
                // (musl reads no version.)
                let want = s
                    .versym
                    .map(|v| v & 0x7fff)
                    .filter(|&v| v >= 2 && v <= kept && rules != Rules::Musl)
                    .and_then(|v| xs.versions.get(&v));
                // A weak reference left unbound is no error, but the loader
                // looks it up all the same, and a lookup that reaches the
                // library its version names, built without version
                // information, stops the loader (below).
                let weak = s.bind == STB_WEAK && !defined;
                if weak && want.is_none_or(|w| w.file.is_none()) {
                    continue;
                }
                // The definitions in this load's scope, in scope order; a
                // copy relocation is looked up in every object but this one.
                cands.clear();
                if let Some(all) = defs.get(s.name.as_slice()) {
                    cands.extend(
                        all.iter()
                            .copied()
                            .filter(|&(o, _)| place[o.index()] != 0 && !(r.copy && o == x)),
                    );
                }
                cands.sort_by_key(|&(o, i)| (place[o.index()], i));
                let mut found_by = lookup(&cands, &tables, r.plt_only, want, rules);
                if found_by == Lookup::Unbound && rules == Rules::Musl {
                    let loader = load.loader.and_then(|l| tables.get(&l)).map(|t| &**t);
                    let version = || {
                        let c = load.loader.and_then(|l| g.graph[l].canonical.as_ref())?;
                        crate::resolve::musl_version(&fs.open(c).ok()?)
                    };
                    if musl_large_file_alias(&s.name, loader, version) {
                        found_by = Lookup::Bound;
                    }
                }
                if found_by == Lookup::Unbound && !weak && !others.is_empty() {
                    // Which of the other `dlopen`s' objects would bind it,
                    // each asked alone.
                    cands.clear();
                    if let Some(all) = defs.get(s.name.as_slice()) {
                        cands.extend(
                            all.iter()
                                .copied()
                                .filter(|&(o, _)| elsewhere[o.index()] != 0),
                        );
                    }
                    cands.sort_by_key(|&(o, i)| (elsewhere[o.index()], i));
                    let defined_by: Vec<Vec<u8>> = (cands.chunk_by(|a, b| a.0 == b.0))
                        .filter(|group| {
                            lookup(group, &tables, r.plt_only, want, rules) == Lookup::Bound
                        })
                        .map(|group| g.graph[group[0].0].path.clone())
                        .collect();
                    if let (false, Some(by)) = (defined_by.is_empty(), &load.by) {
                        global_only.insert(GlobalOnlySymbol {
                            symbol: s.name.clone(),
                            version: want.map(|w| w.name.clone()),
                            object: g.graph[x].path.clone(),
                            loaded_by: by.clone(),
                            defined_by,
                        });
                        continue;
                    }
                }
                if mode == Mode::PluginFailures {
                    if found_by == Lookup::Unbound && !weak {
                        let version = want
                            .map(|w| format!(", version {}", show(&w.name)))
                            .unwrap_or_default();
                        let (object, plugin) = (show(&g.graph[x].path), show(&g.roots[ri]));
                        let why = format!("undefined symbol: {}{version}", show(&s.name));
                        failures.push(if object == plugin {
                            format!("{object} (a plugin): {why}: its dlopen fails")
                        } else {
                            format!("{object} (loaded with the plugin {plugin}): {why}: that dlopen fails")
                        });
                        failed = true;
                        break;
                    }
                    continue;
                }
                if found_by == Lookup::Asserts || (found_by == Lookup::Unbound && !weak) {
                    found.insert(UndefinedSymbol {
                        symbol: s.name.clone(),
                        version: want.map(|w| w.name.clone()),
                        object: g.graph[x].path.clone(),
                        loaded_by: load.by.clone(),
                    });
                }
            }
        }
        for &m in &load.scope {
            place[m.index()] = 0;
        }
        for &m in &others {
            elsewhere[m.index()] = 0;
        }
    }
    if mode == Mode::PluginFailures {
        g.warnings.extend(failures);
        g.warnings.sort();
        g.warnings.dedup();
        return;
    }
    g.undefined_symbols = found.into_iter().collect();
    g.global_only_symbols = global_only.into_iter().collect();
    if !g.global_only_symbols.is_empty() {
        let words = GlobalOnlySymbol::describe(&g.global_only_symbols);
        g.warnings.extend(words);
        g.warnings.sort();
        g.warnings.dedup();
    }
}

/// The highest version index the loader keeps for an object (`ndx_high` of
/// glibc's `_dl_check_map_versions`): its own definitions' indices and
/// those of its requirements, except requirements of a library it did not
/// find. Tracing, the loader stands a stub in for that library and skips
/// its requirements when it counts; an index above the count is never
/// stored, so a symbol carrying it is looked up without a version (and
/// `ldd -r` names it without one). Requirements below the count keep their
/// version. (glibc reads such an entry past the end of its table: zeros as
/// a rule, which is what this models; other heap contents crash `ldd -r`.)
fn kept_versions(info: Option<&crate::elf::ElfInfo>, stubs: &BTreeSet<&[u8]>) -> u16 {
    let Some(info) = info else {
        return u16::MAX;
    };
    let defined = info.verdef.iter().map(|d| d.index & 0x7fff);
    let required = info
        .verneed
        .iter()
        .filter(|n| !stubs.contains(n.file.as_slice()))
        .flat_map(|n| n.versions.iter().map(|a| a.other & 0x7fff));
    defined.chain(required).max().unwrap_or(0)
}

/// The first reference, in glibc's relocation order (`Reference::glibc_order`),
/// of an object a `dlopen` relocates (`x`) that no object of `scope` (in order) binds, with its version, among those that
/// fail such a `dlopen` whatever mode it is made in: a reference of a
/// relocation the loader makes at once (not a PLT one, which `RTLD_LAZY`
/// leaves to the first call), or any when the object is linked
/// `-z now` (`bind_now`). Weak references never fail; one that would trip
/// glibc's assertion (a version of a library without version
/// information, before 2.41) stops the process, not the `dlopen`, and is
/// not this answer.
pub(crate) fn first_unbound(
    x: &symbols::Symbols,
    bind_now: bool,
    scope: &mut dyn FnMut(usize) -> Option<Arc<symbols::Indexed>>,
    rules_2_41: bool,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let rules = if rules_2_41 {
        Rules::Glibc2_41
    } else {
        Rules::Glibc2_36
    };
    // (In glibc's relocation order: the first that fails is the error.)
    let mut refs: Vec<&symbols::Reference> = x.refs.iter().collect();
    refs.sort_by_key(|r| r.glibc_order);
    let mut group: Vec<(NodeIndex, usize)> = Vec::new();
    for r in refs {
        let s = &x.syms[r.index];
        if s.bind == STB_WEAK || (r.plt_only && !bind_now) {
            continue;
        }
        let want = s
            .versym
            .map(|v| v & 0x7fff)
            .filter(|&v| v >= 2)
            .and_then(|v| x.versions.get(&v));
        let mut bound = false;
        let mut k = 0;
        while let Some(t) = scope(k) {
            k += 1;
            group.clear();
            group.extend(t.named(&s.name).map(|i| (NodeIndex::new(0), i)));
            if group.is_empty() {
                continue;
            }
            let named = want.is_some_and(|w| {
                w.file.is_some() && w.file.as_deref() == t.table.soname.as_deref()
            });
            if named && !t.table.has_versym && rules == Rules::Glibc2_36 {
                // (The assertion, or on to the next object.)
                if group
                    .iter()
                    .any(|&(_, i)| matchable(&t.table.syms[i], r.plt_only))
                {
                    bound = true;
                    break;
                }
                continue;
            }
            if binds(&group, &t.table, r.plt_only, want, rules) {
                bound = true;
                break;
            }
        }
        if !bound {
            return Some((s.name.clone(), want.map(|w| w.name.clone())));
        }
    }
    None
}

/// Whether the object whose symbols are `t` defines `name` for an
/// unversioned lookup with no flags (as `rtld` looks up an audit module's
/// `la_version`): a global, weak or unique symbol that passes the first
/// tests of `check_match` and its rule for a lookup without a version.
pub(crate) fn defines_unversioned(t: &Symbols, name: &[u8]) -> bool {
    let group: Vec<(NodeIndex, usize)> = t
        .syms
        .iter()
        .enumerate()
        .filter(|(_, d)| d.name == name && matches!(d.bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE))
        .map(|(i, _)| (NodeIndex::new(0), i))
        .collect();
    binds(&group, t, false, None, Rules::Glibc2_36)
}

/// The first tests of glibc's `check_match`: a definition (not a zero
/// value unless absolute or TLS), not the PLT stub of an undefined symbol
/// for a PLT relocation, of an allowed type. A TLS symbol is looked up only
/// by TLS relocations, which glibc's `elf_machine_type_class` puts in the
/// PLT class ("so undefined references should not be allowed to define
/// the value"): an undefined one never matches.
fn matchable(d: &symbols::Symbol, plt_only: bool) -> bool {
    let unset = d.value == 0 && d.shndx != SHN_ABS && d.kind != STT_TLS;
    let stub = (plt_only || d.kind == STT_TLS) && d.shndx == SHN_UNDEF;
    !unset && !stub && allowed_type(d.kind)
}

/// How a lookup ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// An object binds the reference.
    Bound,
    /// The lookup reaches a definition in the library the reference's
    /// version names, built without version information, before any object
    /// binds: glibc's `check_match` fails an assertion and the loader exits
    /// (127), so the program cannot start whatever the reference's binding.
    Asserts,
    /// No object binds it.
    Unbound,
}

/// Which glibc's `check_match` a root's loader has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// 2.40 and earlier: a versioned lookup that reaches the library its
    /// version names, built without version information, fails an
    /// assertion; a definition whose version hash is 0 is unversioned.
    Glibc2_36,
    /// 2.41 and later: that lookup binds there, and only a definition
    /// whose version index has no entry is unversioned.
    Glibc2_41,
    /// musl's `find_sym`: no versions, no IFUNC ([`musl_binds`]).
    Musl,
}

/// The lookup of a reference through `cands`, its definitions in scope
/// order (grouped by object): the first object that binds it or stops the
/// loader decides, as in glibc's `do_lookup_x`, which asks the objects of
/// the scope in turn.
fn lookup(
    cands: &[(NodeIndex, usize)],
    tables: &BTreeMap<NodeIndex, Arc<Symbols>>,
    plt_only: bool,
    want: Option<&VersionName>,
    rules: Rules,
) -> Lookup {
    for group in cands.chunk_by(|a, b| a.0 == b.0) {
        let t = &tables[&group[0].0];
        // A library the version names, without version information: its
        // first definition that passes the first tests stops a loader
        // before 2.41 (later ones bind there, below).
        let named =
            want.is_some_and(|w| w.file.is_some() && w.file.as_deref() == t.soname.as_deref());
        if named && !t.has_versym && rules == Rules::Glibc2_36 {
            if group.iter().any(|&(_, i)| matchable(&t.syms[i], plt_only)) {
                return Lookup::Asserts;
            }
            continue;
        }
        if binds(group, t, plt_only, want, rules) {
            return Lookup::Bound;
        }
    }
    Lookup::Unbound
}

/// Whether one object's definitions (`group`, of the table `t`) bind the
/// reference.
fn binds(
    group: &[(NodeIndex, usize)],
    t: &Symbols,
    plt_only: bool,
    want: Option<&VersionName>,
    rules: Rules,
) -> bool {
    if rules == Rules::Musl {
        return musl_binds(group, t, plt_only);
    }
    // The "one versioned candidate" rule is per object.
    let mut versioned = 0;
    for &(_, i) in group {
        let d = &t.syms[i];
        if !matchable(d, plt_only) {
            continue;
        }
        let Some(vs) = d.versym.filter(|_| t.has_versym) else {
            // No version information: accepted (the library the version
            // names is handled by `lookup`).
            return true;
        };
        let ndx = vs & 0x7fff;
        let hidden = vs & 0x8000 != 0;
        match want {
            Some(w) => {
                // glibc's `check_match`: the same version (hash and name),
                // or, for a reference that is not hidden, a visible
                // unversioned definition: before 2.41 one whose version
                // hash is 0 (index 0 or 1, which have none, an index no
                // version uses, or a version stored with hash 0); from 2.41
                // only one whose index has no version.
                let def = t.versions.get(&ndx);
                if def.is_some_and(|v| v.hash == w.hash && v.name == w.name) {
                    return true;
                }
                let unversioned = match rules {
                    Rules::Glibc2_36 => def.map_or(0, |v| v.hash) == 0,
                    Rules::Glibc2_41 | Rules::Musl => def.is_none(),
                };
                if !w.hidden && unversioned && !hidden {
                    return true;
                }
            }
            None => {
                if ndx < 3 {
                    return true;
                }
                if !hidden {
                    versioned += 1;
                }
            }
        }
    }
    want.is_none() && versioned == 1
}

/// Whether one object's definitions (`group`, in table order) bind a
/// reference under musl's `find_sym`. Its hash lookup stops at the first
/// symbol of the name whose version entry is not hidden (`versym` not
/// negative; the version's name is never read, so a reference binds a
/// definition of any version or none, and never a hidden one, even of the
/// version it names); that symbol binds or the lookup goes on to the next
/// object: a definition (not, for a PLT relocation, an undefined symbol's
/// stub, nor an undefined TLS symbol), with a value (no exception for
/// absolute symbols, unlike glibc), of type none, object, function, common
/// or TLS (not IFUNC, which musl does not implement). (MIPS's rule for an
/// undefined symbol, `STO_MIPS_PLT`, is not modelled.)
fn musl_binds(group: &[(NodeIndex, usize)], t: &Symbols, plt_only: bool) -> bool {
    let visible = |d: &&symbols::Symbol| !t.has_versym || d.versym.is_none_or(|v| v & 0x8000 == 0);
    let Some(d) = group.iter().map(|&(_, i)| &t.syms[i]).find(visible) else {
        return false;
    };
    let stub = (plt_only || d.kind == STT_TLS) && d.shndx == SHN_UNDEF;
    let unset = d.value == 0 && d.kind != STT_TLS;
    !stub && !unset && matches!(d.kind, 0 | 1 | 2 | 5 | 6)
}

/// The large-file names musl 1.2.4 dropped from `libc.so` (`open64`,
/// `fopen64`, …, and `readdir64_r`): a reference to one that no object
/// binds is looked up again, without the `64`, in the loader (its
/// `get_lfs64`; `readdir64_r` as `readdir_r`), as a PLT lookup (no stub
/// binds). In 1.2.4 and 1.2.5 its buffer holds 15 characters, so
/// `posix_fallocate64` is not mapped; 1.2.6 maps it (the loader's version
/// is read only then: `version`). Earlier musl defines every such name
/// itself, so the rule changes nothing there. Whether `loader` (its table)
/// binds `name` so.
fn musl_large_file_alias(
    name: &[u8],
    loader: Option<&Symbols>,
    version: impl FnOnce() -> Option<(u32, u32, u32)>,
) -> bool {
    const BASES: &[&str] = &[
        "aio_cancel",
        "aio_error",
        "aio_fsync",
        "aio_read",
        "aio_return",
        "aio_suspend",
        "aio_write",
        "alphasort",
        "creat",
        "fallocate",
        "fgetpos",
        "fopen",
        "freopen",
        "fseeko",
        "fsetpos",
        "fstat",
        "fstatat",
        "fstatfs",
        "fstatvfs",
        "ftello",
        "ftruncate",
        "ftw",
        "getdents",
        "getrlimit",
        "glob",
        "globfree",
        "lio_listio",
        "lockf",
        "lseek",
        "lstat",
        "mkostemp",
        "mkostemps",
        "mkstemp",
        "mkstemps",
        "mmap",
        "nftw",
        "open",
        "openat",
        "posix_fadvise",
        "posix_fallocate",
        "pread",
        "preadv",
        "prlimit",
        "pwrite",
        "pwritev",
        "readdir",
        "scandir",
        "sendfile",
        "setrlimit",
        "stat",
        "statfs",
        "statvfs",
        "tmpfile",
        "truncate",
        "versionsort",
        "__fxstat",
        "__fxstatat",
        "__lxstat",
        "__xstat",
    ];
    let Some(t) = loader else {
        return false;
    };
    let base: &[u8] = if name == b"readdir64_r" {
        b"readdir_r"
    } else {
        match name.strip_suffix(b"64") {
            Some(b) if BASES.iter().any(|x| x.as_bytes() == b) => b,
            _ => return false,
        }
    };
    if name.len() >= 16 && version().is_some_and(|v| v < (1, 2, 6)) {
        return false;
    }
    let group: Vec<(NodeIndex, usize)> = (t.syms.iter().enumerate())
        .filter(|(_, d)| d.name == base && matches!(d.bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE))
        .map(|(i, _)| (NodeIndex::new(0), i))
        .collect();
    musl_binds(&group, t, true)
}

/// [`first_unbound`] for musl's `dlopen`, which relocates each new object
/// from the opened one on (`x` one of them): the first reference (in
/// musl's relocation order: `DT_JMPREL`, then the others) that its
/// `RTLD_LAZY` does not defer (any, for an object linked `-z now`) and
/// that no object of `scope` binds by musl's rules, nor the loader
/// (`loader`, its table and version) as a large-file name. A symbol the
/// object defines itself is looked up too, and is an error even if weak.
pub(crate) fn first_unbound_musl(
    x: &Symbols,
    bind_now: bool,
    scope: &mut dyn FnMut(usize) -> Option<Arc<symbols::Indexed>>,
    loader: Option<&Symbols>,
    version: &mut dyn FnMut() -> Option<(u32, u32, u32)>,
) -> Option<Vec<u8>> {
    let mut refs: Vec<(&symbols::Reference, bool)> = (x.refs.iter().map(|r| (r, false)))
        .chain(x.own_refs.iter().map(|r| (r, true)))
        .filter(|(r, _)| bind_now || r.musl_eager.is_some())
        .collect();
    refs.sort_by_key(|(r, _)| {
        if bind_now {
            r.order
        } else {
            r.musl_eager.unwrap_or(u32::MAX)
        }
    });
    let mut group: Vec<(NodeIndex, usize)> = Vec::new();
    for (r, defined) in refs {
        let s = &x.syms[r.index];
        if s.bind == STB_WEAK && !defined {
            continue;
        }
        let mut bound = false;
        let mut k = 0;
        while let Some(t) = scope(k) {
            k += 1;
            // (A copy relocation skips the program.)
            if r.copy && k == 1 {
                continue;
            }
            group.clear();
            group.extend(t.named(&s.name).map(|i| (NodeIndex::new(0), i)));
            if !group.is_empty() && musl_binds(&group, &t.table, r.plt_only) {
                bound = true;
                break;
            }
        }
        if !bound && !musl_large_file_alias(&s.name, loader, &mut *version) {
            return Some(s.name.clone());
        }
    }
    None
}
