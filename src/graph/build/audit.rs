//! Audit modules: each name of the simulated `LD_AUDIT` and of the
//! program's `DT_AUDIT` and `DT_DEPAUDIT`, loaded as glibc's `rtld` loads
//! it, into a namespace of its own, and why the loader would ignore it.

use super::*;

/// The audit modules of the simulated `LD_AUDIT` and, on glibc 2.32 and
/// later ([`Target::dt_audit`]), those the program names (`DT_AUDIT`, then
/// `DT_DEPAUDIT`), loaded as glibc's `rtld` loads them
/// (`load_audit_module`), before anything else but in namespaces of
/// their own, so the program's load above is the same with or without
/// them. Each name of the `:`-separated lists is one module; glibc skips,
/// saying nothing, an empty name, one of 255 bytes or more, and in secure
/// mode one with `/`. A module is opened by `dlmopen` into a new namespace
/// by the loader itself: the program's RPATH (and from glibc 2.35 its
/// RUNPATH, [`Target::audit_main_runpath`]), `$ORIGIN` the program's
/// directory, and in secure mode the preload rules (no ld.so.cache,
/// set-user-ID files only; `Request::preload`). Its dependencies are
/// loaded in that namespace, matched only against its objects (`ld.so`
/// too is searched for by name there), their searches seeing the
/// program's RPATH after their loaders' (glibc does so in every
/// namespace) and from 2.35, for a requester without RUNPATH, the
/// program's RUNPATH (`Request::audit`). The loader keeps the module when all of that loads, every
/// symbol version required there is defined, and the namespace defines
/// `la_version`; otherwise it says why ("cannot be loaded as audit
/// interface: …; ignored") and the program runs without it: here a
/// warning, and nothing of that namespace in the closure. Kept namespaces
/// join the trace with every edge [`Via::Audit`]: outside the program's
/// link map and symbol scope. musl has no auditing.
pub(super) fn add_audit(resolver: &Resolver<'_>, target: &Target, t: &mut RootTrace, keep: bool) {
    if target.flavor != Flavor::Glibc {
        return;
    }
    let opts = resolver.options();
    let dt = t.objs[0]
        .found
        .info
        .audit
        .clone()
        .filter(|_| target.dt_audit)
        .map(|a| *a)
        .unwrap_or_default();
    let lists = [
        ("LD_AUDIT", opts.audit.as_ref()),
        ("DT_AUDIT", dt.audit.as_ref()),
        ("DT_DEPAUDIT", dt.depaudit.as_ref()),
    ];
    for (tag, list) in lists {
        for name in list.iter().flat_map(|l| l.split(|&b| b == b':')) {
            // Every release (2.31 and 2.36 to 2.43 checked) skips a name of
            // 255 bytes or more.
            let skipped = if name.is_empty() {
                continue;
            } else if name.len() >= SECURE_NAME_LIMIT {
                Some("names of 255 bytes or more")
            } else if opts.secure && name.contains(&b'/') {
                Some("names with '/' in secure mode")
            } else {
                None
            };
            let mut load = AuditLoad {
                tag,
                name: name.to_vec(),
                steps: Vec::new(),
                ignored: None,
            };
            if let Some(why) = skipped {
                t.warnings.push(format!(
                    "object '{}' from {tag} is not loaded as an audit module: glibc skips {why}",
                    show(name)
                ));
                load.ignored = Some(format!("glibc skips {why}"));
            } else {
                match audit_namespace(resolver, target, &t.objs, name, &mut load.steps, keep) {
                    Ok(ns) => join_namespace(t, ns, name, tag),
                    Err(why) => {
                        t.warnings.push(format!(
                            "object '{}' from {tag} cannot be loaded as audit interface: {why}; \
                             ignored",
                            show(name)
                        ));
                        load.ignored = Some(why);
                    }
                }
            }
            if keep {
                t.audits.push(load);
            }
        }
    }
}

/// The objects of one audit module's namespace, the module first, in load
/// order, and its edges (requester, index of the name in its `DT_NEEDED`
/// list followed by its filters, object), all indices into the objects.
pub(super) struct Namespace {
    objs: Vec<Obj>,
    edges: Vec<(usize, usize, usize)>,
    warnings: Vec<String>,
}

