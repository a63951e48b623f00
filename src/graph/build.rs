//! Replaying the loader's breadth-first load of each root.
//!
//! For each root: the program, then its interpreter (registered under its
//! `PT_INTERP` string and SONAME, as `rtld` does), then a FIFO walk over the
//! load list in which every `DT_NEEDED` of every object, in dynamic-section
//! order, is first matched against the objects already loaded (by the path
//! they were opened by, the names they were requested under, and their
//! SONAME), then searched for with that object as the requester. A file found
//! again under another path (same device and inode) is the same object. The
//! per-root results are merged into one [`DepGraph`], in root order, by the
//! calling thread while rayon's pool traces the roots after them;
//! symbol-version requirements are checked against the object each name
//! resolved to.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::{DepGraph, Edge, MissingInfo, MissingVersion, Node, NodeKind};
use crate::elf::notes::Priority;
use crate::elf::{ElfInfo, NotElf, ParseError, VER_FLG_WEAK};
use crate::error::{Error, Result};
use crate::resolve::{dirname, ChainLink, Flavor, Found, Outcome, Request, Resolver, Target, Via};
use crate::util::show;

/// Options of a build beyond the resolver's.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Follow `.note.dlopen` entries of at least this priority (None: ignore them).
    pub dlopen_priority: Option<Priority>,
    /// Only `.note.dlopen` entries of these features (empty: all).
    pub dlopen_features: Vec<String>,
    /// NSS services named by the `/etc/nsswitch.conf` that will be staged.
    pub nss_services: Option<Vec<Vec<u8>>>,
    /// Add `libgcc_s.so.1` when the closure uses `pthread_cancel` & co.
    pub libgcc: bool,
    /// gconv modules to load (`--gconv`).
    pub gconv: Option<crate::runtime::GconvSpec>,
    /// Files from `--include` that are ELF or scripts: traced like roots
    /// after them (their nodes say `include`).
    pub include_roots: Vec<Vec<u8>>,
    /// Paths searched for `#!/usr/bin/env NAME` (default: a container's usual `PATH`).
    pub script_path: Option<Vec<Vec<u8>>>,
    /// Keep every search record of names that were found (in
    /// [`DepGraph::searches`]), for `--verbose`.
    pub keep_search: bool,
}

/// One object in a root's load list.
struct Obj {
    /// Shared with the resolver's memo (cloning is a reference count).
    found: Arc<Found>,
    kind: NodeKind,
    /// Names this object was requested under (aliases, `l_libname`).
    names: Vec<Vec<u8>>,
    /// The `l_name` used for name matching (empty for the main program).
    l_name: Vec<u8>,
    /// Index of the object that first loaded it.
    loader: Option<usize>,
    /// Other paths found by search that turned out to be this file.
    also_opened: Vec<Vec<u8>>,
    link: Arc<ChainLink>,
    /// An interpreter registered for name matching only (a library given
    /// as a root has no `PT_INTERP`): part of the closure only once some
    /// `DT_NEEDED` names it.
    latent: bool,
}

/// Where an edge leads in a root's trace.
enum To {
    Obj(usize),
    Missing(usize),
}

