//! What the program, or libc for it, loads once it runs: `.note.dlopen`
//! entries, `--dlopen-strings` names, NSS modules, libgcc_s and gconv
//! modules, each loaded as `dlopen` from the asking object would load it,
//! one after another ([`RunTimeLoads`]). A `dlopen` that fails once its
//! search has found the file (a dependency found nowhere, an object the
//! loader refuses, a version, a symbol or an ISA level missing) is undone, as the
//! loader undoes it, and a `.note.dlopen` entry's next alternative is
//! tried.

use super::*;

/// Loads `name` on behalf of object `from` the way `dlopen` would: an
/// object already loaded under that name is reused; otherwise it is
/// searched with `from`'s rules and joins the load list with no loader
/// (its own dependencies see its RPATH, then the program's). musl's
/// `dlopen` searches as if the program asked (`load_library(file, head)`:
/// the program's RPATH/RUNPATH, never the caller's; checked against musl
/// in `runtime::musl_dlopen_searches_as_the_program`), and matches loaded
/// objects by the names they were loaded under. Returns the search that
/// found the object (none when a loaded object answered the name), or the
/// failed resolution.
pub(super) fn load_runtime(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &mut RootTrace,
    from: usize,
    name: &[u8],
    (via, detail): (Via, String),
    queue: &mut Vec<usize>,
) -> std::result::Result<Option<Arc<crate::resolve::Resolution>>, Box<crate::resolve::Resolution>> {
    let edge = |name: &[u8]| TEdge::new(TName::own(name), via, None, Some(detail.clone()));
    if t.keep_search {
        t.runtime_log.push(RtStep::Load(from, name.to_vec(), false));
    }
    if let Some((j, _)) = t.host_loaded(name, from, queue) {
        t.push_edge(from, To::Obj(j), edge(name));
        return Ok(None);
    }
    if let Some(j) = find_loaded_for(target, &t.objs, name) {
        t.objs[j].latent = false;
        t.push_edge(from, To::Obj(j), edge(name));
        return Ok(None);
    }
    let mut chain = Vec::new();
    t.dlopen_chain_into(target, from, &mut chain);
    let res = resolver.resolve(
        target,
        &Request {
            name,
            chain: &chain,
            needed: false,
            preload: false,
            audit: false,
        },
    );
    let Outcome::Found(f) = &res.outcome else {
        if t.keep_search {
            t.runtime_log.pop();
        }
        return Err(Box::new((*res).clone()));
    };
    if t.keep_search {
        t.searches.push((from, name.to_vec(), res.searched.clone()));
        if let Some(RtStep::Load(_, _, searched)) = t.runtime_log.last_mut() {
            *searched = true;
        }
    }
    let mut f = f.clone();
    let j = match same_file(&t.objs, &f) {
        Some(j) => {
            t.objs[j].add_name(name.to_vec());
            j
        }
        None => {
            // Loaded at run time: the node says how (a copy of the shared
            // search result, rare).
            Arc::make_mut(&mut f).via = via;
            t.objs.push(Obj::library(f, name.to_vec(), None));
            queue.push(t.objs.len() - 1);
            t.objs.len() - 1
        }
    };
    t.push_edge(from, To::Obj(j), edge(name));
    Ok(Some(res))
}

/// Why a `dlopen` in flight failed: the object at fault, the loader's
/// reason.
pub(super) struct Failure {
    object: Vec<u8>,
    why: String,
}

/// A dependency of a `dlopen` in flight no search found (or whose search
/// stopped the loader): that `dlopen` fails there.
pub(super) fn not_loaded(m: &MissingInfo) -> Failure {
    let why = match &m.fatal {
        Some((path, reason)) => format!("{}: {reason}", show(path)),
        None => format!("{} not found", show(&m.soname)),
    };
    Failure {
        object: m.needed_by.clone(),
        why,
    }
}

/// Whether the stack is executable once the process has started: the
/// program or a library it maps at start-up (not the loader) needs one.
pub(super) fn startup_stack_exec(t: &RootTrace) -> bool {
    t.objs
        .iter()
        .any(|o| o.kind != NodeKind::Interpreter && !o.latent && o.found.info.exec_stack)
}

