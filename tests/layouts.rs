//! Random layouts against the real loader.
//!
//! The scenario tests in `oracle.rs` check one rule each. These build
//! roots where the rules meet: libraries placed in several directories at
//! once (search paths, legacy hwcap and glibc-hwcaps subdirectories, the
//! cache's directories, default directories, a directory reached through a
//! symbolic link; versioned files behind their SONAME link, files whose
//! SONAME is another name), dependencies between them (cycles too), `DT_RPATH` and `DT_RUNPATH` with `$ORIGIN`, `$PLATFORM`,
//! `$LIB` and absent directories on the program and on libraries (so
//! inherited chains matter), relative and empty elements resolved from a
//! working directory (`--cwd`) and a file where a directory should be,
//! `-z nodefaultlib`, a `DT_NEEDED` path,
//! `LD_LIBRARY_PATH`, `LD_PRELOAD`, `/etc/ld.so.preload`, `ld.so.conf.d` directories of
//! their own, a cache that misses files added after
//! `ldconfig` ran, candidates for another machine (skipped) or not ELF at
//! all (fatal), and names found nowhere; a quarter of them also run in
//! secure mode. Each layout comes from a fixed
//! seed (the same roots on every run) and is compared with the root's own
//! `ld.so` by [`check`]: loaded and missing sets, `ldd` lines in order, the
//! files tried (`LD_DEBUG=libs`) and the requester of every object
//! (`LD_DEBUG=files`). A failure prints the seed and the layout;
//! `CLOSURE_LAYOUT_SEED=N` replays that one layout.
//!
//! The run-time layouts (`random_run_time_layouts_…`) are the same roots
//! with a second program that opens libraries its `.note.dlopen` names,
//! one `dlopen` after another, and has the libraries that name some of
//! their own open those, in link-map order; run with `LD_DEBUG=libs` (and
//! set-user-ID, for a secure layout) and compared with `closure
//! --verbose` by [`check_run_time`].

use crate::support::glibc::{glibc, Glibc};
use std::collections::BTreeSet;

use crate::support::oracle::{
    check, closure_ldd_lines, closure_trace, compared_logs_in, dlopen_note_c, loader_trace,
    run_closure, run_closure_with_run_time, staged_root_loads_the_same, Oracle, RunOutput,
    TestRoot,
};
use crate::support::rng::Rng;
use crate::support::setuid::{
    add_runas, assert_same_secure_search_log, clear_setuid, run_secure, setuid, Seen, LISTER,
    PRINT_OBJECTS, RUNAS_PATH,
};

const PROG: &str = "/app/bin/prog";
/// Libraries per layout.
const LIBS: usize = 6;
/// Layouts per test (four tests run side by side): 120 in all, unless
/// `CLOSURE_LAYOUTS` asks for more per test (a longer hunt: the seeds
/// that run by default come first).
const PER_TEST: u64 = 30;

/// Seeds past the default range that once found a bug, replayed on every
/// run: 332 and 950 (a preload found through the cache, staged without a
/// cache), 2774 (a name preloaded twice and found neither time: the
/// loader searches twice), 4678 (`LD_PRELOAD` names a library that is not
/// found, `/etc/ld.so.preload` loads it by path, and the program needs it by
/// that name: the loader matches it to the preloaded object without a
/// search, where `--verbose` showed the preload's failed search again),
/// 20324 (in secure mode the program stops at a missing name; a later
/// name's search ends in a fatal error, which stops the tracing loader
/// before it lists anything: the check took `closure`'s empty `ldd` lines
/// for a disagreement).
const KEPT: &[u64] = &[332, 950, 2774, 4678, 20324];

