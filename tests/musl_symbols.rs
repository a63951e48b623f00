//! `--check-symbols` for musl programs, against musl's own loader.
//!
//! musl's `find_sym` is not glibc's `check_match`: it never reads a version
//! name (a reference binds a definition of any version, or none), skips
//! every definition whose version entry is hidden (even of the version the
//! reference names), takes no IFUNC and no zero-valued absolute symbol,
//! and from 1.2.4 maps a large-file name that nothing binds (`fopen64`)
//! to the loader's definition without the `64`. `ld-musl --list PROGRAM`
//! relocates everything the program's start relocates and prints
//! `Error relocating OBJECT: SYMBOL: symbol not found` for each reference
//! nothing binds (and exits 127): the answer `closure --check-symbols`
//! must give, object for object and symbol for symbol. Fixed cases and
//! random layouts, on this machine's musl (1.2.3) and on Debian 13's and
//! testing's (1.2.5, 1.2.6), whose `libc.so` no longer defines the
//! large-file names. Then `dlopen`s: musl's `RTLD_LAZY` defers only PLT
//! and GOT relocations; a fixed set of libraries compares what musl loads
//! and the first symbol it fails on with `closure --dlopen-strings`, and
//! with `closure`'s warnings for them as `--include`d plugins (random
//! layouts of the same: `tests/dlopen_layouts.rs`).
//!
//! Needs musl-gcc; running musl's loader in the root needs root (the tests
//! print `skipping <name>: needs root` otherwise).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::runtime::{can_run, musl_ready, paths, warnings, Sys, HOST_MUSL, MUSL_INTERP};
use crate::support::chroot::run_in_root;
use crate::support::oracle::run_closure;
use crate::support::rng::Rng;

/// (object, symbol) pairs.
pub(crate) type Pairs = BTreeSet<(String, String)>;

/// One side's answer for a program: the references it cannot bind, the
/// names it cannot load, whether the program can start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    unbound: Pairs,
    missing: BTreeSet<String>,
    pub(crate) starts: bool,
}

/// musl's answer: `ld-musl --list PROG` in the root, and its raw output.
fn musl_answer(s: &Sys, prog: &str) -> (Answer, String) {
    let (status, out, err) = run_in_root(s.path(), &[MUSL_INTERP, "--list", prog], &[]);
    let unbound = (err.lines())
        .filter_map(|l| l.strip_prefix("Error relocating "))
        .filter_map(|l| l.strip_suffix(": symbol not found"))
        .filter_map(|l| l.rsplit_once(": "))
        .map(|(o, s)| (o.to_string(), s.to_string()))
        .collect();
    let missing = (err.lines())
        .filter_map(|l| l.strip_prefix("Error loading shared library "))
        .filter_map(|l| l.split(':').next())
        .map(str::to_string)
        .collect();
    let answer = Answer {
        unbound,
        missing,
        starts: status.success(),
    };
    (
        answer,
        format!("--- stdout ---\n{out}--- stderr ---\n{err}"),
    )
}

/// `closure --check-symbols`'s answer, and its output.
fn closure_answer(s: &Sys, prog: &str) -> (Answer, String) {
    let run = run_closure(s.path(), &[prog], &["--check-symbols"]);
    let json = run.json.clone().unwrap_or(Value::Null);
    let unbound = (json["undefined_symbols"].as_array().into_iter().flatten())
        .map(|u| {
            let f = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (f("object"), f("symbol"))
        })
        .collect();
    let answer = Answer {
        unbound,
        missing: run.missing_names(),
        starts: run.status == 0,
    };
    (answer, run.dump())
}

/// Asserts both answers agree for `prog`, and returns musl's.
pub(crate) fn same_answer(s: &Sys, prog: &str, what: &str) -> Answer {
    let (theirs, raw) = musl_answer(s, prog);
    let (ours, dump) = closure_answer(s, prog);
    assert_eq!(
        ours, theirs,
        "{what}: closure --check-symbols (left) and musl (right)\nmusl:\n{raw}\nclosure:\n{dump}"
    );
    theirs
}