/// Loads audit module `name` into a new namespace for the program
/// (`objs[0]`), as [`add_audit`] says; `Err` is why the loader ignores it.
/// With `keep`, each name looked up is logged to `log`, in order.
pub(super) fn audit_namespace(
    resolver: &Resolver<'_>,
    target: &Target,
    objs: &[Obj],
    name: &[u8],
    log: &mut Vec<AuditStep>,
    keep: bool,
) -> std::result::Result<Namespace, String> {
    const NOT_OPENED: &str = "cannot open shared object file";
    let program = objs[0].link.clone();
    // rtld opens the module for itself (its `dl_main` is the caller): the
    // requester is the loader, which has no search path of its own; the
    // program's DT_RPATH is searched as in any namespace, and its
    // DT_RUNPATH only by a glibc that searches it in audit namespaces
    // (`Target::audit_main_runpath`; 2.31 does not). The loader's `$ORIGIN`
    // is the program's (`_dl_get_origin`: `/proc/self/exe`).
    let rtld = Arc::new(ChainLink {
        origin: program.origin.clone(),
        name: target.interp.clone().unwrap_or_default(),
        rpath: None,
        runpath: None,
        nodeflib: false,
    });
    let res = resolver.resolve(
        target,
        &Request {
            name,
            chain: &[rtld, program.clone()],
            needed: false,
            preload: true,
            audit: true,
        },
    );
    if keep {
        log.push(AuditStep {
            requester: None,
            name: name.to_vec(),
            searched: res.searched.clone(),
            answer: audit_answer(&res.outcome),
        });
    }
    let mut module = match &res.outcome {
        Outcome::Found(f) => f.clone(),
        Outcome::Fatal { reason, .. } => return Err(reason.clone()),
        Outcome::Missing | Outcome::Ignored(_) => return Err(NOT_OPENED.into()),
    };
    // rtld opens modules in `dlopen` mode (`dlmopen_doit`), before the
    // program's libraries: only the program's own `PT_GNU_STACK` has made
    // the stack executable by then.
    let stack_executable = objs[0].found.info.exec_stack;
    let refusal = |info: &ElfInfo| {
        dlopen_refusal(target, info).or_else(|| {
            (target.dlopen_refuses_exec_stack && info.exec_stack && !stack_executable)
                .then_some("cannot enable executable stack as shared object requires")
        })
    };
    if let Some(why) = refusal(&module.info) {
        return Err(why.into());
    }
    Arc::make_mut(&mut module).via = Via::Audit;
    let mut ns = Namespace {
        objs: vec![Obj::library(module, name.to_vec(), None)],
        edges: Vec::new(),
        warnings: Vec::new(),
    };
    let mut chain: Vec<Arc<ChainLink>> = Vec::new();
    let mut cur = 0;
    while cur < ns.objs.len() {
        let info = ns.objs[cur].found.info.clone();
        // Up to the module (its loader is none), then the program, whose
        // RPATH every namespace's searches see.
        chain_into(&ns.objs, cur, &mut chain);
        chain.push(program.clone());
        for (ni, need) in info.needed.iter().chain(&info.filters).enumerate() {
            if let Some(j) = find_loaded(&ns.objs, need) {
                if keep {
                    log.push(AuditStep {
                        requester: Some(ns.objs[cur].found.path.clone()),
                        name: need.clone(),
                        searched: Vec::new(),
                        answer: AuditAnswer::Loaded(ns.objs[j].found.path.clone()),
                    });
                }
                ns.edges.push((cur, ni, j));
                continue;
            }
            let res = resolver.resolve(
                target,
                &Request {
                    name: need,
                    chain: &chain,
                    needed: true,
                    preload: false,
                    audit: true,
                },
            );
            if keep {
                log.push(AuditStep {
                    requester: Some(ns.objs[cur].found.path.clone()),
                    name: need.clone(),
                    searched: res.searched.clone(),
                    answer: audit_answer(&res.outcome),
                });
            }
            let by = show(&ns.objs[cur].found.path);
            let f = match &res.outcome {
                Outcome::Found(f) => f.clone(),
                Outcome::Fatal { path, reason } => {
                    return Err(format!("{} (needed by {by}): {reason}", show(path)))
                }
                Outcome::Missing => {
                    return Err(format!("{} (needed by {by}): {NOT_OPENED}", show(need)))
                }
                Outcome::Ignored(why) => {
                    ns.warnings.push(format!("{by}: {why}"));
                    continue;
                }
            };
            let j = match ns.objs.iter().position(|o| o.found.file_id == f.file_id) {
                Some(j) => {
                    ns.objs[j].add_name(need.clone());
                    j
                }
                None => {
                    if let Some(why) = refusal(&f.info) {
                        return Err(format!("{} (needed by {by}): {why}", show(&f.path)));
                    }
                    ns.warnings.extend(
                        f.info
                            .warnings
                            .iter()
                            .map(|w| format!("{}: {w}", show(&f.path))),
                    );
                    ns.objs.push(Obj::library(f, need.clone(), Some(cur)));
                    ns.objs.len() - 1
                }
            };
            ns.edges.push((cur, ni, j));
        }
        cur += 1;
    }
    // Symbol versions (`_dl_check_map_versions`): each requirement against
    // the object its file name resolved to in the namespace (one without
    // definitions meets every requirement).
    for &(from, ni, to) in &ns.edges {
        let (req, def) = (&ns.objs[from], &ns.objs[to].found);
        if def.info.verdef.is_empty() {
            continue;
        }
        let need = needed_name(req, ni);
        for vn in req.found.info.verneed.iter().filter(|vn| *vn.file == *need) {
            for aux in &vn.versions {
                let why = match def.info.check_version_indexed(aux) {
                    VersionCheck::Met => continue,
                    VersionCheck::Missing => format!(
                        "version `{}' not found (required by {})",
                        show(&aux.name),
                        show(&req.found.path)
                    ),
                    VersionCheck::Unsupported(v) => {
                        format!("unsupported version {v} of Verdef record")
                    }
                };
                return Err(format!("{}: {why}", show(&def.path)));
            }
        }
    }
    // x86 ISA levels, once all is loaded and its versions checked
    // (`_dl_open_check`, glibc 2.33 and later).
    let cpu = modelled_cpu(resolver, target, trace_core(objs));
    for o in &ns.objs {
        if let Some(why) = isa_refusal(cpu, &o.found.info) {
            return Err(format!("{}: {why}", show(&o.found.path)));
        }
    }
    // `la_version`, looked up in the module's local scope (the namespace,
    // in load order) by `rtld`'s `lookup_doit`.
    let defined = ns.objs.iter().any(|o| {
        resolver.fs().open(&o.found.canonical).is_ok_and(|f| {
            let t = crate::elf::symbols::read(&f.file, &o.found.info);
            crate::graph::symbols::defines_unversioned(&t, b"la_version")
        })
    });
    if !defined {
        return Err("undefined symbol: la_version".into());
    }
    Ok(ns)
}

