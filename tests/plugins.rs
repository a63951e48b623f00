//! Included libraries as plugins one process loads, against the real glibc
//! loader.
//!
//! A launcher opens a core library by path, then a plugin that needs the
//! core by SONAME, which the plugin's own search (`$ORIGIN`, the default
//! directories) never finds: glibc answers the name with the object already
//! loaded, as the JDK's `libjava.so` gets `libjvm.so`. `closure --include`
//! of the plugin directory must give the files the process maps (the
//! launcher lists them with `dl_iterate_phdr`), warn that the name is only
//! answered once the core is loaded (the loader refuses the plugin when it
//! comes first), keep a name no included library has missing, leave a
//! program that needs the core at start-up without it (as the loader does),
//! and stage a root in which the launcher maps the same files. A program's
//! start-up objects answer its plugins' names before their own search
//! (which here finds another file of that SONAME), also a name a plugin
//! opens with `dlopen` (declared in its `.note.dlopen`), and a plugin without a
//! RUNPATH searches the program's RPATH (one with a RUNPATH does not). A
//! plugin whose `dlopen` fails (a `-z nodlopen` library it brings in, an
//! executable stack from glibc 2.41) is warned of, one needing a `-z
//! nodlopen` library the program loaded at start-up is not.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::chroot::run_in_root_at;
use crate::support::oracle::{
    closure_bin, dlopen_note_c, loader_trace, on_host_and_releases, resolve_in_root, run_closure,
    run_closure_with_run_time, ClosureRun, Oracle, TestRoot,
};

/// Opens each argument by path (`RTLD_NOW | RTLD_GLOBAL`), saying whether
/// it could, then lists every object mapped.
const LAUNCHER: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
static int each(struct dl_phdr_info *i, size_t n, void *d) {
    (void)n; (void)d;
    if (i->dlpi_name && i->dlpi_name[0] == '/') printf("MAPPED %s\n", i->dlpi_name);
    return 0;
}
int main(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        if (dlopen(argv[k], RTLD_NOW | RTLD_GLOBAL)) printf("OK %s\n", argv[k]);
        else printf("FAIL %s\n", dlerror());
    }
    dl_iterate_phdr(each, 0);
    return 0;
}
"#;

const LAUNCHER_PATH: &str = "/app/bin/launcher";
const CORE: &str = "/app/plug/core/libcore.so.1";
const PLUGIN: &str = "/app/plug/libplug.so";

/// The scenario's root: the core in a subdirectory of the plugins', a
/// plugin that needs it and a helper next to it (found through `$ORIGIN`),
/// a program that needs the core at start-up, and a library needing a
/// name nothing has.
fn build(r: &TestRoot) {
    r.exe(LAUNCHER_PATH).source(LAUNCHER).build();
    r.lib(CORE, "libcore.so.1").build();
    r.lib("/app/plug/libhelp.so", "libhelp.so").build();
    r.lib(PLUGIN, "libplug.so")
        .needs(&[CORE, "/app/plug/libhelp.so"])
        .runpath("$ORIGIN")
        .build();
    r.exe("/app/bin/direct").needs(&[CORE]).build();
    r.lib("/app/other/libother.so", "libother.so")
        .needs_names(&["libabsent.so.1"])
        .build();
    // A program whose own library only its RUNPATH finds, and a plugin of
    // its that needs that library by SONAME.
    r.lib(APP_LIB, "libapp.so.1").build();
    r.exe(HOST_APP)
        .source(LAUNCHER)
        .needs(&[APP_LIB])
        .runpath("$ORIGIN/../lib")
        .build();
    // The plugin's own search finds another file of that SONAME (through
    // its RUNPATH): the loader takes the program's, already loaded.
    r.lib(SHADOW_LIB, "libapp.so.1")
        .needs(&["/app/plug/libhelp.so"])
        .build();
    r.lib(APP_PLUGIN, "libp2.so")
        .needs(&[APP_LIB])
        .runpath("$ORIGIN/../dup")
        .build();
    // A plugin that opens the program's library by name when it is
    // loaded, declared in its `.note.dlopen`: that search too would find
    // the other file.
    r.lib(RUNTIME_PLUGIN, "libp5.so")
        .source(&opens_app())
        .runpath("$ORIGIN/../dup")
        .build();
    // A plugin needing a library linked with `-z nodlopen` (its dlopen
    // fails); a program that needs another such library at start-up (it
    // loads), and a plugin of its that needs that one too (already
    // loaded: no failure).
    r.lib(NODL_LIB, "libnodl.so.1")
        .arg("-Wl,-z,nodlopen")
        .build();
    r.lib(NODL_PLUGIN, "libp6.so")
        .needs(&[NODL_LIB])
        .runpath("$ORIGIN")
        .build();
    r.lib(NOH_LIB, "libnoh.so.1").arg("-Wl,-z,nodlopen").build();
    r.exe(NOH_APP)
        .source(LAUNCHER)
        .needs(&[NOH_LIB])
        .runpath("/app/lib3")
        .build();
    r.lib(NOH_PLUGIN, "libp7.so").needs(&[NOH_LIB]).build();
    // A static PIE among the included files: a program, not a plugin.
    r.exe(STATIC_PIE).arg("-static-pie").build();
    // A plugin that needs an executable stack.
    r.lib(STACK_PLUGIN, "libp8.so")
        .arg("-Wl,-z,execstack")
        .build();
    // A program with a DT_RPATH, and two plugins needing a library only
    // that RPATH finds: one without a RUNPATH (its search tries the
    // program's RPATH last), one with (it does not).
    r.lib(RPATH_LIB, "libonly.so.1").build();
    r.exe(RPATH_APP).source(LAUNCHER).rpath("/app/rp").build();
    r.lib(PLAIN_PLUGIN, "libp3.so")
        .needs_names(&["libonly.so.1"])
        .build();
    r.lib(RUNPATH_PLUGIN, "libp4.so")
        .needs_names(&["libonly.so.1"])
        .runpath("$ORIGIN")
        .build();
}