/// Why glibc's `_dl_map_object_from_fd` refuses `o`, just mapped by a
/// `dlopen`: its type or `-z nodlopen` ([`dlopen_refusal`]), or with glibc
/// 2.41 and later an executable stack the process does not have.
pub(super) fn mapped_refusal(target: &Target, o: &Obj, stack_exec: bool) -> Option<Failure> {
    if target.flavor != Flavor::Glibc {
        return None;
    }
    let info = &o.found.info;
    let why = dlopen_refusal(target, info)
        .map(str::to_string)
        .or_else(|| {
            (target.dlopen_refuses_exec_stack && info.exec_stack && !stack_exec).then(|| {
                "cannot enable executable stack as shared object requires (glibc 2.41 and later \
             refuse a dlopen that needs one)"
                    .to_string()
            })
        })?;
    Some(Failure {
        object: o.found.path.clone(),
        why,
    })
}

/// Why glibc's `dlopen` fails once every object it brought in (from
/// object `first` on) is mapped: a symbol version one of them requires
/// and its library lacks (`_dl_check_map_versions`, in load order), then,
/// after relocation, an x86 ISA level the CPU lacks (`_dl_open_check`).
pub(super) fn late_failure(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &RootTrace,
    first: usize,
) -> Option<Failure> {
    if first >= t.objs.len() {
        return None;
    }
    if target.flavor == Flavor::Musl {
        return musl_unbound_symbol(resolver, t, first);
    }
    if target.flavor != Flavor::Glibc {
        return None;
    }
    let by_requester = ByRequester::new(&t.resolved_names);
    for k in first..t.objs.len() {
        let o = &t.objs[k];
        let mut links = Vec::new();
        links_of(k, o, &t.resolved_names, &by_requester, &t.objs, &mut links);
        for (_, vn_index, j) in links {
            let vn = &o.found.info.verneed[vn_index as usize];
            let lib = &t.objs[j as usize].found.info;
            if let Some(aux) = vn
                .versions
                .iter()
                .find(|a| lib.check_version_indexed(a) != crate::elf::VersionCheck::Met)
            {
                return Some(Failure {
                    object: o.found.path.clone(),
                    why: format!(
                        "version `{}' not found (required by {})",
                        show(&aux.name),
                        show(&o.found.path)
                    ),
                });
            }
        }
    }
    if let Some(f) = unbound_symbol(resolver, target, t, first) {
        return Some(f);
    }
    let cpu = modelled_cpu(resolver, target, trace_core(&t.objs));
    t.objs[first..]
        .iter()
        .filter(|o| o.kind != NodeKind::Interpreter)
        .find_map(|o| {
            isa_refusal(cpu, &o.found.info).map(|why| Failure {
                object: o.found.path.clone(),
                why,
            })
        })
}

/// The objects of the link map breadth first from object `start`, each
/// once, through the trace's link-map edges (not the interpreter's, nor
/// run-time loads or audit namespaces): `start`'s `l_searchlist`, or from
/// the program its global scope.
fn search_list(t: &RootTrace, start: usize) -> Vec<usize> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); t.objs.len()];
    for e in &t.edges {
        if let To::Obj(j) = e.to() {
            if !e.via.outside_link_map() && e.via != Via::Interpreter && !t.objs[j].latent {
                children[e.from()].push(j);
            }
        }
    }
    let mut seen = vec![false; t.objs.len()];
    seen[start] = true;
    let mut order = vec![start];
    let mut k = 0;
    while k < order.len() {
        for &j in &children[order[k]] {
            if !seen[j] {
                seen[j] = true;
                order.push(j);
            }
        }
        k += 1;
    }
    order
}

/// The scope a `dlopen` that mapped objects from `first` on relocates
/// them in: the global scope (a plugin's host program's start-up objects,
/// else the program's), then the opened object's search list; and that
/// search list, by object.
fn dlopen_scope(t: &RootTrace, first: usize) -> (Vec<usize>, Vec<&Arc<Found>>) {
    let local = search_list(t, first);
    let global: Vec<&Arc<Found>> = match &t.host {
        Some(h) => h.objs.iter().map(|o| &o.found).collect(),
        None => (search_list(t, 0).iter())
            .map(|&k| &t.objs[k].found)
            .collect(),
    };
    let members = (global.into_iter())
        .chain(local.iter().map(|&k| &t.objs[k].found))
        .collect();
    (local, members)
}