fn per_test() -> u64 {
    std::env::var("CLOSURE_LAYOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PER_TEST)
}

/// Where a library may be placed. `{p}` is the loader's platform; `/opt/c`
/// is a symbolic link to `/opt/b`.
const DIRS: &[&str] = &[
    "/opt/a",
    "/opt/b",
    "/opt/c",
    "/opt/a/tls",
    "/opt/b/x86_64",
    "/opt/a/{p}",
    "/opt/b/glibc-hwcaps/x86-64-v2",
    "/opt/{p}",
    "/app/lib",
    "/app/lib/tls",
    "/usr/local/lib",
    "/usr/local/lib/tls",
    "/usr/local/lib/glibc-hwcaps/x86-64-v2",
    "/usr/local/lib/{p}",
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/opt/lib/x86_64-linux-gnu",
];

/// Elements of search paths.
const PATHS: &[&str] = &[
    "/opt/a",
    "/opt/b",
    "/opt/c",
    "$ORIGIN",
    "$ORIGIN/../lib",
    "/opt/$PLATFORM",
    "/nonexistent",
    "/app/lib",
    "/opt/$LIB",
];

/// Search-path elements the second generator mixes in: relative ones,
/// resolved from the working directory (empty: the working directory
/// itself), and the program file, a directory's place taken by a file.
const EXTRA_ELEMENTS: &[&str] = &[
    "",
    ".",
    "a",
    "b",
    "lib",
    "../b",
    "opt/c",
    "./x86_64",
    "bin/prog",
    "/app/bin/prog",
];

/// Working directories of a layout whose search paths hold a relative
/// element.
const CWDS: &[&str] = &["/", "/opt", "/opt/a", "/opt/b", "/app", "/usr"];

/// Draws that a layout adds to what its first generator built: a second
/// generator of the same seed, so each seed's placements, tags and
/// dependencies stay what they were before these draws existed.
struct Extra {
    rng: Rng,
    /// Some search path got a relative element.
    relative: bool,
}

impl Extra {
    fn new(seed: u64) -> Extra {
        Extra {
            rng: Rng::new(seed.wrapping_add(1 << 40)),
            relative: false,
        }
    }
}

/// A search-path value of one to three elements, now and then with a
/// relative one among them.
fn search_path(rng: &mut Rng, extra: &mut Extra) -> String {
    let n = 1 + rng.below(3);
    let mut elements: Vec<&str> = (0..n).map(|_| *rng.pick(PATHS)).collect();
    if extra.rng.chance(12) {
        let at = extra.rng.below(elements.len() + 1);
        let element = *extra.rng.pick(EXTRA_ELEMENTS);
        elements.insert(at, element);
        extra.relative |= !element.starts_with('/');
    }
    elements.join(":")
}

/// `DT_RPATH` (25%), `DT_RUNPATH` (25%) or neither.
#[derive(Debug, Clone)]
enum Path {
    None,
    Rpath(String),
    Runpath(String),
}

fn path_tag(rng: &mut Rng, extra: &mut Extra) -> Path {
    match rng.below(4) {
        0 => Path::Rpath(search_path(rng, extra)),
        1 => Path::Runpath(search_path(rng, extra)),
        _ => Path::None,
    }
}

/// Directories an ld.so.conf.d file may add to the cache.
const CONF_DIRS: &[&str] = &[
    "/opt/a",
    "/opt/b",
    "/opt/c",
    "/opt/b/x86_64",
    "/app/lib",
    "/opt/lib/x86_64-linux-gnu",
];

/// `path` (absolute) spelled relative to the directory `cwd`: below it
/// without it, elsewhere through `..`.
fn relative_to(cwd: &str, path: &str) -> String {
    let cwd = cwd.trim_end_matches('/');
    if let Some(rest) = path.strip_prefix(&format!("{cwd}/")) {
        return rest.to_string();
    }
    let ups = cwd.split('/').filter(|c| !c.is_empty()).count();
    format!("{}{}", "../".repeat(ups), path.trim_start_matches('/'))
}

/// Builds the layout of `seed` in a fresh root (around this machine's
/// glibc, or `glibc`) and compares it.
fn layout(o: &Oracle, seed: u64, glibc: Option<&Glibc>) {
    layout_of(o, seed, glibc, false);
}

/// [`layout`], and with `run_time` the program also opens libraries once it
/// runs ([`RunTime`]), compared by [`check_run_time`].
fn layout_of(o: &Oracle, seed: u64, glibc: Option<&Glibc>, run_time: bool) {
    let kind = if run_time {
        "run_time_layout"
    } else {
        "layout"
    };
    let name = match glibc {
        Some(g) => format!("{kind}_{seed} (glibc {})", g.version),
        None => format!("{kind}_{seed}"),
    };
    let mut rng = Rng::new(seed);
    let mut extra = Extra::new(seed);
    let r = match glibc {
        Some(g) => TestRoot::with_glibc(o, g),
        None => TestRoot::new(o),
    };
    let platform = r.loader_platform();
    let mut hwcaps = r.cpu_hwcaps();
    hwcaps.truncate(3);
    let mut args: Vec<String> = vec!["--platform".into(), platform.clone()];
    if !hwcaps.is_empty() {
        args.extend(["--hwcaps".into(), hwcaps.join(",")]);
    }
    r.mkdir("/opt/b");
    // Relative: the test writes through it on the host as well.
    r.symlink("b", "/opt/c");
    let mut plan: Vec<String> = vec![format!("seed {seed}: /opt/c -> /opt/b")];
    // A fifth generator: now and then the program is also run in secure
    // mode (setuid root, by uid 1000), which the loader does not trace: the
    // program lists its own link map.
    let mut fifth = Rng::new(seed.wrapping_add(4 << 40));
    // (With a glibc older than 2.34, which this machine's start files
    // need, the lister brings its own entry point.)
    let secure = fifth.chance(25);
    // Libraries from the last to the first, so each may need later ones
    // (already built somewhere to link against).
    let mut placed: Vec<Vec<String>> = vec![Vec::new(); LIBS];
    let mut late: Vec<Lib> = Vec::new();
    // A sixth generator, for a run-time layout: which copies open
    // libraries their own `.note.dlopen` names, and what the second
    // program opens.
    let mut sixth = run_time.then(|| Rng::new(seed.wrapping_add(5 << 40)));
    // A seventh, for a run-time layout: the functions libraries call
    // ([`Calls`]), which a `dlopen` (`RTLD_NOW`) must bind.
    let mut seventh = run_time.then(|| Rng::new(seed.wrapping_add(6 << 40)));
    for i in (0..LIBS).rev() {
        let soname = format!("librand{i}.so.1");
        let copies = 1 + rng.below(3);
        let mut dirs: Vec<String> = Vec::new();
        while dirs.len() < copies {
            let d = rng.pick(DIRS).replace("{p}", &platform);
            // /opt/c is /opt/b: one file, placed once.
            let same = |a: &str| a.replacen("/opt/c", "/opt/b", 1);
            if !dirs.iter().any(|x| same(x) == same(&d)) {
                dirs.push(d);
            }
        }
        for (k, d) in dirs.into_iter().enumerate() {
            let file = format!("{d}/{soname}");
            // Later libraries by path; now and then an earlier one by name
            // (a stub at link time), so dependencies can form cycles.
            let mut needs: Vec<String> = (i + 1..LIBS)
                .filter(|_| rng.chance(30))
                .filter_map(|j| placed[j].first().cloned())
                .collect();
            needs.extend(
                (0..i)
                    .filter(|_| rng.chance(8))
                    .map(|j| format!("/not-built-yet/librand{j}.so.1")),
            );
            let tag = path_tag(&mut rng, &mut extra);
            let after_ldconfig = rng.chance(20);
            // A versioned file behind its SONAME link, as packages ship
            // them; or a file whose SONAME is another name.
            let real = if rng.chance(15) {
                format!("{file}.0.{k}")
            } else {
                file.clone()
            };
            let own = if rng.chance(10) {
                format!("libalias{i}.so.1")
            } else {
                soname.clone()
            };
            plan.push(format!(
                "{real} (SONAME {own}): needs {needs:?}, {tag:?}{}{}",
                if real == file {
                    String::new()
                } else {
                    format!(", linked from {file}")
                },
                if after_ldconfig {
                    ", added after ldconfig"
                } else {
                    ""
                }
            ));
            let mut notes = None;
            if let Some(six) = sixth.as_mut() {
                if six.chance(30) {
                    notes = Some(RunTime::draw(six, &placed, 2));
                }
            }
            if let Some(notes) = &notes {
                plan.push(format!("{real}: opens at run time {:?}", notes.entries));
            }
            let calls = seventh.as_mut().map(|seventh| Calls::draw(seventh, i, k));
            if let Some(c) = calls.as_ref() {
                if !c.calls.is_empty() || !c.reads.is_empty() {
                    plan.push(format!("{real}: calls {:?}, reads {:?}", c.calls, c.reads));
                }
            }
            let lib = Lib {
                real,
                file: file.clone(),
                soname: own,
                needs,
                tag,
                notes,
                calls,
            };
            if after_ldconfig {
                late.push(lib);
            } else {
                lib.build(&r);
            }
            placed[i].push(file);
        }
    }
    // The program needs two to four of them and sometimes a name that
    // exists nowhere.
    let mut needs: Vec<String> = Vec::new();
    for _ in 0..2 + rng.below(3) {
        let lib = &placed[rng.below(LIBS)][0];
        if !needs.contains(lib) {
            needs.push(lib.clone());
        }
    }
    let missing = rng.chance(15);
    let tag = path_tag(&mut rng, &mut extra);
    plan.push(format!(
        "{PROG}: needs {needs:?}{}, {tag:?}",
        if missing { " and libnowhere.so.1" } else { "" }
    ));
    let mut exe = link(&r, r.exe(PROG), &needs);
    if secure {
        plan.push(format!(
            "{PROG}: lists its link map, run in secure mode too"
        ));
        exe = exe.source(LISTER);
    }
    if missing {
        exe = exe.needs_names(&["libnowhere.so.1"]);
    }
    exe = match &tag {
        Path::Rpath(v) => exe.rpath(v),
        Path::Runpath(v) => exe.runpath(v),
        Path::None => exe,
    };
    if rng.chance(10) {
        plan.push(format!("{PROG}: -z nodefaultlib"));
        exe = exe.arg("-Wl,-z,nodefaultlib");
    }
    exe.build();
    // A sixth generator: a second program beside it, with its search-path
    // tag and some of its libraries, that opens libraries once it runs.
    let opens = sixth.as_mut().map(|sixth| {
        let mut opens = RunTime::draw(sixth, &placed, 3);
        let some: Vec<String> = needs.iter().filter(|_| sixth.chance(50)).cloned().collect();
        plan.push(format!(
            "{OPENER_PATH}: needs {some:?}, {tag:?}, opens at run time {:?}",
            opens.entries
        ));
        // (It exports `OPENER_API`, which libraries may call.)
        let source = format!("{}int {OPENER_API}(void) {{ return 7; }}\n", opens.source());
        let b = link(&r, r.exe(OPENER_PATH), &some)
            .source(&source)
            .arg("-rdynamic");
        match &tag {
            Path::Rpath(v) => b.rpath(v),
            Path::Runpath(v) => b.runpath(v),
            Path::None => b,
        }
        .build();
        opens.needs = r.needed_names(OPENER_PATH);
        opens
            .needs
            .retain(|n| n.starts_with("librand") || n.starts_with("libalias"));
        opens
    });
    // The program's first DT_NEEDED string, as it stands.
    let first = &needs[0];
    let first_soname = first.rsplit('/').next().unwrap_or(first).to_string();
    let mut first_needed = first_soname.clone();
    if rng.chance(10) {
        // The first DT_NEEDED becomes a path to one copy of it.
        let soname = first_soname.as_str();
        let copies: Vec<&String> = placed
            .iter()
            .flatten()
            .filter(|p| p.ends_with(soname))
            .collect();
        let path = *rng.pick(&copies);
        plan.push(format!("{PROG}: DT_NEEDED {soname} -> {path}"));
        r.patchelf(PROG, &["--replace-needed", soname, path]);
        first_needed = path.clone();
    }
    // A fourth generator: now and then an ld.so.conf.d file puts some of
    // the search-path directories into the cache, in a random order (a
    // directory reached through a link, and a legacy subdirectory, too).
    let mut fourth = Rng::new(seed.wrapping_add(3 << 40));
    if fourth.chance(25) {
        let mut conf: Vec<&str> = Vec::new();
        for _ in 0..1 + fourth.below(3) {
            let d = *fourth.pick(CONF_DIRS);
            if !conf.contains(&d) {
                conf.push(d);
            }
        }
        plan.push(format!("/etc/ld.so.conf.d/opt.conf: {conf:?}"));
        r.write("/etc/ld.so.conf.d/opt.conf", &(conf.join("\n") + "\n"));
    }
    r.ldconfig();
    for lib in &late {
        lib.build(&r);
    }
    // A candidate the loader skips (another machine: e_machine patched to
    // AArch64) or that ends the search (not ELF), in a directory a search
    // may pass through first.
    for (percent, what) in [(15, "aarch64"), (5, "not ELF")] {
        if rng.chance(percent) {
            let i = rng.below(LIBS);
            let d = rng.pick(DIRS).replace("{p}", &platform);
            let file = format!("{d}/librand{i}.so.1");
            if r.host(&file).exists() {
                continue;
            }
            plan.push(format!("{file}: {what}"));
            if what == "not ELF" {
                r.write(&file, "/* GNU ld script */\nGROUP ( libc.so.6 )\n");
            } else {
                r.copy(&placed[i][0], &file);
                r.patch_bytes(&file, 18, &[183, 0]);
            }
        }
    }
    let mut env: Vec<(&str, String)> = Vec::new();
    if rng.chance(30) {
        let llp = search_path(&mut rng, &mut extra);
        plan.push(format!("LD_LIBRARY_PATH={llp}"));
        args.extend(["--library-path".into(), llp.clone()]);
        env.push(("LD_LIBRARY_PATH", llp));
    }
    if rng.chance(15) {
        let i = rng.below(LIBS);
        let preload = match rng.below(3) {
            0 => format!("librand{i}.so.1"),
            1 => placed[i][rng.below(placed[i].len())].clone(),
            _ => "libnope.so.7".to_string(),
        };
        plan.push(format!("LD_PRELOAD={preload}"));
        args.extend(["--preload".into(), preload.clone()]);
        env.push(("LD_PRELOAD", preload));
    }
    // /etc/ld.so.preload, which a staged root does not get (by design: the
    // report warns), so such a layout is not staged.
    let preload_file = rng.chance(10);
    if preload_file {
        let i = rng.below(LIBS);
        let text = match rng.below(3) {
            0 => format!("# site\nlibrand{i}.so.1\n"),
            1 => format!("{} libnope.so.8", placed[i][0]),
            _ => format!("librand{i}.so.1:libalias{i}.so.1"),
        };
        plan.push(format!("/etc/ld.so.preload: {text:?}"));
        r.write("/etc/ld.so.preload", &text);
    }
    // A relative element is looked up from the working directory: the
    // program runs in one of a few (made when missing, as a container
    // runtime makes its `WORKDIR`), and `closure` is told which.
    let mut cwd = "/";
    if extra.relative {
        cwd = *extra.rng.pick(CWDS);
    }
    // A third generator: now and then the program's first DT_NEEDED is a
    // path relative to the working directory (glibc opens it from there,
    // and its `$ORIGIN` is the working directory joined to it).
    let mut third = Rng::new(seed.wrapping_add(2 << 40));
    if third.chance(8) {
        if !extra.relative {
            cwd = *third.pick(CWDS);
        }
        let copies: Vec<&String> = placed
            .iter()
            .flatten()
            .filter(|p| p.ends_with(&format!("/{first_soname}")))
            .collect();
        let path = *third.pick(&copies);
        let rel = relative_to(cwd, path);
        plan.push(format!("{PROG}: DT_NEEDED {first_needed} -> {rel}"));
        r.patchelf(PROG, &["--replace-needed", &first_needed, &rel]);
    }
    // And now and then a preload by a relative path, when no other is set.
    if third.chance(6) && !env.iter().any(|(k, _)| *k == "LD_PRELOAD") {
        if cwd == "/" {
            cwd = *third.pick(CWDS);
        }
        let i = third.below(LIBS);
        let preload = relative_to(cwd, &placed[i][third.below(placed[i].len())]);
        plan.push(format!("LD_PRELOAD={preload}"));
        args.extend(["--preload".into(), preload.clone()]);
        env.push(("LD_PRELOAD", preload));
    }
    // In secure mode a preload is a name, searched without the cache and
    // taken only from a set-user-ID file: a secure layout may preload one
    // (when nothing else is) and make some copies set-user-ID for its
    // secure run.
    let mut setuid_files: Vec<String> = Vec::new();
    if secure {
        let i = fifth.below(LIBS);
        if fifth.chance(50) && !env.iter().any(|(k, _)| *k == "LD_PRELOAD") {
            let preload = format!("librand{i}.so.1");
            plan.push(format!("LD_PRELOAD={preload}"));
            args.extend(["--preload".into(), preload.clone()]);
            env.push(("LD_PRELOAD", preload));
        }
        for file in &placed[i] {
            if fifth.chance(50) {
                setuid_files.push(file.clone());
            }
        }
        if !setuid_files.is_empty() {
            plan.push(format!("set-user-ID in the secure run: {setuid_files:?}"));
        }
    }
    if cwd != "/" {
        plan.push(format!("working directory {cwd}"));
        r.set_cwd(cwd);
        args.extend(["--cwd".into(), cwd.into()]);
    }
    println!("{name}:\n  {}", plan.join("\n  "));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if secure {
        check_secure(&name, &r, &env, &args, &setuid_files);
    }
    if let Some(opens) = &opens {
        let setuid_files = secure.then_some(setuid_files.as_slice());
        check_run_time(&name, &r, &env, &args, opens, setuid_files);
    }
    let trace = loader_trace(&r, PROG, &env);
    if trace.status != 0 {
        // The loader gave up on a candidate (not ELF): `closure` must stop
        // at the same file, as a problem.
        let at = "error while loading shared libraries: ";
        let path = trace
            .stderr
            .lines()
            .find_map(|l| l.split_once(at).and_then(|(_, rest)| rest.split_once(": ")))
            .map(|(path, _)| path.to_string())
            .unwrap_or_else(|| {
                panic!(
                    "{name}: the loader failed without naming a file\n{}",
                    trace.dump()
                )
            });
        let run = closure_trace(&r, PROG, &args);
        let fatal: Vec<&str> = run
            .json
            .as_ref()
            .and_then(|j| j["missing"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m["fatal"]["path"].as_str())
            .collect();
        assert!(
            run.status == 1 && fatal.contains(&path.as_str()),
            "{name}: the loader aborted on {path}; closure's fatal paths {fatal:?}, exit {}\n{}\n{}",
            run.status,
            trace.dump(),
            run.dump()
        );
        println!("{name}: ld.so aborted on {path}, and so does closure");
        return;
    }
    let (trace, _) = check(&name, &r, PROG, &env, &args);
    if !preload_file {
        // (Libraries' `.note.dlopen` entries of a run-time layout, which
        // may be required and found nowhere, are not the start-up's.)
        let mut args = args.clone();
        if run_time {
            args.push("--startup-only");
        }
        staged_root_loads_the_same(&name, &r, PROG, &env, &args, &trace);
    }
}

/// Runs the program setuid root by uid 1000 (`AT_SECURE`) with `env` and
/// compares what it loaded, or the name it stopped at, with `closure
/// --secure` and `args`. The loader stops at the first name it cannot
/// load, in load order: `closure`'s first `not found` line; the files it
/// tries up to there are those `closure --secure --verbose` tries. The
/// program and `setuid_files` are set-user-ID for this run only.
fn check_secure(
    name: &str,
    r: &TestRoot,
    env: &[(&str, &str)],
    args: &[&str],
    setuid_files: &[String],
) {
    add_runas(r);
    for file in std::iter::once(PROG).chain(setuid_files.iter().map(String::as_str)) {
        setuid(r, file);
    }
    // (A library it maps at start-up may read a variable defined nowhere,
    // in a run-time layout: the program stops there, which the tracer,
    // binding no symbols at start-up, does not say.)
    let out = r.run_in_root(env, &[RUNAS_PATH, PROG]);
    if out.stderr.contains(": symbol lookup error: ") {
        println!(
            "{name}: secure mode: the program stops at a symbol: {}",
            out.stderr.trim_end()
        );
        for file in std::iter::once(PROG).chain(setuid_files.iter().map(String::as_str)) {
            clear_setuid(r, file);
        }
        return;
    }
    let real = run_secure(r, PROG, env);
    let mut secure_args = vec!["--secure"];
    secure_args.extend_from_slice(args);
    let run = closure_trace(r, PROG, &secure_args);
    let ldd = closure_ldd_lines(r.path(), &[PROG], &secure_args)
        .remove(PROG)
        .unwrap_or_default();
    assert_same_secure_search_log(name, r, PROG, env, &secure_args, &real);
    for file in std::iter::once(PROG).chain(setuid_files.iter().map(String::as_str)) {
        clear_setuid(r, file);
    }
    let first_not_found = ldd
        .iter()
        .find_map(|l| l.strip_suffix(" => not found"))
        .map(str::to_string);
    // A fatal error later in the load stops the tracing loader before it
    // lists anything (no lines), but not a program that stops at an
    // earlier missing name: then the first failure in `--verbose`'s order.
    let first_failure = || {
        let mut args = secure_args.clone();
        args.push("--verbose");
        first_failure(&run_closure(r.path(), &[PROG], &args).stderr)
    };
    let agree = match &real {
        Seen::Loaded(loaded) => run.missing.is_empty() && run.loaded() == *loaded,
        Seen::Missing(n) => {
            first_not_found.as_ref() == Some(n)
                || (ldd.is_empty() && first_failure() == Some((n.clone(), false)))
        }
        Seen::Fatal(what, _) => {
            run.status == 1
                && run.missing.iter().any(|m| {
                    let fatal = &m.raw["fatal"];
                    !fatal.is_null()
                        && (m.soname == *what || fatal["path"].as_str() == Some(what.as_str()))
                })
        }
    };
    println!("{name}: secure mode: the loader {real:?}");
    assert!(
        agree,
        "{name}: in secure mode the loader saw {real:?}; closure --secure's ldd lines {ldd:?}\n{}",
        run.dump()
    );
}

/// The first name the first root's `--verbose` replay could not load, in
/// load order, and whether the loader aborts on it (rather than finding
/// nothing); audit modules' namespaces are not the program's load.
fn first_failure(verbose: &str) -> Option<(String, bool)> {
    let mut name: Option<&str> = None;
    let mut roots = 0;
    for line in verbose.lines() {
        if line.starts_with("search: loading ") {
            roots += 1;
            if roots > 1 {
                break;
            }
        } else if let Some(rest) = line.strip_prefix("  find library=") {
            let audit = rest.contains("audit module");
            name = (!audit).then(|| rest.split("; ").next().unwrap_or(rest));
        } else if line == "    => not found" {
            if let Some(n) = name {
                return Some((n.to_string(), false));
            }
        } else if line.starts_with("    => the loader aborts on ") {
            if let Some(n) = name {
                return Some((n.to_string(), true));
            }
        }
    }
    None
}

/// Links `b` against each of `needs` (in-root paths) in order: the file
/// when it exists, else a stub of the same SONAME (a library added after
/// `ldconfig` ran is built last), so the `DT_NEEDED` names are the same.
fn link<'r>(
    r: &TestRoot,
    mut b: crate::support::oracle::ElfBuild<'r>,
    needs: &[String],
) -> crate::support::oracle::ElfBuild<'r> {
    for n in needs {
        if r.host(n).exists() {
            b = b.needs(&[n.as_str()]);
        } else {
            b = b.needs_names(&[n.rsplit('/').next().unwrap_or(n)]);
        }
    }
    b
}