const SHADOW_LIB: &str = "/app/dup/libapp.so.1";
const NODL_LIB: &str = "/app/plug6/libnodl.so.1";
const NODL_PLUGIN: &str = "/app/plug6/libp6.so";
const NOH_LIB: &str = "/app/lib3/libnoh.so.1";
const NOH_APP: &str = "/app/bin/noh";
const NOH_PLUGIN: &str = "/app/plug7/libp7.so";
const STACK_PLUGIN: &str = "/app/plug8/libp8.so";
const STATIC_PIE: &str = "/app/plug9/spie";
const RUNTIME_PLUGIN: &str = "/app/plug5/libp5.so";

/// A library that opens `libapp.so.1` when it is loaded and says so in a
/// `.note.dlopen`.
fn opens_app() -> String {
    format!(
        "#include <dlfcn.h>\n{}__attribute__((constructor)) static void opens(void) {{ \
         dlopen(\"libapp.so.1\", RTLD_NOW); }}\n",
        dlopen_note_c(r#"[{"soname":["libapp.so.1"],"priority":"required"}]"#)
    )
}
const RPATH_APP: &str = "/app/bin/rpathapp";
const RPATH_LIB: &str = "/app/rp/libonly.so.1";
const PLAIN_PLUGIN: &str = "/app/plug3/libp3.so";
const RUNPATH_PLUGIN: &str = "/app/plug4/libp4.so";

const HOST_APP: &str = "/app/bin/hostapp";
const APP_LIB: &str = "/app/lib/libapp.so.1";
const APP_PLUGIN: &str = "/app/plug2/libp2.so";

/// The host files behind in-root paths.
fn files<'a>(r: &Path, paths: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    paths
        .into_iter()
        .map(|p| resolve_in_root(r, p).display().to_string())
        .collect()
}

/// The `MAPPED` paths and the `OK`/`FAIL` lines of a launcher run.
fn launcher_said(stdout: &str) -> (Vec<&str>, Vec<&str>) {
    let mapped = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("MAPPED "))
        .collect();
    let opened = stdout
        .lines()
        .filter(|l| l.starts_with("OK ") || l.starts_with("FAIL "))
        .collect();
    (mapped, opened)
}

/// Every object `closure` puts in the closure, but `program`, the
/// launcher that ran (it lists no name for itself).
fn closure_files(r: &Path, run: &ClosureRun, program: &str) -> BTreeSet<String> {
    files(
        r,
        run.objects
            .iter()
            .map(|o| o.path.as_str())
            .filter(|p| *p != program),
    )
}