/// A symbol that the relocation of an object a `dlopen` mapped (from
/// object `first` on) cannot bind in any mode the `dlopen` is made in
/// ([`crate::graph::symbols::first_unbound`]): glibc relocates the new
/// objects in the reverse order of the opened object's search list, each
/// in the global scope (the program's, a plugin's host's) and then that
/// search list, and the first reference no object binds fails the
/// `dlopen` (`_dl_relocate_object`). A PLT reference of an object not
/// linked `-z now` fails only with `RTLD_NOW` (or `LD_BIND_NOW`), which
/// the trace does not know: it is taken to bind (`--check-symbols` names
/// it).
fn unbound_symbol(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &RootTrace,
    first: usize,
) -> Option<Failure> {
    // The scope's objects, their tables read only when a lookup gets to
    // them (most new objects have no reference to bind here at all).
    let (local, members) = dlopen_scope(t, first);
    let mut tables: Vec<Option<Arc<crate::elf::symbols::Indexed>>> = vec![None; members.len()];
    let mut scope = |k: usize| {
        let f = members.get(k)?;
        Some(tables[k].get_or_insert_with(|| resolver.symbols(f)).clone())
    };
    local.iter().rev().filter(|&&k| k >= first).find_map(|&k| {
        let o = &t.objs[k];
        let info = &o.found.info;
        let bind_now = info.flags & DF_BIND_NOW != 0 || info.flags_1 & DF_1_NOW != 0;
        let x = resolver.symbols(&o.found);
        let (name, version) = crate::graph::symbols::first_unbound(
            &x.table,
            bind_now,
            &mut scope,
            target.check_match_2_41,
        )?;
        let version = version
            .map(|v| format!(", version {}", show(&v)))
            .unwrap_or_default();
        Some(Failure {
            object: o.found.path.clone(),
            why: format!("undefined symbol: {}{version}", show(&name)),
        })
    })
}

/// What fails musl's `dlopen` whatever its mode, once every object it
/// brought in (from object `first` on) is mapped: a reference no object of
/// the scope binds by musl's rules, of a relocation its `RTLD_LAZY` does
/// not defer (`first_unbound_musl`), in the new objects in load order (musl
/// relocates the opened object first, then what it brought in). musl checks
/// no symbol version and no ISA level.
fn musl_unbound_symbol(resolver: &Resolver<'_>, t: &RootTrace, first: usize) -> Option<Failure> {
    let (_, members) = dlopen_scope(t, first);
    // The loader (musl's `libc.so`), where the large-file names bind.
    let objs = t.host.as_ref().map_or(&t.objs, |h| &h.objs);
    let loader: Option<&Arc<Found>> = (objs.iter())
        .find(|o| o.kind == NodeKind::Interpreter)
        .map(|o| &o.found);
    let loader_table = loader.map(|f| resolver.symbols(f));
    let mut version = || {
        let f = resolver.fs().open(&loader?.canonical).ok()?;
        crate::resolve::musl_version(&f)
    };
    let mut tables: Vec<Option<Arc<crate::elf::symbols::Indexed>>> = vec![None; members.len()];
    let mut scope = |k: usize| {
        let f = members.get(k)?;
        Some(tables[k].get_or_insert_with(|| resolver.symbols(f)).clone())
    };
    (first..t.objs.len()).find_map(|k| {
        let o = &t.objs[k];
        let info = &o.found.info;
        let bind_now = info.flags & DF_BIND_NOW != 0 || info.flags_1 & DF_1_NOW != 0;
        let x = resolver.symbols(&o.found);
        let name = crate::graph::symbols::first_unbound_musl(
            &x.table,
            bind_now,
            &mut scope,
            loader_table.as_deref().map(|t| &t.table),
            &mut version,
        )?;
        Some(Failure {
            object: o.found.path.clone(),
            why: format!("undefined symbol: {}", show(&name)),
        })
    })
}

/// `DT_FLAGS`' `DF_BIND_NOW`.
const DF_BIND_NOW: u32 = 0x8;
/// `DT_FLAGS_1`'s `DF_1_NOW`.
const DF_1_NOW: u32 = 0x1;

