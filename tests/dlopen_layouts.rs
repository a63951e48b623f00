//! Random `dlopen` layouts, against the loader that runs them: musl's and
//! glibc's.
//!
//! The libraries of the musl symbol layouts (`musl_symbols.rs`: four, each
//! symbol of a later build kept in either version or the base one, hidden,
//! gone, an IFUNC or an absolute 0), a third of them linked `-z now` and
//! half their uses addresses held in data (which a lazy `dlopen` cannot
//! defer), and an opener that links one of them or none and opens one to
//! three by name (now and then a name no file has) with `RTLD_LAZY`, in
//! the order their strings lie in its read-only data (the order
//! `closure --dlopen-strings` takes them in). After the `dlopen`s its link
//! map must be `closure --dlopen-strings`'s objects, and each failed
//! `dlopen`'s error (musl's `Error relocating OBJECT: SYMBOL`, glibc's
//! `OBJECT: undefined symbol: SYMBOL` or ``version `V' not found``) a
//! `that dlopen fails` warning of `closure`'s; and each library it opens,
//! opened alone, must fail on what `closure` warns of for it as an
//! `--include`d plugin (or on a library it needs that is not there, of
//! which `closure` makes a problem and warns nothing else).
//!
//! On this machine's musl (1.2.3) and glibc (2.36), and Debian 13's and
//! testing's (musl 1.2.5, 1.2.6; glibc 2.41, 2.43).
//!
//! Needs musl-gcc (for musl's) and root to run the loaders in the roots
//! (the tests print `skipping <name>: needs root` otherwise).

use std::collections::BTreeSet;
use std::path::Path;

use crate::musl_symbols::{
    install_later, lib_path, libraries, newer_musl, program_args, same_answer, seeds, uses_of,
    Pairs, LIBS,
};
use crate::runtime::{can_run, musl_ready, paths, warnings, Sys, HOST_MUSL};
use crate::support::chroot::run_in_root;
use crate::support::rng::Rng;

/// The libc a layout runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Libc {
    Musl,
    Glibc,
}

impl Libc {
    fn cc(self) -> &'static str {
        match self {
            Libc::Musl => "musl-gcc",
            Libc::Glibc => "gcc",
        }
    }

    /// A `dlopen` error as (object, reason) in `closure`'s words, `None` for
    /// a file not found; panics on any other.
    fn failure(self, name: &str, error: &str) -> Option<(String, String)> {
        let pair = |o: &str, why: String| Some((o.to_string(), why));
        match self {
            Libc::Musl => {
                if error.starts_with("Error loading shared library ") {
                    return None;
                }
                let (object, symbol) = (error.strip_prefix("Error relocating "))
                    .and_then(|w| w.strip_suffix(": symbol not found"))
                    .and_then(|w| w.rsplit_once(": "))
                    .unwrap_or_else(|| panic!("{name}: musl's error: {error}"));
                pair(object, format!("undefined symbol: {symbol}"))
            }
            Libc::Glibc => {
                if error.ends_with(": cannot open shared object file: No such file or directory") {
                    return None;
                }
                if let Some((object, why)) = error.split_once(": undefined symbol: ") {
                    return pair(object, format!("undefined symbol: {why}"));
                }
                // (`LIBRARY: version `V' not found (required by OBJECT)`:
                // `closure` names the object that requires it.)
                let (_, why) = error
                    .split_once(": version `")
                    .unwrap_or_else(|| panic!("{name}: glibc's error: {error}"));
                let object = (why.rsplit_once("(required by "))
                    .and_then(|(_, o)| o.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{name}: glibc's error: {error}"));
                pair(object, format!("version `{why}"))
            }
        }
    }
}