struct RootTrace {
    objs: Vec<Obj>,
    missing: Vec<MissingInfo>,
    edges: Vec<(usize, To, Edge)>,
    /// (object index, name) pairs, for version checks: what each needed name resolved to.
    resolved_names: Vec<(usize, Vec<u8>, usize)>,
    /// (object, index of its `Verneed`, object that file name resolved
    /// to) for each version requirement against a library with version
    /// definitions: what the merge checks.
    version_links: Vec<(usize, usize, usize)>,
    script: Option<Vec<u8>>,
    warnings: Vec<String>,
    target: Option<Target>,
    /// (requester index, name, search record) of names found by a search,
    /// kept only with `BuildOptions::keep_search`.
    searches: Vec<(usize, Vec<u8>, Vec<crate::resolve::Searched>)>,
    /// Non-ELF files the run-time loads need (gconv configuration).
    extra_files: Vec<Vec<u8>>,
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

/// A hash set with foldhash (SipHash showed in profiles).
type FastSet<T> = HashSet<T, foldhash::quality::RandomState>;

/// Builds the merged graph of `roots` (in-root paths, as given).
pub fn build(resolver: &Resolver<'_>, roots: &[Vec<u8>], opts: &BuildOptions) -> Result<DepGraph> {
    let mut g = DepGraph::default();
    if let Some(p) = resolver.cache_problem() {
        g.warnings.push(p);
    }
    let mut pending: Vec<(Vec<u8>, Via)> = roots.iter().map(|r| (r.clone(), Via::Root)).collect();
    pending.extend(opts.include_roots.iter().map(|r| (r.clone(), Via::Include)));
    // Open and parse the roots, and transitively the libraries the
    // ld.so.cache names for them, on every core first: the traces below
    // then mostly find their files parsed.
    let prefetch: Vec<Vec<u8>> = pending.iter().map(|(p, _)| p.clone()).collect();
    resolver.prefetch_closure(&prefetch);
    let mut script_edges: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Membership of `pending` and of the roots traced so far (many roots:
    // a linear scan per root would be quadratic).
    let mut queued: FastSet<Vec<u8>> = pending.iter().map(|(p, _)| p.clone()).collect();
    let mut traced: FastSet<Vec<u8>> = FastSet::default();
    let mut memo = MergeMemo::default();
    let mut i = 0;
    while i < pending.len() {
        // The roots queued so far are traced on all cores, then merged one
        // by one in queue order: the graph is the same as a sequential
        // walk's. Roots a trace adds (script interpreters, hwcaps
        // variants) form the next batch.
        let mut batch: Vec<(Vec<u8>, Via)> = Vec::new();
        for (root, via) in &pending[i..] {
            if traced.insert(root.clone()) {
                batch.push((root.clone(), *via));
            }
        }
        i = pending.len();
        // Each trace is merged as soon as it and those before it are done,
        // while the other roots are still being traced: the merge (serial)
        // overlaps the traces (parallel). The order of merging, and so the
        // graph, is the queue order whatever the timing.
        let mut merge_one = |(root, via): (Vec<u8>, Via), trace: Result<RootTrace>| -> Result<()> {
            let mut trace = trace?;
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
                            trace.edges.push((
                                0,
                                To::Missing(trace.missing.len() - 1),
                                Edge {
                                    name,
                                    via: Via::Interpreter,
                                    owner: None,
                                    detail: None,
                                },
                            ));
                        }
                    }
                }
            }
            if let Some(t) = &trace.target {
                if g.goarch.is_none() {
                    g.goarch = Some(t.arch.goarch);
                    g.big_endian = t.ident.big_endian;
                }
                g.system_dirs.extend(t.system_dirs.iter().cloned());
            }
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
            merge(&mut g, root, trace, &mut memo);
            Ok(())
        };
        if batch.len() < 2 {
            // Not worth starting the thread pool for.
            for (root, via) in batch {
                let trace = trace_root(resolver, &root, opts);
                merge_one((root, via), trace)?;
            }
        } else {
            let (tx, rx) = std::sync::mpsc::channel();
            let mut merged: Result<()> = Ok(());
            rayon::in_place_scope(|s| {
                for (i, (root, _)) in batch.iter().enumerate() {
                    let tx = tx.clone();
                    s.spawn(move |_| {
                        let _ = tx.send((i, trace_root(resolver, root, opts)));
                    });
                }
                drop(tx);
                let mut done: BTreeMap<usize, Result<RootTrace>> = BTreeMap::new();
                let mut next = 0;
                for (i, trace) in rx {
                    done.insert(i, trace);
                    while let Some(trace) = done.remove(&next) {
                        if merged.is_ok() {
                            merged = merge_one(batch[next].clone(), trace);
                        }
                        next += 1;
                    }
                }
            });
            merged?;
        }
    }
    memo.finish(&mut g);
    add_elsewhere_hints(resolver, &mut g);
    for (script, prog) in script_edges {
        if let (Some(&a), Some(&b)) = (g.index.get(&script), g.index.get(&prog)) {
            g.graph[b].needed_by.insert(script.clone());
            g.graph.add_edge(
                a,
                b,
                Edge {
                    name: prog,
                    via: Via::Interpreter,
                    owner: None,
                    detail: None,
                },
            );
        }
    }
    if let Some(p) = resolver.cache_problem() {
        if !g.warnings.contains(&p) {
            g.warnings.push(p);
        }
    }
    g.missing_versions.sort();
    g.missing_versions.dedup();
    g.warnings.sort();
    g.warnings.dedup();
    Ok(g)
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