/// What a run-time load in flight is ([`RunTimeLoads::step`]).
pub(super) struct Opening {
    from: usize,
    name: Vec<u8>,
    via: Via,
    detail: String,
    /// What follows when it fails (the log's words).
    outcome: &'static str,
}

impl Opening {
    /// The object that opens it (its index in the trace).
    pub(super) fn requester(&self) -> usize {
        self.from
    }
}

/// What [`RunTimeLoads::step`] did.
pub(super) enum Step {
    /// Nothing is left to load.
    Done,
    /// Something that needs no watching (a name no search found, a
    /// warning).
    Other,
    /// A `dlopen` that found its file: watched until what it brings in is
    /// walked.
    Opened(Opening),
}

/// What every run-time load reads: the resolver, the root's target, the
/// build's options.
#[derive(Clone, Copy)]
pub(super) struct Cx<'a, 'r> {
    pub(super) resolver: &'a Resolver<'r>,
    pub(super) target: &'a Target,
    pub(super) opts: &'a BuildOptions,
}

/// Where the stage after the objects' own loads stands.
#[derive(Default)]
enum Extra {
    #[default]
    Nss,
    Libgcc,
    Gconv,
    Done,
}

/// Where a trace's run-time loads stand: `load_list` asks for one
/// `dlopen` at a time ([`Self::step`]), once what the one before brought
/// in is walked, and says when one failed ([`Self::failed`]).
#[derive(Default)]
pub(super) struct RunTimeLoads {
    /// The object whose loads come next.
    obj: usize,
    /// Its next `.note.dlopen` entry, and that entry's next alternative.
    entry: usize,
    alt: usize,
    /// Whether an alternative of the entry loaded.
    loaded: bool,
    /// The search of the entry's first alternative (the name a missing
    /// entry goes by), and why those found failed.
    first: Option<crate::resolve::Resolution>,
    failures: Vec<String>,
    /// Its next `--dlopen-strings` name, and those not found.
    string: usize,
    absent: Vec<String>,
    extra: Extra,
    /// The next NSS service or gconv module.
    next: usize,
    modules: Vec<Vec<u8>>,
}

impl RunTimeLoads {
    /// The next run-time load: each object's `.note.dlopen` entries (an
    /// entry's alternatives in turn, until one loads), then its
    /// `--dlopen-strings` names, objects in load order; then, for glibc,
    /// NSS modules, libgcc_s and gconv modules.
    pub(super) fn step(
        &mut self,
        cx: Cx<'_, '_>,
        t: &mut RootTrace,
        queue: &mut Vec<usize>,
    ) -> Step {
        while self.obj < t.objs.len() {
            if let Some(s) = self.note(cx, t, queue) {
                return s;
            }
            if let Some(s) = self.string(cx, t, queue) {
                return s;
            }
            // (What the stage after them has done stays.)
            self.obj += 1;
            self.entry = 0;
            self.string = 0;
            self.next_entry_state();
        }
        if cx.target.flavor != Flavor::Glibc {
            return Step::Done;
        }
        self.extra(cx, t, queue)
    }

    /// The `dlopen` in flight (`op`) failed (`f`; its searches, kept for
    /// `--verbose`) and is undone: a warning, the log's step, and for a
    /// `.note.dlopen` entry its next alternative.
    pub(super) fn failed(
        &mut self,
        t: &mut RootTrace,
        op: &Opening,
        f: &Failure,
        searches: Vec<FailedSearch>,
    ) {
        t.warnings.push(format!(
            "{} (loaded at run time by {}): {}: that dlopen fails",
            show(&f.object),
            show(&t.objs[0].found.path),
            f.why
        ));
        if t.keep_search {
            t.runtime_log.push(RtStep::Failed(Box::new(RuntimeFailure {
                requester: t.objs[op.from].found.path.clone(),
                name: op.name.clone(),
                via: op.via,
                detail: op.detail.clone(),
                searches,
                why: format!("{}: {}", show(&f.object), f.why),
                outcome: op.outcome,
            })));
        }
        if op.via == Via::DlopenNote {
            self.loaded = false;
            self.failures.push(format!(
                "{}: {}: {}",
                show(&op.name),
                show(&f.object),
                f.why
            ));
        } else if op.via == Via::Gconv {
            let why = format!("a gconv module; {}: {}", show(&f.object), f.why);
            runtime_missing(t, op.from, &op.name, None, why, true);
        }
    }