/// One library to build.
struct Lib {
    /// The file built.
    real: String,
    /// The name it is placed under: `real`, or a link to it.
    file: String,
    soname: String,
    needs: Vec<String>,
    tag: Path,
    /// What it opens at run time (its `closure_open_notes`), in a
    /// run-time layout.
    notes: Option<RunTime>,
    /// What it defines and calls, in a run-time layout.
    calls: Option<Calls>,
}

/// The function a run-time layout's opener exports (`-rdynamic`).
const OPENER_API: &str = "opener_api";

/// The functions one library copy of a run-time layout defines — `lrI`
/// (every copy of `librandI.so.1`) and `lrI_K` (its copy `K`) — and the
/// ones it calls: another library's (bound only when that library is in
/// the scope of the `dlopen` that maps this one, or in the global scope),
/// a copy's own, the opener's ([`OPENER_API`]) or one defined nowhere.
/// Calls are PLT relocations: the program starts whatever they bind to,
/// lazily, and a `dlopen` with `RTLD_NOW` fails on one that does not. Now
/// and then it reads a variable too (`ldI`, `ldI_K`, one defined
/// nowhere): a reference the loader binds when it maps the object, so a
/// `dlopen` fails on it in any mode, and so does the program's start when
/// a library it needs at start-up has it.
struct Calls {
    lib: usize,
    copy: usize,
    calls: Vec<String>,
    reads: Vec<String>,
}

impl Calls {
    fn draw(rng: &mut Rng, lib: usize, copy: usize) -> Calls {
        let mut calls = Vec::new();
        if rng.chance(12) {
            calls.push(match rng.below(10) {
                0..=4 => format!("lr{}", rng.below(LIBS)),
                5..=6 => format!("lr{}_{}", rng.below(LIBS), rng.below(3)),
                7..=8 => OPENER_API.to_string(),
                _ => "lr_nowhere".to_string(),
            });
        }
        let mut reads = Vec::new();
        if rng.chance(6) {
            reads.push(match rng.below(10) {
                0..=5 => format!("ld{}", rng.below(LIBS)),
                6..=8 => format!("ld{}_{}", rng.below(LIBS), rng.below(3)),
                _ => "ld_nowhere".to_string(),
            });
        }
        Calls {
            lib,
            copy,
            calls,
            reads,
        }
    }

    /// Its C.
    fn source(&self) -> String {
        let (i, k) = (self.lib, self.copy);
        let mut c = format!(
            "int lr{i}(void) {{ return {i}; }}\nint lr{i}_{k}(void) {{ return {k}; }}\n\
             int ld{i} = {i};\nint ld{i}_{k} = {k};\n"
        );
        for f in &self.calls {
            c.push_str(&format!(
                "int {f}(void);\nint call_{f}(void) {{ return {f}(); }}\n"
            ));
        }
        for v in &self.reads {
            c.push_str(&format!(
                "extern int {v};\nint read_{v}(void) {{ return {v}; }}\n"
            ));
        }
        c
    }
}

impl Lib {
    fn build(&self, r: &TestRoot) {
        let mut b = link(r, r.lib(&self.real, &self.soname), &self.needs);
        let mut source = String::new();
        if let Some(calls) = &self.calls {
            source.push_str(&calls.source());
        }
        if let Some(notes) = &self.notes {
            source.push_str(&notes.library_source());
        }
        if !source.is_empty() {
            b = b.source(&source);
        }
        b = match &self.tag {
            Path::Rpath(v) => b.rpath(v),
            Path::Runpath(v) => b.runpath(v),
            Path::None => b,
        };
        b.build();
        if self.real != self.file {
            let target = self.real.rsplit('/').next().unwrap_or(&self.real);
            r.symlink(target, &self.file);
        }
    }
}

