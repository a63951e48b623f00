//! Audit modules (`DT_AUDIT`, `DT_DEPAUDIT`) against the real glibc loader.
//!
//! Each module of these scenarios prints, when the loader asks its version
//! (`la_version`), every object of its own namespace (`dl_iterate_phdr`
//! walks the caller's namespace only). The program is traced with
//! `LD_TRACE_LOADED_OBJECTS=1`, under which the loader still loads its
//! audit modules: its list is the program's own namespace, its stderr says
//! which modules loaded what and which it ignored. `closure` must give the
//! same `ldd` lines, the same files in all, the same ignored modules, the
//! same searches in `--verbose` as in the loader's `LD_DEBUG=libs` log
//! (each module's namespace first), and a staged root in which the loader
//! does all of it again. The scenarios run
//! on this machine's glibc and on 2.31 (which ignores both tags), 2.41 and
//! 2.43; programs made set-user-ID check the secure-mode rules.

use std::collections::BTreeSet;

use crate::support::oracle::{
    assert_same_ldd_lines, assert_same_search_log, closure_trace, compile, loader_trace,
    on_host_and_releases, resolve_in_root, trace_in_staged_root, ClosureRun, LoaderTrace, Oracle,
    StagedTrace, TestRoot,
};
use crate::support::setuid::{add_runas, setuid, RUNAS_PATH};

macro_rules! oracle {
    ($name:expr) => {
        match Oracle::start($name) {
            Some(o) => o,
            None => return,
        }
    };
}

/// An audit module that lists its namespace when asked its version.
const AUDIT_LISTER: &str = r#"
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
static int each(struct dl_phdr_info *i, size_t n, void *d) {
    (void)n; (void)d;
    if (i->dlpi_name && i->dlpi_name[0])
        fprintf(stderr, "AUDITNS %s\n", i->dlpi_name);
    return 0;
}
unsigned int la_version(unsigned int v) {
    (void)v;
    dl_iterate_phdr(each, 0);
    return LAV_CURRENT;
}
"#;

/// Builds an audit module at `path` linked against the in-root `libs`.
fn module(r: &TestRoot, path: &str, libs: &[&str]) {
    module_with(r, path, libs, "");
}

/// [`module`] with more C source.
fn module_with(r: &TestRoot, path: &str, libs: &[&str], more: &str) {
    module_built(r, path, libs, more, &[]);
}

/// [`module`] with more linker arguments.
fn module_with_args(r: &TestRoot, path: &str, libs: &[&str], extra: &[&str]) {
    module_built(r, path, libs, "", extra);
}

/// [`module`] with more C source and more arguments.
fn module_built(r: &TestRoot, path: &str, libs: &[&str], more: &str, extra: &[&str]) {
    let mut args: Vec<String> = ["-shared", "-fPIC", "-Wl,--no-as-needed"]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect();
    for lib in libs {
        let host = r.host(lib);
        args.push(format!("-L{}", host.parent().unwrap().display()));
        args.push(format!(
            "-l:{}",
            host.file_name().unwrap().to_string_lossy()
        ));
    }
    compile(r, path, &format!("{AUDIT_LISTER}{more}"), &args);
}

/// The objects the loader's audit modules listed (`AUDITNS` lines).
fn audit_namespaces(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("AUDITNS "))
        .map(str::to_string)
        .collect()
}

/// The names of the modules the loader ignored, from its messages
/// ("ERROR: ld.so: object 'X' cannot be loaded as audit interface: …").
fn loader_ignored(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("ERROR: ld.so: object '"))
        .filter_map(|l| l.split_once("' cannot be loaded as audit interface"))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The names of the modules `closure` says the loader ignores.