    /// The next step of object `obj`'s `.note.dlopen` entries the options
    /// select: its entry's next alternative, or the entry missing when
    /// none is left (none when it has no entry left).
    fn note(&mut self, cx: Cx<'_, '_>, t: &mut RootTrace, queue: &mut Vec<usize>) -> Option<Step> {
        let Cx {
            resolver,
            target,
            opts,
        } = cx;
        let min = opts.dlopen_priority?;
        let k = self.obj;
        let info = t.objs[k].found.info.clone();
        loop {
            let e = info.dlopen.get(self.entry)?;
            let selected = e.priority <= min
                && (opts.dlopen_features.is_empty()
                    || e.feature
                        .as_ref()
                        .is_some_and(|f| opts.dlopen_features.contains(f)));
            if !selected || self.loaded {
                self.next_entry();
                continue;
            }
            let detail = match &e.feature {
                Some(f) => format!("{}, feature {f}", e.priority.as_str()),
                None => e.priority.as_str().to_string(),
            };
            // The first alternative that loads wins.
            if let Some(name) = e.sonames.get(self.alt) {
                self.alt += 1;
                let outcome = if self.alt < e.sonames.len() {
                    "the entry's next alternative is tried"
                } else if e.priority == Priority::Required {
                    "required: missing"
                } else {
                    "optional: the program goes on without it"
                };
                let op = Opening {
                    from: k,
                    name: name.clone(),
                    via: Via::DlopenNote,
                    detail: detail.clone(),
                    outcome,
                };
                let res = open(resolver, target, t, op, queue);
                if self.alt == 1 {
                    self.first = match &res {
                        Ok((_, found)) => found.as_deref().map(with_used_file),
                        Err(missing) => Some((**missing).clone()),
                    };
                }
                return Some(match res {
                    Ok((step, _)) => {
                        self.loaded = true;
                        step
                    }
                    Err(res) => {
                        if t.keep_search {
                            let searched = res.searched.clone();
                            let step = RtStep::Miss(k, name.clone(), detail, searched, outcome);
                            t.runtime_log.push(step);
                        }
                        Step::Other
                    }
                });
            }
            let names: Vec<String> = e.sonames.iter().map(|n| show(n)).collect();
            let mut why = format!(
                "declared in the .note.dlopen of {} ({detail}; alternatives: {})",
                show(&t.objs[k].found.path),
                names.join(", ")
            );
            for f in &self.failures {
                why.push_str("; ");
                why.push_str(f);
            }
            let (first, found) = (self.first.take(), !self.failures.is_empty());
            let required = e.priority == Priority::Required;
            if found && !required {
                t.warnings.push(format!(
                    "{}: {} cannot be loaded ({why})",
                    show(&t.objs[k].found.path),
                    show(&e.sonames[0])
                ));
            } else {
                runtime_missing(t, k, &e.sonames[0], first.map(Box::new), why, required);
            }
            self.next_entry();
            return Some(Step::Other);
        }
    }

    fn next_entry(&mut self) {
        self.entry += 1;
        self.next_entry_state();
    }

    /// An entry's state, as before its first alternative.
    fn next_entry_state(&mut self) {
        self.alt = 0;
        self.loaded = false;
        self.first = None;
        self.failures.clear();
    }