/// The second program of a run-time layout: opens each argument with `dlopen`
/// (`RTLD_NOW`), an argument's `,`-separated alternatives in turn until one
/// loads, saying on standard error (between the loader's `LD_DEBUG` lines)
/// how each went; then lists its link map on standard output.
const OPENER_PATH: &str = "/app/bin/opener";

/// Its `main` (after [`PRINT_OBJECTS`] and [`OPEN_ENTRY`]).
const OPENER: &str = r#"
int main(int argc, char **argv) {
    setvbuf(stderr, 0, _IONBF, 0);
    for (int k = 1; k < argc; k++)
        open_entry("", argv[k]);
    /* Then each object's own, in link-map order (objects it loads are
       appended, and their turn comes too). */
    for (int k = 1;; k++) {
        struct nth x = { k, 0, 0 };
        if (!dl_iterate_phdr(nth_object, &x))
            break;
        if (!x.name || !x.name[0])
            continue;
        void *h = dlopen(x.name, RTLD_NOW | RTLD_NOLOAD);
        void (*f)(void) = h ? (void (*)(void))dlsym(h, "closure_open_notes") : 0;
        Dl_info di;
        if (f && dladdr((void *)f, &di) && di.dli_fname && !strcmp(di.dli_fname, x.name))
            f();
    }
    dl_iterate_phdr(each, 0);
    return 0;
}
"#;

