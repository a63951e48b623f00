//! Objects the glibc loader refuses by their type and `DT_FLAGS_1`,
//! against the real loader (glibc 2.36 here, and 2.31, 2.41 and 2.43).
//!
//! A position-independent executable (`DF_1_PIE`) that a search finds for
//! a `DT_NEEDED` name stops the program ("cannot dynamically load
//! position-independent executable"), though a later directory holds a
//! library of that name; opened with `dlopen`, it fails that `dlopen`. So
//! does an executable at a fixed address (`ET_EXEC`: "cannot dynamically
//! load executable"), and so does the program itself when a `DT_NEEDED`
//! name finds its file (the loader maps it again). An
//! object linked with `-z nodlopen` (`DF_1_NOOPEN`) loads at start-up like
//! any other but fails a `dlopen` ("shared object cannot be dlopen()ed"),
//! also when it is a dependency of the object opened. `closure` must
//! refuse the first (exit 1), and warn of exactly the `dlopen`s the loader
//! fails, with its words. A library given as a root is traced as
//! `ld.so --list` loads it, and refused alike; a program that another root
//! loads as a library (and is refused there) still lists its own objects.
//! The programs that open libraries here also check `--verbose` against
//! the running program's `LD_DEBUG=libs` log, and that run-time loads are
//! taken one `dlopen` after another.

use std::collections::BTreeSet;

use crate::support::oracle::{
    assert_same_ldd_lines, closure_ldd_lines, compared_logs, dlopen_note_c, ldd_lines, loader_list,
    loader_trace, on_host_and_releases, run_closure, run_closure_with_run_time, ClosureRun,
    LoaderTrace, Oracle, TestRoot,
};

const PIE: &str = "cannot dynamically load position-independent executable";
const EXEC: &str = "cannot dynamically load executable";

/// Opens each argument with `dlopen`, printing `OK NAME` or `FAIL ERROR`;
/// its `.note.dlopen` declares the names the test opens.
const OPENER_MAIN: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        if (dlopen(argv[k], RTLD_NOW)) printf("OK %s\n", argv[k]);
        else printf("FAIL %s\n", dlerror());
    }
    return 0;
}
"#;

/// The same in a library's constructor; `NAMES` is replaced by the names.
const LIBRARY_OPENER: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
static const char *const names[] = { NAMES };
__attribute__((constructor)) static void open_all(void) {
    for (unsigned k = 0; k < sizeof names / sizeof *names; k++) {
        if (dlopen(names[k], RTLD_NOW)) printf("OK %s\n", names[k]);
        else printf("FAIL %s\n", dlerror());
    }
}
"#;

/// Opens two names its read-only data spells, in order (no
/// `.note.dlopen`: `--dlopen-strings` finds them).
const STRINGS_OPENER: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
static const char *const names[] = { "libfirst.so.1", "libshared.so.1" };
int main(void) {
    for (unsigned k = 0; k < sizeof names / sizeof *names; k++) {
        if (dlopen(names[k], RTLD_NOW)) printf("OK %s\n", names[k]);
        else printf("FAIL %s\n", dlerror());
    }
    return 0;
}
"#;

/// What the opener opens, by name (its RUNPATH finds them, but the last,
/// which is nowhere).
const OPENED: [&str; 6] = [
    "libnod.so.1",
    "libuser.so.1",
    "libpie.so",
    "libexe.so",
    "libfine.so.1",
    "libabsent.so.1",
];