/// The opener's C: opens each of `names` with `RTLD_LAZY` in the order
/// their strings lie in memory (the order `closure --dlopen-strings` takes
/// them in, its read-only data's), or its arguments instead if it has any,
/// printing `OK NAME` or `FAIL NAME|ERROR`, then its link map's paths;
/// `body` is what it computes first with its uses of a library (the exit
/// status stays 0).
fn rodata_opener_c(names: &[String], decls: &str, body: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <link.h>\n#include <stdio.h>\n\
         #include <stdlib.h>\n{decls}\
         static const char *names[] = {{ {} }};\n\
         static int by_address(const void *a, const void *b) {{\n\
           const char *x = *(const char *const *)a, *y = *(const char *const *)b;\n\
           return (x > y) - (x < y); }}\n\
         static int each(struct dl_phdr_info *i, size_t n, void *d) {{ (void)n; (void)d;\n\
           if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }}\n\
         int main(int argc, char **argv) {{ volatile int used = 0{body}; (void)used;\n\
           size_t n = sizeof names / sizeof *names;\n\
           const char **open = names;\n\
           qsort(names, n, sizeof *names, by_address);\n\
           if (argc > 1) {{ open = (const char **)argv + 1; n = (size_t)argc - 1; }}\n\
           for (size_t k = 0; k < n; k++) {{\n\
             if (dlopen(open[k], RTLD_LAZY)) printf(\"OK %s\\n\", open[k]);\n\
             else printf(\"FAIL %s|%s\\n\", open[k], dlerror()); }}\n\
           dl_iterate_phdr(each, 0); return 0; }}\n",
        quoted.join(", ")
    )
}

/// What a `dlopen` layout met.
#[derive(Debug, Default)]
struct Opened {
    /// Whether the opener could start (the rest is empty if not).
    starts: bool,
    /// `dlopen`s that loaded.
    ok: usize,
    /// The loader's failures: (object, reason in `closure`'s words).
    failed: Pairs,
    /// `dlopen`s that failed for a file not found.
    not_found: usize,
    /// Libraries whose `dlopen` alone fails for a symbol or version (as
    /// plugins).
    plugins_failing: usize,
}

/// `closure`'s warnings of `dlopen`s failing for a symbol or a version as
/// (object, reason): those of run-time loads (`that dlopen fails`, `loaded
/// at run time by`), or with `plugins` those of plugins and what they
/// bring in. (A library not found is counted, not compared: glibc's error
/// does not say who needs it.)
fn warned_failures(warned: &str, plugins: bool) -> Pairs {
    (warned.lines())
        .filter_map(|l| {
            let (object, rest) = l.split_once(" (")?;
            let (by, why) = rest.split_once("): ")?;
            let why = (why.strip_suffix(": its dlopen fails"))
                .or_else(|| why.strip_suffix(": that dlopen fails"))?;
            let plugin = by == "a plugin" || by.starts_with("loaded with the plugin ");
            let kind = why.starts_with("undefined symbol: ") || why.starts_with("version `");
            (plugin == plugins && kind).then(|| (object.to_string(), why.to_string()))
        })
        .collect()
}

/// Builds the `dlopen` layout of `seed` in `s` for `libc` (see the module
/// doc) and compares.
fn dlopen_layout(s: &Sys, libc: Libc, seed: u64, label: &str) -> Opened {
    let name = format!("dlopen layout {seed}{label}");
    let mut rng = Rng::new(seed ^ 0x646c_6f70);
    println!("{name}:");
    let cc = libc.cc();
    let libs = libraries(&mut rng, s, cc, 35);
    let linked = rng.chance(50).then(|| rng.below(LIBS));
    let mut uses = Vec::new();
    if let Some(i) = linked {
        uses_of(&mut rng, &libs.full[i], &mut uses, false);
    }
    // (glibc binds a call when it is made: a program calling what its
    // library lost would start and then die.)
    if libc == Libc::Glibc {
        uses.clear();
    }
    let mut opens: Vec<String> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let lib = format!("libms{}.so.1", rng.below(LIBS));
        if !opens.contains(&lib) {
            opens.push(lib);
        }
    }
    if rng.chance(15) {
        opens.insert(rng.below(opens.len() + 1), "libnone.so.1".into());
    }
    let (mut decls, mut body) = (String::new(), String::new());
    for (k, u) in uses.iter().enumerate() {
        u.declare(&mut decls, &mut body, &format!("prog_p{k}"));
    }
    let mut args: Vec<String> = linked.iter().flat_map(|&i| s.link(&lib_path(i))).collect();
    args.extend(program_args(s));
    println!("  /app/bin/opener: links {linked:?}, uses {uses:?}, opens {opens:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let src = rodata_opener_c(&opens, &decls, &body);
    s.cc(cc, "/app/bin/opener", &[("c", &src)], &args);
    install_later(&mut rng, s, cc, &libs);

    let mut met = Opened::default();
    let out = match libc {
        // musl's start-up agrees with `--check-symbols`, as in the symbol
        // layouts.
        Libc::Musl => {
            met.starts = same_answer(s, "/app/bin/opener", &name).starts;
            if !met.starts {
                return met;
            }
            run_opener(s, libc, &name, &[], &mut met)
        }
        // glibc's start-up relocations may fail too (a variable its library
        // lost): `--check-symbols` must say so.
        Libc::Glibc => {
            let (status, out, err) = run_in_root(s.path(), &["/app/bin/opener"], &[]);
            if !status.success() {
                let (code, _, cerr) = s.json(&["--root", "/app/bin/opener", "--check-symbols"]);
                assert_eq!(
                    code, 1,
                    "{name}: glibc cannot start the opener, closure --check-symbols sees no \
                     problem\n{out}{err}\n{cerr}"
                );
                return met;
            }
            met.starts = true;
            tally_opener(libc, &name, &out, &mut met);
            out
        }
    };
    // (glibc names the program "" in its link map.)
    let theirs: BTreeSet<String> = (out.lines())
        .filter(|l| l.starts_with('/') && *l != "/app/bin/opener")
        .map(String::from)
        .collect();
    let (code, v, err) = s.json(&["--root", "/app/bin/opener", "--dlopen-strings"]);
    assert_eq!(code, 0, "{name}: {err}");
    let mut ours = paths(&v);
    ours.remove("/app/bin/opener");
    let warned = warnings(&v);
    assert_eq!(
        ours, theirs,
        "{name}: closure's objects (left) and the loader's link map (right)\nthe opener:\n{out}\n\
         closure's warnings:\n{warned}"
    );
    assert_eq!(
        warned_failures(&warned, false),
        met.failed,
        "{name}: closure's warnings (left), the loader's failures (right)\nthe opener:\n{out}\n\
         closure's warnings:\n{warned}"
    );

    // Each library opened, alone, as a plugin of the opener: `closure`
    // warns of exactly what the loader's `dlopen` of it alone fails on.
    for lib in opens.iter().map(|o| format!("/app/lib/{o}")) {
        if !s.path().join(&lib[1..]).exists() {
            continue;
        }
        let mut alone = Opened::default();
        let out = run_opener(s, libc, &name, &[&lib], &mut alone);
        let (code, v, err) = s.json(&["--root", "/app/bin/opener", "--include", &lib]);
        // (A library it needs that is not there is a problem: exit 1.)
        let want = i32::from(alone.not_found > 0);
        assert_eq!(
            code, want,
            "{name}: {lib} as a plugin: {err}\nthe opener:\n{out}"
        );
        let warned = warnings(&v);
        assert_eq!(
            warned_failures(&warned, true),
            alone.failed,
            "{name}: {lib} as a plugin: closure's warnings (left), the loader's failure (right)\n\
             the opener:\n{out}\nclosure's warnings:\n{warned}"
        );
        met.plugins_failing += usize::from(!alone.failed.is_empty());
    }
    met
}

/// Runs the opener in `s` (opening `args` if any), adds what its `dlopen`s
/// met to `met`, and returns its output.
fn run_opener(s: &Sys, libc: Libc, name: &str, args: &[&str], met: &mut Opened) -> String {
    let mut argv = vec!["/app/bin/opener"];
    argv.extend_from_slice(args);
    let (status, out, err) = run_in_root(s.path(), &argv, &[]);
    assert!(status.success(), "{name}: the opener {args:?}: {out}{err}");
    tally_opener(libc, name, &out, met);
    out
}

/// Adds what the opener's output `out` says of its `dlopen`s to `met`.
fn tally_opener(libc: Libc, name: &str, out: &str, met: &mut Opened) {
    for l in out.lines() {
        if l.starts_with("OK ") {
            met.ok += 1;
        }
        let Some((_, error)) = l.strip_prefix("FAIL ").and_then(|l| l.split_once('|')) else {
            continue;
        };
        match libc.failure(name, error) {
            Some(pair) => {
                met.failed.insert(pair);
            }
            None => met.not_found += 1,
        }
    }
}

/// The `dlopen` layouts of a run: how many, and what they met; a run of the
/// default seeds must meet `dlopen`s that load and that fail.
#[derive(Default)]
struct OpenTally {
    layouts: usize,
    not_started: usize,
    ok: usize,
    failing_layouts: usize,
    failed: usize,
    not_found: usize,
    plugins_failing: usize,
}

impl OpenTally {
    fn add(&mut self, o: &Opened) {
        self.layouts += 1;
        self.not_started += usize::from(!o.starts);
        self.ok += o.ok;
        self.failing_layouts += usize::from(!o.failed.is_empty());
        self.failed += o.failed.len();
        self.not_found += o.not_found;
        self.plugins_failing += o.plugins_failing;
    }

    fn report(&self, name: &str, defaults: bool) {
        println!(
            "{name}: {} layouts agree; the opener cannot start in {}; {} dlopens load; {} \
             layouts with a dlopen failing for a symbol or version ({} object-reason pairs); \
             {} dlopens of a file not found; {} plugins failing",
            self.layouts,
            self.not_started,
            self.ok,
            self.failing_layouts,
            self.failed,
            self.not_found,
            self.plugins_failing
        );
        if defaults {
            assert!(
                self.ok > 0
                    && self.failing_layouts > 0
                    && self.plugins_failing > 0
                    && self.not_started < self.layouts,
                "{name}: the layouts should load, and fail now and then"
            );
        }
    }
}

/// Seeds past the default range that once found a bug, replayed on every
/// run of the musl layouts: 448 (the opener opens `libms1.so.1`, whose
/// `dlopen` fails, then `libms0.so.1`, which brings it in with what binds
/// it; `closure` took `--dlopen-strings` names in alphabetical order, not
/// the read-only data's, so it opened `libms0.so.1` first and nothing
/// failed).
const DLOPEN_KEPT: &[u64] = &[448];

/// 20 `dlopen` layouts on this machine's musl
/// (`CLOSURE_MUSL_DLOPEN_LAYOUTS=N`: seeds up to N instead;
/// `CLOSURE_MUSL_DLOPEN_LAYOUTS_FROM=K` starts at seed K).
#[test]
fn musl_random_dlopen_layouts_match_musl() {
    let name = "musl_random_dlopen_layouts_match_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let (all, defaults) = seeds(
        "CLOSURE_MUSL_DLOPEN_LAYOUTS",
        "CLOSURE_MUSL_DLOPEN_LAYOUTS_FROM",
        20,
        DLOPEN_KEPT,
    );
    let mut tally = OpenTally::default();
    for seed in all {
        let s = Sys::musl_with(Path::new(HOST_MUSL));
        tally.add(&dlopen_layout(&s, Libc::Musl, seed, " (musl)"));
    }
    tally.report(name, defaults);
}

/// The first 5 of those layouts (or as `CLOSURE_MUSL_DLOPEN_LAYOUTS`, `…_FROM`
/// say) against Debian 13's and testing's musl.
#[test]
fn musl_random_dlopen_layouts_match_newer_musl() {
    let name = "musl_random_dlopen_layouts_match_newer_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let (all, _) = seeds(
        "CLOSURE_MUSL_DLOPEN_LAYOUTS",
        "CLOSURE_MUSL_DLOPEN_LAYOUTS_FROM",
        5,
        &[],
    );
    for (release, libc) in newer_musl(name) {
        let mut tally = OpenTally::default();
        for &seed in &all {
            let s = Sys::musl_with(&libc);
            let label = format!(" ({release})");
            tally.add(&dlopen_layout(&s, Libc::Musl, seed, &label));
        }
        tally.report(&format!("{name} on {release}"), false);
    }
}

/// Seeds of the glibc layouts replayed on every run: 40 (a `-z now`
/// library's `dlopen` fails on a variable read through the GOT and on a
/// call; glibc relocates `DT_RELA` before `DT_JMPREL` and names the
/// variable, `closure` named the symbol of the lower index, the call).
const GLIBC_DLOPEN_KEPT: &[u64] = &[40];

/// 20 of the same layouts on this machine's glibc, built with gcc
/// (`CLOSURE_GLIBC_DLOPEN_LAYOUTS=N`, `CLOSURE_GLIBC_DLOPEN_LAYOUTS_FROM=K`).
#[test]
fn glibc_random_dlopen_layouts_match_glibc() {
    let name = "glibc_random_dlopen_layouts_match_glibc";
    if !can_run(name) {
        return;
    }
    let (all, defaults) = seeds(
        "CLOSURE_GLIBC_DLOPEN_LAYOUTS",
        "CLOSURE_GLIBC_DLOPEN_LAYOUTS_FROM",
        20,
        GLIBC_DLOPEN_KEPT,
    );
    let mut tally = OpenTally::default();
    for seed in all {
        tally.add(&dlopen_layout(&Sys::glibc(), Libc::Glibc, seed, " (glibc)"));
    }
    tally.report(name, defaults);
}

/// The first 10 of those layouts (or as `CLOSURE_GLIBC_DLOPEN_LAYOUTS`, `…_FROM` say) on
/// Debian 13's and testing's glibc (2.41, 2.43; the programs, built against this
/// machine's 2.36, run there).
#[test]
fn glibc_random_dlopen_layouts_match_newer_glibc() {
    let name = "glibc_random_dlopen_layouts_match_newer_glibc";
    if !can_run(name) {
        return;
    }
    let (all, _) = seeds(
        "CLOSURE_GLIBC_DLOPEN_LAYOUTS",
        "CLOSURE_GLIBC_DLOPEN_LAYOUTS_FROM",
        10,
        &[],
    );
    for g in crate::support::glibc::available(name, &["trixie", "forky"]) {
        let mut tally = OpenTally::default();
        for &seed in &all {
            let s = Sys::glibc_with(&g.libc, &g.ldso);
            let label = format!(" ({}, glibc {})", g.release, g.version);
            tally.add(&dlopen_layout(&s, Libc::Glibc, seed, &label));
        }
        tally.report(&format!("{name} on {}", g.release), false);
    }
}
