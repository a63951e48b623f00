//! Objects the loader maps and then refuses: x86 ISA levels the CPU
//! lacks, executable stacks a `dlopen` would need, executables loaded as
//! libraries and `-z nodlopen` objects in `dlopen` mode, for programs,
//! libraries given as roots and plugins.

use super::*;

/// The objects each program maps at start-up that need x86 ISA levels
/// the modelled CPU lacks ([`RefusedWhy::IsaLevel`]): glibc 2.33 and later
/// check the program, its preloads and every library it maps (not the
/// loader itself) against the CPU once all are loaded, whichever CPU's
/// glibc-hwcaps subdirectory the library came from. Only the roots run as
/// programs count: included files, the variants traced for staging and
/// libraries given as roots are loaded by no program of this run. What
/// only a run-time load brings in is not looked at here: the trace
/// checked it as that `dlopen` (`runtime::mapped_refusal`,
/// `runtime::late_failure`), and undid one that fails.
///
/// By their type and `DT_FLAGS_1` too (`_dl_map_object_from_fd`, once the
/// object is mapped and is not one already loaded): an executable at a
/// fixed address (`ET_EXEC`, [`RefusedWhy::Executable`]) or, with glibc
/// 2.30 and later, a position-independent one (`DF_1_PIE`,
/// [`RefusedWhy::Pie`]) loaded as a library stops the program (an object
/// with `DF_1_NOOPEN`, `-z nodlopen`, loads at start-up as any other). These rules,
/// and no others, hold for a library given as a root as well: traced as
/// `ld.so --list` loads it, its dependencies are the same files in any
/// process that loads it.
pub(super) fn isa_refusals(resolver: &Resolver<'_>, g: &DepGraph) -> Vec<Refused> {
    // Every CPU has the x86-64 baseline but i386's, and nearly no object
    // is an executable loaded as a library (most programs are PIEs): only
    // roots that load an object needing more (an i386 one needing any
    // level) or such a library are walked.
    let mut roots: BTreeSet<usize> = BTreeSet::new();
    for i in g.graph.node_indices() {
        let n = &g.graph[i];
        let Some(info) = n.info.as_deref() else {
            continue;
        };
        let above = if info.ident.machine == crate::elf::machine::I386 {
            info.x86_isa_needed
        } else {
            info.x86_isa_needed & !1
        };
        let library = || {
            g.graph
                .edges_directed(i, petgraph::Direction::Incoming)
                .next()
                .is_some()
        };
        let exec = info.ident.e_type == ET_EXEC;
        if above != 0 || ((exec || info.pie()) && library()) {
            roots.extend(n.roots.iter().copied());
        }
    }
    let mut out = Vec::new();
    for ri in roots {
        let Some(&root) = g.root_nodes.get(ri) else {
            continue;
        };
        if g.root_via.get(ri) != Some(&Via::Root) {
            continue;
        }
        let Some(info) = g.graph[root].info.as_deref().filter(|i| i.dynamic) else {
            continue;
        };
        let target = resolver.shared_target(info);
        if target.flavor != Flavor::Glibc {
            continue;
        }
        // A library given as a root (no `PT_INTERP`; a directory root
        // lists `glibc-hwcaps/x86-64-v3/` copies too) is traced as
        // `ld.so --list` loads it: its dependencies are refused by their
        // type as a program's are, whatever process loads it. Its CPU and
        // stack are the process's: it is run by no one, only loaded by
        // programs, which are checked.
        if info.interp.is_none() {
            let startup = g.startup_objects(root, ri, false);
            for n in g.startup_objects(root, ri, true) {
                let node = &g.graph[n];
                let Some(obj) = node.info.as_deref() else {
                    continue;
                };
                if n == root || node.kind == NodeKind::Interpreter {
                    continue;
                }
                // (What a run-time load brings in was checked by the trace:
                // `runtime::mapped_refusal`.)
                if !startup.contains(&n) {
                    continue;
                }
                if let Some(why) = type_refusal(&target, obj) {
                    out.push(Refused {
                        object: node.path.clone(),
                        why,
                    });
                }
            }
            continue;
        }
        let startup = g.startup_objects(root, ri, false);
        // Under the baseline the CPU is the least that runs the root's C
        // library: a glibc built for x86-64-v2 (RHEL 9's) or v3 marks
        // libc.so.6 so, and no CPU below runs any program of that root.
        let core = g
            .children(root)
            .into_iter()
            .filter(|(_, e)| e.via == Via::Interpreter)
            .map(|(n, _)| n)
            .chain(startup.iter().copied().filter(|&n| {
                g.graph[n].info.as_ref().and_then(|i| i.soname.as_deref())
                    == Some(&b"libc.so.6"[..])
            }))
            .filter_map(|n| g.graph[n].info.as_deref());
        let cpu = modelled_cpu(resolver, &target, core);
        for n in g.startup_objects(root, ri, true) {
            let node = &g.graph[n];
            let Some(obj) = node.info.as_deref() else {
                continue;
            };
            if node.kind == NodeKind::Interpreter {
                continue;
            }
            // A run-time load's objects were checked by the trace, which
            // undid a `dlopen` that fails (`runtime::mapped_refusal`,
            // `runtime::late_failure`).
            if !startup.contains(&n) {
                continue;
            }
            if let Some(cpu) = cpu.filter(|c| obj.x86_isa_needed & !c != 0) {
                out.push(Refused {
                    object: node.path.clone(),
                    why: RefusedWhy::IsaLevel {
                        needed: obj.x86_isa_needed,
                        cpu,
                    },
                });
            }
            if n != root {
                if let Some(why) = type_refusal(&target, obj) {
                    out.push(Refused {
                        object: node.path.clone(),
                        why,
                    });
                }
            }
        }
    }
    out
}