fn check(name: &str, r: &TestRoot) {
    build(r);
    // The loader: core first, then the plugin — both load.
    let out = r.run_in_root(&[], &[LAUNCHER_PATH, CORE, PLUGIN]);
    assert_eq!(out.status, 0, "{name}: launcher: {}", out.stderr);
    let (mapped, opened) = launcher_said(&out.stdout);
    assert_eq!(
        opened,
        [format!("OK {CORE}"), format!("OK {PLUGIN}")],
        "{name}: the loader\n{}",
        out.stdout
    );
    // The plugin first: its search does not find the core.
    let first = r.run_in_root(&[], &[LAUNCHER_PATH, PLUGIN]);
    let (_, refused) = launcher_said(&first.stdout);
    assert!(
        refused.len() == 1
            && refused[0].starts_with("FAIL ")
            && refused[0].contains("libcore.so.1: cannot open shared object file"),
        "{name}: the plugin alone should not load\n{}",
        first.stdout
    );

    // closure: the launcher with the plugin directory included.
    let run = run_closure(r.path(), &[LAUNCHER_PATH], &["--include", "/app/plug"]);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    assert!(run.missing.is_empty(), "{name}: {}", run.dump());
    assert_eq!(
        closure_files(r.path(), &run, LAUNCHER_PATH),
        files(r.path(), mapped.iter().copied()),
        "{name}: closure's files against those the process maps\n{}",
        run.dump()
    );
    let core = run
        .objects
        .iter()
        .find(|o| o.path == CORE)
        .expect("the core");
    assert!(
        core.needed_by.iter().any(|n| n == PLUGIN),
        "{name}: {core:?}"
    );
    assert!(
        run.warnings()
            .any(|w| w.starts_with("libcore.so.1: no search finds it") && w.contains(CORE)),
        "{name}: no warning that the core must be loaded first\n{}",
        run.dump()
    );
    // `--verbose`: the plugin's search for the core, then what answered it.
    let log = verbose_log(r, &[LAUNCHER_PATH], &["--include", "/app/plug"]);
    let answered = format!("    => {CORE} [loaded: by SONAME, when the process has loaded it]");
    let found = log
        .lines()
        .skip_while(|l| *l != format!("  find library=libcore.so.1; needed by {PLUGIN}"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect::<Vec<_>>();
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("    search path=/app/plug "))
            && found.last() == Some(&answered.as_str()),
        "{name}: --verbose\n{log}"
    );

    // A name no included library has stays missing.
    let run = run_closure(
        r.path(),
        &[LAUNCHER_PATH],
        &["--include", "/app/plug", "--include", "/app/other"],
    );
    assert_eq!(run.status, 1, "{name}: {}", run.dump());
    let missing: BTreeSet<&str> = run.missing.iter().map(|m| m.soname.as_str()).collect();
    assert_eq!(missing, BTreeSet::from(["libabsent.so.1"]), "{name}");

    // A program loads what it needs at start-up, before anything else: the
    // loader does not find the core for it, and neither does closure.
    let trace = loader_trace(r, "/app/bin/direct", &[]);
    assert!(
        trace.not_found.iter().any(|n| n == "libcore.so.1"),
        "{name}: {}",
        trace.dump()
    );
    let run = run_closure(r.path(), &["/app/bin/direct"], &["--include", "/app/plug"]);
    assert!(
        run.missing
            .iter()
            .any(|m| m.soname == "libcore.so.1"
                && m.needed_by.iter().any(|n| n == "/app/bin/direct")),
        "{name}: {}",
        run.dump()
    );

    // A plugin that needs the program's own library: the program loaded
    // it at start-up, so the plugin loads, with the program's file, not
    // the one its own search finds; and `closure` takes the name from what
    // the program loads (with the library's directory included too, the
    // same).
    let out = r.run_in_root(&[], &[HOST_APP, APP_PLUGIN]);
    let (app_mapped, opened) = launcher_said(&out.stdout);
    assert_eq!(
        opened,
        [format!("OK {APP_PLUGIN}")],
        "{name}\n{}",
        out.stdout
    );
    let shadow = resolve_in_root(r.path(), SHADOW_LIB).display().to_string();
    assert!(
        !files(r.path(), app_mapped.iter().copied()).contains(&shadow),
        "{name}: the loader took the plugin's own find\n{}",
        out.stdout
    );
    for extra in [&[][..], &["--include", "/app/lib"][..]] {
        let mut args = vec!["--include", "/app/plug2"];
        args.extend_from_slice(extra);
        let run = run_closure(r.path(), &[HOST_APP], &args);
        assert_eq!(run.status, 0, "{name}: {}", run.dump());
        let got = closure_files(r.path(), &run, HOST_APP);
        assert_eq!(
            got,
            files(r.path(), app_mapped.iter().copied()),
            "{name}: {}",
            run.dump()
        );
        assert!(
            !run.warnings().any(|w| w.starts_with("libapp.so.1")),
            "{name}: {}",
            run.dump()
        );
    }
    // `--verbose`: no search, the program's object.
    let log = verbose_log(r, &[HOST_APP], &["--include", "/app/plug2"]);
    let answer = log
        .lines()
        .skip_while(|l| *l != format!("  find library=libapp.so.1; needed by {APP_PLUGIN}"))
        .nth(1);
    assert_eq!(
        answer,
        // The path the program's RUNPATH opened it by.
        Some(
            format!(
                "    => already loaded as /app/bin/../lib/libapp.so.1 (by {HOST_APP} at start-up)"
            )
            .as_str()
        ),
        "{name}: --verbose\n{log}"
    );

    // The same name opened at run time by a plugin: the program's file.
    let out = r.run_in_root(&[], &[HOST_APP, RUNTIME_PLUGIN]);
    let (runtime_mapped, opened) = launcher_said(&out.stdout);
    assert_eq!(
        opened,
        [format!("OK {RUNTIME_PLUGIN}")],
        "{name}\n{}",
        out.stdout
    );
    assert!(
        files(r.path(), runtime_mapped.iter().copied())
            .contains(&resolve_in_root(r.path(), APP_LIB).display().to_string())
            && !files(r.path(), runtime_mapped.iter().copied()).contains(&shadow),
        "{name}: the loader\n{}",
        out.stdout
    );
    // (With run-time loads: `run_closure` leaves them out.)
    let run = run_closure_with_run_time(r.path(), HOST_APP, &["--include", RUNTIME_PLUGIN]);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    let got = closure_files(r.path(), &run, HOST_APP);
    assert_eq!(
        got,
        files(r.path(), runtime_mapped.iter().copied()),
        "{name}: {}",
        run.dump()
    );

    // `-z nodlopen`: the plugin that brings such a library in fails to
    // load, and closure warns of it (the loader names the library by the
    // name asked for); one whose such library the program loaded at
    // start-up loads, included itself or not, and closure says nothing.
    let out = r.run_in_root(&[], &[HOST_APP, NODL_PLUGIN]);
    let (_, opened) = launcher_said(&out.stdout);
    assert_eq!(
        opened,
        ["FAIL libnodl.so.1: shared object cannot be dlopen()ed"],
        "{name}\n{}",
        out.stdout
    );
    let run = run_closure(r.path(), &[HOST_APP], &["--include", NODL_PLUGIN]);
    let failed: Vec<&str> = run.warnings().filter(|w| w.contains("dlopen")).collect();
    assert_eq!(
        failed,
        [format!(
            "{NODL_LIB} (loaded with the plugin {NODL_PLUGIN}): shared object cannot be \
             dlopen()ed: that dlopen fails"
        )],
        "{name}: {}",
        run.dump()
    );
    let out = r.run_in_root(&[], &[NOH_APP, NOH_PLUGIN, NOH_LIB]);
    let (_, opened) = launcher_said(&out.stdout);
    assert_eq!(
        opened,
        [format!("OK {NOH_PLUGIN}"), format!("OK {NOH_LIB}")],
        "{name}\n{}",
        out.stdout
    );
    let run = run_closure(
        r.path(),
        &[NOH_APP],
        &["--include", NOH_PLUGIN, "--include", "/app/lib3"],
    );
    assert!(
        run.status == 0 && !run.warnings().any(|w| w.contains("dlopen")),
        "{name}: {}",
        run.dump()
    );

    // A plugin needing an executable stack: glibc 2.41 and later refuse it
    // in a program whose stack is not executable, and closure warns then.
    let out = r.run_in_root(&[], &[HOST_APP, STACK_PLUGIN]);
    let (_, opened) = launcher_said(&out.stdout);
    let refused = r.glibc_minor() >= 41;
    // (The loader adds the errno's words: ": Invalid argument".)
    let words =
        format!("FAIL {STACK_PLUGIN}: cannot enable executable stack as shared object requires");
    assert!(
        opened.len() == 1
            && if refused {
                opened[0].starts_with(&words)
            } else {
                opened[0] == format!("OK {STACK_PLUGIN}")
            },
        "{name}\n{}",
        out.stdout
    );
    let run = run_closure(r.path(), &[HOST_APP], &["--include", STACK_PLUGIN]);
    let failed: Vec<&str> = run.warnings().filter(|w| w.contains("dlopen")).collect();
    let expected: Vec<String> = refused
        .then(|| {
            format!(
                "{STACK_PLUGIN} (a plugin): cannot enable executable stack as shared object \
                 requires: its dlopen fails"
            )
        })
        .into_iter()
        .collect();
    assert_eq!(failed, expected, "{name}: {}", run.dump());

    // An included static PIE has no `PT_INTERP` either, but nothing opens
    // it with `dlopen`: no warning that its dlopen fails.
    let run = run_closure(r.path(), &[HOST_APP], &["--include", "/app/plug9"]);
    assert!(
        run.status == 0 && run.warnings().next().is_none(),
        "{name}: {}",
        run.dump()
    );

    // The program's DT_RPATH: searched for the plugin without a RUNPATH,
    // not for the one with.
    for (plugin, loads) in [(PLAIN_PLUGIN, true), (RUNPATH_PLUGIN, false)] {
        let out = r.run_in_root(&[], &[RPATH_APP, plugin]);
        let (mapped, opened) = launcher_said(&out.stdout);
        assert_eq!(
            opened.len() == 1 && opened[0] == format!("OK {plugin}"),
            loads,
            "{name}: the loader, {plugin}\n{}",
            out.stdout
        );
        let run = run_closure(r.path(), &[RPATH_APP], &["--include", plugin]);
        let missing: Vec<&str> = run.missing.iter().map(|m| m.soname.as_str()).collect();
        if loads {
            assert_eq!(run.status, 0, "{name}: {}", run.dump());
            let got = closure_files(r.path(), &run, RPATH_APP);
            assert_eq!(
                got,
                files(r.path(), mapped.iter().copied()),
                "{name}: {plugin}: {}",
                run.dump()
            );
        } else {
            assert!(
                opened[0].contains("libonly.so.1: cannot open shared object file"),
                "{name}: {}",
                out.stdout
            );
            assert_eq!(
                (run.status, missing),
                (1, vec!["libonly.so.1"]),
                "{name}: {}",
                run.dump()
            );
        }
    }

    // Staged with its plugin, the program maps the same files, and `closure
    // verify` takes the plugin's name from the program there too.
    staged_maps_the_same(
        name,
        r,
        (HOST_APP, "/app/plug2"),
        &[APP_PLUGIN],
        &app_mapped,
        &[],
    );
    // The launcher staged with the plugin directory: the same, and
    // `closure verify` takes the libraries no program loads as plugins.
    staged_maps_the_same(
        name,
        r,
        (LAUNCHER_PATH, "/app/plug"),
        &[CORE, PLUGIN],
        &mapped,
        &["libcore.so.1: no search finds it"],
    );
}