fn build(r: &TestRoot) {
    // The PIE, named as a library, and a real library of that name in a
    // directory searched after it.
    r.exe("/app/pie/libpie.so").build();
    r.lib("/app/lib2/libpie.so", "libpie.so").build();
    r.exe("/app/bin/needspie")
        .needs_names(&["libpie.so"])
        .runpath("/app/pie:/app/lib2")
        .build();
    // A program that names itself (a link to it) in its `DT_NEEDED`: the
    // loader maps its file again, as a library, and refuses it.
    r.exe("/app/self/needself")
        .needs_names(&["libself.so"])
        .runpath("$ORIGIN")
        .build();
    r.symlink("needself", "/app/self/libself.so");
    // The same with an executable at a fixed address.
    r.exe("/app/exe/libexe.so").arg("-no-pie").build();
    r.lib("/app/lib2/libexe.so", "libexe.so").build();
    r.exe("/app/bin/needsexe")
        .needs_names(&["libexe.so"])
        .runpath("/app/exe:/app/lib2")
        .build();
    // Libraries that need them, given as roots.
    r.lib("/app/lib/libneedspie.so.1", "libneedspie.so.1")
        .needs_names(&["libpie.so"])
        .runpath("/app/pie:/app/lib2")
        .build();
    r.lib("/app/lib/libneedsexe.so.1", "libneedsexe.so.1")
        .needs_names(&["libexe.so"])
        .runpath("/app/exe:/app/lib2")
        .build();
    // A program that needs another program by its path; both are roots.
    r.exe("/app/bin/other").build();
    r.lib("/app/stub/libother.so", "/app/bin/other").build();
    r.exe("/app/bin/needsother")
        .needs(&["/app/stub/libother.so"])
        .build();
    // `-z nodlopen`: needed at start-up, opened, and a dependency of an
    // object opened.
    r.lib("/app/lib/libnod.so.1", "libnod.so.1")
        .arg("-Wl,-z,nodlopen")
        .build();
    r.lib("/app/lib/libnod2.so.1", "libnod2.so.1")
        .arg("-Wl,-z,nodlopen")
        .build();
    r.lib("/app/lib/libuser.so.1", "libuser.so.1")
        .needs(&["/app/lib/libnod2.so.1"])
        .runpath("$ORIGIN")
        .build();
    r.lib("/app/lib/libfine.so.1", "libfine.so.1").build();
    r.exe("/app/bin/needsnod")
        .needs(&["/app/lib/libnod.so.1"])
        .runpath("/app/lib")
        .build();
    let entries: Vec<String> = OPENED
        .iter()
        .map(|n| format!(r#"{{"soname":["{n}"],"priority":"recommended"}}"#))
        .collect();
    let note = dlopen_note_c(&format!("[{}]", entries.join(",")));
    r.exe("/app/bin/opener")
        .source(&format!("{note}{OPENER_MAIN}"))
        .runpath("/app/lib:/app/pie:/app/exe")
        .build();
    // A library that opens the same names in its constructor (a root of
    // its own), and a program that loads it.
    let names: Vec<String> = OPENED.iter().map(|n| format!("\"{n}\"")).collect();
    let opens = LIBRARY_OPENER.replace("NAMES", &names.join(", "));
    r.lib("/app/lib/libopens.so.1", "libopens.so.1")
        .source(&format!("{note}{opens}"))
        .runpath("/app/lib:/app/pie:/app/exe")
        .build();
    r.exe("/app/bin/loadsopener")
        .needs(&["/app/lib/libopens.so.1"])
        .runpath("/app/lib")
        .build();
    // Two dlopens in a row: the first loads, as its dependency, a library
    // that its own RUNPATH finds; the second names that library, which the
    // program's own search would find elsewhere.
    r.lib("/app/x/libshared.so.1", "libshared.so.1").build();
    r.lib("/app/y/libshared.so.1", "libshared.so.1").build();
    r.lib("/app/y/libfirst.so.1", "libfirst.so.1")
        .needs(&["/app/x/libshared.so.1"])
        .runpath("/app/x")
        .build();
    let note = dlopen_note_c(
        r#"[{"soname":["libfirst.so.1"],"priority":"recommended"},{"soname":["libshared.so.1"],"priority":"recommended"}]"#,
    );
    r.exe("/app/bin/opener2")
        .source(&format!("{note}{OPENER_MAIN}"))
        .runpath("/app/y")
        .build();
    r.exe("/app/bin/opener3")
        .source(STRINGS_OPENER)
        .runpath("/app/y")
        .build();
}

/// The loader's failed `dlopen`s in an opener's output: (name asked for,
/// the loader's words).
fn failures(name: &str, stdout: &str) -> BTreeSet<(String, String)> {
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        1,
        "{name}: only libfine.so.1 opens\n{stdout}"
    );
    let (absent, refused): (Vec<_>, Vec<_>) = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .filter_map(|e| e.split_once(": "))
        .map(|(o, why)| (o.to_string(), why.to_string()))
        .partition(|(_, why)| why.starts_with("cannot open shared object file"));
    assert_eq!(
        absent.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(),
        ["libabsent.so.1"],
        "{name}: {stdout}"
    );
    refused.into_iter().collect()
}

/// `closure`'s warnings of `dlopen`s that fail, of objects `by` loads at
/// run time: (file name, the loader's words).
fn warned(run: &ClosureRun, by: &str) -> BTreeSet<(String, String)> {
    let by = format!(" (loaded at run time by {by}): ");
    run.warnings()
        .filter_map(|w| w.strip_suffix(": that dlopen fails"))
        .filter_map(|w| {
            let (object, rest) = w.split_once(&by)?;
            let file = object.rsplit('/').next()?;
            Some((file.to_string(), rest.to_string()))
        })
        .collect()
}

fn check(name: &str, r: &TestRoot) {
    build(r);

    // A PIE or an executable found for a DT_NEEDED name: the loader stops
    // at it.
    for (prog, first, lib, why) in [
        ("/app/bin/needspie", "/app/pie/libpie.so", "libpie.so", PIE),
        (
            "/app/self/needself",
            "/app/self/libself.so",
            "libself.so",
            PIE,
        ),
        ("/app/bin/needsexe", "/app/exe/libexe.so", "libexe.so", EXEC),
        (
            "/app/bin/needsother",
            "/app/bin/other",
            "/app/bin/other",
            PIE,
        ),
    ] {
        let out = r.run_in_root(&[], &[prog]);
        assert!(
            out.status == 127 && out.stderr.contains(&format!("{lib}: {why}")),
            "{name}: the loader ran {prog} ({}):\n{}",
            out.status,
            out.stderr
        );
        // Traced, the loader lists nothing, and neither does `--format ldd`.
        let trace = loader_trace(r, prog, &[]);
        assert!(trace.stdout.trim().is_empty(), "{name}: {}", trace.stdout);
        refused_alike(name, r, prog, &trace, (first, why));
    }

    // The same dependencies of libraries given as roots: `ld.so --list`
    // stops as the program's start does, whatever process would load them.
    for (root, first, lib, why) in [
        (
            "/app/lib/libneedspie.so.1",
            "/app/pie/libpie.so",
            "libpie.so",
            PIE,
        ),
        (
            "/app/lib/libneedsexe.so.1",
            "/app/exe/libexe.so",
            "libexe.so",
            EXEC,
        ),
    ] {
        let trace = loader_list(r, root, &[]);
        assert!(
            trace.status == 127
                && trace.stdout.trim().is_empty()
                && trace.stderr.contains(&format!("{lib}: {why}")),
            "{name}: the loader listed {root} ({}):\n{}{}",
            trace.status,
            trace.stdout,
            trace.stderr
        );
        refused_alike(name, r, root, &trace, (first, why));
    }

    // Both programs as roots: the one loaded as a library by the other is
    // refused there, and still starts, and lists its objects, itself.
    let out = r.run_in_root(&[], &["/app/bin/other"]);
    assert_eq!(out.status, 0, "{name}: {}", out.stderr);
    let trace = loader_trace(r, "/app/bin/other", &[]);
    let mut lines = closure_ldd_lines(r.path(), &["/app/bin/needsother", "/app/bin/other"], &[]);
    assert_eq!(
        (
            lines.remove("/app/bin/other").unwrap_or_default(),
            lines.remove("/app/bin/needsother").unwrap_or_default()
        ),
        (ldd_lines(&trace.stdout), Vec::new()),
        "{name}: the loader's lines for /app/bin/other:\n{}",
        trace.stdout
    );

    // `-z nodlopen` at start-up: the program runs, and closure says nothing.
    let out = r.run_in_root(&[], &["/app/bin/needsnod"]);
    assert_eq!(out.status, 0, "{name}: {}", out.stderr);
    let run = run_closure_with_run_time(r.path(), "/app/bin/needsnod", &[]);
    assert!(
        run.status == 0 && !run.warnings().any(|w| w.contains("libnod")),
        "{name}: {}",
        run.dump()
    );

    // The dlopens: the loader's failures, object and words, against
    // closure's warnings about what the program loads at run time (the
    // loader names the object by the name asked for, here its file name;
    // closure by its path).
    let mut argv = vec!["/app/bin/opener"];
    argv.extend(OPENED);
    let out = r.run_in_root(&[], &argv);
    assert_eq!(out.status, 0, "{name}: {}", out.stderr);
    let failed = failures(name, &out.stdout);
    let run = run_closure_with_run_time(r.path(), "/app/bin/opener", &[]);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    assert_eq!(
        warned(&run, "/app/bin/opener"),
        failed,
        "{name}: {}",
        run.dump()
    );
    assert_eq!(failed.len(), 4, "{name}: {failed:?}");
    // `--verbose` replays the dlopens after the start-up, in order, each
    // with its search and then its dependencies', as the loader's
    // `LD_DEBUG=libs` log of the running program shows them.
    let log = r.run_in_root(&[("LD_DEBUG", "libs")], &argv);
    let verbose = run_closure_with_run_time(r.path(), "/app/bin/opener", &["--verbose"]);
    let (ours, theirs) = compared_logs(&verbose.stderr, &log.stderr, r.path());
    assert_eq!(
        ours, theirs,
        "{name}: `closure --verbose` (left) searches otherwise than the running program's \
         LD_DEBUG=libs (right)\n{}\n{}",
        log.stderr, verbose.stderr
    );
    assert!(
        ["libnod2.so.1", "libabsent.so.1"]
            .iter()
            .all(|n| ours.iter().any(|f| f.name == *n)),
        "{name}: {ours:?}"
    );
    assert!(
        run.warnings()
            .any(|w| w.starts_with("/app/bin/opener: libabsent.so.1 not found")),
        "{name}: {}",
        run.dump()
    );

    // One dlopen after another: the second name is the library the first
    // brought in, not the file the program's search would find; the same
    // names as strings of read-only data, for `--dlopen-strings`, too.
    let argv2 = ["/app/bin/opener2", "libfirst.so.1", "libshared.so.1"];
    one_after_another(name, r, &argv2, &["--verbose"]);
    let args = ["--verbose", "--dlopen-strings"];
    one_after_another(name, r, &["/app/bin/opener3"], &args);

    // The same opened by a library given as a root (in whatever process
    // loads it).
    let out = r.run_in_root(&[], &["/app/bin/loadsopener"]);
    assert_eq!(out.status, 0, "{name}: {}", out.stderr);
    assert_eq!(
        failures(name, &out.stdout),
        failed,
        "{name}: {}",
        out.stdout
    );
    let lib = "/app/lib/libopens.so.1";
    let run = run_closure_with_run_time(r.path(), lib, &[]);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    assert_eq!(warned(&run, lib), failed, "{name}: {}", run.dump());
}

/// Runs `argv` (a program opening `libfirst.so.1`, then `libshared.so.1`)
/// and checks `closure` with `args`: the `libshared.so.1` the first one
/// brought in, and the running program's searches.
fn one_after_another(name: &str, r: &TestRoot, argv: &[&str], args: &[&str]) {
    let log = r.run_in_root(&[("LD_DEBUG", "libs")], argv);
    assert_eq!(
        log.stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        2,
        "{name}: {}{}",
        log.stdout,
        log.stderr
    );
    let run = run_closure_with_run_time(r.path(), argv[0], args);
    let loaded = run.loaded();
    assert!(
        loaded.contains("/app/x/libshared.so.1") && !loaded.contains("/app/y/libshared.so.1"),
        "{name}: {}",
        run.dump()
    );
    let (ours, theirs) = compared_logs(&run.stderr, &log.stderr, r.path());
    assert_eq!(ours, theirs, "{name}: {}\n{}", log.stderr, run.stderr);
}

/// `closure --root root` refuses exactly `first` for `why` (exit 1), and
/// its `--format ldd` lines are the loader's (`trace`: none).
fn refused_alike(
    name: &str,
    r: &TestRoot,
    root: &str,
    trace: &LoaderTrace,
    (first, why): (&str, &str),
) {
    assert_same_ldd_lines(name, r, root, trace, &[]);
    let run = run_closure(r.path(), &[root], &[]);
    assert_eq!(
        (run.status, refused(&run)),
        (1, vec![(first, why)]),
        "{name}: {}",
        run.dump()
    );
}

/// The objects `closure` refuses, with its reasons.
fn refused(run: &ClosureRun) -> Vec<(&str, &str)> {
    run.json
        .as_ref()
        .and_then(|j| j["refused"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|x| Some((x["object"].as_str()?, x["reason"].as_str()?)))
        .collect()
}

#[test]
fn loader_refuses_executables_as_libraries_and_nodlopen_objects_in_dlopen() {
    let name = "loader_refuses_executables_as_libraries_and_nodlopen_objects_in_dlopen";
    let Some(o) = Oracle::start(name) else {
        return;
    };
    on_host_and_releases(name, &o, &["bullseye", "trixie", "forky"], check);
}