/// A plugin is loaded with `dlopen`: it and each object it brings in that
/// its host had not loaded at start-up must pass [`dlopen_refusal`], with
/// glibc 2.41 and later need no executable stack unless the host's
/// start-up made the stack executable, and need no x86 ISA level the CPU
/// lacks ([`isa_refusal`]); each that fails is a warning (the plugin's
/// `dlopen` fails, the process goes on).
pub(super) fn plugin_refusals(resolver: &Resolver<'_>, target: &Target, t: &mut RootTrace) {
    // musl's `dlopen` has none of these checks (as for run-time loads:
    // `runtime::mapped_refusal`).
    if target.flavor != crate::resolve::target::Flavor::Glibc {
        return;
    }
    // A copy in a `glibc-hwcaps/` subdirectory stands in for its baseline
    // at start-up on a capable CPU: no one opens it with `dlopen`.
    let root = &t.objs[0].found.path;
    if root.windows(14).any(|w| w == b"/glibc-hwcaps/") {
        return;
    }
    let cpu = modelled_cpu(resolver, target, trace_core(&t.objs));
    let (loaded, stack_executable): (BTreeSet<(u64, u64)>, bool) = match &t.host {
        Some(h) => (
            h.objs.iter().map(|o| o.found.file_id).collect(),
            h.objs
                .iter()
                .any(|o| o.kind != NodeKind::Interpreter && o.found.info.exec_stack),
        ),
        None => (BTreeSet::new(), true),
    };
    let plugin = show(&t.objs[0].found.path).to_string();
    let mut warnings = Vec::new();
    for o in &t.objs {
        if o.latent || o.kind == NodeKind::Interpreter || loaded.contains(&o.found.file_id) {
            continue;
        }
        let info = &o.found.info;
        let why = dlopen_refusal(target, info)
            .map(str::to_string)
            .or_else(|| {
                (target.dlopen_refuses_exec_stack && info.exec_stack && !stack_executable)
                    .then(|| "cannot enable executable stack as shared object requires".into())
            })
            .or_else(|| isa_refusal(cpu, info));
        if let Some(why) = why {
            let path = show(&o.found.path);
            warnings.push(if path == plugin {
                format!("{path} (a plugin): {why}: its dlopen fails")
            } else {
                format!("{path} (loaded with the plugin {plugin}): {why}: that dlopen fails")
            });
        }
    }
    t.warnings.extend(warnings);
}

/// Why glibc's `_dl_map_object_from_fd` refuses an object it has found and
/// opened as a library, in any mode: an executable at a fixed address
/// (`ET_EXEC`) or, with glibc 2.30 and later, a PIE (`DF_1_PIE`).
pub(super) fn type_refusal(target: &Target, info: &ElfInfo) -> Option<RefusedWhy> {
    if info.ident.e_type == ET_EXEC {
        Some(RefusedWhy::Executable)
    } else if info.pie() && target.refuses_pie {
        Some(RefusedWhy::Pie)
    } else {
        None
    }
}

