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
//! fails, with its words.

use std::collections::BTreeSet;

use crate::support::oracle::{
    assert_same_ldd_lines, dlopen_note_c, loader_trace, on_host_and_releases, run_closure,
    run_closure_with_run_time, Oracle, TestRoot,
};

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

/// What the opener opens, by name (its RUNPATH finds them).
const OPENED: [&str; 5] = [
    "libnod.so.1",
    "libuser.so.1",
    "libpie.so",
    "libexe.so",
    "libfine.so.1",
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
}

fn check(name: &str, r: &TestRoot) {
    build(r);

    // A PIE or an executable found for a DT_NEEDED name: the loader stops
    // at it.
    for (prog, first, lib, why) in [
        (
            "/app/bin/needspie",
            "/app/pie/libpie.so",
            "libpie.so",
            "cannot dynamically load position-independent executable",
        ),
        (
            "/app/self/needself",
            "/app/self/libself.so",
            "libself.so",
            "cannot dynamically load position-independent executable",
        ),
        (
            "/app/bin/needsexe",
            "/app/exe/libexe.so",
            "libexe.so",
            "cannot dynamically load executable",
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
        assert_same_ldd_lines(name, r, prog, &trace, &[]);
        let run = run_closure(r.path(), &[prog], &[]);
        let refused: Vec<(&str, &str)> = run
            .json
            .as_ref()
            .and_then(|j| j["refused"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|x| Some((x["object"].as_str()?, x["reason"].as_str()?)))
            .collect();
        assert_eq!(
            (run.status, refused),
            (1, vec![(first, why)]),
            "{name}: {}",
            run.dump()
        );
    }

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
    let failed: BTreeSet<(String, String)> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .filter_map(|e| e.split_once(": "))
        .map(|(o, why)| (o.to_string(), why.to_string()))
        .collect();
    assert_eq!(
        out.stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        1,
        "{name}: only libfine.so.1 opens\n{}",
        out.stdout
    );
    let run = run_closure_with_run_time(r.path(), "/app/bin/opener", &[]);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    let warned: BTreeSet<(String, String)> = run
        .warnings()
        .filter_map(|w| w.strip_suffix(": that dlopen fails"))
        .filter_map(|w| {
            let (object, rest) = w.split_once(" (loaded at run time by /app/bin/opener): ")?;
            let file = object.rsplit('/').next()?;
            Some((file.to_string(), rest.to_string()))
        })
        .collect();
    assert_eq!(warned, failed, "{name}: {}", run.dump());
    assert_eq!(failed.len(), 4, "{name}: {failed:?}");
}

#[test]
fn loader_refuses_executables_as_libraries_and_nodlopen_objects_in_dlopen() {
    let name = "loader_refuses_executables_as_libraries_and_nodlopen_objects_in_dlopen";
    let Some(o) = Oracle::start(name) else {
        return;
    };
    on_host_and_releases(name, &o, &["bullseye", "trixie", "forky"], check);
}
