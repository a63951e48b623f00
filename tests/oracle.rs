//! Oracle tests: every scenario builds a small Debian-12-like root, runs the real glibc loader
//! inside it (`LD_TRACE_LOADED_OBJECTS=1`, chroot, private mount namespace) and asserts that
//! `closure --sysroot ROOT --root PROG --format json` reports exactly the same loaded paths and
//! not-found names. Needs root, gcc and patchelf; otherwise each test prints why it skips.
//!
//! `host_sweep_matches_loader` compares closure with the host loader (`ld.so --list`, in its
//! `LD_TRACE_LOADED_OBJECTS=1 ld.so FILE` form) over the host's own
//! /usr/bin, /usr/sbin and /usr/lib/x86_64-linux-gnu. Both also compare `--format ldd` with
//! the loader's lines, in order (`support::oracle::assert_same_ldd_lines`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::oracle::{
    assert_same, assert_same_ldd_lines, check, check_multi, closure_bin, closure_ldd_lines,
    closure_loading_edges, closure_trace, compared_logs, host_debug_log, host_list, ldd_lines,
    loader_list, loader_loading_edges, loader_trace, on_host_and_releases, run_closure,
    staged_root_loads_the_same, sweep_candidates, sweep_compare, LoaderTrace, Oracle,
    SweepMismatch, TestRoot, INTERP, SYSTEM_DIRS,
};

/// Precondition check; returns from the test (after printing why) when the oracle cannot run.
macro_rules! oracle {
    ($name:expr) => {
        match Oracle::start($name) {
            Some(o) => o,
            None => return,
        }
    };
}

const PROG: &str = "/app/bin/prog";

/// A library that must NOT be chosen: it needs `libdecoy.so.9`, which exists nowhere, so a
/// resolver that picks it reports a missing library the real loader does not.
fn decoy(r: &TestRoot, path: &str, soname: &str) {
    r.lib(path, soname).needs_names(&["libdecoy.so.9"]).build();
}

/// An ELF header-sized-plus text file: the loader reads it and fails with "invalid ELF header".
const NOT_ELF: &str = "/* GNU ld script\n   Use the shared library, but some functions are only in\n   the static library.  */\nGROUP ( /usr/lib/libfoo.so.1 )\n";

// ---------------------------------------------------------------------------------------------
// 1–6: search sources
// ---------------------------------------------------------------------------------------------