/// What a search in an audit module's namespace came to, for its log.
pub(super) fn audit_answer(outcome: &Outcome) -> AuditAnswer {
    match outcome {
        Outcome::Found(f) => AuditAnswer::Found(f.path.clone(), f.via),
        Outcome::Missing | Outcome::Fatal { .. } => AuditAnswer::NotFound,
        Outcome::Ignored(_) => AuditAnswer::Skipped,
    }
}

/// Adds audit module `name`'s namespace `ns` to the trace: its objects
/// after the others, an edge from the program to the module and the
/// namespace's own edges, all [`Via::Audit`].
pub(super) fn join_namespace(t: &mut RootTrace, ns: Namespace, name: &[u8], tag: &str) {
    let base = t.objs.len();
    let module = show(&ns.objs[0].found.path).to_string();
    for mut o in ns.objs {
        o.loader = o
            .loader
            .and_then(|l| std::num::NonZeroU32::new(l.get() + index32(base)));
        t.objs.push(o);
    }
    t.push_edge(
        0,
        To::Obj(base),
        TEdge::new(
            TName::own(name),
            Via::Audit,
            None,
            Some(format!("from {tag}")),
        ),
    );
    for (from, ni, to) in ns.edges {
        t.push_edge(
            base + from,
            To::Obj(base + to),
            TEdge::new(
                TName::needed(ni),
                Via::Audit,
                None,
                Some(format!("in the namespace of {module}")),
            ),
        );
    }
    t.warnings.extend(ns.warnings);
}