/// One root's load list, with its version requirements paired up (on the
/// tracing core, not in the serial merge).
fn trace_root(resolver: &Resolver<'_>, root: &[u8], opts: &BuildOptions) -> Result<RootTrace> {
    let mut t = load_list(resolver, root, opts)?;
    t.version_links = version_links(&t);
    t.resolved_names = Vec::new();
    Ok(t)
}

/// Each `Verneed` of each object paired with the object its file name
/// resolved to for that requester (else for any requester), when that
/// object has version definitions. musl never checks version names.
fn version_links(t: &RootTrace) -> Vec<(usize, usize, usize)> {
    if t.target.as_ref().is_some_and(|x| x.flavor == Flavor::Musl) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (k, o) in t.objs.iter().enumerate() {
        for (vn_index, vn) in o.found.info.verneed.iter().enumerate() {
            let Some(&(_, _, j)) = t
                .resolved_names
                .iter()
                .find(|(from, n, _)| *from == k && *n == vn.file)
                .or_else(|| t.resolved_names.iter().find(|(_, n, _)| *n == vn.file))
            else {
                continue; // the library itself is missing: reported already
            };
            if t.objs[j].found.info.verdef.is_empty() {
                continue; // "no version information available": a warning only
            }
            out.push((k, vn_index, j));
        }
    }
    out
}