#[test]
fn s01_plain_program_needs_only_libc() {
    let name = "s01_plain_program_needs_only_libc";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.exe(PROG).build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s02_exe_rpath() {
    let name = "s02_exe_rpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/a/liba.so.1", "liba.so.1").build();
    decoy(&r, "/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1");
    r.exe(PROG)
        .rpath("/opt/a")
        .needs(&["/opt/a/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s03_exe_runpath() {
    let name = "s03_exe_runpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/a/liba.so.1", "liba.so.1").build();
    decoy(&r, "/usr/local/lib/liba.so.1", "liba.so.1");
    r.exe(PROG)
        .runpath("/opt/a")
        .needs(&["/opt/a/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s04_rpath_inherited_by_dependencies() {
    let name = "s04_rpath_inherited_by_dependencies";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/e/libb.so.1", "libb.so.1").build();
    r.lib("/opt/e/liba.so.1", "liba.so.1")
        .needs(&["/opt/e/libb.so.1"])
        .build();
    r.exe(PROG)
        .rpath("/opt/e")
        .needs(&["/opt/e/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s05_runpath_not_inherited() {
    let name = "s05_runpath_not_inherited";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/e/libb.so.1", "libb.so.1").build();
    r.lib("/opt/e/liba.so.1", "liba.so.1")
        .needs(&["/opt/e/libb.so.1"])
        .build();
    r.exe(PROG)
        .runpath("/opt/e")
        .needs(&["/opt/e/liba.so.1"])
        .build();
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(
        trace.not_found.contains("libb.so.1"),
        "oracle: libb should be missing"
    );
}

#[test]
fn s06_rpath_ignored_when_runpath_present() {
    let name = "s06_rpath_ignored_when_runpath_present";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/r/liba.so.1", "liba.so.1").build();
    r.lib("/opt/u/libb.so.1", "libb.so.1").build();
    r.exe(PROG)
        .rpath("/opt/r")
        .runpath("/opt/u")
        .needs(&["/opt/r/liba.so.1", "/opt/u/libb.so.1"])
        .build();
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(
        trace.not_found.contains("liba.so.1"),
        "oracle: RPATH should be ignored"
    );
}

#[test]
fn s06b_library_with_both_tags_breaks_rpath_chain() {
    // liba has both RPATH and RUNPATH: its RPATH is discarded, and because it has a RUNPATH its
    // dependencies do not see the executable's RPATH either.
    let name = "s06b_library_with_both_tags_breaks_rpath_chain";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/r/libb.so.1", "libb.so.1").build();
    r.lib("/opt/e/libc2.so.1", "libc2.so.1").build();
    r.lib("/opt/e/liba.so.1", "liba.so.1")
        .rpath("/opt/r")
        .runpath("/opt/u")
        .needs(&["/opt/r/libb.so.1", "/opt/e/libc2.so.1"])
        .build();
    r.mkdir("/opt/u");
    r.exe(PROG)
        .rpath("/opt/e")
        .needs(&["/opt/e/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s28_rpath_chain_multiple_levels() {
    // libb (no tags) is loaded by liba (RPATH /opt/a), which is loaded by the exe (RPATH
    // /opt/e): libb's libcc is found through the exe's RPATH, before the default dirs.
    let name = "s28_rpath_chain_multiple_levels";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/e/libcc.so.1", "libcc.so.1").build();
    decoy(&r, "/usr/lib/x86_64-linux-gnu/libcc.so.1", "libcc.so.1");
    r.lib("/opt/a/libb.so.1", "libb.so.1")
        .needs(&["/opt/e/libcc.so.1"])
        .build();
    r.lib("/opt/e/liba.so.1", "liba.so.1")
        .rpath("/opt/a")
        .needs(&["/opt/a/libb.so.1"])
        .build();
    r.exe(PROG)
        .rpath("/opt/e")
        .needs(&["/opt/e/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s29_runpath_library_stops_rpath_inheritance() {
    // The loader of libb is liba, which has a RUNPATH: no RPATH is used for libb at all.
    let name = "s29_runpath_library_stops_rpath_inheritance";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/e/libb.so.1", "libb.so.1").build();
    r.mkdir("/opt/a");
    r.lib("/opt/e/liba.so.1", "liba.so.1")
        .runpath("/opt/a")
        .needs(&["/opt/e/libb.so.1"])
        .build();
    r.exe(PROG)
        .rpath("/opt/e")
        .needs(&["/opt/e/liba.so.1"])
        .build();
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(
        trace.not_found.contains("libb.so.1"),
        "oracle: libb should be missing"
    );
}

// ---------------------------------------------------------------------------------------------
// 7–11: dynamic string tokens
// ---------------------------------------------------------------------------------------------

#[test]
fn s07_origin_forms_runpath_and_rpath() {
    // exe RUNPATH $ORIGIN/../lib -> liba (RPATH ${ORIGIN}/../deps) -> libb (RUNPATH ${ORIGIN})
    // -> libcc. Library origins are the unnormalized strings they were opened by.
    let name = "s07_origin_forms_runpath_and_rpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/deps/libcc.so.1", "libcc.so.1").build();
    r.lib("/app/deps/libb.so.1", "libb.so.1")
        .runpath("${ORIGIN}")
        .needs(&["/app/deps/libcc.so.1"])
        .build();
    r.lib("/app/lib/liba.so.1", "liba.so.1")
        .rpath("${ORIGIN}/../deps")
        .needs(&["/app/deps/libb.so.1"])
        .build();
    r.exe(PROG)
        .runpath("$ORIGIN/../lib")
        .needs(&["/app/lib/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s07b_origin_braces_in_exe_rpath() {
    let name = "s07b_origin_braces_in_exe_rpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/sub/libb.so.1", "libb.so.1").build();
    r.lib("/app/lib/liba.so.1", "liba.so.1")
        .runpath("$ORIGIN/sub")
        .needs(&["/app/lib/sub/libb.so.1"])
        .build();
    r.exe(PROG)
        .rpath("${ORIGIN}/../lib")
        .needs(&["/app/lib/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s08_main_via_symlink_origin_is_real_location() {
    let name = "s08_main_via_symlink_origin_is_real_location";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/liba.so.1", "liba.so.1").build();
    r.exe(PROG)
        .runpath("$ORIGIN/../lib")
        .needs(&["/app/lib/liba.so.1"])
        .build();
    r.symlink(PROG, "/usr/bin/prog");
    r.ldconfig();
    check(name, &r, "/usr/bin/prog", &[], &[]);
}

#[test]
fn s08b_main_via_two_symlink_hops() {
    let name = "s08b_main_via_two_symlink_hops";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/liba.so.1", "liba.so.1").build();
    r.exe(PROG)
        .rpath("$ORIGIN/../lib")
        .needs(&["/app/lib/liba.so.1"])
        .build();
    r.symlink("../../app/bin/prog", "/opt/links/tool");
    r.symlink("/opt/links/tool", "/usr/local/bin/tool");
    r.ldconfig();
    check(name, &r, "/usr/local/bin/tool", &[], &[]);
}

#[test]
fn s09_lib_via_symlinked_dir_origin_unresolved() {
    // /app/lib -> /opt/real/lib. liba is opened as /app/lib/liba.so.1, so its $ORIGIN is
    // "/app/lib" and its RUNPATH $ORIGIN/../deps is "/app/lib/../deps", which the kernel resolves
    // to /opt/real/deps (physical ".."), not the lexical /app/deps (a decoy).
    let name = "s09_lib_via_symlinked_dir_origin_unresolved";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/real/deps/libb.so.1", "libb.so.1").build();
    decoy(&r, "/app/deps/libb.so.1", "libb.so.1");
    r.lib("/opt/real/lib/liba.so.1", "liba.so.1")
        .runpath("$ORIGIN/../deps")
        .needs(&["/opt/real/deps/libb.so.1"])
        .build();
    r.symlink("/opt/real/lib", "/app/lib");
    r.exe(PROG)
        .rpath("/app/lib")
        .needs(&["/opt/real/lib/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s10_lib_token() {
    let name = "s10_lib_token";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/srv/lib/x86_64-linux-gnu/libb.so.1", "libb.so.1")
        .build();
    r.lib("/opt/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .runpath("/srv/${LIB}")
        .needs(&["/srv/lib/x86_64-linux-gnu/libb.so.1"])
        .build();
    decoy(&r, "/opt/lib64/liba.so.1", "liba.so.1");
    decoy(&r, "/opt/lib/liba.so.1", "liba.so.1");
    r.exe(PROG)
        .rpath("/opt/$LIB:/opt/lib64:/opt/lib")
        .needs(&["/opt/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s11_platform_token() {
    let name = "s11_platform_token";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let platform = r.loader_platform();
    println!("{name}: loader dl_platform = {platform:?}");
    let real = format!("/opt/{platform}/lib/liba.so.1");
    r.lib(&real, "liba.so.1").build();
    if platform != "x86_64" {
        decoy(&r, "/opt/x86_64/lib/liba.so.1", "liba.so.1");
    }
    decoy(&r, "/opt/fallback/liba.so.1", "liba.so.1");
    r.exe(PROG)
        .runpath("/opt/$PLATFORM/lib:/opt/fallback")
        .needs(&[&real])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &["--platform", &platform]);
}

#[test]
fn s26_needed_with_origin_token() {
    // A DT_NEEDED string containing '/' and $ORIGIN: expanded, then opened without search.
    let name = "s26_needed_with_origin_token";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/libo.so", "libo.so").build();
    r.exe(PROG).build();
    r.patchelf(PROG, &["--add-needed", "$ORIGIN/../lib/libo.so"]);
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s26c_missing_needed_path_is_named_as_expanded() {
    // A DT_NEEDED path with tokens that opens nothing: the loader names it by what it expanded
    // to (`/app/bin/../lib/libgone.so => not found`), and so do `--format ldd` and the places
    // searched on stderr; JSON keeps the name as spelled, with the expansion under `tried`.
    let name = "s26c_missing_needed_path_is_named_as_expanded";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.exe(PROG).build();
    r.patchelf(
        PROG,
        &[
            "--add-needed",
            "$ORIGIN/../lib/libgone.so",
            "--add-needed",
            "/opt/$LIB/libgone2.so",
        ],
    );
    r.ldconfig();
    let trace = loader_trace(&r, PROG, &[]);
    let run = closure_trace(&r, PROG, &[]);
    println!("{name}: ld.so not found {:?}", trace.not_found);
    assert_eq!(trace.status, 0, "{}", trace.dump());
    assert_eq!(trace.not_found.len(), 2, "{}", trace.dump());
    assert_eq!(trace.loaded, run.loaded(), "{}", run.dump());
    assert_eq!(run.status, 1, "{}", run.dump());
    let spelled: BTreeSet<String> = run.missing_names();
    assert_eq!(
        spelled,
        BTreeSet::from([
            "$ORIGIN/../lib/libgone.so".into(),
            "/opt/$LIB/libgone2.so".into()
        ]),
        "{}",
        run.dump()
    );
    let expanded: BTreeSet<String> = run
        .missing
        .iter()
        .filter_map(|m| m.raw["tried"][0]["path"].as_str().map(str::to_string))
        .collect();
    assert_eq!(trace.not_found, expanded, "{}", run.dump());
    for path in &trace.not_found {
        let line = format!("    {path}  [path given in DT_NEEDED]");
        assert!(run.stderr.contains(&line), "no `{line}` in\n{}", run.stderr);
    }
    assert_same_ldd_lines(name, &r, PROG, &trace, &[]);
}

#[test]
fn s26b_needed_path_with_trailing_slash_is_not_a_file() {
    // A '/' name whose last component is a file but is followed by "/" or "/.": the loader's
    // open fails (ENOTDIR), so it is not found, while the same path without them loads.
    let name = "s26b_needed_path_with_trailing_slash_is_not_a_file";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/libo.so", "libo.so").build();
    r.lib("/app/lib/libp.so", "libp.so").build();
    r.lib("/app/lib/libq.so", "libq.so").build();
    r.exe(PROG).build();
    r.patchelf(
        PROG,
        &[
            "--add-needed",
            "/app/lib/libo.so/",
            "--add-needed",
            "/app/bin/../lib/libp.so/.",
            "--add-needed",
            "/app/lib/./libq.so",
        ],
    );
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert_eq!(trace.not_found.len(), 2, "{:?}", trace.not_found);
}

// ---------------------------------------------------------------------------------------------
// 12–15: ld.so.cache, default dirs, NODEFLIB
// ---------------------------------------------------------------------------------------------

#[test]
fn s12_usr_local_lib_via_cache() {
    let name = "s12_usr_local_lib_via_cache";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/local/lib/libloc.so.1", "libloc.so.1").build();
    r.exe(PROG).needs(&["/usr/local/lib/libloc.so.1"]).build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s12b_plain_ld_so_conf_without_include() {
    let name = "s12b_plain_ld_so_conf_without_include";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/site/lib/libsite.so.2", "libsite.so.2").build();
    r.exe(PROG).needs(&["/opt/site/lib/libsite.so.2"]).build();
    r.set_ld_so_conf("# site libraries\n/opt/site/lib\n");
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s13_stale_cache_entry_falls_back_to_default_dir() {
    let name = "s13_stale_cache_entry_falls_back_to_default_dir";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/local/lib/libst.so.1", "libst.so.1").build();
    r.exe(PROG).needs(&["/usr/local/lib/libst.so.1"]).build();
    r.ldconfig();
    // The cache now points at /usr/local/lib/libst.so.1; delete it and put a copy in a system
    // directory the cache does not know about.
    r.copy(
        "/usr/local/lib/libst.so.1",
        "/usr/lib/x86_64-linux-gnu/libst.so.1",
    );
    r.remove("/usr/local/lib/libst.so.1");
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s14_no_cache_usr_local_lib_not_found() {
    let name = "s14_no_cache_usr_local_lib_not_found";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/local/lib/libloc.so.1", "libloc.so.1").build();
    r.exe(PROG).needs(&["/usr/local/lib/libloc.so.1"]).build();
    // no ldconfig: the root has no /etc/ld.so.cache
    assert!(!r.host("/etc/ld.so.cache").exists());
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(trace.not_found.contains("libloc.so.1"));
}

#[test]
fn s15_nodefaultlib_without_runpath() {
    let name = "s15_nodefaultlib_without_runpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/libnd.so.1", "libnd.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/lib/x86_64-linux-gnu/libnd.so.1"])
        .arg("-Wl,-z,nodefaultlib")
        .build();
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(trace.not_found.contains("libnd.so.1"));
}

#[test]
fn s15b_nodefaultlib_with_runpath() {
    let name = "s15b_nodefaultlib_with_runpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/libnd.so.1", "libnd.so.1")
        .build();
    r.exe(PROG)
        .runpath("/usr/lib/x86_64-linux-gnu")
        .needs(&["/usr/lib/x86_64-linux-gnu/libnd.so.1"])
        .arg("-Wl,-z,nodefaultlib")
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

// ---------------------------------------------------------------------------------------------
// 16–17, 25: candidate validation
// ---------------------------------------------------------------------------------------------

#[test]
fn s16_wrong_machine_candidate_skipped() {
    let name = "s16_wrong_machine_candidate_skipped";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/good/liba.so.1", "liba.so.1").build();
    r.copy("/opt/good/liba.so.1", "/opt/bad/liba.so.1");
    r.patch_bytes("/opt/bad/liba.so.1", 18, &183u16.to_le_bytes()); // EM_AARCH64
    r.exe(PROG)
        .rpath("/opt/bad:/opt/good")
        .needs(&["/opt/good/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s17_wrong_class_candidate_skipped() {
    let name = "s17_wrong_class_candidate_skipped";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/good/liba.so.1", "liba.so.1").build();
    r.copy("/opt/good/liba.so.1", "/opt/bad/liba.so.1");
    r.patch_bytes("/opt/bad/liba.so.1", 4, &[1]); // ELFCLASS32
    r.exe(PROG)
        .runpath("/opt/bad:/opt/good")
        .needs(&["/opt/good/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s17b_only_wrong_class_candidate_is_not_found() {
    let name = "s17b_only_wrong_class_candidate_is_not_found";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/bad/liba.so.1", "liba.so.1").build();
    r.exe(PROG)
        .rpath("/opt/bad")
        .needs(&["/opt/bad/liba.so.1"])
        .build();
    r.patch_bytes("/opt/bad/liba.so.1", 4, &[1]); // ELFCLASS32
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

/// `/opt/bad/liba.so.1` (made by `make_bad`) comes first in the RUNPATH, a good copy second:
/// glibc rejects the bad one with a FATAL error (`loader_says` on stderr, nonzero exit) rather
/// than skipping it. closure must exit 1, list liba.so.1 under `missing`, and not continue to
/// the good copy.
fn fatal_candidate(name: &str, loader_says: &str, make_bad: impl FnOnce(&TestRoot)) {
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/good/liba.so.1", "liba.so.1").build();
    make_bad(&r);
    r.exe(PROG)
        .runpath("/opt/bad:/opt/good")
        .needs(&["/opt/good/liba.so.1"])
        .build();
    r.ldconfig();
    let trace = loader_trace(&r, PROG, &[]);
    let run = closure_trace(&r, PROG, &[]);
    println!("===== real loader =====\n{}", trace.dump());
    println!("===== closure =====\n{}", run.dump());
    // The oracle itself: a fatal error, not a skip.
    assert_ne!(
        trace.status,
        0,
        "oracle: the loader should fail\n{}",
        trace.dump()
    );
    assert!(
        trace.stderr.contains(loader_says),
        "oracle: expected {loader_says:?}\n{}",
        trace.dump()
    );
    let mut problems = Vec::new();
    if run.status != 1 {
        problems.push(format!("closure exit code {} (want 1)", run.status));
    }
    if !run.missing.iter().any(|m| m.soname == "liba.so.1") {
        problems.push("closure does not list liba.so.1 under missing[]".to_string());
    }
    if run
        .objects
        .iter()
        .any(|ob| ob.path == "/opt/good/liba.so.1")
    {
        problems.push(
            "closure continued past the fatal candidate to /opt/good/liba.so.1 (ld.so aborts)"
                .to_string(),
        );
    }
    assert!(
        problems.is_empty(),
        "{name}: {}\n===== real loader =====\n{}\n===== closure =====\n{}",
        problems.join("; "),
        trace.dump(),
        run.dump()
    );
}

/// A copy of the good library with one byte changed.
fn patched_copy(r: &TestRoot, offset: usize, byte: u8) {
    r.copy("/opt/good/liba.so.1", "/opt/bad/liba.so.1");
    r.patch_bytes("/opt/bad/liba.so.1", offset, &[byte]);
}

#[test]
fn s25_non_elf_candidate_is_fatal() {
    fatal_candidate(
        "s25_non_elf_candidate_is_fatal",
        "invalid ELF header",
        |r| r.write("/opt/bad/liba.so.1", NOT_ELF),
    );
}

#[test]
fn s25b_directory_candidate_is_fatal() {
    fatal_candidate(
        "s25b_directory_candidate_is_fatal",
        "cannot read file data",
        |r| r.mkdir("/opt/bad/liba.so.1"),
    );
}

#[test]
fn s25c_short_file_candidate_is_fatal() {
    fatal_candidate(
        "s25c_short_file_candidate_is_fatal",
        "file too short",
        |r| r.write("/opt/bad/liba.so.1", b"\x7fELF\x02\x01\x01"),
    );
}

#[test]
fn s25d_big_endian_candidate_is_fatal() {
    fatal_candidate(
        "s25d_big_endian_candidate_is_fatal",
        "ELF file data encoding not little-endian",
        |r| patched_copy(r, 5, 2),
    );
}

#[test]
fn s25e_foreign_osabi_candidate_is_fatal() {
    fatal_candidate(
        "s25e_foreign_osabi_candidate_is_fatal",
        "ELF file OS ABI invalid",
        |r| patched_copy(r, 7, 9), // ELFOSABI_FREEBSD
    );
}

#[test]
fn s25f_relocatable_candidate_is_fatal() {
    fatal_candidate(
        "s25f_relocatable_candidate_is_fatal",
        "only ET_DYN and ET_EXEC can be loaded",
        |r| patched_copy(r, 16, 1), // ET_REL
    );
}

#[test]
fn s25g_abi_version_candidate_is_fatal() {
    fatal_candidate(
        "s25g_abi_version_candidate_is_fatal",
        "ELF file ABI version invalid",
        |r| patched_copy(r, 8, 1), // EI_ABIVERSION 1 with OSABI SYSV
    );
}

#[test]
fn s25h_nonzero_ident_padding_is_fatal() {
    fatal_candidate(
        "s25h_nonzero_ident_padding_is_fatal",
        "nonzero padding in e_ident",
        |r| patched_copy(r, 12, 1),
    );
}

#[test]
fn s32_symlink_loop_candidate_ends_the_list() {
    // open() of /opt/fl/liba.so.1 fails with ELOOP (not ENOENT/EACCES): glibc abandons the
    // whole RPATH list, so /opt/good later in the same list is never tried.
    let name = "s32_symlink_loop_candidate_ends_the_list";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/good/liba.so.1", "liba.so.1").build();
    r.symlink("liba.so.1", "/opt/fl/liba.so.1");
    r.exe(PROG)
        .rpath("/opt/fl:/opt/good")
        .needs(&["/opt/good/liba.so.1"])
        .build();
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(
        trace.not_found.contains("liba.so.1"),
        "oracle: ELOOP ends the list"
    );
}

#[test]
fn s32b_dangling_symlink_candidate_is_skipped() {
    // A dangling symlink candidate fails with ENOENT: skipped, the next directory is tried.
    let name = "s32b_dangling_symlink_candidate_is_skipped";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/good/liba.so.1", "liba.so.1").build();
    r.symlink("/nonexistent/liba.so.1", "/opt/dang/liba.so.1");
    r.exe(PROG)
        .rpath("/opt/dang:/opt/good")
        .needs(&["/opt/good/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s32c_looping_directory_is_skipped() {
    // The search directory itself is a symlink loop. open() fails with ELOOP, but glibc then
    // stats the directory, finds it does not exist (ELOOP again), marks the directory as
    // nonexistent and goes on: only an error inside an EXISTING directory ends the list (s32).
    let name = "s32c_looping_directory_is_skipped";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/good/liba.so.1", "liba.so.1").build();
    r.symlink("/opt/loopdir", "/opt/loopdir");
    r.exe(PROG)
        .rpath("/opt/loopdir:/opt/good")
        .needs(&["/opt/good/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

// ---------------------------------------------------------------------------------------------
// 18–21, 27: names with '/', the loaded-object table, BFS order, cycles
// ---------------------------------------------------------------------------------------------

#[test]
fn s18_needed_with_absolute_path() {
    let name = "s18_needed_with_absolute_path";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/x/libx.so", "libx.so").build();
    r.exe(PROG).build();
    r.patchelf(PROG, &["--add-needed", "/opt/x/libx.so"]);
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s18b_needed_absolute_path_missing() {
    let name = "s18b_needed_absolute_path_missing";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    // A library of that name in a default dir must not be used: no search for names with '/'.
    r.lib("/usr/lib/x86_64-linux-gnu/libnone.so", "libnone.so")
        .build();
    r.exe(PROG).build();
    r.patchelf(PROG, &["--add-needed", "/opt/none/libnone.so"]);
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s19_needed_satisfied_by_loaded_soname() {
    // The exe loads /opt/x/libsn-real.so (SONAME libsn.so.1) by absolute path; liba then needs
    // libsn.so.1, which no file is called: the loaded object's SONAME satisfies it.
    let name = "s19_needed_satisfied_by_loaded_soname";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/x/libsn-real.so", "libsn.so.1").build();
    r.lib("/opt/a/liba.so.1", "liba.so.1")
        .needs(&["/opt/x/libsn-real.so"])
        .build();
    r.exe(PROG)
        .rpath("/opt/a")
        .needs(&["/opt/a/liba.so.1"])
        .build();
    // patchelf --add-needed puts the new entry first, before liba.so.1.
    r.patchelf(PROG, &["--add-needed", "/opt/x/libsn-real.so"]);
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s20_bfs_first_requester_wins() {
    let name = "s20_bfs_first_requester_wins";
    bfs_two_requesters(name, false);
}

#[test]
fn s20b_bfs_first_requester_wins_reversed() {
    let name = "s20b_bfs_first_requester_wins_reversed";
    bfs_two_requesters(name, true);
}

/// liba (RPATH /opt/sa) and libb (RPATH /opt/sb) both need libshared.so.1; whichever the exe
/// lists first decides the file for both.
fn bfs_two_requesters(name: &str, b_first: bool) {
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/sa/libshared.so.1", "libshared.so.1").build();
    r.lib("/opt/sb/libshared.so.1", "libshared.so.1").build();
    r.lib("/opt/a/liba.so.1", "liba.so.1")
        .rpath("/opt/sa")
        .needs(&["/opt/sa/libshared.so.1"])
        .build();
    r.lib("/opt/b/libb.so.1", "libb.so.1")
        .rpath("/opt/sb")
        .needs(&["/opt/sb/libshared.so.1"])
        .build();
    let order: [&str; 2] = if b_first {
        ["/opt/b/libb.so.1", "/opt/a/liba.so.1"]
    } else {
        ["/opt/a/liba.so.1", "/opt/b/libb.so.1"]
    };
    r.exe(PROG).rpath("/opt/a:/opt/b").needs(&order).build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s20c_breadth_first_not_depth_first() {
    // exe -> liba, libb; liba -> libx (RPATH /opt/sx); libb -> libshared (RPATH /opt/sb);
    // libx -> libshared. BFS loads libb's libshared (level 2) before libx asks (level 3).
    let name = "s20c_breadth_first_not_depth_first";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/sx/libshared.so.1", "libshared.so.1").build();
    r.lib("/opt/sb/libshared.so.1", "libshared.so.1").build();
    r.lib("/opt/a/libx.so.1", "libx.so.1")
        .rpath("/opt/sx")
        .needs(&["/opt/sx/libshared.so.1"])
        .build();
    r.lib("/opt/a/liba.so.1", "liba.so.1")
        .needs(&["/opt/a/libx.so.1"])
        .build();
    r.lib("/opt/b/libb.so.1", "libb.so.1")
        .rpath("/opt/sb")
        .needs(&["/opt/sb/libshared.so.1"])
        .build();
    r.exe(PROG)
        .rpath("/opt/a:/opt/b")
        .needs(&["/opt/a/liba.so.1", "/opt/b/libb.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s21_dependency_cycle() {
    let name = "s21_dependency_cycle";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/c/liba.so.1", "liba.so.1").build();
    r.lib("/opt/c/libb.so.1", "libb.so.1")
        .needs(&["/opt/c/liba.so.1"])
        .build();
    r.patchelf("/opt/c/liba.so.1", &["--add-needed", "libb.so.1"]);
    r.exe(PROG)
        .rpath("/opt/c")
        .needs(&["/opt/c/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s27_same_file_under_two_names_loaded_once() {
    // libalias.so.1 is a symlink to the already loaded liba.so.1: ld.so opens it, sees the same
    // (dev, inode) and reuses the loaded object — it prints no line for it.
    let name = "s27_same_file_under_two_names_loaded_once";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/a/liba.so.1", "liba.so.1").build();
    r.symlink("/opt/a/liba.so.1", "/opt/b/libalias.so.1");
    r.exe(PROG)
        .rpath("/opt/a:/opt/b")
        .needs(&["/opt/a/liba.so.1"])
        .needs_names(&["libalias.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

// ---------------------------------------------------------------------------------------------
// 22: LD_LIBRARY_PATH / --library-path
// ---------------------------------------------------------------------------------------------

#[test]
fn s22_library_path_after_rpath() {
    // RPATH beats LD_LIBRARY_PATH; LD_LIBRARY_PATH (with ';') beats the cache and default dirs,
    // also for a dependency of an RPATH-found library.
    let name = "s22_library_path_after_rpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/l2/libf.so.1", "libf.so.1").build();
    r.lib("/opt/r/liba.so.1", "liba.so.1")
        .needs(&["/opt/l2/libf.so.1"])
        .build();
    decoy(&r, "/opt/l1/liba.so.1", "liba.so.1");
    r.lib("/opt/l2/libb.so.1", "libb.so.1").build();
    decoy(&r, "/usr/lib/x86_64-linux-gnu/libb.so.1", "libb.so.1");
    decoy(&r, "/usr/lib/x86_64-linux-gnu/libf.so.1", "libf.so.1");
    r.exe(PROG)
        .rpath("/opt/r")
        .needs(&["/opt/r/liba.so.1", "/opt/l2/libb.so.1"])
        .build();
    r.ldconfig();
    let llp = "/opt/l1;/opt/l2";
    check(
        name,
        &r,
        PROG,
        &[("LD_LIBRARY_PATH", llp)],
        &["--library-path", llp],
    );
}

#[test]
fn s22b_library_path_before_runpath() {
    let name = "s22b_library_path_before_runpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/l1/libd.so.1", "libd.so.1").build();
    decoy(&r, "/opt/u/libd.so.1", "libd.so.1");
    r.lib("/opt/u/libe.so.1", "libe.so.1").build();
    r.mkdir("/opt/l2");
    r.exe(PROG)
        .runpath("/opt/u")
        .needs(&["/opt/l1/libd.so.1", "/opt/u/libe.so.1"])
        .build();
    r.ldconfig();
    let llp = "/opt/l2:/opt/l1";
    check(
        name,
        &r,
        PROG,
        &[("LD_LIBRARY_PATH", llp)],
        &["--library-path", llp],
    );
}

#[test]
fn s22c_library_path_with_origin() {
    // $ORIGIN in LD_LIBRARY_PATH is the executable's origin.
    let name = "s22c_library_path_with_origin";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/liba.so.1", "liba.so.1").build();
    r.exe(PROG).needs(&["/app/lib/liba.so.1"]).build();
    r.ldconfig();
    let llp = "$ORIGIN/../lib";
    check(
        name,
        &r,
        PROG,
        &[("LD_LIBRARY_PATH", llp)],
        &["--library-path", llp],
    );
}

// ---------------------------------------------------------------------------------------------
// 23: glibc-hwcaps
// ---------------------------------------------------------------------------------------------

/// `--hwcaps` arguments for closure from the loader's own `--help` (empty when none searched).
fn hwcaps_args(r: &TestRoot, name: &str) -> Vec<String> {
    let hw = r.loader_hwcaps();
    println!("{name}: loader searches glibc-hwcaps {hw:?}");
    if hw.is_empty() {
        Vec::new()
    } else {
        vec!["--hwcaps".to_string(), hw.join(",")]
    }
}

#[test]
fn s23_glibc_hwcaps_subdirectory() {
    // /opt/h/glibc-hwcaps/x86-64-v{2,3}/libh.so.1 and /opt/h/libh.so.1; each variant needs its
    // own extra library, so the chosen variant shows in the closure.
    let name = "s23_glibc_hwcaps_subdirectory";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/h/libv2dep.so.1", "libv2dep.so.1").build();
    r.lib("/opt/h/libv3dep.so.1", "libv3dep.so.1").build();
    r.lib("/opt/h/glibc-hwcaps/x86-64-v2/libh.so.1", "libh.so.1")
        .needs(&["/opt/h/libv2dep.so.1"])
        .build();
    r.lib("/opt/h/glibc-hwcaps/x86-64-v3/libh.so.1", "libh.so.1")
        .needs(&["/opt/h/libv3dep.so.1"])
        .build();
    r.lib("/opt/h/libh.so.1", "libh.so.1").build();
    r.exe(PROG)
        .rpath("/opt/h")
        .needs(&["/opt/h/libh.so.1"])
        .build();
    r.ldconfig();
    let args = hwcaps_args(&r, name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(name, &r, PROG, &[], &args);
}

/// glibc-hwcaps copies of `libh.so.1` in a `DT_RUNPATH` directory, one in every subdirectory
/// the root's loader lists in `--help` and in names it does not know (another architecture's, a
/// newer glibc's), each needing a library of its own; closure is given the names this CPU has
/// in reverse order, and the unknown ones: the loader searches its own names in its own order
/// and no other, so the traces must be the same. Then under the baseline, the listed copies
/// alone are variants.
fn only_the_loaders_own_hwcaps_names(name: &str, r: &TestRoot) {
    let help = r.run_in_root(&[], &[INTERP, "--help"]).stdout;
    let lines = crate::support::oracle::hwcaps_help_lines(&help);
    let listed: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    let mut named: Vec<&str> = lines
        .iter()
        .rev()
        .filter(|(_, searched)| *searched)
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        named.len() > 1,
        "{name}: the premise: a CPU with two levels:\n{help}"
    );
    let others = ["z17", "power10", "haswell", "x86-64-v5"];
    for n in listed.iter().chain(&others) {
        let dep = format!("/usr/lib/lib{}.so.1", n.replace('-', "_"));
        r.lib(&dep, &format!("lib{}.so.1", n.replace('-', "_")))
            .build();
        r.lib(&format!("/opt/h/glibc-hwcaps/{n}/libh.so.1"), "libh.so.1")
            .needs(&[dep.as_str()])
            .build();
    }
    r.lib("/opt/h/libh.so.1", "libh.so.1").build();
    r.exe(PROG)
        .runpath("/opt/h")
        .needs_names(&["libh.so.1"])
        .build();
    r.ldconfig();
    named.extend(others);
    let named = named.join(",");
    check(name, r, PROG, &[], &["--hwcaps", &named]);
    let run = closure_trace(r, PROG, &[]);
    assert!(run.json.is_some(), "{name}: closure's JSON\n{}", run.dump());
    let recorded = run.hwcaps_variants();
    let want: BTreeSet<String> = listed
        .iter()
        .map(|n| format!("/opt/h/glibc-hwcaps/{n}/libh.so.1"))
        .collect();
    assert_eq!(recorded, want, "{name}: variants recorded\n{}", run.dump());
}

#[test]
fn s23i_only_the_loaders_own_hwcaps_names_in_its_order() {
    let name = "s23i_only_the_loaders_own_hwcaps_names_in_its_order";
    let o = oracle!(name);
    on_host_and_releases(
        name,
        &o,
        &["trixie", "forky"],
        only_the_loaders_own_hwcaps_names,
    );
}

/// Copies the static qemu-x86_64 into `r` (run as `/qemu-x86_64-static -cpu CPU …` to model
/// CPUs of each x86-64 level); false, saying why, when it is not installed.
fn qemu_x86_in(name: &str, r: &TestRoot) -> bool {
    let qemu = Path::new("/usr/bin/qemu-x86_64-static");
    if !qemu.is_file() {
        println!(
            "skipping {name}: no {} (Debian package qemu-user-static)",
            qemu.display()
        );
        return false;
    }
    std::fs::copy(qemu, r.path().join("qemu-x86_64-static")).expect("copy qemu into the root");
    true
}

/// closure's JSON report of `prog` in `r` with `args`, run-time loads included.
fn closure_with_run_time(
    r: &TestRoot,
    prog: &str,
    args: &[&str],
) -> crate::support::oracle::ClosureRun {
    crate::support::oracle::run_closure_with_run_time(r.path(), prog, args)
}

/// qemu's CPU models of the x86-64 levels and the `--hwcaps` that model each (TCG has no
/// AVX-512: `x86-64-v4` is never among them).
const ISA_CPUS: [(&str, &str); 3] = [
    ("qemu64", "baseline"),
    ("Nehalem", "x86-64-v2"),
    ("Haswell", "x86-64-v3,x86-64-v2"),
];

/// x86 ISA levels (`GNU_PROPERTY_X86_ISA_1_NEEDED`, set with `ld -z x86-64-vN`): programs
/// that exit at once (their own `_start`, no start files: any glibc runs them), each mapping
/// one object marked with a level — the program itself, a library, a library from a
/// `glibc-hwcaps/x86-64-v2/` subdirectory marked `x86-64-v3` found by a directory search, one
/// found through the cache (whose entry carries the level: the loader passes over it) — run
/// under qemu's CPU of each level. The loader either runs the program or stops it with
/// "OBJECT: CPU ISA level is lower than required" (glibc 2.33 and later); closure, told that
/// CPU's levels, must refuse exactly that object, or nothing, and list what the loader lists.
fn isa_levels_match(name: &str, r: &TestRoot) {
    if !qemu_x86_in(name, r) {
        return;
    }
    let exits = "void _start(void) { __asm__ volatile (\"mov $60, %eax\\n xor %edi, %edi\\n syscall\"); }\n";
    let marked = |level: &str| format!("-Wl,-z,{level}");
    r.lib("/opt/i/libplain.so.1", "libplain.so.1").build();
    for level in ["x86-64-v2", "x86-64-v3", "x86-64-v4"] {
        let soname = format!("lib{}.so.1", level.replace('-', "_"));
        r.lib(&format!("/opt/i/{soname}"), &soname)
            .arg(&marked(level))
            .build();
    }
    r.lib("/opt/h/glibc-hwcaps/x86-64-v2/libhv.so.1", "libhv.so.1")
        .arg(&marked("x86-64-v3"))
        .build();
    r.lib("/opt/h/libhv.so.1", "libhv.so.1").build();
    r.lib(
        "/usr/local/lib/glibc-hwcaps/x86-64-v2/libhc.so.1",
        "libhc.so.1",
    )
    .arg(&marked("x86-64-v3"))
    .build();
    r.lib("/usr/local/lib/libhc.so.1", "libhc.so.1").build();
    let program = |path: &str, needs: &str, extra: Option<&str>| {
        let mut b = r
            .exe(path)
            .source(exits)
            .arg("-nostartfiles")
            .runpath("/opt/i:/opt/h");
        if let Some(e) = extra {
            b = b.arg(e);
        }
        if needs.starts_with('/') {
            b.needs(&[needs]).build();
        } else {
            b.needs_names(&[needs]).build();
        }
    };
    let programs = [
        "/app/bin/plain",
        "/app/bin/v2",
        "/app/bin/v3",
        "/app/bin/v4",
        "/app/bin/self3",
        "/app/bin/hwcaps",
        "/app/bin/cached",
    ];
    program(programs[0], "/opt/i/libplain.so.1", None);
    program(programs[1], "/opt/i/libx86_64_v2.so.1", None);
    program(programs[2], "/opt/i/libx86_64_v3.so.1", None);
    program(programs[3], "/opt/i/libx86_64_v4.so.1", None);
    program(
        programs[4],
        "/opt/i/libplain.so.1",
        Some(&marked("x86-64-v3")),
    );
    program(programs[5], "libhv.so.1", None);
    program(programs[6], "libhc.so.1", None);
    r.ldconfig();
    let mut refusals = 0;
    for (cpu, hwcaps) in ISA_CPUS {
        for prog in programs {
            let run = r.run_in_root(&[], &["/qemu-x86_64-static", "-cpu", cpu, prog]);
            let stopped = crate::support::oracle::isa_stops(&run.stderr);
            assert!(
                run.status == 0 || !stopped.is_empty(),
                "{name}: {prog} on {cpu} exited {}:\n{}",
                run.status,
                run.stderr
            );
            let listed = r.run_in_root(
                &[],
                &["/qemu-x86_64-static", "-cpu", cpu, INTERP, "--list", prog],
            );
            let theirs = crate::support::oracle::parse_trace(&listed.stdout);
            let ours = closure_trace(r, prog, &["--hwcaps", hwcaps]);
            let refused = ours.refused_objects();
            assert_eq!(
                refused, stopped,
                "{name}: {prog} on {cpu} (--hwcaps {hwcaps}): closure refuses {refused:?}, the loader stopped at {stopped:?}\n{}",
                ours.dump()
            );
            assert_eq!(
                ours.status,
                i32::from(!stopped.is_empty()),
                "{name}: {prog} on {cpu}: exit status"
            );
            let listed_paths: BTreeSet<String> = theirs
                .loaded
                .iter()
                .filter(|p| p.starts_with('/') && p.as_str() != INTERP)
                .cloned()
                .collect();
            let our_paths: BTreeSet<String> =
                ours.loaded().into_iter().filter(|p| p != INTERP).collect();
            assert_eq!(
                our_paths, listed_paths,
                "{name}: {prog} on {cpu}: the lists"
            );
            println!("{name}: {prog} on {cpu}: stopped at {stopped:?}");
            refusals += stopped.len();
        }
    }
    let checks = refusals > 0;
    if r.loader_hwcaps().is_empty()
        && !r
            .run_in_root(&[], &[INTERP, "--help"])
            .stdout
            .contains("glibc-hwcaps")
    {
        assert!(
            !checks,
            "{name}: a loader before glibc 2.33 checks no ISA level"
        );
    } else {
        assert!(
            refusals >= 6,
            "{name}: the premise: the loader stops programs ({refusals})"
        );
    }
    // Under the baseline the `x86-64-v2/` copy is a variant (no CPU of the baseline takes
    // it); the Nehalem above, an x86-64-v2 CPU, was stopped by it: a warning says so.
    let run = closure_trace(r, "/app/bin/hwcaps", &[]);
    let warned = run.json.as_ref().expect("closure's JSON")["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
        .any(|w| w.starts_with("/opt/h/glibc-hwcaps/x86-64-v2/libhv.so.1 needs x86-64-v3"));
    assert_eq!(
        warned,
        checks,
        "{name}: the variant's warning\n{}",
        run.dump()
    );
    assert_eq!(
        run.status, 0,
        "{name}: the baseline CPU takes the plain copy"
    );
    // Libraries given as roots (a directory of them) are run by no one: not refused.
    let run = closure_trace(r, "/opt/i", &[]);
    assert!(
        run.status == 0 && run.refused_objects().is_empty(),
        "{name}: libraries as roots\n{}",
        run.dump()
    );
}

#[test]
fn s23k_x86_isa_levels_the_cpu_lacks_stop_the_program() {
    let name = "s23k_x86_isa_levels_the_cpu_lacks_stop_the_program";
    let o = oracle!(name);
    on_host_and_releases(name, &o, &["bullseye", "trixie", "forky"], isa_levels_match);
}

#[test]
fn s23n_x86_isa_levels_the_baseline_is_what_runs_the_roots_libc() {
    // A glibc built for x86-64-v2 (RHEL 9's) marks libc.so.6 as needing it; no CPU below runs
    // any program of such a root. The root's libc here is patched to say so (its property
    // `x86-64-baseline` becomes `x86-64-baseline, x86-64-v2`): qemu's x86-64-v1 CPU stops
    // every program at libc, Nehalem (v2) runs them but for one needing v3. Under the
    // baseline closure models the least CPU that runs the root's libc: Nehalem's answers.
    let name = "s23n_x86_isa_levels_the_baseline_is_what_runs_the_roots_libc";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    if !qemu_x86_in(name, &r) {
        return;
    }
    let libc = std::fs::canonicalize(r.host("/lib/x86_64-linux-gnu/libc.so.6")).expect("libc");
    let mut bytes = std::fs::read(&libc).expect("read libc");
    let property: Vec<u8> = [0xc000_8002u32, 4, 1]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let Some(at) = bytes
        .windows(property.len())
        .position(|w| w == property.as_slice())
    else {
        println!("skipping {name}: this libc.so.6 has no x86-64-baseline ISA property to patch");
        return;
    };
    bytes[at + 8..at + 12].copy_from_slice(&3u32.to_le_bytes());
    std::fs::write(&libc, bytes).expect("write libc");
    let exits = "void _start(void) { __asm__ volatile (\"mov $60, %eax\\n xor %edi, %edi\\n syscall\"); }\n";
    for level in ["x86-64-v2", "x86-64-v3"] {
        let soname = format!("lib{}.so.1", level.replace('-', "_"));
        r.lib(&format!("/opt/i/{soname}"), &soname)
            .arg(&format!("-Wl,-z,{level}"))
            .build();
        r.exe(&format!("/app/bin/{level}"))
            .source(exits)
            .arg("-nostartfiles")
            .needs(&[format!("/opt/i/{soname}").as_str()])
            .runpath("/opt/i")
            .build();
    }
    for prog in ["/app/bin/x86-64-v2", "/app/bin/x86-64-v3"] {
        let v1 = r.run_in_root(&[], &["/qemu-x86_64-static", "-cpu", "qemu64", prog]);
        assert!(
            crate::support::oracle::isa_stops(&v1.stderr)
                .iter()
                .any(|o| o.ends_with("/libc.so.6")),
            "{name}: the premise: a v1 CPU stops at libc\n{}",
            v1.stderr
        );
        let v2 = r.run_in_root(&[], &["/qemu-x86_64-static", "-cpu", "Nehalem", prog]);
        let stopped = crate::support::oracle::isa_stops(&v2.stderr);
        for args in [&[][..], &["--hwcaps", "x86-64-v2"][..]] {
            let ours = closure_trace(&r, prog, args);
            assert_eq!(
                ours.refused_objects(),
                stopped,
                "{name}: {prog} ({args:?}), Nehalem:\n{}\n{}",
                v2.stderr,
                ours.dump()
            );
        }
        println!("{name}: {prog}: Nehalem stopped at {stopped:?}");
    }
}

#[test]
fn s23o_x86_isa_levels_static_programs_are_not_checked() {
    // glibc checks ISA levels in the dynamic loader only: a static program (and a static PIE)
    // marked `x86-64-v3` runs on qemu's x86-64-v1 CPU, and closure refuses neither.
    let name = "s23o_x86_isa_levels_static_programs_are_not_checked";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    if !qemu_x86_in(name, &r) {
        return;
    }
    let source = "#include <stdio.h>\nint main(void) { puts(\"ran\"); return 0; }\n";
    for (prog, kind) in [
        ("/app/bin/static", "-static"),
        ("/app/bin/spie", "-static-pie"),
    ] {
        crate::support::oracle::compile(
            &r,
            prog,
            source,
            &[kind.to_string(), "-Wl,-z,x86-64-v3".to_string()],
        );
        let notes = std::process::Command::new("readelf")
            .arg("-n")
            .arg(r.host(prog))
            .output()
            .expect("readelf");
        assert!(
            String::from_utf8_lossy(&notes.stdout).contains("x86-64-v3"),
            "{name}: the premise: {prog} is marked x86-64-v3"
        );
        let run = r.run_in_root(&[], &["/qemu-x86_64-static", "-cpu", "qemu64", prog]);
        assert_eq!(
            (run.status, run.stdout.as_str()),
            (0, "ran\n"),
            "{name}: {prog} on qemu64: {}",
            run.stderr
        );
        for args in [&[][..], &["--hwcaps", "x86-64-v2"][..]] {
            let ours = closure_trace(&r, prog, args);
            assert!(
                ours.refused_objects().is_empty() && ours.status == 0,
                "{name}: {prog} ({args:?}):\n{}",
                ours.dump()
            );
        }
        println!("{name}: {prog} marked x86-64-v3 runs on qemu64");
    }
}

#[test]
fn s23l_x86_isa_levels_a_dlopen_needs_fail_that_dlopen() {
    // A program that dlopens a library marked `x86-64-v3` by a string literal
    // (`--dlopen-strings` finds it): on a CPU without the level the dlopen fails with the
    // loader's message, and the program goes on — a warning, not a refusal.
    let name = "s23l_x86_isa_levels_a_dlopen_needs_fail_that_dlopen";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    if !qemu_x86_in(name, &r) {
        return;
    }
    r.lib("/opt/d/libdl3.so.1", "libdl3.so.1")
        .arg("-Wl,-z,x86-64-v3")
        .build();
    let source = "#include <dlfcn.h>\n#include <stdio.h>\nint main(void) {\n  if (!dlopen(\"libdl3.so.1\", RTLD_NOW)) { fprintf(stderr, \"%s\\n\", dlerror()); return 3; }\n  return 0;\n}\n";
    r.exe(PROG).source(source).runpath("/opt/d").build();
    for (cpu, hwcaps) in ISA_CPUS.iter().skip(1) {
        let run = r.run_in_root(&[], &["/qemu-x86_64-static", "-cpu", cpu, PROG]);
        let stopped = crate::support::oracle::isa_stops(&run.stderr);
        let ours = closure_with_run_time(&r, PROG, &["--dlopen-strings", "--hwcaps", hwcaps]);
        let warned: BTreeSet<String> = ours.json.as_ref().expect("closure's JSON")["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str())
            .filter(|w| w.contains("CPU ISA level is lower than required"))
            .filter_map(|w| w.split(" (loaded at run time").next())
            .map(str::to_string)
            .collect();
        assert_eq!(
            warned,
            stopped,
            "{name}: on {cpu}:\n{}\n{}",
            run.stderr,
            ours.dump()
        );
        assert_eq!(
            run.status,
            if stopped.is_empty() { 0 } else { 3 },
            "{name}: on {cpu}"
        );
        assert!(
            ours.refused_objects().is_empty(),
            "{name}: on {cpu}: a dlopen is no refusal"
        );
        println!("{name}: on {cpu}: the dlopen failed for {stopped:?}");
    }
}

#[test]
fn s23p_x86_isa_levels_plugins_and_audit_modules_that_need_more_fail() {
    // Plugins (`--include`) marked `x86-64-v3`, one itself and one through a library it
    // needs, opened by a launcher, and an audit module marked so (`LD_AUDIT`): on a CPU
    // without the level each `dlopen` fails, and the loader ignores the module, with the
    // loader's words; closure, told that CPU's levels, must warn of exactly those objects
    // and drop the module, and of nothing on a CPU with the level.
    let name = "s23p_x86_isa_levels_plugins_and_audit_modules_that_need_more_fail";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    if !qemu_x86_in(name, &r) {
        return;
    }
    let v3 = "-Wl,-z,x86-64-v3";
    r.lib("/opt/p/libpv3.so", "libpv3.so").arg(v3).build();
    r.lib("/opt/pd/libv3dep.so.1", "libv3dep.so.1")
        .arg(v3)
        .build();
    r.lib("/opt/p/libpdep.so", "libpdep.so")
        .needs(&["/opt/pd/libv3dep.so.1"])
        .runpath("/opt/pd")
        .build();
    let audit = "unsigned int la_version(unsigned int v) { return v; }\n";
    crate::support::oracle::compile(
        &r,
        "/opt/a/libaudv3.so",
        audit,
        &["-shared".into(), "-fPIC".into(), v3.into()],
    );
    let launcher = "#include <dlfcn.h>\n#include <stdio.h>\nint main(int argc, char **argv) {\n  for (int k = 1; k < argc; k++) {\n    if (dlopen(argv[k], RTLD_NOW)) printf(\"OK %s\\n\", argv[k]);\n    else printf(\"FAIL %s\\n\", dlerror());\n  }\n  return 0;\n}\n";
    r.exe(PROG).source(launcher).build();
    let plugins = ["/opt/p/libpv3.so", "/opt/p/libpdep.so"];
    for (cpu, hwcaps) in ISA_CPUS.iter().skip(1) {
        let mut argv = vec!["/qemu-x86_64-static", "-cpu", cpu, PROG];
        argv.extend(plugins);
        let run = r.run_in_root(&[("LD_AUDIT", "/opt/a/libaudv3.so")], &argv);
        assert_eq!(run.status, 0, "{name}: on {cpu}: {}", run.stderr);
        let stopped: BTreeSet<String> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("FAIL "))
            .filter_map(|l| l.strip_suffix(": CPU ISA level is lower than required"))
            .map(str::to_string)
            .collect();
        let failures = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("FAIL "))
            .count();
        assert_eq!(failures, stopped.len(), "{name}: on {cpu}: {}", run.stdout);
        let module_ignored = run.stderr.contains(
            "object '/opt/a/libaudv3.so' cannot be loaded as audit interface: CPU ISA level is \
             lower than required; ignored",
        );
        let ours = closure_with_run_time(
            &r,
            PROG,
            &[
                "--include",
                "/opt/p",
                "--ld-audit",
                "/opt/a/libaudv3.so",
                "--hwcaps",
                hwcaps,
            ],
        );
        let warned: BTreeSet<String> = ours
            .warnings()
            .filter(|w| {
                w.contains("CPU ISA level is lower than required") && w.contains("dlopen fails")
            })
            .filter_map(|w| w.split(" (").next())
            .map(str::to_string)
            .collect();
        assert_eq!(
            warned,
            stopped,
            "{name}: on {cpu}:\n{}\n{}",
            run.stdout,
            ours.dump()
        );
        let dropped = ours.warnings().any(|w| {
            w.starts_with(
                "object '/opt/a/libaudv3.so' from LD_AUDIT cannot be loaded as audit interface",
            ) && w.contains("CPU ISA level is lower than required")
        });
        assert_eq!(
            dropped,
            module_ignored,
            "{name}: on {cpu}:\n{}\n{}",
            run.stderr,
            ours.dump()
        );
        assert_eq!(
            ours.loaded().contains("/opt/a/libaudv3.so"),
            !module_ignored,
            "{name}: on {cpu}: {}",
            ours.dump()
        );
        println!("{name}: on {cpu}: failed {stopped:?}, module ignored: {module_ignored}");
        if *cpu == "Nehalem" {
            assert!(
                stopped.len() == 2 && module_ignored,
                "{name}: the premise: the x86-64-v2 CPU refuses them\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    // A copy in a `glibc-hwcaps/` subdirectory, included with its
    // directory, replaces its baseline at start-up on a capable CPU; no one
    // opens it with `dlopen`: no warning.
    r.lib("/opt/h/glibc-hwcaps/x86-64-v3/libhw.so.1", "libhw.so.1")
        .arg(v3)
        .build();
    r.lib("/opt/h/libhw.so.1", "libhw.so.1").build();
    let ours = closure_with_run_time(&r, PROG, &["--include", "/opt/h"]);
    assert!(
        ours.status == 0 && ours.warnings().next().is_none(),
        "{name}: {}",
        ours.dump()
    );
}

/// Two libraries that need an executable stack, one by `PT_GNU_STACK` with `PF_X`
/// (`-z execstack`), one by having no `PT_GNU_STACK` at all (x86's default stack is
/// executable), each dlopened by a string literal: glibc 2.36 makes the stack executable,
/// 2.41 and later fail the `dlopen` ("cannot enable executable stack as shared object
/// requires"); the same library as a `DT_NEEDED` loads everywhere, and a program whose stack
/// is executable already (by its own `PT_GNU_STACK`, or a start-up library's) dlopens both
/// everywhere. closure must warn of exactly the dlopens the loader fails.
fn exec_stack_dlopens_match(name: &str, r: &TestRoot) {
    r.lib("/opt/e/libexs.so.1", "libexs.so.1")
        .arg("-Wl,-z,execstack")
        .build();
    r.lib("/opt/e/libnos.so.1", "libnos.so.1").build();
    // PT_GNU_STACK becomes PT_NULL.
    let nos = r.host("/opt/e/libnos.so.1");
    let mut bytes = std::fs::read(&nos).expect("read libnos");
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (size, count) = (
        u16::from_le_bytes([bytes[0x36], bytes[0x37]]) as usize,
        u16::from_le_bytes([bytes[0x38], bytes[0x39]]) as usize,
    );
    let stack = (0..count)
        .map(|i| phoff + i * size)
        .find(|&o| bytes[o..o + 4] == 0x6474_e551u32.to_le_bytes())
        .expect("a PT_GNU_STACK");
    bytes[stack..stack + 4].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&nos, bytes).expect("write libnos");
    let source = "#include <dlfcn.h>\n#include <stdio.h>\nint main(void) {\n  int failed = 0;\n  if (!dlopen(\"libexs.so.1\", RTLD_NOW)) { fprintf(stderr, \"%s\\n\", dlerror()); failed++; }\n  if (!dlopen(\"libnos.so.1\", RTLD_NOW)) { fprintf(stderr, \"%s\\n\", dlerror()); failed++; }\n  return failed;\n}\n";
    // The same dlopens from a program whose stack is executable already: its own
    // `PT_GNU_STACK` says so, or a library it maps at start-up needs one (the loader made
    // the stack executable then). glibc refuses only to *make* it executable in a dlopen.
    r.exe(PROG).source(source).runpath("/opt/e").build();
    r.exe("/app/bin/xstack")
        .source(source)
        .runpath("/opt/e")
        .arg("-Wl,-z,execstack")
        .build();
    r.exe("/app/bin/after")
        .source(source)
        .runpath("/opt/e")
        .needs(&["/opt/e/libexs.so.1"])
        .build();
    r.exe("/app/bin/needs")
        .runpath("/opt/e")
        .needs(&["/opt/e/libexs.so.1", "/opt/e/libnos.so.1"])
        .build();
    let needs = r.run_in_root(&[], &["/app/bin/needs"]);
    assert_eq!(
        needs.status, 0,
        "{name}: start-up loads get an executable stack: {}",
        needs.stderr
    );
    let ours = |prog: &str| closure_with_run_time(r, prog, &["--dlopen-strings"]);
    let warned = |run: &crate::support::oracle::ClosureRun| {
        run.run_time_warned("cannot enable executable stack")
    };
    assert!(
        warned(&ours("/app/bin/needs")).is_empty(),
        "{name}: start-up loads"
    );
    for prog in [PROG, "/app/bin/xstack", "/app/bin/after"] {
        let run = r.run_in_root(&[], &[prog]);
        let failed: BTreeSet<String> = run
            .stderr
            .lines()
            .filter_map(|l| {
                l.strip_suffix(
                    ": cannot enable executable stack as shared object requires: Invalid argument",
                )
            })
            .map(str::to_string)
            .collect();
        assert_eq!(
            run.status as usize,
            failed.len(),
            "{name}: {prog}: {}",
            run.stderr
        );
        let dlopened = ours(prog);
        assert_eq!(
            warned(&dlopened),
            failed,
            "{name}: {prog}: {}\n{}",
            run.stderr,
            dlopened.dump()
        );
        if prog != PROG {
            assert!(failed.is_empty(), "{name}: {prog}: {}", run.stderr);
        }
        println!("{name}: {prog}: the dlopens of {failed:?} failed");
    }
}

#[test]
fn s23m_exec_stack_dlopens_fail_on_glibc_2_41_and_later() {
    let name = "s23m_exec_stack_dlopens_fail_on_glibc_2_41_and_later";
    let o = oracle!(name);
    on_host_and_releases(name, &o, &["trixie", "forky"], exec_stack_dlopens_match);
}

#[test]
fn s23b_glibc_hwcaps_through_cache() {
    let name = "s23b_glibc_hwcaps_through_cache";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/local/lib/libv2dep.so.1", "libv2dep.so.1")
        .build();
    r.lib(
        "/usr/local/lib/glibc-hwcaps/x86-64-v2/libhc.so.1",
        "libhc.so.1",
    )
    .needs(&["/usr/local/lib/libv2dep.so.1"])
    .build();
    r.lib("/usr/local/lib/libhc.so.1", "libhc.so.1").build();
    r.exe(PROG).needs(&["/usr/local/lib/libhc.so.1"]).build();
    r.ldconfig();
    let args = hwcaps_args(&r, name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(name, &r, PROG, &[], &args);
}

// ---------------------------------------------------------------------------------------------
// 23c–e: legacy hwcap subdirectories (glibc 2.36 and earlier)
// ---------------------------------------------------------------------------------------------

/// Whether the root's loader searches legacy hwcap subdirectories (glibc 2.37 removed them;
/// 2.33 to 2.36 list them in `--help`, 2.31's `--help` lists no subdirectory at all).
fn searches_legacy(r: &TestRoot) -> bool {
    let help = r.run_in_root(&[], &[INTERP, "--help"]).stdout;
    help.contains("Legacy HWCAP subdirectories") || r.glibc_minor() < 33
}

/// `--platform` and `--hwcaps` of the loader's own CPU, and whether it searches legacy hwcap
/// subdirectories.
fn cpu_args(r: &TestRoot, name: &str) -> (Vec<String>, String) {
    let platform = r.loader_platform();
    let legacy = searches_legacy(r);
    println!("{name}: loader platform {platform:?}, legacy hwcap subdirectories: {legacy}");
    let mut args = hwcaps_args(r, name);
    args.extend(["--platform".to_string(), platform.clone()]);
    (args, platform)
}

#[test]
fn s23c_legacy_hwcap_subdirectories_of_a_search_path() {
    // glibc 2.36 tries every combination of `tls`, the platform and the CPU's important
    // capabilities below each directory before the directory itself, most specific first;
    // `tls` and `x86_64` are active on every x86-64 CPU, the platform is the loader's.
    let name = "s23c_legacy_hwcap_subdirectories_of_a_search_path";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let (args, platform) = cpu_args(&r, name);
    let mut needed = Vec::new();
    let mut real = |path: &str, soname: &str| {
        r.lib(path, soname).build();
        needed.push(path.to_string());
    };
    real("/opt/l/tls/liba.so.1", "liba.so.1");
    real("/opt/l/x86_64/libb.so.1", "libb.so.1");
    real(&format!("/opt/l/{platform}/libp.so.1"), "libp.so.1");
    real("/opt/l/tls/x86_64/libd.so.1", "libd.so.1");
    real("/opt/l/glibc-hwcaps/x86-64-v2/libe.so.1", "libe.so.1");
    for base in ["liba", "libb", "libp", "libd", "libe"] {
        decoy(&r, &format!("/opt/l/{base}.so.1"), &format!("{base}.so.1"));
    }
    decoy(&r, "/opt/l/x86_64/libd.so.1", "libd.so.1");
    decoy(&r, "/opt/l/tls/libd.so.1", "libd.so.1");
    decoy(&r, "/opt/l/tls/libe.so.1", "libe.so.1");
    // Which of these wins depends on the CPU (xeon_phi, or x86_64 as the platform too): the
    // loader says.
    r.lib("/opt/l/xeon_phi/libf.so.1", "libf.so.1").build();
    r.lib("/opt/l/x86_64/x86_64/libf.so.1", "libf.so.1").build();
    r.lib("/opt/l/libf.so.1", "libf.so.1").build();
    needed.push("/opt/l/libf.so.1".to_string());
    let needed: Vec<&str> = needed.iter().map(String::as_str).collect();
    r.exe(PROG).rpath("/opt/l").needs(&needed).build();
    r.ldconfig();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(name, &r, PROG, &[], &args);
}

#[test]
fn s23d_legacy_hwcap_cache_entries() {
    // ldconfig (2.36) records libraries of /usr/local/lib/tls, …/<platform> and …/x86_64 with
    // legacy hwcap bits; the loader takes the first entry whose bits the CPU has.
    let name = "s23d_legacy_hwcap_cache_entries";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let (args, platform) = cpu_args(&r, name);
    r.lib("/usr/local/lib/tls/libca.so.1", "libca.so.1").build();
    r.lib(
        &format!("/usr/local/lib/{platform}/libcb.so.1"),
        "libcb.so.1",
    )
    .build();
    r.lib("/usr/local/lib/x86_64/libcc.so.1", "libcc.so.1")
        .build();
    r.lib("/usr/local/lib/xeon_phi/libcd.so.1", "libcd.so.1")
        .build();
    r.lib("/usr/local/lib/libcd.so.1", "libcd.so.1").build();
    for base in ["libca", "libcb", "libcc"] {
        decoy(
            &r,
            &format!("/usr/local/lib/{base}.so.1"),
            &format!("{base}.so.1"),
        );
    }
    r.exe(PROG)
        .needs_names(&["libca.so.1", "libcb.so.1", "libcc.so.1", "libcd.so.1"])
        .build();
    r.ldconfig();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(name, &r, PROG, &[], &args);
}

/// A baseline run on `r`: the legacy-tagged cache entries of a library are
/// recorded as variants and staged with a cache that keeps them, so the
/// staged root's loader takes on this CPU what the sysroot's takes. With
/// `hwcaps_copy`, a glibc-hwcaps copy is there too, which must be a variant
/// only for a loader that searches glibc-hwcaps (`glibc_hwcaps`).
fn baseline_stages_variants(name: &str, r: &TestRoot, hwcaps_copy: bool, glibc_hwcaps: bool) {
    // In a default directory, so only the variants make the staged root need a cache; the
    // loader reaches `avx512_1/haswell/` (a spelling its directory search never tries) only
    // through its cache entry, on an Intel CPU with AVX-512.
    let lib = "/usr/lib";
    let legacy: Vec<String> = ["xeon_phi", "haswell", "avx512_1/haswell", "tls/xeon_phi"]
        .iter()
        .map(|d| format!("{lib}/{d}/libvz.so.1"))
        .collect();
    let hwcaps = format!("{lib}/glibc-hwcaps/x86-64-v2/libvz.so.1");
    let copies = legacy.iter().chain(hwcaps_copy.then_some(&hwcaps));
    for v in copies {
        r.lib(v, "libvz.so.1").build();
    }
    r.lib(&format!("{lib}/libvz.so.1"), "libvz.so.1").build();
    r.exe(PROG).needs_names(&["libvz.so.1"]).build();
    r.ldconfig();
    let trace = loader_trace(r, PROG, &[]);
    println!("{name}: ld.so loaded {:?}", trace.loaded);
    let run = closure_trace(r, PROG, &[]);
    assert!(run.json.is_some(), "{name}: closure's JSON\n{}", run.dump());
    // (The cache names them through `/lib`, a link to `usr/lib`.)
    let recorded: BTreeSet<String> = run
        .hwcaps_variants()
        .iter()
        .map(|p| p.trim_start_matches("/usr").to_string())
        .collect();
    // (A loader without legacy subdirectories, 2.37 and later, takes none of those copies.)
    let mut want: BTreeSet<String> = legacy
        .iter()
        .filter(|_| searches_legacy(r))
        .map(|p| p.trim_start_matches("/usr").to_string())
        .collect();
    if hwcaps_copy && glibc_hwcaps {
        want.insert(hwcaps.trim_start_matches("/usr").to_string());
    }
    assert_eq!(recorded, want, "{name}: variants recorded\n{}", run.dump());
    staged_root_loads_the_same(name, r, PROG, &[], &[], &trace);
}

#[test]
fn s23f_baseline_stages_legacy_variants_of_cache_entries() {
    // Under baseline `--hwcaps`, the cache entries of a library tagged for other CPUs (a
    // platform's, AVX-512's) are variants, as glibc-hwcaps copies are. Debian armhf's libvpx7
    // ships such a variant (`vfp/neon/`).
    let name = "s23f_baseline_stages_legacy_variants_of_cache_entries";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    baseline_stages_variants(name, &r, false, true);
}

#[test]
fn s23g_baseline_on_glibc_2_31_stages_legacy_variants_only() {
    // glibc 2.31 (Debian bullseye) searches no glibc-hwcaps: its copy is no variant there.
    let name = "s23g_baseline_on_glibc_2_31_stages_legacy_variants_only";
    let o = oracle!(name);
    let g = match crate::support::glibc::glibc("bullseye") {
        Ok(g) => g,
        Err(why) => {
            println!("skipping {name}: {why}");
            return;
        }
    };
    let r = TestRoot::with_glibc(&o, &g);
    baseline_stages_variants(name, &r, true, false);
}

#[test]
fn s23h_baseline_stages_legacy_variants_found_by_a_directory_search() {
    // Copies in legacy subdirectories of a DT_RUNPATH directory, with no cache entry: under
    // baseline `--hwcaps` each copy that some CPU takes first is a variant. `haswell/` is
    // none: every CPU that tries it tries `tls/haswell/` first. The loaders judge: the one of
    // this machine's CPU and the one of qemu's Haswell model (an Intel CPU with AVX2, so the
    // platform `haswell`) must each take a file closure reports, and the root staged from
    // closure's answer must load under each CPU what the sysroot loads.
    let name = "s23h_baseline_stages_legacy_variants_found_by_a_directory_search";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let help = r.run_in_root(&[], &[INTERP, "--help"]).stdout;
    if !help.contains("Legacy HWCAP subdirectories") {
        println!("skipping {name}: the loader searches no legacy hwcap subdirectories (glibc 2.37 and later)");
        return;
    }
    let qemu = Path::new("/usr/bin/qemu-x86_64-static");
    if !qemu.is_file() {
        println!(
            "skipping {name}: no {} (Debian package qemu-user-static)",
            qemu.display()
        );
        return;
    }
    r.exe(PROG)
        .runpath("/opt/l")
        .needs_names(&["libvs.so.1"])
        .build();
    for d in ["tls/haswell", "haswell", "xeon_phi"] {
        r.lib(&format!("/opt/l/{d}/libvs.so.1"), "libvs.so.1")
            .build();
    }
    r.lib("/opt/l/libvs.so.1", "libvs.so.1").build();
    r.ldconfig();
    let run = closure_trace(&r, PROG, &[]);
    assert!(run.json.is_some(), "{name}: closure's JSON\n{}", run.dump());
    let recorded = run.hwcaps_variants();
    assert_eq!(
        recorded,
        BTreeSet::from([
            "/opt/l/tls/haswell/libvs.so.1".to_string(),
            "/opt/l/xeon_phi/libvs.so.1".to_string()
        ]),
        "{name}: variants recorded\n{}",
        run.dump()
    );
    let reported: BTreeSet<String> = run.loaded().into_iter().chain(recorded.clone()).collect();
    let dir = tempfile::tempdir().expect("staging dir");
    let out = dir.path().join("root");
    let staged = std::process::Command::new(closure_bin())
        .arg("--sysroot")
        .arg(r.path())
        .args(["--root", PROG, "--out"])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run closure");
    assert!(
        staged.status.success(),
        "{name}: staging failed\n{}",
        String::from_utf8_lossy(&staged.stderr)
    );
    for root in [r.path(), out.as_path()] {
        let to = root.join("qemu-x86_64-static");
        std::fs::copy(qemu, &to).expect("copy qemu into the root");
    }
    for cpu in [None, Some("Haswell")] {
        let mut argv = Vec::new();
        if let Some(cpu) = cpu {
            argv.extend(["/qemu-x86_64-static", "-cpu", cpu]);
        }
        argv.extend([INTERP, "--list", PROG]);
        let full = r.run_in_root(&[], &argv);
        assert_eq!(full.status, 0, "{name}: {argv:?}\n{}", full.stderr);
        let (status, stdout, stderr) =
            crate::support::chroot::run_in_root_at(&out, "/", &argv, &[]);
        assert!(
            status.success(),
            "{name}: {argv:?} in the staged root\n{stderr}"
        );
        let (full, inside) = (
            crate::support::oracle::parse_trace(&full.stdout),
            crate::support::oracle::parse_trace(&stdout),
        );
        assert_eq!(
            full.pairs, inside.pairs,
            "{name}: {argv:?}: the staged root loads otherwise"
        );
        let pick = full
            .loaded
            .iter()
            .find(|p| p.ends_with("/libvs.so.1"))
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {argv:?} loads no libvs.so.1"));
        println!(
            "{name}: CPU {}: the loader takes {pick}",
            cpu.unwrap_or("of this machine")
        );
        assert!(
            reported.contains(&pick),
            "{name}: {argv:?} takes {pick}, which closure does not report: {reported:?}"
        );
        if cpu == Some("Haswell") {
            assert!(
                pick.contains("/haswell/"),
                "{name}: qemu's Haswell took {pick}"
            );
        }
    }
}

#[test]
fn s23e_legacy_hwcap_subdirectory_of_a_default_dir() {
    // Not in the cache (added after ldconfig ran): the default-directory search tries
    // /usr/lib/tls before /usr/lib.
    let name = "s23e_legacy_hwcap_subdirectory_of_a_default_dir";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let (args, _) = cpu_args(&r, name);
    r.exe(PROG).needs_names(&["libdt.so.1"]).build();
    r.ldconfig();
    r.lib("/usr/lib/tls/libdt.so.1", "libdt.so.1").build();
    decoy(&r, "/usr/lib/libdt.so.1", "libdt.so.1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(name, &r, PROG, &[], &args);
}

// ---------------------------------------------------------------------------------------------
// 24: what closure says about a missing library
// ---------------------------------------------------------------------------------------------

#[test]
fn s24_missing_reports_search_dirs() {
    let name = "s24_missing_reports_search_dirs";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.mkdir("/opt/r");
    r.exe(PROG)
        .rpath("/opt/r")
        .needs_names(&["libgone.so.3"])
        .build();
    r.ldconfig();
    let (_, run) = check(name, &r, PROG, &[], &[]);
    let entry = run
        .missing
        .iter()
        .find(|m| m.soname == "libgone.so.3")
        .unwrap_or_else(|| panic!("no missing entry for libgone.so.3\n{}", run.dump()));
    let searched = &entry.searched;
    let is_dir = |item: &str, dir: &str| {
        item.trim_end_matches('/') == dir || item == format!("{dir}/libgone.so.3")
    };
    let mut problems = Vec::new();
    if !searched.first().is_some_and(|s| s.starts_with("/opt/r")) {
        problems.push("searched does not start with the RPATH dir /opt/r".to_string());
    }
    let cache_at = searched.iter().position(|s| s.contains("ld.so.cache"));
    if cache_at.is_none() {
        problems.push("searched does not mention ld.so.cache".to_string());
    }
    let mut last = cache_at.unwrap_or(0);
    for dir in SYSTEM_DIRS {
        match searched.iter().position(|s| is_dir(s, dir)) {
            None => problems.push(format!("searched lacks the system dir {dir}")),
            Some(i) if i < last => {
                problems.push(format!("system dir {dir} is out of order in searched"))
            }
            Some(i) => last = i,
        }
    }
    if !entry.needed_by.iter().any(|n| n == PROG) {
        problems.push(format!("needed_by does not name {PROG}"));
    }
    assert!(
        problems.is_empty(),
        "{name}: {}\nmissing entry: {}\n{}",
        problems.join("; "),
        serde_json::to_string_pretty(&entry.raw).unwrap_or_default(),
        run.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// Host sweep
// ---------------------------------------------------------------------------------------------

/// `--hwcaps` / `--platform` for the host loader, from `ld.so --help` / `--list-diagnostics`.
/// `closure --sysroot / --root R… EXTRA ARGS`: (stdout, stderr).
fn closure_text(roots: &[&str], extra: &[&str], args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(closure_bin())
        .args(["--sysroot", "/"])
        .args(roots.iter().flat_map(|r| ["--root", r]))
        .args(args)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run closure");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn host_loader_args() -> Vec<String> {
    let mut args = Vec::new();
    let run = |arg: &str| {
        std::process::Command::new(INTERP)
            .arg(arg)
            .env_clear()
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let hw = crate::support::oracle::parse_hwcaps_help(&run("--help"));
    if !hw.is_empty() {
        args.push("--hwcaps".to_string());
        args.push(hw.join(","));
    }
    let diag = run("--list-diagnostics");
    if let Some(p) = diag
        .lines()
        .find_map(|l| l.strip_prefix("dl_platform=\""))
        .and_then(|rest| rest.strip_suffix('"'))
    {
        args.push("--platform".to_string());
        args.push(p.to_string());
    }
    args
}

#[test]
fn host_sweep_matches_loader() {
    let name = "host_sweep_matches_loader";
    if !Path::new(INTERP).exists() {
        println!("skipping {name}: no {INTERP} on this host");
        return;
    }
    let candidates = sweep_candidates();
    let mut traces: BTreeMap<String, LoaderTrace> = BTreeMap::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for file in &candidates {
        let key = file.to_string_lossy().into_owned();
        let t = host_list(file);
        if t.status != 0 {
            let why = t.stderr.lines().next().unwrap_or("").to_string();
            skipped.push((key, format!("exit {}: {why}", t.status)));
            continue;
        }
        traces.insert(key, t);
    }
    let extra = host_loader_args();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    println!("{name}: closure extra args {extra:?}");
    let files: Vec<String> = traces.keys().cloned().collect();
    let mut mismatches: Vec<SweepMismatch> = Vec::new();
    let mut failed_batches = Vec::new();
    for batch in files.chunks(500) {
        let roots: Vec<&str> = batch.iter().map(String::as_str).collect();
        let run = run_closure(Path::new("/"), &roots, &extra);
        if run.json.is_none() || !(run.status == 0 || run.status == 1) {
            let head: String = run.dump().chars().take(4000).collect();
            failed_batches.push(format!(
                "closure failed on a batch of {} roots (first {}):\n{head}",
                roots.len(),
                roots[0]
            ));
            continue;
        }
        let part: BTreeMap<String, LoaderTrace> = batch
            .iter()
            .map(|f| (f.clone(), traces[f].clone()))
            .collect();
        sweep_compare(&part, &run, &mut mismatches);
        // `--verbose` tries the files the loader tries (its LD_DEBUG=libs).
        let (_, verbose) = closure_text(
            &roots,
            &extra,
            &["--format", "list", "--startup-only", "--verbose"],
        );
        let mut logs: BTreeMap<&str, String> = BTreeMap::new();
        let mut current = "";
        for line in verbose.lines() {
            if let Some(r) = line.strip_prefix("search: loading ") {
                current = batch.iter().find(|f| *f == r).map_or("", String::as_str);
            } else if !current.is_empty() {
                let log = logs.entry(current).or_default();
                log.push_str(line);
                log.push('\n');
            }
        }
        // The tree expands each object under the edge the loader mapped it
        // through (its LD_DEBUG=files).
        let (tree, _) = closure_text(&roots, &extra, &["--format", "tree", "--startup-only"]);
        let mut trees: BTreeMap<&str, String> = BTreeMap::new();
        let mut current = "";
        for line in tree.lines() {
            if !line.starts_with(' ') {
                let r = line.split(" (").next().unwrap_or(line);
                current = batch.iter().find(|f| *f == r).map_or("", String::as_str);
            }
            if !current.is_empty() {
                let t = trees.entry(current).or_default();
                t.push_str(line);
                t.push('\n');
            }
        }
        for f in batch {
            let mine = closure_loading_edges(trees.get(f.as_str()).map_or("", String::as_str));
            let theirs = loader_loading_edges(&host_debug_log(Path::new(f), "files"));
            if mine != theirs {
                mismatches.push(SweepMismatch {
                    file: f.clone(),
                    detail: format!(
                        "the tree loads {:?} where the loader loads {:?}",
                        mine.difference(&theirs).collect::<Vec<_>>(),
                        theirs.difference(&mine).collect::<Vec<_>>()
                    ),
                });
            }
        }
        for f in batch {
            let theirs = host_debug_log(Path::new(f), "libs");
            let mine = logs.get(f.as_str()).map_or("", String::as_str);
            let (mine, theirs) = compared_logs(mine, &theirs, Path::new("/"));
            if mine != theirs {
                mismatches.push(SweepMismatch {
                    file: f.clone(),
                    detail: format!("--verbose tries {mine:?}, the loader {theirs:?}"),
                });
            }
        }
        // And `--format ldd` prints the loader's lines, in its order.
        let ldd = closure_ldd_lines(Path::new("/"), &roots, &extra);
        for f in batch {
            let ours = ldd.get(f).cloned().unwrap_or_default();
            let theirs = ldd_lines(&traces[f].stdout);
            if ours != theirs {
                mismatches.push(SweepMismatch {
                    file: f.clone(),
                    detail: format!("--format ldd prints {ours:?}, the loader {theirs:?}"),
                });
            }
        }
    }
    let compared = files.len();
    println!(
        "{name}: compared {compared} files, skipped {} ({} candidates)",
        skipped.len(),
        candidates.len()
    );
    for (f, why) in skipped.iter().take(20) {
        println!("  skipped {f}: {why}");
    }
    assert!(
        failed_batches.is_empty(),
        "{name}: {}",
        failed_batches.join("\n")
    );
    assert!(compared > 100, "{name}: only {compared} files compared");
    if !mismatches.is_empty() {
        let mut msg = format!(
            "{name}: {} of {compared} files differ from the host loader:\n",
            mismatches.len()
        );
        for m in mismatches.iter().take(20) {
            msg.push_str(&format!("  {}: {}\n", m.file, m.detail));
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// More spelling, cache and root-shape cases
// ---------------------------------------------------------------------------------------------

#[test]
fn s30_unknown_token_is_literal() {
    // "$ORIGINX" is not a token: glibc keeps it literally as a directory name.
    let name = "s30_unknown_token_is_literal";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/$ORIGINX/liba.so.1", "liba.so.1").build();
    decoy(&r, "/opt/good/liba.so.1", "liba.so.1");
    r.exe(PROG)
        .rpath("/opt/$ORIGINX:/opt/good")
        .needs(&["/opt/$ORIGINX/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s31_search_dir_spelling_is_kept() {
    // ld.so prints the directory as written (a trailing '/' dropped), "//", "." and ".." kept.
    let name = "s31_search_dir_spelling_is_kept";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/a/liba.so.1", "liba.so.1").build();
    r.lib("/opt/b/libb.so.1", "libb.so.1").build();
    r.lib("/opt/c/libcc.so.1", "libcc.so.1").build();
    r.exe(PROG)
        .rpath("/opt/a/://opt//b:/opt/./c/../c")
        .needs(&["/opt/a/liba.so.1", "/opt/b/libb.so.1", "/opt/c/libcc.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s33_cache_entry_without_soname_link_is_not_found() {
    // ldconfig -X records /usr/local/lib/libreal.so.1 (dir + SONAME) but creates no link, and
    // the only file is libreal-1.2.so: the cache hit fails to open, nothing else has it.
    let name = "s33_cache_entry_without_soname_link_is_not_found";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/local/lib/libreal-1.2.so", "libreal.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/local/lib/libreal-1.2.so"])
        .build();
    r.ldconfig();
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(trace.not_found.contains("libreal.so.1"));
}

#[test]
fn s34_cache_with_soname_links_made_by_ldconfig() {
    let name = "s34_cache_with_soname_links_made_by_ldconfig";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/local/lib/libreal-1.2.so", "libreal.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/local/lib/libreal-1.2.so"])
        .build();
    r.ldconfig_with_links();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s35_needed_interpreter_soname() {
    // A DT_NEEDED naming ld-linux-x86-64.so.2 is satisfied by the interpreter itself.
    let name = "s35_needed_interpreter_soname";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.exe(PROG).needs_names(&["ld-linux-x86-64.so.2"]).build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s36_several_roots_resolve_independently() {
    // Two programs with different RPATHs share liba (default dir), whose libshared comes from
    // each program's own RPATH: one closure run, per-root answers.
    let name = "s36_several_roots_resolve_independently";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/one/libshared.so.1", "libshared.so.1").build();
    r.lib("/opt/two/libshared.so.1", "libshared.so.1").build();
    r.lib("/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .needs(&["/opt/one/libshared.so.1"])
        .build();
    r.exe("/app/bin/p1")
        .rpath("/opt/one")
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.exe("/app/bin/p2")
        .rpath("/opt/two")
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.exe("/app/bin/p3")
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.ldconfig();
    check_multi(name, &r, &["/app/bin/p1", "/app/bin/p2", "/app/bin/p3"]);
}

#[test]
fn s37_other_interpreter_path() {
    // PT_INTERP spelled /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2: ld.so registers itself under
    // that string, and libc's DT_NEEDED ld-linux-x86-64.so.2 resolves to it.
    let name = "s37_other_interpreter_path";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.exe(PROG).build();
    r.patchelf(
        PROG,
        &[
            "--set-interpreter",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ],
    );
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s38_library_as_root() {
    // `LD_TRACE_LOADED_OBJECTS=1 ld.so LIB` inside the root (explicit invocation: $ORIGIN of the main object is
    // the directory of the path given) against `closure --root LIB`.
    let name = "s38_library_as_root";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/deps/libb.so.1", "libb.so.1").build();
    r.lib("/opt/a/liba.so.1", "liba.so.1")
        .runpath("$ORIGIN/../deps")
        .needs(&["/opt/deps/libb.so.1"])
        .needs_names(&["libnowhere.so.4"])
        .build();
    r.ldconfig();
    let trace = loader_list(&r, "/opt/a/liba.so.1", &[]);
    let run = closure_trace(&r, "/opt/a/liba.so.1", &[]);
    assert_same(name, &trace, &run);
}

#[test]
fn s38b_library_as_root_searches_legacy_subdirectories() {
    // A library has no PT_INTERP: `ldd lib.so` runs the system's loader on it, and that
    // loader's generation (2.36: legacy subdirectories) decides the search. Until the
    // twenty-first stop closure took a library root's loader for a current one, and
    // reported libvpx's `vfp/neon/` variant on Debian armhf as the plain library.
    let name = "s38b_library_as_root_searches_legacy_subdirectories";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let (args, _) = cpu_args(&r, name);
    r.lib("/opt/deps/tls/libb.so.1", "libb.so.1").build();
    decoy(&r, "/opt/deps/libb.so.1", "libb.so.1");
    r.lib("/opt/a/liba.so.1", "liba.so.1")
        .runpath("/opt/deps")
        .needs(&["/opt/deps/tls/libb.so.1"])
        .build();
    r.ldconfig();
    let trace = loader_list(&r, "/opt/a/liba.so.1", &[]);
    // (2.37 and later search no legacy subdirectory: the decoy then.)
    let libb = if searches_legacy(&r) {
        "/opt/deps/tls/libb.so.1"
    } else {
        "/opt/deps/libb.so.1"
    };
    assert!(
        trace.loaded.contains(libb),
        "{name}: the loader took another libb: {:?}",
        trace.loaded
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = closure_trace(&r, "/opt/a/liba.so.1", &args);
    assert_same(name, &trace, &run);
}

#[test]
fn s08c_main_in_symlinked_directory() {
    // /app/bin -> /opt/real/bin: /proc/self/exe is fully resolved, so $ORIGIN is /opt/real/bin.
    let name = "s08c_main_in_symlinked_directory";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/real/lib/liba.so.1", "liba.so.1").build();
    decoy(&r, "/app/lib/liba.so.1", "liba.so.1");
    r.exe("/opt/real/bin/prog")
        .runpath("$ORIGIN/../lib")
        .needs(&["/opt/real/lib/liba.so.1"])
        .build();
    r.symlink("/opt/real/bin", "/app/bin");
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s39_glibc_hwcaps_in_default_dir_without_cache_entry() {
    // libhd and its hwcaps variant appear after ldconfig ran: the cache misses, and the
    // system-dir search probes glibc-hwcaps subdirectories of /lib (= /usr/lib) first.
    let name = "s39_glibc_hwcaps_in_default_dir_without_cache_entry";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.exe(PROG).needs_names(&["libhd.so.1"]).build();
    r.ldconfig();
    r.lib("/usr/lib/libv3d.so.1", "libv3d.so.1").build();
    r.lib("/usr/lib/glibc-hwcaps/x86-64-v3/libhd.so.1", "libhd.so.1")
        .needs(&["/usr/lib/libv3d.so.1"])
        .build();
    r.lib("/usr/lib/libhd.so.1", "libhd.so.1").build();
    let args = hwcaps_args(&r, name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check(name, &r, PROG, &[], &args);
}

#[test]
fn s40_empty_library_path_element_is_cwd() {
    // An empty LD_LIBRARY_PATH element means the current directory ("/" in the chroot): ld.so
    // opens the bare name and prints `liba.so.1 (0x...)`. closure gets --cwd /.
    let name = "s40_empty_library_path_element_is_cwd";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/liba.so.1", "liba.so.1").build();
    r.exe(PROG).needs(&["/liba.so.1"]).build();
    r.ldconfig();
    let llp = "/nonexistent::";
    check(
        name,
        &r,
        PROG,
        &[("LD_LIBRARY_PATH", llp)],
        &["--library-path", llp, "--cwd", "/"],
    );
}

#[test]
fn s41_relative_rpath_element_is_cwd_relative() {
    let name = "s41_relative_rpath_element_is_cwd_relative";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/lib/liba.so.1", "liba.so.1").build();
    r.exe(PROG)
        .rpath("app/lib")
        .needs(&["/app/lib/liba.so.1"])
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &["--cwd", "/"]);
}

#[test]
fn s41b_relative_elements_from_another_working_directory() {
    // Relative and empty RUNPATH elements of the program and of a library, run from /opt:
    // the loader looks in /opt, /opt/l and below them (glibc-hwcaps, and on glibc 2.36 the
    // legacy subdirectories, which exist or not below the working directory, not below /).
    // The staged root, run from the same directory, loads the same files.
    let name = "s41b_relative_elements_from_another_working_directory";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let (mut args, platform) = cpu_args(&r, name);
    r.set_cwd("/opt");
    args.extend(["--cwd".to_string(), "/opt".to_string()]);
    r.lib("/opt/tls/liba.so.1", "liba.so.1").build();
    r.lib(&format!("/opt/l/{platform}/libp.so.1"), "libp.so.1")
        .build();
    r.lib("/opt/l/glibc-hwcaps/x86-64-v2/libe.so.1", "libe.so.1")
        .build();
    r.lib("/opt/l/libe.so.1", "libe.so.1").build();
    // Found by the library's empty element (the working directory again),
    // and by its `$ORIGIN`: for an object opened as `l/libb.so.1` that is
    // the working directory joined to `l` (`/opt/l`), not `l`.
    r.lib("/opt/libc2.so.1", "libc2.so.1").build();
    r.lib("/opt/l/sub/libd.so.1", "libd.so.1").build();
    r.lib("/opt/l/libb.so.1", "libb.so.1")
        .runpath("/nonexistent::$ORIGIN/sub")
        .needs(&["/opt/libc2.so.1", "/opt/l/sub/libd.so.1"])
        .build();
    // Where a search from / would look instead.
    for (path, soname) in [
        ("/liba.so.1", "liba.so.1"),
        ("/l/libp.so.1", "libp.so.1"),
        ("/l/libe.so.1", "libe.so.1"),
    ] {
        decoy(&r, path, soname);
    }
    r.exe(PROG)
        .runpath(".:l")
        .needs(&[
            "/opt/tls/liba.so.1",
            &format!("/opt/l/{platform}/libp.so.1"),
            "/opt/l/libe.so.1",
            "/opt/l/libb.so.1",
        ])
        .build();
    r.ldconfig();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (trace, _) = check(name, &r, PROG, &[], &args);
    // `--format list` names each object by its path in the root: the
    // loader's relative paths taken from the working directory.
    let list = std::process::Command::new(closure_bin())
        .arg("--sysroot")
        .arg(r.path())
        .args(["--root", PROG, "--format", "list", "--startup-only"])
        .args(&args)
        .output()
        .expect("run closure");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut expected: BTreeSet<String> = trace
        .loaded
        .iter()
        .map(|p| match p.strip_prefix('/') {
            Some(_) => p.clone(),
            None => format!("/opt/{}", p.trim_start_matches("./")),
        })
        .collect();
    expected.insert(PROG.to_string());
    assert!(
        trace.loaded.iter().any(|p| !p.starts_with('/')),
        "{name}: the loader opened nothing by a relative path: {:?}",
        trace.loaded
    );
    assert_eq!(listed, expected, "{name}: --format list");
    staged_root_loads_the_same(name, &r, PROG, &[], &args, &trace);
}

#[test]
fn s41c_a_file_in_a_relative_search_directory_ends_the_list() {
    // The program file where a directory should be: opening `bin/prog/libx.so.1` fails with
    // ENOTDIR. For a relative directory glibc counts that as an error inside a present
    // directory and gives up the rest of that RUNPATH; the same file named by an absolute
    // path is an absent directory, and the search goes on.
    // glibc 2.39 and later go on past it (the ENOTDIR no longer ends the list).
    let name = "s41c_a_file_in_a_relative_search_directory_ends_the_list";
    let o = oracle!(name);
    on_host_and_releases(
        name,
        &o,
        &["bullseye", "trixie", "forky"],
        enotdir_in_a_relative_directory,
    );
}

fn enotdir_in_a_relative_directory(name: &str, r: &TestRoot) {
    r.set_cwd("/app");
    r.lib("/app/lib/liba.so.1", "liba.so.1").build();
    r.lib("/app/lib/libb.so.1", "libb.so.1")
        .runpath("bin/prog:/app/lib")
        .needs(&["/app/lib/liba.so.1"])
        .build();
    r.exe(PROG)
        .runpath("/app/bin/prog:lib")
        .needs(&["/app/lib/libb.so.1"])
        .build();
    r.ldconfig();
    // The program's RUNPATH: `/app/bin/prog` absent, `lib` present: libb from /app/lib.
    // libb's RUNPATH: `bin/prog` ends the list before `/app/lib`, so liba comes from
    // nowhere in it, and is missing (the cache does not name it).
    let (trace, _) = check(name, r, PROG, &[], &["--cwd", "/app"]);
    let ends = r.glibc_minor() < 39;
    assert_eq!(
        trace.not_found.contains("liba.so.1"),
        ends,
        "{name}: scenario broken: {:?}",
        trace.loaded
    );
}

#[test]
fn s41d_an_error_in_a_subdirectory_does_not_end_the_list() {
    // A symbolic-link loop in a glibc-hwcaps subdirectory: opening it fails with ELOOP, an
    // error that ends a search list, but glibc weighs only the last file it tried in a
    // directory (the directory's own), so it goes on and takes /opt/l/liba.so.1. In the
    // legacy `tls` subdirectory (glibc 2.36) the same.
    let name = "s41d_an_error_in_a_subdirectory_does_not_end_the_list";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let (args, _) = cpu_args(&r, name);
    let Some(first) = r.loader_hwcaps().first().cloned() else {
        println!("skipping {name}: the loader searches no glibc-hwcaps subdirectory");
        return;
    };
    r.lib("/opt/l/liba.so.1", "liba.so.1").build();
    r.lib("/opt/l/libb.so.1", "libb.so.1").build();
    r.symlink(
        "liba.so.1",
        &format!("/opt/l/glibc-hwcaps/{first}/liba.so.1"),
    );
    r.symlink("libb.so.1", "/opt/l/tls/libb.so.1");
    r.exe(PROG)
        .runpath("/opt/l")
        .needs(&["/opt/l/liba.so.1", "/opt/l/libb.so.1"])
        .build();
    r.ldconfig();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (trace, _) = check(name, &r, PROG, &[], &args);
    assert!(
        trace.loaded.contains("/opt/l/liba.so.1"),
        "{name}: the loader did not take /opt/l/liba.so.1: {:?}",
        trace.loaded
    );
}

#[test]
fn s43_main_program_soname_satisfies_a_need() {
    // The executable carries DT_SONAME libself.so.1; liba needs libself.so.1 (no such file).
    let name = "s43_main_program_soname_satisfies_a_need";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/a/liba.so.1", "liba.so.1")
        .needs_names(&["libself.so.1"])
        .build();
    r.exe(PROG)
        .rpath("/opt/a")
        .needs(&["/opt/a/liba.so.1"])
        .arg("-Wl,-soname,libself.so.1")
        .build();
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s44_ld_so_conf_order_decides_between_cache_duplicates() {
    let name = "s44_ld_so_conf_order_decides_between_cache_duplicates";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/second/libdup.so.1", "libdup.so.1").build();
    decoy(&r, "/opt/first/libdup.so.1", "libdup.so.1");
    r.lib("/opt/first/libother.so.1", "libother.so.1").build();
    decoy(&r, "/opt/second/libother.so.1", "libother.so.1");
    r.exe(PROG)
        .needs(&["/opt/second/libdup.so.1", "/opt/first/libother.so.1"])
        .build();
    // libdup: /opt/second listed first; libother only differs by directory order too.
    r.set_ld_so_conf("/opt/second\n/opt/first\n");
    r.remove("/opt/second/libother.so.1");
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s44b_cache_directory_reached_through_a_link_is_staged_with_its_cache() {
    // ld.so.conf names /opt/link, a link to /opt/real: ldconfig records the libraries under
    // /opt/link/..., and the loader opens them by that path. The staged root gets a cache
    // (the directory is not a default one) that must keep those entries: the file and the
    // link on its way are both staged.
    let name = "s44b_cache_directory_reached_through_a_link_is_staged_with_its_cache";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let hw = r.loader_hwcaps();
    r.mkdir("/opt/real");
    r.symlink("real", "/opt/link");
    r.lib("/opt/real/liba.so.1", "liba.so.1").build();
    if let Some(first) = hw.first() {
        r.lib(
            &format!("/opt/real/glibc-hwcaps/{first}/libh.so.1"),
            "libh.so.1",
        )
        .build();
    } else {
        r.lib("/opt/real/libh.so.1", "libh.so.1").build();
    }
    r.exe(PROG)
        .needs(&["/opt/link/liba.so.1"])
        .needs_names(&["libh.so.1"])
        .build();
    r.set_ld_so_conf("/opt/link\n");
    r.ldconfig();
    let args = hwcaps_args(&r, name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (trace, _) = check(name, &r, PROG, &[], &args);
    assert!(
        trace.loaded.contains("/opt/link/liba.so.1"),
        "{name}: the loader did not take liba through the link: {:?}",
        trace.loaded
    );
    staged_root_loads_the_same(name, &r, PROG, &[], &args, &trace);
}

#[test]
fn s45_needed_with_lib_token() {
    let name = "s45_needed_with_lib_token";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/lib/x86_64-linux-gnu/libl.so", "libl.so")
        .build();
    r.exe(PROG).build();
    r.patchelf(PROG, &["--add-needed", "/opt/$LIB/libl.so"]);
    r.ldconfig();
    check(name, &r, PROG, &[], &[]);
}

#[test]
fn s46_library_path_with_lib_and_platform_tokens() {
    let name = "s46_library_path_with_lib_and_platform_tokens";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    let platform = r.loader_platform();
    let b = format!("/srv/{platform}/libb.so.1");
    r.lib("/opt/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .build();
    r.lib(&b, "libb.so.1").build();
    r.exe(PROG)
        .needs(&["/opt/lib/x86_64-linux-gnu/liba.so.1", &b])
        .build();
    r.ldconfig();
    let llp = "/opt/${LIB}:/srv/$PLATFORM";
    check(
        name,
        &r,
        PROG,
        &[("LD_LIBRARY_PATH", llp)],
        &["--library-path", llp, "--platform", &platform],
    );
}

/// The warnings of a closure run's JSON report.
fn json_warnings(run: &crate::support::oracle::ClosureRun) -> Vec<String> {
    run.json
        .as_ref()
        .and_then(|j| j["warnings"].as_array())
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The warnings of a closure run that mention `/etc/ld.so.preload`.
fn preload_warnings(run: &crate::support::oracle::ClosureRun) -> Vec<String> {
    json_warnings(run)
        .into_iter()
        .filter(|w| w.contains("ld.so.preload"))
        .collect()
}

/// `found_via` of `path` in a closure run.
fn found_via(run: &crate::support::oracle::ClosureRun, path: &str) -> Option<String> {
    run.objects
        .iter()
        .find(|o| o.path == path)
        .map(|o| o.found_via.clone())
}

// ---------------------------------------------------------------------------------------------
// 47: /etc/ld.so.preload (loader-semantics §1.8): glibc's loader loads what it names into every
// program, after the program and before the walk over its DT_NEEDED lists.
// ---------------------------------------------------------------------------------------------

/// A file of comments and separators preloads nothing: both agree, and there is no warning.
#[test]
fn s47_ld_so_preload_of_comments_preloads_nothing() {
    let name = "s47_ld_so_preload_of_comments_preloads_nothing";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/pre/libp.so", "libp.so").build();
    r.exe(PROG).build();
    r.ldconfig();
    r.write(
        "/etc/ld.so.preload",
        "# site hooks\n\n \t:\n# /opt/pre/libp.so\n",
    );
    let (_, run) = check(name, &r, PROG, &[], &[]);
    assert_eq!(preload_warnings(&run), Vec::<String>::new(), "{name}");
}

/// By path and by name (searched like a DT_NEEDED of the program: here through the cache),
/// with a comment: closure loads exactly what the loader loads, says how, and warns once.
#[test]
fn s47b_ld_so_preload_by_path_and_by_name() {
    let name = "s47b_ld_so_preload_by_path_and_by_name";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .build();
    r.lib("/opt/pre/libp.so", "libp.so").build();
    r.lib("/usr/lib/x86_64-linux-gnu/libq.so.1", "libq.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.ldconfig();
    r.write(
        "/etc/ld.so.preload",
        "/opt/pre/libp.so # by path\nlibq.so.1\n",
    );
    let (trace, run) = check(name, &r, PROG, &[], &[]);
    assert!(
        trace.loaded.contains("/opt/pre/libp.so"),
        "{name}: the loader did not preload: {:?}",
        trace.loaded
    );
    assert_eq!(
        found_via(&run, "/opt/pre/libp.so").as_deref(),
        Some("preload")
    );
    let q = trace
        .pairs
        .iter()
        .find(|(n, _)| n == "libq.so.1")
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("{name}: libq.so.1 not preloaded:\n{}", trace.stdout));
    assert_eq!(found_via(&run, &q).as_deref(), Some("preload"));
    let warned = preload_warnings(&run);
    assert!(
        warned.len() == 1 && warned[0].contains("names /opt/pre/libp.so, libq.so.1"),
        "{name}: want one warning naming both preloads: {warned:?}"
    );
    assert!(
        run.stderr.contains("warning: /etc/ld.so.preload names"),
        "{name}: the warning is not on stderr: {}",
        run.stderr
    );
    // `--verbose` says where each preload comes from, a path's too (not
    // "needed by" the program, not "given in DT_NEEDED").
    let verbose = run_closure(r.path(), &[PROG], &["--verbose"]);
    for line in [
        "  find library=/opt/pre/libp.so; preloaded from /etc/ld.so.preload",
        "    search path=(path given)  (path given in /etc/ld.so.preload)",
        "  find library=libq.so.1; preloaded from /etc/ld.so.preload",
    ] {
        assert!(
            verbose.stderr.lines().any(|l| l == line),
            "{name}: no line {line:?} in the search log:\n{}",
            verbose.stderr
        );
    }
}

/// A preload answers to its SONAME: the program's DT_NEEDED of that name takes it, and the
/// library the cache names for it (a decoy here) is never loaded.
#[test]
fn s47c_ld_so_preload_answers_a_needed_name() {
    let name = "s47c_ld_so_preload_answers_a_needed_name";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.remove("/usr/lib/x86_64-linux-gnu/liba.so.1");
    decoy(&r, "/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1");
    r.lib("/opt/pre/liba.so.1", "liba.so.1").build();
    r.ldconfig();
    r.write("/etc/ld.so.preload", "/opt/pre/liba.so.1\n");
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(trace.loaded.contains("/opt/pre/liba.so.1"), "{name}");
}

/// The program is a preload's loader: the preload's own dependency is found through the
/// program's DT_RPATH (and only there), after the program's own libraries.
#[test]
fn s47d_ld_so_preload_dependencies_see_the_program_rpath() {
    let name = "s47d_ld_so_preload_dependencies_see_the_program_rpath";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/r/libr.so.1", "libr.so.1").build();
    r.lib("/opt/pre/libp.so", "libp.so")
        .needs(&["/opt/r/libr.so.1"])
        .build();
    r.exe(PROG).rpath("/opt/r").build();
    r.ldconfig();
    r.write("/etc/ld.so.preload", "/opt/pre/libp.so");
    let (trace, _) = check(name, &r, PROG, &[], &[]);
    assert!(trace.loaded.contains("/opt/r/libr.so.1"), "{name}");
}

/// A preload that cannot be loaded is ignored (the loader says so and goes on): not a missing
/// library, exit 0, one warning with the loader's words.
#[test]
fn s47e_ld_so_preload_that_cannot_be_loaded_is_ignored() {
    let name = "s47e_ld_so_preload_that_cannot_be_loaded_is_ignored";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/opt/pre/libp.so", "libp.so").build();
    r.exe(PROG).build();
    r.ldconfig();
    r.write("/etc/ld.so.preload", "libnope.so.3 /opt/pre/libp.so\n");
    let (trace, run) = check(name, &r, PROG, &[], &[]);
    assert_eq!(trace.status, 0, "{name}: {}", trace.stderr);
    assert!(
        trace.stderr.contains("cannot be preloaded"),
        "{name}: the loader did not complain: {}",
        trace.stderr
    );
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    let warned = preload_warnings(&run);
    assert!(
        warned.iter().any(|w| w
            == "object 'libnope.so.3' from /etc/ld.so.preload cannot be preloaded (cannot open shared object file): ignored"),
        "{name}: {warned:?}"
    );
}

/// Roots of one shape share one trace (a template) and a preload is part of it: every root's
/// share of a run with several programs is what the loader loads for that program.
#[test]
fn s47f_ld_so_preload_in_every_root_of_a_run() {
    let name = "s47f_ld_so_preload_in_every_root_of_a_run";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .build();
    r.lib("/opt/pre/libp.so", "libp.so")
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    let progs = [
        "/app/bin/one",
        "/app/bin/two",
        "/app/bin/three",
        "/app/bin/other",
    ];
    for p in &progs[..3] {
        r.exe(p)
            .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
            .build();
    }
    r.exe(progs[3]).build();
    r.ldconfig();
    r.write("/etc/ld.so.preload", "/opt/pre/libp.so\n");
    let (traces, _) = check_multi(name, &r, &progs);
    for (p, t) in progs.iter().zip(&traces) {
        assert!(
            t.loaded.contains("/opt/pre/libp.so"),
            "{name}: {p}: {:?}",
            t.loaded
        );
    }
}

/// `--preload` models `LD_PRELOAD`: split at spaces and `:`, preloaded before what
/// `/etc/ld.so.preload` names; a name that cannot be loaded is ignored with a warning. closure
/// must load exactly what the loader loads with that environment.
#[test]
fn s47h_simulated_ld_preload() {
    let name = "s47h_simulated_ld_preload";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.remove("/usr/lib/x86_64-linux-gnu/liba.so.1");
    decoy(&r, "/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1");
    r.lib("/opt/env/liba.so.1", "liba.so.1").build();
    r.lib("/usr/lib/x86_64-linux-gnu/libq.so.1", "libq.so.1")
        .build();
    r.lib("/opt/pre/libf.so", "libf.so").build();
    r.ldconfig();
    r.write("/etc/ld.so.preload", "/opt/pre/libf.so\n");
    let env = "libq.so.1:/opt/env/liba.so.1 libnope.so.7";
    let (trace, run) = check(name, &r, PROG, &[("LD_PRELOAD", env)], &["--preload", env]);
    for p in ["/opt/env/liba.so.1", "/opt/pre/libf.so"] {
        assert!(
            trace.loaded.contains(p),
            "{name}: the loader did not preload {p}"
        );
        assert_eq!(
            found_via(&run, p).as_deref(),
            Some("preload"),
            "{name}: {p}"
        );
    }
    assert_eq!(run.status, 0, "{name}: {}", run.dump());
    let warned = preload_warnings(&run);
    assert!(
        warned.iter().any(|w| w.contains("names /opt/pre/libf.so:")),
        "{name}: the file's warning names only the file's entries: {warned:?}"
    );
    assert!(
        json_warnings(&run).iter().any(|w| w
            == "object 'libnope.so.7' from LD_PRELOAD cannot be preloaded (cannot open shared object file): ignored"),
        "{name}: {:?}",
        json_warnings(&run)
    );
}

/// `closure verify --preload` checks a root for the `LD_PRELOAD` its programs will run with: a
/// program whose `DT_NEEDED` name only a preload answers (by its SONAME) starts with it and
/// not without it, and verify says the same (exit 0 with, 1 without).
#[test]
fn s47j_verify_with_simulated_ld_preload() {
    let name = "s47j_verify_with_simulated_ld_preload";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/usr/lib/x86_64-linux-gnu/liba.so.1", "liba.so.1")
        .build();
    r.exe(PROG)
        .needs(&["/usr/lib/x86_64-linux-gnu/liba.so.1"])
        .build();
    r.remove("/usr/lib/x86_64-linux-gnu/liba.so.1");
    r.lib("/opt/env/liba.so.1", "liba.so.1").build();
    r.ldconfig();
    let env = "/opt/env/liba.so.1";
    let with = loader_trace(&r, PROG, &[("LD_PRELOAD", env)]);
    let without = loader_trace(&r, PROG, &[]);
    assert!(
        with.loaded.contains(env) && with.not_found.is_empty(),
        "{name}: the loader with LD_PRELOAD: {with:?}"
    );
    assert!(
        without.not_found.contains("liba.so.1"),
        "{name}: the loader without LD_PRELOAD: {without:?}"
    );
    let verify = |extra: &[&str]| {
        let out = std::process::Command::new(closure_bin())
            .arg("verify")
            .arg(r.path())
            .args(["--format", "list"])
            .args(extra)
            .output()
            .expect("run closure verify");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = verify(&["--preload", env]);
    assert_eq!(
        code,
        Some(0),
        "{name}: verify --preload\n{stdout}\n{stderr}"
    );
    assert!(stdout.lines().any(|l| l == env), "{name}: {stdout}");
    let (code, _, stderr) = verify(&[]);
    assert_eq!(code, Some(1), "{name}: verify without --preload\n{stderr}");
    assert!(stderr.contains("liba.so.1"), "{name}: {stderr}");
}

/// Names in `LD_PRELOAD` may hold dynamic string tokens, expanded for the program (its
/// `$ORIGIN`, the build's `$LIB`), as for a `DT_NEEDED` of the program.
#[test]
fn s47i_simulated_ld_preload_with_tokens() {
    let name = "s47i_simulated_ld_preload_with_tokens";
    let o = oracle!(name);
    let r = TestRoot::new(&o);
    r.lib("/app/pre/libt.so", "libt.so").build();
    r.lib("/opt/lib/x86_64-linux-gnu/libu.so", "libu.so")
        .build();
    r.exe(PROG).build();
    r.ldconfig();
    let env = "$ORIGIN/../pre/libt.so /opt/$LIB/libu.so";
    let (trace, _) = check(name, &r, PROG, &[("LD_PRELOAD", env)], &["--preload", env]);
    for p in [
        "/app/bin/../pre/libt.so",
        "/opt/lib/x86_64-linux-gnu/libu.so",
    ] {
        assert!(
            trace.loaded.contains(p),
            "{name}: the loader did not preload {p}: {:?}",
            trace.loaded
        );
    }
}