/// Why glibc's `_dl_map_object_from_fd` refuses an object it has found and
/// opened when it loads it in `dlopen` mode (a `dlopen` and the objects it
/// brings in; an audit module's namespace), by its type and `DT_FLAGS_1`:
/// an executable (at a fixed address, or with glibc 2.30 and later a
/// PIE), or an object linked with `-z nodlopen` (the PIE's words win when
/// both apply). At start-up only the first two count ([`isa_refusals`]).
pub(super) fn dlopen_refusal(target: &Target, info: &ElfInfo) -> Option<&'static str> {
    if info.ident.e_type == ET_EXEC {
        Some("cannot dynamically load executable")
    } else if info.pie() && target.refuses_pie {
        Some("cannot dynamically load position-independent executable")
    } else if info.noopen() {
        Some("shared object cannot be dlopen()ed")
    } else {
        None
    }
}

/// The x86 ISA level bits of the CPU a root is checked against, when its
/// loader checks them ([`Target::x86_isa`]); under the baseline raised to
/// every level its interpreter and `libc.so.6` (`core`) need, since a glibc
/// built for a level marks itself with it and no CPU below runs that root.
pub(super) fn modelled_cpu<'a>(
    resolver: &Resolver<'_>,
    target: &Target,
    core: impl Iterator<Item = &'a ElfInfo>,
) -> Option<u32> {
    target.x86_isa.map(|c| {
        if !matches!(resolver.options().hwcaps, crate::resolve::Hwcaps::Baseline) {
            return c;
        }
        c | levels_up_to(core.fold(0, |bits, i| bits | i.x86_isa_needed))
    })
}

/// The interpreter and `libc.so.6` among a trace's objects ([`modelled_cpu`]).
pub(super) fn trace_core(objs: &[Obj]) -> impl Iterator<Item = &ElfInfo> {
    objs.iter()
        .filter(|o| {
            o.kind == NodeKind::Interpreter
                || o.found.info.soname.as_deref() == Some(&b"libc.so.6"[..])
        })
        .map(|o| &*o.found.info)
}

/// Why `dlopen` fails once it has loaded an object that needs x86 ISA
/// levels the CPU (`cpu`, [`modelled_cpu`]) lacks: glibc 2.33 and later
/// check every object a `dlopen` brings in (`_dl_open_check`).
pub(super) fn isa_refusal(cpu: Option<u32>, info: &ElfInfo) -> Option<String> {
    let cpu = cpu.filter(|c| info.x86_isa_needed & !c != 0)?;
    Some(
        RefusedWhy::IsaLevel {
            needed: info.x86_isa_needed,
            cpu,
        }
        .describe(),
    )
}

/// Every x86 ISA level bit up to the highest in `bits`: a CPU of a level
/// has those below it.
pub(super) fn levels_up_to(bits: u32) -> u32 {
    match 32 - bits.leading_zeros() {
        0 => 0,
        32 => u32::MAX,
        n => (1 << n) - 1,
    }
}

/// Copies in a `glibc-hwcaps/x86-64-vN/` subdirectory that need x86 ISA
/// levels above N (and are not refused already): a CPU of level N that
/// finds one by a directory search loads it and is stopped ("CPU ISA level
/// is lower than required"); through the cache it is passed over, as
/// `ldconfig` records the level.
pub(super) fn isa_variant_warnings(resolver: &Resolver<'_>, g: &DepGraph) -> Vec<String> {
    let mut out = Vec::new();
    for n in g.graph.node_weights() {
        // Every level's subdirectory promises the baseline.
        let Some(info) = n.info.as_deref().filter(|i| i.x86_isa_needed & !1 != 0) else {
            continue;
        };
        let Some(level) = n
            .path
            .windows(b"/glibc-hwcaps/".len())
            .position(|w| w == b"/glibc-hwcaps/")
            .map(|at| &n.path[at + b"/glibc-hwcaps/".len()..])
            .and_then(|rest| rest.split(|&b| b == b'/').next())
            .and_then(crate::resolve::target::x86_isa_level)
        else {
            continue;
        };
        let promised = (1..level).fold(1u32, |bits, l| bits | 1 << l);
        let beyond = info.x86_isa_needed & !promised;
        if beyond == 0
            || resolver.shared_target(info).x86_isa.is_none()
            || g.refused.iter().any(|r| r.object == n.path)
        {
            continue;
        }
        out.push(format!(
            "{} needs {}, beyond its subdirectory's x86-64-v{level}: a CPU with x86-64-v{level} \
             and no more that finds it by a directory search loads it and stops (CPU ISA level is \
             lower than required)",
            show(&n.path),
            crate::resolve::target::x86_isa_names(beyond).join(", ")
        ));
    }
    out
}