/// C: `open_entry(caller, entry)` opens an entry (`PRIORITY:NAME,NAME…`)'s
/// alternatives with `dlopen` (`RTLD_NOW`) in turn until one loads, saying
/// on standard error (between the loader's `LD_DEBUG` lines) how each went
/// (`opener: OK CALLER NAME` or `opener: FAIL CALLER NAME|ERROR`), and
/// when none did (`opener: NONE CALLER PRIORITY FIRST-NAME`); the caller
/// is empty for the program, else the library's name in the link map.
/// `nth_object` finds the `k`-th object of the link map.
const OPEN_ENTRY: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
static void open_entry(const char *caller, const char *entry) {
    char buf[4096];
    strncpy(buf, entry, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    char *names = strchr(buf, ':');
    if (!names)
        return;
    *names++ = 0;
    char first[4096];
    strcpy(first, names);
    *strchrnul(first, ',') = 0;
    char *save = 0;
    for (char *name = strtok_r(names, ",", &save); name; name = strtok_r(0, ",", &save)) {
        if (dlopen(name, RTLD_NOW)) {
            fprintf(stderr, "opener: OK %s %s\n", caller, name);
            return;
        }
        fprintf(stderr, "opener: FAIL %s %s|%s\n", caller, name, dlerror());
    }
    fprintf(stderr, "opener: NONE %s %s %s\n", caller, buf, first);
}
struct nth { int k; int i; const char *name; };
static int nth_object(struct dl_phdr_info *info, size_t n, void *d) {
    (void)n;
    struct nth *x = d;
    if (x->i++ != x->k)
        return 0;
    x->name = info->dlpi_name;
    return 1;
}
"#;

/// A library's `closure_open_notes` (after [`OPEN_ENTRY`]); `ENTRIES` is
/// replaced by its entries.
const LIBRARY_OPENER: &str = r#"
static const char *const entries[] = { ENTRIES };
/* (Its own address: `closure_open_notes` is bound to the first library
   of the global scope that defines it.) */
static void here(void) {}
void closure_open_notes(void) {
    Dl_info di;
    const char *me = dladdr((void *)here, &di) ? di.dli_fname : "?";
    for (unsigned k = 0; k < sizeof entries / sizeof *entries; k++)
        open_entry(me, entries[k]);
}
"#;

/// What a run-time layout's program opens: its `.note.dlopen` entries, in
/// order, each its alternatives and priority; the program opens them in
/// that order (the order `closure` takes them in).
struct RunTime {
    entries: Vec<(Vec<String>, &'static str)>,
    /// The opener's own `DT_NEEDED` names of random libraries.
    needs: Vec<String>,
}

impl RunTime {
    /// One to three entries of one or two names each: a library's SONAME,
    /// another name a library has as its SONAME, a path to one copy, a path
    /// through `$ORIGIN`, or a name found nowhere.
    fn draw(rng: &mut Rng, placed: &[Vec<String>], most: usize) -> RunTime {
        let mut entries = Vec::new();
        for e in 0..1 + rng.below(most) {
            let mut names: Vec<String> = Vec::new();
            for _ in 0..1 + usize::from(rng.chance(25)) {
                let i = rng.below(LIBS);
                let name = match rng.below(20) {
                    0..=10 => format!("librand{i}.so.1"),
                    11..=12 => format!("libalias{i}.so.1"),
                    // (A library's draw comes before some are placed.)
                    13..=15 if !placed[i].is_empty() => {
                        placed[i][rng.below(placed[i].len())].clone()
                    }
                    13..=15 => format!("librand{i}.so.1"),
                    16..=17 => format!("$ORIGIN/../lib/librand{i}.so.1"),
                    _ => format!("libnowhere{e}.so.1"),
                };
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let priority = *rng.pick(&["required", "required", "recommended", "suggested"]);
            entries.push((names, priority));
        }
        RunTime {
            entries,
            needs: Vec::new(),
        }
    }

    /// Each entry as [`OPEN_ENTRY`] takes it: `PRIORITY:NAME,NAME…`.
    fn args(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(names, priority)| format!("{priority}:{}", names.join(",")))
            .collect()
    }

    /// C of its `.note.dlopen`.
    fn note(&self) -> String {
        let json: Vec<String> = self
            .entries
            .iter()
            .map(|(names, priority)| {
                let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!(
                    r#"{{"soname":[{}],"priority":"{priority}"}}"#,
                    names.join(",")
                )
            })
            .collect();
        dlopen_note_c(&format!("[{}]", json.join(",")))
    }

    /// The second program's source: its `.note.dlopen`, [`PRINT_OBJECTS`],
    /// [`OPEN_ENTRY`], then [`OPENER`].
    fn source(&self) -> String {
        format!("{}{PRINT_OBJECTS}{OPEN_ENTRY}{OPENER}", self.note())
    }

    /// A library's source: its `.note.dlopen`, [`OPEN_ENTRY`] and
    /// [`LIBRARY_OPENER`].
    fn library_source(&self) -> String {
        let entries: Vec<String> = self.args().iter().map(|a| format!("\"{a}\"")).collect();
        let opener = LIBRARY_OPENER.replace("ENTRIES", &entries.join(", "));
        format!("{}{OPEN_ENTRY}{opener}", self.note())
    }
}

/// Runs a run-time layout's program (with `env` and `LD_DEBUG=libs`),
/// which opens its `.note.dlopen` names one after another, and compares it
/// with `closure --verbose` with run-time loads (`args`, every priority):
/// the searches in order (a `dlopen` that fails once it found its file,
/// for a dependency not found, a file that is not ELF, an object refused,
/// a version missing, unloads what it loaded, and the program goes on to
/// the next alternative, as `closure` has it too), what the process ended
/// with (its link map) and which entries no alternative loaded (missing
/// when required, warned about otherwise). `closure` binds no symbols: a
/// `dlopen` that fails for an undefined one cuts the comparison there.
/// With `setuid_files` (a secure layout) the same again set-user-ID root,
/// by uid 1000, those files set-user-ID too, against `closure --secure`.
fn check_run_time(
    name: &str,
    r: &TestRoot,
    env: &[(&str, &str)],
    args: &[&str],
    opens: &RunTime,
    setuid_files: Option<&[String]>,
) {
    let mut argv: Vec<String> = vec![OPENER_PATH.to_string()];
    argv.extend(opens.args());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut env = env.to_vec();
    env.push(("LD_DEBUG", "libs"));
    let out = r.run_in_root(&env, &argv);
    let out = if out.status == 127 && !opens.needs.is_empty() {
        // A library it needs is found nowhere: the same without them.
        let mut remove = Vec::new();
        for n in &opens.needs {
            remove.extend(["--remove-needed", n.as_str()]);
        }
        r.patchelf(OPENER_PATH, &remove);
        println!(
            "{name}: {OPENER_PATH} does not start; without {:?}",
            opens.needs
        );
        r.run_in_root(&env, &argv)
    } else {
        out
    };
    compare_run_time(name, r, &out, args);
    // A secure layout runs it set-user-ID root by uid 1000 too (its
    // `LD_DEBUG` log written where `/etc/suid-debug` makes the loader
    // write one: glibc 2.31 and 2.36), against `closure --secure`.
    let Some(setuid_files) = setuid_files else {
        return;
    };
    add_runas(r);
    let files = || std::iter::once(OPENER_PATH).chain(setuid_files.iter().map(String::as_str));
    files().for_each(|f| setuid(r, f));
    r.write("/etc/suid-debug", "");
    let mut secure_argv = vec![RUNAS_PATH];
    secure_argv.extend(&argv);
    let out = r.run_in_root(&env, &secure_argv);
    std::fs::remove_file(r.host("/etc/suid-debug")).expect("remove /etc/suid-debug");
    let mut secure_args = vec!["--secure"];
    secure_args.extend_from_slice(args);
    // (`closure` sees the same set-user-ID files.)
    compare_run_time(&format!("{name} (secure)"), r, &out, &secure_args);
    files().for_each(|f| clear_setuid(r, f));
}

/// [`check_run_time`]'s comparison of one run of the opener (`out`) with
/// `closure` and `args`.
fn compare_run_time(name: &str, r: &TestRoot, out: &RunOutput, args: &[&str]) {
    if out.status != 0 {
        println!(
            "{name}: {OPENER_PATH} does not start (exit {}: {}); run-time loads not compared",
            out.status,
            out.stderr.lines().last().unwrap_or_default()
        );
        return;
    }
    let mut cargs = args.to_vec();
    cargs.extend(["--verbose", "--dlopen-priority", "suggested"]);
    let mut run = run_closure_with_run_time(r.path(), OPENER_PATH, &cargs);
    run.requested = vec![OPENER_PATH.to_string()];
    // The `dlopen`s `closure` has fail for an undefined symbol (one that
    // fails whatever the mode: `OBJECT: undefined symbol: NAME`).
    let closure_unbound: BTreeSet<&str> = (run.stderr.lines())
        .filter_map(|l| l.strip_prefix("    => the dlopen fails: "))
        .filter_map(|l| l.split_once("; the loader unloads").map(|(why, _)| why))
        .filter(|why| why.contains(": undefined symbol: "))
        .collect();
    // The `dlopen`s (requester, name asked) `closure` fails so: glibc
    // relocates the new objects from the last back, and an `RTLD_NOW`
    // program fails on the first unbound reference it meets — maybe a PLT
    // call of an object relocated before the one whose data reference
    // `closure` fails on. The same `dlopen` fails either way.
    let mut closure_failed: BTreeSet<(String, String)> = BTreeSet::new();
    let mut asked: Option<(String, String)> = None;
    for l in run.stderr.lines() {
        // (Its dependencies' searches come between.)
        let opening = (l.strip_prefix("  find library="))
            .and_then(|rest| rest.split_once("; opened at run time by "));
        if let Some((n, r)) = opening {
            asked = Some((r.split(" [").next().unwrap_or(r).to_string(), n.to_string()));
        } else if let Some(why) = l.strip_prefix("    => the dlopen fails: ") {
            if let (true, Some(a)) = (why.contains(": undefined symbol: "), asked.take()) {
                closure_failed.insert(a);
            }
        }
    }
    // Where the log stops being comparable: the first dlopen that failed
    // for an undefined symbol `closure` does not fail on (requester,
    // object, symbol). And the entries
    // no alternative loaded: (requester, first name), required or not.
    let mut cut = out.stderr.len();
    let mut unbound: Option<(String, String, String)> = None;
    let mut opened: Vec<String> = Vec::new();
    let mut missing = BTreeSet::new();
    let mut warned = BTreeSet::new();
    // The dlopens that failed once they had found their file.
    let mut failed = 0;
    // (Of them, for a symbol.)
    let mut symbol = 0;
    let mut at = 0;
    let requester = |caller: &str| match caller {
        "" => OPENER_PATH.to_string(),
        c => c.to_string(),
    };
    for line in out.stderr.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let Some(rest) = line.trim_end().strip_prefix("opener: ") else {
            continue;
        };
        let (what, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (caller, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        match what {
            "OK" => opened.push(rest.to_string()),
            "NONE" => {
                let (priority, first) = rest.split_once(' ').unwrap_or((rest, ""));
                let set = match priority {
                    "required" => &mut missing,
                    _ => &mut warned,
                };
                set.insert((requester(caller), first.to_string()));
            }
            _ => {
                // (`closure` binds only what fails in every mode when it
                // traces.)
                let same_dlopen = (rest.split_once('|')).is_some_and(|(name, _)| {
                    closure_failed.contains(&(requester(caller), name.into()))
                });
                if let Some((object, symbol)) = (rest.split_once('|'))
                    .map(|(_, why)| why)
                    .filter(|why| !closure_unbound.contains(why) && !same_dlopen)
                    .and_then(|why| why.split_once(": undefined symbol: "))
                {
                    unbound = Some((requester(caller), object.into(), symbol.into()));
                    cut = start;
                    break;
                }
                // Its own search failed (found nowhere, or stopped at a
                // file that is not ELF), or a `dlopen` that found its file.
                // (The loader names a name not found as it was asked, a
                // file it stopped at by its path: for a bare name, one of
                // its directories'.)
                let (asked, why) = rest.split_once('|').unwrap_or((rest, ""));
                let absent = ": cannot open shared object file: No such file or directory";
                let own = why.strip_suffix(absent) == Some(asked)
                    || [": file too short", ": invalid ELF header"]
                        .iter()
                        .filter_map(|end| why.strip_suffix(end))
                        .any(|o| match asked.contains('/') {
                            true => o == asked,
                            false => o.rsplit('/').next() == Some(asked),
                        });
                if !own {
                    failed += 1;
                    symbol += usize::from(why.contains(": undefined symbol: "));
                }
            }
        }
    }
    let clean = cut == out.stderr.len();
    let (mut ours, theirs) = compared_logs_in(&run.stderr, &out.stderr[..cut], r.path(), &r.cwd());
    if !clean {
        ours.truncate(theirs.len());
    }
    // (A set-user-ID program on glibc 2.41 or later writes no log.)
    let logged = out.stderr.lines().any(|l| l.contains(":\tfind library="));
    assert!(
        !logged || ours == theirs,
        "{name}: `closure --verbose` (left) searches otherwise than the running program's \
         LD_DEBUG=libs (right{})\n  left: {ours:?}\n right: {theirs:?}\n===== program =====\n{}\n\
         ===== closure =====\n{}",
        if clean {
            ""
        } else {
            ", up to a dlopen that failed for an undefined symbol"
        },
        out.stderr,
        run.stderr
    );
    let no_log = if logged { "" } else { " (no log)" };
    // `--check-symbols`: no symbol of what a `dlopen` maps is unbound when
    // every `dlopen` bound its own; else the one the first that did not
    // names is among those `closure` names.
    let mut sargs = args.to_vec();
    sargs.extend(["--dlopen-priority", "suggested", "--check-symbols"]);
    let sym = run_closure_with_run_time(r.path(), OPENER_PATH, &sargs);
    let json = sym
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("{}", sym.dump()));
    let ours_unbound: BTreeSet<(String, String, String)> = json["undefined_symbols"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            let s = |k: &str| u[k].as_str().map(String::from);
            Some((s("loaded_by")?, s("object")?, s("symbol")?))
        })
        .collect();
    match &unbound {
        None => assert!(
            ours_unbound.is_empty(),
            "{name}: closure --check-symbols finds symbols of run-time loads unbound, the \
             process bound them all: {ours_unbound:?}\n{}\n{}",
            out.stderr,
            sym.dump()
        ),
        Some(u) => assert!(
            ours_unbound.contains(u),
            "{name}: closure --check-symbols does not find {u:?}, which a dlopen of the process \
             fails on: {ours_unbound:?}\n{}\n{}",
            out.stderr,
            sym.dump()
        ),
    }
    if !clean {
        println!(
            "{name}: run-time searches agree up to a failed dlopen{no_log}; opened {opened:?}"
        );
        return;
    }
    let process: BTreeSet<String> = out
        .stdout
        .lines()
        .filter(|l| *l != OPENER_PATH)
        .map(str::to_string)
        .collect();
    assert_eq!(
        run.loaded(),
        process,
        "{name}: closure's objects (left) and the link map of the program after its dlopens \
         (right)\n{}\n{}",
        out.stderr,
        run.dump()
    );
    let closure_missing: BTreeSet<(String, String)> = run
        .missing
        .iter()
        .flat_map(|m| m.needed_by.iter().map(|by| (by.clone(), m.soname.clone())))
        .collect();
    let closure_warned: BTreeSet<(String, String)> = run
        .warnings()
        .filter_map(|w| {
            (w.split_once(" not found (declared in the .note.dlopen"))
                .or_else(|| w.split_once(" cannot be loaded (declared in the .note.dlopen"))
        })
        .filter_map(|(w, _)| w.split_once(": "))
        .map(|(by, n)| (by.to_string(), n.to_string()))
        .collect();
    assert_eq!(
        (closure_missing, closure_warned),
        (missing, warned),
        "{name}: closure's missing and warned run-time names (left), the process's (right)\n{}\n{}",
        out.stderr,
        run.dump()
    );
    let ours_failed = run.stderr.matches("\n    => the dlopen fails: ").count();
    assert_eq!(
        ours_failed, failed,
        "{name}: dlopens that failed once they found their file, closure's (left) and the \
         process's (right)\n{}\n{}",
        out.stderr, run.stderr
    );
    println!(
        "{name}: run-time loads agree{no_log} ({failed} failed after finding their file, \
         {symbol} for a symbol); opened {opened:?}"
    );
}

/// Run-time layouts per test by default; `CLOSURE_RUN_TIME_LAYOUTS` and
/// `CLOSURE_RUN_TIME_LAYOUTS_FROM` set a longer hunt, `CLOSURE_RUN_TIME_SEED`
/// replays one.
const RUN_TIME_PER_TEST: u64 = 16;

/// Run-time seeds past the default range that once found a bug, replayed
/// on every run: 195 (a `dlopen` whose own search stops at a file that is
/// not ELF, which the check first took for one that found its file), 505
/// (after a failed `dlopen`, a name whose search finds a preloaded object
/// by device and inode: `--verbose` said "already loaded" without the
/// search the loader makes) and 1354 (a path opened whose dependency of
/// the same file name is found nowhere, which the check took for the
/// path not found) and 1310 (a required entry found nowhere, then a later
/// entry of the same name loaded: `--verbose` replayed the later load as
/// the missing edge), 1472 (a `dlopen` that fails for a variable the opened
/// library reads and, before that in glibc's relocation order, for a
/// function its dependency calls: the `RTLD_NOW` program names the function,
/// `closure` the variable, which fails it in every mode; the check took
/// the two for different outcomes).
const RUN_TIME_REPLAYED: [u64; 5] = [195, 505, 1310, 1354, 1472];

fn run_time_layouts(name: &str, release: Option<&'static str>) {
    let Some(o) = Oracle::start(name) else {
        return;
    };
    let g = match release.map(glibc) {
        None => None,
        Some(Ok(g)) => Some(g),
        Some(Err(why)) => {
            println!("skipping {name}: {why}");
            return;
        }
    };
    let var = |v: &str| std::env::var(v).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(seed) = var("CLOSURE_RUN_TIME_SEED") {
        layout_of(&o, seed, g.as_ref(), true);
        return;
    }
    let from = var("CLOSURE_RUN_TIME_LAYOUTS_FROM").unwrap_or(0);
    let to = var("CLOSURE_RUN_TIME_LAYOUTS").unwrap_or(RUN_TIME_PER_TEST);
    for seed in from..to {
        layout_of(&o, seed, g.as_ref(), true);
    }
    for seed in RUN_TIME_REPLAYED
        .into_iter()
        .filter(|s| !(from..to).contains(s))
    {
        layout_of(&o, seed, g.as_ref(), true);
    }
}

/// The random layouts, their program opening libraries named in its
/// `.note.dlopen` once it runs, against the running program (this
/// machine's glibc).
#[test]
fn random_run_time_layouts_match_the_running_loader() {
    run_time_layouts("random_run_time_layouts_match_the_running_loader", None);
}

/// The same around glibc 2.31.
#[test]
fn random_run_time_layouts_match_the_running_glibc_2_31_loader() {
    run_time_layouts(
        "random_run_time_layouts_match_the_running_glibc_2_31_loader",
        Some("bullseye"),
    );
}

/// The same around the glibc of the Debian release `CLOSURE_GLIBC_RELEASE`
/// names (trixie: 2.41, forky: 2.43 when written); without it, nothing runs.
#[test]
fn random_run_time_layouts_match_the_running_glibc_of_a_named_release() {
    let name = "random_run_time_layouts_match_the_running_glibc_of_a_named_release";
    let Ok(release) = std::env::var("CLOSURE_GLIBC_RELEASE") else {
        println!("{name}: CLOSURE_GLIBC_RELEASE not set");
        return;
    };
    run_time_layouts(name, Some(Box::leak(release.into_boxed_str())));
}

fn run(part: u64) {
    let name = format!("random_layouts_match_the_loader_{part}");
    let Some(o) = Oracle::start(&name) else {
        return;
    };
    // `CLOSURE_LAYOUT_SEED=N` replays one layout (the first test runs it).
    if let Some(seed) = std::env::var("CLOSURE_LAYOUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        if part == 0 {
            layout(&o, seed, None);
        }
        return;
    }
    // Seeds part, part + 4, part + 8, …: the default ones are a prefix of
    // any longer run.
    // `CLOSURE_LAYOUTS_FROM=K` starts a longer hunt at the K-th seed of
    // each test, past seeds already hunted.
    let from = std::env::var("CLOSURE_LAYOUTS_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for k in from..per_test() {
        layout(&o, part + 4 * k, None);
    }
    for &seed in KEPT {
        if seed % 4 == part && seed >= 4 * per_test() {
            layout(&o, seed, None);
        }
    }
}