    /// The next library name spelled in the read-only data of object
    /// `obj`, when it calls `dlopen` and `--dlopen-strings` is given
    /// ([`Resolver::dlopen_strings`]), loaded as `dlopen` from it would
    /// load it. Nothing tells which of them the object really passes to
    /// `dlopen`, so one that cannot be loaded is a warning: those no
    /// search found are gathered, and once none is left (none returned)
    /// one warning names them.
    fn string(
        &mut self,
        cx: Cx<'_, '_>,
        t: &mut RootTrace,
        queue: &mut Vec<usize>,
    ) -> Option<Step> {
        let Cx {
            resolver,
            target,
            opts,
        } = cx;
        if !opts.dlopen_strings {
            return None;
        }
        let k = self.obj;
        let names = resolver.dlopen_strings(&t.objs[k].found);
        if let Some(name) = names.get(self.string) {
            self.string += 1;
            let op = Opening {
                from: k,
                name: name.clone(),
                via: Via::DlopenString,
                detail: "in read-only data".into(),
                outcome: "the program goes on without it",
            };
            return Some(match open(resolver, target, t, op, queue) {
                Ok((step, _)) => step,
                Err(_) => {
                    self.absent.push(show(name));
                    Step::Other
                }
            });
        }
        // One warning per object: a program may spell many names it never
        // loads (other systems' loaders, optional plugins).
        if !self.absent.is_empty() {
            let (n, these) = match self.absent.len() {
                1 => ("a library name", "this name"),
                _ => ("library names", "these names"),
            };
            t.warnings.push(format!(
                "{}: {n} in its read-only data not found (it calls dlopen, perhaps never with {these}): {}",
                show(&t.objs[k].found.path),
                self.absent.join(", ")
            ));
            self.absent.clear();
        }
        None
    }

    /// The stage after the objects' own loads, one load a step: NSS
    /// modules, libgcc_s, gconv modules.
    fn extra(&mut self, cx: Cx<'_, '_>, t: &mut RootTrace, queue: &mut Vec<usize>) -> Step {
        let Cx {
            resolver, target, ..
        } = cx;
        loop {
            let step = match self.extra {
                Extra::Nss => nss(cx, t, self.next, queue),
                Extra::Libgcc => libgcc(cx, t, queue),
                Extra::Gconv => {
                    if self.next == 0 {
                        self.modules = gconv_modules(cx, t);
                    }
                    (self.modules.get(self.next)).map(|m| gconv(resolver, target, t, m, queue))
                }
                Extra::Done => return Step::Done,
            };
            match step {
                Some(s) if !matches!(self.extra, Extra::Libgcc) => {
                    self.next += 1;
                    return s;
                }
                Some(s) => {
                    self.extra = Extra::Gconv;
                    return s;
                }
                None => {
                    self.next = 0;
                    self.extra = match self.extra {
                        Extra::Nss => Extra::Libgcc,
                        Extra::Libgcc => Extra::Gconv,
                        _ => Extra::Done,
                    };
                }
            }
        }
    }
}

/// A found name's resolution, its last step naming the file used (a
/// search record kept without `--verbose` has no candidates): what a
/// missing entry whose first alternative was found, and failed, shows.
fn with_used_file(r: &crate::resolve::Resolution) -> crate::resolve::Resolution {
    let mut r = r.clone();
    if let (Outcome::Found(f), Some(last)) = (&r.outcome, r.searched.last_mut()) {
        if last.candidates.is_empty() {
            last.candidates
                .push((f.path.clone(), crate::resolve::Tried::Used));
        }
    }
    r
}

/// [`load_runtime`] of `op`'s name from its object, as its kind: once
/// found, the step that watches it, with the search that found it.
fn open(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &mut RootTrace,
    op: Opening,
    queue: &mut Vec<usize>,
) -> std::result::Result<
    (Step, Option<Arc<crate::resolve::Resolution>>),
    Box<crate::resolve::Resolution>,
> {
    let how = (op.via, op.detail.clone());
    let found = load_runtime(resolver, target, t, op.from, &op.name, how, queue)?;
    Ok((Step::Opened(op), found))
}

/// Records a run-time dependency that cannot be loaded: a problem when it
/// is required, a warning otherwise.
pub(super) fn runtime_missing(
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
    t.push_edge(
        from,
        To::Missing(t.missing.len() - 1),
        TEdge::new(
            TName::own(name),
            Via::DlopenNote,
            None,
            Some("required".into()),
        ),
    );
}

/// The object run-time loads by glibc are attributed to: libc.so.6 when
/// it is in the closure, else the program.
pub(super) fn libc_index(t: &RootTrace) -> usize {
    t.objs
        .iter()
        .position(|o| o.found.info.soname.as_deref() == Some(b"libc.so.6".as_slice()))
        .unwrap_or(0)
}