/// `closure --verbose`'s search log for `roots` of `r` with `extra`.
fn verbose_log(r: &TestRoot, roots: &[&str], extra: &[&str]) -> String {
    let mut cmd = std::process::Command::new(closure_bin());
    cmd.arg("--sysroot").arg(r.path());
    for root in roots {
        cmd.args(["--root", root]);
    }
    let out = cmd
        .args(extra)
        .arg("--verbose")
        .output()
        .expect("closure --verbose");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stages `prog` of `r` with `--include dir`, runs it there to open
/// `opens`, which must all open and leave mapped the files `mapped` names
/// (in `r`); `closure verify` of the staged root must pass, warning each
/// of `warned`.
fn staged_maps_the_same(
    name: &str,
    r: &TestRoot,
    (prog, dir): (&str, &str),
    opens: &[&str],
    mapped: &[&str],
    warned: &[&str],
) {
    let tmp = tempfile::tempdir().expect("staging dir");
    let staged = tmp.path().join("root");
    let out = std::process::Command::new(closure_bin())
        .arg("--sysroot")
        .arg(r.path())
        .args(["--root", prog, "--include", dir, "--out"])
        .arg(&staged)
        .output()
        .expect("closure");
    assert!(
        out.status.success(),
        "{name}: staging {prog}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut argv = vec![prog];
    argv.extend_from_slice(opens);
    let (status, stdout, stderr) = run_in_root_at(&staged, "/", &argv, &[]);
    assert!(status.success(), "{name}: staged {prog}: {stderr}");
    let (inside, opened) = launcher_said(&stdout);
    let all: Vec<String> = opens.iter().map(|o| format!("OK {o}")).collect();
    assert_eq!(opened, all, "{name}: staged {prog}\n{stdout}");
    assert_eq!(
        files(&staged, inside.iter().copied()),
        files(&staged, mapped.iter().copied()),
        "{name}: the staged root of {prog} maps other files"
    );
    let out = std::process::Command::new(closure_bin())
        .arg("verify")
        .arg(&staged)
        .output()
        .expect("closure verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warned.iter().all(|w| stderr.contains(w)),
        "{name}: closure verify of the staged root of {prog} ({}):\n{stderr}",
        out.status
    );
}

#[test]
fn included_plugins_take_a_loaded_core_by_soname() {
    let name = "included_plugins_take_a_loaded_core_by_soname";
    let Some(o) = Oracle::start(name) else {
        return;
    };
    on_host_and_releases(name, &o, &["bullseye", "trixie", "forky"], check);
}