fn closure_ignored(run: &ClosureRun) -> BTreeSet<String> {
    run.warnings()
        .filter(|w| w.contains(" cannot be loaded as audit interface"))
        .filter_map(|w| w.strip_prefix("object '"))
        .filter_map(|w| w.split_once("' from "))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The files behind in-root paths, as host paths (the loader names `ld.so`
/// by its own path in every namespace; `closure` by the path the
/// namespace's search found).
fn files(r: &TestRoot, paths: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    paths
        .into_iter()
        .map(|p| resolve_in_root(r.path(), &p).display().to_string())
        .collect()
}

/// Everything the scenario compares for one program, the loader given
/// `LD_AUDIT` `ld_audit` and `closure` the same as `--ld-audit`.
fn compare(
    name: &str,
    r: &TestRoot,
    prog: &str,
    ld_audit: Option<&str>,
) -> (LoaderTrace, ClosureRun) {
    let env: Vec<(&str, &str)> = ld_audit.map(|a| ("LD_AUDIT", a)).into_iter().collect();
    let flag = ld_audit.map(|a| format!("--ld-audit={a}"));
    let args: Vec<&str> = flag.as_deref().into_iter().collect();
    let trace = loader_trace(r, prog, &env);
    assert_eq!(
        trace.status, 0,
        "{name}: the loader failed: {}",
        trace.stderr
    );
    let run = closure_trace(r, prog, &args);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    assert_same_ldd_lines(name, r, prog, &trace, &args);
    // `--verbose` tries the files the loader's `LD_DEBUG=libs` log says
    // it tries, in its order: each module's namespace first.
    assert_same_search_log(name, r, prog, &env, &args);
    let loader_all = files(
        r,
        trace
            .loaded
            .iter()
            .cloned()
            .chain(audit_namespaces(&trace.stderr)),
    );
    let closure_all = files(r, run.loaded());
    assert_eq!(
        closure_all,
        loader_all,
        "{name}: the files of all namespaces differ (left closure, right the loader)\n{}\n{}",
        trace.stderr,
        run.dump()
    );
    assert_eq!(
        closure_ignored(&run),
        loader_ignored(&trace.stderr),
        "{name}: ignored modules differ (left closure, right the loader)\n{}",
        trace.stderr
    );
    let staged = trace_in_staged_root(name, r, prog, &env, &args, false);
    staged_root_audits_the_same(name, &staged, &trace);
    (trace, run)
}

/// The loader's trace in the staged root against its trace in the
/// sysroot: the same list, the same namespaces listed, the same modules
/// ignored.
fn staged_root_audits_the_same(name: &str, staged: &StagedTrace, trace: &LoaderTrace) {
    let (status, stdout, stderr) = (&staged.status, &staged.stdout, &staged.stderr);
    assert!(status.success(), "{name}: in the staged root: {stderr}");
    let inside = crate::support::oracle::parse_trace(stdout);
    assert_eq!(inside.pairs, trace.pairs, "{name}: staged root's list");
    assert_eq!(
        audit_namespaces(stderr),
        audit_namespaces(&trace.stderr),
        "{name}: staged root's audit namespaces\n{stderr}"
    );
    assert_eq!(
        loader_ignored(stderr),
        loader_ignored(&trace.stderr),
        "{name}: staged root's ignored modules\n{stderr}"
    );
}

/// Modules by name through the program's RPATH, by path, by `$ORIGIN`,
/// through its RUNPATH; a dependency found only through the program's
/// RPATH (every namespace's searches see it) and one the program's RUNPATH
/// does not give (RUNPATH is its own objects' only); a module that is not
/// there and one without `la_version`; and the scenarios below.
fn audit_modules_match(name: &str, r: &TestRoot) {
    r.lib("/opt/dep/libdep.so.1", "libdep.so.1").build();
    module(r, "/opt/aud/libaudls.so", &["/opt/dep/libdep.so.1"]);
    module(r, "/opt/aud2/libaud2.so", &[]);
    module(r, "/app/aud/libaudo.so", &[]);
    r.lib("/opt/aud/libnola.so", "libnola.so").build();
    r.ldconfig();
    let a = "/app/bin/a";
    r.exe(a)
        .rpath("/opt/aud:/opt/dep")
        .arg("-Wl,--audit=libaudls.so:libnone.so:libnola.so")
        .arg("-Wl,--depaudit=/opt/aud2/libaud2.so")
        .build();
    let (trace, run) = compare(&format!("{name} a"), r, a, None);
    // The scenario is what it says: on loaders that read the tags the
    // RPATH-found dependency is in a namespace of its own.
    if !audit_namespaces(&trace.stderr).is_empty() {
        let found: BTreeSet<String> = run.loaded();
        assert!(found.contains("/opt/dep/libdep.so.1"), "{name}: {found:?}");
        assert!(
            loader_ignored(&trace.stderr).contains("libnola.so"),
            "{name}: {}",
            trace.stderr
        );
    }
    let b = "/app/bin/b";
    r.exe(b)
        .runpath("/opt/aud")
        .arg("-Wl,--audit=libaudls.so")
        .build();
    compare(&format!("{name} b"), r, b, None);
    let c = "/app/bin/c";
    r.exe(c)
        .arg("-Wl,--audit=$ORIGIN/../aud/libaudo.so")
        .build();
    compare(&format!("{name} c"), r, c, None);
    // A simulated LD_AUDIT (every release reads it), before the program's
    // own: names of 254 and 255 bytes (the loader skips the second).
    let long = |n: usize| format!("lib{}.so", "l".repeat(n - 6));
    for n in [254, 255] {
        r.copy("/opt/aud2/libaud2.so", &format!("/opt/aud/{}", long(n)));
    }
    let d = "/app/bin/d";
    r.exe(d)
        .rpath("/opt/aud:/opt/dep")
        .arg("-Wl,--audit=/opt/aud2/libaud2.so")
        .build();
    let list = format!("libaudls.so::{}:{}:libnone.so", long(254), long(255));
    compare(&format!("{name} d"), r, d, Some(&list));
    // A module whose namespace lacks a symbol version it requires: the
    // loader ignores it.
    let script = r.host("/opt/ver/v.map");
    let libver = |version: &str| {
        r.write(
            "/opt/ver/v.map",
            format!("{version} {{ global: verf; }};\n"),
        );
        compile(
            r,
            "/opt/ver/libver.so.1",
            "int verf(void) { return 2; }\n",
            &[
                "-shared".into(),
                "-fPIC".into(),
                "-Wl,-soname,libver.so.1".into(),
                format!("-Wl,--version-script={}", script.display()),
            ],
        );
    };
    libver("VER_2");
    module_with(
        r,
        "/opt/aud/libaudv.so",
        &["/opt/ver/libver.so.1"],
        "extern int verf(void);\nint uses_verf(void) { return verf(); }\n",
    );
    libver("VER_1");
    let e = "/app/bin/e";
    r.exe(e)
        .rpath("/opt/aud:/opt/ver:/app/aud")
        .arg("-Wl,--audit=libaudv.so:libaudo.so")
        .build();
    let (trace, _) = compare(&format!("{name} e"), r, e, None);
    // A module the ld.so.cache names (in a default directory), and one in
    // a directory only the cache knows.
    module(r, "/usr/lib/x86_64-linux-gnu/libaudc.so", &[]);
    module(r, "/opt/conf/libaudk.so", &[]);
    r.write(
        "/etc/ld.so.conf",
        "include /etc/ld.so.conf.d/*.conf\n/opt/conf\n",
    );
    r.ldconfig();
    let f = "/app/bin/f";
    r.exe(f).arg("-Wl,--audit=libaudc.so:libaudk.so").build();
    compare(&format!("{name} f"), r, f, None);
    // Modules the loader opens and then refuses, as `dlopen` does: linked
    // with `-z nodlopen`, needing a library that is, a PIE and a
    // fixed-address executable that export `la_version`; then one it keeps.
    module_with_args(r, "/opt/flg/libaudnod.so", &[], &["-Wl,-z,nodlopen"]);
    r.lib("/opt/flg/libnodep.so.1", "libnodep.so.1")
        .arg("-Wl,-z,nodlopen")
        .build();
    module(r, "/opt/flg/libauddep.so", &["/opt/flg/libnodep.so.1"]);
    for (path, how) in [
        ("/opt/flg/libaudpie.so", "-pie"),
        ("/opt/flg/libaudexe.so", "-no-pie"),
    ] {
        compile(
            r,
            path,
            &format!("{AUDIT_LISTER}int main(void) {{ return 0; }}\n"),
            &[how.into(), "-rdynamic".into()],
        );
    }
    let g = "/app/bin/g";
    r.exe(g).rpath("/opt/flg:/opt/aud2").build();
    let (g_trace, g_run) = compare(
        &format!("{name} g"),
        r,
        g,
        Some("libaudnod.so:libauddep.so:libaudpie.so:libaudexe.so:libaud2.so"),
    );
    let said = |w: &str| {
        let (module, why) = w.split_once(" cannot be loaded as audit interface: ")?;
        let module = module.split('\'').nth(1)?;
        Some((
            module.to_string(),
            why.strip_suffix("; ignored")?.to_string(),
        ))
    };
    let loader: BTreeSet<(String, String)> = g_trace
        .stderr
        .lines()
        .filter_map(|l| said(l.strip_suffix('.')?))
        .collect();
    let ours: Vec<(String, String)> = g_run.warnings().filter_map(said).collect();
    assert_eq!(loader.len(), 4, "{name} g: {}", g_trace.stderr);
    for (module, why) in &loader {
        // The loader gives its words; `closure` names a dependency too.
        assert!(
            ours.iter()
                .any(|(m, w)| m == module && w.ends_with(why.as_str())),
            "{name} g: {module}: {why}\n{}",
            g_run.dump()
        );
    }
    // Modules needing an executable stack, as the module and as a
    // dependency: glibc 2.41 and later refuse them in a program whose own
    // stack is not executable (the program's libraries are loaded after
    // the modules), and load them in one whose is.
    module_with_args(r, "/opt/stk/libaudstk.so", &[], &["-Wl,-z,execstack"]);
    r.lib("/opt/stk/libstk.so.1", "libstk.so.1")
        .arg("-Wl,-z,execstack")
        .build();
    module(r, "/opt/stk/libaudsdep.so", &["/opt/stk/libstk.so.1"]);
    for (h, flags) in [
        ("/app/bin/h1", "-Wl,-z,noexecstack"),
        ("/app/bin/h2", "-Wl,-z,execstack"),
    ] {
        r.exe(h).rpath("/opt/stk:/opt/aud2").arg(flags).build();
        let (h_trace, h_run) = compare(
            &format!("{name} {h}"),
            r,
            h,
            Some("libaudstk.so:libaudsdep.so:libaud2.so"),
        );
        let refused = h == "/app/bin/h1" && r.glibc_minor() >= 41;
        assert_eq!(
            loader_ignored(&h_trace.stderr).len(),
            if refused { 2 } else { 0 },
            "{name} {h}: {}",
            h_trace.stderr
        );
        assert!(
            !refused
                || h_run
                    .warnings()
                    .filter(
                        |w| w.contains("cannot enable executable stack as shared object requires")
                    )
                    .count()
                    == 2,
            "{name} {h}: {}",
            h_run.dump()
        );
    }
    // A module's dependency found only through the program's RUNPATH:
    // glibc 2.35 and later search it in an audit module's namespace for a
    // requester without a RUNPATH of its own (bug 28455), so the module
    // loads; 2.31 does not search it and ignores the module. Nor does a
    // module with a RUNPATH of its own find it there.
    r.lib("/opt/rdep/librdep.so.1", "librdep.so.1").build();
    module(r, "/opt/raud/libaudr.so", &["/opt/rdep/librdep.so.1"]);
    module_with_args(
        r,
        "/opt/raud/libaudr2.so",
        &["/opt/rdep/librdep.so.1"],
        &["-Wl,--enable-new-dtags", "-Wl,-rpath,/opt/none"],
    );
    let i = "/app/bin/i";
    r.exe(i).runpath("/opt/raud:/opt/rdep").build();
    let (i_trace, i_run) = compare(&format!("{name} i"), r, i, Some("libaudr.so:libaudr2.so"));
    let mut ignored = BTreeSet::from(["libaudr2.so".to_string()]);
    if r.glibc_minor() < 35 {
        ignored.insert("libaudr.so".into());
    }
    assert_eq!(
        loader_ignored(&i_trace.stderr),
        ignored,
        "{name} i: {}",
        i_trace.stderr
    );
    assert_eq!(
        i_run.loaded().contains("/opt/rdep/librdep.so.1"),
        r.glibc_minor() >= 35,
        "{name} i: {}",
        i_run.dump()
    );
    // The program's RUNPATH is searched there before LD_LIBRARY_PATH, the
    // RUNPATH of a requester's own after it.
    r.lib("/opt/lp/librdep.so.1", "librdep.so.1").build();
    assert_same_search_log(
        &format!("{name} i with LD_LIBRARY_PATH"),
        r,
        i,
        &[
            ("LD_AUDIT", "libaudr.so:libaudr2.so"),
            ("LD_LIBRARY_PATH", "/opt/lp"),
        ],
        &[
            "--ld-audit=libaudr.so:libaudr2.so",
            "--library-path=/opt/lp",
        ],
    );
    if r.glibc_minor() >= 32 {
        assert!(
            loader_ignored(&trace.stderr).contains("libaudv.so"),
            "{name} e: {}",
            trace.stderr
        );
    }
}

#[test]
fn audit_modules_match_the_loader() {
    let name = "audit_modules_match_the_loader";
    let o = oracle!(name);
    on_host_and_releases(
        name,
        &o,
        &["bullseye", "trixie", "forky"],
        audit_modules_match,
    );
}

/// In secure mode glibc skips module names with `/` without a word, and
/// searches a name without one as a preload's: no ld.so.cache, only
/// set-user-ID files. The program lists its link map; its modules list
/// theirs.
fn secure_audit_modules_match(name: &str, r: &TestRoot) {
    add_runas(r);
    module(r, "/opt/aud/libaudp.so", &[]);
    module(r, "/opt/aud/libauds.so", &[]);
    module(r, "/usr/lib/x86_64-linux-gnu/libaudc.so", &[]);
    setuid(r, "/opt/aud/libauds.so");
    r.ldconfig();
    let prog = "/app/bin/s";
    r.exe(prog)
        .source(crate::support::setuid::LISTER)
        .rpath("/opt/aud")
        .arg("-Wl,--audit=/opt/aud/libaudp.so:libaudp.so:libauds.so:libaudc.so")
        .build();
    setuid(r, prog);
    let listed = secure_compare(name, r, prog, None);
    if r.glibc_minor() >= 32 {
        // Only the set-user-ID module by name: not the path, not the
        // plain file in the RPATH directory, not the cache's.
        assert!(listed.contains("/opt/aud/libauds.so"), "{name}: {listed:?}");
        assert!(
            !listed.contains("/opt/aud/libaudp.so"),
            "{name}: {listed:?}"
        );
    }
    // `LD_AUDIT` by the same rules, for a program without the tags.
    let plain = "/app/bin/t";
    r.exe(plain)
        .source(crate::support::setuid::LISTER)
        .rpath("/opt/aud")
        .build();
    setuid(r, plain);
    let listed = secure_compare(
        &format!("{name} LD_AUDIT"),
        r,
        plain,
        Some("libaudp.so:/opt/aud/libauds.so:libauds.so:libaudc.so"),
    );
    assert!(listed.contains("/opt/aud/libauds.so"), "{name}: {listed:?}");
}

/// Runs set-user-ID `prog` (a link-map lister) as uid 1000 with `LD_AUDIT`
/// `ld_audit` and compares with `closure --secure`; also checks that
/// without `--secure` closure answers otherwise. Returns what the modules
/// listed.
fn secure_compare(
    name: &str,
    r: &TestRoot,
    prog: &str,
    ld_audit: Option<&str>,
) -> BTreeSet<String> {
    let env: Vec<(&str, &str)> = ld_audit.map(|a| ("LD_AUDIT", a)).into_iter().collect();
    let flag = ld_audit.map(|a| format!("--ld-audit={a}"));
    let mut args: Vec<&str> = flag.as_deref().into_iter().collect();
    let out = r.run_in_root(&env, &[RUNAS_PATH, prog]);
    assert_eq!(out.status, 0, "{name}: {}", out.stderr);
    let plain = crate::support::oracle::run_closure(r.path(), &[prog], &args);
    args.push("--secure");
    let run = crate::support::oracle::run_closure(r.path(), &[prog], &args);
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    let listed = audit_namespaces(&out.stderr);
    let loader_all = files(
        r,
        out.stdout.lines().map(str::to_string).chain(listed.clone()),
    );
    assert_eq!(
        files(r, run.loaded()),
        loader_all,
        "{name}: files differ (left closure --secure, right the loader)\n{}\n{}",
        out.stderr,
        run.dump()
    );
    assert_eq!(
        closure_ignored(&run),
        loader_ignored(&out.stderr),
        "{name}: ignored modules differ\n{}",
        out.stderr
    );
    if !listed.is_empty() {
        assert_ne!(
            files(r, plain.loaded()),
            loader_all,
            "{name}: without --secure closure should load the other modules"
        );
    }
    listed
}

#[test]
fn secure_audit_modules_match_the_loader() {
    let name = "secure_audit_modules_match_the_loader";
    let o = oracle!(name);
    on_host_and_releases(
        name,
        &o,
        &["bullseye", "trixie", "forky"],
        secure_audit_modules_match,
    );
}