/// NSS module `i` of the services the staged `/etc/nsswitch.conf` names
/// (none when there is no such service).
fn nss(cx: Cx<'_, '_>, t: &mut RootTrace, i: usize, queue: &mut Vec<usize>) -> Option<Step> {
    let Cx {
        resolver,
        target,
        opts,
    } = cx;
    let services = opts.nss_services.as_ref()?;
    let from = libc_index(t);
    // Since glibc 2.34 the `files` and `dns` services are part of libc
    // itself: it never loads `libnss_files.so.2` or `libnss_dns.so.2`
    // (the stub files Debian still ships). A libc that defines the
    // version `GLIBC_2.34` is one of those.
    let builtin = t.objs[from]
        .found
        .info
        .verdef
        .iter()
        .any(|d| d.name == b"GLIBC_2.34");
    let svc = services.get(i)?;
    if builtin && matches!(svc.as_slice(), b"files" | b"dns") {
        return Some(Step::Other);
    }
    let mut name = b"libnss_".to_vec();
    name.extend_from_slice(svc);
    name.extend_from_slice(b".so.2");
    let op = Opening {
        from,
        name: name.clone(),
        via: Via::Nsswitch,
        detail: format!("service {}", show(svc)),
        outcome: "glibc skips the service",
    };
    Some(match open(resolver, target, t, op, queue) {
        Ok((step, _)) => step,
        Err(_) => {
            t.warnings.push(format!(
                "/etc/nsswitch.conf names the service {} but {} is not in the sysroot; glibc skips it silently",
                show(svc),
                show(&name)
            ));
            Step::Other
        }
    })
}

/// The gconv modules chosen with `--gconv` (loaded by full path, as
/// `iconv_open` does), the configuration files that name them added to
/// the trace's files.
fn gconv_modules(cx: Cx<'_, '_>, t: &mut RootTrace) -> Vec<Vec<u8>> {
    let Cx {
        resolver,
        target,
        opts,
    } = cx;
    let Some(spec) = &opts.gconv else {
        return Vec::new();
    };
    let dirs = crate::runtime::gconv_dirs(&target.lib);
    let sel = match crate::runtime::gconv_select(resolver.fs(), &dirs, spec) {
        Ok(s) => s,
        Err(e) => {
            t.warnings.push(e.to_string());
            return Vec::new();
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
    (sel.modules.iter())
        .map(|m| m.as_os_str().as_encoded_bytes().to_vec())
        .collect()
}

/// One gconv module, loaded by its path.
fn gconv(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &mut RootTrace,
    name: &[u8],
    queue: &mut Vec<usize>,
) -> Step {
    let from = libc_index(t);
    let op = Opening {
        from,
        name: name.to_vec(),
        via: Via::Gconv,
        detail: "module".into(),
        outcome: "iconv_open fails",
    };
    match open(resolver, target, t, op, queue) {
        Ok((step, _)) => step,
        Err(res) => {
            if t.keep_search {
                t.runtime_log.push(RtStep::Load(from, name.to_vec(), true));
            }
            runtime_missing(t, from, name, Some(res), "a gconv module".into(), true);
            Step::Other
        }
    }
}

/// `libgcc_s.so.1` when an object of the closure uses `pthread_cancel`,
/// `pthread_exit` or `backtrace` (none when not asked or none does).
fn libgcc(cx: Cx<'_, '_>, t: &mut RootTrace, queue: &mut Vec<usize>) -> Option<Step> {
    let Cx {
        resolver,
        target,
        opts,
    } = cx;
    if !opts.libgcc {
        return None;
    }
    let (obj, sym) = t.objs.iter().find_map(|o| {
        o.found
            .unwind
            .as_ref()
            .map(|sym| (o.found.path.clone(), sym.clone()))
    })?;
    let from = libc_index(t);
    let op = Opening {
        from,
        name: b"libgcc_s.so.1".to_vec(),
        via: Via::Libgcc,
        detail: format!("for {} in {}", show(&sym), show(&obj)),
        outcome: "the program aborts when it is called",
    };
    Some(match open(resolver, target, t, op, queue) {
        Ok((step, _)) => step,
        Err(_) => {
            t.warnings.push(format!(
                "{} uses {}: glibc then dlopens libgcc_s.so.1, which is not in the sysroot (the program aborts when it is called)",
                show(&obj),
                show(&sym)
            ));
            Step::Other
        }
    })
}
