//! What the program, or libc for it, loads once it runs: `.note.dlopen`
//! entries, `--dlopen-strings` names, NSS modules, libgcc_s and gconv
//! modules, each loaded as `dlopen` from the asking object would load it.

use super::*;

/// Loads `name` on behalf of object `from` the way `dlopen` would: an
/// object already loaded under that name is reused; otherwise it is
/// searched with `from`'s rules and joins the load list with no loader
/// (its own dependencies see its RPATH, then the program's). musl's
/// `dlopen` searches as if the program asked (`load_library(file, head)`:
/// the program's RPATH/RUNPATH, never the caller's; checked against musl
/// in `runtime::musl_dlopen_searches_as_the_program`), and matches loaded
/// objects by the names they were loaded under. Returns the object index,
/// or the failed resolution.
pub(super) fn load_runtime(
    resolver: &Resolver<'_>,
    target: &Target,
    t: &mut RootTrace,
    from: usize,
    name: &[u8],
    (via, detail): (Via, String),
    queue: &mut Vec<usize>,
) -> std::result::Result<usize, Box<crate::resolve::Resolution>> {
    let edge = |name: &[u8]| TEdge::new(TName::own(name), via, None, Some(detail.clone()));
    if t.keep_search {
        t.runtime_log.push(RtStep::Load(from, name.to_vec()));
    }
    if let Some((j, _)) = t.host_loaded(name, from, queue) {
        t.push_edge(from, To::Obj(j), edge(name));
        return Ok(j);
    }
    if let Some(j) = find_loaded_for(target, &t.objs, name) {
        t.objs[j].latent = false;
        t.push_edge(from, To::Obj(j), edge(name));
        return Ok(j);
    }
    let searcher = match target.flavor {
        Flavor::Musl => 0,
        _ => from,
    };
    let mut chain = Vec::new();
    t.chain_into(searcher, &mut chain);
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
    Ok(j)
}

/// Records a run-time dependency that cannot be found: a problem when it
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

/// The next `.note.dlopen` entry of object `k` that the options select,
/// from entry `next` on (which it advances): its first alternative that
/// loads, or a missing entry. False when none is left.
pub(super) fn add_dlopen_notes(
    resolver: &Resolver<'_>,
    target: &Target,
    opts: &BuildOptions,
    t: &mut RootTrace,
    (k, next): (usize, &mut usize),
    queue: &mut Vec<usize>,
) -> bool {
    let Some(min) = opts.dlopen_priority else {
        return false;
    };
    let info = t.objs[k].found.info.clone();
    while let Some(e) = info.dlopen.get(*next) {
        *next += 1;
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
        for (a, name) in e.sonames.iter().enumerate() {
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
                Err(res) => {
                    if t.keep_search {
                        let outcome = if a + 1 < e.sonames.len() {
                            "the entry's next alternative is tried"
                        } else if e.priority == Priority::Required {
                            "required: missing"
                        } else {
                            "optional: the program goes on without it"
                        };
                        let searched = res.searched.clone();
                        let step = RtStep::Miss(k, name.clone(), detail.clone(), searched, outcome);
                        t.runtime_log.push(step);
                    }
                    last = Some(res);
                }
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
        return true;
    }
    false
}

/// The next library name spelled in the read-only data of object `k`,
/// when it calls `dlopen` and `--dlopen-strings` is given
/// ([`Resolver::dlopen_strings`]), from name `next` on (which it
/// advances), loaded as `dlopen` from `k` would load it, one name after
/// another as `.note.dlopen` entries are. Nothing tells which of them the
/// object really passes to `dlopen`, so one that cannot be loaded is a
/// warning: the names are gathered in `absent`, and the last call for the
/// object (false: none is left) warns of them once.
pub(super) fn add_dlopen_strings(
    resolver: &Resolver<'_>,
    target: &Target,
    opts: &BuildOptions,
    t: &mut RootTrace,
    (k, next, absent): (usize, &mut usize, &mut Vec<String>),
    queue: &mut Vec<usize>,
) -> bool {
    if !opts.dlopen_strings {
        return false;
    }
    let names = resolver.dlopen_strings(&t.objs[k].found);
    if let Some(name) = names.get(*next) {
        *next += 1;
        let how = (Via::DlopenString, "in read-only data".to_string());
        if load_runtime(resolver, target, t, k, name, how, queue).is_err() {
            absent.push(show(name));
        }
        return true;
    }
    // One warning per object: a program may spell many names it never
    // loads (other systems' loaders, optional plugins).
    if !absent.is_empty() {
        let (n, these) = match absent.len() {
            1 => ("a library name", "this name"),
            _ => ("library names", "these names"),
        };
        t.warnings.push(format!(
            "{}: {n} in its read-only data not found (it calls dlopen, perhaps never with {these}): {}",
            show(&t.objs[k].found.path),
            absent.join(", ")
        ));
        absent.clear();
    }
    false
}

/// The object run-time loads by glibc are attributed to: libc.so.6 when
/// it is in the closure, else the program.
pub(super) fn libc_index(t: &RootTrace) -> usize {
    t.objs
        .iter()
        .position(|o| o.found.info.soname.as_deref() == Some(b"libc.so.6".as_slice()))
        .unwrap_or(0)
}

/// NSS modules of the services the staged `/etc/nsswitch.conf` names.
pub(super) fn add_nss(
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
    for svc in services {
        if builtin && matches!(svc.as_slice(), b"files" | b"dns") {
            continue;
        }
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
pub(super) fn add_gconv(
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
            if t.keep_search {
                t.runtime_log.push(RtStep::Load(from, name.clone()));
            }
            runtime_missing(t, from, &name, Some(res), "a gconv module".into(), true);
        }
    }
}

/// `libgcc_s.so.1` when an object of the closure uses `pthread_cancel`,
/// `pthread_exit` or `backtrace`.
pub(super) fn add_libgcc(
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
        o.found
            .unwind
            .as_ref()
            .map(|sym| (o.found.path.clone(), sym.clone()))
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