/// The newer musl builds to check against, besides this machine's: (release, its
/// `libc.so`), each fetched once (Debian 13's 1.2.5, testing's 1.2.6 when this was written).
pub(crate) fn newer_musl(name: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for release in ["trixie", "forky"] {
        match crate::support::glibc::debian_package(release, "amd64", "musl") {
            Ok((root, version)) => {
                let libc = root.join("usr/lib/x86_64-linux-musl/libc.so");
                assert!(
                    libc.is_file(),
                    "{name}: musl {version} of {release} has no libc.so"
                );
                out.push((format!("{release} (musl {version})"), libc));
            }
            Err(why) => println!("skipping {name} on {release}: {why}"),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fixed cases
// ---------------------------------------------------------------------------------------------

/// The library the program is linked against: everything in `LV_1`, but
/// `f_new` in `LV_2`.
const LINKED_C: &str = "int f_keep(void) { return 1; }\nint f_new(void) { return 2; }\n\
int f_hid(void) { return 3; }\nint f_ifunc(void) { return 4; }\nint f_abs(void) { return 5; }\n\
int d_hid = 6;\nint f_weak(void) { return 7; }\n";
const LINKED_MAP: &str = "LV_1 { global: *; };\nLV_2 { global: f_new; } LV_1;\n";

/// What is installed instead: `f_new` only in `LV_1` (musl does not mind),
/// `f_hid` and `d_hid` only as hidden `@LV_1` symbols, `f_ifunc` an IFUNC,
/// `f_abs` an absolute 0 (the script below), `f_weak` gone; it calls its
/// own IFUNC (a lookup that musl makes too, and fails).
const INSTALLED_C: &str = "int f_keep(void) { return 1; }\nint f_new(void) { return 2; }\n\
int f_hid_old(void) { return 3; }\n__asm__(\".symver f_hid_old,f_hid@LV_1\");\n\
int d_hid_old = 6;\n__asm__(\".symver d_hid_old,d_hid@LV_1\");\n\
static int f_ifunc_impl(void) { return 4; }\n\
static void *f_ifunc_pick(void) { return (void *)f_ifunc_impl; }\n\
int f_ifunc(void) __attribute__((ifunc(\"f_ifunc_pick\")));\n\
int f_self(void) { return f_ifunc(); }\n";
const INSTALLED_MAP: &str = "LV_1 { global: *; };\n";
const ABS_ZERO_LD: &str = "f_abs = 0;\n";

const PROG_C: &str = "int f_keep(void), f_new(void), f_hid(void), f_ifunc(void), f_abs(void);\n\
extern int d_hid;\nextern int f_weak(void) __attribute__((weak));\n\
int main(void) { return f_keep() + f_new() + f_hid() + f_ifunc() + f_abs() + d_hid\n\
  + (f_weak ? f_weak() : 0); }\n";

/// Large-file names: four musl maps (1.2.4 and later; earlier ones define
/// them all), one too long for its buffer, one not on its list, which a
/// library defined when the program was linked.
const LFS_PROG_C: &str = "#include <stddef.h>\n\
void *fopen64(const char *, const char *); int stat64(const char *, void *);\n\
int readdir64_r(void *, void *, void **); int __fxstatat64(int, int, const char *, void *, int);\n\
int posix_fallocate64(int, long, long); int nothere64(void);\n\
int main(int argc, char **argv) { if (argc > 5) { fopen64(argv[0], \"r\"); stat64(argv[0], NULL);\n\
  readdir64_r(NULL, NULL, NULL); __fxstatat64(1, 0, argv[0], NULL, 0);\n\
  posix_fallocate64(0, 0, 1); } return nothere64(); }\n";

/// Builds both programs in `s` (its musl at `libc`) and compares.
fn fixed_cases(name: &str, s: &Sys) {
    let map = |text: &str| format!("-Wl,--version-script={}", s.scratch("map", text).display());
    s.lib(
        "musl-gcc",
        "/app/lib/libv.so.1",
        "libv.so.1",
        LINKED_C,
        &[&map(LINKED_MAP)],
    );
    s.lib(
        "musl-gcc",
        "/app/lib/libstub.so.1",
        "libstub.so.1",
        "int nothere64(void) { return 0; }\n",
        &[],
    );
    let mut args = s.link("/app/lib/libv.so.1");
    args.extend(s.link("/app/lib/libstub.so.1"));
    args.push("-Wl,-rpath,/app/lib".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/prog", &[("c", PROG_C)], &args);
    s.cc("musl-gcc", "/app/bin/lfs", &[("c", LFS_PROG_C)], &args);
    let abs = s.scratch("ld", ABS_ZERO_LD).display().to_string();
    s.lib(
        "musl-gcc",
        "/app/lib/libv.so.1",
        "libv.so.1",
        INSTALLED_C,
        &[&map(INSTALLED_MAP), &abs],
    );
    s.lib(
        "musl-gcc",
        "/app/lib/libstub.so.1",
        "libstub.so.1",
        "int other(void) { return 0; }\n",
        &[],
    );
    let theirs = same_answer(s, "/app/bin/prog", name);
    // (The case must be one where the two libcs' rules part: glibc's binds
    // `f_hid`, `f_ifunc`, `f_abs` and `d_hid`, and not `f_new`.)
    let named: BTreeSet<(&str, &str)> = (theirs.unbound.iter())
        .map(|(o, s)| (o.as_str(), s.as_str()))
        .collect();
    let prog = |s| ("/app/bin/prog", s);
    assert_eq!(
        named,
        BTreeSet::from([
            prog("f_hid"),
            prog("f_ifunc"),
            prog("f_abs"),
            prog("d_hid"),
            ("/app/lib/libv.so.1", "f_ifunc")
        ]),
        "{name}: musl's answer changed: {theirs:?}"
    );
    let lfs = same_answer(s, "/app/bin/lfs", &format!("{name} (large-file names)"));
    assert!(
        lfs.unbound.iter().any(|(_, s)| s == "nothere64"),
        "{name}: {lfs:?}"
    );
}

/// musl binds by name alone: a reference whose version the installed
/// library dropped still binds, a hidden definition of its very version
/// does not, nor an IFUNC, nor an absolute 0; an unbound weak reference is
/// no error; the large-file names bind through the loader (1.2.4 and
/// later: `posix_fallocate64`, 17 characters, does not).
#[test]
fn musl_binds_symbols_by_name_alone() {
    let name = "musl_binds_symbols_by_name_alone";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    fixed_cases(name, &Sys::musl_with(Path::new(HOST_MUSL)));
    for (release, libc) in newer_musl(name) {
        fixed_cases(&format!("{name} on {release}"), &Sys::musl_with(&libc));
    }
}

// ---------------------------------------------------------------------------------------------
// `dlopen`s that fail whatever their mode
// ---------------------------------------------------------------------------------------------

/// Libraries the tests below open, in `/app/plug`: (SONAME, source, extra
/// arguments). Each uses something nothing defines, or defines itself in a
/// way musl does not take, in one way.
const LAZY_LIBS: &[(&str, &str, &[&str])] = &[
    // A word of data holding a variable's address: fails in every mode.
    (
        "libdata.so.1",
        "extern int gone_data;\nint *keep_data = &gone_data;\n",
        &[],
    ),
    // A variable read through the GOT: `RTLD_LAZY` defers it.
    (
        "libgot.so.1",
        "extern int gone_data;\nint got(void) { return gone_data; }\n",
        &[],
    ),
    // A function's address held in data: fails in every mode.
    (
        "libptr.so.1",
        "int gone_fn(void);\nint (*keep_fn)(void) = gone_fn;\n",
        &[],
    ),
    // A call through the PLT: deferred.
    (
        "libcall.so.1",
        "int gone_fn(void);\nint call(void) { return gone_fn(); }\n",
        &[],
    ),
    // The same, linked `-z now`: fails.
    (
        "libnow.so.1",
        "int gone_fn(void);\nint now(void) { return gone_fn(); }\n",
        &["-Wl,-z,now"],
    ),
    // Its own IFUNC's address held in data: fails (musl takes no IFUNC).
    (
        "libifunc.so.1",
        "static int impl(void) { return 1; }\nstatic void *pick(void) { return (void *)impl; }\n\
         int own(void) __attribute__((ifunc(\"pick\")));\nint (*keep_own)(void) = own;\n",
        &[],
    ),
    // Fine itself, but its dependency holds an address of nothing.
    ("libouter.so.1", "int outer(void) { return 1; }\n", &["DEP"]),
];

/// The dependency of `libouter.so.1`.
const LAZY_DEP: (&str, &str) = (
    "libinner.so.1",
    "extern int gone_inner;\nint *keep_inner = &gone_inner;\n",
);

/// Opens each of `LAZY_LIBS` by name with `RTLD_LAZY` (`OK NAME`, or `FAIL
/// NAME|ERROR`), then lists its link map.
fn lazy_opener_c() -> String {
    let names: Vec<String> = LAZY_LIBS
        .iter()
        .map(|(n, _, _)| format!("\"{n}\""))
        .collect();
    format!(
        "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <link.h>\n#include <stdio.h>\n\
         static const char *const names[] = {{ {} }};\n\
         static int each(struct dl_phdr_info *i, size_t n, void *d) {{ (void)n; (void)d;\n\
           if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }}\n\
         int main(void) {{ for (unsigned k = 0; k < sizeof names / sizeof *names; k++) {{\n\
           if (dlopen(names[k], RTLD_LAZY)) printf(\"OK %s\\n\", names[k]);\n\
           else printf(\"FAIL %s|%s\\n\", names[k], dlerror()); }}\n\
           dl_iterate_phdr(each, 0); return 0; }}\n",
        names.join(", ")
    )
}

/// Builds the libraries and the opener `/app/bin/opener` (RUNPATH
/// `/app/plug`) in `s`.
fn lazy_root(s: &Sys) {
    let (dep, dep_src) = LAZY_DEP;
    let dep_path = format!("/app/plug/{dep}");
    s.lib("musl-gcc", &dep_path, dep, dep_src, &[]);
    for (name, src, extra) in LAZY_LIBS {
        let mut args: Vec<String> = vec!["-Wl,-rpath,/app/plug".into()];
        for a in *extra {
            if *a == "DEP" {
                args.extend(s.link(&dep_path));
            } else {
                args.push(a.to_string());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.lib("musl-gcc", &format!("/app/plug/{name}"), name, src, &args);
    }
    s.cc(
        "musl-gcc",
        "/app/bin/opener",
        &[("c", &lazy_opener_c())],
        &["-Wl,-rpath,/app/plug"],
    );
}

/// musl's `RTLD_LAZY` `dlopen` defers a PLT or GOT relocation whose symbol
/// is not found, and fails on any other (a word of data holding an
/// address), on any of an object linked `-z now`, on an IFUNC it cannot
/// take, and on a dependency's. `closure --dlopen-strings` must undo
/// exactly the `dlopen`s musl fails, naming musl's symbol, keep the others
/// (the program's link map), and `--include`d as plugins of a musl
/// program, warn of exactly those.
#[test]
fn musl_dlopens_that_fail_in_every_mode_are_undone() {
    let name = "musl_dlopens_that_fail_in_every_mode_are_undone";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let s = Sys::musl_with(Path::new(HOST_MUSL));
    lazy_root(&s);
    let (status, out, err) = run_in_root(s.path(), &["/app/bin/opener"], &[]);
    assert!(status.success(), "{name}: {out}{err}");
    // musl's answer: which fail, on which symbol, and the link map.
    let mut failed: BTreeSet<(String, String)> = BTreeSet::new();
    for l in out.lines() {
        if let Some((_, why)) = l.strip_prefix("FAIL ").and_then(|l| l.split_once('|')) {
            let (object, symbol) = (why.strip_prefix("Error relocating "))
                .and_then(|w| w.strip_suffix(": symbol not found"))
                .and_then(|w| w.rsplit_once(": "))
                .unwrap_or_else(|| panic!("{name}: musl's error: {l}"));
            failed.insert((object.to_string(), symbol.to_string()));
        }
    }
    let map: BTreeSet<String> = out
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(String::from)
        .collect();
    assert_eq!(failed.len(), 5, "{name}: musl's answer changed: {out}");
    let (code, v, err) = s.json(&["--root", "/app/bin/opener", "--dlopen-strings"]);
    assert_eq!(code, 0, "{name}: {err}");
    let ours: BTreeSet<String> = paths(&v)
        .into_iter()
        .filter(|p| p != "/app/bin/opener")
        .collect();
    let theirs: BTreeSet<String> = map.into_iter().filter(|p| p != "/app/bin/opener").collect();
    assert_eq!(
        ours, theirs,
        "{name}: closure (left) and musl's link map (right)\n{out}"
    );
    let warned = warnings(&v);
    let undone: BTreeSet<(String, String)> = (warned.lines())
        .filter_map(|l| l.strip_suffix(": that dlopen fails"))
        .filter_map(|l| {
            l.split_once(" (loaded at run time by /app/bin/opener): undefined symbol: ")
        })
        .map(|(o, s)| (o.to_string(), s.to_string()))
        .collect();
    assert_eq!(
        undone, failed,
        "{name}: closure's warnings (left), musl's failures (right)\n{warned}"
    );

    // The same libraries as plugins of the opener: a warning for each that
    // fails, none for the others.
    let mut argv = vec!["--root", "/app/bin/opener"];
    let plugins: Vec<String> = LAZY_LIBS
        .iter()
        .map(|(n, _, _)| format!("/app/plug/{n}"))
        .collect();
    for p in &plugins {
        argv.extend(["--include", p.as_str()]);
    }
    let (code, v, err) = s.json(&argv);
    assert_eq!(code, 0, "{name}: {err}");
    let warned = warnings(&v);
    let failing: BTreeSet<(String, String)> = (warned.lines())
        .filter_map(|l| {
            let (object, rest) = l.split_once(" (")?;
            let symbol = rest.split_once("): undefined symbol: ")?.1;
            let symbol = symbol
                .strip_suffix(": its dlopen fails")
                .or_else(|| symbol.strip_suffix(": that dlopen fails"))?;
            Some((object.to_string(), symbol.to_string()))
        })
        .collect();
    assert_eq!(
        failing, failed,
        "{name}: closure's plugin warnings (left), musl's failures (right)\n{warned}"
    );
}

// ---------------------------------------------------------------------------------------------
// Random layouts
// ---------------------------------------------------------------------------------------------

/// Libraries per layout: `/app/lib/libms<i>.so.1`, each may use later ones.
pub(crate) const LIBS: usize = 4;
/// Functions each library defines (`m<i>_<f>`), besides its data `m<i>_v`
/// and, for some, `mdup`.
const FUNCS: &[&str] = &["a", "b", "c"];

/// What a build does with one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Defined in `LM<i>_1`.
    V1,
    /// Defined in `LM<i>_2`.
    V2,
    /// Defined, left out of the version script (the base version).
    Base,
    /// Only a hidden `@LM<i>_1` definition.
    Hidden,
    /// Not defined.
    Gone,
    /// An IFUNC (functions only).
    Ifunc,
    /// An absolute 0, from a linker script.
    Abs,
}

/// One build of library `i`: each of its symbols' fate.
#[derive(Debug, Clone)]
pub(crate) struct Build {
    i: usize,
    /// (name, is data, fate).
    syms: Vec<(String, bool, Fate)>,
    /// Whether it has a version script.
    scripted: bool,
    /// Whether it is linked `-z now`.
    now: bool,
}

impl Build {
    /// The build programs are linked against: every symbol defined.
    fn full(rng: &mut Rng, i: usize) -> Build {
        let scripted = rng.chance(70);
        let mut syms: Vec<(String, bool, Fate)> = FUNCS
            .iter()
            .map(|f| {
                let fate = match (scripted, *f) {
                    (false, _) => Fate::Base,
                    (true, "c") => Fate::V2,
                    _ => Fate::V1,
                };
                (format!("m{i}_{f}"), false, fate)
            })
            .collect();
        syms.push((
            format!("m{i}_v"),
            true,
            if scripted { Fate::V1 } else { Fate::Base },
        ));
        if rng.chance(50) {
            syms.push((
                "mdup".into(),
                false,
                if scripted { Fate::V2 } else { Fate::Base },
            ));
        }
        Build {
            i,
            syms,
            scripted,
            now: false,
        }
    }

    /// A build installed later: each symbol kept (in any version), hidden,
    /// gone, an IFUNC or an absolute 0.
    fn later(rng: &mut Rng, full: &Build) -> Build {
        let syms: Vec<(String, bool, Fate)> = (full.syms.iter())
            .map(|(n, data, _)| {
                let fate = match rng.below(20) {
                    0..=3 => Fate::V1,
                    4..=6 => Fate::V2,
                    7..=9 => Fate::Base,
                    10..=12 => Fate::Hidden,
                    13..=15 => Fate::Gone,
                    16 | 17 if !data => Fate::Ifunc,
                    16 | 17 => Fate::V1,
                    _ => Fate::Abs,
                };
                (n.clone(), *data, fate)
            })
            .collect();
        let scripted =
            (syms.iter()).any(|(_, _, f)| matches!(f, Fate::V1 | Fate::V2 | Fate::Hidden));
        Build {
            i: full.i,
            syms,
            scripted,
            now: full.now,
        }
    }

    /// Its C source: `uses` (its references to later libraries) first.
    fn source(&self, uses: &[Use]) -> String {
        let i = self.i;
        let mut s = String::new();
        let mut body = String::new();
        for (k, u) in uses.iter().enumerate() {
            u.declare(&mut s, &mut body, &format!("m{i}_p{k}"));
        }
        let _ = writeln!(s, "int m{i}_base(void) {{ return 0{body}; }}");
        for (n, data, fate) in &self.syms {
            let k = n.len();
            match (fate, data) {
                (Fate::Gone | Fate::Abs, _) => {}
                (Fate::Hidden, true) => {
                    let _ = writeln!(
                        s,
                        "int {n}_old = {k};\n__asm__(\".symver {n}_old,{n}@LM{i}_1\");"
                    );
                }
                (Fate::Hidden, false) => {
                    let _ = writeln!(
                        s,
                        "int {n}_old(void) {{ return {k}; }}\n__asm__(\".symver {n}_old,{n}@LM{i}_1\");"
                    );
                }
                (Fate::Ifunc, _) => {
                    let _ = writeln!(
                        s,
                        "static int {n}_impl(void) {{ return {k}; }}\n\
                         static void *{n}_pick(void) {{ return (void *){n}_impl; }}\n\
                         int {n}(void) __attribute__((ifunc(\"{n}_pick\")));"
                    );
                }
                (_, true) => {
                    let _ = writeln!(s, "int {n} = {k};");
                }
                (_, false) => {
                    let _ = writeln!(s, "int {n}(void) {{ return {k}; }}");
                }
            }
        }
        s
    }

    /// Its version script, if any.
    fn script(&self) -> Option<String> {
        if !self.scripted {
            return None;
        }
        let i = self.i;
        let listed = |want: Fate| -> String {
            (self.syms.iter())
                .filter(|(_, _, f)| *f == want)
                .map(|(n, _, _)| format!(" {n};"))
                .collect()
        };
        Some(format!(
            "LM{i}_1 {{ global: m{i}_base;{} }};\nLM{i}_2 {{ global: m{i}_unused;{} }} LM{i}_1;\n",
            listed(Fate::V1),
            listed(Fate::V2)
        ))
    }

    /// Its linker script of absolute zeros, if any.
    fn absolutes(&self) -> Option<String> {
        let lines: String = (self.syms.iter())
            .filter(|(_, _, f)| *f == Fate::Abs)
            .map(|(n, _, _)| format!("{n} = 0;\n"))
            .collect();
        (!lines.is_empty()).then_some(lines)
    }

    /// Builds it with `cc` (`musl-gcc`, `gcc`).
    pub(crate) fn build(&self, s: &Sys, cc: &str, deps: &[String], uses: &[Use]) {
        let i = self.i;
        let mut args: Vec<String> = deps.iter().flat_map(|d| s.link(d)).collect();
        args.push("-Wl,-rpath,/app/lib".into());
        if let Some(m) = self.script() {
            args.push(format!(
                "-Wl,--version-script={}",
                s.scratch("map", &m).display()
            ));
        }
        if let Some(a) = self.absolutes() {
            args.push(s.scratch("ld", &a).display().to_string());
        }
        if self.now {
            args.push("-Wl,-z,now".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.lib(
            cc,
            &lib_path(i),
            &format!("libms{i}.so.1"),
            &self.source(uses),
            &args,
        );
    }
}

pub(crate) fn lib_path(i: usize) -> String {
    format!("/app/lib/libms{i}.so.1")
}

/// How an object uses another's symbol.
#[derive(Debug, Clone)]
pub(crate) enum Use {
    /// Calls the function (a PLT relocation).
    Call(String),
    /// Reads the variable (through the GOT, or a copy relocation in a
    /// program built without PIE).
    Read(String),
    /// Holds the function's address in data (an absolute relocation).
    Pointer(String),
    /// Calls it through a weak reference, if bound.
    Weak(String),
    /// Holds the variable's address in data (an absolute relocation).
    Address(String),
}

impl Use {
    pub(crate) fn declare(&self, decls: &mut String, body: &mut String, slot: &str) {
        match self {
            Use::Call(n) => {
                let _ = writeln!(decls, "int {n}(void);");
                let _ = write!(body, " + {n}()");
            }
            Use::Read(n) => {
                let _ = writeln!(decls, "extern int {n};");
                let _ = write!(body, " + {n}");
            }
            Use::Pointer(n) => {
                let _ = writeln!(decls, "int {n}(void);\nint (*{slot})(void) = {n};");
                let _ = write!(body, " + {slot}()");
            }
            Use::Weak(n) => {
                let _ = writeln!(decls, "extern int {n}(void) __attribute__((weak));");
                let _ = write!(body, " + ({n} ? {n}() : 0)");
            }
            Use::Address(n) => {
                let _ = writeln!(decls, "extern int {n};\nint *{slot} = &{n};");
                let _ = write!(body, " + *{slot}");
            }
        }
    }
}

/// Random uses of `b`'s symbols (the program's: only what `b` defines,
/// which a program must link). `eager` (the `dlopen` layouts) makes half
/// the uses of a function and of a variable addresses held in data, which
/// musl's lazy `dlopen` cannot defer; without it the draws are the symbol
/// layouts' as their seeds were first hunted.
pub(crate) fn uses_of(rng: &mut Rng, b: &Build, out: &mut Vec<Use>, eager: bool) {
    for (n, data, _) in &b.syms {
        if n == "mdup" || !rng.chance(45) {
            continue;
        }
        out.push(match (*data, eager) {
            (true, false) => Use::Read(n.clone()),
            (true, true) if rng.chance(50) => Use::Address(n.clone()),
            (true, true) => Use::Read(n.clone()),
            (false, _) => match (rng.below(6), eager) {
                (0, _) | (2, true) | (3, true) => Use::Pointer(n.clone()),
                (1, _) => Use::Weak(n.clone()),
                _ => Use::Call(n.clone()),
            },
        });
    }
}

/// A layout's libraries as programs are linked against them: each one's
/// build, the libraries it needs and its uses of their symbols.
pub(crate) struct Libraries {
    pub(crate) full: Vec<Build>,
    deps: Vec<Vec<String>>,
    uses: Vec<Vec<Use>>,
}

/// Builds `LIBS` libraries in `s`, each needing and using some later ones;
/// with `now_percent` above 0 that share of them is linked `-z now` and
/// their uses are [`uses_of`]'s eager ones (no draw at all otherwise, so
/// the symbol layouts' seeds stay as they were).
pub(crate) fn libraries(rng: &mut Rng, s: &Sys, cc: &str, now_percent: u64) -> Libraries {
    let eager = now_percent > 0;
    let mut full: Vec<Option<Build>> = vec![None; LIBS];
    let mut deps: Vec<Vec<String>> = vec![Vec::new(); LIBS];
    let mut uses: Vec<Vec<Use>> = vec![Vec::new(); LIBS];
    for i in (0..LIBS).rev() {
        let mut b = Build::full(rng, i);
        for (j, later) in full.iter().enumerate().skip(i + 1) {
            if !rng.chance(45) {
                continue;
            }
            deps[i].push(lib_path(j));
            let later = later.as_ref().expect("built");
            uses_of(rng, later, &mut uses[i], eager);
            // A library may use a name it was not linked with a definition of.
            if rng.chance(30) {
                uses[i].push(Use::Call("mdup".into()));
            }
        }
        if now_percent > 0 {
            b.now = rng.chance(now_percent);
        }
        println!(
            "  {}: {b:?}, needs {:?}, uses {:?}",
            lib_path(i),
            deps[i],
            uses[i]
        );
        b.build(s, cc, &deps[i], &uses[i]);
        full[i] = Some(b);
    }
    Libraries {
        full: full.into_iter().map(|b| b.expect("built")).collect(),
        deps,
        uses,
    }
}

/// Other builds installed after the programs were linked; now and then a
/// library is gone.
pub(crate) fn install_later(rng: &mut Rng, s: &Sys, cc: &str, libs: &Libraries) {
    for i in 0..LIBS {
        if rng.chance(60) {
            let b = Build::later(rng, &libs.full[i]);
            println!("  {} installed: {b:?}", lib_path(i));
            b.build(s, cc, &libs.deps[i], &libs.uses[i]);
        }
    }
    if rng.chance(10) {
        let i = rng.below(LIBS);
        println!("  {} removed", lib_path(i));
        s.remove(&lib_path(i));
    }
}

/// Builds the layout of `seed` in `s`, compares, and returns musl's answer.
fn musl_symbol_layout(s: &Sys, seed: u64, label: &str) -> Answer {
    let name = format!("musl symbol layout {seed}{label}");
    let mut rng = Rng::new(seed ^ 0x6d75_736c);
    println!("{name}:");
    let libs = libraries(&mut rng, s, "musl-gcc", 0);
    // The program: uses of two or three libraries, sometimes its own
    // exported `mdup`, with or without PIE.
    let mut needs: Vec<usize> = Vec::new();
    for _ in 0..2 + rng.below(2) {
        let i = rng.below(LIBS);
        if !needs.contains(&i) {
            needs.push(i);
        }
    }
    let mut prog_uses = Vec::new();
    for &i in &needs {
        uses_of(&mut rng, &libs.full[i], &mut prog_uses, false);
    }
    let own_mdup = rng.chance(20);
    let no_pie = rng.chance(40);
    let mut src = String::new();
    let mut body = String::new();
    for (k, u) in prog_uses.iter().enumerate() {
        u.declare(&mut src, &mut body, &format!("prog_p{k}"));
    }
    if own_mdup {
        src.push_str("int mdup(void) { return 9; }\n");
    }
    let _ = writeln!(src, "int main(void) {{ return 0{body}; }}");
    let mut args: Vec<String> = needs.iter().flat_map(|&i| s.link(&lib_path(i))).collect();
    args.extend(program_args(s));
    if own_mdup {
        args.push("-rdynamic".into());
    }
    if no_pie {
        args.push("-no-pie".into());
    }
    println!(
        "  /app/bin/prog: needs {needs:?}, uses {prog_uses:?}, own mdup {own_mdup}, no PIE {no_pie}"
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/prog", &[("c", &src)], &args);
    install_later(&mut rng, s, "musl-gcc", &libs);
    same_answer(s, "/app/bin/prog", &name)
}

/// A test program's arguments besides its libraries: RPATH `/app/lib`, and
/// a library's name nothing defines left to the loader.
pub(crate) fn program_args(s: &Sys) -> [String; 3] {
    [
        "-Wl,-rpath,/app/lib".into(),
        "-Wl,--allow-shlib-undefined".into(),
        format!("-Wl,-rpath-link,{}", s.path().join("app/lib").display()),
    ]
}

/// What a run of layouts met, printed at its end; a run of the default
/// seeds must meet unbound references in several layouts, or it tests
/// little.
#[derive(Default)]
struct Tally {
    layouts: usize,
    failing: usize,
    pairs: usize,
    missing: usize,
}

impl Tally {
    fn add(&mut self, a: &Answer) {
        self.layouts += 1;
        self.failing += usize::from(!a.starts);
        self.pairs += a.unbound.len();
        self.missing += usize::from(!a.missing.is_empty());
    }

    fn report(&self, name: &str, defaults: bool) {
        println!(
            "{name}: {} layouts agree; musl cannot start {} ({} unbound references; {} with a \
             library missing)",
            self.layouts, self.failing, self.pairs, self.missing
        );
        if defaults {
            assert!(
                self.failing * 4 >= self.layouts && self.failing < self.layouts,
                "{name}: the layouts should fail now and then: {} of {}",
                self.failing,
                self.layouts
            );
        }
    }
}

/// Seeds past the default range that once found a bug, replayed on every
/// run: 92 (a library calls a function it defines itself only as an
/// absolute 0: musl looks it up like any other and fails; `closure` read
/// no reference to a symbol its object defines).
const MUSL_SYM_KEPT: &[u64] = &[92];

pub(crate) fn var(v: &str) -> Option<u64> {
    std::env::var(v).ok().and_then(|v| v.parse().ok())
}

/// The seeds a layout test runs: `0..N` (`N` from the variable `count`,
/// else `default`), from the one `from` says if set, then the `kept` seeds
/// past `N`; and whether they are the default run (the tally's check
/// applies then).
pub(crate) fn seeds(count: &str, from: &str, default: u64, kept: &[u64]) -> (Vec<u64>, bool) {
    let n = var(count).unwrap_or(default);
    let from = var(from);
    let kept = kept.iter().copied().filter(|&k| k >= n);
    let all = (from.unwrap_or(0)..n).chain(kept).collect();
    (all, from.is_none() && n >= default)
}

/// 30 layouts on this machine's musl (`CLOSURE_MUSL_SYMBOL_LAYOUTS=N`: seeds
/// up to N instead; `CLOSURE_MUSL_SYMBOL_LAYOUTS_FROM=K` starts at seed K).
#[test]
fn musl_random_symbol_layouts_match_musl() {
    let name = "musl_random_symbol_layouts_match_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let (all, defaults) = seeds(
        "CLOSURE_MUSL_SYMBOL_LAYOUTS",
        "CLOSURE_MUSL_SYMBOL_LAYOUTS_FROM",
        30,
        MUSL_SYM_KEPT,
    );
    let mut tally = Tally::default();
    for seed in all {
        let s = Sys::musl_with(Path::new(HOST_MUSL));
        tally.add(&musl_symbol_layout(&s, seed, ""));
    }
    tally.report(name, defaults);
}

/// The first 10 of those layouts (or `CLOSURE_MUSL_SYMBOL_LAYOUTS`, `…_FROM`
/// as there) against Debian 13's and testing's musl: the programs are built
/// with this machine's.
#[test]
fn musl_random_symbol_layouts_match_newer_musl() {
    let name = "musl_random_symbol_layouts_match_newer_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let (all, _) = seeds(
        "CLOSURE_MUSL_SYMBOL_LAYOUTS",
        "CLOSURE_MUSL_SYMBOL_LAYOUTS_FROM",
        10,
        &[],
    );
    for (release, libc) in newer_musl(name) {
        let mut tally = Tally::default();
        for &seed in &all {
            let a = musl_symbol_layout(&Sys::musl_with(&libc), seed, &format!(" ({release})"));
            tally.add(&a);
        }
        tally.report(&format!("{name} on {release}"), false);
    }
}