/// The same layouts (seeds `0..30`, or as `CLOSURE_LAYOUTS`,
/// `CLOSURE_LAYOUTS_FROM` and `CLOSURE_LAYOUT_SEED` say) around the glibc
/// of another Debian release, fetched by apt (skipped, with the reason,
/// when it cannot be).
fn run_release(name: &str, release: &'static str) {
    let Some(o) = Oracle::start(name) else {
        return;
    };
    let g = match glibc(release) {
        Ok(g) => g,
        Err(why) => {
            println!("skipping {name}: {why}");
            return;
        }
    };
    println!("{name}: glibc {} of {release}", g.version);
    if let Some(seed) = std::env::var("CLOSURE_LAYOUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        layout(&o, seed, Some(&g));
        return;
    }
    let from = std::env::var("CLOSURE_LAYOUTS_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for seed in from..per_test() {
        layout(&o, seed, Some(&g));
    }
    for &(kept_release, seed) in KEPT_RELEASE {
        if kept_release == release && seed >= per_test() {
            layout(&o, seed, Some(&g));
        }
    }
}

/// Seeds of [`run_release`] past the default range that once found a bug,
/// replayed on every run: trixie 1029 (glibc 2.41 goes on past a file
/// where a relative search directory should be; 2.36 ends the list).
const KEPT_RELEASE: &[(&str, u64)] = &[("trixie", 1029)];

#[test]
fn random_layouts_match_the_glibc_2_31_loader() {
    run_release("random_layouts_match_the_glibc_2_31_loader", "bullseye");
}

#[test]
fn random_layouts_match_the_glibc_2_41_loader() {
    run_release("random_layouts_match_the_glibc_2_41_loader", "trixie");
}

#[test]
fn random_layouts_match_the_loader_0() {
    run(0);
}

#[test]
fn random_layouts_match_the_loader_1() {
    run(1);
}

#[test]
fn random_layouts_match_the_loader_2() {
    run(2);
}

#[test]
fn random_layouts_match_the_loader_3() {
    run(3);
}

/// Debian testing (forky: glibc 2.43 when this test was written), the
/// newest loader a user is likely to build images from; its version is
/// printed. A later glibc that behaves otherwise fails here first.
#[test]
fn random_layouts_match_the_glibc_of_debian_testing() {
    run_release("random_layouts_match_the_glibc_of_debian_testing", "forky");
}

/// `CLOSURE_GLIBC_RELEASE=NAME` runs the same layouts around the glibc of
/// any Debian release apt can fetch (`experimental` had 2.44 when this was
/// written); without it, nothing runs.
#[test]
fn random_layouts_match_the_glibc_of_a_named_release() {
    let Ok(release) = std::env::var("CLOSURE_GLIBC_RELEASE") else {
        println!(
            "random_layouts_match_the_glibc_of_a_named_release: CLOSURE_GLIBC_RELEASE not set"
        );
        return;
    };
    let release: &'static str = Box::leak(release.into_boxed_str());
    run_release("random_layouts_match_the_glibc_of_a_named_release", release);
}

/// `dlopen`s that fail once their search has found the file, against the
/// running program (this machine's glibc, and 2.31, 2.41 and 2.43): the
/// loader unloads what each brought in, and the program goes on to the
/// entry's next alternative. Entries: a library whose dependency requires
/// a symbol version that library lacks (the loader checks versions once
/// all are mapped), then another that loads; a library whose dependency is
/// found nowhere (the loader stops at it), required, with no alternative;
/// a library linked `-z nodlopen`, suggested; and the first library again,
/// recommended. `closure` must end with the process's link map, say why
/// each failed in the loader's order, report the required one missing
/// (with the dependency in its notes) and warn of the others.
#[test]
fn failed_dlopens_are_undone_as_the_loader_undoes_them() {
    on_every_glibc(
        "failed_dlopens_are_undone_as_the_loader_undoes_them",
        failed_dlopens,
    );
}

/// `--check-symbols` checks what a `dlopen` maps in the scope the loader
/// relocates it in: the global scope (the program and what it loads at
/// start-up), then the opened object and its own dependencies; never an
/// object another `dlopen` (`RTLD_LOCAL`) brought in. The same for plugins
/// (`--include`), which their host program opens. Each of the opener's
/// `dlopen`s (`RTLD_NOW`) that fails here fails for one undefined symbol:
/// `closure` must name exactly those, each against its object, and none of
/// the `dlopen` that loads (whose references the program, a start-up
/// library, its own dependency and, from that dependency, the plugin
/// itself define).
#[test]
fn dlopened_objects_bind_in_the_scope_the_loader_gives_them() {
    on_every_glibc(
        "dlopened_objects_bind_in_the_scope_the_loader_gives_them",
        dlopen_scopes,
    );
}

fn dlopen_scopes(name: &str, r: &TestRoot) {
    r.lib("/opt/v/libcore.so.1", "libcore.so.1")
        .source("int core_fn(void) { return 1; }\n")
        .build();
    r.lib("/opt/v/libgdep.so.1", "libgdep.so.1")
        .source("int good_cb(void);\nint dep_fn(void) { return good_cb(); }\n")
        .build();
    r.lib("/opt/v/libgood.so.1", "libgood.so.1")
        .source(
            "int host_api(int); int core_fn(void); int dep_fn(void);\n\
             int good_cb(void) { return 3; }\n\
             int good_only(void) { return 4; }\n\
             int good(void) { return host_api(core_fn()) + dep_fn(); }\n",
        )
        .needs(&["/opt/v/libgdep.so.1"])
        .runpath("$ORIGIN")
        .build();
    r.lib("/opt/v/libnosym.so.1", "libnosym.so.1")
        .source("int nowhere_fn(void);\nint nosym(void) { return nowhere_fn(); }\n")
        .build();
    r.lib("/opt/v/liblocal.so.1", "liblocal.so.1")
        .source("int good_only(void);\nint local(void) { return good_only(); }\n")
        .build();
    r.lib("/opt/v/libddep.so.1", "libddep.so.1")
        .source("int deep_gone(void);\nint ddep(void) { return deep_gone(); }\n")
        .build();
    r.lib("/opt/v/libdeep.so.1", "libdeep.so.1")
        .source("int ddep(void);\nint deep(void) { return ddep(); }\n")
        .needs(&["/opt/v/libddep.so.1"])
        .runpath("$ORIGIN")
        .build();
    let libs = [
        "libgood.so.1",
        "libnosym.so.1",
        "liblocal.so.1",
        "libdeep.so.1",
    ];
    let opens = RunTime {
        entries: libs
            .iter()
            .map(|l| (vec![l.to_string()], "suggested"))
            .collect(),
        needs: Vec::new(),
    };
    let source = format!(
        "{}\nint host_api(int x) {{ return x + 1; }}\n",
        opens.source()
    );
    r.exe(OPENER_PATH)
        .source(&source)
        .needs(&["/opt/v/libcore.so.1"])
        .arg("-rdynamic")
        .runpath("/opt/v")
        .build();
    let (out, said) = run_opener(r, &opens);
    // The loader's answer: (object, symbol) of each `dlopen` that failed
    // for an undefined symbol; the premise: one loads, three fail so.
    let mut loader: BTreeSet<(String, String)> = BTreeSet::new();
    let mut loaded = Vec::new();
    for l in &said {
        if let Some(ok) = l.strip_prefix("OK  ") {
            loaded.push(ok.to_string());
        } else if let Some((_, why)) = l.strip_prefix("FAIL  ").and_then(|f| f.split_once('|')) {
            let (object, symbol) = why
                .split_once(": undefined symbol: ")
                .unwrap_or_else(|| panic!("{name}: not an undefined symbol: {l}"));
            loader.insert((object.to_string(), symbol.to_string()));
        }
    }
    assert!(
        loaded == ["libgood.so.1"] && loader.len() == 3,
        "{name}: {}",
        out.stderr
    );
    let ours = |run: &crate::support::oracle::ClosureRun| -> BTreeSet<(String, String)> {
        let json = run
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("{}", run.dump()));
        let undefined = json["undefined_symbols"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        undefined
            .iter()
            .map(|u| {
                assert_eq!(u["loaded_by"], OPENER_PATH, "{name}: {}", run.dump());
                let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
                (s("object"), s("symbol"))
            })
            .collect()
    };
    // Run-time loads (`.note.dlopen`).
    let run = run_closure_with_run_time(
        r.path(),
        OPENER_PATH,
        &["--dlopen-priority", "suggested", "--check-symbols"],
    );
    assert!(run.status == 1, "{name}: {}", run.dump());
    assert_eq!(ours(&run), loader, "{name}: {}", run.dump());
    assert!(
        run.stderr.contains(
            "error: undefined symbol: deep_gone (needed by /opt/v/libddep.so.1, loaded at run \
             time by /app/bin/opener: that dlopen fails)"
        ),
        "{name}: {}",
        run.stderr
    );
    // The same libraries as plugins the program opens.
    let mut args = vec!["--dlopen-priority", "none", "--check-symbols"];
    let paths: Vec<String> = libs.iter().map(|l| format!("/opt/v/{l}")).collect();
    for p in &paths {
        args.extend(["--include", p.as_str()]);
    }
    let run = run_closure_with_run_time(r.path(), OPENER_PATH, &args);
    assert!(run.status == 1, "{name}: {}", run.dump());
    // Except that a plugin's opener may have opened libgood `RTLD_GLOBAL`,
    // which `closure` cannot know: liblocal's reference is a warning that
    // names libgood (`plugins_bound_only_by_an_rtld_global_plugin_…`).
    let (global_only, errors): (BTreeSet<_>, BTreeSet<_>) = loader
        .into_iter()
        .partition(|(o, _)| o == "/opt/v/liblocal.so.1");
    assert_eq!(ours(&run), errors, "{name} (plugins): {}", run.dump());
    let json = run
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("{}", run.dump()));
    let warned: BTreeSet<(String, String)> = (json["global_only_symbols"].as_array())
        .into_iter()
        .flatten()
        .map(|u| {
            assert_eq!(u["defined_by"], serde_json::json!(["/opt/v/libgood.so.1"]));
            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (s("object"), s("symbol"))
        })
        .collect();
    assert_eq!(warned, global_only, "{name} (plugins): {}", run.dump());
}