fn load_list(resolver: &Resolver<'_>, root: &[u8], opts: &BuildOptions) -> Result<RootTrace> {
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
                    objs: vec![Obj {
                        found: Arc::new(Found {
                            path: root.to_vec(),
                            canonical: file.resolved.canonical,
                            hops: file.resolved.hops,
                            file_id: (0, 0),
                            size: file.meta.len(),
                            via: Via::Root,
                            owner: None,
                            info: Arc::new(empty_info()),
                            variants: Vec::new(),
                        }),
                        kind: NodeKind::Root,
                        names: Vec::new(),
                        l_name: Vec::new(),
                        loader: None,
                        also_opened: Vec::new(),
                        link: Arc::new(ChainLink {
                            name: root.to_vec(),
                            rpath: None,
                            runpath: None,
                            origin: Vec::new(),
                            nodeflib: false,
                        }),
                        latent: false,
                    }],
                    missing: Vec::new(),
                    edges: Vec::new(),
                    resolved_names: Vec::new(),
                    version_links: Vec::new(),
                    script: Some(line),
                    warnings: Vec::new(),
                    target: None,
                    extra_files: Vec::new(),
                    searches: Vec::new(),
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
        objs: Vec::new(),
        missing: Vec::new(),
        edges: Vec::new(),
        resolved_names: Vec::new(),
        version_links: Vec::new(),
        script: None,
        target: None,
        extra_files: Vec::new(),
        searches: Vec::new(),
        warnings: info
            .warnings
            .iter()
            .map(|w| format!("{}: {w}", show(root)))
            .collect(),
    };
    let exe_origin = dirname(found.canonical.as_os_str().as_encoded_bytes());
    let link = link_for(&found, exe_origin);
    t.objs.push(Obj {
        names: Vec::new(),
        l_name: Vec::new(),
        kind: NodeKind::Root,
        loader: None,
        also_opened: Vec::new(),
        found: Arc::new(found),
        link,
        latent: false,
    });
    if !info.is_dynamic() && info.interp.is_none() {
        return Ok(t); // static: nothing to resolve
    }
    let target = resolver.target_for(&info);
    t.target = Some(target.clone());
    t.extra_files.extend(target.config_files.iter().cloned());

    // The interpreter: the program's own, or for a library given as a root
    // the architecture's usual one (what `ld.so --list lib.so` reports).
    let interp = info
        .interp
        .clone()
        .unwrap_or_else(|| target.arch.glibc_interp.as_bytes().to_vec());
    match resolver.load_path(&interp) {
        Ok(mut f) => {
            f.via = Via::Interpreter;
            let mut names = vec![interp.clone()];
            if let Some(s) = &f.info.soname {
                names.push(s.clone());
            }
            let link = link_for(&f, dirname(&interp));
            let latent = info.interp.is_none();
            if !latent {
                // The kernel maps the program's interpreter whatever it needs.
                t.edges.push((
                    0,
                    To::Obj(1),
                    Edge {
                        name: interp.clone(),
                        via: Via::Interpreter,
                        owner: None,
                        detail: None,
                    },
                ));
            }
            t.objs.push(Obj {
                found: Arc::new(f),
                kind: NodeKind::Interpreter,
                names,
                l_name: interp.clone(),
                loader: None,
                also_opened: Vec::new(),
                link,
                latent,
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
            t.edges.push((
                0,
                To::Missing(t.missing.len() - 1),
                Edge {
                    name: interp.clone(),
                    via: Via::Interpreter,
                    owner: None,
                    detail: None,
                },
            ));
        }
        Err(_) => {}
    }

    // Breadth-first over the load list; then what the loader or libc only
    // loads at run time (dlopen notes, NSS, libgcc_s), whose own
    // dependencies go through the same walk.
    let mut q = 0;
    let mut queue = vec![0usize];
    let mut notes_done = 0;
    let mut extras_done = false;
    loop {
        if q >= queue.len() {
            while notes_done < t.objs.len() {
                add_dlopen_notes(resolver, &target, opts, &mut t, notes_done, &mut queue);
                notes_done += 1;
            }
            if !extras_done {
                extras_done = true;
                if target.flavor == Flavor::Glibc {
                    add_nss(resolver, &target, opts, &mut t, &mut queue);
                    add_libgcc(resolver, &target, opts, &mut t, &mut queue);
                    add_gconv(resolver, &target, opts, &mut t, &mut queue);
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
        let chain = chain_of(&t.objs, cur);
        for name in info.needed.iter().chain(&info.filters) {
            let name = name.clone();
            // Already loaded under this name?
            if let Some(j) = find_loaded_for(&target, &t.objs, &name) {
                t.objs[j].latent = false;
                t.edges.push((
                    cur,
                    To::Obj(j),
                    Edge {
                        name: name.clone(),
                        via: Via::Loaded,
                        owner: None,
                        detail: None,
                    },
                ));
                t.resolved_names.push((cur, name, j));
                continue;
            }
            let res = resolver.resolve(
                &target,
                &Request {
                    name: &name,
                    chain: &chain,
                },
            );
            match &res.outcome {
                Outcome::Found(f) => {
                    let f = f.clone();
                    let existing = t.objs.iter().position(|o| o.found.file_id == f.file_id);
                    let j = match existing {
                        Some(j) => {
                            t.objs[j].names.push(name.clone());
                            t.objs[j].latent = false;
                            if f.path != t.objs[j].found.path {
                                t.objs[j].also_opened.push(f.path.clone());
                            }
                            j
                        }
                        None => {
                            let origin = dirname(&f.path);
                            let link = link_for(&f, origin);
                            let w: Vec<String> = f
                                .info
                                .warnings
                                .iter()
                                .map(|w| format!("{}: {w}", show(&f.path)))
                                .collect();
                            t.warnings.extend(w);
                            t.objs.push(Obj {
                                l_name: f.path.clone(),
                                names: vec![name.clone()],
                                kind: NodeKind::Library,
                                loader: Some(cur),
                                also_opened: Vec::new(),
                                link,
                                found: f,
                                latent: false,
                            });
                            queue.push(t.objs.len() - 1);
                            t.objs.len() - 1
                        }
                    };
                    let f = &t.objs[j].found;
                    let via = if existing.is_some() && j != cur {
                        res.searched.last().map(|s| s.via).unwrap_or(Via::Loaded)
                    } else {
                        f.via
                    };
                    let owner = res.searched.last().and_then(|s| s.owner.clone());
                    t.edges.push((
                        cur,
                        To::Obj(j),
                        Edge {
                            name: name.clone(),
                            via,
                            owner,
                            detail: None,
                        },
                    ));
                    if opts.keep_search {
                        t.searches.push((cur, name.clone(), res.searched.clone()));
                    }
                    t.resolved_names.push((cur, name, j));
                }
                Outcome::Missing | Outcome::Fatal { .. } => {
                    let res = (*res).clone();
                    let fatal = match res.outcome {
                        Outcome::Fatal { path, reason } => Some((path, reason)),
                        _ => None,
                    };
                    let mut notes = res.notes;
                    notes.extend(hints(resolver, &target, &name));
                    t.missing.push(MissingInfo {
                        soname: name.clone(),
                        needed_by: t.objs[cur].found.path.clone(),
                        searched: res.searched,
                        notes,
                        fatal,
                    });
                    t.edges.push((
                        cur,
                        To::Missing(t.missing.len() - 1),
                        Edge {
                            name,
                            via: Via::Default,
                            owner: None,
                            detail: None,
                        },
                    ));
                }
                Outcome::Ignored(why) => t
                    .warnings
                    .push(format!("{}: {why}", show(&t.objs[cur].found.path))),
            }
        }
    }
    Ok(t)
}

/// Loads `name` on behalf of object `from` the way `dlopen` would: an
/// object already loaded under that name is reused; otherwise it is
/// searched with `from`'s rules and joins the load list with no loader
/// (its own dependencies see its RPATH, then the program's). Returns the
/// object index, or the failed resolution.
fn load_runtime(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &mut RootTrace,
    from: usize,
    name: &[u8],
    (via, detail): (Via, String),
    queue: &mut Vec<usize>,
) -> std::result::Result<usize, Box<crate::resolve::Resolution>> {
    let edge = |name: &[u8]| Edge {
        name: name.to_vec(),
        via,
        owner: None,
        detail: Some(detail.clone()),
    };
    if let Some(j) = find_loaded(&t.objs, name) {
        t.objs[j].latent = false;
        t.edges.push((from, To::Obj(j), edge(name)));
        return Ok(j);
    }
    let chain = chain_of(&t.objs, from);
    let res = resolver.resolve(
        target,
        &Request {
            name,
            chain: &chain,
        },
    );
    let Outcome::Found(f) = &res.outcome else {
        return Err(Box::new((*res).clone()));
    };
    let mut f = f.clone();
    let j = match t.objs.iter().position(|o| o.found.file_id == f.file_id) {
        Some(j) => {
            t.objs[j].names.push(name.to_vec());
            j
        }
        None => {
            // Loaded at run time: the node says how (a copy of the shared
            // search result, rare).
            Arc::make_mut(&mut f).via = via;
            let link = link_for(&f, dirname(&f.path));
            t.objs.push(Obj {
                l_name: f.path.clone(),
                names: vec![name.to_vec()],
                kind: NodeKind::Library,
                loader: None,
                also_opened: Vec::new(),
                link,
                found: f,
                latent: false,
            });
            queue.push(t.objs.len() - 1);
            t.objs.len() - 1
        }
    };
    t.edges.push((from, To::Obj(j), edge(name)));
    Ok(j)
}

/// Records a run-time dependency that cannot be found: a problem when it
/// is required, a warning otherwise.
fn runtime_missing(
    t: &mut RootTrace,
    from: usize,
    name: &[u8],
    res: Option<Box<crate::resolve::Resolution>>,
    why: String,
    required: bool,
) {
    if !required {
        t.warnings.push(format!(
            "{}: {} not found ({why})",
            show(&t.objs[from].found.path),
            show(name)
        ));
        return;
    }
    let (searched, mut notes, fatal) = match res {
        Some(r) => {
            let r = *r;
            let fatal = match r.outcome {
                Outcome::Fatal { path, reason } => Some((path, reason)),
                _ => None,
            };
            (r.searched, r.notes, fatal)
        }
        None => (Vec::new(), Vec::new(), None),
    };
    notes.push(why);
    t.missing.push(MissingInfo {
        soname: name.to_vec(),
        needed_by: t.objs[from].found.path.clone(),
        searched,
        notes,
        fatal,
    });
    t.edges.push((
        from,
        To::Missing(t.missing.len() - 1),
        Edge {
            name: name.to_vec(),
            via: Via::DlopenNote,
            owner: None,
            detail: Some("required".into()),
        },
    ));
}

/// The `.note.dlopen` entries of object `k` that the options select.
fn add_dlopen_notes(
    resolver: &Resolver<'_>,
    target: &Target,
    opts: &BuildOptions,
    t: &mut RootTrace,
    k: usize,
    queue: &mut Vec<usize>,
) {
    let Some(min) = opts.dlopen_priority else {
        return;
    };
    let entries = t.objs[k].found.info.dlopen.clone();
    for e in entries {
        if e.priority > min {
            continue;
        }
        if !opts.dlopen_features.is_empty()
            && !e
                .feature
                .as_ref()
                .is_some_and(|f| opts.dlopen_features.contains(f))
        {
            continue;
        }
        let detail = match &e.feature {
            Some(f) => format!("{}, feature {f}", e.priority.as_str()),
            None => e.priority.as_str().to_string(),
        };
        // The first alternative that exists wins.
        let mut last = None;
        let mut done = false;
        for name in &e.sonames {
            match load_runtime(
                resolver,
                target,
                t,
                k,
                name,
                (Via::DlopenNote, detail.clone()),
                queue,
            ) {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(res) => last = Some(res),
            }
        }
        if !done {
            let names: Vec<String> = e.sonames.iter().map(|n| show(n)).collect();
            runtime_missing(
                t,
                k,
                &e.sonames[0],
                last,
                format!(
                    "declared in the .note.dlopen of {} ({detail}; alternatives: {})",
                    show(&t.objs[k].found.path),
                    names.join(", ")
                ),
                e.priority == Priority::Required,
            );
        }
    }
}

/// The object run-time loads by glibc are attributed to: libc.so.6 when
/// it is in the closure, else the program.
fn libc_index(t: &RootTrace) -> usize {
    t.objs
        .iter()
        .position(|o| o.found.info.soname.as_deref() == Some(b"libc.so.6".as_slice()))
        .unwrap_or(0)
}

/// NSS modules of the services the staged `/etc/nsswitch.conf` names.
fn add_nss(
    resolver: &Resolver<'_>,
    target: &Target,
    opts: &BuildOptions,
    t: &mut RootTrace,
    queue: &mut Vec<usize>,
) {
    let Some(services) = &opts.nss_services else {
        return;
    };
    let from = libc_index(t);
    for svc in services {
        let mut name = b"libnss_".to_vec();
        name.extend_from_slice(svc);
        name.extend_from_slice(b".so.2");
        let detail = format!("service {}", show(svc));
        if load_runtime(
            resolver,
            target,
            t,
            from,
            &name,
            (Via::Nsswitch, detail),
            queue,
        )
        .is_err()
        {
            t.warnings.push(format!(
                "/etc/nsswitch.conf names the service {} but {} is not in the sysroot; glibc skips it silently",
                show(svc),
                show(&name)
            ));
        }
    }
}

/// gconv modules chosen with `--gconv` (loaded by full path, as
/// `iconv_open` does) and the configuration files that name them.
fn add_gconv(
    resolver: &Resolver<'_>,
    target: &Target,
    opts: &BuildOptions,
    t: &mut RootTrace,
    queue: &mut Vec<usize>,
) {
    let Some(spec) = &opts.gconv else {
        return;
    };
    let dirs = crate::runtime::gconv_dirs(&target.lib);
    let sel = match crate::runtime::gconv_select(resolver.fs(), &dirs, spec) {
        Ok(s) => s,
        Err(e) => {
            t.warnings.push(e.to_string());
            return;
        }
    };
    for c in &sel.unknown {
        t.warnings.push(format!(
            "--gconv: no module in {} converts {c}",
            sel.dir.display()
        ));
    }
    t.extra_files.extend(
        sel.config
            .iter()
            .map(|p| p.as_os_str().as_encoded_bytes().to_vec()),
    );
    let from = libc_index(t);
    for m in &sel.modules {
        let name = m.as_os_str().as_encoded_bytes().to_vec();
        if let Err(res) = load_runtime(
            resolver,
            target,
            t,
            from,
            &name,
            (Via::Gconv, "module".into()),
            queue,
        ) {
            runtime_missing(t, from, &name, Some(res), "a gconv module".into(), true);
        }
    }
}

/// `libgcc_s.so.1` when an object of the closure uses `pthread_cancel`,
/// `pthread_exit` or `backtrace`.
fn add_libgcc(
    resolver: &Resolver<'_>,
    target: &Target,
    opts: &BuildOptions,
    t: &mut RootTrace,
    queue: &mut Vec<usize>,
) {
    if !opts.libgcc {
        return;
    }
    let user = t.objs.iter().find_map(|o| {
        resolver
            .unwind_user(&o.found)
            .map(|sym| (o.found.path.clone(), sym))
    });
    let Some((obj, sym)) = user else {
        return;
    };
    let from = libc_index(t);
    let detail = format!("for {} in {}", show(&sym), show(&obj));
    if load_runtime(
        resolver,
        target,
        t,
        from,
        b"libgcc_s.so.1",
        (Via::Libgcc, detail),
        queue,
    )
    .is_err()
    {
        t.warnings.push(format!(
            "{} uses {}: glibc then dlopens libgcc_s.so.1, which is not in the sysroot (the program aborts when it is called)",
            show(&obj),
            show(&sym)
        ));
    }
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
        verneed: Vec::new(),
        verdef: Vec::new(),
        warnings: Vec::new(),
        tables: crate::elf::DynTables::default(),
        dlopen: Vec::new(),
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
    objs.iter().position(|o| o.names.iter().any(|n| n == name))
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
    objs.iter().position(|o| {
        (!o.l_name.is_empty() && o.l_name == name)
            || o.names.iter().any(|n| n == name)
            || o.found.info.soname.as_deref() == Some(name)
    })
}

/// The requester and its chain of first loaders up to the main program.
fn chain_of(objs: &[Obj], mut i: usize) -> Vec<Arc<ChainLink>> {
    let mut v = Vec::new();
    loop {
        v.push(objs[i].link.clone());
        match objs[i].loader {
            Some(l) if v.len() <= objs.len() => i = l,
            _ => break,
        }
    }
    if i != 0 {
        v.push(objs[0].link.clone());
    }
    v
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
    let walker = walkdir::WalkDir::new(fs.host_root())
        .same_file_system(true)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for entry in walker.into_iter().take(HINT_WALK_LIMIT).flatten() {
        let name = entry.file_name().as_encoded_bytes();
        if wanted.contains(name) && !entry.file_type().is_dir() {
            if let Some(p) = fs.in_root_of_host(entry.path()) {
                hits.push((name.to_vec(), p));
            }
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
            let searched = m.searched.iter().any(|s| Some(&s.dir) == dir.as_ref());
            if !searched {
                m.notes.push(format!(
                    "{} exists at {}, which is not searched for {}: add its directory to the RUNPATH, or to ld.so.conf and run ldconfig",
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
        kind,
        path: found.path.clone(),
        canonical: Some(found.canonical.clone()),
        hops: found.hops.clone(),
        size: found.size,
        via: found.via,
        info: Some(found.info.clone()),
        variants: found.variants.clone(),
        roots: BTreeSet::new(),
        missing: None,
        needed_by: BTreeSet::new(),
        script: None,
        also_opened: BTreeSet::new(),
    }
}

/// What merging remembers from root to root (hash lookups instead of the
/// graph's ordered maps and sets, which stay the output's order).
#[derive(Default)]
struct MergeMemo {
    /// (object, requirement index, library) whose version needs were
    /// checked: the answer is the same under every root.
    versions_checked: FastSet<(NodeIndex, usize, NodeIndex)>,
    /// `g.index`, hashed.
    nodes: std::collections::HashMap<Vec<u8>, NodeIndex, foldhash::quality::RandomState>,
    /// (needed, needer) pairs already in `needed_by`.
    needed_by: FastSet<(NodeIndex, NodeIndex)>,
    /// The roots of each node (by node index), in merge order: ascending,
    /// so they become each node's ordered set in one go at the end.
    roots: Vec<Vec<usize>>,
    /// Merged traces, freed on another core in batches.
    garbage: Vec<Leftover>,
}

/// What a merged trace leaves behind.
type Leftover = (Vec<Obj>, Vec<MissingInfo>, Option<Target>, Vec<Edge>);

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

    /// Moves the collected roots into the graph's nodes.
    fn finish(self, g: &mut DepGraph) {
        let garbage = self.garbage;
        rayon::spawn(move || drop(garbage));
        for (i, roots) in self.roots.into_iter().enumerate() {
            if let Some(n) = g.graph.node_weight_mut(NodeIndex::new(i)) {
                n.roots.extend(roots);
            }
        }
    }
}

fn merge(g: &mut DepGraph, root: Vec<u8>, t: RootTrace, memo: &mut MergeMemo) {
    let root_idx = g.roots.len();
    g.roots.push(root.clone());
    g.warnings.extend(t.warnings);
    g.extra_files.extend(t.extra_files.iter().cloned());
    for (k, name, searched) in t.searches {
        let requester = t.objs[k].found.path.clone();
        g.searches.insert((root_idx, requester, name), searched);
    }
    let mut obj_nodes: Vec<Option<NodeIndex>> = Vec::new();
    for (k, o) in t.objs.iter().enumerate() {
        if o.latent {
            obj_nodes.push(None);
            continue;
        }
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
                    n.script = t.script.clone();
                    if t.script.is_some() {
                        n.info = None;
                    }
                }
                let i = g.graph.add_node(n);
                g.index.insert(o.found.path.clone(), i);
                memo.nodes.insert(o.found.path.clone(), i);
                i
            }
        };
        memo.add_root(idx, root_idx);
        g.graph[idx]
            .also_opened
            .extend(o.also_opened.iter().cloned());
        if k == 0 {
            g.root_nodes.push(idx);
        }
        obj_nodes.push(Some(idx));
    }
    let mut missing_nodes = Vec::new();
    for m in &t.missing {
        let mut key = m.soname.clone();
        key.push(0);
        key.extend_from_slice(&m.needed_by);
        let idx = match memo.nodes.get(&key) {
            Some(&i) => i,
            None => {
                let n = Node {
                    kind: NodeKind::Missing,
                    path: m.soname.clone(),
                    canonical: None,
                    hops: Vec::new(),
                    size: 0,
                    via: Via::Default,
                    info: None,
                    variants: Vec::new(),
                    roots: BTreeSet::new(),
                    missing: Some(m.clone()),
                    needed_by: BTreeSet::new(),
                    script: None,
                    also_opened: BTreeSet::new(),
                };
                let i = g.graph.add_node(n);
                memo.nodes.insert(key.clone(), i);
                g.index.insert(key, i);
                i
            }
        };
        memo.add_root(idx, root_idx);
        missing_nodes.push(idx);
    }
    // What is not kept is freed on another core (the merge is the serial
    // part of a build; freeing thousands of small values here showed).
    let mut unused_edges = Vec::new();
    for (from, to, edge) in t.edges {
        let (Some(a), Some(b)) = (
            obj_nodes[from],
            match to {
                To::Obj(j) => obj_nodes[j],
                To::Missing(j) => Some(missing_nodes[j]),
            },
        ) else {
            continue;
        };
        if memo.needed_by.insert((b, a)) {
            let from_path = g.graph[a].path.clone();
            g.graph[b].needed_by.insert(from_path);
        }
        let exists = g
            .graph
            .edges_connecting(a, b)
            .any(|e| e.weight().name == edge.name);
        if exists {
            unused_edges.push(edge);
        } else {
            g.graph.add_edge(a, b, edge);
        }
    }
    // Symbol versions: each Verneed names a DT_NEEDED string; check it
    // against the object that string resolved to for this requester.
    for &(k, vn_index, j) in &t.version_links {
        let o = &t.objs[k];
        let vn = &o.found.info.verneed[vn_index];
        let lib = &t.objs[j].found.info;
        {
            // Nodes are paths: the same object, requirement and library
            // (objects not loaded have no node and are checked each time).
            if let (Some(a), Some(b)) = (obj_nodes[k], obj_nodes[j]) {
                if !memo.versions_checked.insert((a, vn_index, b)) {
                    continue; // same pair under an earlier root: same answer
                }
            }
            for aux in &vn.versions {
                if aux.flags & VER_FLG_WEAK != 0 {
                    continue;
                }
                if lib.verdef.iter().any(|d| d.name == aux.name) {
                    continue;
                }
                let family: Vec<u8> = aux
                    .name
                    .iter()
                    .take_while(|c| !c.is_ascii_digit())
                    .copied()
                    .collect();
                g.missing_versions.push(MissingVersion {
                    version: aux.name.clone(),
                    library: vn.file.clone(),
                    library_path: t.objs[j].found.path.clone(),
                    object: o.found.path.clone(),
                    highest: lib.highest_version(&family).map(<[u8]>::to_vec),
                });
            }
        }
    }
    memo.garbage
        .push((t.objs, t.missing, t.target, unused_edges));
    if memo.garbage.len() >= 64 {
        let garbage = std::mem::take(&mut memo.garbage);
        rayon::spawn(move || drop(garbage));
    }
}