/// A plugin's reference that nothing in the scope of the `dlopen` mapping
/// it defines, but another plugin (or that plugin's dependency) does: the
/// loader binds it only when the program opened that other plugin with
/// `RTLD_GLOBAL` first. A program that opens each path given with the mode
/// given shows both answers; `closure --check-symbols`, which cannot know
/// the mode, must name the reference with the objects that would bind it,
/// as a warning (exit 0), and still name as errors the references nothing
/// defines.
#[test]
fn plugins_bound_only_by_an_rtld_global_plugin_are_named_with_it() {
    on_every_glibc(
        "plugins_bound_only_by_an_rtld_global_plugin_are_named_with_it",
        rtld_global_plugins,
    );
}

/// Opens each argument `G:PATH` (`RTLD_NOW | RTLD_GLOBAL`) or `L:PATH`
/// (`RTLD_NOW`) in turn and says how it went.
const MODE_OPENER: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int mode = RTLD_NOW | (argv[i][0] == 'G' ? RTLD_GLOBAL : RTLD_LOCAL);
        if (dlopen(argv[i] + 2, mode))
            fprintf(stderr, "opener: OK %s\n", argv[i]);
        else
            fprintf(stderr, "opener: FAIL %s|%s\n", argv[i], dlerror());
    }
    return 0;
}
"#;

fn rtld_global_plugins(name: &str, r: &TestRoot) {
    r.lib("/opt/p/libdefdep.so.1", "libdefdep.so.1")
        .source("int dep_shared = 2;\n")
        .build();
    r.lib("/opt/p/libdef.so.1", "libdef.so.1")
        .source("int shared_fn(void) { return 1; }\n")
        .needs(&["/opt/p/libdefdep.so.1"])
        .runpath("$ORIGIN")
        .build();
    r.lib("/opt/p/libuse.so.1", "libuse.so.1")
        .source("int shared_fn(void);\nint use(void) { return shared_fn(); }\n")
        .build();
    // (A variable: its reference fails a `dlopen` in every mode.)
    r.lib("/opt/p/libusedep.so.1", "libusedep.so.1")
        .source("extern int dep_shared;\nint usedep(void) { return dep_shared; }\n")
        .build();
    r.lib("/opt/p/libnowhere.so.1", "libnowhere.so.1")
        .source("int gone_fn(void);\nint nowhere(void) { return gone_fn(); }\n")
        .build();
    r.exe(OPENER_PATH).source(MODE_OPENER).build();
    let users = ["/opt/p/libuse.so.1", "/opt/p/libusedep.so.1"];
    // The loader's answers: each user after the definer opened locally,
    // then globally; the symbol its failure names.
    let open = |mode: char, user: &str| -> Option<String> {
        let def = format!("{mode}:/opt/p/libdef.so.1");
        let user_arg = format!("L:{user}");
        let out = r.run_in_root(&[], &[OPENER_PATH, &def, &user_arg]);
        let said: Vec<&str> = (out.stderr.lines())
            .filter_map(|l| l.strip_prefix("opener: "))
            .collect();
        assert!(
            said.len() == 2 && said[0].starts_with("OK "),
            "{name}: {}",
            out.stderr
        );
        let (_, why) = said[1].split_once('|')?;
        let symbol = why
            .split_once(": undefined symbol: ")
            .unwrap_or_else(|| panic!("{name}: {why}"))
            .1;
        Some(symbol.to_string())
    };
    let mut local: BTreeSet<(String, String)> = BTreeSet::new();
    for user in users {
        let failed = open('L', user);
        let symbol = failed.unwrap_or_else(|| panic!("{name}: {user} loads beside a local libdef"));
        local.insert((user.to_string(), symbol));
        assert_eq!(
            open('G', user),
            None,
            "{name}: {user} fails beside a global libdef"
        );
    }
    let out = r.run_in_root(
        &[],
        &[
            OPENER_PATH,
            "G:/opt/p/libdef.so.1",
            "L:/opt/p/libnowhere.so.1",
        ],
    );
    assert!(
        out.stderr.contains("undefined symbol: gone_fn"),
        "{name}: {}",
        out.stderr
    );
    let plugins = |with_nowhere: bool| {
        let mut args = vec!["--dlopen-priority", "none", "--check-symbols"];
        let mut all = vec!["/opt/p/libdef.so.1"];
        all.extend(users);
        if with_nowhere {
            all.push("/opt/p/libnowhere.so.1");
        }
        for p in all {
            args.extend(["--include", p]);
        }
        run_closure_with_run_time(r.path(), OPENER_PATH, &args)
    };
    let pairs = |run: &crate::support::oracle::ClosureRun, key: &str| {
        let json = run
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("{}", run.dump()));
        (json[key].as_array().cloned().unwrap_or_default().iter())
            .map(|u| {
                assert_eq!(u["loaded_by"], OPENER_PATH, "{name}: {}", run.dump());
                let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
                let by: Vec<String> = (u["defined_by"].as_array().cloned().unwrap_or_default())
                    .iter()
                    .map(|d| d.as_str().unwrap_or_default().to_string())
                    .collect();
                (s("object"), s("symbol"), by)
            })
            .collect::<BTreeSet<_>>()
    };
    // The user of the definer's dependency: that dependency binds it.
    let definer = |user: &str| match user {
        "/opt/p/libuse.so.1" => "/opt/p/libdef.so.1",
        _ => "/opt/p/libdefdep.so.1",
    };
    let expected: BTreeSet<(String, String, Vec<String>)> = (local.iter())
        .map(|(o, s)| (o.clone(), s.clone(), vec![definer(o).to_string()]))
        .collect();
    let run = plugins(false);
    assert!(run.status == 0, "{name}: {}", run.dump());
    // Without `--check-symbols`, the variable's `dlopen` is not said to
    // fail (it may have been bound by an `RTLD_GLOBAL` libdef).
    let mut quiet = vec!["--dlopen-priority", "none"];
    for p in ["/opt/p/libdef.so.1", users[0], users[1]] {
        quiet.extend(["--include", p]);
    }
    let plain = run_closure_with_run_time(r.path(), OPENER_PATH, &quiet);
    assert!(
        plain.status == 0 && !plain.warnings().any(|w| w.contains("dlopen fails")),
        "{name}: {}",
        plain.dump()
    );
    assert_eq!(
        pairs(&run, "global_only_symbols"),
        expected,
        "{name}: {}",
        run.dump()
    );
    assert!(
        pairs(&run, "undefined_symbols").is_empty(),
        "{name}: {}",
        run.dump()
    );
    assert!(
        run.stderr.contains(
            "warning: /opt/p/libuse.so.1: symbol shared_fn binds only if /app/bin/opener \
             opened /opt/p/libdef.so.1 with RTLD_GLOBAL"
        ),
        "{name}: {}",
        run.stderr
    );
    // A reference nothing defines stays an error beside them.
    let run = plugins(true);
    assert!(run.status == 1, "{name}: {}", run.dump());
    assert_eq!(
        pairs(&run, "global_only_symbols"),
        expected,
        "{name}: {}",
        run.dump()
    );
    let nowhere = (
        "/opt/p/libnowhere.so.1".to_string(),
        "gone_fn".to_string(),
        Vec::new(),
    );
    assert_eq!(
        pairs(&run, "undefined_symbols"),
        BTreeSet::from([nowhere]),
        "{name}: {}",
        run.dump()
    );
}

/// Runs the opener built for `opens` with its entries, in the root: its
/// output and what it said of each `dlopen` (`OK …`, `FAIL …|ERROR`,
/// `NONE …`).
fn run_opener(r: &TestRoot, opens: &RunTime) -> (RunOutput, Vec<String>) {
    let mut argv: Vec<String> = vec![OPENER_PATH.to_string()];
    argv.extend(opens.args());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = r.run_in_root(&[], &argv);
    let said = (out.stderr.lines())
        .filter_map(|l| l.strip_prefix("opener: "))
        .map(String::from)
        .collect();
    (out, said)
}

/// Runs `check` around this machine's glibc (2.36) and Debian bullseye's
/// (2.31), trixie's (2.41) and forky's (2.43), when the oracle can run.
fn on_every_glibc(name: &str, check: fn(&str, &TestRoot)) {
    let Some(o) = Oracle::start(name) else {
        return;
    };
    crate::support::oracle::on_host_and_releases(name, &o, &["bullseye", "trixie", "forky"], check);
}

/// A `dlopen` that fails for an undefined symbol whatever its mode — a
/// data reference (relocated at once), a function of a library linked
/// `-z now` — is undone by the trace as by the loader, and the entry's
/// next alternative is taken; `--check-symbols` then has nothing of it.
/// A required entry whose first alternative so fails loads its second;
/// an optional one with no other is warned about in the loader's words.
#[test]
fn dlopens_that_fail_for_a_symbol_in_every_mode_are_undone() {
    on_every_glibc(
        "dlopens_that_fail_for_a_symbol_in_every_mode_are_undone",
        every_mode_failures,
    );
}

fn every_mode_failures(name: &str, r: &TestRoot) {
    r.lib("/opt/v/libdata.so.1", "libdata.so.1")
        .source("extern int gone_data;\nint data(void) { return gone_data; }\n")
        .build();
    r.lib("/opt/v/libalt.so.1", "libalt.so.1").build();
    r.lib("/opt/v/libnow.so.1", "libnow.so.1")
        .source("int now_gone(void);\nint now(void) { return now_gone(); }\n")
        .arg("-Wl,-z,now")
        .build();
    // A function it calls through its PLT is bound lazily: it loads.
    r.lib("/opt/v/liblazy.so.1", "liblazy.so.1")
        .source("int lazy_gone(void);\nint lazy(void) { return lazy_gone(); }\n")
        .build();
    let opens = RunTime {
        entries: vec![
            (
                vec!["libdata.so.1".into(), "libalt.so.1".into()],
                "required",
            ),
            (vec!["libnow.so.1".into()], "suggested"),
        ],
        needs: Vec::new(),
    };
    r.exe(OPENER_PATH)
        .source(&opens.source())
        .runpath("/opt/v")
        .build();
    let (out, said) = run_opener(r, &opens);
    let said: Vec<&str> = said.iter().map(String::as_str).collect();
    assert_eq!(
        said,
        [
            "FAIL  libdata.so.1|/opt/v/libdata.so.1: undefined symbol: gone_data",
            "OK  libalt.so.1",
            "FAIL  libnow.so.1|/opt/v/libnow.so.1: undefined symbol: now_gone",
            "NONE  suggested libnow.so.1",
        ],
        "{name}: {}",
        out.stderr
    );
    check_run_time(name, r, &[], &[], &opens, None);
    let run = run_closure_with_run_time(
        r.path(),
        OPENER_PATH,
        &["--dlopen-priority", "suggested", "--check-symbols"],
    );
    let loaded = run.loaded();
    let warned: Vec<String> = run.warnings().map(String::from).collect();
    let json = run
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("{}", run.dump()));
    assert!(
        run.status == 0
            && loaded.contains("/opt/v/libalt.so.1")
            && !loaded.contains("/opt/v/libdata.so.1")
            && !loaded.contains("/opt/v/libnow.so.1")
            && json["undefined_symbols"] == serde_json::json!([])
            && warned.iter().any(|w| w
                == "/opt/v/libnow.so.1 (loaded at run time by /app/bin/opener): undefined \
                    symbol: now_gone: that dlopen fails")
            && warned.iter().any(|w| w
                == "/opt/v/libdata.so.1 (loaded at run time by /app/bin/opener): undefined \
                    symbol: gone_data: that dlopen fails"),
        "{name}: {}",
        run.dump()
    );
    // A PLT reference binds lazily: that `dlopen` is kept (and
    // `--check-symbols` names the symbol, as `RTLD_NOW` fails on it).
    let lazy = RunTime {
        entries: vec![(vec!["liblazy.so.1".into()], "required")],
        needs: Vec::new(),
    };
    r.exe(OPENER_PATH)
        .source(&lazy.source())
        .runpath("/opt/v")
        .build();
    let run = run_closure_with_run_time(r.path(), OPENER_PATH, &["--check-symbols"]);
    let json = run
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("{}", run.dump()));
    assert!(
        run.status == 1
            && run.loaded().contains("/opt/v/liblazy.so.1")
            && json["undefined_symbols"][0]["symbol"] == "lazy_gone",
        "{name}: {}",
        run.dump()
    );
    // The same libraries as plugins of a program, and one whose dependency
    // reads the variable: the program's `dlopen` of each fails the same
    // way (but the lazy one's), which the trace says as a warning.
    r.lib("/opt/v/libwrap.so.1", "libwrap.so.1")
        .needs(&["/opt/v/libdata.so.1"])
        .runpath("$ORIGIN")
        .build();
    assert_eq!(
        first_said(r, "libwrap.so.1").as_deref(),
        Some("FAIL  libwrap.so.1|/opt/v/libdata.so.1: undefined symbol: gone_data"),
        "{name}"
    );
    // One that reads a variable nothing defines but needs a library that is
    // not there: its `dlopen` fails mapping it, before any relocation.
    r.lib("/opt/v/libbroken.so.1", "libbroken.so.1")
        .source("extern int gone_data;\nint broken(void) { return gone_data; }\n")
        .needs_names(&["libabsent.so.1"])
        .build();
    assert_eq!(
        first_said(r, "libbroken.so.1").as_deref(),
        Some(
            "FAIL  libbroken.so.1|libabsent.so.1: cannot open shared object file: No such file \
             or directory"
        ),
        "{name}"
    );
    let mut args = vec!["--dlopen-priority", "none"];
    for p in ["data", "now", "lazy", "wrap", "broken"] {
        args.push("--include");
        args.push(match p {
            "data" => "/opt/v/libdata.so.1",
            "now" => "/opt/v/libnow.so.1",
            "lazy" => "/opt/v/liblazy.so.1",
            "broken" => "/opt/v/libbroken.so.1",
            _ => "/opt/v/libwrap.so.1",
        });
    }
    let run = run_closure_with_run_time(r.path(), OPENER_PATH, &args);
    // (The missing library is the answer for that one: a problem.)
    assert!(
        run.status == 1 && run.missing_names().contains("libabsent.so.1"),
        "{name}: {}",
        run.dump()
    );
    let warned: BTreeSet<&str> = run
        .warnings()
        .filter(|w| w.contains("dlopen fails"))
        .collect();
    let expected = BTreeSet::from([
        "/opt/v/libdata.so.1 (a plugin): undefined symbol: gone_data: its dlopen fails",
        "/opt/v/libnow.so.1 (a plugin): undefined symbol: now_gone: its dlopen fails",
        "/opt/v/libdata.so.1 (loaded with the plugin /opt/v/libwrap.so.1): undefined symbol: \
         gone_data: that dlopen fails",
    ]);
    assert_eq!(warned, expected, "{name}: {}", run.dump());
}

/// What the opener says first when its one (required) entry is `lib`
/// (RUNPATH `/opt/v`).
fn first_said(r: &TestRoot, lib: &str) -> Option<String> {
    let opens = RunTime {
        entries: vec![(vec![lib.into()], "required")],
        needs: Vec::new(),
    };
    r.exe(OPENER_PATH)
        .source(&opens.source())
        .runpath("/opt/v")
        .build();
    run_opener(r, &opens).1.into_iter().next()
}

fn failed_dlopens(name: &str, r: &TestRoot) {
    // libver.so.1 defines VER_2 when libneeds.so.1 is linked, only VER_1
    // once it is replaced.
    let script = |r: &TestRoot, versions: &str| {
        r.write("/build/ver.map", versions);
        r.lib("/opt/v/libver.so.1", "libver.so.1")
            .source("int vfun(void) { return 2; }\n")
            .arg(&format!(
                "-Wl,--version-script={}",
                r.host("/build/ver.map").display()
            ))
            .build();
    };
    script(r, "VER_1 { local: *; };\nVER_2 { global: vfun; } VER_1;\n");
    r.lib("/opt/v/libneeds.so.1", "libneeds.so.1")
        .source("int vfun(void);\nint needs(void) { return vfun(); }\n")
        .needs(&["/opt/v/libver.so.1"])
        .runpath("$ORIGIN")
        .build();
    script(r, "VER_1 { global: vfun; local: *; };\n");
    r.lib("/opt/v/libalt.so.1", "libalt.so.1").build();
    r.lib("/opt/v/libmid.so.1", "libmid.so.1").build();
    r.lib("/opt/v/libbroken.so.1", "libbroken.so.1")
        .needs(&["/opt/v/libmid.so.1"])
        .needs_names(&["libgone.so.1"])
        .runpath("$ORIGIN")
        .build();
    r.lib("/opt/v/libnod.so.1", "libnod.so.1")
        .arg("-Wl,-z,nodlopen")
        .build();
    let opens = RunTime {
        entries: vec![
            (
                vec!["libneeds.so.1".into(), "libalt.so.1".into()],
                "required",
            ),
            (vec!["libbroken.so.1".into()], "required"),
            (vec!["libnod.so.1".into()], "suggested"),
            (vec!["libneeds.so.1".into()], "recommended"),
        ],
        needs: Vec::new(),
    };
    r.exe(OPENER_PATH)
        .source(&opens.source())
        .runpath("/opt/v")
        .build();
    let (out, said) = run_opener(r, &opens);
    let said: Vec<&str> = said.iter().map(String::as_str).collect();
    // The premise: four dlopens fail once they found their file, one loads.
    assert!(
        said.iter().filter(|l| l.starts_with("FAIL ")).count() == 4
            && said.contains(&"OK  libalt.so.1")
            && out.stderr.contains("version `VER_2' not found")
            && out
                .stderr
                .contains("libgone.so.1: cannot open shared object file")
            && out.stderr.contains("shared object cannot be dlopen()ed"),
        "{name}: {}",
        out.stderr
    );
    check_run_time(name, r, &[], &[], &opens, None);
    // Why, in `closure`'s words, in the loader's order.
    let run = run_closure_with_run_time(
        r.path(),
        OPENER_PATH,
        &["--dlopen-priority", "suggested", "--verbose"],
    );
    let fails: Vec<&str> = (run.stderr.lines())
        .filter_map(|l| l.strip_prefix("    => the dlopen fails: "))
        .collect();
    let ends = [
        "/opt/v/libneeds.so.1: version `VER_2' not found (required by /opt/v/libneeds.so.1)",
        "/opt/v/libbroken.so.1: libgone.so.1 not found",
        "/opt/v/libnod.so.1: shared object cannot be dlopen()ed",
        "/opt/v/libneeds.so.1: version `VER_2' not found (required by /opt/v/libneeds.so.1)",
    ];
    assert!(
        fails.len() == ends.len() && fails.iter().zip(ends).all(|(f, e)| f.starts_with(e)),
        "{name}: {fails:#?}\n{}",
        run.stderr
    );
    let missing = &run.missing;
    assert!(
        run.status == 1
            && missing.len() == 1
            && missing[0].soname == "libbroken.so.1"
            && run
                .stdout
                .contains("libbroken.so.1: /opt/v/libbroken.so.1: libgone.so.1 not found"),
        "{name}: {}",
        run.dump()
    );
    // Said as found and not loaded, with or without `--verbose` (whose
    // search records are whole), and no hint that its directory is not
    // searched.
    let quiet =
        run_closure_with_run_time(r.path(), OPENER_PATH, &["--dlopen-priority", "suggested"]);
    for out in [&run.stderr, &quiet.stderr] {
        assert!(
            out.contains(
                "error: libbroken.so.1 (needed by /app/bin/opener): found, but cannot be loaded\n  \
                 searched, in order:\n    /opt/v  [DT_RUNPATH of /app/bin/opener]: \
                 /opt/v/libbroken.so.1 used\n"
            ) && !out.contains("libbroken.so.1 exists at"),
            "{name}: {out}"
        );
    }
    let loaded = run.loaded();
    assert!(
        loaded.contains("/opt/v/libalt.so.1")
            && ["libneeds", "libver", "libbroken", "libmid", "libnod"]
                .iter()
                .all(|l| !loaded.contains(&format!("/opt/v/{l}.so.1"))),
        "{name}: {}",
        run.dump()
    );
}
